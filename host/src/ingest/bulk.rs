//! The Elasticsearch/OpenSearch bulk format (`POST /_bulk`, NDJSON of
//! action lines, each `index` or `create` followed by its document), read
//! into batches the queue takes as they are: each document becomes one
//! NDJSON line of the JSON payload, which the tenant's JSON parser reads
//! with the field names shippers use (`@timestamp`, `log.level`, …).
//!
//! Every action gets its own outcome, as Elasticsearch answers item by
//! item: a document the payload decoder refuses is refused alone (400), the
//! others are queued. Only a body that is not bulk NDJSON at all (a bad
//! action line, a missing document) is refused whole.
//!
//! The index names the documents' service unless a document names its own
//! (`POST /billing/_bulk` stores `service: billing`). An `_id` becomes the
//! record's id (a ULID or UUID as it is, anything else hashed with the
//! tenant and index), so a shipper's retried bulk stores nothing twice.

use std::borrow::Cow;
use std::collections::BTreeMap;

use loggerhub_codec::{limits, payload};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::model::ids;
use crate::model::window::TimeWindow;

/// Most actions in one bulk request. Shippers send hundreds to a few
/// thousand; the answer holds one item per action, so this bounds it too.
pub const MAX_ACTIONS: usize = 100_000;

/// What a bulk action asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Index,
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    fn parse(name: &str) -> Option<Action> {
        Some(match name {
            "index" => Action::Index,
            "create" => Action::Create,
            "update" => Action::Update,
            "delete" => Action::Delete,
            _ => return None,
        })
    }
}

/// The outcome of one action, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub action: Action,
    pub index: String,
    /// The `_id` as sent, else the record's id once known.
    pub id: Option<String>,
    pub refused: Option<Refusal>,
}

/// Why one action was not queued, in Elasticsearch's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    /// Elasticsearch's error type, which clients switch on.
    pub kind: &'static str,
    pub reason: String,
}

/// The documents of one index, as one NDJSON payload.
#[derive(Debug, Default)]
pub struct Group {
    pub body: Vec<u8>,
    pub count: usize,
    pub first_ts_ms: u64,
    /// Positions in `items` of this group's documents.
    pub items: Vec<usize>,
}

#[derive(Debug, Default)]
pub struct Decoded {
    pub items: Vec<Item>,
    /// By index name.
    pub groups: BTreeMap<String, Group>,
}

/// A body that is not bulk NDJSON; `line` is 1-based.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct BulkError {
    pub line: usize,
    pub message: String,
}

/// Reads a bulk body for `tenant`; `default_index` is the index of the URL
/// (`/{index}/_bulk`), if any.
pub fn decode(
    body: &[u8],
    default_index: Option<&str>,
    tenant: &str,
    window: &TimeWindow,
) -> Result<Decoded, BulkError> {
    let mut out = Decoded::default();
    let mut lines = body
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l)))
        .filter(|(_, l)| l.iter().any(|b| !b.is_ascii_whitespace()));
    while let Some((n, line)) = lines.next() {
        if out.items.len() == MAX_ACTIONS {
            return Err(BulkError {
                line: n,
                message: format!("more than {MAX_ACTIONS} actions in one bulk request; send smaller bulks"),
            });
        }
        let (action, meta) = action_line(n, line)?;
        let index = meta.index.as_deref().or(default_index).unwrap_or("").to_string();
        let given_id = match &meta.id {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => {
                return Err(BulkError {
                    line: n,
                    message: "`_id` must be a string".into(),
                });
            }
        };
        let mut item = Item {
            action,
            index,
            id: given_id.clone(),
            refused: None,
        };
        match action {
            Action::Delete => {
                item.refused = Some(unsupported(action));
                out.items.push(item);
                continue;
            }
            Action::Update => {
                // Its partial document follows; it is skipped with it.
                take_source(&mut lines, n)?;
                item.refused = Some(unsupported(action));
                out.items.push(item);
                continue;
            }
            Action::Index | Action::Create => {}
        }
        let source = take_source(&mut lines, n)?;
        if let Err(reason) = index_problem(&item.index) {
            item.refused = Some(Refusal {
                status: 400,
                kind: "invalid_index_name_exception",
                reason,
            });
            out.items.push(item);
            continue;
        }
        match document(source, &item.index, given_id.as_deref(), tenant, window) {
            Ok((line, id, ts_ms)) => {
                let group = out.groups.entry(item.index.clone()).or_default();
                if group.count == 0 {
                    group.first_ts_ms = ts_ms;
                }
                group.body.extend_from_slice(&line);
                group.body.push(b'\n');
                group.count += 1;
                group.items.push(out.items.len());
                item.id = item.id.or(id);
            }
            Err(refusal) => item.refused = Some(refusal),
        }
        out.items.push(item);
    }
    if out.items.is_empty() {
        return Err(BulkError {
            line: 1,
            message: "the request body is required: NDJSON of action lines and documents".into(),
        });
    }
    Ok(out)
}

