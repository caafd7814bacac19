//! Prints every record of a channel as it arrives, like `tail -f`.
//!
//! `tail-records [CHANNEL]`: a channel name (default `demo`, opened through
//! `/dev/relaymap`) or a debugfs channel directory. Ctrl-C stops.

use std::process::ExitCode;
use std::time::Duration;

use relaymap::merge::Merge;
use relaymap::{abi, Batch, Channel, LoadgenRecord, ReadySet};

const USAGE: &str = "usage: tail-records [CHANNEL]
Prints every record of a relaymap channel as it arrives (Ctrl-C stops).
CHANNEL: a channel name (default: demo), opened through /dev/relaymap,
or a debugfs channel directory such as /sys/kernel/debug/relaymap/demo.";

fn main() -> ExitCode {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "demo".into());
    if arg == "-h" || arg == "--help" {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match tail(&arg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tail-records: {arg}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn tail(arg: &str) -> relaymap::Result<()> {
    let ch = if arg.contains('/') {
        Channel::open_path(arg)?
    } else {
        Channel::open(arg)?
    };
    // Claim every CPU (one consumer per CPU: a second tail-records gets Busy).
    let mut readers = ch.readers()?;
    let mut ready = ReadySet::new(&readers)?;
    let info = ch.info();
    eprintln!(
        "{}: consuming {} CPUs, {} x {} bytes each",
        info.name,
        readers.len(),
        info.n_subbufs,
        info.subbuf_size
    );
    loop {
        let idx: Vec<usize> = ready
            .wait(Some(Duration::from_secs(1)))?
            .into_iter()
            .collect();
        if idx.is_empty() {
            ch.flush(None)?; // quiet: make partly filled sub-buffers visible
            continue;
        }
        // The batches of the ready CPUs, held at once; records merged by time.
        let mut batches: Vec<Batch<'_>> = Vec::new();
        for (i, r) in readers.iter_mut().enumerate() {
            if idx.contains(&i) {
                batches.push(r.batch()?);
            }
        }
        let streams = batches.iter().map(|b| b.iter().flat_map(|sb| sb.records()));
        for (i, rec) in Merge::new(streams) {
            let rec = rec?; // corrupt framing is an error, not a panic
            let what = match u32::from(rec.type_) {
                abi::RELAYMAP_REC_PRINTF => String::from_utf8_lossy(rec.data).into_owned(),
                abi::RELAYMAP_REC_LOADGEN => match LoadgenRecord::parse(rec.data) {
                    Some(lg) => format!("loadgen seq {} ({} fill bytes ok)", lg.seq, lg.fill_len),
                    None => "loadgen record, BAD CHECKSUM".into(),
                },
                t => format!("type {t:#x}, {} bytes", rec.data.len()),
            };
            println!("{:>20} cpu{} {what}", rec.ts_ns, batches[i].cpu());
        }
        drop(batches); // hands the sub-buffers back (one PUT_CONSUMED each)
        let dropped: u64 = readers.iter().map(|r| r.loss().records_dropped).sum();
        if dropped > 0 {
            eprintln!("({dropped} records dropped so far)");
        }
    }
}
