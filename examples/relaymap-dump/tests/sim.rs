//! relaymap-dump as a process against the simulated backend (`relaymap/sim`):
//! lossless dumps verified record by record, merged and raw output,
//! rotation, limits, SIGINT drain, and every error case with its exit code.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use relaymap::sim::{SimChannel, SimGeometry, WriteOutcome};
use relaymap::{Channel, LoadgenRecord, Mode};

const BIN: &str = env!("CARGO_BIN_EXE_relaymap-dump");
const REC: usize = 64;

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
        let tmp = tempfile::tempdir().expect("tempdir");
        let sim = SimChannel::create(tmp.path().join("chan"), g, Mode::NoOverwrite).expect("sim");
        Fixture { tmp, sim }
    }
    fn chan(&self) -> &Path {
        self.sim.dir()
    }
    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }
    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// Writes loadgen records 0..n on `cpu`, waiting while the buffer is full
/// (the load generator's lossless mode).
fn write_lossless(sim: &SimChannel, cpu: u32, seqs: std::ops::Range<u64>) {
    for seq in seqs {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match sim.write_loadgen(cpu, seq, REC).expect("write") {
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

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn relaymap-dump")
}

fn run(args: &[&str]) -> Output {
    spawn(args).wait_with_output().expect("wait")
}

fn sigint(child: &Child) {
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
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

#[test]
fn lossless_per_cpu_files_verified() {
    let f = Fixture::new(geo(16 << 10, 8, 2));
    let out = f.out();
    let json = f.path("stats.json");
    let child = spawn(&[
        f.chan().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--flush-interval",
        "50ms",
        "--stats-json",
        json.to_str().unwrap(),
    ]);
    let n = 40_000u64;
    thread::scope(|s| {
        for cpu in 0..2 {
            let sim = &f.sim;
            s.spawn(move || write_lossless(sim, cpu, 0..n));
        }
    });
    // Writers done: everything produced before the signal must be dumped.
    sigint(&child);
    let o = child.wait_with_output().unwrap();
    assert_ok(&o, "dump");
    let err = text(&o.stderr);
    assert!(err.contains("stopped by signal"), "{err}");
    let st = f.path("status");
    fs::write(&st, status(&[n, n])).unwrap();
    let v = verify(&out, &["--loadgen-status", st.to_str().unwrap()]);
    assert_ok(&v, "verify");
    assert!(
        text(&v.stdout).contains(&format!("verified {} records, 0 lost, 0 corrupt", 2 * n)),
        "{}",
        text(&v.stdout)
    );
    let j: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    assert_eq!(j["records"], 2 * n);
    assert_eq!(j["bytes"], 2 * n * REC as u64);
    assert_eq!(j["stopped_by"], "signal");
    assert_eq!(j["cpus"].as_array().unwrap().len(), 2);
    // Every sub-buffer was handed back.
    for cpu in 0..2 {
        let c = f.sim.cursor(cpu).unwrap();
        assert_eq!(c.produced, c.consumed);
    }
}

#[test]
fn sigint_during_load_keeps_everything_produced_before_it() {
    let f = Fixture::new(geo(16 << 10, 8, 2));
    let out = f.out();
    let child = spawn(&[f.chan().to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let stop = AtomicBool::new(false);
    let written = [AtomicU64::new(0), AtomicU64::new(0)];
    let mut before = [0u64; 2];
    thread::scope(|s| {
        for cpu in 0..2u32 {
            let (sim, stop, w) = (&f.sim, &stop, &written[cpu as usize]);
            s.spawn(move || {
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let WriteOutcome::Written = sim.write_loadgen(cpu, seq, REC).unwrap() {
                        seq += 1;
                        w.store(seq, Ordering::Release);
                    } else {
                        thread::sleep(Duration::from_micros(100));
                    }
                }
            });
        }
        thread::sleep(Duration::from_millis(700));
        for (b, w) in before.iter_mut().zip(&written) {
            *b = w.load(Ordering::Acquire);
        }
        sigint(&child);
        let o = child.wait_with_output().unwrap();
        stop.store(true, Ordering::Relaxed);
        assert_ok(&o, "dump");
    });
    assert!(before.iter().all(|b| *b > 0));
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
    let child = Command::new(BIN)
        .args([
            f.chan().to_str().unwrap(),
            "-o",
            "-",
            "--flush-interval",
            "20ms",
        ])
        .stdout(file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let n = 5_000u64;
    thread::scope(|s| {
        for cpu in 0..3 {
            let sim = &f.sim;
            s.spawn(move || write_lossless(sim, cpu, 0..n));
        }
    });
    sigint(&child);
    let o = child.wait_with_output().unwrap();
    assert_ok(&o, "dump -o -");
    let st = f.path("status");
    fs::write(&st, status(&[n, n, n])).unwrap();
    let v = verify(&stream, &["--loadgen-status", st.to_str().unwrap()]);
    assert_ok(&v, "verify merged");
    // Within the stream, each CPU's records keep their order and the
    // stream is framed records only.
    let bytes = fs::read(&stream).unwrap();
    assert_eq!(bytes.len() as u64, 3 * n * REC as u64);
    let mut last = [None::<u64>; 3];
    for r in relaymap::Records::new(&bytes) {
        let r = r.unwrap();
        let lg = LoadgenRecord::parse(r.data).unwrap();
        if let Some(p) = last[lg.cpu as usize] {
            assert_eq!(lg.seq, p + 1);
        }
        last[lg.cpu as usize] = Some(lg.seq);
    }
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
                f.chan().to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--raw",
                "--duration",
                "0.2",
            ]);
            assert_ok(&o, "raw dump");
            for cpu in 0..2 {
                let p = out.join(format!("cpu{cpu}.out"));
                let mut all = fs::read(f.path(&format!("acc{cpu}"))).unwrap_or_default();
                all.extend(fs::read(p).unwrap());
                fs::write(f.path(&format!("acc{cpu}")), all).unwrap();
            }
        }
    }
    let out = f.out();
    let o = run(&[
        f.chan().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--raw",
        "--duration",
        "0.2",
    ]);
    assert_ok(&o, "raw dump");
    for (cpu, want) in want.iter().enumerate() {
        let mut all = fs::read(f.path(&format!("acc{cpu}"))).unwrap_or_default();
        all.extend(fs::read(out.join(format!("cpu{cpu}.out"))).unwrap());
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
        f.chan().to_str().unwrap(),
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
    let st = f.path("status");
    fs::write(&st, status(&[3_000])).unwrap();
    assert_ok(
        &verify(&out, &["--loadgen-status", st.to_str().unwrap()]),
        "verify rotated",
    );

    // --max-bytes: stops on its own after whole sub-buffers, the rest stays
    // in the buffer.
    write_lossless(&f.sim, 0, 3_000..6_000);
    f.sim.flush(None).unwrap();
    let out2 = f.path("out2");
    let o = run(&[
        f.chan().to_str().unwrap(),
        "-o",
        out2.to_str().unwrap(),
        "--max-bytes",
        "20K",
    ]);
    assert_ok(&o, "max-bytes");
    assert!(text(&o.stderr).contains("stopped by --max-bytes"));
    let len = fs::metadata(out2.join("cpu0.out")).unwrap().len();
    assert!((20 << 10..(20 << 10) + (16 << 10)).contains(&len), "{len}");
    let c = f.sim.cursor(0).unwrap();
    assert!(c.consumed < c.produced, "{c:?}");
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
        assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
        let e = text(&o.stderr);
        assert!(e.contains("not a relaymap channel"), "{e}");
        assert!(e.contains("hint:"), "{e}");
    }
}

#[test]
fn permission_denied_hints_root() {
    if !nix_is_root() {
        println!("skipping: not root, cannot drop privileges");
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        println!("skipping: setpriv not installed");
        return;
    }
    let f = Fixture::new(geo(4096, 4, 1));
    // Kernel-like modes: cpuN 0400, control 0600, owned by root.
    use std::os::unix::fs::PermissionsExt;
    for ent in fs::read_dir(f.chan()).unwrap() {
        let p = ent.unwrap().path();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    }
    fs::set_permissions(f.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
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
        .args([f.chan().to_str().unwrap(), "-o", out.to_str().unwrap()])
        .output()
        .unwrap();
    let e = text(&o.stderr);
    if e.contains("Permission denied") && o.status.code() == Some(126) {
        println!("skipping: nobody cannot execute the test binary");
        return;
    }
    assert_eq!(o.status.code(), Some(4), "{e}");
    assert!(e.contains("permission denied"), "{e}");
    assert!(e.contains("root"), "{e}");
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn unwritable_output_dir() {
    let f = Fixture::new(geo(4096, 4, 1));
    let file = f.path("a-file");
    fs::write(&file, b"x").unwrap();
    let bad = file.join("out");
    let o = run(&[f.chan().to_str().unwrap(), "-o", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("cannot write output"));
    // /proc does not take new directories either (even for root).
    let o = run(&[f.chan().to_str().unwrap(), "-o", "/proc/relaymap-dump-test"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
}

#[test]
fn disk_full_on_stdout_releases_nothing() {
    let f = Fixture::new(geo(4096, 8, 1));
    write_lossless(&f.sim, 0, 0..200);
    f.sim.flush(None).unwrap();
    let produced = f.sim.cursor(0).unwrap().produced;
    let o = Command::new(BIN)
        .args([f.chan().to_str().unwrap(), "-o", "-", "--duration", "5s"])
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
fn disk_full_on_small_tmpfs_loses_nothing() {
    let f = Fixture::new(geo(16 << 10, 8, 1));
    let mnt = f.path("small");
    fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=48k",
            "tmpfs",
            mnt.to_str().unwrap(),
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        println!("skipping: cannot mount a tmpfs here (not root?)");
        return;
    }
    struct Umount(PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Umount(mnt.clone());
    // 2000 records = 128000 bytes: more than 48k fits.
    let n = 2_000u64;
    let writer = thread::scope(|s| {
        let h = s.spawn(|| {
            let child = spawn(&[f.chan().to_str().unwrap(), "-o", mnt.to_str().unwrap()]);
            child.wait_with_output().unwrap()
        });
        // Writes until the dumper stops consuming and the buffer fills.
        let mut seq = 0;
        let mut stuck_since = None::<Instant>;
        while seq < n {
            match f.sim.write_loadgen(0, seq, REC).unwrap() {
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
        f.sim.flush(None).unwrap();
        (h.join().unwrap(), seq)
    });
    let (o, written) = writer;
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(6), "{e}");
    assert!(e.contains("no space left"), "{e}");
    // The file holds whole records only, seq 0..k; the channel holds the
    // rest from k on: nothing lost, nothing twice.
    let dumped = fs::read(mnt.join("cpu0.out")).unwrap();
    let mut next = 0u64;
    for r in relaymap::Records::new(&dumped) {
        let lg = LoadgenRecord::parse(r.unwrap().data).unwrap();
        assert_eq!(lg.seq, next);
        next += 1;
    }
    assert!(next > 0 && next < written, "{next} of {written}");
    let mut ch = Channel::open(f.chan()).unwrap();
    ch.drain(|sb| {
        for r in sb.records() {
            let lg = LoadgenRecord::parse(r.unwrap().data).unwrap();
            assert_eq!(lg.seq, next, "gap or duplicate after the disk-full stop");
            next += 1;
        }
    })
    .unwrap();
    assert_eq!(next, written);
}

#[test]
fn usage_errors() {
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["/tmp", "-o", "-", "--rotate", "1M"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["/tmp", "--max-bytes", "lots"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn verify_catches_corruption_and_loss() {
    let f = Fixture::new(geo(16 << 10, 8, 1));
    write_lossless(&f.sim, 0, 0..500);
    f.sim.flush(None).unwrap();
    let out = f.out();
    assert_ok(
        &run(&[
            f.chan().to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--duration",
            "0.3",
        ]),
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
    b[REC * 10 + 40] ^= 0xff;
    fs::File::create(&p).unwrap().write_all(&b).unwrap();
    fs::write(&st, status(&[500])).unwrap();
    let v = verify(&out, &["--loadgen-status", st.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(7));
    assert!(text(&v.stdout).contains("1 corrupt"), "{}", text(&v.stdout));
}

#[test]
fn progress_line_only_on_a_terminal() {
    let f = Fixture::new(geo(16 << 10, 8, 2));
    write_lossless(&f.sim, 0, 0..1_000);
    write_lossless(&f.sim, 1, 0..1_000);
    let out = f.out();
    // Off a terminal: nothing but the summary.
    let o = run(&[
        f.chan().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--duration",
        "0.6",
    ]);
    assert_ok(&o, "dump");
    let err = text(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].starts_with("relaymap-dump: "), "{err}");
    assert!(
        lines[1].starts_with("  cpu0: ") && lines[2].starts_with("  cpu1: "),
        "{err}"
    );
    // On a terminal (script(1) gives it a pty): a live line with per-CPU
    // rates, sub-buffers and drops.
    let cmd = format!(
        "{BIN} {} -o {} --duration 1.2",
        f.chan().display(),
        f.path("out-tty").display()
    );
    let o = match Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) => o,
        Err(_) => {
            println!("skipping: script(1) not installed, no pty to test the progress line");
            return;
        }
    };
    let tty = text(&o.stdout);
    assert!(o.status.success(), "{tty}");
    assert!(tty.contains("total | cpu0 "), "{tty}");
    assert!(tty.contains(" sb ") && tty.contains(" drops"), "{tty}");
}

/// Starts the dumper on a 1-CPU channel, waits until it consumes cpu0,
/// brings cpu1 online, writes `n` records to each CPU, SIGINTs. Returns the
/// dumper's output and the stats JSON.
fn dump_with_late_cpu(
    f: &Fixture,
    out: &str,
    extra: &[&str],
    n: u64,
) -> (Output, serde_json::Value) {
    let json = f.path("stats.json");
    let mut cmd = Command::new(BIN);
    cmd.args([
        f.chan().to_str().unwrap(),
        "-o",
        out,
        "--flush-interval",
        "50ms",
        "--stats-json",
        json.to_str().unwrap(),
    ])
    .args(extra)
    .stdin(Stdio::null())
    .stderr(Stdio::piped());
    if out == "-" {
        cmd.stdout(fs::File::create(f.path("merged.bin")).unwrap());
    } else {
        cmd.stdout(Stdio::piped());
    }
    let child = cmd.spawn().expect("spawn relaymap-dump");
    // The dumper is running (and has opened the channel) once it consumes.
    write_lossless(&f.sim, 0, 0..100);
    let deadline = Instant::now() + Duration::from_secs(30);
    while f.sim.cursor(0).unwrap().consumed == 0 {
        assert!(Instant::now() < deadline, "the dumper never consumed cpu0");
        f.sim.flush(None).unwrap();
        thread::sleep(Duration::from_millis(20));
    }
    f.sim.add_cpu(1).unwrap();
    thread::scope(|s| {
        let sim = &f.sim;
        s.spawn(move || write_lossless(sim, 0, 100..n));
        s.spawn(move || write_lossless(sim, 1, 0..n));
    });
    sigint(&child);
    let o = child.wait_with_output().unwrap();
    assert_ok(&o, "dump");
    let j = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    (o, j)
}

fn assert_late_cpu_dumped(f: &Fixture, o: &Output, j: &serde_json::Value, dump: &Path, n: u64) {
    let err = text(&o.stderr);
    assert_eq!(
        err.matches("relaymap-dump: cpu1 came online, dumping it to ")
            .count(),
        1,
        "{err}"
    );
    let st = f.path("status");
    fs::write(&st, status(&[n, n])).unwrap();
    let v = verify(dump, &["--loadgen-status", st.to_str().unwrap()]);
    assert_ok(&v, "verify");
    assert!(
        text(&v.stdout).contains(&format!("verified {} records, 0 lost, 0 corrupt", 2 * n)),
        "{}",
        text(&v.stdout)
    );
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
    let (o, j) = dump_with_late_cpu(&f, out.to_str().unwrap(), &["--rotate", "256K"], n);
    let cpu1 = out.join("cpu1.out");
    assert!(
        text(&o.stderr).contains(&format!(
            "cpu1 came online, dumping it to {}",
            cpu1.display()
        )),
        "{}",
        text(&o.stderr)
    );
    let files = j["cpus"][1]["files"].as_array().unwrap();
    assert_eq!(files.len(), 5, "{j}");
    assert_eq!(files[0], cpu1.to_str().unwrap());
    assert_eq!(files[4], out.join("cpu1.out.4").to_str().unwrap());
    let mut size = 0;
    for p in files {
        let len = fs::metadata(p.as_str().unwrap()).unwrap().len();
        assert!(len <= 256 << 10, "{p}: {len}");
        size += len;
    }
    assert_eq!(size, n * REC as u64);
    assert_late_cpu_dumped(&f, &o, &j, &out, n);
}

#[test]
fn cpu_coming_online_joins_the_merged_stream() {
    let f = Fixture::new(geo(16 << 10, 8, 1));
    let n = 20_000u64;
    let (o, j) = dump_with_late_cpu(&f, "-", &[], n);
    assert!(
        text(&o.stderr).contains("cpu1 came online, dumping it to the merged stream"),
        "{}",
        text(&o.stderr)
    );
    assert_late_cpu_dumped(&f, &o, &j, &f.path("merged.bin"), n);
}

/// `read-copy` (the demo's baseline) over a simulated channel, whose cpuN
/// files are plain files: read() returns them whole, so the output must be
/// their exact bytes, per CPU in a folder or one stream on stdout.
#[test]
fn read_copy_copies_every_byte_to_files_and_stdout() {
    let f = Fixture::new(geo(4 << 10, 4, 2));
    write_lossless(&f.sim, 0, 0..100);
    write_lossless(&f.sim, 1, 0..60);
    f.sim.flush(None).expect("flush");
    let chan = f.chan().to_str().unwrap();
    let cpu_bytes = |cpu: u32| fs::read(f.chan().join(format!("cpu{cpu}"))).expect("cpu file");

    let out = f.out();
    let o = run(&["read-copy", chan, "-o", out.to_str().unwrap(), "--drain"]);
    assert_ok(&o, "read-copy -o DIR");
    assert!(o.stdout.is_empty(), "the summary goes to stderr");
    assert!(
        text(&o.stderr).starts_with("read-copy: "),
        "{}",
        text(&o.stderr)
    );
    for cpu in 0..2 {
        let got = fs::read(out.join(format!("cpu{cpu}.read"))).expect("cpuN.read");
        assert_eq!(got, cpu_bytes(cpu), "cpu{cpu}.read");
    }

    let o = run(&["read-copy", chan, "-o", "-", "--drain", "--buf-size", "4K"]);
    assert_ok(&o, "read-copy -o -");
    let want: usize = (0..2).map(|c| cpu_bytes(c).len()).sum();
    assert_eq!(
        o.stdout.len(),
        want,
        "stdout holds every byte of every cpu file"
    );
    let mut sorted = o.stdout.clone();
    let mut all = [cpu_bytes(0), cpu_bytes(1)].concat();
    sorted.sort_unstable();
    all.sort_unstable();
    assert_eq!(sorted, all, "the same bytes, interleaved by read() pass");
}

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
        text(&o.stderr).contains("no cpuN files"),
        "{}",
        text(&o.stderr)
    );
    let file = f.path("afile");
    fs::write(&file, b"x").unwrap();
    let o = run(&[
        "read-copy",
        f.chan().to_str().unwrap(),
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
    let f = Fixture::new(geo(4 << 10, 4, 1));
    let empty = f.path("empty.bin");
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
    let merged = f.path("garbage.bin");
    fs::write(&merged, &garbage).unwrap();
    let dir = f.path("garbage-dir");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("cpu0.out"), &garbage).unwrap();
    for dump in [&merged, &dir] {
        let o = verify(dump, &[]);
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(7), "{}\n{}", out, text(&o.stderr));
        assert!(out.contains("broken framing"), "{out}");
        assert!(!out.contains("4294967295"), "{out}");
        assert!(out.ends_with("0 lost, 1 corrupt\n"), "{out}");
    }
}
