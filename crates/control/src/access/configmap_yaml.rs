//! The YAML of an aws-auth file, read with bounds: the shapes of a ConfigMap manifest or its
//! `data`, and serde seeds for `mapRoles`, `mapUsers` and `mapAccounts` that cap every string,
//! list and the total output (YAML aliases can repeat a node many times, so the output is
//! bounded on its own, not only the input). No meaning is given to the values here: that is
//! `configmap`'s.

use std::cell::Cell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

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
pub(super) const MAX_OUTPUT_BYTES: usize = 4 * MAX_AWS_AUTH_BYTES;

/// At most 64 characters of a string from the file, for a message.
pub(super) fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A ConfigMap manifest, or its `data` alone (then the `map*` keys are at the top). Other
/// keys are skipped without being kept (no `flatten`: it would buffer them, aliases expanded).
#[derive(Deserialize)]
pub(super) struct Outer {
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
pub(super) struct Data {
    #[serde(rename = "mapRoles")]
    pub(super) map_roles: Option<String>,
    #[serde(rename = "mapUsers")]
    pub(super) map_users: Option<String>,
    #[serde(rename = "mapAccounts")]
    pub(super) map_accounts: Option<String>,
}

impl Data {
    fn is_empty(&self) -> bool {
        self.map_roles.is_none() && self.map_users.is_none() && self.map_accounts.is_none()
    }
}

impl Outer {
    /// The data, after checking that a manifest is the aws-auth ConfigMap.
    pub(super) fn check(self) -> Result<Data, String> {
        let top = Data {
            map_roles: self.map_roles,
            map_users: self.map_users,
            map_accounts: self.map_accounts,
        };
        let manifest = self.kind.is_some() || self.metadata.is_some() || self.data.is_some();
        if !manifest {
            // Another file given by mistake (a kubeconfig, say) must not read as an empty map.
            if top.is_empty() {
                return Err("neither a ConfigMap manifest (kind, metadata, data) nor its data (mapRoles, mapUsers, mapAccounts)".into());
            }
            return Ok(top);
        }
        if !top.is_empty() {
            return Err(
                "mapRoles, mapUsers and mapAccounts go under data in a ConfigMap manifest".into(),
            );
        }
        if let Some(k) = self.kind.as_deref().filter(|k| *k != "ConfigMap") {
            return Err(format!("kind is {:?}, not ConfigMap", clip(k)));
        }
        if let Some(m) = &self.metadata {
            if let Some(n) = m.name.as_deref().filter(|n| *n != "aws-auth") {
                return Err(format!("the ConfigMap is {:?}, not aws-auth", clip(n)));
            }
            if let Some(n) = m.namespace.as_deref().filter(|n| *n != "kube-system") {
                return Err(format!(
                    "the ConfigMap's namespace is {:?}, not kube-system",
                    clip(n)
                ));
            }
        }
        Ok(self.data.unwrap_or_default())
    }
}

/// Parse one `data` value (a YAML string) with `seed`; absent or blank is empty (as the
/// authenticator skips "", "``" and "\"\"").
pub(super) fn inner<T: Default, S: for<'de> DeserializeSeed<'de, Value = T>>(
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
pub(super) struct Budget(Cell<usize>);

impl Budget {
    pub(super) fn new(bytes: usize) -> Self {
        Self(Cell::new(bytes))
    }

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
pub(super) struct RawEntry {
    pub(super) arn: Option<String>,
    pub(super) username: Option<String>,
    pub(super) groups: Option<Vec<String>>,
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
pub(super) struct AccountsSeed<'b>(pub(super) &'b Budget);

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
pub(super) struct EntriesSeed<'b> {
    pub(super) budget: &'b Budget,
    pub(super) arn_key: &'static str,
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
