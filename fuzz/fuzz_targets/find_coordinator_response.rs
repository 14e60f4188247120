#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kafka_producer_fuzz::find_coordinator_response(data);
});
