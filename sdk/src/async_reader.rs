//! [`AsyncCpuReader`] (feature `tokio`): await a reader's data.

use std::os::fd::{AsRawFd, RawFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::error::{Error, Result};
use crate::reader::CpuReader;

/// The reader's poll fd, borrowed (the reader owns it and outlives the
/// `AsyncFd`: see the field order of [`AsyncCpuReader`]).
#[derive(Debug)]
struct PollFd(RawFd);

impl AsRawFd for PollFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A [`CpuReader`] whose wait is a future: its consumer fd is registered
/// with tokio; [`AsyncCpuReader::readable`] returns when the CPU may have
/// data.
///
/// ```no_run
/// # async fn f() -> relaymap::Result<()> {
/// let ch = relaymap::Channel::open("demo")?;
/// let mut r = relaymap::AsyncCpuReader::new(ch.reader(0)?)?;
/// loop {
///     r.readable().await?;
///     let batch = r.get_mut().batch()?;
///     for sb in &batch {
///         println!("cpu {} seq {}", sb.cpu(), sb.seq());
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct AsyncCpuReader {
    // Dropped first: deregisters the fd from tokio before the reader closes
    // it.
    afd: AsyncFd<PollFd>,
    reader: CpuReader,
}

impl AsyncCpuReader {
    /// Registers the reader's fd with the current tokio runtime.
    pub fn new(reader: CpuReader) -> Result<AsyncCpuReader> {
        let cpu = reader.cpu();
        // SAFETY: the fd is the reader's consumer fd; the reader is moved
        // into the same struct and dropped after the AsyncFd (field order),
        // so the fd stays open and the same for the AsyncFd's whole life.
        let afd = unsafe {
            AsyncFd::register_with_interest(PollFd(reader.as_raw_fd()), Interest::READABLE)
        }
        .map_err(|e| Error::Poll {
            cpu: Some(cpu),
            source: e.into_parts().1,
        })?;
        Ok(AsyncCpuReader { afd, reader })
    }

    /// Waits until the CPU may have data (spurious wakeups are possible:
    /// an empty batch is a normal answer).
    pub async fn readable(&mut self) -> Result<()> {
        let cpu = self.reader.cpu();
        if self.reader.wait(Some(std::time::Duration::ZERO))? {
            return Ok(());
        }
        let mut g = self.afd.readable().await.map_err(|e| Error::Poll {
            cpu: Some(cpu),
            source: e,
        })?;
        // Level-triggered fd: tokio is edge-like, so clear its readiness and
        // let the next call poll again.
        g.clear_ready();
        Ok(())
    }

    /// The reader.
    pub fn get_mut(&mut self) -> &mut CpuReader {
        &mut self.reader
    }

    /// The reader, back.
    pub fn into_inner(self) -> CpuReader {
        let AsyncCpuReader { afd, reader } = self;
        drop(afd);
        reader
    }
}
