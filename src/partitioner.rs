//! Choosing a record's partition: the [`Partitioner`] trait for custom
//! partitioners, Java's murmur2 key hash (bit-exact with `Utils.murmur2`),
//! the [`RoundRobinPartitioner`], and the choice of the next sticky partition
//! for records without a key (KIP-794).
//!
//! The order of precedence is Java's (`KafkaProducer.partition`): an explicit
//! partition on the record; then a custom partitioner; then, for a keyed
//! record (unless `partitioner.ignore.keys`), `toPositive(murmur2(key)) %
//! numPartitions` over all partitions; otherwise the uniform sticky
//! partitioner, whose state lives with the partition queues in the
//! accumulator because its switch rule depends on batch fullness.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::RwLock;

use crate::metadata::Cluster;

/// A custom partitioner (Java's `Partitioner`), set with
/// [`crate::ProducerConfig::partitioner`].
///
/// It sees the serialized key and value and the current cluster metadata,
/// and returns a partition in `0..partition_count`. It runs inside `send`,
/// on the caller's thread.
///
/// ```
/// use kafka_producer::{murmur2_partition, Cluster, Partitioner};
///
/// /// Keeps partition 0 for one heavy key; hashes the rest over the others.
/// struct HeavyKey;
/// impl Partitioner for HeavyKey {
///     fn partition(&self, topic: &str, key: Option<&[u8]>, _value: Option<&[u8]>,
///                  cluster: &Cluster) -> i32 {
///         let n = cluster.partition_count_for_topic(topic).unwrap_or(1);
///         match key {
///             Some(b"whale") | None => 0,
///             Some(k) => 1 + murmur2_partition(k, n.max(2) - 1),
///         }
///     }
/// }
/// ```
pub trait Partitioner: Send + Sync {
    /// The partition for a record of `topic`. Out-of-range results make
    /// `send` fail with [`crate::Error::InvalidPartition`].
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        cluster: &Cluster,
    ) -> i32;
}

/// Java's `Utils.murmur2`: MurmurHash2, 32-bit, seed `0x9747b28c`, over the
/// serialized key.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: clears the sign bit (not `abs`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Java's built-in partitioner gives a keyed record:
/// `toPositive(murmur2(key)) % num_partitions`, over all partitions whether
/// or not they have a leader.
///
/// # Panics
///
/// If `num_partitions` is 0.
pub fn murmur2_partition(key: &[u8], num_partitions: usize) -> i32 {
    (to_positive(murmur2(key)) as u32 % num_partitions as u32) as i32
}

/// Java's `RoundRobinPartitioner`: each topic's records go to its partitions
/// in turn, over the partitions that have a leader when there are any. Keys
/// are ignored.
#[derive(Debug, Default)]
pub struct RoundRobinPartitioner {
    counters: RwLock<HashMap<String, AtomicU32>>,
}

impl RoundRobinPartitioner {
    /// A partitioner with every topic's counter at 0.
    pub fn new() -> Self {
        Self::default()
    }

    fn next(&self, topic: &str) -> u32 {
        if let Some(c) = self.counters.read().get(topic) {
            return c.fetch_add(1, Ordering::Relaxed);
        }
        let mut w = self.counters.write();
        w.entry(topic.to_owned())
            .or_insert_with(|| AtomicU32::new(0))
            .fetch_add(1, Ordering::Relaxed)
    }
}

impl Partitioner for RoundRobinPartitioner {
    fn partition(&self, topic: &str, _: Option<&[u8]>, _: Option<&[u8]>, cluster: &Cluster) -> i32 {
        let n = self.next(topic) as usize;
        let available = cluster.available_partitions_for_topic(topic);
        if !available.is_empty() {
            return available[n % available.len()];
        }
        let all = cluster.partition_count_for_topic(topic).unwrap_or(1);
        (n % all) as i32
    }
}

/// librdkafka's partitioners, with its exact semantics, so that a service
/// moving from librdkafka (or rust-rdkafka) keeps each key on the partition
/// it had. Select one with `partitioner.class` set to its librdkafka name
/// (`consistent_random`, ...) or [`ProducerConfig::partitioner`](crate::ProducerConfig::partitioner).
///
/// librdkafka sends every record without a key (`None`) to a random
/// (sticky) partition, whatever the partitioner; the partitioners differ in
/// how they hash a key, and `consistent_random` also treats an empty key as
/// absent:
///
/// | name | a key | an empty key |
/// |---|---|---|
/// | `consistent` | CRC-32 | CRC-32 of nothing: partition 0 |
/// | `consistent_random` | CRC-32 | random |
/// | `murmur2`, `murmur2_random` | murmur2 (Java's) | murmur2 of nothing |
/// | `fnv1a`, `fnv1a_random` | FNV-1a | FNV-1a of nothing |
///
/// "Random" is uniform over the partitions that have a leader (librdkafka
/// makes such records sticky for `sticky.partitioning.linger.ms`; here each
/// record draws).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibrdkafkaPartitioner {
    /// `consistent`: CRC-32 (IEEE) of the key modulo the partition count.
    Consistent,
    /// `consistent_random` (librdkafka's default): as `consistent`, random
    /// for empty keys too.
    ConsistentRandom,
    /// `murmur2`: Java's murmur2, positive, modulo the partition count.
    Murmur2,
    /// `murmur2_random`: the same placement as `murmur2` (the
    /// Java-compatible one; this crate's built-in keyed placement).
    Murmur2Random,
    /// `fnv1a`: 32-bit FNV-1a modulo the partition count.
    Fnv1a,
    /// `fnv1a_random`: the same placement as `fnv1a`.
    Fnv1aRandom,
}

