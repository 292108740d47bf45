//! Where the webhook learns about service accounts and Pod Identity associations.
//!
//! Both are traits so that admission never does I/O: implementations keep an in-memory view
//! that is refreshed in the background. Service accounts come from a static set, a file
//! ([`FileServiceAccounts`]) or a Kubernetes watch ([`crate::kubernetes::KubeServiceAccounts`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use serde_json::Value;

/// One entry of the ConfigMap mode's `data.config` (`{"<ns>/<sa>": {...}}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ConfigEntry {
    /// `RoleARN`.
    #[serde(rename = "RoleARN", default)]
    pub role_arn: Option<String>,
    /// `Audience` (empty = the flag's).
    #[serde(rename = "Audience", default)]
    pub audience: Option<String>,
    /// `UseRegionalSTS`.
    #[serde(rename = "UseRegionalSTS", default)]
    pub use_regional_sts: Option<bool>,
    /// `TokenExpiration` (0 = the flag's).
    #[serde(rename = "TokenExpiration", default)]
    pub token_expiration: Option<i64>,
}

/// What the webhook knows about one service account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccountInfo {
    /// The ServiceAccount's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The ConfigMap-style entry matching it (`ns/name`, else `*/name`), used when the
    /// annotations carry no role.
    pub config: Option<ConfigEntry>,
}

/// Annotations as a sorted map, from a JSON object of strings (other values skipped).
pub fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Looks up service accounts without blocking.
pub trait ServiceAccountSource: Send + Sync {
    /// The service account `namespace/name`, or `None` when unknown.
    fn get(&self, namespace: &str, name: &str) -> Option<ServiceAccountInfo>;

    /// Like [`Self::get`], but a source that learns of new service accounts asynchronously may
    /// wait up to `grace` for one it does not know yet. The default does not wait.
    fn wait_for<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        grace: Duration,
    ) -> Pin<Box<dyn Future<Output = Option<ServiceAccountInfo>> + Send + 'a>> {
        let _ = grace;
        Box::pin(std::future::ready(self.get(namespace, name)))
    }

    /// Whether [`Self::wait_for`] can learn of an account later (a watch can; a file cannot).
    fn can_wait(&self) -> bool {
        false
    }

    /// Whether the source has loaded (a watch that has not listed yet is not ready).
    fn is_ready(&self) -> bool {
        true
    }
}

/// Service accounts held in memory: annotated ServiceAccounts and ConfigMap-style entries.
#[derive(Debug, Clone, Default)]
pub struct ServiceAccounts {
    annotations: HashMap<String, BTreeMap<String, String>>,
    config: HashMap<String, ConfigEntry>,
}

impl ServiceAccounts {
    /// Adds (or replaces) a ServiceAccount's annotations.
    pub fn insert_annotations(
        &mut self,
        namespace: &str,
        name: &str,
        annotations: BTreeMap<String, String>,
    ) {
        self.annotations
            .insert(format!("{namespace}/{name}"), annotations);
    }

    /// Adds (or replaces) a ConfigMap-style entry; `key` is `ns/name` or `*/name`.
    pub fn insert_config(&mut self, key: &str, entry: ConfigEntry) {
        self.config.insert(key.to_owned(), entry);
    }

    /// Parses one of the accepted documents:
    /// - the ConfigMap mode's `data.config` object, `{"<ns>/<sa>": {"RoleARN": ...}}`;
    /// - a whole ConfigMap (`kind: ConfigMap`, `data.config` a JSON string);
    /// - a ServiceAccount, or a list of them (`kubectl get sa -A -o json`), whose annotations
    ///   are read as the real webhook reads them from the API server.
    pub fn parse(text: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let mut out = Self::default();
        out.add_document(&v)?;
        Ok(out)
    }

