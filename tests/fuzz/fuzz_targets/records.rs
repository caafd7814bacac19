//! cargo fuzz target `records`: see `relaymap_fuzz::records_one` (tests/fuzz/src).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    relaymap_fuzz::records_one(data);
});
