//! Replays the fuzz corpora (`fuzz/corpus/<target>/*`) through the fuzz
//! targets' own entry points (`fuzz/src/lib.rs`, included here), on stable
//! and with no broker: no input may panic, and every seed (a file named
//! `seed-*`, a valid encoding) must decode. Also checks that the seeds are
//! those the generator below writes (valid encodings at every version we
//! support), and measures, with a counting allocator, what hostile inputs
//! make the decoders reserve.
//!
//! Regenerate the seeds after changing an encoder or a version range:
//!
//! ```text
//! KP_WRITE_SEEDS=1 cargo test --test fuzz_corpora seeds_are_generated
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use kafka_producer::protocol::messages::api::Api;
use kafka_producer::protocol::messages::api_versions::{
    self, ApiVersionRange, ApiVersionsResponse, FinalizedFeature,
};
use kafka_producer::protocol::messages::end_txn::{self, EndTxnResponse};
use kafka_producer::protocol::messages::find_coordinator::{
    self, Coordinator, FindCoordinatorResponse,
};
use kafka_producer::protocol::messages::header::{begin_frame, encode_response_header, end_frame};
use kafka_producer::protocol::messages::init_producer_id::{self, InitProducerIdResponse};
use kafka_producer::protocol::messages::metadata::{
    self, MetadataBroker, MetadataPartition, MetadataResponse, MetadataTopic,
};
use kafka_producer::protocol::messages::produce::{
    self, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, ProduceResponse,
    TopicProduceResponse,
};
use kafka_producer::protocol::primitives::{put_uvarint, Decoder};
use kafka_producer::protocol::records::{
    decode_batches, record_body_size, write_record, BatchHeader, ATTR_LOG_APPEND_TIME,
    ATTR_TRANSACTIONAL,
};
use kafka_producer::ErrorCode;

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

// ---------------------------------------------------------------------------
// A counting allocator: the peak of live heap bytes on this thread.

struct Peak;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static TOP: Cell<usize> = const { Cell::new(0) };
}

fn grew(n: usize) {
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + n);
        let _ = TOP.try_with(|top| top.set(top.get().max(live.get())));
    });
}

fn shrank(n: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(n)));
}

unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        shrank(layout.size());
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Peak = Peak;

/// The most heap bytes `f` had live at once on this thread, beyond what
/// was live before it (a realloc counts both blocks, as it may need them).
fn peak(f: impl FnOnce()) -> usize {
    let base = LIVE.with(Cell::get);
    TOP.with(|t| t.set(base));
    f();
    TOP.with(Cell::get) - base
}

#[test]
fn the_peak_counter_sees_a_reservation() {
    let p = peak(|| drop(Vec::<u8>::with_capacity(1 << 20)));
    assert!(p >= 1 << 20, "{p}");
}

// ---------------------------------------------------------------------------
// The corpora.

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

#[test]
fn corpora_replay_without_panics_and_seeds_decode() {
    let mut failures = Vec::new();
    let mut counts = BTreeMap::new();
    for dir in std::fs::read_dir(corpus_root()).expect("fuzz/corpus exists") {
        let dir = dir.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let target = targets::target(&name)
            .unwrap_or_else(|| panic!("fuzz/corpus/{name} names no fuzz target"));
        let (mut seeds, mut others) = (0, 0);
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let data = std::fs::read(&path).unwrap();
            let is_seed = file.starts_with("seed-");
            if is_seed {
                seeds += 1;
            } else {
                others += 1;
            }
            match catch_unwind(AssertUnwindSafe(|| target(&data))) {
                Err(_) => failures.push(format!("{name}/{file}: panicked")),
                Ok(Err(e)) if is_seed => failures.push(format!("{name}/{file}: {e}")),
                Ok(_) => {}
            }
        }
        counts.insert(name, (seeds, others));
    }
    println!("replayed (seeds, other inputs) per target: {counts:?}");
    assert!(failures.is_empty(), "{failures:#?}");
    for (name, _) in targets::TARGETS {
        let seeds = counts.get(*name).map_or(0, |c| c.0);
        assert!(seeds > 0, "fuzz/corpus/{name} has no seeds");
    }
}

