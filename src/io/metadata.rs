//! The metadata thread: fetches metadata for the topics the producer uses,
//! publishes each snapshot (to the accumulator first, then to waiting
//! `send` calls), starts an I/O thread for every broker it learns of, and
//! expires batches that waited past `delivery.timeout.ms` in the
//! accumulator.
//!
//! It refreshes when asked (a new topic, a NOT_LEADER_OR_FOLLOWER, a lost
//! connection) and every `metadata.max.age.ms`, never more often than
//! `retry.backoff.ms` (growing exponentially to `retry.backoff.max.ms`
//! while fetches fail), so errors do not turn into a refresh storm. It asks
//! the brokers it knows first, in turn, then the bootstrap servers
//! (rebootstrap when every known broker is gone). Each fetch runs on a
//! short-lived thread of its own with a blocking connection
//! (`request.timeout.ms` as the deadline), so a hanging broker never holds
//! up expiry or shutdown here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::{Connection, SocketBuffers};
use super::decide::jittered;
use super::IoShared;
use crate::config::{parse_host_port, MetadataRecoveryStrategy, ProducerConfig};
use crate::error::{Error, Result};
use crate::metadata::{Cluster, Work};
use crate::protocol::messages::metadata::{self, MetadataRequest, MetadataResponse};
use crate::util::{later, LogLimiter};

/// What a fetch thread hands back: the view (or why not), the connection
/// to reuse next time, and where the rotation over known brokers stands.
struct Fetched {
    result: Result<Cluster>,
    conn: Option<Connection>,
    rotate: usize,
    /// The idempotent producer's id and epoch, if they were asked for
    /// (InitProducerId, sent after the metadata on the same connection).
    producer_id: Option<Result<(i64, i16)>>,
}

/// A fetch in progress on its own thread.
struct InFlight {
    rx: crossbeam_channel::Receiver<Fetched>,
    topics: Vec<String>,
    started: Instant,
}

