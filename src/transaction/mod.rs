//! Transactions (KIP-98, Java's `transactional.id` API): the
//! [`TransactionManager`] behind `Producer::init_transactions`,
//! `begin_transaction`, `send_offsets_to_transaction`,
//! `commit_transaction` and `abort_transaction`, and the transaction
//! thread that talks to the coordinators.
//!
//! Two flows, chosen as Java's `TransactionManager` chooses them. The
//! transactions v1 flow (KIP-98): Produce at most v11, AddPartitionsToTxn
//! before a partition's first batch, AddOffsetsToTxn then TxnOffsetCommit
//! (at most v4), EndTxn at most v4. The transactions v2 flow (KIP-890 part
//! 2), when the transaction coordinator finalizes `transaction.version`
//! at 2 or more and speaks its versions (`coordinator::speaks_transactions_v2`):
//! Produce v12 adds the partition to the transaction itself, so drain does
//! not wait for anything; TxnOffsetCommit v5 without AddOffsetsToTxn; and
//! EndTxn v5, after which the coordinator has bumped the epoch (a new id
//! when it ran out): the producer adopts the id and epoch it answers and
//! every partition's sequences restart from 0 before the next
//! transaction. The flow is chosen after InitProducerId and again after
//! each EndTxn (`Inner::v2`), so it never changes within a transaction;
//! moving up from v1 to v2 between transactions bumps the epoch first
//! (InitProducerId with the current id and epoch), as Java does. Tansu
//! and librdkafka's mock finalize no `transaction.version`: v1 there.
//!
//! # Who does what
//!
//! * The caller's thread runs the state machine (`state.rs`) under
//!   [`TxnShared`]'s mutex, and does the waiting that involves batches:
//!   `commit_transaction` flushes, `abort_transaction` fails the queued
//!   batches and waits for those in flight. It hands each coordinator
//!   request to the transaction thread and waits for its [`Completion`] at
//!   most `max.block.ms`; a call that times out leaves the operation
//!   pending ([`Pending`]), and calling it again waits for the same one.
//! * The transaction thread (`<client.id>-txn`) owns the coordinator
//!   connections (`coordinator.rs`) and runs one thing at a time: a user
//!   operation (InitProducerId, AddOffsetsToTxn + TxnOffsetCommit, EndTxn),
//!   one AddPartitionsToTxn for every partition waiting to join the
//!   transaction, or a sweep that fails the queued batches once the
//!   transaction must be aborted (Java's `abortUndrainedBatches`).
//! * I/O threads ask [`TxnShared::may_drain`] (the accumulator's
//!   [`TxnHooks`]) before they take a partition's batch: a partition not
//!   yet in the transaction is registered as pending and skipped; once
//!   AddPartitionsToTxn answers, the transaction thread wakes every I/O
//!   thread. A failed batch is reported ([`TxnHooks::on_failed`]) before
//!   its callback runs, so a `commit_transaction` after it fails.
//!
//! **Invariant:** a batch of a partition is drained only while the
//! partition is in `Inner::added` and the state is `InTransaction` or
//! `Committing`; `added` is cleared only after EndTxn answered, when no
//! batch of the transaction is left (commit flushed, abort failed the
//! queued ones and waited for the rest). So every produced batch is in a
//! partition the coordinator will write a marker to.
//!
//! Lock order: a `PartitionQueue` lock -> `TxnShared::inner` (`may_drain`
//! runs under the partition lock; the transaction thread never takes a
//! partition lock while holding `inner`). `Completion` locks are leaves.

mod coordinator;
mod state;

use std::collections::HashSet;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::accumulator::{PartitionQueue, RecordAccumulator, TxnHooks};
use crate::config::ProducerConfig;
use crate::error::{Error, Result};
use crate::metadata::Metadata;
use crate::protocol::messages::produce;
use crate::protocol::ErrorCode;
use coordinator::{Coordinators, Failure, Pause};
use state::TxnState;

/// A consumer's group membership, as `send_offsets_to_transaction` sends
/// it to the group coordinator (Java's `ConsumerGroupMetadata`, KIP-447):
/// with the generation and member id the group coordinator can refuse a
/// commit from a consumer that has lost its partitions (a zombie).
///
/// ```
/// use kafka_producer::ConsumerGroupMetadata;
///
/// let mut group = ConsumerGroupMetadata::new("billing");
/// group.generation_id = 7;
/// group.member_id = "consumer-1-8c2f".into();
/// assert_eq!(group.group_instance_id, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// The consumer group.
    pub group_id: String,
    /// The group's generation; -1 (the default) when not a member.
    pub generation_id: i32,
    /// The member id the group coordinator gave; "" (the default) when none.
    pub member_id: String,
    /// The static member id (`group.instance.id`, KIP-345), if any.
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// The metadata of `group_id` with no membership: generation -1, no
    /// member id, no instance id (Java's `new ConsumerGroupMetadata(groupId)`).
    pub fn new(group_id: impl Into<String>) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

