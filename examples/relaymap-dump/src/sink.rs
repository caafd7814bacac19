//! Output: per-CPU files (with optional rotation) or one stream (stdout).
//! Every write is a `writev` of slices that point into the channel mapping:
//! no userspace copy.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::Failure;
use crate::outdir::{self, CpuResume};

/// Opens a data file for writing at explicit offsets: an existing one
/// (`existing`: continued after a restart, never truncated) or a new one
/// (`create_new`: an existing file is never overwritten). With `direct`,
/// also an O_DIRECT descriptor; a file system that refuses it (tmpfs:
/// EINVAL at open) turns `direct` off with a note.
fn open_data(
    path: &Path,
    existing: bool,
    direct: &mut bool,
    notes: &mut Vec<String>,
) -> Result<(File, Option<File>), Failure> {
    let mut o = OpenOptions::new();
    o.write(true);
    if existing {
        o.create(true).truncate(false);
    } else {
        o.create_new(true);
    }
    let file = o.open(path).map_err(|source| Failure::Output {
        path: path.to_path_buf(),
        source,
    })?;
    let mut d = None;
    if *direct {
        match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
        {
            Ok(f) => d = Some(f),
            Err(e) => {
                notes.push(format!(
                    "relaymap-dump: --direct: {} refuses O_DIRECT ({e}; tmpfs before Linux 6.6 does): writing through the page cache instead",
                    path.parent().unwrap_or(path).display()
                ));
                *direct = false;
            }
        }
    }
    Ok((file, d))
}

/// Zero bytes for the padding between records.
pub static ZEROS: [u8; 8] = [0; 8];

/// The most slices handed to one `writev` (Linux `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// Zero bytes to add at output position `pos` so that what follows starts
/// `align`-aligned.
fn pad_at(pos: u64, align: u64) -> usize {
    ((align - pos % align) % align) as usize
}

