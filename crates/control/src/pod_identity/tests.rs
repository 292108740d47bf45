use super::credentials::check_token_shape;
use super::params::{association_id, external_id, k8s_name, session_name};
use crate::names;

#[test]
fn session_names_fit_64() {
    let u = "0f8fad5b-d9cb-469f-a165-70867728950e";
    assert_eq!(session_name("c1", "web", u), format!("eks-c1-web-{u}"));
    let long = session_name(&"c".repeat(100), &"p".repeat(200), u);
    assert_eq!(long.len(), 64);
    assert!(long.ends_with(u));
    assert!(long.starts_with("eks-ccccccccccc-ppppppppppp"));
    // A short cluster name leaves the room to the pod name.
    let s = session_name("dev", &"podname".repeat(10), u);
    assert_eq!(s.len(), 64);
    assert!(s.starts_with("eks-dev-podnamepodname"));
    assert!(names::role_session_name(&s).is_ok());
}

#[test]
fn kubernetes_names() {
    assert!(k8s_name("default", "namespace", 63).is_ok());
    assert!(k8s_name("a.b", "namespace", 63).is_err());
    assert!(k8s_name("a.b", "serviceAccount", 253).is_ok());
    assert!(k8s_name("", "namespace", 63).is_err());
    assert!(k8s_name("-a", "namespace", 63).is_err());
    assert!(k8s_name("Upper", "namespace", 63).is_err());
    assert!(k8s_name(&"a".repeat(64), "namespace", 63).is_err());
}

#[test]
fn token_shapes() {
    assert!(check_token_shape("a.b.c").is_ok());
    assert!(check_token_shape("a.b").is_err());
    assert!(check_token_shape("a..c").is_err());
    assert!(check_token_shape("a.b.c d").is_err());
    assert!(check_token_shape(&format!("a.{}.c", "b".repeat(20_000))).is_err());
}

#[test]
fn ids() {
    let id = association_id().unwrap_or_default();
    assert_eq!(id.len(), 19);
    assert!(id.starts_with("a-"));
    assert_ne!(id, association_id().unwrap_or_default());
    assert_eq!(external_id().unwrap_or_default().len(), 32);
}
