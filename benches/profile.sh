#!/bin/sh
# benches/profile.sh: where the CPU of one webhook goes, for the relay and the CLI apart (issue
# 24). Runs benches/profile.rs (a fixed number of 1 KiB JSON webhooks to an echo app through
# `hooks-relay --data-dir` and `hooks listen --json` with its capture store) under each tool, and
# writes every raw output and a summary into target/profile/<date>/ (the summary also to stdout).
#
#   benches/profile.sh [--no-build] [--dir DIR] [cpu] [strace] [callgrind] [perf] [hops] [breakdown]
#
# (default: all; --dir writes into DIR, e.g. to redo the breakdown of an earlier run)
#
#   cpu        CPU time (schedstat, utime/stime), context switches and VFS reads and writes
#              per webhook of every process and thread, from /proc, at c=1 and c=32, for
#              hooks, rathole 0.5, bore 0.6 and the direct path, PROFILE_ROUNDS rounds (the
#              order of the paths turns every round); medians over rounds
#   strace     system calls per webhook, per thread, of the relay and of the CLI (strace -f -ff
#              attached for the measured webhooks only), at c=1 and c=32
#   callgrind  instructions per webhook of the relay and of the CLI (valgrind --tool=callgrind,
#              counters zeroed before the measured webhooks and dumped after them), by thread,
#              stage, crate and function, at c=1 and c=32, and of windows with no webhook; the
#              same count (within 1 % at c=1) whatever else the machine does
#   perf       where the CPU time goes, the kernel included (perf record -e cpu-clock -g
#              attached for the measured webhooks), by system call and by symbol, at c=32
#   hops       who wakes whom (thread to thread, process to process), context switches and
#              system calls per webhook, from the scheduler's tracepoints (perf record -a), at
#              c=1 and c=32, and the events of one webhook in order
#   breakdown  the relay's and the CLI's CPU per webhook at c=32 by stage: their CPU (cpu part)
#              split into kernel time by system call (perf part) and user time by instruction
#              shares (callgrind part); runs by itself after those three
#
# A/B: PROFILE_BASE_BIN=<dir>/hooks (an earlier build, with its hooks-relay beside it) adds a
# path "base" to the cpu part and runs the callgrind part for it too, so a change is measured
# against the build before it in the same run. PROFILE_PATHS ["direct hooks rathole bore", plus
# base] and PROFILE_CS ["1 32"] narrow the cpu and callgrind parts (e.g. PROFILE_PATHS="hooks
# base" PROFILE_CS=32 for a quick A/B); PROFILE_NO_IDLE=1 skips callgrind's idle windows.
#
# Sizes: PROFILE_ROUNDS [5], PROFILE_CPU_REQUESTS [20000 at c=32, a quarter at c=1],
# PROFILE_TRACE_REQUESTS [2000] (strace and callgrind use that many, hops a quarter of it at c=1,
# perf ten times as many). The relay's and the CLI's data directories are in $TMPDIR (or /tmp).
# Builds the release binaries as ./install.sh does (fat LTO, about 5 minutes on 2 cores) unless
# --no-build; installs bore and rathole into target/bench-peers as `benches/run.sh --peers` does.
# Needs Linux (/proc), valgrind, strace and perf for their parts. Hardware counters (perf stat
# -e instructions) are not available in most VMs, which is why callgrind counts instructions.
set -eu

build=1
parts=""
dir=""
usage="usage: benches/profile.sh [--no-build] [--dir DIR] [cpu] [strace] [callgrind] [perf] [hops] [breakdown]"
while [ $# -gt 0 ]; do
    case $1 in
        --no-build) build=0 ;;
        --dir) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; dir=$2; shift ;;
        cpu|strace|callgrind|perf|hops|breakdown) parts="$parts $1" ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$parts" ] || parts=" cpu strace callgrind perf hops"
# The breakdown combines the cpu, callgrind and perf parts: it comes last.
case $parts in *cpu*callgrind*perf*) parts="$parts breakdown" ;; esac

