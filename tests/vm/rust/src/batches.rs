//! 49-sdk-batches: what batches cost and what they allow.
//!
//! * `acquire(1)` in a loop costs O(1) control calls per sub-buffer: while
//!   a faster writer streams, and draining a fixed number K of ready
//!   sub-buffers, where the calls are K hand-backs plus a constant that
//!   does not grow with K.
//! * Batches of every CPU's reader are alive together, and hand nothing
//!   back until dropped.
//! * `Channel::cursors()` is one call.

use std::time::Instant;

use relaymap::{Batch, Channel, CpuReader, ReadySet};

use crate::consume::{check_lossless, open, summary, Run, QUIET};
use crate::loadgen;
use crate::tracker::Tracker;
use crate::util::{ensure, sdk, Opts, TestResult};

/// Bound on control calls per sub-buffer for `acquire(1)` in a loop.
const MAX_OPS_PER_SUBBUF: u64 = 2;
/// Control calls of a fixed drain beyond one hand-back per sub-buffer: the
/// cursor read that finds the sub-buffers and the one that finds no more.
const MAX_DRAIN_OVERHEAD: u64 = 2;

fn reader_ops(readers: &[CpuReader]) -> u64 {
    readers.iter().map(|r| r.control_ops()).sum()
}

/// Drains one reader with `acquire(1)` until it reports nothing.
fn drain_singles(r: &mut CpuReader, t: &mut Tracker) -> Result<u64, String> {
    let mut n = 0;
    loop {
        let b = sdk(r.acquire(1))?;
        ensure!(b.len() <= 1, "acquire(1) returned {} sub-buffers", b.len());
        if b.is_empty() {
            return Ok(n);
        }
        for sb in &b {
            t.subbuf(sb);
        }
        n += 1;
        drop(b); // one PUT_CONSUMED
        t.check()?;
    }
}

/// Phase 1: every ready reader drained with acquire(1) while the load
/// generator writes. With `pause` it writes at full speed and the reader
/// sleeps `--sleep-ms` per wakeup: the writer is the faster one and the
/// bound is asserted. Without, the writer is rate-limited so that the
/// reader keeps up, and the figure is only reported (each wakeup costs a
/// cursor read that finds nothing, and a wakeup can be spurious).
fn streaming(ch: &Channel, readers: &mut [CpuReader], o: &Opts, pause: bool) -> TestResult {
    let label = if pause {
        "streaming, writer faster"
    } else {
        "streaming, reader keeps up"
    };
    if !pause {
        // ~320 sub-buffers/s per CPU of 62 records: far below what the
        // reader drains under TCG (~30 us per sub-buffer).
        loadgen::set("rate", "20000")?;
        loadgen::set("count", "6200")?;
    }
    let mut t = Tracker::new(true);
    let mut ready = sdk(ReadySet::new(readers))?;
    let ops0 = reader_ops(readers);
    let chops0 = ch.control_ops();
    let mut wakeups = 0u64;
    loadgen::ctl("start")?;
    loop {
        o.check_deadline("streaming")?;
        let idx: Vec<usize> = sdk(ready.wait(Some(QUIET)))?.into_iter().collect();
        if idx.is_empty() {
            if !loadgen::status()?.running {
                break;
            }
            sdk(ch.flush(None))?;
            continue;
        }
        wakeups += 1;
        for i in idx {
            drain_singles(&mut readers[i], &mut t)?;
        }
        // --sleep-ms: the reader pauses so that the writer is the faster
        // one (several sub-buffers ready per wakeup), the case the bound
        // is about; nothing waits on it.
        if pause && o.sleep_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(o.sleep_ms));
        }
    }
    let lg = loadgen::wait_idle(o.deadline)?;
    let ops = reader_ops(readers) - ops0;
    let sbs: u64 = t.subbufs.values().sum();
    // The tail (a partial sub-buffer) after the writers stopped.
    sdk(ch.flush(None))?;
    for r in readers.iter_mut() {
        drain_singles(r, &mut t)?;
        ensure!(sdk(r.is_drained())?, "cpu {}: not drained", r.cpu());
    }
    let run = Run {
        lg,
        loss: readers.iter().map(|r| (r.cpu(), r.loss())).collect(),
        ops: ch.control_ops() - chops0,
    };
    summary(&format!("batches: {label}"), &t, &run);
    let per = ops as f64 / sbs.max(1) as f64;
    println!(
        "batches: {label}: acquire(1) loop: {ops} reader control calls for {sbs} sub-buffers \
         = {per:.3} per sub-buffer ({wakeups} wakeups, {:.1} sub-buffers per wakeup; {})",
        sbs as f64 / wakeups.max(1) as f64,
        if pause {
            format!("bound {MAX_OPS_PER_SUBBUF}")
        } else {
            "reported only".to_string()
        }
    );
    check_lossless(&t, &run)?;
    ensure!(sbs > 0, "no sub-buffer while streaming");
    ensure!(
        !pause || ops <= MAX_OPS_PER_SUBBUF * sbs,
        "acquire(1) costs {per:.3} control calls per sub-buffer while streaming (bound {MAX_OPS_PER_SUBBUF})"
    );
    Ok(())
}

