//! The seam between the SDK and the kernel.
//!
//! [`Backend`] is the channel side (observer and control operations, and
//! opening consumers); [`ConsumerBackend`] is one CPU's consumer (the
//! mapped buffer's fd, its cursor, `PUT_CONSUMED`, the fd to poll). The
//! ioctl backend ([`IoctlBackend`]: `/dev/relaymap` or a debugfs channel
//! directory) is in this crate; `relaymap_sim::SimBackend` is the
//! kernel-free one. Everything above the seam (the walker, batches, loss
//! accounting, errors) is the same code for both.
//!
//! Errors are plain `io::Error`s (errno for the kernel); the SDK adds the
//! operation, the CPU and the hint. A backend reports `EBUSY` from
//! [`Backend::open_consumer`] when the CPU is held, like the kernel.

use std::fmt::Debug;
use std::io;
use std::os::fd::BorrowedFd;

use crate::abi;
use crate::types::{Cursor, Stats};

pub(crate) mod ioctl;

pub use ioctl::IoctlBackend;

/// The channel side of a backend: one method per channel-fd ioctl of
/// `include/relaymap_abi.h`.
///
/// Implementations count every call they make to the kernel (for the ioctl
/// backend one call is one syscall) in [`Backend::ops`], together with the
/// calls of every consumer they opened.
pub trait Backend: Send + Sync + Debug {
    /// `GET_INFO`: raw geometry and identity (the SDK checks it).
    fn info(&self) -> io::Result<abi::relaymap_info>;
    /// `GET_CURSOR` for one CPU.
    fn cursor(&self, cpu: u32) -> io::Result<Cursor>;
    /// `GET_CURSORS`: the cursors of every CPU that has a buffer, in one
    /// call where the backend can.
    fn cursors(&self) -> io::Result<Vec<Cursor>>;
    /// `GET_STATS` for one CPU (`Some`) or the sum (`None`).
    fn stats(&self, cpu: Option<u32>) -> io::Result<Stats>;
    /// `FLUSH` one CPU (`Some`) or all (`None`).
    fn flush(&self, cpu: Option<u32>) -> io::Result<()>;
    /// `RESET` the channel (`EBUSY` while a consumer or writer is there).
    fn reset(&self) -> io::Result<()>;
    /// `OPEN_CONSUMER` of one CPU: its exclusive claim. `EBUSY` if held.
    fn open_consumer(&self, cpu: u32) -> io::Result<Box<dyn ConsumerBackend>>;
    /// `OPEN_CONSUMER(RELAYMAP_ALL_CPUS)`: every CPU with a buffer, all or
    /// nothing (`EBUSY` and nothing claimed if any CPU is held).
    fn open_consumers(&self) -> io::Result<Vec<Box<dyn ConsumerBackend>>>;
    /// Calls issued so far by this backend and its consumers.
    fn ops(&self) -> u64;
    /// The channel fd (for `AsFd` on the channel).
    fn fd(&self) -> BorrowedFd<'_>;
}

/// One CPU's consumer: holds that CPU's claim until dropped.
pub trait ConsumerBackend: Send + Debug {
    /// The CPU.
    fn cpu(&self) -> u32;
    /// The fd the SDK maps (alloc_size bytes, offset 0, read-only, shared).
    fn map_fd(&self) -> BorrowedFd<'_>;
    /// The fd to poll: readable when the CPU may have new sub-buffers
    /// (spurious readiness is allowed; the SDK checks the cursor). It stays
    /// readable until the cursor was read after the data was produced.
    fn poll_fd(&self) -> BorrowedFd<'_>;
    /// `GET_CURSOR` of this CPU.
    fn cursor(&self) -> io::Result<Cursor>;
    /// `PUT_CONSUMED`: hand `count` (`1..=n_subbufs`) sub-buffers back.
    fn put_consumed(&self, count: u64) -> io::Result<()>;
    /// Calls issued so far by this consumer.
    fn ops(&self) -> u64;
}