/// Checks the committed seeds against the generator, or (with
/// `KP_WRITE_SEEDS` set) writes them and removes stale ones.
#[test]
fn seeds_are_generated_valid_encodings() {
    let write = std::env::var_os("KP_WRITE_SEEDS").is_some();
    let mut problems = Vec::new();
    for (target, seeds) in all_seeds() {
        let dir = corpus_root().join(target);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
        }
        let wanted: BTreeMap<String, Vec<u8>> = seeds.into_iter().collect();
        for (name, bytes) in &wanted {
            let t = targets::target(target).unwrap();
            assert_eq!(
                t(bytes),
                Ok(()),
                "generated seed {target}/{name} must decode"
            );
            let path = dir.join(name);
            if write {
                std::fs::write(&path, bytes).unwrap();
            } else if std::fs::read(&path).ok().as_ref() != Some(bytes) {
                problems.push(format!("{target}/{name} is missing or differs"));
            }
        }
        for file in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("seed-") && !wanted.contains_key(&name) {
                if write {
                    std::fs::remove_file(&path).unwrap();
                } else {
                    problems.push(format!("{target}/{name} is no longer generated"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{problems:#?}\nregenerate: KP_WRITE_SEEDS=1 cargo test --test fuzz_corpora seeds_are_generated"
    );
}

type Seeds = Vec<(String, Vec<u8>)>;

fn all_seeds() -> Vec<(&'static str, Seeds)> {
    vec![
        ("api_versions_response", api_versions_seeds()),
        ("metadata_response", metadata_seeds()),
        ("produce_response", produce_seeds()),
        ("init_producer_id_response", init_producer_id_seeds()),
        ("find_coordinator_response", find_coordinator_seeds()),
        ("end_txn_response", end_txn_seeds()),
        ("response_header", header_seeds()),
        ("record_batch", batch_seeds()),
        ("frame_reader", frame_seeds()),
        (
            "add_partitions_to_txn_response",
            add_partitions_to_txn_seeds(),
        ),
        ("add_offsets_to_txn_response", add_offsets_to_txn_seeds()),
        ("txn_offset_commit_response", txn_offset_commit_seeds()),
    ]
}

/// A seed for a versioned target: the version byte, then the body.
fn versioned(v: i16, min: i16, body: &[u8]) -> Vec<u8> {
    let mut out = vec![targets::version_byte(v, min)];
    out.extend_from_slice(body);
    out
}

fn api_versions_sample(v: i16) -> ApiVersionsResponse {
    let range = |api_key, min_version, max_version| ApiVersionRange {
        api_key,
        min_version,
        max_version,
    };
    ApiVersionsResponse {
        error_code: 0,
        api_keys: vec![range(0, 3, 11), range(3, 0, 12), range(18, 0, 4)],
        throttle_time_ms: if v >= 1 { 7 } else { 0 },
        finalized_features_epoch: if v >= 3 { 42 } else { -1 },
        finalized_features: if v >= 3 {
            vec![FinalizedFeature {
                name: "transaction.version".into(),
                max_version_level: 2,
                min_version_level: 0,
            }]
        } else {
            vec![]
        },
    }
}

fn api_versions_seeds() -> Seeds {
    use api_versions::MIN_VERSION;
    use kafka_protocol::messages::api_versions_response::{ApiVersion, SupportedFeatureKey};
    let mut out = versioned_seeds(&api_versions::API, |v| {
        let empty = ApiVersionsResponse {
            finalized_features_epoch: -1,
            ..Default::default()
        };
        // An independent encoder, with the tags we skip (supported
        // features, ZK migration) at v3.
        let mut t = kafka_protocol::messages::ApiVersionsResponse::default()
            .with_api_keys(vec![ApiVersion::default()
                .with_api_key(0)
                .with_min_version(3)
                .with_max_version(13)])
            .with_throttle_time_ms(if v >= 1 { 1 } else { 0 });
        if v >= 3 {
            t = t
                .with_supported_features(vec![SupportedFeatureKey::default()
                    .with_name("metadata.version".into())
                    .with_min_version(1)
                    .with_max_version(27)])
                .with_zk_migration_ready(true);
        }
        vec![
            ("ours", ours(|b| api_versions_sample(v).encode(b, v))),
            ("empty", ours(|b| empty.encode(b, v))),
            ("kafka-protocol", theirs(&t, v)),
        ]
    });
    // UNSUPPORTED_VERSION answers to a v3 request: in the v0 layout, and
    // librdkafka's mock's malformed one.
    let mut body = Vec::new();
    ApiVersionsResponse {
        error_code: ErrorCode::UNSUPPORTED_VERSION.0,
        api_keys: vec![ApiVersionRange {
            api_key: 18,
            min_version: 0,
            max_version: 2,
        }],
        ..Default::default()
    }
    .encode(&mut body, 0);
    out.push((
        "seed-v3-unsupported-version-in-v0-layout".into(),
        versioned(3, MIN_VERSION, &body),
    ));
    let mock = [0x00, 0x23, 0x01, 0x00, 0x12, 0, 0, 0, 2, 0, 0, 0, 0];
    out.push((
        "seed-v3-unsupported-version-librdkafka-mock".into(),
        versioned(3, MIN_VERSION, &mock),
    ));
    out
}

/// A Metadata response as `v` carries it (fields `v` lacks at their
/// decoded defaults).
fn metadata_sample(v: i16) -> MetadataResponse {
    let partition = |index, leader_id, error_code| MetadataPartition {
        error_code,
        partition_index: index,
        leader_id,
        leader_epoch: if v >= 7 { 3 } else { -1 },
        replica_nodes: vec![1, 2, 3],
        isr_nodes: vec![1, 2],
        offline_replicas: if v >= 5 { vec![3] } else { vec![] },
    };
    MetadataResponse {
        throttle_time_ms: if v >= 3 { 5 } else { 0 },
        brokers: (1..=3)
            .map(|id| MetadataBroker {
                node_id: id,
                host: "localhost".into(),
                port: 9091 + id,
                rack: (v >= 1 && id != 3).then(|| format!("rack-{id}")),
            })
            .collect(),
        cluster_id: (v >= 2).then(|| "Iq8vX1uhT2CKrGgmMWH6eA".into()),
        controller_id: if v >= 1 { 2 } else { -1 },
        topics: vec![
            MetadataTopic {
                error_code: 0,
                name: Some("orders".into()),
                topic_id: if v >= 10 { [9; 16] } else { [0; 16] },
                is_internal: false,
                partitions: vec![partition(0, 1, 0), partition(1, 2, 0), partition(2, -1, 5)],
                topic_authorized_operations: if v >= 8 { 0x0df8 } else { i32::MIN },
            },
            MetadataTopic {
                error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0,
                name: Some("missing".into()),
                topic_id: [0; 16],
                is_internal: false,
                partitions: vec![],
                topic_authorized_operations: i32::MIN,
            },
        ],
    }
}

fn metadata_seeds() -> Seeds {
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;
    versioned_seeds(&metadata::API, |v| {
        let empty = MetadataResponse {
            controller_id: -1,
            ..Default::default()
        };
        // a tag we do not know, to be skipped by its length
        let topic = MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
            .with_partitions(vec![MetadataResponsePartition::default()
                .with_leader_id(BrokerId(1))
                .with_replica_nodes(vec![BrokerId(1)])
                .with_isr_nodes(vec![BrokerId(1)])])
            .with_unknown_tagged_fields(unknown_tag(v, metadata::API.flexible_from));
        let t = kafka_protocol::messages::MetadataResponse::default()
            .with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(9092)])
            .with_controller_id(BrokerId(1))
            .with_topics(vec![topic]);
        vec![
            ("ours", ours(|b| metadata_sample(v).encode(b, v))),
            ("empty", ours(|b| empty.encode(b, v))),
            ("kafka-protocol", theirs(&t, v)),
        ]
    })
}

fn produce_sample(v: i16) -> ProduceResponse {
    let ok = |index, base_offset| PartitionProduceResponse {
        index,
        error_code: 0,
        base_offset,
        log_append_time_ms: -1,
        log_start_offset: if v >= 5 { 0 } else { -1 },
        record_errors: vec![],
        error_message: None,
        current_leader: None,
    };
    ProduceResponse {
        responses: vec![
            TopicProduceResponse {
                name: "orders".into(),
                partition_responses: vec![
                    ok(0, 1000),
                    PartitionProduceResponse {
                        index: 1,
                        error_code: ErrorCode::NOT_LEADER_OR_FOLLOWER.0,
                        base_offset: -1,
                        log_append_time_ms: -1,
                        log_start_offset: -1,
                        record_errors: vec![],
                        error_message: (v >= 8).then(|| "not the leader".into()),
                        current_leader: (v >= 10).then_some(LeaderIdAndEpoch {
                            leader_id: 2,
                            leader_epoch: 8,
                        }),
                    },
                    PartitionProduceResponse {
                        index: 2,
                        error_code: ErrorCode::INVALID_RECORD.0,
                        base_offset: -1,
                        log_append_time_ms: -1,
                        log_start_offset: -1,
                        record_errors: if v >= 8 {
                            vec![(0, Some("bad key".into())), (3, None)]
                        } else {
                            vec![]
                        },
                        error_message: None,
                        current_leader: None,
                    },
                ],
            },
            TopicProduceResponse {
                name: "logs".into(),
                partition_responses: vec![PartitionProduceResponse {
                    log_append_time_ms: 1_700_000_000_000,
                    ..ok(0, 7)
                }],
            },
        ],
        throttle_time_ms: 12,
        node_endpoints: if v >= 10 {
            vec![NodeEndpoint {
                node_id: 2,
                host: "localhost".into(),
                port: 9093,
                rack: Some("rack-2".into()),
            }]
        } else {
            vec![]
        },
    }
}

fn produce_seeds() -> Seeds {
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse as TheirPartition, TopicProduceResponse as TheirTopic,
    };
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;
    versioned_seeds(&produce::API, |v| {
        let t = kafka_protocol::messages::ProduceResponse::default()
            .with_responses(vec![TheirTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_responses(vec![TheirPartition::default()
                    .with_index(4)
                    .with_base_offset(99)])])
            .with_throttle_time_ms(1);
        vec![
            ("ours", ours(|b| produce_sample(v).encode(b, v))),
            ("empty", ours(|b| ProduceResponse::default().encode(b, v))),
            ("kafka-protocol", theirs(&t, v)),
        ]
    })
}

/// What `encode` appends to an empty buffer.
fn ours(encode: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = Vec::new();
    encode(&mut b);
    b
}

/// A message encoded by `kafka-protocol` at `v`.
fn theirs(m: &impl kafka_protocol::protocol::Encodable, v: i16) -> Vec<u8> {
    let mut b = bytes::BytesMut::new();
    m.encode(&mut b, v).unwrap();
    b.to_vec()
}

/// A tag no decoder of ours knows, for `kafka-protocol` to add in flexible
/// versions: it must be skipped by its length.
const UNKNOWN_TAG: (i32, &[u8]) = (7, b"xyz");

fn init_producer_id_seeds() -> Seeds {
    use kafka_protocol::messages::{InitProducerIdResponse as Theirs, ProducerId};
    versioned_seeds(&init_producer_id::API, |v| {
        let ok = InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: 0,
            producer_id: 4000,
            producer_epoch: 0,
        };
        let fenced = InitProducerIdResponse {
            throttle_time_ms: 7,
            error_code: ErrorCode::PRODUCER_FENCED.0,
            producer_id: -1,
            producer_epoch: -1,
        };
        let mut t = Theirs::default()
            .with_throttle_time_ms(1)
            .with_producer_id(ProducerId(12))
            .with_producer_epoch(5);
        if init_producer_id::is_flexible(v) {
            t = t.with_unknown_tagged_field(UNKNOWN_TAG.0, bytes::Bytes::from(UNKNOWN_TAG.1));
        }
        vec![
            ("ours", ours(|b| ok.encode(b, v))),
            ("fenced", ours(|b| fenced.encode(b, v))),
            ("kafka-protocol", theirs(&t, v)),
        ]
    })
}

