//! [`SimChannel`]: the producer side (the "kernel") of a simulated channel.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use relaymap::abi;
use relaymap::{Channel, Cursor, Error, Mode, Result, Stats};

pub use crate::shared::WriteOutcome;
use crate::shared::{
    einval, now_ns, page_size, sim_err, wake_path, SimCore, SimShared, SHARED_SIZE, SIM_MAGIC,
    SIM_MAX_CPUS,
};

/// Geometry of a simulated channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimGeometry {
    /// Bytes per sub-buffer: a multiple of the page size (as in ABI 2).
    pub subbuf_size: u64,
    /// Sub-buffers per CPU (>= 2).
    pub n_subbufs: u64,
    /// CPUs with a buffer at creation: `0..cpus` (<= [`SIM_MAX_CPUS`]).
    pub cpus: u32,
}

impl Default for SimGeometry {
    /// 64 KiB x 8 sub-buffers, 2 CPUs.
    fn default() -> Self {
        SimGeometry {
            subbuf_size: 64 * 1024,
            n_subbufs: 8,
            cpus: 2,
        }
    }
}

/// A corruption to apply to the next sub-buffer a CPU closes (to test
/// consumers' error paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inject {
    /// Overwrite the magic.
    BadMagic,
    /// Claim a content size larger than the sub-buffer.
    ContentBeyondSubbuf,
    /// Write `seq - 1` (a seq going backwards), with a matching commit.
    SeqBackwards,
}

/// The producer side of a simulated channel: create it, write records,
/// flush, and open consumers over it. `Sync`: several threads may write
/// (each CPU's buffer has its own lock, shared across processes).
#[derive(Debug)]
pub struct SimChannel {
    core: Arc<SimCore>,
    remove_on_drop: bool,
}

fn mkfifo(path: &Path) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
        Error::Backend {
            backend: "relaymap-sim",
            step: "mkfifo",
            source: einval("path with NUL"),
        }
    })?;
    // SAFETY: `c` is a NUL-terminated path that lives for the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(sim_err("mkfifo")(io::Error::last_os_error()));
    }
    Ok(())
}

fn create_cpu_files(dir: &Path, cpu: u32, alloc: u64) -> Result<()> {
    let p = dir.join(format!("cpu{cpu}"));
    let _ = std::fs::remove_file(&p);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&p)
        .map_err(sim_err("create cpu file"))?;
    f.set_len(alloc).map_err(sim_err("size cpu file"))?;
    mkfifo(&wake_path(dir, cpu))
}

