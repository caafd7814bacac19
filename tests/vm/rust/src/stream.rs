//! The streaming cases (40-44, 46): lossless, drops, overwrite, flush,
//! resume and hotplug, through `Channel::open(name)` and per-CPU readers.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use relaymap::{CpuReader, Mode, ReadySet, Stats};

use crate::consume::{self, final_drain, open, summary, QUIET};
use crate::loadgen;
use crate::tracker::Tracker;
use crate::util::{ensure, sdk, LoadSource, Opts, TestResult};

/// The kernel's counters when a case opened the channel, so that the
/// checks against them also hold on a channel earlier consumers used.
#[derive(Debug)]
struct Baseline {
    total: Stats,
    per_cpu: BTreeMap<u32, Stats>,
    /// Every record counted after this point is one this case receives:
    /// nothing was consumed from the channel yet (then the baseline is
    /// zero), or it was drained and the case itself starts the writers.
    comparable: bool,
}

impl Baseline {
    fn take(ch: &relaymap::Channel, o: &Opts) -> Result<Baseline, String> {
        let total = sdk(ch.stats(None))?;
        // Nothing was ever handed back (since creation or RESET): every
        // record the channel accepted is still in it, and this case
        // receives them all, also those written before it opened.
        if total.subbufs_consumed == 0 && total.subbufs_lapped == 0 {
            return Ok(Baseline {
                total: Stats::default(),
                per_cpu: BTreeMap::new(),
                comparable: true,
            });
        }
        let mut per_cpu = BTreeMap::new();
        for &c in ch.cpus() {
            per_cpu.insert(c, sdk(ch.stats(Some(c)))?);
        }
        let drained = sdk(ch.cursors())?.iter().all(|c| c.consumed == c.produced);
        let we_start = o.load == LoadSource::Start && !loadgen::status()?.running;
        Ok(Baseline {
            total,
            per_cpu,
            comparable: drained && we_start,
        })
    }
}

/// The kernel's own counters agree with what was received (as deltas from
/// `base`): records written == received, per CPU and in total, dropped as
/// expected, nothing rejected; and sub-buffers produced == consumed (all
/// handed back).
fn check_kernel_counts(
    ch: &relaymap::Channel,
    base: &Baseline,
    t: &Tracker,
    dropped: u64,
) -> TestResult {
    let st = sdk(ch.stats(None))?;
    println!("kernel stats: {st:?}");
    ensure!(
        st.subbufs_consumed == st.subbufs_produced,
        "kernel: {} sub-buffers produced, {} consumed",
        st.subbufs_produced,
        st.subbufs_consumed
    );
    ensure!(
        st.records_rejected == base.total.records_rejected,
        "kernel records_rejected {} (was {})",
        st.records_rejected,
        base.total.records_rejected
    );
    if !base.comparable {
        println!(
            "kernel stats: the channel held records of an earlier run when this one opened \
             it: records_written and records_dropped not compared"
        );
        return Ok(());
    }
    let written = st.records_written - base.total.records_written;
    ensure!(
        written == t.total(),
        "kernel records_written {written} (since open) != received {}",
        t.total()
    );
    let drops = st.records_dropped - base.total.records_dropped;
    ensure!(
        drops == dropped,
        "kernel records_dropped {drops} (since open) != {dropped}"
    );
    for c in sdk(ch.cursors())? {
        let cs = sdk(ch.stats(Some(c.cpu)))?;
        let was = base.per_cpu.get(&c.cpu).map_or(0, |b| b.records_written);
        ensure!(
            cs.records_written - was == t.received(c.cpu),
            "cpu {}: kernel records_written {} (since open) != received {}",
            c.cpu,
            cs.records_written - was,
            t.received(c.cpu)
        );
    }
    Ok(())
}

/// RESET (no writer registered, no reader open): counters, cursors and
/// seqs start again at 0, and the reset is counted.
fn reset(ch: &relaymap::Channel) -> TestResult {
    // A finished load generator run releases the channel (its writer
    // registration) in a work item; reading the status waits for it.
    let lg = loadgen::status()?;
    ensure!(!lg.running, "--reset: the load generator is running");
    let before = sdk(ch.stats(None))?;
    sdk(ch.reset())?;
    let after = sdk(ch.stats(None))?;
    println!("reset: stats before {before:?}");
    ensure!(
        after
            == Stats {
                resets: before.resets + 1,
                ..Stats::default()
            },
        "after RESET: {after:?}"
    );
    for c in sdk(ch.cursors())? {
        ensure!(
            c.produced == 0 && c.consumed == 0 && c.records_dropped == 0,
            "cpu {} after RESET: {c:?}",
            c.cpu
        );
    }
    Ok(())
}