/// A FindCoordinator response as `v` carries it: up to v3 one coordinator
/// found, from v4 one found and one not.
fn find_coordinator_sample(v: i16) -> FindCoordinatorResponse {
    if v < 4 {
        return FindCoordinatorResponse {
            throttle_time_ms: if v >= 1 { 4 } else { 0 },
            node_id: 2,
            host: "localhost".into(),
            port: 9093,
            ..Default::default()
        };
    }
    FindCoordinatorResponse {
        throttle_time_ms: 4,
        coordinators: vec![
            Coordinator {
                key: "orders-tx".into(),
                node_id: 2,
                host: "localhost".into(),
                port: 9093,
                error_code: 0,
                error_message: None,
            },
            Coordinator {
                key: "logs-tx".into(),
                node_id: -1,
                host: String::new(),
                port: -1,
                error_code: ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.0,
                error_message: Some("loading".into()),
            },
        ],
        ..Default::default()
    }
}

fn find_coordinator_seeds() -> Seeds {
    use kafka_protocol::messages::find_coordinator_response::Coordinator as TheirCoordinator;
    use kafka_protocol::messages::{BrokerId, FindCoordinatorResponse as Theirs};
    use kafka_protocol::protocol::StrBytes;
    versioned_seeds(&find_coordinator::API, |v| {
        let not_available = FindCoordinatorResponse {
            error_code: ErrorCode::COORDINATOR_NOT_AVAILABLE.0,
            error_message: (v >= 1).then(|| "not yet".into()),
            node_id: -1,
            port: -1,
            ..Default::default()
        };
        let mut t = Theirs::default().with_throttle_time_ms(if v >= 1 { 1 } else { 0 });
        if v < 4 {
            t = t
                .with_node_id(BrokerId(3))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(9094);
        } else {
            let mut c = TheirCoordinator::default()
                .with_key(StrBytes::from_static_str("tx"))
                .with_node_id(BrokerId(3))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(9094)
                .with_error_message(None);
            c.unknown_tagged_fields
                .insert(UNKNOWN_TAG.0, bytes::Bytes::from(UNKNOWN_TAG.1));
            t = t.with_coordinators(vec![c]);
        }
        if find_coordinator::is_flexible(v) {
            t = t.with_unknown_tagged_field(UNKNOWN_TAG.0, bytes::Bytes::from(UNKNOWN_TAG.1));
        }
        let mut out = vec![("ours", ours(|b| find_coordinator_sample(v).encode(b, v)))];
        if v < 4 {
            out.push(("not-available", ours(|b| not_available.encode(b, v))));
        } else {
            let none = FindCoordinatorResponse::default();
            out.push(("empty", ours(|b| none.encode(b, v))));
        }
        out.push(("kafka-protocol", theirs(&t, v)));
        out
    })
}

