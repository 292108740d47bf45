//! The in-memory tables, and the index of Pod Identity associations they hold.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::model::{self};

/// A cached record with its store version.
#[derive(Debug)]
pub struct Entry<T> {
    /// Store version.
    pub version: i64,
    /// The record.
    pub value: Arc<T>,
}

impl<T> Clone for Entry<T> {
    fn clone(&self) -> Self {
        Self {
            version: self.version,
            value: Arc::clone(&self.value),
        }
    }
}

/// `(account, id)`.
pub type Key = (String, String);

/// The entries of `table` in `account`, in key order.
pub fn of_account<'a, V>(
    table: &'a BTreeMap<Key, V>,
    account: &'a str,
) -> impl Iterator<Item = (&'a Key, &'a V)> {
    table
        .range((account.to_owned(), String::new())..)
        .take_while(move |((a, _), _)| a == account)
}

/// Everything podiam knows, in memory.
#[derive(Debug, Default)]
pub struct Tables {
    /// Accounts by id.
    pub accounts: BTreeMap<String, Entry<model::Account>>,
    /// Long-term access keys by access key id.
    pub access_keys: HashMap<String, Entry<model::AccessKey>>,
    /// Users by (account, lowercase name).
    pub users: BTreeMap<Key, Entry<model::User>>,
    /// Roles by (account, lowercase name).
    pub roles: BTreeMap<Key, Entry<model::Role>>,
    /// Managed policies by (account, lowercase name).
    pub policies: BTreeMap<Key, Entry<model::ManagedPolicy>>,
    /// OIDC providers by (account, URL without scheme).
    pub providers: BTreeMap<Key, Entry<model::OidcProvider>>,
    /// Clusters by (account, name).
    pub clusters: BTreeMap<Key, Entry<model::Cluster>>,
    /// Hosted issuer id → (account, cluster name).
    pub issuers: HashMap<String, Key>,
    /// Session keys by id.
    pub session_keys: BTreeMap<u32, Entry<model::SessionKey>>,
    /// Bumped on every change of `session_keys`, so key rings built from them know they are stale.
    pub session_keys_generation: u64,
    /// Pod Identity associations.
    pub associations: Associations,
    /// EKS access entries by (account, `CLUSTER/PRINCIPAL_ARN`): a cluster's entries are one
    /// range, in principal ARN order ([`access_entries_of`]).
    pub access_entries: BTreeMap<Key, Entry<model::AccessEntry>>,
}

/// The access entries of `cluster` in `account`, in principal ARN order, after the principal
/// `after` (exclusive) when given.
pub fn access_entries_of<'a>(
    table: &'a BTreeMap<Key, Entry<model::AccessEntry>>,
    account: &'a str,
    cluster: &str,
    after: Option<&str>,
) -> impl Iterator<Item = &'a Entry<model::AccessEntry>> + 'a {
    use std::ops::Bound;
    let prefix = format!("{cluster}/");
    let lower = match after {
        Some(p) => Bound::Excluded((account.to_owned(), format!("{prefix}{p}"))),
        None => Bound::Included((account.to_owned(), prefix.clone())),
    };
    table
        .range((lower, Bound::Unbounded))
        .take_while(move |((a, id), _)| a == account && id.starts_with(&prefix))
        .map(|(_, e)| e)
}

/// The store id of an access entry: `CLUSTER/PRINCIPAL_ARN`.
pub fn access_entry_id(cluster: &str, principal_arn: &str) -> String {
    format!("{cluster}/{principal_arn}")
}

impl Tables {
    /// How many records the tables hold.
    pub fn len(&self) -> usize {
        self.accounts.len()
            + self.access_keys.len()
            + self.users.len()
            + self.roles.len()
            + self.policies.len()
            + self.providers.len()
            + self.clusters.len()
            + self.session_keys.len()
            + self.associations.len()
            + self.access_entries.len()
    }

    /// Whether the tables hold nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A fast hasher for tables that hold a million keys (a cold start hashes each several times);
/// randomly seeded per process.
type FastHash = foldhash::fast::RandomState;

/// Pod Identity associations, held for the credential path (by namespace and service account)
/// and for the API (by id, and per cluster in id order: ListPodIdentityAssociations pages by id).
/// Keys join names with NUL, which no validated Kubernetes, cluster or account name contains.
#[derive(Debug, Default)]
pub struct Associations {
    /// `account NUL cluster` → association id → association.
    pub(super) by_cluster:
        HashMap<String, BTreeMap<String, Entry<model::PodIdentityAssociation>>, FastHash>,
    /// `account NUL cluster NUL namespace NUL service account` → association id.
    pub(super) by_subject: HashMap<String, String, FastHash>,
    /// `account NUL association id` → cluster name.
    pub(super) cluster_of: HashMap<String, String, FastHash>,
}

/// A key ordering ids as `str` does, mostly without reading the heap: the first 24 bytes
/// inline (NUL-padded; ids hold no NUL), the whole id only when it is longer.
pub(super) fn sort_key(id: &str) -> ([u8; 24], Option<&str>) {
    let mut prefix = [0; 24];
    for (p, b) in prefix.iter_mut().zip(id.bytes()) {
        *p = b;
    }
    (prefix, (id.len() > 24).then_some(id))
}

fn join(parts: &[&str]) -> String {
    parts.join("\0")
}

impl Associations {
    /// The association `id` of (account, cluster).
    pub fn get(
        &self,
        account: &str,
        cluster: &str,
        id: &str,
    ) -> Option<&Entry<model::PodIdentityAssociation>> {
        self.by_cluster.get(&join(&[account, cluster]))?.get(id)
    }

