//! The legacy `aws-auth` ConfigMap (`kube-system/aws-auth`) as a source of Kubernetes
//! identities for `aws eks get-token` tokens, as aws-iam-authenticator reads it: `mapRoles`
//! (`rolearn`, `username`, `groups`), `mapUsers` (`userarn`, `username`, `groups`) and
//! `mapAccounts` (account ids), each a YAML string in the ConfigMap's `data`.
//!
//! This module owns the parser (untrusted text, bounded) and the lookup. It does no I/O: the
//! binary reads a file or watches the cluster, and installs each parsed version with
//! [`Control::set_aws_auth`]. The
//! signer's checks (signature, live principal, cluster, account) are done by `authn` before
//! anything here is consulted; this module only answers "which user and groups".
//!
//! Matching, as the authenticator does it:
//! * by the signer's canonical ARN, without regard to case: a role session's is
//!   `arn:aws:iam::ACCT:role/NAME` with the role's path dropped (so a `rolearn` with a path never
//!   matches; such entries are reported as warnings), a user's is the user's ARN with its path
//!   (what GetCallerIdentity answers);
//! * `mapRoles` first, then `mapUsers` (both keyed by ARN: an ARN listed in the other list
//!   matches too, as in the authenticator), then `mapAccounts`: any role or user of a listed
//!   account, as its canonical ARN with no groups;
//! * an ARN listed twice: the later entry wins (the authenticator keeps the last), with a
//!   warning;
//! * `{{AccountID}}`, `{{SessionName}}`, `{{SessionNameRaw}}`, `{{AccessKeyID}}` are filled in
//!   the username and in the groups; `{{EC2PrivateDNSName}}` refuses the token.
//!
//! Where podiam is stricter than the authenticator, and why:
//! * an account root never maps (as with access entries): root credentials are not an identity
//!   to hand a cluster;
//! * a principal of another account never maps, whatever `mapRoles`, `mapUsers` or `mapAccounts`
//!   say (EKS lets a ConfigMap admit another account's principals). podiam serves several
//!   accounts, and a ConfigMap is written by whoever controls the cluster: letting it admit
//!   another account's principals would let that cluster's owner collect their tokens, which
//!   are bound only to the cluster *name* and so replay for 15 minutes against any other
//!   podiam cluster of the same name where they are admitted. Cross-account access goes through
//!   a role of the cluster's account that the other account may assume;
//! * a file that does not parse is refused whole (the authenticator keeps the keys that parsed).
//!
//! In `API_AND_CONFIG_MAP` mode an access entry for the signer's ARN takes precedence even when
//! it was made for an earlier principal of that ARN (a role deleted and created again): the
//! token is refused rather than mapped by the ConfigMap, so deleting the stale entry is what
//! hands the principal to the ConfigMap.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;

use super::authn::{KubeUser, MappedBy, Signer, TemplateSource, TokenRefused};
use super::configmap_yaml::{
    AccountsSeed, Budget, Data, EntriesSeed, MAX_OUTPUT_BYTES, Outer, RawEntry, clip, inner,
};
pub use super::configmap_yaml::{MAX_AWS_AUTH_BYTES, MAX_AWS_AUTH_ENTRIES, MAX_AWS_AUTH_GROUPS};
use crate::Control;

/// Why an aws-auth file was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AwsAuthError(String);

/// The user and groups of a `mapRoles` or `mapUsers` entry (templates not yet filled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsAuthMapping {
    /// `username`.
    pub username: String,
    /// `groups`.
    pub groups: Vec<String>,
}

/// One parsed aws-auth ConfigMap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsAuth {
    /// `mapRoles`, by lowercased ARN.
    roles: HashMap<String, AwsAuthMapping>,
    /// `mapUsers`, by lowercased ARN.
    users: HashMap<String, AwsAuthMapping>,
    /// `mapAccounts`.
    accounts: BTreeSet<String>,
    /// Entries that can never match, and replaced duplicates: for the log.
    warnings: Vec<String>,
}

/// What an aws-auth ConfigMap says about a canonical ARN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsAuthMatch<'a> {
    /// A `mapRoles` or `mapUsers` entry.
    Entry(&'a AwsAuthMapping),
    /// The account is in `mapAccounts`.
    Account,
}

/// The cluster an aws-auth source is for: `NAME`, or `ACCOUNT/NAME` to pin the account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AwsAuthCluster {
    account: Option<String>,
    name: String,
}

