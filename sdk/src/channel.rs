//! [`Channel`]: the observer and controller of one channel; it hands out
//! [`CpuReader`]s.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::sync::Arc;

use crate::backend::{Backend, IoctlBackend};
use crate::error::{ControlOp, Error, Result};
use crate::reader::{CpuReader, ReaderOptions};
use crate::types::{ChannelInfo, Cursor, Stats};
use crate::walker::Mode;

/// First bytes of a `relaymap-sim` channel's `control` file (so that
/// [`Channel::open_path`] can say what it found).
const SIM_MAGIC_PREFIX: &[u8; 5] = b"RMSIM";

/// A relaymap channel: observer and controller. It never consumes; it
/// answers info, cursors (all CPUs in one call), stats, flush and reset,
/// and hands out [`CpuReader`]s, each owning one CPU's consumer claim and
/// mapping. `Send + Sync`.
#[derive(Debug)]
pub struct Channel {
    be: Arc<dyn Backend>,
    info: Arc<ChannelInfo>,
    opts: ReaderOptions,
}

impl Channel {
    /// Opens the channel `name` through `/dev/relaymap`
    /// (`RELAYMAP_IOC_OPEN_CHANNEL`), after checking the module's ABI
    /// version. Works under lockdown and without debugfs; a user in the
    /// device's group needs no root.
    pub fn open(name: &str) -> Result<Channel> {
        Channel::with_backend(Box::new(IoctlBackend::open(name)?))
    }

    /// Opens a debugfs channel directory
    /// (`/sys/kernel/debug/relaymap/<name>`) through its `control` file:
    /// the legacy and debug view (root only; refused under lockdown).
    pub fn open_path(dir: impl AsRef<Path>) -> Result<Channel> {
        let dir = dir.as_ref();
        let control = dir.join("control");
        if let Ok(md) = std::fs::metadata(&control) {
            if md.is_file() && md.len() >= SIM_MAGIC_PREFIX.len() as u64 {
                let mut m = [0u8; 5];
                if std::fs::File::open(&control)
                    .and_then(|mut f| io::Read::read_exact(&mut f, &mut m))
                    .is_ok()
                    && &m == SIM_MAGIC_PREFIX
                {
                    return Err(Error::NotAChannel {
                        path: dir.to_path_buf(),
                        reason: "this is a simulated channel: open it with \
                                 relaymap_sim::open_dir (crate relaymap-sim)"
                            .into(),
                    });
                }
            }
        }
        Channel::with_backend(Box::new(IoctlBackend::open_path(dir)?))
    }

    /// A channel over any backend (e.g. `relaymap_sim::SimBackend`). Checks
    /// the ABI version and the geometry.
    pub fn with_backend(be: Box<dyn Backend>) -> Result<Channel> {
        let raw = be
            .info()
            .map_err(|e| Error::ioctl(ControlOp::GetInfo, None, e))?;
        let info = ChannelInfo::from_raw(&raw)?;
        Ok(Channel {
            be: Arc::from(be),
            info: Arc::new(info),
            opts: ReaderOptions::default(),
        })
    }

    /// Options for the readers opened from now on.
    pub fn set_reader_options(&mut self, opts: ReaderOptions) {
        self.opts = opts;
    }

