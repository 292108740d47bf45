//! The request context: condition keys and their values.
//!
//! Keys are case-insensitive (`aws:SourceIp` and `AWS:sourceip` are the same key), values
//! are case-preserving strings, and every key may carry several values (multivalued keys
//! such as `aws:TagKeys`). A key set to an empty list is treated exactly like an absent key.
//!
//! The context records values, not key types: as AWS puts it, the difference between
//! single-valued and multivalued keys "lies in the number of values in the request context".
//! A key holding one value — from [`Context::set`] or from [`Context::set_multi`] with a
//! one-element list, such as `aws:TagKeys` for a request with one tag — is compared as that
//! value by every operator; only a key holding two or more values needs a set qualifier
//! (see the `condition` module for what an operator without one does then).

use std::collections::BTreeMap;

/// Condition keys and values of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// Lowercased key -> entry.
    entries: BTreeMap<String, Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// The key as first set (for display).
    key: String,
    values: Vec<String>,
}

/// The one case folding of condition and tag keys: `aws:SourceIp` and `AWS:sourceip` are the
/// same key, and so are `Kubernetes-namespace` and `\u{212A}ubernetes-namespace` (Kelvin sign),
/// since non-ASCII keys fold with full Unicode rules. Every comparison of tag keys in podiam
/// goes through this function, so a key the engine treats as one key is one key everywhere.
#[must_use]
pub fn fold_key(key: &str) -> String {
    normalize_key(key)
}

/// Normalizes a condition key for case-insensitive comparison.
pub(crate) fn normalize_key(key: &str) -> String {
    if key.is_ascii() {
        key.to_ascii_lowercase()
    } else {
        key.to_lowercase()
    }
}

impl Context {
    /// An empty context.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to the single value `value`, replacing any previous values.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.set_multi(key, [value.into()])
    }

    /// Sets `key` to `values` (a multivalued key), replacing any previous values.
    pub fn set_multi<I, V>(&mut self, key: impl Into<String>, values: I) -> &mut Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        let key = key.into();
        let values = values.into_iter().map(Into::into).collect();
        self.entries
            .insert(normalize_key(&key), Entry { key, values });
        self
    }

    /// Builder form of [`Context::set`].
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(key, value);
        self
    }

    /// Builder form of [`Context::set_multi`].
    #[must_use]
    pub fn with_multi<I, V>(mut self, key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        self.set_multi(key, values);
        self
    }

    /// The values of `key` (case-insensitive); `None` if the key is absent or has no values.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.get_normalized(&normalize_key(key))
    }

    /// Is `key` present with at least one value?
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Removes `key`, returning its values.
    pub fn remove(&mut self, key: &str) -> Option<Vec<String>> {
        self.entries.remove(&normalize_key(key)).map(|e| e.values)
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no key is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Iterates over `(key as first set, values)` in lowercase-key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.entries
            .values()
            .map(|e| (e.key.as_str(), e.values.as_slice()))
    }

    /// Lookup with an already-normalized key (no allocation).
    pub(crate) fn get_normalized(&self, normalized: &str) -> Option<&[String]> {
        self.entries
            .get(normalized)
            .map(|e| e.values.as_slice())
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_values_are_not() {
        let ctx = Context::new()
            .with("aws:SourceIp", "10.0.0.1")
            .with("aws:username", "Alice");
        assert_eq!(ctx.get("AWS:SOURCEIP").unwrap(), ["10.0.0.1"]);
        assert_eq!(ctx.get("aws:UserName").unwrap(), ["Alice"]);
        assert!(ctx.get("aws:userid").is_none());
        assert_eq!(ctx.len(), 2);
    }

    #[test]
    fn set_replaces_and_empty_is_absent() {
        let mut ctx = Context::new();
        ctx.set("k", "a").set("K", "b");
        assert_eq!(ctx.get("k").unwrap(), ["b"]);
        ctx.set_multi("tags", ["x", "y"]);
        assert_eq!(ctx.get("TAGS").unwrap(), ["x", "y"]);
        ctx.set_multi("empty", Vec::<String>::new());
        assert!(ctx.get("empty").is_none());
        assert!(!ctx.contains_key("empty"));
        assert_eq!(ctx.remove("TAGS").unwrap(), ["x", "y"]);
        assert!(!ctx.contains_key("tags"));
        assert!(!ctx.is_empty());
        let keys: Vec<&str> = ctx.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["empty", "K"]);
    }
}
