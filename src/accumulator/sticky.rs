//! The uniform sticky partitioner's state and choice (KIP-794): a topic's
//! records without a key go to one partition until it has had `batch.size`
//! bytes, then to a new one ([`next_sticky_partition`]).
//!
//! The state is the topic's ([`Sticky`], as Java's and librdkafka's), or,
//! on `send`'s fast path (the thread's cached topic, see `lookup.rs`), the
//! sending thread's own ([`LocalSticky`]): threads sending keyless records
//! through one producer then fill batches of different partitions instead
//! of all appending to one and queueing for its lock.

use std::cell::Cell;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use crate::partitioner::next_sticky_partition;

use super::{Layout, RecordAccumulator, TopicQueues};

/// A topic's sticky partition, in its [`TopicQueues`].
pub(crate) struct Sticky {
    /// The sticky partition for records without a key, -1 if none yet.
    /// Changed only while holding that partition's lock (KIP-794).
    pub(super) partition: AtomicI32,
    /// Bytes appended to the sticky partition since it was chosen.
    pub(super) bytes: AtomicUsize,
}

impl Sticky {
    /// No sticky partition yet.
    pub(super) fn new() -> Self {
        Sticky {
            partition: AtomicI32::new(-1),
            bytes: AtomicUsize::new(0),
        }
    }
}

/// A sending thread's own sticky partition for its cached topic: plain
/// cells, as only that thread reads or changes them.
pub(crate) struct LocalSticky {
    /// -1 until the first keyless record picks one.
    partition: Cell<i32>,
    /// Bytes this thread appended to it since it was chosen.
    bytes: Cell<usize>,
}

impl LocalSticky {
    /// No partition yet.
    pub(crate) fn new() -> Self {
        LocalSticky {
            partition: Cell::new(-1),
            bytes: Cell::new(0),
        }
    }
}

/// The sticky state a keyless record follows in `append`: its topic's, or
/// the sending thread's.
#[derive(Clone, Copy)]
pub(crate) enum StickyRef<'a> {
    /// The topic's shared [`Sticky`].
    Topic,
    /// The thread's own.
    Local(&'a LocalSticky),
}

impl RecordAccumulator {
    /// The sticky partition, choosing one if there is none yet.
    #[inline]
    pub(super) fn sticky_partition(
        &self,
        topic: &TopicQueues,
        layout: &Layout,
        st: StickyRef<'_>,
    ) -> i32 {
        let p = match st {
            StickyRef::Topic => topic.sticky.partition.load(Ordering::Acquire),
            StickyRef::Local(l) => l.partition.get(),
        };
        if p >= 0 && (p as usize) < layout.partitions.len() {
            return p;
        }
        self.choose_sticky_partition(topic, layout, st, p)
    }

