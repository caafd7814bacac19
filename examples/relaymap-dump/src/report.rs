//! Counters, the live progress line, the final summary and `--stats-json`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::DumpArgs;

/// What one CPU delivered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuStats {
    /// The CPU.
    pub cpu: u32,
    /// Bytes written to the output.
    pub bytes: u64,
    /// Sub-buffers written.
    pub subbufs: u64,
    /// Records written (records mode; 0 with `--raw`).
    pub records: u64,
    /// Sub-buffers whose record framing was corrupt (their good prefix was written).
    pub corrupt_records: u64,
    /// Records the kernel dropped on this CPU (buffer full), cumulative since the channel's reset.
    pub records_dropped: u64,
    /// Writes the kernel refused on this CPU as larger than a record may be, cumulative.
    pub records_rejected: u64,
    /// Sub-buffers overwritten before they were read (overwrite mode).
    pub subbufs_lapped: u64,
    /// Sub-buffers skipped because their header was corrupt.
    pub subbufs_corrupt: u64,
    /// Sub-buffers handed back without writing after a restart: their seq
    /// was already in the trace (written, but not yet handed back, when the
    /// previous dumper stopped).
    pub subbufs_skipped: u64,
    /// Bytes of a torn tail cut off this CPU's last file at the start.
    pub torn_bytes_cut: u64,
    /// Output files of this CPU, oldest first (empty with `-o -`).
    pub files: Vec<PathBuf>,
}

impl CpuStats {
    /// Zero counters for `cpu`.
    pub fn new(cpu: u32) -> CpuStats {
        CpuStats {
            cpu,
            ..CpuStats::default()
        }
    }
}

/// Why the dump ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// Still running (never in a final report).
    Running,
    /// SIGINT or SIGTERM.
    Signal,
    /// `--duration` elapsed.
    Duration,
    /// `--max-bytes` reached.
    MaxBytes,
    /// The channel's creator destroyed it; everything it produced was
    /// drained.
    Destroyed,
    /// An error.
    Error,
}

/// The whole run (`--stats-json` writes this).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Channel name (from GET_INFO).
    pub channel: String,
    /// The channel as given on the command line: a name or a directory.
    pub channel_arg: String,
    /// "name" (through /dev/relaymap) or "path" (a debugfs or simulated dir).
    pub opened_by: &'static str,
    /// "records" or "raw".
    pub mode: &'static str,
    /// Output directory, or "-".
    pub output: String,
    /// Sub-buffer size.
    pub subbuf_size: u64,
    /// Sub-buffers per CPU.
    pub n_subbufs: u64,
    /// Why it stopped.
    pub stopped_by: StopReason,
    /// Seconds from start to the end of the drain.
    pub elapsed_s: f64,
    /// Of which opening the channel, claiming and mapping every CPU (with
    /// pre-faulting: one page fault per 4 KiB of buffer, once) and creating
    /// the output.
    pub setup_s: f64,
    /// Totals.
    pub bytes: u64,
    /// Total sub-buffers.
    pub subbufs: u64,
    /// Total records (records mode).
    pub records: u64,
    /// Total records dropped by the kernel.
    pub records_dropped: u64,
    /// Total writes the kernel refused as too large.
    pub records_rejected: u64,
    /// Total sub-buffers lapped.
    pub subbufs_lapped: u64,
    /// Total sub-buffers with a corrupt header.
    pub subbufs_corrupt: u64,
    /// Total sub-buffers with corrupt record framing.
    pub corrupt_records: u64,
    /// Total sub-buffers skipped as already on disk (restart).
    pub subbufs_skipped: u64,
    /// Total torn-tail bytes cut at the start (restart).
    pub torn_bytes_cut: u64,
    /// The dump continued an existing trace of the same channel instance.
    pub resumed: bool,
    /// `--direct` was asked for / O_DIRECT was used for the packets.
    pub direct_requested: bool,
    /// Packets written with O_DIRECT.
    pub direct_writes: u64,
    /// Packets written through the page cache.
    pub buffered_writes: u64,
    /// fdatasync calls (`--fsync batch`: one per CPU batch).
    pub fsyncs: u64,
    /// bytes / elapsed.
    pub bytes_per_s: f64,
    /// records / elapsed.
    pub records_per_s: f64,
    /// CPU time this process used (user + system), seconds.
    pub cpu_time_s: f64,
    /// Of which before consuming began: opening, claiming, mapping and
    /// pre-faulting every buffer (`MAP_POPULATE`: one fault per page of
    /// buffer, once), the output directory.
    pub setup_cpu_s: f64,
    /// Of which in userspace.
    pub cpu_user_s: f64,
    /// bytes per CPU-second of this process: the consumer's cost,
    /// independent of how fast the producer is.
    pub bytes_per_cpu_s: f64,
    /// Rounds of the consume loop (one per wakeup: a batch of each CPU
    /// poll reported ready).
    pub rounds: u64,
    /// Rounds that found nothing to write.
    pub empty_rounds: u64,
    /// Waits for data (one poll(2) over every CPU's consumer fd each).
    pub waits: u64,
    /// Control ioctls issued by the channel and its readers (GET_CURSOR,
    /// GET_CURSORS, PUT_CONSUMED, FLUSH, GET_INFO, ...), as the SDK counts
    /// them (`Channel::control_ops`).
    pub control_ops: u64,
    /// control_ops / subbufs.
    pub control_ops_per_subbuf: f64,
    /// Minor page faults of this process.
    pub page_faults: u64,
    /// Context switches of this process.
    pub context_switches: u64,
    /// Per CPU.
    pub cpus: Vec<CpuStats>,
}

