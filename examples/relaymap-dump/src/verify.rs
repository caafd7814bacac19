//! `relaymap-dump verify`: checks a dump of load generator records.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;
use relaymap::{abi, LoadgenRecord};

use crate::error::{code, Failure};

/// `verify` options.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A dump directory (cpuN.out, cpuN.out.1, ...) or one merged stream file.
    pub dump: PathBuf,
    /// The load generator's `status` file at the end of the run: every CPU
    /// must have exactly `written` records in the dump (nothing lost,
    /// nothing extra).
    #[arg(long, value_name = "FILE")]
    pub loadgen_status: Option<PathBuf>,
    /// A `status` taken earlier (e.g. when the dumper was signalled): every
    /// CPU must have at least `written` records (more may follow).
    #[arg(long, value_name = "FILE")]
    pub at_least: Option<PathBuf>,
}

/// One CPU's verdict.
#[derive(Debug, Default, Clone)]
struct CpuCheck {
    records: u64,
    next_seq: u64,
    gaps: u64,
    corrupt: u64,
    first_error: Option<String>,
}

impl CpuCheck {
    fn bad(&mut self, what: String) {
        self.corrupt += 1;
        self.first_error.get_or_insert(what);
    }
}

/// `cpu N attempts A written W dropped D` lines of a loadgen status file.
fn parse_status(path: &Path) -> Result<BTreeMap<u32, (u64, u64, u64)>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Verify(format!("cannot read {}: {e}", path.display())))?;
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() >= 8
            && w[0] == "cpu"
            && w[2] == "attempts"
            && w[4] == "written"
            && w[6] == "dropped"
        {
            let num = |s: &str| {
                s.parse::<u64>()
                    .map_err(|_| Failure::Verify(format!("{}: bad line {line:?}", path.display())))
            };
            m.insert(num(w[1])? as u32, (num(w[3])?, num(w[5])?, num(w[7])?));
        }
    }
    if m.is_empty() {
        return Err(Failure::Verify(format!(
            "{}: no `cpu N attempts A written W dropped D` lines",
            path.display()
        )));
    }
    Ok(m)
}

/// Files of one CPU (oldest first), or of the merged stream (`None`).
type FileGroup = (Option<u32>, Vec<PathBuf>);

/// The dump's files: per CPU, or one merged stream.
fn dump_files(dump: &Path) -> Result<Vec<FileGroup>, Failure> {
    let md =
        std::fs::metadata(dump).map_err(|e| Failure::Verify(format!("{}: {e}", dump.display())))?;
    if !md.is_dir() {
        return Ok(vec![(None, vec![dump.to_path_buf()])]);
    }
    let mut per: BTreeMap<u32, Vec<(u32, PathBuf)>> = BTreeMap::new();
    let rd =
        std::fs::read_dir(dump).map_err(|e| Failure::Verify(format!("{}: {e}", dump.display())))?;
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("cpu") else {
            continue;
        };
        let (cpu, idx) = match rest.split_once(".out") {
            Some((c, "")) => (c.parse::<u32>().ok(), Some(0)),
            Some((c, i)) => (
                c.parse::<u32>().ok(),
                i.strip_prefix('.').and_then(|i| i.parse::<u32>().ok()),
            ),
            None => (None, None),
        };
        if let (Some(c), Some(i)) = (cpu, idx) {
            per.entry(c).or_default().push((i, ent.path()));
        }
    }
    if per.is_empty() {
        return Err(Failure::Verify(format!(
            "{}: no cpuN.out files",
            dump.display()
        )));
    }
    Ok(per
        .into_iter()
        .map(|(c, mut v)| {
            v.sort();
            (Some(c), v.into_iter().map(|(_, p)| p).collect())
        })
        .collect())
}

/// Streams the framed records of `files` (one logical stream) into `f`.
/// Returns an error message on broken framing.
fn for_each_record(files: &[PathBuf], mut f: impl FnMut(u16, u64, &[u8])) -> Result<(), String> {
    let mut buf: Vec<u8> = Vec::with_capacity(8 << 20);
    let mut pos = 0usize;
    let mut offset = 0u64;
    let mut chunk = vec![0u8; 4 << 20];
    for path in files {
        let mut file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        loop {
            let n = file
                .read(&mut chunk)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if n == 0 {
                break;
            }
            buf.drain(..pos);
            offset += pos as u64;
            pos = 0;
            buf.extend_from_slice(&chunk[..n]);
            while buf.len() - pos >= abi::RECORD_HEADER_SIZE {
                let size =
                    u32::from_le_bytes(buf[pos..pos + 4].try_into().expect("4 bytes")) as usize;
                if size < abi::RECORD_HEADER_SIZE {
                    return Err(format!(
                        "byte {}: record size {size} below the record header",
                        offset + pos as u64
                    ));
                }
                let total = (size + 7) & !7;
                if buf.len() - pos < total {
                    break;
                }
                let type_ = u16::from_le_bytes([buf[pos + 4], buf[pos + 5]]);
                let ts = u64::from_le_bytes(buf[pos + 8..pos + 16].try_into().expect("8 bytes"));
                f(type_, ts, &buf[pos + abi::RECORD_HEADER_SIZE..pos + size]);
                pos += total;
            }
        }
    }
    if buf.len() > pos {
        return Err(format!(
            "{} trailing bytes at the end: a truncated record",
            buf.len() - pos
        ));
    }
    Ok(())
}

