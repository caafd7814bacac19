//! Rust mirror of `include/relaymap_abi.h`, the one definition of the
//! kernel/user ABI.
//!
//! Names follow the C header so that the drift test (`tests/abi_drift.rs`,
//! which compiles the header with `cc` and compares every size, offset,
//! constant and ioctl number) reads one-to-one. Everything here is plain
//! data: the safe API lives in [`crate::Channel`].
#![allow(non_camel_case_types)]

/// Bumped on any incompatible change; `GET_INFO` reports the kernel's.
pub const RELAYMAP_ABI_VERSION: u32 = 1;
/// `"RMSB"` little-endian: first word of every sub-buffer header.
pub const RELAYMAP_SUBBUF_MAGIC: u32 = 0x4253_4d52;
/// Maximum length of a channel name, including the NUL.
pub const RELAYMAP_NAME_MAX: usize = 64;
/// CPUs described by [`relaymap_info::cpu_mask`].
pub const RELAYMAP_MAX_CPUS: usize = 1024;

/// Sub-buffer closed early by a flush.
pub const RELAYMAP_SB_FLUSHED: u32 = 1 << 0;
/// Records were dropped since the previous sub-buffer closed.
pub const RELAYMAP_SB_DROPS: u32 = 1 << 1;

/// At offset 0 of every sub-buffer, written by the module's `subbuf_start`
/// callback on the CPU that owns the buffer. `commit` is 0 while the
/// sub-buffer is open and `seq + 1` (stored with release ordering) once
/// every other field is final.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct relaymap_subbuf_header {
    /// [`RELAYMAP_SUBBUF_MAGIC`].
    pub magic: u32,
    /// [`RELAYMAP_ABI_VERSION`].
    pub abi_version: u16,
    /// Bytes reserved for this header: the payload starts here.
    pub header_size: u16,
    /// CPU that owns this buffer.
    pub cpu: u32,
    /// `RELAYMAP_SB_*`.
    pub flags: u32,
    /// Sub-buffer number on this CPU, from 0 (resets on RESET).
    pub seq: u64,
    /// CLOCK_MONOTONIC when the sub-buffer was opened.
    pub ts_begin_ns: u64,
    /// CLOCK_MONOTONIC when it was closed.
    pub ts_end_ns: u64,
    /// Bytes of data after the header.
    pub payload_size: u32,
    /// Unused bytes at the end of the sub-buffer.
    pub padding: u32,
    /// Cumulative records dropped on this CPU at close.
    pub records_dropped: u64,
    /// 0 while open; `seq + 1` once closed (release).
    pub commit: u64,
}

/// Records are aligned to this many bytes inside a payload.
pub const RELAYMAP_RECORD_ALIGN: usize = 8;

/// Header of one framed record; `size - 16` data bytes follow.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct relaymap_record {
    /// Bytes of this record, header included, unaligned.
    pub size: u32,
    /// `RELAYMAP_REC_*` or a writer's own type `>= 0x100`.
    pub type_: u16,
    /// Reserved, 0.
    pub flags: u16,
    /// CLOCK_MONOTONIC when the record was written.
    pub ts_ns: u64,
}

/// Record data: text, no trailing NUL.
pub const RELAYMAP_REC_PRINTF: u16 = 1;
/// Record data: [`relaymap_loadgen_payload`] + fill.
pub const RELAYMAP_REC_LOADGEN: u16 = 2;
/// First record type free for other modules.
pub const RELAYMAP_REC_USER: u16 = 0x100;

/// Data of a load generator record, followed by fill bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct relaymap_loadgen_payload {
    /// Write attempt number on that CPU, from 0.
    pub seq: u64,
    /// CPU of the writer.
    pub cpu: u32,
    /// FNV-1a 32 over seq (8 LE bytes), cpu (4 LE bytes), then the fill.
    pub checksum: u32,
}

