//! 48-sdk-exclusive: consuming is exclusive per CPU. A second reader of a
//! held CPU gets `Error::Busy` naming the holder (pid and comm), in this
//! process and in another one, while the holder keeps consuming and loses
//! nothing; readers of different CPUs run in two threads at once, with
//! batches of both CPUs alive together; dropping a reader (or exiting)
//! releases the claim.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use relaymap::{Channel, CpuReader, Error};

use crate::consume::{self, check_lossless, open, summary, take, QUIET};
use crate::loadgen;
use crate::tracker::Tracker;
use crate::util::{e2s, ensure, err_chain, sdk, Opts, TestResult};

/// The comm the kernel reports for process `pid`.
fn comm_of(pid: i32) -> Result<String, String> {
    let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).map_err(e2s)?;
    Ok(c.trim_end().to_string())
}

/// `r` must be `Error::Busy` for `cpu` (or any CPU if `None`) naming
/// `pid` and `comm`, and its message must say so.
fn expect_busy<T>(
    r: relaymap::Result<T>,
    cpu: Option<u32>,
    pid: i32,
    comm: &str,
    what: &str,
) -> TestResult {
    let e = match r {
        Ok(_) => return Err(format!("{what}: claimed a CPU that is held by pid {pid}")),
        Err(e) => e,
    };
    let msg = err_chain(&e);
    println!("{what} -> {msg}");
    match &e {
        Error::Busy {
            cpu: c,
            holder_pid,
            holder_comm,
        } => {
            ensure!(
                cpu.is_none() || cpu == Some(*c),
                "{what}: Busy names cpu {c}, want {cpu:?}"
            );
            ensure!(
                *holder_pid == Some(pid),
                "{what}: holder_pid {holder_pid:?}, want {pid}"
            );
            ensure!(
                holder_comm.as_deref() == Some(comm),
                "{what}: holder_comm {holder_comm:?}, want {comm:?}"
            );
        }
        _ => return Err(format!("{what}: want Error::Busy, got {e:?}")),
    }
    ensure!(
        msg.contains(&format!("pid {pid}")) && msg.contains(comm),
        "{what}: the message does not name the holder: {msg}"
    );
    Ok(())
}

/// Every CPU of `ch` is held by `pid` / `comm`, as an observer sees it.
fn expect_held(ch: &Channel, pid: i32, comm: &str, what: &str) -> TestResult {
    for c in sdk(ch.cursors())? {
        ensure!(
            c.held && c.holder_pid == Some(pid) && c.holder_comm.as_deref() == Some(comm),
            "{what}: cpu {}: held {} holder {:?} {:?}, want pid {pid} ({comm})",
            c.cpu,
            c.held,
            c.holder_pid,
            c.holder_comm
        );
    }
    Ok(())
}

/// No CPU of `ch` is held.
fn expect_free(ch: &Channel, what: &str) -> TestResult {
    for c in sdk(ch.cursors())? {
        ensure!(
            !c.held && c.holder_pid.is_none() && c.holder_comm.is_none(),
            "{what}: cpu {} still held (holder {:?} {:?})",
            c.cpu,
            c.holder_pid,
            c.holder_comm
        );
    }
    Ok(())
}

/// Runs this program's `sub` subcommand as a child process.
fn spawn_self(sub: &str, o: &Opts, extra: &[String]) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(e2s)?;
    Command::new(exe)
        .arg(sub)
        .args(["--channel", &o.channel, "--timeout-s", "60"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn {sub}: {e}"))
}

/// A finished child's output (indented) and its success.
fn finish(mut child: Child, sub: &str) -> TestResult {
    let status = child.wait().map_err(e2s)?;
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        so.read_to_string(&mut out).map_err(e2s)?;
    }
    for l in out.lines() {
        println!("  [{sub}] {l}");
    }
    ensure!(status.success(), "{sub} failed: {status}");
    Ok(())
}

