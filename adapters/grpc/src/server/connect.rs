//! The Connect protocol's unary JSON beside gRPC and grpc-web, for game servers and
//! scripts that speak plain HTTP: `POST /game.mission.v1.MissionService/AchieveMission`
//! with `content-type: application/json` and the request message in the proto3 JSON
//! mapping; the answer is the response message in JSON, or a Connect error
//! (`{"code": "invalid_argument", "message": ..., "details": [...]}`, HTTP status by
//! code) carrying the same ErrorInfo details as the gRPC status.
//!
//! A JSON call becomes a gRPC call *inside* the server, right after the first layer, so
//! it goes through exactly what a gRPC call does: authentication, the rate limits
//! (decided from the head, before the body is read), the framing check with its size
//! limit and read deadline, the deadline (`connect-timeout-ms` becomes `grpc-timeout`),
//! metrics and traces. The JSON body is read and transcoded only when that framing check
//! reads the message, so a refused call's body is never read; it is read within
//! `MAX_REQUEST_BYTES` (an announced length beyond it is refused before a byte is read).
//! Streaming methods stay gRPC and grpc-web.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http_body_util::BodyExt as _;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use serde_json::{Value, json};
use tonic::Status;
use tonic::body::Body;

/// Every message and service of ours, for the JSON mapping.
static POOL: LazyLock<DescriptorPool> =
    LazyLock::new(|| DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET).expect("our own descriptors decode"));

/// A response message larger than this is not turned into JSON (it never is: pages are
/// bounded far below it).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Whether a request is a Connect unary JSON call (rather than gRPC, grpc-web or a page).
fn is_connect_json<B>(req: &http::Request<B>) -> bool {
    req.method() == http::Method::POST
        && req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"))
}

