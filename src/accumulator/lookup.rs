//! The topic lookup of every `send`, without shared writes when it hits.
//!
//! `send` finds its topic's queues and layout once per record. Through the
//! maps that is two read locks (the topics map, then the topic's layout),
//! each an atomic read-modify-write on a cache line every sending thread
//! writes, so with several threads sending through one producer the line
//! moves between cores on every record. Instead each thread remembers the
//! last topic it sent to ([`CACHE`]): a topic's [`TopicQueues`] is never
//! removed from its accumulator, so the remembered one stays right, and
//! its layout is right while the topic's `layout_gen` (bumped after every
//! new layout, see `topology.rs`) has not moved. A hit reads shared memory
//! only (the generation). `send` borrows the two from the cache for the
//! record ([`RecordAccumulator::with_cached`]) rather than cloning them:
//! a clone and its drop are two more atomic writes per record, each to a
//! line every sending thread shares.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Layout, LocalSticky, RecordAccumulator, TopicQueues};

/// Gives each accumulator its own id, so a thread's cache never serves a
/// topic of another producer (an address could be reused after a drop).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh accumulator id.
pub(super) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The last topic a thread found, in the accumulator with id `acc`, with
/// the layout it had at generation `gen`.
struct Cached {
    acc: u64,
    topic: Arc<TopicQueues>,
    gen: u64,
    layout: Arc<Layout>,
    /// This thread's sticky partition for the topic, while it is cached.
    sticky: LocalSticky,
}

thread_local! {
    static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

impl RecordAccumulator {
    /// Runs `f` with `topic`'s queues and layout borrowed from this
    /// thread's cache, and the thread's own sticky partition for it, if
    /// the cache holds them and they are current: `send`'s
    /// path when it hits, which moves no reference count. `None` on a miss
    /// (or when the cache is being replaced further up this thread's
    /// stack); `topic_and_layout` is the way then.
    pub(crate) fn with_cached<R>(
        &self,
        topic: &str,
        f: impl FnOnce(&TopicQueues, &Layout, &LocalSticky) -> R,
    ) -> Option<R> {
        CACHE.with(|c| {
            let c = c.try_borrow().ok()?;
            let c = c.as_ref()?;
            (c.acc == self.id
                && &*c.topic.name == topic
                && c.topic.layout_gen.load(Ordering::Acquire) == c.gen)
                .then(|| f(&c.topic, &c.layout, &c.sticky))
        })
    }

    /// A topic's queues and the layout they were found with, once metadata
    /// has described it (the layout has partitions): read once per `send`.
    pub(crate) fn topic_and_layout(&self, topic: &str) -> Option<(Arc<TopicQueues>, Arc<Layout>)> {
        let hit = CACHE.with(|c| {
            let c = c.try_borrow().ok()?;
            let c = c.as_ref()?;
            (c.acc == self.id
                && &*c.topic.name == topic
                && c.topic.layout_gen.load(Ordering::Acquire) == c.gen)
                .then(|| (c.topic.clone(), c.layout.clone()))
        });
        if hit.is_some() {
            return hit;
        }
        let t = self.topics.read().get(topic).cloned()?;
        // The generation before the layout: a layout newer than `gen` is
        // only looked up again next time.
        let gen = t.layout_gen.load(Ordering::Acquire);
        let layout = t.layout();
        if layout.partitions.is_empty() {
            return None;
        }
        CACHE.with(|c| {
            if let Ok(mut c) = c.try_borrow_mut() {
                *c = Some(Cached {
                    acc: self.id,
                    topic: t.clone(),
                    gen,
                    layout: layout.clone(),
                    sticky: LocalSticky::new(),
                });
            }
        });
        Some((t, layout))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cfg, cluster};
    use super::super::RecordAccumulator;
    use std::sync::Arc;

    /// The remembered layout is replaced once metadata brings a new one
    /// (more partitions), and one accumulator's topic is never served for
    /// another's.
    #[test]
    fn the_cached_lookup_follows_new_layouts_and_its_accumulator() {
        let a = RecordAccumulator::new(cfg(), Default::default());
        let b = RecordAccumulator::new(cfg(), Default::default());
        assert!(a.topic_and_layout("t").is_none());
        a.update_metadata(&cluster(2));
        b.update_metadata(&cluster(3));
        let (ta, la) = a.topic_and_layout("t").unwrap();
        assert_eq!(la.partitions.len(), 2);
        let (ta2, la2) = a.topic_and_layout("t").unwrap();
        assert!(Arc::ptr_eq(&ta, &ta2) && Arc::ptr_eq(&la, &la2), "a hit");
        let (tb, lb) = b.topic_and_layout("t").unwrap();
        assert!(!Arc::ptr_eq(&ta, &tb));
        assert_eq!(lb.partitions.len(), 3);
        let (ta3, _) = a.topic_and_layout("t").unwrap();
        assert!(Arc::ptr_eq(&ta, &ta3), "a's topic again, not b's");
        a.update_metadata(&cluster(4));
        let (_, la3) = a.topic_and_layout("t").unwrap();
        assert_eq!(
            la3.partitions.len(),
            4,
            "the new layout, not the cached one"
        );
        assert!(a.topic_and_layout("other").is_none());
    }
}
