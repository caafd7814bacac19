//! The shared state of a simulated channel and the "kernel side" that
//! writes it: sub-buffer open/close in relay's order, records, cursors.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::RwLock;

use relaymap::abi::{self, off};
use relaymap::{Cursor, Error, Mode, Result, Stats};

/// CPUs a simulated channel can have.
pub const SIM_MAX_CPUS: u32 = 64;

/// First bytes of a simulated channel's `control` file (ABI 2 layout).
pub(crate) const SIM_MAGIC: [u8; 8] = *b"RMSIMCT2";

pub(crate) fn sim_err(step: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Backend {
        backend: "relaymap-sim",
        step,
        source,
    }
}

pub(crate) fn einval(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

pub(crate) fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_MONOTONIC exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v >= 4096 {
        v as u64
    } else {
        4096
    }
}

pub(crate) fn is_sim_control(path: &Path) -> bool {
    let mut m = [0u8; 8];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut m))
        .map(|_| m == SIM_MAGIC)
        .unwrap_or(false)
}

/// One CPU's producer and consumer state. Every field another party writes
/// after creation is an atomic.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SimCpu {
    pub lock: AtomicU32,
    pub has_open: AtomicU32,
    pub open_seq: AtomicU64,
    /// Bytes of events used: the end of the last record's data.
    pub offset: AtomicU64,
    /// The module's published count (after commit).
    pub produced: AtomicU64,
    /// relay's own count (before the header is final).
    pub relay_produced: AtomicU64,
    pub consumed: AtomicU64,
    pub records_written: AtomicU64,
    pub bytes_written: AtomicU64,
    pub records_dropped: AtomicU64,
    pub dropped_since_close: AtomicU64,
    pub records_rejected: AtomicU64,
    pub subbufs_lapped: AtomicU64,
    pub flushes: AtomicU64,
    pub inject: AtomicU32,
    pub holder_pid: AtomicI32,
    pub holder_comm: [AtomicU64; 2],
}

#[repr(C)]
#[derive(Debug)]
pub(crate) struct SimShared {
    pub magic: [u8; 8],
    /// Written once at creation, before any other party maps the file.
    pub info: abi::relaymap_info,
    pub cpu_mask: AtomicU64,
    pub publish_delay_spins: AtomicU64,
    pub resets: AtomicU64,
    pub uuid: [AtomicU64; 2],
    pub reported_abi: AtomicU32,
    pub info_flags: AtomicU32,
    pub cpus: [SimCpu; SIM_MAX_CPUS as usize],
}

pub(crate) const SHARED_SIZE: usize = std::mem::size_of::<SimShared>();

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The record is in the buffer.
    Written,
    /// The buffer was full (no-overwrite): the record was dropped and
    /// counted (`records_dropped`), as the module's `relaymap_write()`.
    Dropped,
    /// The buffer was full and the write was refused *without* counting,
    /// as `relaymap_try_write()` (for lossless writers that retry). Only
    /// the `try_*` writers return it.
    Full,
    /// The data is larger than `max_data_size`: refused, and counted
    /// (`records_rejected`) except by the `try_*` writers, as the module's
    /// `-EMSGSIZE`.
    Rejected,
}

/// The kernel side of a simulated channel: the shared state and
/// read-write mappings of the CPU buffers.
#[derive(Debug)]
pub(crate) struct SimCore {
    pub dir: PathBuf,
    ctl_map: memmap2::MmapRaw,
    bufs: RwLock<Vec<Option<memmap2::MmapRaw>>>,
    wakes: RwLock<Vec<Option<File>>>,
}

/// Lock guard for one CPU's producer state, shared across processes.
struct CpuLock<'a>(&'a SimCpu);

impl<'a> CpuLock<'a> {
    fn new(c: &'a SimCpu) -> Self {
        let mut spins = 0u32;
        while c
            .lock
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        CpuLock(c)
    }
}

impl Drop for CpuLock<'_> {
    fn drop(&mut self) {
        self.0.lock.store(0, Ordering::Release);
    }
}

pub(crate) fn wake_path(dir: &Path, cpu: u32) -> PathBuf {
    dir.join(format!("wake{cpu}"))
}

