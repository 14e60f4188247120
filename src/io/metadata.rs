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

use super::conn::{Connection, SocketBuffers, Transport};
use super::decide::jittered;
use super::IoShared;
use crate::config::{parse_host_port, MetadataRecoveryStrategy, ProducerConfig};
use crate::error::{Error, Result};
use crate::metadata::{Cluster, Work};
use crate::protocol::messages::metadata::{self, MetadataRequest, MetadataResponse};
use crate::util::{later, LogLimiter};

/// What a fetch brings back, apart from its connection.
pub(crate) struct FetchOutcome {
    pub(crate) result: Result<Cluster>,
    /// Where the rotation over known brokers stands after it.
    pub(crate) rotate: usize,
    /// The idempotent producer's id and epoch, if they were asked for
    /// (InitProducerId, sent after the metadata on the same connection).
    pub(crate) producer_id: Option<Result<(i64, i16)>>,
}

/// What a fetch thread hands back: the outcome and the connection to
/// reuse next time.
struct Fetched {
    outcome: FetchOutcome,
    conn: Option<Connection>,
}

/// A fetch the core wants started.
#[derive(Debug, Clone)]
pub(crate) struct FetchPlan {
    pub(crate) topics: Vec<String>,
    pub(crate) rotate: usize,
    /// Ask the bootstrap servers first, and not over the old connection
    /// (KIP-1102).
    pub(crate) rebootstrap_due: bool,
    /// Send InitProducerId after the metadata (idempotence, no id yet).
    pub(crate) need_id: bool,
}

/// A fetch in progress.
struct InFlight {
    topics: Vec<String>,
    started: Instant,
}

/// The sans-IO half of the metadata thread: when to refresh, whom to
/// ask, what a fetched view means (install it, retry after a backoff,
/// rebootstrap), the producer id, and expiry of the batches of partitions
/// no I/O thread leads. It owns no connection, thread or clock: the
/// driver ([`run`], or the simulation) waits on [`Metadata`] for work
/// until [`deadline`](Self::deadline), runs the fetch
/// [`next_fetch`](Self::next_fetch) plans, and hands its outcome to
/// [`fetched`](Self::fetched).
///
/// [`Metadata`]: crate::metadata::Metadata
pub(crate) struct MetadataCore {
    shared: Arc<IoShared>,
    /// When the connection last carried a fetch: it is closed after
    /// `connections.max.idle.ms` without one, as Java closes idle ones.
    conn_used: Instant,
    rotate: usize,
    failures: u32,
    not_before: Instant,
    fetching: Option<InFlight>,
    /// When fetches started failing (none since): KIP-1102's trigger
    /// counts from here.
    failing_since: Option<Instant>,
    /// Failed fetches, and recoveries (a flapping cluster recovers often).
    failure_log: LogLimiter,
    recovery_log: LogLimiter,
}

impl MetadataCore {
    pub(crate) fn new(shared: Arc<IoShared>, now: Instant) -> Self {
        MetadataCore {
            shared,
            conn_used: now,
            rotate: 0,
            failures: 0,
            not_before: now,
            fetching: None,
            failing_since: None,
            failure_log: LogLimiter::new(super::FAULT_LOG_INTERVAL),
            recovery_log: LogLimiter::new(super::FAULT_LOG_INTERVAL),
        }
    }

    /// No refresh starts before this (the backoff after a failure).
    pub(crate) fn not_before(&self) -> Instant {
        self.not_before
    }

    /// A fetch is in progress.
    pub(crate) fn fetching(&self) -> bool {
        self.fetching.is_some()
    }

    /// Until when the driver may wait for work, and whether the driver's
    /// connection (`has_conn`) has been idle long enough to be closed now.
    pub(crate) fn deadline(&self, now: Instant, has_conn: bool) -> (Instant, bool) {
        let cfg = &self.shared.cfg;
        let mut deadline = now + Duration::from_secs(1);
        if let (Some(last), None) = (self.shared.metadata.last_refresh(), &self.fetching) {
            // Stale metadata is fetched again once the backoff allows: while
            // a failed fetch backs off, waking at `last + max_age` (already
            // past) would spin.
            deadline = deadline.min(later(last, cfg.metadata_max_age).max(self.not_before));
        }
        let acc = &self.shared.accumulator;
        if let Some(t) = acc.next_expiry(&acc.unled_partitions()) {
            deadline = deadline.min(t);
        }
        let mut close = false;
        if let (true, Some(idle)) = (has_conn, cfg.connections_max_idle) {
            let at = later(self.conn_used, idle);
            if now >= at {
                close = true;
            } else {
                deadline = deadline.min(at);
            }
        }
        (deadline, close)
    }

    /// Batches of partitions an I/O thread leads expire on that thread;
    /// the others here. Runs while a fetch hangs too.
    pub(crate) fn expire(&self, now: Instant) {
        let acc = &self.shared.accumulator;
        acc.expire(&acc.unled_partitions(), now);
    }

