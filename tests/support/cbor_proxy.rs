//! moto 5.2.5 does not speak Smithy RPC v2 CBOR, which is the only protocol
//! the current aws-sdk-cloudwatch crate speaks (getmoto/moto#9195). This
//! proxy sits in front of moto: CloudWatch calls are translated CBOR ⇄ AWS
//! JSON 1.0 (which moto does speak, same operations and shapes); every other
//! request passes through untouched. The bot's SDK, its signing and its
//! retries are the real ones; only the framing of CloudWatch is converted.

use std::sync::OnceLock;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ciborium::value::Value as Cbor;
use serde_json::Value as Json;

const PREFIX: &str = "/service/GraniteServiceVersion20100801/operation/";

/// Fields that the CloudWatch model types as timestamps (CBOR tag 1).
const TIMESTAMP_FIELDS: &[&str] = &[
    "Timestamp",
    "Timestamps",
    "StateUpdatedTimestamp",
    "StateTransitionedTimestamp",
    "AlarmConfigurationUpdatedTimestamp",
    "LastModified",
    "StartTime",
    "EndTime",
];

static PROXY: OnceLock<String> = OnceLock::new();

/// Starts the proxy (once per test binary, on a runtime of its own so that
/// it outlives each test's runtime) and returns its URL.
pub fn start(moto: String) -> String {
    PROXY
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind proxy");
                    let url = format!("http://{}", listener.local_addr().expect("addr"));
                    let state = (moto, reqwest::Client::new());
                    let app = Router::new().fallback(handle).with_state(state);
                    tx.send(url).expect("send url");
                    let _ = axum::serve(listener, app).await;
                });
            });
            rx.recv().expect("proxy url")
        })
        .clone()
}

type Ctx = (String, reqwest::Client);

async fn handle(
    State((moto, http)): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    if let Some(op) = path.strip_prefix(PREFIX) {
        return cloudwatch(&moto, &http, op, &headers, &body).await;
    }
    let mut req = http.request(
        method,
        format!(
            "{moto}{}",
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        ),
    );
    for (k, v) in headers.iter() {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    match req.body(body).send().await {
        Ok(resp) => passthrough(resp).await,
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

async fn passthrough(resp: reqwest::Response) -> Response {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for (k, v) in resp.headers() {
        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
            headers.insert(k.clone(), v.clone());
        }
    }
    let body = resp.bytes().await.unwrap_or_default();
    (status, headers, body).into_response()
}

async fn cloudwatch(
    moto: &str,
    http: &reqwest::Client,
    op: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let decoded = decompress(headers, body);
    let json = if decoded.is_empty() {
        Json::Object(Default::default())
    } else {
        match ciborium::de::from_reader::<Cbor, _>(decoded.as_slice()) {
            Ok(v) => cbor_to_json(v),
            Err(e) => return (StatusCode::BAD_REQUEST, format!("bad CBOR: {e}")).into_response(),
        }
    };
    let mut req = http
        .post(format!("{moto}/"))
        .header("content-type", "application/x-amz-json-1.0")
        .header(
            "x-amz-target",
            format!("GraniteServiceVersion20100801.{op}"),
        )
        .body(json.to_string());
    if let Some(auth) = headers.get("authorization") {
        req = req.header("authorization", auth);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let text = resp.text().await.unwrap_or_default();
    let value: Json = if text.trim().is_empty() {
        Json::Object(Default::default())
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|_| serde_json::json!({"__type": "InternalFailure", "message": text}))
    };
    let mut out = Vec::new();
    if ciborium::ser::into_writer(&json_to_cbor(value, false), &mut out).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "CBOR encoding failed").into_response();
    }
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/cbor"));
    h.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    (status, h, out).into_response()
}

/// The SDK gzips large PutMetricData bodies (request compression).
fn decompress(headers: &HeaderMap, body: &Bytes) -> Vec<u8> {
    let gz = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    if !gz {
        return body.to_vec();
    }
    let mut out = Vec::new();
    let mut d = flate2::read::GzDecoder::new(body.as_ref());
    use std::io::Read;
    if d.read_to_end(&mut out).is_err() {
        return body.to_vec();
    }
    out
}

fn cbor_to_json(v: Cbor) -> Json {
    match v {
        Cbor::Integer(i) => {
            let n: i128 = i.into();
            Json::from(n as i64)
        }
        Cbor::Float(f) => serde_json::Number::from_f64(f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Cbor::Text(s) => Json::String(s),
        Cbor::Bool(b) => Json::Bool(b),
        Cbor::Null => Json::Null,
        Cbor::Tag(_, inner) => cbor_to_json(*inner),
        Cbor::Array(a) => Json::Array(a.into_iter().map(cbor_to_json).collect()),
        Cbor::Map(m) => Json::Object(
            m.into_iter()
                .filter_map(|(k, v)| match k {
                    Cbor::Text(k) => Some((k, cbor_to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
        Cbor::Bytes(b) => Json::String(String::from_utf8_lossy(&b).into_owned()),
        _ => Json::Null,
    }
}

fn json_to_cbor(v: Json, timestamp: bool) -> Cbor {
    match v {
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(b),
        Json::Number(n) => {
            let f = n.as_f64().unwrap_or_default();
            if timestamp {
                Cbor::Tag(1, Box::new(Cbor::Float(f)))
            } else if let Some(i) = n.as_i64() {
                Cbor::Integer(i.into())
            } else {
                Cbor::Float(f)
            }
        }
        Json::String(s) => {
            if timestamp {
                // moto may answer timestamps as ISO 8601 strings.
                match chrono::DateTime::parse_from_rfc3339(&s) {
                    Ok(t) => Cbor::Tag(
                        1,
                        Box::new(Cbor::Float(t.timestamp_millis() as f64 / 1000.0)),
                    ),
                    Err(_) => Cbor::Text(s),
                }
            } else {
                Cbor::Text(s)
            }
        }
        Json::Array(a) => Cbor::Array(a.into_iter().map(|x| json_to_cbor(x, timestamp)).collect()),
        Json::Object(m) => Cbor::Map(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let ts = TIMESTAMP_FIELDS.contains(&k.as_str());
                    (Cbor::Text(k), json_to_cbor(v, ts))
                })
                .collect(),
        ),
    }
}
