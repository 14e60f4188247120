//! [`Drainer`]: one I/O thread's view of the partitions it leads, so that
//! a wake-up costs in proportion to the partitions that have something to
//! do, not to all of them.
//!
//! Before, every wake-up of an I/O thread locked every partition it leads
//! with a batch queued three times (expire, drain, next expiry): with 600
//! partitions and a batch lingering in each, most of the thread's time went
//! to partitions that had nothing ready. Now:
//!
//! - **Touches.** Whatever may make a partition drainable tells the
//!   leader's thread which partition and from when
//!   ([`Touch`](super::signal::Touch), through the thread's
//!   [`DrainSignal`]): a new batch (ready after linger, or now if an
//!   older one is full), a batch filled, a retry handed back (ready after
//!   its backoff), an unmute, an idempotent batch settled. The thread keeps
//!   the partitions ready now in a FIFO (`ready`) and the others in a
//!   timer heap by the instant they become ready (`timers`); a drain visits
//!   only the due ones. A partition with a lingering batch is in the heap
//!   at its linger's end, and the heap's top is part of the thread's
//!   wake-up deadline, so it is drained then with no other event.
//! - **Fairness.** A drained partition with batches left goes to the back
//!   of the FIFO; one the request had no room for stays at the front: round
//!   robin, as Java's rotating start index (at most one batch per
//!   partition per request).
//! - **What the drain decides is unchanged** ([`RecordAccumulator::take_one`]
//!   is the rule for one partition, under its lock): a visited partition
//!   that is not ready yet goes back into the heap at the instant it will
//!   be; one that cannot go until something happens to it (muted, waiting
//!   for its sequences or the transaction, empty) is dropped, and that
//!   something touches it.
//! - **Rescans.** Whatever concerns every partition (a new partition list:
//!   leaders moved; the producer id or epoch; a flush, close or a `send`
//!   blocked on memory, which make lingering batches ready; a transaction's
//!   partitions added) goes through [`RecordAccumulator::wake_all`], which
//!   has each thread put all its partitions in the FIFO once. While
//!   batches must go now (flush, close, memory) every timer is due. A
//!   backstop rescan runs every [`SWEEP_EVERY`] as well.
//! - **Expiry.** The thread's signal holds a lower bound of when a queued
//!   batch reaches `delivery.timeout.ms` ([`DrainSignal::expiry`]): lowered
//!   by every new batch and retry, recomputed by the expiry pass, which
//!   runs only once the bound is due (or after a rescan). A batch is older
//!   than the batches behind it in its deque, so the pass looks at fronts.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::signal::{Touch, NEVER};
use super::{DrainSignal, Drained, PartitionQueue, RecordAccumulator, Take};
use crate::metrics::DrainTally;
use crate::util::later;

/// How often a thread looks at all its partitions whatever it was told: a
/// backstop, a few hundred partition locks a second at most.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// One I/O thread's partitions and which of them have work; see the
/// module docs. Owned by the thread; only [`DrainSignal`] is shared.
pub(crate) struct Drainer {
    node: i32,
    signal: Arc<DrainSignal>,
    partitions: Arc<[Arc<PartitionQueue>]>,
    /// `RecordAccumulator::leaders_version` that `partitions` is from.
    version: u64,
    /// Partitions (by index in `partitions`) to visit at the next drain.
    ready: VecDeque<usize>,
    /// `in_ready[i]`: `i` is in `ready` (at most once).
    in_ready: Vec<bool>,
    /// Partitions that become ready at an instant; an entry whose instant
    /// is no longer `timer_at[i]` is stale and skipped.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    timer_at: Vec<Option<Instant>>,
    /// The next expiry pass looks at every partition whatever the bound.
    expire_all: bool,
    /// `None`: no backstop (unit tests, which must see the touches work).
    sweep_every: Option<Duration>,
    last_sweep: Option<Instant>,
    /// The signal's inbox is swapped with this (no allocation per drain).
    inbox: Vec<Touch>,
    touched: Vec<usize>,
}

