//! A Kafka-protocol-aware fault proxy: one listener on 127.0.0.1 per broker
//! of the cluster behind it, so a client that bootstraps through it never
//! talks to a broker directly.
//!
//! Every connection is read frame by frame (the 4-byte size prefix) both
//! ways. From the client side the proxy notes each request's api key,
//! version and correlation id (keeping every key and version,
//! [`KProxy::requests`], and every Produce batch's header,
//! [`KProxy::sent_batches`]); from the broker side it matches each answer
//! to its request and
//! - rewrites Metadata responses (every version), FindCoordinator responses
//!   and the KIP-951 node endpoints of Produce responses (v10+) so that each
//!   broker's address is the proxy listener for it (a listener is opened the
//!   first time a broker is named);
//! - on a selected Produce response (see [`KProxy::swallow_every`] and
//!   [`KProxy::swallow_next`]) drops it and cuts the connection, both
//!   sides: the broker has appended the batch (it answered), the client
//!   never learns it, so it sends the batch again on a new connection.
//!
//! - with [`KProxy::throttle_produce`], sets `throttle_time_ms` in every
//!   Produce response (KIP-219), and logs when each Produce request came
//!   and each throttled answer went ([`KProxy::produce_timeline`]).
//!
//! Everything runs on blocking threads that end when their sockets close;
//! dropping the proxy closes every socket and joins every thread.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FindCoordinatorResponse, MetadataResponse, ProduceRequest, ProduceResponse,
    RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The largest frame the proxy forwards (Kafka's own default socket
/// request limit is 100 MiB).
const MAX_FRAME: usize = 200 << 20;

/// Which Produce responses to swallow.
#[derive(Debug, Default)]
struct Fault {
    /// Swallow every `every`-th Produce response (0: none), ...
    every: usize,
    /// ... but at most this many more (`None`: no limit).
    remaining: Option<usize>,
    /// Produce responses counted since the fault was set.
    counter: usize,
}

/// One record batch of a Produce request, as the client sent it (the
/// RecordBatch v2 header fields that idempotence is about).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentBatch {
    /// The proxy's connection number and the request's correlation id.
    pub conn: u64,
    pub correlation_id: i32,
    /// The Produce request's version.
    pub version: i16,
    pub topic: String,
    pub partition: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records: i32,
    pub crc: u32,
    /// Whether the proxy swallowed the answer to this batch's request.
    pub swallowed: bool,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// upstream "host:port" -> the proxy's port for it
    listeners: Mutex<HashMap<String, u16>>,
    /// open connections (client, broker), by id, to close on drop
    conns: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_conn: AtomicU64,
    fault: Mutex<Fault>,
    produce_responses: AtomicUsize,
    swallowed: AtomicUsize,
    rewritten: AtomicUsize,
    connections: AtomicUsize,
    /// every batch of every Produce request, in the order they were sent
    sent: Mutex<Vec<SentBatch>>,
    /// (api key, version) of every request, in the order they were sent
    requests: Mutex<Vec<(i16, i16)>>,
    /// per-partition error codes of the Produce responses (swallowed or not)
    produce_errors: Mutex<BTreeMap<i16, usize>>,
    /// what went wrong inside the proxy (a response it could not rewrite,
    /// an upstream it could not reach): tests assert this is empty
    errors: Mutex<Vec<String>>,
    /// `throttle_time_ms` written into every Produce response (0: none)
    throttle_ms: AtomicI32,
    /// with a throttle: Produce requests in and throttled answers out
    timeline: Mutex<Vec<ProduceEvent>>,
    /// `throttle_time_ms` written into every Metadata response (0: none)
    metadata_throttle_ms: AtomicI32,
    /// with a Metadata throttle: Metadata requests in and throttled
    /// answers out
    metadata_timeline: Mutex<Vec<ProduceEvent>>,
}

/// A moment in the life of a throttled connection (see
/// [`KProxy::produce_timeline`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProduceEvent {
    /// A Produce request arrived from the client on connection `conn`.
    Request { conn: u64, at: Instant },
    /// An answer with `throttle_ms` was written to the client.
    Throttled {
        conn: u64,
        at: Instant,
        throttle_ms: i32,
    },
}

/// The proxy; see the module doc. Closes everything on drop.
pub struct KProxy {
    shared: Arc<Shared>,
    /// The proxy listeners of the bootstrap brokers, comma-separated: the
    /// client's `bootstrap.servers`.
    pub bootstrap: String,
}