/// The key, in the per-CPU table, of what a merged stream holds that names
/// no CPU.
const UNATTRIBUTED: u32 = u32::MAX;

/// Runs `verify`; returns the exit code.
pub fn main(args: VerifyArgs) -> i32 {
    match run(&args) {
        Ok(rc) => rc,
        Err(e) => {
            eprintln!("relaymap-dump verify: {e}");
            e.exit_code()
        }
    }
}

fn run(args: &VerifyArgs) -> Result<i32, Failure> {
    let exact = args
        .loadgen_status
        .as_deref()
        .map(parse_status)
        .transpose()?;
    let at_least = args.at_least.as_deref().map(parse_status).transpose()?;
    let mut cpus: BTreeMap<u32, CpuCheck> = BTreeMap::new();
    for (file_cpu, files) in dump_files(&args.dump)? {
        let mut check = |type_: u16, _ts: u64, data: &[u8]| {
            let lg = (type_ == abi::RELAYMAP_REC_LOADGEN)
                .then(|| LoadgenRecord::parse(data))
                .flatten();
            let Some(lg) = lg else {
                let c = cpus.entry(file_cpu.unwrap_or(UNATTRIBUTED)).or_default();
                c.bad(format!(
                    "record {} (type {type_:#x}): not a valid loadgen record (checksum/fill)",
                    c.records + c.corrupt
                ));
                return;
            };
            if let Some(fc) = file_cpu {
                if lg.cpu != fc {
                    let c = cpus.entry(fc).or_default();
                    c.bad(format!("record of cpu {} in the file of cpu {fc}", lg.cpu));
                    return;
                }
            }
            let c = cpus.entry(lg.cpu).or_default();
            if lg.seq < c.next_seq {
                c.bad(format!(
                    "seq {} after seq {} (duplicate or out of order)",
                    lg.seq,
                    c.next_seq - 1
                ));
                return;
            }
            c.gaps += lg.seq - c.next_seq;
            c.next_seq = lg.seq + 1;
            c.records += 1;
        };
        if let Err(e) = for_each_record(&files, &mut check) {
            let c = cpus.entry(file_cpu.unwrap_or(UNATTRIBUTED)).or_default();
            c.bad(format!("broken framing: {e}"));
        }
        if let Some(c) = file_cpu {
            cpus.entry(c).or_default();
        }
    }
    for st in [&exact, &at_least].into_iter().flatten() {
        for c in st.keys() {
            cpus.entry(*c).or_default();
        }
    }
    let (mut total, mut lost, mut corrupt) = (0u64, 0u64, 0u64);
    for (cpu, c) in &cpus {
        let mut line = if *cpu == UNATTRIBUTED {
            // Bytes of a merged stream that name no CPU (broken framing, or
            // records that are not the load generator's).
            format!("not attributable to a cpu: {} corrupt", c.corrupt)
        } else {
            format!(
                "cpu{cpu}: {} records, seq 0..{}, {} missing in seq, {} corrupt",
                c.records, c.next_seq, c.gaps, c.corrupt
            )
        };
        // Records the kernel accepted but the dump lacks.
        let mut cpu_lost = c.gaps;
        if let Some((attempts, written, dropped)) = exact.as_ref().and_then(|m| m.get(cpu)) {
            line += &format!(", loadgen attempts {attempts} written {written} dropped {dropped}");
            // Gaps the kernel reports as dropped are not lost by the dumper.
            cpu_lost = written.saturating_sub(c.records);
            if c.records > *written {
                corrupt += c.records - written;
                line += " (more records than written!)";
            }
            if c.next_seq > *attempts {
                corrupt += 1;
                line += " (seq beyond attempts!)";
            }
        } else if let Some((_, written, dropped)) = at_least.as_ref().and_then(|m| m.get(cpu)) {
            line += &format!(", at least {written} expected (dropped {dropped})");
            cpu_lost = c.gaps.saturating_sub(*dropped) + written.saturating_sub(c.records + c.gaps);
        }
        if let Some(e) = &c.first_error {
            line += &format!("; first problem: {e}");
        }
        println!("{line}");
        total += c.records;
        lost += cpu_lost;
        corrupt += c.corrupt;
    }
    if total == 0 {
        println!(
            "no records found in {}: nothing to verify (an empty dump fails)",
            args.dump.display()
        );
    }
    println!("verified {total} records, {lost} lost, {corrupt} corrupt");
    Ok(if lost == 0 && corrupt == 0 && total > 0 {
        code::OK
    } else {
        code::VERIFY
    })
}
