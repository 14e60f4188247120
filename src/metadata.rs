//! Cluster metadata: the [`Cluster`] snapshot (brokers, topics, partitions,
//! leaders) and the shared [`Metadata`] state through which `send` waits for
//! topics and the metadata thread publishes new snapshots.
//!
//! Owns no sockets: `io/metadata.rs` fetches, this module holds and hands
//! out. A snapshot is immutable once published; readers clone an `Arc` under
//! a short read lock, so a refresh never blocks a `send` for longer than a
//! pointer swap.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::lifecycle::Lifecycle;
use crate::protocol::messages::metadata::{MetadataPartition, MetadataResponse};
use crate::protocol::ErrorCode;
use crate::record::PartitionInfo;

/// A broker, as metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Node id.
    pub id: i32,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Rack, if the broker has one.
    pub rack: Option<String>,
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}:{})", self.id, self.host, self.port)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TopicMetadata {
    pub(crate) error: ErrorCode,
    /// Indexed by partition id: `partitions[p].partition == p`.
    pub(crate) partitions: Vec<PartitionInfo>,
    /// Partitions that have a leader, ascending.
    pub(crate) available: Vec<i32>,
    /// Leader epoch by partition id (Metadata v7+); -1, or missing, when
    /// unknown.
    pub(crate) epochs: Vec<i32>,
}

impl TopicMetadata {
    /// The leader epoch of partition `p`, -1 if unknown.
    pub(crate) fn epoch(&self, p: usize) -> i32 {
        self.epochs.get(p).copied().unwrap_or(-1)
    }

    /// Records partition `p`'s leader epoch (the vector grows to hold it).
    fn set_epoch(&mut self, p: usize, epoch: i32) {
        if self.epochs.len() <= p {
            self.epochs.resize(p + 1, -1);
        }
        self.epochs[p] = epoch;
    }

    fn recompute_available(&mut self) {
        self.available = self
            .partitions
            .iter()
            .filter(|p| p.leader.is_some())
            .map(|p| p.partition)
            .collect();
    }
}

/// A leader named by a broker in a Produce response (KIP-951): the
/// partition's new leader and its epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaderHint {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) leader: i32,
    pub(crate) epoch: i32,
}

/// An immutable view of the cluster: what a custom [`crate::Partitioner`]
/// sees (Java's `Cluster`).
///
/// ```
/// use kafka_producer::{Cluster, Partitioner};
///
/// /// Every record to the last partition that has a leader.
/// struct Last;
///
/// impl Partitioner for Last {
///     fn partition(&self, topic: &str, _: Option<&[u8]>, _: Option<&[u8]>, c: &Cluster) -> i32 {
///         match c.available_partitions_for_topic(topic).last() {
///             Some(&p) => p,
///             None => c.partition_count_for_topic(topic).map_or(0, |n| n as i32 - 1),
///         }
///     }
/// }
///
/// assert_eq!(Last.partition("t", None, None, &Cluster::default()), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub(crate) brokers: BTreeMap<i32, Node>,
    pub(crate) topics: HashMap<String, TopicMetadata>,
    pub(crate) cluster_id: Option<String>,
}

impl Cluster {
    /// The brokers that lead at least one partition of a topic in this
    /// view, ascending: the only ones that get an I/O thread.
    pub(crate) fn leaders(&self) -> std::collections::BTreeSet<i32> {
        self.topics
            .values()
            .flat_map(|t| t.partitions.iter().filter_map(|p| p.leader))
            .filter(|id| self.brokers.contains_key(id))
            .collect()
    }

    /// The number of partitions of `topic`, if metadata knows the topic.
    pub fn partition_count_for_topic(&self, topic: &str) -> Option<usize> {
        self.topics
            .get(topic)
            .filter(|t| !t.partitions.is_empty())
            .map(|t| t.partitions.len())
    }

    /// Every partition of `topic`, by partition id (empty if unknown).
    pub fn partitions_for_topic(&self, topic: &str) -> &[PartitionInfo] {
        self.topics
            .get(topic)
            .map(|t| &t.partitions[..])
            .unwrap_or(&[])
    }

    /// The partitions of `topic` that have a leader now, ascending.
    pub fn available_partitions_for_topic(&self, topic: &str) -> &[i32] {
        self.topics
            .get(topic)
            .map(|t| &t.available[..])
            .unwrap_or(&[])
    }

