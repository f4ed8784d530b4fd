#!/bin/sh
# Builds hooks and hooks-relay from source with cargo and installs them, with their man pages.
#
#   ./install.sh              installs into cargo's bin folder (~/.cargo/bin), man pages into
#                             ~/.cargo/share/man/man1
#   HOOKS_INSTALL_ROOT=DIR ./install.sh   installs into DIR/bin and DIR/share/man/man1
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

# The man pages come from the binary just built, so they match its flags exactly.
man="$root/share/man/man1"
if ! "$bin/hooks" man --dir "$man" >"$log" 2>&1; then
    cat "$log" >&2
    echo "install.sh: writing the man pages into $man failed (output above)" >&2
    exit 1
fi
echo "installed: man pages in $man (man hooks, man hooks-listen, man hooks-relay, …)"

case ":$PATH:" in
    *":$bin:"*)
        echo "$bin is on your PATH: run 'hooks listen --forward-to localhost:3000'"
        # man-db looks in ../share/man beside each folder of PATH.
        echo "man finds the pages there; if yours does not, add $root/share/man to MANPATH"
        ;;
    *)
        echo "$bin is NOT on your PATH: add it (export PATH=\"$bin:\$PATH\") or run $bin/hooks"
        echo "for the man pages, add $root/share/man to MANPATH (or add $bin to PATH)"
        ;;
esac

echo "shell completions (for hooks-relay too: hooks-relay --completions SHELL):"
shell=${SHELL:-}
case "${shell##*/}" in
    bash) echo "  add to ~/.bashrc:  source <(hooks completions bash)" ;;
    zsh) echo "  hooks completions zsh > ~/.zfunc/_hooks, with fpath=(~/.zfunc \$fpath) before compinit in ~/.zshrc" ;;
    fish) echo "  hooks completions fish > ~/.config/fish/completions/hooks.fish" ;;
    *) echo "  hooks completions bash|zsh|fish|powershell|elvish prints the script for your shell" ;;
esac
