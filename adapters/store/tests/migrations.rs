//! Migrations when several processes open one new database at once.

use store_adapter::testing::TestDatabase;
use store_adapter::{Migrations, Store};

static NONE: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("tests/no_migrations");

/// Replicas of a role started together on a new PostgreSQL database (`gamectl up
/// --database postgres` on its first start): every one opens it, none fails on another's
/// half-made tables.
#[tokio::test]
async fn replicas_opening_a_new_postgres_database_together_all_start() {
    let db = TestDatabase::postgres();
    let mut opens = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let url = db.url.clone();
        opens.spawn(async move { Store::open(&url, Migrations { sqlite: &NONE, postgres: &NONE }).await.map(drop) });
    }
    while let Some(opened) = opens.join_next().await {
        if let Err(e) = opened.expect("no panic") {
            panic!("a replica did not open the new database: {e}");
        }
    }
}
