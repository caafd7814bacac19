//! The dump loop. One [`CpuReader`] per CPU, claimed once at the start
//! (one consumer fd and one mapping per CPU buffer) and used for everything;
//! the [`Channel`] only observes (cursors of every CPU in one call) and
//! flushes. After a wakeup only the CPUs poll reported ready are asked for
//! sub-buffers; their batches are written with `writev` straight from the
//! mapping and handed back only once every byte is written.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use relaymap::merge::Merge;
use relaymap::{Batch, Channel, CpuReader, ReaderOptions, ReadySet, Records, Subbuf};

use crate::error::Failure;
use crate::report::{CpuStats, Progress, Report, StopReason};
use crate::sink::{FileOpts, Sink};
use crate::target::{self, Target};
use crate::DumpArgs;
use crate::{ctf, outdir};

/// Longest single wait, so signals, the deadline and flushes are noticed.
const MAX_WAIT: Duration = Duration::from_millis(200);

/// How often to look for CPUs that came online (one `GET_INFO`).
const CPU_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The line on stderr that says the dumper holds every CPU of the channel
/// and consumes (tests wait for it instead of sleeping).
pub const READY_PREFIX: &str = "relaymap-dump: consuming ";

/// What one sub-buffer contributes in the chosen mode: bytes of the
/// mapping (the sink aligns what follows them in a stream).
struct Plan<'a> {
    data: &'a [u8],
    records: u64,
    corrupt: bool,
}

/// Walks the payload's records with the SDK's one framing walker
/// ([`Records`]): (records, end of the last good record's data, corrupt).
fn walk(p: &[u8]) -> (u64, usize, bool) {
    let (mut end, mut n) = (0usize, 0u64);
    for rec in Records::new(p) {
        match rec {
            Ok(r) => {
                end = r.offset + r.size();
                n += 1;
            }
            Err(_) => return (n, end, true),
        }
    }
    (n, end, false)
}

/// Per-CPU files (a CTF trace): the whole packet as the kernel wrote it
/// (header, events, zero padding to the page). Records mode walks the
/// events to count them and to warn about corrupt framing (the packet is
/// written as it is either way: a CTF reader reports the bad event); raw
/// mode does not look at them.
fn plan_packet<'a>(sb: &Subbuf<'a>, raw: bool) -> Plan<'a> {
    let (records, _, corrupt) = if raw {
        (0, 0, false)
    } else {
        walk(sb.payload())
    };
    Plan {
        data: sb.packet(),
        records,
        corrupt,
    }
}

/// The merged stream, records mode: the payload up to the end of the last
/// good record's data (the whole payload when the framing is sound); raw
/// mode: the payload as it is.
fn plan_stream<'a>(sb: &Subbuf<'a>, raw: bool) -> Plan<'a> {
    let p = sb.payload();
    if raw {
        return Plan {
            data: p,
            records: 0,
            corrupt: false,
        };
    }
    let (records, end, corrupt) = walk(p);
    Plan {
        data: &p[..end],
        records,
        corrupt,
    }
}

fn warn_corrupt(progress: &Progress, cpu: u32, seq: u64) {
    progress.println(&format!(
        "relaymap-dump: cpu{cpu} sub-buffer {seq}: corrupt record framing (in a file: the packet is written as it is; in the stream: the records before it)"
    ));
}

/// The running dumper.
pub struct Dumper {
    target: Target,
    /// The observer: flush, cursors, hotplug, control-op count.
    ch: Channel,
    /// One per CPU, in the order of the sink's files and of `stats`.
    readers: Vec<CpuReader>,
    /// One poll over every reader.
    ready: ReadySet,
    sink: Sink,
    /// The output directory's lock (per-CPU files), held until exit.
    _lock: Option<outdir::DirLock>,
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
    /// Rounds (one per wakeup), rounds that wrote nothing, waits (polls).
    rounds: u64,
    empty_rounds: u64,
    waits: u64,
    /// A reader reported the end of the channel (its creator destroyed it
    /// and that CPU is drained): drain the rest and stop.
    closed: bool,
}