/// Lossless writers at full speed: every record once, in order, nothing
/// lost, the readers' counts equal the load generator's and the kernel's.
pub fn lossless(o: &Opts) -> TestResult {
    let ch = open(o)?;
    if o.reset {
        reset(&ch)?;
    }
    let base = Baseline::take(&ch, o)?;
    let mut readers = sdk(ch.readers())?;
    ensure!(
        readers.len() == ch.cpus().len(),
        "{} readers for {} CPUs",
        readers.len(),
        ch.cpus().len()
    );
    let mut t = Tracker::new(true);
    let run = consume::run(&ch, &mut readers, &mut t, o, o.limit)?;
    summary("lossless", &t, &run);
    consume::check_lossless(&t, &run)?;
    check_kernel_counts(&ch, &base, &t, 0)
}

/// Drop mode against a small buffer and a slow consumer: per CPU, the gaps
/// the consumer sees == the reader's loss.records_dropped == the kernel's
/// records_dropped == the load generator's dropped.
pub fn drops(o: &Opts) -> TestResult {
    let ch = open(o)?;
    let base = Baseline::take(&ch, o)?;
    let mut readers = sdk(ch.readers())?;
    let mut t = Tracker::new(false);
    let run = consume::run(&ch, &mut readers, &mut t, o, o.limit)?;
    summary("drops", &t, &run);
    let mut total = 0;
    for (cpu, lg) in &run.lg.cpus {
        let rx = t.received(*cpu);
        ensure!(
            rx == lg.written,
            "cpu {cpu}: received {rx}, written {}",
            lg.written
        );
        ensure!(
            rx + lg.dropped == lg.attempts,
            "cpu {cpu}: received {rx} + dropped {} != attempts {}",
            lg.dropped,
            lg.attempts
        );
        let seen_gaps = t.gaps.get(cpu).copied().unwrap_or(0)
            + (lg.attempts - t.next.get(cpu).copied().unwrap_or(0));
        ensure!(
            seen_gaps == lg.dropped,
            "cpu {cpu}: gaps {seen_gaps} != loadgen dropped {}",
            lg.dropped
        );
        let loss = run.loss.get(cpu).copied().unwrap_or_default();
        ensure!(
            loss.records_dropped == lg.dropped,
            "cpu {cpu}: loss.records_dropped {} != loadgen dropped {}",
            loss.records_dropped,
            lg.dropped
        );
        ensure!(
            loss.records_rejected == 0,
            "cpu {cpu}: records_rejected {}",
            loss.records_rejected
        );
        let c = sdk(ch.cursor(*cpu))?;
        ensure!(
            c.records_dropped == lg.dropped,
            "cpu {cpu}: kernel cursor records_dropped {} != loadgen dropped {}",
            c.records_dropped,
            lg.dropped
        );
        total += lg.dropped;
    }
    ensure!(
        total > 0,
        "no record was dropped: the test did not exercise drops"
    );
    check_kernel_counts(&ch, &base, &t, total)
}

/// Overwrite mode, writers at full speed, slow consumer: every delivered
/// record verifies (no torn copy is handed out), seqs increase, laps are
/// detected, and every produced sub-buffer is delivered or counted.
pub fn overwrite(o: &Opts) -> TestResult {
    let ch = open(o)?;
    ensure!(
        ch.mode() == Mode::Overwrite,
        "channel is not in overwrite mode"
    );
    let mut readers = sdk(ch.readers())?;
    let mut t = Tracker::new(false);
    let run = consume::run(&ch, &mut readers, &mut t, o, o.limit)?;
    summary("overwrite", &t, &run);
    let mut lapped = 0;
    for c in sdk(ch.cursors())? {
        let l = run.loss.get(&c.cpu).copied().unwrap_or_default();
        let delivered = t.subbufs(c.cpu);
        println!(
            "overwrite: cpu {}: produced {} delivered {delivered} lapped(sdk) {} corrupt {} lapped(kernel) {}",
            c.cpu, c.produced, l.subbufs_lapped, l.subbufs_corrupt, c.subbufs_lapped
        );
        ensure!(
            l.subbufs_corrupt == 0,
            "cpu {}: {} torn or corrupt sub-buffers",
            c.cpu,
            l.subbufs_corrupt
        );
        ensure!(
            delivered + l.subbufs_lapped == c.produced,
            "cpu {}: delivered {delivered} + lapped {} != produced {}",
            c.cpu,
            l.subbufs_lapped,
            c.produced
        );
        lapped += l.subbufs_lapped;
    }
    ensure!(
        lapped > 0,
        "no lap happened: the test did not exercise overwrite"
    );
    Ok(())
}