/// Writes `count` records per CPU, waits for the writers, flushes, and
/// returns the ready sub-buffers per CPU (from the channel, so the
/// readers' own cursor knowledge stays stale).
fn fill(ch: &Channel, count: u64, o: &Opts) -> Result<Vec<u64>, String> {
    loadgen::set("count", &count.to_string())?;
    loadgen::ctl("start")?;
    loadgen::wait_idle(o.deadline)?;
    sdk(ch.flush(None))?;
    Ok(sdk(ch.cursors())?
        .iter()
        .map(|c| c.produced - c.consumed)
        .collect())
}

/// Phase 2: K ready sub-buffers drained with acquire(1) cost K hand-backs
/// plus a constant, for a small and a large K.
fn fixed_drains(ch: &Channel, readers: &mut [CpuReader], o: &Opts) -> TestResult {
    let info = ch.info();
    let per_sb = (info.subbuf_size - u64::from(info.header_size)) / 64;
    let small = per_sb * 4;
    let large = per_sb * (info.n_subbufs * 3 / 4);
    loadgen::set("rate", "0")?;
    let mut overheads = Vec::new();
    for count in [small, large] {
        let ready = fill(ch, count, o)?;
        let mut t = Tracker::new(true);
        for (r, k) in readers.iter_mut().zip(&ready) {
            let ops0 = r.control_ops();
            let t0 = Instant::now();
            let n = drain_singles(r, &mut t)?;
            let dt = t0.elapsed();
            let ops = r.control_ops() - ops0;
            println!(
                "batches: cpu {}: {k} ready, acquire(1) x {n}: {ops} control calls \
                 ({:.3} per sub-buffer, {} beyond the hand-backs), {:.1} us per sub-buffer",
                r.cpu(),
                ops as f64 / n.max(1) as f64,
                ops.saturating_sub(n),
                dt.as_secs_f64() * 1e6 / n.max(1) as f64
            );
            ensure!(n == *k, "cpu {}: {k} ready, {n} delivered", r.cpu());
            ensure!(
                *k >= 2,
                "cpu {}: only {k} sub-buffers ready: the fill did not work",
                r.cpu()
            );
            ensure!(
                ops <= n + MAX_DRAIN_OVERHEAD,
                "cpu {}: draining {n} ready sub-buffers cost {ops} control calls (bound {} + {MAX_DRAIN_OVERHEAD})",
                r.cpu(),
                n
            );
            overheads.push((n, ops - n));
        }
        let lg = loadgen::status()?;
        for (cpu, c) in &lg.cpus {
            ensure!(
                t.received(*cpu) == c.written && c.dropped == 0,
                "cpu {cpu}: received {} of {} written ({} dropped)",
                t.received(*cpu),
                c.written,
                c.dropped
            );
        }
    }
    let max_small = overheads
        .iter()
        .take(readers.len())
        .map(|x| x.1)
        .max()
        .unwrap_or(0);
    for (n, over) in overheads.iter().skip(readers.len()) {
        ensure!(
            *over <= max_small.max(MAX_DRAIN_OVERHEAD),
            "the cost beyond the hand-backs grew with the ready count: {over} calls for {n} ready, \
             {max_small} for the small fill"
        );
    }
    Ok(())
}

