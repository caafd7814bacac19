//! The common consumer: every CPU's reader in one [`ReadySet`], one batch
//! per ready reader per wakeup, a flush when nothing arrived for a while,
//! and a final flush-and-drain once the writers are done.

use std::collections::BTreeMap;
use std::time::Duration;

use relaymap::{Channel, CpuReader, Loss, ReadySet};

use crate::loadgen::{self, LgCpu, LgStatus};
use crate::tracker::Tracker;
use crate::util::{ensure, sdk, LoadSource, Opts, TestResult};

/// How long a wait lasts before the consumer flushes (and checks whether
/// the writers are done).
pub const QUIET: Duration = Duration::from_millis(100);

/// Everything of one consumer run, for the checks and the summary.
#[derive(Debug)]
pub struct Run {
    /// The load generator's final counts (or the expected ones for
    /// [`LoadSource::Count`]).
    pub lg: LgStatus,
    /// Loss per CPU as the readers report it.
    pub loss: BTreeMap<u32, Loss>,
    /// Control syscalls of the channel and its readers during the run.
    pub ops: u64,
}

/// Opens `o.channel` through /dev/relaymap.
pub fn open(o: &Opts) -> Result<Channel, String> {
    sdk(Channel::open(&o.channel))
}

/// Hands one reader's next batch to `t` (at most `limit` sub-buffers).
/// Returns the number of sub-buffers delivered.
pub fn take(r: &mut CpuReader, t: &mut Tracker, limit: usize) -> Result<usize, String> {
    let b = sdk(r.acquire(limit))?;
    let n = b.len();
    for sb in &b {
        t.subbuf(sb);
    }
    ensure!(
        b.corrupt().is_empty(),
        "cpu {}: corrupt sub-buffers {:?}",
        b.cpu(),
        b.corrupt()
    );
    sdk(b.release())?;
    t.check()?;
    Ok(n)
}

/// After the writers stopped: flush every CPU, drain every reader to its
/// end, and check that each reports itself drained.
pub fn final_drain(ch: &Channel, readers: &mut [CpuReader], t: &mut Tracker) -> TestResult {
    sdk(ch.flush(None))?;
    for r in readers.iter_mut() {
        while take(r, t, usize::MAX)? > 0 {}
        ensure!(
            sdk(r.is_drained())?,
            "cpu {}: not drained after the final drain",
            r.cpu()
        );
    }
    Ok(())
}

/// Whether the writers are still at work.
fn writers_running(o: &Opts, t: &Tracker, cpus: &[u32]) -> Result<bool, String> {
    match o.load {
        LoadSource::Start | LoadSource::External => Ok(loadgen::status()?.running),
        LoadSource::Count(n) => Ok(cpus.iter().any(|c| t.received(*c) < n)),
    }
}

/// The counts to check against once the writers are done.
fn final_counts(o: &Opts, cpus: &[u32]) -> Result<LgStatus, String> {
    match o.load {
        LoadSource::Start | LoadSource::External => loadgen::wait_idle(o.deadline),
        LoadSource::Count(n) => Ok(LgStatus {
            running: false,
            cpus: cpus
                .iter()
                .map(|c| {
                    (
                        *c,
                        LgCpu {
                            attempts: n,
                            written: n,
                            dropped: 0,
                        },
                    )
                })
                .collect(),
        }),
    }
}

/// Consumes `readers` (batches of at most `limit`) while the load
/// generator runs (starting it if `o.load` says so), then drains.
pub fn run(
    ch: &Channel,
    readers: &mut [CpuReader],
    t: &mut Tracker,
    o: &Opts,
    limit: usize,
) -> Result<Run, String> {
    run_with(ch, readers, t, o, limit, |_, _| Ok(()))
}

/// [`run`], calling `hook` after every pass over the ready readers (while
/// the writers run).
pub fn run_with(
    ch: &Channel,
    readers: &mut [CpuReader],
    t: &mut Tracker,
    o: &Opts,
    limit: usize,
    mut hook: impl FnMut(&mut [CpuReader], &Tracker) -> TestResult,
) -> Result<Run, String> {
    let ops0 = ch.control_ops();
    let cpus: Vec<u32> = readers.iter().map(|r| r.cpu()).collect();
    let mut ready = sdk(ReadySet::new(readers))?;
    if o.load == LoadSource::Start {
        loadgen::ctl("start")?;
    }
    loop {
        o.check_deadline("while consuming")?;
        let idx: Vec<usize> = sdk(ready.wait(Some(QUIET)))?.into_iter().collect();
        if idx.is_empty() {
            if !writers_running(o, t, &cpus)? {
                break;
            }
            sdk(ch.flush(None))?;
            continue;
        }
        for i in idx {
            take(&mut readers[i], t, limit)?;
        }
        hook(readers, t)?;
        if o.sleep_ms > 0 {
            std::thread::sleep(Duration::from_millis(o.sleep_ms));
        }
    }
    let lg = final_counts(o, &cpus)?;
    final_drain(ch, readers, t)?;
    Ok(Run {
        lg,
        loss: readers.iter().map(|r| (r.cpu(), r.loss())).collect(),
        ops: ch.control_ops() - ops0,
    })
}

/// One line per CPU and a total: load generator vs consumer.
pub fn summary(name: &str, t: &Tracker, run: &Run) {
    for (cpu, lg) in &run.lg.cpus {
        println!(
            "{name}: cpu {cpu}: attempts {} written {} dropped {} | received {} gaps {} subbufs {} loss {:?}",
            lg.attempts,
            lg.written,
            lg.dropped,
            t.received(*cpu),
            t.gaps.get(cpu).copied().unwrap_or(0),
            t.subbufs(*cpu),
            run.loss.get(cpu).copied().unwrap_or_default(),
        );
    }
    let sbs: u64 = t.subbufs.values().sum();
    println!(
        "{name}: {} records, {} sub-buffers ({} flushed), {} payload bytes, {} control ops ({:.2} per sub-buffer)",
        t.total(),
        sbs,
        t.flushed,
        t.bytes,
        run.ops,
        run.ops as f64 / sbs.max(1) as f64
    );
}

/// Every CPU of the load generator: received == written, nothing dropped.
pub fn check_lossless(t: &Tracker, run: &Run) -> TestResult {
    ensure!(
        run.lg.cpus.len() >= 2,
        "expected >= 2 CPUs writing, the load generator had {}",
        run.lg.cpus.len()
    );
    for (cpu, lg) in &run.lg.cpus {
        ensure!(lg.dropped == 0, "cpu {cpu}: loadgen dropped {}", lg.dropped);
        ensure!(lg.written > 0, "cpu {cpu}: nothing written");
        ensure!(
            t.received(*cpu) == lg.written,
            "cpu {cpu}: received {} of {} written",
            t.received(*cpu),
            lg.written
        );
        let loss = run.loss.get(cpu).copied().unwrap_or_default();
        ensure!(loss == Loss::default(), "cpu {cpu}: loss {loss:?}");
    }
    Ok(())
}
