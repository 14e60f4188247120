//! Small helpers with no better home: a fast non-cryptographic random
//! number source (sticky partition choice, backoff jitter), wall-clock
//! milliseconds (read about once a millisecond, a cheap counter in
//! between), saturating `Instant` arithmetic, [`Budget`] (a call's
//! `max.block.ms`, its clock read only if it waits), and [`LogLimiter`],
//! which keeps a fault that repeats (a broker down, reconnecting every
//! backoff) from flooding the log.

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    // Distinct per thread and per run; quality needs are modest.
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let local = 0u8;
    let addr = &local as *const u8 as u64;
    (t ^ addr.rotate_left(32)) | 1
}

/// A random `u64` from a per-thread xorshift64* generator.
pub(crate) fn random_u64() -> u64 {
    RNG.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// Seeds this thread's generator (a simulation replays its schedule
/// exactly: backoff jitter and sticky choices come from here).
#[cfg(feature = "mock")]
pub(crate) fn seed_thread_rng(seed: u64) {
    RNG.with(|s| s.set(seed | 1));
}

/// A random index below `n` (`n > 0`).
pub(crate) fn random_below(n: usize) -> usize {
    (((random_u64() >> 32) * n as u64) >> 32) as usize
}

/// Milliseconds since the Unix epoch, as Kafka timestamps count them (0
/// for a clock set before it). Runs once per record, for its timestamp,
/// yet reads the wall clock about once per millisecond per thread: each
/// call reads a cheap counter (the CPU's time-stamp counter where it is
/// invariant, 9.6 ns here against `clock_gettime`'s 24 ns) and answers
/// with the millisecond its thread last read, for as long as the counter
/// says that millisecond cannot have ended. The wall clock is read again
/// a little early (see [`Counter::ticks_within`]), so the answer is the
/// wall clock's current millisecond, as a read per record would give,
/// except that a step of the wall clock (settimeofday, an NTP step) shows
/// up to a millisecond late.
pub(crate) fn now_ms() -> i64 {
    let counter = Counter::get();
    let raw = counter.clock.raw();
    LAST_MS.with(|last| {
        let (from, until, ms) = last.get();
        // `from <= raw`: a thread moved to a core whose counter is behind
        // reads the wall clock again.
        if from <= raw && raw < until {
            return ms;
        }
        let (ms, ns_left) = wall_ms();
        // `raw` was read before the wall clock: the millisecond ends no
        // sooner than `ns_left` after it.
        last.set((raw, raw.saturating_add(counter.ticks_within(ns_left)), ms));
        ms
    })
}

/// Calibrates [`now_ms`]'s counter if no call has yet: busy-waiting
/// against the monotonic clock, once per process, until quanta's estimate
/// settles (0.6 ms here; 200 ms at most, quanta's bound, which valgrind
/// reaches).
pub(crate) fn calibrate_clock() {
    Counter::get();
}

thread_local! {
    /// This thread's last wall-clock read: the counter when it was taken,
    /// the counter before which its millisecond is still current, and the
    /// millisecond. Starts empty (`from > until`).
    static LAST_MS: Cell<(u64, u64, i64)> = const { Cell::new((u64::MAX, 0, 0)) };
}

#[cfg(test)]
thread_local! {
    /// The wall-clock reads of [`now_ms`] on this thread.
    static WALL_READS: Cell<u64> = const { Cell::new(0) };
}

/// The counter behind [`now_ms`]: quanta's raw clock (the time-stamp
/// counter if the CPU's is invariant, calibrated once per process against
/// the monotonic clock; else the monotonic clock itself).
struct Counter {
    clock: quanta::Clock,
    /// Nanoseconds in 2^30 of the counter's ticks.
    ns_per_2p30_ticks: u64,
}

impl Counter {
    fn get() -> &'static Counter {
        static COUNTER: std::sync::OnceLock<Counter> = std::sync::OnceLock::new();
        COUNTER.get_or_init(|| {
            let clock = quanta::Clock::new();
            let ns_per_2p30_ticks = clock.delta_as_nanos(0, 1 << 30).max(1);
            Counter {
                clock,
                ns_per_2p30_ticks,
            }
        })
    }

    /// Ticks that surely take less than `ns` nanoseconds: 0.1% and 1 µs
    /// short of them, far more than the calibration's error, so the wall
    /// clock is read again just before its millisecond ends, never after.
    fn ticks_within(&self, ns: u64) -> u64 {
        let ns = ns.saturating_sub(ns / 1024 + 1_000);
        ((u128::from(ns) << 30) / u128::from(self.ns_per_2p30_ticks)) as u64
    }
}

