# Sourced by the benchmark scripts: `build ARGS...` runs `cargo ARGS...`.
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
