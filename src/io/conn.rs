//! [`Connection`]: the only code that reads or writes a socket. It frames
//! requests (size prefix, request header, correlation id), reassembles
//! response frames, and negotiates API versions with ApiVersions when it
//! connects.
//!
//! A connection is a transport and a [`Wire`], the sans-IO half: framing,
//! correlation ids, the write and read buffers, what ApiVersions said. It
//! works in two modes. During set-up, and for the metadata thread, it is
//! blocking with socket timeouts ([`Connection::request`]). An I/O thread
//! then splits it ([`Connection::into_parts`]): its core keeps the wire
//! ([`Wire::enqueue`], [`Wire::next_frame`]) and its driver the socket,
//! moving bytes between them with [`write_to`] and [`read_from`],
//! pipelining several requests.
//!
//! The transport is anything implementing [`Transport`] (a `Read + Write`
//! with timeouts and a non-blocking switch): in the producer a
//! [`Stream`], plain TCP or TLS over TCP (`io/tls.rs`, the only other
//! code that touches a socket), so the framing does not know which. The
//! TLS handshake runs in [`Connection::open`] before ApiVersions. SASL
//! authentication (`crate::sasl`) runs right after the ApiVersions
//! exchange, over the blocking request path, so it works over whatever
//! transport is under it; a session with a lifetime (KIP-368) sets
//! [`Wire::reauth_due`].
//!
//! The output is the write buffer with shared buffers spliced in: a
//! Produce request holds its batches' records sections (an `Arc` each,
//! [`Wire::enqueue_shared`]) instead of copying them, and [`write_to`]
//! gathers the write buffer's ranges and those buffers as `IoSlice`s for
//! one `write_vectored`. A held buffer is let go as soon as the transport
//! has taken all of it; until then its batch's memory cannot be reused.
//!
//! A transport may take bytes and hold them before they reach the socket
//! (TLS records inside rustls): `write_some` flushes what it holds
//! before it hands it more, `wants_write` is true while it holds any, and
//! `written_total` counts a byte only once the transport holds nothing,
//! so an acks=0 request completes only when all of it is on the socket.
//!
//! Sockets are made with `socket2` so that `send.buffer.bytes` and
//! `receive.buffer.bytes` (SO_SNDBUF, SO_RCVBUF) are set before `connect`,
//! as Java's `Selector.connect` sets them; from then on the socket is a
//! std `TcpStream`.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::tls::{Stream, TlsClient};
use crate::config::ProducerConfig;
use crate::error::{Error, Result};
use crate::protocol::messages::api::Api;
use crate::protocol::messages::api_versions::{self, ApiVersionsRequest, ApiVersionsResponse};
use crate::protocol::messages::header::{
    begin_frame, decode_response_header, end_frame_holding, frame_size, split_frame, RequestHeader,
};
use crate::protocol::primitives::Decoder;
use crate::protocol::ErrorCode;
use crate::util::later;

/// The name we give brokers in ApiVersions v3+ (KIP-511).
const CLIENT_SOFTWARE_NAME: &str = "kafka-producer-rs";

/// The largest response frame we accept. Produce responses are small;
/// metadata for a very large cluster is the biggest thing a producer reads.
const MAX_RESPONSE_SIZE: usize = 100 * 1024 * 1024;

/// The read buffer's size when a connection opens; it grows to hold the
/// largest frame being read.
const READ_BUF_INITIAL: usize = 64 * 1024;

/// A read buffer grown past this for a large frame (a big metadata
/// response) goes back to [`READ_BUF_INITIAL`] once that frame is consumed.
const READ_BUF_KEEP: usize = 1024 * 1024;

/// The most slices one vectored write hands the transport (IOV_MAX is
/// 1024 on Linux): a request with more batches takes several calls.
pub(crate) const MAX_IOV: usize = 64;

/// Shared buffers shorter than this are copied into the write buffer
/// instead of being held: a slice of their own costs the kernel more than
/// the copy.
const SHARE_MIN: usize = 512;

/// A byte stream a connection can run over. [`write_to`] writes with
/// `Write::write_vectored` (a slice per output segment): an implementation
/// that can take several slices at once (TCP's `writev`, rustls's
/// `Writer`) overrides it; the default writes the first one, which is
/// still correct, only slower.
pub(crate) trait Transport: Read + Write {
    /// Sets read and write timeouts for blocking mode.
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Switches non-blocking mode on or off.
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()>;
    /// Closes the sending direction (TLS close_notify, then TCP FIN);
    /// reading still works.
    fn shutdown_write(&mut self) -> io::Result<()>;
    /// Moves bytes that `write` took but still holds (TLS records) to the
    /// socket; `Ok` once it holds none, `WouldBlock` if the socket is full.
    fn flush_buffered(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// True while `write` has taken bytes that are not on the socket yet.
    fn has_buffered(&self) -> bool {
        false
    }

    /// True if a `read` that fills less than its buffer has taken all the
    /// socket had (plain TCP), so the next bytes raise a new readiness
    /// edge and the read that would return `WouldBlock` can be skipped. Not
    /// so for TLS, whose plaintext reads say nothing of the socket.
    fn short_read_drains(&self) -> bool {
        false
    }
}

/// The set-up half of [`Transport`] for an in-memory transport (the
/// simulation's and the tests'): no timeouts, no blocking mode, nothing to
/// shut down.
#[cfg(any(test, feature = "mock"))]
macro_rules! inert_transport_setup {
    () => {
        fn set_timeouts(&self, _: Option<std::time::Duration>) -> std::io::Result<()> {
            Ok(())
        }
        fn set_nonblocking(&self, _: bool) -> std::io::Result<()> {
            Ok(())
        }
        fn shutdown_write(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    };
}
#[cfg(any(test, feature = "mock"))]
pub(crate) use inert_transport_setup;

impl Transport for TcpStream {
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)?;
        self.set_write_timeout(timeout)
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        TcpStream::set_nonblocking(self, nonblocking)
    }

    fn short_read_drains(&self) -> bool {
        true
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// The socket buffer sizes to ask the operating system for:
/// `send.buffer.bytes` and `receive.buffer.bytes`, `None` for Java's -1
/// (the operating system's default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SocketBuffers {
    /// SO_SNDBUF, in bytes.
    pub(crate) send: Option<usize>,
    /// SO_RCVBUF, in bytes.
    pub(crate) receive: Option<usize>,
}

impl SocketBuffers {
    /// The sizes `cfg` asks for. A negative value (only -1 passes
    /// validation) means the operating system's default.
    pub(crate) fn of(cfg: &ProducerConfig) -> Self {
        SocketBuffers {
            send: usize::try_from(cfg.send_buffer).ok(),
            receive: usize::try_from(cfg.receive_buffer).ok(),
        }
    }
}

/// Creates a TCP socket for `addr`, sets its buffer sizes, and connects it
/// within `timeout`.
///
/// The sizes are set before `connect`, as Java's
/// `Socket.setReceiveBufferSize` asks: TCP agrees on the window scale in
/// the handshake, so a receive buffer above 64 KiB set afterwards may
/// never be used in full. Linux doubles the value asked for (the kernel's
/// bookkeeping), caps it at `net.core.wmem_max` / `net.core.rmem_max`,
/// gives 0 its minimum, and stops autotuning a buffer that was set.
fn connect_socket(
    addr: &SocketAddr,
    timeout: Duration,
    buffers: SocketBuffers,
) -> io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(*addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    let option = |name: &'static str, n: usize| {
        move |e: io::Error| io::Error::new(e.kind(), format!("setting {name} to {n}: {e}"))
    };
    if let Some(n) = buffers.send {
        socket
            .set_send_buffer_size(n)
            .map_err(option("SO_SNDBUF (send.buffer.bytes)", n))?;
    }
    if let Some(n) = buffers.receive {
        socket
            .set_recv_buffer_size(n)
            .map_err(option("SO_RCVBUF (receive.buffer.bytes)", n))?;
    }
    socket.connect_timeout(&(*addr).into(), timeout)?;
    Ok(socket.into())
}

