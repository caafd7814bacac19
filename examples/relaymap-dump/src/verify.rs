//! `relaymap-dump verify`: checks a dump of load generator records.
//!
//! A dump directory is read as the CTF trace it is, with this module's own
//! reader (not babeltrace2): per CPU, packet after packet (`ctf::Packet`:
//! header checks, uuid, CPU, `packet_seq_num` continuity, `events_discarded`
//! deltas), and the events of each packet through the SDK's one framing
//! walker (`relaymap::Records`). A merged stream file (`-o -`) is walked as
//! one record stream. What it tells apart: records lost (seq gaps the
//! kernel's drops do not explain, or fewer than the load generator wrote),
//! records dropped by the kernel, duplicates (a count), corrupt bytes, a
//! torn tail.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;
use relaymap::{abi, LoadgenRecord, Record, Records};

use crate::ctf::{self, Packet};
use crate::outdir;

use crate::error::{code, Failure};

/// `verify` options.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A dump directory (a CTF trace: metadata, cpuN.out, cpuN.out.1, ...)
    /// or one merged stream file (`-o -`).
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

/// `cpu N attempts A written W dropped D` lines of a loadgen status file.
fn parse_status(path: &Path) -> Result<BTreeMap<u32, (u64, u64, u64)>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
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
                    .map_err(|_| Failure::Usage(format!("{}: bad line {line:?}", path.display())))
            };
            m.insert(num(w[1])? as u32, (num(w[3])?, num(w[5])?, num(w[7])?));
        }
    }
    if m.is_empty() {
        return Err(Failure::Usage(format!(
            "{}: no `cpu N attempts A written W dropped D` lines",
            path.display()
        )));
    }
    Ok(m)
}

/// One CPU's verdict.
#[derive(Debug, Default, Clone)]
struct CpuCheck {
    /// Loadgen records, each seq counted once.
    records: u64,
    next_seq: u64,
    /// Loadgen seqs missing.
    gaps: u64,
    /// Records whose seq was already seen (delivered twice).
    dups: u64,
    /// Corrupt records, packets or bytes.
    corrupt: u64,
    /// printf (text) records: counted, not checked.
    text: u64,
    /// Packets read, packets seen twice, seq gaps between packets.
    packets: u64,
    dup_packets: u64,
    packet_gaps: u64,
    next_packet: Option<u64>,
    first_packet: Option<u64>,
    /// events_discarded: the baseline before the first packet, the last.
    drops_base: u64,
    drops_last: u64,
    /// Bytes at the end of the newest file that are not a whole packet.
    torn: u64,
    torn_at: Option<String>,
    first_error: Option<String>,
}

impl CpuCheck {
    fn bad(&mut self, what: String) {
        self.corrupt += 1;
        self.first_error.get_or_insert(what);
    }

    fn kernel_drops(&self) -> u64 {
        self.drops_last.saturating_sub(self.drops_base)
    }

    /// One record of this CPU's stream (`file_cpu`: the file's CPU, if any).
    fn record(
        &mut self,
        rec: &Record<'_>,
        file_cpu: Option<u32>,
        others: &mut BTreeMap<u32, CpuCheck>,
    ) {
        if u32::from(rec.event_id) == abi::RELAYMAP_EVENT_PRINTF {
            self.text += 1;
            return;
        }
        let is_loadgen = u32::from(rec.event_id) == abi::RELAYMAP_EVENT_RECORD
            && u32::from(rec.type_) == abi::RELAYMAP_REC_LOADGEN;
        let lg = is_loadgen.then(|| LoadgenRecord::parse(rec.data)).flatten();
        let Some(lg) = lg else {
            let n = self.records + self.corrupt;
            self.bad(format!(
                "record {n} (event {}, type {:#x}): not a valid loadgen record (checksum/fill)",
                rec.event_id, rec.type_
            ));
            return;
        };
        let c = match file_cpu {
            Some(fc) if lg.cpu != fc => {
                self.bad(format!("record of cpu {} in the file of cpu {fc}", lg.cpu));
                return;
            }
            Some(_) => self,
            None => others.entry(lg.cpu).or_default(),
        };
        if lg.seq < c.next_seq {
            // Delivered twice (a restart that wrote a sub-buffer again, or
            // a stream that repeats): a duplicate, not corruption.
            c.dups += 1;
            return;
        }
        c.gaps += lg.seq - c.next_seq;
        c.next_seq = lg.seq + 1;
        c.records += 1;
    }
}

