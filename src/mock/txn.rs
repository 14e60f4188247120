//! The model's producer ids and transaction coordinator: InitProducerId,
//! FindCoordinator, AddPartitionsToTxn (v0-3), AddOffsetsToTxn,
//! TxnOffsetCommit and EndTxn, with the checks Kafka's
//! `TransactionCoordinator` makes (transactions v1: the client adds each
//! partition before it produces there; KIP-98, KIP-360, KIP-588).
//!
//! Simplifications, all on the side of answering at once: a transaction
//! ends (markers written, offsets committed) inside the EndTxn that ends
//! it, so CONCURRENT_TRANSACTIONS is never answered; an InitProducerId that
//! finds a transaction open aborts it there and then. A transaction open
//! longer than its `transaction.timeout.ms` is aborted (and its producer
//! fenced by an epoch bump) when the next request reaches the model after
//! that.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, BrokerId, EndTxnRequest, EndTxnResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse, ProducerId,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::model::Model;
use super::partition::ControlType;
use super::Api;
use crate::protocol::ErrorCode;

/// Kafka's default `transaction.max.timeout.ms` (15 minutes).
const MAX_TRANSACTION_TIMEOUT_MS: i32 = 900_000;

/// Where a transaction is (`TransactionState`, without the prepare states
/// the model passes through inside one request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Empty,
    Ongoing,
    CompleteCommit,
    CompleteAbort,
}

/// One transactional id's state on its coordinator.
#[derive(Debug, Clone)]
struct TxnState {
    producer_id: i64,
    epoch: i16,
    timeout_ms: i32,
    status: Status,
    /// When it became Ongoing (driver's clock, ms).
    started_ms: i64,
    partitions: BTreeSet<(String, i32)>,
    groups: BTreeSet<String>,
    /// (group, topic, partition) -> (offset, metadata), committed with the transaction.
    pending_offsets: BTreeMap<(String, String, i32), (i64, Option<String>)>,
}

/// Every transactional id's state, and the offsets transactions committed.
#[derive(Debug, Default)]
pub struct Transactions {
    states: HashMap<String, TxnState>,
    /// (group, topic, partition) -> (offset, metadata).
    pub(super) committed_offsets: BTreeMap<(String, String, i32), (i64, Option<String>)>,
}

impl Transactions {
    /// True if the producer's ongoing transaction (at that epoch) has added
    /// the partition: the leader's KIP-890 verification.
    pub fn has_partition(&self, producer_id: i64, epoch: i16, topic: &str, partition: i32) -> bool {
        self.states.values().any(|s| {
            s.producer_id == producer_id
                && s.epoch == epoch
                && s.status == Status::Ongoing
                && s.partitions.contains(&(topic.to_string(), partition))
        })
    }
}