    /// The association `id` of an account, whatever its cluster.
    pub fn get_by_id(
        &self,
        account: &str,
        id: &str,
    ) -> Option<&Entry<model::PodIdentityAssociation>> {
        let cluster = self.cluster_of.get(&join(&[account, id]))?;
        self.get(account, cluster, id)
    }

    /// The association of (account, cluster, namespace, service account).
    pub fn find(
        &self,
        account: &str,
        cluster: &str,
        namespace: &str,
        service_account: &str,
    ) -> Option<&Entry<model::PodIdentityAssociation>> {
        let id = self
            .by_subject
            .get(&join(&[account, cluster, namespace, service_account]))?;
        self.get(account, cluster, id)
    }

    /// The associations of a cluster in id order, after `after` (exclusive) when given.
    pub fn of_cluster<'a>(
        &'a self,
        account: &str,
        cluster: &str,
        after: Option<&str>,
    ) -> impl Iterator<Item = (&'a str, &'a Entry<model::PodIdentityAssociation>)> + 'a {
        use std::ops::Bound;
        let lower = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        self.by_cluster
            .get(&join(&[account, cluster]))
            .into_iter()
            .flat_map(move |m| m.range((lower.clone(), Bound::Unbounded)))
            .map(|(id, e)| (id.as_str(), e))
    }

    /// How many associations a cluster has.
    pub fn count(&self, account: &str, cluster: &str) -> usize {
        self.by_cluster
            .get(&join(&[account, cluster]))
            .map_or(0, BTreeMap::len)
    }

    /// How many associations there are.
    pub fn len(&self) -> usize {
        self.cluster_of.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.cluster_of.is_empty()
    }

    /// A table of `(account, id, association)` records, each id once (a cold start). Records
    /// are indexed in arrival order (which is also the order of their allocations, so the
    /// strings read are close in memory), and each cluster's ids are sorted on an inline prefix
    /// rather than by a million searching inserts that each chase pointers.
    pub(super) fn from_records(
        records: Vec<(String, String, Entry<model::PodIdentityAssociation>)>,
    ) -> Self {
        type Run = Vec<(String, Entry<model::PodIdentityAssociation>)>;
        let mut t = Self {
            by_cluster: HashMap::default(),
            by_subject: HashMap::with_capacity_and_hasher(records.len(), FastHash::default()),
            cluster_of: HashMap::with_capacity_and_hasher(records.len(), FastHash::default()),
        };
        let mut runs: HashMap<String, Run, FastHash> = HashMap::default();
        for (account, id, e) in records {
            let a = &e.value;
            // Two associations of one subject (a race between replicas) resolve to the larger
            // id on every replica, whatever order the rows arrive in.
            t.by_subject
                .entry(join(&[
                    &account,
                    &a.cluster,
                    &a.namespace,
                    &a.service_account,
                ]))
                .and_modify(|cur| {
                    if id > *cur {
                        cur.clone_from(&id);
                    }
                })
                .or_insert_with(|| id.clone());
            t.cluster_of
                .insert(join(&[&account, &id]), a.cluster.clone());
            runs.entry(join(&[&account, &a.cluster]))
                .or_default()
                .push((id, e));
        }
        for (key, run) in runs {
            let order: Vec<usize> = {
                let mut keyed: Vec<_> = run
                    .iter()
                    .enumerate()
                    .map(|(i, (id, _))| (sort_key(id), i))
                    .collect();
                keyed.sort_unstable();
                keyed.into_iter().map(|(_, i)| i).collect()
            };
            let mut slots: Vec<Option<_>> = run.into_iter().map(Some).collect();
            // Already sorted and unique: BTreeMap's build only confirms the order.
            let map = order
                .into_iter()
                .filter_map(|i| slots.get_mut(i).and_then(Option::take))
                .collect();
            t.by_cluster.insert(key, map);
        }
        t
    }

    /// Adds or replaces the association `id` of `account`. `loading`: filling an empty table
    /// with each id once, so there is no previous version to unindex.
    pub(super) fn insert(
        &mut self,
        account: &str,
        id: &str,
        e: Entry<model::PodIdentityAssociation>,
        loading: bool,
    ) {
        if !loading {
            self.remove(account, id);
        }
        let a = &e.value;
        self.by_subject.insert(
            join(&[account, &a.cluster, &a.namespace, &a.service_account]),
            id.to_owned(),
        );
        self.cluster_of
            .insert(join(&[account, id]), a.cluster.clone());
        self.by_cluster
            .entry(join(&[account, &a.cluster]))
            .or_default()
            .insert(id.to_owned(), e);
    }

    /// Drops the association `id` of `account` and its index entries.
    pub(super) fn remove(
        &mut self,
        account: &str,
        id: &str,
    ) -> Option<Entry<model::PodIdentityAssociation>> {
        let cluster = self.cluster_of.remove(&join(&[account, id]))?;
        let ck = join(&[account, &cluster]);
        let m = self.by_cluster.get_mut(&ck)?;
        let e = m.remove(id)?;
        if m.is_empty() {
            self.by_cluster.remove(&ck);
        }
        let a = &e.value;
        let sk = join(&[account, &cluster, &a.namespace, &a.service_account]);
        if self.by_subject.get(&sk).is_some_and(|x| x == id) {
            self.by_subject.remove(&sk);
        }
        Some(e)
    }
}