impl SimChannel {
    /// Creates a simulated channel in `dir` (created if missing; existing
    /// channel files are replaced).
    pub fn create(dir: impl AsRef<Path>, geometry: SimGeometry, mode: Mode) -> Result<SimChannel> {
        let dir = dir.as_ref();
        let g = geometry;
        let bad = |m: &str| Error::Backend {
            backend: "relaymap-sim",
            step: "create",
            source: einval(m),
        };
        let page = page_size();
        if !g.subbuf_size.is_multiple_of(page)
            || g.subbuf_size == 0
            || g.subbuf_size > u64::from(u32::MAX)
        {
            return Err(bad(&format!(
                "subbuf_size {} must be a multiple of the page size {page}",
                g.subbuf_size
            )));
        }
        if g.n_subbufs < 2 {
            return Err(bad("n_subbufs must be >= 2"));
        }
        if g.cpus == 0 || g.cpus > SIM_MAX_CPUS {
            return Err(bad("cpus must be 1..=64"));
        }
        let alloc = g.subbuf_size * g.n_subbufs;
        std::fs::create_dir_all(dir).map_err(sim_err("create dir"))?;
        for c in 0..g.cpus {
            create_cpu_files(dir, c, alloc)?;
        }
        // Build the control file under a temporary name, then rename: a
        // consumer never sees a half-written one.
        let tmp = dir.join(".control.tmp");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(sim_err("create control"))?;
        f.set_len(SHARED_SIZE as u64)
            .map_err(sim_err("size control"))?;
        let m = memmap2::MmapOptions::new()
            .len(SHARED_SIZE)
            .map_raw(&f)
            .map_err(sim_err("mmap control"))?;
        let max_record = (g.subbuf_size - abi::SUBBUF_HEADER_SIZE as u64) as u32;
        let mut info = abi::relaymap_info {
            size: std::mem::size_of::<abi::relaymap_info>() as u32,
            abi_version: abi::RELAYMAP_ABI_VERSION,
            header_size: abi::SUBBUF_HEADER_SIZE as u32,
            flags: if mode == Mode::Overwrite {
                abi::RELAYMAP_INFO_OVERWRITE
            } else {
                0
            },
            subbuf_size: g.subbuf_size,
            n_subbufs: g.n_subbufs,
            alloc_size: alloc,
            nr_cpu_ids: SIM_MAX_CPUS,
            max_record_size: max_record,
            max_data_size: max_record - abi::RECORD_HEADER_SIZE as u32,
            page_size: page as u32,
            ..Default::default()
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (d, s) in info
            .name
            .iter_mut()
            .zip(name.bytes().take(abi::RELAYMAP_NAME_MAX as usize - 1))
        {
            *d = s as core::ffi::c_char;
        }
        // SAFETY: getpid has no preconditions.
        let nonce = now_ns() ^ (u64::from(unsafe { libc::getpid() } as u32) << 32);
        // SAFETY: the fresh mapping is SHARED_SIZE zeroed bytes that nobody
        // else has mapped yet (the file has a temporary name); all-zero is a
        // valid SimShared (atomics and integers).
        unsafe {
            let sh = m.as_mut_ptr() as *mut SimShared;
            std::ptr::addr_of_mut!((*sh).info).write(info);
            (*sh).cpu_mask.store(
                if g.cpus == 64 {
                    u64::MAX
                } else {
                    (1u64 << g.cpus) - 1
                },
                Ordering::Relaxed,
            );
            (*sh)
                .reported_abi
                .store(abi::RELAYMAP_ABI_VERSION, Ordering::Relaxed);
            (*sh).uuid[0].store(nonce, Ordering::Relaxed);
            std::ptr::addr_of_mut!((*sh).magic).write(SIM_MAGIC);
        }
        m.flush().map_err(sim_err("flush control"))?;
        drop(m);
        std::fs::rename(&tmp, dir.join("control")).map_err(sim_err("publish control"))?;
        Ok(SimChannel {
            core: Arc::new(SimCore::open_dir(dir)?),
            remove_on_drop: false,
        })
    }

    /// Creates a simulated channel in a fresh directory under `/dev/shm`
    /// (or the temp dir), removed when this handle drops.
    pub fn create_temp(geometry: SimGeometry, mode: Mode) -> Result<SimChannel> {
        static N: AtomicU64 = AtomicU64::new(0);
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "relaymap-sim-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let mut s = SimChannel::create(&dir, geometry, mode)?;
        s.remove_on_drop = true;
        Ok(s)
    }

    /// Attaches a producer to an existing simulated channel (e.g. created by
    /// another process).
    pub fn attach(dir: impl AsRef<Path>) -> Result<SimChannel> {
        Ok(SimChannel {
            core: Arc::new(SimCore::open_dir(dir.as_ref())?),
            remove_on_drop: false,
        })
    }

    /// The channel directory (give it to [`crate::open_dir`] in a consumer).
    pub fn dir(&self) -> &Path {
        &self.core.dir
    }

    /// A consumer-side [`Channel`] over this directory
    /// ([`crate::open_dir`]).
    pub fn open(&self) -> Result<Channel> {
        crate::open_dir(self.dir())
    }

    /// The largest framed record (header included) a write accepts.
    pub fn max_record_size(&self) -> usize {
        self.core.info().max_record_size as usize
    }

    /// The largest data of one record.
    pub fn max_data_size(&self) -> usize {
        self.core.info().max_data_size as usize
    }

    /// Writes one binary record (`RELAYMAP_EVENT_RECORD`) with the current
    /// CLOCK_MONOTONIC time, like `relaymap_write()`: a full buffer
    /// (no-overwrite) drops it and counts it ([`WriteOutcome::Dropped`]),
    /// data above `max_data_size` is rejected and counted.
    pub fn write_record(&self, cpu: u32, type_: u16, data: &[u8]) -> Result<WriteOutcome> {
        self.stamp_event(
            cpu,
            abi::RELAYMAP_EVENT_RECORD as u16,
            type_,
            None,
            data,
            true,
        )
    }

    /// [`SimChannel::write_record`] with an explicit timestamp.
    pub fn write_record_ts(
        &self,
        cpu: u32,
        type_: u16,
        ts_ns: u64,
        data: &[u8],
    ) -> Result<WriteOutcome> {
        self.write_event(
            cpu,
            abi::RELAYMAP_EVENT_RECORD as u16,
            type_,
            ts_ns,
            data,
            true,
        )
    }

    /// Like [`SimChannel::write_record`], but like `relaymap_try_write()`:
    /// a full buffer refuses the record *without* counting a drop
    /// ([`WriteOutcome::Full`]), too large data is refused without counting.
    pub fn try_write_record(&self, cpu: u32, type_: u16, data: &[u8]) -> Result<WriteOutcome> {
        self.stamp_event(
            cpu,
            abi::RELAYMAP_EVENT_RECORD as u16,
            type_,
            None,
            data,
            false,
        )
    }

    /// [`SimChannel::try_write_record`] with an explicit timestamp.
    pub fn try_write_record_ts(
        &self,
        cpu: u32,
        type_: u16,
        ts_ns: u64,
        data: &[u8],
    ) -> Result<WriteOutcome> {
        self.write_event(
            cpu,
            abi::RELAYMAP_EVENT_RECORD as u16,
            type_,
            ts_ns,
            data,
            false,
        )
    }

    /// Writes a text record (`RELAYMAP_EVENT_PRINTF`, `RELAYMAP_REC_PRINTF`),
    /// like `relaymap_printf()`.
    pub fn write_printf(&self, cpu: u32, text: &str) -> Result<WriteOutcome> {
        self.stamp_event(
            cpu,
            abi::RELAYMAP_EVENT_PRINTF as u16,
            abi::RELAYMAP_REC_PRINTF as u16,
            None,
            text.as_bytes(),
            true,
        )
    }

    /// Writes one record with every header field given; `count` chooses
    /// `relaymap_write()` (drops and rejections counted) or
    /// `relaymap_try_write()` (neither counted).
    pub fn write_event(
        &self,
        cpu: u32,
        event_id: u16,
        type_: u16,
        ts_ns: u64,
        data: &[u8],
        count: bool,
    ) -> Result<WriteOutcome> {
        self.stamp_event(cpu, event_id, type_, Some(ts_ns), data, count)
    }

    /// [`SimChannel::write_event`]; `ts_ns == None` stamps the record with
    /// CLOCK_MONOTONIC once its room is reserved in the open sub-buffer
    /// (under the CPU's lock), as the module does, so that per CPU every
    /// record's time lies between its sub-buffer's timestamp_begin and
    /// timestamp_end and records never go back in time (CTF readers rely on
    /// both).
    fn stamp_event(
        &self,
        cpu: u32,
        event_id: u16,
        type_: u16,
        ts_ns: Option<u64>,
        data: &[u8],
        count: bool,
    ) -> Result<WriteOutcome> {
        let size = abi::RECORD_HEADER_SIZE + data.len();
        let mut hdr = [0u8; abi::RECORD_HEADER_SIZE];
        hdr[8..10].copy_from_slice(&event_id.to_ne_bytes());
        hdr[10..12].copy_from_slice(&type_.to_ne_bytes());
        hdr[12..16].copy_from_slice(&(data.len() as u32).to_ne_bytes());
        self.core
            .write_with(cpu, size, abi::RECORD_ALIGN, count, |dst| {
                let ts = ts_ns.unwrap_or_else(now_ns);
                hdr[0..8].copy_from_slice(&ts.to_ne_bytes());
                // SAFETY: write_with hands out `size` writable bytes of the
                // open sub-buffer (checked against its capacity), which no
                // reader slices before the sub-buffer is committed.
                unsafe {
                    std::ptr::copy_nonoverlapping(hdr.as_ptr(), dst, abi::RECORD_HEADER_SIZE);
                    std::ptr::copy_nonoverlapping(
                        data.as_ptr(),
                        dst.add(abi::RECORD_HEADER_SIZE),
                        data.len(),
                    );
                }
            })
    }

    /// Writes unframed bytes right after the previous ones (like
    /// `relaymap_write_raw()`); a full buffer drops and counts them.
    pub fn write_raw(&self, cpu: u32, bytes: &[u8]) -> Result<WriteOutcome> {
        self.raw_with(cpu, bytes, true)
    }

    /// Like [`SimChannel::write_raw`], but a full buffer refuses the bytes
    /// without counting a drop ([`WriteOutcome::Full`]).
    pub fn try_write_raw(&self, cpu: u32, bytes: &[u8]) -> Result<WriteOutcome> {
        self.raw_with(cpu, bytes, false)
    }

    fn raw_with(&self, cpu: u32, bytes: &[u8], count: bool) -> Result<WriteOutcome> {
        self.core.write_with(cpu, bytes.len(), 1, count, |dst| {
            // SAFETY: as in `write_event`: `bytes.len()` writable bytes.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) }
        })
    }

    /// Writes a load generator record (`RELAYMAP_REC_LOADGEN`) of
    /// `record_size` bytes, header included, exactly as
    /// `relaymap_loadgen.ko` frames it; a full buffer drops and counts it.
    pub fn write_loadgen(&self, cpu: u32, seq: u64, record_size: usize) -> Result<WriteOutcome> {
        let d = relaymap::loadgen_data(seq, cpu, record_size);
        self.write_record(cpu, abi::RELAYMAP_REC_LOADGEN as u16, &d)
    }

    /// Like [`SimChannel::write_loadgen`], but a full buffer refuses the
    /// record without counting ([`WriteOutcome::Full`]), as the load
    /// generator's lossless mode.
    pub fn try_write_loadgen(
        &self,
        cpu: u32,
        seq: u64,
        record_size: usize,
    ) -> Result<WriteOutcome> {
        let d = relaymap::loadgen_data(seq, cpu, record_size);
        self.try_write_record(cpu, abi::RELAYMAP_REC_LOADGEN as u16, &d)
    }

    /// Closes the current sub-buffer of one CPU or all (if it has data).
    pub fn flush(&self, cpu: Option<u32>) -> Result<()> {
        self.core.flush(cpu).map_err(sim_err("flush"))
    }

    /// The published cursor of a CPU (without the holder).
    pub fn cursor(&self, cpu: u32) -> Result<Cursor> {
        self.core.cursor(cpu).map_err(sim_err("cursor"))
    }

    /// Counters of one CPU or all.
    pub fn stats(&self, cpu: Option<u32>) -> Result<Stats> {
        self.core.stats(cpu).map_err(sim_err("stats"))
    }

    /// relay's own produced count, which runs ahead of the header commit.
    /// Never safe to read by; exposed so tests can show the window.
    pub fn relay_produced(&self, cpu: u32) -> Result<u64> {
        let st = self.core.cpu(cpu).map_err(sim_err("relay_produced"))?;
        Ok(st.relay_produced.load(Ordering::Acquire))
    }

    /// Spins this many times between relay's count (and wakeup) and the
    /// header commit, to widen the window a wrong consumer falls into.
    pub fn set_publish_delay(&self, spins: u64) {
        self.core
            .shared()
            .publish_delay_spins
            .store(spins, Ordering::Relaxed);
    }

    /// Makes `GET_INFO` report this ABI version (to test mismatch errors).
    pub fn set_reported_abi_version(&self, v: u32) {
        self.core.shared().reported_abi.store(v, Ordering::Relaxed);
    }

    /// Marks the channel destroyed by its creator
    /// (`RELAYMAP_INFO_DESTROYED`): consumers drain what is left.
    pub fn mark_destroyed(&self) {
        self.core
            .shared()
            .info_flags
            .fetch_or(abi::RELAYMAP_INFO_DESTROYED, Ordering::AcqRel);
    }

    /// Corrupts the next sub-buffer `cpu` closes.
    pub fn inject(&self, cpu: u32, what: Inject) -> Result<()> {
        let st = self.core.cpu(cpu).map_err(sim_err("inject"))?;
        let v = match what {
            Inject::BadMagic => 1,
            Inject::ContentBeyondSubbuf => 2,
            Inject::SeqBackwards => 3,
        };
        st.inject.store(v, Ordering::Relaxed);
        Ok(())
    }

    /// Brings a CPU online (hotplug): creates its files and sets its bit.
    pub fn add_cpu(&self, cpu: u32) -> Result<()> {
        if cpu >= SIM_MAX_CPUS {
            return Err(Error::Backend {
                backend: "relaymap-sim",
                step: "add_cpu",
                source: einval("cpu >= 64"),
            });
        }
        create_cpu_files(self.dir(), cpu, self.core.info().alloc_size)?;
        self.core
            .shared()
            .cpu_mask
            .fetch_or(1 << cpu, Ordering::AcqRel);
        Ok(())
    }
}

impl Drop for SimChannel {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = std::fs::remove_dir_all(&self.core.dir);
        }
    }
}
