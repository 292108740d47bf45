//! Helpers shared by the store's integration tests: temporary directories, and a schema of its
//! own on the test PostgreSQL server for each PostgreSQL test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    reason = "test helpers; not every test file uses each of them"
)]

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor};

/// A fresh, empty directory under the system's temporary directory.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "podiam-store-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fresh schema on the test server, as connect options whose `search_path` is that schema;
/// `None` (after a notice) when `PODIAM_TEST_POSTGRES_URL` is unset, and a panic then under CI
/// (`CI=true`), where the PostgreSQL backend must be exercised rather than skipped.
pub async fn pg_schema(test: &str) -> Option<(PgConnectOptions, String)> {
    let Ok(url) = std::env::var("PODIAM_TEST_POSTGRES_URL") else {
        let why = "PODIAM_TEST_POSTGRES_URL is unset (scripts/postgres.sh starts a server)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: {why}; under CI=true a test that cannot reach its database fails");
        }
        eprintln!("SKIPPED {test}: {why}");
        return None;
    };
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!(
        "podiam_t_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    c.execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    c.close().await.unwrap();
    let opts = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    Some((opts, url))
}

/// Drops the schema of `opts` made by [`pg_schema`].
pub async fn drop_schema(opts: &PgConnectOptions, url: &str) {
    let schema = opts
        .get_options()
        .and_then(|o| o.strip_prefix("-c search_path="))
        .unwrap_or_default()
        .to_owned();
    if schema.starts_with("podiam_t_") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        c.execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
            .await
            .unwrap();
        c.close().await.unwrap();
    }
}
