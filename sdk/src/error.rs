//! The error type: every variant names the failed step, the CPU where one is
//! involved, what to do about it, and keeps the `io::Error` source.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// An operation on the kernel (an ioctl) or its simulated equivalent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ControlOp {
    /// `RELAYMAP_IOC_GET_VERSION`.
    GetVersion,
    /// `RELAYMAP_IOC_LIST`.
    List,
    /// `RELAYMAP_IOC_OPEN_CHANNEL`.
    OpenChannel,
    /// `RELAYMAP_IOC_GET_INFO`.
    GetInfo,
    /// `RELAYMAP_IOC_GET_CURSOR`.
    GetCursor,
    /// `RELAYMAP_IOC_GET_CURSORS`.
    GetCursors,
    /// `RELAYMAP_IOC_PUT_CONSUMED`.
    PutConsumed,
    /// `RELAYMAP_IOC_FLUSH`.
    Flush,
    /// `RELAYMAP_IOC_RESET`.
    Reset,
    /// `RELAYMAP_IOC_GET_STATS`.
    GetStats,
    /// `RELAYMAP_IOC_OPEN_CONSUMER`.
    OpenConsumer,
}

impl fmt::Display for ControlOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ControlOp::GetVersion => "GET_VERSION",
            ControlOp::List => "LIST",
            ControlOp::OpenChannel => "OPEN_CHANNEL",
            ControlOp::GetInfo => "GET_INFO",
            ControlOp::GetCursor => "GET_CURSOR",
            ControlOp::GetCursors => "GET_CURSORS",
            ControlOp::PutConsumed => "PUT_CONSUMED",
            ControlOp::Flush => "FLUSH",
            ControlOp::Reset => "RESET",
            ControlOp::GetStats => "GET_STATS",
            ControlOp::OpenConsumer => "OPEN_CONSUMER",
        })
    }
}

