//! cargo fuzz target `walker_raw`: see `relaymap_fuzz::walker_raw_one`
//! (tests/fuzz/src/walk.rs; needs `--cfg fuzzing`, which cargo-fuzz sets).
#![no_main]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    relaymap_fuzz::walker_raw_one(data);
});

// A stable `cargo build` has no `relaymap::fuzzing` seam: nothing to run.
#[cfg(not(fuzzing))]
libfuzzer_sys::fuzz_target!(|_data: &[u8]| {});
