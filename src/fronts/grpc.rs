//! Envoy's gRPC ext_authz: `envoy.service.auth.v3.Authorization/Check` (and v2, whose wire
//! format is the same for every field read or written here), over HTTP/2 on the one listener.
//!
//! The original request comes as an `AttributeContext`: method, path with query, headers (as a
//! map, or as `header_map` when Envoy's `encode_raw_headers` is on) and the downstream peer.
//! An allow answers `OK` with an `ok_response` that sets `Authorization: Bearer <JWT>` on the
//! upstream request (overwriting whatever the client sent). A denial answers a non-OK status
//! with a `denied_response` carrying the real HTTP status and Barong's `{"errors":[…]}` body:
//! unlike an HTTP authz service's 5xx, a gRPC denial is never an Envoy "error", so
//! `failure_mode_allow` cannot turn our fail-closed 503 into an allow.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use http_body_util::StreamBody;

use super::{Decider, DecisionState, Original, decide};
use crate::gate::Denial;
use crate::net::client_ip::UnreadableForwardedFor;
use crate::net::path::{Forwarding, split_query};
use crate::net::protobuf::{self, Malformed, Value, Writer};

/// The service paths Envoy calls.
pub const CHECK_V3: &str = "envoy.service.auth.v3.Authorization/Check";
pub const CHECK_V2: &str = "envoy.service.auth.v2.Authorization/Check";

/// gRPC status codes we answer with.
mod code {
    pub const OK: u64 = 0;
    pub const PERMISSION_DENIED: u64 = 7;
    pub const UNAVAILABLE: u64 = 14;
    pub const UNAUTHENTICATED: u64 = 16;
}

/// What the gate needs from a `CheckRequest`.
#[derive(Debug, Default, PartialEq)]
pub struct Check {
    pub method: String,
    /// Path and query, undecoded, as the request line had it.
    pub path: String,
    pub headers: HeaderMap,
    /// The downstream peer as Envoy saw it.
    pub source: Option<IpAddr>,
    /// Bytes of header names and values read so far (bounded).
    header_bytes: usize,
}

/// Largest CheckRequest read. Envoy sends the original request's headers (60 KiB at most by
/// its defaults) and a little context; a bigger message is refused, not buffered.
const MAX_MESSAGE: usize = 256 * 1024;
/// Bounds on the original request's headers: Envoy's own limits are 100 headers and 60 KiB.
const MAX_HEADERS: usize = 512;
const MAX_HEADER_BYTES: usize = 128 * 1024;

pub async fn handle(
    State(front): State<DecisionState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    // Every answer from here on is a CheckResponse: a malformed, oversized or unreadable call
    // is a denial (400), never a failed call, which `failure_mode_allow: true` would turn into
    // an allow.
    let is_grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/grpc"));
    if !is_grpc {
        return refuse(Denial::INVALID_REQUEST);
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_MESSAGE + 5).await else {
        return refuse(Denial::INVALID_REQUEST);
    };
    let Ok(message) = unframe(&body) else {
        return refuse(Denial::INVALID_REQUEST);
    };
    let Ok(check) = decode_check(message) else {
        return refuse(Denial::INVALID_REQUEST);
    };
    let (raw_path, query) = split_query(&check.path);
    let original = Original {
        method: &check.method,
        raw_path,
        query,
        // Envoy forwards the path it sent us (normalised only with `normalize_path`).
        forwarding: Forwarding::AsIs,
    };
    let client = client_of(&front, peer.ip(), &check);
    let answer = match decide(&front, "grpc", &original, client, &check.headers).await {
        Ok(bearer) => encode_allow(bearer.as_deref()),
        Err(denial) => encode_deny(denial),
    };
    grpc_ok(answer)
}

/// The client of a Check: Envoy's downstream address when Envoy is a peer we trust and says
/// it, walked through X-Forwarded-For when that address is itself a trusted hop (a load
/// balancer in front of Envoy). Anyone else is their own client, whatever they claim; a
/// trusted Envoy that does not say is refused rather than taken for the client itself.
fn client_of(
    front: &Decider,
    peer: IpAddr,
    check: &Check,
) -> Result<IpAddr, UnreadableForwardedFor> {
    if !front.client_ip.is_trusted(peer) {
        return Ok(peer.to_canonical());
    }
    match check.source {
        Some(source) => front.client_ip.resolve(source, &check.headers),
        None => Err(UnreadableForwardedFor),
    }
}

fn refuse(denial: Denial) -> Response {
    grpc_ok(encode_deny(denial))
}

