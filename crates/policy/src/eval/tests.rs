#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use PrincipalMatch::*;

fn facts() -> Facts {
    Facts::default()
}

#[test]
fn explicit_deny_overrides_everything() {
    let f = Facts {
        explicit_deny: true,
        identity_allows: true,
        principal_is_root: true,
        resource_grant: Some(Exact),
        ..facts()
    };
    assert_eq!(combine(&f), Effect::ExplicitDeny);
    assert_eq!(reason(&f, combine(&f)), Reason::ExplicitDeny);
}

#[test]
fn nothing_allows_is_implicit_deny() {
    assert_eq!(combine(&facts()), Effect::ImplicitDeny);
    assert_eq!(reason(&facts(), Effect::ImplicitDeny), Reason::NoAllow);
}

#[test]
fn identity_allow_same_account() {
    let f = Facts {
        identity_allows: true,
        ..facts()
    };
    assert_eq!(combine(&f), Effect::Allow);
    assert_eq!(reason(&f, Effect::Allow), Reason::IdentityAllow);
}

#[test]
fn boundary_and_session_limit_identity() {
    let f = Facts {
        identity_allows: true,
        boundary_allows: Some(false),
        ..facts()
    };
    assert_eq!(combine(&f), Effect::ImplicitDeny);
    assert_eq!(reason(&f, Effect::ImplicitDeny), Reason::BoundaryDenies);
    let f = Facts {
        identity_allows: true,
        session_allows: Some(false),
        ..facts()
    };
    assert_eq!(combine(&f), Effect::ImplicitDeny);
    assert_eq!(reason(&f, Effect::ImplicitDeny), Reason::SessionDenies);
    let f = Facts {
        identity_allows: true,
        boundary_allows: Some(true),
        session_allows: Some(true),
        ..facts()
    };
    assert_eq!(combine(&f), Effect::Allow);
    // A boundary alone grants nothing.
    let f = Facts {
        boundary_allows: Some(true),
        session_allows: Some(true),
        ..facts()
    };
    assert_eq!(combine(&f), Effect::ImplicitDeny);
}

#[test]
fn exact_resource_grant_bypasses_guardrails() {
    let f = Facts {
        resource_grant: Some(Exact),
        boundary_allows: Some(false),
        session_allows: Some(false),
        ..facts()
    };
    assert_eq!(combine(&f), Effect::Allow);
    assert_eq!(reason(&f, Effect::Allow), Reason::ResourceAllow);
}

#[test]
fn role_and_broad_grants_are_limited_by_guardrails() {
    for grant in [Role, Broad] {
        let f = Facts {
            resource_grant: Some(grant),
            ..facts()
        };
        assert_eq!(combine(&f), Effect::Allow, "{grant:?}");
        let f = Facts {
            resource_grant: Some(grant),
            boundary_allows: Some(false),
            ..facts()
        };
        assert_eq!(combine(&f), Effect::ImplicitDeny, "{grant:?}");
        assert_eq!(reason(&f, Effect::ImplicitDeny), Reason::BoundaryDenies);
        let f = Facts {
            resource_grant: Some(grant),
            session_allows: Some(false),
            ..facts()
        };
        assert_eq!(combine(&f), Effect::ImplicitDeny, "{grant:?}");
        assert_eq!(reason(&f, Effect::ImplicitDeny), Reason::SessionDenies);
    }
}

#[test]
fn account_grant_delegates_to_identity() {
    let f = Facts {
        resource_grant: Some(Account),
        ..facts()
    };
    assert_eq!(combine(&f), Effect::ImplicitDeny);
    assert_eq!(reason(&f, Effect::ImplicitDeny), Reason::IdentityRequired);
    let f = Facts {
        resource_grant: Some(Account),
        identity_allows: true,
        ..facts()
    };
    assert_eq!(combine(&f), Effect::Allow);
}

#[test]
fn required_resource_policy() {
    let f = Facts {
        resource_required: true,
        identity_allows: true,
        ..facts()
    };
    assert_eq!(combine(&f), Effect::ImplicitDeny);
    assert_eq!(reason(&f, Effect::ImplicitDeny), Reason::TrustPolicyDenies);
    let f = Facts {
        resource_required: true,
        resource_grant: Some(Account),
        identity_allows: true,
        ..facts()
    };
    assert_eq!(combine(&f), Effect::Allow);
    let f = Facts {
        resource_required: true,
        resource_grant: Some(Account),
        ..facts()
    };
    assert_eq!(combine(&f), Effect::ImplicitDeny);
    let f = Facts {
        resource_required: true,
        resource_grant: Some(Exact),
        ..facts()
    };
    assert_eq!(combine(&f), Effect::Allow);
}

