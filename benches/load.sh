#!/usr/bin/env bash
# The load comparison of routerd with Unbound (and dnsmasq, when
# installed), in the namespace lab:
#
#   sudo benches/load.sh [--rounds N] [--seconds S] [--markdown FILE] ...
#
# Builds routerd and the benchmark driver in release, then runs the driver
# (benches/src/bin/load.rs), which builds a lab of network namespaces (the
# NSD hierarchy, routerd, Unbound, a dnsperf client), warms both resolvers
# and runs interleaved dnsperf rounds against each. Nothing leaves the
# machine. Options are the driver's: `benches/load.sh --help`.
#
# ROUTERD_BIN=/path/to/routerd benchmarks that binary instead of the one
# built here. Needs root (namespaces), nsd, unbound, dnsperf, dig and
# ldns-signzone (`sudo tests/run.sh` installs them all); as root it adds
# dnsmasq-base for the third comparison if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-$PWD/target}

source benches/build.sh

if [ "$(id -u)" = 0 ] && ! command -v dnsmasq >/dev/null 2>&1 \
    && [ ! -x /usr/sbin/dnsmasq ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dnsmasq-base || true
fi

if [ -z "${ROUTERD_BIN:-}" ]; then
    build build --release -p router
    export ROUTERD_BIN="$target_dir/release/routerd"
fi
build build --release -p benches --bin load
exec "$target_dir/release/load" "$@"
