#!/usr/bin/env bash
# Three producer clients, the same workload, the same broker, alternating:
#   kafka-producer  our examples/producer_perf_test (this repo, built --release)
#   rdkafka         rust-rdkafka 0.39 / librdkafka 2.12.1 through peerbench
#                   (../shared/peerbench; BaseProducer)
#   java            Apache Kafka's own org.apache.kafka.tools.ProducerPerformance
#                   (kafka-tools, what kafka-producer-perf-test.sh runs):
#                   4.4.0 on TARGET=kafka, 2.3.1 on TARGET=mock (JAVA_KAFKA_VERSION;
#                   see "Java client" below)
# Each round runs all three, one after the other (the order rotates every
# round), RUNS rounds; then medians, min-max and the ratios ours/rdkafka and
# ours/java, of the medians; and a second table of the same ratios taken
# round by round (each client's run against the other's in the same round),
# their median and min-max: on a machine whose speed drifts between rounds
# the pairs compare like with like.
#
#   PEERBENCH=/work/peerbench benches/compare.sh                       # mockbroker
#   PEERBENCH=/work/peerbench TARGET=kafka benches/compare.sh          # 3-node Kafka, acks=1
#   PEERBENCH=/work/peerbench TARGET=kafka ACKS=all benches/compare.sh
#
# PEERBENCH is a peerbench directory built with `cargo build --release`
# (needs cmake and libcurl4-openssl-dev; see its README). Java and the Kafka
# 4.4.0 jars come from scripts/brokers.sh (KP_KAFKA_CLASSPATH, KP_JAVA,
# KP_KAFKA_BOOTSTRAP; taken from `scripts/brokers.sh env` when unset).
#
# Java client (JAVA_KAFKA_VERSION; default 4.4.0 on kafka, 2.3.1 on mock):
#   4.4.0  the kafka-tools of scripts/brokers.sh (KP_KAFKA_CLASSPATH).
#   other  kafka-tools + kafka-clients of that version from Maven Central,
#          resolved by benches/java-mock/pom.xml (`mvn dependency:copy-dependencies`)
#          into results/java-clients/kafka-<version>/lib once and reused; not
#          committed. Run through benches/java-mock/WarmupThenRun.java (compiled
#          there by javac), see "Warm-up".
#   Why 2.3.1 on the mock: every Java client from 2.4 (KIP-511) on opens a
#   connection with a flexible ApiVersions request (seen: v3 from 2.4.1,
#   2.8.2 and 3.3.2, v4 from 3.9.1, v5 from 4.4.0). librdkafka 2.12.1's mock
#   supports ApiVersions v0-v2 and answers UNSUPPORTED_VERSION with a
#   hand-made flexible body whose compact array count is one short:
#   00 23 | 01 | 00 12 00 00 00 02 | 00 00 00 00. Java reads error 35, zero
#   entries, then throttle_time_ms = 00 12 00 00 = 1,179,648 ms from the
#   ApiVersions entry, retries ApiVersions at v0 (which works) but keeps the
#   connection throttled for ~20 minutes, so it never sends Metadata (the
#   2-record probe fails with all five). 2.3.1, the last release before
#   KIP-511, opens with ApiVersions v2, which the mock answers normally; it
#   then uses Produce v7 and Metadata v8. Unlike 4.4 it sends null-key
#   records round-robin, one partition per record (sticky came with 2.4).
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
# (batch.size), enable.idempotence=false (the same for all three; with
# ACKS=1 Java's and ours would turn it off anyway), no compression, unthrottled, one sending thread. Everything else is
# each client's default (e.g. max.in.flight: Java and ours 5 per connection,
# librdkafka 1000000). Extra settings: EXTRA_OURS="k=v ..." (--producer-props),
# EXTRA_RD="--prop k=v ..." (peerbench options), EXTRA_JAVA="k=v ..."
# (4.4: --command-property; older: --producer-props).
#
# Warm-up: ours (--warmup true) and peerbench (its default) fetch metadata and
# send one record to every partition and wait for it before the clock starts.
# Java 4.4: ProducerPerformance has --warmup-records (KIP-1052); it is given
# NUM+JAVA_WARMUP records (JAVA_WARMUP=200000) and only the NUM records after
# the warm-up are in its "steady state" summary line, which is what is used
# (so the JIT has compiled the hot path and the connections are up). Its
# steady-state clock starts at the first steady-state send(), when warm-up
# records may still be in flight, and ends after close(); ours and rdkafka end
# after flush().
# Java from Maven (2.3.1 has no --warmup-records): WarmupThenRun calls
# ProducerPerformance.main twice in one JVM, a warm-up pass of JAVA_WARMUP
# records and then the measured pass of NUM records, whose summary line (the
# last one) is used. The JIT is warm, but the measured pass has a new
# KafkaProducer: its clock starts before the first send(), which waits for
# metadata, and the connections to the leaders are made inside it; it ends
# after close().
#
# JVM: JAVA_HEAP=-Xmx512M (what kafka-producer-perf-test.sh sets) and
# JAVA_OPTS = kafka-run-class.sh's performance options (G1, MaxGCPauseMillis=20,
# ...), log4j2 at WARN to stderr like Kafka's tools-log4j2.yaml (older
# clients: the same in log4j 1 properties). Both are written to env.txt and
# table.md.
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
# If a client fails (non-zero exit, not every record acknowledged, or, for
# Java, an exception printed for a record: ProducerPerformance counts failed
# records in its summary too) the run is logged and left out of the medians;
# the table says how many runs count. Against the mockbroker, Java is first
# probed with 2 records (max.block.ms 5 s); if that fails the java column is
# n/a and the probe's log says why (e.g. JAVA_KAFKA_VERSION=4.4.0 there: the
# ~20 min throttle above).
#
# Many sending threads (THREADS=4): neither peer can send from several
# threads through one producer (peerbench has one sending thread; Java's
# ProducerPerformance too), so the client `kafka-producer-threads` is ours
# with --threads THREADS (default 4), each thread sending its share of NUM
# records through one producer, timed as one run; the table then has a
# column for it and the ratio threads/ours against our one-thread runs:
#   CLIENTS="kafka-producer kafka-producer-threads" benches/compare.sh
#
# Other knobs: RUNS=3, CLIENTS="kafka-producer rdkafka java"
# (and kafka-producer-threads, above),
# JAVA_KAFKA_VERSION (above), PAUSE (seconds between runs; 1 on mock, 3 on
# kafka), OURS_BIN (a prebuilt producer_perf_test instead of building this
# tree), TOPIC (mock: peerbench).
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
THREADS=${THREADS:-4}
JAVA_WARMUP=${JAVA_WARMUP:-200000}
JAVA_HEAP=${JAVA_HEAP:--Xmx512M}
JAVA_OPTS=${JAVA_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}
JAVA_PAYLOAD=${JAVA_PAYLOAD:-file}
KEEP_TOPICS=${KEEP_TOPICS:-false}
case $TARGET in
  mock) PAUSE=${PAUSE:-1} JAVA_KAFKA_VERSION=${JAVA_KAFKA_VERSION:-2.3.1} ;;
  kafka) PAUSE=${PAUSE:-3} JAVA_KAFKA_VERSION=${JAVA_KAFKA_VERSION:-4.4.0} ;;
  *) echo "TARGET must be mock or kafka" >&2; exit 2 ;;
