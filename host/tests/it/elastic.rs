//! The Elasticsearch/OpenSearch bulk API (issue 12, point 3), spoken by
//! the real clients: `elasticsearch` and `opensearch-py` from PyPI with
//! their `helpers.bulk`, and Debian's rsyslog through its omelasticsearch
//! output, fed by `logger`. Every record lands in the key's tenant with
//! the shippers' field names mapped; a client's retry stores nothing twice.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::private::{self, Process, free_port, rsyslogd};
use crate::common::{Server, distributed_with, embedded_with};

/// What `script` printed, run with the tools' Python.
fn python(script: &str, args: &[&str]) -> String {
    String::from_utf8_lossy(&private::python(script, args).stdout).into_owned()
}

const ELASTICSEARCH: &str = r#"
import json, sys
from elasticsearch import Elasticsearch, helpers
url, key = sys.argv[1], sys.argv[2]
# The API-key form an Elasticsearch deployment hands out: (id, key).
es = Elasticsearch(url, api_key=("shipper", key), http_compress=True)
info = es.info()
docs = [{"_index": "checkout", "_id": f"order-{i}",
         "_source": {"@timestamp": "2025-10-10T12:00:%02dZ" % i, "message": f"es client {i}",
                     "log.level": "warning" if i % 2 else "info", "user": {"id": i}}}
        for i in range(20)]
ok, errors = helpers.bulk(es, docs)
# A retry of the same bulk, as a shipper does when it saw no answer.
again, _ = helpers.bulk(es, docs)
print(json.dumps({"version": info["version"]["number"], "ok": ok, "again": again, "errors": errors}))
"#;

const OPENSEARCH: &str = r#"
import json, sys
from opensearchpy import OpenSearch, helpers
url, key = sys.argv[1], sys.argv[2]
client = OpenSearch(hosts=[url], http_auth=("admin", key))
docs = [{"_index": "payments", "_source": {"time": 1760097600 + i, "msg": f"os client {i}",
                                          "severity": "ERROR", "service": {"name": "billing"}}}
        for i in range(10)]
docs.append({"_index": "payments", "_source": {"no_message": True}})
docs.append({"_index": "payments", "_source": {"message": "someone else's", "tenant_id": "victim"}})
ok, errors = helpers.bulk(client, docs, raise_on_error=False)
print(json.dumps({"ok": ok, "errors": errors}))
"#;