/// The thread's body.
pub(crate) fn run(shared: Arc<IoShared>) {
    let cfg = shared.cfg.clone();
    let mut conn: Option<Connection> = None;
    // When the connection last carried a fetch: it is closed after
    // `connections.max.idle.ms` without one, as Java closes idle ones.
    let mut conn_used = Instant::now();
    let mut rotate = 0usize;
    let mut failures = 0u32;
    let mut not_before = Instant::now();
    let mut fetching: Option<InFlight> = None;
    // When fetches started failing (none since): KIP-1102's trigger counts
    // from here.
    let mut failing_since: Option<Instant> = None;
    // Failed fetches, and recoveries (a flapping cluster recovers often).
    let mut failure_log = LogLimiter::new(super::FAULT_LOG_INTERVAL);
    let mut recovery_log = LogLimiter::new(super::FAULT_LOG_INTERVAL);
    loop {
        let now = Instant::now();
        let mut deadline = now + Duration::from_secs(1);
        if let (Some(last), None) = (shared.metadata.last_refresh(), &fetching) {
            // Stale metadata is fetched again once the backoff allows: while
            // a failed fetch backs off, waking at `last + max_age` (already
            // past) would spin.
            deadline = deadline.min(later(last, cfg.metadata_max_age).max(not_before));
        }
        let unled = shared.accumulator.unled_partitions();
        if let Some(t) = shared.accumulator.next_expiry(&unled) {
            deadline = deadline.min(t);
        }
        if let (Some(c), Some(idle)) = (&conn, cfg.connections_max_idle) {
            let at = later(conn_used, idle);
            if now >= at {
                log::debug!("closing the idle metadata connection to {}", c.label);
                conn = None; // nothing is in flight on it: a plain close
            } else {
                deadline = deadline.min(at);
            }
        }
        let work = shared
            .metadata
            .wait_for_work(deadline, not_before, fetching.is_some());
        if work == Work::Shutdown {
            // A fetch still running ends on its own and hands its result
            // to no one; it holds no batch.
            return;
        }
        let now = Instant::now();
        // Batches of partitions an I/O thread leads expire on that thread.
        // This runs while a fetch hangs too: the fetch has its own thread.
        shared
            .accumulator
            .expire(&shared.accumulator.unled_partitions(), now);
        if let Some(f) = &fetching {
            let done = match f.rx.try_recv() {
                Ok(done) => done,
                Err(crossbeam_channel::TryRecvError::Empty) => continue,
                Err(crossbeam_channel::TryRecvError::Disconnected) => Fetched {
                    result: Err(Error::Protocol("the metadata fetch thread died".into())),
                    conn: None,
                    rotate,
                    producer_id: None,
                },
            };
            let f = fetching.take().expect("checked");
            conn = done.conn;
            conn_used = now;
            rotate = done.rotate;
            match done.result {
                Ok(mut fetched) => {
                    if failures > 0 {
                        let (level, note) = recovery_log.level(log::Level::Info, now);
                        log::log!(
                            level,
                            "metadata fetched again after {failures} failed attempts{note}"
                        );
                    }
                    failures = 0;
                    failing_since = None;
                    not_before = later(f.started, cfg.retry_backoff);
                    let installed = shared.install(
                        |current| {
                            // A broker behind on a leader change must not undo
                            // what a newer view or a leader hint taught us.
                            fetched.keep_newer_leaders(current);
                            Some(fetched)
                        },
                        Some(f.started),
                    );
                    // A topic still being created, or a partition without a
                    // leader: ask again after the backoff.
                    let incomplete = installed.is_some_and(|cluster| {
                        f.topics.iter().any(|t| {
                            cluster.partition_count_for_topic(t).is_none()
                                || cluster.available_partitions_for_topic(t).len()
                                    < cluster.partitions_for_topic(t).len()
                        })
                    });
                    match done.producer_id {
                        Some(Ok((id, epoch))) => {
                            log::info!("producer id {id}, epoch {epoch}");
                            shared.accumulator.set_producer_id(id, epoch);
                        }
                        Some(Err(e @ Error::Fatal(_))) => shared.accumulator.fail_fatally(e),
                        Some(Err(e)) => {
                            let (level, note) = failure_log.level(log::Level::Warn, now);
                            log::log!(level, "InitProducerId failed: {e}{note}");
                        }
                        None => {}
                    }
                    // Idempotence: no id yet, ask again after the backoff.
                    if incomplete || shared.accumulator.wants_producer_id() {
                        shared.metadata.request_update();
                    }
                }
                Err(e) => {
                    failures += 1;
                    failing_since.get_or_insert(f.started);
                    not_before = later(
                        now,
                        jittered(cfg.retry_backoff, cfg.retry_backoff_max, failures - 1),
                    );
                    let (level, note) = failure_log.level(log::Level::Warn, now);
                    log::log!(
                        level,
                        "metadata fetch failed ({failures} in a row): {e}{note}"
                    );
                    if let Error::Authentication { .. } = e {
                        // Fatal for what waits: records queued for
                        // partitions no broker leads yet fail with it too.
                        shared
                            .accumulator
                            .abort_queued(Some(&shared.accumulator.unled_partitions()), &e);
                        shared.metadata.failed_auth(e);
                    } else {
                        shared.metadata.failed(e.to_string());
                    }
                }
            }
            continue;
        }
        let stale = shared
            .metadata
            .last_refresh()
            .is_some_and(|t| now >= later(t, cfg.metadata_max_age));
        if work != Work::Refresh && !(stale && now >= not_before) {
            continue;
        }
        let idle = shared.accumulator.idle_topics(cfg.metadata_max_idle);
        if !idle.is_empty() {
            // Their next `send` registers them again (TopicQueues::registered).
            shared.metadata.remove_topics(&idle);
            // A send between `idle_topics` and `remove_topics` registered
            // one again and added it back, which `remove_topics` undid:
            // add those once more, or they would never be refreshed.
            for t in &idle {
                if shared
                    .accumulator
                    .topic_and_layout(t)
                    .is_some_and(|(q, _)| q.registered.load(std::sync::atomic::Ordering::Acquire))
                {
                    shared.metadata.add_topic(t);
                }
            }
        }
        let topics = shared.metadata.begin_refresh();
        if topics.is_empty() {
            // Nothing to ask for: count it as fresh, or the max-age check
            // would wake this loop at once, forever.
            shared.metadata.mark_refreshed(now);
            continue;
        }
        // No known broker has answered for
        // `metadata.recovery.rebootstrap.trigger.ms`: ask the bootstrap
        // servers first (KIP-1102), and not over the old connection.
        let rebootstrap_due = failing_since
            .is_some_and(|t| now.saturating_duration_since(t) >= cfg.rebootstrap_trigger);
        if rebootstrap_due {
            conn = None;
        }
        fetching = Some(start_fetch(
            &shared,
            conn.take(),
            topics.clone(),
            rotate,
            rebootstrap_due,
            now,
        ));
    }
}

