//! The dump loop: batches per CPU, written with `writev` straight from the
//! mapping, released only once every byte is written.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use relaymap::{Batch, Channel, Records, Subbuf};

use crate::error::Failure;
use crate::report::{CpuStats, Progress, Report, StopReason};
use crate::sink::{Sink, Unit};
use crate::DumpArgs;

/// Longest single wait, so signals, the deadline and flushes are noticed.
const MAX_WAIT: Duration = Duration::from_millis(200);

/// How often to look for CPUs that came online (one `GET_INFO`).
const CPU_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What one sub-buffer contributes in the chosen mode.
struct Plan<'a> {
    unit: Unit<'a>,
    records: u64,
    corrupt: bool,
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// Walks the record framing of a payload with the rules of the ABI (and of
/// the SDK's `Records`, which the tests compare it with): a record is
/// `size` bytes (`size >= 16`, within the payload), the next one starts at
/// `ALIGN(size, 8)`, and the walk ends when fewer than 16 bytes remain.
/// Returns (end of the last good record, clamped to the payload; records;
/// corrupt framing found). Only the `size` words are read: this runs on
/// every record at full rate, so it is kept to a handful of instructions.
pub(crate) fn walk_framing(p: &[u8]) -> (usize, u64, bool) {
    const HDR: usize = relaymap::abi::RECORD_HEADER_SIZE;
    let (mut off, mut n) = (0usize, 0u64);
    while p.len() - off >= HDR {
        let size = u32::from_le_bytes([p[off], p[off + 1], p[off + 2], p[off + 3]]) as usize;
        if size < HDR || size > p.len() - off {
            return (off, n, true);
        }
        n += 1;
        off = (off + align8(size)).min(p.len());
    }
    (off, n, false)
}

/// Records mode: the framed records of the payload, validated; the unit is
/// the prefix of the payload up to the end of the last good record (the
/// whole payload when the framing is sound).
fn plan_records<'a>(sb: &Subbuf<'a>) -> Plan<'a> {
    let p = sb.payload();
    let (end, n, corrupt) = walk_framing(p);
    Plan {
        unit: Unit {
            data: &p[..end],
            pad: align8(end) - end,
        },
        records: n,
        corrupt,
    }
}

fn plan_raw<'a>(sb: &Subbuf<'a>) -> Plan<'a> {
    Plan {
        unit: Unit {
            data: sb.payload(),
            pad: 0,
        },
        records: 0,
        corrupt: false,
    }
}

fn warn_corrupt(progress: &Progress, cpu: u32, seq: u64) {
    progress.println(&format!(
        "relaymap-dump: cpu{cpu} sub-buffer {seq}: corrupt record framing; wrote the records before it"
    ));
}

/// The running dumper.
pub struct Dumper {
    /// The channel directory (to open the channel of a CPU that comes online).
    dir: PathBuf,
    /// All CPUs: used to wait and to flush.
    waiter: Channel,
    /// One channel per CPU, so that the batches of every CPU can be held at
    /// once (merged output).
    chans: Vec<Channel>,
    cpus: Vec<u32>,
    sink: Sink,
    raw: bool,
    /// Most sub-buffers per CPU written (and released) at once in per-CPU
    /// file mode: small enough that a writer waiting for space (lossless
    /// mode, or a full buffer) gets it back soon, large enough that the
    /// control calls stay negligible.
    group: usize,
    max_bytes: Option<u64>,
    stats: Vec<CpuStats>,
    total_bytes: u64,
    progress: Progress,
    /// Rounds (one batch per CPU), rounds that found nothing, waits.
    rounds: u64,
    empty_rounds: u64,
    waits: u64,
}

impl std::fmt::Debug for Dumper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dumper").field("cpus", &self.cpus).finish()
    }
}

impl Dumper {
    fn budget_left(&self) -> u64 {
        self.max_bytes
            .map_or(u64::MAX, |m| m.saturating_sub(self.total_bytes))
    }

