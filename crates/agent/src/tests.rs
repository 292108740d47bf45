#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

#[test]
fn cluster_names() {
    assert!(valid_cluster_name("my-cluster_1"));
    assert!(!valid_cluster_name("-x"));
    assert!(!valid_cluster_name(""));
    assert!(!valid_cluster_name("a/b"));
    assert!(!valid_cluster_name(&"a".repeat(101)));
    assert_eq!(DEFAULT_ADDRESS_V6.to_string(), "fd00:ec2::23");
}
