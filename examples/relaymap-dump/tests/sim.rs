//! relaymap-dump and relaymap as processes against the simulated backend
//! (`relaymap-sim`): lossless dumps verified record by record, merged and
//! raw output, unaligned records, rotation, limits, SIGINT drain, the
//! exclusive consumer (a second dumper exits 8 naming the holder), the
//! observer CLI, and every error case with its exit code. Every start waits
//! for the dumper's readiness line, never a fixed sleep.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use relaymap::{Channel, LoadgenRecord, Mode, Records};
use relaymap_dump::ctf::{self, Packet};
use relaymap_sim::{SimChannel, SimGeometry, WriteOutcome};

const BIN: &str = env!("CARGO_BIN_EXE_relaymap-dump");
const CLI: &str = env!("CARGO_BIN_EXE_relaymap");
/// Record size of the load generator records written here (header included).
const REC: usize = 64;
const READY: &str = "relaymap-dump: consuming ";

fn geo(subbuf_size: u64, n_subbufs: u64, cpus: u32) -> SimGeometry {
    SimGeometry {
        subbuf_size,
        n_subbufs,
        cpus,
    }
}

struct Fixture {
    tmp: tempfile::TempDir,
    sim: SimChannel,
}

impl Fixture {
    fn new(g: SimGeometry) -> Fixture {
        Fixture::with_mode(g, Mode::NoOverwrite)
    }
    fn with_mode(g: SimGeometry, mode: Mode) -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let sim = SimChannel::create(tmp.path().join("chan"), g, mode).expect("sim");
        Fixture { tmp, sim }
    }
    fn chan(&self) -> &str {
        self.sim.dir().to_str().expect("utf-8 temp path")
    }
    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }
    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// Writes loadgen records `seqs` on `cpu`, waiting while the buffer is full
/// (the load generator's lossless mode: a refused try-write is not counted).
fn write_lossless(sim: &SimChannel, cpu: u32, seqs: std::ops::Range<u64>) {
    for seq in seqs {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match sim.try_write_loadgen(cpu, seq, REC).expect("write") {
                WriteOutcome::Written => break,
                _ => {
                    assert!(Instant::now() < deadline, "consumer never freed space");
                    thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
}

fn status(counts: &[u64]) -> String {
    let mut s = String::from("state idle\n");
    for (cpu, n) in counts.iter().enumerate() {
        s += &format!("cpu {cpu} attempts {n} written {n} dropped 0\n");
    }
    let t: u64 = counts.iter().sum();
    s + &format!("total attempts {t} written {t} dropped 0\n")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run relaymap-dump")
}

fn cli(args: &[&str]) -> Output {
    Command::new(CLI)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run relaymap")
}

/// A dumper running in the background. Its stderr is collected by a thread;
/// [`Dumper::start`] returns once it printed its readiness line (it holds
/// every CPU and its signal handlers are installed).
struct Dumper {
    child: Child,
    stderr: thread::JoinHandle<String>,
}

impl Dumper {
    fn start(args: &[&str], stdout: Stdio) -> Dumper {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn relaymap-dump");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().expect("piped");
        let stderr = thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).lines() {
                let line = line.expect("stderr is text");
                if line.starts_with(READY) {
                    let _ = tx.send(());
                }
                all += &line;
                all.push('\n');
            }
            all
        });
        let mut d = Dumper { child, stderr };
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = d.child.kill();
            let st = d.child.wait().expect("wait");
            let err = d.stderr.join().expect("stderr thread");
            panic!("relaymap-dump never said it consumes ({st:?}):\n{err}");
        }
        d
    }

    fn sigint(&self) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        assert_eq!(rc, 0);
    }

    /// Waits for the exit; (status, stderr).
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let st = self.child.wait().expect("wait");
        (st, self.stderr.join().expect("stderr thread"))
    }

    /// SIGINT, then the exit, which must be 0; returns stderr.
    fn stop_ok(self, what: &str) -> String {
        self.sigint();
        let (st, err) = self.finish();
        assert!(st.success(), "{what}: {st:?}\n{err}");
        err
    }
}

fn verify(dump: &Path, extra: &[&str]) -> Output {
    let mut a = vec!["verify", dump.to_str().unwrap()];
    a.extend_from_slice(extra);
    run(&a)
}

fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
}

fn assert_verified(dump: &Path, counts: &[u64], tmp: &Path) {
    let st = tmp.join("verify-status");
    fs::write(&st, status(counts)).unwrap();
    let v = verify(dump, &["--loadgen-status", st.to_str().unwrap()]);
    assert_ok(&v, "verify");
    let total: u64 = counts.iter().sum();
    assert!(
        text(&v.stdout).contains(&format!("verified {total} records, 0 lost, 0 corrupt")),
        "{}",
        text(&v.stdout)
    );
}

/// Records as (type, data).
type Recs = Vec<(u16, Vec<u8>)>;

/// Every sub-buffer ready now, handed back; per CPU its records.
fn drain(ch: &Channel) -> Vec<(u32, Recs)> {
    ch.flush(None).unwrap();
    let mut out = Vec::new();
    for mut r in ch.readers().unwrap() {
        let mut recs = Vec::new();
        let b = r.batch().unwrap();
        for sb in &b {
            for rec in sb.records() {
                let rec = rec.unwrap();
                recs.push((rec.type_, rec.data.to_vec()));
            }
        }
        b.release().unwrap();
        out.push((r.cpu(), recs));
    }
    out
}

/// The packets of a dump file, each whole: (header, its bytes).
fn packets_of(path: &Path) -> Vec<(Packet, Vec<u8>)> {
    let b = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let p = Packet::parse(&b[pos..])
            .unwrap_or_else(|e| panic!("{}: offset {pos}: {e}", path.display()));
        assert!(
            pos + p.packet_size <= b.len(),
            "{}: torn at {pos}",
            path.display()
        );
        assert_eq!(p.packet_size % 4096, 0);
        v.push((p, b[pos..pos + p.packet_size].to_vec()));
        pos += p.packet_size;
    }
    v
}

/// The records of a dump file's packets, walked with the SDK's walker.
fn file_records(path: &Path) -> Recs {
    let mut out = Vec::new();
    for (p, b) in packets_of(path) {
        for r in Records::new(p.payload(&b)) {
            let r = r.expect("framing");
            out.push((r.type_, r.data.to_vec()));
        }
    }
    out
}

