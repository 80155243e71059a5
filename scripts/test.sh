#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real parts the tests use
# (Debian packages) when they are missing, then format, lint and test.
#
#   scripts/test.sh            # everything
#   scripts/test.sh bench      # only tests whose names match "bench"
set -euo pipefail
cd "$(dirname "$0")/.."   # cargo reads .cargo/config.toml from the repo root

# Debian package that provides each tool the tests run.
declare -A PROVIDER=(
  [etcd]=etcd-server
  [etcdctl]=etcd-client
  [dnsmasq]=dnsmasq-base
  [iptables]=iptables
  [ip]=iproute2
  [h2load]=nghttp2-client
  [openssl]=openssl
  [jq]=jq
)
missing=()
for tool in "${!PROVIDER[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("${PROVIDER[$tool]}")
done
# The C-core gRPC peers run on Debian's own interpreter.
/usr/bin/python3 -c 'import grpc' >/dev/null 2>&1 || missing+=(python3-grpcio)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "scripts/test.sh: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets -- "$@"
