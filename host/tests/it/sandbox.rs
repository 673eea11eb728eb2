//! Hostile plugins fail only their own tenant's records: the batch holding
//! the poison is split in halves until the poisoned record is found, which
//! is retried, then dead-lettered with its raw log, while every other record
//! and every other tenant flows on.

use std::time::{Duration, Instant};

use crate::common::Server;
use loggerhub::runtime::builtin;
use serde_json::{Value, json};

async fn setup(s: &Server, tenant: &str, stage: &str, wasm_path: &str, pipeline: Value) -> String {
    let key = s.tenant(tenant).await;
    let wasm = std::fs::read(wasm_path).expect("fixture built by build.rs");
    let (status, body) = s.put_plugin(&key, stage, "hostile", wasm).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = s.put_pipeline(&key, &pipeline).await;
    assert_eq!(status, 200, "{body}");
    key
}

async fn replay(s: &Server, key: &str, batch: &str) -> u16 {
    let r = s
        .http
        .post(s.url(&format!("/v1/dead-letters/{batch}/replay")))
        .bearer_auth(key)
        .send()
        .await
        .expect("replay");
    r.status().as_u16()
}

/// The tenant's `hostile` plugin as `GET /v1/plugins` lists it.
async fn hostile_plugin(s: &Server, key: &str) -> Value {
    let (_, list) = s.get(key, "/v1/plugins").await;
    list["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .find(|p| p["name"] == "hostile")
        .cloned()
        .expect("listed")
}

fn enricher(mode: &str) -> Value {
    json!({"enrichers": ["default-enricher", "hostile"], "config": {"hostile": {"mode": mode}}})
}

async fn send(s: &Server, key: &str, messages: &[&str]) {
    let body: Vec<String> = messages.iter().map(|m| json!({"message": m}).to_string()).collect();
    let (status, _) = s.post_logs(key, "application/x-ndjson", body.join("\n")).await;
    assert_eq!(status, 202);
}

async fn total(s: &Server, key: &str) -> u64 {
    s.get(key, "/v1/logs?limit=1").await.1["total"].as_u64().unwrap_or(0)
}

fn dead_letters(s: &Server, tenant: &str) -> Vec<Value> {
    std::fs::read_dir(s.data_dir.join("dead-letters").join(tenant))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect()
}

#[tokio::test]
async fn hostile_plugins_fail_only_their_own_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]).await;
    let hostile = builtin::HOSTILE_ENRICHER_PATH;
    let tenants = [
        (
            "t_loop",
            setup(&s, "t_loop", "enricher", hostile, enricher("loop")).await,
        ),
        (
            "t_alloc",
            setup(&s, "t_alloc", "enricher", hostile, enricher("alloc")).await,
        ),
        (
            "t_panic",
            setup(&s, "t_panic", "enricher", hostile, enricher("panic")).await,
        ),
        (
            "t_router",
            setup(
                &s,
                "t_router",
                "router",
                builtin::BAD_ROUTER_PATH,
                json!({"router": "hostile"}),
            )
            .await,
        ),
    ];
    let healthy = s.tenant("healthy").await;

    // Each hostile tenant: a good entry, a poisoned one, another good one.
    for (_, key) in &tenants {
        send(&s, key, &["good one", "good two"]).await;
        send(&s, key, &["fine", "poison pill", "fine too"]).await;
        send(&s, key, &["good three"]).await;
    }
    // The healthy tenant keeps sending meanwhile, and is served while the
    // looping plugin still burns its CPU budget.
    let started = Instant::now();
    for i in 0..10 {
        send(&s, &healthy, &[&format!("healthy {i}"), "all good"]).await;
    }
    loop {
        if total(&s, &healthy).await == 20 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "healthy tenant starved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        dead_letters(&s, "t_loop").is_empty(),
        "the healthy tenant waited for the looping tenant's retries to finish"
    );

    // Every hostile tenant ends with its good records stored, the poisoned
    // record's neighbours included, and exactly the poisoned record
    // dead-lettered, raw log and reason kept.
    let deadline = Instant::now() + Duration::from_secs(60);
    for (tenant, key) in &tenants {
        loop {
            if dead_letters(&s, tenant).len() == 1 && total(&s, key).await == 5 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{tenant}: {} stored, {:?}",
                total(&s, key).await,
                dead_letters(&s, tenant)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let letter = &dead_letters(&s, tenant)[0];
        let body = letter["body"].as_str().expect("body");
        assert!(body.contains("poison pill") && !body.contains("fine"), "{letter}");
        assert_eq!(letter["records"], 1, "{letter}");
        assert_eq!(letter["tenant"], *tenant);
        let reason = letter["reason"].as_str().expect("reason");
        match *tenant {
            "t_loop" => assert!(reason.contains("cpu budget"), "{reason}"),
            "t_alloc" => assert!(letter["kind"] == "trap", "{letter}"),
            "t_panic" => assert!(reason.contains("unreachable") || reason.contains("panic"), "{reason}"),
            _ => assert!(reason.contains("0 routes for 1 records"), "{reason}"),
        }
    }
    assert_eq!(s.metric("loggerhub_dead_letters_total").await, 4.0);
    assert_eq!(total(&s, &healthy).await, 20);
}

