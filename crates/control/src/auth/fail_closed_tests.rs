//! A stored policy that no longer parses denies everything: skipping it could drop a Deny that
//! another policy's Allow would then win.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use crate::auth::Caller;
use crate::error::ErrorCode;
use crate::iam::PageReq;
use crate::{Config, SystemClock};

const ACCT: &str = "111122223333";
const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
const DENY_LIST_USERS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iam:ListUsers","Resource":"*"}]}"#;

#[tokio::test]
async fn an_unparseable_stored_policy_denies_rather_than_drops_its_deny() {
    let (c, root, m) =
        crate::testing::root_control(Config::default(), Arc::new(SystemClock), ACCT).await;
    c.create_user(&root, &m, "bob", None, None, vec![])
        .await
        .unwrap();
    c.put_user_policy(&root, &m, "bob", "allow", ALLOW_ALL.into())
        .await
        .unwrap();
    c.put_user_policy(&root, &m, "bob", "deny", DENY_LIST_USERS.into())
        .await
        .unwrap();
    let key = (ACCT.to_owned(), "bob".to_owned());
    let bob = || Caller::User {
        account: ACCT.into(),
        user: Arc::clone(&c.db.read().users[&key].value),
    };
    let page = PageReq::default();
    // As written: the Deny wins over the Allow; other actions are allowed.
    let e = c.list_users(&bob(), &m, None, &page).unwrap_err();
    assert_eq!(e.code, ErrorCode::AccessDenied, "{}", e.message);
    c.get_user(&bob(), &m, Some("bob")).unwrap();

    // The Deny's document as a store written by another version might hold it.
    {
        let mut t = c.db.tables_for_test();
        let entry = t.users.get_mut(&key).unwrap();
        let mut user = (*entry.value).clone();
        let deny = user
            .inline_policies
            .iter_mut()
            .find(|p| p.name == "deny")
            .unwrap();
        deny.document = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny""#.into();
        entry.value = Arc::new(user);
    }
    for e in [
        c.list_users(&bob(), &m, None, &page).unwrap_err(),
        c.get_user(&bob(), &m, Some("bob")).unwrap_err(),
    ] {
        assert_eq!(e.code, ErrorCode::AccessDenied, "{}", e.message);
    }
}
