//! `MockCluster`: the model served on 127.0.0.1, one listener per broker on
//! an ephemeral port, one blocking thread per listener and per connection.
//!
//! The only code of the mock that touches sockets, threads or a clock. A
//! connection thread reads a frame, hands it to the model under the one
//! lock (with the milliseconds since the cluster started as `now`), and
//! carries out the [`Action`]: wait the broker's latency, then write,
//! stay silent, or close. Requests on one connection are answered in
//! order, as a Kafka broker does.
//!
//! Lock order: `model` before `holds`; `listeners`, `conns` and `threads`
//! are never held with `model` (`threads` may be held while taking
//! `conns`).
//!
//! Shutdown is bounded: dropping the cluster sets the stop flag, wakes each
//! listener with a connection of its own, shuts every accepted socket down
//! (which ends the blocking reads and writes) and wakes the held and
//! delayed requests, then joins every thread.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::model::{Action, MockStats, Model};
use super::partition::{MockBatch, MockRecord};
use super::{Fault, MockConfig, MockError};

/// The largest request frame read (Kafka's `socket.request.max.bytes`
/// default); a larger size prefix closes the connection before anything
/// is allocated for it.
const MAX_FRAME: usize = 100 << 20;

/// How often a held or delayed request looks at the stop flag while it
/// waits (it is also woken at once by a release, a cut or the drop).
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// One broker's listener.
struct Listener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// An accepted connection.
struct Conn {
    broker: i32,
    stream: TcpStream,
    closed: Arc<AtomicBool>,
}

/// Held requests. A request held during release generation `g` waits
/// until `generation > g` (or its connection is cut).
#[derive(Default)]
struct Holds {
    /// How many requests are waiting now.
    waiting: u64,
    /// Bumped by each [`MockCluster::release`].
    generation: u64,
}

struct Shared {
    model: Mutex<Model>,
    start: Instant,
    stop: AtomicBool,
    conns: Mutex<HashMap<u64, Conn>>,
    next_conn: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
    holds: Mutex<Holds>,
    /// Signalled on a release, a cut and the drop.
    wake: Condvar,
}

/// A Kafka cluster model served on 127.0.0.1 (see the [module docs](super)).
///
/// Every method locks the model briefly; none blocks on the network. The
/// cluster shuts down when dropped: its sockets close and its threads are
/// joined.
pub struct MockCluster {
    shared: Arc<Shared>,
    listeners: Mutex<BTreeMap<i32, Listener>>,
}

