//! The error type: every variant names the failed step, the CPU where one is
//! involved, and keeps the `io::Error` source.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A control operation (an ioctl on the `control` file, or its simulated
/// equivalent in the `sim` backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlOp {
    /// `RELAYMAP_IOC_GET_INFO`.
    GetInfo,
    /// `RELAYMAP_IOC_GET_CURSOR`.
    GetCursor,
    /// `RELAYMAP_IOC_PUT_CONSUMED`.
    PutConsumed,
    /// `RELAYMAP_IOC_FLUSH`.
    Flush,
    /// `RELAYMAP_IOC_RESET`.
    Reset,
    /// `RELAYMAP_IOC_GET_STATS`.
    GetStats,
}

impl fmt::Display for ControlOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ControlOp::GetInfo => "GET_INFO",
            ControlOp::GetCursor => "GET_CURSOR",
            ControlOp::PutConsumed => "PUT_CONSUMED",
            ControlOp::Flush => "FLUSH",
            ControlOp::Reset => "RESET",
            ControlOp::GetStats => "GET_STATS",
        })
    }
}

/// Why a sub-buffer header was rejected. The sub-buffer is skipped and
/// counted in [`crate::Loss::subbufs_corrupt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// The first word is not `RELAYMAP_SUBBUF_MAGIC`.
    BadMagic {
        /// The word found.
        found: u32,
    },
    /// The header's `abi_version` is not the SDK's.
    BadAbiVersion {
        /// The version found.
        found: u16,
    },
    /// `header_size` is smaller than the header, unaligned, or larger than
    /// the sub-buffer.
    BadHeaderSize {
        /// The value found.
        found: u16,
    },
    /// `header_size + payload_size + padding != subbuf_size`: the payload
    /// would run past the sub-buffer.
    PayloadBeyondSubbuf {
        /// `header_size` found.
        header_size: u16,
        /// `payload_size` found.
        payload_size: u32,
        /// `padding` found.
        padding: u32,
        /// The channel's sub-buffer size.
        subbuf_size: u64,
    },
    /// The header names another sub-buffer than the one the cursor says is
    /// there (a seq going backwards, or a commit mark that does not match).
    SeqMismatch {
        /// Sub-buffer number expected from the cursor.
        expected: u64,
        /// `seq` found.
        found: u64,
        /// `commit` found (should be `expected + 1`).
        commit: u64,
    },
    /// The header names another CPU.
    WrongCpu {
        /// `cpu` found.
        found: u32,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Corruption::BadMagic { found } => write!(f, "bad magic {found:#010x}"),
            Corruption::BadAbiVersion { found } => write!(f, "header abi_version {found}"),
            Corruption::BadHeaderSize { found } => write!(f, "bad header_size {found}"),
            Corruption::PayloadBeyondSubbuf {
                header_size,
                payload_size,
                padding,
                subbuf_size,
            } => write!(
                f,
                "header_size {header_size} + payload_size {payload_size} + padding {padding} != subbuf_size {subbuf_size}"
            ),
            Corruption::SeqMismatch {
                expected,
                found,
                commit,
            } => write!(
                f,
                "expected seq {expected} (commit {}), found seq {found} commit {commit}",
                expected + 1
            ),
            Corruption::WrongCpu { found } => write!(f, "header names cpu {found}"),
        }
    }
}