impl KProxy {
    /// A proxy in front of the cluster `bootstrap` (comma-separated
    /// host:port) names; no fault until one is set.
    pub fn start(bootstrap: &str) -> KProxy {
        let shared = Arc::new(Shared::default());
        let addrs: Vec<String> = bootstrap
            .split(',')
            .map(|a| format!("127.0.0.1:{}", listener_for(&shared, a.trim())))
            .collect();
        KProxy {
            shared,
            bootstrap: addrs.join(","),
        }
    }

    /// From now on, swallow every `n`-th Produce response (counted over all
    /// connections) and cut its connection; `n == 0` stops the fault.
    pub fn swallow_every(&self, n: usize) {
        *self.shared.fault.lock().unwrap() = Fault {
            every: n,
            remaining: None,
            counter: 0,
        };
    }

    /// Swallow the next `k` Produce responses (each cuts its connection).
    pub fn swallow_next(&self, k: usize) {
        *self.shared.fault.lock().unwrap() = Fault {
            every: 1,
            remaining: Some(k),
            counter: 0,
        };
    }

    /// From now on, every Produce response tells the client to hold back
    /// `ms` milliseconds (KIP-219; 0 stops it).
    pub fn throttle_produce(&self, ms: i32) {
        self.shared.throttle_ms.store(ms, Ordering::SeqCst);
    }

    /// With a throttle: every Produce request's arrival and every throttled
    /// answer's departure, in order.
    pub fn produce_timeline(&self) -> Vec<ProduceEvent> {
        self.shared.timeline.lock().unwrap().clone()
    }

    /// From now on, every Metadata response tells the client to hold back
    /// `ms` milliseconds (0 stops it).
    pub fn throttle_metadata(&self, ms: i32) {
        self.shared.metadata_throttle_ms.store(ms, Ordering::SeqCst);
    }

    /// With a Metadata throttle: every Metadata request's arrival and every
    /// throttled answer's departure, in order (as [`Self::produce_timeline`]).
    pub fn metadata_timeline(&self) -> Vec<ProduceEvent> {
        self.shared.metadata_timeline.lock().unwrap().clone()
    }

    /// No more faults: every response is forwarded.
    pub fn heal(&self) {
        self.swallow_every(0);
    }

    /// Produce responses the brokers sent, swallowed or not.
    pub fn produce_responses(&self) -> usize {
        self.shared.produce_responses.load(Ordering::SeqCst)
    }

    /// Produce responses swallowed (each with its connection).
    pub fn swallowed(&self) -> usize {
        self.shared.swallowed.load(Ordering::SeqCst)
    }

    /// Responses whose broker addresses were rewritten.
    pub fn rewritten(&self) -> usize {
        self.shared.rewritten.load(Ordering::SeqCst)
    }

    /// Client connections accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The brokers behind the proxy: upstream address -> proxy address.
    pub fn brokers(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .shared
            .listeners
            .lock()
            .unwrap()
            .iter()
            .map(|(up, port)| (up.clone(), format!("127.0.0.1:{port}")))
            .collect();
        v.sort();
        v
    }

    /// Every record batch the client sent in a Produce request, in order.
    pub fn sent_batches(&self) -> Vec<SentBatch> {
        self.shared.sent.lock().unwrap().clone()
    }

    /// The (api key, version) of every request the client sent, in order.
    pub fn requests(&self) -> Vec<(i16, i16)> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// How often each error code came back for a partition in a Produce
    /// response (0 included).
    pub fn produce_errors(&self) -> BTreeMap<i16, usize> {
        self.shared.produce_errors.lock().unwrap().clone()
    }

    /// What went wrong inside the proxy.
    pub fn errors(&self) -> Vec<String> {
        self.shared.errors.lock().unwrap().clone()
    }
}

