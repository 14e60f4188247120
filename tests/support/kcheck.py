#!/usr/bin/env python3
"""kcheck: an independent Kafka client (confluent_kafka / librdkafka) used by the
kafka-producer integration tests as an oracle.

Run it with the python that `scripts/brokers.sh env` exports as $KP_PYTHON.

Subcommands
-----------
consume --bootstrap B --topic T --expect N [--timeout S] [--linger S]
        [--isolation-level read_committed|read_uncommitted]
        [--property KEY=VALUE ...]
    Assign ALL partitions of T (found with list_topics) at OFFSET_BEGINNING,
    without any consumer-group rebalance, and read until N records have been
    read or S seconds (default 30) have passed.  One JSON object per record
    and line on stdout:
      {"partition": int, "offset": int, "key": hex|null, "value": hex|null,
       "headers": [[name, hex|null], ...], "timestamp_type": int,
       "timestamp": int}
    timestamp_type is librdkafka's: 0 not available, 1 CreateTime,
    2 LogAppendTime.  Records are printed in arrival order (ordered within a
    partition, interleaved across partitions).  Exit 0 once N records were
    read, 3 on timeout (what was read is still printed).  With --linger S the
    consumer keeps reading S more seconds after reaching N and prints any
    extra records (e.g. to detect duplicates); the exit status is still 0.
    Control records (transaction markers) are never delivered by librdkafka.
    --property passes librdkafka consumer properties through (repeatable),
    e.g. security.protocol=ssl with ssl.ca.location=... to read over TLS.

murmur2 --bootstrap B --topic T [--timeout S]
    Read keys from stdin, one hex-encoded key per line (an empty line is the
    empty key b"", the word "null" a null key), produce each with value b"x"
    through a librdkafka producer using partitioner=murmur2_random (the Java
    client's key hash) and acks=1, flush, and print one JSON line per key in
    input order: {"key": hex|null, "partition": int, "offset": int}.  Exit 1 on
    any delivery error.  With --idempotence the producer is idempotent
    (enable.idempotence=true, acks=all) instead.

metadata --bootstrap B [--topic T]
    Print the cluster metadata as one JSON object: brokers and, per topic,
    each partition's leader, replicas and isrs.

Broker notes: Tansu does not auto-create a topic from a consumer's Metadata
request (consume/metadata on a topic nobody produced to wait, then time out
with UNKNOWN_TOPIC_OR_PART); the librdkafka mock does (4 partitions).  Tansu
returns no aborted-transaction lists, so aborted records show up even with
read_committed: check control-record offset gaps instead.

Exit status: 0 ok, 1 error (message on stderr), 2 usage, 3 consume timeout.
Dependencies: the standard library and confluent_kafka only.
"""

import argparse
import json
import logging
import re
import sys
import time
import uuid

try:
    from confluent_kafka import (
        OFFSET_BEGINNING,
        Consumer,
        KafkaError,
        KafkaException,
        Producer,
        TopicPartition,
    )
except ImportError as e:  # pragma: no cover - environment problem
    sys.stderr.write(
        "kcheck: cannot import confluent_kafka (%s); run it with $KP_PYTHON "
        "from `scripts/brokers.sh env`\n" % e
    )
    sys.exit(1)

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 3


def eprint(*args):
    print("kcheck:", *args, file=sys.stderr, flush=True)


