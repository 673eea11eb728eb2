//! `make plugin-bench`: the cost of running a stage in WebAssembly against
//! the same Rust code called natively, per batch size.
//!
//! The stage is the built-in default enricher. The WASM side pays what the
//! pipeline pays per batch: encode the records, call the instance (the
//! guest decodes, enriches, encodes), decode the answer. The native side
//! calls the same `Enricher::enrich` on a clone of the records (the clone
//! stands in for the copy the host would otherwise not need, and is cheap
//! next to the work). Records are ~300 bytes as in `loggerhub-bench`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lh_plugin_default_enricher::DefaultEnricher;
use loggerhub::runtime::{Limits, Runtime, Stage, builtin};
use loggerhub_codec::{self as codec, Level, Record};
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
    let host = TestHost::new();
    println!("| batch | native ns/record | wasm ns/record | wasm / native | of which host encode+decode ns/record |");
    println!("|---|---|---|---|---|");
    for batch in [1usize, 16, 64, 256, 1024, 4096] {
        let recs = records(batch);
        let budget = Duration::from_millis(1500);
        let native = time(budget, || {
            let input = recs.clone();
            let host = &host;
            async move {
                let out = DefaultEnricher::enrich(input, host).unwrap_or_default();
                std::hint::black_box(out);
            }
        })
        .await;
        let recs_ref = &recs;
        let wasm = {
            let mut once = async || {
                let out = inst.enrich(codec::encode(recs_ref)).await.unwrap_or_default();
                std::hint::black_box(codec::decode(&out).unwrap_or_default());
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
        // The host's share of the WASM path: encoding the batch and decoding
        // the answer, without the call.
        let codec_only = time(budget, || async {
            std::hint::black_box(codec::decode(&codec::encode(recs_ref)).unwrap_or_default());
        })
        .await;
        println!(
            "| {batch} | {:.0} | {:.0} | {:.2}× | {:.0} |",
            native / batch as f64,
            wasm / batch as f64,
            wasm / native,
            codec_only / batch as f64
        );
    }
    Ok(())
}
