//! One I/O thread per broker: the driver of that broker's sans-IO
//! [`BrokerCore`] (`io/core.rs`, which decides what to send, when, and
//! what each answer means) with mio, a real socket and connector threads.
//!
//! The thread blocks only in `mio::Poll::poll`, which returns when its
//! socket is readable or writable, when `send` or the metadata thread wakes
//! it through its [`DrainSignal`], or when the core's next deadline (a
//! linger expiry, a retry backoff, a request timeout) comes. Opening a
//! connection (DNS, TCP connect, TLS, ApiVersions, SASL: blocking calls)
//! and re-authenticating one run on a short-lived connector thread, which
//! hands the connection back through a channel and wakes the loop;
//! meanwhile the core still expires batches and the loop obeys `close`.
//!
//! Callbacks run on this thread, in record order per partition. A slow
//! callback delays every partition this broker leads; a panicking one is
//! caught (see `accumulator/batch.rs`).

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, TryRecvError};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::conn::{self, Connection, SocketBuffers, Transport};
use super::core::{BrokerCore, Plan, Want};
use super::tls::Stream;
use super::IoShared;
use crate::accumulator::DrainSignal;
use crate::error::{Error, Result};
use crate::protocol::messages::produce;

/// The poll token of the thread's waker.
pub(crate) const WAKE: Token = Token(0);
const SOCKET: Token = Token(1);

/// Messages from the producer to an I/O thread.
#[derive(Debug)]
pub(crate) enum Control {
    /// Finish what is in flight, then exit.
    Stop,
    /// Fail everything in flight with this error and exit now.
    Abort(Error),
}

/// What a connector thread hands back: the connection with the Produce
/// version to send, or why there is none.
type Connected = Result<(Connection, i16)>;

/// One broker's I/O thread: its core, and the I/O the core asks for.
pub(crate) struct BrokerThread {
    core: BrokerCore,
    shared: Arc<IoShared>,
    signal: Arc<DrainSignal>,
    control: Receiver<Control>,
    poll: Poll,
    /// The transport of the core's connection (the core holds its wire).
    stream: Option<Stream>,
    /// A connection being opened (or re-authenticated) by a connector
    /// thread: its result, once there.
    connecting: Option<Receiver<Connected>>,
}

impl BrokerThread {
    pub(crate) fn new(
        node: i32,
        shared: Arc<IoShared>,
        poll: Poll,
        signal: Arc<DrainSignal>,
        control: Receiver<Control>,
    ) -> Self {
        BrokerThread {
            core: BrokerCore::new(node, shared.clone(), signal.clone(), crate::clock::now()),
            shared,
            signal,
            control,
            poll,
            stream: None,
            connecting: None,
        }
    }