    /// One batch per CPU to the per-CPU files. Returns bytes written.
    fn round_files(&mut self) -> Result<u64, Failure> {
        let mut total = 0u64;
        for i in 0..self.chans.len() {
            let cpu = self.cpus[i];
            let mut budget = self.budget_left();
            if budget == 0 {
                break;
            }
            let batch = self.chans[i].batch(cpu)?;
            if batch.is_empty() {
                // Lapped or corrupt sub-buffers only: hand them back.
                batch.release()?;
                continue;
            }
            let mut plans = Vec::with_capacity(batch.len());
            let mut seqs = Vec::with_capacity(batch.len() + 1);
            for sb in batch.iter() {
                if budget == 0 || plans.len() == self.group {
                    break;
                }
                let p = if self.raw {
                    plan_raw(&sb)
                } else {
                    plan_records(&sb)
                };
                if p.corrupt {
                    warn_corrupt(&self.progress, cpu, sb.seq());
                }
                budget = budget.saturating_sub(p.unit.len());
                seqs.push(sb.seq());
                plans.push(p);
            }
            // The first sub-buffer not taken (max-bytes), if any.
            let cut = batch.get(plans.len()).map(|sb| sb.seq());
            let units: Vec<Unit<'_>> = plans.iter().map(|p| p.unit).collect();
            let res = self.sink.write_cpu(i, &units);
            let done = match &res {
                Ok(()) => plans.len(),
                Err(p) => p.done,
            };
            let st = &mut self.stats[i];
            for p in &plans[..done] {
                st.subbufs += 1;
                st.bytes += p.unit.len();
                st.records += p.records;
                st.corrupt_records += u64::from(p.corrupt);
                total += p.unit.len();
            }
            drop(units);
            drop(plans);
            match res {
                Ok(()) => match cut {
                    Some(seq) => batch.release_until(seq)?,
                    None => batch.release()?,
                },
                Err(partial) => {
                    // Never hand back a sub-buffer whose bytes did not all
                    // reach the output.
                    match seqs.get(done) {
                        Some(&seq) => batch.release_until(seq)?,
                        None => batch.release()?,
                    }
                    self.total_bytes += total;
                    return Err(partial.failure);
                }
            }
        }
        self.total_bytes += total;
        Ok(total)
    }

