#!/usr/bin/env bash
# The policy benchmark, in the namespace lab:
#
#   sudo benches/policy.sh [--zones 50] [--rules 5000] [--rounds 3] [--seconds 3] ...
#
# Builds the driver (benches/src/bin/policy/) and its UDP sender/receiver
# (benches/src/bin/udpflood.rs) in release, then runs the driver, which
# generates a policy of many zones and rules, times its validation,
# compilation and apply (against the same policy written naively, one
# chain per zone pair), and measures the forwarded packet rate through a
# router namespace with each ruleset loaded. Nothing leaves the machine:
# the traffic runs between three lab namespaces joined by veths. Options
# are the driver's: `benches/policy.sh --help`. Needs root, nft, ip,
# sysctl and taskset.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-$PWD/target}

source benches/build.sh

build build --release -p benches --bin policy --bin udpflood
POLICY_BENCH_COMMAND="benches/policy.sh${*:+ $*}" exec "$target_dir/release/policy" "$@"
