//! The code behind the two binaries of this package:
//!
//! * `relaymap-dump`: writes the finished sub-buffers of a relaymap channel
//!   whole, as a CTF trace ([`ctf`], [`outdir`]: restarts continue it
//!   exactly once), or one merged record stream, straight from the mapping
//!   (`pwritev` or O_DIRECT, no userspace copy); `verify` and `read-copy`.
//! * `relaymap`: `list` and `stat`, observers that never claim a CPU.
//!
//! See README.md for usage, output format and exit codes. Channels are
//! opened by name through `/dev/relaymap` ([`target`]); a path argument
//! opens a debugfs channel dir, or (feature `sim`) a simulated one.

pub mod admin;
pub mod args;
pub mod ctf;
pub mod dump;
pub mod error;
pub mod outdir;
pub mod readcopy;
pub mod report;
pub mod sink;
pub mod target;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::args::{parse_duration, parse_size};

/// Options of the dump itself.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The channel: a name (opened through /dev/relaymap, e.g. `demo`), or a
    /// directory (a debugfs channel dir, e.g. /sys/kernel/debug/relaymap/demo,
    /// or a simulated channel dir). Required unless a subcommand is given.
    pub channel: Option<String>,
    /// Output directory: a CTF trace (metadata + cpuN.out; created if
    /// missing; an existing trace of the same channel instance is
    /// continued), or `-` for one record stream on stdout merged across
    /// CPUs. Default: the current directory.
    #[arg(short = 'o', long = "output", value_name = "DIR|-")]
    pub output: Option<PathBuf>,
    /// Stop after this long (e.g. 10s, 500ms, 2m; a plain number is seconds),
    /// then flush and drain like on SIGINT.
    #[arg(long, value_parser = parse_duration, value_name = "TIME")]
    pub duration: Option<Duration>,
    /// Stop once this many bytes are written (whole sub-buffers; K/M/G suffixes, binary).
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub max_bytes: Option<u64>,
    /// FLUSH the channel this often so partly filled sub-buffers reach the
    /// output when rates are low; 0 disables.
    #[arg(long, value_parser = parse_duration, default_value = "1s", value_name = "TIME")]
    pub flush_interval: Option<Duration>,
    /// Start a new file per CPU when the current one would exceed SIZE:
    /// cpuN.out, then cpuN.out.1, cpuN.out.2, ... (oldest first), all in
    /// the same trace. Files are cut between packets (a file holds at
    /// least one).
    #[arg(long, visible_alias = "rotate-size", value_parser = parse_size, value_name = "SIZE")]
    pub rotate: Option<u64>,
    /// Write into a directory that holds something else (another channel
    /// instance's trace, other files): a new trace is started there; its
    /// old metadata and cpuN.out* files are deleted (and listed), other
    /// files are kept. Without it such a directory is refused (exit 9).
    #[arg(long)]
    pub force: bool,
    /// Write the packets with O_DIRECT straight from the mapping (no page
    /// cache copy). Where the file system refuses it (tmpfs) the dumper
    /// says so and writes through the page cache.
    #[arg(long)]
    pub direct: bool,
    /// When written packets are made durable: `batch` = fdatasync after
    /// every batch of a CPU, before it is handed back (survives a power
    /// loss); `exit` = only at exit and at rotations (exactly once across
    /// crashes of the dumper, not of the machine).
    #[arg(long, value_enum, default_value = "batch", value_name = "WHEN")]
    pub fsync: crate::sink::SyncPolicy,
    /// Write the run's statistics as JSON to FILE at exit.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Do not walk the records (for channels of raw writers): per-CPU files
    /// still get whole packets, but records are not counted or checked;
    /// `-o -` writes payloads as they are, ordered by sub-buffer open time
    /// instead of record time.
    #[arg(long)]
    pub raw: bool,
}
