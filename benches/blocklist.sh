#!/usr/bin/env bash
# The blocklist benchmark, in the namespace lab:
#
#   sudo benches/blocklist.sh [--domains 1000000] [--starts 3] [--rounds 3] [--markdown FILE] ...
#
# Builds routerd and the driver (benches/src/bin/blocklist/) in release,
# then runs the driver, which generates a blocklist and loads it into
# routerd, Unbound (local-zones), dnsmasq (addn-hosts, as Pi-hole does) and
# PowerDNS Recursor (an RPZ): time to the first blocked answer, resident
# memory, and blocked and allowed QPS per CPU-second, each server against
# the same list in the same lab. Nothing leaves the machine. Options are
# the driver's: `benches/blocklist.sh --help`.
#
# ROUTERD_BIN=/path/to/routerd benchmarks that binary instead of the one
# built here. Needs root (namespaces), nsd, unbound, dnsperf, dig and
# ldns-signzone (`sudo tests/run.sh` installs them all); as root it adds
# dnsmasq-base and pdns-recursor for the comparison if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-$PWD/target}

source benches/build.sh

if [ "$(id -u)" = 0 ]; then
    missing=()
    if ! command -v dnsmasq >/dev/null 2>&1 && [ ! -x /usr/sbin/dnsmasq ]; then
        missing+=(dnsmasq-base)
    fi
    if ! command -v pdns_recursor >/dev/null 2>&1 && [ ! -x /usr/sbin/pdns_recursor ]; then
        missing+=(pdns-recursor)
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        install_quietly "${missing[@]}"
    fi
fi

if [ -z "${ROUTERD_BIN:-}" ]; then
    build build --release -p router
    export ROUTERD_BIN="$target_dir/release/routerd"
fi
build build --release -p benches --bin blocklist
BLOCKLIST_BENCH_COMMAND="benches/blocklist.sh${*:+ $*}" exec "$target_dir/release/blocklist" "$@"
