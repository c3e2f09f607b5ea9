//! My page in the browser: the built web front end (`web/dist`, committed) embedded in
//! the executable and answered to every plain HTTP GET and HEAD, before authentication
//! (the files are public; the data behind them is not). The page calls the APIs over
//! grpc-web at this same address, so it needs no CORS.
//!
//! `/` is `index.html`, and so are `/admin` and every path under `/admin/` (the operator's
//! console: the same app, which routes on the path; the services still refuse every call
//! of a caller without the admin role), revalidated on every load (`no-cache` with an `ETag`); the files
//! under `/assets/` carry their content hash in their names and are cached for a year.
//! Every answer carries a strict Content-Security-Policy: scripts, styles and calls only
//! from this origin, nothing inline, no framing, no form submission.

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use rust_embed::Embed;
use tonic::body::Body;

#[derive(Embed)]
#[folder = "../../web/dist/"]
struct Dist;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The page, for [`grpc_adapter::server::Server::with_pages`].
pub fn pages() -> grpc_adapter::server::Pages {
    Arc::new(|req: &Request<Body>| answer(req.method(), req.uri().path(), req.headers().get(header::IF_NONE_MATCH)))
}

/// The answer to a GET or HEAD of `path`.
pub fn answer(method: &Method, path: &str, if_none_match: Option<&HeaderValue>) -> Response<Body> {
    let (name, cache) = match path {
        "/" | "/index.html" | "/admin" => ("index.html", "no-cache"),
        p if p.starts_with("/admin/") && !p.contains("..") => ("index.html", "no-cache"),
        p if p.starts_with("/assets/") => (&p[1..], IMMUTABLE),
        _ => return not_found(),
    };
    // A lookup among the embedded names only: nothing is read from the file system.
    let Some(file) = Dist::get(name) else { return not_found() };
    let etag = etag(&file.metadata.sha256_hash());
    let unchanged = if_none_match.and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(',').any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        })
    });
    let len = file.data.len();
    let (status, body) = if unchanged {
        (StatusCode::NOT_MODIFIED, Body::empty())
    } else if method == Method::HEAD {
        (StatusCode::OK, Body::empty())
    } else {
        (StatusCode::OK, full(file.data.into_owned()))
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let h = res.headers_mut();
    secure(h);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if status == StatusCode::OK {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    res
}

fn full(bytes: Vec<u8>) -> Body {
    Body::new(http_body_util::Full::new(bytes::Bytes::from(bytes)))
}

fn etag(hash: &[u8; 32]) -> String {
    let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

fn not_found() -> Response<Body> {
    let mut res = Response::new(full(b"not found\n".to_vec()));
    *res.status_mut() = StatusCode::NOT_FOUND;
    let h = res.headers_mut();
    secure(h);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Headers every answer carries.
fn secure(h: &mut http::HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    async fn get(path: &str) -> (Response<()>, String) {
        let (parts, body) = answer(&Method::GET, path, None).into_parts();
        let bytes = body.collect().await.expect("an in-memory body").to_bytes();
        (Response::from_parts(parts, ()), String::from_utf8_lossy(&bytes).into_owned())
    }

    fn header<'a>(res: &'a Response<()>, name: &str) -> &'a str {
        res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The script and style sheet the page loads, from its own text.
    fn asset_paths(html: &str) -> Vec<String> {
        html.split(['"', '\'']).filter(|s| s.starts_with("/assets/")).map(str::to_owned).collect()
    }

    #[tokio::test]
    async fn the_page_at_the_root_is_revalidated_and_runs_nothing_inline() {
        let (res, html) = get("/").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(&res, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&res, "cache-control"), "no-cache");
        let csp = header(&res, "content-security-policy");
        for directive in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(header(&res, "x-content-type-options"), "nosniff");
        // Nothing inline: the policy would block it, and the page must work under it.
        assert!(html.contains(r#"<script type="module" src="/assets/main-"#), "{html}");
        assert!(!html.contains("<script>") && !html.contains("<style") && !html.contains(" style="), "{html}");
        assert_eq!(get("/index.html").await.1, html);
    }

    #[tokio::test]
    async fn the_console_at_admin_is_the_same_page_under_the_same_policy() {
        let (_, root) = get("/").await;
        for path in ["/admin", "/admin/", "/admin/players/alice", "/admin/dead-letters"] {
            let (res, html) = get(path).await;
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&res, "content-type"), "text/html; charset=utf-8", "{path}");
            assert_eq!(header(&res, "cache-control"), "no-cache", "{path}");
            assert_eq!(header(&res, "content-security-policy"), CONTENT_SECURITY_POLICY, "{path}");
            assert_eq!(html, root, "{path}");
        }
        for path in ["/administrator", "/admins/x", "/admin/../Cargo.toml"] {
            assert_eq!(get(path).await.0.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[tokio::test]
    async fn hashed_assets_are_cached_for_good_with_their_content_type() {
        let (_, html) = get("/").await;
        let assets = asset_paths(&html);
        assert_eq!(assets.len(), 4, "script, the chunk it imports (preloaded), style sheet, icon: {assets:?}");
        for path in assets {
            let (res, body) = get(&path).await;
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&res, "cache-control"), IMMUTABLE, "{path}");
            assert!(!body.is_empty(), "{path}");
            let expected = if path.ends_with(".js") {
                "text/javascript; charset=utf-8"
            } else if path.ends_with(".css") {
                "text/css; charset=utf-8"
            } else {
                "image/svg+xml"
            };
            assert_eq!(header(&res, "content-type"), expected, "{path}");
            assert_eq!(header(&res, "content-length"), body.len().to_string(), "{path}");
        }
    }

    #[tokio::test]
    async fn an_unchanged_page_is_not_sent_again_and_head_sends_no_body() {
        let (res, _) = get("/").await;
        let tag = res.headers().get("etag").expect("an etag").clone();
        let again = answer(&Method::GET, "/", Some(&tag));
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert!(again.into_body().collect().await.unwrap().to_bytes().is_empty());
        let other = HeaderValue::from_static("\"0000\"");
        assert_eq!(answer(&Method::GET, "/", Some(&other)).status(), StatusCode::OK);

        let head = answer(&Method::HEAD, "/", None);
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(head.headers()["cache-control"], "no-cache");
        assert!(head.into_body().collect().await.unwrap().to_bytes().is_empty());
    }

    #[tokio::test]
    async fn anything_else_is_not_found_with_the_same_policy() {
        for path in [
            "/nope",
            "/assets/",
            "/assets/../index.html",
            "/assets/missing.js",
            "/../Cargo.toml",
            "//index.html",
            "/.well-known/jwks.json",
            "/game.mypage.v1.MyPageService/GetMyPage",
        ] {
            let (res, body) = get(path).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(body, "not found\n");
            assert_eq!(header(&res, "cache-control"), "no-store");
            assert!(header(&res, "content-security-policy").contains("default-src 'none'"));
        }
    }
}
