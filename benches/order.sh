#!/bin/sh
# benches/order.sh: writes link/hooks.order and link/hooks-relay.order, the order in which the
# release link lays out the functions of `hooks` and `hooks-relay` (see link/README.md).
#
#   benches/order.sh [--no-build]
#
# Each file lists, by symbol, first every function the process runs from its start until it is
# idle (for the CLI: attached to its relay), then every other function it runs for webhooks, the
# busiest first. With that layout the code an idle process touches sits in a few contiguous
# pages instead of being spread over the whole text, which is what its idle RSS is made of (the
# kernel maps file pages around each first touch), and the code of a webhook shares fewer pages.
#
# Scenarios, each process under valgrind's callgrind (a dump when idle, another after load):
#   - benches/profile.rs' path: `hooks-relay --data-dir` and `hooks listen --json` with the
#     capture store, 300 webhooks of 1 KiB JSON from 4 connections;
#   - README's quick start: `hooks listen --forward-to` with its embedded relay and the pretty
#     output, then 20 webhooks with curl, a Stripe-signed one among them.
# The symbols are those of this toolchain and Cargo.lock: rerun after changing either (a symbol
# the linker does not find is skipped, so a stale file only groups less). Needs valgrind,
# python3 and curl.
set -eu

build=1
case ${1:-} in
    --no-build) build=0 ;;
    "") ;;
    *) echo "usage: benches/order.sh [--no-build]" >&2; exit 2 ;;
esac
for tool in valgrind callgrind_control python3 curl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "order.sh: $tool not found (apt-get install valgrind python3 curl)" >&2; exit 1; }
done

cd "$(dirname "$0")/.."
here=$(pwd)
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$here/$target ;; esac
bin=$target/bench-bin
if [ "$build" -eq 1 ]; then
    # The same commands as ./install.sh's `cargo install` (one package at a time, so features
    # and symbol names are the same) and benches/profile.sh.
    cargo build --release -p hooks --bin hooks
    cargo build --release -p relay-server --bin hooks-relay
    mkdir -p "$bin"
    cp "$target/release/hooks" "$target/release/hooks-relay" "$bin/"
    cargo bench --bench profile --no-run
fi
[ -x "$bin/hooks" ] && [ -x "$bin/hooks-relay" ] || { echo "order.sh: no binaries in $bin; run without --no-build" >&2; exit 1; }

out=$target/order
rm -rf "$out"
mkdir -p "$out"
cg="valgrind --tool=callgrind --demangle=no --dump-instr=no --log-file=$out"

# 1. The profile harness's path, both processes under callgrind.
echo "order.sh: relay and CLI under callgrind (a few minutes)…" >&2
HOOKS_BENCH_BIN=$bin/hooks \
HOOKS_PROFILE_WRAP_RELAY="$cg/relay.log --callgrind-out-file=$out/relay.cg" \
HOOKS_PROFILE_WRAP_CLI="$cg/cli.log --callgrind-out-file=$out/cli.cg" \
HOOKS_PROFILE_CLIENTS=4 HOOKS_PROFILE_REQUESTS=300 HOOKS_PROFILE_WARMUP=0 HOOKS_PROFILE_SETTLE_MS=1000 \
HOOKS_PROFILE_BEFORE="callgrind_control -d idle \$PROFILE_SERVER_PID >/dev/null; callgrind_control -d idle \$PROFILE_CLIENT_PID >/dev/null" \
HOOKS_PROFILE_AFTER="callgrind_control -d load \$PROFILE_SERVER_PID >/dev/null; callgrind_control -d load \$PROFILE_CLIENT_PID >/dev/null" \
    cargo bench --quiet --bench profile >"$out/driver.md" 2>"$out/driver.stderr" \
    || { cat "$out/driver.stderr" >&2; exit 1; }

