#!/usr/bin/env bash
# Whole-gateway benchmark, all in one run on this machine, as ratios to nginx as a reverse
# proxy. Servers are pinned to CPU 0 and wrk to CPU 1 (a 2-core machine), one nginx worker,
# one Portcullis worker thread (tokio sizes itself to the CPUs it may use).
#
#   bench/run.sh            # 10 s per scenario
#   DURATION=30 bench/run.sh
#   BENCH_BIN=/path/to/other/portcullis bench/run.sh   # another build, not rebuilt
#
# The bench runs Portcullis in development mode (--dev: generated keys under the work dir);
# BENCH_FLAGS overrides that (builds from before --dev existed need it empty).
#
# Reports requests/s, latency p50/p99 at peak, server CPU per request (utime+stime from
# /proc/PID/stat over the requests served: the steadier figure on noisy machines) and the
# servers' resident memory after the scenario. Then, with a paced generator (examples/paced.rs,
# open schedule, latency from the scheduled time) at half the peak rate, p99 for
# the proxy and the decision endpoint, each beside nginx (reverse proxy, static answer) at the
# same rate on the same CPUs; the decision with 10,000 and 100,000 more permission
# rows and with 10,000 restrictions; and resident memory at SUBJECTS (100,000) cached users.
#
#   SUBJECTS=0 bench/run.sh    # skips the cached-subjects memory scenario (about 2 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
WORK=$(mktemp -d /tmp/portcullis-bench.XXXXXX)
STATIC_PORT=18081 PROXY_PORT=18082 PORTCULLIS_PORT=18080
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v h2load >/dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null; }
./scripts/services.sh >/dev/null
if [ -z "${BENCH_BIN:-}" ]; then cargo build --release --quiet; fi
# The paced load generator is std-only: rustc builds it in seconds, without the dev-dependencies
# `cargo build --example` would compile (clippy still checks it as an example).
PACED=$WORK/paced
rustc --edition 2024 -O -o "$PACED" examples/paced.rs
BIN="${BENCH_BIN:-target/release/portcullis} ${BENCH_FLAGS---dev}"
TICK=$(getconf CLK_TCK)

# Two nginx processes: a static answer on STATIC_PORT (the upstream of every proxy scenario),
# and a reverse proxy to it on PROXY_PORT, so that the baseline crosses processes as the
# Portcullis proxy does.
start_nginx() {
  local name=$1 server=$2
  mkdir -p "$WORK/$name"
  cat > "$WORK/$name/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1;
error_log $WORK/$name/error.log warn; pid $WORK/$name/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off; keepalive_requests 1000000;
  client_body_temp_path $WORK/$name/body; proxy_temp_path $WORK/$name/proxy;
  fastcgi_temp_path $WORK/$name/fcgi; uwsgi_temp_path $WORK/$name/uwsgi; scgi_temp_path $WORK/$name/scgi;
  upstream static { server 127.0.0.1:$STATIC_PORT; keepalive 64; }
  $server
}
CONF
  taskset -c 0 nginx -p "$WORK/$name" -c "$WORK/$name/nginx.conf" &
  PIDS+=($!)
}
start_nginx static "server { listen 127.0.0.1:$STATIC_PORT;
    location / { default_type application/json; return 200 '{\"balance\":\"1.0\",\"currency\":\"btc\"}'; } }"
