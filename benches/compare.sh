#!/usr/bin/env bash
# Our producer_perf_test against rust-rdkafka (../shared/peerbench), on the
# same mockbroker, alternating A B A B ..., then medians and ratios.
#
#   PEERBENCH=/path/to/built/peerbench benches/compare.sh
#
# PEERBENCH is a peerbench checkout built with `cargo build --release`
# (needs cmake; see its README). Defaults: RUNS=3, NUM=1000000, SIZE=100,
# 3 brokers and 6 partitions, acks=1, linger.ms=5, batch.size=1000000.
# Extra producer settings for both: EXTRA_OURS="k=v ..." / EXTRA_RD="--prop k=v ...".
# Client CPU is user+sys of the client process from /usr/bin/time; peak
# RSS is its max RSS. Results in results/compare-<timestamp>/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PEERBENCH=${PEERBENCH:?set PEERBENCH to a built peerbench directory}
RUNS=${RUNS:-3}
NUM=${NUM:-1000000}
SIZE=${SIZE:-100}
BROKERS=${BROKERS:-3}
PARTITIONS=${PARTITIONS:-6}
TOPIC=${TOPIC:-peerbench}
OUT=results/compare-$(date +%Y%m%dT%H%M%S)
mkdir -p "$OUT"

cargo build --release --quiet --example producer_perf_test
OURS=$ROOT/target/release/examples/producer_perf_test
RD=$PEERBENCH/target/release/peerbench
MB=$PEERBENCH/target/release/mockbroker
[ -x "$RD" ] && [ -x "$MB" ] || { echo "build peerbench first: $RD" >&2; exit 2; }

"$MB" --brokers "$BROKERS" --topic "$TOPIC" --partitions "$PARTITIONS" >"$OUT/mockbroker.out" 2>"$OUT/mockbroker.err" &
MB_PID=$!
trap 'kill $MB_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$OUT/mockbroker.out" ] && break; sleep 0.1; done
BOOT=$(head -1 "$OUT/mockbroker.out")
echo "mockbroker $BROKERS brokers, $PARTITIONS partitions: $BOOT" | tee "$OUT/env.txt"

run() { # name, command...
  local name=$1; shift
  /usr/bin/time -o "$OUT/time.tmp" -f '{"time_user_s":%U,"time_sys_s":%S,"time_maxrss_kb":%M}' \
    "$@" >"$OUT/run.tmp" 2>>"$OUT/stderr.log"
  python3 - "$name" "$OUT" <<'PY'
import json, sys
name, out = sys.argv[1:]
line = [l for l in open(f"{out}/run.tmp") if l.startswith("{")][-1]
d = json.loads(line); d.update(json.loads(open(f"{out}/time.tmp").read().splitlines()[-1]))
d["case"] = name
open(f"{out}/raw.jsonl", "a").write(json.dumps(d) + "\n")
cpu = d["time_user_s"] + d["time_sys_s"]
print(f"{name:14s} {d['records_per_sec']:>12.0f} rec/s  cpu {cpu:.2f}s  "
      f"{cpu * 1e9 / d['records']:.0f} ns/rec  p50 {d['p50_ms']:.2f} p99 {d['p99_ms']:.2f} ms  rss {d['time_maxrss_kb'] / 1024:.1f} MiB")
PY
}

for r in $(seq "$RUNS"); do
  # shellcheck disable=SC2086
  run kafka-producer "$OURS" --topic "$TOPIC" --num-records "$NUM" --record-size "$SIZE" \
    --throughput -1 --warmup true --latency-every 16 --json true \
    --producer-props "bootstrap.servers=$BOOT" acks=1 linger.ms=5 batch.size=1000000 ${EXTRA_OURS:-}
  # shellcheck disable=SC2086
  run rdkafka "$RD" --client rdkafka --bootstrap "$BOOT" --topic "$TOPIC" --num-records "$NUM" \
    --record-size "$SIZE" --acks 1 --linger-ms 5 --batch-size 1000000 ${EXTRA_RD:-}
done

python3 - "$OUT/raw.jsonl" <<'PY' | tee "$OUT/table.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(case, f):
    return statistics.median(f(r) for r in rows if r["case"] == case)
metrics = [
    ("records/s", lambda r: r["records_per_sec"]),
    ("client CPU ns/record", lambda r: (r["time_user_s"] + r["time_sys_s"]) * 1e9 / r["records"]),
    ("p50 ms", lambda r: r["p50_ms"]),
    ("p99 ms", lambda r: r["p99_ms"]),
    ("peak RSS MiB", lambda r: r["time_maxrss_kb"] / 1024),
]
print("| metric (median) | kafka-producer | rdkafka | ratio ours/rdkafka |")
print("|---|---|---|---|")
for name, f in metrics:
    a, b = med("kafka-producer", f), med("rdkafka", f)
    print(f"| {name} | {a:,.2f} | {b:,.2f} | {a / b:.2f} |")
PY
