#!/usr/bin/env bash
# Checks the Kafka cluster's secure listeners with Java's own clients, from
# outside: one record through each listener and mechanism with
# org.apache.kafka.tools.ConsoleProducer and the client properties files that
# scripts/brokers.sh writes ($KP_KAFKA_CLIENT_PROPS), read back over PLAINTEXT
# with tests/support/JavaOracle.java; then the same with a wrong password, an
# unknown user, no client certificate and the wrong CA, each of which must be
# refused (an authentication error in the producer's log, nothing delivered).
#
#   eval "$(scripts/brokers.sh env)"; tests/brokers/kafka/secure_check.sh
#
# ConsoleProducer exits 0 even when its sends fail: the records read back are
# what counts. Takes about a minute (18 JVMs, 9 at a time). Exit 1 on failure.
set -uo pipefail
for v in KP_JAVA KP_KAFKA_CLASSPATH KP_KAFKA_BOOTSTRAP KP_KAFKA_SSL_BOOTSTRAP KP_KAFKA_SASL_SSL_BOOTSTRAP \
  KP_KAFKA_SASL_PLAINTEXT_BOOTSTRAP KP_KAFKA_CLIENT_PROPS KP_KAFKA_CA KP_KAFKA_OTHER_CA KP_KAFKA_SCRAM_USER \
  KP_KAFKA_SCRAM_PASSWORD; do
  [ -n "${!v:-}" ] || {
    echo "secure_check: $v is not set (eval \"\$(scripts/brokers.sh env)\")" >&2
    exit 2
  }
done
P=$KP_KAFKA_CLIENT_PROPS
D=$(mktemp -d "${TMPDIR:-/tmp}/kp-secure-check.XXXXXX")
[ -n "${KP_SECURE_CHECK_KEEP:-}" ] && echo "secure_check: logs in $D" || trap 'rm -rf "$D"' EXIT
stamp=$(date +%s)-$$
fail=0

produce() { # name bootstrap props topic: one record whose value is name
  echo "$1" | timeout 120 "$KP_JAVA" -Xmx128m -cp "$KP_KAFKA_CLASSPATH" org.apache.kafka.tools.ConsoleProducer \
    --bootstrap-server "$2" --topic "$4" --command-config "$3" \
    --command-property request.timeout.ms=15000 --command-property delivery.timeout.ms=30000 \
    --command-property max.block.ms=30000 > "$D/$1.log" 2>&1
  echo $? > "$D/$1.rc"
}

exit_of() { # name: how its producer ended
  case $(cat "$D/$1.rc" 2> /dev/null) in
    0) echo "producer exited 0" ;;
    124) echo "producer killed after 120 s (a loaded machine?)" ;;
    *) echo "producer exited $(cat "$D/$1.rc" 2> /dev/null)" ;;
  esac
}

bootstrap_of() {
  case $1 in
    ssl*) echo "$KP_KAFKA_SSL_BOOTSTRAP" ;;
    sasl_ssl*) echo "$KP_KAFKA_SASL_SSL_BOOTSTRAP" ;;
    *) echo "$KP_KAFKA_SASL_PLAINTEXT_BOOTSTRAP" ;;
  esac
}

values_on() { # topic expected: the values read back over PLAINTEXT, sorted
  "$KP_JAVA" -cp "$KP_KAFKA_CLASSPATH" JavaOracle consume --bootstrap "$KP_KAFKA_BOOTSTRAP" --topic "$1" \
    --expect "$2" --timeout 30 --linger 2 2> /dev/null |
    python3 -c 'import json, sys
for line in sys.stdin: print(bytes.fromhex(json.loads(line)["value"]).decode())' | sort
}

# ---- accepted
good=(ssl)
for m in plain scram-sha-256 scram-sha-512 oauthbearer; do good+=("sasl_ssl-$m" "sasl_plaintext-$m"); done
topic=secure-check-ok-$stamp
for n in "${good[@]}"; do produce "$n" "$(bootstrap_of "$n")" "$P/$n.properties" "$topic" & done
wait
got=$(values_on "$topic" ${#good[@]})
for n in "${good[@]}"; do
  if grep -qx "$n" <<< "$got"; then
    echo "ok      $n: delivered"
  else
    echo "FAILED  $n: not delivered (producer log: $(grep -m1 -E 'Exception|ERROR' "$D/$n.log"))"
    fail=1
  fi
done

# ---- refused
bad=()
for n in sasl_ssl-plain sasl_ssl-scram-sha-256 sasl_ssl-scram-sha-512 sasl_plaintext-plain \
  sasl_plaintext-scram-sha-256 sasl_plaintext-scram-sha-512; do
  sed "s/password=\"$KP_KAFKA_SCRAM_PASSWORD\"/password=\"wrong-$KP_KAFKA_SCRAM_PASSWORD\"/" "$P/$n.properties" > "$D/$n-wrong-password.properties"
  bad+=("$n-wrong-password")
done
sed "s/username=\"$KP_KAFKA_SCRAM_USER\"/username=\"nobody\"/" "$P/sasl_ssl-scram-sha-512.properties" > "$D/sasl_ssl-scram-sha-512-unknown-user.properties"
grep -v '^ssl.keystore' "$P/ssl.properties" > "$D/ssl-no-client-cert.properties"
sed "s#=$KP_KAFKA_CA\$#=$KP_KAFKA_OTHER_CA#" "$P/ssl.properties" > "$D/ssl-other-ca.properties"
sed "s#=$KP_KAFKA_CA\$#=$KP_KAFKA_OTHER_CA#" "$P/sasl_ssl-scram-sha-256.properties" > "$D/sasl_ssl-other-ca.properties"
bad+=(sasl_ssl-scram-sha-512-unknown-user ssl-no-client-cert ssl-other-ca sasl_ssl-other-ca)
topic=secure-check-refused-$stamp
# the topic exists, so that nothing being read back means nothing was accepted
produce marker "$KP_KAFKA_SASL_PLAINTEXT_BOOTSTRAP" "$P/sasl_plaintext-scram-sha-256.properties" "$topic"
for n in "${bad[@]}"; do produce "$n" "$(bootstrap_of "$n")" "$D/$n.properties" "$topic" & done
wait
got=$(values_on "$topic" 1)
grep -qx marker <<< "$got" || {
  echo "FAILED  marker record not read back from $topic"
  fail=1
}
for n in "${bad[@]}"; do
  why=$(grep -m1 -oE '(SaslAuthenticationException|SslAuthenticationException)[^(]*' "$D/$n.log" | cut -c1-160)
  if grep -qx "$n" <<< "$got"; then
    echo "FAILED  $n: accepted"
    fail=1
  elif [ -z "$why" ]; then
    echo "FAILED  $n: no authentication error in the producer's log ($(exit_of "$n"); last line: $(tail -n 1 "$D/$n.log" | cut -c1-200))"
    fail=1
  else
    echo "ok      $n: refused: $why"
  fi
done
exit $fail
