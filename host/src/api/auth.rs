//! Authentication as extractors: a handler that takes `Tenant<Search>` runs
//! only for a valid tenant key holding the `search` scope, and gets the
//! tenant from the key (never from the request); a handler that takes
//! `Admin` runs only for the admin token. Handlers never read the
//! `Authorization` header themselves.

use std::borrow::Cow;
use std::marker::PhantomData;

use base64::Engine;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::error::{ApiError, ErrorCode};
use crate::stores::TenantState;
use crate::tenants::Scope;

/// A scope a handler requires, named as a type.
pub trait RequiredScope: Send + Sync + 'static {
    const SCOPE: Scope;
}

/// `ingest`: POST /v1/logs.
pub struct Ingest;
/// `search`: the read API.
pub struct Search;
/// `plugins`: plugins, pipeline, dead letters.
pub struct Plugins;

impl RequiredScope for Ingest {
    const SCOPE: Scope = Scope::Ingest;
}
impl RequiredScope for Search {
    const SCOPE: Scope = Scope::Search;
}
impl RequiredScope for Plugins {
    const SCOPE: Scope = Scope::Plugins;
}

/// The caller: a tenant whose key holds the scope `S`.
pub struct Tenant<S> {
    /// The key's tenant: every read and write of the request is its.
    pub tenant: String,
    /// The tenant's plan (`tenants::plans`).
    pub plan: String,
    /// The operator suspended the tenant: every way in refuses it
    /// (`ingest::Ingest::gate`), its reads work.
    pub suspended: bool,
    /// Every scope of the key (it holds `S` at least).
    scopes: Vec<Scope>,
    scope: PhantomData<S>,
}

impl<S> Tenant<S> {
    /// Whether the key also holds `scope`.
    pub fn can(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let missing = || ApiError::new(ErrorCode::MissingApiKey, "send Authorization: Bearer <api key>");
    parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(missing)
}

/// A tenant key as shippers send it: `Bearer <key>`; basic auth with the
/// key as the password (or as the user, with no password), as Loki and
/// Elasticsearch clients do; or `ApiKey <key>` / `ApiKey base64(id:key)`,
/// Elasticsearch's API-key header.
fn tenant_key(parts: &Parts) -> Result<Cow<'_, str>, ApiError> {
    let missing = || {
        ApiError::new(
            ErrorCode::MissingApiKey,
            "send Authorization: Bearer <api key> (or the key as the basic-auth password, or ApiKey <key>)",
        )
    };
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?
        .trim();
    let (scheme, rest) = value.split_once(' ').ok_or_else(missing)?;
    let rest = rest.trim();
    let decoded = || {
        base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    };
    let key = match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Cow::Borrowed(rest),
        "basic" => {
            let pair = decoded().ok_or_else(missing)?;
            let (user, password) = pair.split_once(':').unwrap_or((&pair, ""));
            Cow::Owned(if password.is_empty() { user } else { password }.to_string())
        }
        "apikey" if rest.starts_with(crate::tenants::KEY_PREFIX) => Cow::Borrowed(rest),
        "apikey" => {
            let pair = decoded().ok_or_else(missing)?;
            let (id, key) = pair.split_once(':').unwrap_or(("", &pair));
            // Either half may hold the key: clients name them differently.
            Cow::Owned(
                if id.starts_with(crate::tenants::KEY_PREFIX) {
                    id
                } else {
                    key
                }
                .to_string(),
            )
        }
        _ => return Err(missing()),
    };
    if key.is_empty() {
        return Err(missing());
    }
    Ok(key)
}

impl<S: RequiredScope> FromRequestParts<AppState> for Tenant<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = tenant_key(parts)?;
        let principal = state
            .tenants
            .authenticate(&secret)
            .await?
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidApiKey, "unknown or revoked API key"))?;
        if !principal.can(S::SCOPE) {
            return Err(ApiError::new(
                ErrorCode::InsufficientScope,
                format!("this key lacks the {:?} scope", S::SCOPE.as_str()),
            ));
        }
        Ok(Tenant {
            suspended: principal.state == TenantState::Suspended,
            tenant: principal.tenant,
            plan: principal.plan,
            scopes: principal.scopes,
            scope: PhantomData,
        })
    }
}

