# Sourced by the benchmark scripts: `build ARGS...` runs `cargo ARGS...`;
# `install_quietly` installs packages (below).
# Under sudo, cargo is often only on the invoking user's PATH: build as
# that user then, so target/ keeps its owner.
build() {
    if command -v cargo >/dev/null 2>&1; then
        cargo "$@"
    elif [ -n "${SUDO_USER:-}" ]; then
        sudo -u "$SUDO_USER" -H bash -lc 'cd "$1" && shift && cargo "$@"' bash "$PWD" "$@"
    else
        echo "$(basename "$0"): cargo not found" >&2
        exit 1
    fi
}

# `install_quietly PACKAGE...`: installs Debian packages whose services are
# not wanted (the drivers run their own instances in the lab), with a
# policy-rc.d that keeps them from starting. A failure is left to the
# driver, which says which tool is missing.
install_quietly() {
    local policy=/usr/sbin/policy-rc.d own_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        own_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" || true
    if [ -n "$own_policy" ]; then
        rm -f "$policy"
    fi
}
