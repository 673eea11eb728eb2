//! The OpenAPI document (issue 12, point 6) as a client sees it: served
//! at `/openapi.json`, valid OpenAPI 3.1 by a real validator
//! (`openapi-spec-validator` from PyPI), and true of the running server:
//! every operation it lists is routed and answers with a status it lists.

use serde_json::Value;

use crate::common::embedded_with;
use crate::common::private::python;

const VALIDATE: &str = r#"
import json, sys, urllib.request
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator
doc = json.load(urllib.request.urlopen(sys.argv[1]))
validate(doc, cls=OpenAPIV31SpecValidator)
print("valid", doc["openapi"], len(doc["paths"]))
"#;

/// A value for each path parameter the document names.
fn fill(path: &str) -> String {
    path.replace("{slug}", "nosuch_tenant")
        .replace("{id}", "01JB8X6J7Z9Q0R1S2T3V4W5X6Y")
        .replace("{batch_id}", "01JB8X6J7Z9Q0R1S2T3V4W5X6Y")
        .replace("{stage}", "enricher")
        .replace("{name}", "tagger")
        .replace("{index}", "checkout")
}

#[tokio::test]
async fn the_document_is_valid_openapi_and_true_of_the_server() {
    let (_dir, s) = embedded_with(&[]).await;
    let http = reqwest::Client::new();
    let resp = http.get(s.url("/openapi.json")).send().await.expect("get");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let doc: Value = resp.json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");

    let out = python(VALIDATE, &[&s.url("/openapi.json")]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("valid 3.1.0"), "{said}");

    // Each operation, asked by a caller with a wrong key (or none, where
    // none is needed): routed, and answered with a status the document
    // gives for it.
    let key = s.tenant("probe").await;
    let mut probed = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            let url = s.url(&fill(path));
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            for auth in ["Bearer lh_not_a_key", &format!("Bearer {key}")] {
                let resp = http
                    .request(method.clone(), &url)
                    .header("authorization", auth)
                    .send()
                    .await
                    .expect("request");
                let status = resp.status().as_u16();
                // A live tail's answer never ends: its head is enough.
                let streaming = resp
                    .headers()
                    .get("content-type")
                    .is_some_and(|c| c == "text/event-stream");
                let body: Value = if streaming {
                    Value::Null
                } else {
                    resp.json().await.unwrap_or(Value::Null)
                };
                let code = body["error"]["code"].as_str().unwrap_or_default();
                assert!(
                    code != "method_not_allowed" && body["error"]["message"] != "no such endpoint",
                    "{method} {path}: not routed ({status} {body})"
                );
                assert!(
                    op["responses"][status.to_string()].is_object(),
                    "{method} {path} answered {status} {body}, which the document does not list"
                );
                if let Some(code) = body["error"]["code"].as_str() {
                    let listed = op["responses"][status.to_string()]["description"]
                        .as_str()
                        .unwrap_or_default();
                    assert!(
                        listed.contains(&format!("`{code}`")),
                        "{method} {path} answered `{code}`, which its {status} does not list"
                    );
                }
                probed += 1;
            }
        }
    }
    assert!(probed >= 60, "probed {probed} operations");
}
