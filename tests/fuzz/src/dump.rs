//! Fuzz targets `verify` and `cli`: the parts of examples/relaymap-dump
//! that read bytes a user hands in.
//!
//! `verify` builds a dump the way the ABI and the dumper's README describe
//! it (a CTF trace directory: `metadata` and per-CPU `cpuN.out[.K]` files
//! of whole packets, each a sub-buffer header, load generator records and
//! zero padding to the page; or one merged stream file of records), maybe
//! with a load generator `status` file, then damages it and runs
//! `relaymap_dump::verify::main` on it. Checked: no panic; the exit code is
//! 0, 2 or 7 (README); a perfect dump with records verifies (0); a damage
//! that loses, duplicates, tears or corrupts records (a data byte, a
//! packet cut short, a packet missing or twice, a record missing, a status
//! that wants more) fails (7); a dump without metadata is a usage error
//! (2). Random damage elsewhere: any of 0, 2, 7.
//!
//! `cli` feeds `parse_size` and `parse_duration` (and clap with the
//! dumper's own argument structs) with random strings and with strings
//! from the grammar the help text gives (`4096`, `64K`, `100M`, `2G`,
//! `1MiB`; `10s`, `500ms`, `2m`, `1h`, `1.5`), comparing with the value
//! that grammar means.

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use clap::Parser;
use relaymap::{abi, ChannelInfo};
use relaymap_dump::args::{parse_duration, parse_size};
use relaymap_dump::verify::VerifyArgs;
use relaymap_dump::{ctf, verify, DumpArgs};

use crate::abi_text::{self, push_record, Header, HEADER_SIZE};
use crate::Src;

const PAGE: u64 = 4096;
const UUID: [u8; 16] = *b"relaymap-fuzz-id";

/// stdout/stderr of verify go to /dev/null while it runs; a panic hook puts
/// them back first so that its message is seen.
struct Quiet {
    out: OwnedFd,
    err: OwnedFd,
    null: OwnedFd,
}

fn quiet() -> &'static Quiet {
    static Q: OnceLock<Quiet> = OnceLock::new();
    Q.get_or_init(|| {
        // SAFETY: dup/open return fresh fds (checked), owned below.
        let (o, e, n) = unsafe {
            (
                libc::dup(1),
                libc::dup(2),
                libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC),
            )
        };
        assert!(o >= 0 && e >= 0 && n >= 0, "dup/open /dev/null");
        // SAFETY: each is a fresh fd nobody else owns.
        let q = unsafe {
            Quiet {
                out: OwnedFd::from_raw_fd(o),
                err: OwnedFd::from_raw_fd(e),
                null: OwnedFd::from_raw_fd(n),
            }
        };
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            loud();
            prev(info)
        }));
        q
    })
}

fn hush() {
    if std::env::var_os("RELAYMAP_FUZZ_VERBOSE").is_some() {
        return;
    }
    let q = quiet();
    // SAFETY: dup2 between fds we own or the standard ones.
    unsafe {
        libc::dup2(q.null.as_raw_fd(), 1);
        libc::dup2(q.null.as_raw_fd(), 2);
    }
}

fn loud() {
    if let Some(q) = QUIET_READY.get() {
        // SAFETY: as in hush().
        unsafe {
            libc::dup2(q.out.as_raw_fd(), 1);
            libc::dup2(q.err.as_raw_fd(), 2);
        }
    }
}

static QUIET_READY: OnceLock<&'static Quiet> = OnceLock::new();

fn scratch_dir() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("relaymap-fuzz-verify.{}", std::process::id()));
        fs::create_dir_all(&d).expect("create the scratch dir");
        d
    })
}

fn clear(dir: &Path) {
    for e in fs::read_dir(dir).expect("read the scratch dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            let _ = fs::remove_dir_all(&p);
        } else {
            let _ = fs::remove_file(&p);
        }
    }
}

/// One CPU's dump as built: its packets (bytes) and where record data lies.
struct CpuDump {
    cpu: u32,
    packets: Vec<Vec<u8>>,
    /// (packet index, byte range of a record's data inside the packet).
    data: Vec<(usize, std::ops::Range<usize>)>,
    records: u64,
}