/// FNV-1a 32 offset basis.
pub const RELAYMAP_FNV_OFFSET: u32 = 0x811c_9dc5;
/// FNV-1a 32 prime.
pub const RELAYMAP_FNV_PRIME: u32 = 0x0100_0193;

/// ioctl "type" byte of every relaymap ioctl.
pub const RELAYMAP_IOC_MAGIC: u8 = 0xB7;

/// [`relaymap_info::flags`]: flight-recorder mode.
pub const RELAYMAP_INFO_OVERWRITE: u32 = 1 << 0;

/// `GET_INFO`: geometry and identity of the channel.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct relaymap_info {
    /// `sizeof` the caller was compiled with.
    pub size: u32,
    /// [`RELAYMAP_ABI_VERSION`] of the module.
    pub abi_version: u32,
    /// Bytes reserved per sub-buffer for the header.
    pub header_size: u32,
    /// `RELAYMAP_INFO_*`.
    pub flags: u32,
    /// Bytes per sub-buffer.
    pub subbuf_size: u64,
    /// Sub-buffers per CPU.
    pub n_subbufs: u64,
    /// Bytes to mmap per CPU file.
    pub alloc_size: u64,
    /// CPUs the kernel can have; bits beyond are 0.
    pub nr_cpu_ids: u32,
    /// Largest framed record a writer may emit.
    pub max_record_size: u32,
    /// Channel name, NUL-terminated.
    pub name: [u8; RELAYMAP_NAME_MAX],
    /// Bit `c` set: file `cpu<c>` exists.
    pub cpu_mask: [u64; RELAYMAP_MAX_CPUS / 64],
}

impl Default for relaymap_info {
    fn default() -> Self {
        Self {
            size: core::mem::size_of::<Self>() as u32,
            abi_version: 0,
            header_size: 0,
            flags: 0,
            subbuf_size: 0,
            n_subbufs: 0,
            alloc_size: 0,
            nr_cpu_ids: 0,
            max_record_size: 0,
            name: [0; RELAYMAP_NAME_MAX],
            cpu_mask: [0; RELAYMAP_MAX_CPUS / 64],
        }
    }
}

/// `GET_CURSOR`: one CPU's published counts.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct relaymap_cursor {
    /// `sizeof` the caller was compiled with.
    pub size: u32,
    /// In: the CPU.
    pub cpu: u32,
    /// Sub-buffers closed and committed.
    pub produced: u64,
    /// Sub-buffers handed back.
    pub consumed: u64,
    /// Records dropped on this CPU (no-overwrite).
    pub records_dropped: u64,
    /// Unconsumed sub-buffers overwritten (overwrite).
    pub subbufs_lapped: u64,
}

/// `PUT_CONSUMED`: hand `count` sub-buffers of one CPU back.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct relaymap_consume {
    /// `sizeof` the caller was compiled with.
    pub size: u32,
    /// In: the CPU.
    pub cpu: u32,
    /// In: sub-buffers consumed.
    pub count: u64,
}

/// [`relaymap_flush::cpu`] / [`relaymap_stats::cpu`]: every CPU.
pub const RELAYMAP_ALL_CPUS: i32 = -1;

/// `FLUSH`: close the current sub-buffer of one CPU or of all.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct relaymap_flush {
    /// `sizeof` the caller was compiled with.
    pub size: u32,
    /// In: a CPU or [`RELAYMAP_ALL_CPUS`].
    pub cpu: i32,
}

