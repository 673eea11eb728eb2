//! OpenSearch's answers read: the bodies of searches and gets, and an
//! error answer as a `Failure` with its cause and kind.

use opensearch::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::{corrupt, os_err, status_kind};
use crate::error::{Backend, BackendError};

#[derive(Deserialize, Default, Debug)]
pub(super) struct ErrorCause {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    reason: Option<String>,
}

impl std::fmt::Display for ErrorCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.reason.as_deref().unwrap_or(""))
    }
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: Option<ErrorCause>,
    found: Option<bool>,
}

#[derive(Deserialize)]
pub(super) struct SearchResponse {
    pub(super) hits: SearchHits,
}

#[derive(Deserialize)]
pub(super) struct SearchHits {
    pub(super) total: Option<TotalHits>,
    pub(super) hits: Vec<SearchHit>,
}

#[derive(Deserialize)]
pub(super) struct TotalHits {
    pub(super) value: u64,
    /// `eq`, or `gte` when the count stopped at `track_total_hits`.
    #[serde(default)]
    pub(super) relation: String,
}

#[derive(Deserialize)]
pub(super) struct SearchHit {
    #[serde(rename = "_id")]
    pub(super) id: String,
    #[serde(default)]
    pub(super) sort: Vec<Value>,
}

#[derive(Deserialize)]
pub(super) struct GetResponse {
    pub(super) found: bool,
    #[serde(rename = "_source")]
    pub(super) source: Option<Value>,
}

/// An OpenSearch error answer, read from its body.
pub(super) struct Failure {
    status: StatusCode,
    cause: ErrorCause,
    /// `found` of a get's 404 for a missing document.
    pub(super) found: Option<bool>,
}

impl Failure {
    pub(super) fn is(&self, kind: &str) -> bool {
        self.cause.kind == kind
    }
}

impl From<Failure> for BackendError {
    fn from(f: Failure) -> Self {
        let status = f.status.as_u16();
        BackendError::new(Backend::Index, status_kind(status), format!("{status} {}", f.cause))
    }
}

/// The parsed body of a 2xx answer, or the error it carried.
pub(super) async fn answer<T: serde::de::DeserializeOwned>(
    resp: opensearch::http::response::Response,
) -> Result<Result<T, Failure>, BackendError> {
    let status = resp.status_code();
    let bytes = resp.bytes().await.map_err(os_err)?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map(Ok)
            .map_err(|e| corrupt(format!("unexpected answer ({e}): {}", lossy(&bytes))));
    }
    let parsed = serde_json::from_slice::<ErrorResponse>(&bytes).ok();
    let found = parsed.as_ref().and_then(|p| p.found);
    let cause = parsed.and_then(|p| p.error).unwrap_or_else(|| ErrorCause {
        kind: "http_error".into(),
        reason: Some(lossy(&bytes)),
    });
    Ok(Err(Failure { status, cause, found }))
}

pub(super) async fn expect_ok<T: serde::de::DeserializeOwned>(
    resp: opensearch::http::response::Response,
) -> Result<T, BackendError> {
    answer(resp).await?.map_err(BackendError::from)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned()
}