/// An action's metadata; other keys (`routing`, `pipeline`, …) are
/// ignored, as they mean nothing here.
#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(rename = "_index", borrow, default)]
    index: Option<Cow<'a, str>>,
    #[serde(rename = "_id", default)]
    id: Option<Value>,
}

fn action_line(n: usize, line: &[u8]) -> Result<(Action, Meta<'_>), BulkError> {
    let bad = |message: String| BulkError { line: n, message };
    let map: BTreeMap<Cow<'_, str>, Option<Meta<'_>>> =
        serde_json::from_slice(line).map_err(|e| bad(format!("malformed action line: {e}")))?;
    let mut entries = map.into_iter();
    let (Some((name, meta)), None) = (entries.next(), entries.next()) else {
        return Err(bad(
            "malformed action line: expected one action (index, create, update, delete)".into(),
        ));
    };
    let action = Action::parse(&name).ok_or_else(|| {
        bad(format!(
            "unknown action {:?}: expected index, create, update or delete",
            name.chars().take(40).collect::<String>()
        ))
    })?;
    let meta = meta.ok_or_else(|| bad(format!("the {name} action's metadata must be an object")))?;
    Ok((action, meta))
}

fn take_source<'a>(
    lines: &mut impl Iterator<Item = (usize, &'a [u8])>,
    action_line: usize,
) -> Result<&'a [u8], BulkError> {
    lines.next().map(|(_, l)| l).ok_or(BulkError {
        line: action_line,
        message: "the action has no document on the next line".into(),
    })
}

fn unsupported(action: Action) -> Refusal {
    Refusal {
        status: 400,
        kind: "action_request_validation_exception",
        reason: format!(
            "{} is not supported: logs are appended with index or create, and removed by retention",
            action.as_str()
        ),
    }
}

/// Elasticsearch's rules for an index name, and ours for a service name
/// (which it becomes).
fn index_problem(index: &str) -> Result<(), String> {
    if index.is_empty() {
        return Err("no index: name one in the action (`_index`) or the path (`/{index}/_bulk`)".into());
    }
    if index == "."
        || index == ".."
        || index.starts_with(['-', '_', '+'])
        || index.chars().any(|c| "\\/*?\"<>| ,#:".contains(c) || c.is_uppercase())
    {
        return Err(format!(
            "invalid index name {:?}: lowercase, without \\ / * ? \" < > | space , # :, not starting with - _ +",
            index.chars().take(80).collect::<String>()
        ));
    }
    limits::check_name("index", index, limits::MAX_SERVICE_BYTES).map_err(|e| e.to_string())
}

