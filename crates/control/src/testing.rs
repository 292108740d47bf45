//! What the crate's tests share: a control plane over an in-memory store, with the first
//! account bootstrapped, and that account's root.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::auth::{Caller, RequestMeta};
use crate::crypto::MasterKey;
use crate::{Clock, Config, Control};

/// A control plane with `config` and `clock` over a fresh in-memory SQLite store, account
/// `account` bootstrapped; its root and an empty request meta.
pub(crate) async fn root_control(
    config: Config,
    clock: Arc<dyn Clock>,
    account: &str,
) -> (Control, Caller, RequestMeta) {
    let store = podiam_store::SqliteStore::memory().await.unwrap();
    let (master, _) = MasterKey::generate().unwrap();
    let c = Control::open(config, Arc::new(store), master, clock)
        .await
        .unwrap();
    c.bootstrap(Some(account)).await.unwrap().unwrap();
    let root = Caller::Root {
        account: account.into(),
    };
    (c, root, RequestMeta::default())
}