/// The second process of phase 1: observes a channel whose every CPU is
/// held by `--holder-pid`, and must be refused every claim.
pub fn intruder(o: &Opts) -> TestResult {
    let pid = o.holder_pid.ok_or("--holder-pid missing")?;
    let comm = comm_of(pid)?;
    let ch = open(o)?;
    expect_held(&ch, pid, &comm, "intruder: cursors")?;
    for &cpu in ch.cpus() {
        expect_busy(
            ch.reader(cpu),
            Some(cpu),
            pid,
            &comm,
            &format!("intruder: reader({cpu})"),
        )?;
    }
    expect_busy(ch.readers(), None, pid, &comm, "intruder: readers()")?;
    // Observers and control need no claim.
    let st = sdk(ch.stats(None))?;
    sdk(ch.flush(None))?;
    println!(
        "intruder: observer works while held: {} records written so far",
        st.records_written
    );
    Ok(())
}

/// The helper of phase 2: claims `--cpu`, then exits without dropping the
/// reader (the kernel releases the claim when the process's fds close).
pub fn claim_and_exit(o: &Opts) -> TestResult {
    let cpu = o.cpu.ok_or("--cpu missing")?;
    let ch = open(o)?;
    let r = sdk(ch.reader(cpu))?;
    let c = sdk(ch.cursor(cpu))?;
    ensure!(
        c.held && c.holder_pid == Some(std::process::id() as i32),
        "claim: cpu {cpu} claimed but cursor says held {} by {:?}",
        c.held,
        c.holder_pid
    );
    println!(
        "claim: cpu {cpu} claimed by pid {}, exiting without a drop",
        std::process::id()
    );
    std::mem::forget(r);
    std::mem::forget(ch);
    std::process::exit(0)
}

/// State shared by the reader threads of phase 3.
#[derive(Debug, Default)]
struct Shared {
    /// Threads holding their first non-empty batch.
    holding: Mutex<usize>,
    cv: Condvar,
    /// The writers are done and every CPU was flushed: drain and finish.
    stop: AtomicBool,
    /// Some thread failed: the others give up waiting.
    failed: AtomicBool,
}

/// One thread of phase 3: consumes its own reader to the end. Its first
/// non-empty batch is kept alive until every thread holds one.
fn reader_thread(r: &mut CpuReader, sh: &Shared, n: usize, o: &Opts) -> Result<Tracker, String> {
    let mut t = Tracker::new(true);
    let res = (|| {
        loop {
            o.check_deadline("waiting for the first batch")?;
            let b = sdk(r.acquire(usize::MAX))?;
            if b.is_empty() {
                drop(b);
                ensure!(
                    !sh.stop.load(Ordering::Acquire),
                    "cpu {}: no data before the writers stopped",
                    r.cpu()
                );
                sdk(r.wait(Some(QUIET)))?;
                continue;
            }
            let mut h = sh.holding.lock().map_err(e2s)?;
            *h += 1;
            sh.cv.notify_all();
            let (h, to) = sh
                .cv
                .wait_timeout_while(h, o.left(), |h| {
                    *h < n && !sh.failed.load(Ordering::Acquire)
                })
                .map_err(e2s)?;
            ensure!(
                !to.timed_out() && *h >= n,
                "cpu {}: the other threads never held a batch",
                b.cpu()
            );
            drop(h);
            println!(
                "exclusive: thread of cpu {} holds {:?} while every other thread holds one",
                b.cpu(),
                b.seqs()
            );
            for sb in &b {
                t.subbuf(sb);
            }
            sdk(b.release())?;
            t.check()?;
            break;
        }
        loop {
            o.check_deadline("consuming in a thread")?;
            if sh.stop.load(Ordering::Acquire) {
                while take(r, &mut t, usize::MAX)? > 0 {}
                ensure!(sdk(r.is_drained())?, "cpu {}: not drained", r.cpu());
                return Ok(());
            }
            if sdk(r.wait(Some(QUIET)))? {
                take(r, &mut t, usize::MAX)?;
            }
        }
    })();
    if res.is_err() {
        sh.failed.store(true, Ordering::Release);
        sh.cv.notify_all();
    }
    res.map(|()| t)
}

