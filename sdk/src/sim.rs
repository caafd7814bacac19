//! A kernel-free backend (feature `sim`): a userspace producer that writes
//! the identical layout into shared files, and a [`Control`] backend that
//! implements the control operations over them.
//!
//! A simulated channel is a directory that mimics the kernel's:
//!
//! ```text
//! cpu0 .. cpuN-1   regular files of alloc_size bytes (mapped shared)
//! control          the shared state (cursors, counters, geometry), mapped
//! wake             a FIFO: a byte per publication, so waiting works
//! ```
//!
//! [`Channel::open`] recognises it by the `control` file's magic and uses
//! [`SimControl`], so a consumer process needs no special code, and the
//! producer ([`SimChannel`]) may live in another process.
//!
//! The producer reproduces the hard cases of the real module: relay's order
//! (the reader is woken and relay counts a sub-buffer *before* its header is
//! final; only the module's published `produced` is safe), a full buffer
//! that drops records (counted; the `try_write_*` variants refuse without
//! counting, like `relaymap_try_write()`), and overwrite laps (counted).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::abi::{self, off};
use crate::channel::{Channel, ChannelBuilder};
use crate::control::{Control, Cursor, Stats};
use crate::error::{Error, Result};
use crate::records;
use crate::sim_detect::SIM_MAGIC;
use crate::walker::Mode;

/// CPUs a simulated channel can have.
pub const SIM_MAX_CPUS: u32 = 64;

/// Geometry of a simulated channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimGeometry {
    /// Bytes per sub-buffer (multiple of 8, > 64).
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

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The record is in the buffer.
    Written,
    /// The buffer was full (no-overwrite): the record was dropped and
    /// counted, as the module's `relaymap_write()` does.
    Dropped,
    /// The buffer was full (no-overwrite) and the write was refused
    /// *without* counting a drop, as the module's `relaymap_try_write()`
    /// does (for lossless writers that retry). Only the `try_write_*`
    /// functions return it.
    Full,
}

/// A corruption to apply to the next sub-buffer a CPU closes (to test
/// consumers' error paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inject {
    /// Overwrite the magic.
    BadMagic,
    /// Claim a payload larger than the sub-buffer.
    PayloadBeyondSubbuf,
    /// Write `seq - 1` (a seq going backwards), with a matching commit.
    SeqBackwards,
}

#[repr(C)]
#[derive(Debug)]
struct SimCpu {
    lock: AtomicU32,
    has_open: AtomicU32,
    open_seq: AtomicU64,
    offset: AtomicU64,
    /// The module's published count (after commit).
    produced: AtomicU64,
    /// relay's own count (before the header is final).
    relay_produced: AtomicU64,
    consumed: AtomicU64,
    records_written: AtomicU64,
    bytes_written: AtomicU64,
    records_dropped: AtomicU64,
    dropped_since_close: AtomicU64,
    subbufs_lapped: AtomicU64,
    flushes: AtomicU64,
    inject: AtomicU32,
    _pad: u32,
}

#[repr(C)]
#[derive(Debug)]
struct SimShared {
    magic: [u8; 8],
    /// Written once at creation, before any other party maps the file.
    info: abi::relaymap_info,
    cpu_mask: AtomicU64,
    publish_delay_spins: AtomicU64,
    resets: AtomicU64,
    reported_abi: AtomicU32,
    _pad: u32,
    cpus: [SimCpu; SIM_MAX_CPUS as usize],
}

const SHARED_SIZE: usize = std::mem::size_of::<SimShared>();

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_MONOTONIC always
    // exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn sim_err(step: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Sim { step, source }
}

