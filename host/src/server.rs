//! Wires the services of one `loggerhub serve` process: opens the backends,
//! starts the processor, serves the API until shutdown.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::ingest::Ingest;
use crate::pipeline::plugin_store::PluginStore;
use crate::pipeline::{DeadLetters, Processor, Registry};
use crate::queue::Queue;
use crate::queue::local::LocalQueue;
use crate::queue::redis::RedisQueue;
use crate::runtime::Runtime;
use crate::search::SearchIndex;
use crate::search::opensearch::OpenSearchIndex;
use crate::search::service::Reader;
use crate::search::tantivy::TantivyIndex;
use crate::stores::MetadataStore;
use crate::stores::raw::RawStore;
use crate::telemetry::Metrics;
use crate::tenants::Tenants;

/// The admin token: from config, else the one kept in the data dir, else a
/// new one (written there). Returns the token and whether it is new.
pub fn admin_token(config: &Config) -> anyhow::Result<(String, bool)> {
    if let Some(t) = &config.admin_token {
        return Ok((t.clone(), false));
    }
    let path = config.data_dir.join("admin_token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok((t.trim().to_string(), false)),
        _ => {
            let token = format!("lha_{}", hex::encode(rand::random::<[u8; 24]>()));
            write_private(&path, &token).with_context(|| format!("writing {}", path.display()))?;
            Ok((token, true))
        }
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

/// Runs every service on `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let data = &config.data_dir;
    std::fs::create_dir_all(data).with_context(|| format!("creating data dir {}", data.display()))?;
    let (admin_token, _) = admin_token(&config)?;

    let meta: Arc<dyn MetadataStore> = crate::stores::open_metadata(config.backends.database_url.as_deref(), data)
        .await
        .context("opening the metadata store")?;
    let raw = RawStore::open(config.backends.object_store_url.as_deref(), data).context("opening the raw store")?;
    let index: Arc<dyn SearchIndex> = match &config.backends.opensearch_url {
        Some(url) => Arc::new(
            OpenSearchIndex::open(url, &config.backends.index_prefix)
                .await
                .context("connecting to OpenSearch")?,
        ),
        None => Arc::new(TantivyIndex::open(data.join("index")).context("opening the index")?),
    };
    // The local queue is closed (its writer thread stopped) at shutdown.
    let mut local_queue = None;
    let queue: Arc<dyn Queue> = match &config.backends.redis_url {
        Some(url) => Arc::new(
            RedisQueue::open(
                url,
                &config.backends.queue_name,
                config.limits.queue_max_bytes,
                config.backends.claim_idle,
            )
            .await
            .context("connecting to the Redis queue")?,
        ),
        None => {
            let q =
                LocalQueue::open(&data.join("queue"), config.limits.queue_max_bytes).context("opening the queue")?;
            local_queue = Some(q.clone());
            q
        }
    };
    let metrics = Arc::new(Metrics::default());

    let roles = config.roles;
    let runtime = Runtime::with_cache(&data.join("compiled")).context("starting the wasm runtime")?;
    let mut registry = Registry::new(data.join("plugins"), runtime).context("compiling the built-in plugins")?;
    // With a shared object store, processors share tenants' plugins through
    // it; with the embedded one there is only this process.
    let plugin_store = (roles.processor && config.backends.object_store_url.is_some())
        .then(|| Arc::new(PluginStore::new(raw.object_store(), registry.dir().to_path_buf())));
    if let Some(store) = &plugin_store {
        registry = registry.with_plugin_store(store.clone());
    }
    let registry = Arc::new(registry);
    // In a cluster every processor lists and replays every processor's
    // letters: they go where the raw logs go.
    let dead_letters = Arc::new(match config.backends.object_store_url {
        Some(_) => DeadLetters::shared(raw.object_store()),
        None => DeadLetters::local(&data.join("dead-letters")).context("opening the dead-letter directory")?,
    });
    let _watcher = if roles.processor {
        Some(crate::pipeline::hot_reload::watch(registry.clone()).context("watching the plugin directory")?)
    } else {
        None
    };
    let processor = Arc::new(Processor {
        queue: queue.clone(),
        registry: registry.clone(),
        meta: meta.clone(),
        raw: raw.clone(),
        index: index.clone(),
        metrics: metrics.clone(),
        dead_letters: dead_letters.clone(),
        config: config.processor.clone(),
    });

    let state = AppState {
        tenants: Arc::new(Tenants::new(meta.clone())),
        ingest: Arc::new(Ingest::new(queue.clone(), metrics.clone())),
        reader: Arc::new(Reader::new(meta.clone(), raw.clone(), index.clone())),
        meta,
        raw,
        index,
        queue,
        metrics,
        registry,
        dead_letters,
        admin_token: admin_token.into(),
        roles,
        max_body_bytes: config.limits.max_body_bytes,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let processing = roles.processor.then(|| {
        tokio::spawn(async move {
            if let Some(store) = plugin_store {
                store.first_pull(&stop_rx).await;
                tokio::spawn(store.run(stop_rx.clone()));
            }
            processor.run(stop_rx).await
        })
    });
    tracing::info!(addr = %listener.local_addr()?, data_dir = %data.display(), roles = %roles.names(), "loggerhub serving");
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("http server")?;
    let _ = stop_tx.send(true);
    if let Some(p) = processing {
        let _ = p.await;
    }
    if let Some(q) = local_queue {
        q.close();
    }
    tracing::info!("loggerhub stopped");
    Ok(())
}