    fn add_document(&mut self, v: &Value) -> Result<(), String> {
        let Some(obj) = v.as_object() else {
            return Err("expected a JSON object".into());
        };
        if let Some(items) = obj.get("items").and_then(Value::as_array) {
            for item in items {
                self.add_document(item)?;
            }
            return Ok(());
        }
        match obj.get("kind").and_then(Value::as_str) {
            Some("ServiceAccount") => {
                let meta = obj.get("metadata");
                let field = |f: &str| meta.and_then(|m| m.get(f)).and_then(Value::as_str);
                let (Some(ns), Some(name)) = (field("namespace"), field("name")) else {
                    return Err("a ServiceAccount without metadata.namespace/name".into());
                };
                self.insert_annotations(
                    ns,
                    name,
                    string_map(meta.and_then(|m| m.get("annotations"))),
                );
                Ok(())
            }
            Some("ConfigMap") => {
                let config = obj
                    .get("data")
                    .and_then(|d| d.get("config"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if config.trim().is_empty() {
                    return Ok(());
                }
                let inner: Value =
                    serde_json::from_str(config).map_err(|e| format!("data.config: {e}"))?;
                self.add_config_map(&inner)
            }
            Some(other) => Err(format!("unsupported kind {other:?}")),
            None => self.add_config_map(v),
        }
    }

    fn add_config_map(&mut self, v: &Value) -> Result<(), String> {
        let Some(obj) = v.as_object() else {
            return Err("data.config must be a JSON object".into());
        };
        for (key, entry) in obj {
            if !key.contains('/') {
                return Err(format!("key {key:?} is not <namespace>/<name>"));
            }
            let e: ConfigEntry =
                serde_json::from_value(entry.clone()).map_err(|e| format!("{key}: {e}"))?;
            self.config.insert(key.clone(), e);
        }
        Ok(())
    }

    /// Annotations of `ns/name`; config entry `ns/name`, else `*/name`.
    pub fn lookup(&self, namespace: &str, name: &str) -> Option<ServiceAccountInfo> {
        let key = format!("{namespace}/{name}");
        let annotations = self.annotations.get(&key);
        let config = self
            .config
            .get(&key)
            .or_else(|| self.config.get(&format!("*/{name}")));
        if annotations.is_none() && config.is_none() {
            return None;
        }
        Some(ServiceAccountInfo {
            annotations: annotations.cloned().unwrap_or_default(),
            config: config.cloned(),
        })
    }

    /// How many service accounts and entries are held.
    pub fn len(&self) -> usize {
        self.annotations.len() + self.config.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ServiceAccountSource for ServiceAccounts {
    fn get(&self, namespace: &str, name: &str) -> Option<ServiceAccountInfo> {
        self.lookup(namespace, name)
    }
}

/// Service accounts from a file (`--service-account-file`), re-read when its modification time
/// or size changes ([`FileServiceAccounts::spawn_watch`]). A file that fails to parse on reload
/// is logged and the previous content kept.
#[derive(Debug)]
pub struct FileServiceAccounts {
    path: PathBuf,
    current: RwLock<Arc<ServiceAccounts>>,
    stamp: Mutex<Option<(SystemTime, u64)>>,
}

fn stamp(path: &Path) -> std::io::Result<(SystemTime, u64)> {
    let m = std::fs::metadata(path)?;
    Ok((m.modified()?, m.len()))
}

impl FileServiceAccounts {
    /// Loads `path` (which must exist and parse).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, String> {
        let path = path.into();
        let s = Self {
            current: RwLock::new(Arc::new(ServiceAccounts::default())),
            stamp: Mutex::new(None),
            path,
        };
        s.reload_if_changed()?;
        Ok(s)
    }

    /// Re-reads the file if it changed; `Ok(true)` when reloaded.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let p = self.path.display();
        let st = stamp(&self.path).map_err(|e| format!("{p}: {e}"))?;
        if *self.stamp.lock() == Some(st) {
            return Ok(false);
        }
        let text = std::fs::read_to_string(&self.path).map_err(|e| format!("{p}: {e}"))?;
        let parsed = if text.trim().is_empty() {
            ServiceAccounts::default()
        } else {
            ServiceAccounts::parse(&text).map_err(|e| format!("{p}: {e}"))?
        };
        tracing::info!(path = %p, entries = parsed.len(), "service accounts loaded");
        *self.current.write() = Arc::new(parsed);
        *self.stamp.lock() = Some(st);
        Ok(true)
    }

    /// Polls the file every `every` until the task is dropped/aborted.
    pub fn spawn_watch(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut t = tokio::time::interval(every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                t.tick().await;
                if let Err(e) = me.reload_if_changed() {
                    tracing::warn!(error = %e, "service account file not reloaded; keeping the previous content");
                }
            }
        })
    }
}