/// One consumed position to commit with the transaction (Java's
/// `TopicPartition` -> `OffsetAndMetadata`): the offset of the next record
/// to consume. Made from `(topic, partition, offset)` or `(topic,
/// partition, offset, metadata)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetToCommit {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the record consumed last, if known.
    pub leader_epoch: Option<i32>,
    /// Free-form metadata stored with the offset.
    pub metadata: Option<String>,
}

impl<T: AsRef<str>> From<(T, i32, i64)> for OffsetToCommit {
    fn from((topic, partition, offset): (T, i32, i64)) -> Self {
        OffsetToCommit {
            topic: topic.as_ref().to_owned(),
            partition,
            offset,
            leader_epoch: None,
            metadata: None,
        }
    }
}

impl<T: AsRef<str>, M: AsRef<str>> From<(T, i32, i64, M)> for OffsetToCommit {
    fn from((topic, partition, offset, metadata): (T, i32, i64, M)) -> Self {
        OffsetToCommit {
            metadata: Some(metadata.as_ref().to_owned()),
            ..(topic, partition, offset).into()
        }
    }
}

impl<T: AsRef<str>> From<&(T, i32, i64)> for OffsetToCommit {
    fn from((topic, partition, offset): &(T, i32, i64)) -> Self {
        (topic.as_ref(), *partition, *offset).into()
    }
}

impl<T: AsRef<str>, M: AsRef<str>> From<&(T, i32, i64, M)> for OffsetToCommit {
    fn from((topic, partition, offset, metadata): &(T, i32, i64, M)) -> Self {
        (topic.as_ref(), *partition, *offset, metadata.as_ref()).into()
    }
}

/// A user operation that may time out and be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Init,
    SendOffsets,
    Commit,
    Abort,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Init => "init_transactions",
            Op::SendOffsets => "send_offsets_to_transaction",
            Op::Commit => "commit_transaction",
            Op::Abort => "abort_transaction",
        }
    }
}

/// What the transaction thread is asked to do for a user operation.
enum Job {
    Init,
    SendOffsets {
        offsets: Vec<OffsetToCommit>,
        group: ConsumerGroupMetadata,
    },
    EndTxn {
        commit: bool,
    },
}

/// The outcome of a job, which the caller (or, after a timeout, the
/// caller's retry) waits for.
#[derive(Default)]
struct Completion {
    result: Mutex<Option<Result<()>>>,
    cond: Condvar,
}

impl Completion {
    fn set(&self, r: Result<()>) {
        *self.result.lock() = Some(r);
        self.cond.notify_all();
    }

    fn wait_until(&self, deadline: Instant) -> Option<Result<()>> {
        let mut g = self.result.lock();
        while g.is_none() {
            if self.cond.wait_until(&mut g, deadline).timed_out() {
                break;
            }
        }
        g.clone()
    }
}

/// A user operation under way. Its completion exists from the start, so
/// every caller of the operation (a retry after a timeout, or a second
/// thread calling the same method meanwhile) waits for the one outcome, as
/// Java's callers share one `TransactionalRequestResult`. Commit and abort
/// have a first phase on the caller's thread (flush, abort queued batches)
/// before the job is handed to the transaction thread (`handed_over`).
struct Pending {
    op: Op,
    completion: Arc<Completion>,
    handed_over: bool,
}

type PartitionKey = (Arc<str>, i32);

struct Inner {
    st: TxnState,
    /// From InitProducerId; the accumulator has a copy for its batches.
    producer: Option<(i64, i16)>,
    /// The open (or next) transaction runs the transactions v2 flow.
    /// Set by the transaction thread after InitProducerId and after each
    /// EndTxn, so never within a transaction.
    v2: bool,
    /// Partitions in the open transaction (AddPartitionsToTxn answered; v1
    /// flow only).
    added: HashSet<PartitionKey>,
    /// Partitions drain found ready and not yet added.
    to_add: HashSet<PartitionKey>,
    /// The coordinator knows of the transaction (a partition or offsets
    /// were added): its end must be sent. Java's `transactionStarted`.
    started: bool,
    /// The job for the transaction thread.
    job: Option<(Job, Arc<Completion>)>,
    pending: Option<Pending>,
    /// Fail every queued batch with this (the transaction must be aborted,
    /// or the producer is fatal).
    sweep: Option<Error>,
    /// A batch that had taken a sequence number failed: the broker will
    /// never see that sequence, so after the abort the epoch is bumped and
    /// sequences start again (KIP-360).
    sequence_gap: bool,
    stop: bool,
}