/// The one length-prefixed, uncompressed message of a unary call.
fn unframe(body: &[u8]) -> Result<&[u8], Malformed> {
    let (head, message) = body.split_at_checked(5).ok_or(Malformed)?;
    // Compressed messages are not negotiated (we announce no grpc-accept-encoding).
    if head[0] != 0 {
        return Err(Malformed);
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if message.len() != len || len > MAX_MESSAGE {
        return Err(Malformed);
    }
    Ok(message)
}

/// Reads `CheckRequest.attributes` { source.address.socket_address.address,
/// request.http { method, headers | header_map, path } }.
pub fn decode_check(message: &[u8]) -> Result<Check, Malformed> {
    let mut check = Check::default();
    for_each(message, 1, |attributes| {
        for field in protobuf::fields(attributes) {
            match field? {
                (1, Value::Bytes(source)) => check.source = decode_peer(source)?,
                (4, Value::Bytes(request)) => {
                    for_each(request, 2, |http| decode_http(http, &mut check))?
                }
                _ => {}
            }
        }
        Ok(())
    })?;
    Ok(check)
}

fn decode_http(http: &[u8], check: &mut Check) -> Result<(), Malformed> {
    for field in protobuf::fields(http) {
        match field? {
            (2, Value::Bytes(method)) => check.method = text(method)?,
            (3, Value::Bytes(entry)) => {
                let (key, value) = pair(entry, 2)?;
                add_header(check, key, value)?;
            }
            (4, Value::Bytes(path)) => check.path = text(path)?,
            // header_map { repeated HeaderValue headers = 1 }, HeaderValue { key = 1,
            // value = 2, raw_value = 3 }: raw_value is what Envoy fills.
            (13, Value::Bytes(map)) => for_each(map, 1, |entry| {
                let (key, value) = pair(entry, 2)?;
                let (_, raw) = pair(entry, 3)?;
                add_header(check, key, if raw.is_empty() { value } else { raw })
            })?,
            _ => {}
        }
    }
    Ok(())
}

/// `Peer.address (1) → Address.socket_address (1) → SocketAddress.address (2)`.
fn decode_peer(peer: &[u8]) -> Result<Option<IpAddr>, Malformed> {
    let mut ip = None;
    for_each(peer, 1, |address| {
        for_each(address, 1, |socket| {
            let (_, host) = pair(socket, 2)?;
            ip = std::str::from_utf8(host).ok().and_then(|h| h.parse().ok());
            Ok(())
        })
    })?;
    Ok(ip)
}

/// Calls `f` with every sub-message in field `number`.
fn for_each(
    message: &[u8],
    number: u32,
    mut f: impl FnMut(&[u8]) -> Result<(), Malformed>,
) -> Result<(), Malformed> {
    for field in protobuf::fields(message) {
        if let (n, Value::Bytes(inner)) = field?
            && n == number
        {
            f(inner)?;
        }
    }
    Ok(())
}

/// Field 1 and field `second` of a two-string message (a map entry, a HeaderValue); absent
/// fields are empty, as proto3 has them.
fn pair(message: &[u8], second: u32) -> Result<(&[u8], &[u8]), Malformed> {
    let (mut first, mut other): (&[u8], &[u8]) = (b"", b"");
    for field in protobuf::fields(message) {
        match field? {
            (1, Value::Bytes(b)) => first = b,
            (n, Value::Bytes(b)) if n == second => other = b,
            _ => {}
        }
    }
    Ok((first, other))
}

fn text(bytes: &[u8]) -> Result<String, Malformed> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Malformed)
}

/// Pseudo-headers (`:path`, `:authority`) and anything HTTP would refuse are left out: the
/// gate reads only ordinary headers. More headers, or more header bytes, than any Envoy sends
/// make the request malformed (refused), so a crafted message can neither grow the map without
/// bound nor push a header out of it.
fn add_header(check: &mut Check, key: &[u8], value: &[u8]) -> Result<(), Malformed> {
    let (Ok(name), Ok(value)) = (HeaderName::from_bytes(key), HeaderValue::from_bytes(value))
    else {
        return Ok(());
    };
    check.header_bytes += name.as_str().len() + value.len();
    if check.headers.len() >= MAX_HEADERS || check.header_bytes > MAX_HEADER_BYTES {
        return Err(Malformed);
    }
    check
        .headers
        .try_append(name, value)
        .map_err(|_| Malformed)?;
    Ok(())
}

/// `CheckResponse { status: OK, ok_response { headers: [Authorization: Bearer …] } }`.
pub fn encode_allow(bearer: Option<&str>) -> Vec<u8> {
    let mut ok = Writer::new();
    if let Some(bearer) = bearer {
        // HeaderValueOption { header, append: BoolValue(false) }: an explicit "replace", read
        // the same way by Envoy versions before and after `append_action`.
        let mut value = Writer::new();
        value.bytes(1, b"authorization").bytes(2, bearer.as_bytes());
        let mut option = Writer::new();
        option.message(1, value).bytes(2, b"");
        ok.message(2, option);
    }
    let mut response = Writer::new();
    response.message(1, status(code::OK, "")).message(3, ok);
    response.into_bytes()
}

