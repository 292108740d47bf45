//! podiam-jose (in progress).
