//! The I/O side: one thread per broker (`broker.rs`) that sends batches
//! and completes them, a metadata thread (`metadata.rs`) that keeps the
//! cluster view fresh, expires batches and starts broker threads, and the
//! connection code both use (`conn.rs`).
//!
//! [`Io`] owns the threads: it starts them, tells them to stop, and joins
//! them with a deadline (a thread stuck opening a connection holds no
//! batch, so a close that cannot join it in time detaches it). It is also
//! where the producer's [`Lifecycle`] moves: [`Io::close`], [`Io::abort`]
//! and [`Io::stop`] make each transition and wake what it concerns.

pub(crate) mod broker;
pub(crate) mod conn;
pub(crate) mod core;
pub(crate) mod decide;
pub(crate) mod metadata;
pub(crate) mod tls;

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};

use crate::accumulator::{DrainSignal, RecordAccumulator};
use crate::config::ProducerConfig;
use crate::error::{Error, Result};
use crate::lifecycle::Lifecycle;
use crate::metadata::{Cluster, Metadata};
use broker::{BrokerThread, Control};

/// How often a fault that repeats (a broker that refuses connections, a
/// metadata fetch that keeps failing) is logged at `warn`: once, then at
/// most once per this interval, with the count of the ones in between
/// (which go to `debug`). See [`crate::util::LogLimiter`].
pub(crate) const FAULT_LOG_INTERVAL: Duration = Duration::from_secs(30);