impl ServiceAccountSource for FileServiceAccounts {
    fn get(&self, namespace: &str, name: &str) -> Option<ServiceAccountInfo> {
        self.current.read().lookup(namespace, name)
    }
}

/// Answers whether a Pod Identity association exists, without blocking.
pub trait AssociationSource: Send + Sync {
    /// Whether (namespace, service account) has an association in the webhook's cluster.
    fn has_association(&self, namespace: &str, service_account: &str) -> bool;

    /// Whether the source has loaded.
    fn is_ready(&self) -> bool {
        true
    }
}

/// A fixed set of associations, namespace → service accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Associations(HashMap<String, HashSet<String>>);

impl Associations {
    /// Adds one association.
    pub fn insert(&mut self, namespace: &str, service_account: &str) {
        self.0
            .entry(namespace.to_owned())
            .or_default()
            .insert(service_account.to_owned());
    }

    /// How many associations are held.
    pub fn len(&self) -> usize {
        self.0.values().map(HashSet::len).sum()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<S: AsRef<str>, T: AsRef<str>> FromIterator<(S, T)> for Associations {
    fn from_iter<I: IntoIterator<Item = (S, T)>>(iter: I) -> Self {
        let mut a = Self::default();
        for (n, s) in iter {
            a.insert(n.as_ref(), s.as_ref());
        }
        a
    }
}

impl AssociationSource for Associations {
    fn has_association(&self, namespace: &str, service_account: &str) -> bool {
        self.0
            .get(namespace)
            .is_some_and(|s| s.contains(service_account))
    }
}

/// No associations (Pod Identity off).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAssociations;

impl AssociationSource for NoAssociations {
    fn has_association(&self, _: &str, _: &str) -> bool {
        false
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
    fn parses_config_map_data() {
        let s = ServiceAccounts::parse(
            r#"{"default/app":{"RoleARN":"arn:aws:iam::111122223333:role/app","Audience":"x","UseRegionalSTS":true,"TokenExpiration":3600},
                "*/any":{"RoleARN":"arn:aws:iam::111122223333:role/any"}}"#,
        )
        .unwrap();
        let a = s.lookup("default", "app").unwrap();
        assert_eq!(a.config.unwrap().token_expiration, Some(3600));
        assert!(s.lookup("other", "any").is_some());
        assert!(s.lookup("other", "app").is_none());
    }

    #[test]
    fn parses_service_account_lists_and_config_maps() {
        let s = ServiceAccounts::parse(
            r#"{"kind":"List","items":[
                {"kind":"ServiceAccount","metadata":{"namespace":"ns","name":"sa","annotations":{"eks.amazonaws.com/role-arn":"r"}}},
                {"kind":"ConfigMap","data":{"config":"{\"ns/cm\":{\"RoleARN\":\"r2\"}}"}}]}"#,
        )
        .unwrap();
        assert_eq!(
            s.lookup("ns", "sa")
                .unwrap()
                .annotations
                .get("eks.amazonaws.com/role-arn")
                .map(String::as_str),
            Some("r")
        );
        assert!(s.lookup("ns", "cm").unwrap().config.is_some());
        assert!(ServiceAccounts::parse(r#"{"nokey":{}}"#).is_err());
    }

    #[test]
    fn file_source_reloads() {
        let dir = std::env::temp_dir().join(format!("podiam-webhook-sa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("sa.json");
        std::fs::write(&f, r#"{"a/b":{"RoleARN":"r"}}"#).unwrap();
        let src = FileServiceAccounts::open(&f).unwrap();
        assert!(src.get("a", "b").is_some());
        std::fs::write(&f, r#"{"a/c":{"RoleARN":"r"}, "a/d":{}}"#).unwrap();
        assert!(src.reload_if_changed().unwrap());
        assert!(src.get("a", "b").is_none());
        assert!(src.get("a", "c").is_some());
        std::fs::write(&f, "{not json").unwrap();
        assert!(src.reload_if_changed().is_err());
        assert!(src.get("a", "c").is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
