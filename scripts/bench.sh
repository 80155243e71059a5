#!/usr/bin/env bash
# grpclb's load driver against h2load (Debian's nghttp2-client), in the same
# run, against the same `grpclb serve` process, with the same call:
# grpc.health.v1.Health/Check, POST, content-type application/grpc,
# te: trailers, grpc-timeout 5 s, the 5-byte empty message.
#
#   scripts/bench.sh [CALLS] [ROUNDS]     # defaults: 100000 calls, best of 3
#
# Rows: 1 connection x 8 and x 32 calls in flight for both tools (grpclb with
# --threads 1, as h2load's default -t 1), then grpclb headless round_robin
# over k = 1, 3, 10 backends (one serve process listening on 10 loopback
# addresses) at 32 in flight, and h2load over 3 and 10 connections to the
# same server for the same comparison. Each row is the best of ROUNDS by req/s; CPU
# per call is user+system time of the client over the calls it made.
# See docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
calls="${1:-100000}"
rounds="${2:-3}"
for tool in h2load nghttp python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install nghttp2-client python3)" >&2; exit 1; }
done
cargo build --release --quiet
bin=target/release/grpclb

work="$(mktemp -d)"
trap 'kill "${server_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" serve --listen 127.0.0.11-127.0.0.20:0 --name bench-pod 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do
  grep -q "listening on 127.0.0.20" "$work/serve.log" 2>/dev/null && break
  sleep 0.05
done
port="$(sed -n 's/.*listening on 127\.0\.0\.11:\([0-9]*\) .*/\1/p' "$work/serve.log")"
[ -n "$port" ] || { echo "grpclb serve did not start" >&2; cat "$work/serve.log" >&2; exit 1; }
first="127.0.0.11:$port"
targets() { # k addresses from 127.0.0.11 on, as an ipv4: target
  local list=() i
  for i in $(seq 0 $(($1 - 1))); do list+=("127.0.0.$((11 + i)):$port"); done
  (IFS=,; echo "ipv4:${list[*]}")
}

# The same request for both tools; check its grpc-status by hand first.
printf '\x00\x00\x00\x00\x00' >"$work/health.bin"
headers=(-H 'content-type: application/grpc' -H 'te: trailers' -H 'grpc-timeout: 5000000u')
status="$(nghttp -v "${headers[@]}" -d "$work/health.bin" "http://$first/grpc.health.v1.Health/Check" 2>&1 \
  | sed -n 's/.*grpc-status: \([0-9]*\).*/\1/p' | head -1)"
[ "$status" = "0" ] || { echo "the health call did not answer grpc-status 0 (got '$status')" >&2; exit 1; }

cores="$(nproc)"
echo "machine: $cores cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)); load now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$calls calls per run, best of $rounds; server: one grpclb serve (release) on 10 loopback addresses"
echo

# One h2load run: prints "rps p50_ms p99_ms cpu_us_per_call".
cat >"$work/h2load.py" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"finished in [^,]*, ([0-9.]+) req/s", text).group(1))
user, system = map(float, re.search(r"cpu ([0-9.]+) ([0-9.]+)", text).group(1, 2))
ok = int(re.search(r"(\d+) succeeded", text).group(1))
calls = int(sys.argv[3])
assert ok == calls, "h2load: only %d of %d succeeded" % (ok, calls)
times = sorted(int(line.split("\t")[2]) for line in open(sys.argv[2]) if line.strip())
pct = lambda q: times[min(len(times) - 1, int(q * len(times)))] / 1000.0
print("%.0f %.3f %.3f %.2f" % (rps, pct(0.50), pct(0.99), (user + system) * 1e6 / calls))
PY
h2load_run() { # [calls in flight per connection] [connections]
  local inflight="$1" conns="${2:-1}"
  { /usr/bin/time -f 'cpu %U %S' h2load -n "$calls" -c "$conns" -m "$inflight" -t 1 \
      -d "$work/health.bin" "${headers[@]}" --log-file="$work/h2load.log" \
      "http://$first/grpc.health.v1.Health/Check"; } >"$work/h2load.out" 2>&1
  python3 "$work/h2load.py" "$work/h2load.out" "$work/h2load.log" "$calls"
}

