//! Snapshots an overwrite-mode channel (a flight recorder): writes the last
//! sub-buffers of every CPU, oldest first, to a file.
//!
//! `insmod relaymap.ko overwrite=1`, let writers run, then
//! `flight-recorder /sys/kernel/debug/relaymap/demo snapshot.bin`.

use std::fs::File;
use std::io::Write;

use relaymap::{Channel, Mode};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| "/sys/kernel/debug/relaymap/demo".into());
    let out_path = args.next().unwrap_or_else(|| "snapshot.bin".into());
    let mut ch = Channel::open(&dir)?;
    if ch.mode() != Mode::Overwrite {
        eprintln!("note: {dir} is not in overwrite mode; this consumes what is buffered");
    }
    // Close the sub-buffers being written so the snapshot is up to date.
    ch.flush()?;
    let mut out = File::create(&out_path)?;
    let (mut total, mut subbufs) = (0u64, 0usize);
    for cpu in ch.cpus() {
        // The batch holds the newest n_subbufs - 1 sub-buffers, each one a
        // validated copy (overwrite mode re-checks the header after copying).
        let batch = ch.batch(cpu)?;
        let bytes = batch.payload_bytes();
        for sb in batch.iter() {
            out.write_all(sb.payload())?;
        }
        eprintln!(
            "cpu{cpu}: {} sub-buffers ({bytes} bytes), {} older ones overwritten",
            batch.len(),
            batch.lapped()
        );
        total += bytes;
        subbufs += batch.len();
        batch.release()?;
    }
    out.sync_all()?;
    let loss = ch.loss();
    println!(
        "{out_path}: {total} bytes from {subbufs} sub-buffers ({} sub-buffers overwritten before the snapshot)",
        loss.subbufs_lapped
    );
    Ok(())
}
