//! The dashboard: one page and its script and style, built into the
//! binary (no CDN, no build step). The page signs in with a tenant key,
//! kept in the browser's session storage, and reads the same API as any
//! client; nothing here reads a store.
//!
//! `GET /` is also the Elasticsearch probe shippers send: a request whose
//! `Accept` names `text/html` (a browser's) gets the page, any other the
//! probe's answer (`elastic::info`).

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::openapi::AssetErrors;

const INDEX: &str = include_str!("index.html");
/// One script: the views of `app.js`, then `facets.js` and `saved.js`
/// (functions it calls once the page runs).
const SCRIPT: &str = concat!(
    include_str!("app.js"),
    include_str!("facets.js"),
    include_str!("saved.js"),
    include_str!("charts.js")
);
const STYLE: &str = include_str!("app.css");

/// The page only runs its own script and style and talks to its own
/// origin; no other site may frame it (the key is in its session).
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The assets' names carry a digest of their content, so a page always
/// loads the assets of its own build and they can be cached for good.
static DIGEST: LazyLock<String> = LazyLock::new(|| {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (SCRIPT, STYLE).hash(&mut h);
    format!("{:016x}", h.finish())
});

static PAGE: LazyLock<String> = LazyLock::new(|| {
    INDEX
        .replace("{script}", &format!("/ui/app-{}.js", *DIGEST))
        .replace("{style}", &format!("/ui/app-{}.css", *DIGEST))
        .replace("{version}", env!("CARGO_PKG_VERSION"))
});

/// Whether a request to `/` comes from a browser that wants the page.
pub fn wants_page(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|t| t.trim().starts_with("text/html")))
}

/// The page itself.
pub fn page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        PAGE.as_str(),
    )
        .into_response()
}

/// The dashboard's script or style, by the name the page gives it.
#[utoipa::path(get, path = "/ui/{asset}", tag = "dashboard",
    params(("asset" = String, Path, description = "`app-<digest>.js` or `app-<digest>.css`, as the page names them")),
    responses((status = 200, description = "The asset", content_type = "text/javascript"), AssetErrors))]
pub async fn asset(Path(asset): Path<String>) -> Result<Response, ApiError> {
    let (body, kind) = match asset.strip_prefix("app-").and_then(|a| a.split_once('.')) {
        Some((digest, "js")) if digest == DIGEST.as_str() => (SCRIPT, "text/javascript; charset=utf-8"),
        Some((digest, "css")) if digest == DIGEST.as_str() => (STYLE, "text/css; charset=utf-8"),
        _ => return Err(ApiError::not_found("no such asset of this build")),
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_gets_the_page_and_a_client_the_probe() {
        let accept = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(v));
            h
        };
        assert!(wants_page(&accept(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!wants_page(&accept("application/json")));
        assert!(!wants_page(&accept(
            "application/vnd.elasticsearch+json; compatible-with=8"
        )));
        assert!(!wants_page(&accept("*/*")), "curl and shippers send */*");
        assert!(!wants_page(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn only_this_builds_assets_are_served() {
        let ok = asset(Path(format!("app-{}.js", *DIGEST))).await.expect("the script");
        assert_eq!(ok.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert!(
            ok.headers()[header::CACHE_CONTROL]
                .to_str()
                .is_ok_and(|v| v.contains("immutable"))
        );
        for name in [
            "app-0000000000000000.js".to_string(),
            format!("app-{}.wasm", *DIGEST),
            "../../Cargo.toml".to_string(),
            format!("app-{}.js/../app.js", *DIGEST),
            String::new(),
        ] {
            let refused = asset(Path(name.clone()))
                .await
                .err()
                .map(|e| e.into_response().status());
            assert_eq!(refused, Some(axum::http::StatusCode::NOT_FOUND), "{name:?}");
        }
    }

    #[test]
    fn the_page_names_its_own_assets_and_no_other_origin() {
        assert!(PAGE.contains(&format!("/ui/app-{}.js", *DIGEST)));
        assert!(PAGE.contains(&format!("/ui/app-{}.css", *DIGEST)));
        for asset in [INDEX, SCRIPT, STYLE] {
            let urls = asset.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !urls.contains("http://") && !urls.contains("https://"),
                "no CDN, no other origin"
            );
        }
        // Records are put on the page as text, never parsed as HTML.
        assert!(!SCRIPT.contains("innerHTML") && !SCRIPT.contains("insertAdjacentHTML"));
    }
}