    /// The leader of a partition, if it has one.
    pub fn leader_for(&self, topic: &str, partition: i32) -> Option<&Node> {
        let p = self
            .topics
            .get(topic)?
            .partitions
            .get(usize::try_from(partition).ok()?)?;
        self.brokers.get(&p.leader?)
    }

    /// The brokers.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.brokers.values()
    }

    /// A broker by id.
    pub fn node(&self, id: i32) -> Option<&Node> {
        self.brokers.get(&id)
    }

    /// The cluster id (Metadata v2+).
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    pub(crate) fn topic_error(&self, topic: &str) -> Option<ErrorCode> {
        self.topics
            .get(topic)
            .map(|t| t.error)
            .filter(|e| !e.is_ok())
    }

    /// Builds a snapshot from a Metadata response. Topics with gaps in
    /// their partition ids are kept with their partitions sorted and the
    /// gaps filled as leaderless, so that `partitions[p].partition == p`.
    pub(crate) fn from_response(r: &MetadataResponse) -> Cluster {
        let brokers = r
            .brokers
            .iter()
            .filter_map(|b| {
                Some((
                    b.node_id,
                    Node {
                        id: b.node_id,
                        host: b.host.clone(),
                        port: u16::try_from(b.port).ok()?,
                        rack: b.rack.clone(),
                    },
                ))
            })
            .collect::<BTreeMap<_, _>>();
        let mut topics = HashMap::with_capacity(r.topics.len());
        for t in &r.topics {
            let Some(name) = &t.name else { continue };
            // Partition ids are 0..n. A response with gaps is tolerated
            // (the gaps become leaderless), but an id far beyond the number
            // of partitions listed is hostile or corrupt: it would make us
            // allocate that many queues. Such entries are dropped.
            let limit = 2 * t.partitions.len() + 16;
            let in_range = |p: &&MetadataPartition| {
                usize::try_from(p.partition_index).is_ok_and(|i| i < limit)
            };
            if t.partitions.iter().any(|p| !in_range(&p)) {
                log::warn!("metadata for {name} has partition ids out of range; ignoring them");
            }
            let count = t
                .partitions
                .iter()
                .filter(in_range)
                .map(|p| p.partition_index as usize + 1)
                .max()
                .unwrap_or(0);
            let mut epochs = vec![-1; count];
            let mut partitions: Vec<PartitionInfo> = (0..count as i32)
                .map(|p| PartitionInfo {
                    topic: name.clone(),
                    partition: p,
                    leader: None,
                    replicas: Vec::new(),
                    in_sync_replicas: Vec::new(),
                    offline_replicas: Vec::new(),
                })
                .collect();
            for p in t.partitions.iter().filter(in_range) {
                let slot = &mut partitions[p.partition_index as usize];
                slot.leader =
                    (p.leader_id >= 0 && brokers.contains_key(&p.leader_id)).then_some(p.leader_id);
                slot.replicas = p.replica_nodes.clone();
                slot.in_sync_replicas = p.isr_nodes.clone();
                slot.offline_replicas = p.offline_replicas.clone();
                epochs[p.partition_index as usize] = p.leader_epoch;
            }
            let mut tm = TopicMetadata {
                error: ErrorCode(t.error_code),
                partitions,
                available: Vec::new(),
                epochs,
            };
            tm.recompute_available();
            topics.insert(name.clone(), tm);
        }
        Cluster {
            brokers,
            topics,
            cluster_id: r.cluster_id.clone(),
        }
    }
}

impl Cluster {
    /// Keeps what `old` knows of a partition's leader where this (newer)
    /// view is staler: both carry a leader epoch and this one's is lower. A
    /// broker that has not yet heard of a leader change answers Metadata
    /// with the old leader; Java ignores such partitions too
    /// (`Metadata.updateLatestMetadata`). The kept leader must still be a
    /// broker of this view, else the partition is leaderless until a view
    /// at least as new arrives. Returns how many partitions were kept.
    pub(crate) fn keep_newer_leaders(&mut self, old: &Cluster) -> usize {
        let mut kept = 0;
        for (name, tm) in &mut self.topics {
            let Some(prev) = old.topics.get(name) else {
                continue;
            };
            let mut changed = false;
            for p in 0..tm.partitions.len().min(prev.partitions.len()) {
                let (new, known) = (tm.epoch(p), prev.epoch(p));
                if new < 0 || known <= new {
                    continue;
                }
                let leader = prev.partitions[p]
                    .leader
                    .filter(|l| self.brokers.contains_key(l));
                log::debug!(
                    "metadata names leader epoch {new} for {name}-{p}, older than the known {known}; \
                     keeping leader {leader:?}"
                );
                let slot = &mut tm.partitions[p];
                slot.leader = leader;
                slot.replicas.clone_from(&prev.partitions[p].replicas);
                slot.in_sync_replicas
                    .clone_from(&prev.partitions[p].in_sync_replicas);
                slot.offline_replicas
                    .clone_from(&prev.partitions[p].offline_replicas);
                tm.set_epoch(p, known);
                changed = true;
                kept += 1;
            }
            if changed {
                tm.recompute_available();
            }
        }
        kept
    }

