//! What a plugin must pass before it may run a tenant's batches, in order:
//! it compiles, it imports only what the host grants, it exports its
//! stage's world, and a dry run on a sample batch neither traps, times
//! out, nor answers something malformed. The same checks serve uploads,
//! hot reload and `loggerhub plugin validate`; a failure names its check.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use loggerhub_codec::{self as codec, Level, Record};

use tokio::sync::Semaphore;

use super::RegistryError;
use crate::runtime::{Limits, Plugin, Runtime, RuntimeError, Stage};

/// Uploads compiled at once per process: compiling is CPU-heavy, and
/// uploads must not take the cores from the pipelines.
pub const COMPILE_SLOTS: usize = 1;
/// The longest an upload's compile may take before the upload is refused.
pub const COMPILE_TIMEOUT: Duration = Duration::from_secs(60);

/// [`compile`] off the async runtime, at most [`COMPILE_SLOTS`] at once,
/// refused after `timeout`. (A compile that runs over keeps its slot until
/// it ends: the next uploads wait rather than pile onto the cores.)
pub async fn compile_bounded(
    runtime: &Runtime,
    slots: &Arc<Semaphore>,
    name: &str,
    stage: Stage,
    wasm: &[u8],
    timeout: Duration,
) -> Result<Arc<Plugin>, RegistryError> {
    let too_slow = || RegistryError::Invalid {
        check: "compile",
        message: format!("compiling took longer than {} s", timeout.as_secs()),
    };
    let started = std::time::Instant::now();
    let permit = tokio::time::timeout(timeout, slots.clone().acquire_owned())
        .await
        .map_err(|_| too_slow())?
        .map_err(|_| RegistryError::Io(std::io::Error::other("compile slots closed")))?;
    let (runtime, name, wasm) = (runtime.clone(), name.to_string(), wasm.to_vec());
    let task = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        compile(&runtime, &name, stage, &wasm)
    });
    match tokio::time::timeout(timeout.saturating_sub(started.elapsed()), task).await {
        Ok(Ok(result)) => result,
        Ok(Err(panicked)) => Err(RegistryError::Io(std::io::Error::other(format!("compile: {panicked}")))),
        Err(_) => Err(too_slow()),
    }
}

/// Compiles `wasm` as a `stage` component: the compile, imports and world
/// checks.
pub fn compile(runtime: &Runtime, name: &str, stage: Stage, wasm: &[u8]) -> Result<Arc<Plugin>, RegistryError> {
    runtime.compile(name, stage, wasm).map_err(|e| {
        let check = match e {
            RuntimeError::Link { .. } => "imports",
            RuntimeError::WrongWorld { .. } => "world",
            _ => "compile",
        };
        RegistryError::Invalid {
            check,
            message: e.to_string(),
        }
    })
}