/// One document as a payload line (its service defaults to the index
/// through the batch, `Group`), its id set from `_id`, checked as ingest
/// checks a payload. Returns the
/// line, the record id when one was set, and the timestamp in ms.
fn document(
    source: &[u8],
    index: &str,
    given_id: Option<&str>,
    tenant: &str,
    window: &TimeWindow,
) -> Result<(Vec<u8>, Option<String>, u64), Refusal> {
    let parse_error = |reason: String| Refusal {
        status: 400,
        kind: "mapper_parsing_exception",
        reason,
    };
    let foreign = |named: String| Refusal {
        status: 403,
        kind: "security_exception",
        reason: format!("the document names tenant {named:?}, but the key belongs to {tenant:?}"),
    };
    let in_window = |scan: &payload::Scan| -> Result<(), Refusal> {
        match scan.oldest {
            Some((_, ts)) => window.check(ts).map_err(|e| Refusal {
                status: 400,
                kind: "illegal_argument_exception",
                reason: e.to_string(),
            }),
            None => Ok(()),
        }
    };
    // Most documents go to the queue as they came: one object the payload
    // decoder takes, with no `_id` to set.
    if given_id.is_none()
        && source.trim_ascii_start().first() == Some(&b'{')
        && let Ok(scan) = payload::scan_json(source, tenant)
        && scan.count == 1
    {
        if let Some((_, named)) = scan.foreign_tenant {
            return Err(foreign(named));
        }
        in_window(&scan)?;
        let ts_ms = u64::try_from(scan.first_timestamp / 1_000_000).unwrap_or(0);
        return Ok((source.to_vec(), None, ts_ms));
    }
    let mut doc: Map<String, Value> = match serde_json::from_slice(source) {
        Ok(Value::Object(doc)) => doc,
        Ok(_) => return Err(parse_error("the document must be a JSON object".into())),
        Err(e) => return Err(parse_error(format!("failed to parse the document: {e}"))),
    };
    // A document's own `id` that is not a record id (most are not) stays
    // with it as an attribute instead of failing the record.
    if let Some(id) = doc.get("id").and_then(Value::as_str)
        && !payload::is_valid_id(id)
        && let Some(Value::String(id)) = doc.remove("id")
    {
        match doc.entry("attributes").or_insert_with(|| Value::Object(Map::new())) {
            Value::Object(attrs) => {
                attrs.entry("id").or_insert(Value::String(id));
            }
            _ => {
                doc.insert("doc_id".into(), Value::String(id));
            }
        }
    }
    let check = |doc: &Map<String, Value>| -> Result<(Vec<u8>, payload::Scan), Refusal> {
        let line = serde_json::to_vec(doc).map_err(|e| parse_error(e.to_string()))?;
        let scan = payload::scan_json(&line, tenant).map_err(|e| parse_error(e.message))?;
        if let Some((_, named)) = scan.foreign_tenant {
            return Err(foreign(named));
        }
        in_window(&scan)?;
        Ok((line, scan))
    };
    let (line, scan) = check(&doc)?;
    let ts_ms = u64::try_from(scan.first_timestamp / 1_000_000).unwrap_or(0);
    let Some(given) = given_id else {
        return Ok((line, None, ts_ms));
    };
    let id = if payload::is_valid_id(given) {
        given.to_string()
    } else {
        ids::keyed_record_id(tenant, index, given, ts_ms).to_string()
    };
    doc.insert("id".into(), Value::String(id.clone()));
    let line = serde_json::to_vec(&doc).map_err(|e| parse_error(e.to_string()))?;
    Ok((line, Some(id), ts_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_time() -> TimeWindow {
        TimeWindow::ALL
    }

    #[test]
    fn actions_documents_and_outcomes() {
        let body = br#"{"index":{"_index":"billing","_id":"a1"}}
{"@timestamp":"2025-10-10T12:26:36Z","message":"paid","log.level":"warn"}
{"create":{}}
{"message":"into the path's index","service":"api"}
{"index":{"_index":"billing"}}
{"no":"message"}
{"delete":{"_index":"billing","_id":"a1"}}
{"update":{"_index":"billing","_id":"a1"}}
{"doc":{"message":"x"}}
{"index":{"_index":"Bad Name"}}
{"message":"x"}
"#;
        let d = decode(body, Some("web"), "acme", &any_time()).expect("decodes");
        let status: Vec<Option<u16>> = d.items.iter().map(|i| i.refused.as_ref().map(|r| r.status)).collect();
        assert_eq!(status, [None, None, Some(400), Some(400), Some(400), Some(400)]);
        assert_eq!(
            d.items[2].refused.as_ref().map(|r| r.kind),
            Some("mapper_parsing_exception")
        );
        assert_eq!(
            d.items[5].refused.as_ref().map(|r| r.kind),
            Some("invalid_index_name_exception")
        );
        assert_eq!(d.items[1].index, "web");
        assert_eq!(d.groups.len(), 2);
        let billing = &d.groups["billing"];
        assert_eq!((billing.count, billing.first_ts_ms), (1, 1_760_099_196_000));
        let doc = &crate::ingest::ndjson_lines(&billing.body)[0];
        // The index is the batch's service, for records naming none.
        assert!(doc.get("service").is_none());
        let id = doc["id"].as_str().expect("id set from _id");
        assert!(payload::is_valid_id(id));
        assert_eq!(d.items[0].id.as_deref(), Some("a1"));
        // The same _id always names the same record; another index or tenant
        // another one.
        let again = decode(body, Some("web"), "acme", &any_time()).expect("decodes");
        assert_eq!(
            crate::ingest::ndjson_lines(&again.groups["billing"].body)[0]["id"],
            doc["id"]
        );
        let other = decode(body, Some("web"), "globex", &any_time()).expect("decodes");
        assert_ne!(
            crate::ingest::ndjson_lines(&other.groups["billing"].body)[0]["id"],
            doc["id"]
        );
        // The document's own service wins over the index.
        assert_eq!(crate::ingest::ndjson_lines(&d.groups["web"].body)[0]["service"], "api");
    }

    #[test]
    fn ids_and_tenants() {
        let ulid = "01JC0000000000000000000000";
        let body = format!(
            "{{\"index\":{{\"_id\":\"{ulid}\"}}}}\n{{\"message\":\"a\",\"id\":\"order-7\"}}\n\
             {{\"index\":{{}}}}\n{{\"message\":\"b\",\"tenant_id\":\"victim\"}}\n"
        );
        let d = decode(body.as_bytes(), Some("web"), "acme", &any_time()).expect("decodes");
        let doc = &crate::ingest::ndjson_lines(&d.groups["web"].body)[0];
        assert_eq!(doc["id"], ulid);
        assert_eq!(doc["attributes"]["id"], "order-7");
        let r = d.items[1].refused.as_ref().expect("refused");
        assert_eq!((r.status, r.kind), (403, "security_exception"));
    }

    #[test]
    fn malformed_bodies_are_refused_whole() {
        for (body, line) in [
            (&b"not json\n"[..], 1),
            (b"{\"index\":{}}\n", 1),
            (b"{\"index\":{},\"create\":{}}\n{}\n", 1),
            (b"{\"upsert\":{}}\n{}\n", 1),
            (b"{\"index\":{}}\n{\"message\":\"a\"}\n[1]\n", 3),
            (b"{\"index\":{\"_id\":{}}}\n{\"message\":\"a\"}\n", 1),
            (b"\n \n", 1),
        ] {
            let e = decode(body, Some("web"), "acme", &any_time()).expect_err("refused");
            assert_eq!(e.line, line, "{e}");
        }
    }

    #[test]
    fn hostile_bodies_never_panic() {
        for body in [
            &b"{\"index\":{\"_index\":\"../../x\"}}\n{\"message\":\"a\"}\n"[..],
            b"{\"index\":{\"_index\":\"\\u0000\"}}\n{\"message\":\"a\"}\n",
            b"{\"index\":null}\n{}\n",
            b"{}\n",
            b"\xff\xfe\n",
        ] {
            let _ = decode(body, None, "acme", &any_time());
        }
        let d = decode(
            b"{\"index\":{\"_index\":\"../../x\"}}\n{\"message\":\"a\"}\n",
            None,
            "acme",
            &any_time(),
        )
        .expect("decodes");
        assert!(d.items[0].refused.is_some() && d.groups.is_empty());
    }

    /// A document stamped outside the tenant's window is refused alone, as
    /// Elasticsearch refuses one document of a bulk.
    #[test]
    fn documents_outside_the_window_are_refused_alone() {
        let body = b"{\"index\":{}}\n{\"message\":\"now\"}\n{\"index\":{\"_id\":\"x1\"}}\n{\"message\":\"old\",\"@timestamp\":\"2000-01-01T00:00:00Z\"}\n{\"index\":{}}\n{\"message\":\"old\",\"@timestamp\":\"2000-01-01T00:00:00Z\"}\n";
        let week = TimeWindow::now(std::time::Duration::from_secs(7 * 86_400));
        let d = decode(body, Some("web"), "acme", &week).expect("decodes");
        assert!(d.items[0].refused.is_none());
        for item in &d.items[1..] {
            let r = item.refused.as_ref().expect("refused");
            assert_eq!((r.status, r.kind), (400, "illegal_argument_exception"));
            assert!(r.reason.contains("retention"), "{}", r.reason);
        }
    }
}