thread_local! {
    static IO_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as one that runs send callbacks (the
/// transaction thread), so that `flush` and blocking calls in a callback
/// it runs are refused as on an I/O thread.
pub(crate) fn mark_io_thread() {
    IO_THREAD.with(|t| t.set(true));
}

/// True on one of this crate's I/O threads, i.e. inside a send callback.
pub(crate) fn in_io_thread() -> bool {
    IO_THREAD.with(Cell::get)
}

struct BrokerHandle {
    signal: Arc<DrainSignal>,
    control: Sender<Control>,
    thread: JoinHandle<()>,
}

/// What the I/O threads share.
pub(crate) struct IoShared {
    pub(crate) cfg: Arc<ProducerConfig>,
    pub(crate) accumulator: Arc<RecordAccumulator>,
    pub(crate) metadata: Arc<Metadata>,
    /// The producer's phase. `Stopped` (no new broker threads) is read
    /// under `brokers`, which [`Io::stop`] holds while it moves there.
    pub(crate) lifecycle: Arc<Lifecycle>,
    brokers: Mutex<HashMap<i32, BrokerHandle>>,
    /// Threads still running, for joining with a deadline.
    live: Mutex<usize>,
    live_cond: Condvar,
    /// Held while a new cluster view is computed from the current one and
    /// installed ([`install`](IoShared::install)), so a fetched view and a
    /// leader hint never overwrite each other.
    install: Mutex<()>,
    /// Set for a simulation (`mock/sim.rs`): broker cores are not given
    /// threads; the simulation collects them from here and drives them.
    #[cfg(feature = "mock")]
    simulated: Option<Mutex<Simulated>>,
}

/// A broker core for the simulation to drive: its node, its drain
/// signal, and the flag the signal's wake sets (where a thread's waker
/// would interrupt its poll).
#[cfg(feature = "mock")]
pub(crate) type SimulatedCore = (i32, Arc<DrainSignal>, Arc<std::sync::atomic::AtomicBool>);

/// The broker cores a simulation runs ([`IoShared::simulated`]).
#[cfg(feature = "mock")]
#[derive(Default)]
pub(crate) struct Simulated {
    /// Nodes with a core, as `brokers` holds the nodes with a thread.
    running: std::collections::BTreeSet<i32>,
    /// Cores asked for since the simulation last looked, each with its
    /// drain signal and the flag its wake sets.
    started: Vec<SimulatedCore>,
}

/// Decrements the live-thread count when a thread ends, even by panic.
struct LiveGuard(Arc<IoShared>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut n = self.0.live.lock();
        *n -= 1;
        self.0.live_cond.notify_all();
    }
}

impl IoShared {
    fn spawn<F: FnOnce() + Send + 'static>(
        self: &Arc<Self>,
        name: String,
        f: F,
    ) -> Result<JoinHandle<()>> {
        *self.live.lock() += 1;
        let guard = LiveGuard(self.clone());
        std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let _guard = guard;
                IO_THREAD.with(|t| t.set(true));
                f();
            })
            .map_err(|e| Error::Network {
                broker: name,
                message: format!("cannot start thread: {e}"),
            })
    }

    /// For the I/O thread of `node`, which has led no partition for a while
    /// and holds no request: forgets it (so a later leadership starts a new
    /// one) and returns true, unless it leads something again or the
    /// producer is stopping (then the thread carries on). Checked under the
    /// `brokers` lock that [`ensure_broker`](Self::ensure_broker) takes, and
    /// the metadata thread assigns partitions before it ensures threads, so
    /// no partition is left with a leader whose thread has gone.
    pub(crate) fn retire_broker(&self, node: i32) -> bool {
        let mut brokers = self.brokers.lock();
        if self.lifecycle.is_stopped() || !self.accumulator.partitions_led_by(node).is_empty() {
            return false;
        }
        self.forget_locked(&mut brokers, node);
        true
    }

    /// For an I/O thread that is dying (it panicked): forgets it, so the
    /// next metadata refresh starts a new one. Returns true if the producer
    /// is stopping, when no new thread will come.
    pub(crate) fn forget_broker(&self, node: i32) -> bool {
        let mut brokers = self.brokers.lock();
        self.forget_locked(&mut brokers, node);
        self.lifecycle.is_stopped()
    }

    /// Drops `node`'s handle and drain signal (the `brokers` lock held).
    fn forget_locked(&self, brokers: &mut HashMap<i32, BrokerHandle>, node: i32) {
        if brokers.remove(&node).is_some() {
            self.accumulator.unregister_signal(node);
        }
        #[cfg(feature = "mock")]
        if let Some(sim) = &self.simulated {
            if sim.lock().running.remove(&node) {
                self.accumulator.unregister_signal(node);
            }
        }
    }

    fn new(
        cfg: Arc<ProducerConfig>,
        accumulator: Arc<RecordAccumulator>,
        metadata: Arc<Metadata>,
        lifecycle: Arc<Lifecycle>,
    ) -> IoShared {
        IoShared {
            cfg,
            accumulator,
            metadata,
            lifecycle,
            brokers: Mutex::new(HashMap::new()),
            live: Mutex::new(0),
            live_cond: Condvar::new(),
            install: Mutex::new(()),
            #[cfg(feature = "mock")]
            simulated: None,
        }
    }

    /// The shared state of a simulated producer: as [`Io::start`] builds
    /// it, with no metadata thread, and broker cores left for the
    /// simulation to collect with [`take_started`](Self::take_started).
    #[cfg(feature = "mock")]
    pub(crate) fn simulated(
        cfg: Arc<ProducerConfig>,
        accumulator: Arc<RecordAccumulator>,
        metadata: Arc<Metadata>,
        lifecycle: Arc<Lifecycle>,
    ) -> Arc<IoShared> {
        let mut shared = IoShared::new(cfg, accumulator, metadata, lifecycle);
        shared.simulated = Some(Mutex::new(Simulated::default()));
        Arc::new(shared)
    }

    /// The broker cores asked for since the last call (simulation only).
    #[cfg(feature = "mock")]
    pub(crate) fn take_started(&self) -> Vec<SimulatedCore> {
        self.simulated
            .as_ref()
            .map(|s| std::mem::take(&mut s.lock().started))
            .unwrap_or_default()
    }

    /// Installs the cluster view `next` derives from the current one, if it
    /// returns one: the accumulator learns the leaders first, then the
    /// leaders' threads start, then `send` sees the view (in that order:
    /// `send` reads the metadata version before it looks for a topic's
    /// queues, and a thread deciding to retire must see the partitions it
    /// has just been given). `fetched` is when the metadata thread fetched
    /// it, `None` for leader hints. Called by the metadata thread and by
    /// I/O threads with KIP-951 leader hints.
    pub(crate) fn install(
        self: &Arc<Self>,
        next: impl FnOnce(&Cluster) -> Option<Cluster>,
        fetched: Option<Instant>,
    ) -> Option<Arc<Cluster>> {
        let _serial = self.install.lock();
        let cluster = Arc::new(next(&self.metadata.cluster())?);
        self.accumulator.update_metadata(&cluster);
        for node in cluster.leaders() {
            self.ensure_broker(node);
        }
        self.metadata.publish(cluster.clone(), fetched);
        Some(cluster)
    }

    /// Starts the I/O thread of `node` unless it runs already.
    pub(crate) fn ensure_broker(self: &Arc<Self>, node: i32) {
        // `Stopped` is read under the `brokers` lock, which `Io::stop`
        // holds while it moves there: a thread is either started before
        // `stop` (and told to stop) or not at all.
        let mut brokers = self.brokers.lock();
        if self.lifecycle.is_stopped() || brokers.contains_key(&node) {
            return;
        }
        #[cfg(feature = "mock")]
        if let Some(sim) = &self.simulated {
            let mut sim = sim.lock();
            if sim.running.insert(node) {
                let woken = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let flag = woken.clone();
                let signal = Arc::new(DrainSignal::new(Box::new(move || {
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                })));
                self.accumulator.register_signal(node, signal.clone());
                sim.started.push((node, signal, woken));
            }
            return;
        }
        let started = (|| -> std::io::Result<_> {
            let poll = mio::Poll::new()?;
            let waker = mio::Waker::new(poll.registry(), broker::WAKE)?;
            Ok((poll, waker))
        })();
        let (poll, waker) = match started {
            Ok(x) => x,
            Err(e) => {
                log::error!("cannot create a poller for node {node}: {e}");
                return;
            }
        };
        let signal = Arc::new(DrainSignal::new(Box::new(move || {
            if let Err(e) = waker.wake() {
                log::error!("waking an I/O thread failed: {e}");
            }
        })));
        let (tx, rx) = crossbeam_channel::unbounded();
        self.accumulator.register_signal(node, signal.clone());
        let thread = BrokerThread::new(node, self.clone(), poll, signal.clone(), rx);
        let name = format!("{}-b{node}", self.cfg.client_id);
        match self.spawn(name, move || thread.run()) {
            Ok(thread) => {
                brokers.insert(
                    node,
                    BrokerHandle {
                        signal,
                        control: tx,
                        thread,
                    },
                );
            }
            Err(e) => {
                self.accumulator.unregister_signal(node);
                log::error!("{e}");
            }
        }
    }
}

