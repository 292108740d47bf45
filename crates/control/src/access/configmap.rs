//! The legacy `aws-auth` ConfigMap (`kube-system/aws-auth`) as a source of Kubernetes
//! identities for `aws eks get-token` tokens, as aws-iam-authenticator reads it: `mapRoles`
//! (`rolearn`, `username`, `groups`), `mapUsers` (`userarn`, `username`, `groups`) and
//! `mapAccounts` (account ids), each a YAML string in the ConfigMap's `data`.
//!
//! This module owns the parser (untrusted text, bounded) and the lookup. It does no I/O: the
//! binary reads the file and installs each parsed version with [`Control::set_aws_auth`]. The
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

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::authn::{KubeUser, MappedBy, Signer, TokenRefused};
use crate::Control;

/// The largest aws-auth file read, in bytes (a ConfigMap holds at most 1 MiB).
pub const MAX_AWS_AUTH_BYTES: usize = 1024 * 1024;
/// The most entries in one of `mapRoles`, `mapUsers`, `mapAccounts`.
pub const MAX_AWS_AUTH_ENTRIES: usize = 10_000;
/// The most groups of one entry.
pub const MAX_AWS_AUTH_GROUPS: usize = 100;
/// The longest ARN, username or group (IAM ARNs are at most 2048 characters).
const MAX_FIELD_CHARS: usize = 2048;
/// The most bytes of strings one parse may produce: YAML aliases can repeat a string many
/// times, so the output is bounded on its own, not only the input.
const MAX_OUTPUT_BYTES: usize = 4 * MAX_AWS_AUTH_BYTES;

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
        let data = outer.check()?;
        let budget = Budget(Cell::new(MAX_OUTPUT_BYTES));
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

/// At most 64 characters of a string from the file, for a message.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
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
    /// `ACCOUNT/NAME`, else the one named `NAME` when `name_unique` (no other account has a
    /// cluster of that name: an unpinned source must not apply to two accounts' clusters).
    fn aws_auth_of(&self, account: &str, name: &str, name_unique: bool) -> Option<Arc<AwsAuth>> {
        let sources = self.aws_auth.0.read();
        let pinned = AwsAuthCluster {
            account: Some(account.to_owned()),
            name: name.to_owned(),
        };
        if let Some(m) = sources.get(&pinned) {
            return Some(Arc::clone(m));
        }
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
        name_unique: bool,
        signer: &Signer,
        access_key_id: &str,
    ) -> Result<KubeUser, TokenRefused> {
        let map = self
            .aws_auth_of(account, name, name_unique)
            .ok_or_else(|| {
                TokenRefused::new("the cluster has no aws-auth ConfigMap (--aws-auth)")
            })?;
        let (username, groups) = match map.lookup(&signer.canonical_arn, account) {
            Some(AwsAuthMatch::Entry(m)) => {
                let username = signer.render(&m.username, account, access_key_id)?;
                let groups = m
                    .groups
                    .iter()
                    .map(|g| signer.render(g, account, access_key_id))
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

// === the YAML shapes ===

/// A ConfigMap manifest, or its `data` alone (then the `map*` keys are at the top). Other
/// keys are skipped without being kept (no `flatten`: it would buffer them, aliases expanded).
#[derive(Deserialize)]
struct Outer {
    kind: Option<String>,
    metadata: Option<Metadata>,
    data: Option<Data>,
    #[serde(rename = "mapRoles")]
    map_roles: Option<String>,
    #[serde(rename = "mapUsers")]
    map_users: Option<String>,
    #[serde(rename = "mapAccounts")]
    map_accounts: Option<String>,
}

#[derive(Deserialize)]
struct Metadata {
    name: Option<String>,
    namespace: Option<String>,
}

#[derive(Deserialize, Default)]
struct Data {
    #[serde(rename = "mapRoles")]
    map_roles: Option<String>,
    #[serde(rename = "mapUsers")]
    map_users: Option<String>,
    #[serde(rename = "mapAccounts")]
    map_accounts: Option<String>,
}

impl Data {
    fn is_empty(&self) -> bool {
        self.map_roles.is_none() && self.map_users.is_none() && self.map_accounts.is_none()
    }
}

impl Outer {
    /// The data, after checking that a manifest is the aws-auth ConfigMap.
    fn check(self) -> Result<Data, AwsAuthError> {
        let top = Data {
            map_roles: self.map_roles,
            map_users: self.map_users,
            map_accounts: self.map_accounts,
        };
        let manifest = self.kind.is_some() || self.metadata.is_some() || self.data.is_some();
        if !manifest {
            return Ok(top);
        }
        if !top.is_empty() {
            return Err(AwsAuthError(
                "mapRoles, mapUsers and mapAccounts go under data in a ConfigMap manifest".into(),
            ));
        }
        if let Some(k) = self.kind.as_deref().filter(|k| *k != "ConfigMap") {
            return Err(AwsAuthError(format!(
                "kind is {:?}, not ConfigMap",
                clip(k)
            )));
        }
        if let Some(m) = &self.metadata {
            if let Some(n) = m.name.as_deref().filter(|n| *n != "aws-auth") {
                return Err(AwsAuthError(format!(
                    "the ConfigMap is {:?}, not aws-auth",
                    clip(n)
                )));
            }
            if let Some(n) = m.namespace.as_deref().filter(|n| *n != "kube-system") {
                return Err(AwsAuthError(format!(
                    "the ConfigMap's namespace is {:?}, not kube-system",
                    clip(n)
                )));
            }
        }
        Ok(self.data.unwrap_or_default())
    }
}

/// Parse one `data` value (a YAML string) with `seed`; absent or blank is empty (as the
/// authenticator skips "", "``" and "\"\"").
fn inner<T: Default, S: for<'de> DeserializeSeed<'de, Value = T>>(
    text: Option<&str>,
    seed: S,
) -> Result<T, serde_norway::Error> {
    let Some(text) = text else {
        return Ok(T::default());
    };
    let t = text.trim();
    if t.is_empty() || t == "``" || t == "\"\"" {
        return Ok(T::default());
    }
    seed.deserialize(serde_norway::Deserializer::from_str(text))
}

/// What is left of the output allowance of one parse.
struct Budget(Cell<usize>);

impl Budget {
    fn take<E: de::Error>(&self, n: usize) -> Result<(), E> {
        let left = self.0.get();
        if n > left {
            return Err(E::custom(
                "the ConfigMap expands to too much data (YAML aliases?)",
            ));
        }
        self.0.set(left - n);
        Ok(())
    }
}

/// An entry of `mapRoles` or `mapUsers` as written.
#[derive(Default)]
struct RawEntry {
    arn: Option<String>,
    username: Option<String>,
    groups: Option<Vec<String>>,
}

/// A string of at most [`MAX_FIELD_CHARS`]; a plain scalar such as `123` reads as its text.
#[derive(Clone, Copy)]
struct StrSeed<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for StrSeed<'_> {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for StrSeed<'_> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if v.chars().count() > MAX_FIELD_CHARS {
            return Err(E::custom(format!(
                "a value is longer than {MAX_FIELD_CHARS} characters"
            )));
        }
        self.0.take(v.len() + 1)?;
        Ok(v.to_owned())
    }
}

/// A list of strings (or null: none), at most `max` of them.
struct StrsSeed<'b> {
    budget: &'b Budget,
    max: usize,
    what: &'static str,
}