fn end_txn_seeds() -> Seeds {
    use kafka_protocol::messages::{EndTxnResponse as Theirs, ProducerId};
    versioned_seeds(&end_txn::API, |v| {
        let next = |id, epoch| if v >= 5 { (id, epoch) } else { (-1, -1) };
        let (producer_id, producer_epoch) = next(4000, 3);
        let committed = EndTxnResponse {
            throttle_time_ms: 0,
            error_code: 0,
            producer_id,
            producer_epoch,
        };
        let invalid = EndTxnResponse {
            throttle_time_ms: 2,
            error_code: ErrorCode::INVALID_TXN_STATE.0,
            producer_id: -1,
            producer_epoch: -1,
        };
        let (id, epoch) = next(12, 6);
        let mut t = Theirs::default()
            .with_throttle_time_ms(1)
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch);
        if end_txn::is_flexible(v) {
            t = t.with_unknown_tagged_field(UNKNOWN_TAG.0, bytes::Bytes::from(UNKNOWN_TAG.1));
        }
        vec![
            ("ours", ours(|b| committed.encode(b, v))),
            ("invalid-txn-state", ours(|b| invalid.encode(b, v))),
            ("kafka-protocol", theirs(&t, v)),
        ]
    })
}

fn header_seeds() -> Seeds {
    let mut out = Vec::new();
    for hv in 0..=1i16 {
        let mut b = vec![targets::version_byte(hv, 0)];
        encode_response_header(&mut b, 12345, hv);
        out.push((format!("seed-v{hv}"), b.clone()));
        b.extend_from_slice(b"and a body");
        out.push((format!("seed-v{hv}-with-body"), b));
    }
    // v1 with two tags, to be skipped by length
    let mut b = vec![1];
    b.extend_from_slice(&(-7i32).to_be_bytes());
    b.extend_from_slice(&[2, 0, 1, 0xaa, 5, 3, 1, 2, 3]);
    out.push(("seed-v1-tagged".into(), b));
    out
}

type Rec<'a> = (
    Option<&'a [u8]>,
    Option<&'a [u8]>,
    Vec<(&'a str, Option<&'a [u8]>)>,
);

fn batch(records: &[Rec<'_>], base_ts: i64, edit: impl FnOnce(&mut BatchHeader)) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, (k, v, hs)) in records.iter().enumerate() {
        let (off, ts) = (i as i32, i as i64 * 3);
        let size = record_body_size(off, ts, *k, *v, hs.iter().copied());
        write_record(&mut body, size, off, ts, *k, *v, hs.iter().copied());
    }
    let mut h = BatchHeader::new(
        records.len() as i32,
        base_ts,
        base_ts + 3 * records.len() as i64,
    );
    edit(&mut h);
    let mut out = h.encode(&body).to_vec();
    out.extend_from_slice(&body);
    out
}

