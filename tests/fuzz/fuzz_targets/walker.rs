//! cargo fuzz target `walker`: see `relaymap_fuzz::walker_one` (tests/fuzz/src).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    relaymap_fuzz::walker_one(data);
});
