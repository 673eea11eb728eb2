//! `make plugin-bench`: the cost of running a stage in WebAssembly against
//! the same Rust code called natively, per batch size.
//!
//! The stage is the built-in default enricher. The WASM side pays what the
//! pipeline pays per enricher: the encoded batch is copied into the guest,
//! which decodes it (borrowing), enriches and encodes, and the answer is
//! copied out. (The pipeline encodes once after the parser and decodes once
//! after the router, however many stages run between: that cost is shown
//! apart, per pipeline.) The native side runs the very same code, compiled
//! natively, on the same encoded batch: decode, `Enricher::enrich`, encode.
//! A third column runs only `Enricher::enrich` natively, on records already
//! in memory, for reference. Records are ~300 bytes as in
//! `loggerhub-bench`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lh_plugin_default_enricher::DefaultEnricher;
use loggerhub::runtime::{Limits, Runtime, Stage, builtin};
use loggerhub_codec::{self as codec, Level, Record, RecordRef};
use loggerhub_plugin_sdk::Enricher;
use loggerhub_plugin_sdk::testing::TestHost;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            id: format!("01JBENCH{i:018}"),
            tenant: "bench".into(),
            service: if i % 3 == 0 {
                String::new()
            } else {
                format!(" svc-{} ", i % 8)
            },
            level: Level::ALL[i % 6],
            timestamp: 1_760_099_196_000_000_000 + i as i64,
            message: format!(
                "GET /api/v1/orders/{i} completed with status 200 in {}ms for user {} session s{:08x}",
                i % 900,
                i % 10_000,
                i * 7919
            ),
            full_log: format!(
                "request id r{i:010} handled by worker {} upstream latency {}ms",
                i % 32,
                i % 250
            ),
            language: Some("Rust".into()),
            attributes: vec![
                ("region".into(), "eu-west-1".into()),
                ("host".into(), format!("web-{:02}", i % 16)),
            ],
        })
        .collect()
}

/// Runs `f` repeatedly for about `budget`; returns ns per call.
async fn time<F, Fut>(budget: Duration, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..3 {
        f().await;
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        f().await;
        n += 1;
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rt = Runtime::new()?;
    let plugin = rt.compile("default-enricher", Stage::Enricher, builtin::DEFAULT_ENRICHER)?;
    let mut inst = rt
        .instantiate(&plugin, "bench", Arc::default(), Limits::default())
        .await?;
    // Instances are made once per worker, tenant and pipeline version and
    // reused; this is what making one costs (the pooling allocator's case).
    let started = Instant::now();
    let n = 200u32;
    for _ in 0..n {
        let fresh = rt
            .instantiate(&plugin, "bench", Arc::default(), Limits::default())
            .await?;
        std::hint::black_box(fresh);
    }
    println!(
        "instantiate (on-demand allocator): {:.1} µs\n",
        started.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
    let host = TestHost::new();
    println!(
        "| batch | native ns/record | wasm ns/record | wasm / native | enrich only, native ns/record | host encode+decode per pipeline ns/record |"
    );
    println!("|---|---|---|---|---|---|");
    for batch in [1usize, 16, 64, 256, 1024, 4096] {
        let recs = records(batch);
        let encoded = codec::encode(&recs);
        let budget = Duration::from_millis(1500);
        let host = &host;
        let native = time(budget, || {
            let encoded = &encoded;
            async move {
                let out = codec::decode_ref(encoded)
                    .ok()
                    .and_then(|b| DefaultEnricher::enrich(b, host).ok())
                    .unwrap_or_default();
                std::hint::black_box(codec::encode(&out));
            }
        })
        .await;
        let enrich_only = time(budget, || {
            let recs = &recs;
            async move {
                let views: Vec<RecordRef<'_>> = recs.iter().map(Record::borrowed).collect();
                std::hint::black_box(DefaultEnricher::enrich(views, host).unwrap_or_default());
            }
        })
        .await;
        let wasm = {
            let mut once = async || {
                let out = inst.enrich(&encoded).await.unwrap_or_default();
                std::hint::black_box(out);
            };
            for _ in 0..3 {
                once().await;
            }
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < budget {
                once().await;
                n += 1;
            }
            start.elapsed().as_nanos() as f64 / n as f64
        };
        let recs_ref = &recs;
        let codec_only = time(budget, || async {
            std::hint::black_box(codec::decode(&codec::encode(recs_ref)).unwrap_or_default());
        })
        .await;
        println!(
            "| {batch} | {:.0} | {:.0} | {:.2}× | {:.0} | {:.0} |",
            native / batch as f64,
            wasm / batch as f64,
            wasm / native,
            enrich_only / batch as f64,
            codec_only / batch as f64
        );
    }
    Ok(())
}
