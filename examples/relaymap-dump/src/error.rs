//! The failures of both binaries and their exit codes.

use std::io;
use std::path::PathBuf;

/// Exit codes (documented in README.md, "Exit codes").
pub mod code {
    /// Everything dumped (or verified, listed) as asked.
    pub const OK: i32 = 0;
    /// Any other error (an ioctl failed, ABI mismatch, ...).
    pub const OTHER: i32 = 1;
    /// Bad command line (clap's own code).
    pub const USAGE: i32 = 2;
    /// No such channel: relaymap.ko not loaded, no channel of that name,
    /// debugfs not mounted, or a directory that is not a channel.
    pub const NOT_FOUND: i32 = 3;
    /// Refused: not in the device's group, or a debugfs path under lockdown.
    pub const PERMISSION: i32 = 4;
    /// The output (directory, file or stdout) cannot be created or written.
    pub const OUTPUT: i32 = 5;
    /// The output's file system is full: consumption stopped.
    pub const DISK_FULL: i32 = 6;
    /// `verify` found lost or corrupt records.
    pub const VERIFY: i32 = 7;
    /// Another consumer holds a CPU of the channel (one consumer per CPU).
    pub const BUSY: i32 = 8;
    /// The output directory holds something else (another channel
    /// instance's trace, foreign files) or another dumper writes there:
    /// refused, nothing changed.
    pub const REFUSED: i32 = 9;
}

/// Why a command stopped with an error. The message is complete: it names
/// the channel, the cause and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The channel cannot be found (module, name, debugfs, directory).
    #[error("{0}")]
    NotFound(String),
    /// Opening the channel was refused (group, lockdown, file permissions).
    #[error("{0}")]
    PermissionDenied(String),
    /// A CPU of the channel is held by another consumer.
    #[error("{0}")]
    Busy(String),
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
    /// The output directory holds something else: refused, unchanged.
    #[error("{0}")]
    Refused(String),
    /// A bad command-line value found after parsing (e.g. `verify` of a
    /// path that is not a dump): exit code 2.
    #[error("{0}")]
    Usage(String),
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
            Failure::NotFound(_) => code::NOT_FOUND,
            Failure::PermissionDenied(_) => code::PERMISSION,
            Failure::Busy(_) => code::BUSY,
            Failure::Output { .. } => code::OUTPUT,
            Failure::DiskFull { .. } => code::DISK_FULL,
            Failure::Verify(_) => code::VERIFY,
            Failure::Refused(_) => code::REFUSED,
            Failure::Usage(_) => code::USAGE,
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

    /// The message with its sources, `: `-joined (each source only once).
    pub fn chain(&self) -> String {
        if let Failure::Other(a) = self {
            // anyhow's alternate Display already walks the chain.
            return format!("{a:#}");
        }
        let mut s = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(x) = src {
            let m = x.to_string();
            if !s.contains(&m) {
                s += &format!(": {m}");
            }
            src = x.source();
        }
        s
    }
}

/// An SDK error outside of opening (an ioctl, mmap or poll failed while
/// consuming): exit code 1, with the SDK's message.
impl From<relaymap::Error> for Failure {
    fn from(e: relaymap::Error) -> Failure {
        Failure::Other(anyhow::Error::new(e))
    }
}