/// The payloads of a dump file's packets, concatenated.
fn file_payloads(path: &Path) -> Vec<u8> {
    packets_of(path)
        .iter()
        .flat_map(|(p, b)| p.payload(b).to_vec())
        .collect()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn lossless_per_cpu_files_verified() {
    let f = Fixture::new(geo(16 << 10, 8, 2));
    let out = f.out();
    let json = f.path("stats.json");
    let d = Dumper::start(
        &[
            f.chan(),
            "-o",
            out.to_str().unwrap(),
            "--flush-interval",
            "50ms",
            "--stats-json",
            json.to_str().unwrap(),
        ],
        Stdio::null(),
    );
    let n = 40_000u64;
    thread::scope(|s| {
        for cpu in 0..2 {
            let sim = &f.sim;
            s.spawn(move || write_lossless(sim, cpu, 0..n));
        }
    });
    // Writers done: everything produced before the signal must be dumped.
    let err = d.stop_ok("dump");
    assert!(err.contains("stopped by signal"), "{err}");
    assert!(
        err.starts_with(&format!(
            "{READY}chan: cpus 0-1 (8 x 16384 bytes each), to {}",
            out.display()
        )),
        "{err}"
    );
    assert_verified(&out, &[n, n], f.tmp.path());
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    assert_eq!(j["records"], 2 * n);
    // Whole packets: headers and page padding included.
    let bytes = j["bytes"].as_u64().unwrap();
    assert!(
        bytes.is_multiple_of(4096) && bytes > 2 * n * REC as u64,
        "{j}"
    );
    let meta = ctf::parse_metadata(&fs::read_to_string(out.join("metadata")).unwrap()).unwrap();
    assert_eq!(meta.uuid, f.sim.open().unwrap().info().uuid);
    assert!(!meta.overwrite);
    assert_eq!(j["stopped_by"], "signal");
    assert_eq!(j["opened_by"], "path");
    assert_eq!(j["cpus"].as_array().unwrap().len(), 2);
    let ops = j["control_ops"].as_u64().unwrap();
    let sbs = j["subbufs"].as_u64().unwrap();
    assert!(ops > 0 && sbs > 0, "{j}");
    // Every sub-buffer was handed back.
    for cpu in 0..2 {
        let c = f.sim.cursor(cpu).unwrap();
        assert_eq!(c.produced, c.consumed);
        assert!(!c.held, "cpu{cpu} still held after the dumper exited");
    }
}

/// A dumper that keeps up (a writer far slower than it, 256 KiB
/// sub-buffers, no periodic flush) asks only the CPU that poll reported
/// ready: the idle cpu1 costs nothing. Per sub-buffer one PUT_CONSUMED and
/// the GET_CURSORs of its wakeups: the simulator wakes the reader before the
/// header is final (as relay does), again at publication, and keeps the
/// wake armed until the next cursor read after the hand-back, so up to 3
/// GET_CURSORs (the kernel's poll: see 70-dump-lossless). Asking every CPU
/// per wakeup would add one per wakeup and CPU.
#[test]
fn keeping_up_asks_only_the_ready_cpu() {
    let f = Fixture::new(geo(256 << 10, 8, 2));
    let out = f.out();
    let json = f.path("stats.json");
    let d = Dumper::start(
        &[
            f.chan(),
            "-o",
            out.to_str().unwrap(),
            "--flush-interval",
            "0",
            "--stats-json",
            json.to_str().unwrap(),
        ],
        Stdio::null(),
    );
    // cpu0 only, one sub-buffer (~4090 records) every 20 ms; cpu1 idle.
    let per_subbuf = (256 << 10) / REC as u64;
    let n = 60 * per_subbuf;
    let t0 = Instant::now();
    for seq in 0..n {
        write_lossless(&f.sim, 0, seq..seq + 1);
        if seq % per_subbuf == 0 {
            let due = t0 + Duration::from_millis(20 * (seq / per_subbuf));
            thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    }
    d.stop_ok("dump");
    assert_verified(&out, &[n, 0], f.tmp.path());
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let ops = j["control_ops"].as_u64().unwrap();
    let sbs = j["subbufs"].as_u64().unwrap();
    println!(
        "keeping up: {ops} control calls for {sbs} sub-buffers, {} waits",
        j["waits"]
    );
    assert!(sbs >= 60, "{j}");
    assert!(
        ops * 10 <= sbs * 45,
        "{ops} control calls for {sbs} sub-buffers: {j}"
    );
}

#[test]
fn sigint_during_load_keeps_everything_produced_before_it() {
    let f = Fixture::new(geo(16 << 10, 8, 2));
    let out = f.out();
    let d = Dumper::start(&[f.chan(), "-o", out.to_str().unwrap()], Stdio::null());
    let stop = AtomicBool::new(false);
    let written = [AtomicU64::new(0), AtomicU64::new(0)];
    let mut before = [0u64; 2];
    thread::scope(|s| {
        for cpu in 0..2u32 {
            let (sim, stop, w) = (&f.sim, &stop, &written[cpu as usize]);
            s.spawn(move || {
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let WriteOutcome::Written = sim.try_write_loadgen(cpu, seq, REC).unwrap() {
                        seq += 1;
                        w.store(seq, Ordering::Release);
                    } else {
                        thread::sleep(Duration::from_micros(100));
                    }
                }
            });
        }
        // Several buffers' worth written on both CPUs while the dumper runs.
        let deadline = Instant::now() + Duration::from_secs(30);
        while written.iter().any(|w| w.load(Ordering::Acquire) < 5_000) {
            assert!(
                Instant::now() < deadline,
                "the writers never got 5000 records out"
            );
            thread::sleep(Duration::from_millis(5));
        }
        for (b, w) in before.iter_mut().zip(&written) {
            *b = w.load(Ordering::Acquire);
        }
        d.sigint();
        let (st, err) = d.finish();
        stop.store(true, Ordering::Relaxed);
        assert!(st.success(), "{st:?}\n{err}");
    });
    let st = f.path("before");
    fs::write(&st, status(&before)).unwrap();
    let v = verify(&out, &["--at-least", st.to_str().unwrap()]);
    assert_ok(&v, "verify --at-least");
    assert!(text(&v.stdout).contains(" 0 lost, 0 corrupt"));
}

#[test]
fn merged_stdout_is_timestamp_ordered_and_complete() {
    let f = Fixture::new(geo(8 << 10, 8, 3));
    let stream = f.path("merged.bin");
    let file = fs::File::create(&stream).unwrap();
    let d = Dumper::start(
        &[f.chan(), "-o", "-", "--flush-interval", "20ms"],
        file.into(),
    );
    let n = 5_000u64;
    thread::scope(|s| {
        for cpu in 0..3 {
            let sim = &f.sim;
            s.spawn(move || write_lossless(sim, cpu, 0..n));
        }
    });
    d.stop_ok("dump -o -");
    assert_verified(&stream, &[n, n, n], f.tmp.path());
    // Within the stream, each CPU's records keep their order and the
    // stream is framed records only.
    let bytes = fs::read(&stream).unwrap();
    assert_eq!(bytes.len() as u64, 3 * n * REC as u64);
    let mut last = [None::<u64>; 3];
    for r in Records::new(&bytes) {
        let r = r.unwrap();
        let lg = LoadgenRecord::parse(r.data).unwrap();
        if let Some(p) = last[lg.cpu as usize] {
            assert_eq!(lg.seq, p + 1);
        }
        last[lg.cpu as usize] = Some(lg.seq);
    }
}

/// Records whose length is not a multiple of 8: every payload ends at its
/// last record's data, unaligned. The dump (per-CPU files and the merged
/// stream) must still be one record stream the SDK's walker reads from
/// byte 0 to the end: zeros go between payloads, never at the end.
#[test]
fn unaligned_records_stay_framed_in_files_and_stream() {
    let f = Fixture::new(geo(4096, 8, 2));
    let mut want: [Recs; 2] = [Vec::new(), Vec::new()];
    for i in 0..200u32 {
        for cpu in 0..2u32 {
            let data: Vec<u8> = (0..(i % 37 + 1)).map(|k| (k + i + cpu) as u8).collect();
            let ty = 0x100 + (i % 3) as u16;
            assert!(matches!(
                f.sim.write_record(cpu, ty, &data).unwrap(),
                WriteOutcome::Written
            ));
            want[cpu as usize].push((ty, data));
        }
    }
    f.sim.flush(None).unwrap();
    // A snapshot of what the channel holds, through the files...
    let out = f.out();
    assert_ok(
        &run(&[f.chan(), "-o", out.to_str().unwrap(), "--duration", "0"]),
        "dump",
    );
    for (cpu, want) in want.iter().enumerate() {
        let got = file_records(&out.join(format!("cpu{cpu}.out")));
        assert_eq!(&got, want, "cpu{cpu}.out");
    }
    // ... and, written again, through the merged stream.
    for i in 0..100u32 {
        let data = vec![i as u8; (i % 13 + 1) as usize];
        f.sim.write_record(i % 2, 0x100, &data).unwrap();
    }
    f.sim.flush(None).unwrap();
    let o = run(&[f.chan(), "-o", "-", "--duration", "0"]);
    assert_ok(&o, "dump -o -");
    let got: Vec<usize> = Records::new(&o.stdout)
        .map(|r| r.expect("the stream is one record stream").data.len())
        .collect();
    assert_eq!(got.len(), 100);
    let mut sorted = got.clone();
    sorted.sort_unstable();
    let mut want: Vec<usize> = (0..100).map(|i| i % 13 + 1).collect();
    want.sort_unstable();
    assert_eq!(sorted, want);
}

/// An overwrite-mode channel (a flight recorder) lapped many times before
/// the dumper starts: it drains what survives (validated copies), counts
/// the laps, and its drain at the end terminates.
#[test]
fn overwrite_mode_counts_laps_and_terminates() {
    let f = Fixture::with_mode(geo(4096, 4, 1), Mode::Overwrite);
    let n = 2_000u64; // 128 KB through a 16 KiB buffer
    for seq in 0..n {
        f.sim.write_loadgen(0, seq, REC).unwrap();
    }
    f.sim.flush(None).unwrap();
    let out = f.out();
    let json = f.path("stats.json");
    let t = Instant::now();
    let o = run(&[
        f.chan(),
        "-o",
        out.to_str().unwrap(),
        "--duration",
        "0",
        "--stats-json",
        json.to_str().unwrap(),
    ]);
    assert_ok(&o, "dump of an overwrite channel");
    assert!(t.elapsed() < Duration::from_secs(20));
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let lapped = j["subbufs_lapped"].as_u64().unwrap();
    let records = j["records"].as_u64().unwrap();
    assert!(lapped > 20, "{j}");
    assert!(records > 0 && records < n, "{j}");
    // What survived is the newest records, in order, ending with the last.
    let seqs: Vec<u64> = file_records(&out.join("cpu0.out"))
        .iter()
        .map(|(_, d)| LoadgenRecord::parse(d).unwrap().seq)
        .collect();
    // Laps are packet seq gaps in the trace (CTF: discarded packets).
    let pk = packets_of(&out.join("cpu0.out"));
    let gaps: u64 = pk.windows(2).map(|w| w[1].0.seq - w[0].0.seq - 1).sum();
    assert!(pk[0].0.seq > 0 || gaps > 0, "no lap visible in the packets");
    assert_eq!(seqs.len() as u64, records);
    assert_eq!(*seqs.last().unwrap(), n - 1);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

#[test]
fn raw_mode_writes_payloads_as_they_are() {
    let f = Fixture::new(geo(4096, 4, 2));
    let mut want: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for i in 0..100u32 {
        for cpu in 0..2u32 {
            let chunk: Vec<u8> = (0..24).map(|k| (i * 7 + k + cpu * 100) as u8).collect();
            assert!(matches!(
                f.sim.write_raw(cpu, &chunk).unwrap(),
                WriteOutcome::Written
            ));
            want[cpu as usize].extend_from_slice(&chunk);
        }
        if i % 40 == 39 {
            // Keep the 4 x 4 KiB buffers from filling: dump what is there.
            let out = f.out();
            let o = run(&[
                f.chan(),
                "-o",
                out.to_str().unwrap(),
                "--raw",
                "--duration",
                "0",
            ]);
            // Each run continues the same trace (same channel instance).
            assert_ok(&o, "raw dump");
        }
    }
    let out = f.out();
    let o = run(&[
        f.chan(),
        "-o",
        out.to_str().unwrap(),
        "--raw",
        "--duration",
        "0",
    ]);
    assert_ok(&o, "raw dump");
    for (cpu, want) in want.iter().enumerate() {
        let all = file_payloads(&out.join(format!("cpu{cpu}.out")));
        assert_eq!(&all, want, "cpu{cpu}");
    }
}

#[test]
fn rotation_max_bytes_and_duration() {
    let f = Fixture::new(geo(16 << 10, 16, 1));
    write_lossless(&f.sim, 0, 0..3_000); // 192000 bytes, ~12 sub-buffers
    f.sim.flush(None).unwrap();
    let out = f.out();
    let t = Instant::now();
    let o = run(&[
        f.chan(),
        "-o",
        out.to_str().unwrap(),
        "--rotate",
        "40K",
        "--duration",
        "1s",
    ]);
    assert_ok(&o, "rotate");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(text(&o.stderr).contains("stopped by --duration"));
    let mut files: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    assert!(files.contains(&"cpu0.out".to_string()));
    assert!(files.contains(&"cpu0.out.1".to_string()));
    for name in &files {
        assert!(
            fs::metadata(out.join(name)).unwrap().len() <= 40 << 10,
            "{name}"
        );
    }
    assert_verified(&out, &[3_000], f.tmp.path());

    // --max-bytes: stops on its own after whole sub-buffers, the rest stays
    // in the buffer.
    write_lossless(&f.sim, 0, 3_000..6_000);
    f.sim.flush(None).unwrap();
    let out2 = f.path("out2");
    let o = run(&[f.chan(), "-o", out2.to_str().unwrap(), "--max-bytes", "20K"]);
    assert_ok(&o, "max-bytes");
    assert!(text(&o.stderr).contains("stopped by --max-bytes"));
    let len = fs::metadata(out2.join("cpu0.out")).unwrap().len();
    assert!((20 << 10..(20 << 10) + (16 << 10)).contains(&len), "{len}");
    let c = f.sim.cursor(0).unwrap();
    assert!(c.consumed < c.produced, "{c:?}");
}

/// Two dumpers on one channel: the second exits 8 at once, naming the CPU
/// and the first one's pid and comm; the first goes on and loses nothing.
#[test]
fn second_dumper_is_refused_naming_the_holder() {
    let f = Fixture::new(geo(16 << 10, 8, 2));
    let out = f.out();
    let first = Dumper::start(&[f.chan(), "-o", out.to_str().unwrap()], Stdio::null());
    let pid = first.child.id();
    let o = run(&[f.chan(), "-o", f.path("second").to_str().unwrap()]);
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(8), "{e}");
    assert!(
        e.contains(&format!(
            "relaymap-dump: channel {}: cpu 0 is held by pid {pid} (relaymap-dump): only one consumer per CPU; ",
            f.chan()
        )),
        "{e}"
    );
    assert!(
        !e.contains(READY),
        "the refused dumper claims it consumed: {e}"
    );
    // relaymap stat names the holder of every CPU, and claims nothing.
    let s = cli(&["stat", f.chan(), "--json"]);
    assert_ok(&s, "relaymap stat");
    let j: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    for c in j["cpus"].as_array().unwrap() {
        assert_eq!(c["holder_pid"], pid, "{j}");
        assert_eq!(c["holder_comm"], "relaymap-dump", "{j}");
    }
    let n = 10_000;
    thread::scope(|s| {
        for cpu in 0..2 {
            let sim = &f.sim;
            s.spawn(move || write_lossless(sim, cpu, 0..n));
        }
    });
    first.stop_ok("the first dumper");
    assert_verified(&out, &[n, n], f.tmp.path());
}

/// The merged-stream mode of a held channel is refused the same way, and
/// read-copy too.
#[test]
fn every_consumer_mode_is_refused_while_held() {
    let f = Fixture::new(geo(16 << 10, 8, 1));
    let first = Dumper::start(&[f.chan(), "-o", "-"], Stdio::null());
    let pid = first.child.id();
    for args in [
        vec![f.chan(), "-o", "-"],
        vec!["read-copy", f.chan(), "-o", "-", "--drain"],
    ] {
        let o = run(&args);
        let e = text(&o.stderr);
        assert_eq!(o.status.code(), Some(8), "{args:?}: {e}");
        assert!(
            e.contains(&format!("is held by pid {pid} (relaymap-dump)")),
            "{e}"
        );
    }
    first.stop_ok("the first dumper");
}

#[test]
fn relaymap_stat_and_list() {
    let f = Fixture::new(geo(16 << 10, 8, 2));
    write_lossless(&f.sim, 1, 0..1_000);
    // 1000 x 64 bytes in 16 KiB sub-buffers: 3 closed, the 4th open.
    let o = cli(&["stat", f.chan()]);
    assert_ok(&o, "relaymap stat");
    let t = text(&o.stdout);
    assert!(
        t.starts_with("channel chan: no-overwrite, 8 x 16 KiB per CPU, cpus 0-1, ABI 2\n"),
        "{t}"
    );
    let rows: Vec<Vec<&str>> = t
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{t}");
    assert_eq!(rows[0], ["0", "0", "0", "0", "0", "0", "0", "-"], "{t}");
    assert_eq!(&rows[1][..4], ["1", "3", "0", "3"], "{t}");
    let o = cli(&["stat", f.chan(), "--json"]);
    assert_ok(&o, "relaymap stat --json");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["channel"]["name"], "chan");
    assert_eq!(j["channel"]["subbuf_size"], 16384);
    assert_eq!(j["abi_version"], 2);
    assert_eq!(j["cpus"][1]["produced"], 3);
    assert_eq!(j["cpus"][1]["pending"], 3);
    assert_eq!(j["cpus"][0]["holder_pid"], serde_json::Value::Null);
    // Observers: nothing was consumed or claimed.
    let c = f.sim.cursor(1).unwrap();
    assert_eq!((c.consumed, c.held), (0, false));
    // list goes to the device; without the module it says so (exit 3).
    let o = Command::new(CLI)
        .arg("list")
        .env("RELAYMAP_DEVICE", f.path("no-such-device"))
        .output()
        .unwrap();
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(e.contains("module is not loaded"), "{e}");
    assert!(
        !e.contains("Error") && !e.contains('{'),
        "a Debug form: {e}"
    );
}