impl std::fmt::Debug for MockCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockCluster")
            .field("bootstrap", &self.bootstrap())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not make the cluster unusable (or its drop panic).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MockCluster {
    /// A cluster of `brokers` brokers with the default [`MockConfig`].
    ///
    /// # Errors
    ///
    /// [`MockError::Config`] for 0 brokers, [`MockError::Io`] if a listener
    /// cannot be opened.
    pub fn new(brokers: usize) -> Result<MockCluster, MockError> {
        MockCluster::start(MockConfig {
            brokers,
            ..MockConfig::default()
        })
    }

    /// A cluster set up as `config` says.
    ///
    /// # Errors
    ///
    /// [`MockError::Config`] for 0 brokers or fewer than 1 default
    /// partition, [`MockError::Io`] if a listener cannot be opened.
    pub fn start(config: MockConfig) -> Result<MockCluster, MockError> {
        if config.brokers == 0 || config.brokers > 100 {
            return Err(MockError::Config(format!(
                "{} brokers (1 to 100 are supported)",
                config.brokers
            )));
        }
        if config.default_partitions < 1 {
            return Err(MockError::Config(format!(
                "default_partitions {} (at least 1)",
                config.default_partitions
            )));
        }
        let mut sockets = Vec::new();
        for _ in 0..config.brokers {
            sockets.push(TcpListener::bind("127.0.0.1:0")?);
        }
        let addresses: Vec<(String, u16)> = sockets
            .iter()
            .map(|l| l.local_addr().map(|a| ("127.0.0.1".to_string(), a.port())))
            .collect::<Result<_, _>>()?;
        let shared = Arc::new(Shared {
            model: Mutex::new(Model::new(config, &addresses)),
            start: Instant::now(),
            stop: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
            holds: Mutex::new(Holds::default()),
            wake: Condvar::new(),
        });
        let cluster = MockCluster {
            shared,
            listeners: Mutex::new(BTreeMap::new()),
        };
        for (i, socket) in sockets.into_iter().enumerate() {
            cluster.listen(i as i32 + 1, socket)?;
        }
        Ok(cluster)
    }

    fn listen(&self, broker: i32, socket: TcpListener) -> Result<(), MockError> {
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = Arc::clone(&self.shared);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name(format!("mock-broker-{broker}"))
                .spawn(move || accept_loop(shared, broker, socket, stop))?
        };
        lock(&self.listeners).insert(
            broker,
            Listener {
                addr,
                stop,
                thread: Some(thread),
            },
        );
        Ok(())
    }

    /// The bootstrap string: every broker's `127.0.0.1:port`, comma-separated.
    pub fn bootstrap(&self) -> String {
        lock(&self.listeners)
            .values()
            .map(|l| l.addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The broker ids (1, 2, ...).
    pub fn broker_ids(&self) -> Vec<i32> {
        lock(&self.shared.model).broker_ids()
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        lock(&self.shared.model)
    }

    /// Runs `f` on the model, under its lock (for what the other methods
    /// do not offer; do not block inside `f`: every broker waits).
    pub fn with_model<R>(&self, f: impl FnOnce(&mut Model) -> R) -> R {
        f(&mut self.model())
    }

    /// Creates `topic` with `partitions` partitions.
    ///
    /// # Errors
    ///
    /// See [`Model::create_topic`].
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), MockError> {
        self.model().create_topic(topic, partitions)
    }

    /// The data records of a partition, in offset order, whatever their
    /// transaction's outcome (see [`MockRecord::visibility`]).
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownPartition`].
    pub fn records(&self, topic: &str, partition: i32) -> Result<Vec<MockRecord>, MockError> {
        Ok(self
            .model()
            .batches(topic, partition)?
            .iter()
            .flat_map(|b| b.records.iter().cloned())
            .collect())
    }

    /// What a `read_committed` consumer reads of a partition: records below
    /// the last stable offset that are not transactional or were committed.
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownPartition`].
    pub fn read_committed(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<MockRecord>, MockError> {
        let model = self.model();
        let lso = model.last_stable_offset(topic, partition)?;
        Ok(model
            .batches(topic, partition)?
            .iter()
            .flat_map(|b| b.records.iter())
            .filter(|r| r.offset < lso && r.visibility.is_visible())
            .cloned()
            .collect())
    }

    /// The batches of a partition, in offset order, control markers included.
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownPartition`].
    pub fn batches(&self, topic: &str, partition: i32) -> Result<Vec<MockBatch>, MockError> {
        Ok(self.model().batches(topic, partition)?.to_vec())
    }

    /// How many partitions `topic` has, if it exists.
    pub fn partition_count(&self, topic: &str) -> Option<i32> {
        self.model().topics.get(topic).map(|p| p.len() as i32)
    }

    /// The partition's leader (-1 if it has none).
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownPartition`].
    pub fn leader(&self, topic: &str, partition: i32) -> Result<i32, MockError> {
        Ok(self.model().leader(topic, partition)?.0)
    }

    /// Makes broker `to` the partition's leader.
    ///
    /// # Errors
    ///
    /// See [`Model::move_leader`].
    pub fn move_leader(&self, topic: &str, partition: i32, to: i32) -> Result<(), MockError> {
        self.model().move_leader(topic, partition, to)
    }

    /// Adds a fault (see [`Fault`]).
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownBroker`] if the fault names a broker that does not exist.
    pub fn inject(&self, fault: Fault) -> Result<(), MockError> {
        self.model().inject(fault)
    }

    /// Removes the faults that have not fired yet.
    pub fn clear_faults(&self) {
        self.model().clear_faults();
    }

    /// Delays each of the broker's answers by `latency`.
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownBroker`].
    pub fn set_latency(&self, broker: i32, latency: Duration) -> Result<(), MockError> {
        self.model().set_latency(broker, latency)
    }

    /// Takes a broker down: its listener closes (connections are refused),
    /// its open connections are cut, and the partitions it led move to the
    /// next live replica.
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownBroker`].
    pub fn broker_down(&self, broker: i32) -> Result<(), MockError> {
        self.model().set_broker_up(broker, false)?;
        let listener = lock(&self.listeners).get_mut(&broker).map(|l| {
            l.stop.store(true, Ordering::SeqCst);
            (l.addr, l.thread.take())
        });
        if let Some((addr, Some(thread))) = listener {
            // Wake the blocking accept; it sees the flag and drops the listener.
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
            let _ = thread.join();
        }
        self.cut_connections(broker);
        Ok(())
    }

    /// Brings a broker back on its old port; it leads the partitions left
    /// without a leader.
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownBroker`], or [`MockError::Io`] if its port
    /// cannot be bound again (the broker then stays down).
    pub fn broker_up(&self, broker: i32) -> Result<(), MockError> {
        let addr = {
            let listeners = lock(&self.listeners);
            let l = listeners
                .get(&broker)
                .ok_or(MockError::UnknownBroker(broker))?;
            if l.thread.is_some() {
                return Ok(());
            }
            l.addr
        };
        let socket = TcpListener::bind(addr)?;
        self.listen(broker, socket)?;
        self.model().set_broker_up(broker, true)
    }

    /// Closes every open connection to `broker` (the client sees a reset
    /// or end of stream, and must reconnect).
    pub fn cut_connections(&self, broker: i32) {
        for c in lock(&self.shared.conns).values() {
            if c.broker == broker {
                c.closed.store(true, Ordering::SeqCst);
                let _ = c.stream.shutdown(Shutdown::Both);
            }
        }
        self.shared.wake.notify_all();
    }

    /// How many requests a [`FaultKind::Hold`](super::FaultKind::Hold)
    /// holds right now.
    pub fn held(&self) -> u64 {
        lock(&self.shared.holds).waiting
    }

    /// Releases every request held so far: each is then carried out and
    /// answered. A hold fault that fires later holds its request again.
    pub fn release(&self) {
        let _model = self.model();
        lock(&self.shared.holds).generation += 1;
        self.shared.wake.notify_all();
    }

    /// What the model counted.
    pub fn stats(&self) -> MockStats {
        self.model().stats().clone()
    }

    /// The offsets `group` committed in transactions: (topic, partition,
    /// offset, metadata), sorted.
    pub fn committed_offsets(&self, group: &str) -> Vec<(String, i32, i64, Option<String>)> {
        self.model().committed_offsets(group)
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let listeners = std::mem::take(&mut *lock(&self.listeners));
        for (_, mut l) in listeners {
            l.stop.store(true, Ordering::SeqCst);
            if let Some(thread) = l.thread.take() {
                let _ = TcpStream::connect_timeout(&l.addr, Duration::from_secs(1));
                let _ = thread.join();
            }
        }
        for c in lock(&self.shared.conns).values() {
            c.closed.store(true, Ordering::SeqCst);
            let _ = c.stream.shutdown(Shutdown::Both);
        }
        self.shared.wake.notify_all();
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        for t in threads {
            let _ = t.join();
        }
    }
}