fn batch_seeds() -> Seeds {
    let one: Vec<Rec> = vec![(Some(b"key"), Some(b"value"), vec![])];
    let mixed: Vec<Rec> = vec![
        (None, Some(b"keyless"), vec![]),
        (
            Some(b""),
            None,
            vec![("trace", Some(b"abc")), ("empty", None)],
        ),
        (Some(&[0xff; 200]), Some(&[7; 300]), vec![("h", Some(b""))]),
    ];
    let mut out = vec![
        ("seed-empty-stream".to_string(), vec![]),
        (
            "seed-one-record".into(),
            batch(&one, 1_700_000_000_000, |_| {}),
        ),
        ("seed-no-records".into(), batch(&[], 0, |_| {})),
        (
            "seed-mixed-records".into(),
            batch(&mixed, 1_700_000_000_000, |_| {}),
        ),
        (
            "seed-idempotent-transactional".into(),
            batch(&one, 5, |h| {
                h.producer_id = 4000;
                h.producer_epoch = 2;
                h.base_sequence = 17;
                h.attributes = ATTR_TRANSACTIONAL;
            }),
        ),
        (
            "seed-log-append-time-broker-fields".into(),
            batch(&mixed, -1, |h| {
                h.base_offset = 123_456;
                h.partition_leader_epoch = 9;
                h.attributes = ATTR_LOG_APPEND_TIME;
            }),
        ),
    ];
    let mut two = batch(&one, 1, |_| {});
    two.extend(batch(&mixed, 2, |h| h.base_offset = 1));
    out.push(("seed-two-batches".into(), two));
    let many: Vec<Rec> = (0..50).map(|_| (None, Some(&b"v"[..]), vec![])).collect();
    out.push(("seed-fifty-records".into(), batch(&many, 10, |_| {})));
    // an independent encoder
    {
        use kafka_protocol::protocol::StrBytes;
        use kafka_protocol::records::{
            Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let mut headers = kafka_protocol::records::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 1_700_000_000_000,
            key: Some(bytes::Bytes::from_static(b"k")),
            value: Some(bytes::Bytes::from_static(b"v")),
            headers: Default::default(),
        };
        headers.headers.insert(
            StrBytes::from_static_str("h"),
            Some(bytes::Bytes::from_static(b"x")),
        );
        let second = Record {
            offset: 1,
            timestamp: 1_700_000_000_009,
            key: None,
            ..headers.clone()
        };
        let mut b = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut b,
            [&headers, &second],
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        out.push(("seed-kafka-protocol".into(), b.to_vec()));
    }
    out
}

fn frame(stream: &mut Vec<u8>, correlation_id: i32, header_version: i16, body: &[u8]) {
    let at = begin_frame(stream);
    encode_response_header(stream, correlation_id, header_version);
    stream.extend_from_slice(body);
    end_frame(stream, at);
}