/// A slow writer (sub-buffers that would take ~20 s to fill): data arrives
/// while it runs only through flushes, every such sub-buffer is flagged
/// FLUSHED and partial, nothing is lost, and the records of batches held
/// together for all CPUs merge in timestamp order.
pub fn flush(o: &Opts) -> TestResult {
    let ch = open(o)?;
    let base = Baseline::take(&ch, o)?;
    let mut readers = sdk(ch.readers())?;
    let mut ready = sdk(ReadySet::new(&readers))?;
    let full = ch.info().subbuf_size as usize - ch.info().header_size as usize;
    let mut t = Tracker::new(true);
    loadgen::ctl("start")?;
    let mut while_running = 0u64;
    let mut merged_passes = 0u64;
    loop {
        o.check_deadline("while consuming")?;
        let running = loadgen::status()?.running;
        if sdk(ready.wait(Some(QUIET)))?.into_iter().next().is_none() {
            if !running {
                break;
            }
            sdk(ch.flush(None))?;
            continue;
        }
        let before = t.total();
        // One batch per CPU, all alive together; their records merged.
        let mut batches = Vec::new();
        for r in readers.iter_mut() {
            batches.push(sdk(r.acquire(usize::MAX))?);
        }
        for b in &batches {
            for sb in b {
                t.subbuf(sb);
                if running {
                    ensure!(
                        sb.header().is_flushed() && sb.payload().len() < full,
                        "cpu {} seq {}: a sub-buffer became visible while the slow writer ran \
                         without being flushed (flags {:#x}, {} of {full} bytes)",
                        sb.cpu(),
                        sb.seq(),
                        sb.header().flags,
                        sb.payload().len()
                    );
                }
            }
        }
        t.check()?;
        crate::merge_check::merged_in_order(&batches)?;
        merged_passes += 1;
        for b in batches {
            sdk(b.release())?;
        }
        if running {
            while_running += t.total() - before;
        }
    }
    let lg = loadgen::wait_idle(o.deadline)?;
    final_drain(&ch, &mut readers, &mut t)?;
    let run = consume::Run {
        lg,
        loss: readers.iter().map(|r| (r.cpu(), r.loss())).collect(),
        ops: ch.control_ops(),
    };
    summary("flush", &t, &run);
    println!(
        "flush: {while_running} records received while the writer was running, {merged_passes} merged passes"
    );
    consume::check_lossless(&t, &run)?;
    ensure!(
        while_running > 0,
        "no record became visible while the writer ran: flush does not work"
    );
    let stats = sdk(ch.stats(None))?;
    ensure!(stats.flushes > 0, "kernel counted no flush");
    ensure!(
        t.flushed <= stats.flushes,
        "{} sub-buffers flagged FLUSHED, kernel counted {} flushes",
        t.flushed,
        stats.flushes
    );
    check_kernel_counts(&ch, &base, &t, 0)
}

/// Waits (bounded) for any reader's data, flushing when quiet.
fn wait_any(ch: &relaymap::Channel, ready: &mut ReadySet, o: &Opts) -> Result<Vec<usize>, String> {
    loop {
        o.check_deadline("waiting for data")?;
        let idx: Vec<usize> = sdk(ready.wait(Some(QUIET)))?.into_iter().collect();
        if !idx.is_empty() {
            return Ok(idx);
        }
        sdk(ch.flush(None))?;
    }
}

/// Takes `n` sub-buffers one at a time (`acquire(1)`, each handed back by
/// its batch's drop).
fn take_singles(
    ch: &relaymap::Channel,
    readers: &mut [CpuReader],
    t: &mut Tracker,
    o: &Opts,
    n: u64,
) -> TestResult {
    let mut ready = sdk(ReadySet::new(readers))?;
    let mut taken = 0;
    while taken < n {
        for i in wait_any(ch, &mut ready, o)? {
            let b = sdk(readers[i].acquire(1))?;
            ensure!(b.len() <= 1, "acquire(1) returned {} sub-buffers", b.len());
            for sb in &b {
                t.subbuf(sb);
                taken += 1;
            }
            t.check()?;
        } // each batch hands its sub-buffer back in its drop
    }
    Ok(())
}

/// Per CPU, the kernel's consumed count must equal what was handed back.
fn check_consumed(ch: &relaymap::Channel, handed: &BTreeMap<u32, u64>, when: &str) -> TestResult {
    for c in sdk(ch.cursors())? {
        let want = handed.get(&c.cpu).copied().unwrap_or(0);
        println!(
            "resume: {when}: cpu {}: kernel consumed {} produced {} held {}, handed back {want}",
            c.cpu, c.consumed, c.produced, c.held
        );
        ensure!(
            c.consumed == want,
            "{when}: cpu {}: kernel consumed {} != handed back {want}",
            c.cpu,
            c.consumed
        );
        ensure!(
            !c.held,
            "{when}: cpu {} still held after its reader was dropped",
            c.cpu
        );
    }
    Ok(())
}

