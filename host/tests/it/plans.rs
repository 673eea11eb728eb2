//! Plans (issue 11, point 1): the operator's plans — built-in `free`, `pro`,
//! `enterprise`, `unlimited` (the default), overridden or added to by `--plans FILE` — listed by the
//! admin API; a tenant is created on one and moved to another through the
//! admin API and the CLI, on the embedded and the distributed metadata
//! stores. Plan names are parsed: a hostile or unknown one is a 400 that
//! changes nothing.

use serde_json::{Value, json};

use crate::common::{Server, fails_to_start};
use crate::common::{distributed_with, embedded_with};

async fn plan_of(s: &Server, slug: &str) -> Value {
    let (_, list) = s.admin(reqwest::Method::GET, "/v1/admin/tenants", None).await;
    list["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .find(|t| t["slug"] == slug)
        .map(|t| t["plan"].clone())
        .unwrap_or(Value::Null)
}

/// A plan file: a cheaper `pro` and a new `tiny`.
fn plans_file(dir: &std::path::Path) -> std::path::PathBuf {
    let plan = |lps: u64, days: u32| {
        json!({
            "logs_per_second": lps, "bytes_per_second": lps * 300, "burst_seconds": 5,
            "daily_logs": lps * 86_400, "daily_bytes": lps * 86_400 * 300, "retention_days": days,
            "plugin_cpu_seconds_per_day": 60, "max_plugins": 2, "max_versions": 2, "dead_letter_cap": 10
        })
    };
    let path = dir.join("plans.json");
    std::fs::write(&path, json!({"pro": plan(500, 3), "tiny": plan(10, 1)}).to_string()).expect("write plans");
    path
}

async fn plans(s: &Server, run: &str) {
    use reqwest::Method;
    // The catalogue: built-ins, with the file's `pro` and `tiny`.
    let (status, catalogue) = s.admin(Method::GET, "/v1/admin/plans", None).await;
    assert_eq!(status, 200, "{catalogue}");
    let names: Vec<&str> = catalogue["plans"]
        .as_object()
        .expect("plans")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, vec!["enterprise", "free", "pro", "tiny", "unlimited"]);
    assert_eq!(catalogue["plans"]["pro"]["retention_days"], 3);
    assert_eq!(catalogue["plans"]["free"]["retention_days"], 7);

    // Created on the default plan (`unlimited` unless the operator names
    // another), or on the one named.
    let a = format!("plana{run}");
    let b = format!("planb{run}");
    let (status, created) = s
        .admin(Method::POST, "/v1/admin/tenants", Some(json!({"slug": a})))
        .await;
    assert_eq!((status, &created["plan"]), (201, &json!("unlimited")), "{created}");
    let created = s.cli(&["tenant", "create", &b, "--plan", "tiny"]);
    assert_eq!(created["plan"], "tiny");
    assert_eq!(plan_of(s, &b).await, "tiny");

    // Unknown and hostile plan names change nothing.
    for bad in ["gold", "../free", "free\u{0}", "FREE", "", &"p".repeat(41)] {
        let c = format!("planc{run}");
        let (status, err) = s
            .admin(Method::POST, "/v1/admin/tenants", Some(json!({"slug": c, "plan": bad})))
            .await;
        assert_eq!(
            (status, &err["error"]["code"]),
            (400, &json!("invalid_plan")),
            "{bad:?}: {err}"
        );
        assert_eq!(plan_of(s, &c).await, Value::Null, "{bad:?} created a tenant");
        let path = format!("/v1/admin/tenants/{a}");
        let (status, err) = s.admin(Method::PATCH, &path, Some(json!({"plan": bad}))).await;
        assert_eq!(
            (status, &err["error"]["code"]),
            (400, &json!("invalid_plan")),
            "{bad:?}: {err}"
        );
        assert_eq!(plan_of(s, &a).await, "unlimited", "{bad:?} changed the plan");
    }

    // Moved by the API and by the CLI; the list says so at once.
    let path = format!("/v1/admin/tenants/{a}");
    let (status, moved) = s.admin(Method::PATCH, &path, Some(json!({"plan": "pro"}))).await;
    assert_eq!(
        (status, &moved["plan"], &moved["slug"]),
        (200, &json!("pro"), &json!(a)),
        "{moved}"
    );
    assert_eq!(plan_of(s, &a).await, "pro");
    assert_eq!(plan_of(s, &b).await, "tiny", "another tenant's plan changed");
    let moved = s.cli(&["tenant", "set-plan", &a, "enterprise"]);
    assert_eq!(moved["plan"], "enterprise");
    assert_eq!(plan_of(s, &a).await, "enterprise");
    let listed = s.cli(&["tenant", "plans"]);
    assert!(listed["plans"]["tiny"].is_object());

    // Only the admin, only existing tenants, only the plan.
    let (status, _) = s
        .admin(
            Method::PATCH,
            &format!("/v1/admin/tenants/nosuch{run}"),
            Some(json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, err) = s
        .admin(Method::PATCH, &path, Some(json!({"plan": "pro", "slug": "other"})))
        .await;
    assert_eq!((status, &err["error"]["code"]), (400, &json!("invalid_json")), "{err}");
    let (status, _) = s
        .admin(Method::PATCH, "/v1/admin/tenants/..%2Fx", Some(json!({"plan": "pro"})))
        .await;
    assert_eq!(status, 400);
    let key = s.tenant(&format!("pland{run}")).await;
    for (method, path) in [(Method::PATCH, path.as_str()), (Method::GET, "/v1/admin/plans")] {
        let r = s
            .http
            .request(method, s.url(path))
            .bearer_auth(&key)
            .json(&json!({"plan": "free"}))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 401, "a tenant key reached {path}");
    }
    assert_eq!(plan_of(s, &a).await, "enterprise");
}

