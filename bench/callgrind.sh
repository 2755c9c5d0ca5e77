#!/usr/bin/env bash
# Instructions per request (valgrind's callgrind), the steadiest figure on a noisy machine:
# the same binary, inputs and environment count the same whatever else the machine does.
#
#   bench/callgrind.sh                          # this tree's release build
#   BENCH_BIN=/tmp/portcullis-old bench/callgrind.sh
#   ONLY='HTTP/2|gRPC' bench/callgrind.sh      # the scenarios whose name matches
#
# For each scenario the server runs under callgrind; after a warm-up the counters are zeroed,
# N requests are sent over one keep-alive connection, and the counters dumped: instructions
# of every server thread over those requests, divided by N. Scenarios:
#   proxy, pass rule      GET through the built-in proxy of a pass-listed path (no identity)
#   proxy, session        GET through the built-in proxy with a session cookie
#   decision, session     Barong's decision endpoint with a session cookie (Redis, policy, JWT reuse)
#   decision over HTTP/2  the same over HTTP/2 (prior knowledge)
#   gRPC Check, session   Envoy's gRPC ext_authz Check for the same request, over HTTP/2
#   decision, 100000 permission rows / 10000 restrictions
#                         the session decision with that many more rows (bench/rows.sql)
#
# KEEP=DIR keeps each scenario's profile there (callgrind_annotate DIR/<scenario>.* shows
# where the instructions go).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-400}
WORK=$(mktemp -d /tmp/portcullis-callgrind.XXXXXX)
STATIC_PORT=18091 PORTCULLIS_PORT=18090
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
./scripts/services.sh >/dev/null
if [ -z "${BENCH_BIN:-}" ]; then cargo build --release --quiet; fi
BIN="${BENCH_BIN:-target/release/portcullis} ${BENCH_FLAGS---dev}"

mkdir -p "$WORK/static"
cat > "$WORK/static/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1;
error_log $WORK/static/error.log warn; pid $WORK/static/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off; keepalive_requests 1000000;
  client_body_temp_path $WORK/static/body; proxy_temp_path $WORK/static/proxy;
  fastcgi_temp_path $WORK/static/fcgi; uwsgi_temp_path $WORK/static/uwsgi; scgi_temp_path $WORK/static/scgi;
  server { listen 127.0.0.1:$STATIC_PORT;
    location / { default_type application/json; return 200 '{"balance":"1.0","currency":"btc"}'; } }
}
CONF
nginx -p "$WORK/static" -c "$WORK/static/nginx.conf" &
PIDS+=($!)

cat > "$WORK/portcullis.toml" <<CONF
[server]
listen = "127.0.0.1:$PORTCULLIS_PORT"
[database]
url = "postgres://postgres@127.0.0.1:5432/portcullis_callgrind"
[redis]
key_prefix = "callgrind:"
[session]
secure_cookie = false
[jwt]
dev_key_path = "$WORK/jwt.pem"
[encryption]
dev_key_path = "$WORK/enc.key"
[telemetry]
log_filter = "warn"
[[routes]]
prefix = "/api/v2/peatio"
upstream = "http://127.0.0.1:$STATIC_PORT"
CONF
export PORTCULLIS_CONFIG="$WORK/portcullis.toml"
$BIN migrate >/dev/null
$BIN policies apply >/dev/null
EMAIL="callgrind-$(date +%s%N)@example.com"
$BIN users create --email "$EMAIL" --password 'Iequ4geiEWQw!' --role member --level 3 >/dev/null

# send COOKIE URL [h2load args...]: N requests to URL over one connection, one at a time.
# HTTP/1.1 with curl (it reuses the connection within a config); HTTP/2 with h2load, since
# Debian's curl 7.88 fails a reused prior-knowledge connection ("Error in the HTTP2 framing
# layer") against any server.
send() {
  local cookie=$1 url=$2; shift 2
  if [ $# -gt 0 ]; then
    h2load -n "$N" -c 1 -m 1 -H "user-agent: bench" -H "cookie: $cookie" "$@" "$url" |
      grep -q "^status codes: $N 2xx" || echo "h2load: not every request was allowed" >&2
    return
  fi
  local file="$WORK/requests"
  : > "$file"
  for _ in $(seq 1 "$N"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$url" >> "$file"; done
  curl -sS -A bench -H "cookie: $cookie" -K "$file"
}

# measure NAME URL [h2load args...]: instructions per request of the server (over HTTP/2 when
# h2load arguments are given).
measure() {
  local name=$1 url=$2; shift 2
  if [ -n "${ONLY:-}" ] && ! [[ $name =~ $ONLY ]]; then return 0; fi
  local out="$WORK/callgrind.${name//[^a-zA-Z0-9]/_}"
  valgrind --tool=callgrind --callgrind-out-file="$out.%p" --dump-instr=no \
    $BIN serve >"$WORK/serve.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$PORTCULLIS_PORT/health" >/dev/null && break; sleep 0.2; done
  local cookie
  cookie=$(curl -s -D - -o /dev/null -A bench -H 'content-type: application/json' \
    -d "{\"email\":\"$EMAIL\",\"password\":\"Iequ4geiEWQw!\"}" \
    "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/identity/sessions" |
    sed -nE 's/^set-cookie: (_barong_session=[^;]+).*/\1/Ip') || { cat "$WORK/serve.log" >&2; exit 1; }
  if [[ $name == gRPC* ]]; then
    /usr/bin/python3 tests/grpc/check.py "{\"method\":\"GET\",\"path\":\"/api/v2/peatio/account/balances\",\"headers\":{\"cookie\":\"$cookie\",\"user-agent\":\"bench\"},\"dump\":\"$WORK/check.bin\"}"
  fi
  send "$cookie" "$url" "$@"
  callgrind_control -z "$pid" >/dev/null 2>&1
  send "$cookie" "$url" "$@"
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local total
  total=$(grep -h '^summary:' "$out".*.* 2>/dev/null | awk '{s += $2} END {print s}')
  printf '%-22s %12.0f instructions/request\n' "$name" "$(echo "$total / $N" | bc -l)"
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"
    for f in "$out".*; do cp "$f" "$KEEP/${name//[^a-z]/_}.${f##*.}"; done
  fi
  rm -f "$out".*
}

# rows PERMISSIONS RESTRICTIONS: that many extra policy rows (bench/rows.sql).
rows() {
  psql -h 127.0.0.1 -U postgres -d portcullis_callgrind -v ON_ERROR_STOP=1 -q \
    -v permissions="$1" -v restrictions="$2" -f bench/rows.sql
}

measure "proxy, pass rule" "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/peatio/public/markets"
measure "proxy, session" "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/peatio/account/balances"
measure "decision, session" "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/api/v2/peatio/account/balances"
measure "decision over HTTP/2" "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/api/v2/peatio/account/balances" \
  -H "x-bench: h2"
measure "gRPC Check, session" "http://127.0.0.1:$PORTCULLIS_PORT/envoy.service.auth.v3.Authorization/Check" \
  -d "$WORK/check.bin" -H "content-type: application/grpc" -H "te: trailers"
rows 100000 0
measure "decision, 100000 permission rows" \
  "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/api/v2/peatio/account/balances"
rows 0 10000
measure "decision, 10000 restrictions" \
  "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/api/v2/peatio/account/balances"
rows 0 0
