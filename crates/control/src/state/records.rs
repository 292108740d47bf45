//! Store records decoded into the tables: a whole load, and one record or deletion at a time.

use std::ops::ControlFlow;
use std::sync::Arc;

use podiam_store::{RecordRef, Store};

use super::tables::{Associations, Entry, Tables};
use crate::error::AwsError;
use crate::model::{self, kind};

/// Every record of `store`, decoded into fresh tables. `strict`: a record this version cannot
/// read fails the load (at start: refuse to serve with a silently missing role or key);
/// otherwise it is left out and logged (a reload of a running replica, which must converge).
pub(super) async fn load_tables(store: &dyn Store, strict: bool) -> Result<Tables, AwsError> {
    let started = std::time::Instant::now();
    let mut tables = Tables::default();
    let mut unreadable = None;
    let mut records = 0_usize;
    // Associations (possibly millions) are collected and indexed at once at the end.
    let mut associations = Vec::new();
    let mut sink = |r: RecordRef<'_>| {
        records += 1;
        let res = if r.kind == kind::POD_IDENTITY_ASSOCIATION {
            entry(r).map(|e| associations.push((r.account.to_owned(), r.id.to_owned(), e)))
        } else {
            apply_record(&mut tables, r, true)
        };
        match res {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) if strict => {
                unreadable = Some(format!("{} {:?}: {e}", r.kind, r.id));
                ControlFlow::Break(())
            }
            Err(e) => {
                tracing::error!(kind = r.kind, id = r.id, error = %e, "unreadable record left out of the reload");
                ControlFlow::Continue(())
            }
        }
    };
    store.for_each_record(&mut sink).await?;
    if let Some(e) = unreadable {
        // A record this version cannot read is a bug or a downgrade; refuse to start
        // rather than serve with a silently missing role or key.
        tracing::error!(record = %e, "unreadable record");
        return Err(AwsError::service_failure());
    }
    tables.associations = Associations::from_records(associations);
    tracing::info!(
        records,
        associations = tables.associations.len(),
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "state loaded from the store"
    );
    Ok(tables)
}

/// The cached version of a record, if it is cached.
pub(super) fn cached_version(t: &Tables, kind: &str, account: &str, id: &str) -> Option<i64> {
    let key = || (account.to_owned(), id.to_owned());
    match kind {
        kind::ACCOUNT => t.accounts.get(id).map(|e| e.version),
        kind::ACCESS_KEY => t.access_keys.get(id).map(|e| e.version),
        kind::USER => t.users.get(&key()).map(|e| e.version),
        kind::ROLE => t.roles.get(&key()).map(|e| e.version),
        kind::POLICY => t.policies.get(&key()).map(|e| e.version),
        kind::OIDC_PROVIDER => t.providers.get(&key()).map(|e| e.version),
        kind::CLUSTER => t.clusters.get(&key()).map(|e| e.version),
        kind::SESSION_KEY => id
            .parse::<u32>()
            .ok()
            .and_then(|n| t.session_keys.get(&n))
            .map(|e| e.version),
        kind::POD_IDENTITY_ASSOCIATION => t.associations.get_by_id(account, id).map(|e| e.version),
        kind::ACCESS_ENTRY => t.access_entries.get(&key()).map(|e| e.version),
        _ => None,
    }
}

fn entry<T: serde::de::DeserializeOwned>(r: RecordRef<'_>) -> Result<Entry<T>, serde_json::Error> {
    Ok(Entry {
        version: r.version,
        value: Arc::new(serde_json::from_str(r.doc)?),
    })
}

/// Puts a record into the tables. `loading`: the tables are being filled from an empty state
/// with each key once, so there is no previous version to unindex.
pub(super) fn apply_record(
    t: &mut Tables,
    r: RecordRef<'_>,
    loading: bool,
) -> Result<(), serde_json::Error> {
    let key = || (r.account.to_owned(), r.id.to_owned());
    match r.kind {
        kind::ACCOUNT => {
            t.accounts.insert(r.id.to_owned(), entry(r)?);
        }
        kind::ACCESS_KEY => {
            t.access_keys.insert(r.id.to_owned(), entry(r)?);
        }
        kind::USER => {
            t.users.insert(key(), entry(r)?);
        }
        kind::ROLE => {
            t.roles.insert(key(), entry(r)?);
        }
        kind::POLICY => {
            t.policies.insert(key(), entry(r)?);
        }
        kind::OIDC_PROVIDER => {
            t.providers.insert(key(), entry(r)?);
        }
        kind::CLUSTER => {
            let e: Entry<model::Cluster> = entry(r)?;
            if e.value.hosted {
                t.issuers.insert(e.value.oidc_id.clone(), key());
            }
            t.clusters.insert(key(), e);
        }
        kind::SESSION_KEY => {
            let e: Entry<model::SessionKey> = entry(r)?;
            t.session_keys.insert(e.value.id, e);
            t.session_keys_generation += 1;
        }
        kind::POD_IDENTITY_ASSOCIATION => {
            t.associations.insert(r.account, r.id, entry(r)?, loading);
        }
        kind::ACCESS_ENTRY => {
            t.access_entries.insert(key(), entry(r)?);
        }
        other => tracing::warn!(kind = other, "unknown record kind ignored"),
    }
    Ok(())
}

pub(super) fn remove_record(t: &mut Tables, kind: &str, account: String, id: String) {
    match kind {
        kind::ACCOUNT => {
            t.accounts.remove(&id);
        }
        kind::ACCESS_KEY => {
            t.access_keys.remove(&id);
        }
        kind::USER => {
            t.users.remove(&(account, id));
        }
        kind::ROLE => {
            t.roles.remove(&(account, id));
        }
        kind::POLICY => {
            t.policies.remove(&(account, id));
        }
        kind::OIDC_PROVIDER => {
            t.providers.remove(&(account, id));
        }
        kind::CLUSTER => {
            if let Some(e) = t.clusters.remove(&(account, id)) {
                t.issuers.remove(&e.value.oidc_id);
            }
        }
        kind::SESSION_KEY => {
            if let Ok(n) = id.parse::<u32>() {
                t.session_keys.remove(&n);
                t.session_keys_generation += 1;
            }
        }
        kind::POD_IDENTITY_ASSOCIATION => {
            t.associations.remove(&account, &id);
        }
        kind::ACCESS_ENTRY => {
            t.access_entries.remove(&(account, id));
        }
        _ => {}
    }
}
