#!/usr/bin/env bash
# Three producer clients, the same workload, the same broker, alternating:
#   kafka-producer  our examples/producer_perf_test (this repo, built --release)
#   rdkafka         rust-rdkafka 0.39 / librdkafka 2.12.1 through peerbench
#                   (../shared/peerbench; BaseProducer)
#   java            Apache Kafka's own org.apache.kafka.tools.ProducerPerformance
#                   (kafka-tools, what kafka-producer-perf-test.sh runs)
# Each round runs all three, one after the other (the order rotates every
# round), RUNS rounds; then medians, min-max and the ratios ours/rdkafka and
# ours/java.
#
#   PEERBENCH=/work/peerbench benches/compare.sh                       # mockbroker
#   PEERBENCH=/work/peerbench TARGET=kafka benches/compare.sh          # 3-node Kafka, acks=1
#   PEERBENCH=/work/peerbench TARGET=kafka ACKS=all benches/compare.sh
#
# PEERBENCH is a peerbench directory built with `cargo build --release`
# (needs cmake and libcurl4-openssl-dev; see its README). Java and the Kafka
# jars come from scripts/brokers.sh (KP_KAFKA_CLASSPATH, KP_JAVA,
# KP_KAFKA_BOOTSTRAP; taken from `scripts/brokers.sh env` when unset).
#
# Targets (TARGET):
#   mock   (default) peerbench's mockbroker (librdkafka 2.12.1's mock cluster
#          in its own process), BROKERS=3 brokers, PARTITIONS=6, one topic
#          shared by all runs (the mock keeps ~5 MB per partition).
#   kafka  the running 3-node Apache Kafka 4.4.0 cluster at KP_KAFKA_BOOTSTRAP.
#          Every run of every client gets a fresh topic (PARTITIONS=6,
#          replication factor RF=3), compare-<stamp>-r<round>-<client>, made
#          with kafka-tools' TopicCommand before the client starts (not timed);
#          all of this invocation's topics are deleted at exit
#          (KEEP_TOPICS=true keeps them).
#
# Workload (the same for all three): NUM=1000000 records of SIZE=100 bytes,
# null key, one fixed random A-Z payload reused for every record (Java gets
# it as a one-line --payload-file; JAVA_PAYLOAD=random uses --record-size,
# where the Java tool draws 100 new random bytes per record, extra work the
# other two do not do), ACKS=1, LINGER=5 (linger.ms), BATCH=1000000
# (batch.size), enable.idempotence=false (ours has no idempotent producer
# yet), no compression, unthrottled, one sending thread. Everything else is
# each client's default (e.g. max.in.flight: Java and ours 5 per connection,
# librdkafka 1000000). Extra settings: EXTRA_OURS="k=v ..." (--producer-props),
# EXTRA_RD="--prop k=v ..." (peerbench options), EXTRA_JAVA="k=v ..."
# (--command-property).
#
# Warm-up: ours (--warmup true) and peerbench (its default) fetch metadata and
# send one record to every partition and wait for it before the clock starts.
# Java: ProducerPerformance 4.4 has --warmup-records (KIP-1052); it is given
# NUM+JAVA_WARMUP records (JAVA_WARMUP=200000) and only the NUM records after
# the warm-up are in its "steady state" summary line, which is what is used
# (so the JIT has compiled the hot path and the connections are up). Its
# steady-state clock starts at the first steady-state send(), when warm-up
# records may still be in flight, and ends after close(); ours and rdkafka end
# after flush().
#
# JVM: JAVA_HEAP=-Xmx512M (what kafka-producer-perf-test.sh sets) and
# JAVA_OPTS = kafka-run-class.sh's performance options (G1, MaxGCPauseMillis=20,
# ...), log4j2 at WARN to stderr like Kafka's tools-log4j2.yaml. Both are
# written to env.txt and table.md.
#
# Latency: each tool times send() to the delivery callback, but not for the
# same share of records:
#   ours     every 16th record (--latency-every 16: 62,500 of 1M), Instant
#            (ns), all samples kept, exact percentiles; avg and max over those.
#   rdkafka  every 16th record (peerbench --latency-every, default 16), the
#            same way.
#   java     every record for avg and max, in whole milliseconds
#            (System.currentTimeMillis); the percentiles from every
#            (n / min(n, 500000))-th completed record, i.e. every 2nd for 1M
#            (500,000 samples), printed as integer ms (truncated).
#
# CPU and memory, the same for all three: /usr/bin/time around the client's
# process (for Java the whole JVM: start-up, JIT and GC threads, the warm-up
# records). CPU per record = (user+sys) / records the process sent (Java:
# NUM+JAVA_WARMUP; ours and rdkafka: NUM, plus a handful of warm-up records).
# Peak RSS = /usr/bin/time's max RSS.
#
# If a client fails (non-zero exit, or not every record acknowledged) the run
# is logged and left out of the medians; the table says how many runs count.
# Against the mockbroker, Java is first probed with 2 records (max.block.ms
# 5 s); if that fails the java column is n/a and the probe's log says why
# (with peerbench's librdkafka 2.12.1 mock, Java 4.4's ApiVersions v5 request
# gets a reply Java misreads as a ~20 min throttle, so it never gets metadata).
#
# Other knobs: RUNS=3, CLIENTS="kafka-producer rdkafka java", PAUSE (seconds
# between runs; 1 on mock, 3 on kafka), OURS_BIN (a prebuilt
# producer_perf_test instead of building this tree), TOPIC (mock: peerbench).
# Results in results/compare-<target>-<acks>-<timestamp>/: env.txt, raw.jsonl
# (one line per run), table.md, each client's output in runs/, stderr.log.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
T_START=$(date +%s)
PEERBENCH=${PEERBENCH:?set PEERBENCH to a built peerbench directory}
TARGET=${TARGET:-mock}
RUNS=${RUNS:-3}
NUM=${NUM:-1000000}
SIZE=${SIZE:-100}
ACKS=${ACKS:-1}
LINGER=${LINGER:-5}
BATCH=${BATCH:-1000000}
BROKERS=${BROKERS:-3}
PARTITIONS=${PARTITIONS:-6}
RF=${RF:-3}
CLIENTS=${CLIENTS:-kafka-producer rdkafka java}
JAVA_WARMUP=${JAVA_WARMUP:-200000}
JAVA_HEAP=${JAVA_HEAP:--Xmx512M}
JAVA_OPTS=${JAVA_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}
JAVA_PAYLOAD=${JAVA_PAYLOAD:-file}
KEEP_TOPICS=${KEEP_TOPICS:-false}
case $TARGET in
  mock) PAUSE=${PAUSE:-1} ;;
  kafka) PAUSE=${PAUSE:-3} ;;
  *) echo "TARGET must be mock or kafka" >&2; exit 2 ;;