# One grpclb run: prints "rps p50_ms p99_ms cpu_us_per_call".
cat >"$work/grpclb.py" <<'PY'
import json, sys
d = json.load(sys.stdin)
assert d["errors"] == 0, d["errors"]
print("%.0f %.3f %.3f %.2f" % (d["rps"], d["latency_ms"]["p50"], d["latency_ms"]["p99"],
                               d["client"]["cpu_us_per_call"]))
PY
grpclb_run() {
  local inflight="$1" target="$2" threads="$3"
  "$bin" bench "$target" -n "$calls" -c "$inflight" --threads "$threads" --warmup 200ms -q -o json \
    | python3 "$work/grpclb.py"
}

# Best of the rounds by req/s.
best() {
  local row best_row="" best_rps=0 rps
  for _ in $(seq "$rounds"); do
    row="$("$@")"
    rps="${row%% *}"
    if [ "$rps" -gt "$best_rps" ]; then best_rps="$rps"; best_row="$row"; fi
  done
  echo "$best_row"
}

# One discarded round first: the first runs against a fresh server were
# the slowest of every row in every run (its allocator and caches warming).
h2load_run 8 >/dev/null
grpclb_run 8 "ipv4:$first" 1 >/dev/null

declare -A result
result[h2load_8]="$(best h2load_run 8)"
result[grpclb_8]="$(best grpclb_run 8 "ipv4:$first" 1)"
result[h2load_32]="$(best h2load_run 32)"
result[grpclb_32]="$(best grpclb_run 32 "ipv4:$first" 1)"
result[grpclb_32_threads]="$(best grpclb_run 32 "ipv4:$first" "$cores")"
for k in 1 3 10; do
  result[headless_$k]="$(best grpclb_run 32 "$(targets "$k")" 1)"
done
# The peer over k connections to the same server (32 in flight spread over
# them, rounded up): how much of the headless drop is the server's and the
# kernel's, not the balancer's.
for k in 3 10; do
  result[h2load_conns_$k]="$(best h2load_run $(( (32 + k - 1) / k )) "$k")"
done

printf '%-40s %9s %8s %8s %12s\n' "row" "req/s" "p50 ms" "p99 ms" "CPU µs/call"
show() { read -r rps p50 p99 cpu <<<"${result[$2]}"; printf '%-40s %9s %8s %8s %12s\n' "$1" "$rps" "$p50" "$p99" "$cpu"; }
show "h2load     1 conn x 8"                 h2load_8
show "grpclb     1 conn x 8  (--threads 1)"  grpclb_8
show "h2load     1 conn x 32"                h2load_32
show "grpclb     1 conn x 32 (--threads 1)"  grpclb_32
show "grpclb     1 conn x 32 (--threads $cores)" grpclb_32_threads
show "headless   k=1  x 32 (--threads 1)"    headless_1
show "headless   k=3  x 32 (--threads 1)"    headless_3
show "headless   k=10 x 32 (--threads 1)"    headless_10
show "h2load     3 conns x 11"               h2load_conns_3
show "h2load     10 conns x 4"               h2load_conns_10
echo
ratio() { read -r a _ _ ca <<<"${result[$1]}"; read -r b _ _ cb <<<"${result[$2]}"; awk -v a="$a" -v b="$b" -v ca="$ca" -v cb="$cb" -v what="$3" \
  'BEGIN { printf "%-44s req/s %.2fx   CPU/call %.2fx\n", what, a / b, ca / cb }'; }
ratio grpclb_8 h2load_8 "grpclb / h2load at 8 in flight"
ratio grpclb_32 h2load_32 "grpclb / h2load at 32 in flight"
ratio headless_3 headless_1 "headless k=3 / k=1"
ratio headless_10 headless_1 "headless k=10 / k=1"
ratio h2load_conns_10 h2load_32 "h2load 10 conns / 1 conn (the peer's own drop)"
ratio headless_10 h2load_conns_10 "headless k=10 / h2load 10 conns"