    /// One batch of every CPU, merged into one stream. Returns bytes
    /// written.
    fn round_merged(&mut self) -> Result<u64, Failure> {
        let budget = self.budget_left();
        if budget == 0 {
            return Ok(0);
        }
        let raw = self.raw;
        let cpus = &self.cpus;
        let progress = &self.progress;
        let mut batches: Vec<Batch<'_>> = Vec::with_capacity(self.chans.len());
        let mut err = None;
        for (ch, &cpu) in self.chans.iter_mut().zip(cpus) {
            match ch.batch(cpu) {
                Ok(b) => batches.push(b),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = err {
            for b in batches {
                b.keep();
            }
            return Err(e.into());
        }
        // Sub-buffers taken per CPU: all, unless --max-bytes cuts them (in
        // sub-buffer open-time order across CPUs).
        let mut order: Vec<(u64, usize, usize)> = Vec::new();
        for (i, b) in batches.iter().enumerate() {
            for (k, sb) in b.iter().enumerate() {
                order.push((sb.header().ts_begin_ns, i, k));
            }
        }
        order.sort_by_key(|&(ts, i, k)| (ts, i, k));
        let mut take = vec![0usize; batches.len()];
        let mut left = budget;
        for &(_, i, k) in &order {
            if left == 0 {
                break;
            }
            if k == take[i] {
                let n = batches[i].get(k).map_or(0, |sb| sb.payload().len() as u64);
                left = left.saturating_sub(n);
                take[i] += 1;
            }
        }
        let mut plans: Vec<Vec<(Plan<'_>, u64)>> = Vec::with_capacity(batches.len());
        for (i, b) in batches.iter().enumerate() {
            let v: Vec<(Plan<'_>, u64)> = b
                .iter()
                .take(take[i])
                .map(|sb| {
                    let p = if raw {
                        plan_raw(&sb)
                    } else {
                        plan_records(&sb)
                    };
                    if p.corrupt {
                        warn_corrupt(progress, cpus[i], sb.seq());
                    }
                    (p, sb.header().ts_begin_ns)
                })
                .collect();
            plans.push(v);
        }
        let bufs: Vec<&[u8]> = if raw {
            let mut v: Vec<(u64, usize, usize)> = Vec::new();
            for (i, ps) in plans.iter().enumerate() {
                for (k, (_, ts)) in ps.iter().enumerate() {
                    v.push((*ts, i, k));
                }
            }
            v.sort_by_key(|&(ts, i, k)| (ts, i, k));
            v.iter().map(|&(_, i, k)| plans[i][k].0.unit.data).collect()
        } else {
            merge_records(&plans)
        };
        let res = self.sink.write_stream(&bufs);
        drop(bufs);
        let mut total = 0u64;
        if res.is_ok() {
            for (i, ps) in plans.iter().enumerate() {
                let st = &mut self.stats[i];
                for (p, _) in ps {
                    st.subbufs += 1;
                    st.bytes += p.unit.len();
                    st.records += p.records;
                    st.corrupt_records += u64::from(p.corrupt);
                    total += p.unit.len();
                }
            }
        }
        let cuts: Vec<Option<u64>> = batches
            .iter()
            .enumerate()
            .map(|(i, b)| b.get(take[i]).map(|sb| sb.seq()))
            .collect();
        drop(plans);
        match res {
            Ok(()) => {
                for (b, cut) in batches.into_iter().zip(cuts) {
                    match cut {
                        Some(seq) => b.release_until(seq)?,
                        None => b.release()?,
                    }
                }
                self.total_bytes += total;
                Ok(total)
            }
            Err(f) => {
                // Part of the round may be out; none of it is handed back.
                for b in batches {
                    b.keep();
                }
                Err(f)
            }
        }
    }

    fn round(&mut self) -> Result<u64, Failure> {
        self.rounds += 1;
        let r = match self.sink {
            Sink::Files { .. } => self.round_files(),
            Sink::Stream { .. } => self.round_merged(),
        };
        for (i, ch) in self.chans.iter().enumerate() {
            let l = ch.loss();
            self.stats[i].records_dropped = l.records_dropped;
            self.stats[i].subbufs_lapped = l.subbufs_lapped;
            self.stats[i].subbufs_corrupt = l.subbufs_corrupt;
        }
        if matches!(r, Ok(0)) {
            self.empty_rounds += 1;
        }
        r
    }

    fn max_reached(&self) -> bool {
        self.budget_left() == 0
    }

    /// Picks up CPUs that came online since the last look (relay created
    /// their buffers): one `GET_INFO` when there are none. Each new CPU is
    /// mapped by the waiter (so waits cover it) and gets its own channel,
    /// output file (or a place in the merged stream) and counters, after
    /// the others.
    fn add_new_cpus(&mut self) -> Result<(), Failure> {
        if self.waiter.pending_cpus()?.is_empty() {
            return Ok(());
        }
        self.waiter.refresh_cpus()?;
        // Every CPU the waiter maps and we do not dump yet (also one that
        // appeared between the two GET_INFOs).
        for cpu in self.waiter.cpus() {
            if self.cpus.contains(&cpu) {
                continue;
            }
            let ch = open_channel(&self.dir, Some(cpu))?;
            let dest = self.sink.add_cpu(cpu)?;
            self.chans.push(ch);
            self.cpus.push(cpu);
            self.stats.push(CpuStats::new(cpu));
            self.progress.add_cpu();
            self.progress.println(&format!(
                "relaymap-dump: cpu{cpu} came online, dumping it to {dest}"
            ));
        }
        Ok(())
    }

    /// Flushes, then consumes until every CPU's consumed count reaches what
    /// was produced after the flush. Twice: a sub-buffer that could not be
    /// closed by the first flush (full buffer) is closed by the second.
    fn drain_to_produced(&mut self) -> Result<(), Failure> {
        for _pass in 0..2 {
            self.add_new_cpus()?;
            self.waiter.flush()?;
            let mut targets = Vec::with_capacity(self.chans.len());
            for (ch, &cpu) in self.chans.iter().zip(&self.cpus) {
                targets.push(ch.cursor(cpu)?.produced);
            }
            loop {
                let n = self.round()?;
                self.progress.tick(&self.stats, false);
                if self.max_reached() {
                    return Ok(());
                }
                let mut done = true;
                for ((ch, &cpu), &t) in self.chans.iter().zip(&self.cpus).zip(&targets) {
                    done &= ch.cursor(cpu)?.consumed >= t;
                }
                if done {
                    break;
                }
                if n == 0 {
                    self.waits += 1;
                    self.waiter.wait_timeout(Some(Duration::from_millis(10)))?;
                }
            }
        }
        Ok(())
    }
}

/// Merges the records of every CPU by timestamp (ties: lower CPU first;
/// each CPU's order is kept), coalescing runs that are contiguous in the
/// mapping into one slice.
fn merge_records<'a>(plans: &[Vec<(Plan<'a>, u64)>]) -> Vec<&'a [u8]> {
    // Per CPU: (ts, start, end, unit index) of each record, in order.
    struct Rec {
        ts: u64,
        k: usize,
        start: usize,
        end: usize,
    }
    let per_cpu: Vec<Vec<Rec>> = plans
        .iter()
        .map(|ps| {
            let mut v = Vec::new();
            for (k, (p, _)) in ps.iter().enumerate() {
                for rec in Records::new(p.unit.data).map_while(|r| r.ok()) {
                    let end = (rec.offset + align8(rec.size())).min(p.unit.data.len());
                    v.push(Rec {
                        ts: rec.ts_ns,
                        k,
                        start: rec.offset,
                        end,
                    });
                }
            }
            v
        })
        .collect();
    let mut pos = vec![0usize; per_cpu.len()];
    let mut out: Vec<&'a [u8]> = Vec::new();
    // The run being built: (cpu, unit, start, end).
    let mut run: Option<(usize, usize, usize, usize)> = None;
    loop {
        let mut best: Option<(u64, usize)> = None;
        for (i, v) in per_cpu.iter().enumerate() {
            if let Some(r) = v.get(pos[i]) {
                if best.map_or(true, |(ts, _)| r.ts < ts) {
                    best = Some((r.ts, i));
                }
            }
        }
        let Some((_, i)) = best else { break };
        let r = &per_cpu[i][pos[i]];
        pos[i] += 1;
        match &mut run {
            Some((ci, k, _, end)) if *ci == i && *k == r.k && *end == r.start => *end = r.end,
            _ => {
                if let Some((ci, k, s, e)) = run.take() {
                    out.push(&plans[ci][k].0.unit.data[s..e]);
                }
                run = Some((i, r.k, r.start, r.end));
            }
        }
    }
    if let Some((ci, k, s, e)) = run {
        out.push(&plans[ci][k].0.unit.data[s..e]);
    }
    out
}

