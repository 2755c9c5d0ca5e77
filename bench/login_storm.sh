#!/usr/bin/env bash
# A login storm: CONNECTIONS (600) clients logging in at once for DURATION (20) seconds, each
# login an argon2id verification (19 MiB, 2 passes) behind the hashing semaphore. Reports
# logins/s, their p50/p99, and Portcullis's resident memory: before, at peak (VmHWM) and
# SETTLE (5) seconds after the storm (what the process keeps).
#
#   bench/login_storm.sh
#   BENCH_BIN=/tmp/portcullis-other bench/login_storm.sh    # another build (an A/B)
#
# The login rate limits and the per-client connection cap are lifted for the run: the storm
# is one client address and one account.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20} CONNECTIONS=${CONNECTIONS:-600} SETTLE=${SETTLE:-5}
PORT=18083
WORK=$(mktemp -d /tmp/portcullis-storm.XXXXXX)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
./scripts/services.sh >/dev/null
if [ -z "${BENCH_BIN:-}" ]; then cargo build --release --quiet; fi
BIN="${BENCH_BIN:-target/release/portcullis} --dev"

cat > "$WORK/portcullis.toml" <<CONF
[server]
listen = "127.0.0.1:$PORT"
max_connections_per_peer = 100000
[database]
url = "postgres://postgres@127.0.0.1:5432/portcullis_bench"
[redis]
url = "redis://127.0.0.1:6379/1"
key_prefix = "storm:"
[session]
secure_cookie = false
[jwt]
dev_key_path = "$WORK/jwt.pem"
[encryption]
dev_key_path = "$WORK/enc.key"
[telemetry]
log_filter = "error"
[rate_limits]
login_per_ip = { max = 1000000000, window = 60 }
login_per_account = { max = 1000000000, window = 60 }
CONF
export PORTCULLIS_CONFIG="$WORK/portcullis.toml"
$BIN migrate >/dev/null
EMAIL="storm-$(date +%s%N)@example.com" PASSWORD='Iequ4geiEWQw!'
$BIN users create --email "$EMAIL" --password "$PASSWORD" --role member --level 1 >/dev/null

$BIN serve >"$WORK/portcullis.log" 2>&1 &
PID=$!; PIDS+=($PID)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
rss() { awk -v k="$1:" '$1 == k {printf "%d", $2 / 1024}' "/proc/$PID/status"; }
status=$(curl -s -o /dev/null -w '%{http_code}' -A bench -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" "http://127.0.0.1:$PORT/api/v2/auth/identity/sessions")
[ "$status" = 200 ] || { echo "login answered $status" >&2; cat "$WORK/portcullis.log" >&2; exit 1; }
before=$(rss VmRSS)

out=$(EMAIL=$EMAIL PASSWORD=$PASSWORD wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 60s --latency \
  -s bench/login.lua "http://127.0.0.1:$PORT/api/v2/auth/identity/sessions")
peak=$(rss VmHWM) after=$(rss VmRSS)
sleep "$SETTLE"
settled=$(rss VmRSS)

rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
p50=$(echo "$out" | awk '$1 == "50.000%" || $1 == "50%" {print $2}')
p99=$(echo "$out" | awk '$1 == "99.000%" || $1 == "99%" {print $2}')
non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
echo "| logins/s | p50 | p99 | non-2xx | RSS before MB | peak MB | at the end MB | ${SETTLE} s later MB |"
echo "|---|---|---|---|---|---|---|---|"
echo "| $rps | $p50 | $p99 | ${non2xx:-0} | $before | $peak | $after | $settled |"