/// Page faults (minor) and context switches (voluntary + involuntary) so far.
pub fn faults_and_switches() -> (u64, u64) {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0, 0);
    }
    (ru.ru_minflt as u64, (ru.ru_nvcsw + ru.ru_nivcsw) as u64)
}

/// (user, system) CPU time of this process so far, in seconds.
pub fn cpu_user_sys_s() -> (f64, f64) {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0.0, 0.0);
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

impl Report {
    /// An empty report for these arguments.
    pub fn new(args: &DumpArgs) -> Report {
        Report {
            channel: String::new(),
            channel_arg: args.channel.clone().unwrap_or_default(),
            opened_by: crate::target::Target::parse(args.channel.as_deref().unwrap_or("")).kind(),
            mode: if args.raw { "raw" } else { "records" },
            output: args
                .output
                .as_ref()
                .map_or_else(|| ".".into(), |p| p.display().to_string()),
            subbuf_size: 0,
            n_subbufs: 0,
            stopped_by: StopReason::Running,
            elapsed_s: 0.0,
            setup_s: 0.0,
            bytes: 0,
            subbufs: 0,
            records: 0,
            records_dropped: 0,
            records_rejected: 0,
            subbufs_lapped: 0,
            subbufs_corrupt: 0,
            corrupt_records: 0,
            subbufs_skipped: 0,
            torn_bytes_cut: 0,
            resumed: false,
            direct_requested: args.direct,
            direct_writes: 0,
            buffered_writes: 0,
            fsyncs: 0,
            bytes_per_s: 0.0,
            records_per_s: 0.0,
            cpu_time_s: 0.0,
            setup_cpu_s: 0.0,
            cpu_user_s: 0.0,
            bytes_per_cpu_s: 0.0,
            rounds: 0,
            empty_rounds: 0,
            waits: 0,
            control_ops: 0,
            control_ops_per_subbuf: 0.0,
            page_faults: 0,
            context_switches: 0,
            cpus: Vec::new(),
        }
    }

    /// Fills in the totals.
    pub fn finish(&mut self, elapsed: Duration, stats: &[CpuStats], files: Vec<Vec<PathBuf>>) {
        self.elapsed_s = elapsed.as_secs_f64();
        self.cpus = stats.to_vec();
        for (c, f) in self.cpus.iter_mut().zip(files) {
            c.files = f;
        }
        for c in &self.cpus {
            self.bytes += c.bytes;
            self.subbufs += c.subbufs;
            self.records += c.records;
            self.records_dropped += c.records_dropped;
            self.records_rejected += c.records_rejected;
            self.subbufs_lapped += c.subbufs_lapped;
            self.subbufs_corrupt += c.subbufs_corrupt;
            self.corrupt_records += c.corrupt_records;
            self.subbufs_skipped += c.subbufs_skipped;
            self.torn_bytes_cut += c.torn_bytes_cut;
        }
        let s = self.elapsed_s.max(1e-9);
        self.bytes_per_s = self.bytes as f64 / s;
        self.records_per_s = self.records as f64 / s;
        let (user, sys) = cpu_user_sys_s();
        self.cpu_time_s = user + sys;
        self.cpu_user_s = user;
        (self.page_faults, self.context_switches) = faults_and_switches();
        self.bytes_per_cpu_s = self.bytes as f64 / self.cpu_time_s.max(1e-6);
    }