/// Runs one fetch on a thread of its own, so that a hanging broker (DNS,
/// connect, ApiVersions, the request itself: up to
/// `socket.connection.setup.timeout.ms` plus `request.timeout.ms` per
/// candidate) never holds up the metadata thread's expiry and shutdown.
/// The thread is not joined: it holds no batch, and a result nobody waits
/// for any more is dropped with its connection.
fn start_fetch(
    shared: &IoShared,
    conn: Option<Connection>,
    topics: Vec<String>,
    rotate: usize,
    rebootstrap_due: bool,
    now: Instant,
) -> InFlight {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let cfg = shared.cfg.clone();
    let metadata = shared.metadata.clone();
    let known = metadata.cluster();
    let asked = topics.clone();
    let need_id = shared.accumulator.wants_producer_id();
    let spawned = std::thread::Builder::new()
        .name(format!("{}-meta-fetch", cfg.client_id))
        .spawn(move || {
            let (mut conn, mut rotate) = (conn, rotate);
            let result = fetch(
                &cfg,
                &known,
                &mut conn,
                &asked,
                &mut rotate,
                rebootstrap_due,
            );
            let producer_id = match (&result, conn.as_mut()) {
                (Ok(_), Some(c)) if need_id => Some(init_producer_id(c, &cfg)),
                _ => None,
            };
            let _ = tx.send(Fetched {
                result,
                conn,
                rotate,
                producer_id,
            });
            metadata.fetch_finished();
        });
    if let Err(e) = spawned {
        // The receiver sees a dropped sender: the loop counts a failure.
        log::error!("cannot start a metadata fetch thread: {e}");
        shared.metadata.fetch_finished();
    }
    InFlight {
        rx,
        topics,
        started: now,
    }
}

/// Fetches metadata for `topics`: over the open connection if there is
/// one, else from the known brokers in turn, else from the bootstrap list.
fn fetch(
    cfg: &ProducerConfig,
    known: &Cluster,
    conn: &mut Option<Connection>,
    topics: &[String],
    rotate: &mut usize,
    rebootstrap_due: bool,
) -> Result<Cluster> {
    if let Some(c) = conn.as_mut() {
        let renewed = c.renew_if_due(cfg.sasl(), cfg.request_timeout);
        match renewed.and_then(|()| request(c, topics, cfg.request_timeout)) {
            Ok(cluster) => return Ok(cluster),
            Err(e) => {
                log::debug!("metadata over {}: {e}", c.label);
                *conn = None;
            }
        }
    }
    let mut last = None;
    let candidates = candidates(cfg, known, rotate, rebootstrap_due)?;
    for (label, host, port) in candidates {
        let opened = Connection::open(
            label,
            &host,
            port,
            &cfg.client_id,
            cfg.connection_setup_timeout,
            cfg.request_timeout,
            SocketBuffers::of(cfg),
            cfg.tls.as_deref(),
            cfg.sasl(),
        );
        match opened.and_then(|mut c| request(&mut c, topics, cfg.request_timeout).map(|r| (c, r)))
        {
            Ok((c, cluster)) => {
                *conn = Some(c);
                return Ok(cluster);
            }
            // The same TLS or SASL settings would fail with every broker.
            Err(e @ Error::Authentication { .. }) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Network {
        broker: "bootstrap.servers".into(),
        message: "no broker to ask for metadata".into(),
    }))
}

/// Whom to ask for metadata, in order (after the open connection, if
/// any): the known brokers, starting one further each time so that a dead
/// one is not always tried first, then the bootstrap servers: before the
/// first metadata, and with `metadata.recovery.strategy=rebootstrap`
/// (Kafka 4's default) once no known broker answers. When fetches have
/// failed for `metadata.recovery.rebootstrap.trigger.ms`
/// (`rebootstrap_due`), the bootstrap servers come first.
fn candidates(
    cfg: &ProducerConfig,
    known: &Cluster,
    rotate: &mut usize,
    rebootstrap_due: bool,
) -> Result<Vec<(String, String, u16)>> {
    let mut nodes: Vec<(String, String, u16)> = known
        .nodes()
        .map(|n| (format!("node {n}"), n.host.clone(), n.port))
        .collect();
    if !nodes.is_empty() {
        let k = *rotate % nodes.len();
        nodes.rotate_left(k);
        *rotate += 1;
    }
    let rebootstrap = cfg.metadata_recovery == MetadataRecoveryStrategy::Rebootstrap;
    if !nodes.is_empty() && !rebootstrap {
        return Ok(nodes);
    }
    let mut bootstrap = Vec::with_capacity(cfg.bootstrap_servers.len());
    for s in &cfg.bootstrap_servers {
        let (host, port) = parse_host_port(s)?;
        bootstrap.push((format!("bootstrap {s}"), host, port));
    }
    Ok(if rebootstrap_due {
        bootstrap.into_iter().chain(nodes).collect()
    } else {
        nodes.into_iter().chain(bootstrap).collect()
    })
}