#[test]
fn cross_account_needs_both() {
    let base = Facts {
        cross_account: true,
        ..facts()
    };
    let f = Facts {
        identity_allows: true,
        ..base
    };
    assert_eq!(combine(&f), Effect::ImplicitDeny);
    assert_eq!(
        reason(&f, Effect::ImplicitDeny),
        Reason::CrossAccountResourceDenies
    );
    for grant in [Account, Broad, Role, Exact] {
        let f = Facts {
            resource_grant: Some(grant),
            ..base
        };
        assert_eq!(combine(&f), Effect::ImplicitDeny, "{grant:?}");
        assert_eq!(
            reason(&f, Effect::ImplicitDeny),
            Reason::CrossAccountIdentityDenies
        );
        let f = Facts {
            resource_grant: Some(grant),
            identity_allows: true,
            ..base
        };
        assert_eq!(combine(&f), Effect::Allow, "{grant:?}");
        assert_eq!(reason(&f, Effect::Allow), Reason::CrossAccountAllow);
        let f = Facts {
            resource_grant: Some(grant),
            identity_allows: true,
            boundary_allows: Some(false),
            ..base
        };
        assert_eq!(combine(&f), Effect::ImplicitDeny, "{grant:?}");
        assert_eq!(reason(&f, Effect::ImplicitDeny), Reason::BoundaryDenies);
    }
}

#[test]
fn root_is_implicitly_allowed_in_its_account() {
    let f = Facts {
        principal_is_root: true,
        ..facts()
    };
    assert_eq!(combine(&f), Effect::Allow);
    assert_eq!(reason(&f, Effect::Allow), Reason::RootAllow);
    let f = Facts {
        principal_is_root: true,
        cross_account: true,
        ..facts()
    };
    assert_eq!(combine(&f), Effect::ImplicitDeny);
    let f = Facts {
        principal_is_root: true,
        cross_account: true,
        resource_grant: Some(Account),
        ..facts()
    };
    assert_eq!(combine(&f), Effect::Allow);
}

/// Exhaustive: `reason` agrees with `combine` on allow/deny for every combination, and
/// `combine` is monotone in every boolean fact and in the grant strength.
#[test]
fn reason_agrees_and_combine_is_monotone() {
    let grants = [None, Some(Account), Some(Broad), Some(Role), Some(Exact)];
    let opts = [None, Some(false), Some(true)];
    let mut all = Vec::new();
    for bits in 0u8..16 {
        for grant in grants {
            for boundary in opts {
                for session in opts {
                    all.push(Facts {
                        explicit_deny: false,
                        identity_allows: bits & 1 != 0,
                        principal_is_root: bits & 2 != 0,
                        resource_required: bits & 4 != 0,
                        cross_account: bits & 8 != 0,
                        resource_grant: grant,
                        boundary_allows: boundary,
                        session_allows: session,
                    });
                }
            }
        }
    }
    for f in &all {
        let effect = combine(f);
        let r = reason(f, effect);
        let allow_reasons = [
            Reason::IdentityAllow,
            Reason::ResourceAllow,
            Reason::RootAllow,
            Reason::CrossAccountAllow,
        ];
        assert_eq!(
            effect == Effect::Allow,
            allow_reasons.contains(&r),
            "{f:?} -> {effect:?} {r:?}"
        );
        // More allowing never denies.
        if effect == Effect::Allow {
            let more = [
                Facts {
                    identity_allows: true,
                    ..*f
                },
                Facts {
                    resource_grant: f.resource_grant.max(Some(Account)),
                    ..*f
                },
                Facts {
                    resource_grant: Some(Exact),
                    ..*f
                },
                Facts {
                    boundary_allows: f.boundary_allows.map(|_| true),
                    ..*f
                },
                Facts {
                    session_allows: f.session_allows.map(|_| true),
                    ..*f
                },
            ];
            for g in more {
                assert_eq!(combine(&g), Effect::Allow, "{f:?} -> {g:?}");
            }
            assert_eq!(
                combine(&Facts {
                    explicit_deny: true,
                    ..*f
                }),
                Effect::ExplicitDeny
            );
        }
    }
}
