#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kafka_producer_fuzz::txn_offset_commit_response(data);
});
