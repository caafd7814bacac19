//! The dumper's failures and their exit codes.

use std::io;
use std::path::PathBuf;

/// Exit codes (documented in README.md, "Exit codes").
pub mod code {
    /// Everything dumped (or verified) as asked.
    pub const OK: i32 = 0;
    /// Any other error (an ioctl failed, ABI mismatch, ...).
    pub const OTHER: i32 = 1;
    /// Bad command line (clap's own code).
    pub const USAGE: i32 = 2;
    /// The directory is not a relaymap channel.
    pub const NOT_A_CHANNEL: i32 = 3;
    /// The channel files cannot be opened: permission denied.
    pub const PERMISSION: i32 = 4;
    /// The output (directory, file or stdout) cannot be created or written.
    pub const OUTPUT: i32 = 5;
    /// The output's file system is full: consumption stopped.
    pub const DISK_FULL: i32 = 6;
    /// `verify` found lost or corrupt records.
    pub const VERIFY: i32 = 7;
}

/// Why the dumper stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Not a channel directory.
    #[error("{0}\nhint: a relaymap channel is a directory like /sys/kernel/debug/relaymap/<name> holding cpuN files and a control file (is relaymap.ko loaded? is debugfs mounted?)")]
    NotAChannel(String),
    /// Opening the channel was refused.
    #[error(
        "{0}\nhint: the channel files are root-only; run relaymap-dump as root (e.g. with sudo)"
    )]
    PermissionDenied(String),
    /// The output cannot be created or written.
    #[error("cannot write output {}: {source}", path.display())]
    Output {
        /// File or directory.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// The output's file system is full.
    #[error("{}: no space left on the output device ({source}); stopped consuming: the \
             sub-buffers not written stay in the kernel buffer, so the kernel now counts \
             dropped records instead of data vanishing", path.display())]
    DiskFull {
        /// The file being written.
        path: PathBuf,
        /// OS error (ENOSPC, EDQUOT or EFBIG).
        #[source]
        source: io::Error,
    },
    /// Verification found problems.
    #[error("verification failed: {0}")]
    Verify(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::NotAChannel(_) => code::NOT_A_CHANNEL,
            Failure::PermissionDenied(_) => code::PERMISSION,
            Failure::Output { .. } => code::OUTPUT,
            Failure::DiskFull { .. } => code::DISK_FULL,
            Failure::Verify(_) => code::VERIFY,
            Failure::Other(_) => code::OTHER,
        }
    }

    /// A write to `path` failed: disk full or another output error.
    pub fn write(path: PathBuf, source: io::Error) -> Failure {
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => {
                Failure::DiskFull { path, source }
            }
            _ => Failure::Output { path, source },
        }
    }
}

impl From<relaymap::Error> for Failure {
    fn from(e: relaymap::Error) -> Failure {
        match e {
            relaymap::Error::NotAChannel { .. } => Failure::NotAChannel(e.to_string()),
            relaymap::Error::PermissionDenied { .. } => Failure::PermissionDenied(e.to_string()),
            relaymap::Error::Open { ref source, .. } | relaymap::Error::Mmap { ref source, .. }
                if matches!(
                    source.raw_os_error(),
                    Some(libc::EACCES) | Some(libc::EPERM)
                ) =>
            {
                let msg = format!("{e}: {source}");
                Failure::PermissionDenied(msg)
            }
            relaymap::Error::Ioctl { ref source, .. }
                if matches!(
                    source.raw_os_error(),
                    Some(libc::EACCES) | Some(libc::EPERM)
                ) =>
            {
                let msg = format!("{e}: {source}");
                Failure::PermissionDenied(msg)
            }
            other => Failure::Other(anyhow::Error::new(other)),
        }
    }
}
