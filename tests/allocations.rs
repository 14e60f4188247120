//! The fire-and-forget path makes no heap allocation per record: a
//! counting global allocator counts the allocations made by the sending
//! thread while it sends 10,000 records. Batches still cost a few
//! allocations each (their shared result, the incomplete-set entry), so the
//! bound is per batch, far below one per record. Every record must also
//! be delivered: a send that failed early would allocate nothing too.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{topic, Broker};
use kafka_producer::{ByteArraySerializer, Producer, ProducerRecord, StringSerializer};

struct Counting;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = COUNT.with(Cell::get);
    f();
    COUNT.with(Cell::get) - before
}

const N: usize = 10_000;

/// Records whose callback saw success (a static: the closure captures
/// nothing).
static CALLBACK_OK: AtomicUsize = AtomicUsize::new(0);

/// Asserts that every handle resolved to a record with an offset.
fn assert_all_delivered(what: &str, handles: &[kafka_producer::RecordFuture]) {
    let delivered = handles
        .iter()
        .filter(|h| h.get().is_ok_and(|m| m.has_offset()))
        .count();
    assert_eq!(delivered, handles.len(), "{what}: records delivered");
}

#[test]
fn fire_and_forget_sends_do_not_allocate_per_record() {
    let topic = topic("alloc");
    // Long linger and big batches: the records pile into open batches.
    let config = Broker::Tansu
        .config()
        .linger(Duration::from_secs(30))
        .batch_size(4 << 20)
        .buffer_memory(64 << 20);
    let p = Producer::new(config, ByteArraySerializer, ByteArraySerializer).unwrap();
    // Warm up: metadata, connections, thread-local scratch buffers.
    let warm: Vec<_> = (0..4)
        .map(|part| {
            p.send(
                ProducerRecord::with_key(topic.as_str(), &b"k"[..], &b"warm"[..]).partition(part),
            )
            .unwrap()
        })
        .collect();
    p.flush().unwrap();
    assert_all_delivered("warm-up", &warm);
    let value = vec![b'v'; 100];
    // Handles are kept (in room reserved up front) only to check the
    // outcomes afterwards; keeping one costs what dropping it does.
    let mut keyed_handles = Vec::with_capacity(N);
    let mut keyless_handles = Vec::with_capacity(N);
    let keyed = allocations_during(|| {
        for i in 0..N {
            let key = (i as u64).to_be_bytes();
            // keyed: serialized and hashed with murmur2
            let h = p.send(ProducerRecord::with_key(
                topic.as_str(),
                &key,
                value.as_slice(),
            ));
            keyed_handles.push(h.expect("keyed send"));
        }
    });
    let keyless = allocations_during(|| {
        for _ in 0..N {
            let h = p.send(ProducerRecord::new(topic.as_str(), value.as_slice()));
            keyless_handles.push(h.expect("keyless send"));
        }
    });
    CALLBACK_OK.store(0, Ordering::SeqCst);
    let callbacks = allocations_during(|| {
        for _ in 0..N {
            // a callback that captures nothing; its handle is dropped
            // (fire and forget)
            p.send_with_callback(
                ProducerRecord::new(topic.as_str(), value.as_slice()).partition(0),
                |r| {
                    if r.is_ok_and(|m| m.has_offset()) {
                        CALLBACK_OK.fetch_add(1, Ordering::SeqCst);
                    }
                },
            )
            .expect("send with a callback");
        }
    });
    // A capturing closure (an Arc and the record's index), the usual kind:
    // kept unboxed in its batch, so no allocation per record either.
    let seen = Arc::new(AtomicUsize::new(0));
    let index_sum = Arc::new(AtomicUsize::new(0));
    let capturing = allocations_during(|| {
        for i in 0..N {
            let (seen, index_sum) = (seen.clone(), index_sum.clone());
            p.send_with_callback(
                ProducerRecord::new(topic.as_str(), value.as_slice()).partition(1),
                move |r| {
                    if r.is_ok_and(|m| m.has_offset()) {
                        seen.fetch_add(1, Ordering::SeqCst);
                        index_sum.fetch_add(i, Ordering::SeqCst);
                    }
                },
            )
            .expect("send with a capturing callback");
        }
    });
    p.flush().unwrap();
    // flush() returns once every callback ran
    assert_eq!(
        CALLBACK_OK.load(Ordering::SeqCst),
        N,
        "callback: records delivered"
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        N,
        "capturing: records delivered"
    );
    assert_eq!(
        index_sum.load(Ordering::SeqCst),
        N * (N - 1) / 2,
        "capturing: each callback ran once with its own capture"
    );
    assert_all_delivered("keyed", &keyed_handles);
    assert_all_delivered("keyless", &keyless_handles);
    // A few per batch (at most ~4 batches each here), none per record.
    for (what, n) in [
        ("keyed", keyed),
        ("keyless", keyless),
        ("callback", callbacks),
        ("capturing callback", capturing),
    ] {
        eprintln!("{what}: {n} allocations for {N} sends");
        assert!(n < 100, "{what}: {n} allocations for {N} sends");
    }
}

