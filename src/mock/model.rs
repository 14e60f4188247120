//! The cluster model: brokers, topics, partitions with leaders, their logs,
//! and the requests a producer sends, answered as a Kafka 4 cluster would.
//!
//! Sans-IO: [`Model::handle`] takes one request frame, the broker it
//! reached and `now` (milliseconds on the driver's clock), and returns what
//! the broker does ([`Outcome`]: answer these bytes after this delay, say
//! nothing, cut the connection, hold the request). It owns no socket,
//! thread or clock, so `MockCluster` drives it with real sockets and a
//! simulation can drive it on one thread with a virtual clock.
//!
//! This file: the cluster's shape, the injected faults, and ApiVersions,
//! Metadata and Produce. `txn.rs` adds InitProducerId and the transaction
//! APIs, `fetch.rs` Fetch and ListOffsets, `partition.rs` the
//! per-partition checks, `wire.rs` the codec.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{
    ApiVersionsResponse, BrokerId, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::partition::{Appended, MockBatch, PartitionLog};
use super::txn::Transactions;
use super::wire::{self, Body, Decoded};
use super::{Api, DuplicateAnswer, Fault, FaultKind, MockConfig, MockError};
use crate::protocol::ErrorCode;

/// What a broker does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write this response frame (size prefix included).
    Reply(Vec<u8>),
    /// Write nothing (an `acks=0` Produce).
    Silent,
    /// The request was carried out, but its response is lost: close the
    /// connection without writing it.
    DropAndCut,
    /// Close the connection; the request was not carried out.
    Cut,
    /// Keep the request unanswered until the test releases it, then pass
    /// it to [`Model::handle_released`].
    Hold,
}

/// [`Model::handle`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What to do.
    pub action: Action,
    /// How long to wait before doing it (the broker's injected latency).
    pub delay: Duration,
}

/// A broker of the model.
#[derive(Debug, Clone)]
pub(super) struct Broker {
    pub host: String,
    pub port: u16,
    pub up: bool,
    pub latency: Duration,
}

/// A partition: its replicas, its leader and its log.
#[derive(Debug, Default)]
pub(super) struct Partition {
    /// Every broker, starting with the preferred leader.
    pub replicas: Vec<i32>,
    /// -1 while no replica is up.
    pub leader: i32,
    /// Bumped by each leader change (KIP-101, KIP-951's hint carries it).
    pub leader_epoch: i32,
    pub log: PartitionLog,
}

/// What the model counted, for tests to assert on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MockStats {
    /// Requests read, per API (including those a fault answered).
    pub requests: BTreeMap<Api, u64>,
    /// Error codes the model's own checks answered, per API and code
    /// (injected faults are not counted here).
    pub errors: BTreeMap<(Api, i16), u64>,
    /// Faults that fired.
    pub faults_fired: u64,
    /// Produce batches recognised as resends of a retained batch and not
    /// written again.
    pub duplicates: u64,
}

/// The cluster.
#[derive(Debug)]
pub struct Model {
    pub(super) config: MockConfig,
    pub(super) brokers: BTreeMap<i32, Broker>,
    pub(super) topics: BTreeMap<String, Vec<Partition>>,
    pub(super) txns: Transactions,
    pub(super) next_producer_id: i64,
    faults: Vec<Fault>,
    pub(super) stats: MockStats,
}

/// Kafka's rule for topic names (`Topic.validate`).
fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// KIP-511's pattern for client software names and versions:
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn valid_software_id(s: &str) -> bool {
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.';
    match b {
        [] => false,
        [one] => one.is_ascii_alphanumeric(),
        [first, middle @ .., last] => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && middle.iter().all(inner)
        }
    }
}

impl Model {
    /// A cluster of `addresses.len()` brokers, ids 1, 2, ..., each with its
    /// advertised (host, port), all up, no topics.
    pub fn new(config: MockConfig, addresses: &[(String, u16)]) -> Model {
        let brokers = addresses
            .iter()
            .enumerate()
            .map(|(i, (host, port))| {
                let broker = Broker {
                    host: host.clone(),
                    port: *port,
                    up: true,
                    latency: Duration::ZERO,
                };
                (i as i32 + 1, broker)
            })
            .collect();
        Model {
            config,
            brokers,
            topics: BTreeMap::new(),
            txns: Transactions::default(),
            next_producer_id: 1000,
            faults: Vec::new(),
            stats: MockStats::default(),
        }
    }

