#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kafka_producer_fuzz::end_txn_response(data);
});
