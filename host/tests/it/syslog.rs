//! Syslog (issue 12, point 5): Debian's `logger` over TCP (octet-counted
//! and newline framing) and UDP, RFC 5424 and RFC 3164, and rsyslog
//! forwarding with `omfwd`. On the shared address the tenant comes from the
//! key in the structured data; on a tenant's own address every message is
//! the tenant's. The key is never stored.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::private::{Process, free_port, rsyslogd};
use crate::common::{Server, distributed_flags, embedded_with};

fn logger(args: &[&str]) {
    let out = Command::new("logger").args(args).output().expect("logger (bsdutils)");
    assert!(
        out.status.success(),
        "logger {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sd_key(key: &str) -> String {
    format!("key=\"{key}\"")
}

async fn ship(s: &Server, run: &str, keyed: u16, bound: u16) {
    let alpha = s.tenant(&format!("alpha{run}")).await;
    let beta = s.tenant(&format!("beta{run}")).await;
    let (keyed, bound) = (keyed.to_string(), bound.to_string());
    let key_param = sd_key(&alpha);
    let keyed_args = |transport: &str, framing: Option<&str>, tag: &str, priority: &str, text: &str| {
        let mut a = vec![
            transport.to_string(),
            "--server".into(),
            "127.0.0.1".into(),
            "--port".into(),
            keyed.clone(),
            "--rfc5424".into(),
            "--sd-id".into(),
            "loggerhub@32473".into(),
            "--sd-param".into(),
            key_param.clone(),
            "--tag".into(),
            tag.into(),
            "--priority".into(),
            priority.into(),
        ];
        a.extend(framing.map(str::to_string));
        a.push(text.into());
        a
    };
    for args in [
        keyed_args("--tcp", Some("--octet-count"), "web", "user.err", "tcp octet counted"),
        keyed_args("--tcp", None, "web", "user.warning", "tcp newline framed"),
        keyed_args("--udp", None, "worker", "local3.info", "udp keyed"),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        logger(&args);
    }
    // Without a key on the shared address: dropped, and counted.
    logger(&[
        "--udp",
        "--server",
        "127.0.0.1",
        "--port",
        &keyed,
        "--rfc5424",
        "no key",
    ]);
    // On beta's own address, RFC 3164, no key needed.
    logger(&[
        "--udp",
        "--server",
        "127.0.0.1",
        "--port",
        &bound,
        "--rfc3164",
        "--tag",
        "cron",
        "--priority",
        "cron.notice",
        "nightly job done",
    ]);
    logger(&[
        "--tcp",
        "--server",
        "127.0.0.1",
        "--port",
        &bound,
        "--tag",
        "cron",
        "tcp on beta's port",
    ]);

    let got = s.hits(&alpha, "/v1/logs?limit=100", 3).await;
    let by = |m: &str| {
        got.iter()
            .find(|h| h["message"] == m)
            .unwrap_or_else(|| panic!("{m}: {got:?}"))
    };
    assert_eq!(
        (
            by("tcp octet counted")["level"].as_str(),
            by("tcp octet counted")["service"].as_str()
        ),
        (Some("ERROR"), Some("web"))
    );
    assert_eq!(by("tcp newline framed")["level"], "WARN");
    let udp = by("udp keyed");
    assert_eq!(
        (udp["service"].as_str(), udp["attributes"]["facility"].as_str()),
        (Some("worker"), Some("local3"))
    );
    assert!(udp["attributes"]["host"].is_string(), "{udp}");
    for h in &got {
        assert!(!h.to_string().contains(&alpha), "the key was stored: {h}");
    }
    let got = s.hits(&beta, "/v1/logs?limit=100", 2).await;
    let nightly = got
        .iter()
        .find(|h| h["message"] == "nightly job done")
        .expect("sent to beta's port");
    assert_eq!(
        (nightly["service"].as_str(), nightly["level"].as_str()),
        (Some("cron"), Some("INFO"))
    );
    assert!(got.iter().any(|h| h["message"] == "tcp on beta's port"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.metric("loggerhub_syslog_dropped_total{reason=\"no_key\"}").await >= 1.0);
    let (_, all) = s.get(&alpha, "/v1/search?q=key").await;
    assert_eq!(all["hits"].as_array().map(Vec::len), Some(0), "{all}");
}

fn syslog_flags(run: &str, keyed: u16, bound: u16) -> Vec<String> {
    vec![
        "--syslog-listen".into(),
        format!("127.0.0.1:{keyed}"),
        "--syslog-tenant".into(),
        format!("beta{run}=127.0.0.1:{bound}"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn logger_over_tcp_and_udp_embedded() {
    let (keyed, bound) = (free_port(), free_port());
    let flags = syslog_flags("e", keyed, bound);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (_d, s) = embedded_with(&flags).await;
    ship(&s, "e", keyed, bound).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logger_over_tcp_and_udp_distributed() {
    let run = format!("{}", std::process::id());
    let (keyed, bound) = (free_port(), free_port());
    let mut flags = distributed_flags(&format!("syslog{run}"));
    flags.extend(syslog_flags(&run, keyed, bound));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(&dir.path().join("data"), &flags).await;
    ship(&s, &run, keyed, bound).await;
}

/// rsyslog as a plain process: imtcp in, omfwd out to LoggerHub over TCP
/// with octet counting, the key in an RFC 5424 template.
fn rsyslog_forwarder(dir: &Path, port: u16, target: u16, key: &str) -> Process {
    let rules = format!(
        r#"template(name="loggerhub" type="string"
  string="<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% %PROCID% %MSGID% [loggerhub@32473 key=\"{key}\"] %msg%\n")
ruleset(name="fwd") {{
  action(type="omfwd" target="127.0.0.1" port="{target}" protocol="tcp" TCP_Framing="octet-counted" template="loggerhub")
}}
input(type="imtcp" port="{port}" ruleset="fwd")
"#
    );
    rsyslogd(dir, &rules, port)
}

#[tokio::test(flavor = "multi_thread")]
async fn rsyslog_forwards_with_omfwd() {
    let keyed = free_port();
    let flags = ["--syslog-listen".to_string(), format!("127.0.0.1:{keyed}")];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (_d, s) = embedded_with(&flags).await;
    let key = s.tenant("rsyslogfwd").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let _rsyslog = rsyslog_forwarder(dir.path(), port, keyed, &key);
    logger(&[
        "--tcp",
        "--server",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--tag",
        "nginx",
        "--priority",
        "daemon.crit",
        "upstream timed out",
    ]);
    let got = s.hits(&key, "/v1/logs?service=nginx", 1).await;
    let h: &Value = &got[0];
    assert_eq!(
        (h["message"].as_str(), h["level"].as_str()),
        (Some("upstream timed out"), Some("FATAL")),
        "{h}"
    );
    assert_eq!(h["attributes"]["facility"], "daemon");
}