/// One connection to one broker: a transport and its [`Wire`]. It
/// dereferences to the wire, so versions, framing and counters are read
/// through it.
pub(crate) struct Connection<S: Transport = Stream> {
    stream: S,
    wire: Wire,
}

/// The sans-IO half of a connection: request framing and correlation
/// ids, the bytes waiting to be written, the response frames being
/// reassembled, what ApiVersions said, and the broker's throttle and SASL
/// session deadlines. It owns no socket: its owner moves bytes between it
/// and a transport ([`pending_slices`](Wire::pending_slices) and
/// [`taken`](Wire::taken) one way, [`read_space`](Wire::read_space) and
/// [`received`](Wire::received) the other). A blocking [`Connection`]
/// does that with its own transport; an I/O thread's core holds the wire
/// alone and its driver does it (`io/core.rs`).
pub(crate) struct Wire {
    /// "node 1 (127.0.0.1:9092)", for errors and logs.
    pub(crate) label: String,
    client_id: String,
    /// What the broker supports, from ApiVersions.
    api: ApiVersionsResponse,
    next_correlation_id: i32,
    /// Frames not yet handed to the transport: `wbuf[wpos..]`, with the
    /// buffers of `shared` spliced in (see [`Shared`]).
    wbuf: Vec<u8>,
    wpos: usize,
    /// Buffers held rather than copied (a Produce request's records), in
    /// output order, each at its place in `wbuf`; emptied, not freed, as
    /// they are written.
    shared: VecDeque<Shared>,
    /// How far into the first of `shared` the transport has taken.
    spos: usize,
    /// Shared buffers shorter than this are copied into `wbuf`.
    share_min: usize,
    /// Bytes ever on the socket, ever taken by the transport (TLS may
    /// still hold some, encrypted), and ever enqueued: a request ending
    /// at enqueued offset `e` is fully written once `written_total >= e`.
    written_total: u64,
    taken_total: u64,
    enqueued_total: u64,
    /// Bytes read, not yet consumed: `rbuf[rpos..rlen]`.
    rbuf: Vec<u8>,
    rpos: usize,
    rlen: usize,
    /// The largest response frame accepted now: `MAX_RESPONSE_SIZE`
    /// unless the owner knows what its requests can be answered with
    /// ([`set_max_frame`](Self::set_max_frame)).
    max_frame: usize,
    /// KIP-219: until when the broker asked us (with `throttle_time_ms`
    /// in an answer) to send it nothing; the next blocking
    /// [`request`](Connection::request) waits for it. (The I/O threads keep
    /// their own hold-back for Produce.)
    throttled_until: Option<Instant>,
    /// When the SASL session must be renewed (KIP-368), if it has a
    /// lifetime.
    reauth_at: Option<Instant>,
}

/// A buffer in a wire's output that is held, not copied: its bytes go
/// out right before `wbuf[at..]` (after the write buffer's bytes before
/// `at` and after any earlier shared buffer at the same place). Holding
/// the `Arc` keeps the memory alive, and out of the buffer pool, until
/// the transport has taken every byte of it.
struct Shared {
    at: usize,
    bytes: Arc<dyn AsRef<[u8]> + Send + Sync>,
}

impl Shared {
    fn slice(&self) -> &[u8] {
        (*self.bytes).as_ref()
    }
}

/// A request body being written by [`Wire::enqueue_shared`]: bytes go
/// into [`buf`](Self::buf); [`share`](Self::share) puts a buffer of the
/// caller's next in the output without copying it.
pub(crate) struct Body<'a> {
    /// The write buffer, to append the body's own bytes to.
    pub(crate) buf: &'a mut Vec<u8>,
    shared: &'a mut VecDeque<Shared>,
    share_min: usize,
    /// Bytes of this request held in `shared`, not in `buf`.
    held: usize,
}

impl Body<'_> {
    /// Puts `bytes` next in the request, after what `buf` holds so far:
    /// held (a clone of the `Arc`) if it is at least `SHARE_MIN` bytes long,
    /// else copied into `buf`.
    pub(crate) fn share<T>(&mut self, bytes: &Arc<T>)
    where
        T: AsRef<[u8]> + Send + Sync + 'static,
    {
        let slice = (**bytes).as_ref();
        if slice.len() < self.share_min || slice.is_empty() {
            self.buf.extend_from_slice(slice);
            return;
        }
        self.held += slice.len();
        self.shared.push_back(Shared {
            at: self.buf.len(),
            bytes: Arc::clone(bytes) as Arc<dyn AsRef<[u8]> + Send + Sync>,
        });
    }
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire")
            .field("label", &self.label)
            .field("enqueued_total", &self.enqueued_total)
            .field("written_total", &self.written_total)
            .finish_non_exhaustive()
    }
}

impl<S: Transport> std::ops::Deref for Connection<S> {
    type Target = Wire;
    fn deref(&self) -> &Wire {
        &self.wire
    }
}

impl<S: Transport> std::ops::DerefMut for Connection<S> {
    fn deref_mut(&mut self) -> &mut Wire {
        &mut self.wire
    }
}