class _Dedupe(logging.Filter):
    """Drop repeats of a librdkafka log line (reconnect attempts to a dead
    broker are logged every few ms); digits are ignored when comparing."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def filter(self, record):
        key = re.sub(r"\d+", "#", record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def _rdkafka_logger():
    lg = logging.getLogger("kcheck.librdkafka")
    if not lg.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("kcheck: librdkafka %(levelname)s: %(message)s"))
        h.addFilter(_Dedupe())
        lg.addHandler(h)
        lg.setLevel(logging.WARNING)
        lg.propagate = False
    return lg


def hexornull(b):
    return None if b is None else bytes(b).hex()


def base_conf(bootstrap):
    return {
        "bootstrap.servers": bootstrap,
        # api.version.request is true by default; setting it explicitly only
        # triggers a deprecation CONFWARN in librdkafka >= 2.x.
        "client.id": "kcheck",
        # brokers and clients all live on loopback: retry quickly
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 1000,
        "topic.metadata.refresh.interval.ms": 5000,
        "log_level": 4,  # warnings and worse go to stderr
    }


def wait_partitions(client, topic, deadline):
    """Partition ids of `topic`, retrying metadata until the deadline."""
    last = "no metadata"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("topic %r: %s" % (topic, last))
        try:
            md = client.list_topics(topic=topic, timeout=max(0.1, min(5.0, remaining)))
            t = md.topics.get(topic)
            if t is None:
                last = "not in metadata"
            elif t.error is not None and t.error.code() != KafkaError.NO_ERROR:
                last = "metadata error %s" % t.error
            elif t.partitions:
                return sorted(t.partitions)
            else:
                last = "no partitions in metadata"
        except KafkaException as e:
            last = "list_topics failed: %s" % e
        time.sleep(0.2)


def cmd_consume(a):
    deadline = time.monotonic() + a.timeout
    conf = base_conf(a.bootstrap)
    conf.update(
        {
            "group.id": "kcheck-" + uuid.uuid4().hex,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "isolation.level": a.isolation_level,
            "check.crcs": True,
            "fetch.wait.max.ms": 100,
        }
    )
    for kv in a.property or []:
        k, eq, v = kv.partition("=")
        if not eq:
            eprint("consume: --property wants key=value, got %r" % kv)
            return EXIT_USAGE
        conf[k] = v
    c = Consumer(conf, logger=_rdkafka_logger())
    count = 0
    try:
        try:
            parts = wait_partitions(c, a.topic, deadline)
        except TimeoutError as e:
            eprint("consume: %s after %.1f s" % (e, a.timeout))
            return EXIT_TIMEOUT
        c.assign([TopicPartition(a.topic, p, OFFSET_BEGINNING) for p in parts])
        linger_deadline = None
        while True:
            now = time.monotonic()
            if count >= a.expect and linger_deadline is None:
                if a.linger <= 0:
                    break
                linger_deadline = now + a.linger
            end = linger_deadline if linger_deadline is not None else deadline
            if now >= end:
                break
            msg = c.poll(min(0.5, end - now))
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal():
                    eprint("consume: fatal error: %s" % err)
                    return EXIT_ERROR
                eprint("consume: %s" % err)
                continue
            ts_type, ts = msg.timestamp()
            headers = msg.headers() or []
            rec = {
                "partition": msg.partition(),
                "offset": msg.offset(),
                "key": hexornull(msg.key()),
                "value": hexornull(msg.value()),
                "headers": [[k, hexornull(v)] for k, v in headers],
                "timestamp_type": ts_type,
                "timestamp": ts,
            }
            sys.stdout.write(json.dumps(rec) + "\n")
            sys.stdout.flush()
            count += 1
    finally:
        c.close()
    if count >= a.expect:
        return EXIT_OK
    eprint("consume: timeout after %.1f s: read %d of %d records" % (a.timeout, count, a.expect))
    return EXIT_TIMEOUT


def parse_key(line):
    s = line.strip()
    if s == "null":
        return None
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise ValueError("not a hex key: %r" % line) from None


def cmd_murmur2(a):
    try:
        keys = [parse_key(line) for line in sys.stdin.read().splitlines()]
    except ValueError as e:
        eprint("murmur2:", e)
        return EXIT_USAGE
    conf = base_conf(a.bootstrap)
    conf.update(
        {
            "partitioner": a.partitioner,
            "acks": "all" if a.idempotence else "1",
            "enable.idempotence": a.idempotence,
            "linger.ms": 5,
            "message.timeout.ms": int(a.timeout * 1000),
        }
    )
    p = Producer(conf, logger=_rdkafka_logger())
    results = [None] * len(keys)
    errors = []

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                errors.append("key %s: %s" % (hexornull(keys[i]), err))
            else:
                results[i] = (msg.partition(), msg.offset())

        return cb

    for i, k in enumerate(keys):
        while True:
            try:
                p.produce(a.topic, value=b"x", key=k, on_delivery=on_delivery(i))
                break
            except BufferError:
                p.poll(0.1)
    remaining = p.flush(a.timeout + 5)
    if remaining:
        errors.append("%d messages still undelivered after flush" % remaining)
    for i, k in enumerate(keys):
        if results[i] is None:
            if not remaining and not errors:
                errors.append("key %s: no delivery report" % hexornull(k))
            continue
        part, off = results[i]
        sys.stdout.write(json.dumps({"key": hexornull(k), "partition": part, "offset": off}) + "\n")
    sys.stdout.flush()
    for e in errors:
        eprint("murmur2: delivery failed:", e)
    return EXIT_ERROR if errors else EXIT_OK


def cmd_metadata(a):
    conf = base_conf(a.bootstrap)
    conf.update({"group.id": "kcheck-" + uuid.uuid4().hex, "enable.auto.commit": False})
    c = Consumer(conf, logger=_rdkafka_logger())
    try:
        if a.topic:
            deadline = time.monotonic() + a.timeout
            try:
                wait_partitions(c, a.topic, deadline)
            except TimeoutError as e:
                eprint("metadata:", e)
                return EXIT_ERROR
        md = c.list_topics(topic=a.topic, timeout=a.timeout)
    finally:
        c.close()
    out = {
        "cluster_id": md.cluster_id,
        "controller_id": md.controller_id,
        "brokers": sorted(
            ({"id": b.id, "host": b.host, "port": b.port} for b in md.brokers.values()),
            key=lambda b: b["id"],
        ),
        "topics": {
            name: {
                "error": None if t.error is None else t.error.code(),
                "partitions": [
                    {
                        "id": pm.id,
                        "leader": pm.leader,
                        "replicas": list(pm.replicas),
                        "isrs": list(pm.isrs),
                    }
                    for _, pm in sorted(t.partitions.items())
                ],
            }
            for name, t in sorted(md.topics.items())
        },
    }
    print(json.dumps(out))
    return EXIT_OK


def main(argv=None):
    ap = argparse.ArgumentParser(prog="kcheck", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("consume", help="read back all partitions of a topic")
    c.add_argument("--bootstrap", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--expect", type=int, required=True)
    c.add_argument("--timeout", type=float, default=30.0)
    c.add_argument("--linger", type=float, default=0.0)
    c.add_argument(
        "--isolation-level",
        choices=["read_committed", "read_uncommitted"],
        default="read_committed",
    )
    c.add_argument(
        "--property",
        action="append",
        metavar="KEY=VALUE",
        help="a librdkafka consumer property (repeatable), e.g. security.protocol=ssl",
    )
    c.set_defaults(fn=cmd_consume)

    m = sub.add_parser("murmur2", help="key -> partition oracle (hex keys on stdin)")
    m.add_argument("--bootstrap", required=True)
    m.add_argument("--topic", required=True)
    m.add_argument("--timeout", type=float, default=30.0)
    m.add_argument(
        "--partitioner",
        default="murmur2_random",
        choices=["murmur2_random", "murmur2", "consistent", "consistent_random", "fnv1a", "fnv1a_random"],
    )
    m.add_argument("--idempotence", action="store_true")
    m.set_defaults(fn=cmd_murmur2)

    d = sub.add_parser("metadata", help="print cluster metadata as JSON")
    d.add_argument("--bootstrap", required=True)
    d.add_argument("--topic")
    d.add_argument("--timeout", type=float, default=10.0)
    d.set_defaults(fn=cmd_metadata)

    a = ap.parse_args(argv)
    try:
        return a.fn(a)
    except KafkaException as e:
        eprint("%s: %s" % (a.cmd, e))
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
