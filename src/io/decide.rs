//! The I/O thread's decisions about a batch, as plain functions of the
//! facts and `now`: no socket, thread, lock or clock. `broker.rs` gathers
//! the facts (the broker's answer, the batch's attempts and age, whether
//! the thread is stopping) and carries out the [`Verdict`]; the unit tests
//! below go through every branch without a broker or a sleep.
//!
//! What to drain and when a queued batch expires are decided the same way,
//! with `now` passed in, by the accumulator (`RecordAccumulator::drain`,
//! `RecordAccumulator::expire`).

use std::time::{Duration, Instant};

use crate::config::ProducerConfig;
use crate::protocol::ErrorCode;
use crate::util::random_u64;

/// What to do with a batch the broker answered for, or whose request
/// failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It is in the log: complete it with its offset.
    Delivered,
    /// Too large for the broker: split it in two and send the halves again
    /// (as Java's `splitAndReenqueue`).
    Split,
    /// Hand it back to the front of its deque, to be sent again after
    /// this backoff (KIP-580), or at once by a new leader.
    Retry(Duration),
    /// Fail it with the error at hand.
    Fail,
    /// Fail it with a delivery timeout: it outlived `delivery.timeout.ms`
    /// while being retried.
    Expired,
}

/// What is known of one batch when its answer comes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batch {
    /// Sends so far, this one included.
    pub(crate) attempts: u32,
    /// When it was created (`delivery.timeout.ms` counts from here).
    pub(crate) created: Instant,
    /// How many records it holds.
    pub(crate) records: usize,
    /// It carries an idempotent producer's sequence, and a sequence error
    /// for it is one a retry can mend (`RecordAccumulator::sequence_error`).
    pub(crate) sequenced: bool,
}

/// The answers to an idempotent batch that a retry can mend (Java's
/// `TransactionManager.canRetry`): the broker lacks an earlier batch that
/// is still on its way, or the producer must bump its epoch and start its
/// sequences again (KIP-360); either way this batch goes again.
pub(crate) fn is_sequence_error(code: ErrorCode) -> bool {
    code == ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER || code == ErrorCode::UNKNOWN_PRODUCER_ID
}

/// The verdict on a batch whose partition the broker answered with `code`.
/// `can_retry` is false once nothing may be sent again: the thread is
/// stopping or the producer aborting.
pub(crate) fn on_answer(
    cfg: &ProducerConfig,
    code: ErrorCode,
    batch: Batch,
    can_retry: bool,
    now: Instant,
) -> Verdict {
    // DUPLICATE_SEQUENCE_NUMBER: an idempotent batch the broker already
    // has (an earlier attempt got through); it is in the log.
    if code.is_ok() || code == ErrorCode::DUPLICATE_SEQUENCE_NUMBER {
        return Verdict::Delivered;
    }
    if code == ErrorCode::MESSAGE_TOO_LARGE
        && batch.records > 1
        && can_retry
        && !expired(cfg, batch.created, now)
    {
        return Verdict::Split;
    }
    let retriable = code.is_retriable() || (batch.sequenced && is_sequence_error(code));
    on_failure(cfg, retriable, batch, can_retry, now)
}

/// The verdict on a batch that failed (an error code, an answer without
/// it, or an undecodable answer): another attempt if the error is
/// `retriable`, `retries` is not used up, its delivery timeout has not
/// passed and `can_retry`; else it fails, with a delivery timeout if that
/// is what stopped a retriable error.
pub(crate) fn on_failure(
    cfg: &ProducerConfig,
    retriable: bool,
    batch: Batch,
    can_retry: bool,
    now: Instant,
) -> Verdict {
    let expired = expired(cfg, batch.created, now);
    if retriable && batch.attempts <= cfg.retries && can_retry && !expired {
        let backoff = jittered(
            cfg.retry_backoff,
            cfg.retry_backoff_max,
            batch.attempts.saturating_sub(1),
        );
        Verdict::Retry(backoff)
    } else if retriable && expired {
        Verdict::Expired
    } else {
        Verdict::Fail
    }
}

/// True once a batch created at `created` has outlived
/// `delivery.timeout.ms`.
pub(crate) fn expired(cfg: &ProducerConfig, created: Instant, now: Instant) -> bool {
    now.saturating_duration_since(created) >= cfg.delivery_timeout
}

/// True once a request sent at `sent_at` has waited `request.timeout.ms`:
/// its connection is dropped and its batches retried or expired.
pub(crate) fn request_overdue(cfg: &ProducerConfig, sent_at: Instant, now: Instant) -> bool {
    now.saturating_duration_since(sent_at) >= cfg.request_timeout
}

