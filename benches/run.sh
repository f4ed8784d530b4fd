#!/bin/sh
# benches/run.sh: build the release binaries and run every end-to-end benchmark of hooks, then
# print a summary table of medians, ratios and targets (issue 8). See BENCHMARKS.md.
#
#   1. benches/tunnel.rs with the relay inside the bench process (in-memory queue, as the relay
#      `hooks listen` embeds): latency, throughput, 1 MiB and 10 MiB bodies, CLI memory;
#   2. benches/tunnel.rs with `hooks relay` as its own process (durable SQLite queue, as
#      deployed): the same figures, plus the relay's memory;
#   3. benches/sessions.rs: relay memory with HOOKS_BENCH_SESSIONS (default 10000) idle sessions;
#   4. with --peers: benches/tunnel.rs again through bore 0.6 and rathole 0.5, the raw TCP tunnels
#      issue 8 compares hooks with, installed from crates.io into target/bench-peers (about 3
#      minutes the first time). bore's control port is fixed (7835): one such run at a time.
#
# Every setup whose tunnel runs as processes (the durable relay, bore, rathole) also reports
# the CPU time per webhook of its two processes at c=32, so the summary compares them.
#
# Sizes come from the HOOKS_BENCH_* variables documented at the top of each bench file.
# Takes about 3 minutes on 2 cores once built. Linux only for the memory figures (/proc).
set -eu

peers=0
for arg in "$@"; do
    case $arg in
        --peers) peers=1 ;;
        *) echo "usage: benches/run.sh [--peers]" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
began=$(date +%s)

# Each idle session is an open file in the sessions bench and one in the relay.
sessions=${HOOKS_BENCH_SESSIONS:-10000}
want=$((sessions + 1024))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    echo "run.sh: the hard open-file limit is $hard, below the $want that $sessions sessions need; the sessions bench will say so" >&2
    want=$hard
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
    ulimit -n "$want" || echo "run.sh: could not raise the open-file limit to $want" >&2
fi

# The benches measure the binaries users install: built per package, as ./install.sh's
# `cargo install --path` builds them, then copied aside. The `hooks` that `cargo bench` builds
# next to the benches has the dev-dependencies' features unified in (regex's Unicode tables,
# among others): 9.69 MB of code against 9.31. The relay process the benches start is the
# deployed binary, hooks-relay, next to that hooks.
echo "run.sh: building release binaries and benches…" >&2
cargo build --release -p hooks --bin hooks
cargo build --release -p relay-server --bin hooks-relay
# HOOKS_BENCH_BIN, when set, names another build to measure instead.
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$(pwd)/$target ;; esac
bin=$target/bench-bin
mkdir -p "$bin"
cp "$target/release/hooks" "$target/release/hooks-relay" "$bin/"
HOOKS_BENCH_BIN=${HOOKS_BENCH_BIN:-$bin/hooks}
export HOOKS_BENCH_BIN
echo "run.sh: measuring $HOOKS_BENCH_BIN" >&2
cargo bench --bench tunnel --bench sessions --no-run
if [ "$peers" -eq 1 ]; then
    cargo install --quiet --root "$target/bench-peers" bore-cli@0.6.0
    cargo install --quiet --root "$target/bench-peers" rathole@0.5.0
fi
built=$(date +%s)

summary=$(mktemp "${TMPDIR:-/tmp}/hooks-bench-summary.XXXXXX")
trap 'rm -f "$summary"' EXIT
HOOKS_BENCH_SUMMARY=$summary
export HOOKS_BENCH_SUMMARY

failed=0
HOOKS_BENCH_RELAY=inproc cargo bench --bench tunnel || failed=1
echo
HOOKS_BENCH_RELAY=process cargo bench --bench tunnel || failed=1
echo
cargo bench --bench sessions || failed=1
if [ "$peers" -eq 1 ]; then
    for peer in bore rathole; do
        echo
        HOOKS_BENCH_PEER=$peer HOOKS_BENCH_PEER_BIN=$target/bench-peers/bin/$peer \
            cargo bench --bench tunnel || failed=1
    done
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
echo
echo "## Summary"
echo
echo "- machine: $(nproc) cores, ${cpu:-unknown CPU}, $(uname -sr); everything on 127.0.0.1"
echo "- latency and time per request: medians over rounds; hooks/direct: median of per-round ratios"
echo "- RSS: VmRSS from /proc/<pid>/status; targets from issue 8"
# How much of link/*.order (link/README.md) the measured binaries still have: a stale file
# groups less of the code, which shows in the idle RSS.
for name in hooks hooks-relay; do
    measured=$(dirname "$HOOKS_BENCH_BIN")/$name
    if command -v nm >/dev/null 2>&1 && [ -x "$measured" ] && [ -f "link/$name.order" ]; then
        found=$(nm --defined-only "$measured" 2>/dev/null | awk 'NR == FNR { have[$NF] = 1; next } ($1 in have) { n++ } END { print n + 0 }' - "link/$name.order")
        echo "- link order of $name: $found of $(wc -l <"link/$name.order") symbols of link/$name.order found (benches/order.sh rewrites it)"
    fi
done
echo
echo "| setup | measure | direct | through the tunnel | tunnel/direct | target | met |"
echo "|---|---|---:|---:|---:|---|---|"
cat "$summary"
echo
echo "Run time: $((built - began)) s building, $(($(date +%s) - built)) s benchmarking."
if [ "$failed" -ne 0 ]; then
    echo "run.sh: a benchmark failed; see its output above" >&2
    exit 1
fi
