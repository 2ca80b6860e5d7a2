#!/usr/bin/env bash
# Builds both Debian packages with the one command (packaging/build.sh) and
# checks what they would do on a Pi:
#
#   - arm64, under qemu-user: `routerd --version`, `routerd check` on the
#     configuration the package installs, `routerctl --help`, from the
#     files in the .deb;
#   - amd64, installed with dpkg into a scratch Debian root (debootstrap
#     minbase of this machine's release with systemd: what a fresh
#     Raspberry Pi OS Lite or Debian has, dpkg, deb-systemd-helper and all): the files land
#     where they should, the conffiles are the ones DEBIAN/conffiles lists,
#     the maintainer scripts enable the unit without starting anything in
#     a chroot, an edited conffile survives an upgrade, remove keeps the
#     configuration and purge takes it and the state directory away;
#     `routerd check` runs in the root (its libc is the one Depends names);
#     the unit passes `systemd-analyze verify` and its exposure score is
#     printed (`systemd-analyze security --offline`);
#   - both packages hold the same files.
#
# Nothing here starts routerd: no packet leaves this machine (debootstrap's
# downloads from the Debian archive aside, once, cached in
# /var/cache/router-packaging).
#
# The last line says PASS or FAIL; the exit status is 0 or 1. A missing
# tool or missing root skips (exit 0) unless REQUIRE_E2E=1, which makes it
# a failure. Needs root for debootstrap and for dpkg --root, which runs the
# maintainer scripts chrooted into the scratch root.
set -uo pipefail
cd "$(dirname "$0")/.."

failures=()
fail() {
    echo "FAIL: $*"
    failures+=("$*")
}
skip_or_fail() {
    if [ "${REQUIRE_E2E:-0}" = 1 ]; then
        echo "packaging: FAIL: $* (REQUIRE_E2E=1)"
        exit 1
    fi
    echo "packaging: SKIP: $*"
    exit 0
}

missing=()
for tool in cargo dpkg-deb readelf aarch64-linux-gnu-gcc qemu-aarch64-static debootstrap systemd-analyze chroot; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -d /usr/aarch64-linux-gnu/lib ] || missing+=("libc6-dev-arm64-cross")
rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu ||
    missing+=("rustup target aarch64-unknown-linux-gnu")