fn build_cpu(s: &mut Src<'_>, cpu: u32, ts: &mut u64) -> CpuDump {
    let mut d = CpuDump {
        cpu,
        packets: Vec::new(),
        data: Vec::new(),
        records: 0,
    };
    let fill = 8 * s.below(8) as usize;
    for pseq in 0..s.below(5) {
        let mut ev = Vec::new();
        let mut ranges = Vec::new();
        for _ in 0..1 + s.below(6) {
            let data = abi_text::loadgen_data(d.records, cpu, fill);
            *ts += 1 + s.below(3);
            let at = push_record(&mut ev, *ts, 0, abi::RELAYMAP_REC_LOADGEN as u16, &data);
            ranges.push(HEADER_SIZE + at + 16..HEADER_SIZE + at + 16 + data.len());
            d.records += 1;
        }
        let h = Header::closed(pseq, cpu, ev.len(), PAGE);
        let mut p = vec![0u8; (h.packet_size / 8) as usize];
        h.encode(&mut p);
        p[HEADER_SIZE..HEADER_SIZE + ev.len()].copy_from_slice(&ev);
        let i = d.packets.len();
        d.data.extend(ranges.into_iter().map(|r| (i, r)));
        d.packets.push(p);
    }
    d
}

/// What the damage must lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Verified,
    Fails,
    Usage,
    Any,
}

fn info() -> ChannelInfo {
    let mut raw = abi::relaymap_info {
        size: abi::RELAYMAP_INFO_SIZE_VER0,
        abi_version: abi::RELAYMAP_ABI_VERSION,
        header_size: HEADER_SIZE as u32,
        subbuf_size: 16384,
        n_subbufs: 4,
        alloc_size: 65536,
        nr_cpu_ids: 4,
        max_record_size: 16384 - 112,
        max_data_size: 16384 - 128,
        page_size: PAGE as u32,
        uuid: UUID,
        ..Default::default()
    };
    raw.cpu_mask[0] = 0b1111;
    for (i, b) in b"fuzz".iter().enumerate() {
        raw.name[i] = *b as core::ffi::c_char;
    }
    ChannelInfo::from_raw(&raw).expect("a valid GET_INFO")
}

