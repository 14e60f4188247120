//! The queues: one [`PartitionQueue`] per partition, and a topic's
//! [`TopicQueues`] holding the current [`Layout`] of them.
//!
//! # Ownership of a partition's state
//!
//! **Invariant:** a partition's deque and every piece of per-partition
//! state a later feature adds (next sequence number, in-flight sequences,
//! muting) live in its [`PartitionQueue`], guarded by that queue's one
//! mutex. I/O threads hold drained batches only while they are in flight,
//! and give them back to the same queue. When a partition's leader moves,
//! only `PartitionQueue::leader` changes: the new leader's thread drains
//! the same deque, so the state moves with no copying.
//!
//! # Locks
//!
//! Lock order: `RecordAccumulator::topics` (read) → a `TopicQueues::layout`
//! (read) → one `PartitionQueue::inner` → the pool's lock. No lock is held
//! while blocking on the pool, while running a callback, or while waking an
//! I/O thread.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::ratio::RatioEstimator;
use super::sequence::Sequences;
use super::sticky::Sticky;
use super::ProducerBatch;
use crate::metrics::TopicSensors;

/// One partition's queue of batches, and its sequence state.
pub(crate) struct PartitionQueue {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    /// Node id of the leader, -1 if none; written by the metadata thread.
    pub(super) leader: AtomicI32,
    /// Mirrors `inner.batches.len()` for lock-free peeks.
    pub(super) queued: AtomicUsize,
    /// Its index in its leader's partition list (`partitions_led_by`),
    /// written by the metadata thread before it publishes the list: how a
    /// [`Touch`](super::signal::Touch) names it to the leader's thread.
    pub(super) slot: AtomicUsize,
    pub(super) inner: Mutex<PartitionInner>,
    /// The topic's compression-ratio estimate, shared by its partitions.
    pub(super) ratio: Arc<RatioEstimator>,
    /// The topic's sensors (producer-topic-metrics), shared likewise.
    pub(super) sensors: Arc<TopicSensors>,
}

pub(super) struct PartitionInner {
    /// Oldest first. Only the last batch takes appends; a batch handed back
    /// for a retry goes to the front, sealed.
    pub(super) batches: VecDeque<ProducerBatch>,
    /// Only with `AccumulatorConfig::guarantee_order` (which idempotence
    /// replaces with `seq`'s rules): a batch of this
    /// partition is in a request that has not come back (answered, or its
    /// connection dropped), so no other batch is drained meanwhile, by this
    /// leader's thread or a new leader's.
    pub(super) muted: bool,
    /// Idempotence: sequences taken and not yet settled (`sequence.rs`).
    pub(super) seq: Sequences,
    /// The reservation the partition's last drained batch had grown to:
    /// where its next batch starts (0: none drained yet). A busy
    /// partition's batches start at `batch.size` (and reuse the pool's
    /// buffers); a trickle's start small and leave `buffer.memory` to the
    /// others.
    pub(super) next_reserve: usize,
}

impl PartitionQueue {
    pub(super) fn new(
        topic: Arc<str>,
        partition: i32,
        leader: i32,
        ratio: Arc<RatioEstimator>,
        sensors: Arc<TopicSensors>,
    ) -> Self {
        PartitionQueue {
            topic,
            partition,
            ratio,
            sensors,
            leader: AtomicI32::new(leader),
            queued: AtomicUsize::new(0),
            slot: AtomicUsize::new(usize::MAX),
            inner: Mutex::new(PartitionInner {
                batches: VecDeque::new(),
                muted: false,
                seq: Sequences::default(),
                next_reserve: 0,
            }),
        }
    }

    /// The leader's node id, -1 if none.
    pub(crate) fn leader(&self) -> i32 {
        self.leader.load(Ordering::Relaxed)
    }

    /// Batches waiting in the deque.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// A topic's partitions, as of the last metadata update.
pub(crate) struct Layout {
    /// Indexed by partition id.
    pub(crate) partitions: Vec<Arc<PartitionQueue>>,
    /// Partitions with a leader, ascending.
    pub(crate) available: Vec<i32>,
}

/// A topic's queues and its sticky-partition state.
pub(crate) struct TopicQueues {
    pub(crate) name: Arc<str>,
    pub(super) layout: RwLock<Arc<Layout>>,
    /// Bumped after every new `layout`: a thread's cached layout
    /// (`lookup.rs`) is current while this has not moved.
    pub(super) layout_gen: AtomicU64,
    /// The sticky partition for records without a key.
    pub(super) sticky: Sticky,
    /// How much this topic's batches shrink compressed.
    pub(super) ratio: Arc<RatioEstimator>,
    /// The topic's sensors, handed to each of its partitions.
    pub(super) sensors: Arc<TopicSensors>,
    /// Last `send` to this topic, wall-clock ms.
    pub(super) last_used_ms: AtomicI64,
    /// True while metadata refreshes this topic. Cleared when the topic
    /// goes idle (`metadata.max.idle.ms`); the next `send` sets it and
    /// registers the topic with metadata again (Java's `metadata.add`).
    pub(crate) registered: AtomicBool,
}

impl TopicQueues {
    pub(crate) fn layout(&self) -> Arc<Layout> {
        self.layout.read().clone()
    }
}