/// The wall clock's millisecond since the Unix epoch (0 before it) and the
/// nanoseconds left in it.
fn wall_ms() -> (i64, u64) {
    #[cfg(test)]
    WALL_READS.with(|n| n.set(n.get() + 1));
    #[cfg(unix)]
    let (secs, nanos) = {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
        (t.tv_sec, t.tv_nsec)
    };
    #[cfg(not(unix))]
    let (secs, nanos) = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.as_secs() as i64, i64::from(d.subsec_nanos())))
        .unwrap_or((0, 0));
    if secs < 0 {
        return (0, 1_000_000);
    }
    let ms = secs * 1000 + nanos / 1_000_000;
    (ms, (1_000_000 - nanos % 1_000_000) as u64)
}

/// How long one call may block (`max.block.ms`), counted from the first
/// moment it has to wait, as Java counts it (the time spent waiting for
/// metadata, then for memory, out of one budget). A call that never waits
/// never reads the clock: `send` on the fast path takes none of its time.
pub(crate) struct Budget {
    limit: Duration,
    start: Cell<Option<Instant>>,
}

impl Budget {
    /// A budget of `limit`, not started.
    pub(crate) fn new(limit: Duration) -> Self {
        Budget {
            limit,
            start: Cell::new(None),
        }
    }

    /// The budget as given.
    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    /// When the first wait began (now, the first time this is asked).
    pub(crate) fn start(&self) -> Instant {
        match self.start.get() {
            Some(t) => t,
            None => {
                let t = Instant::now();
                self.start.set(Some(t));
                t
            }
        }
    }

    /// When the budget runs out (starting it if it has not started).
    pub(crate) fn deadline(&self) -> Instant {
        later(self.start(), self.limit)
    }
}

/// `t + d`, saturating: a duration too large for `Instant` (a user's
/// `Duration::MAX`, `i64::MAX` milliseconds) means "about a century from
/// `t`", never a panic.
pub(crate) fn later(t: Instant, d: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    t.checked_add(d.min(CENTURY))
        .or_else(|| t.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(t)
}

/// Rate-limits one kind of log message (a broker thread's connection
/// faults, the metadata thread's failed fetches): the first event is
/// logged at its own level, and then at most one per `interval`; the ones
/// in between go to `debug`, counted, and the next one logged at its own
/// level says how many it stands for.
///
/// ```text
///   t=0s   WARN  node 1: connecting to ...: refused
///   t=1s   DEBUG node 1: connecting to ...: refused      (counted)
///   ...
///   t=30s  WARN  node 1: connecting to ...: refused (29 similar messages suppressed)
/// ```
///
/// The limit is by time only, not reset when the fault ends: a broker that
/// flaps every second would otherwise log at `warn` every second. So a
/// new fault that starts within `interval` of the last one logged is at
/// `debug` until the interval has passed.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    interval: Duration,
    /// When the next event may be logged at its own level; `None` until
    /// the first one is.
    next_at: Option<Instant>,
    /// Events sent to `debug` since the last one that was not.
    suppressed: u64,
}

/// How many events a logged one stands for; displays as
/// " (N similar messages suppressed)", or as nothing when N is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Suppressed(pub(crate) u64);

impl fmt::Display for Suppressed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            1 => f.write_str(" (1 similar message suppressed)"),
            n => write!(f, " ({n} similar messages suppressed)"),
        }
    }
}

impl LogLimiter {
    /// A limiter that lets one event in `interval` through.
    pub(crate) const fn new(interval: Duration) -> Self {
        LogLimiter {
            interval,
            next_at: None,
            suppressed: 0,
        }
    }

    /// The level to log an event at `now` that would be logged at `level`,
    /// and the note to append to its message:
    ///
    /// ```text
    /// let (level, note) = limiter.level(log::Level::Warn, now);
    /// log::log!(level, "{}: disconnecting: {why}{note}", label);
    /// ```
    ///
    /// `level` itself (with the count of events suppressed since the last
    /// one) for the first event and once `interval` has passed since the
    /// last event logged at its level; `debug` (or `level`, if lower) with
    /// no note otherwise.
    pub(crate) fn level(&mut self, level: log::Level, now: Instant) -> (log::Level, Suppressed) {
        if self.next_at.is_some_and(|t| now < t) {
            self.suppressed = self.suppressed.saturating_add(1);
            return (level.max(log::Level::Debug), Suppressed(0));
        }
        self.next_at = Some(later(now, self.interval));
        (level, Suppressed(std::mem::take(&mut self.suppressed)))
    }
}

