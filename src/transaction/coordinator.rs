//! The transaction thread's requests: FindCoordinator, InitProducerId,
//! AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit and EndTxn over
//! blocking [`Connection`]s to the transaction coordinator and the group
//! coordinator, each retried as Java's `TransactionManager` retries it.
//!
//! What to do with an error code is a pure function ([`classify`]), unit
//! tested below; [`Coordinators`] carries it out (find the coordinator
//! again, back off, or give up with an abortable or fatal error).
//!
//! Two flows. Transactions v1 (KIP-98): AddPartitionsToTxn at most v3 (v4+
//! is for brokers), AddOffsetsToTxn then TxnOffsetCommit at most v4, EndTxn
//! at most v4, Produce at most v11. Transactions v2 (KIP-890 part 2), when
//! the transaction coordinator finalizes `transaction.version` >= 2 and
//! speaks the versions that go with it ([`speaks_transactions_v2`]): no
//! AddPartitionsToTxn (Produce v12 adds the partition), no AddOffsetsToTxn
//! (TxnOffsetCommit v5 adds the group's offsets partition), and EndTxn v5,
//! whose answer carries the producer id and epoch of the next transaction.
//! The caller (`mod.rs`) says which flow each request belongs to, as Java's
//! request builders are told `isTransactionV2Enabled`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{parse_host_port, ProducerConfig};
use crate::error::Error;
use crate::io::conn::{Connection, SocketBuffers};
use crate::metadata::Metadata;
use crate::protocol::messages::add_offsets_to_txn::{
    self, AddOffsetsToTxnRequest, AddOffsetsToTxnResponse,
};
use crate::protocol::messages::add_partitions_to_txn::{
    self, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, AddPartitionsToTxnTopic,
};
use crate::protocol::messages::api_versions::ApiVersionsResponse;
use crate::protocol::messages::end_txn::{self, EndTxnRequest, EndTxnResponse};
use crate::protocol::messages::find_coordinator::{
    self, FindCoordinatorRequest, FindCoordinatorResponse, KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION,
};
use crate::protocol::messages::init_producer_id::{
    self, InitProducerIdRequest, InitProducerIdResponse,
};
use crate::protocol::messages::partition_errors::TopicPartitionErrors;
use crate::protocol::messages::produce;
use crate::protocol::messages::txn_offset_commit::{
    self, TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    TxnOffsetCommitResponse, GROUP_METADATA_VERSION,
};
use crate::protocol::ErrorCode;
use crate::util::later;

use super::{ConsumerGroupMetadata, OffsetToCommit};

/// The finalized feature (KIP-584) whose level 2 is transactions v2.
pub(crate) const TRANSACTION_VERSION: &str = "transaction.version";

/// Whether a broker that answered ApiVersions with `api` runs transactions
/// v2 (KIP-890 part 2): it finalizes `transaction.version` at 2 or more
/// (Java's `TransactionManager.maybeUpdateTransactionV2Enabled`), and it
/// speaks what the v2 flow sends or implies: Produce v12, EndTxn v5,
/// TxnOffsetCommit v5, and AddPartitionsToTxn v5 (the partition leaders'
/// own requests that add a partition on Produce v12). Java checks only the
/// feature; the versions guard against a broker that finalizes it without
/// them, which stays on v1.
pub(crate) fn speaks_transactions_v2(api: &ApiVersionsResponse) -> bool {
    let at_least = |key, v| api.range(key).is_some_and(|r| r.max_version >= v);
    api.finalized_level(TRANSACTION_VERSION)
        .is_some_and(|level| level >= 2)
        && at_least(produce::API_KEY, 12)
        && at_least(end_txn::API_KEY, 5)
        && at_least(txn_offset_commit::API_KEY, 5)
        && at_least(add_partitions_to_txn::API_KEY, 5)
}

/// The highest version of `api` to send in the flow `v2` says.
fn flow_max(v2: bool, max: i16, v1_max: i16) -> i16 {
    if v2 {
        max
    } else {
        v1_max
    }
}

/// Java's backoff for AddPartitionsToTxn answered CONCURRENT_TRANSACTIONS
/// (the previous transaction's markers are still being written).
pub(crate) const CONCURRENT_TXN_BACKOFF: Duration = Duration::from_millis(20);

/// The request an error code answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnApi {
    /// FindCoordinator for the transactional id.
    FindCoordinator,
    /// FindCoordinator for a consumer group (send_offsets_to_transaction).
    FindGroupCoordinator,
    InitProducerId,
    AddPartitions,
    AddOffsets,
    TxnOffsetCommit,
    EndTxn {
        commit: bool,
    },
}