#[tokio::test(flavor = "multi_thread")]
async fn plans_embedded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = plans_file(dir.path());
    let (_dir, s) = embedded_with(&["--plans", file.to_str().expect("path")]).await;
    plans(&s, "e").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plans_distributed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = plans_file(dir.path());
    let (_dir, s, run) = distributed_with("plans", &["--plans", file.to_str().expect("path")]).await;
    plans(&s, &run).await;
}

/// A plans file that cannot work stops the start, naming the file and the
/// plan.
#[test]
fn a_bad_plans_file_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("plans.json");
    let mut zero: Value =
        serde_json::from_str(&std::fs::read_to_string(plans_file(dir.path())).expect("read")).expect("json");
    zero["tiny"]["logs_per_second"] = json!(0);
    std::fs::write(&file, json!({"zero": zero["tiny"]}).to_string()).expect("write");
    let said = fails_to_start(
        &dir.path().join("data"),
        &["--plans", file.to_str().expect("path")],
        &[],
    );
    assert!(said.contains("plans.json") && said.contains("zero"), "{said}");
    let missing = dir.path().join("missing.json");
    let said = fails_to_start(
        &dir.path().join("data"),
        &["--plans", missing.to_str().expect("path")],
        &[],
    );
    assert!(said.contains("missing.json"), "{said}");
}

/// A service that sells plans names its default: tenants created without
/// a plan go on it; a default that is not a plan stops the start.
#[tokio::test(flavor = "multi_thread")]
async fn the_operator_names_the_default_plan() {
    let (dir, s) = embedded_with(&["--default-plan", "free"]).await;
    let (status, created) = s
        .admin(
            reqwest::Method::POST,
            "/v1/admin/tenants",
            Some(json!({"slug": "saas"})),
        )
        .await;
    assert_eq!((status, &created["plan"]), (201, &json!("free")), "{created}");
    let said = fails_to_start(&dir.path().join("other"), &["--default-plan", "gold"], &[]);
    assert!(said.contains("--default-plan") && said.contains("gold"), "{said}");
}