#[test]
fn by_name_without_the_module() {
    let tmp = tempfile::tempdir().unwrap();
    let dev = tmp.path().join("no-such-device");
    let o = Command::new(BIN)
        .args(["demo", "-o", tmp.path().join("o").to_str().unwrap()])
        .env("RELAYMAP_DEVICE", &dev)
        .output()
        .unwrap();
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(e.starts_with("relaymap-dump: channel demo: "), "{e}");
    assert!(e.contains("module is not loaded"), "{e}");
    // A name that is a directory here: the message points at the path form.
    let f = Fixture::new(geo(4096, 4, 1));
    let o = Command::new(BIN)
        .args(["chan", "-o", "o"])
        .current_dir(f.tmp.path())
        .env("RELAYMAP_DEVICE", &dev)
        .output()
        .unwrap();
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(e.contains("pass ./chan"), "{e}");
}

#[test]
fn not_a_channel() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in [tmp.path().to_path_buf(), tmp.path().join("missing")] {
        let o = run(&[
            dir.to_str().unwrap(),
            "-o",
            tmp.path().join("o").to_str().unwrap(),
        ]);
        let e = text(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{e}");
        assert!(e.contains("not a relaymap channel"), "{e}");
        assert!(!e.contains("file mode"), "{e}");
    }
}