impl TxnApi {
    pub(crate) fn name(self) -> &'static str {
        match self {
            TxnApi::FindCoordinator | TxnApi::FindGroupCoordinator => find_coordinator::API.name,
            TxnApi::InitProducerId => init_producer_id::API.name,
            TxnApi::AddPartitions => add_partitions_to_txn::API.name,
            TxnApi::AddOffsets => add_offsets_to_txn::API.name,
            TxnApi::TxnOffsetCommit => txn_offset_commit::API.name,
            TxnApi::EndTxn { .. } => end_txn::API.name,
        }
    }
}

/// What to do after an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reaction {
    /// Send it again after a backoff: `short` is Java's 20 ms for
    /// AddPartitionsToTxn's CONCURRENT_TRANSACTIONS, else
    /// `retry.backoff.ms`; `rediscover`: find the coordinator first.
    Retry { rediscover: bool, short: bool },
    /// The transaction must be aborted.
    Abortable,
    /// The producer cannot go on.
    Fatal,
}

/// The reaction to `code` (not NONE) in the answer to `api`, as Java's
/// `TransactionManager` handlers decide.
pub(crate) fn classify(api: TxnApi, code: ErrorCode) -> Reaction {
    use ErrorCode as E;
    let retry = |rediscover| Reaction::Retry {
        rediscover,
        short: false,
    };
    match code {
        E::COORDINATOR_NOT_AVAILABLE | E::NOT_COORDINATOR => retry(true),
        E::COORDINATOR_LOAD_IN_PROGRESS => retry(false),
        E::CONCURRENT_TRANSACTIONS => Reaction::Retry {
            rediscover: false,
            short: api == TxnApi::AddPartitions,
        },
        // Fenced by a newer producer (or epoch), not allowed, or a broker
        // that cannot do this: nothing later can succeed.
        E::PRODUCER_FENCED
        | E::INVALID_PRODUCER_EPOCH
        | E::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        | E::CLUSTER_AUTHORIZATION_FAILED
        | E::UNSUPPORTED_VERSION
        | E::UNSUPPORTED_FOR_MESSAGE_FORMAT
        | E::INVALID_PRODUCER_ID_MAPPING
        | E::INVALID_TRANSACTION_TIMEOUT
        // The coordinator's state for the id is not what this producer
        // believes (a transaction it thinks is open is not, or the reverse):
        // Java's AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit and
        // EndTxn handlers all make it fatal, and so do we.
        | E::INVALID_TXN_STATE => Reaction::Fatal,
        // The topic may still be being created (AddPartitionsToTxn), the
        // offsets partition loading, a request timed out: try again.
        c if c.is_retriable() => retry(false),
        // Before a producer id there is no transaction to abort, and an
        // abort that cannot end leaves nothing to fall back on.
        _ if matches!(
            api,
            TxnApi::InitProducerId | TxnApi::FindCoordinator | TxnApi::EndTxn { commit: false }
        ) =>
        {
            Reaction::Fatal
        }
        // TRANSACTION_ABORTABLE, group or topic authorization (also when
        // finding the group's coordinator), a consumer fenced from its
        // group (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID),
        // ... Java makes the codes it does not name fatal at EndTxn and
        // TxnOffsetCommit; here a commit refused with one leaves the abort
        // to try, and an abort refused is fatal.
        _ => Reaction::Abortable,
    }
}

/// Why an operation did not complete.
#[derive(Debug)]
pub(crate) enum Failure {
    Abortable(Error),
    Fatal(Error),
    /// The producer is closing; the operation was given up.
    Stopped,
}

/// One attempt's failure.
enum Step {
    Retry {
        rediscover: bool,
        short: bool,
        why: Error,
    },
    Abortable(Error),
    Fatal(Error),
}

impl Step {
    fn of(api: TxnApi, code: ErrorCode) -> Step {
        let why = Error::Coordinator {
            api: api.name(),
            code,
        };
        match classify(api, code) {
            Reaction::Retry { rediscover, short } => Step::Retry {
                rediscover,
                short,
                why,
            },
            Reaction::Abortable => Step::Abortable(why),
            Reaction::Fatal => Step::Fatal(why),
        }
    }

    /// A request that got no answer (network, timeout) or one we cannot
    /// send (no common version: fatal, as Java's UnsupportedVersionException;
    /// a connection that cannot authenticate: fatal, as Java's
    /// `TransactionManager.authenticationFailed`).
    fn net(e: Error) -> Step {
        match e {
            Error::UnsupportedVersion { .. } | Error::Authentication { .. } => Step::Fatal(e),
            why => Step::Retry {
                rediscover: true,
                short: false,
                why,
            },
        }
    }

