//! Calls made byte by byte, as a client that does not follow the rules would: any body
//! over gRPC (HTTP/2) or grpc-web (HTTP/1.1), and what status came back.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use tonic::Code;

/// A message in gRPC's frame: no compression, its length, the bytes.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// The status a call ended with, and the data frames of the answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: Code,
    pub message: String,
    pub data: Vec<Vec<u8>>,
}

/// POSTs `body` (framed or not, as given) to `path` over HTTP/2, as gRPC; a plain
/// HTTP/2 client, which enforces no deadline of its own.
///
/// # Panics
/// When the connection fails.
pub async fn grpc(addr: SocketAddr, path: &str, token: Option<&str>, body: Vec<u8>) -> Answer {
    grpc_with(addr, path, token, body, &[]).await
}

/// [`grpc`] with extra headers.
///
/// # Panics
/// When the connection fails.
pub async fn grpc_with(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Answer {
    let client = client();
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(http_body_util::Full::new(Bytes::from(body))).expect("request");
    let response = client.request(req).await.expect("an HTTP answer");
    let (parts, body) = response.into_parts();
    if let Some(status) = tonic::Status::from_header_map(&parts.headers) {
        return Answer { code: status.code(), message: status.message().to_owned(), data: vec![] };
    }
    let collected = body.collect().await.expect("the answer's body");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let data = parse_frames(&collected.to_bytes()).0;
    let status = tonic::Status::from_header_map(&trailers).unwrap_or_else(|| tonic::Status::unknown("no status"));
    Answer { code: status.code(), message: status.message().to_owned(), data }
}

type Client =
    hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, http_body_util::Full<Bytes>>;

/// One HTTP/2 client per test process (it pools connections), Nagle's algorithm off:
/// with it, each small call waits ~40 ms for the server's delayed ACK.
fn client() -> &'static Client {
    static CLIENT: std::sync::OnceLock<Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build(connector)
    })
}

/// Sends `method path` with `body` (already framed, or anything) over HTTP/1.1 as a
/// browser's grpc-web call, or as a plain request when `content_type` is `None`.
///
/// # Panics
/// When the connection fails or the answer is not HTTP.
pub fn grpc_web(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    token: Option<&str>,
    body: &[u8],
) -> (String, Answer) {
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://localhost:3000\r\n");
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\nX-Grpc-Web: 1\r\n"));
    }
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    conn.write_all(head.as_bytes()).expect("write");
    conn.write_all(body).expect("write");
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer") + 4;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let (data, trailers) = parse_frames(&raw[split..]);
    // A status is in the headers (an answer without messages) or in the trailer frame.
    let field = |name: &str| {
        head.lines().chain(trailers.lines()).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let code = field("grpc-status").and_then(|c| c.parse::<i32>().ok()).map_or(Code::Unknown, Code::from_i32);
    let message = field("grpc-message").map(|m| percent_decode(&m)).unwrap_or_default();
    (head, Answer { code, message, data })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The data frames and trailer text of a grpc-web body (chunked encoding undone crudely).
pub fn parse_frames(body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let (mut data, mut trailers, mut i) = (Vec::new(), String::new(), 0);
    while i + 5 <= body.len() {
        if body[i] != 0 && body[i] != 0x80 {
            i += 1; // chunk-size lines of a chunked body
            continue;
        }
        let len = u32::from_be_bytes([body[i + 1], body[i + 2], body[i + 3], body[i + 4]]) as usize;
        if i + 5 + len > body.len() {
            i += 1;
            continue;
        }
        let payload = body[i + 5..i + 5 + len].to_vec();
        if body[i] == 0x80 {
            trailers.push_str(&String::from_utf8_lossy(&payload));
        } else {
            data.push(payload);
        }
        i += 5 + len;
    }
    (data, trailers)
}
