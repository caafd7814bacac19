//! The output directory of a CTF dump: a new trace, the continuation of the
//! same channel instance's trace after a crash or a stop (exactly once), or
//! a refusal.
//!
//! * Missing or empty: a new trace (`metadata` written first, atomically).
//! * `metadata` of a relaymap-dump trace with the channel's UUID: continue.
//!   Per CPU, the last file is scanned packet by packet (headers only; the
//!   last whole packet's events are walked too). A torn tail (a packet cut
//!   short by a crash mid-write, or bytes that are not a packet) is cut
//!   back to the end of the last whole packet, and the sub-buffers whose
//!   seq is already on disk are skipped (handed back without writing).
//! * Anything else (another channel instance, files that are not this
//!   dumper's): refused, nothing changed, unless `--force`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use relaymap::ChannelInfo;

use crate::ctf::{self, Packet};
use crate::error::Failure;

/// The metadata file's name (CTF's).
pub const METADATA: &str = "metadata";

/// `cpuN.out` (index 0) or `cpuN.out.K`.
pub fn cpu_file(dir: &Path, cpu: u32, index: u32) -> PathBuf {
    if index == 0 {
        dir.join(format!("cpu{cpu}.out"))
    } else {
        dir.join(format!("cpu{cpu}.out.{index}"))
    }
}

/// `(cpu, index)` of a data file name written by this dumper.
pub fn parse_cpu_file(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("cpu")?;
    let (c, tail) = rest.split_once(".out")?;
    let cpu = c.parse::<u32>().ok()?;
    let index = match tail {
        "" => 0,
        t => t
            .strip_prefix('.')?
            .parse::<u32>()
            .ok()
            .filter(|i| *i > 0)?,
    };
    Some((cpu, index))
}

/// Where one CPU continues.
#[derive(Debug, Clone, Default)]
pub struct CpuResume {
    /// Files of this CPU already in the trace, oldest first.
    pub files: Vec<PathBuf>,
    /// Index of the file to append to.
    pub index: u32,
    /// Its valid length (whole packets).
    pub size: u64,
    /// The next seq to write: sub-buffers below it are on disk.
    pub next_seq: Option<u64>,
    /// Bytes cut off the tail.
    pub torn_bytes: u64,
}

/// The state the dump starts from.
#[derive(Debug, Default)]
pub struct Start {
    /// Continuing an existing trace (else a new one).
    pub resumed: bool,
    /// Per CPU that has files.
    pub cpus: std::collections::BTreeMap<u32, CpuResume>,
    /// Lines to print (what was cut, skipped, replaced).
    pub notes: Vec<String>,
    /// The directory's lock, held for the whole dump.
    pub lock: Option<DirLock>,
}

fn out_err(path: &Path, source: std::io::Error) -> Failure {
    Failure::Output {
        path: path.to_path_buf(),
        source,
    }
}

/// Scans a data file: the end of its last whole packet and that packet's
/// seq. A packet counts as whole when its header is valid, of this trace
/// (`uuid`) and CPU, and all of its `packet_size` bytes are in the file.
pub fn scan_file(
    path: &Path,
    uuid: &[u8; 16],
    cpu: u32,
) -> Result<(u64, Option<u64>, u64), Failure> {
    let f = File::open(path).map_err(|e| out_err(path, e))?;
    let len = f.metadata().map_err(|e| out_err(path, e))?.len();
    let mut pos = 0u64;
    let mut last: Option<(u64, u64, Packet)> = None; // (start, end, header)
    let mut hdr = [0u8; relaymap::abi::SUBBUF_HEADER_SIZE];
    while pos + hdr.len() as u64 <= len {
        if f.read_exact_at(&mut hdr, pos).is_err() {
            break;
        }
        let Ok(p) = Packet::parse(&hdr) else { break };
        if &p.uuid != uuid || p.cpu != cpu || pos + p.packet_size as u64 > len {
            break;
        }
        last = Some((pos, pos + p.packet_size as u64, p));
        pos += p.packet_size as u64;
    }
    // Only the header and the size are checked: a packet is written in one
    // write with its header, and after a machine crash a file system in
    // ordered mode does not show a size beyond the data that reached the
    // disk. (Its events are not walked: a raw writer's channel has none.)
    if let Some((_, end, p)) = last {
        return Ok((end, Some(p.seq), len - end));
    }
    Ok((0, None, len))
}

