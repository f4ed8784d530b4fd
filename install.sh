#!/bin/sh
# Builds hooks and hooks-relay from source with cargo and installs them.
#
#   ./install.sh              installs into cargo's bin folder (~/.cargo/bin)
#   HOOKS_INSTALL_ROOT=DIR ./install.sh   installs into DIR/bin
#
# Needs only a Rust toolchain and the crates.io registry.
set -eu

cd "$(dirname "$0")"

if ! command -v cargo >/dev/null 2>&1; then
    echo "install.sh: cargo not found; install a Rust toolchain (https://rustup.rs) and retry" >&2
    exit 1
fi

root=${HOOKS_INSTALL_ROOT:-${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}}
log=$(mktemp)
trap 'rm -f "$log"' EXIT INT TERM

for package in hooks:. hooks-relay:relay-server; do
    name=${package%%:*}
    path=${package#*:}
    echo "building $name (release; the first build takes a few minutes)…"
    if ! cargo install --quiet --locked --force --root "$root" --path "$path" >"$log" 2>&1; then
        cat "$log" >&2
        echo "install.sh: building $name failed (output above)" >&2
        exit 1
    fi
done

bin="$root/bin"
echo "installed: $bin/hooks"
echo "installed: $bin/hooks-relay"
case ":$PATH:" in
    *":$bin:"*) echo "$bin is on your PATH: run 'hooks listen --forward-to localhost:3000'" ;;
    *) echo "$bin is NOT on your PATH: add it (export PATH=\"$bin:\$PATH\") or run $bin/hooks" ;;
esac