    /// The thread's body. A panic inside the loop (a bug, or a hostile
    /// answer we failed to anticipate) fails what the core holds instead
    /// of leaving its records without an outcome.
    pub(crate) fn run(mut self) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_loop()));
        if let Err(p) = r {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            self.core.panicked(&what);
            self.carry_out_wants();
        }
        self.core.sensors_idle();
    }

    /// The loop; returns when told to stop (after its in-flight requests
    /// are answered) or to abort.
    fn run_loop(&mut self) {
        let mut events = Events::with_capacity(8);
        loop {
            self.signal.begin_cycle();
            if let Some(abort) = self.handle_control() {
                self.core.fail_all(abort);
                self.carry_out_wants();
                return;
            }
            self.collect_connection();
            let now = crate::clock::now();
            self.core.tick(now);
            self.carry_out_wants();
            self.write(now);
            let next_wake = match self.core.plan(now) {
                Plan::Again => continue,
                Plan::Exit => {
                    self.carry_out_wants();
                    return;
                }
                Plan::Sleep(t) => t,
            };
            self.carry_out_wants();
            let until = next_wake.map_or(u64::MAX, |t| self.shared.accumulator.nanos(t));
            if !self.signal.prepare_sleep(until) {
                continue;
            }
            let timeout = next_wake.map(|t| {
                let d = t.saturating_duration_since(crate::clock::now());
                // mio rounds down to whole milliseconds; never spin on 0.
                d.max(Duration::from_millis(1)).min(Duration::from_secs(60))
            });
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::error!("{}: poll failed: {e}", self.core.label());
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for ev in events.iter() {
                if ev.token() == SOCKET {
                    let closing = ev.is_read_closed() || ev.is_error();
                    self.on_socket_ready(ev.is_readable() || closing, closing);
                }
            }
        }
    }

    fn handle_control(&mut self) -> Option<Error> {
        while let Ok(msg) = self.control.try_recv() {
            match msg {
                Control::Stop => self.core.stop(),
                Control::Abort(e) => return Some(e),
            }
        }
        None
    }

    /// Does what the core asked for.
    fn carry_out_wants(&mut self) {
        let wants: Vec<Want> = self.core.take_wants().collect();
        for want in wants {
            match want {
                Want::Connect { node, setup } => self.start_connector(node, setup),
                Want::Reauth(wire) => self.start_reauth(wire),
                Want::Close {
                    wire,
                    graceful,
                    linger,
                } => {
                    if let Some(stream) = self.take_stream() {
                        let conn = Connection::from_parts(stream, wire);
                        if graceful {
                            conn.close_gracefully(linger);
                        }
                    }
                }
            }
        }
    }

    /// Opens a connection to `node` on a connector thread.
    fn start_connector(&mut self, node: crate::metadata::Node, setup: Duration) {
        let cfg = &self.shared.cfg;
        let label = format!("node {node}");
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (client_id, request_timeout) = (cfg.client_id.clone(), cfg.request_timeout);
        let buffers = SocketBuffers::of(cfg);
        let tls = cfg.tls.clone();
        let sasl = cfg.sasl.clone();
        let codec = cfg.compression_codec();
        let signal = self.signal.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-c{}", cfg.client_id, self.core.node()))
            .spawn(move || {
                let r = Connection::open(
                    label,
                    &node.host,
                    node.port,
                    &client_id,
                    setup,
                    request_timeout,
                    buffers,
                    tls.as_deref(),
                    sasl.as_deref(),
                )
                .and_then(|c| {
                    let v = produce_version(&c, codec)?;
                    Ok((c, v))
                });
                // The I/O thread may have gone (close): then the connection
                // is simply dropped.
                if tx.send(r).is_ok() {
                    signal.wake_now();
                }
            });
        self.await_connector(spawned, rx, "a connector thread");
    }

    /// Re-authenticates the connection of `wire` (KIP-368) on a connector
    /// thread.
    fn start_reauth(&mut self, wire: conn::Wire) {
        let (Some(sasl), Some(stream)) = (self.shared.cfg.sasl.clone(), self.take_stream()) else {
            return;
        };
        let mut conn = Connection::from_parts(stream, wire);
        let (tx, rx) = crossbeam_channel::bounded(1);
        let timeout = self.shared.cfg.request_timeout;
        let codec = self.shared.cfg.compression_codec();
        let signal = self.signal.clone();
        let spawned = std::thread::Builder::new()
            .name(format!(
                "{}-a{}",
                self.shared.cfg.client_id,
                self.core.node()
            ))
            .spawn(move || {
                let r = conn
                    .authenticate(&sasl, timeout)
                    .and_then(|()| produce_version(&conn, codec))
                    .map(|v| (conn, v));
                if tx.send(r).is_ok() {
                    signal.wake_now();
                }
            });
        self.await_connector(spawned, rx, "a re-authentication thread");
    }

    fn await_connector(
        &mut self,
        spawned: std::io::Result<std::thread::JoinHandle<()>>,
        rx: Receiver<Connected>,
        what: &str,
    ) {
        match spawned {
            Ok(_) => self.connecting = Some(rx),
            Err(e) => {
                let err = Error::Network {
                    broker: self.core.label(),
                    message: format!("cannot start {what}: {e}"),
                };
                self.core.connected(Err(err), crate::clock::now());
            }
        }
    }

    /// Hands a connector thread's result, once there, to the core, with
    /// the socket registered in the poller.
    fn collect_connection(&mut self) {
        let Some(rx) = &self.connecting else {
            return;
        };
        let result = match rx.try_recv() {
            Ok(r) => r,
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => Err(Error::Network {
                broker: self.core.label(),
                message: "the connector thread died".into(),
            }),
        };
        self.connecting = None;
        let result = result.and_then(|(conn, v)| {
            let (stream, wire) = conn.into_parts();
            stream
                .set_nonblocking(true)
                .and_then(|()| {
                    let fd = stream.as_raw_fd();
                    self.poll.registry().register(
                        &mut SourceFd(&fd),
                        SOCKET,
                        Interest::READABLE | Interest::WRITABLE,
                    )
                })
                .map_err(|e| Error::Network {
                    broker: wire.label.clone(),
                    message: format!("cannot poll the new connection: {e}"),
                })?;
            self.stream = Some(stream);
            Ok((wire, v))
        });
        self.core.connected(result, crate::clock::now());
    }

    /// Moves the core's output to the socket.
    fn write(&mut self, now: std::time::Instant) {
        let (Some(stream), Some(wire)) = (self.stream.as_mut(), self.core.wire_mut()) else {
            return;
        };
        let r = conn::write_to(stream, wire);
        self.core.wrote(r, now);
        self.carry_out_wants();
    }

    /// `closing`: the event says the peer closed or the socket failed, so
    /// the read goes on to the end of stream or the error.
    fn on_socket_ready(&mut self, readable: bool, closing: bool) {
        let now = crate::clock::now();
        self.write(now);
        if !readable {
            return;
        }
        self.core.read_limit();
        let (Some(stream), Some(wire)) = (self.stream.as_mut(), self.core.wire_mut()) else {
            return;
        };
        let r = conn::read_from(stream, wire, closing);
        self.core.read(r, now);
        self.carry_out_wants();
    }

    /// Takes the socket out of the poller.
    fn take_stream(&mut self) -> Option<Stream> {
        let stream = self.stream.take()?;
        let fd = stream.as_raw_fd();
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        Some(stream)
    }
}

