//! podiam-policy (in progress).