cd "$(dirname "$0")/.."
here=$(pwd)
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$here/$target ;; esac
rounds=${PROFILE_ROUNDS:-5}
cs=${PROFILE_CS:-1 32}
cpu_n=${PROFILE_CPU_REQUESTS:-20000}
trace_n=${PROFILE_TRACE_REQUESTS:-2000}
out=${dir:-$target/profile/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
summary=$out/summary.md

bin=$target/bench-bin
if [ "$build" -eq 1 ]; then
    echo "profile.sh: building release binaries (as ./install.sh does) and the driver…" >&2
    cargo build --release -p hooks --bin hooks
    cargo build --release -p relay-server --bin hooks-relay
    mkdir -p "$bin"
    cp "$target/release/hooks" "$target/release/hooks-relay" "$bin/"
    cargo bench --bench profile --no-run
    case $parts in *cpu*)
        cargo install --quiet --root "$target/bench-peers" bore-cli@0.6.0
        cargo install --quiet --root "$target/bench-peers" rathole@0.5.0 ;;
    esac
fi
HOOKS_BENCH_BIN=${HOOKS_BENCH_BIN:-$bin/hooks}
export HOOKS_BENCH_BIN
[ -x "$HOOKS_BENCH_BIN" ] || { echo "profile.sh: no $HOOKS_BENCH_BIN; run without --no-build" >&2; exit 1; }

say() { printf '%s\n' "$*" | tee -a "$summary"; }

# One run of the driver; the variables it reads are set by the caller.
drive() {
    cargo bench --quiet --bench profile 2>>"$out/driver.stderr"
}

# Medians over rounds of the per-webhook figures in a TSV of the driver (HOOKS_PROFILE_OUT),
# by path, concurrency, process and thread.
medians() {
    # Threads of one name in one run (a runtime's workers) are summed first.
    grep -v '	load	' "$1" | awk -F '\t' -v OFS='\t' '
        { k = $1 OFS $2 OFS $3 OFS $4 OFS $5; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
          for (f = 6; f <= 12; f++) sum[k, f] += $f }
        END { for (i = 1; i <= n; i++) { k = order[i]; line = k; for (f = 6; f <= 12; f++) line = line OFS sum[k, f]; print line } }' \
        | cut -f2- | sort -t "$(printf '\t')" -k1,1 -k2,2n -k3,3 -k4,4 | awk -F '\t' '
        function flush(   i, j, t, k, row) {
            if (n == 0) return
            row = key
            for (k = 5; k <= 11; k++) {
                for (i = 1; i <= n; i++) v[i] = val[i, k]
                for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
                row = row sprintf(" | %.*f", (k <= 7 ? 1 : 2), (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2))
            }
            print "| " row " | " n " |"
            n = 0
        }
        {
            k = $1 " | " $2 " | " $3 " | " $4
            if (k != key) { flush(); key = k }
            n++
            for (f = 5; f <= 11; f++) val[n, f] = $f
        }
        END { flush() }'
}

# Per path and concurrency, medians over rounds of: webhooks/s and its ratio to the direct
# path's in the same round, p50, and the tunnel's CPU per webhook (its two processes together).
tunnels() {
    awk -F '\t' '
        $4 == "load" { rate[$1, $2, $3] = $6; p50[$1, $2, $3] = $7; paths[$2] = 1; cs[$3] = 1; tags[$1] = 1; next }
        $5 == "(all)" && $4 != "app" && $4 != "load client" {
            cpu[$1, $2, $3] += $6; usr[$1, $2, $3] += $7; sys[$1, $2, $3] += $8; vcs[$1, $2, $3] += $9; nvcs[$1, $2, $3] += $10
        }
        $5 == "(all)" && $4 == "app" { app[$1, $2, $3] = $6 }
        $5 == "(all)" && $4 == "load client" { cl[$1, $2, $3] = $6 }
        function med(arr, p, c,   n, i, j, t, v, k) {
            n = 0
            split("", v)
            for (k in tags) if (((k, p, c) in arr)) v[++n] = arr[k, p, c]
            if (n == 0) return 0
            for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
            return (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2)
        }
        END {
            for (c in cs) for (p in paths) {
                for (k in tags) if (((k, p, c) in rate) && ((k, "direct", c) in rate) && rate[k, "direct", c] > 0)
                    ratio[k, p, c] = rate[k, p, c] / rate[k, "direct", c]
                printf "| %s | %s | %.0f | %.2f× | %.0f | %.1f | %.1f | %.1f | %.2f | %.2f | %.1f | %.1f |\n", p, c,
                    med(rate, p, c), med(ratio, p, c), med(p50, p, c), med(cpu, p, c), med(usr, p, c), med(sys, p, c),
                    med(vcs, p, c), med(nvcs, p, c), med(app, p, c), med(cl, p, c)
            }
        }' "$1" | sort -t'|' -k3,3n -k2,2
}

