//! Wires the services of one `loggerhub serve` process: opens each backend
//! through its module's factory, starts the processor, serves the API until
//! shutdown. `run` is also what tests call with a listener on
//! `127.0.0.1:0`.

use std::future::Future;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::config::QueueBackend;
use crate::ingest::Ingest;
use crate::ingest::rate::shared::RedisRates;
use crate::ingest::rate::{LocalRates, RateLimiter};
use crate::pipeline::{InstanceBudget, Processor};
use crate::plugins::Plugins;
use crate::search::service::Reader;
use crate::search::tail::Tail;
use crate::stores::dead_letters::DeadLetters;
use crate::stores::raw::RawStore;
use crate::syslog;
use crate::telemetry::Metrics;
use crate::tenants::Tenants;
use crate::tenants::plans::Plans;
use crate::upkeep::Upkeep;
use crate::usage::Meter;
use crate::{queue, search, stores};

/// Runs every service of `config` on `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let data = &config.data_dir;
    std::fs::create_dir_all(data).with_context(|| format!("creating data dir {}", data.display()))?;
    let (admin_token, _) = admin_token(&config)?;
    let plans = match &config.plans_file {
        Some(path) => Plans::from_file(path)?,
        None => Plans::builtin(),
    };
    let plans = Arc::new(
        plans
            .with_default(&config.default_plan)
            .context("--default-plan (LOGGERHUB_DEFAULT_PLAN)")?,
    );
    let b = &config.backends;
    let roles = config.roles;

    let stores::Metadata { accounts, logs: meta } = stores::open_metadata(&b.metadata)
        .await
        .context("opening the metadata store")?;
    let raw = RawStore::open(&b.raw).context("opening the raw store")?;
    let index = search::open(&b.index).context("opening the search index")?;
    let queue = queue::open(&b.queue, config.limits.queue_max_bytes)
        .await
        .context("opening the queue")?;
    let dead_letters = Arc::new(
        DeadLetters::open(&b.raw, &raw, data)
            .context("opening the dead letters")?
            .with_caps(config.limits.dead_letter_cap, config.limits.dead_letter_max_bytes),
    );
    let plugins = Plugins::open(data, &raw, b.raw.is_shared(), roles.processor, &config.plugins)
        .context("opening the plugins")?;
    let metrics = Arc::new(Metrics::default());
    let meter = Arc::new(Meter::new(meta.clone(), metrics.clone()));

    // With Redis, every ingest process takes from the same rate buckets
    // (and every processor charges what it stored to them).
    let rates: Arc<dyn RateLimiter> = match &b.queue {
        QueueBackend::Redis { url, name, .. } => Arc::new(
            RedisRates::open(url, name)
                .await
                .context("opening the rate limits in Redis")?,
        ),
        QueueBackend::Local(_) => Arc::new(LocalRates::default()),
    };
    let processor = Arc::new(Processor {
        queue: queue.clone(),
        registry: plugins.registry.clone(),
        meta: meta.clone(),
        accounts: accounts.clone(),
        raw: raw.clone(),
        index: index.clone(),
        metrics: metrics.clone(),
        dead_letters: dead_letters.clone(),
        budget: InstanceBudget::new(
            config.processor.instance_budget_bytes,
            config.processor.instance_idle,
            metrics.clone(),
        ),
        config: config.processor.clone(),
        deleting: Default::default(),
        meter: meter.clone(),
        plans: plans.clone(),
        stored_rates: rates.clone(),
        held: Default::default(),
    });
    let upkeep = Arc::new(Upkeep {
        meta: meta.clone(),
        accounts: accounts.clone(),
        raw: raw.clone(),
        index: index.clone(),
        queue: queue.clone(),
        registry: plugins.registry.clone(),
        dead_letters: dead_letters.clone(),
        plans: plans.clone(),
        metrics: metrics.clone(),
        rates: rates.clone(),
        interval: config.upkeep_interval,
    });
    let tenants = Arc::new(Tenants::new(accounts, plans));
    let ingest = Arc::new(Ingest::new(queue.clone(), metrics.clone(), rates, meter.clone()));
    let syslog = if roles.ingest && !config.syslog.is_empty() {
        let listeners = syslog::Listeners::bind(&config.syslog)
            .await
            .context("syslog listeners")?;
        tracing::info!(addrs = ?listeners.addrs(), "syslog listening (TCP and UDP)");
        Some((
            listeners,
            Arc::new(syslog::Syslog::new(tenants.clone(), ingest.clone(), metrics.clone())),
        ))
    } else {
        None
    };
    let state = AppState::new(crate::api::Shared {
        tenants,
        ingest,
        meter: meter.clone(),
        reader: Arc::new(Reader::new(meta.clone(), raw.clone(), index.clone())),
        tail: Tail::new(meta.clone()),
        meta,
        raw,
        index,
        queue: queue.clone(),
        metrics,
        registry: plugins.registry.clone(),
        dead_letters,
        admin_token: admin_token.into(),
        operator_token: config.operator_token.clone().map(Into::into),
        roles,
        max_body_bytes: config.limits.max_body_bytes,
        reads: Arc::default(),
        uploads: Arc::new(crate::api::reads::ReadSlots::uploads()),
        conversions: Arc::new(crate::api::reads::ReadSlots::conversions()),
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let shared_plugins = plugins.shared.clone();
    let metering = tokio::spawn(meter.clone().run(stop_rx.clone()));
    let upkeeping = roles.processor.then(|| tokio::spawn(upkeep.run(stop_rx.clone())));
    let syslogging = syslog.map(|(listeners, service)| tokio::spawn(listeners.serve(service, stop_rx.clone())));
    let processing = roles.processor.then(|| {
        tokio::spawn(async move {
            if let Some(store) = shared_plugins {
                store.first_pull(&stop_rx).await;
                tokio::spawn(store.run(stop_rx.clone()));
            }
            processor.run(stop_rx).await
        })
    });
    tracing::info!(addr = %listener.local_addr()?, data_dir = %data.display(), roles = %roles.names(), "loggerhub serving");
    api::serve(listener, state, shutdown).await.context("http server")?;
    let _ = stop_tx.send(true);
    if let Some(p) = processing {
        let _ = p.await;
    }
    if let Some(u) = upkeeping {
        let _ = u.await;
    }
    if let Some(s) = syslogging {
        let _ = s.await;
    }
    let _ = metering.await;
    queue.close();
    drop(plugins);
    tracing::info!("loggerhub stopped");
    Ok(())
}

/// `loggerhub serve`: binds, says where it runs (and the admin token when
/// it made one), and runs until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let (token, _) = admin_token(&config)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("--listen (LOGGERHUB_LISTEN): binding {}", config.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    // Written with errors ignored: nobody reading stdout must not stop the
    // server.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "LoggerHub ({}) is running at {url}", config.roles.names());
    if config.admin_token.is_none() {
        let _ = writeln!(
            out,
            "admin token: {token}  (kept in {})",
            config.data_dir.join("admin_token").display()
        );
    }
    let _ = writeln!(
        out,
        "create a tenant: curl -X POST {url}/v1/admin/tenants -H 'Authorization: Bearer <admin token>' -H 'content-type: application/json' -d '{{\"slug\":\"acme\"}}'"
    );
    let _ = out.flush();
    drop(out);
    run(config, listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

/// The admin token: from config, else the one kept in the data dir, else a
/// new one (written there). Returns the token and whether it is new.
pub fn admin_token(config: &Config) -> anyhow::Result<(String, bool)> {
    if let Some(t) = &config.admin_token {
        return Ok((t.clone(), false));
    }
    let path = config.data_dir.join("admin_token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => {
            keep_private(&path)?;
            Ok((t.trim().to_string(), false))
        }
        _ => {
            let token = format!("lha_{}", hex::encode(rand::random::<[u8; 24]>()));
            write_private(&path, &token).with_context(|| format!("writing {}", path.display()))?;
            Ok((token, true))
        }
    }
}

/// Writes a secret readable by the owner alone. `mode` only applies to a
/// file it creates: one that was there (made by hand, or by an older
/// version) is narrowed before the secret goes in.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.set_len(0)?;
    f.write_all(contents.as_bytes())
}

/// Narrows a secret file that others can read to its owner, saying so.
fn keep_private(path: &Path) -> anyhow::Result<()> {
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "the admin token file was readable by others; narrowed to 0600");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("narrowing {} to 0600", path.display()))?;
    }
    Ok(())
}