/// Files of one CPU (oldest first).
type FileGroup = (u32, Vec<PathBuf>);

/// What `verify` was given.
enum Dump {
    /// A CTF trace directory.
    Trace(ctf::TraceMeta, Vec<FileGroup>),
    /// One merged stream file.
    Stream(PathBuf),
}

/// Reads what `dump` is; a path that is no dump is a usage error (exit 2).
fn open_dump(dump: &Path) -> Result<Dump, Failure> {
    let md =
        std::fs::metadata(dump).map_err(|e| Failure::Usage(format!("{}: {e}", dump.display())))?;
    if !md.is_dir() {
        return Ok(Dump::Stream(dump.to_path_buf()));
    }
    let meta_path = dump.join(outdir::METADATA);
    let text = std::fs::read_to_string(&meta_path).map_err(|e| {
        Failure::Usage(format!(
            "{}: not a relaymap-dump trace ({}: {e}); give the directory relaymap-dump -o wrote, or a merged stream file",
            dump.display(),
            meta_path.display()
        ))
    })?;
    let meta = ctf::parse_metadata(&text).ok_or_else(|| {
        Failure::Usage(format!(
            "{}: not a relaymap-dump trace's metadata (no {} in its env)",
            meta_path.display(),
            ctf::ENV_MARK
        ))
    })?;
    let mut per: BTreeMap<u32, Vec<(u32, PathBuf)>> = BTreeMap::new();
    let rd =
        std::fs::read_dir(dump).map_err(|e| Failure::Usage(format!("{}: {e}", dump.display())))?;
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if let Some((c, i)) = outdir::parse_cpu_file(&name) {
            per.entry(c).or_default().push((i, ent.path()));
        }
    }
    Ok(Dump::Trace(
        meta,
        per.into_iter()
            .map(|(c, mut v)| {
                v.sort();
                (c, v.into_iter().map(|(_, p)| p).collect())
            })
            .collect(),
    ))
}

