//! relaymap-vmtest: SDK integration tests against the real relaymap.ko,
//! run inside the VM harness by tests/vm/guest/tests/4x-*.sh.
//!
//! Each subcommand drives the load generator through its debugfs control
//! file, consumes with the SDK at the same time (2 vCPUs: real
//! concurrency), checks every record (loadgen checksum and fill), and exits
//! 0 (pass), 1 (fail) or 77 (skip, after printing `skipping: <reason>`).
//! There are no timing assertions: deadlines only stop a hung test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use relaymap::{Channel, Error, LoadgenRecord, Subbuf};

const LG_DIR: &str = "/sys/kernel/debug/relaymap_loadgen";

type TestResult = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn e2s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The error and its source chain (the SDK's errors keep the io::Error).
fn err_chain(e: &Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

fn sdk<T>(r: relaymap::Result<T>) -> Result<T, String> {
    r.map_err(|e| err_chain(&e))
}

#[derive(Debug, Default, Clone, Copy)]
struct LgCpu {
    attempts: u64,
    written: u64,
    dropped: u64,
}

#[derive(Debug, Default)]
struct LgStatus {
    running: bool,
    cpus: BTreeMap<u32, LgCpu>,
}

fn lg_ctl(cmd: &str) -> TestResult {
    std::fs::write(Path::new(LG_DIR).join("control"), cmd)
        .map_err(|e| format!("loadgen {cmd}: {e}"))
}

fn lg_status() -> Result<LgStatus, String> {
    let s = std::fs::read_to_string(Path::new(LG_DIR).join("status"))
        .map_err(|e| format!("loadgen status: {e}"))?;
    let mut st = LgStatus::default();
    for l in s.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["state", s] => st.running = *s == "running",
            ["cpu", c, "attempts", a, "written", wr, "dropped", d] => {
                let p = |x: &str| x.parse::<u64>().map_err(|e| format!("status {l}: {e}"));
                st.cpus.insert(
                    c.parse().map_err(|e| format!("status {l}: {e}"))?,
                    LgCpu {
                        attempts: p(a)?,
                        written: p(wr)?,
                        dropped: p(d)?,
                    },
                );
            }
            _ => {}
        }
    }
    Ok(st)
}