/// Files in `dir` that this dumper writes: `metadata` and data files, per
/// CPU sorted by index.
/// (has `metadata`, data files as (cpu, index, path), other names).
type Listing = (bool, Vec<(u32, u32, PathBuf)>, Vec<String>);

fn our_files(dir: &Path) -> Result<Listing, Failure> {
    let mut meta = false;
    let mut data = Vec::new();
    let mut other = Vec::new();
    for ent in fs::read_dir(dir).map_err(|e| out_err(dir, e))? {
        let ent = ent.map_err(|e| out_err(dir, e))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if name == METADATA {
            meta = true;
        } else if let Some((c, i)) = parse_cpu_file(&name) {
            data.push((c, i, ent.path()));
        } else if name == LOCK || name == METADATA_TMP {
            // Ours, hidden (CTF readers skip dot files).
        } else {
            other.push(name);
        }
    }
    data.sort();
    other.sort();
    Ok((meta, data, other))
}

/// The lock file (hidden, so CTF readers skip it): one dumper per
/// directory.
pub const LOCK: &str = ".relaymap-dump.lock";
const METADATA_TMP: &str = ".metadata.tmp";

/// Holds the directory's lock while the dump runs.
#[derive(Debug)]
pub struct DirLock(#[allow(dead_code)] File);

/// Takes `dir`'s lock (flock, released at exit, also by a crash).
pub fn lock(dir: &Path) -> Result<DirLock, Failure> {
    use std::os::fd::AsRawFd;
    let path = dir.join(LOCK);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| out_err(&path, e))?;
    // SAFETY: flock on an fd this function owns; no memory is involved.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(Failure::Refused(format!(
            "{}: another relaymap-dump is writing into this directory (it holds {LOCK}); \
             stop it or give another -o DIR",
            dir.display()
        )));
    }
    Ok(DirLock(f))
}

/// Writes the metadata atomically: a hidden temporary file, fsync,
/// rename, fsync of the directory.
pub fn write_metadata(dir: &Path, text: &str) -> Result<(), Failure> {
    let tmp = dir.join(METADATA_TMP);
    let mut f = File::create(&tmp).map_err(|e| out_err(&tmp, e))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| Failure::write(tmp.clone(), e))?;
    let dst = dir.join(METADATA);
    fs::rename(&tmp, &dst).map_err(|e| out_err(&dst, e))?;
    sync_dir(dir)
}

/// fsync of a directory (a new or renamed entry is durable).
pub fn sync_dir(dir: &Path) -> Result<(), Failure> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Failure::write(dir.to_path_buf(), e))
}

