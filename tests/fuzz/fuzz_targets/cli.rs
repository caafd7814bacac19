//! cargo fuzz target `cli`: see `relaymap_fuzz::cli_one` (tests/fuzz/src).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    relaymap_fuzz::cli_one(data);
});
