//! The raw store conformance suite: the local directory and any S3 API must
//! behave the same (host/tests/stores.rs runs it on both).

use loggerhub::model::{Level, LogRecord};
use loggerhub::stores::raw::RawStore;

fn rec(tenant: &str, i: usize, full_log: String) -> LogRecord {
    LogRecord {
        id: ulid::Ulid::new().to_string(),
        tenant: tenant.into(),
        service: "api".into(),
        level: Level::Warn,
        timestamp: 1_760_099_196_000_000_000 + i as i64,
        received_at: 1_760_099_197_000_000_000,
        message: format!("message {i}"),
        full_log: format!("{full_log}\n\"quoted\" é"),
        language: Some("rust".into()),
        attributes: vec![("k".into(), "v".into())],
        raw_path: None,
    }
}

pub async fn run(store: &RawStore, tenant: &str) {
    store.ping().await.expect("ping");

    // One object per batch, under the tenant's prefix and the date of its
    // newest record, whose time (ms) ends the name; small batches stay
    // plain.
    let batch = ulid::Ulid::new();
    let small = [rec(tenant, 0, "x".into())];
    let refs: Vec<&LogRecord> = small.iter().collect();
    let key = store.put_batch(tenant, batch, &refs).await.expect("put");
    assert!(key.starts_with(&format!("logs/{tenant}/")), "{key}");
    assert!(key.contains(&format!("/2025/10/10/{batch}_")), "{key}");
    assert!(key.ends_with("-1760099196000.ndjson"), "{key}");
    let back = store.read(&format!("{key}#1")).await.expect("read").expect("found");
    assert_eq!(back.full_log, small[0].full_log);
    assert_eq!((back.id.as_str(), back.level), (small[0].id.as_str(), Level::Warn));
    assert_eq!(back.attributes, small[0].attributes);
    assert_eq!(back.raw_path.as_deref(), Some(format!("{key}#1").as_str()));

    // Writing the same batch again (a replay) gives the same key and bytes.
    assert_eq!(store.put_batch(tenant, batch, &refs).await.expect("replay"), key);

    // Large batches are gzipped; every line reads back.
    let big: Vec<LogRecord> = (0..50).map(|i| rec(tenant, i, "y".repeat(200))).collect();
    let key = store
        .put_batch(tenant, ulid::Ulid::new(), &big.iter().collect::<Vec<_>>())
        .await
        .expect("put");
    assert!(key.ends_with(".ndjson.gz"), "{key}");
    for line in [1, 25, 50] {
        let back = store
            .read(&format!("{key}#{line}"))
            .await
            .expect("read")
            .expect("found");
        assert_eq!(back.message, format!("message {}", line - 1));
        assert_eq!(back.timestamp, big[line - 1].timestamp);
    }

    // Absent lines and objects are `None`, not errors; malformed paths are.
    assert!(store.read(&format!("{key}#51")).await.expect("read").is_none());
    assert!(
        store
            .read(&format!("logs/{tenant}/2020/01/01/none.ndjson#1"))
            .await
            .expect("read")
            .is_none()
    );
    assert!(store.read("no-line-number").await.is_err());

    retention_and_purge(store, tenant).await;
}

fn at(tenant: &str, ms: i64) -> LogRecord {
    LogRecord {
        timestamp: ms * 1_000_000,
        ..rec(tenant, 0, String::new())
    }
}

/// An object goes once its newest record has expired, never before; a
/// purge takes every object of the tenant and none of a tenant whose slug
/// starts like it.
async fn retention_and_purge(store: &RawStore, tenant: &str) {
    let other = format!("{tenant}x");
    let day = 86_400_000;
    let (old, young) = (at(tenant, 10 * day + 5), at(tenant, 12 * day));
    let k_old = store.put_batch(tenant, ulid::Ulid::new(), &[&old]).await.expect("put");
    let k_mixed = store
        .put_batch(tenant, ulid::Ulid::new(), &[&old, &young])
        .await
        .expect("put");
    let theirs = at(&other, 10 * day);
    store
        .put_batch(&other, ulid::Ulid::new(), &[&theirs])
        .await
        .expect("put");
    assert!(k_old.starts_with(&format!("logs/{tenant}/1970/01/11/")), "{k_old}");
    assert!(k_mixed.starts_with(&format!("logs/{tenant}/1970/01/13/")), "{k_mixed}");

    // Up to (not including) the old record's time, nothing goes.
    assert_eq!(
        store.delete_expired(tenant, old.timestamp, 100).await.expect("sweep"),
        0
    );
    let past_old = old.timestamp + 1_000_000;
    assert_eq!(store.delete_expired(tenant, past_old, 100).await.expect("sweep"), 1);
    assert!(store.read(&format!("{k_old}#1")).await.expect("read").is_none());
    assert!(store.read(&format!("{k_mixed}#2")).await.expect("read").is_some());
    let theirs_bytes = store.stored_bytes(&other).await.expect("bytes");
    assert!(theirs_bytes > 0, "the other tenant's object went");
    let before = store.stored_bytes(tenant).await.expect("bytes");
    assert!(before > 0);

    // A purge, in bounded steps.
    while store.purge(tenant, 1).await.expect("purge") > 0 {}
    assert_eq!(store.stored_bytes(tenant).await.expect("bytes"), 0);
    assert_eq!(store.stored_bytes(&other).await.expect("bytes"), theirs_bytes);
    while store.purge(&other, 100).await.expect("purge") > 0 {}
}