/// Writes `bufs` completely with `writev`, retrying short writes and EINTR.
/// On error returns the bytes written before it.
pub fn write_all_vectored(file: &mut File, bufs: &[&[u8]]) -> Result<u64, (u64, io::Error)> {
    let mut done = 0u64;
    let (mut i, mut off) = (0usize, 0usize);
    let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(bufs.len().min(IOV_MAX));
    while i < bufs.len() {
        if off >= bufs[i].len() {
            i += 1;
            off = 0;
            continue;
        }
        iov.clear();
        iov.push(IoSlice::new(&bufs[i][off..]));
        iov.extend(
            bufs[i + 1..]
                .iter()
                .take(IOV_MAX - 1)
                .filter(|b| !b.is_empty())
                .map(|b| IoSlice::new(b)),
        );
        match file.write_vectored(&iov) {
            Ok(0) => return Err((done, io::Error::from(io::ErrorKind::WriteZero))),
            Ok(mut n) => {
                done += n as u64;
                while n > 0 {
                    let left = bufs[i].len() - off;
                    if n >= left {
                        n -= left;
                        i += 1;
                        off = 0;
                    } else {
                        off += n;
                        n = 0;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((done, e)),
        }
    }
    Ok(done)
}

/// Writes `bufs` completely with `pwritev` at file offset `at`, retrying
/// short writes and EINTR. On error returns the bytes written before it.
pub fn pwrite_all_vectored(file: &File, bufs: &[&[u8]], at: u64) -> Result<u64, (u64, io::Error)> {
    let mut done = 0u64;
    let (mut i, mut off) = (0usize, 0usize);
    let mut iov: Vec<libc::iovec> = Vec::with_capacity(bufs.len().min(IOV_MAX));
    while i < bufs.len() {
        if off >= bufs[i].len() {
            i += 1;
            off = 0;
            continue;
        }
        iov.clear();
        let first = &bufs[i][off..];
        iov.push(libc::iovec {
            iov_base: first.as_ptr() as *mut libc::c_void,
            iov_len: first.len(),
        });
        iov.extend(
            bufs[i + 1..]
                .iter()
                .take(IOV_MAX - 1)
                .filter(|b| !b.is_empty())
                .map(|b| libc::iovec {
                    iov_base: b.as_ptr() as *mut libc::c_void,
                    iov_len: b.len(),
                }),
        );
        // SAFETY: every iovec points into a slice of `bufs` that lives for
        // the call (the kernel only reads them: pwritev does not write to
        // user memory); `file` is an open fd.
        let r = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                iov.as_ptr(),
                iov.len() as libc::c_int,
                (at + done) as libc::off_t,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err((done, e));
        }
        if r == 0 {
            return Err((done, io::Error::from(io::ErrorKind::WriteZero)));
        }
        let mut n = r as usize;
        done += n as u64;
        while n > 0 {
            let left = bufs[i].len() - off;
            if n >= left {
                n -= left;
                i += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
    }
    Ok(done)
}

/// A write that stopped part-way.
#[derive(Debug)]
pub struct Partial {
    /// Units (packets) written completely, in order, before the error.
    pub done: usize,
    /// What failed.
    pub failure: Failure,
}

/// How often written packets are made durable before they are handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncPolicy {
    /// `fdatasync` after every batch of a CPU, before its `PUT_CONSUMED`:
    /// nothing the kernel considers consumed is missing from the disk,
    /// even after a power loss.
    Batch,
    /// Only at exit (and at each rotation). Exactly once across crashes of
    /// the dumper (the page cache survives them), not across a machine
    /// crash.
    Exit,
}

/// Test-only fault injection (`RELAYMAP_DUMP_TEST_CRASH`): the dumper
/// SIGKILLs itself at a defined point, so host tests can reproduce the
/// states a crash leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// At the Nth packet write: half of the packet, then SIGKILL.
    MidWrite(u64),
    /// After the Nth batch was written and synced, before `PUT_CONSUMED`.
    AfterWrite(u64),
}

fn crash_from_env() -> Option<Crash> {
    let v = std::env::var("RELAYMAP_DUMP_TEST_CRASH").ok()?;
    let (what, n) = v.split_once(':')?;
    let n: u64 = n.parse().ok()?;
    match what {
        "mid-write" => Some(Crash::MidWrite(n)),
        "after-write" => Some(Crash::AfterWrite(n)),
        _ => None,
    }
}

fn die_now() -> ! {
    // SAFETY: kill(2) of this process with SIGKILL; no memory involved.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    unreachable!("SIGKILL returned")
}

/// The output file of one CPU.
#[derive(Debug)]
pub struct CpuFile {
    cpu: u32,
    file: File,
    /// The same file opened with O_DIRECT (`--direct`, where the file
    /// system accepts it).
    direct: Option<File>,
    path: PathBuf,
    index: u32,
    /// Bytes in the current file: where the next packet goes.
    size: u64,
    /// Sub-buffers below this seq are already in the trace (a restart):
    /// they are handed back without being written again.
    pub next_seq: Option<u64>,
    /// Every file written for this CPU, oldest first.
    pub files: Vec<PathBuf>,
}

impl CpuFile {
    /// Syncs the current file and starts the next one (`cpuN.out.K+1`).
    fn rotate(
        &mut self,
        dir: &Path,
        direct: &mut bool,
        notes: &mut Vec<String>,
    ) -> Result<(), Failure> {
        self.file
            .sync_all()
            .map_err(|e| Failure::write(self.path.clone(), e))?;
        let path = outdir::cpu_file(dir, self.cpu, self.index + 1);
        let (file, d) = open_data(&path, false, direct, notes)?;
        outdir::sync_dir(dir)?;
        self.index += 1;
        self.file = file;
        self.direct = d;
        self.path = path.clone();
        self.files.push(path);
        self.size = 0;
        Ok(())
    }
}

/// Where the dump goes. Per-CPU files hold whole packets (`Subbuf::packet()`)
/// back to back, each a whole number of pages; the merged stream holds
/// records (or raw payloads) with zeros before a unit that would start
/// unaligned.
#[derive(Debug)]
pub enum Sink {
    /// `cpuN.out` (then `cpuN.out.1`, `.2`, ... with `--rotate`) per CPU,
    /// plus `metadata`: a CTF trace.
    Files {
        /// One per CPU, in the channel's CPU order.
        outs: Vec<CpuFile>,
        /// Rotation size in bytes.
        rotate: Option<u64>,
        /// The output directory.
        dir: PathBuf,
        /// fdatasync policy.
        sync: SyncPolicy,
        /// Open files with O_DIRECT too (cleared when the file system refuses).
        direct: bool,
        /// Packets written through O_DIRECT / through the page cache.
        direct_writes: u64,
        /// Packets written through the page cache.
        buffered_writes: u64,
        /// fdatasync calls.
        syncs: u64,
        /// Where CPUs that join later continue (restart).
        resume: BTreeMap<u32, CpuResume>,
        /// Test-only fault injection.
        crash: Option<Crash>,
        /// Packet writes / batches so far (for `crash`).
        writes: u64,
        /// Notes to print (the O_DIRECT fallback), taken by the dumper.
        notes: Vec<String>,
    },
    /// One stream (stdout), merged across CPUs.
    Stream {
        /// A duplicate of fd 1 (unbuffered).
        file: File,
        /// Bytes written so far.
        pos: u64,
        /// 8 (records mode) or 1 (raw).
        align: u64,
    },
}

/// Options of a file sink.
#[derive(Debug, Clone, Copy)]
pub struct FileOpts {
    /// `--rotate`.
    pub rotate: Option<u64>,
    /// `--fsync`.
    pub sync: SyncPolicy,
    /// `--direct`.
    pub direct: bool,
}

fn is_aligned(b: &[u8]) -> bool {
    (b.as_ptr() as usize).is_multiple_of(DIRECT_ALIGN) && b.len().is_multiple_of(DIRECT_ALIGN)
}

/// O_DIRECT alignment of buffers, lengths and offsets (the page: packets
/// are whole pages of a page-aligned mapping).
const DIRECT_ALIGN: usize = 4096;

impl Sink {
    /// The per-CPU files of a trace in `dir` (prepared by
    /// [`crate::outdir::prepare`]): existing ones continue at their last
    /// whole packet, new ones are created (never truncated).
    pub fn files(
        dir: &Path,
        cpus: &[u32],
        opts: FileOpts,
        resume: BTreeMap<u32, CpuResume>,
    ) -> Result<Sink, Failure> {
        let mut sink = Sink::Files {
            outs: Vec::new(),
            rotate: opts.rotate,
            dir: dir.to_path_buf(),
            sync: opts.sync,
            direct: opts.direct,
            direct_writes: 0,
            buffered_writes: 0,
            syncs: 0,
            resume,
            crash: crash_from_env(),
            writes: 0,
            notes: Vec::new(),
        };
        for &cpu in cpus {
            sink.add_cpu(cpu)?;
        }
        Ok(sink)
    }

    /// Lines the sink wants printed (e.g. the O_DIRECT fallback).
    pub fn take_notes(&mut self) -> Vec<String> {
        match self {
            Sink::Files { notes, .. } => std::mem::take(notes),
            Sink::Stream { .. } => Vec::new(),
        }
    }

    /// The seq below which CPU `idx`'s sub-buffers are already on disk.
    pub fn next_seq(&self, idx: usize) -> Option<u64> {
        match self {
            Sink::Files { outs, .. } => outs[idx].next_seq,
            Sink::Stream { .. } => None,
        }
    }

    /// Records that CPU `idx`'s sub-buffers up to `seq` are on disk.
    pub fn wrote_through(&mut self, idx: usize, seq: u64) {
        if let Sink::Files { outs, .. } = self {
            outs[idx].next_seq = Some(seq + 1);
        }
    }

    /// (packets through O_DIRECT, through the page cache, fdatasync calls).
    pub fn write_counts(&self) -> (u64, u64, u64) {
        match self {
            Sink::Files {
                direct_writes,
                buffered_writes,
                syncs,
                ..
            } => (*direct_writes, *buffered_writes, *syncs),
            Sink::Stream { .. } => (0, 0, 0),
        }
    }

    /// Whether O_DIRECT is (still) in use.
    pub fn direct(&self) -> bool {
        matches!(self, Sink::Files { direct: true, .. })
    }

    /// Adds a CPU after the others (at the start, or one that came online
    /// later): continues its last file or creates `cpuN.out`. Returns where
    /// its data goes, for the message.
    pub fn add_cpu(&mut self, cpu: u32) -> Result<String, Failure> {
        match self {
            Sink::Files {
                outs,
                dir,
                resume,
                direct,
                notes,
                ..
            } => {
                let r = resume.remove(&cpu);
                let (index, size, next_seq, mut files) = match r {
                    Some(r) => (r.index, r.size, r.next_seq, r.files),
                    None => (0, 0, None, Vec::new()),
                };
                let path = outdir::cpu_file(dir, cpu, index);
                let (file, fdirect) =
                    open_data(&path, size > 0 || !files.is_empty(), direct, notes)?;
                if files.is_empty() {
                    files.push(path.clone());
                    outdir::sync_dir(dir)?;
                }
                let shown = path.display().to_string();
                outs.push(CpuFile {
                    cpu,
                    file,
                    direct: fdirect,
                    path,
                    index,
                    size,
                    next_seq,
                    files,
                });
                Ok(shown)
            }
            Sink::Stream { .. } => Ok("the merged stream".into()),
        }
    }

    /// Standard output, unbuffered (a duplicate of fd 1).
    pub fn stdout(align: u64) -> Result<Sink, Failure> {
        let fd = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| Failure::Output {
                path: "<stdout>".into(),
                source,
            })?;
        Ok(Sink::Stream {
            file: File::from(fd),
            pos: 0,
            align,
        })
    }

    /// Writes the packets of CPU number `idx` (index in the channel's CPU
    /// list) to its file, rotating between packets, then (`--fsync batch`)
    /// `fdatasync`s it: when this returns Ok, the packets are durable and
    /// may be handed back. On error the file is cut back to the end of the
    /// last complete packet, so that it never holds part of a sub-buffer
    /// that stays in the kernel.
    pub fn write_cpu(&mut self, idx: usize, units: &[&[u8]]) -> Result<(), Partial> {
        let Sink::Files {
            outs,
            rotate,
            dir,
            sync,
            direct,
            direct_writes,
            buffered_writes,
            syncs,
            crash,
            writes,
            notes,
            ..
        } = self
        else {
            unreachable!("write_cpu on a stream sink")
        };
        let rotate = *rotate;
        let out = &mut outs[idx];
        let too_big =
            |pos: u64, len: usize| rotate.is_some_and(|r| pos > 0 && pos + len as u64 > r);
        let mut k = 0;
        while k < units.len() {
            if too_big(out.size, units[k].len()) {
                let r = out.rotate(dir, direct, notes);
                r.map_err(|failure| Partial { done: k, failure })?;
            }
            let mut pos = out.size;
            let mut e = k;
            while e < units.len() && !too_big(pos, units[e].len()) {
                pos += units[e].len() as u64;
                e += 1;
            }
            let seg = &units[k..e];
            if let Some(Crash::MidWrite(n)) = *crash {
                if *writes + seg.len() as u64 >= n {
                    let j = (n - *writes - 1) as usize;
                    let mut before: Vec<&[u8]> = seg[..j].to_vec();
                    before.push(&seg[j][..seg[j].len() / 2]);
                    let _ = pwrite_all_vectored(&out.file, &before, out.size);
                    die_now();
                }
            }
            *writes += seg.len() as u64;
            let aligned = seg.iter().all(|u| is_aligned(u));
            let mut res = Err((0, io::Error::from_raw_os_error(libc::EINVAL)));
            let mut via_direct = false;
            if let (Some(d), true) = (&out.direct, aligned) {
                res = pwrite_all_vectored(d, seg, out.size);
                via_direct = true;
                if let Err((0, err)) = &res {
                    if err.raw_os_error() == Some(libc::EINVAL) {
                        // The file system took O_DIRECT at open but refuses
                        // this write: the page cache from now on.
                        notes.push(format!(
                            "relaymap-dump: --direct: {}: the file system refused an O_DIRECT write ({err}); writing through the page cache instead",
                            out.path.display()
                        ));
                        *direct = false;
                        out.direct = None;
                        via_direct = false;
                    }
                }
            }
            if !via_direct {
                res = pwrite_all_vectored(&out.file, seg, out.size);
            }
            match res {
                Ok(_) => {
                    if via_direct {
                        *direct_writes += seg.len() as u64;
                    } else {
                        *buffered_writes += seg.len() as u64;
                    }
                    out.size = pos;
                    k = e;
                }
                Err((written, err)) => {
                    let mut whole = 0;
                    let mut acc = 0u64;
                    for u in seg {
                        if acc + u.len() as u64 > written {
                            break;
                        }
                        acc += u.len() as u64;
                        whole += 1;
                    }
                    out.size += acc;
                    // Best effort: the failure is reported either way.
                    let _ = out.file.set_len(out.size);
                    return Err(Partial {
                        done: k + whole,
                        failure: Failure::write(out.path.clone(), err),
                    });
                }
            }
        }
        if *sync == SyncPolicy::Batch && !units.is_empty() {
            *syncs += 1;
            if let Err(e) = out.file.sync_data() {
                // Nothing of this batch is known durable: none of it is
                // handed back (it is delivered again; the restart logic
                // skips what did reach the disk).
                return Err(Partial {
                    done: 0,
                    failure: Failure::write(out.path.clone(), e),
                });
            }
        }
        if let Some(Crash::AfterWrite(n)) = *crash {
            if *writes >= n {
                die_now();
            }
        }
        Ok(())
    }

    /// Writes units to the stream sink, each starting aligned.
    pub fn write_stream(&mut self, units: &[&[u8]]) -> Result<(), Failure> {
        let Sink::Stream { file, pos, align } = self else {
            unreachable!("write_stream on a file sink")
        };
        let mut bufs: Vec<&[u8]> = Vec::with_capacity(units.len() * 2);
        let mut at = *pos;
        for u in units.iter().filter(|u| !u.is_empty()) {
            let pad = pad_at(at, *align);
            if pad > 0 {
                bufs.push(&ZEROS[..pad]);
            }
            bufs.push(u);
            at += (pad + u.len()) as u64;
        }
        let r = write_all_vectored(file, &bufs);
        *pos += match &r {
            Ok(n) => *n,
            Err((n, _)) => *n,
        };
        r.map(|_| ())
            .map_err(|(_, e)| Failure::write("<stdout>".into(), e))
    }

    /// fsyncs every output file and the directory (a pipe or terminal on
    /// stdout cannot be synced: that is not an error).
    pub fn sync(&mut self) -> Result<(), Failure> {
        match self {
            Sink::Files { outs, dir, .. } => {
                for o in outs.iter() {
                    o.file
                        .sync_all()
                        .map_err(|e| Failure::write(o.path.clone(), e))?;
                }
                if let Ok(d) = File::open(&*dir) {
                    let _ = d.sync_all();
                }
                Ok(())
            }
            Sink::Stream { file, .. } => match file.sync_all() {
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EROFS)) => {
                    Ok(())
                }
                r => r.map_err(|e| Failure::write("<stdout>".into(), e)),
            },
        }
    }

    /// Files written per CPU (empty for a stream).
    pub fn written_files(&self) -> Vec<Vec<PathBuf>> {
        match self {
            Sink::Files { outs, .. } => outs.iter().map(|o| o.files.clone()).collect(),
            Sink::Stream { .. } => Vec::new(),
        }
    }
}
