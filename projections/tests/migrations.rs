//! Read-model migrations racing on one fresh SQLite file: from one pool (several
//! runners of one process) and from separate pools (as separate processes would).

use futures::future::join_all;
use mpc_projections::ReadModels;

async fn tables(models: &ReadModels) -> usize {
    let ReadModels::Sqlite(pool) = models else {
        unreachable!("an SQLite path opens SQLite");
    };
    sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'session_status'",
    )
    .fetch_one(pool)
    .await
    .unwrap() as usize
}

#[tokio::test]
async fn concurrent_migrations_on_one_sqlite_pool_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("models.sqlite").display().to_string();
    let models = ReadModels::connect(&path).await.unwrap();
    let results = join_all((0..8).map(|_| {
        let models = models.clone();
        tokio::spawn(async move { models.migrate().await })
    }))
    .await;
    for result in results {
        result.unwrap().unwrap();
    }
    assert_eq!(tables(&models).await, 1);
}

#[tokio::test]
async fn concurrent_migrations_from_separate_connections_to_one_sqlite_file_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("models.sqlite").display().to_string();
    let mut handles = Vec::new();
    for _ in 0..8 {
        handles.push(ReadModels::connect(&path).await.unwrap());
    }
    let results = join_all(
        handles
            .iter()
            .cloned()
            .map(|models| tokio::spawn(async move { models.migrate().await })),
    )
    .await;
    for result in results {
        result.unwrap().unwrap();
    }
    assert_eq!(tables(&handles[0]).await, 1);
}