/// The Fx hash (rustc's): a multiply and a rotate per 8 bytes. For the map
/// of topics, looked up once per record by a name the application chose:
/// SipHash's resistance to chosen keys buys nothing there and costs more
/// than the rest of the lookup.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    #[inline]
    fn write_u8(&mut self, b: u8) {
        self.add(b as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// [`FxHasher`] for `HashMap`s.
pub(crate) type FxBuildHasher = std::hash::BuildHasherDefault<FxHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The record timestamps' clock is the wall clock, in milliseconds.
    #[test]
    fn now_ms_reads_the_wall_clock_in_milliseconds() {
        let wall = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64
        };
        for _ in 0..100 {
            let (before, now, after) = (wall(), now_ms(), wall());
            assert!(before <= now && now <= after, "{before} {now} {after}");
        }
    }

    /// The counter's shortcut answers with the current millisecond, never
    /// one that has ended: through 30 millisecond boundaries (bounded in
    /// time and count), each answer lies between the wall clock's
    /// millisecond before and after it, and most calls read no wall clock.
    #[test]
    fn now_ms_between_wall_clock_reads_stays_current_across_milliseconds() {
        let wall = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64
        };
        let first = wall();
        let (mut calls, mut changes, mut last) = (0u64, 0u64, now_ms());
        let reads_before = WALL_READS.with(Cell::get);
        while changes < 30 && calls < 50_000_000 && wall() < first + 5_000 {
            let (before, now, after) = (wall(), now_ms(), wall());
            assert!(before <= now && now <= after, "{before} {now} {after}");
            changes += u64::from(now != last);
            last = now;
            calls += 1;
        }
        let reads = WALL_READS.with(Cell::get) - reads_before;
        assert_eq!(changes, 30, "millisecond boundaries seen in {calls} calls");
        assert!(
            reads * 4 < calls,
            "{reads} wall-clock reads in {calls} calls"
        );
        let c = Counter::get();
        assert!(c.ticks_within(1_000_000) > 0);
        assert_eq!(
            c.ticks_within(1_000),
            0,
            "within 1 µs of the end: read again"
        );
    }

    #[test]
    fn fx_hash_tells_names_apart() {
        use std::hash::BuildHasher;
        let h = |s: &str| FxBuildHasher::default().hash_one(s);
        let names = [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "orders",
            "orders-1",
            "orders-2",
            "12345678",
            "123456789",
        ];
        let mut seen = std::collections::HashSet::new();
        for n in names {
            assert!(seen.insert(h(n)), "{n:?} collides");
            assert_eq!(h(n), h(n));
        }
    }

    #[test]
    fn random_below_stays_in_range_and_spreads() {
        let mut seen = [0usize; 6];
        for _ in 0..6000 {
            seen[random_below(6)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 700), "{seen:?}");
    }

    #[test]
    fn the_log_limiter_lets_one_event_per_interval_through_and_counts_the_rest() {
        use log::Level::{Debug, Info, Trace, Warn};
        let t0 = Instant::now();
        let at = |ms| later(t0, Duration::from_millis(ms));
        let mut l = LogLimiter::new(Duration::from_secs(30));
        assert_eq!(l.level(Warn, at(0)), (Warn, Suppressed(0)), "the first");
        assert_eq!(l.level(Warn, at(1)), (Debug, Suppressed(0)));
        assert_eq!(l.level(Info, at(1000)), (Debug, Suppressed(0)));
        assert_eq!(
            l.level(Trace, at(2000)),
            (Trace, Suppressed(0)),
            "never raised"
        );
        assert_eq!(l.level(Warn, at(29_999)), (Debug, Suppressed(0)));
        // 30 s after the last one logged: through, with the count
        assert_eq!(l.level(Warn, at(30_000)), (Warn, Suppressed(4)));
        assert_eq!(l.level(Warn, at(30_001)), (Debug, Suppressed(0)));
        // the count starts again; a long quiet spell lets the next through
        assert_eq!(l.level(Info, at(3_600_000)), (Info, Suppressed(1)));
        assert_eq!(l.level(Warn, at(3_600_000)), (Debug, Suppressed(0)));
        // the window is measured from the last event let through
        assert_eq!(l.level(Warn, at(3_629_999)), (Debug, Suppressed(0)));
        assert_eq!(l.level(Warn, at(3_630_000)), (Warn, Suppressed(2)));
    }

    #[test]
    fn the_log_limiter_does_not_overflow_and_its_note_reads_well() {
        let now = Instant::now();
        let mut l = LogLimiter::new(Duration::MAX);
        assert_eq!(l.level(log::Level::Warn, now).0, log::Level::Warn);
        assert_eq!(
            l.level(log::Level::Warn, later(now, Duration::from_secs(1_000_000)))
                .0,
            log::Level::Debug
        );
        let mut l = LogLimiter::new(Duration::ZERO);
        assert_eq!(
            l.level(log::Level::Warn, now),
            (log::Level::Warn, Suppressed(0))
        );
        assert_eq!(
            l.level(log::Level::Warn, now),
            (log::Level::Warn, Suppressed(0))
        );
        assert_eq!(Suppressed(0).to_string(), "");
        assert_eq!(Suppressed(1).to_string(), " (1 similar message suppressed)");
        assert_eq!(
            Suppressed(29).to_string(),
            " (29 similar messages suppressed)"
        );
    }

    #[test]
    fn later_saturates_instead_of_panicking() {
        let now = Instant::now();
        assert_eq!(
            later(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        assert!(later(now, Duration::MAX) > now + Duration::from_secs(365 * 24 * 3600));
        assert!(later(later(now, Duration::MAX), Duration::MAX) >= later(now, Duration::MAX));
    }
}