impl Connection<Stream> {
    /// Connects to `host:port` (trying every address it resolves to) with
    /// the socket buffer sizes `buffers`, turns off Nagle, runs the TLS
    /// handshake if `tls` is given, negotiates versions, then
    /// authenticates with `sasl` if given. Blocks at most about
    /// `connect_timeout` per address (TCP and TLS together) plus
    /// `request_timeout` for ApiVersions and each SASL request.
    ///
    /// # Errors
    ///
    /// [`Error::Network`] if no address accepts the connection or the
    /// broker does not answer; [`Error::Authentication`] if TLS fails
    /// (either side refuses the other, or one side does not speak it);
    /// [`Error::Protocol`] for a malformed answer; [`Error::Authentication`]
    /// if SASL fails (credentials refused, mechanism not enabled).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open(
        label: String,
        host: &str,
        port: u16,
        client_id: &str,
        connect_timeout: Duration,
        request_timeout: Duration,
        buffers: SocketBuffers,
        tls: Option<&TlsClient>,
        sasl: Option<&crate::sasl::Sasl>,
    ) -> Result<Self> {
        let net = |message: String| Error::Network {
            broker: label.clone(),
            message,
        };
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| net(format!("cannot resolve {host}: {e}")))?
            .collect();
        let mut last = None;
        for addr in &addrs {
            let started = Instant::now();
            match connect_socket(addr, connect_timeout, buffers) {
                Ok(s) => {
                    s.set_nodelay(true)
                        .map_err(|e| net(format!("setting TCP_NODELAY: {e}")))?;
                    let stream = match tls {
                        None => Stream::Plain(s),
                        Some(t) => {
                            let deadline = later(started, connect_timeout);
                            Stream::Tls(Box::new(t.handshake(&label, host, s, deadline)?))
                        }
                    };
                    let mut c = Connection::new(stream, label.clone(), client_id);
                    if let Err(e) = c.negotiate(request_timeout) {
                        return Err(c.explain_setup_failure(e));
                    }
                    if let Some(sasl) = sasl {
                        if let Err(e) = c.authenticate(sasl, request_timeout) {
                            return Err(c.explain_setup_failure(e));
                        }
                    }
                    return Ok(c);
                }
                Err(e) => last = Some(format!("connecting to {addr}: {e}")),
            }
        }
        Err(net(last.unwrap_or_else(|| {
            format!("{host} resolved to no address")
        })))
    }

    /// The error of a set-up that failed after the TCP connect: TLS that
    /// broke (the broker refusing our certificate sends its alert after
    /// the TLS 1.3 handshake, in answer to ApiVersions), or a plaintext
    /// connection answered with TLS, is an authentication error.
    fn explain_setup_failure(&self, e: Error) -> Error {
        if let Some(f) = self.stream.tls_failure() {
            let host = self.stream.tls_host().unwrap_or_default();
            return Error::Authentication {
                broker: self.wire.label.clone(),
                message: super::tls::describe(f, host, "the configured CAs"),
            };
        }
        let got = &self.wire.rbuf[..self.wire.rlen];
        // A TLS record: handshake (22) or alert (21), version 3.x.
        if matches!(self.stream, Stream::Plain(_))
            && got.len() >= 3
            && matches!(got[0], 21 | 22)
            && got[1] == 3
        {
            return Error::Authentication {
                broker: self.wire.label.clone(),
                message: "the broker answered with TLS: this port is a TLS listener; set \
                          security.protocol=SSL (or SASL_SSL)"
                    .into(),
            };
        }
        e
    }
}

impl<S: Transport> Connection<S> {
    /// Wraps a connected transport; call [`negotiate`](Self::negotiate) next.
    pub(crate) fn new(stream: S, label: String, client_id: &str) -> Self {
        Connection {
            stream,
            wire: Wire::new(label, client_id),
        }
    }

    /// The transport and the wire, apart: an I/O thread's driver keeps
    /// the one and its core the other (`io/core.rs`).
    pub(crate) fn into_parts(self) -> (S, Wire) {
        (self.stream, self.wire)
    }

    /// A connection again from its parts (to re-authenticate, or close).
    pub(crate) fn from_parts(stream: S, wire: Wire) -> Self {
        Connection { stream, wire }
    }

    /// Authenticates with `sasl` (after [`negotiate`](Self::negotiate)),
    /// each request within `timeout`, and notes when the session must be
    /// renewed. Also how a connection re-authenticates (KIP-368), with
    /// nothing else in flight on it.
    pub(crate) fn authenticate(
        &mut self,
        sasl: &crate::sasl::Sasl,
        timeout: Duration,
    ) -> Result<()> {
        let session = crate::sasl::authenticate(self, sasl, timeout)?;
        self.wire.reauth_at = session.map(|(start, life)| crate::sasl::reauth_at(start, life));
        Ok(())
    }

    /// For a blocking connection (nothing in flight): authenticates again
    /// first if the session is due for renewal (KIP-368).
    pub(crate) fn renew_if_due(
        &mut self,
        sasl: Option<&crate::sasl::Sasl>,
        timeout: Duration,
    ) -> Result<()> {
        match sasl {
            Some(sasl) if self.wire.reauth_due(Instant::now()) => {
                log::debug!(
                    "{}: re-authenticating ({})",
                    self.wire.label,
                    sasl.mechanism()
                );
                self.authenticate(sasl, timeout)
            }
            _ => Ok(()),
        }
    }

    /// The underlying transport.
    #[cfg(test)]
    pub(crate) fn transport(&self) -> &S {
        &self.stream
    }

    fn net(&self, message: impl Into<String>) -> Error {
        Error::Network {
            broker: self.wire.label.clone(),
            message: message.into(),
        }
    }

    /// ApiVersions: v3 first, then v0 if the broker answers
    /// UNSUPPORTED_VERSION (its error reply is in the v0 layout).
    pub(crate) fn negotiate(&mut self, timeout: Duration) -> Result<()> {
        let mut version = api_versions::MAX_VERSION;
        loop {
            let req = ApiVersionsRequest {
                client_software_name: CLIENT_SOFTWARE_NAME,
                client_software_version: env!("CARGO_PKG_VERSION"),
            };
            let body = self.request(
                &api_versions::API,
                version,
                |b| req.encode(b, version),
                later(Instant::now(), timeout),
            )?;
            let resp = ApiVersionsResponse::decode(&body, version).map_err(|e| {
                Error::Protocol(format!("ApiVersions from {}: {e}", self.wire.label))
            })?;
            self.wire.throttled(resp.throttle_time_ms);
            match ErrorCode(resp.error_code) {
                ErrorCode::NONE => {
                    self.wire.api = resp;
                    return Ok(());
                }
                ErrorCode::UNSUPPORTED_VERSION if version > 0 => version = 0,
                code => {
                    return Err(Error::Protocol(format!(
                        "ApiVersions v{version} to {} failed with {code}",
                        self.wire.label
                    )))
                }
            }
        }
    }

    /// True if bytes are waiting to be written: in the write buffer, or
    /// taken by the transport and held (TLS records not yet on the socket).
    pub(crate) fn wants_write(&self) -> bool {
        self.wire.has_output() || self.stream.has_buffered()
    }

    /// Writes as much as the socket takes without blocking
    /// ([`write_to`]).
    pub(crate) fn write_some(&mut self) -> io::Result<()> {
        write_to(&mut self.stream, &mut self.wire)
    }

    /// Reads whatever the socket has without blocking ([`read_from`]).
    #[cfg(test)]
    pub(crate) fn read_some(&mut self) -> io::Result<usize> {
        read_from(&mut self.stream, &mut self.wire, true)
    }