esac
STAMP=$(date +%Y%m%dT%H%M%S)
OUT=results/compare-$TARGET-acks$ACKS-$STAMP
mkdir -p "$OUT/runs"

if [ -z "${KP_KAFKA_CLASSPATH:-}" ] || { [ "$TARGET" = kafka ] && [ -z "${KP_KAFKA_BOOTSTRAP:-}" ]; }; then
  eval "$(scripts/brokers.sh env)" || { echo "need KP_KAFKA_CLASSPATH (and KP_KAFKA_BOOTSTRAP): scripts/brokers.sh install/start" >&2; exit 2; }
fi
JAVA=${KP_JAVA:-java}
CP=$KP_KAFKA_CLASSPATH
read -r -a JVM_ARGS <<<"$JAVA_HEAP $JAVA_OPTS"
JVM_ARGS+=("-Dlog4j2.configurationFile=$ROOT/$OUT/tools-log4j2.yaml")
cat >"$OUT/tools-log4j2.yaml" <<'EOF'
Configuration:
  Appenders:
    Console:
      name: STDERR
      target: SYSTEM_ERR
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDERR
EOF
# One fixed A-Z payload of SIZE bytes (Java reads it with --payload-file).
python3 -c "import random,sys; r=random.Random(0); sys.stdout.write(''.join(chr(65+r.randrange(26)) for _ in range($SIZE)))" >"$OUT/payload.txt"

if [ -n "${OURS_BIN:-}" ]; then
  OURS=$OURS_BIN