/// The Produce version to send on `c`: zstd needs Produce v7+ (KIP-110),
/// and an older broker cannot take such batches at all.
fn produce_version<S: Transport>(
    c: &Connection<S>,
    codec: crate::protocol::compression::Compression,
) -> Result<i16> {
    match codec.min_produce_version() {
        7.. => c.version_from(&produce::API, 7, "Produce with zstd compression"),
        _ => c.version_for(&produce::API),
    }
}

#[cfg(test)]
mod tests {
    use super::super::core::tests::PANIC;
    use super::*;
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    /// A private librdkafka mock cluster (`KP_MOCK_BIN`, exported by
    /// scripts/test.sh), killed on drop.
    struct Mock(Child, std::path::PathBuf);

    impl Mock {
        fn start(topic: &str) -> (Mock, String) {
            let bin = std::env::var("KP_MOCK_BIN").expect(
                "KP_MOCK_BIN is not set: run the tests with scripts/test.sh, or \
                 eval \"$(scripts/brokers.sh env)\"",
            );
            // One directory per mock: tests run in parallel.
            let dir =
                std::env::temp_dir().join(format!("kp-unit-mock-{}-{topic}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let bs = dir.join("bootstrap");
            let child = Command::new(bin)
                .args(["-b", "1", "-t", &format!("{topic}:1")])
                .arg("-f")
                .arg(&bs)
                .arg("-c")
                .arg(dir.join("ctl"))
                .arg("-a")
                .arg(dir.join("ack"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the mock cluster");
            let mock = Mock(child, dir); // killed on drop, even if the wait fails
            let t0 = Instant::now();
            loop {
                if let Ok(s) = std::fs::read_to_string(&bs) {
                    if !s.trim().is_empty() {
                        return (mock, s.trim().to_owned());
                    }
                }
                assert!(t0.elapsed() < Duration::from_secs(10), "mock did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    impl Drop for Mock {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }

    /// A panic in the I/O thread (a bug of ours) strands nothing: the
    /// partitions it led get a fresh thread and their records are
    /// delivered; flush and close return.
    #[test]
    fn a_panicking_io_thread_strands_nothing() {
        use crate::{ByteArraySerializer, Producer, ProducerConfig, ProducerRecord};
        let (_mock, bootstrap) = Mock::start("pan");
        let cfg = ProducerConfig::new()
            .bootstrap_servers(bootstrap)
            .client_id("panicky")
            .linger(Duration::ZERO);
        let p: Producer<[u8], [u8]> =
            Producer::new(cfg, ByteArraySerializer, ByteArraySerializer).unwrap();
        p.send(ProducerRecord::new("pan", &b"before"[..]))
            .unwrap()
            .get()
            .unwrap();
        PANIC.lock().push(("panicky".into(), 1));
        let h = p.send(ProducerRecord::new("pan", &b"during"[..])).unwrap();
        let m = h
            .get_timeout(Duration::from_secs(20))
            .expect("the record queued when the thread panicked is delivered");
        assert!(m.has_offset());
        assert!(
            PANIC.lock().iter().all(|(c, n)| c != "panicky" || *n == 0),
            "the panic was injected"
        );
        p.flush().unwrap();
        p.send(ProducerRecord::new("pan", &b"after"[..]))
            .unwrap()
            .get()
            .unwrap();
        p.close_timeout(Duration::from_secs(5)).unwrap();
    }

    /// A panic while a response's batches sit in a local (taken out of
    /// their in-flight slots, not yet completed): they fail with
    /// `Error::Internal` instead of never completing; flush, later sends
    /// and close work.
    #[test]
    fn a_panic_while_handling_a_response_fails_its_batches_and_strands_nothing() {
        use crate::{ByteArraySerializer, Producer, ProducerConfig, ProducerRecord};
        let (_mock, bootstrap) = Mock::start("pan2");
        let cfg = ProducerConfig::new()
            .bootstrap_servers(bootstrap)
            .client_id("panicky2")
            .linger(Duration::ZERO);
        let p: Producer<[u8], [u8]> =
            Producer::new(cfg, ByteArraySerializer, ByteArraySerializer).unwrap();
        p.send(ProducerRecord::new("pan2", &b"before"[..]))
            .unwrap()
            .get()
            .unwrap();
        PANIC.lock().push(("panicky2/response".into(), 1));
        let h = p.send(ProducerRecord::new("pan2", &b"during"[..])).unwrap();
        match h.get_timeout(Duration::from_secs(20)) {
            Err(Error::Internal(_)) => {}
            other => panic!("expected an internal error, got {other:?}"),
        }
        p.flush().unwrap();
        p.send(ProducerRecord::new("pan2", &b"after"[..]))
            .unwrap()
            .get()
            .unwrap();
        p.close_timeout(Duration::from_secs(5)).unwrap();
    }
}