    /// The final summary (stderr).
    pub fn summary(&self) -> String {
        let mut s = format!(
            "relaymap-dump: {} ({}), {:.2} s, stopped by {}: {} in {} sub-buffers ({}/s)",
            self.channel,
            self.mode,
            self.elapsed_s,
            match self.stopped_by {
                StopReason::Running => "nothing",
                StopReason::Signal => "signal",
                StopReason::Duration => "--duration",
                StopReason::MaxBytes => "--max-bytes",
                StopReason::Destroyed => "the channel's destruction (drained)",
                StopReason::Error => "error",
            },
            human(self.bytes),
            self.subbufs,
            human(self.bytes_per_s as u64),
        );
        if self.mode == "records" {
            s += &format!(
                ", {} records ({:.0} records/s)",
                self.records, self.records_per_s
            );
        }
        s += &format!(
            ", {:.2} CPU-s ({:.2} user, {}/CPU-s)",
            self.cpu_time_s,
            self.cpu_user_s,
            human(self.bytes_per_cpu_s as u64)
        );
        s += &format!(
            ", {} dropped by the kernel, {} rejected as too large, {} lapped, {} corrupt sub-buffers, {} with corrupt records",
            self.records_dropped,
            self.records_rejected,
            self.subbufs_lapped,
            self.subbufs_corrupt,
            self.corrupt_records
        );
        if self.resumed || self.subbufs_skipped > 0 || self.torn_bytes_cut > 0 {
            s += &format!(
                ", continued the trace: {} sub-buffers already on disk skipped, {} torn bytes cut",
                self.subbufs_skipped, self.torn_bytes_cut
            );
        }
        if self.output != "-" {
            s += &format!(
                ", {} packets with O_DIRECT, {} through the page cache, {} fdatasyncs",
                self.direct_writes, self.buffered_writes, self.fsyncs
            );
        }
        s += &format!(
            ", {} control ioctls ({:.2} per sub-buffer), {} waits",
            self.control_ops, self.control_ops_per_subbuf, self.waits
        );
        for c in &self.cpus {
            s += &format!(
                "\n  cpu{}: {} in {} sub-buffers, {} records, {} dropped{}",
                c.cpu,
                human(c.bytes),
                c.subbufs,
                c.records,
                c.records_dropped,
                match c.files.len() {
                    0 => String::new(),
                    1 => format!(" -> {}", c.files[0].display()),
                    n => format!(" -> {} .. ({} files)", c.files[0].display(), n),
                }
            );
        }
        s
    }
}

/// `1.5 MB`-style size (decimal units).
pub fn human(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b} B")
    }
}

/// The live progress line (only when stderr is a terminal).
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    last: Instant,
    prev: Vec<u64>,
}

impl Progress {
    /// A progress line for `ncpus` CPUs, hidden off a terminal.
    pub fn new(ncpus: usize) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            b.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b
        });
        Progress {
            bar,
            last: Instant::now(),
            prev: vec![0; ncpus],
        }
    }

    /// Updates the line (at most 4 times a second).
    pub fn tick(&mut self, stats: &[CpuStats], force: bool) {
        let Some(bar) = &self.bar else { return };
        let dt = self.last.elapsed();
        if !force && dt < Duration::from_millis(250) {
            return;
        }
        self.last = Instant::now();
        let mut parts = Vec::new();
        let mut total = 0;
        for (c, prev) in stats.iter().zip(self.prev.iter_mut()) {
            let rate = (c.bytes - *prev) as f64 / dt.as_secs_f64().max(1e-9);
            *prev = c.bytes;
            total += c.bytes;
            parts.push(format!(
                "cpu{} {}/s {} sb {} drops",
                c.cpu,
                human(rate as u64),
                c.subbufs,
                c.records_dropped
            ));
        }
        bar.set_message(format!("{} total | {}", human(total), parts.join(" | ")));
        bar.tick();
    }

    /// Adds a CPU after the others (one that came online).
    pub fn add_cpu(&mut self) {
        self.prev.push(0);
    }

    /// Prints a line above the progress line (or plainly, off a terminal).
    pub fn println(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    /// Removes the progress line.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
