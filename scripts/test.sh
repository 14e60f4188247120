#!/usr/bin/env bash
# The project's single test command.
#
#   scripts/test.sh [cargo test args...]
#
# Installs (idempotently) and starts the test brokers (scripts/brokers.sh),
# exports their KP_* variables, runs `cargo test --all-targets "$@"` and then
# `cargo test --doc`, and always stops the brokers on exit. Called with no
# arguments, it first runs the seeded simulation in release mode
# (`cargo test --release --test simulation`: 10,000 schedules, no broker
# needed; the debug pass below runs a sample of it). The exit status
# is cargo's. On failure the tails of the broker logs are printed.
# Integration tests must treat a missing KP_* variable or broker as a failure,
# never as a reason to skip.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BROKERS=$ROOT/scripts/brokers.sh

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    echo "test.sh: FAILED (exit $rc); broker logs:" >&2
    "$BROKERS" logs 60 >&2 || true
  fi
  "$BROKERS" stop || echo "test.sh: warning: stopping the brokers failed" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$#" -eq 0 ]; then
  cargo test --release --test simulation
fi

"$BROKERS" install
"$BROKERS" start
broker_env=$("$BROKERS" env)
eval "$broker_env"
while IFS= read -r line; do echo "test.sh: $line" >&2; done <<< "$broker_env"

cargo test --all-targets "$@"
cargo test --doc