else
  cargo build --release --quiet --example producer_perf_test
  OURS=$ROOT/target/release/examples/producer_perf_test
fi
RD=$PEERBENCH/target/release/peerbench
MB=$PEERBENCH/target/release/mockbroker
{ [ -x "$RD" ] && [ -x "$MB" ]; } || { echo "build peerbench first: $RD" >&2; exit 2; }

MB_PID=
cleanup() {
  if [ -n "$MB_PID" ]; then kill "$MB_PID" 2>/dev/null || true; fi
  if [ "$TARGET" = kafka ] && [ "$KEEP_TOPICS" != true ] && [ -s "$OUT/topics.txt" ]; then
    "$JAVA" -cp "$CP" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOT" \
      --delete --topic "compare-$STAMP-.*" >>"$OUT/topics.log" 2>&1 ||
      echo "could not delete topics compare-$STAMP-*; see $OUT/topics.log" >&2
  fi
}
trap cleanup EXIT

if [ "$TARGET" = mock ]; then
  TOPIC=${TOPIC:-peerbench}
  "$MB" --brokers "$BROKERS" --topic "$TOPIC" --partitions "$PARTITIONS" >"$OUT/mockbroker.out" 2>"$OUT/mockbroker.err" &
  MB_PID=$!
  for _ in $(seq 100); do [ -s "$OUT/mockbroker.out" ] && break; sleep 0.1; done
  BOOT=$(head -1 "$OUT/mockbroker.out")
  BROKER_DESC="peerbench mockbroker (librdkafka 2.12.1 mock), $BROKERS brokers, $PARTITIONS partitions, one topic $TOPIC"
else
  BOOT=$KP_KAFKA_BOOTSTRAP
  BROKER_DESC="Apache Kafka 4.4.0, 3 KRaft nodes, a fresh topic per run: $PARTITIONS partitions, replication factor $RF"
fi

new_topic() { # client, round -> topic name (kafka: created fresh)
  if [ "$TARGET" = mock ]; then echo "$TOPIC"; return; fi
  local t="compare-$STAMP-r$2-$1"
  "$JAVA" -cp "$CP" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOT" --create \
    --topic "$t" --partitions "$PARTITIONS" --replication-factor "$RF" >>"$OUT/topics.log" 2>&1 ||
    { echo "could not create topic $t; see $OUT/topics.log" >&2; exit 1; }
  echo "$t" >>"$OUT/topics.txt"
  sleep 1 # let every broker learn the new leaders
  echo "$t"
}

JAVA_SKIP=
if [[ " $CLIENTS " == *" java "* ]] && [ "$TARGET" = mock ]; then
  if ! timeout 60 "$JAVA" "${JVM_ARGS[@]}" -cp "$CP" org.apache.kafka.tools.ProducerPerformance \
    --topic "$TOPIC" --num-records 2 --payload-file "$OUT/payload.txt" --throughput -1 \
    --bootstrap-server "$BOOT" --command-property acks="$ACKS" max.block.ms=5000 enable.idempotence=false \
    >"$OUT/java-probe.log" 2>&1 || ! grep -q '^2 records sent' "$OUT/java-probe.log"; then
    JAVA_SKIP="Java's producer could not produce to this broker (2-record probe failed; $OUT/java-probe.log)"
    if grep -q 'is throttled for' "$OUT/java-probe.log"; then
      JAVA_SKIP="$JAVA_SKIP: $(grep -m1 -o 'Connection to node [-0-9]* is throttled for [0-9]* ms' "$OUT/java-probe.log")"
    fi
    echo "java skipped: $JAVA_SKIP" >&2
  fi
fi

{
  echo "date: $(date -Is)"
  echo "host: $(nproc) vCPU, $(uname -r)"
  echo "target: $TARGET: $BROKER_DESC; bootstrap $BOOT"
  echo "workload: $NUM x $SIZE B, acks=$ACKS linger.ms=$LINGER batch.size=$BATCH, enable.idempotence=false, runs=$RUNS"
  echo "ours: $OURS (tree $(git describe --always --dirty 2>/dev/null || echo '?'))"
  echo "rdkafka: $RD"
  echo "java: $("$JAVA" -version 2>&1 | head -1); ${JVM_ARGS[*]}"
  echo "java warm-up: --warmup-records $JAVA_WARMUP (--num-records $((NUM + JAVA_WARMUP))), payload $JAVA_PAYLOAD"
  [ -z "$JAVA_SKIP" ] || echo "java skipped: $JAVA_SKIP"
} | tee "$OUT/env.txt"

