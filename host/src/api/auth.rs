//! Bearer authentication: tenant keys (with scopes) and the admin token.

use axum::http::HeaderMap;
use axum::http::StatusCode;

use super::AppState;
use super::error::ApiError;
use crate::tenants::{Principal, Scope};

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(axum::http::header::AUTHORIZATION).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "send Authorization: Bearer <api key>",
        )
    })?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_api_key",
                "send Authorization: Bearer <api key>",
            )
        })
}

/// The tenant principal of a request, which must hold `scope`.
pub async fn tenant(state: &AppState, headers: &HeaderMap, scope: Scope) -> Result<Principal, ApiError> {
    let secret = bearer(headers)?;
    let principal = state.tenants.authenticate(secret).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "unknown or revoked API key",
        )
    })?;
    if !principal.can(scope) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("this key lacks the {:?} scope", scope.as_str()),
        ));
    }
    Ok(principal)
}

/// Admin endpoints take the admin token.
pub fn admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = bearer(headers)?;
    if constant_time_eq(given.as_bytes(), state.admin_token.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_admin_token",
            "admin endpoints take the admin token",
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
