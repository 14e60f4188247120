#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kafka_producer_fuzz::init_producer_id_response(data);
});
