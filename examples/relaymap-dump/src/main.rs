//! `relaymap-dump`: writes the finished sub-buffers of a relaymap channel,
//! whole, as a CTF 1.8 trace (per-CPU stream files + metadata), straight
//! from the mapping (`pwritev` or O_DIRECT, no userspace copy), exactly once
//! across crashes and restarts; or the records merged into one stream on
//! stdout. See README.md for usage, output format and exit codes.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{CommandFactory, Parser, Subcommand};

use relaymap_dump::error::code;
use relaymap_dump::{dump, readcopy, verify, DumpArgs};

/// Dump a relaymap channel as a CTF trace: every finished sub-buffer, whole,
/// written straight from the mapping; restarts continue the trace exactly once.
#[derive(Debug, Parser)]
#[command(
    name = "relaymap-dump",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "CHANNEL is a channel name (opened through /dev/relaymap) or a directory \
                  (anything with a `/`): a debugfs channel dir, or a simulated one.\n\n\
                  Exit codes: 0 ok, 1 other error, 2 usage, 3 no such channel (module not \
                  loaded, unknown name, not a channel dir), 4 permission denied (not in the \
                  device's group, lockdown), 5 output not writable, 6 disk full (consumption \
                  stopped), 7 verification failed, 8 a CPU is held by another consumer, 9 the \
                  output directory holds something else (refused, unchanged)."
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
        eprintln!("relaymap-dump: {}", e.chain());
        rc = e.exit_code();
    }
    rc
}

fn main() {
    let cli = Cli::parse();
    let rc = match cli.cmd {
        Some(Cmd::Verify(a)) => verify::main(a),
        Some(Cmd::ReadCopy(a)) => readcopy::main(a),
        None if cli.dump.channel.is_none() => Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "the channel is required, e.g. relaymap-dump demo -o out (`relaymap list` shows the channels)",
            )
            .exit(),
        None => dump_main(cli.dump),
    };
    std::process::exit(rc);
}