/// Fuzz target `verify`. Returns verify's exit code.
pub fn verify_one(data: &[u8]) -> i32 {
    QUIET_READY.get_or_init(quiet);
    let dir = scratch_dir();
    clear(dir);
    let mut s = Src::new(data);
    let stream = s.below(6) == 0;
    let ncpu = 1 + s.below(3) as u32;
    let mut ts = 1000u64;
    let mut cpus: Vec<CpuDump> = (0..ncpu).map(|c| build_cpu(&mut s, c, &mut ts)).collect();
    let total: u64 = cpus.iter().map(|c| c.records).sum();
    // What the damage below must lead to.
    let mut must_fail = total == 0; // "an empty dump fails"
    let mut any = false;
    let mut status_extra = [0u64; 4];
    let mut drop_metadata = false;
    let mut meta_bytes: Option<(usize, u8)> = None;
    let mut truncate: Option<(u32, u64)> = None;
    let mut flips: Vec<(u32, usize, usize, u8)> = Vec::new();
    // A packet written twice and then its original removed is a whole
    // stream again: remove only before duplicating.
    let mut dupped = [false; 4];
    let mut log: Vec<String> = Vec::new();
    for _ in 0..s.below(3) {
        let c = s.below(u64::from(ncpu)) as usize;
        let cd = &mut cpus[c];
        let kind = s.below(9);
        log.push(format!(
            "damage {kind} on cpu {c} ({} packets)",
            cd.packets.len()
        ));
        match kind {
            0 if !cd.data.is_empty() => {
                // A byte of a record's data: its checksum fails.
                let (pi, r) = cd.data[s.below(cd.data.len() as u64) as usize].clone();
                let at = r.start + s.below(r.len() as u64) as usize;
                flips.push((cd.cpu, pi, at, 1 + s.u8() % 255));
                must_fail = true;
            }
            1 if cd.packets.len() >= 2 && !dupped[c] => {
                // A packet before the last goes missing (a seq gap).
                let i = s.below(cd.packets.len() as u64 - 1) as usize;
                cd.packets.remove(i);
                cd.data.retain(|(p, _)| *p != i);
                for (p, _) in cd.data.iter_mut() {
                    if *p > i {
                        *p -= 1;
                    }
                }
                flips.retain(|f| !(f.0 == cd.cpu && f.1 == i));
                for f in flips.iter_mut() {
                    if f.0 == cd.cpu && f.1 > i {
                        f.1 -= 1;
                    }
                }
                must_fail = true;
            }
            2 if !cd.packets.is_empty() => {
                // A packet written twice.
                let i = s.below(cd.packets.len() as u64) as usize;
                let p = cd.packets[i].clone();
                cd.packets.push(p);
                dupped[c] = true;
                must_fail = true;
            }
            3 if !cd.packets.is_empty() => {
                // The newest file ends inside its last packet (a torn tail).
                truncate = Some((cd.cpu, s.u64()));
                must_fail = true;
            }
            4 => {
                // The status says more were written than the dump has.
                status_extra[c] = 1 + s.below(3);
            }
            5 => drop_metadata = true,
            6 => {
                meta_bytes = Some((s.u16() as usize, s.u8()));
                any = true;
            }
            7 if !cd.packets.is_empty() => {
                // A header field of a packet set to an edge value.
                let i = s.below(cd.packets.len() as u64) as usize;
                let p = &mut cd.packets[i];
                let mut h = Header::decode(p);
                let v = match s.below(6) {
                    0 => 0,
                    1 => u64::MAX,
                    2 => (1u64 << 32) * 8,
                    3 => (1u64 << (20 + s.below(13))) * 8,
                    4 => s.u64() & !0x7fff,
                    _ => s.u64(),
                };
                match s.below(5) {
                    0 => h.packet_size = v,
                    1 => h.content_size = v,
                    2 => h.header_size = v as u16,
                    3 => h.packet_seq_num = v,
                    _ => h.commit = v,
                }
                h.encode(p);
                any = true;
            }
            _ => {
                // Any byte anywhere (header fields, padding, framing).
                if let Some(pk) = cd.packets.first() {
                    flips.push((cd.cpu, 0, s.below(pk.len() as u64) as usize, s.u8()));
                }
                any = true;
            }
        }
    }
    // Two flips of one byte could cancel out: the first one counts.
    flips.sort_by_key(|f| (f.0, f.1, f.2));
    flips.dedup_by_key(|f| (f.0, f.1, f.2));
    for (cpu, pi, at, x) in flips {
        if let Some(b) = cpus[cpu as usize]
            .packets
            .get_mut(pi)
            .and_then(|p| p.get_mut(at))
        {
            *b ^= x;
        }
    }

    let dump_path;
    if stream {
        // One merged stream: every CPU's records by timestamp, framed as
        // one payload.
        let mut recs: Vec<(u64, Vec<u8>)> = Vec::new();
        for cd in &cpus {
            for p in &cd.packets {
                let content = (Header::decode(p).content_size / 8) as usize;
                if content < HEADER_SIZE || content > p.len() {
                    continue; // a damaged header (then `any` is set)
                }
                let ev = &p[HEADER_SIZE..content];
                for r in abi_text::ref_frame(ev, 0).0 {
                    let d = ev[r.offset + 16..r.offset + 16 + r.len as usize].to_vec();
                    recs.push((r.ts_ns, d));
                }
            }
        }
        recs.sort_by_key(|r| r.0);
        let mut out = Vec::new();
        for (t, d) in &recs {
            push_record(&mut out, *t, 0, abi::RELAYMAP_REC_LOADGEN as u16, d);
        }
        if let Some((_, x)) = truncate {
            // May end on a record boundary: records lost at the end cannot
            // be seen without the status.
            if !out.is_empty() {
                let cut = 1 + (x % out.len() as u64) as usize;
                out.truncate(out.len() - cut);
            }
            any = true;
        }
        dump_path = dir.join("stream.out");
        fs::write(&dump_path, &out).expect("write the stream");
    } else {
        let trace = dir.join("trace");
        fs::create_dir(&trace).expect("create the trace dir");
        if !drop_metadata {
            let mut meta = ctf::metadata(&info(), "fuzz", 0).into_bytes();
            if let Some((at, x)) = meta_bytes {
                let n = meta.len();
                meta[at % n] ^= x;
            }
            fs::write(trace.join("metadata"), &meta).expect("write metadata");
        }
        for cd in &cpus {
            if cd.packets.is_empty() {
                continue;
            }
            // Rotated into files of 1-3 packets, or one file.
            let per = if s.bool() {
                1 + s.below(3) as usize
            } else {
                cd.packets.len()
            };
            let chunks: Vec<&[Vec<u8>]> = cd.packets.chunks(per).collect();
            let n = chunks.len();
            for (k, ch) in chunks.into_iter().enumerate() {
                let mut bytes: Vec<u8> = ch.concat();
                match truncate {
                    Some((c, x)) if c == cd.cpu && k + 1 == n => {
                        // 1 .. len - 1 bytes of the last packet are cut off.
                        let last = ch.last().map_or(1, Vec::len) as u64;
                        let cut = 1 + (x % (last - 1).max(1)) as usize;
                        bytes.truncate(bytes.len() - cut);
                    }
                    _ => {}
                }
                let name = if k == 0 {
                    format!("cpu{}.out", cd.cpu)
                } else {
                    format!("cpu{}.out.{k}", cd.cpu)
                };
                fs::write(trace.join(name), &bytes).expect("write a cpu file");
            }
        }
        dump_path = trace;
    }

    let mut status = None;
    let mut at_least = None;
    if s.bool() {
        let st = dir.join("status");
        let mut text = String::from("state idle\n");
        for (i, cd) in cpus.iter().enumerate() {
            let w = cd.records + status_extra[i];
            text += &format!(
                "cpu {} attempts {w} written {w} dropped 0 rejected 0\n",
                cd.cpu
            );
        }
        if status_extra != [0; 4] {
            must_fail = true; // exact or at least: fewer records than written
        }
        if s.below(8) == 0 {
            // A status file someone edited: anything may follow.
            text = String::from_utf8_lossy(s.bytes(64)).into_owned();
            any = true;
        }
        fs::write(&st, text).expect("write status");
        if s.bool() {
            status = Some(st);
        } else {
            at_least = Some(st);
        }
    }
    let expect = if any {
        Expect::Any
    } else if drop_metadata && !stream {
        Expect::Usage
    } else if must_fail {
        Expect::Fails
    } else {
        Expect::Verified
    };

    hush();
    let rc = verify::main(VerifyArgs {
        dump: dump_path,
        loadgen_status: status,
        at_least,
    });
    loud();
    assert!(
        matches!(rc, 0 | 2 | 7),
        "verify exit code {rc} (README: 0, 2 or 7)"
    );
    match expect {
        Expect::Verified => assert_eq!(
            rc, 0,
            "a whole, undamaged dump did not verify: stream {stream}, {total} records, {log:?}"
        ),
        Expect::Fails => assert_eq!(
            rc, 7,
            "a damaged dump was not caught ({rc}): stream {stream}, {total} records, {log:?}"
        ),
        Expect::Usage => assert_eq!(rc, 2, "a trace without metadata: want a usage error"),
        Expect::Any => {}
    }
    rc
}

