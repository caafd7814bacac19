//! [`SimBackend`]: the consumer side of a simulated channel, behind the
//! SDK's [`Backend`] / [`ConsumerBackend`] traits.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use relaymap::abi;
use relaymap::{Backend, ConsumerBackend, Cursor, Result, Stats};

use crate::shared::{drain_fifo, errno, open_fifo, poke_fifo, wake_path, SimCore};

fn lock_path(dir: &Path, cpu: u32) -> PathBuf {
    dir.join(format!("cpu{cpu}.lock"))
}

fn open_lock(dir: &Path, cpu: u32) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(lock_path(dir, cpu))
}

fn flock(f: &File, op: libc::c_int) -> io::Result<()> {
    // SAFETY: flock on an fd owned by `f`, no memory involved.
    if unsafe { libc::flock(f.as_raw_fd(), op | libc::LOCK_NB) } == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            errno(libc::EBUSY)
        } else {
            e
        })
    }
}

fn own_comm() -> [u8; 16] {
    let mut c = [0u8; 16];
    if let Ok(s) = std::fs::read_to_string("/proc/self/comm") {
        for (d, b) in c.iter_mut().zip(s.trim_end().bytes().take(15)) {
            *d = b;
        }
    }
    c
}

/// The consumer side of a simulated channel directory: what
/// [`crate::open_dir`] hands to [`relaymap::Channel::with_backend`].
/// Consumer claims are exclusive per CPU across processes (an `flock` on
/// `cpuN.lock`), like the kernel's.
#[derive(Debug)]
pub struct SimBackend {
    core: Arc<SimCore>,
    control: File,
    ops: Arc<AtomicU64>,
}

impl SimBackend {
    /// Opens the simulated channel in `dir`.
    pub fn open(dir: &Path) -> Result<SimBackend> {
        let core = SimCore::open_dir(dir)?;
        let control = File::open(dir.join("control")).map_err(|e| relaymap::Error::Open {
            path: dir.join("control"),
            source: e,
        })?;
        Ok(SimBackend {
            core: Arc::new(core),
            control,
            ops: Arc::new(AtomicU64::new(0)),
        })
    }

    fn count(&self) {
        self.ops.fetch_add(1, Ordering::Relaxed);
    }

    /// Is `cpu` claimed by some consumer (in any process)?
    fn held(&self, cpu: u32) -> bool {
        match open_lock(&self.core.dir, cpu) {
            Ok(f) => flock(&f, libc::LOCK_SH).is_err(),
            Err(_) => false,
        }
    }

    fn with_holder(&self, mut c: Cursor) -> Cursor {
        if self.held(c.cpu) {
            let st = &self.core.shared().cpus[c.cpu as usize];
            c.held = true;
            let pid = st.holder_pid.load(Ordering::Acquire);
            c.holder_pid = (pid != 0).then_some(pid);
            let mut comm = [0u8; 16];
            comm[..8].copy_from_slice(&st.holder_comm[0].load(Ordering::Acquire).to_ne_bytes());
            comm[8..].copy_from_slice(&st.holder_comm[1].load(Ordering::Acquire).to_ne_bytes());
            let n = comm.iter().position(|b| *b == 0).unwrap_or(16);
            c.holder_comm = (n > 0).then(|| String::from_utf8_lossy(&comm[..n]).into_owned());
        }
        c
    }

    fn claim(&self, cpu: u32) -> io::Result<SimConsumer> {
        self.core.cpu(cpu)?;
        let lock = open_lock(&self.core.dir, cpu)?;
        flock(&lock, libc::LOCK_EX)?;
        let st = &self.core.shared().cpus[cpu as usize];
        // SAFETY: getpid has no preconditions.
        st.holder_pid
            .store(unsafe { libc::getpid() }, Ordering::Release);
        let comm = own_comm();
        st.holder_comm[0].store(
            u64::from_ne_bytes(comm[..8].try_into().expect("8")),
            Ordering::Release,
        );
        st.holder_comm[1].store(
            u64::from_ne_bytes(comm[8..].try_into().expect("8")),
            Ordering::Release,
        );
        let buf = File::open(self.core.dir.join(format!("cpu{cpu}")))?;
        let wake = open_fifo(&wake_path(&self.core.dir, cpu))?;
        Ok(SimConsumer {
            core: self.core.clone(),
            cpu,
            buf,
            wake,
            ops: AtomicU64::new(0),
            chan_ops: self.ops.clone(),
            _lock: lock,
        })
    }
}

