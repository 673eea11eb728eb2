//! `loggerhub tail [QUERY]`: the last few matching logs, then new ones as
//! they arrive (`GET /v1/tail`, server-sent events), until interrupted.

use std::collections::HashSet;
use std::io::Write;

use anyhow::{Context, bail};
use serde_json::Value;

use super::show::Printer;

pub struct TailArgs<'a> {
    pub url: &'a str,
    pub key: &'a str,
    pub query: Option<String>,
    pub service: Option<String>,
    pub level: Option<String>,
    /// Matching logs shown before following, newest last.
    pub last: usize,
}

pub async fn run(args: TailArgs<'_>, printer: &Printer) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let base = args.url.trim_end_matches('/');
    let mut params: Vec<(&str, String)> = Vec::new();
    params.extend(args.query.clone().map(|q| ("q", q)));
    params.extend(args.service.clone().map(|s| ("service", s)));
    params.extend(args.level.clone().map(|l| ("level", l)));

    // Subscribe first, then read the backlog: a log landing in between is
    // in one or the other (or both, and shown once).
    let mut resp = open(&http, base, args.key, &params).await?;
    let mut shown = HashSet::new();
    let mut out = std::io::stdout().lock();
    if args.last > 0 {
        let mut q = params.clone();
        q.push(("limit", args.last.to_string()));
        let page = super::call(http.get(format!("{base}/v1/search")).bearer_auth(args.key).query(&q)).await?;
        let hits = page["hits"].as_array().cloned().unwrap_or_default();
        for r in hits.iter().rev() {
            shown.insert(r["id"].as_str().unwrap_or_default().to_string());
            printer.record(&mut out, r)?;
        }
        out.flush()?;
    }
    loop {
        let mut events = Events::default();
        while let Some(chunk) = resp.chunk().await.context("the tail ended")? {
            for (event, data) in events.feed(&chunk) {
                let v: Value = serde_json::from_str(&data).unwrap_or_default();
                match event.as_str() {
                    "logs" => {
                        for r in v["hits"].as_array().into_iter().flatten() {
                            let id = r["id"].as_str().unwrap_or_default();
                            // The backlog may hold what the stream sends first.
                            if !shown.contains(id) {
                                printer.record(&mut out, r)?;
                            }
                        }
                        shown.clear();
                        if let Some(n) = v["dropped"].as_u64().filter(|n| *n > 0) {
                            eprintln!("tail: {n} logs arrived faster than the tail reads; search finds them");
                        }
                    }
                    "lagged" => eprintln!("tail: this terminal fell behind; some logs were skipped"),
                    _ => {}
                }
            }
            out.flush()?;
        }
        // The server ends a tail after a while (so that the key is checked
        // again): follow on.
        resp = open(&http, base, args.key, &params).await?;
    }
}

async fn open(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    params: &[(&str, String)],
) -> anyhow::Result<reqwest::Response> {
    let resp = http
        .get(format!("{base}/v1/tail"))
        .bearer_auth(key)
        .query(params)
        .send()
        .await
        .context("cannot reach LoggerHub")?;
    if !resp.status().is_success() {
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or_default();
        bail!("{status}: {}", v["error"]["message"].as_str().unwrap_or_default());
    }
    Ok(resp)
}

/// Server-sent events from a byte stream: `(event, data)` per blank-line
/// terminated block; comments (keep-alives) are skipped.
#[derive(Default)]
struct Events {
    buf: Vec<u8>,
}

/// An event larger than this is not one LoggerHub sends.
const MAX_EVENT_BYTES: usize = 64 << 20;

impl Events {
    fn feed(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = find_blank_line(&self.buf) {
            let block: Vec<u8> = self.buf.drain(..end.1).collect();
            let text = String::from_utf8_lossy(&block[..end.0]);
            let (mut event, mut data) = (String::from("message"), String::new());
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim_start().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if !data.is_empty() {
                out.push((event, data));
            }
        }
        if self.buf.len() > MAX_EVENT_BYTES {
            self.buf.clear();
        }
        out
    }
}

/// The end of the first block (before the blank line, after it).
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_cut_at_blank_lines_across_chunks() {
        let mut e = Events::default();
        assert!(e.feed(b": keep-alive\n\nevent: logs\ndata: {\"hits\"").is_empty());
        let got = e.feed(b": []}\n\nevent: lagged\ndata: {\"batches\": 2}\n\n");
        assert_eq!(
            got,
            [
                ("logs".to_string(), "{\"hits\": []}".to_string()),
                ("lagged".to_string(), "{\"batches\": 2}".to_string())
            ]
        );
    }
}
