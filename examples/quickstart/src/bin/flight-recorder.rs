//! Snapshots an overwrite-mode channel (a flight recorder): writes the last
//! sub-buffers of every CPU, oldest first, to a file of records.
//!
//! `insmod relaymap.ko overwrite=1`, let writers run, then
//! `flight-recorder demo snapshot.bin`.

use std::fs::File;
use std::io::Write;
use std::process::ExitCode;

use relaymap::{Channel, Mode};

const USAGE: &str = "usage: flight-recorder [CHANNEL [OUT]]
Writes the newest sub-buffers of every CPU of an overwrite-mode relaymap
channel to OUT (default snapshot.bin) as one stream of records.
CHANNEL: a channel name (default: demo), opened through /dev/relaymap,
or a debugfs channel directory such as /sys/kernel/debug/relaymap/demo.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") || args.len() > 2 {
        println!("{USAGE}");
        return if args.len() > 2 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let chan = args.first().map_or("demo", String::as_str);
    let out = args.get(1).map_or("snapshot.bin", String::as_str);
    match snapshot(chan, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flight-recorder: {e}");
            ExitCode::FAILURE
        }
    }
}

fn snapshot(chan: &str, out_path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let ch = if chan.contains('/') {
        Channel::open_path(chan)?
    } else {
        Channel::open(chan)?
    };
    if ch.mode() != Mode::Overwrite {
        eprintln!("note: {chan} is not in overwrite mode; this consumes what is buffered");
    }
    // Close the sub-buffers being written so the snapshot is up to date.
    ch.flush(None)?;
    let mut out = File::create(out_path).map_err(|e| format!("{out_path}: {e}"))?;
    let (mut total, mut subbufs, mut lapped) = (0u64, 0usize, 0u64);
    for mut reader in ch.readers()? {
        // The newest n_subbufs - 1 sub-buffers, each a validated copy
        // (overwrite mode re-checks the header after copying).
        let batch = reader.batch()?;
        for sb in batch.iter().filter(|sb| !sb.payload().is_empty()) {
            // A payload ends at its last record's data: zeros up to the
            // 8-byte record alignment go before the next one (the file ends
            // at a record's data, like a payload).
            out.write_all(&[0u8; 8][..(8 - total % 8) as usize % 8])?;
            total = total.next_multiple_of(8);
            out.write_all(sb.payload())?;
            total += sb.payload().len() as u64;
        }
        let (n, bytes, older) = (batch.len(), batch.payload_bytes(), batch.lapped());
        batch.release()?;
        eprintln!(
            "cpu{}: {n} sub-buffers ({bytes} bytes), {older} older ones overwritten",
            reader.cpu()
        );
        subbufs += n;
        lapped += reader.loss().subbufs_lapped;
    }
    out.sync_all()?;
    println!("{out_path}: {total} bytes from {subbufs} sub-buffers ({lapped} sub-buffers overwritten before the snapshot)");
    Ok(())
}