/// Asks for an idempotent producer's id and epoch (InitProducerId with no
/// transactional id; any broker answers it). A broker without the API, or
/// a refusal that no retry mends (not authorized, say), is
/// [`Error::Fatal`]: the producer cannot be idempotent.
fn init_producer_id(c: &mut Connection, cfg: &ProducerConfig) -> Result<(i64, i16)> {
    use crate::protocol::messages::init_producer_id::{
        InitProducerIdRequest, InitProducerIdResponse, API,
    };
    use crate::protocol::ErrorCode;
    let v = c.version_for(&API).map_err(|e| match e {
        Error::UnsupportedVersion { .. } => Error::Fatal(format!(
            "the idempotent producer needs InitProducerId: {e} (set enable.idempotence=false \
             for this broker)"
        )),
        e => e,
    })?;
    let req = InitProducerIdRequest {
        transactional_id: None,
        transaction_timeout_ms: cfg.transaction_timeout.as_millis().min(i32::MAX as u128) as i32,
        producer_id: -1,
        producer_epoch: -1,
    };
    let body = c.request(
        &API,
        v,
        |b| req.encode(b, v),
        later(Instant::now(), cfg.request_timeout),
    )?;
    let resp = InitProducerIdResponse::decode(&body, v)
        .map_err(|e| Error::Protocol(format!("InitProducerId v{v} from {}: {e}", c.label)))?;
    c.throttled(resp.throttle_time_ms);
    let code = ErrorCode(resp.error_code);
    if !code.is_ok() {
        let why = format!("InitProducerId v{v} to {} failed with {code}", c.label);
        return Err(if code.is_retriable() {
            Error::Protocol(why)
        } else {
            Error::Fatal(why)
        });
    }
    Ok((resp.producer_id, resp.producer_epoch))
}

fn request(c: &mut Connection, topics: &[String], timeout: Duration) -> Result<Cluster> {
    let v = c.version_for(&metadata::API)?;
    let req = MetadataRequest {
        topics: Some(topics.to_vec()),
        allow_auto_topic_creation: true,
    };
    let body = c.request(
        &metadata::API,
        v,
        |b| req.encode(b, v),
        later(Instant::now(), timeout),
    )?;
    let resp = MetadataResponse::decode(&body, v)
        .map_err(|e| Error::Protocol(format!("Metadata v{v} from {}: {e}", c.label)))?;
    c.throttled(resp.throttle_time_ms);
    Ok(Cluster::from_response(&resp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::metadata::MetadataBroker;

    fn labels(cfg: &ProducerConfig, known: &Cluster, rotate: &mut usize, due: bool) -> Vec<String> {
        candidates(cfg, known, rotate, due)
            .unwrap()
            .into_iter()
            .map(|c| c.0)
            .collect()
    }

    #[test]
    fn metadata_is_asked_of_known_brokers_then_bootstrap_as_the_strategy_says() {
        let cfg = ProducerConfig::new().bootstrap_servers("b1:1,b2:2");
        let none = cfg
            .clone()
            .metadata_recovery_strategy(MetadataRecoveryStrategy::None);
        let empty = Cluster::default();
        let known = Cluster::from_response(&MetadataResponse {
            brokers: (1..=2)
                .map(|id| MetadataBroker {
                    node_id: id,
                    host: format!("n{id}"),
                    port: 9092,
                    rack: None,
                })
                .collect(),
            ..Default::default()
        });
        let (n1, n2) = ("node 1 (n1:9092)", "node 2 (n2:9092)");
        let (b1, b2) = ("bootstrap b1:1", "bootstrap b2:2");
        let mut r = 0;
        // Before the first metadata, whatever the strategy: bootstrap.
        assert_eq!(labels(&cfg, &empty, &mut r, false), [b1, b2]);
        assert_eq!(labels(&none, &empty, &mut r, false), [b1, b2]);
        // Known brokers first, one further each time, then rebootstrap.
        let mut r = 0;
        assert_eq!(labels(&cfg, &known, &mut r, false), [n1, n2, b1, b2]);
        assert_eq!(labels(&cfg, &known, &mut r, false), [n2, n1, b1, b2]);
        // Failing for the trigger interval: bootstrap first.
        assert_eq!(labels(&cfg, &known, &mut r, true), [b1, b2, n1, n2]);
        // `none` never goes back to bootstrap once it knows brokers.
        assert_eq!(labels(&none, &known, &mut r, true), [n2, n1]);
    }
}