fn einval(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

/// The shared machinery of producer and control backend: the state file
/// and read-write mappings of every CPU buffer (the "kernel side").
#[derive(Debug)]
struct SimCore {
    dir: PathBuf,
    ctl_map: memmap2::MmapRaw,
    bufs: RwLock<Vec<Option<memmap2::MmapRaw>>>,
    wake: File,
}

// Lock guard for one CPU's producer state, shared across processes.
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
            if spins % 64 == 0 {
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

impl SimCore {
    fn shared(&self) -> &SimShared {
        // SAFETY: the control file is SHARED_SIZE bytes, mapped read-write
        // and page-aligned for the life of `self`. Every field another party
        // writes after creation is an atomic; `info` and `magic` are written
        // only by `create` before the file is published by its name.
        unsafe { &*(self.ctl_map.as_ptr() as *const SimShared) }
    }

    fn cpu(&self, cpu: u32) -> io::Result<&SimCpu> {
        if cpu >= SIM_MAX_CPUS || self.shared().cpu_mask.load(Ordering::Acquire) & (1 << cpu) == 0 {
            return Err(einval("no such cpu"));
        }
        Ok(&self.shared().cpus[cpu as usize])
    }

    fn info(&self) -> &abi::relaymap_info {
        &self.shared().info
    }

    fn mode(&self) -> Mode {
        if self.info().flags & abi::RELAYMAP_INFO_OVERWRITE != 0 {
            Mode::Overwrite
        } else {
            Mode::NoOverwrite
        }
    }

    fn open_dir(dir: &Path) -> Result<SimCore> {
        let ctl = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join("control"))
            .map_err(|e| Error::open(dir.join("control"), e))?;
        let len = ctl.metadata().map_err(sim_err("stat control"))?.len();
        if len != SHARED_SIZE as u64 {
            return Err(Error::NotAChannel {
                dir: dir.to_path_buf(),
                reason: format!("simulated control file of {len} bytes, expected {SHARED_SIZE} (another SDK version?)"),
            });
        }
        let ctl_map = memmap2::MmapOptions::new()
            .len(SHARED_SIZE)
            .map_raw(&ctl)
            .map_err(sim_err("mmap control"))?;
        let wake = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(dir.join("wake"))
            .map_err(|e| Error::open(dir.join("wake"), e))?;
        let core = SimCore {
            dir: dir.to_path_buf(),
            ctl_map,
            bufs: RwLock::new(Vec::new()),
            wake,
        };
        if core.shared().magic != SIM_MAGIC {
            return Err(Error::NotAChannel {
                dir: dir.to_path_buf(),
                reason: "bad simulated control magic".into(),
            });
        }
        Ok(core)
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

    fn wake(&self) {
        // A full FIFO already means "wake up": ignore EAGAIN.
        let _ = (&self.wake).write(&[1]);
    }

    fn clear_wake(&self) {
        let mut b = [0u8; 256];
        while matches!((&self.wake).read(&mut b), Ok(n) if n > 0) {}
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
        // SAFETY: `h` is the start of a sub-buffer inside the read-write
        // mapping of alloc_size bytes (slot < n_subbufs); header offsets
        // are within the 64-byte header, commit is 8-byte aligned. Readers
        // only read this memory (volatile/atomic); the CPU lock serialises
        // writers.
        unsafe {
            let commit = &*(h.add(off::COMMIT) as *const AtomicU64);
            // Open: commit = 0 first, then smp_wmb, then the other fields
            // (the seqlock write side of the ABI).
            commit.store(0, Ordering::Relaxed);
            fence(Ordering::Release);
            std::ptr::write_volatile(h.add(off::MAGIC) as *mut u32, abi::RELAYMAP_SUBBUF_MAGIC);
            std::ptr::write_volatile(
                h.add(off::ABI_VERSION) as *mut u16,
                abi::RELAYMAP_ABI_VERSION as u16,
            );
            std::ptr::write_volatile(h.add(off::HEADER_SIZE) as *mut u16, i.header_size as u16);
            std::ptr::write_volatile(h.add(off::CPU) as *mut u32, cpu);
            std::ptr::write_volatile(h.add(off::FLAGS) as *mut u32, 0);
            std::ptr::write_volatile(h.add(off::SEQ) as *mut u64, s);
            std::ptr::write_volatile(h.add(off::TS_BEGIN) as *mut u64, now_ns());
            std::ptr::write_volatile(h.add(off::TS_END) as *mut u64, 0);
            std::ptr::write_volatile(h.add(off::PAYLOAD_SIZE) as *mut u32, 0);
            std::ptr::write_volatile(h.add(off::PADDING) as *mut u32, 0);
            std::ptr::write_volatile(h.add(off::RECORDS_DROPPED) as *mut u64, 0);
        }
        st.open_seq.store(s, Ordering::Relaxed);
        st.offset.store(0, Ordering::Relaxed);
        st.has_open.store(1, Ordering::Relaxed);
        true
    }

    /// Closes the open sub-buffer in relay's order. Lock held.
    fn close(&self, st: &SimCpu, base: *mut u8, flushed: bool) {
        let i = self.info();
        let s = st.open_seq.load(Ordering::Relaxed);
        let cap = i.subbuf_size - u64::from(i.header_size);
        let used = st.offset.load(Ordering::Relaxed);
        // relay: subbufs_produced++ and the reader wakeup come first...
        st.relay_produced.store(s + 1, Ordering::Release);
        self.wake();
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
            std::ptr::write_volatile(h.add(off::PAYLOAD_SIZE) as *mut u32, used as u32);
            std::ptr::write_volatile(h.add(off::PADDING) as *mut u32, (cap - used) as u32);
            std::ptr::write_volatile(h.add(off::TS_END) as *mut u64, now_ns());
            std::ptr::write_volatile(
                h.add(off::RECORDS_DROPPED) as *mut u64,
                st.records_dropped.load(Ordering::Relaxed),
            );
            std::ptr::write_volatile(h.add(off::FLAGS) as *mut u32, flags);
            match inject {
                1 => std::ptr::write_volatile(h.add(off::MAGIC) as *mut u32, 0xdead_beef),
                2 => std::ptr::write_volatile(
                    h.add(off::PAYLOAD_SIZE) as *mut u32,
                    i.subbuf_size as u32,
                ),
                3 => std::ptr::write_volatile(h.add(off::SEQ) as *mut u64, s.wrapping_sub(1)),
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
        self.wake();
    }

    /// Writes `len` bytes into `cpu`'s open sub-buffer (opening one if
    /// needed). When the buffer is full: counts a drop and returns
    /// `Dropped` if `count_drop` (`relaymap_write()`), else returns `Full`
    /// and counts nothing (`relaymap_try_write()`).
    fn write_with(
        &self,
        cpu: u32,
        len: usize,
        count_drop: bool,
        fill: impl FnOnce(*mut u8),
    ) -> Result<WriteOutcome> {
        let i = *self.info();
        let cap = (i.subbuf_size - u64::from(i.header_size)) as usize;
        if len > cap {
            return Err(Error::Sim {
                step: "write",
                source: einval("record larger than a sub-buffer's payload"),
            });
        }
        let st = self.cpu(cpu).map_err(sim_err("write"))?;
        let base = self.buf_ptr(cpu).map_err(sim_err("map cpu buffer"))?;
        let _g = CpuLock::new(st);
        if st.has_open.load(Ordering::Relaxed) == 1
            && st.offset.load(Ordering::Relaxed) as usize + len > cap
        {
            self.close(st, base, false);
            self.try_open(cpu, st, base);
        } else if st.has_open.load(Ordering::Relaxed) == 0 {
            self.try_open(cpu, st, base);
        }
        if st.has_open.load(Ordering::Relaxed) == 0 {
            if !count_drop {
                return Ok(WriteOutcome::Full);
            }
            st.records_dropped.fetch_add(1, Ordering::Relaxed);
            st.dropped_since_close.fetch_add(1, Ordering::Relaxed);
            return Ok(WriteOutcome::Dropped);
        }
        let o = st.offset.load(Ordering::Relaxed) as usize;
        let s = st.open_seq.load(Ordering::Relaxed);
        fill(self.slot(base, s).wrapping_add(i.header_size as usize + o));
        st.offset.store((o + len) as u64, Ordering::Relaxed);
        st.records_written.fetch_add(1, Ordering::Relaxed);
        st.bytes_written.fetch_add(len as u64, Ordering::Relaxed);
        Ok(WriteOutcome::Written)
    }

    fn flush(&self, cpu: Option<u32>) -> io::Result<()> {
        let cpus: Vec<u32> = match cpu {
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
                self.close(st, base, true);
                self.try_open(c, st, base);
            }
        }
        Ok(())
    }

    fn present(&self) -> Vec<u32> {
        let m = self.shared().cpu_mask.load(Ordering::Acquire);
        (0..SIM_MAX_CPUS).filter(|c| m & (1 << c) != 0).collect()
    }

    fn cursor(&self, cpu: u32) -> io::Result<Cursor> {
        let st = self.cpu(cpu)?;
        Ok(Cursor {
            // Acquire pairs with the Release store in `close`.
            produced: st.produced.load(Ordering::Acquire),
            consumed: st.consumed.load(Ordering::Acquire),
            records_dropped: st.records_dropped.load(Ordering::Relaxed),
            subbufs_lapped: st.subbufs_lapped.load(Ordering::Relaxed),
        })
    }

    fn put_consumed(&self, cpu: u32, count: u64) -> io::Result<()> {
        let st = self.cpu(cpu)?;
        if count == 0 || count > self.info().n_subbufs {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let produced = st.produced.load(Ordering::Acquire);
        let consumed = st.consumed.load(Ordering::Relaxed);
        if consumed + count > produced {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        st.consumed.store(consumed + count, Ordering::Release);
        Ok(())
    }

    fn stats(&self, cpu: Option<u32>) -> io::Result<Stats> {
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
            s.subbufs_produced += st.produced.load(Ordering::Relaxed);
            s.subbufs_consumed += st.consumed.load(Ordering::Relaxed);
            s.subbufs_lapped += st.subbufs_lapped.load(Ordering::Relaxed);
            s.flushes += st.flushes.load(Ordering::Relaxed);
        }
        Ok(s)
    }

    fn reset(&self) -> io::Result<()> {
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
                &st.subbufs_lapped,
                &st.flushes,
            ] {
                a.store(0, Ordering::Release);
            }
            st.has_open.store(0, Ordering::Release);
        }
        self.shared().resets.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The `sim` implementation of [`Control`]: what [`Channel::open`] uses for
/// a simulated channel directory.
#[derive(Debug)]
pub struct SimControl {
    core: SimCore,
    ops: AtomicU64,
}

impl SimControl {
    /// Opens the simulated channel in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<SimControl> {
        Ok(SimControl {
            core: SimCore::open_dir(dir.as_ref())?,
            ops: AtomicU64::new(0),
        })
    }
    fn count(&self) {
        self.ops.fetch_add(1, Ordering::Relaxed);
    }
}

impl Control for SimControl {
    fn info(&self) -> io::Result<abi::relaymap_info> {
        self.count();
        let mut i = *self.core.info();
        i.abi_version = self.core.shared().reported_abi.load(Ordering::Relaxed);
        i.cpu_mask[0] = self.core.shared().cpu_mask.load(Ordering::Acquire);
        Ok(i)
    }
    fn cursor(&self, cpu: u32) -> io::Result<Cursor> {
        self.count();
        self.core.cursor(cpu)
    }
    fn put_consumed(&self, cpu: u32, count: u64) -> io::Result<()> {
        self.count();
        self.core.put_consumed(cpu, count)
    }
    fn flush(&self, cpu: Option<u32>) -> io::Result<()> {
        self.count();
        self.core.flush(cpu)
    }
    fn reset(&self) -> io::Result<()> {
        self.count();
        self.core.reset()
    }
    fn stats(&self, cpu: Option<u32>) -> io::Result<Stats> {
        self.count();
        self.core.stats(cpu)
    }
    fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.core.wake.as_fd())
    }
    fn clear_wake(&self) {
        self.core.clear_wake();
    }
}

