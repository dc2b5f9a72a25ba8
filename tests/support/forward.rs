//! What the test proxies (`counting_proxy.rs`, `rr_proxy.rs`) share: reading
//! a request whole, copying it to another host without its hop-by-hop
//! headers, and copying the answer back.

#![allow(dead_code)]

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

/// Headers that belong to one hop, not to the request.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
];

fn passes(name: &HeaderName) -> bool {
    !HOP_BY_HOP.contains(&name.as_str()) && name != "content-length"
}

/// A request read whole: its head, body, and path with the query.
pub struct Incoming {
    pub parts: Parts,
    pub body: Bytes,
    pub path_and_query: String,
}

/// Reads `request` whole (up to `limit` bytes); a 400 when it cannot.
pub async fn read(request: Request, limit: usize) -> Result<Incoming, Response> {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, limit).await else {
        return Err((StatusCode::BAD_REQUEST, "body unreadable\n").into_response());
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    Ok(Incoming {
        parts,
        body,
        path_and_query,
    })
}

impl Incoming {
    /// The same request to `base` (scheme and host, no trailing slash).
    pub fn to(&self, client: &reqwest::Client, base: &str) -> reqwest::RequestBuilder {
        let mut req = client
            .request(
                self.parts.method.clone(),
                format!("{base}{}", self.path_and_query),
            )
            .body(self.body.clone());
        for (name, value) in &self.parts.headers {
            if passes(name) {
                req = req.header(name.clone(), value.clone());
            }
        }
        req
    }
}

/// The upstream's answer, as the proxy's.
pub fn answer(status: StatusCode, headers: &HeaderMap, bytes: Bytes) -> Response {
    let mut out = Response::new(Body::from(bytes));
    *out.status_mut() = status;
    for (name, value) in headers {
        if passes(name) {
            out.headers_mut().append(name, value.clone());
        }
    }
    out
}
