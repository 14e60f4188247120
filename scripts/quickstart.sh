#!/usr/bin/env bash
# The "main job": start the test brokers and run the producer performance test
# against the 3-node Apache Kafka cluster, then stop the brokers again.
#
#   NUM_RECORDS=1000000 scripts/quickstart.sh [extra producer_perf_test args]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BROKERS=$ROOT/scripts/brokers.sh

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    echo "quickstart.sh: FAILED (exit $rc); broker logs:" >&2
    "$BROKERS" logs 40 >&2 || true
  fi
  "$BROKERS" stop || echo "quickstart.sh: warning: stopping the brokers failed" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$BROKERS" install
"$BROKERS" start
broker_env=$("$BROKERS" env)
eval "$broker_env"

cargo run --release --example producer_perf_test -- \
  --topic quickstart \
  --num-records "${NUM_RECORDS:-1000000}" \
  --record-size 100 \
  --throughput -1 \
  --producer-props "bootstrap.servers=$KP_KAFKA_BOOTSTRAP" acks=all \
  "$@"
