//! cargo fuzz target `merge`: see `relaymap_fuzz::merge_one` (tests/fuzz/src).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    relaymap_fuzz::merge_one(data);
});