    /// The broker ids.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.brokers.keys().copied().collect()
    }

    fn live_brokers(&self) -> Vec<i32> {
        self.brokers
            .iter()
            .filter(|(_, b)| b.up)
            .map(|(id, _)| *id)
            .collect()
    }

    fn broker_mut(&mut self, id: i32) -> Result<&mut Broker, MockError> {
        self.brokers
            .get_mut(&id)
            .ok_or(MockError::UnknownBroker(id))
    }

    /// True unless the broker was taken down.
    pub fn is_up(&self, broker: i32) -> bool {
        self.brokers.get(&broker).is_some_and(|b| b.up)
    }

    /// Creates `topic` with `partitions` partitions, leaders spread over
    /// the brokers round-robin.
    ///
    /// # Errors
    ///
    /// [`MockError::InvalidTopic`] for a name Kafka refuses or a count below 1,
    /// [`MockError::TopicExists`] if it exists.
    pub fn create_topic(&mut self, topic: &str, partitions: i32) -> Result<(), MockError> {
        if !valid_topic_name(topic) || partitions < 1 {
            return Err(MockError::InvalidTopic {
                topic: topic.to_string(),
                partitions,
            });
        }
        if self.topics.contains_key(topic) {
            return Err(MockError::TopicExists(topic.to_string()));
        }
        let ids = self.broker_ids();
        let live = self.live_brokers();
        let parts = (0..partitions as usize)
            .map(|p| {
                let mut replicas = ids.clone();
                replicas.rotate_left(p % ids.len());
                let leader = replicas
                    .iter()
                    .copied()
                    .find(|r| live.contains(r))
                    .unwrap_or(-1);
                Partition {
                    replicas,
                    leader,
                    leader_epoch: 0,
                    log: PartitionLog::default(),
                }
            })
            .collect();
        self.topics.insert(topic.to_string(), parts);
        Ok(())
    }

    pub(super) fn partition(&self, topic: &str, partition: i32) -> Result<&Partition, MockError> {
        self.topics
            .get(topic)
            .and_then(|ps| usize::try_from(partition).ok().and_then(|p| ps.get(p)))
            .ok_or_else(|| MockError::UnknownPartition {
                topic: topic.to_string(),
                partition,
            })
    }

    fn partition_mut(&mut self, topic: &str, partition: i32) -> Result<&mut Partition, MockError> {
        self.topics
            .get_mut(topic)
            .and_then(|ps| usize::try_from(partition).ok().and_then(|p| ps.get_mut(p)))
            .ok_or_else(|| MockError::UnknownPartition {
                topic: topic.to_string(),
                partition,
            })
    }

    /// The batches of a partition's log, in offset order (control markers
    /// included).
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownPartition`].
    pub fn batches(&self, topic: &str, partition: i32) -> Result<&[MockBatch], MockError> {
        Ok(self.partition(topic, partition)?.log.batches())
    }

    /// The partition's leader (-1 if none) and leader epoch.
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownPartition`].
    pub fn leader(&self, topic: &str, partition: i32) -> Result<(i32, i32), MockError> {
        let p = self.partition(topic, partition)?;
        Ok((p.leader, p.leader_epoch))
    }

    /// The partition's log end offset (the next offset to be written).
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownPartition`].
    pub fn end_offset(&self, topic: &str, partition: i32) -> Result<i64, MockError> {
        Ok(self.partition(topic, partition)?.log.end_offset())
    }

    /// The partition's last stable offset (the end of what a
    /// `read_committed` consumer may read).
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownPartition`].
    pub fn last_stable_offset(&self, topic: &str, partition: i32) -> Result<i64, MockError> {
        Ok(self.partition(topic, partition)?.log.last_stable_offset())
    }

    /// Makes broker `to` the partition's leader (as a preferred-leader
    /// election would), bumping the leader epoch. The old leader answers
    /// NOT_LEADER_OR_FOLLOWER from now on.
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownPartition`], [`MockError::UnknownBroker`], or
    /// [`MockError::BrokerDown`] if `to` is down.
    pub fn move_leader(&mut self, topic: &str, partition: i32, to: i32) -> Result<(), MockError> {
        if !self.brokers.contains_key(&to) {
            return Err(MockError::UnknownBroker(to));
        }
        if !self.is_up(to) {
            return Err(MockError::BrokerDown(to));
        }
        let p = self.partition_mut(topic, partition)?;
        if p.leader != to {
            p.leader = to;
            p.leader_epoch += 1;
        }
        Ok(())
    }

    /// Takes a broker down or brings it back. Down, it answers nothing and
    /// the partitions it led move to the next live replica (leaderless if
    /// none), as a controller's failover does; up, it leads the
    /// partitions left without a leader (it does not take back the others).
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownBroker`].
    pub fn set_broker_up(&mut self, broker: i32, up: bool) -> Result<(), MockError> {
        self.broker_mut(broker)?.up = up;
        let live = self.live_brokers();
        for p in self.topics.values_mut().flat_map(|ps| ps.iter_mut()) {
            let orphaned = p.leader == -1 || !live.contains(&p.leader);
            if orphaned {
                let next = p
                    .replicas
                    .iter()
                    .copied()
                    .find(|r| live.contains(r))
                    .unwrap_or(-1);
                if next != p.leader {
                    p.leader = next;
                    p.leader_epoch += 1;
                }
            }
        }
        Ok(())
    }

    /// Sets the delay before each of a broker's answers.
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownBroker`].
    pub fn set_latency(&mut self, broker: i32, latency: Duration) -> Result<(), MockError> {
        self.broker_mut(broker)?.latency = latency;
        Ok(())
    }

    /// Adds a fault; faults fire in the order they were added, one per request.
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownBroker`] if it names a broker that does not exist.
    pub fn inject(&mut self, fault: Fault) -> Result<(), MockError> {
        if let Some(b) = fault.broker {
            if !self.brokers.contains_key(&b) {
                return Err(MockError::UnknownBroker(b));
            }
        }
        if fault.count > 0 {
            self.faults.push(fault);
        }
        Ok(())
    }

    /// Removes every fault not yet fired.
    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// What the model counted.
    pub fn stats(&self) -> &MockStats {
        &self.stats
    }

    /// Takes the first fault for a request of `api` on `broker` (a hold
    /// only if `may_hold`: a released request is not held again).
    fn take_fault(&mut self, broker: i32, api: Api, may_hold: bool) -> Option<FaultKind> {
        let i = self.faults.iter().position(|f| {
            f.api == api
                && f.broker.is_none_or(|b| b == broker)
                && (may_hold || f.kind != FaultKind::Hold)
        })?;
        let f = &mut self.faults[i];
        let kind = f.kind;
        f.count -= 1;
        if f.count == 0 {
            self.faults.remove(i);
        }
        self.stats.faults_fired += 1;
        Some(kind)
    }

    pub(super) fn count_error(&mut self, api: Api, code: ErrorCode) {
        if !code.is_ok() {
            *self.stats.errors.entry((api, code.0)).or_default() += 1;
        }
    }

    /// Handles one request frame (its 4-byte size prefix stripped) that
    /// reached `broker` at `now_ms` on the driver's clock.
    pub fn handle(&mut self, broker: i32, frame: &[u8], now_ms: i64) -> Outcome {
        self.handle_inner(broker, frame, now_ms, true)
    }

    /// Handles a request that a [`FaultKind::Hold`] held, now released: as
    /// [`Model::handle`], but it is not held again.
    pub fn handle_released(&mut self, broker: i32, frame: &[u8], now_ms: i64) -> Outcome {
        self.handle_inner(broker, frame, now_ms, false)
    }

    fn handle_inner(&mut self, broker: i32, frame: &[u8], now_ms: i64, may_hold: bool) -> Outcome {
        let Some(b) = self.brokers.get(&broker).filter(|b| b.up) else {
            return Outcome {
                action: Action::Cut,
                delay: Duration::ZERO,
            };
        };
        let latency = b.latency;
        let (action, wait) = self.act(broker, frame, now_ms, may_hold);
        Outcome {
            action,
            delay: latency + wait,
        }
    }

    /// What the broker does, and how long it waits first beyond its latency
    /// (a Fetch with nothing to return waits its `max_wait_ms`).
    fn act(
        &mut self,
        broker: i32,
        frame: &[u8],
        now_ms: i64,
        may_hold: bool,
    ) -> (Action, Duration) {
        self.expire_transactions(now_ms);
        let (api, version, correlation_id, body) = match wire::decode(frame) {
            Decoded::Request {
                api,
                version,
                correlation_id,
                body,
            } => (api, version, correlation_id, body),
            Decoded::ApiVersionsTooNew { correlation_id } => {
                *self.stats.requests.entry(Api::ApiVersions).or_default() += 1;
                self.count_error(Api::ApiVersions, ErrorCode::UNSUPPORTED_VERSION);
                let body = self.api_versions(Some(ErrorCode::UNSUPPORTED_VERSION));
                return (
                    reply(wire::encode(Api::ApiVersions, 0, correlation_id, &body)),
                    Duration::ZERO,
                );
            }
            Decoded::Unreadable(why) => {
                log::warn!("mock broker {broker}: closing the connection: {why}");
                return (Action::Cut, Duration::ZERO);
            }
        };
        *self.stats.requests.entry(api).or_default() += 1;
        let mut forced = None;
        let mut drop_response = false;
        match self.take_fault(broker, api, may_hold) {
            Some(FaultKind::Hold) => return (Action::Hold, Duration::ZERO),
            Some(FaultKind::Cut) => return (Action::Cut, Duration::ZERO),
            Some(FaultKind::Error(code)) => forced = Some(code),
            Some(FaultKind::DropResponse) => drop_response = true,
            None => {}
        }
        let mut silent = false;
        let mut wait = Duration::ZERO;
        // Each handler builds its response struct; this encodes it.
        macro_rules! answer {
            ($response:expr) => {
                wire::encode(api, version, correlation_id, &$response)
            };
        }
        let encoded = match body {
            Body::ApiVersions(req) => {
                // KIP-511: v3+ names the client; Kafka refuses names
                // outside its pattern with INVALID_REQUEST.
                let named = version < 3
                    || (valid_software_id(&req.client_software_name)
                        && valid_software_id(&req.client_software_version));
                let code = if named {
                    forced
                } else {
                    self.count_error(api, ErrorCode::INVALID_REQUEST);
                    Some(ErrorCode::INVALID_REQUEST)
                };
                answer!(self.api_versions(code))
            }
            Body::Metadata(req) => answer!(self.metadata(version, req, forced)),
            Body::Fetch(req) => {
                let (r, long_poll) = self.fetch(broker, version, req, forced);
                wait = long_poll;
                answer!(r)
            }
            Body::ListOffsets(req) => answer!(self.list_offsets(broker, version, req, forced)),
            Body::Produce(req) => {
                silent = req.acks == 0;
                answer!(self.produce(broker, version, req, forced))
            }
            Body::InitProducerId(req) => answer!(self.init_producer_id(broker, req, forced)),
            Body::FindCoordinator(req) => answer!(self.find_coordinator(version, req, forced)),
            Body::AddPartitionsToTxn(req) => {
                answer!(self.add_partitions_to_txn(broker, req, forced, now_ms))
            }
            Body::AddOffsetsToTxn(req) => {
                answer!(self.add_offsets_to_txn(broker, req, forced, now_ms))
            }
            Body::TxnOffsetCommit(req) => answer!(self.txn_offset_commit(broker, req, forced)),
            Body::EndTxn(req) => answer!(self.end_txn(broker, req, forced)),
        };
        let action = if drop_response {
            Action::DropAndCut
        } else if silent {
            Action::Silent
        } else {
            reply(encoded)
        };
        (action, wait)
    }

    fn api_versions(&mut self, forced: Option<ErrorCode>) -> ApiVersionsResponse {
        let mut r = ApiVersionsResponse::default();
        r.error_code = forced.unwrap_or(ErrorCode::NONE).0;
        r.api_keys = Api::ALL
            .iter()
            .map(|api| {
                let mut v = ApiVersion::default();
                v.api_key = api.key();
                v.min_version = *api.versions().start();
                v.max_version = *api.versions().end();
                v
            })
            .collect();
        r
    }

    fn metadata(
        &mut self,
        version: i16,
        req: MetadataRequest,
        forced: Option<ErrorCode>,
    ) -> MetadataResponse {
        // v0 asks for every topic with an empty list, v1+ with null.
        let names: Vec<String> = match req.topics {
            Some(list) if !(version == 0 && list.is_empty()) => list
                .into_iter()
                .filter_map(|t| t.name.map(|n| n.0.to_string()))
                .collect(),
            _ => self.topics.keys().cloned().collect(),
        };
        // Before v4 a Metadata request always allowed auto-creation.
        let may_create =
            self.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
        let live = self.live_brokers();
        let mut r = MetadataResponse::default();
        r.brokers = live
            .iter()
            .map(|id| {
                let b = &self.brokers[id];
                let mut m = MetadataResponseBroker::default();
                m.node_id = BrokerId(*id);
                m.host = StrBytes::from_string(b.host.clone());
                m.port = i32::from(b.port);
                m
            })
            .collect();
        if version >= 2 {
            r.cluster_id = Some(StrBytes::from_string(self.config.cluster_id.clone()));
        }
        if version >= 1 {
            r.controller_id = BrokerId(live.first().copied().unwrap_or(-1));
        }
        let mut seen = BTreeSet::new();
        for name in names {
            if !seen.insert(name.clone()) {
                continue;
            }
            let mut t = MetadataResponseTopic::default();
            t.name = Some(TopicName(StrBytes::from_string(name.clone())));
            let code = if let Some(code) = forced {
                code
            } else if !valid_topic_name(&name) {
                ErrorCode::INVALID_TOPIC_EXCEPTION
            } else if !self.topics.contains_key(&name) && !may_create {
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            } else {
                if !self.topics.contains_key(&name) {
                    let n = self.config.default_partitions;
                    // The name is valid and absent: creation cannot fail.
                    let _ = self.create_topic(&name, n);
                }
                ErrorCode::NONE
            };
            self.count_error(
                Api::Metadata,
                if forced.is_some() {
                    ErrorCode::NONE
                } else {
                    code
                },
            );
            t.error_code = code.0;
            if code.is_ok() {
                t.partitions = self.topics[&name]
                    .iter()
                    .enumerate()
                    .map(|(i, p)| partition_metadata(version, i as i32, p, &live))
                    .collect();
            }
            r.topics.push(t);
        }
        r
    }

    fn produce(
        &mut self,
        broker: i32,
        version: i16,
        req: ProduceRequest,
        forced: Option<ErrorCode>,
    ) -> ProduceResponse {
        let mut r = ProduceResponse::default();
        let mut hinted = BTreeSet::new();
        let acks_ok = matches!(req.acks, -1..=1);
        for topic in req.topic_data {
            let name = topic.name.0.to_string();
            let mut tr = TopicProduceResponse::default();
            tr.name = topic.name.clone();
            for pd in topic.partition_data {
                let mut pr = PartitionProduceResponse::default();
                pr.index = pd.index;
                pr.base_offset = -1;
                pr.log_append_time_ms = -1;
                let result = match forced {
                    Some(code) => Err(code),
                    None if !acks_ok => Err(ErrorCode::INVALID_REQUIRED_ACKS),
                    None => self.append(broker, &name, pd.index, pd.records.as_ref()),
                };
                match result {
                    Ok(base_offset) => pr.base_offset = base_offset,
                    Err(code) => {
                        pr.error_code = code.0;
                        if forced.is_none() {
                            self.count_error(Api::Produce, code);
                        }
                    }
                }
                if version >= 5 {
                    pr.log_start_offset = if pr.error_code == 0 { 0 } else { -1 };
                }
                // KIP-951 (v10+): a NOT_LEADER_OR_FOLLOWER carries the
                // current leader, and the response that leader's endpoint.
                if version >= 10 && pr.error_code == ErrorCode::NOT_LEADER_OR_FOLLOWER.0 {
                    if let Ok(p) = self.partition(&name, pd.index) {
                        let mut l = LeaderIdAndEpoch::default();
                        l.leader_id = BrokerId(p.leader);
                        l.leader_epoch = p.leader_epoch;
                        pr.current_leader = l;
                        if p.leader >= 0 {
                            hinted.insert(p.leader);
                        }
                    }
                }
                tr.partition_responses.push(pr);
            }
            r.responses.push(tr);
        }
        for id in hinted {
            let b = &self.brokers[&id];
            let mut e = NodeEndpoint::default();
            e.node_id = BrokerId(id);
            e.host = StrBytes::from_string(b.host.clone());
            e.port = i32::from(b.port);
            r.node_endpoints.push(e);
        }
        r
    }

    /// One partition's part of a Produce request: checks as a Kafka leader
    /// does, in its order, then appends. The base offset, or the error code.
    fn append(
        &mut self,
        broker: i32,
        topic: &str,
        partition: i32,
        records: Option<&Bytes>,
    ) -> Result<i64, ErrorCode> {
        let max_message_bytes = self.config.max_message_bytes;
        let duplicate_answer = self.config.duplicate_answer;
        let p = self
            .partition(topic, partition)
            .map_err(|_| ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
        if p.leader != broker {
            return Err(ErrorCode::NOT_LEADER_OR_FOLLOWER);
        }
        let records = records.ok_or(ErrorCode::CORRUPT_MESSAGE)?;
        if records.len() > max_message_bytes {
            return Err(ErrorCode::MESSAGE_TOO_LARGE);
        }
        let mut batches = wire::decode_batches(records).map_err(|e| {
            log::warn!("mock broker {broker}: {topic}-{partition}: corrupt batch: {e}");
            ErrorCode::CORRUPT_MESSAGE
        })?;
        // Magic v2: one batch per partition and request (`LogValidator`).
        if batches.len() != 1 {
            return Err(ErrorCode::INVALID_RECORD);
        }
        let batch = batches.pop().expect("one batch");
        let in_txn = batch.transactional
            && self
                .txns
                .has_partition(batch.producer_id, batch.producer_epoch, topic, partition);
        let p = self.partition_mut(topic, partition).expect("checked above");
        match p.log.append(batch, in_txn)? {
            Appended::New(offset) => Ok(offset),
            Appended::Duplicate(offset) => {
                self.stats.duplicates += 1;
                match duplicate_answer {
                    DuplicateAnswer::OriginalOffset => Ok(offset),
                    DuplicateAnswer::DuplicateSequenceNumber => {
                        Err(ErrorCode::DUPLICATE_SEQUENCE_NUMBER)
                    }
                }
            }
        }
    }
}

fn reply(frame: Result<Vec<u8>, String>) -> Action {
    match frame {
        Ok(bytes) => Action::Reply(bytes),
        Err(e) => {
            log::error!("mock model: {e}; closing the connection");
            Action::Cut
        }
    }
}

fn partition_metadata(
    version: i16,
    index: i32,
    p: &Partition,
    live: &[i32],
) -> MetadataResponsePartition {
    let mut m = MetadataResponsePartition::default();
    m.partition_index = index;
    m.leader_id = BrokerId(p.leader);
    if p.leader < 0 {
        m.error_code = ErrorCode::LEADER_NOT_AVAILABLE.0;
    }
    if version >= 7 {
        m.leader_epoch = p.leader_epoch;
    }
    m.replica_nodes = p.replicas.iter().map(|r| BrokerId(*r)).collect();
    m.isr_nodes = p
        .replicas
        .iter()
        .filter(|r| live.contains(r))
        .map(|r| BrokerId(*r))
        .collect();
    if version >= 5 {
        m.offline_replicas = p
            .replicas
            .iter()
            .filter(|r| !live.contains(r))
            .map(|r| BrokerId(*r))
            .collect();
    }
    m
}