    /// After `work` (not a fetch's end, not shutdown), with no fetch in
    /// progress: the fetch to start now, if one is due.
    pub(crate) fn next_fetch(&mut self, work: Work, now: Instant) -> Option<FetchPlan> {
        let shared = &self.shared;
        let cfg = &shared.cfg;
        let stale = shared
            .metadata
            .last_refresh()
            .is_some_and(|t| now >= later(t, cfg.metadata_max_age));
        if work != Work::Refresh && !(stale && now >= self.not_before) {
            return None;
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
            return None;
        }
        // No known broker has answered for
        // `metadata.recovery.rebootstrap.trigger.ms`: ask the bootstrap
        // servers first (KIP-1102), and not over the old connection.
        let rebootstrap_due = self
            .failing_since
            .is_some_and(|t| now.saturating_duration_since(t) >= cfg.rebootstrap_trigger);
        self.fetching = Some(InFlight {
            topics: topics.clone(),
            started: now,
        });
        Some(FetchPlan {
            topics,
            rotate: self.rotate,
            rebootstrap_due,
            need_id: shared.accumulator.wants_producer_id(),
        })
    }

    /// The fetch [`next_fetch`](Self::next_fetch) planned has ended.
    pub(crate) fn fetched(&mut self, done: FetchOutcome, now: Instant) {
        let Some(f) = self.fetching.take() else {
            return;
        };
        let (shared, cfg) = (&self.shared, &self.shared.cfg);
        self.conn_used = now;
        self.rotate = done.rotate;
        match done.result {
            Ok(mut fetched) => {
                if self.failures > 0 {
                    let (level, note) = self.recovery_log.level(log::Level::Info, now);
                    log::log!(
                        level,
                        "metadata fetched again after {} failed attempts{note}",
                        self.failures
                    );
                }
                self.failures = 0;
                self.failing_since = None;
                self.not_before = later(f.started, cfg.retry_backoff);
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
                        let (level, note) = self.failure_log.level(log::Level::Warn, now);
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
                self.failures += 1;
                self.failing_since.get_or_insert(f.started);
                self.not_before = later(
                    now,
                    jittered(cfg.retry_backoff, cfg.retry_backoff_max, self.failures - 1),
                );
                let (level, note) = self.failure_log.level(log::Level::Warn, now);
                log::log!(
                    level,
                    "metadata fetch failed ({} in a row): {e}{note}",
                    self.failures
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
    }
}

/// The thread's body: the driver of a [`MetadataCore`] with blocking
/// connections, each fetch on a thread of its own.
pub(crate) fn run(shared: Arc<IoShared>) {
    let mut core = MetadataCore::new(shared.clone(), crate::clock::now());
    let mut conn: Option<Connection> = None;
    let mut fetching: Option<crossbeam_channel::Receiver<Fetched>> = None;
    loop {
        let now = crate::clock::now();
        let (deadline, close) = core.deadline(now, conn.is_some());
        if close {
            if let Some(c) = conn.take() {
                // Nothing is in flight on it: a plain close.
                log::debug!("closing the idle metadata connection to {}", c.label);
            }
        }
        let work = shared
            .metadata
            .wait_for_work(deadline, core.not_before(), core.fetching());
        if work == Work::Shutdown {
            // A fetch still running ends on its own and hands its result
            // to no one; it holds no batch.
            return;
        }
        let now = crate::clock::now();
        core.expire(now);
        if let Some(rx) = &fetching {
            let done = match rx.try_recv() {
                Ok(done) => done,
                Err(crossbeam_channel::TryRecvError::Empty) => continue,
                Err(crossbeam_channel::TryRecvError::Disconnected) => Fetched {
                    outcome: FetchOutcome {
                        result: Err(Error::Protocol("the metadata fetch thread died".into())),
                        rotate: core.rotate,
                        producer_id: None,
                    },
                    conn: None,
                },
            };
            fetching = None;
            conn = done.conn;
            core.fetched(done.outcome, now);
            continue;
        }
        if let Some(plan) = core.next_fetch(work, now) {
            if plan.rebootstrap_due {
                conn = None;
            }
            fetching = Some(start_fetch(&shared, conn.take(), plan));
        }
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
    plan: FetchPlan,
) -> crossbeam_channel::Receiver<Fetched> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let cfg = shared.cfg.clone();
    let metadata = shared.metadata.clone();
    let known = metadata.cluster();
    let spawned = std::thread::Builder::new()
        .name(format!("{}-meta-fetch", cfg.client_id))
        .spawn(move || {
            let (mut conn, mut rotate) = (conn, plan.rotate);
            let result = fetch(
                &cfg,
                &known,
                &mut conn,
                &plan.topics,
                &mut rotate,
                plan.rebootstrap_due,
            );
            let producer_id = match (&result, conn.as_mut()) {
                (Ok(_), Some(c)) if plan.need_id => Some(init_producer_id(c, &cfg)),
                _ => None,
            };
            let _ = tx.send(Fetched {
                outcome: FetchOutcome {
                    result,
                    rotate,
                    producer_id,
                },
                conn,
            });
            metadata.fetch_finished();
        });
    if let Err(e) = spawned {
        // The receiver sees a dropped sender: the loop counts a failure.
        log::error!("cannot start a metadata fetch thread: {e}");
        shared.metadata.fetch_finished();
    }
    rx
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
pub(crate) fn candidates(
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
pub(crate) fn init_producer_id<S: Transport>(
    c: &mut Connection<S>,
    cfg: &ProducerConfig,
) -> Result<(i64, i16)> {
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

pub(crate) fn request<S: Transport>(
    c: &mut Connection<S>,
    topics: &[String],
    timeout: Duration,
) -> Result<Cluster> {
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
