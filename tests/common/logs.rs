//! A `log` logger for tests that watch what the producer logs: it counts
//! the lines holding each of a test binary's patterns and keeps the last
//! 40 warnings and errors (for a report or a hang's diagnosis). One per
//! test binary, as the `log` crate allows; the first `install` sets the
//! patterns.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The most patterns one binary can watch.
const MAX_PATTERNS: usize = 8;

static PATTERNS: OnceLock<&'static [&'static str]> = OnceLock::new();
static COUNTS: [AtomicUsize; MAX_PATTERNS] = [const { AtomicUsize::new(0) }; MAX_PATTERNS];
static RECENT: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Debug && m.target().starts_with("kafka_producer")
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = r.args().to_string();
        for (i, p) in PATTERNS.get().copied().unwrap_or(&[]).iter().enumerate() {
            if line.contains(p) {
                COUNTS[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        if r.level() <= log::Level::Warn {
            let mut recent = RECENT.lock().unwrap();
            if recent.len() == 40 {
                recent.pop_front();
            }
            recent.push_back(format!("[{}] {line}", r.level()));
        }
    }

    fn flush(&self) {}
}

/// Installs the logger (at debug level), watching `patterns`; later calls
/// must pass the same patterns.
pub fn install(patterns: &'static [&'static str]) {
    assert!(
        patterns.len() <= MAX_PATTERNS,
        "at most {MAX_PATTERNS} patterns"
    );
    let set = PATTERNS.get_or_init(|| {
        if log::set_logger(&Logger).is_ok() {
            log::set_max_level(log::LevelFilter::Debug);
        }
        patterns
    });
    assert_eq!(*set, patterns, "one set of patterns per test binary");
}

/// Lines so far that held `patterns[i]`.
pub fn count(i: usize) -> usize {
    COUNTS[i].load(Ordering::Relaxed)
}

/// The last 40 warnings and errors, oldest first.
pub fn recent() -> Vec<String> {
    RECENT.lock().unwrap().iter().cloned().collect()
}