/// Reads as many bytes as there are, up to `buf.len()`.
fn read_full(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Walks the packets of one CPU's files (a CTF data stream, rotated or
/// not) into `c`.
fn check_trace_cpu(
    meta: &ctf::TraceMeta,
    cpu: u32,
    files: &[PathBuf],
    c: &mut CpuCheck,
    others: &mut BTreeMap<u32, CpuCheck>,
) -> Result<(), Failure> {
    let mut buf: Vec<u8> = Vec::new();
    for (k, path) in files.iter().enumerate() {
        let newest = k + 1 == files.len();
        let f = File::open(path).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut f = std::io::BufReader::with_capacity(1 << 20, f);
        let mut pos = 0u64;
        loop {
            let mut hdr = [0u8; abi::SUBBUF_HEADER_SIZE];
            let n = read_full(&mut f, &mut hdr)
                .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
            if n == 0 {
                break;
            }
            let left = len - pos;
            let torn = |c: &mut CpuCheck, why: &str| {
                if newest {
                    c.torn += left;
                    c.torn_at = Some(format!(
                        "{}: {left} bytes at offset {pos} ({why})",
                        path.display()
                    ));
                } else {
                    c.corrupt += 1;
                    c.first_error.get_or_insert(format!(
                        "{}: offset {pos}: {left} bytes that are not a whole packet, in a file that is not the newest ({why})",
                        path.display()
                    ));
                }
            };
            if n < hdr.len() {
                torn(c, "less than a packet header");
                break;
            }
            let p = match Packet::parse(&hdr) {
                Ok(p) => p,
                Err(e) => {
                    c.bad(format!("{}: offset {pos}: not a packet: {e}; the rest of the file ({left} bytes) is skipped", path.display()));
                    break;
                }
            };
            if p.uuid != meta.uuid || p.cpu != cpu || p.stream_instance_id != u64::from(cpu) {
                c.bad(format!(
                    "{}: offset {pos}: packet of trace {} cpu {} (stream {}), not of this trace's cpu {cpu}; the rest of the file is skipped",
                    path.display(),
                    ctf::uuid_str(&p.uuid),
                    p.cpu,
                    p.stream_instance_id
                ));
                break;
            }
            // A packet that claims more bytes than the file has left is cut
            // short (or its size is garbage): never allocate what a header
            // claims before the file can hold it.
            if p.packet_size as u64 > left {
                torn(
                    c,
                    &format!(
                        "packet seq {} claims {} bytes, the file has {left} left",
                        p.seq, p.packet_size
                    ),
                );
                break;
            }
            buf.clear();
            buf.extend_from_slice(&hdr);
            buf.resize(p.packet_size, 0);
            let want = p.packet_size - hdr.len();
            let got = read_full(&mut f, &mut buf[hdr.len()..])
                .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
            if got < want {
                torn(
                    c,
                    &format!(
                        "packet seq {} cut short: {} of {} bytes",
                        p.seq,
                        hdr.len() + got,
                        p.packet_size
                    ),
                );
                break;
            }
            pos += p.packet_size as u64;
            c.packets += 1;
            match c.next_packet {
                None => {
                    c.first_packet = Some(p.seq);
                    // Drops before the first packet in the dump: known only
                    // when it is the channel's first sub-buffer.
                    c.drops_base = if p.seq == 0 { 0 } else { p.events_discarded };
                }
                Some(want) if p.seq < want => {
                    // A packet written twice: its records are duplicates.
                    c.dup_packets += 1;
                }
                Some(want) => c.packet_gaps += p.seq - want,
            }
            c.next_packet = Some(c.next_packet.map_or(p.seq + 1, |n| n.max(p.seq + 1)));
            c.drops_last = c.drops_last.max(p.events_discarded);
            let payload = p.payload(&buf);
            for r in Records::new(payload) {
                match r {
                    Ok(rec) => c.record(&rec, Some(cpu), others),
                    Err(e) => {
                        c.bad(format!("{}: packet seq {}: {e}", path.display(), p.seq));
                        break;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Bytes read from a dump file at a time.
const CHUNK: usize = 4 << 20;

/// The most bytes a record that does not end in what was read may span
/// before it is called corrupt (a record never exceeds a sub-buffer).
const MAX_PENDING: usize = 64 << 20;

/// Where the record after `rec` would start: the end of its data, aligned
/// (also when `rec` ends the bytes read so far, where the walker itself
/// stops and its `next_offset()` is `None`).
fn next_offset(rec: &Record<'_>) -> usize {
    abi::record_align(rec.offset + rec.size())
}

/// Streams the records of `files` (one logical stream; records never cross
/// a file, the dumper cuts files between sub-buffers) into `f`, walked with
/// the SDK's framing walker ([`Records`]) in chunks. A file is laid out
/// like one payload (8-byte aligned records, the last one ending exactly
/// at the end of the file). Returns an error message on broken framing or
/// a truncated record.
fn for_each_record(files: &[PathBuf], mut f: impl FnMut(&Record<'_>)) -> Result<(), String> {
    let mut buf: Vec<u8> = Vec::with_capacity(2 * CHUNK);
    for path in files {
        let mut file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        buf.clear();
        // File offset of buf[0].
        let mut base = 0u64;
        // Alignment bytes still to skip at the start of the next read (the
        // last walk ended exactly at a record's data).
        let mut skip = 0usize;
        let mut eof = false;
        while !eof {
            let old = buf.len();
            buf.resize(old + CHUNK, 0);
            let n = loop {
                match file.read(&mut buf[old..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("{}: {e}", path.display())),
                }
            };
            buf.truncate(old + n);
            eof = n == 0;
            let k = skip.min(buf.len());
            buf.drain(..k);
            base += k as u64;
            skip -= k;
            if buf.is_empty() {
                continue;
            }
            let mut pos = 0usize;
            let mut bad = None;
            for r in Records::new(&buf) {
                match r {
                    Ok(rec) => {
                        f(&rec);
                        pos = next_offset(&rec);
                    }
                    Err(e) => {
                        bad = Some(e);
                        break;
                    }
                }
            }
            // A record cut by the end of what was read is completed by the
            // next read; at the end of the file it is broken.
            if let Some(e) = bad {
                if eof || buf.len() - pos > MAX_PENDING {
                    return Err(format!(
                        "{}: byte {}: {e}",
                        path.display(),
                        base + pos as u64
                    ));
                }
            }
            let k = pos.min(buf.len());
            skip = pos - k;
            buf.drain(..k);
            base += k as u64;
        }
    }
    Ok(())
}

/// The key, in the per-CPU table, of what a merged stream holds that names
/// no CPU.
const UNATTRIBUTED: u32 = u32::MAX;

/// Runs `verify`; returns the exit code: 0 verified, 7 verification failed,
/// 2 the input is not a dump (or a status file is unreadable).
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
    let mut overwrite = false;
    match open_dump(&args.dump)? {
        Dump::Trace(meta, groups) => {
            overwrite = meta.overwrite;
            if groups.is_empty() {
                println!(
                    "{}: a trace without data files (cpuN.out)",
                    args.dump.display()
                );
            }
            for (cpu, files) in groups {
                let mut c = cpus.remove(&cpu).unwrap_or_default();
                let mut others = BTreeMap::new();
                check_trace_cpu(&meta, cpu, &files, &mut c, &mut others)?;
                cpus.insert(cpu, c);
            }
        }
        Dump::Stream(path) => {
            let mut un = CpuCheck::default();
            let mut others: BTreeMap<u32, CpuCheck> = BTreeMap::new();
            let r = for_each_record(std::slice::from_ref(&path), |rec| {
                un.record(rec, None, &mut others)
            });
            if let Err(e) = r {
                un.bad(format!("broken framing: {e}"));
            }
            cpus.extend(others);
            if un.corrupt > 0 || un.text > 0 {
                cpus.insert(UNATTRIBUTED, un);
            }
        }
    }
    for st in [&exact, &at_least].into_iter().flatten() {
        for c in st.keys() {
            cpus.entry(*c).or_default();
        }
    }
    let (mut total, mut lost, mut corrupt) = (0u64, 0u64, 0u64);
    let (mut dups, mut torn, mut missing, mut drops, mut text) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for (cpu, c) in &cpus {
        let mut line = if *cpu == UNATTRIBUTED {
            // Bytes of a merged stream that name no CPU (broken framing,
            // records that are not the load generator's, printf records).
            format!(
                "not attributable to a cpu: {} corrupt, {} text records",
                c.corrupt, c.text
            )
        } else {
            let mut l = format!(
                "cpu{cpu}: {} records, seq 0..{}, {} missing in seq, {} duplicated, {} corrupt",
                c.records, c.next_seq, c.gaps, c.dups, c.corrupt
            );
            if c.packets > 0 {
                l += &format!(
                    "; {} packets (seq {}..{}), {} packet seq gaps{}, {} packets twice, kernel drops {} (events_discarded)",
                    c.packets,
                    c.first_packet.unwrap_or(0),
                    c.next_packet.unwrap_or(0),
                    c.packet_gaps,
                    if overwrite { " (overwrite laps)" } else { "" },
                    c.dup_packets,
                    c.kernel_drops()
                );
            }
            if c.text > 0 {
                l += &format!(", {} text records (printf, not checked)", c.text);
            }
            l
        };
        // Records the kernel accepted but the dump lacks: seq gaps the
        // kernel's drops (or overwrite laps) do not explain.
        let mut cpu_lost = if overwrite && c.packet_gaps > 0 {
            0
        } else {
            c.gaps.saturating_sub(c.kernel_drops())
        };
        if let Some((attempts, written, dropped)) = exact.as_ref().and_then(|m| m.get(cpu)) {
            line += &format!(", loadgen attempts {attempts} written {written} dropped {dropped}");
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
        if !overwrite && c.packet_gaps > 0 && c.records == 0 {
            // Not loadgen records: a missing packet is the only sign.
            cpu_lost += c.packet_gaps;
        }
        if let Some(t) = &c.torn_at {
            line += &format!("; torn tail: {t}");
        }
        if let Some(e) = &c.first_error {
            line += &format!("; first problem: {e}");
        }
        println!("{line}");
        total += c.records;
        lost += cpu_lost;
        corrupt += c.corrupt;
        dups += c.dups + if c.records == 0 { c.dup_packets } else { 0 };
        torn += u64::from(c.torn > 0);
        missing += if overwrite { 0 } else { c.packet_gaps };
        drops += c.kernel_drops();
        text += c.text;
    }
    if total == 0 && text == 0 {
        println!(
            "no records found in {}: nothing to verify (an empty dump fails)",
            args.dump.display()
        );
    }
    println!("verified {total} records, {lost} lost, {corrupt} corrupt");
    let laps: u64 = if overwrite {
        cpus.values().map(|c| c.packet_gaps).sum()
    } else {
        0
    };
    println!(
        "exactly once: {dups} duplicated, {torn} torn tails, {missing} packets missing; kernel drops {drops} (events_discarded), {laps} packets lapped, {text} text records"
    );
    Ok(
        if lost == 0 && corrupt == 0 && dups == 0 && torn == 0 && missing == 0 && total + text > 0 {
            code::OK
        } else {
            code::VERIFY
        },
    )
}
