//! The CLI client: mirrors the admin and search API over HTTP, and runs
//! the plugin author's tools (new, validate, test) locally.

mod import;
mod show;
mod tail;
mod template;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use loggerhub::model::Slug;
use loggerhub::plugins::{PluginName, validate};
use loggerhub::runtime::{Limits, Runtime, Stage};
use loggerhub::tenants;
use loggerhub::tenants::plans::PlanName;
use loggerhub_codec::{self as codec, Record};
use serde_json::Value;

#[derive(clap::Args)]
pub struct Conn {
    /// The LoggerHub to talk to.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080", env = "LOGGERHUB_URL")]
    url: String,
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Manage tenants (admin token: LOGGERHUB_ADMIN_TOKEN).
    Tenant {
        #[command(subcommand)]
        cmd: TenantCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Manage a tenant's API keys (admin token: LOGGERHUB_ADMIN_TOKEN).
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Plugins: validate and test locally; push, list, roll back on a server
    /// (API key with the plugins scope: LOGGERHUB_API_KEY).
    Plugin {
        #[command(subcommand)]
        cmd: PluginCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Full-text search, newest first (API key: LOGGERHUB_API_KEY).
    Search {
        /// Query: terms, "phrases", -exclusions, service:x, level:error,
        /// attributes.k:v; all logs when empty.
        #[arg(default_value = "")]
        query: String,
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        level: Option<String>,
        /// RFC 3339 times.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// Logs to print; past a page, the next pages are fetched.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=MAX_SEARCH as u64))]
        limit: u64,
        #[command(flatten)]
        show: show::Args,
        #[command(flatten)]
        conn: Conn,
    },
    /// Follow new logs as they arrive, coloured by level, after the last
    /// few that match (API key: LOGGERHUB_API_KEY).
    Tail {
        /// The search syntax; all new logs when absent.
        query: Option<String>,
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        level: Option<String>,
        /// Matching logs shown before following.
        #[arg(long, short = 'n', default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=1000))]
        lines: u64,
        #[command(flatten)]
        show: show::Args,
        #[command(flatten)]
        conn: Conn,
    },
    /// Send log files (NDJSON or text, gzip or not), resumably
    /// (API key: LOGGERHUB_API_KEY).
    Import {
        #[command(flatten)]
        args: import::ImportArgs,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Most logs `search` prints in one run.
const MAX_SEARCH: usize = 100_000;

#[derive(Subcommand)]
pub enum TenantCmd {
    /// Create a tenant; prints its first API key (shown once).
    Create {
        #[arg(value_parser = slug_arg)]
        slug: Slug,
        /// One of the server's plans (`loggerhub tenant plans`); its default
        /// plan if not given.
        #[arg(long, value_parser = plan_arg)]
        plan: Option<PlanName>,
    },
    List,
    /// Move a tenant to another plan.
    SetPlan {
        #[arg(value_parser = slug_arg)]
        slug: Slug,
        #[arg(value_parser = plan_arg)]
        plan: PlanName,
    },
    /// The server's plans and what each allows.
    Plans,
    /// One tenant: its plan and state.
    Show {
        #[arg(value_parser = slug_arg)]
        slug: Slug,
    },
    /// Refuse the tenant's ingest (403 tenant_suspended); reads still work.
    Suspend {
        #[arg(value_parser = slug_arg)]
        slug: Slug,
    },
    /// Accept the tenant's ingest again.
    Resume {
        #[arg(value_parser = slug_arg)]
        slug: Slug,
    },
    /// Delete the tenant and all it has, in every store. Its keys stop
    /// working at once; the data goes in the background.
    Delete {
        #[arg(value_parser = slug_arg)]
        slug: Slug,
    },
}

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

#[derive(Subcommand)]
pub enum KeyCmd {
    /// Add a key; scopes default to all of ingest, search, plugins.
    Create {
        #[arg(value_parser = slug_arg)]
        tenant: Slug,
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    List {
        #[arg(value_parser = slug_arg)]
        tenant: Slug,
    },
    Revoke {
        #[arg(value_parser = slug_arg)]
        tenant: Slug,
        #[arg(value_parser = key_id_arg)]
        key_id: String,
    },
}

fn token(var: &str) -> anyhow::Result<String> {
    std::env::var(var)
        .ok()
        .filter(|t| !t.is_empty())
        .with_context(|| format!("set {var}"))
}

async fn call(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let resp = req.send().await.context("cannot reach LoggerHub")?;
    let status = resp.status();
    let text = resp.text().await?;
    let body: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    if !status.is_success() {
        let msg = body["error"]["message"]
            .as_str()
            .map_or_else(|| body.to_string(), str::to_string);
        bail!("{status}: {msg}");
    }
    Ok(body)
}

fn print(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

impl ClientCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        match self {
            ClientCommand::Tenant { cmd, conn } => {
                let admin = token("LOGGERHUB_ADMIN_TOKEN")?;
                let base = format!("{}/v1/admin/tenants", conn.url.trim_end_matches('/'));
                let v = match cmd {
                    TenantCmd::Create { slug, plan } => {
                        let mut body = serde_json::json!({"slug": slug.as_str()});
                        if let Some(plan) = plan {
                            body["plan"] = plan.as_str().into();
                        }
                        call(http.post(&base).bearer_auth(&admin).json(&body)).await?
                    }
                    TenantCmd::List => call(http.get(&base).bearer_auth(&admin)).await?,
                    TenantCmd::SetPlan { slug, plan } => {
                        call(
                            http.patch(format!("{base}/{slug}"))
                                .bearer_auth(&admin)
                                .json(&serde_json::json!({"plan": plan.as_str()})),
                        )
                        .await?
                    }
                    TenantCmd::Plans => {
                        let url = format!("{}/v1/admin/plans", conn.url.trim_end_matches('/'));
                        call(http.get(url).bearer_auth(&admin)).await?
                    }
                    TenantCmd::Show { slug } => call(http.get(format!("{base}/{slug}")).bearer_auth(&admin)).await?,
                    TenantCmd::Suspend { ref slug } | TenantCmd::Resume { ref slug } => {
                        let state = if matches!(cmd, TenantCmd::Suspend { .. }) {
                            "suspended"
                        } else {
                            "active"
                        };
                        call(
                            http.patch(format!("{base}/{slug}"))
                                .bearer_auth(&admin)
                                .json(&serde_json::json!({"state": state})),
                        )
                        .await?
                    }
                    TenantCmd::Delete { slug } => {
                        call(http.delete(format!("{base}/{slug}")).bearer_auth(&admin)).await?
                    }
                };
                print(&v);
            }
            ClientCommand::Key { cmd, conn } => {
                let admin = token("LOGGERHUB_ADMIN_TOKEN")?;
                let base = format!("{}/v1/admin/tenants", conn.url.trim_end_matches('/'));
                let v = match cmd {
                    KeyCmd::Create { tenant, scopes } => {
                        call(
                            http.post(format!("{base}/{tenant}/keys"))
                                .bearer_auth(&admin)
                                .json(&serde_json::json!({"scopes": scopes})),
                        )
                        .await?
                    }
                    KeyCmd::List { tenant } => {
                        call(http.get(format!("{base}/{tenant}/keys")).bearer_auth(&admin)).await?
                    }
                    KeyCmd::Revoke { tenant, key_id } => {
                        call(
                            http.delete(format!("{base}/{tenant}/keys/{key_id}"))
                                .bearer_auth(&admin),
                        )
                        .await?;
                        serde_json::json!({"revoked": key_id})
                    }
                };
                print(&v);
            }
            ClientCommand::Plugin { cmd, conn } => plugin(cmd, &conn, &http).await?,
            ClientCommand::Search {
                query,
                service,
                level,
                from,
                to,
                limit,
                show,
                conn,
            } => {
                let key = token("LOGGERHUB_API_KEY")?;
                let mut params = vec![("q", query)];
                params.extend(service.map(|s| ("service", s)));
                params.extend(level.map(|l| ("level", l)));
                params.extend(from.map(|t| ("from", t)));
                params.extend(to.map(|t| ("to", t)));
                let printer = show.printer();
                let url = format!("{}/v1/search", conn.url.trim_end_matches('/'));
                let mut left = limit as usize;
                let mut cursor: Option<String> = None;
                let mut out = std::io::stdout().lock();
                while left > 0 {
                    let mut page_params = params.clone();
                    page_params.push(("limit", left.min(1000).to_string()));
                    page_params.extend(cursor.take().map(|c| ("cursor", c)));
                    let page = call(http.get(&url).bearer_auth(&key).query(&page_params)).await?;
                    let hits = page["hits"].as_array().cloned().unwrap_or_default();
                    for h in &hits {
                        printer.record(&mut out, h)?;
                    }
                    left = left.saturating_sub(hits.len());
                    cursor = page["next_cursor"].as_str().map(str::to_string);
                    if cursor.is_none() || hits.is_empty() {
                        break;
                    }
                }
            }
            ClientCommand::Tail {
                query,
                service,
                level,
                lines,
                show,
                conn,
            } => {
                let key = token("LOGGERHUB_API_KEY")?;
                let printer = show.printer();
                let args = tail::TailArgs {
                    url: &conn.url,
                    key: &key,
                    query,
                    service,
                    level,
                    last: lines as usize,
                };
                tail::run(args, &printer).await?;
            }
            ClientCommand::Import { args, conn } => {
                let key = token("LOGGERHUB_API_KEY")?;
                import::run(args, &conn.url, &key).await?;
            }
        }
        Ok(())
    }
}

fn record_json(r: &Record) -> Value {
    serde_json::json!({
        "id": r.id, "tenant": r.tenant, "service": r.service, "level": r.level.as_str(),
        "timestamp": codec::time::format_rfc3339(r.timestamp), "message": r.message,
        "full_log": r.full_log, "language": r.language,
        "attributes": r.attributes.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
    })
}

// Every name the CLI puts into a URL is parsed first, as the server would:
// a path built from them cannot reach another endpoint or tenant.
fn stage_arg(s: &str) -> Result<Stage, String> {
    Stage::parse(s).ok_or_else(|| format!("no stage {s:?}: use parser, enricher or router"))
}

fn plugin_name_arg(s: &str) -> Result<PluginName, String> {
    PluginName::parse(s).map_err(|e| e.to_string())
}

fn slug_arg(s: &str) -> Result<Slug, String> {
    Slug::parse(s).map_err(|e| e.to_string())
}

fn plan_arg(s: &str) -> Result<PlanName, String> {
    PlanName::parse(s).map_err(|e| e.to_string())
}

fn key_id_arg(s: &str) -> Result<String, String> {
    tenants::valid_key_id(s)
        .then(|| s.to_string())
        .ok_or_else(|| format!("{s:?} is not a key id (key_ and 26 letters or digits)"))
}

async fn plugin(cmd: PluginCmd, conn: &Conn, http: &reqwest::Client) -> anyhow::Result<()> {
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