impl Drainer {
    /// The drainer of `node`'s thread, told of work through `signal`
    /// (the one registered for `node`).
    pub(crate) fn new(node: i32, signal: Arc<DrainSignal>) -> Self {
        Drainer {
            node,
            signal,
            partitions: Arc::from(Vec::new()),
            version: u64::MAX,
            ready: VecDeque::new(),
            in_ready: Vec::new(),
            timers: BinaryHeap::new(),
            timer_at: Vec::new(),
            expire_all: true,
            sweep_every: Some(SWEEP_EVERY),
            last_sweep: None,
            inbox: Vec::new(),
            touched: Vec::new(),
        }
    }

    /// Without the backstop rescan: only touches and rescans count.
    #[cfg(test)]
    pub(crate) fn without_sweep(mut self) -> Self {
        self.sweep_every = None;
        self
    }

    /// The partitions the node leads, as of the last [`refresh`](Self::refresh).
    pub(crate) fn partitions(&self) -> &Arc<[Arc<PartitionQueue>]> {
        &self.partitions
    }

    /// At the top of each cycle: takes a new partition list if leaders
    /// moved, a rescan if one was asked for (or the backstop is due), and
    /// the touches since the last look.
    pub(crate) fn refresh(&mut self, acc: &RecordAccumulator, now: Instant) {
        let v = acc.leaders_version();
        if v != self.version {
            self.partitions = acc.partitions_led_by(self.node);
            self.version = v;
            let n = self.partitions.len();
            self.ready.clear();
            self.in_ready = vec![false; n];
            self.timers.clear();
            self.timer_at = vec![None; n];
            self.rescan();
        }
        if self.signal.rescan.swap(false, Ordering::SeqCst) {
            self.rescan();
        }
        if let Some(every) = self.sweep_every {
            match self.last_sweep {
                Some(t) if now < later(t, every) => {}
                _ => {
                    self.last_sweep = Some(now);
                    self.rescan();
                }
            }
        }
        self.take_touches(now);
    }

    /// Every partition with a batch queued is visited at the next drain
    /// (one that gets a batch later is touched then), and expiry looks at
    /// all of them.
    fn rescan(&mut self) {
        for i in 0..self.partitions.len() {
            if self.partitions[i].queued() > 0 {
                self.make_ready(i);
            }
        }
        self.expire_all = true;
    }

    fn make_ready(&mut self, i: usize) {
        self.timer_at[i] = None;
        if !self.in_ready[i] {
            self.in_ready[i] = true;
            self.ready.push_back(i);
        }
    }

    /// `i` becomes ready at `at` (or earlier, if it was due earlier).
    fn schedule(&mut self, i: usize, at: Instant) {
        if self.in_ready[i] || self.timer_at[i].is_some_and(|t| t <= at) {
            return; // it is looked at by then, and rescheduled as it is
        }
        self.timer_at[i] = Some(at);
        self.timers.push(Reverse((at, i)));
    }

    fn take_touches(&mut self, now: Instant) {
        std::mem::swap(&mut *self.signal.inbox.lock(), &mut self.inbox);
        let mut inbox = std::mem::take(&mut self.inbox);
        for t in inbox.drain(..) {
            // A touch for a partition this list does not hold at that
            // index came from before a leader change: the change made this
            // thread rescan, and the partition's new leader is told.
            let mine = self
                .partitions
                .get(t.slot)
                .is_some_and(|q| Arc::as_ptr(q) as usize == t.queue);
            if !mine {
                continue;
            }
            if t.at <= now {
                self.make_ready(t.slot);
            } else {
                self.schedule(t.slot, t.at);
            }
        }
        self.inbox = inbox;
    }

    /// Moves the partitions whose instant has come (all of them if `all`)
    /// from the heap to the FIFO.
    fn take_due(&mut self, now: Instant, all: bool) {
        while let Some(&Reverse((at, i))) = self.timers.peek() {
            if !all && at > now {
                break;
            }
            self.timers.pop();
            if self.timer_at[i] == Some(at) {
                self.make_ready(i);
            }
        }
    }