/// `CheckResponse { status, denied_response { status, headers, body } }`.
pub fn encode_deny(denial: Denial) -> Vec<u8> {
    let rpc = match denial.status {
        StatusCode::UNAUTHORIZED => code::UNAUTHENTICATED,
        StatusCode::SERVICE_UNAVAILABLE => code::UNAVAILABLE,
        _ => code::PERMISSION_DENIED,
    };
    let mut http_status = Writer::new();
    http_status.uint(1, u64::from(denial.status.as_u16()));
    let mut content_type = Writer::new();
    content_type
        .bytes(1, b"content-type")
        .bytes(2, b"application/json");
    let mut option = Writer::new();
    option.message(1, content_type);
    let mut denied = Writer::new();
    denied
        .message(1, http_status)
        .message(2, option)
        .bytes(3, format!(r#"{{"errors":["{}"]}}"#, denial.code).as_bytes());
    let mut response = Writer::new();
    response
        .message(1, status(rpc, denial.code))
        .message(2, denied);
    response.into_bytes()
}

/// `google.rpc.Status { code, message }`.
fn status(code: u64, message: &str) -> Writer {
    let mut status = Writer::new();
    status.uint(1, code);
    if !message.is_empty() {
        status.bytes(2, message.as_bytes());
    }
    status
}

/// A unary answer: the framed message, then `grpc-status: 0` in the trailers.
fn grpc_ok(message: Vec<u8>) -> Response {
    let mut framed = Vec::with_capacity(message.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = futures_util::stream::iter([
        Ok::<_, Infallible>(hyper::body::Frame::data(Bytes::from(framed))),
        Ok(hyper::body::Frame::trailers(trailers)),
    ]);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        )],
        Body::new(StreamBody::new(frames)),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_entry(key: &str, value: &str) -> Writer {
        let mut entry = Writer::new();
        entry.bytes(1, key.as_bytes()).bytes(2, value.as_bytes());
        entry
    }

    fn request(http: Writer, source: Option<&str>) -> Vec<u8> {
        let mut attributes = Writer::new();
        if let Some(source) = source {
            let mut socket = Writer::new();
            socket.bytes(2, source.as_bytes()).uint(3, 51000);
            let mut address = Writer::new();
            address.message(1, socket);
            let mut peer = Writer::new();
            peer.message(1, address);
            attributes.message(1, peer);
        }
        let mut req = Writer::new();
        req.message(2, http);
        attributes.message(4, req);
        let mut check = Writer::new();
        check.message(1, attributes);
        check.into_bytes()
    }

    #[test]
    fn reads_method_path_headers_and_source() {
        let mut http = Writer::new();
        http.bytes(1, b"req-1")
            .bytes(2, b"POST")
            .message(3, map_entry(":authority", "exchange.example"))
            .message(3, map_entry("cookie", "_barong_session=abc"))
            .bytes(4, b"/api/v2/peatio/orders?market=btcusd")
            .uint(9, 42);
        let check = decode_check(&request(http, Some("203.0.113.9"))).unwrap();
        assert_eq!(check.method, "POST");
        assert_eq!(check.path, "/api/v2/peatio/orders?market=btcusd");
        assert_eq!(check.headers["cookie"], "_barong_session=abc");
        assert_eq!(check.headers.len(), 1, "pseudo-headers are left out");
        assert_eq!(check.source, Some("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn reads_raw_header_maps() {
        let mut value = Writer::new();
        value.bytes(1, b"x-auth-apikey").bytes(3, b"0123abcd");
        let mut map = Writer::new();
        map.message(1, value);
        let mut http = Writer::new();
        http.bytes(2, b"GET").bytes(4, b"/x").message(13, map);
        let check = decode_check(&request(http, None)).unwrap();
        assert_eq!(check.headers["x-auth-apikey"], "0123abcd");
        assert_eq!(check.source, None);
    }

    #[test]
    fn refuses_bad_utf8_and_broken_messages() {
        let mut http = Writer::new();
        http.bytes(2, b"G\xffT");
        assert!(decode_check(&request(http, None)).is_err());
        assert!(decode_check(&[0x0a, 0x10, 0x22]).is_err());
        assert_eq!(decode_check(&[]).unwrap(), Check::default());
    }

    #[test]
    fn frames_are_checked() {
        assert!(unframe(&[0, 0, 0, 0, 2, 1, 2]).is_ok());
        assert!(unframe(&[0, 0, 0, 0, 3, 1, 2]).is_err());
        assert!(unframe(&[1, 0, 0, 0, 0]).is_err());
        assert!(unframe(&[0, 0]).is_err());
    }
}
