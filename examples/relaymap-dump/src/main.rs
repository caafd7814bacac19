//! `relaymap-dump`: writes the finished sub-buffers of a relaymap channel to
//! per-CPU files or one merged stream, straight from the mapping (`writev`,
//! no userspace copy). See README.md for usage, output format and exit
//! codes.

mod dump;
mod error;
mod readcopy;
mod report;
mod sink;
mod verify;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::error::{code, Failure};

/// Dump a relaymap channel: the payload of every finished sub-buffer, written
/// straight from the mapping.
#[derive(Debug, Parser)]
#[command(
    name = "relaymap-dump",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Exit codes: 0 ok, 1 other error, 2 usage, 3 not a relaymap channel, \
                  4 permission denied, 5 output not writable, 6 disk full (consumption \
                  stopped), 7 verification failed."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    dump: DumpArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Verify a dump of load generator records: framing, checksums, per-CPU
    /// sequence continuity, and (with --loadgen-status) the counts.
    Verify(verify::VerifyArgs),
    /// Baseline for comparison: copy the channel with read() into a buffer,
    /// then write(). NOT safe with concurrent writers on SMP (relay's read
    /// path races with sub-buffer switches): for throughput figures only.
    ReadCopy(readcopy::ReadCopyArgs),
}

/// Options of the dump itself.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The channel directory, e.g. /sys/kernel/debug/relaymap/demo.
    /// (Required unless a subcommand is given.)
    pub channel: Option<PathBuf>,
    /// Output directory for cpuN.out files (created if missing), or `-` for
    /// one stream on stdout merged across CPUs. Default: the current directory.
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
    /// cpuN.out, then cpuN.out.1, cpuN.out.2, ... (oldest first). Files
    /// are cut between sub-buffers (a file holds at least one).
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub rotate: Option<u64>,
    /// Write the run's statistics as JSON to FILE at exit.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Write payloads as they are, without validating record framing (for
    /// channels of raw writers). Merged output is then ordered by sub-buffer
    /// open time instead of record time.
    #[arg(long)]
    pub raw: bool,
}

/// `10s`, `500ms`, `2m`, `1h`, `1.5` (seconds).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?} (examples: 10s, 500ms, 2m)"))?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// `4096`, `64K`, `100M`, `2G` (binary multiples; a trailing `B`/`iB` is accepted).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 1 << 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 1 << 30),
        Some('t' | 'T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let v: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad size {s:?} (examples: 4096, 64K, 100M, 2G)"))?;
    match v.checked_mul(mult) {
        Some(0) => Err("size must be > 0".into()),
        Some(n) => Ok(n),
        None => Err(format!("size {s:?} too large")),
    }
}

fn dump_main(args: DumpArgs) -> i32 {
    if args.rotate.is_some() && args.output.as_deref() == Some(std::path::Path::new("-")) {
        eprintln!("relaymap-dump: --rotate needs an output directory, not `-o -`");
        return code::USAGE;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while draining exits at once (status 130).
        let r = signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)));
        if let Err(e) = r {
            eprintln!("relaymap-dump: cannot install signal handlers: {e}");
            return code::OTHER;
        }
    }
    let (report, err) = dump::run(&args, stop);
    let mut rc = code::OK;
    // A failure while opening the channel or the output: the error alone
    // says it; otherwise the summary of what was done comes first.
    if !report.cpus.is_empty() {
        eprintln!("{}", report.summary());
    }
    if let Some(path) = &args.stats_json {
        let json = serde_json::to_string_pretty(&report).expect("report serializes");
        if let Err(e) = std::fs::write(path, json + "\n") {
            eprintln!("relaymap-dump: cannot write {}: {e}", path.display());
            rc = code::OUTPUT;
        }
    }
    if let Some(e) = err {
        eprintln!("relaymap-dump: error: {}", error_chain(&e));
        rc = e.exit_code();
    }
    rc
}

/// The error and its sources, `: `-joined.
fn error_chain(e: &Failure) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    // anyhow's Display already has the top error; walk the rest.
    if let Failure::Other(a) = e {
        s = format!("{a:#}");
        src = None;
    }
    while let Some(x) = src {
        let m = x.to_string();
        if !s.contains(&m) {
            s += &format!(": {m}");
        }
        src = x.source();
    }
    s
}

fn main() {
    let cli = Cli::parse();
    let rc = match cli.cmd {
        Some(Cmd::Verify(a)) => verify::main(a),
        Some(Cmd::ReadCopy(a)) => readcopy::main(a),
        None if cli.dump.channel.is_none() => {
            use clap::CommandFactory;
            Cli::command()
                .error(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    "the channel directory is required, e.g. relaymap-dump /sys/kernel/debug/relaymap/demo -o out",
                )
                .exit()
        }
        None => dump_main(cli.dump),
    };
    std::process::exit(rc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("x").is_err());
        assert!(parse_size("0").is_err());
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
    }
}
