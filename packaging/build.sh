#!/usr/bin/env bash
# The one command that makes the Debian packages:
#
#   packaging/build.sh              # arm64 and amd64
#   packaging/build.sh arm64        # only the architectures named
#
# and leaves them in target/debian/ (under $CARGO_TARGET_DIR when set):
# router_<version>_arm64.deb, router_<version>_amd64.deb.
#
# For each architecture: a release build of routerd and routerctl with
# cargo's `dist` profile (Cargo.toml says why: thin LTO, panic = unwind,
# no debug info) for aarch64-unknown-linux-gnu (Raspberry Pi OS 64-bit,
# Debian arm64; linked by Debian's gcc-aarch64-linux-gnu) or
# x86_64-unknown-linux-gnu, then a tree staged as the package installs it
# and packed by dpkg-deb. Man pages and shell completions come from the
# binaries' own clap definitions (`--generate-docs DIR`), run once on this
# machine (through qemu-user when only the other architecture is built).
#
# Needs: cargo with the rustup targets, dpkg-deb, readelf (binutils),
# gzip; for arm64 gcc-aarch64-linux-gnu and libc6-dev-arm64-cross.
# tests/run.sh installs them; packaging/check.sh tests the result.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
    echo "packaging/build.sh: $*" >&2
    exit 1
}

triple_of() {
    case "$1" in
    amd64) echo x86_64-unknown-linux-gnu ;;
    arm64) echo aarch64-unknown-linux-gnu ;;
    *) die "unknown architecture $1 (amd64 or arm64)" ;;
    esac
}

archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(arm64 amd64)
for arch in "${archs[@]}"; do triple_of "$arch" >/dev/null; done

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)
[ -n "$version" ] || die "no version in Cargo.toml's [workspace.package]"
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
out="$target_dir/debian"
mkdir -p "$out"
# Reproducible timestamps in the archives and the man pages' gzip headers.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
host_arch=$(dpkg --print-architecture)

for tool in cargo dpkg-deb readelf gzip; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done

# 1. The binaries.
for arch in "${archs[@]}"; do
    triple=$(triple_of "$arch")
    if [ "$arch" = arm64 ] && [ "$host_arch" != arm64 ]; then
        command -v aarch64-linux-gnu-gcc >/dev/null ||
            die "aarch64-linux-gnu-gcc is missing: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
        # The linker, and the C compiler for ring and SQLite.
        export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
        export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
        export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
    fi
    echo "== cargo build --profile dist --target $triple"
    cargo build --locked --profile dist --target "$triple" \
        -p router --bin routerd --bin routerctl
done

# Runs a binary built for $1, on this machine or through qemu-user.
run_built() {
    local arch=$1 bin=$2
    shift 2
    local path
    path="$target_dir/$(triple_of "$arch")/dist/$bin"
    if [ "$arch" = "$host_arch" ]; then
        "$path" "$@"
    elif [ "$arch" = arm64 ]; then
        qemu-aarch64-static -L /usr/aarch64-linux-gnu "$path" "$@"
    else
        die "cannot run $arch binaries on $host_arch"
    fi
}

# 2. Man pages and completions, the same for every architecture.
docs_arch=${archs[0]}
for arch in "${archs[@]}"; do
    if [ "$arch" = "$host_arch" ]; then docs_arch=$arch; fi
done
docs="$out/generated-docs"
rm -rf "$docs"
run_built "$docs_arch" routerd --generate-docs "$docs"
run_built "$docs_arch" routerctl --generate-docs "$docs"

# The Depends line: libc6 at least as new as the newest GLIBC_ symbol
# version the binaries use, libgcc-s1 for unwinding; anything else they
# link is a mistake this script should not paper over.
depends_of() {
    local glibc needed lib
    glibc=$(readelf --dyn-syms -W "$@" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -n 1)
    [ -n "$glibc" ] || die "no GLIBC_ symbol versions in $*"
    local depends="libc6 (>= $glibc)"
    needed=$(readelf -d -W "$@" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u)
    for lib in $needed; do
        case "$lib" in
        libc.so.6 | libm.so.6 | libdl.so.2 | libpthread.so.0 | librt.so.1 | ld-linux-*) ;;
        libgcc_s.so.1) depends="$depends, libgcc-s1" ;;
        *) die "unexpected shared library $lib: declare its package in packaging/build.sh" ;;
        esac
    done
    echo "$depends, nftables"
}

# 3. A staged tree and a .deb per architecture.
for arch in "${archs[@]}"; do
    triple=$(triple_of "$arch")
    bin="$target_dir/$triple/dist"
    stage="$out/stage-$arch"
    rm -rf "$stage"
    mkdir -p "$stage/DEBIAN"
    install -D -m 0755 "$bin/routerd" "$stage/usr/bin/routerd"
    install -D -m 0755 "$bin/routerctl" "$stage/usr/bin/routerctl"

    # Conffiles: the annotated example configuration, which as it stands
    # serves DNS on loopback only, and the example policy (inert until
    # [policies] is uncommented).
    install -d -m 0755 "$stage/etc/router/policies"
    cat packaging/router.toml.head examples/router.toml >"$stage/etc/router/router.toml"
    chmod 0644 "$stage/etc/router/router.toml"
    for policy in policies/examples/*.toml; do
        install -m 0644 "$policy" "$stage/etc/router/policies/"
    done

    install -D -m 0644 packaging/router.service "$stage/usr/lib/systemd/system/router.service"
    install -D -m 0644 packaging/router.tmpfiles "$stage/usr/lib/tmpfiles.d/router.conf"

    install -d "$stage/usr/share/man/man8"
    for page in "$docs"/man/*.8; do
        gzip -9n <"$page" >"$stage/usr/share/man/man8/$(basename "$page").gz"
    done
    install -D -m 0644 -t "$stage/usr/share/bash-completion/completions" "$docs"/completions/bash/*
    install -D -m 0644 -t "$stage/usr/share/zsh/vendor-completions" "$docs"/completions/zsh/*
    install -D -m 0644 -t "$stage/usr/share/fish/vendor_completions.d" "$docs"/completions/fish/*

    doc="$stage/usr/share/doc/router"
    install -D -m 0644 packaging/debian/copyright "$doc/copyright"
    install -m 0644 README.md docs/pi-pair.md "$doc/"
    install -d "$doc/examples/policies"
    install -m 0644 examples/router.toml docs/examples/*.toml "$doc/examples/"
    install -m 0644 docs/examples/policies/*.toml "$doc/examples/policies/"

    for script in postinst prerm postrm; do
        install -m 0755 "packaging/debian/$script" "$stage/DEBIAN/$script"
    done
    (cd "$stage" && find etc -type f | sort | sed 's|^|/|') >"$stage/DEBIAN/conffiles"
    (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
    size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
    depends=$(depends_of "$stage/usr/bin/routerd" "$stage/usr/bin/routerctl")
    sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
        -e "s/@DEPENDS@/$depends/" packaging/debian/control.in >"$stage/DEBIAN/control"

    deb="$out/router_${version}_${arch}.deb"
    dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
    echo "built $deb ($(du -h "$deb" | cut -f1); Depends: $depends)"
done