/// The unary method a path names, among the ones `routed` (service names) allows.
fn method(path: &str, routed: &[&'static str]) -> Option<MethodDescriptor> {
    let (service, name) = path.strip_prefix('/')?.split_once('/')?;
    if !routed.contains(&service) {
        return None;
    }
    let method = POOL.get_service_by_name(service)?.methods().find(|m| m.name() == name)?;
    (!method.is_client_streaming() && !method.is_server_streaming()).then_some(method)
}

#[derive(Clone)]
pub struct ConnectLayer {
    routed: Arc<[&'static str]>,
    max: usize,
}

impl ConnectLayer {
    /// Connect JSON for the unary methods of the `routed` services, request bodies of at
    /// most `max` bytes.
    pub fn new(routed: &[&'static str], max: u32) -> Self {
        Self { routed: routed.into(), max: usize::try_from(max).unwrap_or(usize::MAX) }
    }
}

impl<S> tower::Layer<S> for ConnectLayer {
    type Service = Connect<S>;
    fn layer(&self, inner: S) -> Connect<S> {
        Connect { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct Connect<S> {
    inner: S,
    layer: ConnectLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<Body>> for Connect<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if !is_connect_json(&req) {
            return Box::pin(inner.call(req));
        }
        let Some(method) = method(req.uri().path(), &self.layer.routed) else {
            let path = req.uri().path().to_owned();
            return Box::pin(std::future::ready(Ok(error(&Status::unimplemented(format!(
                "{path}: no such unary method here (streaming methods are gRPC and grpc-web only)"
            ))))));
        };
        let announced = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if announced.is_some_and(|n| n > self.layer.max as u64) {
            let max = self.layer.max;
            return Box::pin(std::future::ready(Ok(error(&Status::resource_exhausted(format!(
                "request: message larger than {max} bytes"
            ))))));
        }
        let refusal = Arc::new(Mutex::new(None));
        let req = to_grpc(req, method.input(), self.layer.max, refusal.clone());
        Box::pin(async move {
            let answer = inner.call(req).await?;
            // A body that did not transcode: the framing check answered something of its
            // own about it; the reason is ours.
            if let Some(status) = refusal.lock().map(|mut r| r.take()).unwrap_or_default() {
                return Ok(error(&status));
            }
            Ok(from_grpc(answer, &method.output()).await)
        })
    }
}

/// The JSON request as the gRPC request it stands for: the same path and metadata, a
/// gRPC body transcoded when it is read.
fn to_grpc(
    req: http::Request<Body>,
    input: MessageDescriptor,
    max: usize,
    refusal: Arc<Mutex<Option<Status>>>,
) -> http::Request<Body> {
    let (mut parts, body) = req.into_parts();
    parts.version = http::Version::HTTP_2;
    let h = &mut parts.headers;
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert(header::TE, HeaderValue::from_static("trailers"));
    h.remove(header::CONTENT_LENGTH);
    if let Some(ms) = h.remove("connect-timeout-ms").and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok()) {
        // gRPC timeouts have at most 8 digits.
        let timeout = if ms < 100_000_000 { format!("{ms}m") } else { format!("{}S", (ms / 1000).min(99_999_999)) };
        if let Ok(v) = HeaderValue::from_str(&timeout) {
            h.insert("grpc-timeout", v);
        }
    }
    let body = JsonBody { state: State::Reading { body, buf: BytesMut::new() }, input, max, refusal };
    http::Request::from_parts(parts, Body::new(body))
}

/// The request body: the client's JSON, read whole (within `max`), then handed on as one
/// gRPC message frame.
struct JsonBody {
    state: State,
    input: MessageDescriptor,
    max: usize,
    refusal: Arc<Mutex<Option<Status>>>,
}

enum State {
    Reading { body: Body, buf: BytesMut },
    Done,
}

impl JsonBody {
    fn refuse(&mut self, status: Status) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        self.state = State::Done;
        if let Ok(mut r) = self.refusal.lock() {
            *r = Some(status.clone());
        }
        Poll::Ready(Some(Err(status)))
    }
}

impl http_body::Body for JsonBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            let State::Reading { body, buf } = &mut this.state else { return Poll::Ready(None) };
            match std::task::ready!(Pin::new(&mut *body).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if buf.len() + data.len() > this.max {
                            let max = this.max;
                            return this.refuse(Status::resource_exhausted(format!(
                                "request: message larger than {max} bytes"
                            )));
                        }
                        buf.extend_from_slice(&data);
                    }
                }
                Some(Err(_)) => return this.refuse(Status::cancelled("request: the request body could not be read")),
                None => {
                    let json = std::mem::take(buf).freeze();
                    this.state = State::Done;
                    return match transcode(&json, &this.input) {
                        Ok(frame) => Poll::Ready(Some(Ok(http_body::Frame::data(frame)))),
                        Err(status) => this.refuse(status),
                    };
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

/// A JSON message as one gRPC frame (uncompressed flag, length, protobuf).
fn transcode(json: &[u8], input: &MessageDescriptor) -> Result<Bytes, Status> {
    let json = if json.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { json };
    let mut de = serde_json::Deserializer::from_slice(json);
    let message = DynamicMessage::deserialize(input.clone(), &mut de)
        .and_then(|m| de.end().map(|()| m))
        .map_err(|e| Status::invalid_argument(format!("request: not a JSON {}: {e}", input.name())))?;
    let payload = message.encode_to_vec();
    let len = u32::try_from(payload.len()).map_err(|_| Status::resource_exhausted("request: message too large"))?;
    let mut frame = BytesMut::with_capacity(5 + payload.len());
    frame.extend_from_slice(&[0]);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame.freeze())
}

/// The gRPC answer as Connect's: the message in JSON, or the status as a Connect error.
async fn from_grpc(answer: http::Response<Body>, output: &MessageDescriptor) -> http::Response<Body> {
    let (parts, body) = answer.into_parts();
    // A trailers-only answer (a refusal before the handler) has its status in the head.
    if let Some(status) = Status::from_header_map(&parts.headers).filter(|s| s.code() != tonic::Code::Ok) {
        return error(&status);
    }
    let collected = match http_body_util::Limited::new(body, MAX_RESPONSE_BYTES).collect().await {
        Ok(c) => c,
        Err(e) => return error(&Status::unavailable(format!("the answer could not be read: {e}"))),
    };
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let mut bytes = collected.to_bytes();
    match Status::from_header_map(&trailers) {
        Some(status) if status.code() != tonic::Code::Ok => return error(&status),
        Some(_) => {}
        None => return error(&Status::internal("the answer carried no status")),
    }
    if bytes.len() < 5 || bytes[0] != 0 {
        return error(&Status::internal("the answer is not one uncompressed message"));
    }
    bytes.advance(5);
    let json = DynamicMessage::decode(output.clone(), bytes)
        .map_err(|e| e.to_string())
        .and_then(|m| serde_json::to_vec(&m).map_err(|e| e.to_string()));
    match json {
        Ok(json) => {
            let mut res = respond(http::StatusCode::OK, json);
            copy_retry_after(&parts.headers, res.headers_mut());
            res
        }
        Err(e) => {
            tracing::warn!(error = %e, "an answer could not be mapped to JSON");
            error(&Status::internal("the answer could not be mapped to JSON"))
        }
    }
}

fn copy_retry_after(from: &http::HeaderMap, to: &mut http::HeaderMap) {
    if let Some(v) = from.get("retry-after") {
        to.insert("retry-after", v.clone());
    }
}

fn respond(status: http::StatusCode, json: Vec<u8>) -> http::Response<Body> {
    let len = json.len();
    let mut res = http::Response::new(Body::new(http_body_util::Full::new(Bytes::from(json))));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A status as a Connect error answer.
fn error(status: &Status) -> http::Response<Body> {
    let (code, http_status) = connect_code(status.code());
    let mut body = json!({ "code": code, "message": status.message() });
    let details = details(status);
    if !details.is_empty() {
        body["details"] = Value::Array(details);
    }
    let mut res = respond(http_status, serde_json::to_vec(&body).unwrap_or_default());
    copy_retry_after(status.metadata().as_ref(), res.headers_mut());
    res
}

/// The status's details (google.rpc.Status.details) as Connect's: type without the
/// `type.googleapis.com/` prefix, value in base64, and an ErrorInfo also as `debug`.
fn details(status: &Status) -> Vec<Value> {
    if status.details().is_empty() {
        return Vec::new();
    }
    let Ok(rpc) = tonic_types::pb::Status::decode(status.details()) else { return Vec::new() };
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    rpc.details
        .iter()
        .map(|any| {
            let kind = any.type_url.rsplit('/').next().unwrap_or_default();
            let mut d = json!({ "type": kind, "value": b64.encode(&any.value) });
            if kind == "google.rpc.ErrorInfo"
                && let Ok(info) = tonic_types::pb::ErrorInfo::decode(any.value.as_slice())
            {
                d["debug"] = json!({ "reason": info.reason, "domain": info.domain, "metadata": info.metadata });
            }
            d
        })
        .collect()
}

/// Connect's name of a gRPC code and the HTTP status it is answered with.
fn connect_code(code: tonic::Code) -> (&'static str, http::StatusCode) {
    use http::StatusCode as H;
    use tonic::Code as C;
    match code {
        C::Ok => ("ok", H::OK),
        C::Cancelled => ("canceled", H::from_u16(499).unwrap_or(H::BAD_REQUEST)),
        C::Unknown => ("unknown", H::INTERNAL_SERVER_ERROR),
        C::InvalidArgument => ("invalid_argument", H::BAD_REQUEST),
        C::DeadlineExceeded => ("deadline_exceeded", H::GATEWAY_TIMEOUT),
        C::NotFound => ("not_found", H::NOT_FOUND),
        C::AlreadyExists => ("already_exists", H::CONFLICT),
        C::PermissionDenied => ("permission_denied", H::FORBIDDEN),
        C::ResourceExhausted => ("resource_exhausted", H::TOO_MANY_REQUESTS),
        C::FailedPrecondition => ("failed_precondition", H::BAD_REQUEST),
        C::Aborted => ("aborted", H::CONFLICT),
        C::OutOfRange => ("out_of_range", H::BAD_REQUEST),
        C::Unimplemented => ("unimplemented", H::NOT_IMPLEMENTED),
        C::Internal => ("internal", H::INTERNAL_SERVER_ERROR),
        C::Unavailable => ("unavailable", H::SERVICE_UNAVAILABLE),
        C::DataLoss => ("data_loss", H::INTERNAL_SERVER_ERROR),
        C::Unauthenticated => ("unauthenticated", H::UNAUTHORIZED),
    }
}

#[cfg(test)]
mod tests;
