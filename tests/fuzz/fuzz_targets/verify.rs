//! cargo fuzz target `verify`: see `relaymap_fuzz::verify_one` (tests/fuzz/src).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    relaymap_fuzz::verify_one(data);
});