#[test]
#[ignore = "needs root (it drops to uid 65534 with setpriv): run `cargo test -p relaymap-dump -- --ignored` as root"]
fn permission_denied() {
    assert!(
        is_root(),
        "this test needs root: it drops privileges with setpriv"
    );
    let f = Fixture::new(geo(4096, 4, 1));
    // Root-only channel files, as the kernel's are.
    use std::os::unix::fs::PermissionsExt;
    for ent in fs::read_dir(f.chan()).unwrap() {
        let p = ent.unwrap().path();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    }
    fs::set_permissions(f.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let out = f.tmp.path().join("o");
    fs::create_dir(&out).unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
    let o = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            BIN,
        ])
        .args([f.chan(), "-o", out.to_str().unwrap()])
        .output()
        .expect("setpriv (util-linux)");
    let e = text(&o.stderr);
    assert_ne!(
        o.status.code(),
        Some(126),
        "uid 65534 cannot execute {} (is {} world-readable?): {e}",
        BIN,
        bin_dir.display()
    );
    assert_eq!(o.status.code(), Some(4), "{e}");
    assert!(e.contains("permission denied"), "{e}");
    assert!(
        !e.contains("file mode"),
        "the old hint to change file modes: {e}"
    );
}

#[test]
fn unwritable_output_dir() {
    let f = Fixture::new(geo(4096, 4, 1));
    let file = f.path("a-file");
    fs::write(&file, b"x").unwrap();
    let bad = file.join("out");
    let o = run(&[f.chan(), "-o", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("cannot write output"));
    // /proc does not take new directories either (even for root).
    let o = run(&[f.chan(), "-o", "/proc/relaymap-dump-test"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    // The claim went with the process.
    assert!(!f.sim.cursor(0).unwrap().held);
}

#[test]
fn disk_full_on_stdout_releases_nothing() {
    let f = Fixture::new(geo(4096, 8, 1));
    write_lossless(&f.sim, 0, 0..200);
    f.sim.flush(None).unwrap();
    let produced = f.sim.cursor(0).unwrap().produced;
    let o = Command::new(BIN)
        .args([f.chan(), "-o", "-", "--duration", "5s"])
        .stdout(
            fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .unwrap();
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(6), "{e}");
    assert!(e.contains("no space left"), "{e}");
    assert!(e.contains("stopped consuming"), "{e}");
    let c = f.sim.cursor(0).unwrap();
    assert_eq!(
        c.consumed, 0,
        "a sub-buffer was released although not written"
    );
    assert_eq!(c.produced, produced);
}

#[test]
#[ignore = "needs root (mounts a 48 KiB tmpfs): run `cargo test -p relaymap-dump -- --ignored` as root"]
fn disk_full_on_small_tmpfs_loses_nothing() {
    assert!(is_root(), "this test needs root: it mounts a tmpfs");
    let f = Fixture::new(geo(16 << 10, 8, 1));
    let mnt = f.path("small");
    fs::create_dir(&mnt).unwrap();
    let st = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=48k",
            "tmpfs",
            mnt.to_str().unwrap(),
        ])
        .status()
        .expect("mount");
    assert!(st.success(), "mount -t tmpfs failed: {st:?}");
    struct Umount(PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Umount(mnt.clone());
    // 2000 records = 128000 bytes: more than 48k fits.
    let n = 2_000u64;
    let d = Dumper::start(&[f.chan(), "-o", mnt.to_str().unwrap()], Stdio::null());
    // Writes until the dumper stops consuming and the buffer fills.
    let mut seq = 0;
    let mut stuck_since = None::<Instant>;
    while seq < n {
        match f.sim.try_write_loadgen(0, seq, REC).unwrap() {
            WriteOutcome::Written => {
                seq += 1;
                stuck_since = None;
            }
            _ => {
                let t = *stuck_since.get_or_insert_with(Instant::now);
                if t.elapsed() > Duration::from_secs(3) {
                    break;
                }
                thread::sleep(Duration::from_millis(1));
            }
        }
    }
    let written = seq;
    let (st, e) = d.finish();
    assert_eq!(st.code(), Some(6), "{e}");
    assert!(e.contains("no space left"), "{e}");
    // The file holds whole packets (a torn last one, cut short by the full
    // disk, is what a restart cuts off) with seq 0..k; the channel holds the
    // rest from k on: nothing lost, nothing twice.
    let dumped = fs::read(mnt.join("cpu0.out")).unwrap();
    let mut next = 0u64;
    let mut pos = 0;
    while let Ok(p) = Packet::parse(&dumped[pos..]) {
        if pos + p.packet_size > dumped.len() {
            break; // the torn tail
        }
        let pkt = &dumped[pos..pos + p.packet_size];
        for r in Records::new(p.payload(pkt)) {
            let lg = LoadgenRecord::parse(r.unwrap().data).unwrap();
            assert_eq!(lg.seq, next);
            next += 1;
        }
        pos += p.packet_size;
    }
    assert!(next > 0 && next < written, "{next} of {written}");
    for (_, recs) in drain(&f.sim.open().unwrap()) {
        for (_, data) in recs {
            let lg = LoadgenRecord::parse(&data).unwrap();
            assert_eq!(lg.seq, next, "gap or duplicate after the disk-full stop");
            next += 1;
        }
    }
    assert_eq!(next, written);
}

#[test]
fn usage_errors() {
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("relaymap list"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["/tmp", "-o", "-", "--rotate", "1M"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["/tmp", "--max-bytes", "lots"]);
    assert_eq!(o.status.code(), Some(2));
    // Finite, but beyond what a duration can hold: a usage error, no panic.
    for d in ["1e30", "1e16h"] {
        let o = run(&["/tmp", "--duration", d]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "--duration {d}: {}",
            text(&o.stderr)
        );
        let o = run(&["/tmp", "--flush-interval", d]);
        assert_eq!(o.status.code(), Some(2), "--flush-interval {d}");
    }
    let o = cli(&[]);
    assert_eq!(o.status.code(), Some(2));
    let o = cli(&["stat"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn verify_catches_corruption_and_loss() {
    let f = Fixture::new(geo(16 << 10, 8, 1));
    write_lossless(&f.sim, 0, 0..500);
    f.sim.flush(None).unwrap();
    let out = f.out();
    assert_ok(
        &run(&[f.chan(), "-o", out.to_str().unwrap(), "--duration", "0"]),
        "dump",
    );
    let st = f.path("status");
    // The loadgen claims more records than the dump has: lost.
    fs::write(&st, status(&[501])).unwrap();
    let v = verify(&out, &["--loadgen-status", st.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(7));
    assert!(text(&v.stdout).contains("verified 500 records, 1 lost, 0 corrupt"));
    // A flipped fill byte: corrupt.
    let p = out.join("cpu0.out");
    let mut b = fs::read(&p).unwrap();
    let at = relaymap::abi::SUBBUF_HEADER_SIZE + REC * 10 + 40;
    b[at] ^= 0xff;
    fs::File::create(&p).unwrap().write_all(&b).unwrap();
    fs::write(&st, status(&[500])).unwrap();
    let v = verify(&out, &["--loadgen-status", st.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(7));
    assert!(text(&v.stdout).contains("1 corrupt"), "{}", text(&v.stdout));
    // A file cut inside its second packet (a crash mid-write): a torn
    // tail, told apart from corruption; the first packet's records count.
    b[at] ^= 0xff;
    let first = Packet::parse(&b).unwrap();
    let in_first = Records::new(first.payload(&b)).count();
    fs::write(&p, &b[..first.packet_size + 1000]).unwrap();
    let v = verify(&out, &[]);
    let t = text(&v.stdout);
    assert_eq!(v.status.code(), Some(7), "{t}");
    assert!(t.contains(&format!("cpu0: {in_first} records")), "{t}");
    assert!(t.contains("torn tail"), "{t}");
    assert!(t.contains("0 lost, 0 corrupt"), "{t}");
    assert!(
        t.contains("exactly once: 0 duplicated, 1 torn tails"),
        "{t}"
    );
    // A packet written twice: duplicates (a count), not corruption.
    let mut twice = b[..first.packet_size].to_vec();
    twice.extend_from_slice(&b);
    fs::write(&p, &twice).unwrap();
    let v = verify(&out, &[]);
    let t = text(&v.stdout);
    assert_eq!(v.status.code(), Some(7), "{t}");
    assert!(t.contains("verified 500 records, 0 lost, 0 corrupt"), "{t}");
    assert!(
        t.contains(&format!(
            "exactly once: {in_first} duplicated, 0 torn tails"
        )),
        "{t}"
    );
    // Not a dump: a usage error (2), not a failed verification.
    let v = verify(&f.path("nope"), &[]);
    assert_eq!(v.status.code(), Some(2));
    let v = verify(f.tmp.path(), &[]);
    assert_eq!(v.status.code(), Some(2), "{}", text(&v.stderr));
    assert!(
        text(&v.stderr).contains("not a relaymap-dump trace"),
        "{}",
        text(&v.stderr)
    );
}

/// A dump larger than `verify`'s read chunk (4 MiB), with records of a size
/// that does not divide it, so that records straddle the chunk boundaries.
#[test]
fn verify_reads_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Vec::new();
    let n = 50_000u64;
    for seq in 0..n {
        let data = relaymap::loadgen_data(seq, 0, 104);
        relaymap::encode_record(
            &mut b,
            0,
            relaymap::abi::RELAYMAP_REC_LOADGEN as u16,
            seq,
            &data,
        );
    }
    assert!(b.len() > 4 << 20);
    // A merged stream file (`-o -`) is walked in chunks.
    let merged = dir.path().join("merged.bin");
    fs::write(&merged, &b).unwrap();
    let v = verify(&merged, &[]);
    assert_ok(&v, "verify");
    assert!(
        text(&v.stdout).contains(&format!("verified {n} records, 0 lost, 0 corrupt")),
        "{}",
        text(&v.stdout)
    );
}

#[test]
fn progress_line_only_on_a_terminal() {
    let f = Fixture::new(geo(16 << 10, 8, 2));
    write_lossless(&f.sim, 0, 0..1_000);
    write_lossless(&f.sim, 1, 0..1_000);
    let out = f.out();
    // Off a terminal: the readiness line and the summary, nothing else.
    let o = run(&[f.chan(), "-o", out.to_str().unwrap(), "--duration", "0.6"]);
    assert_ok(&o, "dump");
    let err = text(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(lines[0].starts_with(READY), "{err}");
    assert!(
        lines[1].starts_with("relaymap-dump: chan (records)"),
        "{err}"
    );
    assert!(
        lines[2].starts_with("  cpu0: ") && lines[3].starts_with("  cpu1: "),
        "{err}"
    );
    // On a terminal (script(1), from util-linux, gives it a pty): a live
    // line with per-CPU rates, sub-buffers and drops.
    write_lossless(&f.sim, 0, 1_000..2_000);
    let cmd = format!(
        "{BIN} {} -o {} --duration 1.2",
        f.chan(),
        f.path("out-tty").display()
    );
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script(1) from util-linux");
    let tty = text(&o.stdout);
    assert!(o.status.success(), "{tty}");
    assert!(tty.contains("total | cpu0 "), "{tty}");
    assert!(tty.contains(" sb ") && tty.contains(" drops"), "{tty}");
}

/// Starts the dumper on a 1-CPU channel, brings cpu1 online once it
/// consumes, writes `n` records to each CPU, SIGINTs. Returns the dumper's
/// stderr and the stats JSON.
fn dump_with_late_cpu(
    f: &Fixture,
    out: &str,
    extra: &[&str],
    n: u64,
) -> (String, serde_json::Value) {
    let json = f.path("stats.json");
    let mut args = vec![
        f.chan(),
        "-o",
        out,
        "--flush-interval",
        "50ms",
        "--stats-json",
        json.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let stdout = if out == "-" {
        fs::File::create(f.path("merged.bin")).unwrap().into()
    } else {
        Stdio::null()
    };
    let d = Dumper::start(&args, stdout);
    write_lossless(&f.sim, 0, 0..100);
    f.sim.add_cpu(1).unwrap();
    thread::scope(|s| {
        let sim = &f.sim;
        s.spawn(move || write_lossless(sim, 0, 100..n));
        s.spawn(move || write_lossless(sim, 1, 0..n));
    });
    let err = d.stop_ok("dump");
    let j = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    (err, j)
}

fn assert_late_cpu_dumped(f: &Fixture, err: &str, j: &serde_json::Value, dump: &Path, n: u64) {
    assert_eq!(
        err.matches("relaymap-dump: cpu1 came online, dumping it to ")
            .count(),
        1,
        "{err}"
    );
    assert_verified(dump, &[n, n], f.tmp.path());
    let cpus = j["cpus"].as_array().unwrap();
    assert_eq!(cpus.len(), 2, "{j}");
    assert_eq!(cpus[1]["cpu"], 1);
    assert_eq!(cpus[1]["records"], n);
    assert_eq!(j["records"], 2 * n);
    for cpu in 0..2 {
        let c = f.sim.cursor(cpu).unwrap();
        assert_eq!(c.produced, c.consumed, "cpu{cpu}");
    }
}

#[test]
fn cpu_coming_online_is_dumped_to_its_own_file() {
    let f = Fixture::new(geo(16 << 10, 8, 1));
    let out = f.out();
    let n = 20_000u64;
    // 1.28 MB per CPU: cpuN.out, cpuN.out.1, ... .4 for both.
    let (err, j) = dump_with_late_cpu(&f, out.to_str().unwrap(), &["--rotate", "256K"], n);
    let cpu1 = out.join("cpu1.out");
    assert!(
        err.contains(&format!(
            "cpu1 came online, dumping it to {}",
            cpu1.display()
        )),
        "{err}"
    );
    let files = j["cpus"][1]["files"].as_array().unwrap();
    assert!(files.len() >= 5, "{j}");
    assert_eq!(files[0], cpu1.to_str().unwrap());
    assert_eq!(files[4], out.join("cpu1.out.4").to_str().unwrap());
    let mut size = 0;
    for p in files {
        let len = fs::metadata(p.as_str().unwrap()).unwrap().len();
        assert!(len <= 256 << 10, "{p}: {len}");
        size += len;
    }
    assert!(size.is_multiple_of(4096) && size > n * REC as u64);
    assert_late_cpu_dumped(&f, &err, &j, &out, n);
}

#[test]
fn cpu_coming_online_joins_the_merged_stream() {
    let f = Fixture::new(geo(16 << 10, 8, 1));
    let n = 20_000u64;
    let (err, j) = dump_with_late_cpu(&f, "-", &[], n);
    assert!(
        err.contains("cpu1 came online, dumping it to the merged stream"),
        "{err}"
    );
    assert_late_cpu_dumped(&f, &err, &j, &f.path("merged.bin"), n);
}

// read-copy read()s the consumer fd: the simulator's consumer fd is its
// wake FIFO, not the buffer, so read-copy's bytes are checked against the
// real module only (73-dump-modes); its error paths are checked here.
#[test]
fn read_copy_errors() {
    let f = Fixture::new(geo(4 << 10, 4, 1));
    let o = run(&["read-copy", "/nonexistent/relaymap", "-o", "-", "--drain"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let empty = f.path("empty");
    fs::create_dir(&empty).unwrap();
    let o = run(&["read-copy", empty.to_str().unwrap(), "-o", "-", "--drain"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("not a relaymap channel"),
        "{}",
        text(&o.stderr)
    );
    let file = f.path("afile");
    fs::write(&file, b"x").unwrap();
    let o = run(&[
        "read-copy",
        f.chan(),
        "-o",
        file.join("sub").to_str().unwrap(),
        "--drain",
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
}

/// `verify` on what is not a dump: exit 7 with words, never a panic, and
/// no made-up CPU number for bytes that name none.
#[test]
fn verify_rejects_empty_and_garbage_dumps() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.bin");
    fs::write(&empty, b"").unwrap();
    let o = verify(&empty, &[]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("no records found"),
        "{}",
        text(&o.stdout)
    );

    // Deterministic garbage (xorshift), as a merged stream and as a cpu file.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let garbage: Vec<u8> = (0..50_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let merged = tmp.path().join("garbage.bin");
    fs::write(&merged, &garbage).unwrap();
    let dir = tmp.path().join("garbage-dir");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("cpu0.out"), &garbage).unwrap();
    let o = verify(&merged, &[]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(7), "{}\n{}", out, text(&o.stderr));
    assert!(out.contains("broken framing"), "{out}");
    assert!(!out.contains("4294967295"), "{out}");
    assert!(out.contains("0 lost, 1 corrupt\n"), "{out}");
    // A directory without a trace's metadata is not a dump: usage (2).
    let o = verify(&dir, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    // With a metadata, garbage data is corrupt (7).
    let sim = SimChannel::create_temp(geo(4096, 4, 1), Mode::NoOverwrite).unwrap();
    let info = sim.open().unwrap().info().clone();
    fs::write(dir.join("metadata"), ctf::metadata(&info, "h", 0)).unwrap();
    let o = verify(&dir, &[]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(7), "{out}");
    assert!(out.contains("not a packet"), "{out}");
    assert!(out.contains("0 lost, 1 corrupt\n"), "{out}");
}

/// Runs the dumper until it SIGKILLs itself at `crash` (the test hook
/// `RELAYMAP_DUMP_TEST_CRASH`), returns its stderr.
fn run_until_crash(f: &Fixture, out: &Path, crash: &str) -> String {
    let o = Command::new(BIN)
        .args([
            f.chan(),
            "-o",
            out.to_str().unwrap(),
            "--flush-interval",
            "20ms",
        ])
        .env("RELAYMAP_DUMP_TEST_CRASH", crash)
        .stdin(Stdio::null())
        .output()
        .expect("run relaymap-dump");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGKILL),
        "{crash}: {:?}\n{}",
        o.status,
        text(&o.stderr)
    );
    text(&o.stderr)
}

/// Crash and restart, exactly once: the dumper dies mid-write (a torn
/// packet on disk, nothing handed back) or after a write and its fsync but
/// before PUT_CONSUMED (packets on disk that the kernel still holds);
/// every restart into the same directory cuts the torn tail and skips what
/// is on disk. Many crash points, 1 and 2 CPUs, record sizes that do not
/// divide the page.
#[test]
fn restarts_after_crashes_are_exactly_once() {
    let cases: &[(u32, usize, &[&str])] = &[
        (1, 64, &["mid-write:1"]),
        (1, 64, &["after-write:1"]),
        (
            2,
            72,
            &[
                "mid-write:3",
                "after-write:2",
                "mid-write:1",
                "after-write:5",
            ],
        ),
        (
            2,
            200,
            &[
                "after-write:4",
                "after-write:1",
                "mid-write:7",
                "mid-write:2",
                "after-write:3",
            ],
        ),
        (
            1,
            200,
            &[
                "mid-write:2",
                "mid-write:2",
                "after-write:1",
                "after-write:1",
            ],
        ),
    ];
    for (ncpu, rec, crashes) in cases {
        let f = Fixture::new(geo(16 << 10, 4, *ncpu));
        let out = f.out();
        let n = 3_000u64;
        let (mut torn_seen, mut skipped_seen) = (0, 0);
        let d = thread::scope(|s| {
            for cpu in 0..*ncpu {
                let sim = &f.sim;
                let rec = *rec;
                s.spawn(move || {
                    for seq in 0..n {
                        let deadline = Instant::now() + Duration::from_secs(60);
                        while !matches!(
                            sim.try_write_loadgen(cpu, seq, rec).unwrap(),
                            WriteOutcome::Written
                        ) {
                            assert!(Instant::now() < deadline, "no consumer freed space");
                            thread::sleep(Duration::from_micros(200));
                        }
                    }
                });
            }
            for c in crashes.iter() {
                let err = run_until_crash(&f, &out, c);
                torn_seen += err.matches("cut a torn tail").count();
                skipped_seen += err.matches("continuing the trace").count();
            }
            // A last dumper takes the rest once the writers are done.
            Dumper::start(
                &[
                    f.chan(),
                    "-o",
                    out.to_str().unwrap(),
                    "--flush-interval",
                    "20ms",
                ],
                Stdio::null(),
            )
        });
        let err = d.stop_ok("last dumper");
        torn_seen += err.matches("cut a torn tail").count();
        let counts = vec![n; *ncpu as usize];
        let st = f.path("st");
        fs::write(&st, status(&counts)).unwrap();
        let v = verify(&out, &["--loadgen-status", st.to_str().unwrap()]);
        let t = text(&v.stdout);
        assert_ok(&v, &format!("verify after {crashes:?}: {t}"));
        assert!(
            t.contains(&format!(
                "verified {} records, 0 lost, 0 corrupt",
                n * u64::from(*ncpu)
            )),
            "{t}"
        );
        assert!(
            t.contains("exactly once: 0 duplicated, 0 torn tails, 0 packets missing"),
            "{t}"
        );
        let mids = crashes.iter().filter(|c| c.starts_with("mid")).count();
        assert_eq!(
            torn_seen, mids,
            "{crashes:?}: every mid-write crash leaves a torn tail that is cut\n{err}"
        );
        assert!(skipped_seen >= crashes.len() - 1, "{crashes:?}");
        if crashes.iter().any(|c| c.starts_with("after")) {
            assert!(err.contains("continued the trace"), "{err}");
        }
    }
}

/// After a crash between write and PUT_CONSUMED the restart hands the
/// sub-buffers on disk back without writing them (counted as skipped).
#[test]
fn restart_skips_what_is_on_disk() {
    let f = Fixture::new(geo(4096, 8, 1));
    write_lossless(&f.sim, 0, 0..200); // ~4 sub-buffers
    f.sim.flush(None).unwrap();
    let out = f.out();
    run_until_crash(&f, &out, "after-write:1");
    let before = f.sim.cursor(0).unwrap();
    assert_eq!(
        before.consumed, 0,
        "nothing was handed back before the crash"
    );
    let json = f.path("s.json");
    let o = run(&[
        f.chan(),
        "-o",
        out.to_str().unwrap(),
        "--duration",
        "0",
        "--stats-json",
        json.to_str().unwrap(),
    ]);
    assert_ok(&o, "restart");
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    assert!(j["subbufs_skipped"].as_u64().unwrap() >= 1, "{j}");
    assert_eq!(j["resumed"], true);
    assert_verified(&out, &[200], f.tmp.path());
}

/// `-o` of a directory holding something else: refused (exit 9), nothing
/// changed, the channel untouched; `--force` starts a trace there and keeps
/// the other files. A directory holding another instance's trace (the
/// channel was reset) is refused the same way.
#[test]
fn foreign_and_other_instance_directories_are_refused() {
    let f = Fixture::new(geo(4096, 8, 1));
    write_lossless(&f.sim, 0, 0..100);
    f.sim.flush(None).unwrap();
    let out = f.out();
    fs::create_dir(&out).unwrap();
    fs::write(out.join("notes.txt"), b"mine").unwrap();
    fs::write(out.join("cpu0.out"), b"old data of another tool").unwrap();
    let listing = |d: &Path| {
        let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(&out);
    let o = run(&[f.chan(), "-o", out.to_str().unwrap(), "--duration", "0"]);
    assert_eq!(o.status.code(), Some(9), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("refused, nothing was changed"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(listing(&out), before, "the refused directory changed");
    assert_eq!(
        f.sim.cursor(0).unwrap().consumed,
        0,
        "a refused dump consumed"
    );
    let o = run(&[
        f.chan(),
        "-o",
        out.to_str().unwrap(),
        "--duration",
        "0",
        "--force",
    ]);
    assert_ok(&o, "--force");
    assert!(
        text(&o.stderr).contains("--force: removed 1"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(fs::read(out.join("notes.txt")).unwrap(), b"mine");
    fs::remove_file(out.join("notes.txt")).unwrap();
    assert_verified(&out, &[100], f.tmp.path());
    // The channel is reset (new uuid): its old trace is another instance's.
    f.sim.open().unwrap().reset().unwrap();
    write_lossless(&f.sim, 0, 0..10);
    f.sim.flush(None).unwrap();
    let before = listing(&out);
    let o = run(&[f.chan(), "-o", out.to_str().unwrap(), "--duration", "0"]);
    assert_eq!(o.status.code(), Some(9), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("reset or recreated"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(listing(&out), before);
    // A file where the directory should be.
    let o = run(&[
        f.chan(),
        "-o",
        out.join("cpu0.out").to_str().unwrap(),
        "--duration",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(9), "{}", text(&o.stderr));
}

/// `--direct` where the file system refuses O_DIRECT (tmpfs) says so and
/// falls back; where it accepts it the packets go through O_DIRECT. Either
/// way the dump verifies.
#[test]
fn direct_writes_or_falls_back_with_a_message() {
    for base in ["/dev/shm", env!("CARGO_TARGET_TMPDIR")] {
        if !Path::new(base).is_dir() {
            continue;
        }
        let f = Fixture::new(geo(16 << 10, 8, 2));
        let out = tempfile::tempdir_in(base).unwrap();
        let out = out.path().join("d");
        for cpu in 0..2 {
            write_lossless(&f.sim, cpu, 0..600);
        }
        f.sim.flush(None).unwrap();
        let json = f.path("s.json");
        let o = run(&[
            f.chan(),
            "-o",
            out.to_str().unwrap(),
            "--duration",
            "0",
            "--direct",
            "--stats-json",
            json.to_str().unwrap(),
        ]);
        assert_ok(&o, "--direct");
        let j: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
        let err = text(&o.stderr);
        if err.contains("refuses O_DIRECT") {
            assert_eq!(j["direct_writes"], 0, "{j}");
        } else {
            assert!(
                j["direct_writes"].as_u64().unwrap() > 0,
                "{base}: {j}\n{err}"
            );
            assert_eq!(j["buffered_writes"], 0, "{j}");
        }
        assert_verified(&out, &[600, 600], f.tmp.path());
    }
}

/// Runs babeltrace2 on `dir`; (its stdout+stderr, exit status).
fn babeltrace2(dir: &Path) -> (String, bool) {
    let o = Command::new("babeltrace2")
        .arg("--clock-cycles")
        .arg(dir)
        .output()
        .expect("babeltrace2 (apt-get install babeltrace2; tests/host/50-ctf-host.sh does)");
    (text(&o.stdout) + &text(&o.stderr), o.status.success())
}

/// Sums N over lines `WARNING: Tracer discarded N <what>`.
fn discarded(out: &str, what: &str) -> u64 {
    out.lines()
        .filter_map(|l| l.strip_prefix("WARNING: Tracer discarded "))
        .filter_map(|l| {
            let (n, rest) = l.split_once(' ')?;
            rest.starts_with(what)
                .then(|| n.parse::<u64>().ok())
                .flatten()
        })
        .sum()
}

/// A dump read by Debian's babeltrace2 (2.0.4): every record printed, in
/// timestamp order across CPUs, printf records as text, the drops as
/// discarded events; an overwrite dump's laps as discarded packets.
/// Needs `babeltrace2`: run by tests/host/50-ctf-host.sh (which installs it).
#[test]
#[ignore = "needs babeltrace2: tests/host/50-ctf-host.sh runs it"]
fn babeltrace2_reads_the_dump() {
    // Drop mode: a full 4 x 4 KiB buffer drops, then the dumper drains,
    // then more records (and printf text) close a packet that carries the
    // final drop count.
    let f = Fixture::new(geo(4096, 4, 2));
    let mut written = 0u64;
    let mut dropped = 0u64;
    for cpu in 0..2 {
        for seq in 0..600 {
            match f.sim.write_loadgen(cpu, seq, REC).unwrap() {
                WriteOutcome::Written => written += 1,
                WriteOutcome::Dropped => dropped += 1,
                o => panic!("{o:?}"),
            }
        }
    }
    assert!(dropped > 0);
    let out = f.out();
    assert_ok(
        &run(&[f.chan(), "-o", out.to_str().unwrap(), "--duration", "0"]),
        "dump 1",
    );
    for cpu in 0..2 {
        for i in 0..5 {
            f.sim
                .write_printf(cpu, &format!("relaymap_loadgen cpu {cpu} seq {i}"))
                .unwrap();
            written += 1;
        }
    }
    f.sim.flush(None).unwrap();
    assert_ok(
        &run(&[f.chan(), "-o", out.to_str().unwrap(), "--duration", "0"]),
        "dump 2 (continues)",
    );
    let (bt, ok) = babeltrace2(&out);
    assert!(ok, "{bt}");
    let events: Vec<&str> = bt.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(events.len() as u64, written, "{bt}");
    let ts: Vec<u64> = events
        .iter()
        .map(|l| l[1..l.find(']').unwrap()].trim().parse().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "merged order");
    assert_eq!(discarded(&bt, "event"), dropped, "{bt}");
    assert!(
        bt.contains("text = \"relaymap_loadgen cpu 1 seq 4\""),
        "{bt}"
    );
    // Overwrite mode: the dumper reads between laps.
    let f = Fixture::with_mode(geo(4096, 4, 1), Mode::Overwrite);
    let out = f.out();
    let mut seq = 0;
    for _round in 0..3 {
        for _ in 0..600 {
            f.sim.write_loadgen(0, seq, REC).unwrap();
            seq += 1;
        }
        f.sim.flush(None).unwrap();
        assert_ok(
            &run(&[f.chan(), "-o", out.to_str().unwrap(), "--duration", "0"]),
            "overwrite dump",
        );
    }
    let pk = packets_of(&out.join("cpu0.out"));
    let gaps: u64 = pk.windows(2).map(|w| w[1].0.seq - w[0].0.seq - 1).sum();
    assert!(gaps > 0);
    let (bt, ok) = babeltrace2(&out);
    assert!(ok, "{bt}");
    assert_eq!(discarded(&bt, "packet"), gaps, "{bt}");
}

/// CPU time of the children waited for so far (user + sys, s).
fn children_cpu_s() -> f64 {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the call.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    assert_eq!(rc, 0);
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The host measurement of issue 10 (not a pass/fail test; run by hand or
/// by tests/host/50-ctf-host.sh): CPU-seconds per GB of the consumer
/// writing 2 x 32 x 1 MiB of preloaded sim buffers (in /dev/shm, like
/// kernel memory) to a block-backed file system (`RELAYMAP_BENCH_DIR`,
/// default this crate's target tmpdir), for `--direct`, the buffered writev
/// path, and a read()+write() copy of the same buffers (`dd bs=1M`, what
/// `read-copy` does to a relay file; read-copy itself needs the kernel).
/// CPU time is the child's (getrusage RUSAGE_CHILDREN deltas). Median of 5.
#[test]
#[ignore = "a measurement: cargo test -p relaymap-dump --release --test sim -- --ignored --nocapture host_cpu_per_gb"]
fn host_cpu_per_gb() {
    let base =
        std::env::var("RELAYMAP_BENCH_DIR").unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").into());
    let mut results: Vec<(&str, Vec<(f64, f64)>)> = vec![
        ("direct", vec![]),
        ("writev", vec![]),
        ("direct --fsync exit", vec![]),
        ("writev --fsync exit", vec![]),
        ("read+write", vec![]),
    ];
    for _run in 0..5 {
        for (how, res) in results.iter_mut() {
            let sim = SimChannel::create_temp(geo(1 << 20, 32, 2), Mode::NoOverwrite).unwrap();
            let mut seq = [0u64; 2];
            for cpu in 0..2u32 {
                while matches!(
                    sim.try_write_loadgen(cpu, seq[cpu as usize], 128).unwrap(),
                    WriteOutcome::Written
                ) {
                    seq[cpu as usize] += 1;
                }
            }
            sim.flush(None).unwrap();
            let out = tempfile::tempdir_in(&base).unwrap();
            let dst = out.path().join("d");
            let before = children_cpu_s();
            let t = Instant::now();
            let bytes = if *how == "read+write" {
                fs::create_dir(&dst).unwrap();
                let mut b = 0;
                for cpu in 0..2 {
                    let src = sim.dir().join(format!("cpu{cpu}"));
                    let o = Command::new("dd")
                        .arg(format!("if={}", src.display()))
                        .arg(format!(
                            "of={}",
                            dst.join(format!("cpu{cpu}.read")).display()
                        ))
                        .args(["bs=1M", "conv=fsync", "status=none"])
                        .output()
                        .unwrap();
                    assert_ok(&o, "dd");
                    b += fs::metadata(dst.join(format!("cpu{cpu}.read")))
                        .unwrap()
                        .len();
                }
                b
            } else {
                let json = out.path().join("s.json");
                let mut a = vec![
                    sim.dir().to_str().unwrap(),
                    "-o",
                    dst.to_str().unwrap(),
                    "--duration",
                    "0",
                    "--stats-json",
                    json.to_str().unwrap(),
                ];
                if how.starts_with("direct") {
                    a.push("--direct");
                }
                if how.ends_with("exit") {
                    a.extend(["--fsync", "exit"]);
                }
                let o = run(&a);
                assert_ok(&o, how);
                let j: serde_json::Value =
                    serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
                if how.starts_with("direct") {
                    assert_eq!(j["buffered_writes"], 0, "{}", text(&o.stderr));
                }
                j["bytes"].as_u64().unwrap()
            };
            let secs = t.elapsed().as_secs_f64();
            let cpu = children_cpu_s() - before;
            res.push((cpu / (bytes as f64 / 1e9), bytes as f64 / secs / 1e6));
        }
    }
    println!("host-cpu-per-gb: sim buffers in /dev/shm -> {base} ({}), 2 x 32 x 1 MiB, 128-byte records, median of 5:",
        String::from_utf8_lossy(&Command::new("stat").args(["-f", "-c", "%T", &base]).output().unwrap().stdout).trim());
    for (how, mut v) in results {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        let c = v[v.len() / 2].0;
        v.sort_by(|a, b| a.1.total_cmp(&b.1));
        let m = v[v.len() / 2].1;
        println!("host-cpu-per-gb: {how:20} {c:.3} CPU-s/GB, {m:.0} MB/s");
    }
}
