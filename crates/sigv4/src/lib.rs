//! podiam-sigv4 (in progress).