    /// Identity and geometry.
    pub fn info(&self) -> &ChannelInfo {
        &self.info
    }
    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }
    /// No-overwrite or overwrite.
    pub fn mode(&self) -> Mode {
        self.info.mode
    }
    /// CPUs with a buffer, ascending.
    pub fn cpus(&self) -> &[u32] {
        &self.info.cpus
    }
    /// The backend.
    pub fn backend(&self) -> &dyn Backend {
        &*self.be
    }
    /// Calls to the kernel issued by this channel and its readers (for the
    /// ioctl backend, each is one syscall).
    pub fn control_ops(&self) -> u64 {
        self.be.ops()
    }

    /// `GET_CURSOR` of one CPU (no claim needed).
    pub fn cursor(&self, cpu: u32) -> Result<Cursor> {
        self.be
            .cursor(cpu)
            .map_err(|e| Error::ioctl(ControlOp::GetCursor, Some(cpu), e))
    }

    /// The cursors of every CPU with a buffer, in one `GET_CURSORS`.
    pub fn cursors(&self) -> Result<Vec<Cursor>> {
        self.be
            .cursors()
            .map_err(|e| Error::ioctl(ControlOp::GetCursors, None, e))
    }

    /// `GET_STATS` for one CPU or the whole channel.
    pub fn stats(&self, cpu: Option<u32>) -> Result<Stats> {
        self.be
            .stats(cpu)
            .map_err(|e| Error::ioctl(ControlOp::GetStats, cpu, e))
    }

    /// Closes the current sub-buffer of one CPU or of all (on the CPU that
    /// owns it: safe while writers run), so partial data becomes visible. A
    /// sub-buffer with no data is left alone.
    pub fn flush(&self, cpu: Option<u32>) -> Result<()> {
        self.be
            .flush(cpu)
            .map_err(|e| Error::ioctl(ControlOp::Flush, cpu, e))
    }

    /// `RESET`: empties every buffer, restarts counters and sequence
    /// numbers, new uuid. `EBUSY` (as [`Error::Ioctl`]) while a writer is
    /// registered or any reader is open.
    pub fn reset(&self) -> Result<()> {
        self.be
            .reset()
            .map_err(|e| Error::ioctl(ControlOp::Reset, None, e))
    }

    /// CPUs that gained a buffer since open (hotplug): one `GET_INFO`. They
    /// are added to [`Channel::cpus`] and can be claimed with
    /// [`Channel::reader`].
    pub fn refresh_cpus(&mut self) -> Result<Vec<u32>> {
        let raw = self
            .be
            .info()
            .map_err(|e| Error::ioctl(ControlOp::GetInfo, None, e))?;
        let info = ChannelInfo::from_raw(&raw)?;
        let new: Vec<u32> = info
            .cpus
            .iter()
            .copied()
            .filter(|c| !self.info.cpus.contains(c))
            .collect();
        if !new.is_empty() {
            let mut i = (*self.info).clone();
            i.cpus = info.cpus;
            self.info = Arc::new(i);
        }
        Ok(new)
    }

    fn busy(&self, cpu: Option<u32>) -> Error {
        let held = match cpu {
            Some(c) => self.be.cursor(c).ok().filter(|c| c.held),
            None => self
                .be
                .cursors()
                .ok()
                .and_then(|v| v.into_iter().find(|c| c.held)),
        };
        match held {
            Some(c) => Error::Busy {
                cpu: c.cpu,
                holder_pid: c.holder_pid,
                holder_comm: c.holder_comm,
            },
            None => Error::Busy {
                cpu: cpu.unwrap_or(0),
                holder_pid: None,
                holder_comm: None,
            },
        }
    }

    fn open_err(&self, cpu: Option<u32>, e: io::Error) -> Error {
        if e.raw_os_error() == Some(libc::EBUSY) {
            self.busy(cpu)
        } else {
            Error::ioctl(ControlOp::OpenConsumer, cpu, e)
        }
    }

    /// Claims one CPU: its consumer fd and mapping. [`Error::Busy`] (with
    /// the holder) if another consumer holds it.
    pub fn reader(&self, cpu: u32) -> Result<CpuReader> {
        if !self.info.cpus.contains(&cpu) {
            return Err(Error::UnknownCpu { cpu });
        }
        let be = self
            .be
            .open_consumer(cpu)
            .map_err(|e| self.open_err(Some(cpu), e))?;
        CpuReader::new(be, self.info.clone(), self.opts)
    }

    /// Claims every CPU with a buffer at once, all or nothing
    /// (`OPEN_CONSUMER(ALL)`), in ascending CPU order.
    pub fn readers(&self) -> Result<Vec<CpuReader>> {
        let bes = self
            .be
            .open_consumers()
            .map_err(|e| self.open_err(None, e))?;
        bes.into_iter()
            .map(|be| CpuReader::new(be, self.info.clone(), self.opts))
            .collect()
    }
}

impl AsFd for Channel {
    /// The channel fd.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.be.fd()
    }
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> RawFd {
        self.be.fd().as_raw_fd()
    }
}
