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

    // One object per batch, under the tenant's prefix and the batch's date;
    // small batches stay plain.
    let batch = ulid::Ulid::new();
    let small = [rec(tenant, 0, "x".into())];
    let refs: Vec<&LogRecord> = small.iter().collect();
    let key = store.put_batch(tenant, batch, &refs).await.expect("put");
    assert!(key.starts_with(&format!("logs/{tenant}/")), "{key}");
    assert!(key.ends_with(&format!("{batch}.ndjson")), "{key}");
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
}
