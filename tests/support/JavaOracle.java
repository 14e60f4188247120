/*
 * JavaOracle: Apache Kafka's own Java client (kafka-clients, the reference
 * implementation) used by the kafka-producer integration tests as an oracle,
 * next to tests/support/kcheck.py (librdkafka).
 *
 * Compiled by `scripts/brokers.sh install` into the classes dir; run it as
 *   $KP_JAVA -cp "$KP_KAFKA_CLASSPATH" JavaOracle SUBCOMMAND ...
 *
 * Subcommands
 * -----------
 * partition --bootstrap B --topic T [--timeout S]
 *     Read keys from stdin, one hex-encoded key per line (an empty line is the
 *     empty key, the word "null" a null key), produce each with value "x"
 *     through a KafkaProducer with its DEFAULT partitioner (partitioner.class
 *     unset: murmur2 of the serialized key, sticky for null keys), acks=1, and
 *     print one JSON line per key in input order:
 *       {"key": hex|null, "partition": int, "offset": int}
 *     Exit 1 on any send error (the keys that were delivered are still printed).
 *
 * consume --bootstrap B --topic T --expect N [--timeout S] [--linger S]
 *         [--isolation-level read_committed|read_uncommitted]
 *     kcheck.py consume's semantics and output: assign ALL partitions of T at
 *     the beginning (no consumer group), read until N records or S seconds
 *     (default 30), one JSON line per record:
 *       {"partition": int, "offset": int, "key": hex|null, "value": hex|null,
 *        "headers": [[name, hex|null], ...], "timestamp_type": int,
 *        "timestamp": int}
 *     timestamp_type in librdkafka's numbering: 0 not available, 1 CreateTime,
 *     2 LogAppendTime.  --linger S keeps reading S more seconds after N records
 *     (to catch duplicates).  Isolation level defaults to read_committed, as in
 *     kcheck.  Exit 0 once N records were read, 3 on timeout.
 *
 * create-topic --bootstrap B --topic T --partitions P --replication-factor R
 *              [--config k=v ...] [--timeout S]
 *     Admin.createTopics, then wait (at most S seconds, default 30) until the
 *     topic's metadata lists P partitions, each with a leader.  Prints one JSON
 *     line: {"topic": T, "partitions": [{"partition": int, "leader": int,
 *     "replicas": [int...], "isr": [int...]}, ...]}.
 *
 * move-leader --bootstrap B --topic T --partition P --to N [--timeout S]
 *     Makes broker N (a replica of T-P) the partition's leader: reorders the
 *     replicas so that N comes first (Admin.alterPartitionReassignments, no
 *     data moves), waits for the reassignment to finish, then runs a
 *     preferred leader election, and waits (at most S seconds, default 30)
 *     until T-P's metadata names N.  Prints the topic as create-topic does.
 *
 * churn-leaders --bootstrap B --topic T --seconds S
 *     Moves the leaders of every partition of T round their replicas, one
 *     partition at a time, for S seconds: each move reorders the replicas
 *     and runs a preferred election (as move-leader, without waiting for
 *     the new leader to show in metadata).  Prints {"moves": int}.
 *
 * group-offsets --bootstrap B --group G [--timeout S]
 *     The committed offsets of consumer group G (Admin.listConsumerGroupOffsets
 *     with requireStable, KIP-447: offsets of a transaction still open are
 *     waited for, not shown as they were), one JSON line per partition,
 *     sorted: {"topic": T, "partition": int, "offset": int, "metadata": str|null}.
 *     A group with no offsets prints nothing.
 *
 * client-quota --bootstrap B --client-id C --producer-byte-rate N|none [--timeout S]
 *     Sets (or, with none, removes) the producer_byte_rate quota (bytes/s) of
 *     client id C with Admin.alterClientQuotas, then waits (at most S seconds,
 *     default 30) until Admin.describeClientQuotas shows it.  Prints
 *     {"client_id": C, "producer_byte_rate": number|null}.
 *
 * stdout carries only the JSON lines: System.out is redirected to stderr for
 * everything else, and Kafka's logging goes to stderr at WARN.
 * Set KP_JAVA_ORACLE_LOG=DEBUG (or INFO, TRACE) to see the clients' logs.
 * Exit status: 0 ok, 1 error (message on stderr), 2 usage, 3 consume timeout.
 */

