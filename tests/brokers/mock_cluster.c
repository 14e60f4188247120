/*
 * mock_cluster: run librdkafka's built-in mock Kafka cluster as a standalone
 * process, so that any Kafka client (not only librdkafka) can talk to it.
 *
 * Usage: mock_cluster [-b BROKERS] [-t TOPIC:PARTITIONS[:RF]]... [-f BOOTSTRAP_FILE]
 *                     [-c CONTROL_FIFO [-a ACK_FILE]]
 *
 *   -b N        number of mock brokers (default 1)
 *   -t SPEC     pre-create a topic (repeatable); unknown topics are
 *               auto-created by the mock cluster with 4 partitions anyway
 *   -f FILE     write the bootstrap string (host:port,...) to FILE once ready
 *   -c FIFO     create a named pipe; each line written to it is a command
 *               (fault injection for tests), e.g. `echo "down 2" > FIFO`:
 *                 errors APIKEY ERR [ERR...]   next N requests of APIKEY fail
 *                                              with these error codes (any broker)
 *                 broker_error ID APIKEY ERR RTT_MS  one error (+delay) on broker ID
 *                 clear APIKEY                 drop pending injected errors
 *                 topic_error TOPIC ERR        topic-level error in Metadata
 *                 create TOPIC PARTS RF        create a topic
 *                 leader TOPIC PART ID         move partition leadership
 *                 down ID | up ID              take a broker down / bring it up
 *                 rtt ID MS                    add latency to broker ID
 *                 coordinator transaction|group KEY ID
 *                 apiversion APIKEY MIN MAX    change advertised versions
 *               Error codes are Kafka's numeric codes (e.g. 6 =
 *               NOT_LEADER_OR_FOLLOWER, 7 = REQUEST_TIMED_OUT, 45 =
 *               OUT_OF_ORDER_SEQUENCE_NUMBER).  Each command's result is
 *               logged on stderr as "control[N]: <command line> -> <result>"
 *               (N counts the commands handled so far, from 1).
 *   -a FILE     after each control command, atomically rewrite FILE with the
 *               number N of commands handled so far (one line), so a test can
 *               wait until its command has been applied instead of sleeping.
 *
 * The mock brokers listen on 127.0.0.1 with kernel-chosen (ephemeral) ports:
 * librdkafka 2.0.2 has no way to choose the port.  The bootstrap list is
 * printed on stdout as "BOOTSTRAP=<list>" and optionally written to FILE.
 * Runs until SIGINT/SIGTERM.
 *
 * Build: cc -O2 -o mock_cluster mock_cluster.c -lrdkafka
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

static unsigned long handled = 0;

static void write_ack(const char *ack_file) {
        char tmp[4096];
        FILE *f;
        if (!ack_file) return;
        snprintf(tmp, sizeof(tmp), "%s.tmp", ack_file);
        f = fopen(tmp, "w");
        if (!f || fprintf(f, "%lu\n", handled) < 0 || fclose(f) != 0 ||
            rename(tmp, ack_file) != 0)
                perror("writing ack file");
}

static void handle_cmd(rd_kafka_mock_cluster_t *mc, char *line) {
        char *argv[64];
        char orig[1024];
        int argc = 0;
        snprintf(orig, sizeof(orig), "%s", line);
        orig[strcspn(orig, "\r\n")] = '\0';
        for (char *tok = strtok(line, " \t\r\n"); tok && argc < 64;
             tok = strtok(NULL, " \t\r\n"))
                argv[argc++] = tok;
        if (argc == 0) return;
        handled++;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        const char *c = argv[0];
        if (!strcmp(c, "errors") && argc >= 3) {
                rd_kafka_resp_err_t errs[62];
                int n = argc - 2;
                for (int i = 0; i < n; i++) errs[i] = atoi(argv[i + 2]);
                rd_kafka_mock_push_request_errors_array(mc, (int16_t)atoi(argv[1]), n, errs);
        } else if (!strcmp(c, "broker_error") && argc == 5) {
                err = rd_kafka_mock_broker_push_request_error_rtts(
                    mc, atoi(argv[1]), (int16_t)atoi(argv[2]), 1,
                    (rd_kafka_resp_err_t)atoi(argv[3]), atoi(argv[4]));
        } else if (!strcmp(c, "clear") && argc == 2) {
                rd_kafka_mock_clear_request_errors(mc, (int16_t)atoi(argv[1]));
        } else if (!strcmp(c, "topic_error") && argc == 3) {
                rd_kafka_mock_topic_set_error(mc, argv[1], atoi(argv[2]));
        } else if (!strcmp(c, "create") && argc == 4) {
                err = rd_kafka_mock_topic_create(mc, argv[1], atoi(argv[2]), atoi(argv[3]));
        } else if (!strcmp(c, "leader") && argc == 4) {
                err = rd_kafka_mock_partition_set_leader(mc, argv[1], atoi(argv[2]), atoi(argv[3]));
        } else if (!strcmp(c, "down") && argc == 2) {
                err = rd_kafka_mock_broker_set_down(mc, atoi(argv[1]));
        } else if (!strcmp(c, "up") && argc == 2) {
                err = rd_kafka_mock_broker_set_up(mc, atoi(argv[1]));
        } else if (!strcmp(c, "rtt") && argc == 3) {
                err = rd_kafka_mock_broker_set_rtt(mc, atoi(argv[1]), atoi(argv[2]));
        } else if (!strcmp(c, "coordinator") && argc == 4) {
                err = rd_kafka_mock_coordinator_set(mc, argv[1], argv[2], atoi(argv[3]));
        } else if (!strcmp(c, "apiversion") && argc == 4) {
                err = rd_kafka_mock_set_apiversion(mc, (int16_t)atoi(argv[1]),
                                                   (int16_t)atoi(argv[2]), (int16_t)atoi(argv[3]));
        } else {
                fprintf(stderr, "control[%lu]: %s -> unknown or malformed command (argc=%d)\n",
                        handled, orig, argc);
                return;
        }
        fprintf(stderr, "control[%lu]: %s -> %s\n", handled, orig,
                err ? rd_kafka_err2str(err) : "ok");
}

static volatile sig_atomic_t run = 1;
static void stop(int sig) { (void)sig; run = 0; }

int main(int argc, char **argv) {
        int brokers = 1, opt;
        const char *bootstrap_file = NULL;
        char *topics[64];
        int ntopics = 0;
        char errstr[512];

        const char *fifo = NULL, *ack_file = NULL;
        while ((opt = getopt(argc, argv, "b:t:f:c:a:")) != -1) {
                switch (opt) {
                case 'b': brokers = atoi(optarg); break;
                case 't':
                        if (ntopics < 64) topics[ntopics++] = optarg;
                        break;
                case 'f': bootstrap_file = optarg; break;
                case 'c': fifo = optarg; break;
                case 'a': ack_file = optarg; break;
                default:
                        fprintf(stderr,
                                "usage: %s [-b brokers] [-t topic:partitions[:rf]]... [-f bootstrap_file] [-c control_fifo [-a ack_file]]\n",
                                argv[0]);
                        return 2;
                }
        }
        if (brokers < 1) brokers = 1;

        /* The mock cluster needs an rd_kafka_t handle to host its thread. */
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr));
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "rd_kafka_new failed: %s\n", errstr);
                return 1;
        }

        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
        if (!mc) {
                fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
                rd_kafka_destroy(rk);
                return 1;
        }

        for (int i = 0; i < ntopics; i++) {
                char *spec = strdup(topics[i]);
                char *name = strtok(spec, ":");
                char *p = strtok(NULL, ":");
                char *r = strtok(NULL, ":");
                int parts = p ? atoi(p) : 1;
                int rf = r ? atoi(r) : (brokers < 3 ? brokers : 3);
                rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, name, parts, rf);
                if (err) {
                        fprintf(stderr, "topic %s: %s\n", name, rd_kafka_err2str(err));
                        return 1;
                }
                fprintf(stderr, "created topic %s partitions=%d rf=%d\n", name, parts, rf);
                free(spec);
        }

        int cfd = -1;
        if (ack_file) {
                unlink(ack_file);
                write_ack(ack_file); /* "0": nothing handled yet */
        }
        if (fifo) {
                unlink(fifo);
                if (mkfifo(fifo, 0600) != 0 || (cfd = open(fifo, O_RDWR | O_NONBLOCK)) < 0) {
                        perror("control fifo");
                        return 1;
                }
        }

        const char *bs = rd_kafka_mock_cluster_bootstraps(mc);
        if (bootstrap_file) {
                char tmp[4096];
                snprintf(tmp, sizeof(tmp), "%s.tmp", bootstrap_file);
                FILE *f = fopen(tmp, "w");
                if (!f || fprintf(f, "%s\n", bs) < 0 || fclose(f) != 0 ||
                    rename(tmp, bootstrap_file) != 0) {
                        perror("writing bootstrap file");
                        return 1;
                }
        }
        printf("BOOTSTRAP=%s\n", bs);
        fflush(stdout);

        signal(SIGINT, stop);
        signal(SIGTERM, stop);
        char cbuf[8192];
        size_t clen = 0;
        while (run) {
                usleep(20000);
                if (cfd < 0) continue;
                ssize_t r = read(cfd, cbuf + clen, sizeof(cbuf) - 1 - clen);
                if (r <= 0) continue;
                clen += (size_t)r;
                cbuf[clen] = '\0';
                char *nl, *start = cbuf;
                while ((nl = strchr(start, '\n'))) {
                        *nl = '\0';
                        handle_cmd(mc, start);
                        write_ack(ack_file);
                        start = nl + 1;
                }
                clen = strlen(start);
                memmove(cbuf, start, clen);
                if (clen >= sizeof(cbuf) - 1) clen = 0; /* overlong line: drop */
        }
        if (fifo) { close(cfd); unlink(fifo); }
        if (ack_file) unlink(ack_file);
        fprintf(stderr, "mock cluster stopping (signal)\n");
        fflush(stdout);
        fflush(stderr);
        /* Nothing to persist: skip rd_kafka_mock_cluster_destroy() and
         * rd_kafka_destroy(), which can take seconds to join their threads
         * when clients were connected.  The kernel closes the sockets. */
        (void)mc;
        (void)rk;
        _exit(0);
}
