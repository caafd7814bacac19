//! The seam between the SDK and the kernel: the control operations.
//!
//! [`Control`] is implemented by the ioctl backend (the `control` file of a
//! real channel, [`IoctlControl`]) and by the `sim` backend
//! ([`crate::sim::SimControl`]). Everything above it (the walker, batches,
//! loss accounting) is the same code for both.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::abi;

/// One CPU's published counts (`GET_CURSOR`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Sub-buffers closed **and committed** (header final).
    pub produced: u64,
    /// Sub-buffers handed back.
    pub consumed: u64,
    /// Records dropped on this CPU because the buffer was full
    /// (no-overwrite), cumulative since reset.
    pub records_dropped: u64,
    /// Unconsumed sub-buffers overwritten (overwrite), cumulative since
    /// reset.
    pub subbufs_lapped: u64,
}

impl From<abi::relaymap_cursor> for Cursor {
    fn from(c: abi::relaymap_cursor) -> Self {
        Cursor {
            produced: c.produced,
            consumed: c.consumed,
            records_dropped: c.records_dropped,
            subbufs_lapped: c.subbufs_lapped,
        }
    }
}

/// Counters of one CPU or of the whole channel (`GET_STATS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
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

impl From<abi::relaymap_stats> for Stats {
    fn from(s: abi::relaymap_stats) -> Self {
        Stats {
            records_written: s.records_written,
            bytes_written: s.bytes_written,
            records_dropped: s.records_dropped,
            subbufs_produced: s.subbufs_produced,
            subbufs_consumed: s.subbufs_consumed,
            subbufs_lapped: s.subbufs_lapped,
            flushes: s.flushes,
            resets: s.resets,
        }
    }
}

/// The control operations of a channel: one method per ioctl of
/// `include/relaymap_abi.h`.
///
/// Errors are plain `io::Error`s (errno for the ioctl backend);
/// [`crate::Channel`] adds the operation and CPU to them. Implementations
/// count every operation they issue in [`Control::ops`] (for the ioctl
/// backend, one operation is one syscall); the benchmark reports it per
/// sub-buffer.
pub trait Control: Send + Sync + std::fmt::Debug {
    /// `GET_INFO`: geometry and identity. The channel checks the ABI version
    /// and geometry itself.
    fn info(&self) -> io::Result<abi::relaymap_info>;
    /// `GET_CURSOR` for one CPU.
    fn cursor(&self, cpu: u32) -> io::Result<Cursor>;
    /// `PUT_CONSUMED`: hand `count` (`1..=n_subbufs`) sub-buffers of `cpu`
    /// back.
    fn put_consumed(&self, cpu: u32, count: u64) -> io::Result<()>;
    /// `FLUSH` one CPU (`Some`) or all (`None`).
    fn flush(&self, cpu: Option<u32>) -> io::Result<()>;
    /// `RESET` the channel.
    fn reset(&self) -> io::Result<()>;
    /// `GET_STATS` for one CPU (`Some`) or the sum (`None`).
    fn stats(&self, cpu: Option<u32>) -> io::Result<Stats>;
    /// Control operations issued so far through this backend.
    fn ops(&self) -> u64;
    /// How to wait for data. `None` (the kernel): poll the per-CPU files,
    /// which are readable while relay has unconsumed sub-buffers. `Some(fd)`
    /// (the simulator): poll this fd instead; it becomes readable when a
    /// sub-buffer is published, and the channel checks cursors before
    /// blocking (so the fd may be edge-like).
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    /// Called by the channel after `wake_fd` was readable, to clear it.
    fn clear_wake(&self) {}
}

