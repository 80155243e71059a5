#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real parts the tests use
# (Debian packages) when they are missing, then format, lint and test, and
# ends with each test binary's time and how many tests were skipped.
#
#   scripts/test.sh            # everything
#   scripts/test.sh bench      # only tests whose names match "bench"
#
# Root is needed for the kernel-NAT tests (network namespaces, iptables) and
# to install packages. Not root: the script re-runs itself with sudo when
# sudo works without a password; otherwise, in CI (CI set) it stops here,
# and elsewhere the tests that need root say SKIPPED and are counted below.
set -euo pipefail
cd "$(dirname "$0")/.."   # cargo reads .cargo/config.toml from the repo root

in_ci() { case "${CI:-}" in ""|0|false|FALSE) return 1 ;; *) return 0 ;; esac; }

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "scripts/test.sh: re-running as root with sudo (the kernel-NAT tests need it)" >&2
    exec sudo -n --preserve-env=PATH,HOME,CARGO_HOME,RUSTUP_HOME,CARGO_TARGET_DIR,CI "$PWD/scripts/test.sh" "$@"
  fi
  if in_ci; then
    echo "scripts/test.sh: the kernel-NAT tests need root, and sudo does not work here without a password;" >&2
    echo "  run CI as root (e.g. a container's default user) or give the CI user passwordless sudo" >&2
    exit 1
  fi
  echo "scripts/test.sh: not root: the tests that need root will be SKIPPED (counted at the end)" >&2
fi

# Debian package that provides each tool the tests run.
declare -A PROVIDER=(
  [etcd]=etcd-server
  [etcdctl]=etcd-client
  [dnsmasq]=dnsmasq-base
  [iptables]=iptables
  [ip]=iproute2
  [h2load]=nghttp2-client
  [openssl]=openssl
)
missing=()
for tool in "${!PROVIDER[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("${PROVIDER[$tool]}")
done
# The C-core gRPC peers run on Debian's own interpreter.
/usr/bin/python3 -c 'import grpc' >/dev/null 2>&1 || missing+=(python3-grpcio)
/usr/bin/python3 -c 'import grpc_tools' >/dev/null 2>&1 || missing+=(python3-grpc-tools)
# Debian's venv needs the pip wheel that python3-venv brings.
compgen -G '/usr/share/python-wheels/pip-*.whl' >/dev/null || missing+=(python3-venv)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    in_ci && exit 1
  else
    echo "scripts/test.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# The C-core method peer's server reflection comes from grpcio-reflection,
# pinned to Debian's grpcio and installed without dependencies into a venv
# that sees the system packages (Debian's grpcio and protobuf).
peer_venv=target/python-peers
if ! "$peer_venv/bin/python" -c 'import grpc_reflection' >/dev/null 2>&1; then
  grpcio_version=$(/usr/bin/python3 -c 'import grpc; print(grpc.__version__)')
  echo "scripts/test.sh: installing grpcio-reflection==$grpcio_version into $peer_venv" >&2
  /usr/bin/python3 -m venv --system-site-packages "$peer_venv"
  "$peer_venv/bin/pip" install -q --no-deps "grpcio-reflection==$grpcio_version"
fi

cargo fmt --check
cargo clippy --all-targets -- -D warnings

# Each test that cannot run appends a "SKIPPED: binary::test: why" line here
# (tests/support/require.rs); in CI such a test fails instead.
skip_log=$(mktemp -t grpclb-skips.XXXXXX)
test_log=$(mktemp -t grpclb-tests.XXXXXX)
trap 'rm -f "$skip_log" "$test_log"' EXIT
export GRPCLB_SKIP_LOG="$skip_log"

started=$SECONDS
status=0
cargo test --all-targets -- "$@" 2>&1 | tee "$test_log" || status=$?
elapsed=$((SECONDS - started))

# Per test binary: its wall time, from cargo's "Running" and "test result" lines.
echo
echo "== time per test binary (wall) =="
awk '
  /^ *Running / { name = $2; sub(/.*\//, "", name); if (name == "unittests") name = "unittests " $3 }
  /^test result:/ {
    for (i = 1; i <= NF; i++) if ($i == "in") t = $(i + 1)
    sub(/s$/, "", t)
    printf "  %8.2fs  %s\n", t, name
  }
' "$test_log" | sort -rn
ignored=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($(i) ~ /^ignored/) n += $(i - 1) } END { print n + 0 }' "$test_log")
skipped=$(sort -u "$skip_log" | grep -c '^SKIPPED' || true)
if [ "$skipped" -gt 0 ]; then
  echo "== skipped: these tests did not run (they passed vacuously) =="
  sort -u "$skip_log" | sed 's/^/  /'
fi
echo "scripts/test.sh: cargo test took ${elapsed}s; $skipped test(s) SKIPPED, $ignored ignored; exit $status"
exit "$status"
