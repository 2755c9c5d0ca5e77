//! Envoy's ext_authz messages, as much of them as the gRPC front reads or writes: hand-written
//! structs with prost's derive, so the field numbers are named once, here, and prost does the
//! wire format. No protoc, no build script, no generated Envoy API.
//!
//! Names and tags follow `tests/grpc/ext_authz.proto`, which mirrors Envoy's
//! `envoy/service/auth/v3/{attribute_context,external_auth}.proto`,
//! `envoy/config/core/v3/{address,base}.proto`, `envoy/type/v3/http_status.proto` and
//! `google/rpc/status.proto`. Fields we neither read nor write are left out: prost skips
//! unknown fields when decoding, as protobuf requires.
//!
//! Proto `string` fields are declared as `Bytes`. The wire format is the same, and two things
//! follow from it. Decoding from the request body's `Bytes` hands out slices of it instead of
//! a copy per field. And UTF-8 is judged per field by the front: a header value that is not
//! UTF-8 is dropped, while prost would refuse the whole message.

use prost::bytes::Bytes;

/// `envoy.service.auth.v3.CheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckRequest {
    #[prost(message, optional, tag = "1")]
    pub attributes: Option<AttributeContext>,
}

/// `envoy.service.auth.v3.AttributeContext`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeContext {
    /// The downstream client, as Envoy saw it.
    #[prost(message, optional, tag = "1")]
    pub source: Option<Peer>,
    #[prost(message, optional, tag = "4")]
    pub request: Option<Request>,
}

/// `AttributeContext.Peer`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Peer {
    #[prost(message, optional, tag = "1")]
    pub address: Option<Address>,
}

/// `envoy.config.core.v3.Address` (only its `socket_address` arm).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Address {
    #[prost(message, optional, tag = "1")]
    pub socket_address: Option<SocketAddress>,
}

/// `envoy.config.core.v3.SocketAddress`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SocketAddress {
    /// The IP address as text (proto `string`).
    #[prost(bytes = "bytes", tag = "2")]
    pub address: Bytes,
}

/// `AttributeContext.Request`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    #[prost(message, optional, tag = "2")]
    pub http: Option<HttpRequest>,
}

/// `AttributeContext.HttpRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HttpRequest {
    #[prost(bytes = "bytes", tag = "2")]
    pub method: Bytes,
    /// `map<string, string> headers`. On the wire a map is a repeated entry message with the
    /// key in field 1 and the value in field 2; it is read as that list so that every entry
    /// reaches the front in the order sent, duplicates included, as HTTP headers do, and no
    /// hash map is built per Check.
    #[prost(message, repeated, tag = "3")]
    pub headers: Vec<HeaderEntry>,
    /// Path and query, as the request line had them.
    #[prost(bytes = "bytes", tag = "4")]
    pub path: Bytes,
    /// What Envoy sends instead of `headers` when `encode_raw_headers` is on.
    #[prost(message, optional, tag = "13")]
    pub header_map: Option<HeaderMap>,
}

/// An entry of `HttpRequest.headers` (the map's implicit `HeadersEntry`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderEntry {
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
}

/// `envoy.config.core.v3.HeaderMap`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderMap {
    #[prost(message, repeated, tag = "1")]
    pub headers: Vec<HeaderValue>,
}

/// `envoy.config.core.v3.HeaderValue`: read in `header_map`, written in our answers.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderValue {
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
    /// What Envoy fills with `encode_raw_headers` (`value` stays empty then).
    #[prost(bytes = "bytes", tag = "3")]
    pub raw_value: Bytes,
}

/// `envoy.service.auth.v3.CheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(oneof = "HttpResponse", tags = "2, 3")]
    pub http_response: Option<HttpResponse>,
}

/// `CheckResponse.http_response`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HttpResponse {
    #[prost(message, tag = "2")]
    Denied(DeniedHttpResponse),
    #[prost(message, tag = "3")]
    Ok(OkHttpResponse),
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `envoy.service.auth.v3.OkHttpResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OkHttpResponse {
    /// Headers set on the upstream request.
    #[prost(message, repeated, tag = "2")]
    pub headers: Vec<HeaderValueOption>,
}

/// `envoy.service.auth.v3.DeniedHttpResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeniedHttpResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<HttpStatus>,
    #[prost(message, repeated, tag = "2")]
    pub headers: Vec<HeaderValueOption>,
    #[prost(string, tag = "3")]
    pub body: String,
}

/// `envoy.type.v3.HttpStatus`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HttpStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
}

/// `envoy.config.core.v3.HeaderValueOption`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderValueOption {
    #[prost(message, optional, tag = "1")]
    pub header: Option<HeaderValue>,
    /// `google.protobuf.BoolValue append`: present and false means "replace", read the same
    /// way by Envoy versions before and after `append_action`.
    #[prost(message, optional, tag = "2")]
    pub append: Option<BoolValue>,
}

/// `google.protobuf.BoolValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BoolValue {
    #[prost(bool, tag = "1")]
    pub value: bool,
}