impl std::fmt::Debug for Dumper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cpus: Vec<u32> = self.readers.iter().map(|r| r.cpu()).collect();
        f.debug_struct("Dumper")
            .field("target", &self.target)
            .field("cpus", &cpus)
            .finish()
    }
}

impl Dumper {
    fn budget_left(&self) -> u64 {
        self.max_bytes
            .map_or(u64::MAX, |m| m.saturating_sub(self.total_bytes))
    }

    fn max_reached(&self) -> bool {
        self.budget_left() == 0
    }

    /// Waits until a reader is ready or `timeout` passes; returns the
    /// indices (into `readers`) poll reported ready (none after a timeout
    /// or a signal).
    fn wait(&mut self, timeout: Duration) -> Result<Vec<usize>, Failure> {
        self.waits += 1;
        match self.ready.wait(Some(timeout)) {
            Ok(ready) => Ok(ready),
            // That reader is left out of later waits by the SDK; the other
            // CPUs' data is still there.
            Err(relaymap::Error::ChannelClosed { .. }) => {
                self.closed = true;
                Ok(Vec::new())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One round over the readers `idx`: per-CPU files or the merged
    /// stream. Returns bytes written.
    fn round(&mut self, idx: &[usize]) -> Result<u64, Failure> {
        self.rounds += 1;
        let r = match self.sink {
            Sink::Files { .. } => {
                let mut total = 0;
                for &i in idx {
                    if self.max_reached() {
                        break;
                    }
                    total += self.take_files(i)?;
                }
                Ok(total)
            }
            Sink::Stream { .. } => self.take_merged(idx),
        };
        for &i in idx {
            let l = self.readers[i].loss();
            let st = &mut self.stats[i];
            st.records_dropped = l.records_dropped;
            st.records_rejected = l.records_rejected;
            st.subbufs_lapped = l.subbufs_lapped;
            st.subbufs_corrupt = l.subbufs_corrupt;
        }
        if matches!(r, Ok(0)) {
            self.empty_rounds += 1;
        }
        r
    }

    /// Up to `group` sub-buffers of reader `i` to its file (within the
    /// byte budget). Returns bytes written.
    fn take_files(&mut self, i: usize) -> Result<u64, Failure> {
        let mut budget = self.budget_left();
        let Dumper {
            readers,
            sink,
            stats,
            progress,
            raw,
            group,
            total_bytes,
            ..
        } = self;
        let reader = &mut readers[i];
        let cpu = reader.cpu();
        let batch = reader.acquire(*group)?;
        if batch.is_empty() {
            // Lapped or corrupt sub-buffers only: hand them back.
            batch.release()?;
            return Ok(0);
        }
        // After a restart: sub-buffers already in the trace are handed
        // back without being written again (exactly once).
        let on_disk = sink.next_seq(i).unwrap_or(0);
        let mut plans: Vec<(u64, Plan<'_>)> = Vec::with_capacity(batch.len());
        // The first sub-buffer not taken (--max-bytes), if any.
        let mut cut = None;
        for sb in &batch {
            if sb.seq() < on_disk {
                stats[i].subbufs_skipped += 1;
                continue;
            }
            if budget == 0 {
                cut = Some(sb.seq());
                break;
            }
            let p = plan_packet(&sb, *raw);
            if p.corrupt {
                warn_corrupt(progress, cpu, sb.seq());
            }
            budget = budget.saturating_sub(p.data.len() as u64);
            plans.push((sb.seq(), p));
        }
        let units: Vec<&[u8]> = plans.iter().map(|(_, p)| p.data).collect();
        let res = sink.write_cpu(i, &units);
        let done = match &res {
            Ok(()) => plans.len(),
            Err(p) => p.done,
        };
        let mut total = 0u64;
        let st = &mut stats[i];
        for (_, p) in &plans[..done] {
            st.subbufs += 1;
            st.bytes += p.data.len() as u64;
            st.records += p.records;
            st.corrupt_records += u64::from(p.corrupt);
            total += p.data.len() as u64;
        }
        let first_unwritten = plans.get(done).map(|(seq, _)| *seq);
        if done > 0 {
            sink.wrote_through(i, plans[done - 1].0);
        }
        drop(units);
        drop(plans);
        *total_bytes += total;
        for n in sink.take_notes() {
            progress.println(&n);
        }
        match res {
            Ok(()) => match cut {
                Some(seq) => batch.release_until(seq)?,
                None => batch.release()?,
            },
            Err(partial) => {
                // Never hand back a sub-buffer whose bytes did not all
                // reach the output.
                match first_unwritten {
                    Some(seq) => batch.release_until(seq)?,
                    None => batch.release()?,
                }
                return Err(partial.failure);
            }
        }
        Ok(total)
    }

    /// The batches of the readers `idx`, all held at once, merged into one
    /// stream. Returns bytes written.
    fn take_merged(&mut self, idx: &[usize]) -> Result<u64, Failure> {
        let budget = self.budget_left();
        if budget == 0 || idx.is_empty() {
            return Ok(0);
        }
        let Dumper {
            readers,
            sink,
            stats,
            progress,
            raw,
            total_bytes,
            ..
        } = self;
        let raw = *raw;
        let mut batches: Vec<(usize, Batch<'_>)> = Vec::with_capacity(idx.len());
        let mut err = None;
        for (i, r) in readers.iter_mut().enumerate() {
            if !idx.contains(&i) {
                continue;
            }
            match r.acquire(usize::MAX) {
                Ok(b) => batches.push((i, b)),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = err {
            for (_, b) in batches {
                b.keep();
            }
            return Err(e.into());
        }
        // Sub-buffers taken per batch: all, unless --max-bytes cuts them
        // (in sub-buffer open-time order across CPUs).
        let mut order: Vec<(u64, usize, usize)> = Vec::new();
        for (j, (_, b)) in batches.iter().enumerate() {
            for (k, sb) in b.iter().enumerate() {
                order.push((sb.header().ts_begin_ns, j, k));
            }
        }
        order.sort_unstable();
        let mut take = vec![0usize; batches.len()];
        let mut left = budget;
        for &(_, j, k) in &order {
            if left == 0 {
                break;
            }
            if k == take[j] {
                let n = batches[j]
                    .1
                    .get(k)
                    .map_or(0, |sb| sb.payload().len() as u64);
                left = left.saturating_sub(n);
                take[j] += 1;
            }
        }
        let mut plans: Vec<Vec<(Plan<'_>, u64)>> = Vec::with_capacity(batches.len());
        for (j, (_, b)) in batches.iter().enumerate() {
            let cpu = b.cpu();
            let v: Vec<(Plan<'_>, u64)> = b
                .iter()
                .take(take[j])
                .map(|sb| {
                    let p = plan_stream(&sb, raw);
                    if p.corrupt {
                        warn_corrupt(progress, cpu, sb.seq());
                    }
                    (p, sb.header().ts_begin_ns)
                })
                .collect();
            plans.push(v);
        }
        let bufs: Vec<&[u8]> = if raw {
            let mut v: Vec<(u64, usize, usize)> = Vec::new();
            for (j, ps) in plans.iter().enumerate() {
                for (k, (_, ts)) in ps.iter().enumerate() {
                    v.push((*ts, j, k));
                }
            }
            v.sort_unstable();
            v.iter().map(|&(_, j, k)| plans[j][k].0.data).collect()
        } else {
            merge_records(&plans)
        };
        let res = sink.write_stream(&bufs);
        drop(bufs);
        let mut total = 0u64;
        if res.is_ok() {
            for (j, ps) in plans.iter().enumerate() {
                let st = &mut stats[batches[j].0];
                for (p, _) in ps {
                    st.subbufs += 1;
                    st.bytes += p.data.len() as u64;
                    st.records += p.records;
                    st.corrupt_records += u64::from(p.corrupt);
                    total += p.data.len() as u64;
                }
            }
        }
        let cuts: Vec<Option<u64>> = batches
            .iter()
            .enumerate()
            .map(|(j, (_, b))| b.get(take[j]).map(|sb| sb.seq()))
            .collect();
        drop(plans);
        match res {
            Ok(()) => {
                for ((_, b), cut) in batches.into_iter().zip(cuts) {
                    match cut {
                        Some(seq) => b.release_until(seq)?,
                        None => b.release()?,
                    }
                }
                *total_bytes += total;
                Ok(total)
            }
            Err(f) => {
                // Part of the round may be out; none of it is handed back.
                for (_, b) in batches {
                    b.keep();
                }
                Err(f)
            }
        }
    }

    /// Claims CPUs that came online since the last look (relay created
    /// their buffers): one `GET_INFO` when there are none. A new CPU gets
    /// its reader, its place in the poll set, its output file (or a place
    /// in the merged stream) and counters, after the others.
    fn add_new_cpus(&mut self) -> Result<(), Failure> {
        let fresh = self.ch.refresh_cpus()?;
        for cpu in fresh {
            if self.readers.iter().any(|r| r.cpu() == cpu) {
                continue;
            }
            let r = target::claim(&self.target, &self.ch, cpu)?;
            let dest = self.sink.add_cpu(cpu)?;
            // Same index in the poll set as in `readers`.
            self.ready.push(&r);
            self.readers.push(r);
            self.stats.push(CpuStats::new(cpu));
            self.progress.add_cpu();
            self.progress.println(&format!(
                "relaymap-dump: cpu{cpu} came online, dumping it to {dest}"
            ));
        }
        Ok(())
    }

    /// `produced` (or `consumed`) of every reader's CPU, from one
    /// `GET_CURSORS`.
    fn cursors(&self, produced: bool) -> Result<Vec<u64>, Failure> {
        let all = self.ch.cursors()?;
        self.readers
            .iter()
            .map(|r| {
                all.iter()
                    .find(|c| c.cpu == r.cpu())
                    .map(|c| if produced { c.produced } else { c.consumed })
                    .ok_or_else(|| {
                        Failure::Other(anyhow::anyhow!(
                            "GET_CURSORS reported no cursor for cpu {}",
                            r.cpu()
                        ))
                    })
            })
            .collect()
    }

    /// Flushes, then consumes until every CPU's consumed count reaches what
    /// was produced after the flush. Twice: a sub-buffer that could not be
    /// closed by the first flush (full buffer) is closed by the second.
    fn drain_to_produced(&mut self) -> Result<(), Failure> {
        for _pass in 0..2 {
            self.add_new_cpus()?;
            self.ch.flush(None)?;
            let targets = self.cursors(true)?;
            loop {
                let consumed = self.cursors(false)?;
                if consumed.iter().zip(&targets).all(|(c, t)| c >= t) {
                    break;
                }
                let ready = self.wait(Duration::from_millis(10))?;
                if !ready.is_empty() {
                    self.round(&ready)?;
                }
                self.progress.tick(&self.stats, false);
                if self.max_reached() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// Merges the records of every batch by timestamp with the SDK's one merge
/// ([`Merge`]; ties: lower stream first, each CPU's order kept), and
/// coalesces runs that are contiguous in the mapping into one slice. Each
/// slice starts at a record and ends at a record's data (the sink aligns
/// the next one).
fn merge_records<'a>(plans: &[Vec<(Plan<'a>, u64)>]) -> Vec<&'a [u8]> {
    // One stream per batch: its records, tagged with their sub-buffer.
    let streams = plans.iter().map(|ps| {
        ps.iter().enumerate().flat_map(|(k, (p, _))| {
            // A plan holds whole records only: the walk cannot fail.
            Records::new(p.data)
                .map_while(Result::ok)
                .map(move |r| (k, r))
        })
    });
    let mut out: Vec<&'a [u8]> = Vec::new();
    // The run being built: (stream, sub-buffer, start, end).
    let mut run: Option<(usize, usize, usize, usize)> = None;
    for (j, (k, rec)) in Merge::new(streams) {
        let (start, end) = (rec.offset, rec.offset + rec.size());
        match &mut run {
            Some((rj, rk, _, e))
                if *rj == j && *rk == k && relaymap::abi::record_align(*e) == start =>
            {
                *e = end
            }
            _ => {
                if let Some((rj, rk, s, e)) = run.take() {
                    out.push(&plans[rj][rk].0.data[s..e]);
                }
                run = Some((j, k, start, end));
            }
        }
    }
    if let Some((rj, rk, s, e)) = run {
        out.push(&plans[rj][rk].0.data[s..e]);
    }
    out
}

/// Sub-buffers per write-fsync-release group: about 2 MiB (one
/// fdatasync per group: larger groups cost less CPU per byte), at most a
/// quarter of the buffer (a writer waiting for space gets it back soon),
/// at least one.
fn group_size(subbuf_size: u64, n_subbufs: u64) -> usize {
    let by_bytes = (2 << 20) / subbuf_size.max(1);
    by_bytes.min(n_subbufs / 4).max(1) as usize
}

/// `0-3,6`-style list of CPUs.
pub fn cpu_list(cpus: &[u32]) -> String {
    let mut v = cpus.to_vec();
    v.sort_unstable();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        parts.push(if j == i {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(",")
    }
}

/// Opens the channel, claims every CPU, creates the output.
fn setup(args: &DumpArgs, t: &Target, report: &mut Report) -> Result<Dumper, Failure> {
    let mut ch = target::open(t)?;
    // Pre-fault every buffer once at the start (setup_s) rather than a
    // page at a time while consuming.
    ch.set_reader_options(ReaderOptions::default().populate(true));
    let info = ch.info().clone();
    report.channel = info.name.clone();
    report.subbuf_size = info.subbuf_size;
    report.n_subbufs = info.n_subbufs;
    let to_stdout = args.output.as_deref() == Some(std::path::Path::new("-"));
    let dir = args
        .output
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    // The output directory is checked (and a torn tail cut) before any CPU
    // is claimed: a refused directory costs the channel nothing.
    let start = if to_stdout {
        None
    } else {
        Some(outdir::prepare(&dir, &info, args.force)?)
    };
    let readers = target::claim_all(t, &ch)?;
    let cpus: Vec<u32> = readers.iter().map(|r| r.cpu()).collect();
    let ready = ReadySet::new(&readers)?;
    let mut notes = Vec::new();
    let (sink, lock) = match start {
        None => (
            Sink::stdout(if args.raw {
                1
            } else {
                relaymap::abi::RECORD_ALIGN as u64
            })?,
            None,
        ),
        Some(st) => {
            notes.extend(st.notes);
            report.resumed = st.resumed;
            if st.resumed {
                let from: Vec<String> = st
                    .cpus
                    .iter()
                    .map(|(c, r)| match r.next_seq {
                        Some(s) => format!("cpu{c} from seq {s}"),
                        None => format!("cpu{c} from the start"),
                    })
                    .collect();
                notes.push(format!(
                    "relaymap-dump: continuing the trace in {} (same channel instance {}): {}",
                    dir.display(),
                    ctf::uuid_str(&info.uuid),
                    if from.is_empty() {
                        "no packets yet".into()
                    } else {
                        from.join(", ")
                    }
                ));
            } else {
                let text =
                    ctf::metadata(&info, &ctf::hostname(), ctf::realtime_minus_monotonic_ns());
                outdir::write_metadata(&dir, &text)?;
            }
            let torn: std::collections::BTreeMap<u32, u64> =
                st.cpus.iter().map(|(c, r)| (*c, r.torn_bytes)).collect();
            let opts = FileOpts {
                rotate: args.rotate,
                sync: args.fsync,
                direct: args.direct,
            };
            let mut sink = Sink::files(&dir, &cpus, opts, st.cpus)?;
            notes.extend(sink.take_notes());
            report.torn_bytes_cut = torn.values().sum();
            (sink, st.lock)
        }
    };
    let stats = cpus.iter().map(|&cpu| CpuStats::new(cpu)).collect();
    let progress = Progress::new(cpus.len());
    for n in notes {
        progress.println(&n);
    }
    progress.println(&format!(
        "{READY_PREFIX}{}: cpus {} ({} x {} bytes each), to {}",
        info.name,
        cpu_list(&cpus),
        info.n_subbufs,
        info.subbuf_size,
        report.output
    ));
    Ok(Dumper {
        target: t.clone(),
        group: group_size(info.subbuf_size, info.n_subbufs),
        ch,
        readers,
        ready,
        progress,
        sink,
        raw: args.raw,
        max_bytes: args.max_bytes,
        stats,
        _lock: lock,
        total_bytes: 0,
        rounds: 0,
        empty_rounds: 0,
        waits: 0,
        closed: false,
    })
}

/// Runs the dumper; returns the report (also on failure, with the error).
pub fn run(args: &DumpArgs, stop: Arc<AtomicBool>) -> (Report, Option<Failure>) {
    let start = Instant::now();
    let mut report = Report::new(args);
    let t = Target::parse(args.channel.as_deref().expect("checked by main"));
    let mut d = match setup(args, &t, &mut report) {
        Ok(d) => d,
        Err(e) => {
            report.stopped_by = StopReason::Error;
            return (report, Some(e));
        }
    };
    report.setup_s = start.elapsed().as_secs_f64();
    let (u, sy) = crate::report::cpu_user_sys_s();
    report.setup_cpu_s = u + sy;
    let res = main_loop(&mut d, args, &stop, start, &mut report);
    // Whatever happened, make what was written durable.
    let sync = d.sink.sync();
    d.progress.finish();
    report.finish(start.elapsed(), &d.stats, d.sink.written_files());
    report.rounds = d.rounds;
    report.empty_rounds = d.empty_rounds;
    report.waits = d.waits;
    report.control_ops = d.ch.control_ops();
    (report.direct_writes, report.buffered_writes, report.fsyncs) = d.sink.write_counts();
    report.control_ops_per_subbuf = if report.subbufs > 0 {
        report.control_ops as f64 / report.subbufs as f64
    } else {
        0.0
    };
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
                d.ch.flush(None)?;
                next_flush = Some(now + f);
            }
        }
        if now >= next_cpu_check {
            d.add_new_cpus()?;
            next_cpu_check = now + CPU_CHECK_INTERVAL;
        }
        let mut wait = MAX_WAIT;
        for t in [deadline, next_flush].into_iter().flatten() {
            wait = wait.min(t.saturating_duration_since(now));
        }
        let ready = d.wait(wait)?;
        if !ready.is_empty() {
            d.round(&ready)?;
        }
        if d.closed {
            eprintln!(
                "relaymap-dump: channel {} was destroyed by its creator: draining what is left",
                d.ch.name()
            );
            report.stopped_by = StopReason::Destroyed;
            return d.drain_to_produced();
        }
        // At most 4 times a second; also while idle (rates fall to 0).
        d.progress.tick(&d.stats, false);
        if d.max_reached() {
            report.stopped_by = StopReason::MaxBytes;
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list(&[0, 1, 2, 3]), "0-3");
        assert_eq!(cpu_list(&[3, 0, 1, 6]), "0-1,3,6");
        assert_eq!(cpu_list(&[5]), "5");
        assert_eq!(cpu_list(&[]), "none");
    }

    #[test]
    fn groups() {
        assert_eq!(group_size(256 << 10, 8), 2);
        assert_eq!(group_size(64 << 10, 8), 2);
        assert_eq!(group_size(4096, 64), 16);
        assert_eq!(group_size(1 << 20, 2), 1);
        assert_eq!(group_size(1 << 20, 32), 2);
        assert_eq!(group_size(64 << 10, 256), 32);
    }
}
