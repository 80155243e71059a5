#!/usr/bin/env bash
# Throughput of grpclb's load driver, as a ratio against h2load (Debian's
# nghttp2-client) run on the same machine, in the same run, against the same
# `grpclb serve` backend, with the same connections and calls in flight.
#
#   scripts/bench.sh [CALLS] [IN_FLIGHT]     # defaults: 20000 calls, 8 in flight
#
# Prints one line per round and the median ratio (grpclb / h2load req/s).
set -euo pipefail
cd "$(dirname "$0")/.."
calls="${1:-20000}"
inflight="${2:-8}"
rounds=3

command -v h2load >/dev/null || { echo "needs h2load: apt-get install nghttp2-client" >&2; exit 1; }
cargo build --release --quiet
bin=target/release/grpclb

workdir="$(mktemp -d)"
trap 'kill "${server_pid:-}" 2>/dev/null || true; rm -rf "$workdir"' EXIT
"$bin" serve --listen 127.0.0.11:0 --name bench-pod 2>"$workdir/serve.log" &
server_pid=$!
for _ in $(seq 100); do
  grep -q "listening on" "$workdir/serve.log" 2>/dev/null && break
  sleep 0.05
done
address="$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$workdir/serve.log")"
[ -n "$address" ] || { echo "grpclb serve did not start" >&2; cat "$workdir/serve.log" >&2; exit 1; }

# An empty HealthCheckRequest in gRPC's length-prefixed framing.
printf '\x00\x00\x00\x00\x00' >"$workdir/health.bin"

ratios=()
for round in $(seq "$rounds"); do
  h2=$(h2load -n "$calls" -c 1 -m "$inflight" -d "$workdir/health.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        "http://$address/grpc.health.v1.Health/Check" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
  ours=$("$bin" bench "ipv4:$address" -n "$calls" -c "$inflight" --warmup 0s -o json -q \
        | sed -n 's/^  "rps": \([0-9.]*\),$/\1/p')
  ratio=$(awk -v a="$ours" -v b="$h2" 'BEGIN { printf "%.3f", a / b }')
  ratios+=("$ratio")
  printf 'round %d: grpclb bench %8.0f req/s   h2load %8.0f req/s   ratio %s\n' "$round" "$ours" "$h2" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n "$(( (rounds + 1) / 2 ))p")
echo "median ratio grpclb/h2load: $median  ($calls calls, 1 connection, $inflight in flight, health check)"