esac
STAMP=$(date +%Y%m%dT%H%M%S)
OUT=results/compare-$TARGET-acks$ACKS-$STAMP
mkdir -p "$OUT/runs"

# Kafka's jars are needed on TARGET=kafka (TopicCommand) and for the 4.4.0
# Java client; the mock broker without Java needs nothing of brokers.sh.
if [ "$TARGET" = kafka ] || { [[ " $CLIENTS " == *" java "* ]] && [ "$JAVA_KAFKA_VERSION" = 4.4.0 ]; }; then
  if [ -z "${KP_KAFKA_CLASSPATH:-}" ] || { [ "$TARGET" = kafka ] && [ -z "${KP_KAFKA_BOOTSTRAP:-}" ]; }; then
    eval "$(scripts/brokers.sh env)" || true
  fi
  if [ -z "${KP_KAFKA_CLASSPATH:-}" ] || { [ "$TARGET" = kafka ] && [ -z "${KP_KAFKA_BOOTSTRAP:-}" ]; }; then
    echo "need KP_KAFKA_CLASSPATH (and KP_KAFKA_BOOTSTRAP): scripts/brokers.sh install/start" >&2
    exit 2
  fi
fi
JAVA=${KP_JAVA:-java}
CP=${KP_KAFKA_CLASSPATH:-}
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
# The Java producer: 4.4.0 from scripts/brokers.sh, or another version from
# Maven (cached under results/java-clients/, run through WarmupThenRun).
if [ "$JAVA_KAFKA_VERSION" = 4.4.0 ]; then
  JCP=$CP
  JAVA_DESC="Apache Kafka 4.4.0 kafka-tools ProducerPerformance (scripts/brokers.sh); --warmup-records $JAVA_WARMUP (--num-records $((NUM + JAVA_WARMUP)))"