/// Sub-buffers per write-and-release group: about 512 KiB, at most a
/// quarter of the buffer, at least one.
fn group_size(subbuf_size: u64, n_subbufs: u64) -> usize {
    let by_bytes = (512 << 10) / subbuf_size.max(1);
    by_bytes.min(n_subbufs / 4).max(1) as usize
}

fn open_channel(dir: &PathBuf, cpu: Option<u32>) -> Result<Channel, Failure> {
    let mut b = Channel::builder(dir);
    if let Some(c) = cpu {
        b = b.cpus([c]).populate(true);
    }
    Ok(b.open()?)
}

/// Runs the dumper; returns the report (also on failure, with the error).
pub fn run(args: &DumpArgs, stop: Arc<AtomicBool>) -> (Report, Option<Failure>) {
    let start = Instant::now();
    let mut report = Report::new(args);
    let channel = args.channel.as_ref().expect("checked by main");
    let setup = (|| -> Result<Dumper, Failure> {
        let waiter = open_channel(channel, None)?;
        let dir = channel.clone();
        let cpus = waiter.cpus();
        report.channel = waiter.info().name.clone();
        report.subbuf_size = waiter.info().subbuf_size;
        report.n_subbufs = waiter.info().n_subbufs;
        let mut chans = Vec::with_capacity(cpus.len());
        for &c in &cpus {
            chans.push(open_channel(channel, Some(c))?);
        }
        let sink = match args.output.as_deref() {
            Some(o) if o == std::path::Path::new("-") => Sink::stdout()?,
            Some(o) => Sink::files(o, &cpus, args.rotate)?,
            None => Sink::files(std::path::Path::new("."), &cpus, args.rotate)?,
        };
        let stats = cpus.iter().map(|&cpu| CpuStats::new(cpu)).collect();
        let group = group_size(waiter.info().subbuf_size, waiter.info().n_subbufs);
        Ok(Dumper {
            dir,
            waiter,
            chans,
            progress: Progress::new(cpus.len()),
            cpus,
            sink,
            raw: args.raw,
            group,
            max_bytes: args.max_bytes,
            stats,
            total_bytes: 0,
            rounds: 0,
            empty_rounds: 0,
            waits: 0,
        })
    })();
    let mut d = match setup {
        Ok(d) => d,
        Err(e) => {
            report.stopped_by = StopReason::Error;
            return (report, Some(e));
        }
    };
    report.setup_s = start.elapsed().as_secs_f64();
    let res = main_loop(&mut d, args, &stop, start, &mut report);
    // Whatever happened, make what was written durable.
    let sync = d.sink.sync();
    d.progress.finish();
    report.finish(start.elapsed(), &d.stats, d.sink.written_files());
    report.rounds = d.rounds;
    report.empty_rounds = d.empty_rounds;
    report.waits = d.waits;
    report.control_ops =
        d.chans.iter().map(|c| c.control_ops()).sum::<u64>() + d.waiter.control_ops();
    let err = match (res, sync) {
        (Err(e), _) => Some(e),
        (Ok(()), Err(e)) => Some(e),
        (Ok(()), Ok(())) => None,
    };
    if err.is_some() || report.stopped_by == StopReason::Running {
        report.stopped_by = StopReason::Error;
    }
    (report, err)
}