[ ${#missing[@]} -eq 0 ] || skip_or_fail "missing: ${missing[*]} (sudo tests/run.sh installs them)"
[ "$(id -u)" = 0 ] || skip_or_fail "not root: debootstrap and dpkg --root need root"

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
out="$target_dir/debian"
arm64_deb="$out/router_${version}_arm64.deb"
amd64_deb="$out/router_${version}_amd64.deb"
work=$(mktemp -d)
root="$work/root"
cleanup() {
    rm -rf "$work"
}
trap cleanup EXIT

start=$(date +%s)
rm -f "$arm64_deb" "$amd64_deb"
if ! packaging/build.sh arm64 amd64; then
    echo "packaging: FAIL: packaging/build.sh"
    exit 1
fi
echo "packages built in $(($(date +%s) - start)) s"

# --- arm64 under qemu-user -------------------------------------------------
arm64="$work/arm64"
dpkg-deb -x "$arm64_deb" "$arm64" || fail "cannot unpack $arm64_deb"
qemu() {
    qemu-aarch64-static -L /usr/aarch64-linux-gnu "$@"
}
[ "$(dpkg-deb -f "$arm64_deb" Architecture)" = arm64 ] || fail "arm64 package: Architecture is not arm64"
file_type=$(readelf -h "$arm64/usr/bin/routerd" | sed -n 's/.*Machine: *//p')
[ "$file_type" = AArch64 ] || fail "arm64 routerd is built for $file_type"
got=$(qemu "$arm64/usr/bin/routerd" --version 2>&1)
[ "$got" = "routerd $version" ] || fail "arm64 routerd --version: $got"
got=$(qemu "$arm64/usr/bin/routerd" check --config "$arm64/etc/router/router.toml" 2>&1) ||
    fail "arm64 routerd check on the shipped router.toml: $got"
echo "arm64 (qemu): $got"
got=$(qemu "$arm64/usr/bin/routerctl" --help 2>&1) || fail "arm64 routerctl --help failed: $got"
grep -q "^Usage: routerctl" <<<"$got" || fail "arm64 routerctl --help: $got"

# --- the two packages hold the same files -----------------------------------
contents() {
    dpkg-deb -c "$1" | awk '{print $1, $2, $NF}' | sed 's/ -> .*//' | sort
}
if ! diff <(contents "$arm64_deb") <(contents "$amd64_deb") >"$work/contents.diff"; then
    fail "the arm64 and amd64 packages hold different files: $(head -n 20 "$work/contents.diff")"
fi
for deb in "$arm64_deb" "$amd64_deb"; do
    depends=$(dpkg-deb -f "$deb" Depends)
    grep -q 'libc6 (>= 2\.[0-9]*)' <<<"$depends" || fail "$(basename "$deb"): Depends has no libc6 version: $depends"
    grep -q 'nftables' <<<"$depends" || fail "$(basename "$deb"): Depends lacks nftables: $depends"
    suggests=$(dpkg-deb -f "$deb" Suggests)
    [ "$suggests" = "wireguard-go, wireguard-tools" ] || fail "$(basename "$deb"): Suggests: $suggests"
done

# --- amd64 into a scratch root ----------------------------------------------
# The base root is made once per machine and release, and unpacked afresh
# for every run.
. /etc/os-release
cache=/var/cache/router-packaging
base="$cache/${VERSION_CODENAME}-minbase-systemd.tar"
if [ ! -s "$base" ]; then
    mkdir -p "$cache"
    echo "debootstrap --variant=minbase --include=systemd $VERSION_CODENAME (once; cached in $base)"
    # With systemd, as on a Pi: its targets are what the unit is verified
    # against, and deb-systemd-helper enables units the way it does there.
    if debootstrap --variant=minbase --include=systemd "$VERSION_CODENAME" "$work/base" >"$work/debootstrap.log" 2>&1; then
        tar -C "$work/base" -cf "$base.tmp" . && mv "$base.tmp" "$base"
        rm -rf "$work/base"
    else
        tail -n 20 "$work/debootstrap.log"
        echo "packaging: FAIL: debootstrap"
        exit 1
    fi
fi
mkdir -p "$root"
tar -C "$root" -xf "$base"

# dpkg as in `apt install ./router_*.deb`, but into the scratch root. The
# root has no nftables (a dependency, and installing it would need the
# archive again): --force-depends lets the package configure anyway;
# nothing here runs nft.
dpkg_root() {
    dpkg --root="$root" --force-depends "$@"
}
if ! dpkg_root -i "$amd64_deb" >"$work/install.log" 2>&1; then
    fail "dpkg -i into the scratch root: $(tail -n 20 "$work/install.log")"
fi
status=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' router 2>&1)
[ "$status" = "install ok installed" ] || fail "router in the scratch root: $status"
for path in usr/bin/routerd usr/bin/routerctl; do
    [ -x "$root/$path" ] || fail "/$path is not installed as an executable"
done
for path in etc/router/router.toml etc/router/policies/homelab.toml \
    usr/lib/systemd/system/router.service usr/lib/tmpfiles.d/router.conf \
    usr/share/man/man8/routerd.8.gz usr/share/man/man8/routerctl.8.gz \
    usr/share/man/man8/routerctl-status.8.gz usr/share/man/man8/routerctl-pair.8.gz \
    usr/share/bash-completion/completions/routerd usr/share/bash-completion/completions/routerctl \
    usr/share/zsh/vendor-completions/_routerd usr/share/zsh/vendor-completions/_routerctl \
    usr/share/fish/vendor_completions.d/routerd.fish usr/share/fish/vendor_completions.d/routerctl.fish \
    usr/share/doc/router/copyright usr/share/doc/router/pi-pair.md \
    usr/share/doc/router/examples/primary.toml usr/share/doc/router/examples/standby.toml \
    usr/share/doc/router/examples/grandma.toml usr/share/doc/router/examples/policies/pair.toml; do
    [ -f "$root/$path" ] || fail "/$path is not installed"
done
zcat "$root/usr/share/man/man8/routerctl.8.gz" | grep -q '^\.TH routerctl 8' || fail "routerctl.8 is not a section 8 page"
# Conffiles: what dpkg recorded is exactly what the package lists.
dpkg-deb --ctrl-tarfile "$amd64_deb" | tar -xO ./conffiles | sort >"$work/conffiles.deb"
dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Conffiles}\n' router | awk 'NF {print $1}' | sort >"$work/conffiles.dpkg"
if ! diff -q "$work/conffiles.deb" "$work/conffiles.dpkg" >/dev/null; then
    fail "dpkg's conffiles differ from DEBIAN/conffiles: $(diff "$work/conffiles.deb" "$work/conffiles.dpkg")"
fi
for conffile in /etc/router/router.toml /etc/router/policies/homelab.toml; do
    grep -qx "$conffile" "$work/conffiles.dpkg" || fail "$conffile is not a conffile"
done
# postinst enabled the unit and, with no systemd running in the chroot,
# started nothing.
wants="$root/etc/systemd/system/multi-user.target.wants/router.service"
[ -L "$wants" ] || fail "postinst did not enable router.service ($wants missing)"
# The installed binary runs against the root's own libc.
got=$(chroot "$root" /usr/bin/routerd check 2>&1) || fail "routerd check in the scratch root: $got"
echo "amd64 (scratch root): $got"
# The unit: verified against the files in the root, and its exposure.
# systemd-analyze looks the Documentation= man pages up with man(1) on
# this machine: MANPATH points it at the root's.
if ! MANPATH="$root/usr/share/man" systemd-analyze verify --root="$root" router.service >"$work/verify.log" 2>&1 ||
    [ -s "$work/verify.log" ]; then
    fail "systemd-analyze verify router.service: $(cat "$work/verify.log")"
else
    echo "systemd-analyze verify router.service: clean"
fi
if systemd-analyze security --offline=true --root="$root" router.service >"$work/security.log" 2>&1; then
    echo "systemd-analyze security router.service: $(grep -o 'Overall exposure level.*' "$work/security.log")"
else
    fail "systemd-analyze security: $(tail -n 5 "$work/security.log")"
fi

# An upgrade (the same package again) keeps an operator's edit.
echo "# edited by the operator" >>"$root/etc/router/router.toml"
if ! dpkg_root --force-confold -i "$amd64_deb" >"$work/upgrade.log" 2>&1; then
    fail "reinstalling over an edited conffile: $(tail -n 20 "$work/upgrade.log")"
fi
grep -q "edited by the operator" "$root/etc/router/router.toml" || fail "the upgrade lost the edit to router.toml"

# Remove keeps the configuration, purge takes it and the state away.
mkdir -p "$root/var/lib/router/lists"
if ! dpkg_root -r router >"$work/remove.log" 2>&1; then
    fail "dpkg -r: $(tail -n 20 "$work/remove.log")"
fi
[ -e "$root/usr/bin/routerd" ] && fail "dpkg -r left /usr/bin/routerd"
[ -f "$root/etc/router/router.toml" ] || fail "dpkg -r removed the configuration"
[ -e "$wants" ] && fail "dpkg -r left router.service enabled"
if ! dpkg_root -P router >"$work/purge.log" 2>&1; then
    fail "dpkg -P: $(tail -n 20 "$work/purge.log")"
fi
[ -e "$root/etc/router/router.toml" ] && fail "purge left /etc/router/router.toml"
[ -e "$root/var/lib/router" ] && fail "purge left /var/lib/router"
leftovers=$(find "$root/etc/systemd" "$root/var/lib/systemd" -name 'router.service*' 2>/dev/null)
[ -z "$leftovers" ] || fail "purge left $leftovers"

elapsed=$(($(date +%s) - start))
if [ ${#failures[@]} -eq 0 ]; then
    echo "packaging: PASS (router_${version}_arm64.deb and _amd64.deb in $out; ${elapsed} s)"
else
    echo "packaging: FAIL (${#failures[@]} problem(s): ${failures[0]}${failures[1]:+; ...})"
    exit 1
fi