elif [[ " $CLIENTS " == *" java "* ]]; then
  JDIR=$ROOT/results/java-clients/kafka-$JAVA_KAFKA_VERSION
  if [ ! -s "$JDIR/lib/kafka-tools-$JAVA_KAFKA_VERSION.jar" ] || [ ! -s "$JDIR/lib/kafka-clients-$JAVA_KAFKA_VERSION.jar" ]; then
    echo "resolving kafka-tools $JAVA_KAFKA_VERSION with Maven into $JDIR/lib" >&2
    (cd benches/java-mock && mvn -q -B dependency:copy-dependencies -Dkafka.version="$JAVA_KAFKA_VERSION" \
      -DoutputDirectory="$JDIR/lib") >"$OUT/java-mvn.log" 2>&1 ||
      { echo "could not resolve kafka-tools $JAVA_KAFKA_VERSION; see $OUT/java-mvn.log" >&2; exit 2; }
  fi
  if [ ! "$JDIR/classes/WarmupThenRun.class" -nt benches/java-mock/WarmupThenRun.java ]; then
    "${JAVA%java}javac" -d "$JDIR/classes" -cp "$JDIR/lib/*" benches/java-mock/WarmupThenRun.java >"$OUT/javac.log" 2>&1 ||
      { echo "could not compile WarmupThenRun; see $OUT/javac.log" >&2; exit 2; }
  fi
  JCP="$JDIR/classes:$JDIR/lib/*"
  JVM_ARGS+=("-Dlog4j.configuration=file:$ROOT/$OUT/tools-log4j.properties")
  cat >"$OUT/tools-log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
  JAVA_DESC="Apache Kafka $JAVA_KAFKA_VERSION kafka-tools + kafka-clients ProducerPerformance (Maven, $JDIR/lib); warm-up: a $JAVA_WARMUP-record pass in the same JVM (WarmupThenRun), then $NUM measured"
fi

# One fixed A-Z payload of SIZE bytes (Java reads it with --payload-file).
python3 -c "import random,sys; r=random.Random(0); sys.stdout.write(''.join(chr(65+r.randrange(26)) for _ in range($SIZE)))" >"$OUT/payload.txt"

if [ -n "${OURS_BIN:-}" ]; then
  OURS=$OURS_BIN
else
  cargo build --release --quiet --example producer_perf_test
  OURS=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/producer_perf_test
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

# Java's options: 4.4 has --bootstrap-server and --command-property; older
# versions only --producer-props (4.4 still takes it too, deprecated).
java_props() { # bootstrap, props... -> ProducerPerformance arguments
  local boot=$1
  shift
  if [ "$JAVA_KAFKA_VERSION" = 4.4.0 ]; then
    printf '%s\n' --bootstrap-server "$boot" --command-property "$@"
  else
    printf '%s\n' --producer-props "bootstrap.servers=$boot" "$@"
  fi
}
# An exception printed at the start of a line (the tool's callback
# printStackTrace()s every failed record; log lines start with "[").
JAVA_EXC_RE='^[a-z][A-Za-z0-9_$.]*\.[A-Z][A-Za-z0-9_$]*(Exception|Error)\b'

