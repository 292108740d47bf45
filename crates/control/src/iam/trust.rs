//! Trust policies and the principals they name: a trust policy may name only users and roles
//! that exist, and deleting one rewrites the trust policies naming it.

use podiam_policy as policy;

use crate::Control;
use crate::error::{AwsError, Result};
use crate::model::kind;
use crate::names::{role_arn, user_arn};
use crate::state::Change;

impl Control {
    /// IAM refuses a trust policy naming a user or role that does not exist: `"AWS"` principals
    /// that are user or role ARNs of an account podiam holds must name an existing entity (path
    /// included). Other accounts' entities cannot be checked and are accepted.
    ///
    /// Returns a [`Change::touch`] of each entity named, for the batch that saves the policy: a
    /// replica deleting one of them meanwhile (and rewriting the trust policies it knows) then
    /// conflicts with this batch, so no saved policy names by ARN a principal that is gone.
    /// `except`: the key (account, lower-case name) of the role whose policy this is, which the
    /// batch writes anyway.
    pub(super) fn check_trust_principals(
        &self,
        trust: &policy::Policy,
        except: Option<(&str, &str)>,
    ) -> Result<Vec<Change>> {
        let t = self.db.read();
        let mut touched: std::collections::BTreeMap<(&'static str, String, String), Change> =
            std::collections::BTreeMap::new();
        for st in trust.statements() {
            let Some(policy::PrincipalClause::Principal(policy::PrincipalSpec::Map(entries))) =
                st.principal()
            else {
                continue;
            };
            for value in entries
                .iter()
                .filter(|(k, _)| *k == policy::PrincipalType::Aws)
                .flat_map(|(_, v)| v)
            {
                let raw = value.as_str();
                let Some(rest) = raw.strip_prefix("arn:aws:iam::") else {
                    continue;
                };
                let Some((account, resource)) = rest.split_once(':') else {
                    continue;
                };
                if raw.contains('*') || !t.accounts.contains_key(account) {
                    continue;
                }
                let key_of = |path_and_name: &str| {
                    let name = path_and_name.rsplit('/').next().unwrap_or_default();
                    (account.to_owned(), name.to_lowercase())
                };
                let known = if let Some(p) = resource.strip_prefix("user/") {
                    let key = key_of(p);
                    match t.users.get(&key) {
                        Some(e) if user_arn(account, &e.value) == raw => {
                            let change =
                                Change::touch(kind::USER, account, &key.1, &*e.value, e.version)?;
                            touched.insert((kind::USER, key.0, key.1), change);
                            true
                        }
                        _ => false,
                    }
                } else if let Some(p) = resource.strip_prefix("role/") {
                    let key = key_of(p);
                    match t.roles.get(&key) {
                        Some(e) if role_arn(account, &e.value) == raw => {
                            if except != Some((key.0.as_str(), key.1.as_str())) {
                                let change = Change::touch(
                                    kind::ROLE,
                                    account,
                                    &key.1,
                                    &*e.value,
                                    e.version,
                                )?;
                                touched.insert((kind::ROLE, key.0, key.1), change);
                            }
                            true
                        }
                        _ => false,
                    }
                } else {
                    true
                };
                if !known {
                    return Err(AwsError::malformed_policy(format!(
                        "Invalid principal in policy: \"AWS\":\"{raw}\""
                    )));
                }
            }
        }
        Ok(touched.into_values().collect())
    }

    /// Every trust policy that names the deleted principal `arn`, rewritten with its unique id in
    /// place of the ARN, as IAM does: a user or role created later under the same name is
    /// another principal and inherits none of its predecessor's trust. (`except`: the key of a
    /// role being deleted in the same batch.)
    pub(super) fn trust_rewrites(
        &self,
        arn: &str,
        unique_id: &str,
        except: Option<&str>,
    ) -> Result<Vec<Change>> {
        let t = self.db.read();
        let mut out = Vec::new();
        for ((account, key), e) in &t.roles {
            if except.is_some_and(|x| x == key)
                && account.as_str() == arn.split(':').nth(4).unwrap_or_default()
            {
                continue;
            }
            let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(&e.value.trust_policy)
            else {
                continue;
            };
            if replace_principal(&mut doc, arn, unique_id) {
                let mut r = (*e.value).clone();
                r.trust_policy =
                    serde_json::to_string(&doc).map_err(|_| AwsError::service_failure())?;
                out.push(Change::update(kind::ROLE, account, key, &r, e.version)?);
            }
        }
        Ok(out)
    }
}

/// Replace `arn` by `id` among the `AWS` principals of `Principal` and `NotPrincipal` in every
/// statement of a policy document; whether anything was replaced.
fn replace_principal(doc: &mut serde_json::Value, arn: &str, id: &str) -> bool {
    let mut changed = false;
    let mut visit = |st: &mut serde_json::Value| {
        for element in ["Principal", "NotPrincipal"] {
            let Some(aws) = st.get_mut(element).and_then(|p| p.get_mut("AWS")) else {
                continue;
            };
            match aws {
                serde_json::Value::String(s) if s == arn => {
                    *s = id.to_owned();
                    changed = true;
                }
                serde_json::Value::Array(list) => {
                    for v in list.iter_mut() {
                        if v.as_str() == Some(arn) {
                            *v = serde_json::Value::String(id.to_owned());
                            changed = true;
                        }
                    }
                }
                _ => {}
            }
        }
    };
    match doc.get_mut("Statement") {
        Some(serde_json::Value::Array(sts)) => sts.iter_mut().for_each(&mut visit),
        Some(st @ serde_json::Value::Object(_)) => visit(st),
        _ => {}
    }
    changed
}
