#!/usr/bin/env bash
# The failover benchmark: a routerd pair against keepalived moving the
# address between two Unbound resolvers, SIGKILL of the primary while a
# client asks the floating address 200 times a second; see
# benches/README.md. Needs root (namespaces), nsd, unbound, keepalived,
# dig and ldns; nothing leaves the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-$PWD/target}

source benches/build.sh

if [ "$(id -u)" = 0 ] && ! command -v keepalived >/dev/null 2>&1 \
    && [ ! -x /usr/sbin/keepalived ]; then
    install_quietly keepalived
fi

if [ -z "${ROUTERD_BIN:-}" ]; then
    build build --release -p router
    export ROUTERD_BIN="$target_dir/release/routerd"
fi
build build --release -p e2e --bin e2e-probe
export E2E_PROBE_BIN="$target_dir/release/e2e-probe"
build build --release -p benches --bin failover
exec "$target_dir/release/failover" "$@"