cpu() {
    say "## CPU, context switches and system calls per webhook (/proc), medians of $rounds rounds"
    say ""
    peers=$target/bench-peers/bin
    paths=${PROFILE_PATHS:-direct hooks rathole bore${PROFILE_BASE_BIN:+ base}}
    r=0
    while [ "$r" -lt "$rounds" ]; do
        r=$((r + 1))
        for path in $paths; do
            for c in $cs; do
                n=$cpu_n
                [ "$c" -eq 1 ] && n=$((cpu_n / 4))
                echo "profile.sh: cpu round $r/$rounds: $path c=$c, $n webhooks" >&2
                bin_var=""
                case $path in bore|rathole) bin_var=$peers/$path ;; esac
                through=$path hooks_bin=$HOOKS_BENCH_BIN
                [ "$path" = base ] && through=hooks hooks_bin=$PROFILE_BASE_BIN
                HOOKS_PROFILE_PATH=$through HOOKS_PROFILE_LABEL=$path HOOKS_BENCH_BIN=$hooks_bin \
                    HOOKS_PROFILE_CLIENTS=$c HOOKS_PROFILE_REQUESTS=$n \
                    HOOKS_BENCH_PEER_BIN=$bin_var HOOKS_PROFILE_OUT=$out/cpu.tsv HOOKS_PROFILE_TAG=$r \
                    drive >>"$out/cpu.md"
            done
        done
        # The next round starts with another path, so slow drift hits every path alike.
        paths="$(echo "$paths" | cut -d' ' -f2-) $(echo "$paths" | cut -d' ' -f1)"
    done
    say "### The tunnels side by side"
    say ""
    say "Tunnel CPU: the relay and the CLI together for hooks, server and client for the peers (none"
    say "for direct); ratio: webhooks/s against the direct path's in the same round. Webhooks/s and p50"
    say "are the driver's (c=1: $((cpu_n / 4)) webhooks; c=32: $cpu_n), not a latency benchmark."
    say ""
    say "| path | c | webhooks/s | × direct | p50 µs | tunnel CPU µs | user µs | sys µs | vol. cs | invol. cs | app CPU µs | load client CPU µs |"
    say "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    tunnels "$out/cpu.tsv" | tee -a "$summary"
    say ""
    say "### Every process and thread"
    say ""
    say "| path | c | process | thread | CPU µs | user µs | sys µs | vol. cs | invol. cs | syscr | syscw | rounds |"
    say "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    medians "$out/cpu.tsv" | tee -a "$summary"
    say ""
}