impl Inner {
    /// Before `init_transactions`: no producer id, nothing added or due.
    fn new(st: TxnState) -> Self {
        Inner {
            st,
            producer: None,
            v2: false,
            added: HashSet::new(),
            to_add: HashSet::new(),
            started: false,
            job: None,
            pending: None,
            sweep: None,
            sequence_gap: false,
            stop: false,
        }
    }
}

/// What the transaction thread, the I/O threads (as [`TxnHooks`]) and the
/// caller share.
pub(crate) struct TxnShared {
    inner: Mutex<Inner>,
    /// Wakes the transaction thread (work, or stop).
    cond: Condvar,
}

impl TxnShared {
    /// Under `inner`: moves to a fatal or abortable state after `err`, and
    /// asks for the sweep of queued batches if the state changed.
    fn fail(&self, g: &mut Inner, err: Error, fatal: bool) {
        if fatal {
            if g.st.fatal_cause().is_none() {
                g.st.fatal(err);
                g.sweep = g.st.fatal_cause();
                self.cond.notify_all();
            }
        } else if g.st.abortable(err) {
            g.sweep = g.st.abortable_cause();
            self.cond.notify_all();
        }
    }
}

/// A produce error that ends the transactional producer: fenced by a newer
/// instance (or epoch), or not allowed.
fn is_fatal_produce_error(err: &Error) -> bool {
    match err {
        Error::Broker { code, .. } => matches!(
            *code,
            ErrorCode::PRODUCER_FENCED
                | ErrorCode::INVALID_PRODUCER_EPOCH
                | ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                | ErrorCode::CLUSTER_AUTHORIZATION_FAILED
        ),
        Error::UnsupportedVersion { .. } => true,
        _ => false,
    }
}

impl TxnHooks for TxnShared {
    fn may_drain(&self, q: &PartitionQueue) -> bool {
        let mut g = self.inner.lock();
        if !g.st.may_drain() {
            return false;
        }
        if g.v2 {
            // Produce v12 adds the partition: the coordinator hears of the
            // transaction from the leader, so its end must be sent.
            g.started = true;
            return true;
        }
        let key = (q.topic.clone(), q.partition);
        if g.added.contains(&key) {
            return true;
        }
        if g.to_add.insert(key) {
            self.cond.notify_all();
        }
        false
    }

    fn max_produce_version(&self) -> i16 {
        if self.inner.lock().v2 {
            produce::MAX_VERSION
        } else {
            produce::TXN_V1_MAX_VERSION
        }
    }

    fn on_failed(&self, err: &Error, sequenced: bool) {
        let mut g = self.inner.lock();
        if sequenced {
            g.sequence_gap = true;
        }
        let fatal = is_fatal_produce_error(err);
        self.fail(&mut g, err.clone(), fatal);
    }
}

impl Pause for TxnShared {
    fn pause(&self, d: Duration) -> bool {
        let mut g = self.inner.lock();
        if !g.stop {
            self.cond.wait_for(&mut g, d);
        }
        !g.stop
    }
}

