//! The dashboard (issue 13) in a real headless Chromium from Debian,
//! driven by Playwright (PyPI): `host/tests/browser/dashboard.py` signs in,
//! searches, scrolls, narrows by the histogram, opens a detail, follows the
//! live tail, replays a dead letter of a disabled plugin and reads the
//! usage, on a server this test fills first. Screenshots are kept under
//! the target dir's `tmp/dashboard/`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::common::private::python;
use crate::common::{ADMIN, embedded_with};
use loggerhub::runtime::builtin;

const SCRIPT: &str = include_str!("../browser/dashboard.py");
const TENANT: &str = "shop";
/// Logs stored before the browser starts: the script counts on it.
const STORED: u64 = 252;

fn rfc3339(unix_s: u64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{unix_s}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// 250 logs over the last 50 minutes (the 200 requests with their
/// `duration_ms`, a number), a stack trace and a log whose message is
/// markup.
fn logs() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    let mut out: Vec<Value> = (0..250u64)
        .map(|i| {
            let (level, message) = match i % 5 {
                0 if i < 200 => ("ERROR", format!("payment failed: card declined for order {i}")),
                0 => ("WARN", format!("retrying: card declined for order {i}")),
                _ => ("INFO", format!("GET /orders/{i} handled in {} ms", i % 90)),
            };
            let service = ["checkout", "web", "db"][(i % 3) as usize];
            let mut log = json!({
                "service": service,
                "level": level,
                "timestamp": rfc3339(now - (250 - i) * 12),
                "message": message,
            });
            if level == "INFO" {
                // A number attribute, for the charts.
                log["attributes"] = json!({"duration_ms": i % 90});
            }
            log
        })
        .collect();
    out.push(json!({
        "service": "checkout", "level": "ERROR", "timestamp": rfc3339(now - 30),
        "message": "Traceback in checkout",
        "full_log": "Traceback (most recent call last):\n  File \"app.py\", line 12, in pay\n    charge(card)\nValueError: invalid UUID",
        "attributes": {"order_id": "o-77"},
    }));
    out.push(json!({
        "service": "web", "level": "INFO", "timestamp": rfc3339(now - 20),
        "message": "<img src=x onerror=window.__owned=1> evil",
    }));
    out.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn the_dashboard_in_a_real_browser() {
    let (_dir, s) = embedded_with(&[]).await;
    let key = s.tenant(TENANT).await;
    let (status, body) = s.post_logs(&key, "application/x-ndjson", logs()).await;
    assert_eq!(status, 202, "{body}");
    s.drained(STORED).await;

    // A plugin that traps on every batch: five dead letters disable it.
    let wasm = std::fs::read(builtin::HOSTILE_ENRICHER_PATH).expect("fixture built by build.rs");
    assert_eq!(s.put_plugin(&key, "enricher", "hostile", wasm).await.0, 201);
    let pipeline = json!({"enrichers": ["default-enricher", "hostile"], "config": {"hostile": {"mode": "panic"}}});
    assert_eq!(s.put_pipeline(&key, &pipeline).await.0, 200);
    for i in 0..5 {
        let body = json!({"message": format!("poison {i}")}).to_string();
        assert_eq!(s.post_logs(&key, "application/x-ndjson", body).await.0, 202);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, list) = s.get(&key, "/v1/plugins").await;
        let disabled = list["plugins"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["name"] == "hostile" && !p["disabled"].is_null());
        if disabled {
            break;
        }
        assert!(Instant::now() < deadline, "the plugin was never disabled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(s.get(&key, "/v1/logs?limit=1").await.1["total"], STORED);

    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    let _ = std::fs::remove_dir_all(&artifacts);
    let out = python(SCRIPT, &[&s.url(""), ADMIN, TENANT, &key, &artifacts.to_string_lossy()]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("dashboard: every step passed"), "{said}");
    for shot in ["02-logs", "06-detail", "07-live", "08-plugins", "10-phone"] {
        let png = artifacts.join(format!("{shot}.png"));
        assert!(
            std::fs::metadata(&png).is_ok_and(|m| m.len() > 1000),
            "no screenshot {}",
            png.display()
        );
    }
}