/// The producer side of a simulated channel (the "kernel"): create it, write
/// records, flush, and open consumers over it. `Sync`: several threads may
/// write (each CPU's buffer has its own lock, shared across processes).
#[derive(Debug)]
pub struct SimChannel {
    core: Arc<SimCore>,
    remove_on_drop: bool,
}

impl SimChannel {
    /// Creates a simulated channel in `dir` (created if missing; existing
    /// channel files are replaced).
    pub fn create(dir: impl AsRef<Path>, geometry: SimGeometry, mode: Mode) -> Result<SimChannel> {
        let dir = dir.as_ref();
        let g = geometry;
        let bad = |m: &str| Error::Sim {
            step: "create",
            source: einval(m),
        };
        if g.subbuf_size % 8 != 0
            || g.subbuf_size <= abi::SUBBUF_HEADER_SIZE as u64 + 16
            || g.subbuf_size > u32::MAX as u64
        {
            return Err(bad("subbuf_size must be a multiple of 8 and > 80"));
        }
        if g.n_subbufs < 2 {
            return Err(bad("n_subbufs must be >= 2"));
        }
        if g.cpus == 0 || g.cpus > SIM_MAX_CPUS {
            return Err(bad("cpus must be 1..=64"));
        }
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
        let alloc = (g.subbuf_size * g.n_subbufs).div_ceil(page) * page;
        std::fs::create_dir_all(dir).map_err(sim_err("create dir"))?;
        let wake = dir.join("wake");
        let _ = std::fs::remove_file(&wake);
        nix::unistd::mkfifo(&wake, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(
            |e| Error::Sim {
                step: "mkfifo wake",
                source: io::Error::from_raw_os_error(e as i32),
            },
        )?;
        for c in 0..g.cpus {
            create_buf_file(dir, c, alloc)?;
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
        let mut info = abi::relaymap_info {
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
            max_record_size: (g.subbuf_size - abi::SUBBUF_HEADER_SIZE as u64) as u32,
            ..Default::default()
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (d, s) in info
            .name
            .iter_mut()
            .zip(name.bytes().take(abi::RELAYMAP_NAME_MAX - 1))
        {
            *d = s;
        }
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

    /// The channel directory (give it to [`Channel::open`], or to a
    /// consumer program).
    pub fn dir(&self) -> &Path {
        &self.core.dir
    }

    /// Opens a consumer over this channel (`Channel::open(self.dir())`).
    pub fn consumer(&self) -> Result<Channel> {
        Channel::open(self.dir())
    }

    /// Builder for a consumer over this channel.
    pub fn consumer_builder(&self) -> ChannelBuilder {
        Channel::builder(self.dir())
    }

    /// The largest record (header included) a write accepts.
    pub fn max_record_size(&self) -> usize {
        self.core.info().max_record_size as usize
    }

    /// Writes one framed record (`struct relaymap_record` + data, padded to
    /// 8 bytes) with the current CLOCK_MONOTONIC time, like
    /// `relaymap_write()`: a full buffer (no-overwrite) drops the record and
    /// counts it ([`WriteOutcome::Dropped`]).
    pub fn write_record(&self, cpu: u32, type_: u16, data: &[u8]) -> Result<WriteOutcome> {
        self.write_record_ts(cpu, type_, now_ns(), data)
    }

    /// [`SimChannel::write_record`] with an explicit timestamp.
    pub fn write_record_ts(
        &self,
        cpu: u32,
        type_: u16,
        ts_ns: u64,
        data: &[u8],
    ) -> Result<WriteOutcome> {
        self.record_with(cpu, type_, ts_ns, data, true)
    }

    /// Like [`SimChannel::write_record`], but like `relaymap_try_write()`:
    /// a full buffer refuses the record *without* counting a drop
    /// ([`WriteOutcome::Full`]), for lossless writers that retry.
    pub fn try_write_record(&self, cpu: u32, type_: u16, data: &[u8]) -> Result<WriteOutcome> {
        self.try_write_record_ts(cpu, type_, now_ns(), data)
    }

    /// [`SimChannel::try_write_record`] with an explicit timestamp.
    pub fn try_write_record_ts(
        &self,
        cpu: u32,
        type_: u16,
        ts_ns: u64,
        data: &[u8],
    ) -> Result<WriteOutcome> {
        self.record_with(cpu, type_, ts_ns, data, false)
    }

    fn record_with(
        &self,
        cpu: u32,
        type_: u16,
        ts_ns: u64,
        data: &[u8],
        count_drop: bool,
    ) -> Result<WriteOutcome> {
        let size = abi::RECORD_HEADER_SIZE + data.len();
        let aligned = size.div_ceil(abi::RELAYMAP_RECORD_ALIGN) * abi::RELAYMAP_RECORD_ALIGN;
        let mut hdr = Vec::with_capacity(abi::RECORD_HEADER_SIZE);
        records::encode_record(&mut hdr, type_, ts_ns, &[]);
        hdr[0..4].copy_from_slice(&(size as u32).to_le_bytes());
        self.core.write_with(cpu, aligned, count_drop, |dst| {
            // SAFETY: write_with hands out `aligned` writable bytes of the
            // open sub-buffer (checked against its capacity), which no
            // reader slices before the sub-buffer is committed.
            unsafe {
                std::ptr::copy_nonoverlapping(hdr.as_ptr(), dst, abi::RECORD_HEADER_SIZE);
                std::ptr::copy_nonoverlapping(
                    data.as_ptr(),
                    dst.add(abi::RECORD_HEADER_SIZE),
                    data.len(),
                );
                std::ptr::write_bytes(dst.add(size), 0, aligned - size);
            }
        })
    }

    /// Writes unframed bytes (like `relaymap_write_raw()`); a full buffer
    /// drops and counts them ([`WriteOutcome::Dropped`]).
    pub fn write_raw(&self, cpu: u32, bytes: &[u8]) -> Result<WriteOutcome> {
        self.raw_with(cpu, bytes, true)
    }

    /// Like [`SimChannel::write_raw`], but a full buffer refuses the bytes
    /// without counting a drop ([`WriteOutcome::Full`]).
    pub fn try_write_raw(&self, cpu: u32, bytes: &[u8]) -> Result<WriteOutcome> {
        self.raw_with(cpu, bytes, false)
    }

    fn raw_with(&self, cpu: u32, bytes: &[u8], count_drop: bool) -> Result<WriteOutcome> {
        self.core.write_with(cpu, bytes.len(), count_drop, |dst| {
            // SAFETY: as in `record_with`: `bytes.len()` writable bytes.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) }
        })
    }

    /// Writes a load generator record (`RELAYMAP_REC_LOADGEN`) of
    /// `record_size` bytes, exactly as `relaymap_loadgen.ko` frames it; a
    /// full buffer drops and counts it ([`WriteOutcome::Dropped`]), as the
    /// load generator's drop mode (`relaymap_write()`).
    pub fn write_loadgen(&self, cpu: u32, seq: u64, record_size: usize) -> Result<WriteOutcome> {
        let d = records::loadgen_data(seq, cpu, record_size);
        self.write_record(cpu, abi::RELAYMAP_REC_LOADGEN, &d)
    }

    /// Like [`SimChannel::write_loadgen`], but a full buffer refuses the
    /// record without counting a drop ([`WriteOutcome::Full`]), as the load
    /// generator's lossless mode (`relaymap_try_write()`, then retry).
    pub fn try_write_loadgen(
        &self,
        cpu: u32,
        seq: u64,
        record_size: usize,
    ) -> Result<WriteOutcome> {
        let d = records::loadgen_data(seq, cpu, record_size);
        self.try_write_record(cpu, abi::RELAYMAP_REC_LOADGEN, &d)
    }

    /// Closes the current sub-buffer of one CPU or all (if it has data).
    pub fn flush(&self, cpu: Option<u32>) -> Result<()> {
        self.core.flush(cpu).map_err(sim_err("flush"))
    }

    /// The published cursor of a CPU.
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

    /// Corrupts the next sub-buffer `cpu` closes.
    pub fn inject(&self, cpu: u32, what: Inject) -> Result<()> {
        let st = self.core.cpu(cpu).map_err(sim_err("inject"))?;
        let v = match what {
            Inject::BadMagic => 1,
            Inject::PayloadBeyondSubbuf => 2,
            Inject::SeqBackwards => 3,
        };
        st.inject.store(v, Ordering::Relaxed);
        Ok(())
    }

    /// Brings a CPU online (hotplug): creates `cpu<N>` and sets its bit.
    pub fn add_cpu(&self, cpu: u32) -> Result<()> {
        if cpu >= SIM_MAX_CPUS {
            return Err(Error::Sim {
                step: "add_cpu",
                source: einval("cpu >= 64"),
            });
        }
        create_buf_file(self.dir(), cpu, self.core.info().alloc_size)?;
        self.core
            .shared()
            .cpu_mask
            .fetch_or(1 << cpu, Ordering::AcqRel);
        Ok(())
    }
}

fn create_buf_file(dir: &Path, cpu: u32, alloc: u64) -> Result<()> {
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
    f.set_len(alloc).map_err(sim_err("size cpu file"))
}

impl Drop for SimChannel {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = std::fs::remove_dir_all(&self.core.dir);
        }
    }
}
