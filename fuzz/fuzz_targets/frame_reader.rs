#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kafka_producer_fuzz::frame_reader(data);
});