#[tokio::test]
async fn halving_dead_letters_only_the_failing_records_of_a_large_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]).await;
    let key = setup(
        &s,
        "t_split",
        "enricher",
        builtin::HOSTILE_ENRICHER_PATH,
        enricher("panic"),
    )
    .await;
    let poisoned = [17, 101, 150];
    let messages: Vec<String> = (0..200)
        .map(|i| {
            if poisoned.contains(&i) {
                format!("poison {i}")
            } else {
                format!("fine {i}")
            }
        })
        .collect();
    let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
    send(&s, &key, &refs).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while dead_letters(&s, "t_split").len() < 3 || total(&s, &key).await < 197 {
        assert!(
            Instant::now() < deadline,
            "{} stored, {:?}",
            total(&s, &key).await,
            dead_letters(&s, "t_split")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut bodies: Vec<String> = dead_letters(&s, "t_split")
        .iter()
        .map(|l| {
            assert_eq!(l["records"], 1, "{l}");
            l["body"].as_str().expect("body").to_string()
        })
        .collect();
    bodies.sort();
    for (body, i) in bodies.iter().zip(poisoned) {
        assert!(body.contains(&format!("\"poison {i}\"")), "{body}");
    }
    assert_eq!(total(&s, &key).await, 197);
    // One bad record among good ones does not count against the plugin.
    let hostile = hostile_plugin(&s, &key).await;
    assert!(hostile["disabled"].is_null(), "{hostile}");

    // A plugin that fails on everything is not called twice per record:
    // past the split budget the failing parts are dead-lettered whole.
    let mut pipeline = enricher("panic");
    pipeline["config"]["hostile"]["every"] = json!("true");
    let key = setup(&s, "t_all", "enricher", builtin::HOSTILE_ENRICHER_PATH, pipeline).await;
    let messages: Vec<String> = (0..300).map(|i| format!("doomed {i}")).collect();
    let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
    send(&s, &key, &refs).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let letters = dead_letters(&s, "t_all");
        let held: u64 = letters.iter().filter_map(|l| l["records"].as_u64()).sum();
        if held == 300 {
            assert!(letters.len() <= 66, "{} letters for 300 records", letters.len());
            break;
        }
        assert!(Instant::now() < deadline, "{held} records dead-lettered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(total(&s, &key).await, 0);
}

#[tokio::test]
async fn guests_get_no_files_and_no_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]).await;
    let hostile = builtin::HOSTILE_ENRICHER_PATH;
    let fs_key = setup(&s, "t_fs", "enricher", hostile, enricher("read_file")).await;
    let env_key = setup(&s, "t_env", "enricher", hostile, enricher("read_env")).await;
    send(&s, &fs_key, &["poison: read a file"]).await;
    send(&s, &env_key, &["poison: read the env"]).await;
    s.drained(2).await;
    let (_, page) = s.get(&fs_key, "/v1/logs").await;
    let file = page["hits"][0]["attributes"]["file"].as_str().expect("file attribute");
    assert!(file.starts_with("denied"), "guest read a host file: {file}");
    let (_, page) = s.get(&env_key, "/v1/logs").await;
    assert_eq!(page["hits"][0]["attributes"]["env"], "denied (0 vars)");
}

