#!/usr/bin/env bash
# The BGP convergence benchmark: routerd and BIRD receiving the same table
# of 1 000 000 IPv4 prefixes from BIRD, in the namespace lab:
#
#   sudo benches/bgp.sh [--rounds N] [--prefixes N] [--paths N] [--kernel] [--markdown FILE] ...
#
# Builds routerd and the benchmark driver in release, then runs the driver
# (benches/src/bin/bgp_load.rs), which starts two BIRD senders (one table
# with one attribute set, one with 250 000 AS paths) and, round after
# round, a fresh routerd and a fresh BIRD receiving each table, timing
# convergence and withdrawal and reading CPU and memory from /proc.
# Nothing leaves the machine. Options are the driver's:
# `benches/bgp.sh --help`.
#
# ROUTERD_BIN=/path/to/routerd benchmarks that binary instead of the one
# built here. Needs root (namespaces) and BIRD 2 (Debian bird2: bird,
# birdc); as root it installs bird2 if it is missing (its service is kept
# from starting).
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-$PWD/target}

source benches/build.sh

if [ "$(id -u)" = 0 ] && ! command -v bird >/dev/null 2>&1 \
    && [ ! -x /usr/sbin/bird ]; then
    install_quietly bird2
fi

if [ -z "${ROUTERD_BIN:-}" ]; then
    build build --release -p router
    export ROUTERD_BIN="$target_dir/release/routerd"
fi
build build --release -p benches --bin bgp_load
BGP_BENCH_COMMAND="benches/bgp.sh${*:+ $*}" exec "$target_dir/release/bgp_load" "$@"
