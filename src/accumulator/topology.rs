//! Applying metadata to the accumulator: queues for new topics and
//! partitions, each partition's leader, the partitions-by-leader map the
//! I/O threads drain from, and the topics that have gone idle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::metadata::Cluster;
use crate::util::now_ms;

use super::sticky::Sticky;
use super::{Layout, PartitionQueue, RecordAccumulator, TopicQueues};

impl RecordAccumulator {
    /// Applies a new metadata snapshot: creates queues for new topics and
    /// partitions, records each partition's leader, and rebuilds the
    /// partitions-by-leader map. Wakes every I/O thread so they pick up
    /// their new partitions.
    pub(crate) fn update_metadata(&self, cluster: &Cluster) {
        {
            let mut topics = self.topics.write();
            for (name, tm) in &cluster.topics {
                if tm.partitions.is_empty() {
                    continue;
                }
                let tq = topics
                    .entry(Arc::from(name.as_str()))
                    .or_insert_with_key(|k| {
                        Arc::new(TopicQueues {
                            name: k.clone(),
                            layout: RwLock::new(Arc::new(Layout {
                                partitions: Vec::new(),
                                available: Vec::new(),
                            })),
                            layout_gen: AtomicU64::new(0),
                            sticky: Sticky::new(),
                            ratio: Arc::default(),
                            sensors: self.metrics.topic(k),
                            last_used_ms: AtomicI64::new(now_ms()),
                            registered: AtomicBool::new(true),
                        })
                    })
                    .clone();
                let old = tq.layout();
                let mut partitions = old.partitions.clone();
                for info in &tm.partitions[partitions.len().min(tm.partitions.len())..] {
                    partitions.push(Arc::new(PartitionQueue::new(
                        tq.name.clone(),
                        info.partition,
                        -1,
                        tq.ratio.clone(),
                        tq.sensors.clone(),
                    )));
                }
                for (q, info) in partitions.iter().zip(&tm.partitions) {
                    q.leader.store(info.leader.unwrap_or(-1), Ordering::Relaxed);
                }
                if partitions.len() != old.partitions.len() || tm.available != old.available {
                    *tq.layout.write() = Arc::new(Layout {
                        partitions,
                        available: tm.available.clone(),
                    });
                    tq.layout_gen.fetch_add(1, Ordering::Release);
                }
            }
        }
        let mut by_leader: HashMap<i32, Vec<Arc<PartitionQueue>>> = HashMap::new();
        for q in self.all_partitions() {
            let l = q.leader();
            if l >= 0 {
                let list = by_leader.entry(l).or_default();
                q.slot.store(list.len(), Ordering::Release);
                list.push(q);
            }
        }
        *self.by_leader.write() = by_leader
            .into_iter()
            .map(|(k, v)| (k, Arc::from(v)))
            .collect();
        self.leaders_version.fetch_add(1, Ordering::AcqRel);
        self.wake_all();
    }

    /// Topics not sent to for `idle` and with nothing queued: metadata may
    /// stop asking for them. Marks them unregistered.
    pub(crate) fn idle_topics(&self, idle: Duration) -> Vec<String> {
        let now_ms = now_ms();
        self.topics
            .read()
            .values()
            .filter(|t| {
                t.registered.load(Ordering::Acquire)
                    && now_ms.saturating_sub(t.last_used_ms.load(Ordering::Relaxed))
                        > idle.as_millis() as i64
                    && t.layout().partitions.iter().all(|q| q.queued() == 0)
            })
            .map(|t| {
                t.registered.store(false, Ordering::Release);
                t.name.to_string()
            })
            .collect()
    }

    /// Notes that `topic` is in use now (a `send`, or Java's
    /// `partitionsFor`, which also keeps a topic in the metadata requests):
    /// it is not idle for another `metadata.max.idle.ms`. `now_ms` is the
    /// wall clock the caller read (Java's idle expiry counts in it too).
    pub(crate) fn mark_used(&self, topic: &TopicQueues, now_ms: i64) {
        // Stored only when it changes: every send of every thread passes
        // here, and a store would pull the cache line from the others.
        if topic.last_used_ms.load(Ordering::Relaxed) != now_ms {
            topic.last_used_ms.store(now_ms, Ordering::Relaxed);
        }
    }

    /// Version of the partitions-by-leader map; changes on metadata updates.
    pub(crate) fn leaders_version(&self) -> u64 {
        self.leaders_version.load(Ordering::Acquire)
    }

    /// The partitions `node` leads now.
    pub(crate) fn partitions_led_by(&self, node: i32) -> Arc<[Arc<PartitionQueue>]> {
        self.by_leader
            .read()
            .get(&node)
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }

    /// Partitions with queued batches that no I/O thread leads: no leader,
    /// or a leader whose thread has not started (or has gone).
    pub(crate) fn unled_partitions(&self) -> Vec<Arc<PartitionQueue>> {
        let signals = self.signals.read();
        self.all_partitions()
            .into_iter()
            .filter(|q| q.queued() > 0 && !signals.contains_key(&q.leader()))
            .collect()
    }

    pub(super) fn all_partitions(&self) -> Vec<Arc<PartitionQueue>> {
        let topics: Vec<Arc<TopicQueues>> = self.topics.read().values().cloned().collect();
        topics
            .iter()
            .flat_map(|t| t.layout().partitions.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cfg, cluster};
    use super::*;

    #[test]
    fn a_topic_marked_used_is_not_idle() {
        let acc = RecordAccumulator::new(cfg(), Arc::default());
        acc.update_metadata(&cluster(1));
        let t = acc.topic("t").unwrap();
        // A minute ago is past a 5 s idle time; now is not.
        acc.mark_used(&t, now_ms() - 60_000);
        acc.mark_used(&t, now_ms());
        assert!(acc.idle_topics(Duration::from_secs(5)).is_empty());
        acc.mark_used(&t, now_ms() - 60_000);
        assert_eq!(acc.idle_topics(Duration::from_secs(5)), ["t"]);
        assert!(!t.registered.load(Ordering::Acquire));
    }
}