/// Runs `plugin` once on a sample batch: it must not trap, time out or
/// answer something malformed (refusing the sample is an answer).
pub async fn dry_run(
    runtime: &Runtime,
    tenant: &str,
    stage: Stage,
    plugin: &Arc<Plugin>,
    config: Arc<HashMap<String, String>>,
    limits: Limits,
) -> Result<(), RegistryError> {
    let fail = |e: RuntimeError| RegistryError::Invalid {
        check: "dry_run",
        message: e.to_string(),
    };
    let mut inst = runtime
        .instantiate(plugin, tenant, config, limits)
        .await
        .map_err(fail)?;
    let sample = sample_batch(tenant);
    let result = match stage {
        Stage::Parser => {
            let body = b"{\"message\":\"dry run\",\"level\":\"info\"}\n2025-10-10T12:00:00Z ERROR dry run\n";
            match inst.parse("application/x-ndjson", Some("dry-run"), body).await {
                Ok(out) => well_formed(plugin, &out),
                // Refusing the sample is an answer, not a fault.
                Err(RuntimeError::Refused { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Stage::Enricher => match inst.enrich(&codec::encode(&sample)).await {
            Ok(out) => well_formed(plugin, &out),
            Err(RuntimeError::Refused { .. }) => Ok(()),
            Err(e) => Err(e),
        },
        Stage::Router => inst.route(&codec::encode(&sample), sample.len()).await.map(drop),
    };
    result.map_err(fail)
}

/// Whether a stage's answer is a batch the host can read.
fn well_formed(plugin: &Plugin, out: &[u8]) -> Result<(), RuntimeError> {
    codec::decode(out).map(drop).map_err(|e| RuntimeError::BadOutput {
        plugin: plugin.name().to_string(),
        message: e.to_string(),
    })
}

fn sample_batch(tenant: &str) -> Vec<Record> {
    (0..3)
        .map(|i| Record {
            id: format!("01J00000000000000000000DR{i}"),
            tenant: tenant.to_string(),
            service: "dry-run".into(),
            level: Level::ALL[i % 6],
            timestamp: 1_760_099_196_000_000_000,
            message: format!("dry run {i} from 10.0.0.{i} for a@b.io"),
            full_log: format!("dry run {i}"),
            language: None,
            attributes: vec![("k".into(), "v".into())],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::builtin;

    fn example(path: &str) -> Vec<u8> {
        std::fs::read(path).expect("example component (built by build.rs)")
    }

    fn check(e: RegistryError) -> &'static str {
        match e {
            RegistryError::Invalid { check, .. } => check,
            other => panic!("expected a failed check, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn compiles_are_bounded_in_number_and_time() {
        let rt = Runtime::new().expect("runtime");
        let pii = example(builtin::PII_REDACTOR_PATH);
        let slots = Arc::new(Semaphore::new(COMPILE_SLOTS));
        let ok = compile_bounded(&rt, &slots, "pii", Stage::Enricher, &pii, COMPILE_TIMEOUT).await;
        assert!(ok.is_ok());
        // Every slot taken: the upload waits, then is refused in time.
        let held = slots.clone().acquire_owned().await.expect("slot");
        let started = std::time::Instant::now();
        let refused = compile_bounded(&rt, &slots, "pii", Stage::Enricher, &pii, Duration::from_millis(200)).await;
        assert_eq!(check(refused.expect_err("no slot")), "compile");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(held);
        // A compile longer than its time is refused (the cranelift run
        // itself takes longer than a millisecond).
        let slow = compile_bounded(&rt, &slots, "pii", Stage::Enricher, &pii, Duration::from_millis(1)).await;
        assert_eq!(check(slow.expect_err("too slow")), "compile");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn each_check_names_itself() {
        let rt = Runtime::new().expect("runtime");
        assert_eq!(
            check(compile(&rt, "x", Stage::Enricher, b"not wasm").expect_err("garbage")),
            "compile"
        );
        let pii = example(builtin::PII_REDACTOR_PATH);
        assert_eq!(
            check(compile(&rt, "x", Stage::Router, &pii).expect_err("an enricher")),
            "world"
        );
        let ok = compile(&rt, "pii", Stage::Enricher, &pii).expect("compiles");
        dry_run(&rt, "acme", Stage::Enricher, &ok, Arc::default(), Limits::default())
            .await
            .expect("the example passes its dry run");
        for (stage, wasm) in [
            (Stage::Parser, builtin::JSON_PARSER),
            (Stage::Parser, builtin::LINE_PARSER),
            (Stage::Enricher, builtin::DEFAULT_ENRICHER),
            (Stage::Router, builtin::DEFAULT_ROUTER),
        ] {
            let p = compile(&rt, "builtin", stage, wasm).expect("built-in compiles");
            dry_run(&rt, "acme", stage, &p, Arc::default(), Limits::default())
                .await
                .expect("built-ins pass their dry run");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_plugin_that_traps_on_the_sample_fails_its_dry_run() {
        let rt = Runtime::new().expect("runtime");
        let hostile = compile(
            &rt,
            "hostile",
            Stage::Enricher,
            &example(builtin::HOSTILE_ENRICHER_PATH),
        )
        .expect("compiles");
        let config: HashMap<String, String> = [("mode", "panic"), ("every", "true")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let e = dry_run(
            &rt,
            "acme",
            Stage::Enricher,
            &hostile,
            Arc::new(config),
            Limits::default(),
        )
        .await
        .expect_err("traps");
        assert_eq!(check(e), "dry_run");
        let bad_router = compile(&rt, "bad", Stage::Router, &example(builtin::BAD_ROUTER_PATH)).expect("compiles");
        dry_run(
            &rt,
            "acme",
            Stage::Router,
            &bad_router,
            Arc::default(),
            Limits::default(),
        )
        .await
        .expect("no poison in the sample: it answers well");
    }
}