    /// This view with the leaders that Produce responses named (KIP-951)
    /// applied, or `None` if none of them is news. A hint counts when its
    /// epoch is newer than the one known for the partition (or none is
    /// known) and its leader can be reached: an endpoint in the same
    /// response, or a broker of this view. Endpoints replace what this view
    /// knew of those brokers.
    pub(crate) fn with_leader_hints(
        &self,
        hints: &[LeaderHint],
        endpoints: &[crate::protocol::messages::produce::NodeEndpoint],
    ) -> Option<Cluster> {
        let mut next: Option<Cluster> = None;
        for h in hints {
            let cur = next.as_ref().unwrap_or(self);
            let Some(tm) = cur.topics.get(&*h.topic) else {
                continue;
            };
            let Ok(p) = usize::try_from(h.partition) else {
                continue;
            };
            if h.leader < 0 || h.epoch < 0 || p >= tm.partitions.len() {
                continue;
            }
            let known = tm.epoch(p);
            if known >= 0 && h.epoch <= known {
                continue;
            }
            let endpoint = endpoints.iter().find(|e| e.node_id == h.leader);
            let node = match endpoint {
                Some(e) => match u16::try_from(e.port) {
                    Ok(port) => Node {
                        id: e.node_id,
                        host: e.host.clone(),
                        port,
                        rack: e.rack.clone(),
                    },
                    Err(_) => continue,
                },
                None => match cur.brokers.get(&h.leader) {
                    Some(n) => n.clone(),
                    None => continue,
                },
            };
            let c = next.get_or_insert_with(|| self.clone());
            c.brokers.insert(node.id, node);
            let tm = c.topics.get_mut(&*h.topic).expect("checked above");
            tm.partitions[p].leader = Some(h.leader);
            tm.set_epoch(p, h.epoch);
            tm.recompute_available();
        }
        next
    }
}

/// What the metadata thread should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    /// Fetch metadata now.
    Refresh,
    /// Nothing asked for; do periodic chores.
    Tick,
    /// The fetch running on its own thread has finished.
    Fetched,
    /// The producer is stopped: the thread exits.
    Shutdown,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped on every publish.
    version: u64,
    /// Topics the producer sends to.
    topics: HashSet<String>,
    /// A refresh was asked for (new topic, stale leader, error).
    need_update: bool,
    /// Set by the fetch thread when its result is ready.
    fetch_done: bool,
    /// Why the last fetch failed, for timeout messages.
    last_error: Option<String>,
    /// The last fetch failed to authenticate (TLS refused): `send` and
    /// `partitions_for` fail with this at once until a fetch succeeds.
    auth_error: Option<crate::error::Error>,
    last_refresh: Option<Instant>,
}

/// The shared metadata state.
///
/// Lock order: `inner` is never held while taking another lock of this
/// crate; `cluster` is a leaf.
#[derive(Debug)]
pub(crate) struct Metadata {
    cluster: RwLock<Arc<Cluster>>,
    inner: Mutex<Inner>,
    /// `inner.version`, stored under `inner` as it is bumped: read by every
    /// `send` without the lock (with several sending threads the lock was
    /// a convoy). A reader that sees a version has also seen what was
    /// published before it (Release/Acquire), as under the lock.
    version: AtomicU64,
    /// Signalled on publish and stop: `send` and `partitions_for` wait here.
    updated: Condvar,
    /// Signalled when work arrives for the metadata thread, and on stop.
    requested: Condvar,
    /// Stopped: waiters return and the metadata thread exits. Both check it
    /// under `inner`, which [`wake_all`](Self::wake_all) takes after the
    /// move.
    lifecycle: Arc<Lifecycle>,
}

impl Metadata {
    pub(crate) fn new(lifecycle: Arc<Lifecycle>) -> Self {
        Metadata {
            cluster: RwLock::default(),
            inner: Mutex::default(),
            version: AtomicU64::new(0),
            updated: Condvar::new(),
            requested: Condvar::new(),
            lifecycle,
        }
    }