JAVA_SKIP=
if [[ " $CLIENTS " == *" java "* ]] && [ "$TARGET" = mock ]; then
  mapfile -t probe_props < <(java_props "$BOOT" acks="$ACKS" max.block.ms=5000 enable.idempotence=false)
  if ! timeout 60 "$JAVA" "${JVM_ARGS[@]}" -cp "$JCP" org.apache.kafka.tools.ProducerPerformance \
    --topic "$TOPIC" --num-records 2 --payload-file "$OUT/payload.txt" --throughput -1 "${probe_props[@]}" \
    >"$OUT/java-probe.log" 2>&1 || ! grep -q '^2 records sent' "$OUT/java-probe.log" ||
    grep -Eq "$JAVA_EXC_RE" "$OUT/java-probe.log"; then
    JAVA_SKIP="Java's producer (Kafka $JAVA_KAFKA_VERSION) could not produce to this broker (2-record probe failed; $OUT/java-probe.log)"
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
  if [ -n "${OURS_BIN:-}" ]; then echo "ours: $OURS (prebuilt, OURS_BIN)"; else
    echo "ours: $OURS (tree $(git describe --always --dirty 2>/dev/null || echo '?'))"; fi
  echo "rdkafka: $RD"
  [[ " $CLIENTS " != *" kafka-producer-threads "* ]] || echo "kafka-producer-threads: ours with --threads $THREADS"
  echo "java: $("$JAVA" -version 2>&1 | head -1); ${JVM_ARGS[*]}"
  echo "java client: ${JAVA_DESC:-not used}; payload $JAVA_PAYLOAD"
  [ -z "$JAVA_SKIP" ] || echo "java skipped: $JAVA_SKIP"
} | tee "$OUT/env.txt"

run() { # case, round, topic, command...
  local name=$1 round=$2 topic=$3 rc=0 log
  shift 3
  log="$OUT/runs/r$round-$name"
  /usr/bin/time -o "$log.time" -f '{"time_user_s":%U,"time_sys_s":%S,"time_maxrss_kb":%M,"time_wall_s":%e}' \
    "$@" >"$log.out" 2>"$log.err" || rc=$?
  sed "s/^/[r$round $name] /" "$log.err" >>"$OUT/stderr.log"
  python3 - "$name" "$round" "$topic" "$rc" "$log" "$OUT/raw.jsonl" "$NUM" "$JAVA_WARMUP" "$JAVA_KAFKA_VERSION" <<'PY'
import json, re, sys
name, rnd, topic, rc, log, raw, num, warm, jver = sys.argv[1:]
num, warm = int(num), int(warm)
d = {"case": name, "round": int(rnd), "topic": topic, "rc": int(rc)}
t = open(log + ".time").read().splitlines()
d.update(json.loads([l for l in t if l.startswith("{")][-1]) if any(l.startswith("{") for l in t) else {})
text = open(log + ".out").read()
try:
    if name == "java":
        # 4.4: "N steady state records sent, R records/sec (M MB/sec), A ms avg latency,
        #       X ms max latency, P ms 50th, P ms 95th, P ms 99th, P ms 99.9th."
        # Older versions (through WarmupThenRun): the same without "steady state", once
        # per pass; the measured pass comes after the line "measured pass".
        steady = jver == "4.4.0" and warm > 0
        if jver != "4.4.0" and warm > 0:
            text = text.split("\nmeasured pass\n", 1)[1]
        pat = (r"^(\d+)%s records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
               r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th\.$"
               % (" steady state" if steady else ""))
        m = [m for m in re.finditer(pat, text, re.M)][-1]
        n, rps, mbs, avg, mx, p50, p95, p99, p999 = m.groups()
        # The tool counts failed records in its summary too; it printStackTrace()s each.
        exc = r"^[a-z][A-Za-z0-9_$.]*\.[A-Z][A-Za-z0-9_$]*(Exception|Error)\b"
        errors = len(re.findall(exc, text + open(log + ".err").read(), re.M))
        d.update(records=int(n), records_sent=num + warm, acked=int(n) if errors == 0 else None,
                 errors=errors, records_per_sec=float(rps),
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
    kafka-producer | kafka-producer-threads)
      local threads=1
      [ "$c" = kafka-producer ] || threads=$THREADS
      # shellcheck disable=SC2086
      run "$c" "$r" "$topic" "$OURS" --topic "$topic" --num-records "$NUM" --record-size "$SIZE" \
        --threads "$threads" \
        --throughput -1 --warmup true --latency-every 16 --json true \
        --producer-props "bootstrap.servers=$BOOT" acks="$ACKS" linger.ms="$LINGER" batch.size="$BATCH" \
        enable.idempotence=false ${EXTRA_OURS:-} ;;
    rdkafka)
      # shellcheck disable=SC2086
      run "$c" "$r" "$topic" "$RD" --client rdkafka --bootstrap "$BOOT" --topic "$topic" --num-records "$NUM" \
        --record-size "$SIZE" --acks "$ACKS" --linger-ms "$LINGER" --batch-size "$BATCH" \
        --idempotence false --latency-every 16 ${EXTRA_RD:-} ;;
    java)
      local payload=(--payload-file "$OUT/payload.txt") props
      [ "$JAVA_PAYLOAD" = file ] || payload=(--record-size "$SIZE")
      # shellcheck disable=SC2086
      mapfile -t props < <(java_props "$BOOT" acks="$ACKS" linger.ms="$LINGER" batch.size="$BATCH" \
        enable.idempotence=false ${EXTRA_JAVA:-})
      if [ "$JAVA_KAFKA_VERSION" = 4.4.0 ]; then
        run "$c" "$r" "$topic" "$JAVA" "${JVM_ARGS[@]}" -cp "$JCP" org.apache.kafka.tools.ProducerPerformance \
          --topic "$topic" --num-records "$((NUM + JAVA_WARMUP))" --warmup-records "$JAVA_WARMUP" \
          "${payload[@]}" --throughput -1 "${props[@]}"
      else
        run "$c" "$r" "$topic" "$JAVA" "${JVM_ARGS[@]}" -cp "$JCP" WarmupThenRun "$JAVA_WARMUP" \
          --topic "$topic" --num-records "$NUM" "${payload[@]}" --throughput -1 "${props[@]}"
      fi ;;
  esac
}

