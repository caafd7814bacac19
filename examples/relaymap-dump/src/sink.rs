//! Output: per-CPU files (with optional rotation) or one stream (stdout).
//! Every write is a `writev` of slices that point into the channel mapping:
//! no userspace copy.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::error::Failure;

/// Zero bytes to pad a record payload that does not end 8-byte aligned.
pub static ZEROS: [u8; 8] = [0; 8];

/// The most slices handed to one `writev` (Linux `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// One sub-buffer's contribution to the output: its bytes (a slice of the
/// mapping) and `pad` zero bytes after them.
#[derive(Debug, Clone, Copy)]
pub struct Unit<'a> {
    /// Bytes straight from the mapping.
    pub data: &'a [u8],
    /// Zero bytes appended (0..8), to keep records 8-byte aligned.
    pub pad: usize,
}

impl Unit<'_> {
    /// Bytes this unit adds to the output.
    pub fn len(&self) -> u64 {
        (self.data.len() + self.pad) as u64
    }
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

/// Flattens units into the slices of one `writev`.
fn slices<'a>(units: &[Unit<'a>]) -> Vec<&'a [u8]> {
    let mut v = Vec::with_capacity(units.len() * 2);
    for u in units {
        v.push(u.data);
        if u.pad > 0 {
            v.push(&ZEROS[..u.pad]);
        }
    }
    v
}

/// A write that stopped part-way.
#[derive(Debug)]
pub struct Partial {
    /// Units (sub-buffers) written completely, in order, before the error.
    pub done: usize,
    /// What failed.
    pub failure: Failure,
}

/// The output file of one CPU.
#[derive(Debug)]
pub struct CpuFile {
    cpu: u32,
    dir: PathBuf,
    file: File,
    path: PathBuf,
    index: u32,
    size: u64,
    /// Every file written for this CPU, oldest first.
    pub files: Vec<PathBuf>,
}

impl CpuFile {
    fn path_for(dir: &Path, cpu: u32, index: u32) -> PathBuf {
        if index == 0 {
            dir.join(format!("cpu{cpu}.out"))
        } else {
            dir.join(format!("cpu{cpu}.out.{index}"))
        }
    }

    fn create(dir: &Path, cpu: u32, index: u32) -> Result<(File, PathBuf), Failure> {
        let path = Self::path_for(dir, cpu, index);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|source| Failure::Output {
                path: path.clone(),
                source,
            })?;
        Ok((file, path))
    }

    fn rotate(&mut self) -> Result<(), Failure> {
        self.file
            .sync_all()
            .map_err(|e| Failure::write(self.path.clone(), e))?;
        let (file, path) = Self::create(&self.dir, self.cpu, self.index + 1)?;
        self.index += 1;
        self.file = file;
        self.path = path.clone();
        self.files.push(path);
        self.size = 0;
        Ok(())
    }
}

/// Where the dump goes.
#[derive(Debug)]
pub enum Sink {
    /// `cpuN.out` (then `cpuN.out.1`, `.2`, ... with `--rotate`) per CPU.
    Files {
        /// One per CPU, in the channel's CPU order.
        outs: Vec<CpuFile>,
        /// Rotation size in bytes.
        rotate: Option<u64>,
        /// The output directory.
        dir: PathBuf,
    },
    /// One stream (stdout), merged across CPUs.
    Stream {
        /// A duplicate of fd 1 (unbuffered).
        file: File,
    },
}

impl Sink {
    /// Creates the output directory (if needed) and one file per CPU.
    pub fn files(dir: &Path, cpus: &[u32], rotate: Option<u64>) -> Result<Sink, Failure> {
        std::fs::create_dir_all(dir).map_err(|source| Failure::Output {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut sink = Sink::Files {
            outs: Vec::new(),
            rotate,
            dir: dir.to_path_buf(),
        };
        for &cpu in cpus {
            sink.add_cpu(cpu)?;
        }
        Ok(sink)
    }

    /// Adds a CPU after the others (at the start, or one that came online
    /// later): creates its `cpuN.out`. Returns where its data goes, for the
    /// message.
    pub fn add_cpu(&mut self, cpu: u32) -> Result<String, Failure> {
        match self {
            Sink::Files { outs, dir, .. } => {
                let (file, path) = CpuFile::create(dir, cpu, 0)?;
                let shown = path.display().to_string();
                outs.push(CpuFile {
                    cpu,
                    dir: dir.clone(),
                    file,
                    path: path.clone(),
                    index: 0,
                    size: 0,
                    files: vec![path],
                });
                Ok(shown)
            }
            Sink::Stream { .. } => Ok("the merged stream".into()),
        }
    }

    /// Standard output, unbuffered (a duplicate of fd 1).
    pub fn stdout() -> Result<Sink, Failure> {
        let fd = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| Failure::Output {
                path: "<stdout>".into(),
                source,
            })?;
        Ok(Sink::Stream {
            file: File::from(fd),
        })
    }

    /// Writes the units of CPU number `idx` (index in the channel's CPU
    /// list) to its file, rotating between sub-buffers. On error, the file
    /// is cut back to the end of the last complete unit, so that it never
    /// holds part of a sub-buffer that stays in the kernel.
    pub fn write_cpu(&mut self, idx: usize, units: &[Unit<'_>]) -> Result<(), Partial> {
        let Sink::Files { outs, rotate, .. } = self else {
            unreachable!("write_cpu on a stream sink")
        };
        let out = &mut outs[idx];
        let mut k = 0;
        while k < units.len() {
            if let Some(r) = *rotate {
                if out.size > 0 && out.size + units[k].len() > r {
                    out.rotate()
                        .map_err(|failure| Partial { done: k, failure })?;
                }
            }
            let mut e = k;
            let mut seg = 0u64;
            while e < units.len() {
                let l = units[e].len();
                if let Some(r) = *rotate {
                    if out.size + seg > 0 && out.size + seg + l > r {
                        break;
                    }
                }
                seg += l;
                e += 1;
            }
            match write_all_vectored(&mut out.file, &slices(&units[k..e])) {
                Ok(_) => {
                    out.size += seg;
                    k = e;
                }
                Err((written, err)) => {
                    let mut whole = 0u64;
                    let mut n = 0;
                    for u in &units[k..e] {
                        if whole + u.len() > written {
                            break;
                        }
                        whole += u.len();
                        n += 1;
                    }
                    out.size += whole;
                    // Best effort: the failure is reported either way.
                    let _ = out.file.set_len(out.size);
                    return Err(Partial {
                        done: k + n,
                        failure: Failure::write(out.path.clone(), err),
                    });
                }
            }
        }
        Ok(())
    }

    /// Writes slices to the stream sink.
    pub fn write_stream(&mut self, bufs: &[&[u8]]) -> Result<(), Failure> {
        let Sink::Stream { file } = self else {
            unreachable!("write_stream on a file sink")
        };
        write_all_vectored(file, bufs)
            .map(|_| ())
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
            Sink::Stream { file } => match file.sync_all() {
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