impl Drop for KProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for (_, (c, s)) in self.shared.conns.lock().unwrap().drain() {
            let _ = c.shutdown(Shutdown::Both);
            let _ = s.shutdown(Shutdown::Both);
        }
        // Threads spawned while we join (a connection accepted just now)
        // see `stop` or a closed socket and end too.
        loop {
            let threads: Vec<_> = std::mem::take(&mut *self.shared.threads.lock().unwrap());
            if threads.is_empty() {
                break;
            }
            for t in threads {
                let _ = t.join();
            }
            for (_, (c, s)) in self.shared.conns.lock().unwrap().drain() {
                let _ = c.shutdown(Shutdown::Both);
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Shared {
    /// The throttle set for answers to `key` and the timeline of that
    /// API's requests and throttled answers: Produce's or Metadata's.
    fn throttle_of(&self, key: i16) -> Option<(&AtomicI32, &Mutex<Vec<ProduceEvent>>)> {
        if key == ApiKey::Produce as i16 {
            Some((&self.throttle_ms, &self.timeline))
        } else if key == ApiKey::Metadata as i16 {
            Some((&self.metadata_throttle_ms, &self.metadata_timeline))
        } else {
            None
        }
    }
}

fn error(shared: &Shared, e: String) {
    shared.errors.lock().unwrap().push(e);
}

fn spawn(shared: &Arc<Shared>, f: impl FnOnce() + Send + 'static) {
    let t = std::thread::spawn(f);
    shared.threads.lock().unwrap().push(t);
}

/// The proxy's port for `upstream`, opening a listener the first time.
fn listener_for(shared: &Arc<Shared>, upstream: &str) -> u16 {
    let mut listeners = shared.listeners.lock().unwrap();
    if let Some(&port) = listeners.get(upstream) {
        return port;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    listeners.insert(upstream.to_owned(), port);
    drop(listeners);
    let (sh, up) = (shared.clone(), upstream.to_owned());
    spawn(shared, move || accept_loop(sh, listener, up));
    port
}

fn accept_loop(shared: Arc<Shared>, listener: TcpListener, upstream: String) {
    while !shared.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((c, _)) => c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(e) => {
                error(&shared, format!("accept for {upstream}: {e}"));
                return;
            }
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let server = upstream
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok());
        let Some(server) = server else {
            // dropping `client` closes it, as a broker that is down would
            continue;
        };
        client.set_nonblocking(false).unwrap();
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
        shared.conns.lock().unwrap().insert(
            id,
            (client.try_clone().unwrap(), server.try_clone().unwrap()),
        );
        if shared.stop.load(Ordering::SeqCst) {
            close(&shared, id);
            return;
        }
        let pending: Arc<Mutex<HashMap<i32, (i16, i16)>>> = Arc::default();
        let conn = Conn {
            shared: shared.clone(),
            id,
            pending,
        };
        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let up = conn.clone();
        spawn(&shared, move || up.requests(client, server));
        spawn(&shared, move || conn.responses(s2, c2));
    }
}

/// Closes both sides of connection `id`.
fn close(shared: &Shared, id: u64) {
    if let Some((c, s)) = shared.conns.lock().unwrap().remove(&id) {
        let _ = c.shutdown(Shutdown::Both);
        let _ = s.shutdown(Shutdown::Both);
    }
}

/// One frame (size prefix included), or `None` at EOF or on an error.
fn read_frame(r: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    r.read_exact(&mut size).ok()?;
    let n = i32::from_be_bytes(size);
    if n < 0 || n as usize > MAX_FRAME {
        return None;
    }
    let mut frame = vec![0u8; 4 + n as usize];
    frame[..4].copy_from_slice(&size);
    r.read_exact(&mut frame[4..]).ok()?;
    Some(frame)
}

#[derive(Clone)]
struct Conn {
    shared: Arc<Shared>,
    id: u64,
    /// correlation id -> (api key, api version) of requests not yet answered
    pending: Arc<Mutex<HashMap<i32, (i16, i16)>>>,
}

impl Conn {
    /// Client -> broker: note each request, forward it unchanged.
    fn requests(self, mut client: TcpStream, mut server: TcpStream) {
        while let Some(frame) = read_frame(&mut client) {
            if frame.len() < 12 {
                break;
            }
            let key = i16::from_be_bytes([frame[4], frame[5]]);
            let version = i16::from_be_bytes([frame[6], frame[7]]);
            let corr = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
            // noted before it is forwarded, so before any answer can come
            self.pending.lock().unwrap().insert(corr, (key, version));
            self.shared.requests.lock().unwrap().push((key, version));
            if key == ApiKey::Produce as i16 {
                self.note_produce(version, corr, &frame);
            }
            if let Some((throttle_ms, timeline)) = self.shared.throttle_of(key) {
                if throttle_ms.load(Ordering::SeqCst) > 0 {
                    timeline.lock().unwrap().push(ProduceEvent::Request {
                        conn: self.id,
                        at: Instant::now(),
                    });
                }
            }
            if server.write_all(&frame).is_err() {
                break;
            }
        }
        close(&self.shared, self.id);
    }

    /// Broker -> client: rewrite addresses, swallow selected Produce
    /// answers (cutting the connection), forward the rest.
    fn responses(self, mut server: TcpStream, mut client: TcpStream) {
        while let Some(frame) = read_frame(&mut server) {
            if frame.len() < 8 {
                break;
            }
            let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
            let request = self.pending.lock().unwrap().remove(&corr);
            let throttled = request
                .and_then(|(k, _)| self.shared.throttle_of(k))
                .map(|(ms, timeline)| (ms.load(Ordering::SeqCst), timeline))
                .filter(|(ms, _)| *ms > 0);
            let out = match request {
                Some((key, version)) => match self.answer(key, version, corr, frame) {
                    Some(out) => out,
                    None => {
                        // swallowed: the connection goes with it
                        break;
                    }
                },
                None => frame,
            };
            // Logged before the client can have it: any request it sends
            // after reading it is logged later.
            if let Some((throttle_ms, timeline)) = throttled {
                timeline.lock().unwrap().push(ProduceEvent::Throttled {
                    conn: self.id,
                    at: Instant::now(),
                    throttle_ms,
                });
            }
            if client.write_all(&out).is_err() {
                break;
            }
        }
        close(&self.shared, self.id);
    }

    /// What to send the client for the answer `frame` to a request of
    /// `key` at `version`; `None` to swallow it.
    fn answer(&self, key: i16, version: i16, corr: i32, frame: Vec<u8>) -> Option<Vec<u8>> {
        let Ok(api) = ApiKey::try_from(key) else {
            return Some(frame);
        };
        match api {
            ApiKey::Produce => {
                self.shared.produce_responses.fetch_add(1, Ordering::SeqCst);
                let decoded = self.decode::<ProduceResponse>(api, version, &frame);
                if let Some((_, m)) = &decoded {
                    let mut errors = self.shared.produce_errors.lock().unwrap();
                    for t in &m.responses {
                        for p in &t.partition_responses {
                            *errors.entry(p.error_code).or_default() += 1;
                        }
                    }
                }
                if self.select() {
                    self.shared.swallowed.fetch_add(1, Ordering::SeqCst);
                    for b in self.shared.sent.lock().unwrap().iter_mut().rev() {
                        if b.conn == self.id && b.correlation_id == corr {
                            b.swallowed = true;
                        }
                    }
                    close(&self.shared, self.id);
                    return None;
                }
                let throttle = self.shared.throttle_ms.load(Ordering::SeqCst);
                match decoded {
                    Some((header_len, mut m)) if !m.node_endpoints.is_empty() || throttle > 0 => {
                        for e in &mut m.node_endpoints {
                            (e.host, e.port) = self.point(e.host.as_str(), e.port);
                        }
                        if throttle > 0 {
                            m.throttle_time_ms = throttle;
                        }
                        Some(self.encode(api, version, frame, header_len, &m))
                    }
                    _ => Some(frame),
                }
            }
            ApiKey::Metadata => {
                let throttle = self.shared.metadata_throttle_ms.load(Ordering::SeqCst);
                Some(
                    self.rewrite::<MetadataResponse>(api, version, frame, |m, p| {
                        if throttle > 0 {
                            m.throttle_time_ms = throttle;
                        }
                        for b in &mut m.brokers {
                            let (host, port) = p(b.host.as_str(), b.port);
                            b.host = host;
                            b.port = port;
                        }
                        true
                    }),
                )
            }
            ApiKey::FindCoordinator => {
                Some(
                    self.rewrite::<FindCoordinatorResponse>(api, version, frame, |m, p| {
                        let mut changed = false;
                        if m.node_id != BrokerId(-1) && m.port > 0 {
                            let (host, port) = p(m.host.as_str(), m.port);
                            m.host = host;
                            m.port = port;
                            changed = true;
                        }
                        for c in &mut m.coordinators {
                            if c.node_id != BrokerId(-1) && c.port > 0 {
                                let (host, port) = p(c.host.as_str(), c.port);
                                c.host = host;
                                c.port = port;
                                changed = true;
                            }
                        }
                        changed
                    }),
                )
            }
            _ => Some(frame),
        }
    }

    /// Whether to swallow this Produce response.
    fn select(&self) -> bool {
        let mut f = self.shared.fault.lock().unwrap();
        if f.every == 0 || f.remaining == Some(0) {
            return false;
        }
        f.counter += 1;
        if !f.counter.is_multiple_of(f.every) {
            return false;
        }
        if let Some(r) = &mut f.remaining {
            *r -= 1;
        }
        true
    }

    /// Decodes the body of `frame` as `M` at `version`, lets `edit` point
    /// its broker addresses at the proxy (`edit` returns whether it changed
    /// anything) and encodes it again, header unchanged. A body that does
    /// not decode is forwarded as it is and noted in `errors`.
    fn rewrite<M: Decodable + Encodable>(
        &self,
        api: ApiKey,
        version: i16,
        frame: Vec<u8>,
        edit: impl FnOnce(&mut M, &mut dyn FnMut(&str, i32) -> (StrBytes, i32)) -> bool,
    ) -> Vec<u8> {
        let Some((header_len, mut msg)) = self.decode::<M>(api, version, &frame) else {
            return frame;
        };
        if !edit(&mut msg, &mut |host, port| self.point(host, port)) {
            return frame;
        }
        self.encode(api, version, frame, header_len, &msg)
    }

    /// The proxy's address for the broker at `host`:`port`.
    fn point(&self, host: &str, port: i32) -> (StrBytes, i32) {
        let port = listener_for(&self.shared, &format!("{host}:{port}"));
        (StrBytes::from_static_str("127.0.0.1"), i32::from(port))
    }

    /// The response header's length and the body of `frame` decoded as `M`
    /// at `version`; `None` (noted in `errors`) if it does not decode
    /// exactly.
    fn decode<M: Decodable>(&self, api: ApiKey, version: i16, frame: &[u8]) -> Option<(usize, M)> {
        let mut buf = Bytes::copy_from_slice(&frame[4..]);
        let total = buf.len();
        let header_version = api.response_header_version(version);
        if let Err(e) = ResponseHeader::decode(&mut buf, header_version) {
            error(&self.shared, format!("{api:?} v{version} header: {e}"));
            return None;
        }
        let header_len = total - buf.len();
        let msg = match M::decode(&mut buf, version) {
            Ok(m) => m,
            Err(e) => {
                error(&self.shared, format!("{api:?} v{version} decode: {e}"));
                return None;
            }
        };
        if !buf.is_empty() {
            error(
                &self.shared,
                format!(
                    "{api:?} v{version}: {} bytes left after decoding",
                    buf.len()
                ),
            );
            return None;
        }
        Some((header_len, msg))
    }

    /// `frame` with its body replaced by `msg` encoded at `version`.
    fn encode<M: Encodable>(
        &self,
        api: ApiKey,
        version: i16,
        frame: Vec<u8>,
        header_len: usize,
        msg: &M,
    ) -> Vec<u8> {
        let mut body = BytesMut::new();
        if let Err(e) = msg.encode(&mut body, version) {
            error(&self.shared, format!("{api:?} v{version} encode: {e}"));
            return frame;
        }
        let size = (header_len + body.len()) as i32;
        let mut out = Vec::with_capacity(4 + size as usize);
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(&frame[4..4 + header_len]);
        out.extend_from_slice(&body);
        self.shared.rewritten.fetch_add(1, Ordering::SeqCst);
        out
    }

    /// Notes the record batches of a Produce request (`frame`).
    fn note_produce(&self, version: i16, corr: i32, frame: &[u8]) {
        let mut buf = Bytes::copy_from_slice(&frame[4..]);
        let header_version = ApiKey::Produce.request_header_version(version);
        let request = RequestHeader::decode(&mut buf, header_version)
            .and_then(|_| ProduceRequest::decode(&mut buf, version));
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                error(&self.shared, format!("Produce v{version} request: {e}"));
                return;
            }
        };
        let mut sent = self.shared.sent.lock().unwrap();
        for t in &request.topic_data {
            for p in &t.partition_data {
                let mut records: &[u8] = p.records.as_deref().unwrap_or_default();
                // RecordBatch v2: baseOffset(8) length(4) leaderEpoch(4)
                // magic(1) crc(4) attributes(2) lastOffsetDelta(4)
                // baseTimestamp(8) maxTimestamp(8) producerId(8)
                // producerEpoch(2) baseSequence(4) records(4)
                while records.len() >= 61 {
                    let be = |at: usize, n: usize| -> i64 {
                        records[at..at + n]
                            .iter()
                            .fold(0i64, |a, &b| (a << 8) | i64::from(b))
                    };
                    let len = be(8, 4) as usize;
                    if records[16] != 2 || records.len() < 12 + len {
                        error(&self.shared, format!("Produce v{version}: not a v2 batch"));
                        break;
                    }
                    sent.push(SentBatch {
                        conn: self.id,
                        correlation_id: corr,
                        version,
                        topic: t.name.0.as_str().to_owned(),
                        partition: p.index,
                        producer_id: be(43, 8),
                        producer_epoch: be(51, 2) as i16,
                        base_sequence: be(53, 4) as i32,
                        records: be(57, 4) as i32,
                        crc: be(17, 4) as u32,
                        swallowed: false,
                    });
                    records = &records[12 + len..];
                }
            }
        }
    }
}