fn frame_seeds() -> Seeds {
    let mut api = Vec::new();
    api_versions_sample(3).encode(&mut api, 3);
    let mut meta = Vec::new();
    metadata_sample(12).encode(&mut meta, 12);
    let mut prod = Vec::new();
    produce_sample(11).encode(&mut prod, 11);
    let mut prod3 = Vec::new();
    produce_sample(3).encode(&mut prod3, 3);

    let mut session = Vec::new();
    frame(&mut session, 0, 0, &api);
    frame(&mut session, 1, 1, &meta);
    frame(&mut session, 2, 1, &prod);
    frame(&mut session, 3, 0, &prod3);
    let mut bare = Vec::new();
    frame(&mut bare, -1, 0, &[]);
    let mut big = Vec::new();
    frame(&mut big, 9, 0, &[0x5a; 5000]);

    // (read size byte, cap byte, stream)
    let seeds: [(&str, u8, u8, &[u8]); 6] = [
        ("session-whole-reads", 31, 3, &session),
        ("session-byte-reads", 0, 3, &session),
        ("session-7-byte-reads", 6, 2, &session),
        ("id-only", 3, 0, &bare),
        ("5000-byte-body", 15, 2, &big),
        ("no-frames", 0, 0, &[]),
    ];
    seeds
        .into_iter()
        .map(|(name, read, cap, stream)| {
            let mut b = vec![read, cap];
            b.extend_from_slice(stream);
            (format!("seed-{name}"), b)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Reservations: hostile inputs that claim huge counts and lengths.

/// Writes an array count (`count + 1` compact) in a fixed width, so that
/// the bytes left after it are known before it is written: classic int32,
/// or a 5-byte (padded) unsigned varint.
fn claim(b: &mut Vec<u8>, flexible: bool, count: usize) {
    if flexible {
        let mut v = count as u32 + 1;
        for _ in 0..4 {
            b.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        b.push(v as u8);
    } else {
        b.extend_from_slice(&(count as i32).to_be_bytes());
    }
}

/// Claims `(bytes left after the claim) / divisor` elements.
fn claim_share(b: &mut Vec<u8>, flexible: bool, len: usize, divisor: usize) {
    let width = if flexible { 5 } else { 4 };
    let left = len.saturating_sub(b.len() + width);
    claim(b, flexible, left / divisor);
}

/// Pads to `len` with 0x80: a negative classic length, an endless varint.
fn pad(mut b: Vec<u8>, len: usize) -> Vec<u8> {
    b.resize(len.max(b.len()), 0x80);
    b
}

fn empty_string(b: &mut Vec<u8>, flexible: bool) {
    if flexible {
        b.push(1);
    } else {
        b.extend_from_slice(&[0, 0]);
    }
}

/// Produce: counts claimed for topics and (`depth` 1+, v8+) the first
/// topic's partitions and (2) the first partition's record errors. (Before
/// v8 a partition is fixed-width fields only: the padding would make real
/// partitions, which `floods_of_minimal_elements_cost_their_decoded_size`
/// measures.)
fn hostile_produce(v: i16, len: usize, div: [usize; 3], depth: usize) -> Vec<u8> {
    let f = produce::is_flexible(v);
    let mut b = Vec::new();
    claim_share(&mut b, f, len, div[0]);
    if depth > 0 && v >= 8 {
        empty_string(&mut b, f);
        claim_share(&mut b, f, len, div[1]);
        if depth > 1 && v >= 8 {
            b.extend_from_slice(&[0; 4 + 2 + 8 + 8 + 8]);
            claim_share(&mut b, f, len, div[2]);
        }
    }
    pad(b, len)
}

/// Metadata: the broker count (`depth` 0), or the topics, the first
/// topic's partitions and (2) the first partition's replicas.
fn hostile_metadata(v: i16, len: usize, div: [usize; 3], depth: usize) -> Vec<u8> {
    let f = metadata::is_flexible(v);
    let mut b = Vec::new();
    if v >= 3 {
        b.extend_from_slice(&[0; 4]);
    }
    if depth == 0 {
        claim_share(&mut b, f, len, div[0]);
        return pad(b, len);
    }
    claim(&mut b, f, 0);
    if v >= 2 {
        if f {
            b.push(0);
        } else {
            b.extend_from_slice(&[0xff, 0xff]);
        }
    }
    if v >= 1 {
        b.extend_from_slice(&[0; 4]);
    }
    claim_share(&mut b, f, len, div[0]);
    b.extend_from_slice(&[0, 0]);
    empty_string(&mut b, f);
    if v >= 10 {
        b.extend_from_slice(&[0; 16]);
    }
    if v >= 1 {
        b.push(0);
    }
    claim_share(&mut b, f, len, div[1]);
    if depth > 1 {
        b.extend_from_slice(&[0; 10]);
        if v >= 7 {
            b.extend_from_slice(&[0; 4]);
        }
        claim_share(&mut b, f, len, div[2]);
    }
    pad(b, len)
}

/// ApiVersions: the key count (`depth` 0, and always before v3), or the
/// finalized features' count inside their tag.
fn hostile_api_versions(v: i16, len: usize, div: [usize; 3], depth: usize) -> Vec<u8> {
    let f = api_versions::is_flexible(v);
    let mut b = vec![0, 0];
    if depth == 0 || !f {
        claim_share(&mut b, f, len, div[0]);
        return pad(b, len);
    }
    claim(&mut b, f, 0);
    b.extend_from_slice(&[0; 4]); // throttle
    b.extend_from_slice(&[1, 2]); // one tag: 2, the finalized features
    let size = len.saturating_sub(b.len() + 3) as u32;
    b.extend_from_slice(&[
        (size as u8 & 0x7f) | 0x80,
        ((size >> 7) as u8 & 0x7f) | 0x80,
        (size >> 14) as u8,
    ]);
    let mut tag = Vec::new();
    claim_share(&mut tag, true, len - b.len(), div[0]);
    b.extend_from_slice(&tag);
    pad(b, len)
}

/// FindCoordinator: from v4, the coordinator count (before v4 there is no
/// array; the padding is refused where a string length or varint starts).
fn hostile_find_coordinator(v: i16, len: usize, div: [usize; 3], _: usize) -> Vec<u8> {
    let mut b = vec![0; 4]; // throttle time (v0: error code and node id)
    if v >= 4 {
        claim_share(&mut b, find_coordinator::is_flexible(v), len, div[0]);
    }
    pad(b, len)
}

/// A batch (with a good CRC) claiming a record count, whose one record
/// claims a header count.
fn hostile_batch(_: i16, len: usize, div: [usize; 3], _: usize) -> Vec<u8> {
    let section = len.saturating_sub(61);
    let mut r = Vec::new();
    let z = (section.saturating_sub(3) as u32) << 1; // the record's length, zigzag, 3 bytes
    r.extend_from_slice(&[
        (z as u8 & 0x7f) | 0x80,
        ((z >> 7) as u8 & 0x7f) | 0x80,
        (z >> 14) as u8,
    ]);
    r.extend_from_slice(&[0, 0, 0, 1, 1]); // attributes, deltas, null key and value
    let z = ((section.saturating_sub(r.len() + 5) / div[1]) as u32) << 1;
    for i in 0..4 {
        r.push(((z >> (7 * i)) as u8 & 0x7f) | 0x80);
    }
    r.push((z >> 28) as u8);
    r.resize(section, 0x80);
    let mut h = BatchHeader::new(1, 0, 0);
    h.record_count = ((section / div[0]) as i32).max(1);
    let mut out = h.encode(&r).to_vec();
    out.extend_from_slice(&r);
    out
}

type Hostile = fn(i16, usize, [usize; 3], usize) -> Vec<u8>;

/// Divisors tried for each claim: `left / divisor` elements.
const DIVISORS: [usize; 20] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 18, 22, 24, 30, 33, 36,
];

/// The largest peak of heap bytes that decoding hostile `len`-byte inputs
/// reached, over versions, structures and claims (the worst claims found on
/// 4 KiB inputs, then at `len`). Most fail; a claim whose elements are
/// fixed-width fields only (ApiVersions v0-v2's keys) may be met by the
/// padding and decode, which is then the cost of real elements.
fn worst_peak(
    versions: std::ops::RangeInclusive<i16>,
    len: usize,
    make: Hostile,
    decode: fn(&[u8], i16),
) -> (usize, i16) {
    let mut worst = (0, 0);
    for v in versions {
        for depth in 0..3 {
            let mut best = (0, [1; 3]);
            for a in DIVISORS {
                for b in DIVISORS {
                    for c in DIVISORS {
                        let input = make(v, 4096, [a, b, c], depth);
                        let p = peak(|| decode(&input, v));
                        if p > best.0 {
                            best = (p, [a, b, c]);
                        }
                    }
                }
            }
            let input = make(v, len, best.1, depth);
            assert_eq!(input.len(), len);
            let p = peak(|| decode(&input, v));
            if p > worst.0 {
                worst = (p, v);
            }
        }
    }
    worst
}

/// Each claimed count may reserve at most the bytes that remain, so a
/// hostile input reserves at most its length once per nesting level of
/// arrays (3 in Metadata and Produce, 2 in a batch, 1 in FindCoordinator),
/// where a count was once trusted up to 27 times the input (Produce:
/// 96-byte partition structs and 32-byte record errors claimed at 22 and 5
/// bytes each).
#[test]
fn hostile_counts_reserve_at_most_the_input_per_nesting_level() {
    type Case = (
        &'static str,
        std::ops::RangeInclusive<i16>,
        Hostile,
        fn(&[u8], i16),
        usize,
    );
    let cases: [Case; 5] = [
        (
            "ApiVersions",
            0..=3,
            hostile_api_versions,
            |b, v| drop(ApiVersionsResponse::decode(b, v)),
            2,
        ),
        (
            "Metadata",
            0..=12,
            hostile_metadata,
            |b, v| drop(MetadataResponse::decode(b, v)),
            3,
        ),
        (
            "Produce",
            3..=11,
            hostile_produce,
            |b, v| drop(ProduceResponse::decode(b, v)),
            3,
        ),
        (
            "FindCoordinator",
            find_coordinator::API.versions(),
            hostile_find_coordinator,
            |b, v| drop(FindCoordinatorResponse::decode(b, v)),
            1,
        ),
        (
            "RecordBatch",
            0..=0,
            hostile_batch,
            |b, _| drop(decode_batches(b)),
            2,
        ),
    ];
    let len = 1 << 20;
    for (name, versions, make, decode, levels) in cases {
        let (p, v) = worst_peak(versions, len, make, decode);
        println!(
            "{name}: {len}-byte hostile input, peak {p} heap bytes ({:.2}x) at v{v}",
            p as f64 / len as f64
        );
        assert!(
            p <= levels * len + 4096,
            "{name} v{v}: {p} bytes for a {len}-byte input"
        );
    }
}

/// Lengths of strings and bytes are checked against the input before
/// anything is copied: a claim past the end fails with nothing allocated.
#[test]
fn hostile_string_and_bytes_lengths_allocate_nothing() {
    let mut compact = Vec::new();
    put_uvarint(&mut compact, u32::MAX);
    let classic = i32::MAX.to_be_bytes();
    let p = peak(|| {
        assert!(Decoder::new(&compact, true).string().is_err());
        assert!(Decoder::new(&compact, true).nullable_bytes().is_err());
        assert!(Decoder::new(&classic, false).bytes().is_err());
        assert!(Decoder::new(&[0x7f, 0xff], false).string().is_err());
    });
    assert_eq!(p, 0);
    // A broker whose host claims 32767 bytes in a 64-byte Metadata v0 body.
    let mut body = Vec::new();
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&0x7fffi16.to_be_bytes());
    body.resize(64, b'h');
    let p = peak(|| assert!(MetadataResponse::decode(&body, 0).is_err()));
    assert!(p <= 64, "{p}");
}

/// What real elements cost: inputs made of the smallest valid elements
/// decode to their in-memory size, which no bound on reservations changes
/// (only a smaller frame does). Growth toward a known count keeps the peak
/// within 1.5 times that size (the last step's old and new blocks).
#[test]
fn floods_of_minimal_elements_cost_their_decoded_size() {
    let len = 1 << 20;
    // Produce v9: empty topics, 3 bytes each (the worst ratio there is).
    let topics = (len - 10) / 3;
    let mut v9 = Vec::new();
    claim(&mut v9, true, topics);
    for _ in 0..topics {
        v9.extend_from_slice(&[1, 1, 0]);
    }
    v9.extend_from_slice(&[0; 5]); // throttle time, tag buffer
                                   // Produce v3: one topic of 22-byte partitions.
    let partitions = (len - 16) / 22;
    let mut v3 = vec![0, 0, 0, 1, 0, 0];
    claim(&mut v3, false, partitions);
    v3.resize(v3.len() + 22 * partitions, 0);
    v3.extend_from_slice(&[0; 4]);
    let cases = [
        (
            "v9 empty topics",
            9,
            &v9,
            topics,
            std::mem::size_of::<TopicProduceResponse>(),
        ),
        (
            "v3 partitions",
            3,
            &v3,
            partitions,
            std::mem::size_of::<PartitionProduceResponse>(),
        ),
    ];
    for (what, v, input, n, size) in cases {
        let mut ok = false;
        let p = peak(|| ok = ProduceResponse::decode(input, v).is_ok());
        assert!(ok, "{what}");
        println!(
            "Produce {what}: {n} in {} bytes, {size} bytes each decoded: peak {p} ({:.1}x the input, {:.2}x the decoded size)",
            input.len(),
            p as f64 / input.len() as f64,
            p as f64 / (n * size) as f64,
        );
        assert!(2 * p <= 3 * n * size + 4096, "{what}: {p}");
    }
}

// ---------------------------------------------------------------------------
// Seeds of the transactional APIs' responses.

use kafka_producer::protocol::messages::partition_errors::{PartitionError, TopicPartitionErrors};
use kafka_producer::protocol::messages::{
    add_offsets_to_txn, add_partitions_to_txn, txn_offset_commit,
};

/// Seeds `seed-v{v}-{what}` for each version of `api`, from the named
/// bodies `bodies(v)` gives.
fn versioned_seeds(
    api: &Api,
    mut bodies: impl FnMut(i16) -> Vec<(&'static str, Vec<u8>)>,
) -> Seeds {
    let mut out = Vec::new();
    for v in api.versions() {
        for (what, body) in bodies(v) {
            out.push((
                format!("seed-v{v}-{what}"),
                versioned(v, api.min_version, &body),
            ));
        }
    }
    out
}

/// A tag we do not know, to be skipped by its length (flexible versions).
fn unknown_tag(v: i16, flexible_from: i16) -> BTreeMap<i32, bytes::Bytes> {
    if v >= flexible_from {
        BTreeMap::from([(UNKNOWN_TAG.0, bytes::Bytes::from_static(UNKNOWN_TAG.1))])
    } else {
        BTreeMap::new()
    }
}

/// Per topic, per partition errors, as AddPartitionsToTxn and
/// TxnOffsetCommit answer them.
fn partition_errors_sample() -> Vec<TopicPartitionErrors> {
    let p = |partition_index, error_code| PartitionError {
        partition_index,
        error_code,
    };
    vec![
        TopicPartitionErrors {
            name: "orders".into(),
            partitions: vec![
                p(0, 0),
                p(1, ErrorCode::CONCURRENT_TRANSACTIONS.0),
                p(2, ErrorCode::PRODUCER_FENCED.0),
            ],
        },
        TopicPartitionErrors {
            name: "logs".into(),
            partitions: vec![],
        },
    ]
}

fn add_partitions_to_txn_seeds() -> Seeds {
    use add_partitions_to_txn::{AddPartitionsToTxnResponse, API};
    use kafka_protocol::messages::add_partitions_to_txn_response as kr;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;
    versioned_seeds(&API, |v| {
        let mut ours = Vec::new();
        AddPartitionsToTxnResponse {
            throttle_time_ms: 3,
            results_by_topic: partition_errors_sample(),
        }
        .encode(&mut ours, v);
        let mut empty = Vec::new();
        AddPartitionsToTxnResponse::default().encode(&mut empty, v);
        let t = kafka_protocol::messages::AddPartitionsToTxnResponse::default()
            .with_throttle_time_ms(1)
            .with_results_by_topic_v3_and_below(vec![kr::AddPartitionsToTxnTopicResult::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_results_by_partition(vec![kr::AddPartitionsToTxnPartitionResult::default(
                )
                .with_partition_index(4)
                .with_partition_error_code(ErrorCode::INVALID_PRODUCER_EPOCH.0)
                .with_unknown_tagged_fields(unknown_tag(v, API.flexible_from))])]);
        vec![
            ("ours", ours),
            ("empty", empty),
            ("kafka-protocol", theirs(&t, v)),
        ]
    })
}

fn add_offsets_to_txn_seeds() -> Seeds {
    use add_offsets_to_txn::{AddOffsetsToTxnResponse, API};
    versioned_seeds(&API, |v| {
        let mut ours = Vec::new();
        AddOffsetsToTxnResponse {
            throttle_time_ms: 3,
            error_code: ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.0,
        }
        .encode(&mut ours, v);
        let mut empty = Vec::new();
        AddOffsetsToTxnResponse::default().encode(&mut empty, v);
        let t = kafka_protocol::messages::AddOffsetsToTxnResponse::default()
            .with_throttle_time_ms(1)
            .with_unknown_tagged_fields(unknown_tag(v, API.flexible_from));
        vec![
            ("ours", ours),
            ("empty", empty),
            ("kafka-protocol", theirs(&t, v)),
        ]
    })
}

fn txn_offset_commit_seeds() -> Seeds {
    use kafka_protocol::messages::txn_offset_commit_response as kr;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;
    use txn_offset_commit::{TxnOffsetCommitResponse, API};
    versioned_seeds(&API, |v| {
        let mut ours = Vec::new();
        TxnOffsetCommitResponse {
            throttle_time_ms: 3,
            topics: partition_errors_sample(),
        }
        .encode(&mut ours, v);
        let mut empty = Vec::new();
        TxnOffsetCommitResponse::default().encode(&mut empty, v);
        let t = kafka_protocol::messages::TxnOffsetCommitResponse::default()
            .with_throttle_time_ms(1)
            .with_topics(vec![kr::TxnOffsetCommitResponseTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![kr::TxnOffsetCommitResponsePartition::default()
                    .with_partition_index(4)
                    .with_error_code(ErrorCode::ILLEGAL_GENERATION.0)])
                .with_unknown_tagged_fields(unknown_tag(v, API.flexible_from))]);
        vec![
            ("ours", ours),
            ("empty", empty),
            ("kafka-protocol", theirs(&t, v)),
        ]
    })
}