    /// When the next partition becomes ready: `now` if one is ready.
    fn next_due(&mut self, now: Instant) -> Option<Instant> {
        if !self.ready.is_empty() {
            return Some(now);
        }
        while let Some(&Reverse((at, i))) = self.timers.peek() {
            if self.timer_at[i] == Some(at) {
                return Some(at);
            }
            self.timers.pop(); // stale
        }
        None
    }

    /// Some partition has, or will have, a batch to drain: the thread
    /// connects for it.
    pub(crate) fn has_work(&mut self, now: Instant) -> bool {
        self.next_due(now).is_some()
    }

    /// Takes at most one ready batch from each partition that may have
    /// one, until `max_bytes` would be exceeded (the first batch is always
    /// taken), and seals them. Returns the batches and when the next
    /// partition becomes ready (`now` if some are left for the next
    /// request).
    pub(crate) fn drain(
        &mut self,
        acc: &RecordAccumulator,
        max_bytes: usize,
        now: Instant,
    ) -> (Vec<Drained>, Option<Instant>) {
        let mut out: Vec<Drained> = Vec::new();
        acc.settle_lost();
        self.take_touches(now);
        let Some(cx) = acc.drain_context() else {
            return (out, None); // no producer id: `set_producer_id` rescans
        };
        self.take_due(now, cx.send_now);
        let mut bytes = 0usize;
        // A handle on the list for the drain: the tally borrows its
        // partitions' sensors while `self` changes.
        let partitions = self.partitions.clone();
        let mut tally = DrainTally::default();
        // Only those in the FIFO now: a partition drained goes to the
        // back for the next request, not again into this one.
        for _ in 0..self.ready.len() {
            let i = self.ready.pop_front().expect("counted");
            self.in_ready[i] = false;
            let room = (!out.is_empty()).then(|| max_bytes.saturating_sub(bytes));
            match acc.take_one(&partitions[i], &cx, room, now, &mut tally) {
                Take::Batch(d, more) => {
                    bytes += d.batch.size_in_bytes();
                    out.push(d);
                    if more {
                        self.make_ready(i);
                    }
                }
                Take::At(t) => self.schedule(i, t),
                Take::Full => {
                    // First in line for the next request.
                    self.in_ready[i] = true;
                    self.ready.push_front(i);
                    acc.metrics().on_drained(&tally, now);
                    return (out, Some(now));
                }
                Take::Idle => {}
            }
        }
        acc.metrics().on_drained(&tally, now);
        let next = self.next_due(now);
        (out, next)
    }

    /// Fails the queued batches past `delivery.timeout.ms`, if the
    /// thread's expiry bound is due (or a rescan asked for a pass), and
    /// recomputes the bound. Returns how many batches expired.
    pub(crate) fn expire(&mut self, acc: &RecordAccumulator, now: Instant) -> usize {
        if !self.expire_all && acc.nanos(now) < self.signal.expiry.load(Ordering::SeqCst) {
            return 0;
        }
        self.expire_all = false;
        // Reset before the pass: a batch created meanwhile lowers it again
        // or is seen by the pass.
        self.signal.expiry.store(NEVER, Ordering::SeqCst);
        let mut touched = std::mem::take(&mut self.touched);
        let (n, next) = acc.expire_in(&self.partitions, now, &mut touched);
        for i in touched.drain(..) {
            self.make_ready(i); // the next batch may be ready now
        }
        self.touched = touched;
        if let Some(t) = next {
            self.signal.lower_expiry(acc.nanos(t));
        }
        n
    }