impl std::str::FromStr for AwsAuthCluster {
    type Err = AwsAuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (account, name) = match s.split_once('/') {
            Some((a, n)) => (Some(a), n),
            None => (None, s),
        };
        if let Some(a) = account
            && !(a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(AwsAuthError(format!(
                "{s:?}: the account must be 12 digits (ACCOUNT/NAME or NAME)"
            )));
        }
        crate::eks::cluster_name(name)
            .map_err(|_| AwsAuthError(format!("{s:?}: not a valid cluster name")))?;
        Ok(Self {
            account: account.map(str::to_owned),
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for AwsAuthCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.account {
            Some(a) => write!(f, "{a}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The installed aws-auth ConfigMaps, by cluster.
#[derive(Debug, Default)]
pub(crate) struct AwsAuthSources(RwLock<HashMap<AwsAuthCluster, Arc<AwsAuth>>>);

impl AwsAuth {
    /// Parse an aws-auth file: a whole ConfigMap manifest (as `kubectl get configmap aws-auth
    /// -n kube-system -o yaml` prints it) or just its `data` (`mapRoles`, `mapUsers`,
    /// `mapAccounts` keys holding YAML strings). Bounded: [`MAX_AWS_AUTH_BYTES`] of input,
    /// [`MAX_AWS_AUTH_ENTRIES`] per list, [`MAX_AWS_AUTH_GROUPS`] per entry.
    pub fn parse(text: &str) -> Result<Self, AwsAuthError> {
        if text.len() > MAX_AWS_AUTH_BYTES {
            return Err(AwsAuthError(format!(
                "larger than {MAX_AWS_AUTH_BYTES} bytes"
            )));
        }
        if text.trim().is_empty() {
            return Err(AwsAuthError("empty".into()));
        }
        let outer: Outer = serde_norway::from_str(text)
            .map_err(|e| AwsAuthError(format!("not YAML of a ConfigMap or its data: {e}")))?;
        Self::from_parts(outer.check().map_err(AwsAuthError)?)
    }

    /// Parse the `data` of an aws-auth ConfigMap read from the Kubernetes API (other keys are
    /// ignored). Bounded as [`AwsAuth::parse`]: the three values together at most
    /// [`MAX_AWS_AUTH_BYTES`].
    pub fn from_data(data: &BTreeMap<String, String>) -> Result<Self, AwsAuthError> {
        let get = |k: &str| data.get(k).cloned();
        let parts = Data {
            map_roles: get("mapRoles"),
            map_users: get("mapUsers"),
            map_accounts: get("mapAccounts"),
        };
        let size = [&parts.map_roles, &parts.map_users, &parts.map_accounts]
            .iter()
            .filter_map(|v| v.as_ref().map(String::len))
            .sum::<usize>();
        if size > MAX_AWS_AUTH_BYTES {
            return Err(AwsAuthError(format!(
                "larger than {MAX_AWS_AUTH_BYTES} bytes"
            )));
        }
        Self::from_parts(parts)
    }

    fn from_parts(data: Data) -> Result<Self, AwsAuthError> {
        let budget = Budget::new(MAX_OUTPUT_BYTES);
        let mut out = Self::default();
        for (key, arn_key, users) in [
            ("mapRoles", "rolearn", false),
            ("mapUsers", "userarn", true),
        ] {
            let text = match key {
                "mapRoles" => data.map_roles.as_deref(),
                _ => data.map_users.as_deref(),
            };
            for (i, e) in inner(
                text,
                EntriesSeed {
                    budget: &budget,
                    arn_key,
                },
            )
            .map_err(|e| AwsAuthError(format!("{key}: {e}")))?
            .into_iter()
            .enumerate()
            {
                out.add(key, i, e, users)?;
            }
        }
        let accounts = inner(data.map_accounts.as_deref(), AccountsSeed(&budget))
            .map_err(|e| AwsAuthError(format!("mapAccounts: {e}")))?;
        for a in accounts {
            if !(a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())) {
                out.warnings.push(format!(
                    "mapAccounts: {:?} is not a 12-digit account id and never matches",
                    clip(&a)
                ));
            }
            out.accounts.insert(a);
        }
        Ok(out)
    }

    /// Entries that can never match and duplicates that replaced an earlier entry.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// What the ConfigMap says about `canonical_arn` of a principal of `account`.
    pub fn lookup(&self, canonical_arn: &str, account: &str) -> Option<AwsAuthMatch<'_>> {
        let key = canonical_arn.to_lowercase();
        self.roles
            .get(&key)
            .or_else(|| self.users.get(&key))
            .map(AwsAuthMatch::Entry)
            .or_else(|| {
                self.accounts
                    .contains(account)
                    .then_some(AwsAuthMatch::Account)
            })
    }

    fn add(&mut self, key: &str, i: usize, e: RawEntry, users: bool) -> Result<(), AwsAuthError> {
        let at = |what: &str| AwsAuthError(format!("{key} entry {}: {what}", i + 1));
        let arn = e
            .arn
            .ok_or_else(|| at(if users { "no userarn" } else { "no rolearn" }))?;
        let username = e
            .username
            .filter(|u| !u.is_empty())
            .ok_or_else(|| at("no username"))?;
        if let Some(why) = never_matches(&arn, users) {
            self.warnings
                .push(format!("{key} entry {}: {:?} {why}", i + 1, clip(&arn)));
        }
        let mapping = AwsAuthMapping {
            username,
            groups: e.groups.unwrap_or_default(),
        };
        let map = if users {
            &mut self.users
        } else {
            &mut self.roles
        };
        if map.insert(arn.to_lowercase(), mapping).is_some() {
            self.warnings.push(format!(
                "{key} entry {}: {:?} is listed again; this later entry replaces the earlier one",
                i + 1,
                clip(&arn)
            ));
        }
        Ok(())
    }
}

/// Why an entry's ARN can never be a signer's canonical ARN, if it cannot.
fn never_matches(arn: &str, users: bool) -> Option<&'static str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, _partition, service, region, account, resource] = parts.as_slice() else {
        return Some("is not an ARN and never matches");
    };
    if !prefix.eq_ignore_ascii_case("arn")
        || !service.eq_ignore_ascii_case("iam")
        || !region.is_empty()
    {
        return Some("is not an IAM ARN and never matches");
    }
    if !(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())) {
        return Some("has no 12-digit account and never matches");
    }
    let lower = resource.to_ascii_lowercase();
    if lower == "root" {
        return Some("is an account root, which podiam never maps");
    }
    if let Some(name) = lower.strip_prefix("role/") {
        if name.contains('/') {
            return Some(
                "has a path: a role session matches by arn:aws:iam::ACCOUNT:role/NAME, without the path, so this never matches",
            );
        }
        return None;
    }
    if lower.starts_with("user/") {
        return None;
    }
    Some(if users {
        "is not an IAM user or role ARN and never matches"
    } else {
        "is not an IAM role or user ARN and never matches"
    })
}

