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
//! `loggerhub-bench`. Then the built-in text parser the same way, on lines
//! of every format its corpus holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lh_plugin_default_enricher::DefaultEnricher;
use lh_plugin_line_parser::LineParser;
use loggerhub::runtime::{Limits, Runtime, Stage, builtin};
use loggerhub_codec::{self as codec, Level, Record, RecordRef};
use loggerhub_plugin_sdk::testing::TestHost;
use loggerhub_plugin_sdk::{Enricher, Parser, RawInput};

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

/// As `time`, for a call that needs `&mut` (a guest instance).
async fn time_mut(budget: Duration, mut once: impl AsyncFnMut()) -> f64 {
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
        let wasm = time_mut(budget, async || {
            std::hint::black_box(inst.enrich(&encoded).await.unwrap_or_default());
        })
        .await;
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
    text_parser(&rt).await
}

/// The lines of the line parser's corpus (every format it knows), in turn.
fn text_lines(n: usize) -> String {
    let corpus: Vec<&str> = CORPUS
        .iter()
        .flat_map(|f| f.lines())
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.splitn(3, '\t').nth(2))
        .collect();
    let mut out = String::new();
    for line in corpus.iter().cycle().take(n) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

const CORPUS: &[&str] = &[
    include_str!("../../../plugins/line-parser/corpus/access-log.tsv"),
    include_str!("../../../plugins/line-parser/corpus/android-logcat.tsv"),
    include_str!("../../../plugins/line-parser/corpus/apache-error-2.4.tsv"),
    include_str!("../../../plugins/line-parser/corpus/hadoop.tsv"),
    include_str!("../../../plugins/line-parser/corpus/java-util-logging.tsv"),
    include_str!("../../../plugins/line-parser/corpus/klog.tsv"),
    include_str!("../../../plugins/line-parser/corpus/loghub-first-lines.tsv"),
    include_str!("../../../plugins/line-parser/corpus/nginx-error.tsv"),
    include_str!("../../../plugins/line-parser/corpus/python-logging.tsv"),
    include_str!("../../../plugins/line-parser/corpus/syslog-rfc3164.tsv"),
    include_str!("../../../plugins/line-parser/corpus/syslog-rfc5424.tsv"),
    include_str!("../../../plugins/line-parser/corpus/spring-boot.tsv"),
];

/// The built-in text parser on lines of every format it knows: in WASM as
/// the pipeline calls it, and the same code natively (parse, then encode
/// the batch, as the guest does).
async fn text_parser(rt: &Runtime) -> anyhow::Result<()> {
    let plugin = rt.compile("line-parser", Stage::Parser, builtin::LINE_PARSER)?;
    let mut inst = rt
        .instantiate(&plugin, "bench", Arc::default(), Limits::default())
        .await?;
    let host = TestHost::new();
    println!("\ntext parser (built-in line-parser), lines of its corpus's formats\n");
    println!("| lines per body | native ns/line | wasm ns/line | wasm / native |");
    println!("|---|---|---|---|");
    for lines in [256usize, 4096] {
        let body = text_lines(lines);
        let budget = Duration::from_millis(1500);
        let (host, body_ref) = (&host, &body);
        let native = time(budget, || async move {
            let input = RawInput {
                content_type: "text/plain",
                service: None,
                body: body_ref.as_bytes(),
            };
            let out = LineParser::parse(input, host).unwrap_or_default();
            std::hint::black_box(codec::encode(&out));
        })
        .await;
        let wasm = time_mut(budget, async || {
            std::hint::black_box(
                inst.parse("text/plain", None, body.as_bytes())
                    .await
                    .unwrap_or_default(),
            );
        })
        .await;
        println!(
            "| {lines} | {:.0} | {:.0} | {:.2}× |",
            native / lines as f64,
            wasm / lines as f64,
            wasm / native
        );
    }
    Ok(())
}
