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
    pub(super) fn check_trust_principals(&self, trust: &policy::Policy) -> Result<()> {
        let t = self.db.read();
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
                let exists = |path_and_name: &str, arn_of: &dyn Fn(&str) -> Option<String>| {
                    let name = path_and_name.rsplit('/').next().unwrap_or_default();
                    arn_of(&name.to_lowercase()).is_some_and(|arn| arn == raw)
                };
                let known = if let Some(p) = resource.strip_prefix("user/") {
                    exists(p, &|id| {
                        t.users
                            .get(&(account.to_owned(), id.to_owned()))
                            .map(|e| user_arn(account, &e.value))
                    })
                } else if let Some(p) = resource.strip_prefix("role/") {
                    exists(p, &|id| {
                        t.roles
                            .get(&(account.to_owned(), id.to_owned()))
                            .map(|e| role_arn(account, &e.value))
                    })
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
        Ok(())
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