# Attaches strace to $1 (a PROFILE_*_PID variable's name) for the measured webhooks.
strace_run() {
    role=$1 pidvar=$2 c=$3
    dir=$out/strace-$role-c$c
    mkdir -p "$dir"
    HOOKS_PROFILE_CLIENTS=$c HOOKS_PROFILE_REQUESTS=$trace_n HOOKS_PROFILE_SETTLE_MS=1000 \
    HOOKS_PROFILE_BEFORE="
        pid=\$$pidvar
        strace -f -ff -o $dir/trace -p \$pid 2>$dir/attach.log & echo \$! >$dir/strace.pid
        tries=0
        until grep -q attached $dir/attach.log || [ \$tries -ge 100 ]; do
            sleep 0.1; tries=\$((tries + 1)); done
        grep -q attached $dir/attach.log; sleep 0.2" \
    HOOKS_PROFILE_AFTER="
        pid=\$$pidvar
        for t in /proc/\$pid/task/*; do echo \"\${t##*/} \$(cat \$t/comm)\"; done >$dir/threads
        kill -INT \$(cat $dir/strace.pid)
        while kill -0 \$(cat $dir/strace.pid) 2>/dev/null; do sleep 0.1; done" \
        drive >"$dir/driver.md"
    say "### system calls of the $role at c=$c, per webhook ($trace_n webhooks; strace -f attached)"
    say ""
    say "| thread | system call | calls per webhook |"
    say "|---|---|---:|"
    for f in "$dir"/trace.*; do
        tid=${f##*.}
        name=$(awk -v t="$tid" '$1 == t { print $2 }' "$dir/threads")
        awk -v per="$trace_n" -v thread="${name:-gone} $tid" '
            /^[a-z_0-9]+\(/ { n = $0; sub(/\(.*/, "", n); count[n]++ }
            /<\.\.\. [a-z_0-9]+ resumed>/ { next }
            END { for (s in count) printf "| %s | %s | %.2f |\n", thread, s, count[s] / per }' "$f"
    done | sort -t'|' -k2,2 -k4,4nr | tee -a "$summary"
    say ""
    say "| all threads | system call | calls per webhook |"
    say "|---|---|---:|"
    cat "$dir"/trace.* | awk -v per="$trace_n" '
        /^[a-z_0-9]+\(/ { n = $0; sub(/\(.*/, "", n); count[n]++; all++ }
        END { for (s in count) printf "| | %s | %.2f |\n", s, count[s] / per; printf "| | **all** | %.2f |\n", all / per }' \
        | sort -t'|' -k4,4nr | tee -a "$summary"
    say ""
}

strace_part() {
    say "## System calls per webhook (strace)"
    say ""
    for c in 1 32; do
        strace_run relay PROFILE_SERVER_PID "$c"
        strace_run cli PROFILE_CLIENT_PID "$c"
    done
}

# Runs the relay or the CLI ($1) under callgrind at c=$2, zeroing its counters before the
# measured webhooks and dumping them after.
callgrind_run() {
    role=$1 c=$2
    # An idle window (cg_n=0, held cg_hold ms) counts per second (cg_per) instead.
    n=${cg_n:-$trace_n} per=${cg_per:-$trace_n} unit=${cg_unit:-webhook}
    # cg_bin: another build of hooks (PROFILE_BASE_BIN), its figures labelled "base".
    label=${cg_bin:+base-}
    dir=$out/callgrind-$label$role-c$c-n$n
    mkdir -p "$dir"
    wrap="valgrind --tool=callgrind --separate-threads=yes --dump-instr=no --callgrind-out-file=$dir/cg.out --log-file=$dir/valgrind.log"
    pidvar=PROFILE_SERVER_PID
    if [ "$role" = relay ]; then
        export HOOKS_PROFILE_WRAP_RELAY="$wrap"
        unset HOOKS_PROFILE_WRAP_CLI
    else
        export HOOKS_PROFILE_WRAP_CLI="$wrap"
        unset HOOKS_PROFILE_WRAP_RELAY
        pidvar=PROFILE_CLIENT_PID
    fi
    HOOKS_BENCH_BIN=${cg_bin:-$HOOKS_BENCH_BIN} \
    HOOKS_PROFILE_CLIENTS=$c HOOKS_PROFILE_REQUESTS=$n HOOKS_PROFILE_WARMUP=200 \
    HOOKS_PROFILE_SETTLE_MS=3000 HOOKS_PROFILE_HOLD_MS=${cg_hold:-0} \
    HOOKS_PROFILE_BEFORE="callgrind_control -z \$$pidvar >$dir/zero.log" \
    HOOKS_PROFILE_AFTER="
        ls /proc/\$$pidvar/task | sort -n | while read t; do cat /proc/\$$pidvar/task/\$t/comm; done >$dir/threads
        callgrind_control -d window \$$pidvar >$dir/dump.log" \
        drive >"$dir/driver.md"
    unset HOOKS_PROFILE_WRAP_RELAY HOOKS_PROFILE_WRAP_CLI
    # The window's dump is the first one: cg.out.1-NN, one file per thread, numbered as valgrind
    # numbers threads, in the order they started (as long as none ended), which is the order
    # of their ids in /proc. The main thread's name there is valgrind's.
    files=$(ls "$dir"/cg.out.1-* 2>/dev/null || true)
    [ -n "$files" ] || { echo "profile.sh: no callgrind dump in $dir" >&2; return 1; }
    # shellcheck disable=SC2086
    awk -v per="$per" -v root="$here" -f benches/callgrind-stages.awk $files >"$dir/stages.tsv"
    total=$(awk -F '\t' '$1 == "total" { print $3 }' "$dir/stages.tsv")
    say "### ${label}$role at c=$c: $total instructions per $unit ($n webhooks, callgrind)"
    if [ "$n" -eq 0 ]; then
        say ""
        return 0
    fi
    say ""
    say "| thread (callgrind dump, name) | Ir per webhook | its largest stage |"
    say "|---|---:|---|"
    awk -F '\t' 'FNR == NR { name[FNR] = ($0 ~ /callgrind|valgrind/ ? "main" : $0); next }
        $1 == "thread" { n = $2; sub(/.*-/, "", n); printf "| %s %s | %s | %s |\n", n, name[n + 0], $3, $4 }' \
        "$dir/threads" "$dir/stages.tsv" | sort -t'|' -k3,3nr | tee -a "$summary"
    say ""
    say "| stage | Ir per webhook | share |"
    say "|---|---:|---:|"
    awk -F '\t' '$1 == "stage" { printf "| %s | %s | %s %% |\n", $2, $3, $4 }' "$dir/stages.tsv" \
        | sort -t'|' -k3,3nr | tee -a "$summary"
    say ""
    say "| crate or source file (top 25) | Ir per webhook | share |"
    say "|---|---:|---:|"
    awk -F '\t' '$1 == "crate" { printf "| %s | %s | %s %% |\n", $2, $3, $4 }' "$dir/stages.tsv" \
        | sort -t'|' -k3,3nr | head -n 25 | tee -a "$summary"
    say ""
    say "| allocations and copies, by the stage that calls them | calls per webhook | Ir per webhook (inclusive) |"
    say "|---|---:|---:|"
    awk -F '\t' '$1 == "call" && $4 >= 0.1 { printf "| %s: %s | %s | %s |\n", $2, $3, $4, $5 }' "$dir/stages.tsv" \
        | sort -t'|' -k3,3nr | tee -a "$summary"
    awk -F '\t' '$1 == "call" { n[$3] += $4; ir[$3] += $5 }
        END { for (w in n) printf "| **all: %s** | %.1f | %.0f |\n", w, n[w], ir[w] }' "$dir/stages.tsv" \
        | sort | tee -a "$summary"
    say ""
    say "| function, self cost (top 30; inlined code counts in its caller) | Ir per webhook | share |"
    say "|---|---:|---:|"
    awk -F '\t' '$1 == "fn" { f = $2; gsub(/\|/, "\\|", f); if (length(f) > 110) f = substr(f, 1, 107) "…"; printf "| `%s` | %s | %s %% |\n", f, $3, $4 }' \
        "$dir/stages.tsv" | sort -t'|' -k3,3nr | head -n 30 | tee -a "$summary"
    say ""
    # callgrind_annotate of the busiest thread, inclusive, for reading by hand.
    busiest=$(awk -F '\t' '$1 == "thread" { print $3 "\t" $2 }' "$dir/stages.tsv" | sort -nr | head -n 1 | cut -f2)
    callgrind_annotate --inclusive=yes "$busiest" >"$dir/annotate-inclusive.txt" 2>/dev/null || true
    callgrind_annotate "$busiest" >"$dir/annotate-self.txt" 2>/dev/null || true
}

callgrind_part() {
    say "## Instructions per webhook (callgrind)"
    say ""
    for c in $cs; do
        callgrind_run relay "$c"
        callgrind_run cli "$c"
        if [ -n "${PROFILE_BASE_BIN:-}" ]; then
            cg_bin=$PROFILE_BASE_BIN callgrind_run relay "$c"
            cg_bin=$PROFILE_BASE_BIN callgrind_run cli "$c"
        fi
    done
    [ -z "${PROFILE_NO_IDLE:-}" ] || return 0
    # What a window costs with no webhook at all (pings, timers), per second, to set against
    # the windows above (their length is in each driver.md).
    cg_n=0 cg_hold=10000 cg_per=13 cg_unit="second idle (10 s held + 3 s settled)" callgrind_run relay 1
    cg_n=0 cg_hold=10000 cg_per=13 cg_unit="second idle (10 s held + 3 s settled)" callgrind_run cli 1
}

# Samples the relay or the CLI ($1) with perf while c=32 webhooks run.
perf_run() {
    role=$1 pidvar=$2 c=$3
    dir=$out/perf-$role-c$c
    mkdir -p "$dir"
    n=$((trace_n * 10))
    HOOKS_PROFILE_CLIENTS=$c HOOKS_PROFILE_REQUESTS=$n \
    HOOKS_PROFILE_BEFORE="
        perf record -q -e cpu-clock -F 2000 -g -p \$$pidvar -o $dir/perf.data 2>$dir/perf.log &
        echo \$! >$dir/perf.pid; sleep 1" \
    HOOKS_PROFILE_AFTER="
        kill -INT \$(cat $dir/perf.pid)
        while kill -0 \$(cat $dir/perf.pid) 2>/dev/null; do sleep 0.1; done" \
        drive >"$dir/driver.md"
    perf report -i "$dir/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null \
        | grep -v '^$' >"$dir/dsos.txt" || true
    perf report -i "$dir/perf.data" --no-children --sort comm,dso,sym --stdio -g none 2>/dev/null \
        | grep -v '^$' >"$dir/self.txt" || true
    perf report -i "$dir/perf.data" --children --sort sym --stdio -g none 2>/dev/null \
        | grep -v '^$' >"$dir/children.txt" || true
    perf report -i "$dir/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null \
        | grep -v '^$' >"$dir/threads.txt" || true
    say "### $role at c=$c: perf record -e cpu-clock, $n webhooks"
    say ""
    say "Share of the process's samples per thread:"
    say ""
    say '```'
    grep '%' "$dir/threads.txt" | head -n 10 | tee -a "$summary"
    say '```'
    say ""
    say "Share of the process's samples per object (the kernel is [kernel.kallsyms]):"
    say ""
    say '```'
    grep '%' "$dir/dsos.txt" | head -n 6 | tee -a "$summary"
    say '```'
    say ""
    say "Kernel time by entry point (inclusive; a system call's share includes the wake-ups and loopback delivery it causes):"
    say ""
    say '```'
    grep -E '\[k\] (do_syscall_64|do_writev|__sys_sendto|__sys_recvfrom|__x64_sys_pwrite64|__x64_sys_pread64|__x64_sys_fsync|__x64_sys_fdatasync|__x64_sys_futex|do_epoll_wait|__x64_sys_fcntl|ksys_write|__x64_sys_clock_nanosleep|schedule|handle_softirqs|try_to_wake_up|tcp_sendmsg|tcp_recvmsg|asm_exc_page_fault|asm_sysvec_apic_timer_interrupt|asm_sysvec_reschedule_ipi|asm_sysvec_call_function_single)$' \
        "$dir/children.txt" | tee -a "$summary"
    say '```'
    say ""
    say "Self time, top 30 symbols:"
    say ""
    say '```'
    grep '%' "$dir/self.txt" | head -n 30 | tee -a "$summary"
    say '```'
    say ""
}

perf_part() {
    say "## Where the time goes, kernel included (perf)"
    say ""
    perf_run relay PROFILE_SERVER_PID 32
    perf_run cli PROFILE_CLIENT_PID 32
}

# Records the wake-ups, context switches and system calls of every thread of the relay, the
# CLI, the app and the load client while $1 webhooks run at c=$2 (perf record -a of the
# scheduler's and system calls' tracepoints); with $3 = 1 it also prints them in order.
hops_run() {
    n=$1 c=$2 timeline=$3
    dir=$out/hops-n$n-c$c
    mkdir -p "$dir"
    map='for p in $PROFILE_SERVER_PID:relay $PROFILE_CLIENT_PID:cli $PROFILE_APP_PID:app $PROFILE_DRIVER_PID:client; do
            pid=${p%%:*}; role=${p#*:}
            for t in /proc/$pid/task/*; do echo "${t##*/} $role $(tr " " _ <"$t/comm")"; done
        done'
    HOOKS_PROFILE_CLIENTS=$c HOOKS_PROFILE_REQUESTS=$n HOOKS_PROFILE_SETTLE_MS=300 \
    HOOKS_PROFILE_BEFORE="$map >$dir/threads.map
        perf record -q -a -e sched:sched_switch -e sched:sched_wakeup -e raw_syscalls:sys_enter -o $dir/perf.data 2>$dir/perf.log &
        echo \$! >$dir/perf.pid; sleep 1" \
    HOOKS_PROFILE_AFTER="$map >>$dir/threads.map
        kill -INT \$(cat $dir/perf.pid)
        while kill -0 \$(cat $dir/perf.pid) 2>/dev/null; do sleep 0.1; done" \
        drive >"$dir/driver.md"
    perf script -i "$dir/perf.data" -F comm,pid,tid,time,event,trace >"$dir/script.txt" 2>/dev/null
    sort -u "$dir/threads.map" -o "$dir/threads.map"
    awk -v per="$n" -v timeline="$timeline" -f benches/hops.awk "$dir/threads.map" "$dir/script.txt" >"$dir/hops.tsv"
}

hops_part() {
    say "## Thread hops: wake-ups per webhook (perf record -a of sched_wakeup, sched_switch, sys_enter)"
    say ""
    say "Counted from the load client's first write of the measured webhooks to the end of the window"
    say "(300 ms after the last one was printed, so the acknowledgements' commits are in)."
    say ""
    hops_run 1 1 1
    say "### One webhook at c=1, in order (µs from the client's write)"
    say ""
    say '```'
    grep -v -E '^(wake|sleep|preempt|sys)	' "$out/hops-n1-c1/hops.tsv" | tee -a "$summary"
    say '```'
    say ""
    for c in 1 32; do
        n=$trace_n
        [ "$c" -eq 1 ] && n=$((trace_n / 4))
        hops_run "$n" "$c" 0
        tsv=$out/hops-n$n-c$c/hops.tsv
        say "### c=$c, $n webhooks: who wakes whom, per webhook"
        say ""
        say "| waker | woken | per webhook |"
        say "|---|---|---:|"
        awk -F '\t' '$1 == "wake" { printf "| %s | %s | %s |\n", $2, $3, $4 }' "$tsv" | sort -t'|' -k4,4nr | tee -a "$summary"
        say ""
        say "| thread | sleeps (waits) | preempted | system calls | of which |"
        say "|---|---:|---:|---:|---|"
        awk -F '\t' '
            $1 == "sleep" { s[$2] = $3; t[$2] = 1 }
            $1 == "preempt" { p[$2] = $3; t[$2] = 1 }
            $1 == "sys" { n[$2] += $4; d[$2] = d[$2] sprintf("%s %s, ", $3, $4); t[$2] = 1 }
            END { for (k in t) printf "| %s | %.2f | %.2f | %.2f | %s |\n", k, s[k], p[k], n[k], d[k] }' "$tsv" \
            | sort | tee -a "$summary"
        say ""
    done
}

# The relay's and the CLI's CPU per webhook at c=32, by stage: user time split by callgrind's
# instruction shares, kernel time by perf's system call shares (benches/breakdown.awk). Needs the
# cpu, callgrind and perf parts of this run.
breakdown() {
    for role in relay cli; do
        cpu=$(medians "$out/cpu.tsv" | awk -F ' [|] ' -v r="$role" '$1 == "| hooks" && $2 == "32" && $3 == r && $4 == "(all)" { print $5 }')
        awk -v cpu="$cpu" -f benches/breakdown.awk "$out/perf-$role-c32/dsos.txt" \
            "$out/perf-$role-c32/children.txt" "$out/callgrind-$role-c32-n$trace_n/stages.tsv" \
            >"$out/breakdown-$role.tsv"
    done
    say "## Where the CPU of one webhook goes, c=32 (relay and CLI)"
    say ""
    say "µs per webhook: the process's CPU (cpu part, median), its kernel share from perf, user time split"
    say "by callgrind's instruction shares, kernel time by perf's inclusive share of each system call."
    say ""
    say "| | stage | relay µs | relay Ir | CLI µs | CLI Ir |"
    say "|---|---|---:|---:|---:|---:|"
    awk -F '\t' '
        FILENAME ~ /relay/ { r[$1 "\t" $2] = $3; ri[$1 "\t" $2] = $4; keys[$1 "\t" $2] = 1 }
        FILENAME ~ /cli/ { c[$1 "\t" $2] = $3; ci[$1 "\t" $2] = $4; keys[$1 "\t" $2] = 1 }
        END { for (k in keys) { split(k, kk, "\t")
            order = (kk[1] == "user" ? 1 : kk[1] == "kernel" ? 2 : 3)
            printf "%d\t%09.1f\t| %s | %s | %s | %s | %s | %s |\n", order, 1e6 - r[k] - c[k], kk[1], kk[2], r[k], ri[k], c[k], ci[k] } }' \
        "$out/breakdown-relay.tsv" "$out/breakdown-cli.tsv" | sort | cut -f3- | tee -a "$summary"
    say ""
}

[ -f "$summary" ] || {
    echo "# hooks: profile of one webhook ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
    echo ""
    echo "- machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr)"
    echo "- binaries: $HOOKS_BENCH_BIN and the hooks-relay beside it; 1 KiB JSON POSTs to an echo app"
    echo ""
} >"$summary"
for part in $parts; do
    case $part in
        cpu) cpu ;;
        strace) strace_part ;;
        callgrind) callgrind_part ;;
        perf) perf_part ;;
        hops) hops_part ;;
        breakdown) breakdown ;;
    esac
done
echo "profile.sh: everything is in $out (summary: $summary)" >&2