async fn clients(s: &Server, run: &str) {
    let key = s.tenant(&format!("elastic{run}")).await;
    let out: Value = serde_json::from_str(&python(ELASTICSEARCH, &[&s.url(""), &key])).expect("json");
    assert_eq!(out["version"], "8.11.0", "{out}");
    assert_eq!(
        (out["ok"].as_u64(), out["again"].as_u64()),
        (Some(20), Some(20)),
        "{out}"
    );
    let got = s.hits(&key, "/v1/logs?service=checkout&limit=100", 20).await;
    let first = got.iter().find(|h| h["message"] == "es client 7").expect("record 7");
    assert_eq!(first["level"], "WARN");
    assert_eq!(first["timestamp"], "2025-10-10T12:00:07Z");
    // A nested object is dotted keys, as OpenSearch names its fields, and
    // a number stays one.
    assert_eq!(first["attributes"]["user.id"], 7, "{first}");
    // The retried bulk named the same records: once both bulks went
    // through the pipeline (40 records processed), exactly 20 are stored.
    s.drained(40).await;
    let (_, page) = s.get(&key, "/v1/logs?service=checkout&limit=100").await;
    assert_eq!(page["total"], 20, "the retry stored copies: {page}");
    assert_eq!(page["hits"].as_array().map(Vec::len), Some(20), "{page}");

    let out: Value = serde_json::from_str(&python(OPENSEARCH, &[&s.url(""), &key])).expect("json");
    assert_eq!(out["ok"], 10, "{out}");
    let errors = out["errors"].as_array().expect("errors");
    let status: Vec<u64> = errors.iter().filter_map(|e| e["index"]["status"].as_u64()).collect();
    assert_eq!(status, [400, 403], "{out}");
    let got = s.hits(&key, "/v1/logs?service=billing&limit=100", 10).await;
    assert!(got.iter().all(|h| h["level"] == "ERROR"), "{got:?}");
    assert!(got.iter().any(|h| h["timestamp"] == "2025-10-10T12:00:05Z"), "{got:?}");
    let (_, listed) = s.get(&key, "/v1/search?q=else").await;
    assert_eq!(listed["hits"].as_array().map(Vec::len), Some(0), "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn elasticsearch_and_opensearch_clients_embedded() {
    let (_d, s) = embedded_with(&[]).await;
    clients(&s, "e").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn elasticsearch_and_opensearch_clients_distributed() {
    let (_d, s, run) = distributed_with("elastic", &[]).await;
    clients(&s, &run).await;
}

/// rsyslog as a plain process: imtcp in, omelasticsearch out to `server`
/// with the key as the basic-auth password.
fn rsyslog(dir: &Path, port: u16, server: &str, key: &str) -> Process {
    let es_port = server.rsplit(':').next().expect("port");
    let rules = format!(
        r#"module(load="omelasticsearch")
template(name="doc" type="list" option.jsonf="on") {{
  property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="severity" name="syslogseverity-text" format="jsonf")
  property(outname="service" name="programname" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
}}
ruleset(name="ship") {{
  action(type="omelasticsearch" server="127.0.0.1" serverport="{es_port}" searchIndex="syslog"
         template="doc" bulkmode="on" uid="rsyslog" pwd="{key}" errorfile="{{d}}/es-errors.json")
}}
input(type="imtcp" port="{port}" ruleset="ship")
"#
    );
    rsyslogd(dir, &rules, port)
}

#[tokio::test(flavor = "multi_thread")]
async fn rsyslog_ships_through_omelasticsearch() {
    let (_d, s) = embedded_with(&[]).await;
    let key = s.tenant("rsys").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let _rsyslog = rsyslog(dir.path(), port, &s.url(""), &key);
    for (priority, text) in [("user.err", "disk quota exceeded"), ("user.warning", "slow request")] {
        let status = Command::new("logger")
            .args(["--tcp", "--server", "127.0.0.1", "--port", &port.to_string()])
            .args(["--rfc5424", "--tag", "billing-app", "--priority", priority, text])
            .status()
            .expect("logger");
        assert!(status.success());
    }
    let got = s.hits(&key, "/v1/logs?service=billing-app", 2).await;
    let quota = got
        .iter()
        .find(|h| h["message"] == "disk quota exceeded")
        .expect("sent line");
    assert_eq!(quota["level"], "ERROR", "{quota}");
    assert!(quota["attributes"]["host"].is_string(), "{quota}");
    let errors = dir.path().join("es-errors.json");
    assert!(!errors.exists(), "{:?}", std::fs::read_to_string(&errors));
}

/// What a hostile or broken client gets: no key, another tenant's index
/// names, a body that is not bulk, a bomb.
#[tokio::test(flavor = "multi_thread")]
async fn refusals() {
    let (_d, s) = embedded_with(&["--max-body-bytes", "65536"]).await;
    let key = s.tenant("bulkref").await;
    let http = reqwest::Client::new();
    let post = |auth: Option<String>, path: &str, body: Vec<u8>, gzip: bool| {
        let mut r = http
            .post(s.url(path))
            .header("content-type", "application/x-ndjson")
            .body(body);
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        if gzip {
            r = r.header("content-encoding", "gzip");
        }
        r.send()
    };
    let doc = b"{\"index\":{}}\n{\"message\":\"a\"}\n".to_vec();
    let r = post(None, "/web/_bulk", doc.clone(), false).await.expect("post");
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-elastic-product"], "Elasticsearch");
    let r = post(
        Some("Basic bm9wZTpsaF9ub3RhbnlrZXk=".into()),
        "/web/_bulk",
        doc.clone(),
        false,
    )
    .await
    .expect("post");
    assert_eq!(r.status(), 401, "an unknown key in basic auth");
    let bearer = Some(format!("Bearer {key}"));
    let r = post(bearer.clone(), "/web/_bulk", b"{\"index\":{}}\n".to_vec(), false)
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "invalid_body", "{body}");
    // 1 MiB of zeros, gzipped to a kilobyte, over a 64 KiB limit.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &vec![b' '; 1 << 20]).expect("gzip");
    let bomb = gz.finish().expect("gzip");
    let r = post(bearer.clone(), "/_bulk", bomb, true).await.expect("post");
    assert_eq!(r.status(), 413);
    // The path's index is a service name, never a path: refused per item.
    let r = post(bearer, "/..%2F..%2Fvictim/_bulk", doc, false).await.expect("post");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["items"][0]["index"]["status"], 400, "{body}");
    assert_eq!(s.metric("loggerhub_logs_ingested_total").await, 0.0);
}
