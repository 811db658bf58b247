#!/bin/bash
# Broker CPU per delivered message, split into user and system time and into the main thread
# and the rest (V8's worker threads, libuv's threadpool), over one run of the load client.
# The broker runs on core 0, the load on core 1; one warm-up run of the same load comes first
# (WARM_RUNS=N for more).
#
#   benches/tools/cpu-split.sh [load-client flags...]
#   DIST=/other/build/dist benches/tools/cpu-split.sh --scenario fanin --clients 50 --qos 1 --messages 1000
#
# MQLOG_BENCH_DIR is where the broker's data directory goes (default .bench-data/, not /tmp).
# DIST picks the broker build (default ./dist; the load client always comes from ./dist),
# FSYNC its --fsync policy (default batch), BROKER_FLAGS more `mqlog start` flags (e.g.
# --no-journal), NODE_FLAGS extra node flags for the broker (e.g. --single-threaded-gc).
# Needs `npm run build` first. Sends to 127.0.0.1 only. The row also carries the load client's
# latency p50/p99 (µs), the bytes the broker wrote to the disk per delivered message
# (/proc/PID/io write_bytes, after a sync) and its minor page faults per 1,000 delivered
# messages (/proc/PID/stat minflt: first touches of fresh memory).
#
# RELAY=1 measures Node's floor instead of mqlog: benches/brokers/relay.ts, a deliberately
# minimal relay (no log, no sessions), with RELAY_FLAGS (--cork or --batch, and --scan for the
# hand-written PUBLISH/PUBACK scanner; see relay.ts).
set -eu
cd "$(dirname "$0")/../.."
DIST=${DIST:-dist}
PORT=${PORT:-18830}
# the broker's data directory: benches/lib/data-dir.ts picks the root (not /tmp) and refuses tmpfs
D=$(node -e 'import("./dist/benches/lib/data-dir.js").then((m) => m.benchDataDir("mqlog-split-")).then((d) => console.log(d), (e) => { console.error(e.message); process.exit(1); })')
ERR=$(mktemp)
if [ -n "${RELAY:-}" ]; then
  # shellcheck disable=SC2086 # lists of flags
  taskset -c 0 node ${NODE_FLAGS:-} "$DIST/benches/brokers/relay.js" --port "$PORT" ${RELAY_FLAGS:-} 2>"$ERR" &
else
  taskset -c 0 node ${NODE_FLAGS:-} "$DIST/src/cli/main.js" start --port "$PORT" --data-dir "$D" --fsync "${FSYNC:-batch}" ${BROKER_FLAGS:-} --log-level warn 2>"$ERR" &
fi
BP=$!
trap 'kill $BP 2>/dev/null || true; wait $BP 2>/dev/null || true; rm -rf "$D" "$ERR"' EXIT
for _ in $(seq 100); do grep -q ready "$ERR" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$ERR" || { echo "the broker did not start: $(cat "$ERR")" >&2; exit 1; }
# WARM=N sends N messages per client in the warm-up instead of the measured run's count;
# WARM_RUNS=N does N warm-up runs (default 1; the side-by-side driver does 3), with client
# prefixes warm, warm2, warm3, ...
for w in $(seq "${WARM_RUNS:-1}"); do
  prefix=warm; [ "$w" -gt 1 ] && prefix=warm$w
  taskset -c 1 node dist/src/cli/main.js bench --port "$PORT" --json "$@" ${WARM:+--messages "$WARM"} --client-prefix "$prefix" >/dev/null 2>&1
done
snap() { for t in /proc/$BP/task/*; do echo "$(basename "$t") $(awk '{print $14, $15}' "$t/stat")"; done | sort; }
# bytes the broker sent to the disk (page cache written back; sync first so its pages count)
io() { sync; awk '/^write_bytes/ {print $2}' "/proc/$BP/io"; }
# minor page faults of the whole process (first touches of fresh memory, e.g. new tail slabs)
faults() { awk '{print $10}' "/proc/$BP/stat"; }
IO0=$(io)
F0=$(faults)
S0=$(snap)
OUT=$(taskset -c 1 node dist/src/cli/main.js bench --port "$PORT" --broker-pid "$BP" --json "$@" 2>/dev/null)
S1=$(snap)
F1=$(faults)
IO1=$(io)
node -e '
const [out, s0, s1, pid, io0, io1, f0, f1] = process.argv.slice(1);
const j = JSON.parse(out);
const n = j.throughput.deliveredPerSec * j.throughput.durationMs / 1000;
const parse = (s) => new Map(s.trim().split("\n").map((l) => { const [t, u, k] = l.split(" "); return [t, [Number(u), Number(k)]]; }));
const a = parse(s0), b = parse(s1);
const tick = 1e6 / 100; // µs per clock tick (USER_HZ 100)
let mu = 0, ms = 0, ou = 0, os = 0;
for (const [t, [u1, k1]] of b) {
  const [u0, k0] = a.get(t) ?? [0, 0];
  if (t === pid) { mu += u1 - u0; ms += k1 - k0; } else { ou += u1 - u0; os += k1 - k0; }
}
const per = (x) => (x * tick / n).toFixed(1);
const row = { msgsPerSec: Math.round(j.throughput.deliveredPerSec), usPerMsg: j.broker.cpuUsPerDelivered, p50us: Math.round(j.latencyUs.median), p99us: Math.round(j.latencyUs.p99), mainUser: per(mu), mainSys: per(ms), otherUser: per(ou), otherSys: per(os), diskBytesPerMsg: Math.round((Number(io1) - Number(io0)) / n), minorFaultsPerKMsg: Math.round(((Number(f1) - Number(f0)) * 1000) / n) };
console.log(JSON.stringify(row));
' "$OUT" "$S0" "$S1" "$BP" "$IO0" "$IO1" "$F0" "$F1"