STATIC_PID=$!
start_nginx proxy "server { listen 127.0.0.1:$PROXY_PORT;
    location / { proxy_pass http://static; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
PROXY_PID=$!
sleep 0.5

# Portcullis against its own database and Redis namespace.
cat > "$WORK/portcullis.toml" <<CONF
[server]
listen = "127.0.0.1:$PORTCULLIS_PORT"
[database]
url = "postgres://postgres@127.0.0.1:5432/portcullis_bench"
[redis]
url = "redis://127.0.0.1:6379/1"
key_prefix = "bench:"
[session]
secure_cookie = false
[jwt]
dev_key_path = "$WORK/jwt.pem"
[encryption]
dev_key_path = "$WORK/enc.key"
[api_keys]
nonce_lifetime_ms = 86400000
[telemetry]
log_filter = "warn"
[[routes]]
prefix = "/api/v2/peatio"
upstream = "http://127.0.0.1:$STATIC_PORT"
CONF
export PORTCULLIS_CONFIG="$WORK/portcullis.toml"
$BIN migrate >/dev/null
$BIN policies apply >/dev/null
# A person (session) and a bot (API key; key holders need 2FA enabled).
EMAIL="bench-$(date +%s%N)@example.com"
$BIN users create --email "$EMAIL" --password 'Iequ4geiEWQw!' --role member --level 3 >/dev/null
BOT=$($BIN users create --email "bot-$(date +%s%N)@example.com" --password 'Iequ4geiEWQw!' --role member --level 3)
psql -h 127.0.0.1 -U postgres -d portcullis_bench -qc "UPDATE users SET otp = true WHERE uid = '$BOT'"
KEY=$($BIN api-keys create --uid "$BOT")
KID=$(echo "$KEY" | sed -E 's/.*"kid":"([0-9a-f]+)".*/\1/')
SECRET=$(echo "$KEY" | sed -E 's/.*"secret":"([0-9a-f]+)".*/\1/')
NONCE=$(( $(date +%s%N) / 1000000 ))
SIGNATURE=$(printf '%s%s' "$NONCE" "$KID" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.* //')

# start_portcullis [VAR=value...]: a node on PORTCULLIS_PORT; its pid in PORTCULLIS_PID.
start_portcullis() { start_node "$PORTCULLIS_PORT" "$@"; PORTCULLIS_PID=$NODE_PID; }
# start_node PORT [VAR=value...]: a node listening on PORT; its pid in NODE_PID.
start_node() {
  local port=$1; shift
  env PORTCULLIS_SERVER__LISTEN="127.0.0.1:$port" "$@" taskset -c 0 $BIN serve >"$WORK/portcullis-$port.log" 2>&1 &
  NODE_PID=$!; PIDS+=($NODE_PID)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && return; sleep 0.1; done
  cat "$WORK/portcullis-$port.log"; exit 1
}
stop_portcullis() { kill "$PORTCULLIS_PID"; wait "$PORTCULLIS_PID" 2>/dev/null || true; }
# login [USER_AGENT]: a session cookie, bound to that User-Agent (bench by default).
login() {
  curl -s -D "$WORK/login.headers" -o "$WORK/login.body" -A "${1:-bench}" -H 'content-type: application/json' \
    -d "{\"email\":\"$EMAIL\",\"password\":\"Iequ4geiEWQw!\"}" \
    "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/identity/sessions"
  sed -nE 's/^set-cookie: (_barong_session=[^;]+).*/\1/Ip' "$WORK/login.headers"
}

cpu_ticks() { local t=0; for pid in "$@"; do t=$(( t + $(awk '{print $14 + $15}' "/proc/$pid/stat") )); done; echo $t; }
# Kernel CPU ticks (stime) of the servers: where a hop's syscalls and loopback TCP go.
sys_ticks() { local t=0; for pid in "$@"; do t=$(( t + $(awk '{print $15}' "/proc/$pid/stat") )); done; echo $t; }
# kernel_pct BEFORE AFTER SYS_BEFORE SYS_AFTER: the kernel's share of the servers' CPU, %.
kernel_pct() { awk -v t=$(( $2 - $1 )) -v s=$(( $4 - $3 )) 'BEGIN { printf "%.0f", t ? 100 * s / t : 0 }'; }
# Resident memory of the servers, MB.
rss_mb() { local kb=0; for pid in "$@"; do kb=$(( kb + $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status") )); done; echo $(( kb / 1024 )); }
# wrk's latency figure (e.g. 512.00us, 1.20ms) in ms.
to_ms() { awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); n = v + 0;
  if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000; printf "%.2f", n }'; }

# bench_rows PERMISSIONS RESTRICTIONS: that many extra rows in the bench database
# (bench/rows.sql: none match the measured request).
bench_rows() {
  psql -h 127.0.0.1 -U postgres -d portcullis_bench -v ON_ERROR_STOP=1 -q \
    -v permissions="$1" -v restrictions="$2" -f bench/rows.sql
}

RESULTS=()
# run NAME URL PIDS... -- wrk args
run() {
  local name=$1 url=$2; shift 2
  local pids=(); while [ "$1" != "--" ]; do pids+=("$1"); shift; done; shift
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d2s "$@" "$url" >/dev/null   # warm-up
  local before sys_before; before=$(cpu_ticks "${pids[@]}"); sys_before=$(sys_ticks "${pids[@]}")
  local out; out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url")
  local after sys_after; after=$(cpu_ticks "${pids[@]}"); sys_after=$(sys_ticks "${pids[@]}")
  local kernel; kernel=$(kernel_pct "$before" "$after" "$sys_before" "$sys_after")
  local requests; requests=$(echo "$out" | awk '/requests in/ {print $1}')
  local rps; rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local non2xx; non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  local p50; p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
  local p99; p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
  local cpu_us; cpu_us=$(awk -v t=$(( after - before )) -v hz="$TICK" -v n="$requests" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
  local rss; rss=$(rss_mb "${pids[@]}")
  RESULTS+=("$name|$rps|$cpu_us|${non2xx:-0}|$p50|$p99|$rss|$kernel")
  LAST_RPS=$rps
  printf '%-60s %10s req/s %8s us CPU/req (kernel %s%%)  p50 %s ms  p99 %s ms  RSS %s MB  non-2xx %s\n' \
    "$name" "$rps" "$cpu_us" "$kernel" "$p50" "$p99" "$rss" "${non2xx:-0}" >&2
}

# at_rate NAME RATE URL [header args]: latency at RATE requests/s with the paced generator on
# CPU 1 (CONNECTIONS keep-alive connections, an open schedule; latency counted from each
# request's scheduled time, so a server that falls behind pays for its queue; the first second
# is a warm-up, not counted).
HALF=()
at_rate() {
  local name=$1 rate=$2 url=$3; shift 3
  local out; out=$(taskset -c 1 "$PACED" --rate "$rate" --connections "$CONNECTIONS" --duration "$DURATION" "$@" "$url")
  value() { echo "$out" | awk -v k="$1" '$1 == k {print $2}'; }
  local rps p50 p99 p999 non2xx
  rps=$(value rate); p50=$(value p50_ms); p99=$(value p99_ms); p999=$(value p999_ms); non2xx=$(value non2xx)
  HALF+=("$name|$rps|$p50|$p99|$p999|$non2xx")
  printf '%-60s %10s req/s paced  p50 %s ms  p99 %s ms  p99.9 %s ms  non-2xx %s\n' \
    "$name" "$rps" "$p50" "$p99" "$p999" "$non2xx" >&2
}
# at_half NAME URL [header args]: at half the rate of the last `run`: the p99 a gateway shows
# when it is not saturated. The rate is kept in HALF_RATE for the nginx baseline at that rate.
at_half() {
  local name=$1 url=$2; shift 2
  HALF_RATE=$(awk -v r="$LAST_RPS" 'BEGIN { printf "%d", r / 2 }')
  at_rate "$name" "$HALF_RATE" "$url" "$@"
}

# run_h2 NAME URL PIDS... -- h2load args: the same over HTTP/2 (prior knowledge), for the
# gRPC front and the HTTP decision endpoint it is compared with.
run_h2() {
  local name=$1 url=$2; shift 2
  local pids=(); while [ "$1" != "--" ]; do pids+=("$1"); shift; done; shift
  taskset -c 1 h2load -t1 -c"$CONNECTIONS" -m1 -D2 "$@" "$url" >/dev/null   # warm-up
  local before sys_before; before=$(cpu_ticks "${pids[@]}"); sys_before=$(sys_ticks "${pids[@]}")
  local out; out=$(taskset -c 1 h2load -t1 -c"$CONNECTIONS" -m1 -D"$DURATION" "$@" "$url")
  local after sys_after; after=$(cpu_ticks "${pids[@]}"); sys_after=$(sys_ticks "${pids[@]}")
  local kernel; kernel=$(kernel_pct "$before" "$after" "$sys_before" "$sys_after")
  local requests; requests=$(echo "$out" | awk '/^requests:/ {print $8}')
  local rps; rps=$(echo "$out" | awk '/^finished in/ {print $4}')
  local non2xx; non2xx=$(echo "$out" | awk '/^status codes:/ {print $5 + $7 + $9}')
  local cpu_us; cpu_us=$(awk -v t=$(( after - before )) -v hz="$TICK" -v n="$requests" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
  local rss; rss=$(rss_mb "${pids[@]}")
  RESULTS+=("$name|$rps|$cpu_us|${non2xx:-0}|-|-|$rss|$kernel")
  printf '%-60s %10s req/s %8s us CPU/req (kernel %s%%)  RSS %s MB  non-2xx %s\n' "$name" "$rps" "$cpu_us" "$kernel" "$rss" "${non2xx:-0}" >&2
}

# run_spread NAME PATH PORTS -- PIDS -- wrk args: one wrk per port at once, CONNECTIONS shared
# among them; requests/s summed, CPU over every pid, p50 the first wrk's, p99 the worst.
run_spread() {
  local name=$1 path=$2; shift 2
  local ports=(); while [ "$1" != "--" ]; do ports+=("$1"); shift; done; shift
  local pids=(); while [ "$1" != "--" ]; do pids+=("$1"); shift; done; shift
  local each=$(( CONNECTIONS / ${#ports[@]} )) loads=()
  for port in "${ports[@]}"; do
    taskset -c 1 wrk -t1 -c"$each" -d2s "$@" "http://127.0.0.1:$port$path" >/dev/null & loads+=($!)
  done
  wait "${loads[@]}"
  local before sys_before; before=$(cpu_ticks "${pids[@]}"); sys_before=$(sys_ticks "${pids[@]}")
  local i=0; loads=()
  for port in "${ports[@]}"; do
    taskset -c 1 wrk -t1 -c"$each" -d"${DURATION}s" --latency "$@" "http://127.0.0.1:$port$path" >"$WORK/spread.$i" &
    loads+=($!); i=$(( i + 1 ))
  done
  wait "${loads[@]}"
  local after sys_after; after=$(cpu_ticks "${pids[@]}"); sys_after=$(sys_ticks "${pids[@]}")
  local kernel; kernel=$(kernel_pct "$before" "$after" "$sys_before" "$sys_after")
  local requests=0 rps=0 non2xx=0 p50="" p99=0
  for out in "$WORK"/spread.*; do
    requests=$(( requests + $(awk '/requests in/ {print $1}' "$out") ))
    rps=$(awk -v a="$rps" -v b="$(awk '/Requests\/sec/ {print $2}' "$out")" 'BEGIN { printf "%.2f", a + b }')
    non2xx=$(( non2xx + $(awk '/Non-2xx/ {n = $5} END {print n + 0}' "$out") ))
    local this50; this50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    local this99; this99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    [ -z "$p50" ] && p50=$this50
    p99=$(awk -v a="$p99" -v b="$this99" 'BEGIN { printf "%.2f", (b > a) ? b : a }')
  done
  rm -f "$WORK"/spread.*
  local cpu_us; cpu_us=$(awk -v t=$(( after - before )) -v hz="$TICK" -v n="$requests" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
  local rss; rss=$(rss_mb "${pids[@]}")
  RESULTS+=("$name|$rps|$cpu_us|$non2xx|$p50|$p99|$rss|$kernel")
  printf '%-60s %10s req/s %8s us CPU/req (kernel %s%%)  p50 %s ms  p99 %s ms  RSS %s MB  non-2xx %s\n' \
    "$name" "$rps" "$cpu_us" "$kernel" "$p50" "$p99" "$rss" "$non2xx" >&2
}

# Each decision front on the session, and the gRPC one against the same decision over HTTP/2:
# fronts TAG (Portcullis running, COOKIE set).
fronts() {
  local tag=$1 url="http://127.0.0.1:$PORTCULLIS_PORT"
  run "portcullis: decision, Envoy HTTP front, session, $tag" \
    "$url/api/v2/auth/api/v2/peatio/account/balances" \
    $PORTCULLIS_PID -- -H "Cookie: $COOKIE" -H "User-Agent: bench"
  run "portcullis: decision, nginx auth_request front, session, $tag" "$url/api/v2/auth/_/nginx" \
    $PORTCULLIS_PID -- -H "Cookie: $COOKIE" -H "User-Agent: bench" \
    -H "X-Original-Method: GET" -H "X-Original-URI: /api/v2/peatio/account/balances"
  run "portcullis: decision, forward-auth front, session, $tag" "$url/api/v2/auth/_/forward-auth" \
    $PORTCULLIS_PID -- -H "Cookie: $COOKIE" -H "User-Agent: bench" \
    -H "X-Forwarded-Method: GET" -H "X-Forwarded-Uri: /api/v2/peatio/account/balances"
  # Envoy's gRPC ext_authz against the HTTP decision endpoint, both over HTTP/2.
  local spec="{\"method\":\"GET\",\"path\":\"/api/v2/peatio/account/balances\",\"headers\":{\"cookie\":\"$COOKIE\",\"user-agent\":\"bench\"}"
  local allowed; allowed=$(/usr/bin/python3 tests/grpc/check.py "$spec,\"target\":\"127.0.0.1:$PORTCULLIS_PORT\"}")
  case "$allowed" in *authorization*) ;; *) echo "gRPC check not allowed: $allowed" >&2; exit 1 ;; esac
  /usr/bin/python3 tests/grpc/check.py "$spec,\"dump\":\"$WORK/check.bin\"}"
  run_h2 "portcullis: decision over HTTP/2, session, $tag" \
    "$url/api/v2/auth/api/v2/peatio/account/balances" $PORTCULLIS_PID -- \
    -H "Cookie: $COOKIE" -H "User-Agent: bench"
  run_h2 "portcullis: decision, gRPC ext_authz Check, session, $tag" \
    "$url/envoy.service.auth.v3.Authorization/Check" $PORTCULLIS_PID -- \
    -d "$WORK/check.bin" -H "content-type: application/grpc" -H "te: trailers"
}

# session_or_exit: logs in (COOKIE) and checks the session is allowed.
session_or_exit() {
  COOKIE=$(login)
  local check; check=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" -A bench \
    "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/api/v2/peatio/account/balances")
  [ "$check" = 200 ] || {
    echo "login did not yield a working session ($check): [$COOKIE]" >&2
    cat "$WORK/login.headers" "$WORK/login.body" "$WORK/portcullis-$PORTCULLIS_PORT.log" >&2
    exit 1
  }
}

echo "== $DURATION s per scenario, $CONNECTIONS connections, wrk on CPU 1, servers on CPU 0" >&2
run "nginx: static answer, direct" "http://127.0.0.1:$STATIC_PORT/api/v2/peatio/account/balances" $STATIC_PID --
run "nginx: reverse proxy (baseline)" "http://127.0.0.1:$PROXY_PORT/api/v2/peatio/account/balances" \
  $PROXY_PID $STATIC_PID --

for cache in true false; do
  tag="token cache $([ $cache = true ] && echo on || echo off)"
  start_portcullis PORTCULLIS_JWT__CACHE_TOKENS=$cache
  session_or_exit
  run "portcullis: proxy, session, $tag" "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/peatio/account/balances" \
    $PORTCULLIS_PID $STATIC_PID -- -H "Cookie: $COOKIE" -H "User-Agent: bench"
  if [ $cache = true ]; then
    at_half "portcullis: proxy, session" "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/peatio/account/balances" \
      -H "Cookie: $COOKIE" -H "User-Agent: bench"
    # The same rate through nginx: what this machine's two processes on one CPU cost anyway.
    at_rate "nginx: reverse proxy, at the same rate" "$HALF_RATE" \
      "http://127.0.0.1:$PROXY_PORT/api/v2/peatio/account/balances"
  fi
  fronts "$tag"
  if [ $cache = true ]; then
    DEFAULT_DECISION_CPU=$(printf '%s\n' "${RESULTS[@]}" | awk -F'|' '/Envoy HTTP front, session, token cache on/ {print $3}')
    at_half "portcullis: decision endpoint, session" \
      "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/api/v2/peatio/account/balances" \
      -H "Cookie: $COOKIE" -H "User-Agent: bench"
    at_rate "nginx: static answer, at the same rate" "$HALF_RATE" \
      "http://127.0.0.1:$STATIC_PORT/api/v2/peatio/account/balances"
    run "portcullis: decision, pass rule (no identity)" \
      "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/api/v2/peatio/public/markets" $PORTCULLIS_PID --
  fi
  stop_portcullis
  # One signed header set reused: only possible with the replay guard off.
  start_portcullis PORTCULLIS_JWT__CACHE_TOKENS=$cache PORTCULLIS_API_KEYS__REPLAY_GUARD=false
  run "portcullis: decision, Envoy HTTP front, API key (guard off), $tag" \
    "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/api/v2/peatio/account/balances" $PORTCULLIS_PID -- \
    -H "X-Auth-Apikey: $KID" -H "X-Auth-Nonce: $NONCE" -H "X-Auth-Signature: $SIGNATURE"
  run "portcullis: proxy, API key (guard off), $tag" \
    "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/peatio/account/balances" $PORTCULLIS_PID $STATIC_PID -- \
    -H "X-Auth-Apikey: $KID" -H "X-Auth-Nonce: $NONCE" -H "X-Auth-Signature: $SIGNATURE"
  stop_portcullis
done

# The same decision with a small and a large policy: 10 permission rows in all (the measured
# request's among them), then rows the request's role and verbs hold but whose paths the
# request does not match (the worst case for a scan), then restrictions of every looked-up
# scope that the client's address does not match.
psql -h 127.0.0.1 -U postgres -d portcullis_bench -v ON_ERROR_STOP=1 -q <<'SQL'
DROP TABLE IF EXISTS bench_permissions;
CREATE TABLE bench_permissions AS SELECT * FROM permissions;
DELETE FROM permissions WHERE id NOT IN (
  SELECT id FROM permissions ORDER BY (role = 'member' AND path LIKE 'api/v2/peatio%') DESC, id LIMIT 10);
SQL
start_portcullis
session_or_exit
run "portcullis: decision, Envoy HTTP front, session, 10 permission rows" \
  "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/api/v2/peatio/account/balances" \
  $PORTCULLIS_PID -- -H "Cookie: $COOKIE" -H "User-Agent: bench"
stop_portcullis
psql -h 127.0.0.1 -U postgres -d portcullis_bench -v ON_ERROR_STOP=1 -q <<'SQL'
DELETE FROM permissions;
INSERT INTO permissions SELECT * FROM bench_permissions;
DROP TABLE bench_permissions;
SQL
for rows in 10000 100000; do
  bench_rows "$rows" 0
  start_portcullis
  run "portcullis: decision, Envoy HTTP front, session, $rows more permission rows" \
    "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/api/v2/peatio/account/balances" \
    $PORTCULLIS_PID -- -H "Cookie: $COOKIE" -H "User-Agent: bench"
  stop_portcullis
done
bench_rows 0 10000
start_portcullis
run "portcullis: decision, Envoy HTTP front, session, 10000 restrictions" \
  "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/api/v2/peatio/account/balances" \
  $PORTCULLIS_PID -- -H "Cookie: $COOKIE" -H "User-Agent: bench"
stop_portcullis
bench_rows 0 0

# Redis Cluster (three primaries, on CPU 0 with the servers): one node, then three nodes
# sharing it, each taking a third of the connections. On this machine the nodes share one
# CPU, so three nodes measure what coordination costs, not how throughput scales.
CLUSTER_PORTS=(17101 17102 17103)
for port in "${CLUSTER_PORTS[@]}"; do
  mkdir -p "$WORK/redis-$port"
  (cd "$WORK/redis-$port" && taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --save "" \
    --appendonly no --cluster-enabled yes --cluster-config-file nodes.conf >/dev/null 2>&1 &)
done
sleep 0.5
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CLUSTER_PORTS[@]}") --cluster-yes >/dev/null
for _ in $(seq 1 100); do
  redis-cli -p "${CLUSTER_PORTS[0]}" cluster info | grep -q cluster_state:ok && break; sleep 0.1
done
CLUSTER_URL=$(printf 'redis://127.0.0.1:%s,' "${CLUSTER_PORTS[@]}"); CLUSTER_URL=${CLUSTER_URL%,}
CLUSTER_ENV=(PORTCULLIS_REDIS__URL="$CLUSTER_URL" PORTCULLIS_REDIS__CLUSTER=true)
start_portcullis "${CLUSTER_ENV[@]}"
session_or_exit
run "portcullis: decision, Envoy HTTP front, session, Redis Cluster, one node" \
  "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/api/v2/peatio/account/balances" \
  $PORTCULLIS_PID -- -H "Cookie: $COOKIE" -H "User-Agent: bench"
run "portcullis: proxy, session, Redis Cluster, one node" \
  "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/peatio/account/balances" \
  $PORTCULLIS_PID $STATIC_PID -- -H "Cookie: $COOKIE" -H "User-Agent: bench"
NODE_PORTS=($PORTCULLIS_PORT 18090 18091) NODE_PIDS=($PORTCULLIS_PID)
for port in "${NODE_PORTS[@]:1}"; do start_node "$port" "${CLUSTER_ENV[@]}"; NODE_PIDS+=($NODE_PID); done
run_spread "portcullis: decision, Envoy HTTP front, session, Redis Cluster, three nodes" \
  /api/v2/auth/api/v2/peatio/account/balances "${NODE_PORTS[@]}" -- "${NODE_PIDS[@]}" -- \
  -H "Cookie: $COOKIE" -H "User-Agent: bench"
run_spread "portcullis: proxy, session, Redis Cluster, three nodes" \
  /api/v2/peatio/account/balances "${NODE_PORTS[@]}" -- "${NODE_PIDS[@]}" $STATIC_PID -- \
  -H "Cookie: $COOKIE" -H "User-Agent: bench"
for pid in "${NODE_PIDS[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
for port in "${CLUSTER_PORTS[@]}"; do redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; done
# The memory scenario below copies the standalone session: log in there again.
start_portcullis
session_or_exit
stop_portcullis

# Resident memory with SUBJECTS users cached: users made in SQL, sessions written to Redis
# in the gateway's own format (a copy of the bench user's, with another uid), then every
# session used once through the decision endpoint (each a subject and a session cached).
SUBJECTS=${SUBJECTS:-100000}
MEMORY=()
if [ "$SUBJECTS" -gt 0 ]; then
  psql -h 127.0.0.1 -U postgres -d portcullis_bench -v ON_ERROR_STOP=1 -q <<SQL
INSERT INTO users (uid, email, password_digest, role, level, state)
  SELECT 'IDBENCH' || lpad(n::text, 8, '0'), 'subject-' || n || '@bench.example', d.password_digest,
         'member', 3, 'active'
  FROM generate_series(1, $SUBJECTS) n, (SELECT password_digest FROM users WHERE email = '$EMAIL') d
  ON CONFLICT (uid) DO NOTHING;
SQL
  /usr/bin/python3 bench/seed_sessions.py "$SUBJECTS" 1 "bench:" "${COOKIE%%=*}" "${COOKIE#*=}" \
    "$WORK/cookies" | redis-cli -n 1 --pipe >/dev/null
  start_portcullis
  MEMORY+=("idle, nothing cached|$(rss_mb $PORTCULLIS_PID)")
  sent=0
  while [ "$sent" -lt "$SUBJECTS" ]; do
    out=$(COOKIES="$WORK/cookies" OFFSET=$sent taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d5s -s bench/cookies.lua \
      "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/api/v2/peatio/account/balances")
    sent=$(( sent + $(echo "$out" | awk '/requests in/ {print $1}') ))
  done
  MEMORY+=("after $SUBJECTS users' sessions, each once|$(rss_mb $PORTCULLIS_PID)")
  out=$(COOKIES="$WORK/cookies" OFFSET=0 taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s bench/cookies.lua \
    "http://127.0.0.1:$PORTCULLIS_PORT/api/v2/auth/api/v2/peatio/account/balances")
  MEMORY+=("after $DURATION s more over the same sessions|$(rss_mb $PORTCULLIS_PID)")
  MEMORY+=("peak (VmHWM)|$(( $(awk '/^VmHWM:/ {print $2}' /proc/$PORTCULLIS_PID/status) / 1024 ))")
  stop_portcullis
  psql -h 127.0.0.1 -U postgres -d portcullis_bench -qc "DELETE FROM users WHERE uid LIKE 'IDBENCH%'"
fi

baseline=$(printf '%s\n' "${RESULTS[@]}" | awk -F'|' '/baseline/ {print $2 "|" $3}')
base_rps=${baseline%|*} base_cpu=${baseline#*|}
# Every row as tab-separated values, and the chart drawn from them (bench/chart.py).
RESULTS_TSV=${RESULTS_TSV:-bench/results.tsv}
{
  printf 'scenario\treq/s\tratio to nginx proxy\tserver CPU us/req\tp50 ms\tp99 ms\n'
  for row in "${RESULTS[@]}"; do
    IFS='|' read -r name rps cpu non2xx p50 p99 rss kernel <<<"$row"
    awk -v n="$name" -v r="$rps" -v c="$cpu" -v br="$base_rps" -v p50="$p50" -v p99="$p99" \
      'BEGIN { printf "%s\t%.0f\t%.2f\t%.1f\t%s\t%s\n", n, r, r / br, c, p50, p99 }'
  done
} >"$RESULTS_TSV"
/usr/bin/python3 bench/chart.py "$RESULTS_TSV" "${RESULTS_SVG:-bench/results.svg}"
echo
printf '| scenario | req/s | ratio to nginx proxy | server CPU µs/req | ratio | kernel %% of CPU | p50 ms | p99 ms | RSS MB | non-2xx |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for row in "${RESULTS[@]}"; do
  IFS='|' read -r name rps cpu non2xx p50 p99 rss kernel <<<"$row"
  awk -v n="$name" -v r="$rps" -v c="$cpu" -v br="$base_rps" -v bc="$base_cpu" -v x="$non2xx" \
    -v p50="$p50" -v p99="$p99" -v m="$rss" -v k="$kernel" \
    'BEGIN { printf "| %s | %.0f | %.2f | %.1f | %.2f | %s | %s | %s | %s | %s |\n", n, r, r / br, c, c / bc, k, p50, p99, m, x }'
done
echo
echo "Decision cost with a large policy, as a ratio to the default rules' decision (CPU µs/req):"
echo
printf '| scenario | server CPU µs/req | ratio to default rules |\n|---|---|---|\n'
for row in "${RESULTS[@]}"; do
  IFS='|' read -r name rps cpu _ <<<"$row"
  case "$name" in *"permission rows"*|*restrictions*)
    awk -v n="$name" -v c="$cpu" -v d="$DEFAULT_DECISION_CPU" 'BEGIN { printf "| %s | %.1f | %.2f |\n", n, c, c / d }' ;;
  esac
done
echo
echo "At half the peak rate (paced, open schedule, $CONNECTIONS connections), each beside nginx at the same rate:"
echo
printf '| scenario | req/s | p50 ms | p99 ms | p99.9 ms | non-2xx |\n|---|---|---|---|---|---|\n'
for row in "${HALF[@]}"; do
  IFS='|' read -r name rps p50 p99 p999 non2xx <<<"$row"
  printf '| %s | %.0f | %s | %s | %s | %s |\n' "$name" "$rps" "$p50" "$p99" "$p999" "$non2xx"
done
if [ "${#MEMORY[@]}" -gt 0 ]; then
  echo
  echo "Resident memory of Portcullis with $SUBJECTS users cached:"
  echo
  printf '| moment | RSS MB |\n|---|---|\n'
  for row in "${MEMORY[@]}"; do printf '| %s | %s |\n' "${row%|*}" "${row##*|}"; done
fi
