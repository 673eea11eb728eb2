//! The CLI client: mirrors the admin and search API over HTTP, and runs
//! the plugin author's tools (new, validate, test) locally.

mod aggregate;
mod import;
mod plugin;
mod saved;
mod show;
mod tail;
mod template;

use anyhow::{Context, bail};
use clap::Subcommand;
use loggerhub::model::Slug;
use loggerhub::plugins::PluginName;
use loggerhub::runtime::Stage;
use loggerhub::tenants;
use loggerhub::tenants::plans::PlanName;
use serde_json::Value;

pub use plugin::PluginCmd;
use plugin::plugin;

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
        /// Run this saved search (`loggerhub saved list`); the query and
        /// the flags given here replace its own.
        #[arg(long)]
        saved: Option<String>,
        /// Logs to print; past a page, the next pages are fetched.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=MAX_SEARCH as u64))]
        limit: u64,
        #[command(flatten)]
        show: show::Args,
        #[command(flatten)]
        conn: Conn,
    },
    /// Saved searches: list, save, show, delete (API key:
    /// LOGGERHUB_API_KEY); `search --saved NAME` runs one.
    Saved {
        #[command(subcommand)]
        cmd: saved::SavedCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Count a search's logs by a field (its most common values), or a
    /// number attribute's statistics over them (API key: LOGGERHUB_API_KEY).
    Aggregate {
        #[command(flatten)]
        args: Box<aggregate::AggregateArgs>,
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
                saved,
                limit,
                show,
                conn,
            } => {
                let key = token("LOGGERHUB_API_KEY")?;
                let mut params = match &saved {
                    Some(name) => saved::search_params(&saved::fetch(&http, &conn.url, &key, name).await?)?,
                    None => Vec::new(),
                };
                let mut set = |k: &'static str, v: String| {
                    params.retain(|(p, _)| *p != k);
                    params.push((k, v));
                };
                if saved.is_none() || !query.is_empty() {
                    set("q", query);
                }
                for (k, v) in [("service", service), ("level", level), ("from", from), ("to", to)] {
                    if let Some(v) = v {
                        set(k, v);
                    }
                }
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
            ClientCommand::Saved { cmd, conn } => {
                let key = token("LOGGERHUB_API_KEY")?;
                let (method, path, body) = cmd.request()?;
                let url = format!("{}/v1/saved-searches{path}", conn.url.trim_end_matches('/'));
                let mut req = http.request(method, &url).bearer_auth(&key);
                if let Some(b) = body {
                    req = req.json(&b);
                }
                let v = call(req).await?;
                match cmd {
                    saved::SavedCmd::List => print!("{}", saved::table(&v)),
                    saved::SavedCmd::Delete { name } => println!("deleted {name}"),
                    _ => print(&v),
                }
            }
            ClientCommand::Aggregate { args, conn } => {
                let key = token("LOGGERHUB_API_KEY")?;
                let url = format!("{}/v1/aggregate", conn.url.trim_end_matches('/'));
                let v = call(http.post(&url).bearer_auth(&key).json(&args.body())).await?;
                if args.json {
                    print(&v);
                } else if args.stats.is_some() {
                    print!("{}", aggregate::stats_table(&v));
                } else if args.interval.is_some() {
                    print!("{}", aggregate::series_table(&v));
                } else {
                    print!("{}", aggregate::table(&v));
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
