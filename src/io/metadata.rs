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
//! (rebootstrap when every known broker is gone). Its connection is
//! blocking, with `request.timeout.ms` as the deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::broker::jittered;
use super::conn::{Connection, SocketBuffers};
use super::IoShared;
use crate::config::parse_host_port;
use crate::error::{Error, Result};
use crate::metadata::{Cluster, Work};
use crate::protocol::messages::metadata::{self, MetadataRequest, MetadataResponse};
use crate::util::{later, LogLimiter};

/// The thread's body.
pub(crate) fn run(shared: Arc<IoShared>) {
    let cfg = shared.cfg.clone();
    let mut conn: Option<Connection> = None;
    let mut rotate = 0usize;
    let mut failures = 0u32;
    let mut not_before = Instant::now();
    // Failed fetches, and recoveries (a flapping cluster recovers often).
    let mut failure_log = LogLimiter::new(super::FAULT_LOG_INTERVAL);
    let mut recovery_log = LogLimiter::new(super::FAULT_LOG_INTERVAL);
    loop {
        let now = Instant::now();
        let mut deadline = now + Duration::from_secs(1);
        if let Some(last) = shared.metadata.last_refresh() {
            // Stale metadata is fetched again once the backoff allows: while
            // a failed fetch backs off, waking at `last + max_age` (already
            // past) would spin.
            deadline = deadline.min(later(last, cfg.metadata_max_age).max(not_before));
        }
        let unled = shared.accumulator.unled_partitions();
        if let Some(t) = shared.accumulator.next_expiry(&unled) {
            deadline = deadline.min(t);
        }
        let work = shared.metadata.wait_for_work(deadline, not_before);
        if work == Work::Shutdown {
            return;
        }
        let now = Instant::now();
        // Batches of partitions an I/O thread leads expire on that thread.
        shared
            .accumulator
            .expire(&shared.accumulator.unled_partitions(), now);
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
                    .topic(t)
                    .is_some_and(|q| q.registered.load(std::sync::atomic::Ordering::Acquire))
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
        match fetch(&shared, &mut conn, &topics, &mut rotate) {
            Ok(mut fetched) => {
                if failures > 0 {
                    let (level, note) = recovery_log.level(log::Level::Info, Instant::now());
                    log::log!(
                        level,
                        "metadata fetched again after {failures} failed attempts{note}"
                    );
                }
                failures = 0;
                not_before = later(now, cfg.retry_backoff);
                let installed = shared.install(
                    |current| {
                        // A broker behind on a leader change must not undo
                        // what a newer view or a leader hint taught us.
                        fetched.keep_newer_leaders(current);
                        Some(fetched)
                    },
                    Some(now),
                );
                // A topic still being created, or a partition without a
                // leader: ask again after the backoff.
                let incomplete = installed.is_some_and(|cluster| {
                    topics.iter().any(|t| {
                        cluster.partition_count_for_topic(t).is_none()
                            || cluster.available_partitions_for_topic(t).len()
                                < cluster.partitions_for_topic(t).len()
                    })
                });
                if incomplete {
                    shared.metadata.request_update();
                }
            }
            Err(e) => {
                failures += 1;
                not_before = later(
                    now,
                    jittered(cfg.retry_backoff, cfg.retry_backoff_max, failures - 1),
                );
                let (level, note) = failure_log.level(log::Level::Warn, Instant::now());
                log::log!(
                    level,
                    "metadata fetch failed ({failures} in a row): {e}{note}"
                );
                shared.metadata.failed(e.to_string());
            }
        }
    }
}

/// Fetches metadata for `topics`: over the open connection if there is
/// one, else from the known brokers in turn, else from the bootstrap list.
fn fetch(
    shared: &IoShared,
    conn: &mut Option<Connection>,
    topics: &[String],
    rotate: &mut usize,
) -> Result<Cluster> {
    let cfg = &shared.cfg;
    if let Some(c) = conn.as_mut() {
        match request(c, topics, cfg.request_timeout) {
            Ok(cluster) => return Ok(cluster),
            Err(e) => {
                log::debug!("metadata over {}: {e}", c.label);
                *conn = None;
            }
        }
    }
    let known = shared.metadata.cluster();
    let mut candidates: Vec<(String, String, u16)> = known
        .nodes()
        .map(|n| (format!("node {n}"), n.host.clone(), n.port))
        .collect();
    if !candidates.is_empty() {
        let k = *rotate % candidates.len();
        candidates.rotate_left(k);
        *rotate += 1;
    }
    for s in &cfg.bootstrap_servers {
        let (host, port) = parse_host_port(s)?;
        candidates.push((format!("bootstrap {s}"), host, port));
    }
    let mut last = None;
    for (label, host, port) in candidates {
        let opened = Connection::open(
            label,
            &host,
            port,
            &cfg.client_id,
            cfg.connection_setup_timeout,
            cfg.request_timeout,
            SocketBuffers::of(cfg),
        );
        match opened.and_then(|mut c| request(&mut c, topics, cfg.request_timeout).map(|r| (c, r)))
        {
            Ok((c, cluster)) => {
                *conn = Some(c);
                return Ok(cluster);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Network {
        broker: "bootstrap.servers".into(),
        message: "no broker to ask for metadata".into(),
    }))
}

fn request(c: &mut Connection, topics: &[String], timeout: Duration) -> Result<Cluster> {
    let v = c.version_for(metadata::API_KEY, "Metadata")?;
    let req = MetadataRequest {
        topics: Some(topics.to_vec()),
        allow_auto_topic_creation: true,
    };
    let body = c.request(
        metadata::API_KEY,
        v,
        |b| req.encode(b, v),
        later(Instant::now(), timeout),
    )?;
    let resp = MetadataResponse::decode(&body, v)
        .map_err(|e| Error::Protocol(format!("Metadata v{v} from {}: {e}", c.label)))?;
    Ok(Cluster::from_response(&resp))
}