/// The dumper's arguments as its binary declares them (a stand-in for
/// main.rs's private `Cli`).
#[derive(Debug, Parser)]
#[command(name = "relaymap-dump", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    dump: DumpArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    Verify(VerifyArgs),
}

fn ws(s: &mut Src<'_>) -> &'static str {
    [" ", "", "", "\t", "  "][s.below(5) as usize]
}

fn digits(s: &mut Src<'_>) -> String {
    let n = 1 + s.below(24) as usize;
    let mut d: String = (0..n)
        .map(|_| char::from(b'0' + s.below(10) as u8))
        .collect();
    if s.below(3) == 0 {
        d = d.trim_start_matches('0').to_string();
        if d.is_empty() {
            d.push('0');
        }
    }
    d
}

/// Fuzz target `cli`. Returns how many parses succeeded.
pub fn cli_one(data: &[u8]) -> u32 {
    let mut s = Src::new(data);
    let mut ok = 0;
    match s.below(4) {
        0 => {
            let t = String::from_utf8_lossy(s.rest()).into_owned();
            if let Ok(n) = parse_size(&t) {
                assert!(n > 0, "parse_size({t:?}) = 0");
                ok += 1;
            }
            if parse_duration(&t).is_ok() {
                ok += 1;
            }
        }
        1 => {
            // SIZE: [ws] digits [ws] [K|M|G|T (any case)] [B|iB] [ws]
            let d = digits(&mut s);
            let (suf, shift) = [
                ("", 0),
                ("K", 10),
                ("k", 10),
                ("M", 20),
                ("m", 20),
                ("G", 30),
                ("g", 30),
                ("T", 40),
                ("t", 40),
            ][s.below(9) as usize];
            let unit = match s.below(3) {
                0 if !suf.is_empty() => "iB",
                1 => "B",
                _ => "",
            };
            let t = format!(
                "{}{d}{}{suf}{unit}{}",
                ws(&mut s),
                if suf.is_empty() { "" } else { ws(&mut s) },
                ws(&mut s)
            );
            let want = d
                .parse::<u128>()
                .ok()
                .map(|v| v << shift)
                .filter(|v| *v > 0 && *v <= u128::from(u64::MAX))
                .map(|v| v as u64);
            let got = parse_size(&t);
            assert_eq!(
                got.as_ref().ok().copied(),
                want,
                "parse_size({t:?}) = {got:?}"
            );
            ok += u32::from(got.is_ok());
        }
        2 => {
            // TIME: [ws] number [ws] [ms|s|m|h] [ws]; a plain number is seconds.
            let num = match s.below(8) {
                0 => digits(&mut s),
                1 => format!("{}.{}", digits(&mut s), digits(&mut s)),
                2 => format!(".{}", digits(&mut s)),
                3 => format!(
                    "{}e{}{}",
                    digits(&mut s),
                    ["", "-", "+"][s.below(3) as usize],
                    s.below(40)
                ),
                4 => format!("-{}", digits(&mut s)),
                5 => ["inf", "NaN", "-0", "infinity", "1e308", "1e-400"][s.below(6) as usize]
                    .to_string(),
                _ => format!("{}", s.below(100_000)),
            };
            let (suf, mult) = [
                ("", 1.0),
                ("s", 1.0),
                ("ms", 1e-3),
                ("m", 60.0),
                ("h", 3600.0),
            ][s.below(5) as usize];
            let t = format!(
                "{}{num}{}{suf}{}",
                ws(&mut s),
                if suf.is_empty() { "" } else { ws(&mut s) },
                ws(&mut s)
            );
            let v: f64 = num.parse().expect("the grammar makes numbers f64 reads");
            let want = if v >= 0.0 && v.is_finite() {
                Duration::try_from_secs_f64(v * mult).ok()
            } else {
                None
            };
            let got = parse_duration(&t);
            match (got.as_ref().ok(), want) {
                (Some(g), Some(w)) => {
                    let (g, w) = (g.as_secs_f64(), w.as_secs_f64());
                    assert!(
                        (g - w).abs() <= w * 1e-12 + 1e-9,
                        "parse_duration({t:?}) = {g} s, want {w} s"
                    );
                    ok += 1;
                }
                (None, None) => {}
                (g, w) => panic!("parse_duration({t:?}) = {g:?}, want {w:?}"),
            }
        }
        _ => {
            // The whole command line through clap and the value parsers.
            let opts = [
                "--duration",
                "--max-bytes",
                "--flush-interval",
                "--rotate",
                "--rotate-size",
                "-o",
                "--fsync",
                "--stats-json",
                "--raw",
                "--force",
                "--direct",
                "verify",
                "--loadgen-status",
                "--at-least",
                "--",
                "-",
            ];
            let mut argv = vec!["relaymap-dump".to_string()];
            for _ in 0..s.below(8) {
                if s.bool() {
                    argv.push(opts[s.below(opts.len() as u64) as usize].to_string());
                } else {
                    let n = s.below(12) as usize;
                    argv.push(String::from_utf8_lossy(s.bytes(n)).into_owned());
                }
            }
            if Cli::try_parse_from(&argv).is_ok() {
                ok += 1;
            }
        }
    }
    ok
}
