//! `relaymap`: what relaymap channels exist and how their CPUs stand.
//! Observers only (they never claim a CPU). See README.md.

use clap::{Parser, Subcommand};

use relaymap_dump::admin;
use relaymap_dump::error::code;
use relaymap_dump::target::Target;

/// Inspect relaymap channels without consuming them.
#[derive(Debug, Parser)]
#[command(
    name = "relaymap",
    version,
    after_help = "Exit codes: 0 ok, 1 other error, 2 usage, 3 no such channel (module not \
                  loaded, unknown name, not a channel dir), 4 permission denied (not in the \
                  device's group, lockdown)."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// The channels of the loaded module: geometry, mode, CPUs, and the
    /// module's ABI version.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Per CPU of one channel: sub-buffers produced, consumed and pending,
    /// records dropped and rejected, sub-buffers lapped, and the consumer
    /// holding it (pid, comm). One GET_CURSORS.
    Stat {
        /// A channel name (through /dev/relaymap), or a channel directory
        /// (debugfs, or a simulated one).
        channel: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::List { json } => admin::list().map(|r| {
            if json {
                serde_json::to_string_pretty(&r).expect("serializes") + "\n"
            } else {
                r.text()
            }
        }),
        Cmd::Stat { channel, json } => admin::stat(&Target::parse(&channel)).map(|r| {
            if json {
                serde_json::to_string_pretty(&r).expect("serializes") + "\n"
            } else {
                r.text()
            }
        }),
    };
    match res {
        Ok(out) => {
            print!("{out}");
            std::process::exit(code::OK);
        }
        Err(e) => {
            eprintln!("relaymap: {}", e.chain());
            std::process::exit(e.exit_code());
        }
    }
}