    fn decode(api: TxnApi, from: &str, e: impl std::fmt::Display) -> Step {
        Step::net(Error::Protocol(format!("{} from {from}: {e}", api.name())))
    }
}

/// Waits between attempts; false once the producer is closing.
pub(crate) trait Pause {
    fn pause(&self, d: Duration) -> bool;
}

/// The worst outcome of per-partition error codes: fatal over abortable
/// over retry; OPERATION_NOT_ATTEMPTED (the others of a refused batch) is
/// not an outcome of its own.
fn worst(api: TxnApi, topics: &[TopicPartitionErrors]) -> Option<Step> {
    let mut worst: Option<Step> = None;
    for p in topics.iter().flat_map(|t| &t.partitions) {
        let code = ErrorCode(p.error_code);
        if code.is_ok() || code == ErrorCode::OPERATION_NOT_ATTEMPTED {
            continue;
        }
        let step = Step::of(api, code);
        let rank = |s: &Step| match s {
            Step::Fatal(_) => 3,
            Step::Abortable(_) => 2,
            Step::Retry { .. } => 1,
        };
        if worst.as_ref().is_none_or(|w| rank(&step) > rank(w)) {
            worst = Some(step);
        }
    }
    worst
}

/// The coordinators' connections, owned by the transaction thread.
pub(crate) struct Coordinators {
    cfg: Arc<ProducerConfig>,
    metadata: Arc<Metadata>,
    txn_id: String,
    /// Any broker, for FindCoordinator.
    any: Option<Connection>,
    /// The transaction coordinator of `txn_id`.
    txn: Option<Connection>,
    /// The group coordinator of the group last sent offsets for.
    group: Option<(String, Connection)>,
}

impl Coordinators {
    pub(crate) fn new(cfg: Arc<ProducerConfig>, metadata: Arc<Metadata>) -> Self {
        let txn_id = cfg.transactional_id.clone().unwrap_or_default();
        Coordinators {
            cfg,
            metadata,
            txn_id,
            any: None,
            txn: None,
            group: None,
        }
    }

    fn deadline(&self) -> Instant {
        later(Instant::now(), self.cfg.request_timeout)
    }

    /// Whether the transaction coordinator we are connected to runs
    /// transactions v2 ([`speaks_transactions_v2`]); `None` without a
    /// connection to it. Read after InitProducerId and after each EndTxn:
    /// the flow changes only between transactions.
    pub(crate) fn transactions_v2(&self) -> Option<bool> {
        self.txn
            .as_ref()
            .map(|c| speaks_transactions_v2(c.api_versions()))
    }

    fn open(&self, label: String, host: &str, port: u16) -> crate::error::Result<Connection> {
        Connection::open(
            label,
            host,
            port,
            &self.cfg.client_id,
            self.cfg.connection_setup_timeout,
            self.cfg.request_timeout,
            SocketBuffers::of(&self.cfg),
            self.cfg.tls.as_deref(),
            self.cfg.sasl(),
        )
    }