/// The transactional side of a producer with `transactional.id`.
pub(crate) struct TransactionManager {
    shared: Arc<TxnShared>,
    accumulator: Arc<RecordAccumulator>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the transaction thread does next.
enum Work {
    Sweep(Error),
    Job(Job, Arc<Completion>),
    Add((i64, i16), Vec<PartitionKey>),
}

impl TransactionManager {
    /// Hooks into `accumulator` and starts the transaction thread. No
    /// broker is contacted before `init_transactions`.
    pub(crate) fn start(
        cfg: Arc<ProducerConfig>,
        accumulator: Arc<RecordAccumulator>,
        metadata: Arc<Metadata>,
    ) -> Result<Arc<TransactionManager>> {
        let txn_id = cfg.transactional_id.clone().unwrap_or_default();
        let shared = Arc::new(TxnShared {
            inner: Mutex::new(Inner::new(TxnState::new(&txn_id))),
            cond: Condvar::new(),
        });
        accumulator.set_txn_hooks(shared.clone());
        let (s, acc) = (shared.clone(), accumulator.clone());
        let coordinators = Coordinators::new(cfg.clone(), metadata);
        let thread = std::thread::Builder::new()
            .name(format!("{}-txn", cfg.client_id))
            .spawn(move || {
                // Its sweeps run send callbacks.
                crate::io::mark_io_thread();
                run(&s, &acc, coordinators)
            })
            .map_err(|e| Error::Internal(format!("cannot start the transaction thread: {e}")))?;
        Ok(Arc::new(TransactionManager {
            shared,
            accumulator,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// For `send`: only inside a transaction.
    pub(crate) fn check_send(&self) -> Result<()> {
        self.shared.inner.lock().st.check_send()
    }

    /// `begin_transaction`: local, as Java's.
    pub(crate) fn begin(&self) -> Result<()> {
        let mut g = self.shared.inner.lock();
        if let Some(p) = &g.pending {
            return Err(previous_timed_out("begin_transaction", p.op));
        }
        g.st.begin()
    }

    /// `init_transactions`: FindCoordinator, InitProducerId.
    pub(crate) fn init(&self, deadline: Instant) -> Result<()> {
        let c = self.start_job(Op::Init, |st| st.begin_init(), || Job::Init)?;
        self.wait(Op::Init, &c, deadline)
    }

    /// `send_offsets_to_transaction`: AddOffsetsToTxn, TxnOffsetCommit.
    pub(crate) fn send_offsets(
        &self,
        offsets: Vec<OffsetToCommit>,
        group: &ConsumerGroupMetadata,
        deadline: Instant,
    ) -> Result<()> {
        if group.group_id.is_empty() {
            return Err(Error::InvalidOperation(
                "send_offsets_to_transaction: the group id is empty".into(),
            ));
        }
        let c = self.start_job(
            Op::SendOffsets,
            |st| st.check_send_offsets(),
            || Job::SendOffsets {
                offsets,
                group: group.clone(),
            },
        )?;
        self.wait(Op::SendOffsets, &c, deadline)
    }

    /// `commit_transaction`: flush, then EndTxn(commit).
    pub(crate) fn commit(&self, deadline: Instant) -> Result<()> {
        let (c, handed_over) = self.start_two_phase(Op::Commit, |st| st.begin_commit())?;
        if handed_over {
            return self.wait(Op::Commit, &c, deadline);
        }
        let started = Instant::now();
        let acc = &self.accumulator;
        let mark = acc.begin_flush();
        if !acc.await_flush_until(mark, deadline) {
            return Err(timed_out(Op::Commit, started));
        }
        self.second_phase(Op::Commit, &c, Job::EndTxn { commit: true })?;
        self.wait(Op::Commit, &c, deadline)
    }

    /// `abort_transaction`: fail the queued records, wait for those in
    /// flight, then EndTxn(abort).
    pub(crate) fn abort(&self, deadline: Instant) -> Result<()> {
        let (c, handed_over) = self.start_two_phase(Op::Abort, |st| st.begin_abort())?;
        if handed_over {
            return self.wait(Op::Abort, &c, deadline);
        }
        let started = Instant::now();
        let acc = &self.accumulator;
        acc.abort_queued(
            None,
            &Error::Aborted("the transaction was aborted (abort_transaction)".into()),
        );
        if !acc.await_all_complete(deadline) {
            return Err(timed_out(Op::Abort, started));
        }
        self.second_phase(Op::Abort, &c, Job::EndTxn { commit: false })?;
        self.wait(Op::Abort, &c, deadline)
    }

    /// For a graceful `close`: aborts a transaction left open (as Java's
    /// producer does when it closes), waiting until `deadline` at most, so
    /// that it does not hold back `read_committed` readers until
    /// `transaction.timeout.ms`. An operation already handed to the
    /// transaction thread (a commit's or abort's EndTxn, say, called on
    /// another thread) is waited for instead, until `deadline` too: Java's
    /// sender keeps running its transactional requests until the close
    /// times out. Nothing happens outside a transaction, or while a
    /// timed-out call awaits its retry.
    pub(crate) fn abort_on_close(&self, deadline: Instant) {
        let (open, under_way) = {
            let g = self.shared.inner.lock();
            let under_way = g
                .pending
                .as_ref()
                .filter(|p| p.handed_over)
                .map(|p| p.completion.clone());
            let open = g.pending.is_none()
                && matches!(
                    g.st.state,
                    state::State::InTransaction | state::State::AbortableError(_)
                );
            (open, under_way)
        };
        if let Some(c) = under_way {
            log::info!("waiting for the transactional request under way: the producer is closing");
            // Its caller takes the outcome; this only waits for it.
            let _ = c.wait_until(deadline);
        } else if open {
            log::info!("aborting the open transaction: the producer is closing");
            if let Err(e) = self.abort(deadline) {
                log::warn!("could not abort the open transaction while closing: {e}");
            }
        }
    }

    /// Stops the transaction thread (at its next step; a request under
    /// way is given up). A job nobody will run fails with
    /// [`Error::Closed`].
    pub(crate) fn shutdown(&self) {
        let job = {
            let mut g = self.shared.inner.lock();
            g.stop = true;
            self.shared.cond.notify_all();
            g.job.take()
        };
        if let Some((_, c)) = job {
            c.set(Err(Error::Closed));
        }
        let mut t = self.thread.lock();
        if t.as_ref().is_some_and(|h| h.is_finished()) {
            let _ = t.take().expect("checked").join();
        }
    }

    /// Starts `op` (a one-phase job), or resumes it after a timeout.
    fn start_job(
        &self,
        op: Op,
        check: impl FnOnce(&mut TxnState) -> Result<()>,
        job: impl FnOnce() -> Job,
    ) -> Result<Arc<Completion>> {
        let mut g = self.shared.inner.lock();
        match &g.pending {
            Some(p) if p.op == op => return Ok(p.completion.clone()),
            Some(p) => return Err(previous_timed_out(op.name(), p.op)),
            None => {}
        }
        check(&mut g.st)?;
        let c = Arc::new(Completion::default());
        g.job = Some((job(), c.clone()));
        g.pending = Some(Pending {
            op,
            completion: c.clone(),
            handed_over: true,
        });
        self.shared.cond.notify_all();
        Ok(c)
    }

    /// Starts `op` (commit or abort), or joins it (a retry after a
    /// timeout, or a concurrent call): its completion, and whether its job
    /// was handed over already (then wait for it; else run, or re-run, the
    /// caller's phase first).
    fn start_two_phase(
        &self,
        op: Op,
        check: impl FnOnce(&mut TxnState) -> Result<()>,
    ) -> Result<(Arc<Completion>, bool)> {
        let mut g = self.shared.inner.lock();
        match &g.pending {
            Some(p) if p.op == op => return Ok((p.completion.clone(), p.handed_over)),
            Some(p) => return Err(previous_timed_out(op.name(), p.op)),
            None => {}
        }
        check(&mut g.st)?;
        let c = Arc::new(Completion::default());
        g.pending = Some(Pending {
            op,
            completion: c.clone(),
            handed_over: false,
        });
        Ok((c, false))
    }

    /// After the caller's phase: hands EndTxn over with completion `c`,
    /// unless the transaction has become fatal or (for a commit) abortable
    /// meanwhile, or another caller of the same operation handed it over
    /// already (or saw it end): then the caller just waits for `c`.
    ///
    /// Two threads in `commit_transaction` at once: both join one pending
    /// operation and flush; the first to get here hands EndTxn over, the
    /// second finds `handed_over` (or the operation already over, `c` set)
    /// and hands nothing, so EndTxn goes once and both get its outcome.
    fn second_phase(&self, op: Op, c: &Arc<Completion>, job: Job) -> Result<()> {
        let mut g = self.shared.inner.lock();
        let ours = match g.pending.as_mut() {
            Some(p) if Arc::ptr_eq(&p.completion, c) => p,
            _ => return Ok(()), // over: `c` has its outcome
        };
        if ours.handed_over {
            return Ok(());
        }
        let refused = g.st.fatal_cause().or_else(|| match op {
            Op::Commit => g.st.abortable_cause(),
            _ => None,
        });
        if let Some(e) = refused {
            g.pending = None;
            // A concurrent caller of the operation hears it too.
            c.set(Err(e.clone()));
            return Err(e);
        }
        if let Some(p) = g.pending.as_mut() {
            p.handed_over = true;
        }
        g.job = Some((job, c.clone()));
        self.shared.cond.notify_all();
        Ok(())
    }

    /// Waits for `c` until `deadline`; the operation stays pending on a
    /// timeout, and is over otherwise.
    fn wait(&self, op: Op, c: &Arc<Completion>, deadline: Instant) -> Result<()> {
        let started = Instant::now();
        match c.wait_until(deadline) {
            None => Err(timed_out(op, started)),
            Some(r) => {
                let mut g = self.shared.inner.lock();
                let ours = g
                    .pending
                    .as_ref()
                    .is_some_and(|p| Arc::ptr_eq(&p.completion, c));
                if ours {
                    g.pending = None;
                }
                r
            }
        }
    }
}

fn timed_out(op: Op, started: Instant) -> Error {
    Error::TransactionTimeout {
        operation: op.name(),
        waited_ms: started.elapsed().as_millis() as u64,
    }
}

fn previous_timed_out(attempted: &str, pending: Op) -> Error {
    Error::InvalidOperation(format!(
        "cannot attempt operation {attempted} because the previous call to {} timed out and \
         must be retried",
        pending.name()
    ))
}

/// The transaction thread's body: one piece of work at a time until
/// `shutdown`.
fn run(shared: &TxnShared, acc: &RecordAccumulator, mut coord: Coordinators) {
    loop {
        let work = {
            let mut g = shared.inner.lock();
            loop {
                if g.stop {
                    return;
                }
                if let Some(e) = g.sweep.take() {
                    break Work::Sweep(e);
                }
                if let Some((job, c)) = g.job.take() {
                    break Work::Job(job, c);
                }
                if let (false, true, Some(p)) = (g.to_add.is_empty(), g.st.may_drain(), g.producer)
                {
                    break Work::Add(p, g.to_add.iter().cloned().collect());
                }
                shared.cond.wait(&mut g);
            }
        };
        match work {
            // The transaction can only be aborted now (or the producer is
            // fatal): what is queued will never be sent.
            Work::Sweep(e) => acc.abort_queued(None, &e),
            Work::Add(producer, partitions) => {
                match coord.add_partitions(shared, producer, &partitions) {
                    Ok(()) => {
                        let mut g = shared.inner.lock();
                        for p in partitions {
                            g.to_add.remove(&p);
                            g.added.insert(p);
                        }
                        g.started = true;
                        drop(g);
                        acc.wake_all();
                    }
                    Err(f) => {
                        let mut g = shared.inner.lock();
                        g.to_add.clear();
                        if !failed(shared, &mut g, f) {
                            return;
                        }
                    }
                }
            }
            Work::Job(job, c) => {
                if let Some(r) = run_job(shared, acc, &mut coord, job) {
                    c.set(r);
                } else {
                    c.set(Err(Error::Closed));
                    return;
                }
            }
        }
    }
}

/// Moves the state after a failed step (under `inner`); false if the
/// thread is stopping.
fn failed(shared: &TxnShared, g: &mut Inner, f: Failure) -> bool {
    match f {
        Failure::Abortable(e) => shared.fail(g, e, false),
        Failure::Fatal(e) => shared.fail(g, e, true),
        Failure::Stopped => return false,
    }
    true
}

/// The error a failed job's caller gets.
fn job_error(g: &Inner) -> Error {
    g.st.fatal_cause()
        .or_else(|| g.st.abortable_cause())
        .unwrap_or_else(|| Error::Internal("a transactional step failed without a cause".into()))
}

/// Runs a user job; `None` if the thread is stopping.
fn run_job(
    shared: &TxnShared,
    acc: &RecordAccumulator,
    coord: &mut Coordinators,
    job: Job,
) -> Option<Result<()>> {
    let producer = shared.inner.lock().producer;
    match job {
        Job::Init => match coord.init_producer_id(shared, None) {
            Ok((id, epoch)) => {
                let v2 = coord.transactions_v2().unwrap_or(false);
                log::info!(
                    "transactional producer id {id}, epoch {epoch}, transactions v{}",
                    if v2 { 2 } else { 1 }
                );
                let mut g = shared.inner.lock();
                g.producer = Some((id, epoch));
                g.v2 = v2;
                g.st.init_done();
                drop(g);
                acc.set_producer_id(id, epoch);
                Some(Ok(()))
            }
            Err(Failure::Stopped) => None,
            // Nothing to abort before there is a producer id.
            Err(Failure::Abortable(e) | Failure::Fatal(e)) => {
                let mut g = shared.inner.lock();
                shared.fail(&mut g, e, true);
                Some(Err(job_error(&g)))
            }
        },
        Job::SendOffsets { offsets, group } => {
            let producer = producer.expect("in a transaction, so initialized");
            let v2 = shared.inner.lock().v2;
            let mut started = || shared.inner.lock().started = true;
            match coord.send_offsets(shared, producer, &offsets, &group, v2, &mut started) {
                Ok(()) => Some(Ok(())),
                Err(f) => {
                    let mut g = shared.inner.lock();
                    failed(shared, &mut g, f).then(|| Err(job_error(&g)))
                }
            }
        }
        Job::EndTxn { commit } => {
            let producer = producer.expect("in a transaction, so initialized");
            // Java sends no EndTxn for a transaction the coordinator never
            // heard of (nothing was sent, no offsets): it would refuse it.
            let (started, v2) = {
                let g = shared.inner.lock();
                (g.started, g.v2)
            };
            let mut producer = producer;
            if started {
                match coord.end_txn(shared, producer, commit, v2) {
                    // Transactions v2: the coordinator bumped the epoch
                    // (KIP-890); the next transaction's batches carry the
                    // new one, every partition from sequence 0.
                    Ok(Some(next)) => {
                        log::debug!(
                            "transaction ended; producer id {}, epoch {} -> id {}, epoch {}",
                            producer.0,
                            producer.1,
                            next.0,
                            next.1
                        );
                        acc.set_producer_id(next.0, next.1);
                        acc.reset_sequences();
                        producer = next;
                        let mut g = shared.inner.lock();
                        g.producer = Some(next);
                        // The new epoch is the bump a sequence gap needs.
                        g.sequence_gap = false;
                    }
                    Ok(None) => {}
                    Err(f) => {
                        let mut g = shared.inner.lock();
                        return failed(shared, &mut g, f).then(|| Err(job_error(&g)));
                    }
                }
            }
            // The flow of the next transaction. Moving up to v2 needs a new
            // epoch first (Java's clientSideEpochBumpRequired on upgrade);
            // down to v1 needs nothing.
            let next_v2 = coord.transactions_v2().unwrap_or(v2);
            let upgrade = next_v2 && !v2;
            let bump = upgrade || (!commit && shared.inner.lock().sequence_gap);
            if bump {
                // A sequence the broker will never see (or a new flow): a
                // new epoch, and every partition's sequence from 0 (KIP-360).
                match coord.init_producer_id(shared, Some(producer)) {
                    Ok((id, epoch)) => {
                        log::info!(
                            "epoch bumped after the transaction: producer id {id}, epoch {epoch}"
                        );
                        acc.set_producer_id(id, epoch);
                        acc.reset_sequences();
                        let mut g = shared.inner.lock();
                        g.producer = Some((id, epoch));
                        g.sequence_gap = false;
                    }
                    Err(Failure::Stopped) => return None,
                    Err(Failure::Abortable(e) | Failure::Fatal(e)) => {
                        let mut g = shared.inner.lock();
                        shared.fail(&mut g, e, true);
                        return Some(Err(job_error(&g)));
                    }
                }
            }
            let mut g = shared.inner.lock();
            if next_v2 != v2 {
                log::info!(
                    "transactions v{} from the next transaction on (the coordinator's \
                     transaction.version changed)",
                    if next_v2 { 2 } else { 1 }
                );
            }
            g.v2 = next_v2;
            g.added.clear();
            g.to_add.clear();
            g.started = false;
            g.st.end_done();
            Some(Ok(()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accumulator::{AccumulatorConfig, RecordParts};
    use crate::protocol::compression::Compression;
    use crate::protocol::records::{decode_batches, record_fixed_size, ATTR_TRANSACTIONAL};
    use crate::util::Budget;
    use state::State;

    fn shared(state: State) -> Arc<TxnShared> {
        let mut st = TxnState::new("tx");
        st.state = state;
        Arc::new(TxnShared {
            inner: Mutex::new(Inner {
                producer: Some((7, 1)),
                ..Inner::new(st)
            }),
            cond: Condvar::new(),
        })
    }

    fn accumulator(hooks: Arc<TxnShared>) -> (RecordAccumulator, Arc<[Arc<PartitionQueue>]>) {
        let acc = RecordAccumulator::new(
            AccumulatorConfig {
                batch_size: 1000,
                buffer_memory: 100_000,
                linger: Duration::ZERO,
                delivery_timeout: Duration::from_secs(10),
                adaptive_partitioning: false,
                guarantee_order: true,
                compression: Compression::None,
                idempotent: true,
                max_in_flight: 5,
            },
            Arc::default(),
        );
        acc.set_txn_hooks(hooks);
        let c = crate::accumulator::tests::cluster(2);
        acc.update_metadata(&c);
        acc.set_producer_id(7, 1);
        let parts = acc.partitions_led_by(1);
        (acc, parts)
    }

    fn send(acc: &RecordAccumulator, p: i32) -> crate::future::RecordFuture {
        let t = acc.topic("t").unwrap();
        let l = t.layout();
        let v = b"v";
        let rec = RecordParts {
            key: None,
            value: Some(v),
            headers: &[],
            timestamp: 1,
            fixed_size: record_fixed_size(None, Some(v), std::iter::empty()),
        };
        acc.append(
            &t,
            &l,
            Some(p),
            &rec,
            -1,
            1,
            &mut crate::accumulator::callbacks::NoCallback,
            &Budget::new(Duration::ZERO),
            crate::accumulator::StickyRef::Topic,
        )
        .unwrap()
    }

    /// Drain takes nothing of a partition until it is in the transaction
    /// (and registers it for AddPartitionsToTxn once); what it takes
    /// carries the transactional bit.
    #[test]
    fn drain_waits_for_add_partitions_and_marks_batches_transactional() {
        let s = shared(State::InTransaction);
        let (acc, parts) = accumulator(s.clone());
        let later = Instant::now() + Duration::from_secs(1);
        send(&acc, 0);
        send(&acc, 1);
        for _ in 0..2 {
            let (d, _) = acc.drain(&parts, &mut 0, 1 << 20, later);
            assert!(d.is_empty(), "no partition is in the transaction yet");
        }
        let mut pending: Vec<i32> = s.inner.lock().to_add.iter().map(|k| k.1).collect();
        pending.sort();
        assert_eq!(pending, [0, 1], "each registered once");
        s.inner.lock().added.insert((Arc::from("t"), 1));
        let (mut d, _) = acc.drain(&parts, &mut 0, 1 << 20, later);
        assert_eq!(d.len(), 1);
        let x = d.pop().unwrap();
        assert_eq!(x.queue.partition, 1);
        let wire = x.batch.wire_parts().concat();
        let h = decode_batches(&wire).unwrap().remove(0).header;
        assert_ne!(h.attributes & ATTR_TRANSACTIONAL, 0, "isTransactional");
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (7, 1, 0)
        );
        acc.complete(&x.queue, x.batch, crate::accumulator::tests::ok());
        acc.unmute([&x.queue]);
        // An abort drains nothing more, added or not.
        s.inner.lock().st.state = State::Aborting;
        s.inner.lock().added.insert((Arc::from("t"), 0));
        assert!(acc.drain(&parts, &mut 0, 1 << 20, later).0.is_empty());
        acc.abort_queued(None, &Error::aborted());
        assert!(
            !s.inner.lock().sequence_gap,
            "the aborted batch had no sequence"
        );
    }

    /// Transactions v2: drain takes a partition's batch at once (Produce
    /// v12 adds the partition), registers nothing for AddPartitionsToTxn,
    /// marks the transaction started (its EndTxn must go), and the Produce
    /// version may go to v12; v1 stops at v11.
    #[test]
    fn v2_drains_without_add_partitions_and_allows_produce_v12() {
        let s = shared(State::InTransaction);
        let (acc, parts) = accumulator(s.clone());
        assert_eq!(acc.produce_version_cap(), Some(11), "v1 until told");
        s.inner.lock().v2 = true;
        assert_eq!(acc.produce_version_cap(), Some(12));
        let later = Instant::now() + Duration::from_secs(1);
        send(&acc, 0);
        send(&acc, 1);
        let (d, _) = acc.drain(&parts, &mut 0, 1 << 20, later);
        assert_eq!(d.len(), 2, "both partitions at once");
        {
            let g = s.inner.lock();
            assert!(g.to_add.is_empty() && g.added.is_empty());
            assert!(g.started, "the transaction reached the coordinator");
        }
        for x in d {
            let h = decode_batches(&x.batch.wire_parts().concat())
                .unwrap()
                .remove(0)
                .header;
            assert_ne!(h.attributes & ATTR_TRANSACTIONAL, 0);
            acc.complete(&x.queue, x.batch, crate::accumulator::tests::ok());
            acc.unmute([&x.queue]);
        }
        // Outside a transaction (committing done, Ready): nothing drains.
        s.inner.lock().st.state = State::Ready;
        send(&acc, 0);
        assert!(acc.drain(&parts, &mut 0, 1 << 20, later).0.is_empty());
        acc.abort_queued(None, &Error::aborted());
    }

    /// A failed batch of the open transaction makes it abortable and asks
    /// for the sweep of what is queued; a fenced one makes the producer
    /// fatal. A failed batch that had a sequence number calls for an
    /// epoch bump.
    #[test]
    fn failed_batches_move_the_state() {
        let s = shared(State::InTransaction);
        let (acc, parts) = accumulator(s.clone());
        s.inner.lock().added.insert((Arc::from("t"), 0));
        let later = Instant::now() + Duration::from_secs(1);
        let f = send(&acc, 0);
        let (mut d, _) = acc.drain(&parts, &mut 0, 1 << 20, later);
        let x = d.pop().unwrap();
        let refused = Error::Broker {
            code: ErrorCode::MESSAGE_TOO_LARGE,
            topic: "t".into(),
            partition: 0,
            message: None,
        };
        acc.complete(&x.queue, x.batch, Err(refused));
        assert!(f.get().is_err());
        {
            let g = s.inner.lock();
            assert!(g.sequence_gap, "it had taken sequence 0");
            assert!(g.st.abortable_cause().is_some());
            assert!(g.sweep.as_ref().is_some_and(Error::is_abortable));
        }
        // Fenced: fatal, from any state.
        let s = shared(State::AbortableError(Arc::new(Error::Closed)));
        s.on_failed(
            &Error::Broker {
                code: ErrorCode::PRODUCER_FENCED,
                topic: "t".into(),
                partition: 0,
                message: None,
            },
            false,
        );
        let g = s.inner.lock();
        let e = g.st.fatal_cause().expect("fatal");
        assert_eq!(e.code(), Some(ErrorCode::PRODUCER_FENCED));
        assert!(g.sweep.as_ref().is_some_and(Error::is_fatal));
    }
}