/// The caller presented the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let given = bearer(parts)?;
        if constant_time_eq(given.as_bytes(), state.admin_token.as_bytes()) {
            Ok(Admin)
        } else {
            Err(ApiError::new(
                ErrorCode::InvalidAdminToken,
                "admin endpoints take the admin token",
            ))
        }
    }
}

/// Whether the caller may see operator detail: anyone when no operator
/// token is set (`LOGGERHUB_OPERATOR_TOKEN`), else only its bearer.
pub struct MaybeOperator {
    pub is_operator: bool,
}

impl FromRequestParts<AppState> for MaybeOperator {
    type Rejection = ApiError;

    /// With an operator token, whoever presents it. Without one, only a
    /// caller on this machine: a loopback peer whose request no proxy
    /// forwarded (a proxy on the same machine would make every stranger
    /// look local; it names the client in `X-Forwarded-For` or
    /// `Forwarded`, as the shipped nginx does).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let is_operator = match &state.operator_token {
            None => is_local(parts),
            Some(token) => bearer(parts).is_ok_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes())),
        };
        Ok(MaybeOperator { is_operator })
    }
}

/// Headers by which a proxy names the client it forwards (or itself): a
/// request that carries any came through one.
const PROXY_HEADERS: &[&str] = &[
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "via",
];

/// The request came from this machine, not through a proxy. An IPv4 peer
/// on a `[::]` listener arrives as `::ffff:127.0.0.1`: canonical first.
fn is_local(parts: &Parts) -> bool {
    let peer_local = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|c| c.0.ip().to_canonical().is_loopback());
    let forwarded = PROXY_HEADERS.iter().any(|h| parts.headers.contains_key(*h));
    peer_local && !forwarded
}

/// The caller may see operator endpoints (`/metrics`).
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if MaybeOperator::from_request_parts(parts, state).await?.is_operator {
            Ok(Operator)
        } else {
            Err(ApiError::new(
                ErrorCode::InvalidOperatorToken,
                "this endpoint answers the operator: set LOGGERHUB_OPERATOR_TOKEN and send it as a bearer token, or ask from the server's own machine (loopback, not through a proxy)",
            ))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_forms() {
        let parts = |v: Option<&str>| {
            let mut b = axum::http::Request::builder();
            if let Some(v) = v {
                b = b.header(AUTHORIZATION, v);
            }
            b.body(()).expect("request").into_parts().0
        };
        assert_eq!(bearer(&parts(Some("Bearer lh_x "))).ok(), Some("lh_x"));
        assert_eq!(bearer(&parts(Some("bearer lh_x"))).ok(), Some("lh_x"));
        for bad in [None, Some("Basic abc"), Some("lh_x")] {
            let e = bearer(&parts(bad)).expect_err("refused");
            assert_eq!(e.code, ErrorCode::MissingApiKey);
        }
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let key = |v: &str| tenant_key(&parts(Some(v))).map(|k| k.into_owned()).ok();
        assert_eq!(key("Bearer lh_x").as_deref(), Some("lh_x"));
        assert_eq!(key(&format!("Basic {}", b64("elastic:lh_x"))).as_deref(), Some("lh_x"));
        assert_eq!(key(&format!("Basic {}", b64("lh_x:"))).as_deref(), Some("lh_x"));
        assert_eq!(key(&format!("Basic {}", b64("lh_x"))).as_deref(), Some("lh_x"));
        assert_eq!(key("ApiKey lh_x").as_deref(), Some("lh_x"));
        assert_eq!(key(&format!("ApiKey {}", b64("shipper:lh_x"))).as_deref(), Some("lh_x"));
        assert_eq!(
            key(&format!("ApiKey {}", b64("lh_x:whatever"))).as_deref(),
            Some("lh_x")
        );
        for bad in ["Basic !!!", "Basic", "Digest lh_x", "Bearer ", "lh_x", "Basic Og=="] {
            assert_eq!(key(bad), None, "{bad}");
        }
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