/// `GET_STATS`: counters of one CPU or of the whole channel.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct relaymap_stats {
    /// `sizeof` the caller was compiled with.
    pub size: u32,
    /// In: a CPU or [`RELAYMAP_ALL_CPUS`] for the sum.
    pub cpu: i32,
    /// Records accepted by the module's write API.
    pub records_written: u64,
    /// Payload bytes accepted by the module's write API.
    pub bytes_written: u64,
    /// Write attempts dropped because the buffer was full.
    pub records_dropped: u64,
    /// Sub-buffers closed and committed since reset.
    pub subbufs_produced: u64,
    /// Sub-buffers handed back.
    pub subbufs_consumed: u64,
    /// Unconsumed sub-buffers overwritten.
    pub subbufs_lapped: u64,
    /// Sub-buffers closed early by FLUSH.
    pub flushes: u64,
    /// RESETs of this channel since creation.
    pub resets: u64,
}

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
const IOC_NONE: u32 = 0;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << IOC_DIRSHIFT)
        | ((RELAYMAP_IOC_MAGIC as u32) << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
}

/// `_IOWR(RELAYMAP_IOC_MAGIC, 0x01, struct relaymap_info)`.
pub const RELAYMAP_IOC_GET_INFO: u32 = ioc(
    IOC_READ | IOC_WRITE,
    0x01,
    core::mem::size_of::<relaymap_info>(),
);
/// `_IOWR(RELAYMAP_IOC_MAGIC, 0x02, struct relaymap_cursor)`.
pub const RELAYMAP_IOC_GET_CURSOR: u32 = ioc(
    IOC_READ | IOC_WRITE,
    0x02,
    core::mem::size_of::<relaymap_cursor>(),
);
/// `_IOW(RELAYMAP_IOC_MAGIC, 0x03, struct relaymap_consume)`.
pub const RELAYMAP_IOC_PUT_CONSUMED: u32 =
    ioc(IOC_WRITE, 0x03, core::mem::size_of::<relaymap_consume>());
/// `_IOW(RELAYMAP_IOC_MAGIC, 0x04, struct relaymap_flush)`.
pub const RELAYMAP_IOC_FLUSH: u32 = ioc(IOC_WRITE, 0x04, core::mem::size_of::<relaymap_flush>());
/// `_IO(RELAYMAP_IOC_MAGIC, 0x05)`.
pub const RELAYMAP_IOC_RESET: u32 = ioc(IOC_NONE, 0x05, 0);
/// `_IOWR(RELAYMAP_IOC_MAGIC, 0x06, struct relaymap_stats)`.
pub const RELAYMAP_IOC_GET_STATS: u32 = ioc(
    IOC_READ | IOC_WRITE,
    0x06,
    core::mem::size_of::<relaymap_stats>(),
);

/// Byte offsets inside [`relaymap_subbuf_header`], used by the walker.
pub(crate) mod off {
    use super::relaymap_subbuf_header as H;
    use core::mem::offset_of;
    pub const MAGIC: usize = offset_of!(H, magic);
    pub const ABI_VERSION: usize = offset_of!(H, abi_version);
    pub const HEADER_SIZE: usize = offset_of!(H, header_size);
    pub const CPU: usize = offset_of!(H, cpu);
    pub const FLAGS: usize = offset_of!(H, flags);
    pub const SEQ: usize = offset_of!(H, seq);
    pub const TS_BEGIN: usize = offset_of!(H, ts_begin_ns);
    pub const TS_END: usize = offset_of!(H, ts_end_ns);
    pub const PAYLOAD_SIZE: usize = offset_of!(H, payload_size);
    pub const PADDING: usize = offset_of!(H, padding);
    pub const RECORDS_DROPPED: usize = offset_of!(H, records_dropped);
    pub const COMMIT: usize = offset_of!(H, commit);
}

/// `sizeof(struct relaymap_subbuf_header)`.
pub const SUBBUF_HEADER_SIZE: usize = core::mem::size_of::<relaymap_subbuf_header>();
/// `sizeof(struct relaymap_record)`.
pub const RECORD_HEADER_SIZE: usize = core::mem::size_of::<relaymap_record>();

const _: () = assert!(SUBBUF_HEADER_SIZE == 64);
const _: () = assert!(RECORD_HEADER_SIZE == 16);
const _: () = assert!(off::COMMIT % 8 == 0 && off::SEQ % 8 == 0);