/// Waits until the load generator has finished its count or duration.
fn lg_wait_idle(deadline: Instant) -> Result<LgStatus, String> {
    loop {
        let st = lg_status()?;
        if !st.running {
            return Ok(st);
        }
        ensure!(
            Instant::now() < deadline,
            "load generator still running at the deadline"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Per-CPU record checker: every record verifies; seqs strictly increase;
/// gaps (dropped records) are counted; `strict` forbids gaps.
#[derive(Debug, Default)]
struct Tracker {
    next: BTreeMap<u32, u64>,
    received: BTreeMap<u32, u64>,
    gaps: BTreeMap<u32, u64>,
    subbufs: BTreeMap<u32, u64>,
    flushed: u64,
    bytes: u64,
    strict: bool,
    error: Option<String>,
}

impl Tracker {
    fn new(strict: bool) -> Tracker {
        Tracker {
            strict,
            ..Tracker::default()
        }
    }

    fn subbuf(&mut self, sb: Subbuf<'_>) {
        if self.error.is_some() {
            return;
        }
        *self.subbufs.entry(sb.cpu()).or_default() += 1;
        self.bytes += sb.payload().len() as u64;
        if sb.header().is_flushed() {
            self.flushed += 1;
        }
        for r in sb.records() {
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    self.error = Some(format!("cpu {} seq {}: {}", sb.cpu(), sb.seq(), e));
                    return;
                }
            };
            if let Err(e) = self.record(sb.cpu(), r.type_, r.data) {
                self.error = Some(format!("cpu {} sub-buffer {}: {e}", sb.cpu(), sb.seq()));
                return;
            }
        }
    }

    fn record(&mut self, cpu: u32, type_: u16, data: &[u8]) -> TestResult {
        ensure!(
            type_ == relaymap::abi::RELAYMAP_REC_LOADGEN,
            "record type {type_}"
        );
        let lg = LoadgenRecord::parse(data)
            .ok_or("record does not verify (checksum/fill): torn or corrupt")?;
        ensure!(
            lg.cpu == cpu,
            "record of cpu {} in cpu {cpu}'s buffer",
            lg.cpu
        );
        let next = self.next.entry(cpu).or_default();
        ensure!(
            lg.seq >= *next,
            "cpu {cpu}: seq {} after {} (duplicate or backwards)",
            lg.seq,
            *next
        );
        let gap = lg.seq - *next;
        ensure!(
            !self.strict || gap == 0,
            "cpu {cpu}: expected seq {}, got {} (lost records)",
            *next,
            lg.seq
        );
        *self.gaps.entry(cpu).or_default() += gap;
        *next = lg.seq + 1;
        *self.received.entry(cpu).or_default() += 1;
        Ok(())
    }

    fn check(&mut self) -> TestResult {
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn received(&self, cpu: u32) -> u64 {
        self.received.get(&cpu).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
struct Opts {
    dir: PathBuf,
    deadline: Instant,
    sleep_ms: u64,
}

fn open(o: &Opts) -> Result<Channel, String> {
    sdk(Channel::builder(&o.dir)
        .populate(true)
        .poll_timeout(Some(Duration::from_millis(100)))
        .open())
}

/// Consumes while the load generator runs: wait, flush when quiet, drain by
/// batches. Returns the final status after drain-and-stop.
fn consume_run(ch: &mut Channel, t: &mut Tracker, o: &Opts) -> Result<LgStatus, String> {
    lg_ctl("start")?;
    loop {
        ensure!(
            Instant::now() < o.deadline,
            "deadline reached while consuming"
        );
        let ready = sdk(ch.wait())?;
        if !ready {
            if !lg_status()?.running {
                break;
            }
            sdk(ch.flush())?;
        }
        for cpu in ch.cpus() {
            let b = sdk(ch.batch(cpu))?;
            for sb in b.iter() {
                t.subbuf(sb);
            }
            sdk(b.release())?;
        }
        t.check()?;
        if o.sleep_ms > 0 {
            std::thread::sleep(Duration::from_millis(o.sleep_ms));
        }
    }
    let st = lg_wait_idle(o.deadline)?;
    sdk(ch.drain_and_stop(|sb| t.subbuf(sb)))?;
    t.check()?;
    Ok(st)
}

fn summary(name: &str, ch: &Channel, t: &Tracker, st: &LgStatus) {
    for (cpu, lg) in &st.cpus {
        println!(
            "{name}: cpu {cpu}: attempts {} written {} dropped {} | received {} gaps {} subbufs {}",
            lg.attempts,
            lg.written,
            lg.dropped,
            t.received(*cpu),
            t.gaps.get(cpu).copied().unwrap_or(0),
            t.subbufs.get(cpu).copied().unwrap_or(0)
        );
    }
    println!(
        "{name}: {} payload bytes, {} flushed sub-buffers, loss {:?}, control ops {}",
        t.bytes,
        t.flushed,
        ch.loss(),
        ch.control_ops()
    );
}

/// Lossless writers at full speed: every record once, in order, nothing
/// lost, and the SDK's counts match the load generator's.
fn lossless(o: &Opts) -> TestResult {
    let mut ch = open(o)?;
    let mut t = Tracker::new(true);
    let st = consume_run(&mut ch, &mut t, o)?;
    summary("lossless", &ch, &t, &st);
    ensure!(
        st.cpus.len() >= 2,
        "expected >= 2 CPUs writing, status has {}",
        st.cpus.len()
    );
    for (cpu, lg) in &st.cpus {
        ensure!(lg.dropped == 0, "cpu {cpu}: loadgen dropped {}", lg.dropped);
        ensure!(lg.written > 0, "cpu {cpu}: nothing written");
        ensure!(
            t.received(*cpu) == lg.written,
            "cpu {cpu}: received {} of {}",
            t.received(*cpu),
            lg.written
        );
    }
    let loss = ch.loss();
    ensure!(loss == relaymap::Loss::default(), "loss {loss:?}");
    ensure!(sdk(ch.is_drained())?, "not drained");
    Ok(())
}

/// Drop mode against a small buffer and a slow consumer: the gaps the
/// consumer sees, the SDK's records_dropped and the load generator's
/// dropped count are the same number, per CPU.
fn drops(o: &Opts) -> TestResult {
    let mut ch = open(o)?;
    let mut t = Tracker::new(false);
    let st = consume_run(&mut ch, &mut t, o)?;
    summary("drops", &ch, &t, &st);
    let by_cpu: BTreeMap<u32, relaymap::Loss> = ch.loss_by_cpu().into_iter().collect();
    let mut total = 0;
    for (cpu, lg) in &st.cpus {
        let rx = t.received(*cpu);
        ensure!(
            rx == lg.written,
            "cpu {cpu}: received {rx}, written {}",
            lg.written
        );
        ensure!(
            rx + lg.dropped == lg.attempts,
            "cpu {cpu}: received + dropped != attempts"
        );
        let seen_gaps = t.gaps.get(cpu).copied().unwrap_or(0)
            + (lg.attempts - t.next.get(cpu).copied().unwrap_or(0));
        ensure!(
            seen_gaps == lg.dropped,
            "cpu {cpu}: gaps {seen_gaps} != loadgen dropped {}",
            lg.dropped
        );
        let sdk_drop = by_cpu.get(cpu).map_or(0, |l| l.records_dropped);
        ensure!(
            sdk_drop == lg.dropped,
            "cpu {cpu}: SDK records_dropped {sdk_drop} != loadgen dropped {}",
            lg.dropped
        );
        total += lg.dropped;
    }
    ensure!(
        total > 0,
        "no record was dropped: the test did not exercise drops"
    );
    ensure!(ch.loss().records_dropped == total, "total records_dropped");
    Ok(())
}

/// Overwrite mode, writers at full speed, slow consumer: no torn copy is
/// ever handed out (every record verifies), seqs increase, and every
/// produced sub-buffer is either delivered or counted as lapped.
fn overwrite(o: &Opts) -> TestResult {
    let mut ch = open(o)?;
    ensure!(
        ch.mode() == relaymap::Mode::Overwrite,
        "channel is not in overwrite mode"
    );
    let mut t = Tracker::new(false);
    let st = consume_run(&mut ch, &mut t, o)?;
    summary("overwrite", &ch, &t, &st);
    let by_cpu: BTreeMap<u32, relaymap::Loss> = ch.loss_by_cpu().into_iter().collect();
    let mut lapped = 0;
    for cpu in ch.cpus() {
        let c = sdk(ch.cursor(cpu))?;
        let l = by_cpu[&cpu];
        let delivered = t.subbufs.get(&cpu).copied().unwrap_or(0);
        println!(
            "overwrite: cpu {cpu}: produced {} delivered {delivered} lapped(sdk) {} lapped(kernel) {}",
            c.produced, l.subbufs_lapped, c.subbufs_lapped
        );
        ensure!(
            delivered + l.subbufs_lapped + l.subbufs_corrupt == c.produced,
            "cpu {cpu}: delivered + lapped != produced"
        );
        ensure!(l.subbufs_corrupt == 0, "cpu {cpu}: corrupt sub-buffers");
        lapped += l.subbufs_lapped;
    }
    ensure!(
        lapped > 0,
        "no lap happened: the test did not exercise overwrite"
    );
    Ok(())
}

/// A slow writer (big sub-buffers never fill): data arrives while the
/// writer runs only thanks to flushes; nothing is lost; records merged
/// across CPUs come out in timestamp order.
fn flush(o: &Opts) -> TestResult {
    let mut ch = open(o)?;
    let mut t = Tracker::new(true);
    lg_ctl("start")?;
    let mut while_running = 0u64;
    loop {
        ensure!(Instant::now() < o.deadline, "deadline reached");
        let running = lg_status()?.running;
        if !sdk(ch.wait())? {
            if !running {
                break;
            }
            sdk(ch.flush())?;
        }
        let mut err = None;
        let before: u64 = t.received.values().sum();
        let mut last_ts = 0;
        sdk(ch.drain_merged(|cpu, r| {
            if r.ts_ns < last_ts {
                err.get_or_insert(format!("merged order: ts {} after {last_ts}", r.ts_ns));
            }
            last_ts = r.ts_ns;
            if let Err(e) = t.record(cpu, r.type_, r.data) {
                err.get_or_insert(e);
            }
        }))?;
        if let Some(e) = err {
            return Err(e);
        }
        if running {
            while_running += t.received.values().sum::<u64>() - before;
        }
    }
    let st = lg_wait_idle(o.deadline)?;
    let mut t2 = Tracker::new(true);
    std::mem::swap(&mut t2.next, &mut t.next);
    sdk(ch.drain_and_stop(|sb| t2.subbuf(sb)))?;
    t2.check()?;
    for (c, n) in t2.received {
        *t.received.entry(c).or_default() += n;
    }
    summary("flush", &ch, &t, &st);
    println!("flush: {while_running} records received while the writer was running");
    for (cpu, lg) in &st.cpus {
        ensure!(
            t.received(*cpu) == lg.written,
            "cpu {cpu}: received {} of {}",
            t.received(*cpu),
            lg.written
        );
    }
    ensure!(
        while_running > 0,
        "no record became visible while the writer ran: flush does not work"
    );
    let stats = sdk(ch.stats(None))?;
    ensure!(stats.flushes > 0, "kernel counted no flush");
    Ok(())
}

/// A consumer that is dropped mid-stream and re-opened resumes where the
/// kernel says it left off: no gap, no duplicate across the two.
fn resume(o: &Opts) -> TestResult {
    let mut t = Tracker::new(true);
    lg_ctl("start")?;
    {
        let mut ch = open(o)?;
        let mut taken = 0;
        while taken < 20 {
            ensure!(Instant::now() < o.deadline, "deadline reached (phase A)");
            if !sdk(ch.wait())? {
                sdk(ch.flush())?;
            }
            if let Some(g) = sdk(ch.next_any())? {
                t.subbuf(g.subbuf());
                taken += 1;
            } // the guard hands its sub-buffer back here
            t.check()?;
        }
        // A batch of which only the first sub-buffer is handed back.
        let cpu = ch.cpus()[0];
        let b = sdk(ch.batch(cpu))?;
        if let Some(first) = b.get(0) {
            t.subbuf(first);
            let upto = first.seq() + 1;
            sdk(b.release_until(upto))?;
        }
        t.check()?;
        println!("resume: phase A took {taken} + 1 sub-buffers; dropping the consumer");
    }
    let mut ch = open(o)?;
    let mut expect: BTreeMap<u32, u64> = BTreeMap::new();
    for cpu in ch.cpus() {
        expect.insert(cpu, sdk(ch.cursor(cpu))?.consumed);
    }
    println!("resume: kernel consumed at re-open: {expect:?}");
    let mut first_err = None;
    let mut check_first = |sb: Subbuf<'_>, t: &mut Tracker| {
        if let Some(want) = expect.remove(&sb.cpu()) {
            if sb.seq() != want {
                first_err.get_or_insert(format!(
                    "cpu {}: first sub-buffer after re-open is {}, kernel said consumed {want}",
                    sb.cpu(),
                    sb.seq()
                ));
            }
        }
        t.subbuf(sb);
    };
    loop {
        ensure!(Instant::now() < o.deadline, "deadline reached (phase B)");
        if !sdk(ch.wait())? {
            if !lg_status()?.running {
                break;
            }
            sdk(ch.flush())?;
        }
        sdk(ch.drain(|sb| check_first(sb, &mut t)))?;
        t.check()?;
    }
    let st = lg_wait_idle(o.deadline)?;
    sdk(ch.drain_and_stop(|sb| check_first(sb, &mut t)))?;
    t.check()?;
    if let Some(e) = first_err {
        return Err(e);
    }
    summary("resume", &ch, &t, &st);
    for (cpu, lg) in &st.cpus {
        ensure!(
            t.received(*cpu) == lg.written,
            "cpu {cpu}: received {} of {} across both consumers",
            t.received(*cpu),
            lg.written
        );
    }
    Ok(())
}

/// Clear errors, never a panic: not a channel, a CPU without a buffer, a
/// control file that is not relaymap's, permission denied (as nobody).
fn errors(o: &Opts) -> TestResult {
    let e = Channel::open("/nonexistent/relaymap")
        .err()
        .ok_or("opened a missing dir")?;
    println!("errors: missing dir -> {}", err_chain(&e));
    ensure!(matches!(e, Error::NotAChannel { .. }), "missing dir: {e:?}");
    let e = Channel::open("/sys/kernel/debug")
        .err()
        .ok_or("opened debugfs root")?;
    println!("errors: debugfs root -> {}", err_chain(&e));
    ensure!(
        e.to_string().contains("no control file"),
        "debugfs root: {e}"
    );
    let fake = PathBuf::from("/tmp/relaymap-fake");
    std::fs::create_dir_all(&fake).map_err(e2s)?;
    std::fs::write(fake.join("control"), b"").map_err(e2s)?;
    let e = Channel::open(&fake).err().ok_or("opened a fake channel")?;
    println!("errors: fake control -> {}", err_chain(&e));
    ensure!(
        matches!(e, Error::NotAChannel { .. }),
        "fake control: {e:?}"
    );
    let e = Channel::builder(&o.dir)
        .cpus([999])
        .open()
        .err()
        .ok_or("cpu 999 accepted")?;
    println!("errors: cpu 999 -> {}", err_chain(&e));
    ensure!(
        matches!(e, Error::UnknownCpu { cpu: 999 }),
        "cpu 999: {e:?}"
    );
    // A real channel opens; then drop root and try again.
    drop(open(o)?);
    // SAFETY: plain libc calls with constant arguments; the process drops
    // privileges for the rest of its (short) life.
    let ok = unsafe { libc_setid(65534) };
    if !ok {
        println!("errors: cannot drop privileges; permission case not checked");
        return Ok(());
    }
    let e = Channel::open(&o.dir)
        .err()
        .ok_or("opened the channel as nobody")?;
    println!("errors: as nobody -> {}", err_chain(&e));
    ensure!(
        matches!(e, Error::PermissionDenied { .. }),
        "as nobody: {e:?}"
    );
    ensure!(
        e.to_string().contains("root"),
        "permission error has no hint: {e}"
    );
    Ok(())
}

extern "C" {
    fn setgid(gid: u32) -> i32;
    fn setuid(uid: u32) -> i32;
}

/// # Safety
/// Changes the process's credentials.
unsafe fn libc_setid(id: u32) -> bool {
    // SAFETY: setgid/setuid take plain integers and have no memory effects.
    unsafe { setgid(id) == 0 && setuid(id) == 0 }
}

/// CPU hotplug: a CPU that comes online after open is reported by
/// pending_cpus() and picked up by refresh_cpus(); its records arrive.
fn hotplug(o: &Opts) -> TestResult {
    let online = Path::new("/sys/devices/system/cpu/cpu1/online");
    let mut ch = open(o)?;
    let cpus = ch.cpus();
    ensure!(
        !cpus.contains(&1),
        "cpu1 already has a buffer ({cpus:?}); the script must offline it before loading"
    );
    std::fs::write(online, "1").map_err(|e| format!("online cpu1: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let pending = loop {
        let p = sdk(ch.pending_cpus())?;
        if !p.is_empty() || Instant::now() > deadline {
            break p;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    println!("hotplug: pending after onlining cpu1: {pending:?}");
    ensure!(pending == vec![1], "pending_cpus {pending:?}");
    let added = sdk(ch.refresh_cpus())?;
    ensure!(added == vec![1], "refresh_cpus {added:?}");
    ensure!(ch.cpus().contains(&1), "cpu1 not mapped");
    let mut t = Tracker::new(true);
    let st = consume_run(&mut ch, &mut t, o)?;
    summary("hotplug", &ch, &t, &st);
    ensure!(t.received(1) > 0, "no record from cpu1");
    for (cpu, lg) in &st.cpus {
        ensure!(
            t.received(*cpu) == lg.written,
            "cpu {cpu}: received {} of {}",
            t.received(*cpu),
            lg.written
        );
    }
    Ok(())
}

/// The tokio path: AsyncChannel over the real relay files (the channel's
/// level-triggered epoll fd registered with tokio's reactor), lossless
/// writers at full speed, every record once and in order.
fn async_lossless(o: &Opts) -> TestResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(e2s)?;
    rt.block_on(async {
        let mut ach = relaymap::AsyncChannel::new(open(o)?).map_err(|e| err_chain(&e))?;
        let mut t = Tracker::new(true);
        lg_ctl("start")?;
        let mut wakeups = 0u64;
        loop {
            ensure!(Instant::now() < o.deadline, "deadline reached");
            match tokio::time::timeout(Duration::from_millis(200), ach.readable()).await {
                Ok(r) => {
                    sdk(r)?;
                    wakeups += 1;
                }
                Err(_) => {
                    if !lg_status()?.running {
                        break;
                    }
                    sdk(ach.get_mut().flush())?;
                }
            }
            sdk(ach.get_mut().drain(|sb| t.subbuf(sb)))?;
            t.check()?;
        }
        let st = lg_wait_idle(o.deadline)?;
        let mut ch = ach.into_inner();
        sdk(ch.drain_and_stop(|sb| t.subbuf(sb)))?;
        t.check()?;
        summary("async", &ch, &t, &st);
        println!("async: {wakeups} wakeups");
        ensure!(wakeups > 0, "never woken by tokio");
        for (cpu, lg) in &st.cpus {
            ensure!(
                t.received(*cpu) == lg.written,
                "cpu {cpu}: received {} of {}",
                t.received(*cpu),
                lg.written
            );
        }
        Ok(())
    })
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: relaymap-vmtest lossless|drops|overwrite|flush|resume|errors|hotplug|async \
         [--dir DIR] [--timeout-s N] [--sleep-ms N]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(cmd) = args.next() else {
        return usage();
    };
    let mut dir = PathBuf::from("/sys/kernel/debug/relaymap/demo");
    let mut timeout = 240u64;
    let mut sleep_ms = 0u64;
    while let Some(a) = args.next() {
        let v = args.next();
        match (a.as_str(), v) {
            ("--dir", Some(v)) => dir = v.into(),
            ("--timeout-s", Some(v)) => timeout = v.parse().unwrap_or(timeout),
            ("--sleep-ms", Some(v)) => sleep_ms = v.parse().unwrap_or(0),
            _ => return usage(),
        }
    }
    let o = Opts {
        dir,
        deadline: Instant::now() + Duration::from_secs(timeout),
        sleep_ms,
    };
    let r = match cmd.as_str() {
        "lossless" => lossless(&o),
        "drops" => drops(&o),
        "overwrite" => overwrite(&o),
        "flush" => flush(&o),
        "resume" => resume(&o),
        "errors" => errors(&o),
        "hotplug" => hotplug(&o),
        "async" => async_lossless(&o),
        _ => return usage(),
    };
    match r {
        Ok(()) => {
            println!("{cmd}: ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Make sure the load generator does not keep running.
            let _ = lg_ctl("stop");
            println!("FAIL: {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}