pub(crate) fn open_fifo(path: &Path) -> io::Result<File> {
    // O_RDWR: never blocks at open and never reports HUP.
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// Drains a FIFO (nonblocking).
pub(crate) fn drain_fifo(f: &File) {
    let mut b = [0u8; 256];
    while matches!((&*f).read(&mut b), Ok(n) if n > 0) {}
}

/// One byte into a FIFO; a full FIFO already means "wake up".
pub(crate) fn poke_fifo(f: &File) {
    let _ = (&*f).write(&[1]);
}

impl SimCore {
    pub fn shared(&self) -> &SimShared {
        // SAFETY: the control file is SHARED_SIZE bytes, mapped read-write
        // and page-aligned for the life of `self`. Every field another party
        // writes after creation is an atomic; `info` and `magic` are written
        // only by `create` before the file is published under its name.
        unsafe { &*(self.ctl_map.as_ptr() as *const SimShared) }
    }

    pub fn has_cpu(&self, cpu: u32) -> bool {
        cpu < SIM_MAX_CPUS && self.shared().cpu_mask.load(Ordering::Acquire) & (1 << cpu) != 0
    }

    pub fn cpu(&self, cpu: u32) -> io::Result<&SimCpu> {
        if !self.has_cpu(cpu) {
            return Err(errno(libc::EINVAL));
        }
        Ok(&self.shared().cpus[cpu as usize])
    }

    pub fn info(&self) -> &abi::relaymap_info {
        &self.shared().info
    }

    pub fn mode(&self) -> Mode {
        if self.info().flags & abi::RELAYMAP_INFO_OVERWRITE != 0 {
            Mode::Overwrite
        } else {
            Mode::NoOverwrite
        }
    }

    pub fn uuid(&self) -> [u8; 16] {
        let u = &self.shared().uuid;
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&u[0].load(Ordering::Acquire).to_ne_bytes());
        b[8..].copy_from_slice(&u[1].load(Ordering::Acquire).to_ne_bytes());
        b
    }

    /// `GET_INFO` as the simulated kernel answers it.
    pub fn info_now(&self) -> abi::relaymap_info {
        let sh = self.shared();
        let mut i = sh.info;
        i.abi_version = sh.reported_abi.load(Ordering::Relaxed);
        i.flags |= sh.info_flags.load(Ordering::Acquire);
        i.cpu_mask[0] = sh.cpu_mask.load(Ordering::Acquire);
        i.uuid = self.uuid();
        i
    }

    pub fn open_dir(dir: &Path) -> Result<SimCore> {
        let cpath = dir.join("control");
        let ctl = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&cpath)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => Error::NotAChannel {
                    path: dir.to_path_buf(),
                    reason: "no simulated control file".into(),
                },
                _ => Error::Open {
                    path: cpath.clone(),
                    source: e,
                },
            })?;
        let len = ctl.metadata().map_err(sim_err("stat control"))?.len();
        if len != SHARED_SIZE as u64 || !is_sim_control(&cpath) {
            return Err(Error::NotAChannel {
                path: dir.to_path_buf(),
                reason: format!(
                    "not a relaymap-sim ABI 2 control file ({len} bytes, expected {SHARED_SIZE} \
                     starting with {:?}): made by another version?",
                    std::str::from_utf8(&SIM_MAGIC).unwrap_or_default()
                ),
            });
        }
        let ctl_map = memmap2::MmapOptions::new()
            .len(SHARED_SIZE)
            .map_raw(&ctl)
            .map_err(sim_err("mmap control"))?;
        Ok(SimCore {
            dir: dir.to_path_buf(),
            ctl_map,
            bufs: RwLock::new(Vec::new()),
            wakes: RwLock::new(Vec::new()),
        })
    }

    /// The read-write mapping of `cpu`'s buffer (mapped on first use).
    fn buf_ptr(&self, cpu: u32) -> io::Result<*mut u8> {
        if let Some(Some(m)) = self.bufs.read().expect("sim lock").get(cpu as usize) {
            return Ok(m.as_mut_ptr());
        }
        let mut w = self.bufs.write().expect("sim lock");
        if w.len() <= cpu as usize {
            w.resize_with(cpu as usize + 1, || None);
        }
        if w[cpu as usize].is_none() {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(self.dir.join(format!("cpu{cpu}")))?;
            let m = memmap2::MmapOptions::new()
                .len(self.info().alloc_size as usize)
                .map_raw(&f)?;
            w[cpu as usize] = Some(m);
        }
        Ok(w[cpu as usize].as_ref().expect("just mapped").as_mut_ptr())
    }

    fn wake(&self, cpu: u32) {
        if let Some(Some(f)) = self.wakes.read().expect("sim lock").get(cpu as usize) {
            poke_fifo(f);
            return;
        }
        let mut w = self.wakes.write().expect("sim lock");
        if w.len() <= cpu as usize {
            w.resize_with(cpu as usize + 1, || None);
        }
        if w[cpu as usize].is_none() {
            w[cpu as usize] = open_fifo(&wake_path(&self.dir, cpu)).ok();
        }
        if let Some(f) = &w[cpu as usize] {
            poke_fifo(f);
        }
    }

    fn slot(&self, base: *mut u8, seq: u64) -> *mut u8 {
        let i = self.info();
        base.wrapping_add(((seq % i.n_subbufs) * i.subbuf_size) as usize)
    }

    /// Opens sub-buffer `produced` if the buffer has room (or laps, in
    /// overwrite mode). Lock held.
    fn try_open(&self, cpu: u32, st: &SimCpu, base: *mut u8) -> bool {
        let i = self.info();
        let s = st.produced.load(Ordering::Relaxed);
        let consumed = st.consumed.load(Ordering::Acquire);
        if s >= consumed + i.n_subbufs {
            if self.mode() == Mode::NoOverwrite {
                return false;
            }
            st.subbufs_lapped.fetch_add(1, Ordering::Relaxed);
        }
        let h = self.slot(base, s);
        let uuid = self.uuid();
        // SAFETY: `h` is the start of a sub-buffer inside the read-write
        // mapping of alloc_size bytes (slot < n_subbufs); every offset is a
        // field of the 112-byte header at its natural alignment, `commit`
        // 8-byte aligned. Readers only read this memory (volatile/atomic);
        // the CPU lock serialises writers.
        unsafe {
            let commit = &*(h.add(off::COMMIT) as *const AtomicU64);
            // Open: commit = 0 first, then smp_wmb, then the other fields
            // (the seqlock write side of the ABI).
            commit.store(0, Ordering::Relaxed);
            fence(Ordering::Release);
            std::ptr::write_volatile(h.add(off::MAGIC) as *mut u32, abi::RELAYMAP_CTF_MAGIC);
            std::ptr::write_volatile(h.add(off::UUID) as *mut [u8; 16], uuid);
            std::ptr::write_volatile(h.add(off::STREAM_ID) as *mut u32, 0);
            std::ptr::write_volatile(h.add(off::STREAM_INSTANCE_ID) as *mut u64, u64::from(cpu));
            std::ptr::write_volatile(h.add(off::TIMESTAMP_BEGIN) as *mut u64, now_ns());
            std::ptr::write_volatile(h.add(off::TIMESTAMP_END) as *mut u64, 0);
            std::ptr::write_volatile(h.add(off::CONTENT_SIZE) as *mut u64, 0);
            std::ptr::write_volatile(h.add(off::PACKET_SIZE) as *mut u64, 0);
            std::ptr::write_volatile(h.add(off::PACKET_SEQ_NUM) as *mut u64, s);
            std::ptr::write_volatile(h.add(off::EVENTS_DISCARDED) as *mut u64, 0);
            std::ptr::write_volatile(h.add(off::CPU_ID) as *mut u32, cpu);
            std::ptr::write_volatile(h.add(off::FLAGS) as *mut u32, 0);
            std::ptr::write_volatile(h.add(off::EVENTS_REJECTED) as *mut u64, 0);
            std::ptr::write_volatile(
                h.add(off::ABI_VERSION) as *mut u16,
                abi::RELAYMAP_ABI_VERSION as u16,
            );
            std::ptr::write_volatile(h.add(off::HEADER_SIZE) as *mut u16, i.header_size as u16);
            std::ptr::write_volatile(h.add(off::RESERVED) as *mut u32, 0);
        }
        st.open_seq.store(s, Ordering::Relaxed);
        st.offset.store(0, Ordering::Relaxed);
        st.has_open.store(1, Ordering::Relaxed);
        true
    }

    /// Closes the open sub-buffer in relay's order. Lock held.
    fn close(&self, cpu: u32, st: &SimCpu, base: *mut u8, flushed: bool) {
        let i = self.info();
        let s = st.open_seq.load(Ordering::Relaxed);
        let used = st.offset.load(Ordering::Relaxed);
        let content = u64::from(i.header_size) + used;
        let page = u64::from(i.page_size);
        let packet = content.div_ceil(page) * page;
        // relay: subbufs_produced++ and the reader wakeup come first...
        st.relay_produced.store(s + 1, Ordering::Release);
        self.wake(cpu);
        let spins = self.shared().publish_delay_spins.load(Ordering::Relaxed);
        for _ in 0..spins {
            std::hint::spin_loop();
        }
        // ...then subbuf_start finalises the header and commits.
        let dropped = st.dropped_since_close.swap(0, Ordering::Relaxed);
        let mut flags = 0;
        if flushed {
            flags |= abi::RELAYMAP_SB_FLUSHED;
            st.flushes.fetch_add(1, Ordering::Relaxed);
        }
        if dropped > 0 {
            flags |= abi::RELAYMAP_SB_DROPS;
        }
        let h = self.slot(base, s);
        let inject = st.inject.swap(0, Ordering::Relaxed);
        // SAFETY: as in `try_open`: header fields of a slot of the
        // read-write mapping, writers serialised by the CPU lock.
        unsafe {
            std::ptr::write_volatile(h.add(off::TIMESTAMP_END) as *mut u64, now_ns());
            std::ptr::write_volatile(h.add(off::CONTENT_SIZE) as *mut u64, content * 8);
            std::ptr::write_volatile(h.add(off::PACKET_SIZE) as *mut u64, packet * 8);
            std::ptr::write_volatile(
                h.add(off::EVENTS_DISCARDED) as *mut u64,
                st.records_dropped.load(Ordering::Relaxed),
            );
            std::ptr::write_volatile(
                h.add(off::EVENTS_REJECTED) as *mut u64,
                st.records_rejected.load(Ordering::Relaxed),
            );
            std::ptr::write_volatile(h.add(off::FLAGS) as *mut u32, flags);
            match inject {
                1 => std::ptr::write_volatile(h.add(off::MAGIC) as *mut u32, 0xdead_beef),
                2 => std::ptr::write_volatile(
                    h.add(off::CONTENT_SIZE) as *mut u64,
                    (i.subbuf_size + 8) * 8,
                ),
                3 => std::ptr::write_volatile(
                    h.add(off::PACKET_SEQ_NUM) as *mut u64,
                    s.wrapping_sub(1),
                ),
                _ => {}
            }
            let commit = &*(h.add(off::COMMIT) as *const AtomicU64);
            // smp_store_release of commit: every field above is visible to
            // a reader that loads commit == s + 1 with acquire.
            commit.store(s + 1, Ordering::Release);
        }
        st.has_open.store(0, Ordering::Relaxed);
        // The module's published count, after the commit mark.
        st.produced.store(s + 1, Ordering::Release);
        self.wake(cpu);
    }

    /// Writes `len` bytes at ALIGN(offset, align) of `cpu`'s open
    /// sub-buffer (opening one if needed). When the buffer is full: counts
    /// a drop and returns `Dropped` if `count`, else `Full`.
    pub fn write_with(
        &self,
        cpu: u32,
        len: usize,
        align: usize,
        count: bool,
        fill: impl FnOnce(*mut u8),
    ) -> Result<WriteOutcome> {
        let i = *self.info();
        let cap = (i.subbuf_size - u64::from(i.header_size)) as usize;
        let st = self.cpu(cpu).map_err(sim_err("write"))?;
        if len > i.max_record_size as usize {
            if count {
                st.records_rejected.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(WriteOutcome::Rejected);
        }
        let base = self.buf_ptr(cpu).map_err(sim_err("map cpu buffer"))?;
        let _g = CpuLock::new(st);
        let at = |o: u64| (o as usize).div_ceil(align) * align;
        if st.has_open.load(Ordering::Relaxed) == 1
            && at(st.offset.load(Ordering::Relaxed)) + len > cap
        {
            self.close(cpu, st, base, false);
            self.try_open(cpu, st, base);
        } else if st.has_open.load(Ordering::Relaxed) == 0 {
            self.try_open(cpu, st, base);
        }
        if st.has_open.load(Ordering::Relaxed) == 0 {
            if !count {
                return Ok(WriteOutcome::Full);
            }
            st.records_dropped.fetch_add(1, Ordering::Relaxed);
            st.dropped_since_close.fetch_add(1, Ordering::Relaxed);
            return Ok(WriteOutcome::Dropped);
        }
        let o = at(st.offset.load(Ordering::Relaxed));
        let s = st.open_seq.load(Ordering::Relaxed);
        let dst = self.slot(base, s).wrapping_add(i.header_size as usize + o);
        // Alignment padding between records is zero, as the module's.
        let pad_from = st.offset.load(Ordering::Relaxed) as usize;
        // SAFETY: `pad_from..o` lies inside the open sub-buffer's events
        // (o + len <= cap), which no reader slices before it is committed.
        unsafe {
            std::ptr::write_bytes(
                self.slot(base, s)
                    .wrapping_add(i.header_size as usize + pad_from),
                0,
                o - pad_from,
            )
        };
        fill(dst);
        st.offset.store((o + len) as u64, Ordering::Relaxed);
        st.records_written.fetch_add(1, Ordering::Relaxed);
        st.bytes_written.fetch_add(len as u64, Ordering::Relaxed);
        Ok(WriteOutcome::Written)
    }

    pub fn present(&self) -> Vec<u32> {
        let m = self.shared().cpu_mask.load(Ordering::Acquire);
        (0..SIM_MAX_CPUS).filter(|c| m & (1 << c) != 0).collect()
    }

    pub fn flush(&self, cpu: Option<u32>) -> io::Result<()> {
        let cpus = match cpu {
            Some(c) => {
                self.cpu(c)?;
                vec![c]
            }
            None => self.present(),
        };
        for c in cpus {
            let st = self.cpu(c)?;
            let base = self.buf_ptr(c)?;
            let _g = CpuLock::new(st);
            if st.has_open.load(Ordering::Relaxed) == 1 && st.offset.load(Ordering::Relaxed) > 0 {
                self.close(c, st, base, true);
                self.try_open(c, st, base);
            }
        }
        Ok(())
    }

    /// The cursor without the holder (the caller adds it).
    pub fn cursor(&self, cpu: u32) -> io::Result<Cursor> {
        let st = self.cpu(cpu)?;
        Ok(Cursor {
            cpu,
            // Acquire pairs with the Release store in `close`.
            produced: st.produced.load(Ordering::Acquire),
            consumed: st.consumed.load(Ordering::Acquire),
            records_dropped: st.records_dropped.load(Ordering::Relaxed),
            subbufs_lapped: st.subbufs_lapped.load(Ordering::Relaxed),
            records_rejected: st.records_rejected.load(Ordering::Relaxed),
            destroyed: self.shared().info_flags.load(Ordering::Acquire)
                & abi::RELAYMAP_INFO_DESTROYED
                != 0,
            ..Cursor::default()
        })
    }

    pub fn put_consumed(&self, cpu: u32, count: u64) -> io::Result<()> {
        let st = self.cpu(cpu)?;
        if count == 0 || count > self.info().n_subbufs {
            return Err(errno(libc::EINVAL));
        }
        let produced = st.produced.load(Ordering::Acquire);
        let consumed = st.consumed.load(Ordering::Relaxed);
        if consumed + count > produced {
            return Err(errno(libc::EINVAL));
        }
        st.consumed.store(consumed + count, Ordering::Release);
        Ok(())
    }

    pub fn stats(&self, cpu: Option<u32>) -> io::Result<Stats> {
        let cpus = match cpu {
            Some(c) => {
                self.cpu(c)?;
                vec![c]
            }
            None => self.present(),
        };
        let mut s = Stats {
            resets: self.shared().resets.load(Ordering::Relaxed),
            ..Stats::default()
        };
        for c in cpus {
            let st = self.cpu(c)?;
            s.records_written += st.records_written.load(Ordering::Relaxed);
            s.bytes_written += st.bytes_written.load(Ordering::Relaxed);
            s.records_dropped += st.records_dropped.load(Ordering::Relaxed);
            s.records_rejected += st.records_rejected.load(Ordering::Relaxed);
            s.subbufs_produced += st.produced.load(Ordering::Relaxed);
            s.subbufs_consumed += st.consumed.load(Ordering::Relaxed);
            s.subbufs_lapped += st.subbufs_lapped.load(Ordering::Relaxed);
            s.flushes += st.flushes.load(Ordering::Relaxed);
        }
        Ok(s)
    }

    /// Empties every buffer and restarts counters; new uuid. The caller
    /// checks that no consumer holds a CPU.
    pub fn reset(&self) -> io::Result<()> {
        for c in self.present() {
            let st = self.cpu(c)?;
            let _g = CpuLock::new(st);
            for a in [
                &st.open_seq,
                &st.offset,
                &st.produced,
                &st.relay_produced,
                &st.consumed,
                &st.records_written,
                &st.bytes_written,
                &st.records_dropped,
                &st.dropped_since_close,
                &st.records_rejected,
                &st.subbufs_lapped,
                &st.flushes,
            ] {
                a.store(0, Ordering::Release);
            }
            st.has_open.store(0, Ordering::Release);
        }
        let sh = self.shared();
        let r = sh.resets.fetch_add(1, Ordering::Relaxed) + 1;
        sh.uuid[1].store(r, Ordering::Release);
        Ok(())
    }
}