fn main_loop(
    d: &mut Dumper,
    args: &DumpArgs,
    stop: &AtomicBool,
    start: Instant,
    report: &mut Report,
) -> Result<(), Failure> {
    let deadline = args.duration.map(|t| start + t);
    let flush_every = args.flush_interval.filter(|f| !f.is_zero());
    let mut next_flush = flush_every.map(|f| start + f);
    let mut next_cpu_check = start + CPU_CHECK_INTERVAL;
    loop {
        if stop.load(Ordering::Relaxed) {
            report.stopped_by = StopReason::Signal;
            return d.drain_to_produced();
        }
        let now = Instant::now();
        if deadline.is_some_and(|t| now >= t) {
            report.stopped_by = StopReason::Duration;
            return d.drain_to_produced();
        }
        if let (Some(t), Some(f)) = (next_flush, flush_every) {
            if now >= t {
                d.waiter.flush()?;
                next_flush = Some(now + f);
            }
        }
        if now >= next_cpu_check {
            d.add_new_cpus()?;
            next_cpu_check = now + CPU_CHECK_INTERVAL;
        }
        let n = d.round()?;
        d.progress.tick(&d.stats, false);
        if d.max_reached() {
            report.stopped_by = StopReason::MaxBytes;
            return Ok(());
        }
        if n == 0 {
            let now = Instant::now();
            let mut wait = MAX_WAIT;
            for t in [deadline, next_flush].into_iter().flatten() {
                wait = wait.min(t.saturating_duration_since(now));
            }
            d.waits += 1;
            d.waiter.wait_timeout(Some(wait))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::walk_framing;
    use relaymap::Records;

    /// What `walk_framing` must return, computed with the SDK's iterator.
    fn reference(p: &[u8]) -> (usize, u64, bool) {
        let (mut end, mut n) = (0usize, 0u64);
        for r in Records::new(p) {
            match r {
                Ok(rec) => {
                    end = (rec.offset + ((rec.size() + 7) & !7)).min(p.len());
                    n += 1;
                }
                Err(_) => return (end, n, true),
            }
        }
        (end, n, false)
    }

    #[test]
    fn framing_walk_agrees_with_the_sdk() {
        // Valid streams, truncated ones, and garbage (xorshift bytes with
        // small sizes planted so that walks go some way).
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for case in 0..20_000 {
            let len = (rnd() % 600) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
            let mut off = 0;
            while off + 4 <= len && rnd() % 8 != 0 {
                let size = match rnd() % 10 {
                    0 => rnd() % 16,
                    1 => rnd() % 1000,
                    _ => 16 + rnd() % 80,
                } as u32;
                p[off..off + 4].copy_from_slice(&size.to_le_bytes());
                off += ((size as usize + 7) & !7).max(1);
            }
            if case % 3 == 0 {
                let mut v = Vec::new();
                for i in 0..(rnd() % 20) {
                    relaymap::encode_record(&mut v, 0x100, i, &vec![7u8; (rnd() % 50) as usize]);
                }
                p = v;
            }
            assert_eq!(walk_framing(&p), reference(&p), "case {case}: {p:?}");
        }
    }
}