/// Why a sub-buffer header was rejected. The sub-buffer is skipped and
/// counted in [`crate::Loss::subbufs_corrupt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// The first word is not `RELAYMAP_CTF_MAGIC`.
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
    /// `content_size` / `packet_size` (bits) do not describe bytes inside
    /// the sub-buffer: not whole bytes, content below the header or above
    /// the packet, packet above the sub-buffer or not whole pages.
    BadSize {
        /// `content_size` found (bits).
        content_bits: u64,
        /// `packet_size` found (bits).
        packet_bits: u64,
        /// The channel's sub-buffer size (bytes).
        subbuf_size: u64,
    },
    /// The header names another sub-buffer than the one the cursor says is
    /// there (a seq going backwards, or a commit mark that does not match).
    SeqMismatch {
        /// Sub-buffer number expected from the cursor.
        expected: u64,
        /// `packet_seq_num` found.
        found: u64,
        /// `commit` found (should be `expected + 1`).
        commit: u64,
    },
    /// The header names another CPU (`cpu_id` or `stream_instance_id`).
    WrongCpu {
        /// `cpu_id` found.
        found: u32,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Corruption::BadMagic { found } => write!(f, "bad magic {found:#010x}"),
            Corruption::BadAbiVersion { found } => write!(f, "header abi_version {found}"),
            Corruption::BadHeaderSize { found } => write!(f, "bad header_size {found}"),
            Corruption::BadSize {
                content_bits,
                packet_bits,
                subbuf_size,
            } => write!(
                f,
                "content_size {content_bits} bits / packet_size {packet_bits} bits do not fit a sub-buffer of {subbuf_size} bytes"
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

fn opt_cpu(cpu: &Option<u32>) -> String {
    cpu.map(|c| format!(" for cpu {c}")).unwrap_or_default()
}

fn holder(pid: &Option<i32>, comm: &Option<String>) -> String {
    match (pid, comm) {
        (Some(p), Some(c)) => format!("pid {p} ({c})"),
        (Some(p), None) => format!("pid {p}"),
        _ => "another consumer (it may have just exited)".into(),
    }
}

fn names(v: &[String]) -> String {
    if v.is_empty() {
        "none exists".into()
    } else {
        format!("channels: {}", v.join(", "))
    }
}

/// Everything that can go wrong in the SDK. Each variant says what failed
/// and what to do about it; OS errors are kept as the `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `/dev/relaymap` does not exist: the module is not loaded.
    #[error("{path} does not exist: the relaymap kernel module is not loaded (modprobe relaymap, or insmod kmod/relaymap.ko)")]
    ModuleNotLoaded {
        /// The device path tried.
        path: PathBuf,
    },
    /// Opening the device or a channel file was refused by its permissions.
    #[error("{path}: permission denied: {hint}")]
    PermissionDenied {
        /// The file.
        path: PathBuf,
        /// What to do, e.g. which group owns the device and that this user
        /// is not in it.
        hint: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A debugfs file was refused because the kernel is locked down.
    #[error("{path}: refused by kernel lockdown ({level}): debugfs files with mmap or ioctl cannot be opened under lockdown; open the channel by name through /dev/relaymap instead (Channel::open(name))")]
    Lockdown {
        /// The file.
        path: PathBuf,
        /// The active level, as `/sys/kernel/security/lockdown` shows it
        /// (`integrity` or `confidentiality`).
        level: String,
        /// The OS error (EPERM).
        #[source]
        source: io::Error,
    },
    /// A debugfs path was given but debugfs is not mounted.
    #[error("{path}: debugfs is not mounted (mount -t debugfs none /sys/kernel/debug), or open the channel by name through /dev/relaymap (Channel::open(name))")]
    DebugfsNotMounted {
        /// The path given.
        path: PathBuf,
    },
    /// No channel of that name exists.
    #[error("no relaymap channel named {name:?} ({})", names(.available))]
    NoSuchChannel {
        /// The name asked for.
        name: String,
        /// The channels that exist.
        available: Vec<String>,
    },
    /// Another consumer holds this CPU (consuming is exclusive per CPU).
    #[error("cpu {cpu} of the channel is held by {}: consuming is exclusive per CPU; stop that consumer or wait for it to exit", holder(.holder_pid, .holder_comm))]
    Busy {
        /// The CPU.
        cpu: u32,
        /// The holder's pid (tgid), if it still held it when asked.
        holder_pid: Option<i32>,
        /// The holder's comm.
        holder_comm: Option<String>,
    },
    /// The module speaks another ABI version than this SDK.
    #[error("ABI version mismatch: the kernel module speaks relaymap ABI {kernel}, this SDK speaks {sdk}; use an SDK built for the loaded module (ABI 1 is not supported)")]
    AbiMismatch {
        /// The module's `RELAYMAP_ABI_VERSION`.
        kernel: u32,
        /// The SDK's `RELAYMAP_ABI_VERSION`.
        sdk: u32,
    },
    /// The path is not a relaymap channel (missing, no control file, the
    /// control file does not answer relaymap ioctls, ...).
    #[error("{path}: not a relaymap channel: {reason}")]
    NotAChannel {
        /// The path given.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// Opening a file failed for another reason.
    #[error("{path}: cannot open")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The channel's geometry is inconsistent.
    #[error("bad channel geometry{}: {reason}", opt_cpu(.cpu))]
    Geometry {
        /// The CPU, if the problem is one CPU's buffer.
        cpu: Option<u32>,
        /// What does not add up.
        reason: String,
    },
    /// Mapping a CPU buffer failed.
    #[error("mmap of cpu {cpu}'s buffer failed (alloc_size bytes at offset 0, read-only, shared: the module refuses anything else)")]
    Mmap {
        /// The CPU.
        cpu: u32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A control operation failed.
    #[error("{op} failed{}", opt_cpu(.cpu))]
    Ioctl {
        /// The operation.
        op: ControlOp,
        /// The CPU, if the operation names one.
        cpu: Option<u32>,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Waiting (poll) failed.
    #[error("poll failed{}", opt_cpu(.cpu))]
    Poll {
        /// The CPU, if one reader's fd failed.
        cpu: Option<u32>,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// End of the channel for a CPU: the kernel finalized its buffer, or
    /// the channel's creator destroyed it and that CPU is drained.
    #[error("cpu {cpu}: end of channel: it was destroyed or closed by the kernel (drain what is left with acquire())")]
    ChannelClosed {
        /// The CPU whose poll reported an error.
        cpu: u32,
    },
    /// A CPU without a buffer in this channel.
    #[error("cpu {cpu} has no buffer in this channel")]
    UnknownCpu {
        /// The CPU asked for.
        cpu: u32,
    },
    /// A sub-buffer header failed validation (strict mode; the sub-buffer
    /// was skipped).
    #[error("cpu {cpu}: corrupt sub-buffer {seq}: {reason}")]
    CorruptHeader {
        /// The CPU.
        cpu: u32,
        /// The sub-buffer number from the cursor.
        seq: u64,
        /// What was wrong.
        reason: Corruption,
    },
    /// A record's framing is corrupt.
    #[error("corrupt record at payload offset {offset} (len {len}): {reason}")]
    CorruptRecord {
        /// Byte offset of the record in the payload.
        offset: usize,
        /// The record's `len` field (0 if the header itself is cut short).
        len: u32,
        /// What was wrong.
        reason: &'static str,
    },
    /// The kernel's cursor moved backwards without a RESET by this channel
    /// (strict mode only; the reader has resynchronised already).
    #[error("cpu {cpu}: cursor went backwards (produced {produced}, consumed {consumed}, expected >= {expected}): the channel was reset by someone else")]
    CursorBackwards {
        /// The CPU.
        cpu: u32,
        /// `produced` read.
        produced: u64,
        /// `consumed` read.
        consumed: u64,
        /// What the reader expected at least.
        expected: u64,
    },
    /// A backend outside this crate (e.g. `relaymap-sim`) failed.
    #[error("{backend}: {step} failed")]
    Backend {
        /// Which backend.
        backend: &'static str,
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
    pub(crate) fn ioctl(op: ControlOp, cpu: Option<u32>, source: io::Error) -> Error {
        Error::Ioctl { op, cpu, source }
    }

    /// The OS error number behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        std::error::Error::source(self)
            .and_then(|s| s.downcast_ref::<io::Error>())
            .and_then(io::Error::raw_os_error)
    }
}