    /// Closes the connection so the broker still processes every request
    /// it was sent: half-closes our side, then reads (and drops) whatever
    /// the broker still sends until it closes too, or `timeout` passes.
    ///
    /// Dropping a socket with unread bytes in its receive buffer makes the
    /// kernel send RST instead of FIN, and a peer that gets RST discards
    /// requests it has not read yet. Brokers that answer acks=0 requests
    /// (the test brokers do) would lose the last ones that way.
    pub(crate) fn close_gracefully(mut self, timeout: Duration) {
        let deadline = later(Instant::now(), timeout);
        // TLS's close_notify is a write: bounded by the timeout too.
        if self.stream.set_nonblocking(false).is_err()
            || self
                .stream
                .set_timeouts(Some(timeout.max(Duration::from_millis(1))))
                .is_err()
            || self.stream.shutdown_write().is_err()
        {
            return;
        }
        let mut sink = [0u8; 16 * 1024];
        while let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            if self.stream.set_timeouts(Some(left)).is_err() {
                return;
            }
            match self.stream.read(&mut sink) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Sends one request and waits for its response in blocking mode,
    /// until `deadline`. Returns the response body (after the header).
    /// Frames with other correlation ids are skipped. If the broker's last
    /// answer throttled us, the request is sent once that time has passed
    /// (or at `deadline`, whichever is first).
    pub(crate) fn request(
        &mut self,
        api: &Api,
        version: i16,
        body: impl FnOnce(&mut Vec<u8>),
        deadline: Instant,
    ) -> Result<Vec<u8>> {
        if let Some(until) = self.wire.throttled_until.take() {
            let wait = until
                .min(deadline)
                .saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
        let resp_hv = api.response_header_version(version);
        let id = self.wire.enqueue(api, version, body);
        let remaining = |d: Instant| {
            d.checked_duration_since(Instant::now())
                .filter(|r| !r.is_zero())
                .ok_or(ErrorKind::TimedOut)
        };
        let started = Instant::now();
        // A blocking socket's timeout surfaces as WouldBlock (EAGAIN) or
        // TimedOut: say what it means.
        let io_err = |c: &Self, e: io::Error| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => c.net(format!(
                "no answer to {} v{version} within {} ms (request.timeout.ms)",
                api.name,
                deadline.saturating_duration_since(started).as_millis()
            )),
            _ => c.net(format!("request failed: {e}")),
        };
        self.stream
            .set_nonblocking(false)
            .map_err(|e| io_err(self, e))?;
        // Blocking: each write waits up to what is left; one that times
        // out leaves bytes to write, and the deadline ends the loop.
        while self.wants_write() {
            let r = remaining(deadline).map_err(|k| io_err(self, k.into()))?;
            self.stream
                .set_timeouts(Some(r))
                .map_err(|e| io_err(self, e))?;
            self.write_some().map_err(|e| io_err(self, e))?;
        }
        loop {
            let found = self
                .next_frame(|corr, frame| {
                    (corr == id).then(|| {
                        let mut d = Decoder::new(frame, false);
                        decode_response_header(&mut d, resp_hv)
                            .map(|_| frame[d.position()..].to_vec())
                    })
                })
                .map_err(|e| io_err(self, e))?;
            match found {
                Some(Some(Ok(body))) => return Ok(body),
                Some(Some(Err(e))) => {
                    return Err(Error::Protocol(format!(
                        "response header from {}: {e}",
                        self.wire.label
                    )))
                }
                Some(None) => continue, // another request's answer
                None => {}
            }
            let r = remaining(deadline).map_err(|k| io_err(self, k.into()))?;
            self.stream
                .set_timeouts(Some(r))
                .map_err(|e| io_err(self, e))?;
            if let Err(e) = self.wire.read_space() {
                return Err(io_err(self, e));
            }
            let space = self.wire.read_space().expect("room was made");
            match self.stream.read(space) {
                Ok(0) => {
                    return Err(io_err(
                        self,
                        io::Error::new(
                            ErrorKind::UnexpectedEof,
                            "the broker closed the connection",
                        ),
                    ))
                }
                Ok(n) => self.wire.received(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(self, e)),
            }
        }
    }
}

/// Writes as much of `wire`'s output as `stream` takes without blocking:
/// first what the transport holds, then more of the output, up to
/// [`MAX_IOV`] segments per vectored write. A byte
/// counts in `written_total` once the transport holds nothing: then every
/// byte it took is on the socket.
pub(crate) fn write_to<S: Transport>(stream: &mut S, wire: &mut Wire) -> io::Result<()> {
    loop {
        match stream.flush_buffered() {
            Ok(()) => wire.flushed(),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if !wire.has_output() {
            return Ok(());
        }
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let n = wire.pending_slices(&mut iov);
        match stream.write_vectored(&iov[..n]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => wire.taken(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads whatever `stream` has into `wire` without blocking. Returns the
/// bytes read; `UnexpectedEof` if the broker closed the connection.
///
/// Unless `drain`, a read that fills less than its buffer ends it when the
/// transport says a short read empties the socket
/// ([`Transport::short_read_drains`]): on an edge-triggered poller the next
/// bytes raise a new event, so the read that would only say `WouldBlock`
/// (one system call per answer) is skipped. The driver passes `drain` when
/// the event says the peer closed or failed, so an end of stream that came
/// with the last bytes is still seen.
pub(crate) fn read_from<S: Transport>(
    stream: &mut S,
    wire: &mut Wire,
    drain: bool,
) -> io::Result<usize> {
    let stop_short = !drain && stream.short_read_drains();
    let mut total = 0;
    loop {
        let space = wire.read_space()?;
        let room = space.len();
        match stream.read(space) {
            Ok(0) => {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "the broker closed the connection",
                ))
            }
            Ok(n) => {
                wire.received(n);
                total += n;
                if stop_short && n < room {
                    return Ok(total);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(total),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl Wire {
    /// A wire for a connection just opened, before ApiVersions.
    pub(crate) fn new(label: String, client_id: &str) -> Self {
        Wire {
            label,
            client_id: client_id.to_owned(),
            api: ApiVersionsResponse::default(),
            next_correlation_id: 0,
            wbuf: Vec::with_capacity(64 * 1024),
            wpos: 0,
            shared: VecDeque::new(),
            spos: 0,
            share_min: SHARE_MIN,
            written_total: 0,
            taken_total: 0,
            enqueued_total: 0,
            rbuf: vec![0; READ_BUF_INITIAL],
            rpos: 0,
            rlen: 0,
            max_frame: MAX_RESPONSE_SIZE,
            throttled_until: None,
            reauth_at: None,
        }
    }

    /// True while enqueued bytes are waiting to be handed to the transport.
    pub(crate) fn has_output(&self) -> bool {
        self.wpos < self.wbuf.len() || !self.shared.is_empty()
    }

    /// The enqueued bytes not yet handed to the transport, in order, as
    /// slices of the write buffer and of the shared buffers between its
    /// parts: fills `out` from the start and returns how many it filled
    /// (all of the output if that many slices hold it, else its first
    /// `out.len()` slices). No slice is empty.
    pub(crate) fn pending_slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        /// Puts `s` in `out[*n]` unless it is empty; false if it is not
        /// and `out` is full.
        fn put<'a>(out: &mut [IoSlice<'a>], n: &mut usize, s: &'a [u8]) -> bool {
            if s.is_empty() {
                return true;
            }
            let Some(slot) = out.get_mut(*n) else {
                return false;
            };
            *slot = IoSlice::new(s);
            *n += 1;
            true
        }
        let mut n = 0;
        let (mut from, mut skip) = (self.wpos, self.spos);
        for s in &self.shared {
            if !put(out, &mut n, &self.wbuf[from..s.at]) || !put(out, &mut n, &s.slice()[skip..]) {
                return n;
            }
            from = s.at;
            skip = 0;
        }
        put(out, &mut n, &self.wbuf[from..]);
        n
    }

    /// The transport took the first `n` bytes of the output
    /// ([`pending_slices`](Self::pending_slices); it may still hold them).
    /// A shared buffer is let go as soon as all of it is taken.
    pub(crate) fn taken(&mut self, n: usize) {
        self.taken_total += n as u64;
        let mut left = n;
        while left > 0 {
            // The write buffer's bytes up to the next shared buffer...
            let end = self.shared.front().map_or(self.wbuf.len(), |s| s.at);
            let k = left.min(end - self.wpos);
            self.wpos += k;
            left -= k;
            if left == 0 {
                break;
            }
            // ...then the shared buffer.
            let front = self.shared.front().expect("taken more than was pending");
            let k = left.min(front.slice().len() - self.spos);
            self.spos += k;
            left -= k;
            if self.spos == front.slice().len() {
                self.shared.pop_front();
                self.spos = 0;
            }
        }
        if !self.has_output() {
            self.wbuf.clear();
            self.wpos = 0;
            // Don't keep a huge buffer after one large request.
            if self.wbuf.capacity() > 4 * 1024 * 1024 {
                self.wbuf.shrink_to(64 * 1024);
            }
        }
    }

    /// Shared buffers shorter than `n` bytes are copied from now on
    /// (`usize::MAX`: every one, as a reference encoding; 0: none).
    #[cfg(any(test, feature = "mock"))]
    pub(crate) fn set_share_min(&mut self, n: usize) {
        self.share_min = n;
    }

    /// The transport holds nothing: every byte it took is on the socket.
    pub(crate) fn flushed(&mut self) {
        self.written_total = self.taken_total;
    }

    /// Room to read into, after the bytes already read (see `make_room`).
    ///
    /// # Errors
    ///
    /// `InvalidData` if the frame being read says it is larger than the
    /// largest accepted ([`set_max_frame`](Self::set_max_frame)).
    pub(crate) fn read_space(&mut self) -> io::Result<&mut [u8]> {
        self.make_room()?;
        Ok(&mut self.rbuf[self.rlen..])
    }

    /// `n` bytes were read into [`read_space`](Self::read_space).
    pub(crate) fn received(&mut self, n: usize) {
        self.rlen += n;
    }

    /// An answer said the broker throttled us for `ms` (its
    /// `throttle_time_ms`): the next blocking request to it waits that long
    /// from now, as Java's client mutes a throttled connection.
    pub(crate) fn throttled(&mut self, ms: i32) {
        if ms > 0 {
            log::debug!("{}: throttled for {ms} ms", self.label);
            self.throttled_until = Some(later(Instant::now(), Duration::from_millis(ms as u64)));
        }
    }

    /// True once the SASL session is due for renewal (KIP-368): send no
    /// new request; once the answers are in, authenticate again.
    pub(crate) fn reauth_due(&self, now: Instant) -> bool {
        self.reauth_at.is_some_and(|t| now >= t)
    }

    /// When the SASL session is due for renewal, if it has a lifetime.
    #[cfg(test)]
    pub(crate) fn reauth_at(&self) -> Option<Instant> {
        self.reauth_at
    }

    /// The broker's answer to ApiVersions: its versions and its finalized
    /// features (the transaction manager reads `transaction.version`).
    pub(crate) fn api_versions(&self) -> &ApiVersionsResponse {
        &self.api
    }

    /// The version to send of `api_key`: the highest both sides support.
    /// The broker's advertised minimum is not trusted below ours (Kafka 4
    /// advertises Produce v0 and rejects it, KAFKA-18659).
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedVersion`] if the ranges do not overlap.
    pub(crate) fn version_for(&self, api: &Api) -> Result<i16> {
        self.version_from(api, api.min_version, api.name)
    }

    /// As [`version_for`](Self::version_for), but at least `min` (a
    /// feature that needs a later version, such as zstd compression in
    /// Produce v7); `what` names the API and the feature in the error.
    pub(crate) fn version_from(&self, api: &Api, min: i16, what: &'static str) -> Result<i16> {
        let (min, max) = (min.max(api.min_version), api.max_version);
        let theirs = self.api.range(api.key);
        let (bmin, bmax) = theirs.map_or((-1, -1), |r| (r.min_version, r.max_version));
        let v = max.min(bmax);
        if theirs.is_none() || v < min || v < bmin {
            return Err(Error::UnsupportedVersion {
                broker: self.label.clone(),
                api: what,
                min,
                max,
                broker_min: bmin,
                broker_max: bmax,
            });
        }
        Ok(v)
    }

    /// Appends a request frame to the write buffer and returns its
    /// correlation id.
    pub(crate) fn enqueue(
        &mut self,
        api: &Api,
        version: i16,
        body: impl FnOnce(&mut Vec<u8>),
    ) -> i32 {
        self.enqueue_shared(api, version, |b| body(b.buf))
    }

    /// [`enqueue`](Self::enqueue) for a body that may hold buffers of its
    /// own in the output rather than copy them ([`Body::share`]: a
    /// Produce request's records). The frame's size counts them.
    pub(crate) fn enqueue_shared(
        &mut self,
        api: &Api,
        version: i16,
        body: impl FnOnce(&mut Body<'_>),
    ) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        if !self.has_output() {
            self.wbuf.clear();
            self.wpos = 0;
        } else if self.wpos >= 64 * 1024 && self.wpos * 2 >= self.wbuf.len() {
            // A slow socket never empties the buffer: drop the written
            // prefix so the buffer holds only what is still to be written.
            self.wbuf.drain(..self.wpos);
            for s in &mut self.shared {
                s.at -= self.wpos;
            }
            self.wpos = 0;
        }
        let before = self.wbuf.len();
        let at = begin_frame(&mut self.wbuf);
        RequestHeader {
            request_api_key: api.key,
            request_api_version: version,
            correlation_id: id,
            client_id: Some(&self.client_id),
        }
        .encode(&mut self.wbuf, api.request_header_version(version));
        let mut b = Body {
            buf: &mut self.wbuf,
            shared: &mut self.shared,
            share_min: self.share_min,
            held: 0,
        };
        body(&mut b);
        let held = b.held;
        end_frame_holding(&mut self.wbuf, at, held);
        self.enqueued_total += (self.wbuf.len() - before + held) as u64;
        id
    }

    /// Bytes enqueued so far; the end offset of the last enqueued request.
    pub(crate) fn enqueued_total(&self) -> u64 {
        self.enqueued_total
    }

    /// Bytes written to the transport so far.
    pub(crate) fn written_total(&self) -> u64 {
        self.written_total
    }

    /// Bytes the transport has taken so far (on the socket or not).
    #[cfg(test)]
    pub(crate) fn taken_total(&self) -> u64 {
        self.taken_total
    }

    /// Ensures free space after `rlen`: compacts, then grows toward the
    /// size of the frame being read (never past `max_frame`, and
    /// only as far as the frame's own size prefix asks).
    fn make_room(&mut self) -> io::Result<()> {
        if self.rpos == self.rlen {
            self.rpos = 0;
            self.rlen = 0;
        }
        if self.rlen < self.rbuf.len() {
            return Ok(());
        }
        if self.rpos > 0 {
            self.rbuf.copy_within(self.rpos..self.rlen, 0);
            self.rlen -= self.rpos;
            self.rpos = 0;
            return Ok(());
        }
        let want = match self.pending_frame_size()? {
            Some(n) => n + 4,
            None => self.rbuf.len() + 4,
        };
        let new_len = want.max(self.rbuf.len() * 2).min(self.max_frame + 4);
        self.rbuf.resize(new_len, 0);
        Ok(())
    }

    /// Caps the response frames this connection accepts from now on at
    /// `n` bytes (at most `MAX_RESPONSE_SIZE`): a frame whose size prefix
    /// says more is refused as `InvalidData` before its body is read.
    pub(crate) fn set_max_frame(&mut self, n: usize) {
        self.max_frame = n.min(MAX_RESPONSE_SIZE);
    }

    /// The size of the frame at `rpos`, if its prefix has arrived.
    fn pending_frame_size(&self) -> io::Result<Option<usize>> {
        // The same code the fuzz target `frame_reader` runs.
        frame_size(&self.rbuf[self.rpos..self.rlen], self.max_frame)
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, format!("response frame: {e}")))
    }

    /// Passes the next complete response frame (after its size prefix,
    /// starting with the correlation id) to `f`, then consumes it.
    /// `Ok(None)` if no complete frame has arrived.
    pub(crate) fn next_frame<R>(
        &mut self,
        f: impl FnOnce(i32, &[u8]) -> R,
    ) -> io::Result<Option<R>> {
        let frame = split_frame(&self.rbuf[self.rpos..self.rlen], self.max_frame)
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, format!("response frame: {e}")))?;
        let Some(frame) = frame else {
            return Ok(None);
        };
        let len = frame.stream_len();
        let r = f(frame.correlation_id, frame.bytes);
        self.rpos += len;
        self.reclaim_read_buffer();
        Ok(Some(r))
    }

    /// After a frame is consumed: if the read buffer grew past
    /// `READ_BUF_KEEP` and what is left unread fits in `READ_BUF_INITIAL`,
    /// moves that to the front and shrinks the buffer back, so one large
    /// frame does not pin its memory for the life of the connection.
    fn reclaim_read_buffer(&mut self) {
        if self.rpos == self.rlen {
            self.rpos = 0;
            self.rlen = 0;
        }
        let left = self.rlen - self.rpos;
        if self.rbuf.len() <= READ_BUF_KEEP || left > READ_BUF_INITIAL {
            return;
        }
        self.rbuf.copy_within(self.rpos..self.rlen, 0);
        self.rpos = 0;
        self.rlen = left;
        self.rbuf.truncate(READ_BUF_INITIAL);
        self.rbuf.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// An in-memory transport: reads from `input`, records writes.
    struct Fake {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
        chunk: usize,
    }

    impl Read for Fake {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.chunk);
            self.input.read(&mut buf[..n])
        }
    }
    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let before = self.output.len();
            for b in bufs {
                self.output.extend_from_slice(b);
            }
            Ok(self.output.len() - before)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Transport for Fake {
        inert_transport_setup!();
    }

    fn frame(corr: i32, body: &[u8]) -> Vec<u8> {
        let mut f = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        f.extend_from_slice(&corr.to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn negotiation_falls_back_to_v0_and_picks_the_common_version() {
        use crate::protocol::messages::api_versions::ApiVersionRange;
        // 1st answer: UNSUPPORTED_VERSION in the mock's malformed layout.
        let mut input = frame(0, &[0x00, 0x23, 0x01, 0x00, 0x12, 0, 0, 0, 2, 0, 0, 0, 0]);
        let ok = ApiVersionsResponse {
            error_code: 0,
            api_keys: vec![
                ApiVersionRange {
                    api_key: 0,
                    min_version: 0,
                    max_version: 7,
                },
                ApiVersionRange {
                    api_key: 3,
                    min_version: 0,
                    max_version: 2,
                },
            ],
            ..Default::default()
        };
        let mut body = Vec::new();
        ok.encode(&mut body, 0);
        input.extend(frame(1, &body));
        let fake = Fake {
            input: Cursor::new(input),
            output: Vec::new(),
            chunk: 3, // responses trickle in
        };
        let mut c = Connection::new(fake, "node 1".into(), "cid");
        c.negotiate(Duration::from_secs(1)).unwrap();
        assert_eq!(
            c.version_for(&crate::protocol::messages::produce::API)
                .unwrap(),
            7
        );
        assert_eq!(
            c.version_for(&crate::protocol::messages::metadata::API)
                .unwrap(),
            2
        );
        // the two requests were v3 then v0, with our client id
        let out = &c.transport().output;
        let mut d = Decoder::new(&out[4..], false);
        let h = RequestHeader::decode(&mut d, 2).unwrap();
        assert_eq!((h.request_api_key, h.request_api_version), (18, 3));
        assert_eq!(h.client_id, Some("cid"));
    }

    /// A broker on a local port that answers one connection's ApiVersions
    /// exchange as librdkafka's mock does (v3 refused, then v0), and
    /// returns the connection's accepted socket.
    fn fake_broker() -> (u16, std::thread::JoinHandle<io::Result<TcpStream>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept()?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            let next_request = |s: &mut TcpStream| -> io::Result<()> {
                let mut size = [0u8; 4];
                s.read_exact(&mut size)?;
                let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
                s.read_exact(&mut body)
            };
            next_request(&mut s)?;
            s.write_all(&frame(
                0,
                &[0x00, 0x23, 0x01, 0x00, 0x12, 0, 0, 0, 2, 0, 0, 0, 0],
            ))?;
            next_request(&mut s)?;
            let mut body = Vec::new();
            ApiVersionsResponse::default().encode(&mut body, 0);
            s.write_all(&frame(1, &body))?;
            Ok(s)
        });
        (port, server)
    }

    fn open_local(port: u16, buffers: SocketBuffers) -> Result<Connection> {
        Connection::open(
            "node 1".into(),
            "127.0.0.1",
            port,
            "cid",
            Duration::from_secs(10),
            Duration::from_secs(10),
            buffers,
            None,
            None,
        )
    }

    /// What the kernel reports for a socket's (send, receive) buffers.
    fn buffer_sizes(s: &TcpStream) -> (usize, usize) {
        let s = socket2::SockRef::from(s);
        (s.send_buffer_size().unwrap(), s.recv_buffer_size().unwrap())
    }

    #[test]
    fn open_sets_the_socket_buffers_before_connecting() {
        // Below net.core.[rw]mem_max (usually 208 KiB or more) and unlike
        // any default. Linux reports twice what was asked for.
        let (send, receive) = (50_000, 60_000);
        let (port, server) = fake_broker();
        let c = open_local(
            port,
            SocketBuffers {
                send: Some(send),
                receive: Some(receive),
            },
        )
        .unwrap();
        server.join().unwrap().unwrap();
        let (got_send, got_receive) = buffer_sizes(c.transport().tcp());
        assert!(
            (send..=2 * send).contains(&got_send),
            "SO_SNDBUF {got_send} for {send}"
        );
        assert!(
            (receive..=2 * receive).contains(&got_receive),
            "SO_RCVBUF {got_receive} for {receive}"
        );
        assert!(c.transport().tcp().nodelay().unwrap(), "Nagle is still off");

        // -1 (None) leaves the operating system's sizes.
        let (port, server) = fake_broker();
        let c = open_local(port, SocketBuffers::default()).unwrap();
        server.join().unwrap().unwrap();
        let (default_send, default_receive) = buffer_sizes(c.transport().tcp());
        assert_ne!(default_send, got_send);
        assert_ne!(default_receive, got_receive);
    }

    #[test]
    fn socket_buffers_come_from_the_config() {
        let cfg = ProducerConfig::from_pairs([
            ("send.buffer.bytes", "8192"),
            ("receive.buffer.bytes", "-1"),
        ])
        .unwrap();
        assert_eq!(
            SocketBuffers::of(&cfg),
            SocketBuffers {
                send: Some(8192),
                receive: None
            }
        );
        // Java's defaults
        assert_eq!(
            SocketBuffers::of(&ProducerConfig::new()),
            SocketBuffers {
                send: Some(131_072),
                receive: Some(32_768)
            }
        );
    }

    #[test]
    fn a_refused_connection_is_a_network_error() {
        // Bind, then close: nothing listens on the port any more.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let buffers = SocketBuffers {
            send: Some(8192),
            receive: Some(8192),
        };
        let e = open_local(port, buffers).map(|_| ()).unwrap_err();
        assert!(
            matches!(&e, Error::Network { broker, message }
                if broker == "node 1" && message.contains("connecting to 127.0.0.1")),
            "{e}"
        );
    }

    /// A transport that takes at most `limit` bytes per `write` call and
    /// then reports WouldBlock, like a slow socket.
    struct Slow {
        taken: usize,
        limit: usize,
    }
    impl Read for Slow {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(ErrorKind::WouldBlock.into())
        }
    }
    impl Write for Slow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.taken >= self.limit {
                self.taken = 0;
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.limit - self.taken);
            self.taken += n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Transport for Slow {
        inert_transport_setup!();
    }

    #[test]
    fn a_slow_socket_does_not_grow_the_write_buffer_without_bound() {
        let mut c = Connection::new(
            Slow {
                taken: 0,
                limit: 99_000,
            },
            "n".into(),
            "c",
        );
        for _ in 0..200 {
            c.enqueue(&crate::protocol::messages::produce::API, 9, |b| {
                b.extend_from_slice(&[0u8; 100_000])
            });
            c.write_some().unwrap();
            assert!(c.wants_write());
        }
        let pending = c.enqueued_total() - c.written_total();
        assert!(pending < 300_000, "{pending} bytes pending");
        assert!(
            c.wbuf.len() < 2 * pending as usize + 200_000,
            "buffer {} for {pending} pending",
            c.wbuf.len()
        );
    }

    /// A socket that takes a seeded number of bytes per vectored write
    /// (1 to 3, to 100, to 5,000 or to 200,000, a quarter of the calls
    /// each), across the slices it is given, and sometimes none
    /// (`WouldBlock`).
    struct Trickle {
        rng: u64,
        output: Vec<u8>,
        slices_seen: usize,
    }
    impl Trickle {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }
    impl Read for Trickle {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(ErrorKind::WouldBlock.into())
        }
    }
    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            assert!(bufs.len() <= MAX_IOV, "{} slices", bufs.len());
            assert!(bufs.iter().all(|b| !b.is_empty()), "an empty slice");
            self.slices_seen = self.slices_seen.max(bufs.len());
            let r = self.next();
            if r.is_multiple_of(7) {
                return Err(ErrorKind::WouldBlock.into());
            }
            let max = [3, 100, 5_000, 200_000][(r >> 3) as usize % 4];
            let mut budget = 1 + (r >> 8) as usize % max;
            let before = self.output.len();
            for b in bufs {
                let k = budget.min(b.len());
                self.output.extend_from_slice(&b[..k]);
                budget -= k;
                if budget == 0 {
                    break;
                }
            }
            Ok(self.output.len() - before)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Transport for Trickle {
        inert_transport_setup!();
    }

    #[test]
    fn vectored_writes_send_the_bytes_a_copying_encoding_would() {
        use crate::protocol::messages::produce::API;
        // Buffers to hold: empty, shorter and longer than SHARE_MIN, and
        // one of 100 KB, each with distinct bytes.
        let sizes = [0, 1, 7, SHARE_MIN - 1, SHARE_MIN, 600, 3000, 20_000];
        let buffers: Vec<Arc<Vec<u8>>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Arc::new((0..n).map(|j| (i * 31 + j * 7) as u8).collect()))
            .collect();
        let mut most_slices = 0;
        for seed in 1..=200u64 {
            {
                let mut c = Connection::new(
                    Trickle {
                        rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
                        output: Vec::new(),
                        slices_seen: 0,
                    },
                    "n".into(),
                    "c",
                );
                // Odd seeds hold every buffer, even ones the long ones.
                if seed % 2 == 1 {
                    c.set_share_min(0);
                }
                // The reference: the same requests with every byte copied.
                let mut copied = Wire::new("n".into(), "c");
                copied.set_share_min(usize::MAX);
                let mut rng = seed;
                let mut pick = |n: usize| {
                    rng = rng
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (rng >> 33) as usize % n
                };
                for step in 0..12 {
                    // A request of a few fields and held buffers, some
                    // back to back, some with bytes of its own between
                    // them; one in four has over MAX_IOV buffers; one in
                    // six is a large plain request (the write buffer
                    // compacts under held buffers not yet written).
                    let holds: Vec<(usize, usize)> =
                        (0..if pick(4) == 0 { 90 } else { 1 + pick(5) })
                            .map(|_| (pick(buffers.len()), pick(3)))
                            .collect();
                    let plain = pick(6) == 0;
                    let body = |b: &mut Body<'_>| {
                        b.buf.extend_from_slice(&[step as u8; 5]);
                        if plain {
                            b.buf.extend_from_slice(&vec![0xAB; 70_000]);
                        }
                        for &(i, own) in &holds {
                            b.share(&buffers[i]);
                            b.buf.extend_from_slice(&vec![i as u8; own]);
                        }
                    };
                    c.enqueue_shared(&API, 9, body);
                    copied.enqueue_shared(&API, 9, body);
                    assert_eq!(c.enqueued_total(), copied.enqueued_total());
                    for _ in 0..pick(4) {
                        c.write_some().unwrap();
                        assert_eq!(c.written_total(), c.transport().output.len() as u64);
                    }
                }
                while c.wants_write() {
                    c.write_some().unwrap();
                    assert_eq!(c.written_total(), c.transport().output.len() as u64);
                }
                assert_eq!(c.written_total(), c.enqueued_total());
                let mut expected = Vec::new();
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                assert_eq!(copied.pending_slices(&mut iov), 1, "all in the buffer");
                expected.extend_from_slice(&iov[0]);
                let got = &c.transport().output;
                assert_eq!(got.len(), expected.len(), "seed {seed}");
                if let Some(at) = got.iter().zip(&expected).position(|(a, b)| a != b) {
                    panic!("seed {seed}: the bytes differ from byte {at} on");
                }
                // Every held buffer was let go once written.
                assert!(c.shared.is_empty());
                assert!(buffers.iter().all(|b| Arc::strong_count(b) == 1));
                most_slices = most_slices.max(c.transport().slices_seen);
            }
        }
        assert_eq!(most_slices, MAX_IOV, "a write was capped");
    }

    #[test]
    fn a_held_buffer_is_let_go_once_taken_and_counted_in_its_frame() {
        use crate::protocol::messages::produce::API;
        let held = Arc::new(vec![5u8; 1000]);
        let mut w = Wire::new("n".into(), "c");
        w.enqueue_shared(&API, 9, |b| {
            b.buf.extend_from_slice(b"ab");
            b.share(&held);
            b.buf.extend_from_slice(b"cd");
        });
        assert_eq!(Arc::strong_count(&held), 2, "held, not copied");
        let total = w.enqueued_total() as usize;
        let out: Vec<u8> = {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = w.pending_slices(&mut iov);
            assert_eq!(n, 3);
            iov[..n].iter().flat_map(|s| s.iter().copied()).collect()
        };
        assert_eq!(out.len(), total);
        assert_eq!(
            i32::from_be_bytes(out[..4].try_into().unwrap()) as usize,
            total - 4,
            "the size prefix counts the held bytes"
        );
        assert_eq!(
            &out[total - 1002..],
            &[&[5u8; 1000][..], b"cd"].concat()[..]
        );
        // Taken up to the held buffer's last byte: let go at once.
        w.taken(total - 2);
        assert_eq!(Arc::strong_count(&held), 1);
        assert!(w.has_output());
        {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = w.pending_slices(&mut iov);
            assert_eq!((n, &*iov[0]), (1, &b"cd"[..]));
        }
        w.taken(2);
        assert!(!w.has_output());
        assert_eq!(w.taken_total(), total as u64);
    }

    #[test]
    fn the_read_buffer_shrinks_back_after_a_large_frame() {
        // A 5 MB frame, then a small one that arrives with its end.
        let mut input = frame(1, &vec![1u8; 5 << 20]);
        input.extend(frame(2, b"small"));
        let mut c = Connection::new(
            Fake {
                input: Cursor::new(input),
                output: Vec::new(),
                chunk: 1 << 20,
            },
            "n".into(),
            "c",
        );
        let mut got = Vec::new();
        while got.len() < 2 {
            if let Err(e) = c.read_some() {
                assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
            }
            assert!(c.rbuf.capacity() >= 5 << 20, "grown to hold the frame");
            while let Some(g) = c.next_frame(|corr, f| (corr, f.len())).unwrap() {
                got.push(g);
                // given back as soon as the large frame is consumed, with
                // the small one still unread in it
                assert!(
                    c.rbuf.capacity() <= READ_BUF_INITIAL,
                    "{} bytes kept after frame {g:?}",
                    c.rbuf.capacity()
                );
            }
        }
        assert_eq!(got, vec![(1, 4 + (5 << 20)), (2, 9)]);

        // The buffer still grows for the next large frame, and shrinks
        // again when nothing is left unread.
        let mut c = Connection::new(
            Fake {
                input: Cursor::new(frame(3, &vec![3u8; 2 << 20])),
                output: Vec::new(),
                chunk: 1 << 20,
            },
            "n".into(),
            "c",
        );
        let mut n = None;
        while n.is_none() {
            let _ = c.read_some();
            n = c.next_frame(|corr, f| (corr, f.len())).unwrap();
        }
        assert_eq!(n, Some((3, 4 + (2 << 20))));
        assert_eq!((c.rpos, c.rlen), (0, 0));
        assert!(
            c.rbuf.capacity() <= READ_BUF_INITIAL,
            "{}",
            c.rbuf.capacity()
        );
    }

    #[test]
    fn too_old_brokers_are_refused_with_a_typed_error() {
        let mut c = Connection::new(
            Fake {
                input: Cursor::new(Vec::new()),
                output: Vec::new(),
                chunk: 100,
            },
            "node 9".into(),
            "cid",
        );
        c.api
            .api_keys
            .push(crate::protocol::messages::api_versions::ApiVersionRange {
                api_key: 0,
                min_version: 0,
                max_version: 2,
            });
        assert!(matches!(
            c.version_for(&crate::protocol::messages::produce::API),
            Err(Error::UnsupportedVersion { broker_max: 2, .. })
        ));
        assert!(matches!(
            c.version_for(&crate::protocol::messages::metadata::API),
            Err(Error::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn frames_reassemble_across_reads_and_bad_sizes_are_rejected() {
        let mut input = frame(5, b"hello");
        input.extend(frame(6, &vec![7u8; 200_000]));
        let mut c = Connection::new(
            Fake {
                input: Cursor::new(input),
                output: Vec::new(),
                chunk: 1000,
            },
            "n".into(),
            "c",
        );
        let mut got = Vec::new();
        loop {
            match c.read_some() {
                Ok(_) => {}
                Err(e) => assert_eq!(e.kind(), ErrorKind::UnexpectedEof),
            }
            while let Some((corr, len)) = c.next_frame(|corr, f| (corr, f.len())).unwrap() {
                got.push((corr, len));
            }
            if got.len() == 2 {
                break;
            }
        }
        assert_eq!(got, vec![(5, 9), (6, 200_004)]);

        let mut c = Connection::new(
            Fake {
                input: Cursor::new(i32::MAX.to_be_bytes().to_vec()),
                output: Vec::new(),
                chunk: 100,
            },
            "n".into(),
            "c",
        );
        let _ = c.read_some();
        assert!(c.next_frame(|_, _| ()).is_err(), "a 2 GiB frame is refused");
    }

    #[test]
    fn a_frame_larger_than_its_request_could_be_answered_with_is_refused_unread() {
        // A 3 MiB frame: accepted under a 4 MiB cap, refused under 1 MiB
        // before the buffer grows for it.
        let input = frame(1, &vec![9u8; 3 << 20]);
        let fake = |input: Vec<u8>| Fake {
            input: Cursor::new(input),
            output: Vec::new(),
            chunk: 64 * 1024,
        };
        let mut c = Connection::new(fake(input.clone()), "n".into(), "c");
        c.set_max_frame(1 << 20);
        let err = loop {
            match c.read_some() {
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
        assert!(c.next_frame(|_, _| ()).is_err());
        assert!(c.rbuf.len() <= READ_BUF_INITIAL, "grew to {}", c.rbuf.len());

        let mut c = Connection::new(fake(input), "n".into(), "c");
        c.set_max_frame(4 << 20);
        let mut got = None;
        while got.is_none() {
            if let Err(e) = c.read_some() {
                assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
            }
            got = c.next_frame(|corr, f| (corr, f.len())).unwrap();
        }
        assert_eq!(got, Some((1, 4 + (3 << 20))));
    }

    /// A transport whose reads follow a script (bytes, or WouldBlock when
    /// it runs out), counting the calls.
    struct Scripted {
        reads: std::collections::VecDeque<Vec<u8>>,
        calls: usize,
        short_drains: bool,
    }
    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            let Some(mut chunk) = self.reads.pop_front() else {
                return Err(ErrorKind::WouldBlock.into());
            };
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            if n < chunk.len() {
                self.reads.push_front(chunk.split_off(n));
            }
            Ok(n)
        }
    }
    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Transport for Scripted {
        inert_transport_setup!();
        fn short_read_drains(&self) -> bool {
            self.short_drains
        }
    }

    /// On plain TCP a read that fills less than its buffer ends the read
    /// (no WouldBlock read after it); a full buffer reads on; `drain` (the
    /// peer closed) and a transport whose short reads say nothing (TLS)
    /// read to WouldBlock.
    #[test]
    fn a_short_read_ends_the_read_only_where_it_empties_the_socket() {
        let read = |chunks: Vec<Vec<u8>>, short_drains: bool, drain: bool| {
            let mut t = Scripted {
                reads: chunks.into(),
                calls: 0,
                short_drains,
            };
            let mut w = Wire::new("node 1".into(), "c");
            w.set_max_frame(1 << 20);
            let n = read_from(&mut t, &mut w, drain).unwrap();
            (n, t.calls)
        };
        let small = || vec![vec![0u8; 100], vec![0u8; 50]];
        assert_eq!(
            read(small(), true, false),
            (100, 1),
            "stops after the short read"
        );
        assert_eq!(
            read(small(), true, true),
            (150, 3),
            "drain reads to WouldBlock"
        );
        assert_eq!(
            read(small(), false, false),
            (150, 3),
            "TLS reads to WouldBlock"
        );
        // More than the buffer holds: the first read fills it and the read
        // goes on (the buffer is compacted or grown for the rest).
        let mut big = ((READ_BUF_INITIAL + 6) as i32).to_be_bytes().to_vec();
        big.resize(READ_BUF_INITIAL + 10, 0);
        let big = vec![big];
        let (n, calls) = read(big, true, false);
        assert_eq!(n, READ_BUF_INITIAL + 10);
        assert_eq!(calls, 2, "a full read, then the short rest");
    }
}