run() { # case, round, topic, command...
  local name=$1 round=$2 topic=$3 rc=0 log
  shift 3
  log="$OUT/runs/r$round-$name"
  /usr/bin/time -o "$log.time" -f '{"time_user_s":%U,"time_sys_s":%S,"time_maxrss_kb":%M,"time_wall_s":%e}' \
    "$@" >"$log.out" 2>"$log.err" || rc=$?
  sed "s/^/[r$round $name] /" "$log.err" >>"$OUT/stderr.log"
  python3 - "$name" "$round" "$topic" "$rc" "$log" "$OUT/raw.jsonl" "$NUM" "$JAVA_WARMUP" <<'PY'
import json, re, sys
name, rnd, topic, rc, log, raw, num, warm = sys.argv[1:]
num, warm = int(num), int(warm)
d = {"case": name, "round": int(rnd), "topic": topic, "rc": int(rc)}
t = open(log + ".time").read().splitlines()
d.update(json.loads([l for l in t if l.startswith("{")][-1]) if any(l.startswith("{") for l in t) else {})
text = open(log + ".out").read()
try:
    if name == "java":
        # 4.4: "N steady state records sent, R records/sec (M MB/sec), A ms avg latency,
        #       X ms max latency, P ms 50th, P ms 95th, P ms 99th, P ms 99.9th."
        pat = (r"^(\d+)%s records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
               r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th\.$"
               % (" steady state" if warm > 0 else ""))
        m = [m for m in re.finditer(pat, text, re.M)][-1]
        n, rps, mbs, avg, mx, p50, p95, p99, p999 = m.groups()
        d.update(records=int(n), records_sent=num + warm, acked=int(n), records_per_sec=float(rps),
                 mb_per_sec=float(mbs), avg_ms=float(avg), max_ms=float(mx), p50_ms=float(p50),
                 p95_ms=float(p95), p99_ms=float(p99), p999_ms=float(p999), summary=m.group(0))
    else:
        j = json.loads([l for l in text.splitlines() if l.startswith("{")][-1])
        d.update({k: j[k] for k in ("records", "acked", "errors", "records_per_sec", "mb_per_sec", "avg_ms",
                                    "max_ms", "p50_ms", "p99_ms", "p999_ms") if k in j})
        d["records_sent"] = j["records"]
    d["ok"] = d["rc"] == 0 and d.get("acked") == num and "time_user_s" in d
except (IndexError, ValueError, KeyError) as e:
    d["ok"] = False
    d["parse_error"] = repr(e)
open(raw, "a").write(json.dumps(d) + "\n")
if d["ok"]:
    cpu = d["time_user_s"] + d["time_sys_s"]
    print(f"r{rnd} {name:14s} {d['records_per_sec']:>12.0f} rec/s  cpu {cpu:.2f}s  "
          f"{cpu * 1e9 / d['records_sent']:.0f} ns/rec  p50 {d['p50_ms']:.2f} p99 {d['p99_ms']:.2f} ms  "
          f"rss {d['time_maxrss_kb'] / 1024:.1f} MiB")
else:
    print(f"r{rnd} {name:14s} FAILED (exit {d['rc']}, acked {d.get('acked')}; {log}.out/.err)")
PY
}