ORDER=()
for c in $CLIENTS; do
  case $c in
    kafka-producer | kafka-producer-threads | rdkafka) ORDER+=("$c") ;;
    java) [ -n "$JAVA_SKIP" ] || ORDER+=("$c") ;;
    *) echo "unknown client $c (CLIENTS: kafka-producer rdkafka java kafka-producer-threads)" >&2; exit 2 ;;
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
python3 - "$OUT" "$((T_END - T_START))" "$JAVA_SKIP" "$JAVA_KAFKA_VERSION" <<'PY' | tee "$OUT/table.md"
import json, statistics, sys
out, wall, skip, jver = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
env = open(f"{out}/env.txt").read().splitlines()
rows = [json.loads(l) for l in open(f"{out}/raw.jsonl")]
cases = ["kafka-producer", "rdkafka", "java", "kafka-producer-threads"]
threads = any(r["case"] == "kafka-producer-threads" for r in rows)
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
tn = next((l.split("--threads ")[1] for l in env if l.startswith("kafka-producer-threads:")), "N")
extra = f" kafka-producer, {tn} threads | threads/ours |" if threads else ""
print(f"| metric: median (min–max) | kafka-producer | rdkafka | java (Kafka {jver}) | ours/rdkafka | ours/java |{extra}")
print("|---|---|---|---|---|---|" + ("---|---|" if threads else ""))
for name, f, fmt in metrics:
    (a, sa), (b, sb), (j, sj), (t, st) = (cell(c, f, fmt) for c in cases)
    more = f" {st} | {ratio(t, a)} |" if threads else ""
    print(f"| {name} | {sa} | {sb} | {sj} | {ratio(a, b)} | {ratio(a, j)} |{more}")
# The ratios again, round by round: each run against the other client's run
# of the same round.
by_round = {c: {r["round"]: r for r in ok[c]} for c in cases}
def per_round(c1, c2, f, fmt="{:.2f}"):
    v = [f(by_round[c1][k]) / f(by_round[c2][k])
         for k in sorted(by_round[c1]) if k in by_round[c2] and f(by_round[c2][k])]
    if not v:
        return "n/a"
    return fmt.format(statistics.median(v)) + (
        f" ({fmt.format(min(v))}–{fmt.format(max(v))})" if len(v) > 1 else "")
pairs = [("ours/rdkafka", "kafka-producer", "rdkafka"), ("ours/java", "kafka-producer", "java")]
if threads:
    pairs.append(("threads/ours", "kafka-producer-threads", "kafka-producer"))
print()
print("| ratio, round by round: median (min–max) | " + " | ".join(p[0] for p in pairs) + " |")
print("|---|" + "---|" * len(pairs))
for name, f, fmt in metrics:
    print(f"| {name} | " + " | ".join(per_round(a, b, f) for _, a, b in pairs) + " |")
if skip:
    print(f"\njava: n/a. {skip}")
PY
