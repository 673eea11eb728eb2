//! `loggerhub saved`: a tenant's saved searches, and what `search
//! --saved NAME` runs.

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum SavedCmd {
    /// The tenant's saved searches, by name.
    List,
    /// Keep a search under a name (a search of that name is replaced).
    Save(Box<SaveArgs>),
    /// One saved search, as JSON.
    Show { name: String },
    /// Forget a saved search.
    Delete { name: String },
}

#[derive(clap::Args)]
pub struct SaveArgs {
    /// 1 to 64 of a-z, 0-9, -, _ and ., starting with a letter or digit.
    name: String,
    /// The query (docs/QUERY.md); every log when empty.
    #[arg(default_value = "")]
    query: String,
    #[arg(long)]
    service: Option<String>,
    #[arg(long)]
    level: Option<String>,
    /// Relative to now: 15m, 1h, 6h, 24h, 7d or 30d.
    #[arg(long)]
    range: Option<String>,
    /// RFC 3339 times, instead of --range.
    #[arg(long)]
    from: Option<String>,
    #[arg(long)]
    to: Option<String>,
    /// The field the dashboard's histogram is stacked by.
    #[arg(long)]
    group: Option<String>,
}

/// A name as it goes in a path: checked here, so that `a?x` or
/// `../plugins/…` can never name another resource.
fn checked(name: &str) -> anyhow::Result<&str> {
    if loggerhub::tenants::saved::valid_saved_name(name) {
        Ok(name)
    } else {
        anyhow::bail!(
            "a saved search's name is 1 to 64 of a-z, 0-9, -, _ and ., starting with a letter or digit; got {name:?}"
        )
    }
}

impl SavedCmd {
    /// The request: method, path under /v1/saved-searches, body.
    pub fn request(&self) -> anyhow::Result<(reqwest::Method, String, Option<Value>)> {
        use reqwest::Method;
        Ok(match self {
            SavedCmd::List => (Method::GET, String::new(), None),
            SavedCmd::Show { name } => (Method::GET, format!("/{}", checked(name)?), None),
            SavedCmd::Delete { name } => (Method::DELETE, format!("/{}", checked(name)?), None),
            SavedCmd::Save(a) => {
                let SaveArgs {
                    name,
                    query,
                    service,
                    level,
                    range,
                    from,
                    to,
                    group,
                } = a.as_ref();
                let mut filters = serde_json::Map::new();
                for (k, v) in [
                    ("service", service),
                    ("level", level),
                    ("range", range),
                    ("from", from),
                    ("to", to),
                    ("group", group),
                ] {
                    if let Some(v) = v {
                        filters.insert(k.into(), json!(v));
                    }
                }
                (
                    Method::PUT,
                    format!("/{}", checked(name)?),
                    Some(json!({"query": query, "filters": filters})),
                )
            }
        })
    }
}

/// The list as a table: name, query, filters.
pub fn table(v: &Value) -> String {
    let rows: Vec<(String, String, String)> = v["saved_searches"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let filters = s["filters"]
                .as_object()
                .map(|f| {
                    f.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                s["query"].as_str().unwrap_or_default().to_string(),
                filters,
            )
        })
        .collect();
    let name_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(4);
    let query_w = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0).max(5);
    let mut out = format!("{:<name_w$}  {:<query_w$}  filters\n", "name", "query");
    for (name, query, filters) in rows {
        out.push_str(format!("{name:<name_w$}  {query:<query_w$}  {filters}").trim_end());
        out.push('\n');
    }
    out
}

/// A saved search as `search` runs it: its query, and its filters as the
/// search's parameters (a range becomes `from`, relative to now).
pub fn search_params(saved: &Value) -> anyhow::Result<Vec<(&'static str, String)>> {
    let f = &saved["filters"];
    let mut params = vec![("q", saved["query"].as_str().unwrap_or_default().to_string())];
    for k in ["service", "level", "from", "to"] {
        if let Some(v) = f[k].as_str() {
            params.push((k, v.to_string()));
        }
    }
    if let Some(range) = f["range"].as_str() {
        let secs = match range {
            "15m" => 900,
            "1h" => 3_600,
            "6h" => 21_600,
            "24h" => 86_400,
            "7d" => 604_800,
            "30d" => 2_592_000,
            other => anyhow::bail!("the saved search's range {other:?} is not one this CLI knows"),
        };
        let from = loggerhub::model::now_ns().saturating_sub(secs * 1_000_000_000);
        params.push(("from", loggerhub::model::format_ts(from)));
    }
    Ok(params)
}

/// `GET /v1/saved-searches/{name}`'s answer, with the name in the error.
pub async fn fetch(http: &reqwest::Client, url: &str, key: &str, name: &str) -> anyhow::Result<Value> {
    let name = checked(name)?;
    super::call(
        http.get(format!("{}/v1/saved-searches/{name}", url.trim_end_matches('/')))
            .bearer_auth(key),
    )
    .await
    .with_context(|| format!("saved search {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_search_runs_with_its_filters() {
        let saved = json!({"name": "e", "query": "level:error", "filters": {"service": "api", "range": "1h"}});
        let p = search_params(&saved).expect("params");
        assert_eq!(
            &p[..2],
            &[("q", "level:error".to_string()), ("service", "api".to_string())]
        );
        assert_eq!(p[2].0, "from");
        for bad in ["../plugins/parse/p", "a?x", "a#x", "A"] {
            let cmd = SavedCmd::Delete { name: bad.into() };
            assert!(cmd.request().is_err(), "{bad}");
        }
        let t = table(&json!({"saved_searches": [saved]}));
        assert_eq!(t.lines().nth(1), Some("e     level:error  range=1h service=api"));
    }
}
