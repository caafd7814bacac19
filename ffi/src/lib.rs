//! librelaymap: the C API of relaymap, over the Rust SDK (crate `relaymap`,
//! imported here as `sdk`).
//!
//! The header `include/relaymap.h` is generated from this crate by cbindgen
//! (`ffi/cbindgen.toml`) and committed; `tests/header.rs` regenerates it and
//! fails on any difference (`RELAYMAP_BLESS=1 cargo test -p relaymap-ffi
//! --test header` rewrites it).
//!
//! Conventions, the same in every export:
//!
//! * Fallible functions return a [`relaymap_result`]; `RELAYMAP_OK` is 0.
//!   On failure a message for the calling thread is kept for
//!   `relaymap_last_error()` (and the OS error number, if any, for
//!   `relaymap_last_os_error()`).
//! * Every export runs behind a panic boundary: a panic in the library
//!   becomes `RELAYMAP_ERR_PANIC`, never an unwind into C.
//! * A NULL pointer where one is required is `RELAYMAP_ERR_NULL_ARGUMENT`.
//!   Any other pointer must be valid for its type (the C contract; nothing
//!   can check that).
//! * Handles are opaque; whoever gets one from a `*_open`/`*_create`
//!   function owns it and frees it with the matching `*_close`/`*_free`.
//! * The model is the SDK's: a channel (`channel`) observes and controls,
//!   per-CPU readers (`reader`, each an SDK `CpuReader`) consume; records
//!   are walked by the SDK's one walker (`records`).
#![allow(non_camel_case_types)]
// The pointer contracts are documented once, in the crate docs and the
// header's introduction, and per argument where they differ.
#![allow(clippy::missing_safety_doc)]
#![warn(missing_docs)]

pub mod boundary;
pub mod channel;
pub mod reader;
pub mod records;
#[cfg(feature = "sim")]
pub mod sim;

pub use boundary::relaymap_result;

use std::ffi::c_char;

/// `"MAJOR.MINOR.PATCH\0"` of this library, for the version functions.
static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The version of the library that is linked, `"MAJOR.MINOR.PATCH"` (a
/// static string, never NULL). Compare it with `RELAYMAP_VERSION_STRING`,
/// the version of the header the program was compiled with.
#[no_mangle]
pub extern "C" fn relaymap_version() -> *const c_char {
    boundary::guard_value(VERSION.as_ptr().cast(), || VERSION.as_ptr().cast())
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    /// The header's RELAYMAP_VERSION_STRING (generated from Cargo.toml and
    /// checked against it by tests/header.rs) is the library's version.
    #[test]
    fn version_matches_header() {
        // SAFETY: relaymap_version returns a static NUL-terminated string.
        let lib = unsafe { CStr::from_ptr(super::relaymap_version()) };
        let h = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../include/relaymap.h"
        ))
        .expect("read include/relaymap.h");
        let want = format!(
            "#define RELAYMAP_VERSION_STRING \"{}\"",
            lib.to_str().unwrap()
        );
        assert!(h.lines().any(|l| l == want), "relaymap.h lacks {want}");
        assert_eq!(lib.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
