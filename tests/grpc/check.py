#!/usr/bin/python3
"""A gRPC ext_authz client, as Envoy would call: one Check per run.

Reads a JSON request from argv[1]:
  {"target": "127.0.0.1:8080", "method": "GET", "path": "/x?y", "headers": {...},
   "raw_headers": false, "source": "203.0.113.9"}
("source" defaults to 127.0.0.1, as Envoy always reports one; null leaves it out)
("dump": FILE writes the framed request there instead of calling: bench/run.sh replays it)
and prints the CheckResponse as JSON (proto field names; absent fields omitted, presence of
`append` kept), or {"grpc_error": <code name>, "details": ...} when the call itself fails.
Needs Debian's python3-grpcio and python3-grpc-tools.
"""
import json
import os
import sys
import tempfile

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

import grpc  # noqa: E402
from grpc_tools import protoc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def load():
    out = tempfile.mkdtemp(prefix="ext-authz-")
    status = protoc.main(["protoc", "-I" + HERE, "--python_out=" + out,
                          "--grpc_python_out=" + out, os.path.join(HERE, "ext_authz.proto")])
    if status != 0:
        raise SystemExit("protoc failed")
    sys.path.insert(0, out)
    import ext_authz_pb2
    import ext_authz_pb2_grpc
    return ext_authz_pb2, ext_authz_pb2_grpc


def main():
    spec = json.loads(sys.argv[1])
    pb, stubs = load()
    request = pb.CheckRequest()
    http = request.attributes.request.http
    http.id = "test-request"
    http.method = spec["method"]
    http.path = spec["path"]
    http.host = "exchange.example"
    http.scheme = "https"
    http.protocol = "HTTP/1.1"
    http.size = -1
    for key, value in spec.get("headers", {}).items():
        if spec.get("raw_headers"):
            http.header_map.headers.add(key=key, raw_value=value.encode())
        else:
            http.headers[key] = value
    http.headers[":authority"] = "exchange.example"
    # Envoy always reports the downstream address; "source": null leaves it out.
    source = spec.get("source", "127.0.0.1")
    if source:
        request.attributes.source.address.socket_address.address = source
        request.attributes.source.address.socket_address.port_value = 51000
    if spec.get("dump"):
        message = request.SerializeToString()
        with open(spec["dump"], "wb") as out:
            out.write(b"\0" + len(message).to_bytes(4, "big") + message)
        return
    with grpc.insecure_channel(spec["target"]) as channel:
        try:
            response = stubs.AuthorizationStub(channel).Check(request, timeout=5)
        except grpc.RpcError as err:
            print(json.dumps({"grpc_error": err.code().name, "details": err.details()}))
            return
    print(json.dumps(to_dict(response)))


def to_dict(message):
    out = {}
    for field, value in message.ListFields():
        if field.label == field.LABEL_REPEATED:
            out[field.name] = [to_dict(v) if hasattr(v, "ListFields") else v for v in value]
        elif field.type == field.TYPE_MESSAGE:
            out[field.name] = to_dict(value)
        elif field.type == field.TYPE_BYTES:
            out[field.name] = value.decode()
        else:
            out[field.name] = value
    return out


if __name__ == "__main__":
    main()