# 2. The quick start: `hooks listen --forward-to` with its embedded relay, pretty output.
app_port_file=$out/app.port
python3 - "$app_port_file" <<'EOF' &
import http.server, sys
class Echo(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
server = http.server.HTTPServer(("127.0.0.1", 0), Echo)
open(sys.argv[1] + ".tmp", "w").write(str(server.server_address[1]))
__import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
EOF
app=$!
home=$out/home
mkdir -p "$home"
trap 'kill $app 2>/dev/null || true; [ -n "${cli:-}" ] && kill $cli 2>/dev/null || true' EXIT INT TERM
while [ ! -s "$app_port_file" ]; do sleep 0.1; done
secret=whsec_order
HOME=$home XDG_CONFIG_HOME=$home/config XDG_DATA_HOME=$home/data NO_COLOR=1 \
    $cg/quick.log --callgrind-out-file="$out/quick.cg" "$bin/hooks" listen \
    --forward-to "127.0.0.1:$(cat "$app_port_file")" --secret "$secret" >"$out/quick.out" 2>&1 &
cli=$!
url=""
for _ in $(seq 1200); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/[A-Za-z0-9_-]*' "$out/quick.out" | head -1 || true)
    [ -n "$url" ] && break
    sleep 0.25
done
[ -n "$url" ] || { cat "$out/quick.out" >&2; echo "order.sh: hooks listen printed no URL" >&2; exit 1; }
sleep 2
callgrind_control -d idle $cli >/dev/null 2>&1
body='{"id":"evt_1","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","amount":2000}}}'
ts=$(date +%s)
sig=$(printf '%s' "$ts.$body" | python3 -c 'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), sys.stdin.buffer.read(), hashlib.sha256).hexdigest())' "$secret")
for i in $(seq 20); do
    curl -s -o /dev/null -X POST -H 'content-type: application/json' \
        -H "stripe-signature: t=$ts,v1=$sig" -d "$body" "$url/order/$i"
done
sleep 2
callgrind_control -d load $cli >/dev/null 2>&1
kill $cli
wait $cli 2>/dev/null || true
cli=""

# 3. The order: the idle dumps' functions, then the load dumps' by instructions, busiest first.
python3 - "$out" "$here/link" <<'EOF'
import collections, os, re, sys
out, link = sys.argv[1], sys.argv[2]

def functions(path, obj):
    """Instructions per function of the object whose path ends in obj, in one callgrind dump."""
    cost, names, objs = collections.Counter(), {}, {}
    ob = fn = None
    call = False
    def name(table, value):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", value)
        if not m:
            return value
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1))
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("ob="): ob = name(objs, line[3:])
        elif line.startswith("cob="): name(objs, line[4:])
        elif line.startswith("fn="): fn = name(names, line[3:])
        elif line.startswith("cfn="): name(names, line[4:])
        elif line.startswith("calls="): call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if call:
                call = False
                continue
            fields = line.split()
            if len(fields) >= 2 and ob and ob.endswith(obj) and fn:
                # callgrind marks recursion levels as name'2; valgrind names unnamed code (below main)
                symbol = re.sub(r"'\d+$", "", fn)
                if re.match(r"^[A-Za-z_.$][\w.$]*$", symbol):
                    cost[symbol] += int(fields[1])
    return cost

for binary, prefixes in (("hooks-relay", ["relay"]), ("hooks", ["cli", "quick"])):
    idle, load = collections.Counter(), collections.Counter()
    for prefix in prefixes:
        # callgrind numbers its dumps: the first is the idle one, the second the load's
        for number, into in ((1, idle), (2, load)):
            path = os.path.join(out, f"{prefix}.cg.{number}")
            if not os.path.exists(path):
                sys.exit(f"order.sh: no dump {path}")
            into.update(functions(path, "/" + binary))
    order = sorted(idle)  # grouped; the order within the idle set does not matter
    order += [f for f, _ in load.most_common() if f not in idle]
    with open(os.path.join(link, binary + ".order"), "w") as f:
        f.write("\n".join(order) + "\n")
    print(f"order.sh: link/{binary}.order: {len(idle)} functions run until idle, "
          f"{len(order) - len(idle)} more under load", file=sys.stderr)
EOF
