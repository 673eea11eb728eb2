//! The CLI client: mirrors the admin and search API over HTTP.

use anyhow::{Context, bail};
use clap::Subcommand;
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
    /// Full-text search (API key: LOGGERHUB_API_KEY).
    Search {
        /// Query: terms, "phrases", -exclusions, service:x, level:error, attributes.k:v
        query: String,
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        level: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Subcommand)]
pub enum TenantCmd {
    /// Create a tenant; prints its first API key (shown once).
    Create {
        slug: String,
    },
    List,
}

#[derive(Subcommand)]
pub enum KeyCmd {
    /// Add a key; scopes default to all of ingest, search, plugins.
    Create {
        tenant: String,
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    List {
        tenant: String,
    },
    Revoke {
        tenant: String,
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
                    TenantCmd::Create { slug } => {
                        call(
                            http.post(&base)
                                .bearer_auth(&admin)
                                .json(&serde_json::json!({"slug": slug})),
                        )
                        .await?
                    }
                    TenantCmd::List => call(http.get(&base).bearer_auth(&admin)).await?,
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
            ClientCommand::Search {
                query,
                service,
                level,
                limit,
                conn,
            } => {
                let key = token("LOGGERHUB_API_KEY")?;
                let mut params = vec![("q", query), ("limit", limit.to_string())];
                params.extend(service.map(|s| ("service", s)));
                params.extend(level.map(|l| ("level", l)));
                let v = call(
                    http.get(format!("{}/v1/search", conn.url.trim_end_matches('/')))
                        .bearer_auth(&key)
                        .query(&params),
                )
                .await?;
                print(&v);
            }
        }
        Ok(())
    }
}
