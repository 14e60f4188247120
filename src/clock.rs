//! The clock the producer's logic reads: `Instant::now()`, unless the
//! calling thread runs a simulation (`mock` feature), which sets a virtual
//! time for that thread alone with [`Virtual`].
//!
//! Everything the accumulator and the I/O core decide takes `now` as an
//! argument; the few places that read the clock themselves (a batch's
//! creation, a wake-up's `ready_at`, the driver loops) read it here, so a
//! simulation on one thread sees one consistent virtual time. Threads
//! that never set one (every real I/O thread, every caller of `send`)
//! read the real clock, at the cost of one thread-local load when the
//! feature is on and none when it is off.

use std::time::Instant;

#[cfg(feature = "mock")]
thread_local! {
    static VIRTUAL: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Now: the thread's virtual time if it has one, else the real clock.
#[inline]
pub(crate) fn now() -> Instant {
    #[cfg(feature = "mock")]
    if let Some(t) = VIRTUAL.with(std::cell::Cell::get) {
        return t;
    }
    Instant::now()
}

/// A virtual clock for the calling thread, from its creation until it is
/// dropped: [`now`] returns what [`set`](Virtual::set) last gave.
#[cfg(feature = "mock")]
pub(crate) struct Virtual {
    _not_send: std::marker::PhantomData<*const ()>,
}

#[cfg(feature = "mock")]
impl Virtual {
    /// Starts virtual time on this thread at `start`.
    pub(crate) fn start(start: Instant) -> Virtual {
        VIRTUAL.with(|v| v.set(Some(start)));
        Virtual {
            _not_send: std::marker::PhantomData,
        }
    }

    /// Moves this thread's virtual time to `t`.
    pub(crate) fn set(&self, t: Instant) {
        VIRTUAL.with(|v| v.set(Some(t)));
    }
}

#[cfg(feature = "mock")]
impl Drop for Virtual {
    fn drop(&mut self) {
        VIRTUAL.with(|v| v.set(None));
    }
}

#[cfg(all(test, feature = "mock"))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_virtual_clock_is_the_threads_own_and_ends_with_its_guard() {
        let t0 = Instant::now() + Duration::from_secs(3600);
        {
            let v = Virtual::start(t0);
            assert_eq!(now(), t0);
            v.set(t0 + Duration::from_secs(5));
            assert_eq!(now(), t0 + Duration::from_secs(5));
            let other = std::thread::spawn(now).join().unwrap();
            assert!(other < t0, "another thread reads the real clock");
        }
        assert!(now() < t0, "the real clock again once the guard is dropped");
    }
}
