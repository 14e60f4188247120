//! The fire-and-forget path makes no heap allocation per record: a
//! counting global allocator counts the allocations made by the sending
//! thread while it sends 10,000 records. Batches still cost a few
//! allocations each (their shared result, the incomplete-set entry), so the
//! bound is per batch, far below one per record.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
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
    for part in 0..4 {
        let _ = p.send(
            ProducerRecord::with_key(topic.as_str(), &b"k"[..], &b"warm"[..]).partition(part),
        );
    }
    p.flush().unwrap();
    let value = vec![b'v'; 100];
    let keyed = allocations_during(|| {
        for i in 0..N {
            let key = (i as u64).to_be_bytes();
            // keyed: serialized and hashed with murmur2, handle dropped
            let _ = p.send(ProducerRecord::with_key(
                topic.as_str(),
                &key,
                value.as_slice(),
            ));
        }
    });
    let keyless = allocations_during(|| {
        for _ in 0..N {
            let _ = p.send(ProducerRecord::new(topic.as_str(), value.as_slice()));
        }
    });
    let callbacks = allocations_during(|| {
        for _ in 0..N {
            // a callback that captures nothing is boxed without allocating
            let _ = p.send_with_callback(
                ProducerRecord::new(topic.as_str(), value.as_slice()).partition(0),
                |r| {
                    r.unwrap();
                },
            );
        }
    });
    p.flush().unwrap();
    // A few per batch (at most ~4 batches each here), none per record.
    for (what, n) in [
        ("keyed", keyed),
        ("keyless", keyless),
        ("callback", callbacks),
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
    let n = allocations_during(|| {
        for k in &keys {
            let _ = p.send(ProducerRecord::with_key(topic.as_str(), k, "value"));
        }
    });
    p.flush().unwrap();
    assert!(n < 100, "{n} allocations for {N} sends");
}