/// The producer's threads.
pub(crate) struct Io {
    shared: Arc<IoShared>,
    metadata_thread: Mutex<Option<JoinHandle<()>>>,
}

impl Io {
    /// Starts the metadata thread; a broker's thread starts when metadata
    /// first names it the leader of a partition we use, and retires after it
    /// has led nothing for `metadata.max.age.ms`.
    pub(crate) fn start(
        cfg: Arc<ProducerConfig>,
        accumulator: Arc<RecordAccumulator>,
        metadata: Arc<Metadata>,
        lifecycle: Arc<Lifecycle>,
    ) -> Result<Io> {
        let shared = Arc::new(IoShared::new(cfg, accumulator, metadata, lifecycle));
        let s = shared.clone();
        let t = shared.spawn(format!("{}-meta", shared.cfg.client_id), move || {
            metadata::run(s)
        })?;
        Ok(Io {
            shared,
            metadata_thread: Mutex::new(Some(t)),
        })
    }

    /// Running -> Closing: `send` and `append` refuse new records, and
    /// every I/O thread is woken, since every batch is ready now.
    pub(crate) fn close(&self) {
        self.shared.lifecycle.close();
        self.shared.accumulator.wake_all();
    }

    /// -> Aborting: no more retries; fails every queued batch with `err`
    /// (the sweep that `reenqueue`'s check under the partition lock pairs
    /// with), and tells every broker thread to fail what it holds with
    /// `err` and exit.
    pub(crate) fn abort(&self, err: &Error) {
        let shared = &self.shared;
        shared.lifecycle.abort();
        shared.accumulator.abort_queued(None, err);
        for b in shared.brokers.lock().values() {
            let _ = b.control.send(Control::Abort(err.clone()));
            b.signal.wake_now();
        }
    }

    /// -> Stopped (an abort too, if none came before): no new broker
    /// thread, the metadata thread and its waiters are woken to return, the
    /// pool's waiters to fail, and every broker thread is told to finish
    /// its in-flight requests and exit.
    pub(crate) fn stop(&self) {
        let shared = &self.shared;
        let brokers = shared.brokers.lock();
        // Under `brokers`: see `ensure_broker`.
        shared.lifecycle.stop();
        shared.metadata.wake_all();
        for b in brokers.values() {
            let _ = b.control.send(Control::Stop);
            b.signal.wake_now();
        }
        drop(brokers);
        shared.accumulator.pool().wake_waiters();
    }

    /// Waits until every thread has exited or `deadline` passes, then joins
    /// the ones that exited. Returns true if all did.
    pub(crate) fn join(&self, deadline: Instant) -> bool {
        let mut live = self.shared.live.lock();
        while *live > 0 {
            if self
                .shared
                .live_cond
                .wait_until(&mut live, deadline)
                .timed_out()
            {
                break;
            }
        }
        // `live` drops to 0 as each thread's body ends, a moment before
        // the OS thread exits: when it says all are done, joining them
        // returns at once, so join them all rather than detach any.
        let all = *live == 0;
        drop(live);
        let mut handles: Vec<JoinHandle<()>> = self
            .shared
            .brokers
            .lock()
            .drain()
            .map(|(node, b)| {
                self.shared.accumulator.unregister_signal(node);
                b.thread
            })
            .collect();
        handles.extend(self.metadata_thread.lock().take());
        for h in handles {
            if all || h.is_finished() {
                if h.join().is_err() {
                    log::error!("an I/O thread panicked");
                }
            } else {
                log::warn!("an I/O thread did not stop in time; detaching it");
            }
        }
        all
    }
}