impl<'de> DeserializeSeed<'de> for StrsSeed<'_> {
    type Value = Vec<String>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrsSeed<'_> {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of {}", self.what)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
        Ok(vec![])
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = vec![];
        while let Some(s) = seq.next_element_seed(StrSeed(self.budget))? {
            if out.len() == self.max {
                return Err(de::Error::custom(format!(
                    "more than {} {}",
                    self.max, self.what
                )));
            }
            out.push(s);
        }
        Ok(out)
    }
}

/// `mapAccounts`.
struct AccountsSeed<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for AccountsSeed<'_> {
    type Value = Vec<String>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        StrsSeed {
            budget: self.0,
            max: MAX_AWS_AUTH_ENTRIES,
            what: "accounts",
        }
        .deserialize(d)
    }
}

/// `mapRoles` or `mapUsers`: a list of entries (or null: none).
#[derive(Clone, Copy)]
struct EntriesSeed<'b> {
    budget: &'b Budget,
    arn_key: &'static str,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = Vec<RawEntry>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<RawEntry>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = Vec<RawEntry>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of mappings")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<RawEntry>, E> {
        Ok(vec![])
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<RawEntry>, A::Error> {
        let mut out = vec![];
        while let Some(e) = seq.next_element_seed(EntrySeed(self))? {
            if out.len() == MAX_AWS_AUTH_ENTRIES {
                return Err(de::Error::custom(format!(
                    "more than {MAX_AWS_AUTH_ENTRIES} entries"
                )));
            }
            out.push(e);
        }
        Ok(out)
    }
}

/// One entry. Keys are matched without regard to case (as Go's JSON decoding, which the
/// authenticator uses, matches them); other keys are ignored, as there.
struct EntrySeed<'b>(EntriesSeed<'b>);

impl<'de> DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = RawEntry;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<RawEntry, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed<'_> {
    type Value = RawEntry;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a mapping with {}, username and groups", self.0.arn_key)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEntry, A::Error> {
        let budget = self.0.budget;
        let mut e = RawEntry::default();
        while let Some(k) = map.next_key_seed(StrSeed(budget))? {
            let k = k.to_ascii_lowercase();
            let dup = || de::Error::custom(format!("{k} is given twice"));
            if k == self.0.arn_key {
                if e.arn
                    .replace(map.next_value_seed(StrSeed(budget))?)
                    .is_some()
                {
                    return Err(dup());
                }
            } else if k == "username" {
                if e.username
                    .replace(map.next_value_seed(StrSeed(budget))?)
                    .is_some()
                {
                    return Err(dup());
                }
            } else if k == "groups" {
                let groups = map.next_value_seed(StrsSeed {
                    budget,
                    max: MAX_AWS_AUTH_GROUPS,
                    what: "groups",
                })?;
                if e.groups.replace(groups).is_some() {
                    return Err(dup());
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(e)
    }
}