/// Consumers dropped mid-stream and re-opened resume exactly at what was
/// handed back: after single sub-buffers, a partly released batch, and a
/// kept batch; first with readers re-claimed from the same channel, then
/// with a new channel. Across all three every record arrives once.
pub fn resume(o: &Opts) -> TestResult {
    let mut t = Tracker::new(true);
    let ch = open(o)?;
    let base = Baseline::take(&ch, o)?;
    loadgen::ctl("start")?;
    // Phase A: 20 single sub-buffers, then a batch of >= 2 of which only the
    // first is handed back.
    let mut readers = sdk(ch.readers())?;
    take_singles(&ch, &mut readers, &mut t, o, 20)?;
    let mut ready = sdk(ReadySet::new(&readers))?;
    'partial: loop {
        for i in wait_any(&ch, &mut ready, o)? {
            let b = sdk(readers[i].acquire(usize::MAX))?;
            if b.len() < 2 {
                b.keep(); // delivered again with what comes next
                          // The set stays ready while a batch is kept (level-triggered):
                          // back off instead of spinning until a second one is there.
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            let first = b.get(0).ok_or("batch of >= 2 without a first sub-buffer")?;
            t.subbuf(first);
            t.check()?;
            let upto = first.seq() + 1;
            println!(
                "resume: phase A: cpu {} batch {:?}, handing back up to {upto}",
                b.cpu(),
                b.seqs()
            );
            sdk(b.release_until(upto))?;
            break 'partial;
        }
    }
    drop(ready);
    drop(readers);
    let handed = t.next_sb.clone();
    check_consumed(&ch, &handed, "after phase A")?;

    // Phase B: the same channel claims again; 10 singles, then a kept batch.
    let mut readers = sdk(ch.readers())?;
    t.expect_first(handed.clone());
    take_singles(&ch, &mut readers, &mut t, o, 10)?;
    let mut ready = sdk(ReadySet::new(&readers))?;
    let i = wait_any(&ch, &mut ready, o)?[0];
    let b = sdk(readers[i].acquire(usize::MAX))?;
    println!(
        "resume: phase B: cpu {} keeps batch {:?}",
        b.cpu(),
        b.seqs()
    );
    b.keep();
    drop(ready);
    drop(readers);
    let mut handed = t.next_sb.clone();
    for (cpu, first) in t.pending_first() {
        handed.insert(*cpu, *first); // no sub-buffer of that CPU arrived in B
    }
    check_consumed(&ch, &handed, "after phase B")?;
    drop(ch);

    // Phase C: a new channel to the end.
    let ch = open(o)?;
    check_consumed(&ch, &handed, "at re-open")?;
    let mut readers = sdk(ch.readers())?;
    t.expect_first(handed);
    let o2 = Opts {
        load: LoadSource::External,
        ..o.clone()
    };
    let run = consume::run(&ch, &mut readers, &mut t, &o2, o.limit)?;
    ensure!(
        t.pending_first().is_empty(),
        "no sub-buffer after re-open from {:?}",
        t.pending_first()
    );
    summary("resume", &t, &run);
    consume::check_lossless(&t, &run)?;
    check_kernel_counts(&ch, &base, &t, 0)
}

/// CPU hotplug: cpu1 comes online after open; refresh_cpus() reports it,
/// a reader claims it, and its records arrive with everyone else's.
pub fn hotplug(o: &Opts) -> TestResult {
    let online = Path::new("/sys/devices/system/cpu/cpu1/online");
    let mut ch = open(o)?;
    let base = Baseline::take(&ch, o)?;
    let cpus = ch.cpus().to_vec();
    ensure!(
        !cpus.contains(&1),
        "cpu1 already has a buffer ({cpus:?}); the script must offline it before loading"
    );
    let mut readers = sdk(ch.readers())?;
    std::fs::write(online, "1").map_err(|e| format!("online cpu1: {e}"))?;
    // relay creates the buffer in the CPU-up callback; poll for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(30);
    let added = loop {
        let a = sdk(ch.refresh_cpus())?;
        if !a.is_empty() || Instant::now() > deadline {
            break a;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    println!("hotplug: refresh_cpus after onlining cpu1: {added:?}");
    ensure!(added == vec![1], "refresh_cpus {added:?}, want [1]");
    ensure!(ch.cpus().contains(&1), "cpu1 not in cpus() {:?}", ch.cpus());
    ensure!(
        sdk(ch.refresh_cpus())?.is_empty(),
        "refresh_cpus reports cpu1 twice"
    );
    readers.push(sdk(ch.reader(1))?);
    let mut t = Tracker::new(true);
    let run = consume::run(&ch, &mut readers, &mut t, o, o.limit)?;
    summary("hotplug", &t, &run);
    ensure!(t.received(1) > 0, "no record from cpu1");
    consume::check_lossless(&t, &run)?;
    check_kernel_counts(&ch, &base, &t, 0)
}