impl LibrdkafkaPartitioner {
    /// The partitioner librdkafka names `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "consistent" => Self::Consistent,
            "consistent_random" => Self::ConsistentRandom,
            "murmur2" => Self::Murmur2,
            "murmur2_random" => Self::Murmur2Random,
            "fnv1a" => Self::Fnv1a,
            "fnv1a_random" => Self::Fnv1aRandom,
            _ => return None,
        })
    }

    /// The partition for `key` among `count`, or `None` where librdkafka
    /// picks at random.
    pub fn hashed(self, key: Option<&[u8]>, count: usize) -> Option<i32> {
        let n = count.max(1) as u32;
        let k = key.unwrap_or(&[]);
        // librdkafka's rd_kafka_msg_partitioner: no key is sticky/random for
        // every partitioner, an empty one too for consistent_random.
        if key.is_none() || (k.is_empty() && self == Self::ConsistentRandom) {
            return None;
        }
        let h = match self {
            Self::Consistent | Self::ConsistentRandom => crc32fast::hash(k),
            Self::Murmur2 | Self::Murmur2Random => to_positive(murmur2(k)) as u32,
            Self::Fnv1a | Self::Fnv1aRandom => fnv1a(k),
        };
        Some((h % n) as i32)
    }
}

/// 32-bit FNV-1a as librdkafka's `rd_fnv1a`: the hash taken as a signed
/// int and made positive (Sarama's `NewHashPartitioner` does the same).
fn fnv1a(data: &[u8]) -> u32 {
    let h = data.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    });
    (h as i32).wrapping_abs() as u32
}

impl Partitioner for LibrdkafkaPartitioner {
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        _: Option<&[u8]>,
        cluster: &Cluster,
    ) -> i32 {
        let count = cluster.partition_count_for_topic(topic).unwrap_or(1);
        self.hashed(key, count).unwrap_or_else(|| {
            let available = cluster.available_partitions_for_topic(topic);
            if available.is_empty() {
                crate::util::random_below(count) as i32
            } else {
                available[crate::util::random_below(available.len())]
            }
        })
    }
}

/// Picks the next sticky partition (KIP-794, Java's
/// `BuiltInPartitioner.nextPartition`).
///
/// Without adaptive partitioning, or before any partition has queued
/// batches, it is uniform over `available` (partitions with a leader), or
/// over all `count` partitions when none has one. With adaptive
/// partitioning each available partition is weighted by
/// `max_queue + 1 - its_queue`, so partitions whose leaders drain slowly get
/// less new data (Java's cumulative frequency table).
pub(crate) fn next_sticky_partition(
    available: &[i32],
    count: usize,
    adaptive: bool,
    queue_len: impl Fn(i32) -> usize,
) -> i32 {
    if available.is_empty() {
        return crate::util::random_below(count.max(1)) as i32;
    }
    if adaptive && available.len() > 1 {
        let lens: Vec<usize> = available.iter().map(|&p| queue_len(p)).collect();
        let max = lens.iter().copied().max().unwrap_or(0);
        if max > 0 {
            let total: usize = lens.iter().map(|l| max + 1 - l).sum();
            let mut r = crate::util::random_below(total);
            for (&p, l) in available.iter().zip(&lens) {
                let w = max + 1 - l;
                if r < w {
                    return p;
                }
                r -= w;
            }
        }
    }
    available[crate::util::random_below(available.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_java_and_librdkafka_vectors() {
        // librdkafka rdmurmur2.c unit test vectors, asserted equal to Java.
        let cases: &[(&[u8], u32)] = &[
            (b"kafka", 0xd067cf64),
            (b"giberish123456789", 0x8f552b0c),
            (b"1234", 0x9fc97b14),
            (b"234", 0xe7c009ca),
            (b"34", 0x873930da),
            (b"4", 0x5a4b5ca1),
            (b"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x78424f1c),
            (b"", 0x106e08d9),
        ];
        for (k, want) in cases {
            assert_eq!(murmur2(k) as u32, *want, "{:?}", String::from_utf8_lossy(k));
        }
    }

    #[test]
    fn to_positive_is_a_mask_not_abs() {
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        // 0xd067cf64 is negative as an i32; abs() would give another partition
        assert_eq!(murmur2_partition(b"kafka", 4), (0x5067cf64u32 % 4) as i32);
        assert_ne!(murmur2(b"kafka").unsigned_abs() % 5, 0x5067cf64 % 5);
    }

    #[test]
    fn round_robin_cycles_over_available_partitions() {
        let mut c = Cluster::default();
        c.topics.insert(
            "t".into(),
            crate::metadata::TopicMetadata {
                error: crate::protocol::ErrorCode::NONE,
                partitions: vec![],
                available: vec![0, 2, 3],
                epochs: vec![],
            },
        );
        let rr = RoundRobinPartitioner::new();
        let got: Vec<i32> = (0..6).map(|_| rr.partition("t", None, None, &c)).collect();
        assert_eq!(got, [0, 2, 3, 0, 2, 3]);
    }

    #[test]
    fn adaptive_choice_avoids_backed_up_partitions() {
        let available = [0, 1, 2];
        let mut hits = [0; 3];
        for _ in 0..3000 {
            // partition 1 has 10 batches queued, the others none
            let p = next_sticky_partition(&available, 3, true, |p| if p == 1 { 10 } else { 0 });
            hits[p as usize] += 1;
        }
        assert!(hits[1] < 300, "{hits:?}");
        assert!(hits[0] > 1000 && hits[2] > 1000, "{hits:?}");
        // uniform when not adaptive
        let mut hits = [0; 3];
        for _ in 0..3000 {
            hits[next_sticky_partition(&available, 3, false, |_| 5) as usize] += 1;
        }
        assert!(hits.iter().all(|&h| h > 800), "{hits:?}");
    }
}