    /// When the next expiry pass is due, if any batch is queued.
    pub(crate) fn next_expiry(&self, acc: &RecordAccumulator) -> Option<Instant> {
        if self.expire_all {
            return Some(crate::clock::now());
        }
        match self.signal.expiry.load(Ordering::SeqCst) {
            NEVER => None,
            n => Some(acc.instant(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cfg, cluster, ok, send};
    use super::super::AccumulatorConfig;
    use super::*;
    use crate::error::Error;

    /// An accumulator over `partitions` partitions led by node 1, and node
    /// 1's drainer (no backstop sweep: only touches and rescans count),
    /// refreshed once with nothing queued.
    fn setup(cfg: AccumulatorConfig, partitions: i32) -> (RecordAccumulator, Drainer) {
        let acc = RecordAccumulator::new(cfg, Arc::default());
        acc.update_metadata(&cluster(partitions));
        let signal = Arc::new(DrainSignal::new(Box::new(|| {})));
        acc.register_signal(1, signal.clone());
        let mut d = Drainer::new(1, signal).without_sweep();
        let now = Instant::now();
        d.refresh(&acc, now);
        assert_eq!(d.expire(&acc, now), 0);
        assert!(!d.has_work(now), "nothing queued");
        (acc, d)
    }

    fn partitions_of(d: &[Drained]) -> Vec<i32> {
        d.iter().map(|x| x.queue.partition).collect()
    }

    /// A batch lingering in one partition is drained at the end of its
    /// linger with nothing else happening: the drain before names that
    /// instant as its next deadline (the thread's wake-up), and the drain
    /// then takes it.
    #[test]
    fn a_lingering_batch_is_drained_when_its_linger_ends_with_no_other_event() {
        let (acc, mut d) = setup(cfg(), 3);
        let before = Instant::now();
        send(&acc, Some(2), b"x").unwrap();
        let after = Instant::now();
        d.refresh(&acc, after);
        assert!(d.has_work(after));
        let (out, next) = d.drain(&acc, 1 << 20, before);
        assert!(out.is_empty(), "lingering");
        let at = next.expect("the linger's end is the next deadline");
        assert!(at >= before + Duration::from_millis(5) && at <= after + Duration::from_millis(5));
        let (out, _) = d.drain(&acc, 1 << 20, at - Duration::from_micros(1));
        assert!(out.is_empty(), "not before the linger's end");
        let (out, next) = d.drain(&acc, 1 << 20, at);
        assert_eq!(partitions_of(&out), [2]);
        assert_eq!(next, None, "nothing else to wait for");
        assert!(!d.has_work(at));
    }

    /// A partition looked at before its batch is ready (here by a rescan,
    /// which every wake_all asks for) goes back on the timers at the
    /// instant it will be, and is drained then.
    #[test]
    fn a_partition_visited_too_early_is_drained_when_ready() {
        let (acc, mut d) = setup(cfg(), 3);
        send(&acc, Some(1), b"x").unwrap();
        acc.wake_all();
        let now = Instant::now();
        d.refresh(&acc, now);
        let (out, next) = d.drain(&acc, 1 << 20, now);
        assert!(out.is_empty(), "lingering");
        let at = next.expect("its linger's end");
        assert!(at <= now + Duration::from_millis(5));
        let (out, _) = d.drain(&acc, 1 << 20, at);
        assert_eq!(partitions_of(&out), [1]);
    }

    /// A batch that fills is ready at once, linger or not; a partition
    /// with more batches after a drain is visited again at the next one.
    #[test]
    fn a_full_batch_is_drained_at_once_and_the_next_one_after_it() {
        let (acc, mut d) = setup(
            AccumulatorConfig {
                linger: Duration::from_secs(3600),
                ..cfg()
            },
            2,
        );
        // batch.size 1000: ten 200-byte records make more than one batch.
        for _ in 0..10 {
            send(&acc, Some(1), &[7; 200]).unwrap();
        }
        let now = Instant::now();
        d.refresh(&acc, now);
        let (out, next) = d.drain(&acc, 1 << 20, now);
        assert_eq!(
            partitions_of(&out),
            [1],
            "one batch per partition per request"
        );
        assert_eq!(next, Some(now), "more of it is ready");
        let mut batches = out.len();
        for _ in 0..10 {
            let (out, _) = d.drain(&acc, 1 << 20, Instant::now());
            batches += out.len();
            for x in out {
                acc.complete(&x.queue, x.batch, ok());
            }
        }
        assert_eq!(batches, 2, "the two full ones");
        assert_eq!(
            acc.partitions_led_by(1)[1].queued(),
            1,
            "the open batch lingers"
        );
    }

    /// A retry handed back with a backoff is drained once the backoff
    /// ends, not before, with no other event.
    #[test]
    fn a_retry_is_drained_when_its_backoff_ends() {
        let (acc, mut d) = setup(cfg(), 3);
        send(&acc, Some(0), b"x").unwrap();
        let t = later(Instant::now(), Duration::from_secs(1));
        d.refresh(&acc, t);
        let (mut out, _) = d.drain(&acc, 1 << 20, t);
        let x = out.pop().unwrap();
        let retry_at = t + Duration::from_millis(100);
        acc.reenqueue(&x.queue, x.batch, retry_at);
        d.refresh(&acc, t);
        let (out, next) = d.drain(&acc, 1 << 20, t + Duration::from_millis(50));
        assert!(out.is_empty(), "backing off");
        assert_eq!(next, Some(retry_at));
        let (out, _) = d.drain(&acc, 1 << 20, retry_at);
        assert_eq!(partitions_of(&out), [0]);
        assert_eq!(out[0].batch.attempts, 2);
    }

    /// With max.in.flight=1 (no idempotence) a drained partition is muted;
    /// the answer's unmute makes its next batch drain.
    #[test]
    fn unmute_after_an_answer_makes_the_partition_ready() {
        let (acc, mut d) = setup(
            AccumulatorConfig {
                guarantee_order: true,
                ..cfg()
            },
            2,
        );
        send(&acc, Some(1), b"a").unwrap();
        let t = later(Instant::now(), Duration::from_secs(1));
        d.refresh(&acc, t);
        let (mut out, _) = d.drain(&acc, 1 << 20, t);
        let a = out.pop().unwrap();
        send(&acc, Some(1), b"b").unwrap();
        let t = later(Instant::now(), Duration::from_secs(1));
        let (out, next) = d.drain(&acc, 1 << 20, t);
        assert!(out.is_empty(), "muted while a is out");
        assert_eq!(next, None, "nothing to wait for but the answer");
        acc.complete(&a.queue, a.batch, ok());
        acc.unmute([&a.queue]);
        let (out, _) = d.drain(&acc, 1 << 20, t);
        assert_eq!(partitions_of(&out), [1], "b, once a's answer came");
    }

    /// Idempotence: until its first batch is acknowledged a partition
    /// sends one at a time; the acknowledgement lets the next one go.
    #[test]
    fn a_settled_sequence_makes_the_partition_ready() {
        let (acc, mut d) = setup(
            AccumulatorConfig {
                idempotent: true,
                ..cfg()
            },
            2,
        );
        acc.set_producer_id(9, 0);
        send(&acc, Some(0), b"a").unwrap();
        let t = later(Instant::now(), Duration::from_secs(1));
        d.refresh(&acc, t);
        let (mut out, _) = d.drain(&acc, 1 << 20, t);
        let a = out.pop().unwrap();
        send(&acc, Some(0), b"b").unwrap();
        let t = later(Instant::now(), Duration::from_secs(1));
        assert!(d.drain(&acc, 1 << 20, t).0.is_empty(), "one at a time");
        acc.complete(&a.queue, a.batch, ok());
        let (out, _) = d.drain(&acc, 1 << 20, t);
        assert_eq!(partitions_of(&out), [0]);
    }

    /// Expiry runs only when due, and then fails the old batch of a
    /// partition nothing touched since the batch was made; a retry handed
    /// back after a pass lowers the bound again.
    #[test]
    fn expiry_fails_an_old_batch_in_an_untouched_partition_when_due() {
        let (acc, mut d) = setup(cfg(), 3);
        let before = Instant::now();
        let f = send(&acc, Some(1), b"x").unwrap();
        d.refresh(&acc, Instant::now());
        let due = d.next_expiry(&acc).expect("a batch is queued");
        let timeout = Duration::from_secs(10); // cfg()'s delivery.timeout.ms
        assert!(due >= before + timeout && due <= Instant::now() + timeout);
        assert_eq!(d.expire(&acc, due - Duration::from_millis(1)), 0);
        assert_eq!(d.expire(&acc, due), 1);
        assert!(matches!(f.get(), Err(Error::DeliveryTimeout { .. })));
        assert_eq!(d.next_expiry(&acc), None, "nothing queued");
        // A batch in flight during a pass, handed back after it.
        send(&acc, Some(2), b"y").unwrap();
        let t = later(Instant::now(), Duration::from_secs(1));
        d.refresh(&acc, t);
        let (mut out, _) = d.drain(&acc, 1 << 20, t);
        let y = out.pop().unwrap();
        let created = y.batch.created;
        // A pass while y is out finds nothing queued.
        assert_eq!(d.expire(&acc, later(created, timeout)), 0);
        assert_eq!(d.next_expiry(&acc), None);
        acc.reenqueue(&y.queue, y.batch, t);
        assert_eq!(d.next_expiry(&acc), Some(later(created, timeout)));
        assert_eq!(d.expire(&acc, later(created, timeout)), 1);
    }

    /// A request with room for one batch takes the partitions in turn, not
    /// the same one every time (Java's rotating start).
    #[test]
    fn a_full_request_leaves_the_rest_first_in_line() {
        let (acc, mut d) = setup(cfg(), 3);
        for p in 0..3 {
            for _ in 0..8 {
                send(&acc, Some(p), &[1; 200]).unwrap();
            }
        }
        let t = later(Instant::now(), Duration::from_secs(1));
        d.refresh(&acc, t);
        let mut order = Vec::new();
        for i in 0..6 {
            let (out, next) = d.drain(&acc, 1, t);
            assert_eq!(next, (i < 5).then_some(t));
            order.extend(partitions_of(&out));
            for x in out {
                acc.complete(&x.queue, x.batch, ok());
            }
        }
        assert_eq!(order, [0, 1, 2, 0, 1, 2], "each in turn");
    }

    /// A partition that moves to this node with a batch queued is drained
    /// here, though the batch's touch went to the old leader (none).
    #[test]
    fn a_leader_change_brings_its_queued_batches() {
        let (acc, mut d) = setup(cfg(), 2);
        let mut c = cluster(2);
        let mut n2 = c.brokers[&1].clone();
        n2.id = 2;
        c.brokers.insert(2, n2);
        c.topics.get_mut("t").unwrap().partitions[1].leader = Some(2);
        acc.update_metadata(&c);
        send(&acc, Some(1), b"x").unwrap();
        let t = later(Instant::now(), Duration::from_secs(1));
        d.refresh(&acc, t);
        assert!(d.drain(&acc, 1 << 20, t).0.is_empty(), "led by 2");
        c.topics.get_mut("t").unwrap().partitions[1].leader = Some(1);
        acc.update_metadata(&c);
        d.refresh(&acc, t);
        let (out, _) = d.drain(&acc, 1 << 20, t);
        assert_eq!(partitions_of(&out), [1]);
    }

    /// A flush makes a lingering batch ready at once.
    #[test]
    fn a_flush_makes_lingering_batches_ready() {
        let (acc, mut d) = setup(
            AccumulatorConfig {
                linger: Duration::from_secs(3600),
                ..cfg()
            },
            3,
        );
        send(&acc, Some(0), b"x").unwrap();
        send(&acc, Some(2), b"y").unwrap();
        let now = Instant::now();
        d.refresh(&acc, now);
        assert!(
            d.drain(&acc, 1 << 20, now).0.is_empty(),
            "lingering for an hour"
        );
        let _mark = acc.begin_flush();
        d.refresh(&acc, now);
        let (out, _) = d.drain(&acc, 1 << 20, now);
        assert_eq!(partitions_of(&out), [0, 2]);
    }
}