#[test]
fn a_typed_producer_serializes_without_allocating() {
    let topic = topic("alloc-typed");
    let config = Broker::Mock
        .config()
        .linger(Duration::from_secs(30))
        .batch_size(4 << 20);
    let p = Producer::new(config, StringSerializer, StringSerializer).unwrap();
    let warm = p
        .send(ProducerRecord::with_key(topic.as_str(), "k", "warm"))
        .unwrap();
    p.flush().unwrap();
    warm.get().unwrap();
    let keys: Vec<String> = (0..N).map(|i| format!("key-{i}")).collect();
    let mut handles = Vec::with_capacity(N);
    let n = allocations_during(|| {
        for k in &keys {
            let h = p.send(ProducerRecord::with_key(topic.as_str(), k, "value"));
            handles.push(h.expect("typed send"));
        }
    });
    p.flush().unwrap();
    assert!(n < 100, "{n} allocations for {N} sends");
    assert_all_delivered("typed", &handles);
}

/// What a new batch with a send callback costs the sending thread beyond
/// one without: its callback list's box and first chunk, two allocations
/// (there is no vector of lists and no vector of chunks to allocate as
/// well). With hundreds of partitions a batch holds a dozen records, so
/// this is paid every dozen. Each round opens a batch on each of four
/// partitions, then flushes; the fewest allocations of three rounds of
/// each kind are compared, and every record must be delivered.
#[test]
fn a_new_batch_with_a_callback_allocates_only_its_list_and_first_chunk() {
    let topic = topic("alloc-batch");
    let config = Broker::Tansu
        .config()
        .linger(Duration::from_secs(30))
        .batch_size(1 << 20);
    let p = Producer::new(config, ByteArraySerializer, ByteArraySerializer).unwrap();
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(64);
    let mut round = |callback: bool| -> u64 {
        let n = allocations_during(|| {
            for part in 0..4 {
                let record = ProducerRecord::new(topic.as_str(), &b"v"[..]).partition(part);
                if callback {
                    let delivered = delivered.clone();
                    p.send_with_callback(record, move |r| {
                        if r.is_ok_and(|m| m.has_offset()) {
                            delivered.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                    .expect("send with a callback");
                } else {
                    handles.push(p.send(record).expect("send"));
                }
            }
        });
        p.flush().unwrap();
        n
    };
    // Warm-up: metadata, connections, buffers in the pool's free list.
    round(false);
    round(true);
    let plain: Vec<u64> = (0..3).map(|_| round(false)).collect();
    let with_callback: Vec<u64> = (0..3).map(|_| round(true)).collect();
    eprintln!("allocations per round of 4 new batches: {plain:?} without callbacks, {with_callback:?} with");
    assert_all_delivered("without callbacks", &handles);
    assert_eq!(
        delivered.load(Ordering::SeqCst),
        4 * 4,
        "callbacks: records delivered"
    );
    let (plain, with_callback) = (
        *plain.iter().min().unwrap(),
        *with_callback.iter().min().unwrap(),
    );
    assert_eq!(
        with_callback.saturating_sub(plain),
        2 * 4,
        "a callback list's allocations for 4 batches ({with_callback} against {plain})"
    );
}