// === impl Control ===

impl Control {
    /// Install (or replace) the aws-auth ConfigMap of a cluster. Reviews after this call use
    /// it; reviews under way finish with the one they started with.
    pub fn set_aws_auth(&self, cluster: &AwsAuthCluster, map: AwsAuth) {
        self.aws_auth
            .0
            .write()
            .insert(cluster.clone(), Arc::new(map));
        self.hooks.aws_auth_reload(true);
    }

    /// Report a reload of an aws-auth source that failed (the last good version stays).
    pub fn aws_auth_reload_failed(&self) {
        self.hooks.aws_auth_reload(false);
    }

    /// The aws-auth ConfigMap of cluster `name` of `account`: the source named
    /// `ACCOUNT/NAME`, else the one named `NAME` when no other account has a cluster of that
    /// name (an unpinned source must not apply to two accounts' clusters).
    fn aws_auth_of(&self, account: &str, name: &str) -> Option<Arc<AwsAuth>> {
        let sources = self.aws_auth.0.read();
        let pinned = AwsAuthCluster {
            account: Some(account.to_owned()),
            name: name.to_owned(),
        };
        if let Some(m) = sources.get(&pinned) {
            return Some(Arc::clone(m));
        }
        let name_unique = self
            .db
            .read()
            .clusters
            .keys()
            .filter(|(_, n)| n == name)
            .count()
            == 1;
        if !name_unique {
            return None;
        }
        let unpinned = AwsAuthCluster {
            account: None,
            name: name.to_owned(),
        };
        sources.get(&unpinned).map(Arc::clone)
    }

    /// Map a verified signer of cluster `name` (in the signer's account, checked by the
    /// caller) through the cluster's aws-auth ConfigMap.
    pub(super) fn map_by_configmap(
        &self,
        account: &str,
        name: &str,
        signer: &Signer,
        access_key_id: &str,
    ) -> Result<KubeUser, TokenRefused> {
        let map = self.aws_auth_of(account, name).ok_or_else(|| {
            TokenRefused::new("the cluster has no aws-auth ConfigMap (--aws-auth)")
        })?;
        let (username, groups) = match map.lookup(&signer.canonical_arn, account) {
            Some(AwsAuthMatch::Entry(m)) => {
                let username = signer.render(
                    &m.username,
                    account,
                    access_key_id,
                    TemplateSource::ConfigMap,
                )?;
                let groups = m
                    .groups
                    .iter()
                    .map(|g| signer.render(g, account, access_key_id, TemplateSource::ConfigMap))
                    .collect::<Result<Vec<_>, _>>()?;
                (username, groups)
            }
            Some(AwsAuthMatch::Account) => (signer.canonical_arn.clone(), vec![]),
            None => {
                return Err(TokenRefused::new(
                    "the principal is not in the cluster's aws-auth ConfigMap",
                ));
            }
        };
        Ok(signer.kube_user(
            account,
            access_key_id,
            username,
            groups,
            MappedBy::ConfigMap,
        ))
    }
}