/// What [`check_sequences`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequences {
    /// The one producer id of every batch.
    pub producer_id: i64,
    /// Copies of a batch sent beyond its first.
    pub retries: usize,
    /// Records in the distinct batches, per partition.
    pub per_partition: BTreeMap<i32, usize>,
    /// The producer epochs seen, per partition.
    pub epochs: BTreeMap<i32, Vec<i16>>,
}

/// One partition's batches in one producer epoch: base sequence ->
/// (records, CRC, copies sent).
type Batches = BTreeMap<i32, (i32, u32, usize)>;

/// Checks the idempotence of the batches a client sent (one topic): they
/// carry one producer id; every copy of a batch (a retry) is byte-identical
/// (same sequence, record count and CRC); and per partition, within each
/// producer epoch, the distinct batches' sequences run on from 0 with no
/// gap and no overlap.
pub fn check_sequences(sent: &[SentBatch]) -> Result<Sequences, String> {
    let first = sent.first().ok_or("no batch was sent")?;
    let producer_id = first.producer_id;
    // partition -> epoch -> batches
    let mut seqs: BTreeMap<i32, BTreeMap<i16, Batches>> = BTreeMap::new();
    for s in sent {
        if s.producer_id != producer_id {
            return Err(format!("a second producer id: {s:?} after {first:?}"));
        }
        let e = seqs
            .entry(s.partition)
            .or_default()
            .entry(s.producer_epoch)
            .or_default()
            .entry(s.base_sequence)
            .or_insert((s.records, s.crc, 0));
        if (e.0, e.1) != (s.records, s.crc) {
            return Err(format!(
                "sequence {} of partition {} sent with different records: {} records CRC {:#x}, \
                 then {s:?}",
                s.base_sequence, s.partition, e.0, e.1
            ));
        }
        e.2 += 1;
    }
    let mut out = Sequences {
        producer_id,
        retries: 0,
        per_partition: BTreeMap::new(),
        epochs: BTreeMap::new(),
    };
    for (p, epochs) in &seqs {
        let mut total = 0;
        for (epoch, batches) in epochs {
            let mut next = 0;
            for (&base, &(records, _, copies)) in batches {
                if base != next {
                    return Err(format!(
                        "partition {p} epoch {epoch}: sequence {base} where {next} was next"
                    ));
                }
                next = base + records;
                out.retries += copies - 1;
            }
            total += next as usize;
        }
        out.per_partition.insert(*p, total);
        out.epochs.insert(*p, epochs.keys().copied().collect());
    }
    Ok(out)
}

/// One request through `addr` (the proxy, or a broker) on a fresh raw
/// socket, its answer decoded; no ApiVersions first.
pub fn roundtrip<Req, Resp>(addr: &str, key: ApiKey, version: i16, request: &Req) -> Resp
where
    Req: Encodable,
    Resp: Decodable,
{
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("kproxy-raw")))
        .encode(&mut body, key.request_header_version(version))
        .unwrap();
    request.encode(&mut body, version).unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&(body.len() as i32).to_be_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut frame).unwrap();
    let mut buf = bytes::Bytes::from(frame);
    let header = ResponseHeader::decode(&mut buf, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 7);
    let answer = Resp::decode(&mut buf, version).unwrap();
    assert!(buf.is_empty(), "{key:?} v{version}: bytes left over");
    answer
}