import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.ElectionNotNeededException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.appender.ConsoleAppender;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilderFactory;
import org.apache.logging.log4j.core.config.builder.impl.BuiltConfiguration;

public final class JavaOracle {
    static final int EXIT_OK = 0, EXIT_ERROR = 1, EXIT_USAGE = 2, EXIT_TIMEOUT = 3;

    /** The real stdout, for JSON lines only. */
    static PrintStream out;

    /** A failure with an exit status and a message for stderr. */
    static final class Exit extends RuntimeException {
        final int status;

        Exit(int status, String message) {
            super(message);
            this.status = status;
        }
    }

    public static void main(String[] argv) {
        out = new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.out)), false,
                StandardCharsets.UTF_8);
        // Anything else that writes to System.out (a library, a default
        // logging configuration) goes to stderr instead.
        System.setOut(System.err);
        quietLogging();
        int status;
        try {
            status = run(argv);
        } catch (Exit e) {
            eprint(e.getMessage());
            status = e.status;
        } catch (Exception e) {
            eprint((argv.length > 0 ? argv[0] + ": " : "") + e);
            status = EXIT_ERROR;
        }
        out.flush();
        System.err.flush();
        // Client threads (kafka-producer-network-thread, ...) are closed
        // already; halt so that nothing can keep the JVM alive.
        Runtime.getRuntime().halt(status);
    }

    static void eprint(String msg) {
        System.err.println("java-oracle: " + msg);
        System.err.flush();
    }

    /**
     * log4j2 (with its slf4j binding) is on the classpath: WARN and worse to
     * stderr, or the level named by $KP_JAVA_ORACLE_LOG (e.g. DEBUG) to debug.
     */
    static void quietLogging() {
        String level = System.getenv("KP_JAVA_ORACLE_LOG");
        ConfigurationBuilder<BuiltConfiguration> b = ConfigurationBuilderFactory.newConfigurationBuilder();
        b.setStatusLevel(Level.ERROR);
        b.setConfigurationName("java-oracle");
        b.add(b.newAppender("stderr", "Console")
                .addAttribute("target", ConsoleAppender.Target.SYSTEM_ERR)
                .add(b.newLayout("PatternLayout").addAttribute("pattern", "java-oracle: %p %c{1}: %m%n")));
        b.add(b.newRootLogger(level == null || level.isEmpty() ? Level.WARN : Level.toLevel(level, Level.WARN)).add(b.newAppenderRef("stderr")));
        Configurator.initialize(b.build());
    }

    static int run(String[] argv) throws Exception {
        if (argv.length == 0) {
            throw new Exit(EXIT_USAGE, "usage: JavaOracle partition|consume|create-topic --bootstrap B --topic T ...");
        }
        Args a = new Args(argv);
        switch (argv[0]) {
            case "partition":
                return partition(a);
            case "consume":
                return consume(a);
            case "create-topic":
                return createTopic(a);
            case "move-leader":
                return moveLeader(a);
            case "churn-leaders":
                return churnLeaders(a);
            case "group-offsets":
                return groupOffsets(a);
            case "client-quota":
                return clientQuota(a);
            default:
                throw new Exit(EXIT_USAGE,
                        "unknown subcommand '" + argv[0] + "' (partition, consume, create-topic, move-leader, churn-leaders, group-offsets, client-quota)");
        }
    }

    // ---- arguments ----------------------------------------------------------

    static final class Args {
        final String cmd;
        final Map<String, String> single = new HashMap<>();
        final List<String> configs = new ArrayList<>();

        Args(String[] argv) {
            cmd = argv[0];
            for (int i = 1; i < argv.length; i += 2) {
                String name = argv[i];
                if (!name.startsWith("--") || i + 1 >= argv.length) {
                    throw new Exit(EXIT_USAGE, cmd + ": expected --name value, got '" + name + "'");
                }
                String value = argv[i + 1];
                if (name.equals("--config")) {
                    configs.add(value);
                } else if (single.put(name.substring(2), value) != null) {
                    throw new Exit(EXIT_USAGE, cmd + ": " + name + " given twice");
                }
            }
        }

        String str(String name) {
            String v = single.get(name);
            if (v == null) {
                throw new Exit(EXIT_USAGE, cmd + ": --" + name + " is required");
            }
            return v;
        }

        String str(String name, String dflt) {
            return single.getOrDefault(name, dflt);
        }

        int integer(String name) {
            try {
                return Integer.parseInt(str(name));
            } catch (NumberFormatException e) {
                throw new Exit(EXIT_USAGE, cmd + ": --" + name + " must be an integer");
            }
        }

        double seconds(String name, double dflt) {
            String v = single.get(name);
            if (v == null) {
                return dflt;
            }
            try {
                double s = Double.parseDouble(v);
                if (!(s >= 0)) {
                    throw new NumberFormatException();
                }
                return s;
            } catch (NumberFormatException e) {
                throw new Exit(EXIT_USAGE, cmd + ": --" + name + " must be a number of seconds >= 0");
            }
        }

        /** Rejects options this subcommand does not know (typos must not pass silently). */
        void only(String... names) {
            for (String k : single.keySet()) {
                boolean ok = false;
                for (String n : names) {
                    ok |= n.equals(k);
                }
                if (!ok) {
                    throw new Exit(EXIT_USAGE, cmd + ": unknown option --" + k);
                }
            }
        }
    }

    static Properties common(String bootstrap) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("client.id", "java-oracle");
        // brokers and clients all live on loopback: retry quickly
        p.put("reconnect.backoff.ms", "50");
        p.put("reconnect.backoff.max.ms", "1000");
        p.put("retry.backoff.ms", "50");
        // KIP-1242 (ApiVersions v5) sends the cluster id and node id when
        // connecting to a known broker. Tansu 0.6.0 advertises ApiVersions
        // 0..4 but decodes a v5 request as v4 instead of answering
        // UNSUPPORTED_VERSION, misreads the cluster id as tagged fields and
        // drops the connection. Without the check, v5 carries a null id and
        // -1, which Tansu survives. Nothing else about the clients changes.
        p.put("metadata.cluster.check.enable", "false");
        return p;
    }

    // ---- JSON ---------------------------------------------------------------

    static final char[] HEX = "0123456789abcdef".toCharArray();

    static String hex(byte[] b) {
        if (b == null) {
            return "null";
        }
        StringBuilder s = new StringBuilder(b.length * 2 + 2).append('"');
        for (byte x : b) {
            s.append(HEX[(x >> 4) & 0xf]).append(HEX[x & 0xf]);
        }
        return s.append('"').toString();
    }

    static String str(String v) {
        if (v == null) {
            return "null";
        }
        StringBuilder s = new StringBuilder(v.length() + 2).append('"');
        for (int i = 0; i < v.length(); i++) {
            char c = v.charAt(i);
            switch (c) {
                case '"':
                    s.append("\\\"");
                    break;
                case '\\':
                    s.append("\\\\");
                    break;
                case '\n':
                    s.append("\\n");
                    break;
                case '\r':
                    s.append("\\r");
                    break;
                case '\t':
                    s.append("\\t");
                    break;
                default:
                    if (c < 0x20 || Character.isSurrogate(c) && !validSurrogate(v, i)) {
                        s.append(String.format("\\u%04x", (int) c));
                    } else {
                        s.append(c);
                    }
            }
        }
        return s.append('"').toString();
    }

    static boolean validSurrogate(String v, int i) {
        char c = v.charAt(i);
        if (Character.isHighSurrogate(c)) {
            return i + 1 < v.length() && Character.isLowSurrogate(v.charAt(i + 1));
        }
        return i > 0 && Character.isHighSurrogate(v.charAt(i - 1));
    }

    static byte[] unhex(String line) {
        String s = line.strip();
        if (s.equals("null")) {
            return null;
        }
        if (s.length() % 2 != 0) {
            throw new Exit(EXIT_USAGE, "partition: not a hex key: '" + line + "'");
        }
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++) {
            int hi = Character.digit(s.charAt(2 * i), 16), lo = Character.digit(s.charAt(2 * i + 1), 16);
            if (hi < 0 || lo < 0) {
                throw new Exit(EXIT_USAGE, "partition: not a hex key: '" + line + "'");
            }
            b[i] = (byte) (hi << 4 | lo);
        }
        return b;
    }

    // ---- partition ----------------------------------------------------------

    static int partition(Args a) throws Exception {
        a.only("bootstrap", "topic", "timeout");
        String topic = a.str("topic");
        double timeout = a.seconds("timeout", 30);
        List<byte[]> keys = new ArrayList<>();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII))) {
            for (String line; (line = r.readLine()) != null; ) {
                keys.add(unhex(line));
            }
        }
        Properties p = common(a.str("bootstrap"));
        p.put(ProducerConfig.ACKS_CONFIG, "1");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        int ms = (int) (timeout * 1000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, Integer.toString(ms));
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, Integer.toString(Math.min(ms, 30_000)));
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, Integer.toString(ms + 5_000));
        // partitioner.class is deliberately left unset: the default partitioner is the oracle.
        List<String> errors = new ArrayList<>();
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            byte[] value = "x".getBytes(StandardCharsets.US_ASCII);
            for (byte[] k : keys) {
                try {
                    futures.add(producer.send(new ProducerRecord<>(topic, k, value)));
                } catch (Exception e) {
                    errors.add("key " + hex(k) + ": send: " + e);
                    futures.add(null);
                }
            }
            producer.flush();
            for (int i = 0; i < keys.size(); i++) {
                Future<RecordMetadata> f = futures.get(i);
                if (f == null) {
                    continue;
                }
                try {
                    RecordMetadata m = f.get();
                    out.println("{\"key\": " + hex(keys.get(i)) + ", \"partition\": " + m.partition()
                            + ", \"offset\": " + m.offset() + "}");
                } catch (ExecutionException e) {
                    errors.add("key " + hex(keys.get(i)) + ": " + e.getCause());
                }
            }
            out.flush();
        }
        for (String e : errors) {
            eprint("partition: delivery failed: " + e);
        }
        return errors.isEmpty() ? EXIT_OK : EXIT_ERROR;
    }

    // ---- consume ------------------------------------------------------------

    static int timestampType(TimestampType t) {
        switch (t) {
            case CREATE_TIME:
                return 1;
            case LOG_APPEND_TIME:
                return 2;
            default:
                return 0;
        }
    }

    static int consume(Args a) {
        a.only("bootstrap", "topic", "expect", "timeout", "linger", "isolation-level");
        String topic = a.str("topic");
        int expect = a.integer("expect");
        double timeout = a.seconds("timeout", 30), linger = a.seconds("linger", 0);
        String isolation = a.str("isolation-level", "read_committed");
        if (!isolation.equals("read_committed") && !isolation.equals("read_uncommitted")) {
            throw new Exit(EXIT_USAGE, "consume: --isolation-level must be read_committed or read_uncommitted");
        }
        long deadline = System.nanoTime() + (long) (timeout * 1e9);
        Properties p = common(a.str("bootstrap"));
        // no group.id: assign() without any group coordinator
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "100");
        p.put(ConsumerConfig.METADATA_MAX_AGE_CONFIG, "5000");
        int count = 0;
        try (KafkaConsumer<byte[], byte[]> c =
                new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = waitPartitions(c, topic, deadline, timeout);
            if (parts == null) {
                return EXIT_TIMEOUT;
            }
            c.assign(parts);
            c.seekToBeginning(parts);
            Long lingerDeadline = null;
            while (true) {
                long now = System.nanoTime();
                if (count >= expect && lingerDeadline == null) {
                    if (linger <= 0) {
                        break;
                    }
                    lingerDeadline = now + (long) (linger * 1e9);
                }
                long end = lingerDeadline != null ? lingerDeadline : deadline;
                if (now >= end) {
                    break;
                }
                ConsumerRecords<byte[], byte[]> recs =
                        c.poll(Duration.ofNanos(Math.min(500_000_000L, end - now)));
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    StringBuilder h = new StringBuilder("[");
                    for (Header x : r.headers()) {
                        if (h.length() > 1) {
                            h.append(", ");
                        }
                        h.append('[').append(str(x.key())).append(", ").append(hex(x.value())).append(']');
                    }
                    h.append(']');
                    out.println("{\"partition\": " + r.partition() + ", \"offset\": " + r.offset()
                            + ", \"key\": " + hex(r.key()) + ", \"value\": " + hex(r.value())
                            + ", \"headers\": " + h + ", \"timestamp_type\": " + timestampType(r.timestampType())
                            + ", \"timestamp\": " + r.timestamp() + "}");
                    count++;
                }
                out.flush();
            }
        }
        if (count >= expect) {
            return EXIT_OK;
        }
        eprint(String.format("consume: timeout after %.1f s: read %d of %d records", timeout, count, expect));
        return EXIT_TIMEOUT;
    }

    /** The partitions of `topic`, retrying metadata until the deadline; null on timeout. */
    static List<TopicPartition> waitPartitions(KafkaConsumer<?, ?> c, String topic, long deadline, double timeout) {
        String last = "no metadata";
        while (true) {
            long remaining = deadline - System.nanoTime();
            if (remaining <= 0) {
                eprint(String.format("consume: topic '%s': %s after %.1f s", topic, last, timeout));
                return null;
            }
            try {
                List<PartitionInfo> infos =
                        c.partitionsFor(topic, Duration.ofNanos(Math.max(100_000_000L, Math.min(5_000_000_000L, remaining))));
                if (infos != null && !infos.isEmpty()) {
                    List<TopicPartition> parts = new ArrayList<>();
                    for (PartitionInfo i : infos) {
                        parts.add(new TopicPartition(topic, i.partition()));
                    }
                    parts.sort(Comparator.comparingInt(TopicPartition::partition));
                    return parts;
                }
                last = "not in metadata";
            } catch (org.apache.kafka.common.errors.RetriableException e) {
                last = "partitionsFor failed: " + e;
            }
            sleepUntilAtMost(deadline, 200);
        }
    }

    static void sleepUntilAtMost(long deadline, long ms) {
        long remaining = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
        try {
            Thread.sleep(Math.max(0, Math.min(ms, remaining)));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Exit(EXIT_ERROR, "interrupted");
        }
    }

    // ---- create-topic -------------------------------------------------------

    static int createTopic(Args a) throws Exception {
        a.only("bootstrap", "topic", "partitions", "replication-factor", "timeout");
        String topic = a.str("topic");
        int partitions = a.integer("partitions");
        int rf = a.integer("replication-factor");
        double timeout = a.seconds("timeout", 30);
        if (partitions < 1 || rf < 1 || rf > Short.MAX_VALUE) {
            throw new Exit(EXIT_USAGE, "create-topic: --partitions and --replication-factor must be >= 1");
        }
        Map<String, String> configs = new HashMap<>();
        for (String kv : a.configs) {
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new Exit(EXIT_USAGE, "create-topic: --config wants key=value, got '" + kv + "'");
            }
            configs.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        long deadline = System.nanoTime() + (long) (timeout * 1e9);
        Properties p = common(a.str("bootstrap"));
        int ms = (int) (timeout * 1000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Integer.toString(ms));
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, Integer.toString(Math.min(ms, 30_000)));
        try (Admin admin = Admin.create(p)) {
            NewTopic t = new NewTopic(topic, partitions, (short) rf).configs(configs);
            try {
                admin.createTopics(Collections.singletonList(t)).all().get(remainingMs(deadline), TimeUnit.MILLISECONDS);
            } catch (ExecutionException e) {
                throw new Exit(EXIT_ERROR, "create-topic " + topic + " (partitions " + partitions
                        + ", replication factor " + rf + ", configs " + configs + ") failed: " + e.getCause());
            } catch (java.util.concurrent.TimeoutException e) {
                throw new Exit(EXIT_ERROR, "create-topic " + topic + ": no answer within " + timeout + " s");
            }
            String last = "not described yet";
            while (true) {
                if (deadline - System.nanoTime() <= 0) {
                    throw new Exit(EXIT_ERROR, "create-topic " + topic + ": created, but not every partition has a"
                            + " leader after " + timeout + " s: " + last);
                }
                try {
                    TopicDescription d = admin.describeTopics(Collections.singletonList(topic)).allTopicNames()
                            .get(remainingMs(deadline), TimeUnit.MILLISECONDS).get(topic);
                    List<TopicPartitionInfo> ps = d.partitions();
                    int led = 0;
                    for (TopicPartitionInfo i : ps) {
                        if (i.leader() != null && !i.leader().isEmpty() && i.leader().id() >= 0) {
                            led++;
                        }
                    }
                    if (ps.size() == partitions && led == partitions) {
                        out.println(describe(d));
                        out.flush();
                        return EXIT_OK;
                    }
                    last = ps.size() + " partitions, " + led + " with a leader";
                } catch (ExecutionException e) {
                    last = "describeTopics: " + e.getCause();
                } catch (java.util.concurrent.TimeoutException e) {
                    last = "describeTopics timed out";
                }
                sleepUntilAtMost(deadline, 100);
            }
        }
    }

    // ---- move-leader --------------------------------------------------------

    static int moveLeader(Args a) throws Exception {
        a.only("bootstrap", "topic", "partition", "to", "timeout");
        String topic = a.str("topic");
        int partition = a.integer("partition");
        int to = a.integer("to");
        double timeout = a.seconds("timeout", 30);
        long deadline = System.nanoTime() + (long) (timeout * 1e9);
        TopicPartition tp = new TopicPartition(topic, partition);
        Properties p = common(a.str("bootstrap"));
        int ms = (int) (timeout * 1000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Integer.toString(ms));
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, Integer.toString(Math.min(ms, 30_000)));
        try (Admin admin = Admin.create(p)) {
            TopicPartitionInfo info = describePartition(admin, tp, deadline);
            List<Integer> order = new ArrayList<>();
            order.add(to);
            for (Node n : info.replicas()) {
                if (n.id() != to) {
                    order.add(n.id());
                }
            }
            if (order.size() != info.replicas().size()) {
                throw new Exit(EXIT_ERROR, "move-leader " + tp + ": broker " + to + " is not one of its replicas "
                        + nodes(info.replicas()));
            }
            String step = "reassigning to " + order;
            try {
                admin.alterPartitionReassignments(
                        Collections.singletonMap(tp, Optional.of(new NewPartitionReassignment(order))))
                        .all().get(remainingMs(deadline), TimeUnit.MILLISECONDS);
                while (!admin.listPartitionReassignments(Collections.singleton(tp)).reassignments()
                        .get(remainingMs(deadline), TimeUnit.MILLISECONDS).isEmpty()) {
                    if (deadline - System.nanoTime() <= 0) {
                        throw new Exit(EXIT_ERROR, "move-leader " + tp + ": " + step + " did not finish in "
                                + timeout + " s");
                    }
                    sleepUntilAtMost(deadline, 100);
                }
                while (true) {
                    step = "electing the preferred leader " + to;
                    try {
                        admin.electLeaders(ElectionType.PREFERRED, Collections.singleton(tp)).all()
                                .get(remainingMs(deadline), TimeUnit.MILLISECONDS);
                    } catch (ExecutionException e) {
                        // ELECTION_NOT_NEEDED once it is the leader already.
                        if (!(e.getCause() instanceof ElectionNotNeededException)) {
                            throw e;
                        }
                    }
                    TopicPartitionInfo now = describePartition(admin, tp, deadline);
                    if (now.leader() != null && now.leader().id() == to) {
                        break;
                    }
                    if (deadline - System.nanoTime() <= 0) {
                        throw new Exit(EXIT_ERROR, "move-leader " + tp + ": leader is still "
                                + now.leader() + " after " + timeout + " s");
                    }
                    sleepUntilAtMost(deadline, 100);
                }
            } catch (ExecutionException e) {
                throw new Exit(EXIT_ERROR, "move-leader " + tp + ": " + step + " failed: " + e.getCause());
            } catch (java.util.concurrent.TimeoutException e) {
                throw new Exit(EXIT_ERROR, "move-leader " + tp + ": " + step + ": no answer within " + timeout + " s");
            }
            TopicDescription d = admin.describeTopics(Collections.singletonList(topic)).allTopicNames()
                    .get(remainingMs(deadline), TimeUnit.MILLISECONDS).get(topic);
            out.println(describe(d));
            out.flush();
            return EXIT_OK;
        }
    }

    static int churnLeaders(Args a) throws Exception {
        a.only("bootstrap", "topic", "seconds");
        String topic = a.str("topic");
        double seconds = a.seconds("seconds", 10);
        long end = System.nanoTime() + (long) (seconds * 1e9);
        Properties p = common(a.str("bootstrap"));
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        int moves = 0;
        try (Admin admin = Admin.create(p)) {
            TopicDescription d = admin.describeTopics(Collections.singletonList(topic)).allTopicNames()
                    .get(20, TimeUnit.SECONDS).get(topic);
            List<List<Integer>> replicas = new ArrayList<>();
            for (TopicPartitionInfo i : d.partitions()) {
                List<Integer> r = new ArrayList<>();
                for (Node n : i.replicas()) {
                    r.add(n.id());
                }
                replicas.add(r);
            }
            for (int round = 1; System.nanoTime() < end; round++) {
                for (int part = 0; part < replicas.size() && System.nanoTime() < end; part++) {
                    List<Integer> order = new ArrayList<>(replicas.get(part));
                    Collections.rotate(order, -round);
                    TopicPartition tp = new TopicPartition(topic, part);
                    try {
                        admin.alterPartitionReassignments(
                                Collections.singletonMap(tp, Optional.of(new NewPartitionReassignment(order))))
                                .all().get(20, TimeUnit.SECONDS);
                        admin.electLeaders(ElectionType.PREFERRED, Collections.singleton(tp)).all()
                                .get(20, TimeUnit.SECONDS);
                        moves++;
                    } catch (ExecutionException e) {
                        // A reassignment still in progress, or the leader is
                        // already the preferred one: the next round tries again.
                        eprint("churn-leaders " + tp + " -> " + order + ": " + e.getCause());
                    }
                }
            }
        }
        out.println("{\"moves\": " + moves + "}");
        out.flush();
        return EXIT_OK;
    }

    static int groupOffsets(Args a) throws Exception {
        a.only("bootstrap", "group", "timeout");
        String group = a.str("group");
        long timeoutMs = (long) (a.seconds("timeout", 30) * 1000);
        Properties p = common(a.str("bootstrap"));
        try (Admin admin = Admin.create(p)) {
            Map<TopicPartition, org.apache.kafka.clients.consumer.OffsetAndMetadata> offsets = admin
                    .listConsumerGroupOffsets(
                            Collections.singletonMap(group, new org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec()),
                            new org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions().requireStable(true))
                    .partitionsToOffsetAndMetadata(group)
                    .get(timeoutMs, TimeUnit.MILLISECONDS);
            List<TopicPartition> tps = new ArrayList<>(offsets.keySet());
            tps.sort(Comparator.comparing(TopicPartition::topic).thenComparingInt(TopicPartition::partition));
            for (TopicPartition tp : tps) {
                org.apache.kafka.clients.consumer.OffsetAndMetadata om = offsets.get(tp);
                if (om == null) {
                    continue;
                }
                out.println("{\"topic\": " + str(tp.topic()) + ", \"partition\": " + tp.partition()
                        + ", \"offset\": " + om.offset() + ", \"metadata\": " + str(om.metadata()) + "}");
            }
            out.flush();
        }
        return EXIT_OK;
    }

    static int clientQuota(Args a) throws Exception {
        a.only("bootstrap", "client-id", "producer-byte-rate", "timeout");
        String clientId = a.str("client-id");
        String rate = a.str("producer-byte-rate");
        Double value;
        if (rate.equals("none")) {
            value = null;
        } else {
            try {
                value = Double.parseDouble(rate);
            } catch (NumberFormatException e) {
                throw new Exit(EXIT_USAGE, "client-quota: --producer-byte-rate must be a number or none");
            }
        }
        long deadline = System.nanoTime() + (long) (a.seconds("timeout", 30) * 1e9);
        org.apache.kafka.common.quota.ClientQuotaEntity entity = new org.apache.kafka.common.quota.ClientQuotaEntity(
                Collections.singletonMap(org.apache.kafka.common.quota.ClientQuotaEntity.CLIENT_ID, clientId));
        org.apache.kafka.common.quota.ClientQuotaAlteration alteration = new org.apache.kafka.common.quota.ClientQuotaAlteration(
                entity, Collections.singletonList(
                        new org.apache.kafka.common.quota.ClientQuotaAlteration.Op("producer_byte_rate", value)));
        try (Admin admin = Admin.create(common(a.str("bootstrap")))) {
            admin.alterClientQuotas(Collections.singletonList(alteration)).all()
                    .get(remainingMs(deadline), TimeUnit.MILLISECONDS);
            org.apache.kafka.common.quota.ClientQuotaFilter filter = org.apache.kafka.common.quota.ClientQuotaFilter.containsOnly(
                    Collections.singletonList(org.apache.kafka.common.quota.ClientQuotaFilterComponent.ofEntity(
                            org.apache.kafka.common.quota.ClientQuotaEntity.CLIENT_ID, clientId)));
            while (true) {
                Map<org.apache.kafka.common.quota.ClientQuotaEntity, Map<String, Double>> q = admin
                        .describeClientQuotas(filter).entities().get(remainingMs(deadline), TimeUnit.MILLISECONDS);
                Double seen = q.getOrDefault(entity, Collections.emptyMap()).get("producer_byte_rate");
                if (value == null ? seen == null : value.equals(seen)) {
                    break;
                }
                if (System.nanoTime() > deadline) {
                    throw new Exit(EXIT_ERROR, "client-quota: " + clientId + " still shows " + seen + ", not " + value);
                }
                Thread.sleep(100);
            }
        }
        out.println("{\"client_id\": " + str(clientId) + ", \"producer_byte_rate\": "
                + (value == null ? "null" : String.valueOf(value)) + "}");
        out.flush();
        return EXIT_OK;
    }

    static TopicPartitionInfo describePartition(Admin admin, TopicPartition tp, long deadline) throws Exception {
        TopicDescription d = admin.describeTopics(Collections.singletonList(tp.topic())).allTopicNames()
                .get(remainingMs(deadline), TimeUnit.MILLISECONDS).get(tp.topic());
        for (TopicPartitionInfo i : d.partitions()) {
            if (i.partition() == tp.partition()) {
                return i;
            }
        }
        throw new Exit(EXIT_ERROR, tp + " does not exist");
    }

    static long remainingMs(long deadline) {
        return Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
    }

    static String nodes(List<Node> ns) {
        StringBuilder s = new StringBuilder("[");
        for (Node n : ns) {
            if (s.length() > 1) {
                s.append(", ");
            }
            s.append(n.id());
        }
        return s.append(']').toString();
    }

    static String describe(TopicDescription d) {
        List<TopicPartitionInfo> ps = new ArrayList<>(d.partitions());
        ps.sort(Comparator.comparingInt(TopicPartitionInfo::partition));
        StringBuilder s = new StringBuilder("{\"topic\": ").append(str(d.name())).append(", \"partitions\": [");
        for (int i = 0; i < ps.size(); i++) {
            TopicPartitionInfo x = ps.get(i);
            s.append(i > 0 ? ", " : "").append("{\"partition\": ").append(x.partition())
                    .append(", \"leader\": ").append(x.leader().id())
                    .append(", \"replicas\": ").append(nodes(x.replicas()))
                    .append(", \"isr\": ").append(nodes(x.isr())).append('}');
        }
        return s.append("]}").toString();
    }
}
