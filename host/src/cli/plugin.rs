//! `loggerhub plugin`: the plugin author's tools, run locally (new,
//! validate, test), and a tenant's plugins on a server (push, list,
//! rollback).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use loggerhub::plugins::{PluginName, validate};
use loggerhub::runtime::{Limits, Runtime, Stage};
use loggerhub_codec::{self as codec, Record};
use serde_json::Value;

use super::{Conn, call, plugin_name_arg, print, stage_arg, template, token};

#[derive(Subcommand)]
pub enum PluginCmd {
    /// Start a new plugin project (Rust, on the SDK) in a new directory.
    New {
        #[arg(value_parser = plugin_name_arg)]
        name: PluginName,
        #[arg(long, default_value = "enricher", value_parser = stage_arg)]
        stage: Stage,
        /// Where to create it; defaults to ./<name>.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The SDK crate's directory (sdk-plugins/ of a LoggerHub checkout).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Check a component locally as an upload would: compile, imports, the
    /// stage's world, a dry run on a sample batch.
    Validate {
        #[arg(value_parser = stage_arg)]
        stage: Stage,
        file: PathBuf,
    },
    /// Run a component locally on an input file and print what it returns.
    Test {
        file: PathBuf,
        #[arg(long, default_value = "enricher", value_parser = stage_arg)]
        stage: Stage,
        /// NDJSON records (for a parser: the body; `.ndjson`/`.json` is sent
        /// as NDJSON, anything else as text/plain).
        #[arg(long)]
        input: PathBuf,
        /// Plugin configuration, `key=value`, repeatable.
        #[arg(long = "config")]
        config: Vec<String>,
    },
    /// Upload a new version (validated by the server before it is active).
    Push {
        #[arg(value_parser = stage_arg)]
        stage: Stage,
        #[arg(value_parser = plugin_name_arg)]
        name: PluginName,
        file: PathBuf,
    },
    List,
    /// Go back to the previous version, or to `--version`.
    Rollback {
        #[arg(value_parser = stage_arg)]
        stage: Stage,
        #[arg(value_parser = plugin_name_arg)]
        name: PluginName,
        #[arg(long)]
        version: Option<u32>,
    },
}

fn record_json(r: &Record) -> Value {
    serde_json::json!({
        "id": r.id, "tenant": r.tenant, "service": r.service, "level": r.level.as_str(),
        "timestamp": codec::time::format_rfc3339(r.timestamp), "message": r.message,
        "full_log": r.full_log, "language": r.language,
        "attributes": loggerhub::model::attributes_to_json(&r.attributes),
    })
}

pub(super) async fn plugin(cmd: PluginCmd, conn: &Conn, http: &reqwest::Client) -> anyhow::Result<()> {
    let base = format!("{}/v1/plugins", conn.url.trim_end_matches('/'));
    match cmd {
        PluginCmd::New { name, stage, dir, sdk } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(name.as_str()));
            template::create(name.as_str(), stage, &dir, sdk.as_deref())?;
            println!("created the {} plugin {name} in {}", stage.as_str(), dir.display());
            println!(
                "next: cd {} && cargo test && cargo build --release --target wasm32-wasip2",
                dir.display()
            );
        }
        PluginCmd::Validate { stage, file } => {
            let wasm = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let rt = Runtime::new()?;
            let plugin = validate::compile(&rt, "local", stage, &wasm)?;
            validate::dry_run(&rt, "local", stage, &plugin, Arc::default(), Limits::default()).await?;
            println!("{}: a valid {} plugin", file.display(), stage.as_str());
        }
        PluginCmd::Test {
            file,
            stage,
            input,
            config,
        } => {
            let wasm = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let body = std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
            let config: HashMap<String, String> = config
                .iter()
                .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                .collect::<Option<_>>()
                .context("--config takes key=value")?;
            let rt = Runtime::new()?;
            let plugin = rt.compile("local", stage, &wasm)?;
            let mut inst = rt
                .instantiate(&plugin, "local", Arc::new(config), Limits::default())
                .await?;
            let records = || codec::payload::parse_json(&body).map_err(|e| anyhow::anyhow!("{}: {e}", input.display()));
            match stage {
                Stage::Parser => {
                    let ext = input.extension().and_then(|e| e.to_str()).unwrap_or_default();
                    let ct = if matches!(ext, "ndjson" | "json") {
                        "application/x-ndjson"
                    } else {
                        "text/plain"
                    };
                    for r in codec::decode(&inst.parse(ct, None, &body).await?)? {
                        println!("{}", record_json(&r));
                    }
                }
                Stage::Enricher => {
                    for r in codec::decode(&inst.enrich(&codec::encode(&records()?)).await?)? {
                        println!("{}", record_json(&r));
                    }
                }
                Stage::Router => {
                    let recs = records()?;
                    let routes = inst.route(&codec::encode(&recs), recs.len()).await?;
                    for (r, route) in recs.iter().zip(routes) {
                        println!(
                            "{}",
                            serde_json::json!({"message": r.message, "metadata": route.metadata, "raw": route.raw, "index": route.index})
                        );
                    }
                }
            }
        }
        PluginCmd::Push { stage, name, file } => {
            let key = token("LOGGERHUB_API_KEY")?;
            let wasm = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            print(
                &call(
                    http.put(format!("{base}/{}/{name}", stage.as_str()))
                        .bearer_auth(&key)
                        .body(wasm),
                )
                .await?,
            );
        }
        PluginCmd::List => {
            let key = token("LOGGERHUB_API_KEY")?;
            print(&call(http.get(&base).bearer_auth(&key)).await?);
        }
        PluginCmd::Rollback { stage, name, version } => {
            let key = token("LOGGERHUB_API_KEY")?;
            let req = http
                .post(format!("{base}/{}/{name}/rollback", stage.as_str()))
                .bearer_auth(&key);
            let req = match version {
                Some(v) => req.json(&serde_json::json!({"version": v})),
                None => req,
            };
            print(&call(req).await?);
        }
    }
    Ok(())
}
