//! cargo fuzz target `info`: see `relaymap_fuzz::info_one` (tests/fuzz/src).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    relaymap_fuzz::info_one(data);
});