fn accept_loop(shared: Arc<Shared>, broker: i32, socket: TcpListener, stop: Arc<AtomicBool>) {
    for stream in socket.incoming() {
        if stop.load(Ordering::SeqCst) || shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let Ok(clone) = stream.try_clone() else {
            continue;
        };
        let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        let closed = Arc::new(AtomicBool::new(false));
        lock(&shared.conns).insert(
            id,
            Conn {
                broker,
                stream: clone,
                closed: Arc::clone(&closed),
            },
        );
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("mock-conn-{broker}-{id}"))
                .spawn(move || {
                    serve(&shared, broker, stream, &closed);
                    lock(&shared.conns).remove(&id);
                })
        };
        let mut threads = lock(&shared.threads);
        threads.retain(|t| !t.is_finished());
        match thread {
            Ok(t) => threads.push(t),
            Err(_) => {
                if let Some(c) = lock(&shared.conns).remove(&id) {
                    let _ = c.stream.shutdown(Shutdown::Both);
                }
            }
        }
    }
}

/// Reads one frame: `None` at end of stream, on an error, or for a size
/// prefix out of range.
fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let size = usize::try_from(i32::from_be_bytes(size)).ok()?;
    if size > MAX_FRAME {
        return None;
    }
    let mut frame = vec![0u8; size];
    stream.read_exact(&mut frame).ok()?;
    Some(frame)
}

/// Waits until `done` says so (or `until` passes), the connection is cut
/// or the cluster stops: false in the two latter cases.
fn wait(
    shared: &Shared,
    closed: &AtomicBool,
    until: Option<Instant>,
    mut done: impl FnMut(&Holds) -> bool,
) -> bool {
    let mut h = lock(&shared.holds);
    loop {
        if shared.stop.load(Ordering::SeqCst) || closed.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if done(&h) || until.is_some_and(|u| now >= u) {
            return true;
        }
        let slice = until.map_or(WAIT_SLICE, |u| (u - now).min(WAIT_SLICE));
        h = shared
            .wake
            .wait_timeout(h, slice)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

fn serve(shared: &Shared, broker: i32, mut stream: TcpStream, closed: &AtomicBool) {
    while let Some(frame) = read_frame(&mut stream) {
        let now_ms = || shared.start.elapsed().as_millis() as i64;
        let mut model = lock(&shared.model);
        let mut outcome = model.handle(broker, &frame, now_ms());
        if outcome.action == Action::Hold {
            // Registered under the model lock (lock order: model, then
            // holds), as `release` takes both: a release that comes after
            // the model decided to hold this request releases it.
            let generation = {
                let mut h = lock(&shared.holds);
                h.waiting += 1;
                h.generation
            };
            drop(model);
            let released = wait(shared, closed, None, |h| h.generation > generation);
            lock(&shared.holds).waiting -= 1;
            if !released {
                break;
            }
            outcome = lock(&shared.model).handle_released(broker, &frame, now_ms());
        } else {
            drop(model);
        }
        if !outcome.delay.is_zero() {
            let until = Instant::now() + outcome.delay;
            if !wait(shared, closed, Some(until), |_| false) {
                break;
            }
        }
        match outcome.action {
            Action::Reply(bytes) => {
                if stream.write_all(&bytes).is_err() {
                    break;
                }
            }
            Action::Silent => {}
            Action::DropAndCut | Action::Cut | Action::Hold => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}
