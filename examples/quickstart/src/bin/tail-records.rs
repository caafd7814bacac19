//! Prints every record of a channel as it arrives, like `tail -f`.
//!
//! `tail-records /sys/kernel/debug/relaymap/demo` (as root). Ctrl-C stops.

use std::time::Duration;

use relaymap::{abi, Channel, LoadgenRecord};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/sys/kernel/debug/relaymap/demo".into());
    let mut ch = Channel::builder(&dir)
        .poll_timeout(Some(Duration::from_secs(1)))
        .open()?;
    let info = ch.info().clone();
    eprintln!(
        "{}: {} CPUs, {} x {} bytes per CPU",
        info.name,
        info.cpus.len(),
        info.n_subbufs,
        info.subbuf_size
    );
    loop {
        if !ch.wait()? {
            // Timeout: make partly filled sub-buffers visible.
            ch.flush()?;
            continue;
        }
        // One batch per CPU, records merged across CPUs by timestamp.
        ch.drain_merged(|cpu, rec| {
            let what = match rec.type_ {
                abi::RELAYMAP_REC_PRINTF => String::from_utf8_lossy(rec.data).into_owned(),
                abi::RELAYMAP_REC_LOADGEN => match LoadgenRecord::parse(rec.data) {
                    Some(lg) => format!("loadgen seq {} ({} fill bytes ok)", lg.seq, lg.fill_len),
                    None => "loadgen record, BAD CHECKSUM".into(),
                },
                t => format!("type {t:#x}, {} bytes", rec.data.len()),
            };
            println!("{:>20} cpu{cpu} {what}", rec.ts_ns);
        })?;
        let loss = ch.loss();
        if loss.records_dropped > 0 {
            eprintln!("({} records dropped so far)", loss.records_dropped);
        }
    }
}
