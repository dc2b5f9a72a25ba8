//! The store on SQLite and on PostgreSQL: the same code and migrations.

use scalebot::config::StoreSettings;
use scalebot::store::{AuditEntry, AuditId, Backend, Store};

use crate::support::app::{Options, init, spawn_app};

/// A PostgreSQL URL with a schema of its own, so tests never see each
/// other's rows. Uses `SCALEBOT_TEST_POSTGRES` or the machine's server.
pub async fn postgres_url() -> String {
    let base = std::env::var("SCALEBOT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {base} is needed for the store tests: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .expect("create schema");
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

async fn exercise(url: &str, expected: Backend) {
    init();
    let settings = StoreSettings {
        url: url.to_owned(),
        max_connections: 4,
    };
    let store = Store::connect(&settings)
        .await
        .expect("connects and migrates");
    assert_eq!(store.backend(), expected);
    // Migrations are idempotent: a second replica starting up is fine.
    let again = Store::connect(&settings).await.expect("connects again");
    store.ping().await.expect("ping");

    let id = AuditId::new();
    store
        .audit(AuditEntry {
            id: id.0.clone(),
            at_ms: 1_700_000_000_000,
            platform: "slack".into(),
            actor: "U1".into(),
            channel: "C1".into(),
            command: "throttles persona-api".into(),
            outcome: "accepted".into(),
            detail: String::new(),
            finished_ms: None,
        })
        .await
        .expect("queued");
    store
        .audit_finish(&id, "ok", "posted")
        .await
        .expect("queued");
    store.flush().await.expect("flushed");
    let rows = again
        .audit_entries(10)
        .await
        .expect("read through the other pool");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome, "ok");
    assert_eq!(rows[0].detail, "posted");
    assert!(rows[0].finished_ms.is_some());

    // Many concurrent writers: every row arrives.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.audit(AuditEntry {
                id: format!("bulk-{i}"),
                at_ms: 1_700_000_000_001 + i,
                platform: "slack".into(),
                actor: "U2".into(),
                channel: "C2".into(),
                command: "help".into(),
                outcome: "answered".into(),
                detail: String::new(),
                finished_ms: None,
            })
            .await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("queued");
    }
    store.flush().await.expect("flushed");
    assert_eq!(store.audit_entries(1000).await.expect("read").len(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("new-dir-file.db").display());
    exercise(&url, Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store() {
    let url = postgres_url().await;
    exercise(&url, Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_app_on_postgres() {
    let url = postgres_url().await;
    let app = spawn_app(Options {
        store_url: Some(url),
        ..Options::default()
    })
    .await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.command("help", "U1", "C1").await;
    let audit = app.audit().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].command, "help");
    assert!(
        audit[0].finished_ms.is_some(),
        "help has no job behind it: finished when answered"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_is_a_clear_startup_error() {
    init();
    let settings = StoreSettings {
        url: "postgres://nobody:secret-pw@127.0.0.1:1/none".into(),
        max_connections: 1,
    };
    let err = Store::connect(&settings).await.err().expect("fails");
    let text = err.to_string();
    assert!(text.contains("cannot be opened"), "{text}");
    assert!(
        !text.contains("secret-pw"),
        "the password is not echoed: {text}"
    );
}