/// The whole case.
pub fn exclusive(o: &Opts) -> TestResult {
    let me = std::process::id() as i32;
    let comm = comm_of(me)?;
    let ch = open(o)?;
    let ncpu = ch.cpus().len();
    ensure!(ncpu >= 2, "need >= 2 CPUs with a buffer, have {ncpu}");

    // Phase 1: every CPU held; a second channel in this process and another
    // process are refused with the holder named; the holder loses nothing.
    let mut readers = sdk(ch.readers())?;
    let ch2 = open(o)?;
    expect_held(&ch2, me, &comm, "second channel: cursors")?;
    for &cpu in ch.cpus() {
        expect_busy(
            ch2.reader(cpu),
            Some(cpu),
            me,
            &comm,
            &format!("second channel: reader({cpu})"),
        )?;
    }
    expect_busy(ch2.readers(), None, me, &comm, "second channel: readers()")?;
    let mut intruder: Option<Child> = None;
    let mut intruder_done = false;
    let mut t = Tracker::new(true);
    let run = consume::run_with(&ch, &mut readers, &mut t, o, usize::MAX, |_, t| {
        if t.total() > 0 && intruder.is_none() && !intruder_done {
            intruder = Some(spawn_self(
                "exclusive-intruder",
                o,
                &["--holder-pid".into(), me.to_string()],
            )?);
        }
        if let Some(c) = intruder.as_mut() {
            if c.try_wait().map_err(e2s)?.is_some() {
                let lg_running = loadgen::status()?.running;
                finish(intruder.take().ok_or("intruder gone")?, "intruder")?;
                println!(
                    "exclusive: the intruder finished while the writers were running: {lg_running}"
                );
                intruder_done = true;
            }
        }
        Ok(())
    })?;
    if let Some(c) = intruder.take() {
        finish(c, "intruder")?;
        intruder_done = true;
    }
    ensure!(intruder_done, "the intruder never ran (no data arrived?)");
    summary("exclusive: holder", &t, &run);
    check_lossless(&t, &run)?;

    // Phase 2: dropping a reader releases its claim; so does exiting.
    let r0 = readers.remove(0);
    let cpu0 = r0.cpu();
    drop(r0);
    let c = sdk(ch.cursor(cpu0))?;
    ensure!(
        !c.held && c.holder_pid.is_none(),
        "cpu {cpu0}: still held after its reader was dropped: {c:?}"
    );
    let again = sdk(ch2.reader(cpu0))?;
    println!("exclusive: cpu {cpu0} claimed by another channel after the drop");
    drop(again);
    drop(readers);
    expect_free(&ch, "after dropping every reader")?;
    let child = spawn_self("claim", o, &["--cpu".into(), cpu0.to_string()])?;
    finish(child, "claim")?;
    expect_free(&ch, "after the claiming process exited")?;
    drop(ch2);

    // Phase 3: one thread per CPU, each with its own reader, run at once;
    // their first batches are alive together.
    let mut readers = sdk(ch.readers())?;
    let sh = Shared::default();
    let n = readers.len();
    loadgen::ctl("start")?;
    let results: Vec<Result<Tracker, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = readers
            .iter_mut()
            .map(|r| {
                let sh = &sh;
                std::thread::Builder::new()
                    .name(format!("reader-cpu{}", r.cpu()))
                    .spawn_scoped(s, move || reader_thread(r, sh, n, o))
            })
            .collect();
        let main = (|| {
            let lg = loadgen::wait_idle(o.deadline)?;
            sdk(ch.flush(None))?;
            Ok::<_, String>(lg)
        })();
        sh.stop.store(true, Ordering::Release);
        let mut out: Vec<Result<Tracker, String>> = handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|_| Err("reader thread panicked".into())),
                Err(e) => Err(format!("spawn: {e}")),
            })
            .collect();
        if let Err(e) = main {
            out.push(Err(e));
        }
        out
    });
    let mut t = Tracker::new(true);
    for r in results {
        t.absorb(r?);
    }
    t.check()?;
    let lg = loadgen::status()?;
    let run = consume::Run {
        lg,
        loss: readers.iter().map(|r| (r.cpu(), r.loss())).collect(),
        ops: ch.control_ops(),
    };
    summary("exclusive: threads", &t, &run);
    check_lossless(&t, &run)?;
    drop(readers);
    expect_free(&ch, "after the threads' readers were dropped")?;
    Ok(())
}