// nix's ioctl macros generate `unsafe fn`s: they stay private to this module
// and are only called through the safe methods of `IoctlControl`.
mod sys {
    use crate::abi::*;
    nix::ioctl_readwrite!(get_info, RELAYMAP_IOC_MAGIC, 0x01, relaymap_info);
    nix::ioctl_readwrite!(get_cursor, RELAYMAP_IOC_MAGIC, 0x02, relaymap_cursor);
    nix::ioctl_write_ptr!(put_consumed, RELAYMAP_IOC_MAGIC, 0x03, relaymap_consume);
    nix::ioctl_write_ptr!(flush, RELAYMAP_IOC_MAGIC, 0x04, relaymap_flush);
    nix::ioctl_none!(reset, RELAYMAP_IOC_MAGIC, 0x05);
    nix::ioctl_readwrite!(get_stats, RELAYMAP_IOC_MAGIC, 0x06, relaymap_stats);
}

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn size_of_u32<T>() -> u32 {
    std::mem::size_of::<T>() as u32
}

/// The ioctl backend: the `control` file of a kernel channel.
#[derive(Debug)]
pub struct IoctlControl {
    file: File,
    ops: AtomicU64,
}

impl IoctlControl {
    /// Opens `path` (the channel's `control` file) read-write.
    pub fn open(path: &Path) -> io::Result<IoctlControl> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        Ok(IoctlControl {
            file,
            ops: AtomicU64::new(0),
        })
    }

    fn count(&self) {
        self.ops.fetch_add(1, Ordering::Relaxed);
    }
}

impl Control for IoctlControl {
    fn info(&self) -> io::Result<abi::relaymap_info> {
        self.count();
        let mut info = abi::relaymap_info::default();
        // SAFETY: `info` is a valid, writable relaymap_info whose `size`
        // says how many bytes the kernel may write; the fd stays open for
        // the call.
        unsafe { sys::get_info(self.file.as_raw_fd(), &mut info) }.map_err(errno)?;
        Ok(info)
    }

    fn cursor(&self, cpu: u32) -> io::Result<Cursor> {
        self.count();
        let mut c = abi::relaymap_cursor {
            size: size_of_u32::<abi::relaymap_cursor>(),
            cpu,
            ..Default::default()
        };
        // SAFETY: as in `info`: a valid relaymap_cursor, sized by `size`.
        unsafe { sys::get_cursor(self.file.as_raw_fd(), &mut c) }.map_err(errno)?;
        Ok(c.into())
    }

    fn put_consumed(&self, cpu: u32, count: u64) -> io::Result<()> {
        self.count();
        let c = abi::relaymap_consume {
            size: size_of_u32::<abi::relaymap_consume>(),
            cpu,
            count,
        };
        // SAFETY: the kernel only reads `size` bytes of a valid struct.
        unsafe { sys::put_consumed(self.file.as_raw_fd(), &c) }.map_err(errno)?;
        Ok(())
    }

    fn flush(&self, cpu: Option<u32>) -> io::Result<()> {
        self.count();
        let f = abi::relaymap_flush {
            size: size_of_u32::<abi::relaymap_flush>(),
            cpu: cpu.map_or(abi::RELAYMAP_ALL_CPUS, |c| c as i32),
        };
        // SAFETY: the kernel only reads `size` bytes of a valid struct.
        unsafe { sys::flush(self.file.as_raw_fd(), &f) }.map_err(errno)?;
        Ok(())
    }

    fn reset(&self) -> io::Result<()> {
        self.count();
        // SAFETY: RESET takes no argument; the fd is open.
        unsafe { sys::reset(self.file.as_raw_fd()) }.map_err(errno)?;
        Ok(())
    }

    fn stats(&self, cpu: Option<u32>) -> io::Result<Stats> {
        self.count();
        let mut s = abi::relaymap_stats {
            size: size_of_u32::<abi::relaymap_stats>(),
            cpu: cpu.map_or(abi::RELAYMAP_ALL_CPUS, |c| c as i32),
            ..Default::default()
        };
        // SAFETY: a valid relaymap_stats, sized by `size`.
        unsafe { sys::get_stats(self.file.as_raw_fd(), &mut s) }.map_err(errno)?;
        Ok(s.into())
    }

    fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }
}