run_client() { # client, round
  local c=$1 r=$2 topic
  topic=$(new_topic "$c" "$r")
  case $c in
    kafka-producer)
      # shellcheck disable=SC2086
      run "$c" "$r" "$topic" "$OURS" --topic "$topic" --num-records "$NUM" --record-size "$SIZE" \
        --throughput -1 --warmup true --latency-every 16 --json true \
        --producer-props "bootstrap.servers=$BOOT" acks="$ACKS" linger.ms="$LINGER" batch.size="$BATCH" \
        enable.idempotence=false ${EXTRA_OURS:-} ;;
    rdkafka)
      # shellcheck disable=SC2086
      run "$c" "$r" "$topic" "$RD" --client rdkafka --bootstrap "$BOOT" --topic "$topic" --num-records "$NUM" \
        --record-size "$SIZE" --acks "$ACKS" --linger-ms "$LINGER" --batch-size "$BATCH" \
        --idempotence false --latency-every 16 ${EXTRA_RD:-} ;;
    java)
      local payload=(--payload-file "$OUT/payload.txt")
      [ "$JAVA_PAYLOAD" = file ] || payload=(--record-size "$SIZE")
      # shellcheck disable=SC2086
      run "$c" "$r" "$topic" "$JAVA" "${JVM_ARGS[@]}" -cp "$CP" org.apache.kafka.tools.ProducerPerformance \
        --topic "$topic" --num-records "$((NUM + JAVA_WARMUP))" --warmup-records "$JAVA_WARMUP" \
        "${payload[@]}" --throughput -1 --bootstrap-server "$BOOT" \
        --command-property acks="$ACKS" linger.ms="$LINGER" batch.size="$BATCH" enable.idempotence=false \
        ${EXTRA_JAVA:-} ;;
  esac
}

ORDER=()
for c in $CLIENTS; do
  case $c in
    kafka-producer | rdkafka) ORDER+=("$c") ;;
    java) [ -n "$JAVA_SKIP" ] || ORDER+=("$c") ;;
    *) echo "unknown client $c (CLIENTS: kafka-producer rdkafka java)" >&2; exit 2 ;;
  esac
done
n=${#ORDER[@]}
for r in $(seq "$RUNS"); do
  for i in $(seq 0 $((n - 1))); do
    sleep "$PAUSE"
    run_client "${ORDER[$(((i + r - 1) % n))]}" "$r"
  done
done

T_END=$(date +%s)
python3 - "$OUT" "$((T_END - T_START))" "$JAVA_SKIP" <<'PY' | tee "$OUT/table.md"
import json, statistics, sys
out, wall, skip = sys.argv[1], int(sys.argv[2]), sys.argv[3]
env = open(f"{out}/env.txt").read().splitlines()
rows = [json.loads(l) for l in open(f"{out}/raw.jsonl")]
cases = ["kafka-producer", "rdkafka", "java"]
ok = {c: [r for r in rows if r["case"] == c and r["ok"]] for c in cases}
tried = {c: sum(1 for r in rows if r["case"] == c) for c in cases}
cpu = lambda r: (r["time_user_s"] + r["time_sys_s"]) * 1e9 / r["records_sent"]
metrics = [
    ("records/s", lambda r: r["records_per_sec"], "{:,.0f}"),
    ("client CPU ns/record (user+sys, whole process)", cpu, "{:,.0f}"),
    ("latency p50 ms", lambda r: r["p50_ms"], "{:.2f}"),
    ("latency p99 ms", lambda r: r["p99_ms"], "{:.2f}"),
    ("latency avg ms", lambda r: r["avg_ms"], "{:.2f}"),
    ("latency max ms", lambda r: r["max_ms"], "{:.2f}"),
    ("peak RSS MiB", lambda r: r["time_maxrss_kb"] / 1024, "{:.1f}"),
]
def cell(c, f, fmt):
    v = [f(r) for r in ok[c]]
    if not v:
        return None, "n/a"
    m = statistics.median(v)
    return m, fmt.format(m) + (f" ({fmt.format(min(v))}–{fmt.format(max(v))})" if len(v) > 1 else "")
def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "n/a"
for l in env:
    if not l.startswith("java skipped"):
        print(f"- {l}")
print(f"- runs that count: " + ", ".join(f"{c} {len(ok[c])}/{tried[c]}" for c in cases))
print(f"- wall time of this invocation: {wall} s")
print()
print("| metric: median (min–max) | kafka-producer | rdkafka | java | ours/rdkafka | ours/java |")
print("|---|---|---|---|---|---|")
for name, f, fmt in metrics:
    (a, sa), (b, sb), (j, sj) = (cell(c, f, fmt) for c in cases)
    print(f"| {name} | {sa} | {sb} | {sj} | {ratio(a, b)} | {ratio(a, j)} |")
if skip:
    print(f"\njava: n/a. {skip}")
PY
