#!/usr/bin/env bash
# The whole test suite, as CI runs it and as a new user should:
#
#   sudo tests/run.sh
#
# As root it first installs the Debian packages the end-to-end lab drives
# (NSD, Unbound, dig, kdig, ldns, dnsperf, sqlite3, wireguard-go, wg, iperf3,
# BIRD 2, keepalived) and the packaging tools (the arm64 cross linker,
# qemu-user, debootstrap); the lab itself needs root to create network
# namespaces. Without root the lab tests say why they skip,
# unless REQUIRE_E2E=1, which turns every skip into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(nsd unbound dnsperf knot-dnsutils bind9-dnsutils ldnsutils openssl tcpdump iproute2 procps nftables iputils-ping sqlite3 wireguard-go wireguard-tools iperf3 bird2 keepalived
    # packaging/check.sh: the arm64 build, its smoke test, the scratch root
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static binutils dpkg-dev debootstrap systemd)

if [ "$(id -u)" = 0 ]; then
    missing=()
    for package in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$package")
        fi
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}"
        apt-get update -qq
        # The lab runs its own instances in namespaces: the packages'
        # services (bird, keepalived, nsd, unbound) must not start on the
        # host, where they would speak to the host's network.
        policy=/usr/sbin/policy-rc.d
        own_policy=
        if [ ! -e "$policy" ]; then
            printf '#!/bin/sh\nexit 101\n' >"$policy"
            chmod +x "$policy"
            own_policy=1
        fi
        install_status=0
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || install_status=$?
        if [ -n "$own_policy" ]; then
            rm -f "$policy"
        fi
        [ "$install_status" = 0 ] || exit "$install_status"
    fi
else
    echo "not root: skipping package installation; the namespace lab needs root" >&2
fi

# The arm64 standard library, for the packages.
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    rustup target add aarch64-unknown-linux-gnu ||
        echo "cannot add the aarch64 target: packaging/check.sh will say so" >&2
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The lab starts the real routerd binary: build it before the suites run.
cargo build --workspace --bins --locked
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# The Debian packages, arm64 and amd64, from the one command
# (packaging/build.sh, release builds of routerd and routerctl): the arm64
# binaries under qemu-user, the amd64 package installed into a scratch
# Debian root, its unit verified. It prints its own PASS/FAIL line.
if ! packaging/check.sh; then
    status=1
fi
# Short coverage-guided fuzz runs of the decoders that face the network
# (FUZZ_SECONDS per target; 0 skips). cargo-fuzz comes from crates.io.
fuzz_seconds=${FUZZ_SECONDS:-20}
if [ "$fuzz_seconds" -gt 0 ]; then
    if ! command -v cargo-fuzz >/dev/null; then
        cargo install cargo-fuzz --locked
    fi
    fuzz_log=$(mktemp)
    for target in parse_query cached_answer filter_list bgp_message vrrp_advert; do
        if (cd fuzz && cargo fuzz run -O --sanitizer none "$target" -- \
            -max_total_time="$fuzz_seconds" >"$fuzz_log" 2>&1); then
            echo "fuzz $target: $(grep -E '^Done [0-9]+ runs' "$fuzz_log" || echo 'done')"
        else
            echo "fuzz $target FAILED:"; tail -n 60 "$fuzz_log"; status=1
        fi
    done
    rm -f "$fuzz_log"
fi
# One closing line for the whole workspace (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