/// Phase 3: one batch of every CPU, alive together, verified together;
/// nothing is handed back until they are dropped.
fn all_together(ch: &Channel, readers: &mut [CpuReader], o: &Opts) -> TestResult {
    let info = ch.info();
    let per_sb = (info.subbuf_size - u64::from(info.header_size)) / 64;
    fill(ch, per_sb * 3 + 5, o)?;
    let before = sdk(ch.cursors())?;
    let batches: Vec<Batch<'_>> = readers
        .iter_mut()
        .map(|r| sdk(r.acquire(usize::MAX)))
        .collect::<Result<_, _>>()?;
    let mut t = Tracker::new(true);
    let mut ranges = Vec::new();
    for b in &batches {
        ensure!(!b.is_empty(), "cpu {}: empty batch after a fill", b.cpu());
        for sb in b {
            t.subbuf(sb);
            let p = sb.payload().as_ptr() as usize;
            ranges.push((p, p + sb.payload().len(), b.cpu()));
        }
    }
    t.check()?;
    ranges.sort();
    for w in ranges.windows(2) {
        ensure!(
            w[0].1 <= w[1].0,
            "payloads of cpu {} and cpu {} overlap",
            w[0].2,
            w[1].2
        );
    }
    let held = sdk(ch.cursors())?;
    ensure!(
        held == before,
        "cursors moved while the batches were alive: {before:?} -> {held:?}"
    );
    let summary: Vec<String> = batches
        .iter()
        .map(|b| format!("cpu {} {:?}", b.cpu(), b.seqs()))
        .collect();
    println!("batches: alive together: {}", summary.join(", "));
    drop(batches);
    for c in sdk(ch.cursors())? {
        ensure!(
            c.consumed == c.produced,
            "cpu {}: consumed {} != produced {} after the batches were dropped",
            c.cpu,
            c.consumed,
            c.produced
        );
    }
    let lg = loadgen::status()?;
    for (cpu, c) in &lg.cpus {
        ensure!(
            t.received(*cpu) == c.written,
            "cpu {cpu}: received {} of {}",
            t.received(*cpu),
            c.written
        );
    }
    Ok(())
}

/// Phase 4: `cursors()` reads every CPU in one control call, and agrees
/// with `cursor(cpu)` one by one (nothing moves now).
fn cursors_one_call(ch: &Channel) -> TestResult {
    let ops0 = ch.control_ops();
    let all = sdk(ch.cursors())?;
    let calls = ch.control_ops() - ops0;
    println!(
        "batches: cursors() of {} CPUs: {calls} control call(s)",
        all.len()
    );
    ensure!(calls == 1, "cursors() cost {calls} control calls, want 1");
    ensure!(
        all.iter().map(|c| c.cpu).collect::<Vec<_>>() == ch.cpus(),
        "cursors() covers {:?}, the channel has {:?}",
        all.iter().map(|c| c.cpu).collect::<Vec<_>>(),
        ch.cpus()
    );
    for c in &all {
        let one = sdk(ch.cursor(c.cpu))?;
        ensure!(
            one == *c,
            "cpu {}: cursors() {c:?} != cursor() {one:?}",
            c.cpu
        );
    }
    Ok(())
}

/// The whole case.
pub fn batches(o: &Opts) -> TestResult {
    let ch = open(o)?;
    let mut readers = sdk(ch.readers())?;
    ensure!(readers.len() >= 2, "need >= 2 CPUs, have {}", readers.len());
    ensure!(
        o.sleep_ms > 0,
        "batches needs --sleep-ms (the reader's pause per wakeup)"
    );
    streaming(&ch, &mut readers, o, true)?;
    streaming(&ch, &mut readers, o, false)?;
    fixed_drains(&ch, &mut readers, o)?;
    all_together(&ch, &mut readers, o)?;
    cursors_one_call(&ch)?;
    Ok(())
}