/// FNV-1a: a stable spread of coordinator keys over the live brokers.
fn fnv(key_type: i8, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(key_type as u8).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Model {
    /// The coordinator of a group (`key_type` 0) or transactional id (1):
    /// a live broker chosen by the key's hash, as the leader of the key's
    /// `__consumer_offsets` / `__transaction_state` partition would be.
    pub(super) fn coordinator(&self, key_type: i8, key: &str) -> Option<i32> {
        let live: Vec<i32> = self
            .brokers
            .iter()
            .filter(|(_, b)| b.up)
            .map(|(id, _)| *id)
            .collect();
        if live.is_empty() {
            return None;
        }
        Some(live[(fnv(key_type, key) % live.len() as u64) as usize])
    }

    fn new_producer_id(&mut self) -> i64 {
        let id = self.next_producer_id;
        self.next_producer_id += 1;
        id
    }

    /// Writes the markers of `txn_id`'s open transaction (commit or abort)
    /// to each of its partitions, commits its offsets on commit, and marks
    /// it complete.
    fn complete(&mut self, txn_id: &str, commit: bool) {
        let Some(s) = self.txns.states.get_mut(txn_id) else {
            return;
        };
        let partitions = std::mem::take(&mut s.partitions);
        let offsets = std::mem::take(&mut s.pending_offsets);
        s.groups.clear();
        s.status = if commit {
            Status::CompleteCommit
        } else {
            Status::CompleteAbort
        };
        let (pid, epoch) = (s.producer_id, s.epoch);
        let kind = if commit {
            ControlType::Commit
        } else {
            ControlType::Abort
        };
        for (topic, partition) in partitions {
            if let Some(p) = self
                .topics
                .get_mut(&topic)
                .and_then(|ps| ps.get_mut(partition as usize))
            {
                p.log.write_marker(pid, epoch, kind);
            }
        }
        if commit {
            self.txns.committed_offsets.extend(offsets);
        }
    }

    /// Aborts every transaction open longer than its timeout and fences its
    /// producer (epoch + 1), as the coordinator's timeout task does.
    pub(super) fn expire_transactions(&mut self, now_ms: i64) {
        let expired: Vec<String> = self
            .txns
            .states
            .iter()
            .filter(|(_, s)| {
                s.status == Status::Ongoing && now_ms - s.started_ms > i64::from(s.timeout_ms)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            log::info!("mock coordinator: transaction {id} timed out; aborting it");
            if let Some(s) = self.txns.states.get_mut(&id) {
                s.epoch = s.epoch.saturating_add(1);
            }
            self.complete(&id, false);
        }
    }

    /// The checks every transactional request makes on the coordinator.
    fn check_txn(
        &self,
        broker: i32,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<(), ErrorCode> {
        if self.coordinator(1, txn_id) != Some(broker) {
            return Err(ErrorCode::NOT_COORDINATOR);
        }
        let s = self
            .txns
            .states
            .get(txn_id)
            .ok_or(ErrorCode::INVALID_PRODUCER_ID_MAPPING)?;
        if s.producer_id != producer_id {
            return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        }
        if s.epoch != epoch {
            return Err(ErrorCode::PRODUCER_FENCED);
        }
        Ok(())
    }

    fn begin(&mut self, txn_id: &str, now_ms: i64) {
        if let Some(s) = self.txns.states.get_mut(txn_id) {
            if s.status != Status::Ongoing {
                s.status = Status::Ongoing;
                s.started_ms = now_ms;
            }
        }
    }

    pub(super) fn init_producer_id(
        &mut self,
        broker: i32,
        req: InitProducerIdRequest,
        forced: Option<ErrorCode>,
    ) -> InitProducerIdResponse {
        let mut r = InitProducerIdResponse::default();
        let result = match forced {
            Some(code) => Err(code),
            None => self.init_pid(broker, &req),
        };
        match result {
            Ok((pid, epoch)) => {
                r.producer_id = ProducerId(pid);
                r.producer_epoch = epoch;
            }
            Err(code) => {
                r.error_code = code.0;
                r.producer_id = ProducerId(-1);
                r.producer_epoch = -1;
                if forced.is_none() {
                    self.count_error(Api::InitProducerId, code);
                }
            }
        }
        r
    }

    fn init_pid(
        &mut self,
        broker: i32,
        req: &InitProducerIdRequest,
    ) -> Result<(i64, i16), ErrorCode> {
        let txn_id = match &req.transactional_id {
            Some(id) if !id.is_empty() => id.to_string(),
            // An idempotent producer gets a new id at epoch 0 from any broker.
            _ => return Ok((self.new_producer_id(), 0)),
        };
        if self.coordinator(1, &txn_id) != Some(broker) {
            return Err(ErrorCode::NOT_COORDINATOR);
        }
        if req.transaction_timeout_ms <= 0
            || req.transaction_timeout_ms > MAX_TRANSACTION_TIMEOUT_MS
        {
            return Err(ErrorCode::INVALID_TRANSACTION_TIMEOUT);
        }
        let (pid, epoch, open) = match self.txns.states.get(&txn_id) {
            None => {
                let pid = self.new_producer_id();
                self.txns.states.insert(
                    txn_id.clone(),
                    TxnState {
                        producer_id: pid,
                        epoch: 0,
                        timeout_ms: req.transaction_timeout_ms,
                        status: Status::Empty,
                        started_ms: 0,
                        partitions: BTreeSet::new(),
                        groups: BTreeSet::new(),
                        pending_offsets: BTreeMap::new(),
                    },
                );
                return Ok((pid, 0));
            }
            Some(s) => {
                // KIP-360: a producer that names its id and epoch may only
                // bump its own current epoch.
                if req.producer_id.0 != -1
                    && (req.producer_id.0 != s.producer_id || req.producer_epoch != s.epoch)
                {
                    return Err(ErrorCode::PRODUCER_FENCED);
                }
                (s.producer_id, s.epoch, s.status == Status::Ongoing)
            }
        };
        // Epoch exhausted: a new producer id.
        let (pid, epoch) = if epoch >= i16::MAX - 1 {
            (self.new_producer_id(), 0)
        } else {
            (pid, epoch + 1)
        };
        let s = self.txns.states.get_mut(&txn_id).expect("present");
        let old_pid = s.producer_id;
        s.epoch = if pid == old_pid { epoch } else { s.epoch };
        s.timeout_ms = req.transaction_timeout_ms;
        if open {
            // Fence the old producer's transaction: abort it with the new epoch.
            self.complete(&txn_id, false);
        }
        let s = self.txns.states.get_mut(&txn_id).expect("present");
        s.producer_id = pid;
        s.epoch = epoch;
        s.status = Status::Empty;
        Ok((pid, epoch))
    }

    pub(super) fn find_coordinator(
        &mut self,
        version: i16,
        req: FindCoordinatorRequest,
        forced: Option<ErrorCode>,
    ) -> FindCoordinatorResponse {
        let lookup = |model: &Model, key: &str| -> (ErrorCode, i32, String, i32) {
            if let Some(code) = forced {
                return (code, -1, String::new(), -1);
            }
            if req.key_type != 0 && req.key_type != 1 {
                return (ErrorCode::INVALID_REQUEST, -1, String::new(), -1);
            }
            match model.coordinator(req.key_type, key) {
                Some(id) => {
                    let b = &model.brokers[&id];
                    (ErrorCode::NONE, id, b.host.clone(), i32::from(b.port))
                }
                None => (ErrorCode::COORDINATOR_NOT_AVAILABLE, -1, String::new(), -1),
            }
        };
        let mut r = FindCoordinatorResponse::default();
        if version >= 4 {
            for key in &req.coordinator_keys {
                let (code, id, host, port) = lookup(self, key);
                let mut c = Coordinator::default();
                c.key = key.clone();
                c.error_code = code.0;
                c.node_id = BrokerId(id);
                c.host = StrBytes::from_string(host);
                c.port = port;
                r.coordinators.push(c);
            }
        } else {
            let (code, id, host, port) = lookup(self, &req.key);
            r.error_code = code.0;
            r.node_id = BrokerId(id);
            r.host = StrBytes::from_string(host);
            r.port = port;
        }
        r
    }

    pub(super) fn add_partitions_to_txn(
        &mut self,
        broker: i32,
        req: AddPartitionsToTxnRequest,
        forced: Option<ErrorCode>,
        now_ms: i64,
    ) -> AddPartitionsToTxnResponse {
        let txn_id = req.v3_and_below_transactional_id.to_string();
        let check = match forced {
            Some(code) => Err(code),
            None => self.check_txn(
                broker,
                &txn_id,
                req.v3_and_below_producer_id.0,
                req.v3_and_below_producer_epoch,
            ),
        };
        let mut wanted = Vec::new();
        for t in &req.v3_and_below_topics {
            for p in &t.partitions {
                wanted.push((t.name.clone(), *p));
            }
        }
        let unknown: BTreeSet<(String, i32)> = wanted
            .iter()
            .filter(|(t, p)| self.partition(t, *p).is_err())
            .map(|(t, p)| (t.to_string(), *p))
            .collect();
        let code_for = |topic: &str, partition: i32| match check {
            Err(code) => code,
            Ok(()) if unknown.is_empty() => ErrorCode::NONE,
            Ok(()) if unknown.contains(&(topic.to_string(), partition)) => {
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            }
            Ok(()) => ErrorCode::OPERATION_NOT_ATTEMPTED,
        };
        let mut r = AddPartitionsToTxnResponse::default();
        for t in &req.v3_and_below_topics {
            let mut tr = AddPartitionsToTxnTopicResult::default();
            tr.name = t.name.clone();
            for p in &t.partitions {
                let mut pr = AddPartitionsToTxnPartitionResult::default();
                pr.partition_index = *p;
                pr.partition_error_code = code_for(&t.name, *p).0;
                tr.results_by_partition.push(pr);
            }
            r.results_by_topic_v3_and_below.push(tr);
        }
        match check {
            Ok(()) if unknown.is_empty() => {
                self.begin(&txn_id, now_ms);
                let s = self.txns.states.get_mut(&txn_id).expect("checked");
                s.partitions
                    .extend(wanted.into_iter().map(|(t, p)| (t.to_string(), p)));
            }
            Ok(()) => self.count_error(
                Api::AddPartitionsToTxn,
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            ),
            Err(code) if forced.is_none() => self.count_error(Api::AddPartitionsToTxn, code),
            Err(_) => {}
        }
        r
    }

    pub(super) fn add_offsets_to_txn(
        &mut self,
        broker: i32,
        req: AddOffsetsToTxnRequest,
        forced: Option<ErrorCode>,
        now_ms: i64,
    ) -> AddOffsetsToTxnResponse {
        let txn_id = req.transactional_id.to_string();
        let check = match forced {
            Some(code) => Err(code),
            None => self.check_txn(broker, &txn_id, req.producer_id.0, req.producer_epoch),
        };
        let mut r = AddOffsetsToTxnResponse::default();
        match check {
            Ok(()) => {
                self.begin(&txn_id, now_ms);
                let s = self.txns.states.get_mut(&txn_id).expect("checked");
                s.groups.insert(req.group_id.to_string());
            }
            Err(code) => {
                r.error_code = code.0;
                if forced.is_none() {
                    self.count_error(Api::AddOffsetsToTxn, code);
                }
            }
        }
        r
    }

    pub(super) fn txn_offset_commit(
        &mut self,
        broker: i32,
        req: TxnOffsetCommitRequest,
        forced: Option<ErrorCode>,
    ) -> TxnOffsetCommitResponse {
        let txn_id = req.transactional_id.to_string();
        let group = req.group_id.to_string();
        let check = match forced {
            Some(code) => Err(code),
            None if self.coordinator(0, &group) != Some(broker) => Err(ErrorCode::NOT_COORDINATOR),
            None => match self.txns.states.get(&txn_id) {
                None => Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING),
                Some(s) if s.producer_id != req.producer_id.0 => {
                    Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING)
                }
                Some(s) if s.epoch != req.producer_epoch => Err(ErrorCode::PRODUCER_FENCED),
                // The group's offsets partition must be in the transaction
                // (AddOffsetsToTxn first), as the KIP-890 verification checks.
                Some(s) if s.status != Status::Ongoing || !s.groups.contains(&group) => {
                    Err(ErrorCode::INVALID_TXN_STATE)
                }
                Some(_) => Ok(()),
            },
        };
        let mut r = TxnOffsetCommitResponse::default();
        for t in &req.topics {
            let mut tr = TxnOffsetCommitResponseTopic::default();
            tr.name = t.name.clone();
            for p in &t.partitions {
                let mut pr = TxnOffsetCommitResponsePartition::default();
                pr.partition_index = p.partition_index;
                pr.error_code = match check {
                    Ok(()) => 0,
                    Err(code) => code.0,
                };
                tr.partitions.push(pr);
            }
            r.topics.push(tr);
        }
        match check {
            Ok(()) => {
                let s = self.txns.states.get_mut(&txn_id).expect("checked");
                for t in &req.topics {
                    for p in &t.partitions {
                        s.pending_offsets.insert(
                            (group.clone(), t.name.to_string(), p.partition_index),
                            (
                                p.committed_offset,
                                p.committed_metadata.as_ref().map(|m| m.to_string()),
                            ),
                        );
                    }
                }
            }
            Err(code) if forced.is_none() => self.count_error(Api::TxnOffsetCommit, code),
            Err(_) => {}
        }
        r
    }

    pub(super) fn end_txn(
        &mut self,
        broker: i32,
        req: EndTxnRequest,
        forced: Option<ErrorCode>,
    ) -> EndTxnResponse {
        let txn_id = req.transactional_id.to_string();
        let result = match forced {
            Some(code) => Err(code),
            None => self
                .check_txn(broker, &txn_id, req.producer_id.0, req.producer_epoch)
                .and_then(|()| {
                    let status = self.txns.states[&txn_id].status;
                    match (status, req.committed) {
                        (Status::Ongoing, commit) => {
                            self.complete(&txn_id, commit);
                            Ok(())
                        }
                        // A retry of the EndTxn that completed it.
                        (Status::CompleteCommit, true) | (Status::CompleteAbort, false) => Ok(()),
                        _ => Err(ErrorCode::INVALID_TXN_STATE),
                    }
                }),
        };
        let mut r = EndTxnResponse::default();
        if let Err(code) = result {
            r.error_code = code.0;
            if forced.is_none() {
                self.count_error(Api::EndTxn, code);
            }
        }
        r
    }

    /// The offsets `group` committed through transactions:
    /// (topic, partition, offset, metadata), sorted.
    pub fn committed_offsets(&self, group: &str) -> Vec<(String, i32, i64, Option<String>)> {
        self.txns
            .committed_offsets
            .iter()
            .filter(|((g, _, _), _)| g == group)
            .map(|((_, t, p), (o, m))| (t.clone(), *p, *o, m.clone()))
            .collect()
    }
}