/// Everything that can go wrong in the SDK.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The directory is not a relaymap channel (missing, no control file,
    /// the control file does not answer relaymap ioctls, no cpu files).
    #[error("{dir}: not a relaymap channel: {reason}")]
    NotAChannel {
        /// The directory given.
        dir: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// Opening a channel file was refused.
    #[error(
        "{path}: permission denied; relaymap files are root-only (cpuN mode 0400, control 0600): \
         run as root or change the file modes"
    )]
    PermissionDenied {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Opening a channel file failed for another reason.
    #[error("{path}: cannot open")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The module speaks another ABI version than this SDK.
    #[error("ABI mismatch: kernel module speaks relaymap ABI {kernel}, this SDK speaks {sdk}; use matching versions")]
    AbiMismatch {
        /// The module's `RELAYMAP_ABI_VERSION`.
        kernel: u32,
        /// The SDK's `RELAYMAP_ABI_VERSION`.
        sdk: u32,
    },
    /// The channel's geometry is inconsistent (sizes that do not add up, a
    /// cpu file of the wrong size, ...).
    #[error("bad channel geometry{}: {reason}", cpu.map(|c| format!(" (cpu {c})")).unwrap_or_default())]
    Geometry {
        /// The CPU, if the problem is one CPU's file.
        cpu: Option<u32>,
        /// What does not add up.
        reason: String,
    },
    /// Mapping a per-CPU file failed.
    #[error("mmap of cpu{cpu} failed (whole file, alloc_size bytes, read-only shared; relay answers EINVAL to any other length)")]
    Mmap {
        /// The CPU.
        cpu: u32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A control operation failed.
    #[error("{op} failed{}", cpu.map(|c| format!(" for cpu {c}")).unwrap_or_default())]
    Ioctl {
        /// The operation.
        op: ControlOp,
        /// The CPU, if the operation names one.
        cpu: Option<u32>,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Setting up or running the wait (poll) failed.
    #[error("poll failed{}", cpu.map(|c| format!(" for cpu {c}")).unwrap_or_default())]
    Poll {
        /// The CPU, if registering one CPU's file failed.
        cpu: Option<u32>,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel finalized a CPU buffer (the channel is being removed).
    #[error("cpu {cpu}: channel closed by the kernel")]
    ChannelClosed {
        /// The CPU whose poll reported an error.
        cpu: u32,
    },
    /// A CPU that this channel does not map (not selected, or not present).
    #[error("cpu {cpu} is not mapped by this channel")]
    UnknownCpu {
        /// The CPU asked for.
        cpu: u32,
    },
    /// A sub-buffer header failed validation (the sub-buffer was skipped).
    #[error("cpu {cpu}: corrupt sub-buffer {seq}: {reason}")]
    CorruptHeader {
        /// The CPU.
        cpu: u32,
        /// The sub-buffer number from the cursor.
        seq: u64,
        /// What was wrong.
        reason: Corruption,
    },
    /// A record's framing is corrupt (size below the record header, or past
    /// the payload).
    #[error("corrupt record at payload offset {offset}: size {size} ({reason})")]
    CorruptRecord {
        /// Byte offset of the record in the payload.
        offset: usize,
        /// The record's `size` field.
        size: u32,
        /// What was wrong.
        reason: &'static str,
    },
    /// The kernel's cursor moved backwards without a RESET by this channel
    /// (someone else reset the channel, or a second consumer is at work).
    /// Only in strict mode ([`crate::ChannelBuilder::strict`]); the channel
    /// has already resynchronised with the kernel when this is returned.
    #[error("cpu {cpu}: cursor went backwards (produced {produced}, consumed {consumed}, expected >= {expected})")]
    CursorBackwards {
        /// The CPU.
        cpu: u32,
        /// `produced` read.
        produced: u64,
        /// `consumed` read.
        consumed: u64,
        /// What the SDK expected at least.
        expected: u64,
    },
    /// The simulated producer failed (sim backend only).
    #[error("sim: {step} failed")]
    Sim {
        /// What it was doing.
        step: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// `Result<T, relaymap::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn open(path: PathBuf, source: io::Error) -> Error {
        if source.kind() == io::ErrorKind::PermissionDenied {
            Error::PermissionDenied { path, source }
        } else {
            Error::Open { path, source }
        }
    }

    pub(crate) fn ioctl(op: ControlOp, cpu: Option<u32>, source: io::Error) -> Error {
        Error::Ioctl { op, cpu, source }
    }
}
