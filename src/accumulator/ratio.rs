//! [`RatioEstimator`]: per topic, how much its batches shrink when they are
//! compressed, so that a compressed batch is filled toward `batch.size`
//! *compressed* bytes (Java's `CompressionRatioEstimator`).
//!
//! Records are compressed once, when their batch is sealed; until then the
//! batch holds them uncompressed, in a buffer reserved from the pool. So a
//! new batch reserves `batch.size / ratio` bytes (those bytes are what the
//! batch really holds, and count against `buffer.memory`), capped at
//! [`MAX_GROWTH`] times `batch.size`. Java's rule for the estimate: a batch
//! that compressed worse than estimated moves it up at once by at least
//! 0.05; one that compressed better moves it down by at most 0.005 a batch,
//! so a burst of compressible records does not make later batches too big.

use std::sync::atomic::{AtomicU32, Ordering};

/// The most a compressed batch's uncompressed records may exceed
/// `batch.size`: the estimate may say 0.01, but the batch's records sit
/// uncompressed in memory until it is sealed.
pub(crate) const MAX_GROWTH: usize = 8;

/// Fixed point: the ratio times this.
const ONE: u32 = 10_000;
/// Java's `COMPRESSION_RATIO_DETERIORATE_STEP`.
const WORSE_STEP: u32 = 500;
/// Java's `COMPRESSION_RATIO_IMPROVING_STEP`.
const BETTER_STEP: u32 = 50;

/// The estimated compressed/uncompressed ratio of one topic's batches.
#[derive(Debug)]
pub(crate) struct RatioEstimator {
    /// Times [`ONE`]; starts at 1.0 (Java's initial estimate).
    ratio: AtomicU32,
}

impl Default for RatioEstimator {
    fn default() -> Self {
        RatioEstimator {
            ratio: AtomicU32::new(ONE),
        }
    }
}

impl RatioEstimator {
    /// Learns from one sealed batch: `plain` bytes of records that
    /// compressed to `compressed`.
    pub(crate) fn observe(&self, plain: usize, compressed: usize) {
        if plain == 0 {
            return;
        }
        let seen = (compressed as u64 * ONE as u64 / plain as u64).min(u32::MAX as u64) as u32;
        // Concurrent observers race benignly: each moves the estimate by
        // at most one step from what it read.
        let cur = self.ratio.load(Ordering::Relaxed);
        let next = if seen > cur {
            seen.max(cur.saturating_add(WORSE_STEP))
        } else {
            seen.max(cur.saturating_sub(BETTER_STEP))
        };
        self.ratio.store(next.max(1), Ordering::Relaxed);
    }

    /// The bytes of uncompressed records a new batch should hold so that it
    /// compresses to about `batch_size`, between `batch_size` and
    /// [`MAX_GROWTH`] times it (a batch never holds less than without
    /// compression: a ratio above 1.0 only means compression does not pay).
    pub(crate) fn batch_bytes(&self, batch_size: usize) -> usize {
        let r = self.ratio.load(Ordering::Relaxed).max(1) as u64;
        let bytes = (batch_size as u64).saturating_mul(ONE as u64) / r;
        (bytes as usize).clamp(batch_size, batch_size.saturating_mul(MAX_GROWTH))
    }

    /// The estimate, for tests.
    #[cfg(test)]
    pub(crate) fn ratio(&self) -> f64 {
        self.ratio.load(Ordering::Relaxed) as f64 / ONE as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_worsens_at_once_and_improves_slowly_as_javas() {
        let e = RatioEstimator::default();
        assert_eq!(e.batch_bytes(16_384), 16_384, "1.0 at first");
        // A batch that compressed to a tenth: down one small step.
        e.observe(10_000, 1_000);
        assert!((e.ratio() - 0.995).abs() < 1e-9, "{}", e.ratio());
        for _ in 0..1000 {
            e.observe(10_000, 1_000);
        }
        assert!(
            (e.ratio() - 0.1).abs() < 1e-9,
            "converges to what it sees: {}",
            e.ratio()
        );
        assert_eq!(e.batch_bytes(1000), 8000, "capped at MAX_GROWTH");
        // One batch that compressed badly: up at once, by at least 0.05.
        e.observe(10_000, 3_000);
        assert!((e.ratio() - 0.3).abs() < 1e-9, "{}", e.ratio());
        assert_eq!(e.batch_bytes(3000), 10_000);
        e.observe(10_000, 3_100);
        assert!((e.ratio() - 0.35).abs() < 1e-9, "{}", e.ratio());
        // Incompressible: never below batch.size.
        e.observe(1000, 1100);
        assert_eq!(e.batch_bytes(1000), 1000);
        e.observe(0, 10);
        assert_eq!(e.batch_bytes(usize::MAX), usize::MAX);
    }
}
