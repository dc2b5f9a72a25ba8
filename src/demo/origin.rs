//! Only the demo's own page may drive the web chat.
//!
//! The web chat has no login, so whoever can make a browser send it a
//! request acts as a demo user. Three checks keep other web pages out:
//!
//! - **`Host`**: on loopback the request must name a loopback host
//!   (`localhost`, `127.x.x.x`, `[::1]`), so a page on a domain that an
//!   attacker re-points at 127.0.0.1 (DNS rebinding) is refused (403).
//! - **`Origin`**: a request that carries one (browsers send it on every
//!   POST and on every cross-origin request) must come from the demo's own
//!   origin, `http(s)://` and the request's `Host`; anything else,
//!   `null` included, is 403. Requests without one (curl, scripts) pass.
//! - **`Content-Type`**: a POST must be `application/json` (415
//!   otherwise). An HTML form cannot send that type, and a script on
//!   another origin cannot without a CORS preflight, which the demo never
//!   grants.
//!
//! [`exposure`] is the other half: the demo listens on loopback unless it
//! is told, with `--listen-public`, that it should not.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use crate::metrics::Outcome;

/// Which requests the web chat's routes take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameOrigin {
    /// The web chat is not served (`scalebot serve`): its routes answer
    /// 404 whatever the request says.
    Off,
    /// The demo listens on loopback: the `Host` must be a loopback name.
    Loopback,
    /// The demo listens beyond loopback (`--listen-public`): any `Host`,
    /// the `Origin` and `Content-Type` checks still apply.
    AnyHost,
}

impl SameOrigin {
    /// The rule for a demo listening on `listen`.
    pub fn for_listen(listen: SocketAddr) -> Self {
        if listen.ip().is_loopback() {
            SameOrigin::Loopback
        } else {
            SameOrigin::AnyHost
        }
    }
}

/// Why a request is refused before it reaches the web chat.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("This demo answers only at its own address; open it at the address it printed.")]
    Host,
    #[error("Only the demo's own page may use the web chat, so nothing was done.")]
    Origin,
    #[error("The web chat takes JSON only (Content-Type: application/json); nothing was done.")]
    NotJson,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match self {
            Refusal::Host | Refusal::Origin => StatusCode::FORBIDDEN,
            Refusal::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        };
        tracing::info!(reason = ?self, "web chat request refused");
        (
            status,
            Extension(Outcome("refused")),
            Json(json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

/// The checks, as a middleware on the web chat's routes
/// (`axum::middleware::from_fn_with_state` and `Router::route_layer`).
pub async fn guard(State(rule): State<SameOrigin>, request: Request, next: Next) -> Response {
    if rule == SameOrigin::Off {
        return next.run(request).await;
    }
    match check(rule, request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

fn check(rule: SameOrigin, method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text(header::HOST).ok_or(Refusal::Host)?;
    if rule == SameOrigin::Loopback && !is_loopback_host(host) {
        return Err(Refusal::Host);
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().map_err(|_| Refusal::Origin)?;
        let own = ["http://", "https://"]
            .iter()
            .any(|scheme| origin.eq_ignore_ascii_case(&format!("{scheme}{host}")));
        if !own {
            return Err(Refusal::Origin);
        }
    }
    if method == Method::POST && !is_json(text(header::CONTENT_TYPE)) {
        return Err(Refusal::NotJson);
    }
    Ok(())
}

/// `localhost`, or a loopback address, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // `[::1]:8080`, `[::1]`
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        // `127.0.0.1:8080`, `localhost`
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `application/json`, parameters (`; charset=utf-8`) allowed.
fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Where the demo may listen: on loopback always; beyond it only when the
/// person starting it said so (`--listen-public`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    Loopback,
    /// Reachable from other machines: say so loudly.
    Public,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the demo would listen on {0}, beyond this machine: its web chat has no login, and anyone \
     who reaches it can act as any demo user (approvals included). Listen on 127.0.0.1, or add \
     --listen-public to do it anyway"
)]
pub struct NotConfirmed(pub SocketAddr);

/// Whether the demo may listen on `listen`, given `--listen-public`.
pub fn exposure(listen: SocketAddr, listen_public: bool) -> Result<Exposure, NotConfirmed> {
    match (listen.ip().is_loopback(), listen_public) {
        (true, _) => Ok(Exposure::Loopback),
        (false, true) => Ok(Exposure::Public),
        (false, false) => Err(NotConfirmed(listen)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).expect("a header value"));
        }
        h
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:8080",
            "127.1.2.3",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example:8080",
            "10.0.0.1:8080",
            "localhost.evil.example",
            "[2001:db8::1]:80",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn the_checks_in_order() {
        let json = (header::CONTENT_TYPE, "application/json; charset=utf-8");
        let host = (header::HOST, "127.0.0.1:8080");
        let ok = |rule, h: &HeaderMap| check(rule, &Method::POST, h).is_ok();
        assert!(ok(
            SameOrigin::Loopback,
            &headers(&[host.clone(), json.clone()])
        ));
        let own = (header::ORIGIN, "http://127.0.0.1:8080");
        assert!(ok(
            SameOrigin::Loopback,
            &headers(&[host.clone(), own.clone(), json.clone()])
        ));
        for origin in ["http://evil.example", "null", "http://127.0.0.1:9999"] {
            let h = headers(&[host.clone(), (header::ORIGIN, origin), json.clone()]);
            assert!(
                matches!(
                    check(SameOrigin::AnyHost, &Method::POST, &h),
                    Err(Refusal::Origin)
                ),
                "{origin}"
            );
        }
        let rebound = headers(&[
            (header::HOST, "evil.example:8080"),
            (header::ORIGIN, "http://evil.example:8080"),
            json.clone(),
        ]);
        assert!(matches!(
            check(SameOrigin::Loopback, &Method::POST, &rebound),
            Err(Refusal::Host)
        ));
        assert!(check(SameOrigin::AnyHost, &Method::POST, &rebound).is_ok());
        let form = headers(&[
            host.clone(),
            own,
            (header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
        ]);
        assert!(matches!(
            check(SameOrigin::Loopback, &Method::POST, &form),
            Err(Refusal::NotJson)
        ));
        assert!(check(SameOrigin::Loopback, &Method::GET, &headers(&[host])).is_ok());
    }

    #[test]
    fn beyond_loopback_needs_the_flag() {
        let public: SocketAddr = "0.0.0.0:8080".parse().expect("addr");
        let local: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        assert_eq!(exposure(local, false).ok(), Some(Exposure::Loopback));
        assert_eq!(exposure(public, true).ok(), Some(Exposure::Public));
        let refused = exposure(public, false).expect_err("needs --listen-public");
        assert!(refused.to_string().contains("--listen-public"), "{refused}");
    }
}