    /// The current snapshot.
    pub(crate) fn cluster(&self) -> Arc<Cluster> {
        self.cluster.read().clone()
    }

    /// The number of snapshots published so far.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Adds a topic of interest; asks for a refresh if it is new.
    pub(crate) fn add_topic(&self, topic: &str) {
        let mut g = self.inner.lock();
        if !g.topics.contains(topic) {
            g.topics.insert(topic.to_owned());
            g.need_update = true;
            self.requested.notify_all();
        }
    }

    /// Asks the metadata thread for a refresh.
    pub(crate) fn request_update(&self) {
        let mut g = self.inner.lock();
        if !g.need_update {
            g.need_update = true;
            self.requested.notify_all();
        }
    }

    /// Waits until a snapshot newer than `seen_version` is published, the
    /// producer stops, or `deadline` passes. Returns the current version.
    pub(crate) fn await_update(&self, seen_version: u64, deadline: Instant) -> u64 {
        let mut g = self.inner.lock();
        while g.version == seen_version && g.auth_error.is_none() && !self.lifecycle.is_stopped() {
            if self.updated.wait_until(&mut g, deadline).timed_out() {
                break;
            }
        }
        g.version
    }

    /// The authentication error of the last fetch, if it failed so.
    pub(crate) fn auth_error(&self) -> Option<crate::error::Error> {
        self.inner.lock().auth_error.clone()
    }