    /// [`sticky_partition`](Self::sticky_partition)'s slow path: picks
    /// one in place of `p` (none, or out of range).
    #[cold]
    fn choose_sticky_partition(
        &self,
        topic: &TopicQueues,
        layout: &Layout,
        st: StickyRef<'_>,
        p: i32,
    ) -> i32 {
        let next = self.next_sticky(layout);
        match st {
            StickyRef::Local(l) => {
                l.partition.set(next);
                l.bytes.set(0);
                next
            }
            StickyRef::Topic => match topic.sticky.partition.compare_exchange(
                p,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    topic.sticky.bytes.store(0, Ordering::Relaxed);
                    next
                }
                Err(current) => current,
            },
        }
    }

    fn next_sticky(&self, layout: &Layout) -> i32 {
        next_sticky_partition(
            &layout.available,
            layout.partitions.len(),
            self.cfg.adaptive_partitioning,
            |p| layout.partitions[p as usize].queued(),
        )
    }

    /// False if another thread switched the topic's sticky partition away
    /// from `p` since this one read it (a thread's own never moves so).
    #[inline]
    pub(super) fn still_sticky(&self, topic: &TopicQueues, st: StickyRef<'_>, p: i32) -> bool {
        match st {
            StickyRef::Topic => topic.sticky.partition.load(Ordering::Acquire) == p,
            StickyRef::Local(_) => true,
        }
    }

    /// Counts `n` bytes appended to the sticky partition.
    #[inline]
    pub(super) fn add_sticky_bytes(&self, topic: &TopicQueues, st: StickyRef<'_>, n: usize) {
        match st {
            StickyRef::Topic => {
                topic.sticky.bytes.fetch_add(n, Ordering::Relaxed);
            }
            StickyRef::Local(l) => l.bytes.set(l.bytes.get() + n),
        }
    }

    /// Called by `append` under the sticky partition's lock, for a keyless
    /// record (at most `upper` bytes in a batch of its own) that would
    /// start a new batch there: if the partition has had its `batch.size`,
    /// switches to a new one and returns true (`append` then tries again).
    pub(super) fn switch_sticky_partition(
        &self,
        topic: &TopicQueues,
        layout: &Layout,
        st: StickyRef<'_>,
        upper: usize,
    ) -> bool {
        let produced = match st {
            StickyRef::Topic => topic.sticky.bytes.load(Ordering::Relaxed),
            StickyRef::Local(l) => l.bytes.get(),
        };
        if produced > 0 && produced + upper > self.cfg.batch_size.max(1) {
            let next = self.next_sticky(layout);
            match st {
                StickyRef::Topic => {
                    topic.sticky.partition.store(next, Ordering::Release);
                    topic.sticky.bytes.store(0, Ordering::Relaxed);
                }
                StickyRef::Local(l) => {
                    l.partition.set(next);
                    l.bytes.set(0);
                }
            }
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use std::sync::atomic::Ordering;

    use super::super::tests::{cfg, cluster, send, send_following};
    use super::super::{AccumulatorConfig, RecordAccumulator};
    use super::{LocalSticky, StickyRef};
    use crate::future::Delivered;

    /// An accumulator with room for 400 records of ~100 B, batches of
    /// 1000 B (`cfg`), and one topic of four partitions.
    fn four_partitions() -> RecordAccumulator {
        let acc = RecordAccumulator::new(
            AccumulatorConfig {
                buffer_memory: 100_000,
                ..cfg()
            },
            Default::default(),
        );
        acc.update_metadata(&cluster(4));
        acc
    }

    /// On `send`'s fast path each thread keeps its own sticky partition:
    /// each thread's keyless records stay on one partition until it has
    /// given that partition about `batch.size` bytes, then move on, and
    /// the topic's shared state is left alone.
    #[test]
    fn each_threads_own_sticky_partition_takes_a_batch_then_moves() {
        let acc = four_partitions();
        let threads = [LocalSticky::new(), LocalSticky::new()];
        // Per thread, the records between two choices of a partition (a
        // choice resets the thread's byte count; it may pick the same
        // partition again).
        let mut gaps = [vec![0usize], vec![0usize]];
        // Interleaved, as two threads would send: 90 records of ~100 B
        // each, about nine batch.size (1000 B) worth per thread.
        for _ in 0..90 {
            for (st, gaps) in threads.iter().zip(&mut gaps) {
                let before = st.bytes.get();
                send_following(&acc, StickyRef::Local(st), None, &[0; 95]).unwrap();
                assert!((0..4).contains(&st.partition.get()));
                if st.bytes.get() < before {
                    gaps.push(0); // chose again before this record
                }
                *gaps.last_mut().unwrap() += 1;
            }
        }
        let t = acc.topic("t").unwrap();
        assert_eq!(
            t.sticky.partition.load(Ordering::Acquire),
            -1,
            "the topic's shared sticky partition is not used"
        );
        for gaps in &gaps {
            // A thread keeps its partition until its own bytes there near
            // batch.size: 8 or more records of ~100 B between choices.
            assert!(gaps.len() >= 4, "chose only {} times: {gaps:?}", gaps.len());
            assert!(
                gaps[..gaps.len() - 1].iter().all(|&n| n >= 8),
                "chose again too soon: {gaps:?}"
            );
        }
    }

    #[test]
    fn keyless_records_stick_to_one_partition_per_batch() {
        let acc = four_partitions();
        let mut parts_seen = Vec::new();
        for _ in 0..400 {
            parts_seen.push(send(&acc, None, &[0; 95]).unwrap());
        }
        // 400 x ~100 B = ~40,000 B: about forty batches of 1000 B, one
        // partition at a time.
        let t = acc.topic("t").unwrap();
        let queued: Vec<usize> = t.layout().partitions.iter().map(|q| q.queued()).collect();
        let total: usize = queued.iter().sum();
        assert!((40..=50).contains(&total), "{queued:?}");

        // Complete each batch with its own base offset (1000 x its number),
        // so every record's metadata says which batch and partition it got.
        acc.begin_flush();
        let parts = acc.partitions_led_by(1);
        let mut batches = 0;
        loop {
            let (d, _) = acc.drain(&parts, &mut 0, 1 << 20, Instant::now());
            if d.is_empty() {
                break;
            }
            for x in d {
                batches += 1;
                let delivered = Delivered {
                    base_offset: 1000 * batches,
                    log_append_time: -1,
                };
                acc.complete(&x.queue, x.batch, Ok(delivered));
            }
        }
        assert_eq!(batches as usize, total);
        assert_eq!(acc.incomplete_count(), 0);
        let placed: Vec<(i32, i64, i64)> = parts_seen
            .iter()
            .map(|f| {
                let m = f.get().unwrap();
                (m.partition(), m.offset() / 1000, m.offset() % 1000)
            })
            .collect();

        // One batch at a time: each record goes right after the previous
        // one in the same batch (same partition, next offset), or opens a
        // new batch (offset 0), so no batch takes records once another
        // one was opened.
        let mut sizes = vec![1usize];
        let mut batch_partitions = vec![placed[0].0];
        assert_eq!(placed[0].2, 0);
        for (i, w) in placed.windows(2).enumerate() {
            let ((p0, b0, o0), (p1, b1, o1)) = (w[0], w[1]);
            let near = &placed[i.saturating_sub(4)..(i + 3).min(placed.len())];
            if b1 == b0 {
                assert_eq!((p1, o1), (p0, o0 + 1), "record {}: {near:?}", i + 1);
                *sizes.last_mut().unwrap() += 1;
            } else {
                assert_eq!(o1, 0, "record {} joined an older batch: {near:?}", i + 1);
                sizes.push(1);
                batch_partitions.push(p1);
            }
        }
        assert_eq!(sizes.len(), total, "{sizes:?}");
        // A new batch only once the last one was full: every batch but
        // the last holds as many of these equal records as fit.
        let full = sizes[0];
        assert!(full > 5, "{sizes:?}");
        assert!(
            sizes[..sizes.len() - 1].iter().all(|&n| n == full),
            "{sizes:?}"
        );
        assert!(*sizes.last().unwrap() <= full, "{sizes:?}");
        // And the partition is chosen again for each new batch: forty
        // choices of one in four do not all land on the same partition.
        assert!(
            batch_partitions.iter().any(|&p| p != batch_partitions[0]),
            "{batch_partitions:?}"
        );
    }
}