impl Backend for SimBackend {
    fn info(&self) -> io::Result<abi::relaymap_info> {
        self.count();
        Ok(self.core.info_now())
    }
    fn cursor(&self, cpu: u32) -> io::Result<Cursor> {
        self.count();
        Ok(self.with_holder(self.core.cursor(cpu)?))
    }
    fn cursors(&self) -> io::Result<Vec<Cursor>> {
        self.count();
        self.core
            .present()
            .into_iter()
            .map(|c| Ok(self.with_holder(self.core.cursor(c)?)))
            .collect()
    }
    fn stats(&self, cpu: Option<u32>) -> io::Result<Stats> {
        self.count();
        self.core.stats(cpu)
    }
    fn flush(&self, cpu: Option<u32>) -> io::Result<()> {
        self.count();
        self.core.flush(cpu)
    }
    fn reset(&self) -> io::Result<()> {
        self.count();
        if self.core.present().into_iter().any(|c| self.held(c)) {
            return Err(errno(libc::EBUSY));
        }
        self.core.reset()
    }
    fn open_consumer(&self, cpu: u32) -> io::Result<Box<dyn ConsumerBackend>> {
        self.count();
        Ok(Box::new(self.claim(cpu)?))
    }
    fn open_consumers(&self) -> io::Result<Vec<Box<dyn ConsumerBackend>>> {
        self.count();
        // All or nothing: a failure drops (releases) what was claimed.
        let mut v: Vec<Box<dyn ConsumerBackend>> = Vec::new();
        for c in self.core.present() {
            v.push(Box::new(self.claim(c)?));
        }
        Ok(v)
    }
    fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }
    fn fd(&self) -> BorrowedFd<'_> {
        self.control.as_fd()
    }
}

/// One CPU's simulated consumer: the claim (a held `flock`), the buffer
/// file (mapped by the SDK) and the CPU's wake FIFO.
#[derive(Debug)]
struct SimConsumer {
    core: Arc<SimCore>,
    cpu: u32,
    buf: File,
    wake: File,
    ops: AtomicU64,
    chan_ops: Arc<AtomicU64>,
    // Last: the claim ends when this closes (after holder_pid is cleared).
    _lock: File,
}

impl SimConsumer {
    fn count(&self) {
        self.ops.fetch_add(1, Ordering::Relaxed);
        self.chan_ops.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for SimConsumer {
    fn drop(&mut self) {
        let st = &self.core.shared().cpus[self.cpu as usize];
        st.holder_pid.store(0, Ordering::Release);
        st.holder_comm[0].store(0, Ordering::Release);
        st.holder_comm[1].store(0, Ordering::Release);
    }
}

impl ConsumerBackend for SimConsumer {
    fn cpu(&self) -> u32 {
        self.cpu
    }
    fn map_fd(&self) -> BorrowedFd<'_> {
        self.buf.as_fd()
    }
    fn poll_fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }
    fn cursor(&self) -> io::Result<Cursor> {
        self.count();
        // Level-triggered like relay's poll: clear the FIFO, read the
        // cursor, and re-arm it while sub-buffers are not handed back. A
        // publication after the read pokes the FIFO itself.
        drain_fifo(&self.wake);
        let mut c = self.core.cursor(self.cpu)?;
        if c.produced != c.consumed {
            poke_fifo(&self.wake);
        }
        c.held = true;
        // SAFETY: getpid has no preconditions.
        c.holder_pid = Some(unsafe { libc::getpid() });
        Ok(c)
    }
    fn put_consumed(&self, count: u64) -> io::Result<()> {
        self.count();
        self.core.put_consumed(self.cpu, count)?;
        // Readiness as relay computes it at poll time: still ready only if
        // sub-buffers remain not handed back. A publication after this
        // check pokes the FIFO itself.
        drain_fifo(&self.wake);
        let c = self.core.cursor(self.cpu)?;
        if c.produced != c.consumed {
            poke_fifo(&self.wake);
        }
        Ok(())
    }
    fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }
}