/// Decides how the dump starts in `dir` for channel `info`: new, continued
/// or refused (see the module doc). With `force`, another instance's trace
/// or colliding files are removed (and said so); other files are kept.
pub fn prepare(dir: &Path, info: &ChannelInfo, force: bool) -> Result<Start, Failure> {
    let mut start = Start::default();
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => {
            return Err(Failure::Refused(format!(
                "{} exists and is not a directory: give a new or empty directory to -o",
                dir.display()
            )))
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| out_err(dir, e))?;
            start.lock = Some(lock(dir)?);
            return Ok(start);
        }
        Err(e) => return Err(out_err(dir, e)),
    }
    let (has_meta, data, other) = our_files(dir)?;
    let meta = if has_meta {
        let p = dir.join(METADATA);
        let mut s = String::new();
        File::open(&p)
            .and_then(|mut f| f.read_to_string(&mut s))
            .map_err(|e| out_err(&p, e))?;
        ctf::parse_metadata(&s)
    } else {
        None
    };
    let ours_same = meta.as_ref().is_some_and(|m| m.uuid == info.uuid);
    if ours_same {
        start.lock = Some(lock(dir)?);
        start.resumed = true;
        let mut per: std::collections::BTreeMap<u32, Vec<(u32, PathBuf)>> = Default::default();
        for (c, i, p) in data {
            per.entry(c).or_default().push((i, p));
        }
        for (cpu, files) in per {
            let mut r = CpuResume {
                files: files.iter().map(|(_, p)| p.clone()).collect(),
                ..CpuResume::default()
            };
            // The newest file with a whole packet holds the CPU's last seq;
            // newer files (created by a rotation, then a crash) are empty
            // or torn: they are cut and written to next.
            let last_index = files.last().map_or(0, |(i, _)| *i);
            r.index = last_index;
            for (idx, p) in files.iter().rev() {
                let (end, seq, torn) = scan_file(p, &info.uuid, cpu)?;
                if *idx == last_index {
                    r.size = end;
                    if torn > 0 {
                        cut(p, end)?;
                        r.torn_bytes = torn;
                        start.notes.push(format!(
                            "relaymap-dump: {}: cut a torn tail of {torn} bytes after the last whole packet (offset {end})",
                            p.display()
                        ));
                    }
                } else if torn > 0 {
                    // Only the newest file can be torn (rotation syncs a
                    // file before starting the next).
                    return Err(Failure::Refused(format!(
                        "{}: {torn} bytes at offset {end} are not whole packets of this trace, \
                         and it is not the newest file of cpu{cpu}: not a dump this program \
                         left; move it away or give another -o DIR",
                        p.display()
                    )));
                }
                if let Some(s) = seq {
                    r.next_seq = Some(s + 1);
                    break;
                }
            }
            start.cpus.insert(cpu, r);
        }
        return Ok(start);
    }
    let nothing = !has_meta && data.is_empty() && other.is_empty();
    if nothing {
        start.lock = Some(lock(dir)?);
        return Ok(start);
    }
    if !force {
        let what = match &meta {
            Some(m) => format!(
                "a relaymap trace of another instance of channel {:?} (trace UUID {}; the channel is now {}: it was reset or recreated since)",
                m.channel,
                ctf::uuid_str(&m.uuid),
                ctf::uuid_str(&info.uuid)
            ),
            None => {
                let mut names: Vec<String> = other.clone();
                if has_meta {
                    names.insert(0, METADATA.into());
                }
                names.extend(data.iter().map(|(_, _, p)| {
                    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
                }));
                let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
                format!(
                    "files that are not a relaymap trace of this channel ({}{})",
                    shown.join(", "),
                    if names.len() > 5 { ", ..." } else { "" }
                )
            }
        };
        return Err(Failure::Refused(format!(
            "{} holds {what}: refused, nothing was changed; give a new or empty -o DIR, \
             or --force to start a new trace there (its metadata and cpuN.out* files are \
             deleted, other files kept)",
            dir.display()
        )));
    }
    // --force: a new trace; remove what would collide.
    start.lock = Some(lock(dir)?);
    let mut removed = Vec::new();
    if has_meta {
        let p = dir.join(METADATA);
        fs::remove_file(&p).map_err(|e| out_err(&p, e))?;
        removed.push(METADATA.to_string());
    }
    for (_, _, p) in &data {
        fs::remove_file(p).map_err(|e| out_err(p, e))?;
        removed.push(
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    if !removed.is_empty() {
        start.notes.push(format!(
            "relaymap-dump: --force: removed {} from {} ({})",
            removed.len(),
            dir.display(),
            removed.join(", ")
        ));
    }
    if !other.is_empty() {
        start.notes.push(format!(
            "relaymap-dump: --force: kept {} other file(s) in {} (CTF readers may refuse files that are not packets: {})",
            other.len(),
            dir.display(),
            other.join(", ")
        ));
    }
    Ok(start)
}

/// Cuts `path` to `len` bytes and makes that durable.
fn cut(path: &Path, len: u64) -> Result<(), Failure> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| out_err(path, e))?;
    f.set_len(len)
        .and_then(|_| f.sync_all())
        .map_err(|e| Failure::write(path.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(parse_cpu_file("cpu0.out"), Some((0, 0)));
        assert_eq!(parse_cpu_file("cpu12.out.3"), Some((12, 3)));
        assert_eq!(parse_cpu_file("cpu1.out.0"), None);
        assert_eq!(parse_cpu_file("cpu1.read"), None);
        assert_eq!(parse_cpu_file("metadata"), None);
        assert_eq!(cpu_file(Path::new("d"), 2, 0), PathBuf::from("d/cpu2.out"));
        assert_eq!(
            cpu_file(Path::new("d"), 2, 4),
            PathBuf::from("d/cpu2.out.4")
        );
    }
}