    /// A connection to any broker: the one we have, else a known broker,
    /// else a bootstrap server.
    fn any_broker(&mut self) -> Result<Connection, Step> {
        if let Some(mut c) = self.any.take() {
            c.renew_if_due(self.cfg.sasl(), self.cfg.request_timeout)
                .map_err(Step::net)?;
            return Ok(c);
        }
        let cluster = self.metadata.cluster();
        let mut candidates: Vec<(String, String, u16)> = cluster
            .nodes()
            .map(|n| (format!("node {n}"), n.host.clone(), n.port))
            .collect();
        for s in &self.cfg.bootstrap_servers {
            if let Ok((host, port)) = parse_host_port(s) {
                candidates.push((format!("bootstrap {s}"), host, port));
            }
        }
        let mut last = None;
        for (label, host, port) in candidates {
            match self.open(label, &host, port) {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(Step::net(last.unwrap_or_else(|| Error::Network {
            broker: "bootstrap.servers".into(),
            message: "no broker to ask for a coordinator".into(),
        })))
    }

    /// FindCoordinator for `key` (a transactional id or a group), then a
    /// connection to the coordinator it names.
    fn find(&mut self, key_type: i8, key: &str) -> Result<Connection, Step> {
        let api = if key_type == KEY_TYPE_GROUP {
            TxnApi::FindGroupCoordinator
        } else {
            TxnApi::FindCoordinator
        };
        let mut any = self.any_broker()?;
        let v = any.version_for(&find_coordinator::API).map_err(Step::net)?;
        if key_type == KEY_TYPE_TRANSACTION && v < 1 {
            return Err(Step::Fatal(Error::Protocol(format!(
                "{} speaks FindCoordinator v0 only, which cannot find a transaction coordinator",
                any.label
            ))));
        }
        let req = FindCoordinatorRequest::one(key_type, key);
        let deadline = self.deadline();
        let body = any
            .request(&find_coordinator::API, v, |b| req.encode(b, v), deadline)
            .map_err(Step::net)?;
        let resp = FindCoordinatorResponse::decode(&body, v)
            .map_err(|e| Step::decode(api, &any.label, e))?;
        any.throttled(resp.throttle_time_ms);
        self.any = Some(any);
        let (code, node, host, port) = if v >= 4 {
            match resp.coordinators.into_iter().find(|c| c.key == key) {
                Some(c) => (c.error_code, c.node_id, c.host, c.port),
                None => {
                    return Err(Step::decode(
                        api,
                        "a broker",
                        format!("no coordinator for {key}"),
                    ))
                }
            }
        } else {
            (resp.error_code, resp.node_id, resp.host, resp.port)
        };
        let code = ErrorCode(code);
        if !code.is_ok() {
            return Err(Step::of(api, code));
        }
        let port = u16::try_from(port)
            .map_err(|_| Step::decode(api, "a broker", format!("port {port}")))?;
        let what = if key_type == KEY_TYPE_GROUP {
            "group"
        } else {
            "transaction"
        };
        log::debug!("{what} coordinator of {key:?}: node {node} ({host}:{port})");
        self.open(
            format!("{what} coordinator {node} ({host}:{port})"),
            &host,
            port,
        )
        .map_err(Step::net)
    }

    /// Runs `f` over the transaction coordinator's connection (finding it
    /// first if needed); a failure that calls for it forgets the
    /// connection, so the next attempt finds the coordinator again.
    fn on_txn<T>(
        &mut self,
        f: impl FnOnce(&mut Connection, &str) -> Result<T, Step>,
    ) -> Result<T, Step> {
        let mut c = match self.txn.take() {
            Some(mut c) => {
                c.renew_if_due(self.cfg.sasl(), self.cfg.request_timeout)
                    .map_err(Step::net)?;
                c
            }
            None => {
                let id = self.txn_id.clone();
                self.find(KEY_TYPE_TRANSACTION, &id)?
            }
        };
        let r = f(&mut c, &self.txn_id);
        if !matches!(
            r,
            Err(Step::Retry {
                rediscover: true,
                ..
            })
        ) {
            self.txn = Some(c);
        }
        r
    }

    /// As [`on_txn`](Self::on_txn), for the group coordinator of `group`.
    fn on_group<T>(
        &mut self,
        group: &str,
        f: impl FnOnce(&mut Connection, &str) -> Result<T, Step>,
    ) -> Result<T, Step> {
        let mut c = match self.group.take() {
            Some((g, mut c)) if g == group => {
                c.renew_if_due(self.cfg.sasl(), self.cfg.request_timeout)
                    .map_err(Step::net)?;
                c
            }
            _ => self.find(KEY_TYPE_GROUP, group)?,
        };
        let r = f(&mut c, &self.txn_id);
        if !matches!(
            r,
            Err(Step::Retry {
                rediscover: true,
                ..
            })
        ) {
            self.group = Some((group.to_owned(), c));
        }
        r
    }

    /// Repeats `attempt` until it succeeds, fails for good, or `pause`
    /// says the producer is closing.
    fn retrying<T>(
        &mut self,
        pause: &dyn Pause,
        what: &str,
        mut attempt: impl FnMut(&mut Self) -> Result<T, Step>,
    ) -> Result<T, Failure> {
        let mut failures = 0u32;
        loop {
            match attempt(self) {
                Ok(t) => return Ok(t),
                Err(Step::Abortable(e)) => return Err(Failure::Abortable(e)),
                Err(Step::Fatal(e)) => return Err(Failure::Fatal(e)),
                Err(Step::Retry {
                    rediscover,
                    short,
                    why,
                }) => {
                    failures += 1;
                    let level = if failures % 20 == 1 && failures > 1 {
                        log::Level::Warn
                    } else {
                        log::Level::Debug
                    };
                    log::log!(
                        level,
                        "{}: {what} failed ({failures} in a row, retrying{}): {why}",
                        self.txn_id,
                        if rediscover {
                            " after finding the coordinator again"
                        } else {
                            ""
                        }
                    );
                    let backoff = if short {
                        CONCURRENT_TXN_BACKOFF
                    } else {
                        self.cfg.retry_backoff
                    };
                    if !pause.pause(backoff) {
                        return Err(Failure::Stopped);
                    }
                }
            }
        }
    }

    /// InitProducerId for the transactional id: a new epoch (fencing any
    /// older producer with the id), or, with `current` (v3+, KIP-360), the
    /// next epoch of the id we have.
    pub(crate) fn init_producer_id(
        &mut self,
        pause: &dyn Pause,
        current: Option<(i64, i16)>,
    ) -> Result<(i64, i16), Failure> {
        let api = TxnApi::InitProducerId;
        let timeout_ms = self
            .cfg
            .transaction_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32;
        self.retrying(pause, "InitProducerId", |me| {
            let deadline = me.deadline();
            me.on_txn(|c, txn_id| {
                let v = c.version_for(&init_producer_id::API).map_err(Step::net)?;
                let (producer_id, producer_epoch) = match current {
                    Some(_) if v < 3 => {
                        return Err(Step::Fatal(Error::Protocol(format!(
                            "{} speaks InitProducerId v{v}, which cannot bump an epoch (v3+)",
                            c.label
                        ))))
                    }
                    Some(p) => p,
                    None => (-1, -1),
                };
                let req = InitProducerIdRequest {
                    transactional_id: Some(txn_id.to_owned()),
                    transaction_timeout_ms: timeout_ms,
                    producer_id,
                    producer_epoch,
                };
                let body = c
                    .request(&init_producer_id::API, v, |b| req.encode(b, v), deadline)
                    .map_err(Step::net)?;
                let resp = InitProducerIdResponse::decode(&body, v)
                    .map_err(|e| Step::decode(api, &c.label, e))?;
                c.throttled(resp.throttle_time_ms);
                match ErrorCode(resp.error_code) {
                    ErrorCode::NONE => Ok((resp.producer_id, resp.producer_epoch)),
                    code => Err(Step::of(api, code)),
                }
            })
        })
    }

    /// AddPartitionsToTxn for `partitions` (one request).
    pub(crate) fn add_partitions(
        &mut self,
        pause: &dyn Pause,
        (producer_id, producer_epoch): (i64, i16),
        partitions: &[(Arc<str>, i32)],
    ) -> Result<(), Failure> {
        let api = TxnApi::AddPartitions;
        let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
        let mut sorted = partitions.to_vec();
        sorted.sort();
        for (t, p) in sorted {
            match topics.last_mut() {
                Some(last) if *last.name == *t => last.partitions.push(p),
                _ => topics.push(AddPartitionsToTxnTopic {
                    name: t.to_string(),
                    partitions: vec![p],
                }),
            }
        }
        self.retrying(pause, "AddPartitionsToTxn", |me| {
            let deadline = me.deadline();
            let topics = topics.clone();
            me.on_txn(|c, txn_id| {
                let v = c
                    .version_for(&add_partitions_to_txn::API)
                    .map_err(Step::net)?;
                let req = AddPartitionsToTxnRequest {
                    transactional_id: txn_id.to_owned(),
                    producer_id,
                    producer_epoch,
                    topics,
                };
                let body = c
                    .request(
                        &add_partitions_to_txn::API,
                        v,
                        |b| req.encode(b, v),
                        deadline,
                    )
                    .map_err(Step::net)?;
                let resp = AddPartitionsToTxnResponse::decode(&body, v)
                    .map_err(|e| Step::decode(api, &c.label, e))?;
                c.throttled(resp.throttle_time_ms);
                match worst(api, &resp.results_by_topic) {
                    None => Ok(()),
                    Some(step) => Err(step),
                }
            })
        })
    }

    /// AddOffsetsToTxn (the group's offsets partition joins the
    /// transaction), then TxnOffsetCommit to the group coordinator; in the
    /// v2 flow only TxnOffsetCommit (v5), which adds the partition itself.
    pub(crate) fn send_offsets(
        &mut self,
        pause: &dyn Pause,
        (producer_id, producer_epoch): (i64, i16),
        offsets: &[OffsetToCommit],
        group: &ConsumerGroupMetadata,
        v2: bool,
        added: &mut dyn FnMut(),
    ) -> Result<(), Failure> {
        if !v2 {
            self.add_offsets(pause, (producer_id, producer_epoch), &group.group_id)?;
        }
        // The transaction has begun at the coordinator (or, in the v2 flow,
        // will have once TxnOffsetCommit reaches it, as Java counts it): its
        // end must be sent, whatever happens to the commit below.
        added();
        self.txn_offset_commit(pause, (producer_id, producer_epoch), offsets, group, v2)
    }

    /// AddOffsetsToTxn (transactions v1).
    fn add_offsets(
        &mut self,
        pause: &dyn Pause,
        (producer_id, producer_epoch): (i64, i16),
        group_id: &str,
    ) -> Result<(), Failure> {
        let api = TxnApi::AddOffsets;
        self.retrying(pause, "AddOffsetsToTxn", |me| {
            let deadline = me.deadline();
            me.on_txn(|c, txn_id| {
                let v = c.version_for(&add_offsets_to_txn::API).map_err(Step::net)?;
                let req = AddOffsetsToTxnRequest {
                    transactional_id: txn_id.to_owned(),
                    producer_id,
                    producer_epoch,
                    group_id: group_id.to_owned(),
                };
                let body = c
                    .request(&add_offsets_to_txn::API, v, |b| req.encode(b, v), deadline)
                    .map_err(Step::net)?;
                let resp = AddOffsetsToTxnResponse::decode(&body, v)
                    .map_err(|e| Step::decode(api, &c.label, e))?;
                c.throttled(resp.throttle_time_ms);
                match ErrorCode(resp.error_code) {
                    ErrorCode::NONE => Ok(()),
                    code => Err(Step::of(api, code)),
                }
            })
        })
    }

    /// TxnOffsetCommit to the group coordinator: v5 in the v2 flow, at most
    /// v4 in v1.
    fn txn_offset_commit(
        &mut self,
        pause: &dyn Pause,
        (producer_id, producer_epoch): (i64, i16),
        offsets: &[OffsetToCommit],
        group: &ConsumerGroupMetadata,
        v2: bool,
    ) -> Result<(), Failure> {
        let api = TxnApi::TxnOffsetCommit;
        let max = flow_max(
            v2,
            txn_offset_commit::MAX_VERSION,
            txn_offset_commit::TXN_V1_MAX_VERSION,
        );
        let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
        let mut sorted = offsets.to_vec();
        sorted.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        for o in sorted {
            let p = TxnOffsetCommitRequestPartition {
                partition_index: o.partition,
                committed_offset: o.offset,
                committed_leader_epoch: o.leader_epoch.unwrap_or(-1),
                committed_metadata: o.metadata.clone(),
            };
            match topics.last_mut() {
                Some(last) if last.name == o.topic => last.partitions.push(p),
                _ => topics.push(TxnOffsetCommitRequestTopic {
                    name: o.topic.clone(),
                    partitions: vec![p],
                }),
            }
        }
        self.retrying(pause, "TxnOffsetCommit", |me| {
            let deadline = me.deadline();
            let topics = topics.clone();
            me.on_group(&group.group_id, |c, txn_id| {
                let v = c
                    .version_for(&txn_offset_commit::API)
                    .map_err(Step::net)?
                    .min(max);
                let req = TxnOffsetCommitRequest {
                    transactional_id: txn_id.to_owned(),
                    group_id: group.group_id.clone(),
                    producer_id,
                    producer_epoch,
                    generation_id: group.generation_id,
                    member_id: group.member_id.clone(),
                    group_instance_id: group.group_instance_id.clone(),
                    topics,
                };
                if req.has_group_metadata() && v < GROUP_METADATA_VERSION {
                    // Java: UnsupportedVersionException, fatal.
                    return Err(Step::Fatal(Error::Protocol(format!(
                        "{} speaks TxnOffsetCommit v{v}, which cannot carry the consumer group \
                         metadata (v{GROUP_METADATA_VERSION}+)",
                        c.label
                    ))));
                }
                let body = c
                    .request(&txn_offset_commit::API, v, |b| req.encode(b, v), deadline)
                    .map_err(Step::net)?;
                let resp = TxnOffsetCommitResponse::decode(&body, v)
                    .map_err(|e| Step::decode(api, &c.label, e))?;
                c.throttled(resp.throttle_time_ms);
                match worst(api, &resp.topics) {
                    None => Ok(()),
                    Some(step) => Err(step),
                }
            })
        })
    }

    /// EndTxn: commit or abort the open transaction. In the v2 flow (v5)
    /// the coordinator bumps the epoch and answers with the producer id and
    /// epoch for the next transaction: `Some` of them (a new id when the
    /// epoch ran out); `None` before v5.
    pub(crate) fn end_txn(
        &mut self,
        pause: &dyn Pause,
        (producer_id, producer_epoch): (i64, i16),
        commit: bool,
        v2: bool,
    ) -> Result<Option<(i64, i16)>, Failure> {
        let api = TxnApi::EndTxn { commit };
        let max = flow_max(v2, end_txn::MAX_VERSION, end_txn::TXN_V1_MAX_VERSION);
        self.retrying(pause, "EndTxn", |me| {
            let deadline = me.deadline();
            me.on_txn(|c, txn_id| {
                let v = c.version_for(&end_txn::API).map_err(Step::net)?.min(max);
                let req = EndTxnRequest {
                    transactional_id: txn_id.to_owned(),
                    producer_id,
                    producer_epoch,
                    committed: commit,
                };
                let body = c
                    .request(&end_txn::API, v, |b| req.encode(b, v), deadline)
                    .map_err(Step::net)?;
                let resp =
                    EndTxnResponse::decode(&body, v).map_err(|e| Step::decode(api, &c.label, e))?;
                c.throttled(resp.throttle_time_ms);
                match ErrorCode(resp.error_code) {
                    // Java adopts any id it is given (v5+), and keeps its
                    // own when the broker sends -1.
                    ErrorCode::NONE if resp.producer_id >= 0 && resp.producer_epoch >= 0 => {
                        Ok(Some((resp.producer_id, resp.producer_epoch)))
                    }
                    ErrorCode::NONE => Ok(None),
                    code => Err(Step::of(api, code)),
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::partition_errors::PartitionError;
    use ErrorCode as E;

    const ALL: [TxnApi; 8] = [
        TxnApi::FindCoordinator,
        TxnApi::FindGroupCoordinator,
        TxnApi::InitProducerId,
        TxnApi::AddPartitions,
        TxnApi::AddOffsets,
        TxnApi::TxnOffsetCommit,
        TxnApi::EndTxn { commit: true },
        TxnApi::EndTxn { commit: false },
    ];

    #[test]
    fn coordinator_moves_are_found_again_and_busy_ones_retried() {
        for api in ALL {
            for code in [E::COORDINATOR_NOT_AVAILABLE, E::NOT_COORDINATOR] {
                assert_eq!(
                    classify(api, code),
                    Reaction::Retry {
                        rediscover: true,
                        short: false
                    },
                    "{api:?} {code}"
                );
            }
            assert_eq!(
                classify(api, E::COORDINATOR_LOAD_IN_PROGRESS),
                Reaction::Retry {
                    rediscover: false,
                    short: false
                }
            );
            // Java's 20 ms is for AddPartitionsToTxn only.
            assert_eq!(
                classify(api, E::CONCURRENT_TRANSACTIONS),
                Reaction::Retry {
                    rediscover: false,
                    short: api == TxnApi::AddPartitions
                },
                "{api:?}"
            );
            assert!(matches!(
                classify(api, E::REQUEST_TIMED_OUT),
                Reaction::Retry { .. }
            ));
        }
        assert!(matches!(
            classify(TxnApi::AddPartitions, E::UNKNOWN_TOPIC_OR_PARTITION),
            Reaction::Retry { .. }
        ));
    }

    #[test]
    fn fencing_authorization_and_versions_are_fatal_everywhere() {
        for api in ALL {
            for code in [
                E::PRODUCER_FENCED,
                E::INVALID_PRODUCER_EPOCH,
                E::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                E::UNSUPPORTED_VERSION,
                E::INVALID_PRODUCER_ID_MAPPING,
                // Java's handlers, AddPartitionsToTxn and EndTxn included
                E::INVALID_TXN_STATE,
            ] {
                assert_eq!(classify(api, code), Reaction::Fatal, "{api:?} {code}");
            }
        }
        assert_eq!(
            classify(TxnApi::InitProducerId, E::INVALID_TRANSACTION_TIMEOUT),
            Reaction::Fatal
        );
        // Nothing to abort before an id, nothing to fall back on after a
        // failed abort.
        for api in [TxnApi::InitProducerId, TxnApi::EndTxn { commit: false }] {
            assert_eq!(classify(api, E::TRANSACTION_ABORTABLE), Reaction::Fatal);
        }
    }

    #[test]
    fn refused_steps_of_an_open_transaction_are_abortable() {
        for api in [
            TxnApi::AddPartitions,
            TxnApi::AddOffsets,
            TxnApi::TxnOffsetCommit,
            TxnApi::EndTxn { commit: true },
        ] {
            for code in [
                E::TRANSACTION_ABORTABLE,
                E::TOPIC_AUTHORIZATION_FAILED,
                E::GROUP_AUTHORIZATION_FAILED,
            ] {
                assert_eq!(classify(api, code), Reaction::Abortable, "{api:?} {code}");
            }
        }
        for code in [
            E::ILLEGAL_GENERATION,
            E::UNKNOWN_MEMBER_ID,
            E::FENCED_INSTANCE_ID,
        ] {
            assert_eq!(classify(TxnApi::TxnOffsetCommit, code), Reaction::Abortable);
        }
        // Not allowed to use the group: the transaction, not the producer.
        assert_eq!(
            classify(TxnApi::FindGroupCoordinator, E::GROUP_AUTHORIZATION_FAILED),
            Reaction::Abortable
        );
        assert_eq!(
            classify(TxnApi::FindCoordinator, E::GROUP_AUTHORIZATION_FAILED),
            Reaction::Fatal
        );
    }

    /// Transactions v2 needs the finalized feature at 2+ and the versions
    /// of the v2 flow; anything less is v1 (Tansu: Produce v11 and EndTxn
    /// v4, no features; the mock: no features).
    #[test]
    fn transactions_v2_needs_the_feature_and_the_versions() {
        use crate::protocol::messages::api_versions::{ApiVersionRange, FinalizedFeature};
        let broker = |level: Option<i16>, produce: i16, end: i16, offsets: i16, add: i16| {
            let range = |api_key, max_version| ApiVersionRange {
                api_key,
                min_version: 0,
                max_version,
            };
            ApiVersionsResponse {
                api_keys: vec![
                    range(produce::API_KEY, produce),
                    range(end_txn::API_KEY, end),
                    range(txn_offset_commit::API_KEY, offsets),
                    range(add_partitions_to_txn::API_KEY, add),
                ],
                finalized_features: level
                    .map(|l| FinalizedFeature {
                        name: TRANSACTION_VERSION.into(),
                        max_version_level: l,
                        min_version_level: l,
                    })
                    .into_iter()
                    .collect(),
                ..Default::default()
            }
        };
        // Kafka 4.4 with transaction.version=2 (Produce 13, TxnOffsetCommit 6).
        assert!(speaks_transactions_v2(&broker(Some(2), 13, 5, 6, 5)));
        assert!(speaks_transactions_v2(&broker(Some(2), 12, 5, 5, 5)));
        // The feature at 1 or 0, or not finalized at all.
        assert!(!speaks_transactions_v2(&broker(Some(1), 13, 5, 6, 5)));
        assert!(!speaks_transactions_v2(&broker(Some(0), 13, 5, 6, 5)));
        assert!(!speaks_transactions_v2(&broker(None, 13, 5, 6, 5)));
        // Finalized, but one version short.
        assert!(!speaks_transactions_v2(&broker(Some(2), 11, 5, 5, 5)));
        assert!(!speaks_transactions_v2(&broker(Some(2), 12, 4, 5, 5)));
        assert!(!speaks_transactions_v2(&broker(Some(2), 12, 5, 4, 5)));
        assert!(!speaks_transactions_v2(&broker(Some(2), 12, 5, 5, 3)));
        // Tansu 0.6 as it answers.
        assert!(!speaks_transactions_v2(&broker(None, 11, 4, 4, 5)));
        // Another feature at 2 is not this one.
        let mut other = broker(None, 13, 5, 6, 5);
        other.finalized_features.push(FinalizedFeature {
            name: "group.version".into(),
            max_version_level: 2,
            min_version_level: 0,
        });
        assert!(!speaks_transactions_v2(&other));
        assert_eq!(flow_max(true, 5, 4), 5);
        assert_eq!(flow_max(false, 5, 4), 4);
    }

    #[test]
    fn the_worst_partition_error_decides() {
        let topics = |codes: &[ErrorCode]| {
            vec![TopicPartitionErrors {
                name: "t".into(),
                partitions: codes
                    .iter()
                    .enumerate()
                    .map(|(i, c)| PartitionError {
                        partition_index: i as i32,
                        error_code: c.0,
                    })
                    .collect(),
            }]
        };
        let api = TxnApi::AddPartitions;
        assert!(worst(api, &topics(&[E::NONE, E::NONE])).is_none());
        assert!(worst(api, &topics(&[E::OPERATION_NOT_ATTEMPTED])).is_none());
        assert!(matches!(
            worst(api, &topics(&[E::NONE, E::CONCURRENT_TRANSACTIONS])),
            Some(Step::Retry { short: true, .. })
        ));
        assert!(matches!(
            worst(
                api,
                &topics(&[
                    E::CONCURRENT_TRANSACTIONS,
                    E::TOPIC_AUTHORIZATION_FAILED,
                    E::OPERATION_NOT_ATTEMPTED
                ])
            ),
            Some(Step::Abortable(Error::Coordinator {
                code: E::TOPIC_AUTHORIZATION_FAILED,
                ..
            }))
        ));
        assert!(matches!(
            worst(
                api,
                &topics(&[E::TOPIC_AUTHORIZATION_FAILED, E::PRODUCER_FENCED])
            ),
            Some(Step::Fatal(_))
        ));
    }
}