#[tokio::test]
async fn guest_output_goes_to_the_host_log_tagged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("server.log");
    let s = Server::start_logging(dir.path(), &[], &log).await;
    let key = setup(
        &s,
        "t_out",
        "enricher",
        builtin::HOSTILE_ENRICHER_PATH,
        enricher("stdout"),
    )
    .await;
    send(&s, &key, &["poison: print something"]).await;
    s.drained(1).await;
    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("plugin output") || l.contains("plugin log"))
        .collect();
    for want in [
        "hello from the guest's stdout",
        "hello from the guest's stderr",
        "hello through host.log",
    ] {
        let line = lines
            .iter()
            .find(|l| l.contains(want))
            .unwrap_or_else(|| panic!("{want:?} not in the log:\n{text}"));
        assert!(line.contains("t_out") && line.contains("hostile@v1"), "{line}");
    }
}

#[tokio::test]
async fn failing_plugin_is_disabled_and_dead_letters_replay_once_fixed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]).await;
    let wasm = builtin::HOSTILE_ENRICHER_PATH;
    let key = setup(&s, "t_dis", "enricher", wasm, enricher("panic")).await;
    for i in 0..5 {
        send(&s, &key, &[&format!("poison {i}")]).await;
    }
    // Five dead letters in a row disable the plugin; the tenant's logs then
    // run on the built-ins of that stage (the enricher is skipped).
    let deadline = Instant::now() + Duration::from_secs(60);
    let plugin = loop {
        let (_, list) = s.get(&key, "/v1/plugins").await;
        let p = list["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .find(|p| p["name"] == "hostile")
            .cloned();
        if let Some(p) = p.filter(|p| !p["disabled"].is_null()) {
            break p;
        }
        assert!(Instant::now() < deadline, "plugin never disabled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        plugin["disabled"].as_str().expect("reason").contains("trapped"),
        "{plugin}"
    );
    assert_eq!(s.metric("loggerhub_plugins_disabled_total").await, 1.0);
    // Its figures: every call it took failed, and none returned records.
    let f = &plugin["figures"];
    assert!(
        f["errors"].as_u64().is_some_and(|e| e >= 5) && f["calls"] == f["errors"],
        "{f}"
    );
    assert_eq!(f["records_out"], 0, "{f}");
    assert!(f["records_in"].as_u64() >= f["errors"].as_u64(), "{f}");
    assert!(f["max_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{f}");
    let (_, list) = s.get(&key, "/v1/plugins").await;
    let router = list["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "default-router")
        .expect("the built-in router");
    assert_eq!(router["figures"]["errors"], 0, "{router}");
    send(&s, &key, &["normal after disable"]).await;
    s.drained(1).await;
    let (_, page) = s.get(&key, "/v1/logs").await;
    assert_eq!(page["total"], 1);
    assert!(page["hits"][0]["attributes"].get("hostile").is_none());

    // The dead letters keep the raw bodies and can be listed.
    let (status, dl) = s.get(&key, "/v1/dead-letters").await;
    assert_eq!(status, 200);
    let letters = dl["dead_letters"].as_array().expect("letters").clone();
    assert_eq!(letters.len(), 5);
    assert!(
        letters
            .iter()
            .all(|d| d["body"].as_str().is_some_and(|b| b.contains("poison")) && d["kind"] == "trap")
    );

    // Fix the plugin (new config, new version: re-enabled), then replay one.
    assert_eq!(s.put_pipeline(&key, &enricher("read_env")).await.0, 200);
    let (status, _) = s
        .put_plugin(&key, "enricher", "hostile", std::fs::read(wasm).expect("fixture"))
        .await;
    assert_eq!(status, 201);
    let p = hostile_plugin(&s, &key).await;
    assert!(p["disabled"].is_null(), "{p}");
    let batch = letters[0]["batch_id"].as_str().expect("batch id");
    assert_eq!(replay(&s, &key, batch).await, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    // Index and metadata commit side by side: wait for both.
    let page = loop {
        let (_, page) = s.get(&key, "/v1/search?q=poison").await;
        if page["total"] == 1 && total(&s, &key).await == 2 {
            break page;
        }
        assert!(Instant::now() < deadline, "replayed entry never stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(page["total"], 1);
    assert_eq!(page["hits"][0]["attributes"]["env"], "denied (0 vars)");
    assert_eq!(
        s.get(&key, "/v1/dead-letters").await.1["dead_letters"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
    assert_eq!(replay(&s, &key, batch).await, 404);
}

/// One dead letter replayed six times at once (two clicks, two scripts)
/// stores its records once, in the index as in the metadata: every replay
/// is idempotent, and the ids come from the letter's batch.
#[tokio::test]
async fn concurrent_replays_of_one_letter_store_it_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]).await;
    let key = s.tenant("t_replays").await;
    let wasm = std::fs::read(builtin::HOSTILE_PARSER_PATH).expect("fixture built by build.rs");
    assert_eq!(s.put_plugin(&key, "parser", "spin", wasm).await.0, 201);
    let spinning = json!({"text_parser": "spin", "json_parser": "spin", "limits": {"cpu_ms": 300}});
    assert_eq!(s.put_pipeline(&key, &spinning).await.0, 200);
    // The parser spins on the whole entry: a letter of the entry, whole;
    // one of text lines, one of a JSON array on one line.
    let (status, _) = s.post_logs(&key, "text/plain", "spin a\nspin b\nspin c\n").await;
    assert_eq!(status, 202);
    let array =
        json!([{"message": "spun 1"}, {"message": "spun 2"}, {"message": "spun 3"}, {"message": "spun 4 spin"}]);
    let (status, _) = s.post_logs(&key, "application/json", array.to_string()).await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (batch, json_batch) = loop {
        let (_, dl) = s.get(&key, "/v1/dead-letters").await;
        let letters = dl["dead_letters"].as_array().cloned().unwrap_or_default();
        let id = |needle: &str| {
            letters
                .iter()
                .find(|l| l["body"].as_str().is_some_and(|b| b.contains(needle)))
                .and_then(|l| l["batch_id"].as_str())
                .map(str::to_string)
        };
        if let (Some(text), Some(json)) = (id("spin a"), id("spun 1")) {
            break (text, json);
        }
        assert!(Instant::now() < deadline, "never dead-lettered: {dl}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Back to the built-in line parser, then six replays at once.
    assert_eq!(s.put_pipeline(&key, &json!({})).await.0, 200);
    let replays = (0..6).map(|_| replay(&s, &key, &batch));
    let statuses = futures::future::join_all(replays).await;
    assert!(statuses.contains(&202), "{statuses:?}");
    assert!(statuses.iter().all(|st| [202, 404].contains(st)), "{statuses:?}");
    s.idle().await;
    let (_, found) = s.get(&key, "/v1/search?q=spin&track_total_hits=true").await;
    assert_eq!(found["total"], 3, "{statuses:?}: {found}");
    assert_eq!(total(&s, &key).await, 3);

    // The JSON letter is counted as its four records, as ingest counted
    // them, not as its one line.
    let logs_today = |u: Value| u["today"]["logs"].as_u64().expect("logs");
    let before = logs_today(s.get(&key, "/v1/usage").await.1);
    assert_eq!(replay(&s, &key, &json_batch).await, 202);
    assert_eq!(logs_today(s.get(&key, "/v1/usage").await.1), before + 4);
    s.idle().await;
    assert_eq!(total(&s, &key).await, 7);
}

#[tokio::test]
async fn limits_are_set_per_tenant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]).await;
    let mut pipeline = enricher("loop");
    pipeline["limits"] = json!({"cpu_ms": 300, "memory_mib": 64, "timeout_ms": 5000});
    let key = setup(&s, "t_tight", "enricher", builtin::HOSTILE_ENRICHER_PATH, pipeline).await;
    let (_, spec) = s.get(&key, "/v1/pipeline").await;
    assert_eq!(spec["limits"]["cpu_ms"], 300);
    send(&s, &key, &["poison"]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while dead_letters(&s, "t_tight").is_empty() {
        assert!(Instant::now() < deadline, "never dead-lettered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reason = dead_letters(&s, "t_tight")[0]["reason"]
        .as_str()
        .expect("reason")
        .to_string();
    assert!(reason.contains("cpu budget of 300 ms exceeded"), "{reason}");
    for bad in [
        json!({"cpu_ms": 0}),
        json!({"memory_mib": 4096}),
        json!({"timeout_ms": 10}),
        json!({"disk": 1}),
    ] {
        assert_eq!(s.put_pipeline(&key, &json!({"limits": bad})).await.0, 400, "{bad}");
    }
}