    /// Why the last fetch failed, if it did.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.inner.lock().last_error.clone()
    }

    /// For `Io::stop`, after the move to `Stopped`: wakes the metadata
    /// thread (which then exits) and every `await_update`. Both check the
    /// phase under the lock taken here, so each either saw `Stopped` or is
    /// waiting now.
    pub(crate) fn wake_all(&self) {
        let _g = self.inner.lock();
        self.requested.notify_all();
        self.updated.notify_all();
    }

    /// For the metadata thread: waits for work until `deadline`. A refresh
    /// is not started before `not_before` (the backoff after a failure, so
    /// that repeated requests do not become a refresh storm), nor while
    /// `fetching` (a request then waits for the fetch in progress to end).
    pub(crate) fn wait_for_work(
        &self,
        deadline: Instant,
        not_before: Instant,
        fetching: bool,
    ) -> Work {
        let mut g = self.inner.lock();
        loop {
            let now = crate::clock::now();
            if let Some(work) = self.work_locked(&mut g, now, deadline, not_before, fetching) {
                return work;
            }
            let refresh = g.need_update && !fetching;
            let until = if refresh {
                deadline.min(not_before)
            } else {
                deadline
            };
            self.requested.wait_until(&mut g, until);
        }
    }

    /// [`wait_for_work`](Self::wait_for_work) without the wait, for a
    /// driver with its own clock (the simulation): the work due at `now`,
    /// if any.
    #[cfg(feature = "mock")]
    pub(crate) fn poll_work(
        &self,
        now: Instant,
        deadline: Instant,
        not_before: Instant,
        fetching: bool,
    ) -> Option<Work> {
        self.work_locked(&mut self.inner.lock(), now, deadline, not_before, fetching)
    }

    fn work_locked(
        &self,
        g: &mut Inner,
        now: Instant,
        deadline: Instant,
        not_before: Instant,
        fetching: bool,
    ) -> Option<Work> {
        if self.lifecycle.is_stopped() {
            return Some(Work::Shutdown);
        }
        if g.fetch_done {
            g.fetch_done = false;
            return Some(Work::Fetched);
        }
        if g.need_update && !fetching && now >= not_before {
            return Some(Work::Refresh);
        }
        (now >= deadline).then_some(Work::Tick)
    }

    /// For the fetch thread: its result is ready; wakes the metadata thread.
    pub(crate) fn fetch_finished(&self) {
        let mut g = self.inner.lock();
        g.fetch_done = true;
        self.requested.notify_all();
    }

    /// For the metadata thread: the topics to ask for; clears the request
    /// flag (a request arriving during the fetch sets it again).
    pub(crate) fn begin_refresh(&self) -> Vec<String> {
        let mut g = self.inner.lock();
        g.need_update = false;
        g.topics.iter().cloned().collect()
    }

    /// For the metadata thread: forgets topics not used for
    /// `metadata.max.idle.ms`.
    pub(crate) fn remove_topics(&self, idle: &[String]) {
        let mut g = self.inner.lock();
        for t in idle {
            g.topics.remove(t);
        }
    }

    /// When the last successful refresh happened.
    pub(crate) fn last_refresh(&self) -> Option<Instant> {
        self.inner.lock().last_refresh
    }

    /// Publishes a new snapshot and wakes waiters. `fetched` is when the
    /// metadata thread fetched it; `None` for a view patched with leader
    /// hints, which neither makes the view fresh nor clears a fetch error.
    pub(crate) fn publish(&self, cluster: Arc<Cluster>, fetched: Option<Instant>) {
        *self.cluster.write() = cluster;
        let mut g = self.inner.lock();
        g.version += 1;
        self.version.store(g.version, Ordering::Release);
        if let Some(now) = fetched {
            g.last_error = None;
            g.auth_error = None;
            g.last_refresh = Some(now);
        }
        self.updated.notify_all();
    }

    /// For the metadata thread: nothing needed fetching; the view counts as
    /// fresh until `metadata.max.age.ms` from now.
    pub(crate) fn mark_refreshed(&self, now: Instant) {
        self.inner.lock().last_refresh = Some(now);
    }

    /// For the metadata thread: records a failed fetch and asks again.
    pub(crate) fn failed(&self, why: String) {
        let mut g = self.inner.lock();
        g.last_error = Some(why);
        g.need_update = true;
    }

    /// For the metadata thread: the fetch failed to authenticate. As
    /// Java's `AuthenticationException`, it fails the `send` and
    /// `partitions_for` calls waiting for metadata now, and those that
    /// come until a fetch succeeds, instead of letting them wait for
    /// `max.block.ms`.
    pub(crate) fn failed_auth(&self, e: crate::error::Error) {
        let mut g = self.inner.lock();
        g.last_error = Some(e.to_string());
        g.auth_error = Some(e);
        g.need_update = true;
        self.updated.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::metadata::{MetadataBroker, MetadataPartition, MetadataTopic};

    fn partition(i: i32, leader: i32) -> MetadataPartition {
        MetadataPartition {
            error_code: 0,
            partition_index: i,
            leader_id: leader,
            leader_epoch: 0,
            replica_nodes: vec![leader],
            isr_nodes: vec![leader],
            offline_replicas: vec![],
        }
    }

    #[test]
    fn snapshot_indexes_partitions_and_tracks_availability() {
        let r = MetadataResponse {
            brokers: vec![MetadataBroker {
                node_id: 1,
                host: "h".into(),
                port: 9092,
                rack: None,
            }],
            topics: vec![MetadataTopic {
                error_code: 0,
                name: Some("t".into()),
                topic_id: [0; 16],
                is_internal: false,
                // out of order, one leaderless, one led by an unknown broker
                partitions: vec![
                    partition(2, 1),
                    partition(0, 1),
                    partition(1, -1),
                    partition(3, 7),
                ],
                topic_authorized_operations: 0,
            }],
            ..Default::default()
        };
        let c = Cluster::from_response(&r);
        assert_eq!(c.partition_count_for_topic("t"), Some(4));
        assert_eq!(c.available_partitions_for_topic("t"), &[0, 2]);
        assert_eq!(c.partitions_for_topic("t")[2].partition, 2);
        assert_eq!(c.leader_for("t", 0).unwrap().port, 9092);
        assert!(c.leader_for("t", 1).is_none());
        assert!(c.leader_for("t", 3).is_none());
        assert_eq!(c.partition_count_for_topic("missing"), None);
    }

    #[test]
    fn hostile_partition_ids_are_dropped_not_allocated() {
        let r = MetadataResponse {
            brokers: vec![],
            topics: vec![MetadataTopic {
                error_code: 0,
                name: Some("t".into()),
                topic_id: [0; 16],
                is_internal: false,
                partitions: vec![
                    partition(0, 1),
                    partition(i32::MAX, 1),
                    partition(1_000_000, 1),
                    partition(-5, 1),
                ],
                topic_authorized_operations: 0,
            }],
            ..Default::default()
        };
        let c = Cluster::from_response(&r);
        assert_eq!(c.partition_count_for_topic("t"), Some(1));
    }

    fn response(epochs: &[(i32, i32)]) -> MetadataResponse {
        MetadataResponse {
            brokers: (1..=3)
                .map(|id| MetadataBroker {
                    node_id: id,
                    host: format!("h{id}"),
                    port: 9092,
                    rack: None,
                })
                .collect(),
            topics: vec![MetadataTopic {
                error_code: 0,
                name: Some("t".into()),
                topic_id: [0; 16],
                is_internal: false,
                partitions: epochs
                    .iter()
                    .enumerate()
                    .map(|(i, &(leader, epoch))| MetadataPartition {
                        leader_epoch: epoch,
                        ..partition(i as i32, leader)
                    })
                    .collect(),
                topic_authorized_operations: 0,
            }],
            ..Default::default()
        }
    }

    fn leader(c: &Cluster, p: i32) -> Option<i32> {
        c.partitions_for_topic("t")[p as usize].leader
    }

    #[test]
    fn a_view_with_older_leader_epochs_does_not_undo_a_newer_one() {
        let known = Cluster::from_response(&response(&[(1, 5), (2, 5), (3, -1)]));
        // p0: older epoch (stale broker): keep leader 1, epoch 5.
        // p1: newer epoch: take leader 3. p2: no epoch known: take it.
        let mut next = Cluster::from_response(&response(&[(2, 4), (3, 6), (1, -1)]));
        assert_eq!(next.keep_newer_leaders(&known), 1);
        assert_eq!(leader(&next, 0), Some(1));
        assert_eq!(next.topics["t"].epoch(0), 5);
        assert_eq!(leader(&next, 1), Some(3));
        assert_eq!(leader(&next, 2), Some(1));
        // The kept leader has left the cluster: leaderless, not a ghost.
        let mut r = response(&[(2, 4)]);
        r.brokers.retain(|b| b.node_id != 1);
        let mut gone = Cluster::from_response(&r);
        assert_eq!(gone.keep_newer_leaders(&known), 1);
        assert_eq!(leader(&gone, 0), None);
        assert!(gone.available_partitions_for_topic("t").is_empty());
    }

    #[test]
    fn leader_hints_apply_only_when_newer_and_reachable() {
        use crate::protocol::messages::produce::NodeEndpoint;
        let c = Cluster::from_response(&response(&[(1, 5), (1, 5), (1, -1)]));
        let hint = |partition, leader, epoch| LeaderHint {
            topic: Arc::from("t"),
            partition,
            leader,
            epoch,
        };
        // Stale or equal epochs, unknown topics and partitions, and a
        // leader nobody says how to reach change nothing.
        let useless = [
            hint(0, 2, 5),
            hint(0, 2, 4),
            hint(9, 2, 6),
            hint(-1, 2, 6),
            hint(1, 7, 6),
        ];
        assert!(c.with_leader_hints(&useless, &[]).is_none());
        let endpoint = NodeEndpoint {
            node_id: 7,
            host: "new-host".into(),
            port: 9093,
            rack: None,
        };
        let next = c
            .with_leader_hints(&[hint(0, 2, 6), hint(1, 7, 6), hint(2, 3, 0)], &[endpoint])
            .expect("news");
        assert_eq!(leader(&next, 0), Some(2));
        assert_eq!(next.topics["t"].epoch(0), 6);
        assert_eq!(leader(&next, 1), Some(7));
        assert_eq!(next.node(7).map(|n| n.port), Some(9093));
        assert_eq!(leader(&next, 2), Some(3));
        // The hinted view wins over a fetched one that is behind it.
        let mut stale = Cluster::from_response(&response(&[(1, 5), (1, 5), (1, -1)]));
        stale.keep_newer_leaders(&next);
        assert_eq!(leader(&stale, 0), Some(2));
        assert_eq!(leader(&stale, 1), None, "node 7 is not in the fetched view");
    }

    #[test]
    fn waiters_wake_on_publish_and_stop() {
        let lifecycle = Arc::new(Lifecycle::default());
        let m = Arc::new(Metadata::new(lifecycle.clone()));
        let v = m.version();
        let m2 = m.clone();
        let t = std::thread::spawn(move || {
            m2.await_update(v, Instant::now() + std::time::Duration::from_secs(10))
        });
        m.publish(Arc::default(), Some(Instant::now()));
        assert_eq!(t.join().unwrap(), v + 1);
        let m2 = m.clone();
        let t = std::thread::spawn(move || {
            m2.await_update(v + 1, Instant::now() + std::time::Duration::from_secs(10))
        });
        lifecycle.stop();
        m.wake_all();
        assert_eq!(t.join().unwrap(), v + 1, "stop releases the waiter");
        assert_eq!(
            m.wait_for_work(Instant::now(), Instant::now(), false),
            Work::Shutdown
        );
    }
}
