//! The kernel/user ABI, version 2: the Rust side of
//! `include/relaymap_abi.h`.
//!
//! Everything bindgen can express (structs, integer and string macros) is
//! generated into `abi_sys.rs` and re-exported here unchanged, with the C
//! names. This file adds only what bindgen cannot express: the ioctl command
//! numbers (function-like `_IOC` macros), computed from the header's
//! definition `_IOC(dir, RELAYMAP_IOC_MAGIC, nr, RELAYMAP_*_SIZE_VER0)`, and
//! a few `usize` conveniences. `tests/abi_drift.rs` compiles the header with
//! the C compiler and compares every struct size, field offset, constant and
//! ioctl number with this module; `tests/abi_bindgen.rs` regenerates
//! `abi_sys.rs` and fails on a diff.

pub use crate::abi_sys::*;

// asm-generic/ioctl.h (x86, arm64, riscv, ...: the generic layout).
const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
/// `_IOC_NONE`.
pub const IOC_NONE: u32 = 0;
/// `_IOC_WRITE`.
pub const IOC_WRITE: u32 = 1;
/// `_IOC_READ`.
pub const IOC_READ: u32 = 2;

/// `_IOC(dir, RELAYMAP_IOC_MAGIC, nr, size)`.
pub const fn relaymap_ioc(dir: u32, nr: u32, size: u32) -> u32 {
    (dir << IOC_DIRSHIFT)
        | (RELAYMAP_IOC_MAGIC << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | (size << IOC_SIZESHIFT)
}

/// `_IOC_NR(cmd)`: the number the kernel dispatches on.
pub const fn ioc_nr(cmd: u32) -> u32 {
    (cmd >> IOC_NRSHIFT) & ((1 << IOC_NRBITS) - 1)
}

/// `_IOC_SIZE(cmd)`: the first-version size encoded in the command.
pub const fn ioc_size(cmd: u32) -> u32 {
    (cmd >> IOC_SIZESHIFT) & ((1 << IOC_SIZEBITS) - 1)
}

const RW: u32 = IOC_READ | IOC_WRITE;

/// `RELAYMAP_IOC_GET_VERSION`: `_IO(RELAYMAP_IOC_MAGIC, 0x20)`, on
/// `/dev/relaymap`; returns the module's ABI version.
pub const RELAYMAP_IOC_GET_VERSION: u32 = relaymap_ioc(IOC_NONE, 0x20, 0);
/// `RELAYMAP_IOC_LIST`: `RELAYMAP_IOC_RW(0x21, RELAYMAP_LIST_SIZE_VER0)`.
pub const RELAYMAP_IOC_LIST: u32 = relaymap_ioc(RW, 0x21, RELAYMAP_LIST_SIZE_VER0);
/// `RELAYMAP_IOC_OPEN_CHANNEL`: `RELAYMAP_IOC_W(0x22, ..._SIZE_VER0)`.
pub const RELAYMAP_IOC_OPEN_CHANNEL: u32 =
    relaymap_ioc(IOC_WRITE, 0x22, RELAYMAP_OPEN_CHANNEL_SIZE_VER0);
/// `RELAYMAP_IOC_GET_INFO`: `RELAYMAP_IOC_RW(0x01, RELAYMAP_INFO_SIZE_VER0)`.
pub const RELAYMAP_IOC_GET_INFO: u32 = relaymap_ioc(RW, 0x01, RELAYMAP_INFO_SIZE_VER0);
/// `RELAYMAP_IOC_GET_CURSOR`: `RELAYMAP_IOC_RW(0x02, ..._SIZE_VER0)`.
pub const RELAYMAP_IOC_GET_CURSOR: u32 = relaymap_ioc(RW, 0x02, RELAYMAP_CURSOR_SIZE_VER0);
/// `RELAYMAP_IOC_PUT_CONSUMED`: `RELAYMAP_IOC_W(0x03, ..._SIZE_VER0)`.
pub const RELAYMAP_IOC_PUT_CONSUMED: u32 =
    relaymap_ioc(IOC_WRITE, 0x03, RELAYMAP_CONSUME_SIZE_VER0);
/// `RELAYMAP_IOC_FLUSH`: `RELAYMAP_IOC_W(0x04, RELAYMAP_FLUSH_SIZE_VER0)`.
pub const RELAYMAP_IOC_FLUSH: u32 = relaymap_ioc(IOC_WRITE, 0x04, RELAYMAP_FLUSH_SIZE_VER0);
/// `RELAYMAP_IOC_RESET`: `_IO(RELAYMAP_IOC_MAGIC, 0x05)`.
pub const RELAYMAP_IOC_RESET: u32 = relaymap_ioc(IOC_NONE, 0x05, 0);
/// `RELAYMAP_IOC_GET_STATS`: `RELAYMAP_IOC_RW(0x06, ..._SIZE_VER0)`.
pub const RELAYMAP_IOC_GET_STATS: u32 = relaymap_ioc(RW, 0x06, RELAYMAP_STATS_SIZE_VER0);
/// `RELAYMAP_IOC_GET_CURSORS`: `RELAYMAP_IOC_RW(0x07, ..._SIZE_VER0)`.
pub const RELAYMAP_IOC_GET_CURSORS: u32 = relaymap_ioc(RW, 0x07, RELAYMAP_CURSORS_SIZE_VER0);
/// `RELAYMAP_IOC_OPEN_CONSUMER`: `RELAYMAP_IOC_RW(0x08, ..._SIZE_VER0)`.
pub const RELAYMAP_IOC_OPEN_CONSUMER: u32 =
    relaymap_ioc(RW, 0x08, RELAYMAP_OPEN_CONSUMER_SIZE_VER0);

/// Every ioctl command of the header, by its C name (the drift test checks
/// this list against the header in both directions).
pub const IOCTLS: &[(&str, u32)] = &[
    ("RELAYMAP_IOC_GET_VERSION", RELAYMAP_IOC_GET_VERSION),
    ("RELAYMAP_IOC_LIST", RELAYMAP_IOC_LIST),
    ("RELAYMAP_IOC_OPEN_CHANNEL", RELAYMAP_IOC_OPEN_CHANNEL),
    ("RELAYMAP_IOC_GET_INFO", RELAYMAP_IOC_GET_INFO),
    ("RELAYMAP_IOC_GET_CURSOR", RELAYMAP_IOC_GET_CURSOR),
    ("RELAYMAP_IOC_PUT_CONSUMED", RELAYMAP_IOC_PUT_CONSUMED),
    ("RELAYMAP_IOC_FLUSH", RELAYMAP_IOC_FLUSH),
    ("RELAYMAP_IOC_RESET", RELAYMAP_IOC_RESET),
    ("RELAYMAP_IOC_GET_STATS", RELAYMAP_IOC_GET_STATS),
    ("RELAYMAP_IOC_GET_CURSORS", RELAYMAP_IOC_GET_CURSORS),
    ("RELAYMAP_IOC_OPEN_CONSUMER", RELAYMAP_IOC_OPEN_CONSUMER),
];

/// `sizeof(struct relaymap_subbuf_header)`.
pub const SUBBUF_HEADER_SIZE: usize = core::mem::size_of::<relaymap_subbuf_header>();
/// `sizeof(struct relaymap_record)`.
pub const RECORD_HEADER_SIZE: usize = core::mem::size_of::<relaymap_record>();
/// [`RELAYMAP_RECORD_ALIGN`] as `usize`.
pub const RECORD_ALIGN: usize = RELAYMAP_RECORD_ALIGN as usize;
/// `sizeof(struct relaymap_loadgen_payload)`.
pub const LOADGEN_PAYLOAD_SIZE: usize = core::mem::size_of::<relaymap_loadgen_payload>();
/// [`RELAYMAP_DEVICE_PATH`] without its NUL.
pub const DEVICE_PATH: &str = "/dev/relaymap";

/// `ALIGN(n, RELAYMAP_RECORD_ALIGN)`.
pub const fn record_align(n: usize) -> usize {
    (n + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}

/// Byte offsets inside [`relaymap_subbuf_header`], for the walker (which
/// reads the mapped header field by field, never as a Rust reference).
pub mod off {
    use super::relaymap_subbuf_header as H;
    use core::mem::offset_of;
    /// `magic`.
    pub const MAGIC: usize = offset_of!(H, magic);
    /// `uuid`.
    pub const UUID: usize = offset_of!(H, uuid);
    /// `stream_id`.
    pub const STREAM_ID: usize = offset_of!(H, stream_id);
    /// `stream_instance_id`.
    pub const STREAM_INSTANCE_ID: usize = offset_of!(H, stream_instance_id);
    /// `timestamp_begin`.
    pub const TIMESTAMP_BEGIN: usize = offset_of!(H, timestamp_begin);
    /// `timestamp_end`.
    pub const TIMESTAMP_END: usize = offset_of!(H, timestamp_end);
    /// `content_size` (bits).
    pub const CONTENT_SIZE: usize = offset_of!(H, content_size);
    /// `packet_size` (bits).
    pub const PACKET_SIZE: usize = offset_of!(H, packet_size);
    /// `packet_seq_num`.
    pub const PACKET_SEQ_NUM: usize = offset_of!(H, packet_seq_num);
    /// `events_discarded`.
    pub const EVENTS_DISCARDED: usize = offset_of!(H, events_discarded);
    /// `cpu_id`.
    pub const CPU_ID: usize = offset_of!(H, cpu_id);
    /// `flags`.
    pub const FLAGS: usize = offset_of!(H, flags);
    /// `events_rejected`.
    pub const EVENTS_REJECTED: usize = offset_of!(H, events_rejected);
    /// `abi_version`.
    pub const ABI_VERSION: usize = offset_of!(H, abi_version);
    /// `header_size`.
    pub const HEADER_SIZE: usize = offset_of!(H, header_size);
    /// `reserved`.
    pub const RESERVED: usize = offset_of!(H, reserved);
    /// `commit`.
    pub const COMMIT: usize = offset_of!(H, commit);
}

const _: () = assert!(SUBBUF_HEADER_SIZE == 112);
const _: () = assert!(RECORD_HEADER_SIZE == 16);
const _: () = assert!(off::COMMIT.is_multiple_of(8) && off::PACKET_SEQ_NUM.is_multiple_of(8));
const _: () = assert!(ioc_size(RELAYMAP_IOC_GET_INFO) == RELAYMAP_INFO_SIZE_VER0);
