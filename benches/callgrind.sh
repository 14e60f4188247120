#!/usr/bin/env bash
# Instructions per record, ours against rust-rdkafka, under valgrind's
# callgrind: a figure that does not drift with machine load, so it shows a
# change's real effect where wall-clock and CPU-time ratios are noisy.
#
#   PEERBENCH=/work/peerbench benches/callgrind.sh
#   PEERBENCH=/work/peerbench SMALL=20000 LARGE=120000 EXTRA_OURS="compression.type=lz4" \
#     EXTRA_RD="--compression lz4" benches/callgrind.sh
#   PEERBENCH=/work/peerbench CLIENTS=ours EXTRA_OURS="--callback none" benches/callgrind.sh
#
# PEERBENCH is a peerbench directory built with `cargo build --release`
# (../shared/peerbench; see its README). Both clients send to one
# peerbench mockbroker (librdkafka's mock cluster in its own process, not
# under valgrind), BROKERS=3 brokers, PARTITIONS=6, with the settings of
# benches/compare.sh: SIZE=100 B null-key records, acks=ACKS (1),
# linger.ms=LINGER (5), batch.size=BATCH (1000000), no idempotence, one
# sending thread.
#
# Per record, not per run: each client runs twice, with SMALL and LARGE
# records (defaults 20,000 and 120,000), and the figure is
#   (Ir(LARGE) - Ir(SMALL)) / (LARGE - SMALL)
# so process start-up, connecting, metadata and the warm-up records cancel
# out. Ir is callgrind's count of instructions executed by every thread of
# the client's process (its `totals:` line), the I/O threads included.
# Under valgrind a client runs about 50x slower, so it fills its batches
# differently than at full speed; both clients run under the same
# slow-down, and the figure is for comparing them and a change against its
# parent, not for a wall-clock estimate.
#
# CLIENTS (default "ours rdkafka") picks which clients run. EXTRA_OURS
# goes after our --producer-props, so it may hold properties and then our
# tool's own options (`--callback none|plain|capture`, see
# examples/producer_perf_test.rs).
#
# Prints one line per run and then `ours / rdkafka` instructions per record.
# Results in results/callgrind-<timestamp>/ (each run's output and
# callgrind.out file).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PEERBENCH=${PEERBENCH:?set PEERBENCH to a built peerbench directory}
SMALL=${SMALL:-20000}
LARGE=${LARGE:-120000}
SIZE=${SIZE:-100}
ACKS=${ACKS:-1}
LINGER=${LINGER:-5}
BATCH=${BATCH:-1000000}
BROKERS=${BROKERS:-3}
PARTITIONS=${PARTITIONS:-6}
TOPIC=peerbench
command -v valgrind > /dev/null || { echo "callgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
[ "$LARGE" -gt "$SMALL" ] || { echo "callgrind.sh: LARGE must exceed SMALL" >&2; exit 2; }

RD=$PEERBENCH/target/release/peerbench
MB=$PEERBENCH/target/release/mockbroker
{ [ -x "$RD" ] && [ -x "$MB" ]; } || { echo "callgrind.sh: build peerbench first: $RD" >&2; exit 2; }
if [ -z "${OURS_BIN:-}" ]; then
  cargo build --release --quiet --example producer_perf_test
  OURS_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/producer_perf_test
fi

OUT=$ROOT/results/callgrind-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
"$MB" --brokers "$BROKERS" --topic "$TOPIC" --partitions "$PARTITIONS" > "$OUT/mockbroker.out" 2> "$OUT/mockbroker.err" &
MB_PID=$!
trap 'kill "$MB_PID" 2> /dev/null || true; wait "$MB_PID" 2> /dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$OUT/mockbroker.out" ] && break; sleep 0.1; done
BOOT=$(head -1 "$OUT/mockbroker.out")
[ -n "$BOOT" ] || { echo "callgrind.sh: the mockbroker printed no bootstrap list ($OUT/mockbroker.err)" >&2; exit 1; }

# One client run under callgrind; prints its total instruction count.
measure() { # name records
  local name=$1 n=$2 cg=$OUT/callgrind.$1.$2.out log=$OUT/$1.$2
  local cmd
  case $name in
    ours)
      # shellcheck disable=SC2086
      cmd=("$OURS_BIN" --topic "$TOPIC" --num-records "$n" --record-size "$SIZE" --throughput -1
        --warmup true --latency-every 16
        --producer-props "bootstrap.servers=$BOOT" acks="$ACKS" linger.ms="$LINGER"
        batch.size="$BATCH" enable.idempotence=false ${EXTRA_OURS:-}) ;;
    rdkafka)
      # shellcheck disable=SC2086
      cmd=("$RD" --client rdkafka --bootstrap "$BOOT" --topic "$TOPIC" --num-records "$n"
        --record-size "$SIZE" --acks "$ACKS" --linger-ms "$LINGER" --batch-size "$BATCH"
        --idempotence false --latency-every 16 ${EXTRA_RD:-}) ;;
  esac
  if ! valgrind --tool=callgrind --callgrind-out-file="$cg" "${cmd[@]}" > "$log.out" 2> "$log.err"; then
    echo "callgrind.sh: $name with $n records failed; see $log.err" >&2
    exit 1
  fi
  local ir
  ir=$(awk '/^(totals|summary):/ { print $2; exit }' "$cg")
  [ -n "$ir" ] || { echo "callgrind.sh: no instruction total in $cg" >&2; exit 1; }
  echo "$ir"
}

declare -A PER
for name in ${CLIENTS:-ours rdkafka}; do
  small=$(measure "$name" "$SMALL")
  large=$(measure "$name" "$LARGE")
  per=$(( (large - small) / (LARGE - SMALL) ))
  PER[$name]=$per
  printf '%-8s Ir(%d) = %d  Ir(%d) = %d  ->  %d instructions per record\n' \
    "$name" "$SMALL" "$small" "$LARGE" "$large" "$per" | tee -a "$OUT/summary.txt"
done
if [ -n "${PER[ours]:-}" ] && [ -n "${PER[rdkafka]:-}" ]; then
  awk -v o="${PER[ours]}" -v r="${PER[rdkafka]}" \
    'BEGIN { printf "ours / rdkafka instructions per record: %.2f\n", o / r }' | tee -a "$OUT/summary.txt"
fi
echo "results: $OUT"