/// KIP-580 exponential backoff: `base * 2^attempt`, capped at `max`, with
/// ±20% jitter.
pub(crate) fn jittered(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.min(31)));
    let d = exp.min(max).max(base.min(max));
    // 0..=4000 -> a factor of 0.8..=1.2; not `mul_f64`, which panics when a
    // huge configured backoff overflows.
    let r = random_u64() % 4001;
    Duration::try_from_secs_f64(d.as_secs_f64() * (0.8 + r as f64 / 10_000.0)).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ProducerConfig {
        ProducerConfig::new()
            .retries(2)
            .retry_backoff(Duration::from_millis(100))
            .retry_backoff_max(Duration::from_millis(1000))
            .request_timeout(Duration::from_secs(30))
            .delivery_timeout(Duration::from_secs(60))
    }

    fn batch(attempts: u32, records: usize, t0: Instant) -> Batch {
        Batch {
            attempts,
            created: t0,
            records,
            sequenced: false,
        }
    }

    #[test]
    fn sequence_errors_are_retried_only_for_idempotent_batches() {
        let (c, t0) = (cfg(), Instant::now());
        let soon = t0 + Duration::from_secs(1);
        for code in [
            ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
            ErrorCode::UNKNOWN_PRODUCER_ID,
        ] {
            let plain = batch(1, 5, t0);
            let sequenced = Batch {
                sequenced: true,
                ..plain
            };
            assert_eq!(on_answer(&c, code, plain, true, soon), Verdict::Fail);
            assert!(matches!(
                on_answer(&c, code, sequenced, true, soon),
                Verdict::Retry(_)
            ));
        }
    }

    fn backoff_in(v: Verdict, lo_ms: u64, hi_ms: u64) -> bool {
        matches!(v, Verdict::Retry(d) if d >= Duration::from_millis(lo_ms) && d <= Duration::from_millis(hi_ms))
    }

    #[test]
    fn answers_are_delivered_split_retried_or_failed() {
        let (c, t0) = (cfg(), Instant::now());
        let soon = t0 + Duration::from_secs(1);
        let late = t0 + Duration::from_secs(61);
        use ErrorCode as E;
        assert_eq!(
            on_answer(&c, E::NONE, batch(1, 5, t0), true, soon),
            Verdict::Delivered
        );
        // Delivered even when late or stopping: the broker has it.
        assert_eq!(
            on_answer(&c, E::NONE, batch(9, 5, t0), false, late),
            Verdict::Delivered
        );
        // Retriable: backoff doubles per attempt (±20%), capped.
        let nl = E::NOT_LEADER_OR_FOLLOWER;
        assert!(backoff_in(
            on_answer(&c, nl, batch(1, 5, t0), true, soon),
            80,
            120
        ));
        assert!(backoff_in(
            on_answer(&c, nl, batch(2, 5, t0), true, soon),
            160,
            240
        ));
        // `retries` = 2: the third send's failure is final.
        assert_eq!(
            on_answer(&c, nl, batch(3, 5, t0), true, soon),
            Verdict::Fail
        );
        // Stopping or aborting: no one to retry it.
        assert_eq!(
            on_answer(&c, nl, batch(1, 5, t0), false, soon),
            Verdict::Fail
        );
        // Past its delivery timeout: a timeout, not the broker's error.
        assert_eq!(
            on_answer(&c, nl, batch(1, 5, t0), true, late),
            Verdict::Expired
        );
        // Not retriable: fails at once, however young.
        let bad = E::INVALID_TOPIC_EXCEPTION;
        assert_eq!(
            on_answer(&c, bad, batch(1, 5, t0), true, soon),
            Verdict::Fail
        );
        assert_eq!(
            on_answer(&c, bad, batch(1, 5, t0), true, late),
            Verdict::Fail
        );
        // Too large: split while it has two records or more and may be
        // retried; a single record fails with the error.
        let big = E::MESSAGE_TOO_LARGE;
        assert_eq!(
            on_answer(&c, big, batch(1, 2, t0), true, soon),
            Verdict::Split
        );
        assert_eq!(
            on_answer(&c, big, batch(1, 1, t0), true, soon),
            Verdict::Fail
        );
        assert_eq!(
            on_answer(&c, big, batch(1, 2, t0), false, soon),
            Verdict::Fail
        );
        assert_eq!(
            on_answer(&c, big, batch(1, 2, t0), true, late),
            Verdict::Fail
        );
    }

    #[test]
    fn failures_without_an_answer_follow_the_same_rules() {
        let (c, t0) = (cfg(), Instant::now());
        let soon = t0 + Duration::from_secs(1);
        // A disconnect is retriable; an undecodable answer is not.
        assert!(backoff_in(
            on_failure(&c, true, batch(1, 1, t0), true, soon),
            80,
            120
        ));
        assert_eq!(
            on_failure(&c, false, batch(1, 1, t0), true, soon),
            Verdict::Fail
        );
        let zero = ProducerConfig::new().retries(0);
        assert_eq!(
            on_failure(&zero, true, batch(1, 1, t0), true, soon),
            Verdict::Fail
        );
    }

    #[test]
    fn requests_and_batches_time_out_at_their_limits() {
        let (c, t0) = (cfg(), Instant::now());
        assert!(!request_overdue(&c, t0, t0 + Duration::from_millis(29_999)));
        assert!(request_overdue(&c, t0, t0 + Duration::from_secs(30)));
        assert!(!expired(&c, t0, t0 + Duration::from_millis(59_999)));
        assert!(expired(&c, t0, t0 + Duration::from_secs(60)));
        // A clock read before `created` is not a negative age.
        assert!(!expired(&c, t0 + Duration::from_secs(1), t0));
    }

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let (b, m) = (Duration::from_millis(100), Duration::from_millis(1000));
        for _ in 0..200 {
            let d0 = jittered(b, m, 0);
            assert!(d0 >= Duration::from_millis(80) && d0 <= Duration::from_millis(120));
            let d9 = jittered(b, m, 9);
            assert!(d9 >= Duration::from_millis(800) && d9 <= Duration::from_millis(1200));
        }
        // A base above the cap is the cap; huge values do not panic.
        let d = jittered(Duration::from_secs(5), m, 0);
        assert!(d <= Duration::from_millis(1200));
        let _ = jittered(Duration::MAX, Duration::MAX, u32::MAX);
    }
}
