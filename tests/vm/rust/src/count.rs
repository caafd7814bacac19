//! `count`: a consumer for any writer's records (tests 35-38, kmod
//! engineer): claims every CPU of `--channel`, consumes until the file
//! `--stop-file` exists (the test creates it once its writer is done) or
//! the channel was destroyed and every CPU drained, then flushes and
//! drains, and reports per CPU how many records of each (event_id, type)
//! arrived and the readers' loss. With `--out DIR` it also writes each
//! CPU's records to `DIR/cpuN.out` in the layout of a `relaymap-dump`
//! per-CPU file (header + data, the next record 8-byte aligned), so the
//! same checker verifies what the SDK and the dumper delivered.
//!
//! Output, one line each:
//! `count: cpu C event E type T records N`, `count: cpu C records N`,
//! `count: cpu C loss records_dropped N records_rejected N subbufs_lapped N subbufs_corrupt N`,
//! `count: total records N`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use relaymap::{Channel, CpuReader, ReadySet};

use crate::consume::QUIET;
use crate::util::{e2s, ensure, sdk, Opts, TestResult};

/// Per CPU: records by (event_id, type), and the copy of its stream.
struct Sink {
    counts: BTreeMap<u32, BTreeMap<(u16, u16), u64>>,
    files: BTreeMap<u32, BufWriter<File>>,
    pos: BTreeMap<u32, u64>,
}

impl Sink {
    fn take(&mut self, r: &mut CpuReader) -> Result<usize, String> {
        let cpu = r.cpu();
        let b = sdk(r.acquire(usize::MAX))?;
        let n = b.len();
        for sb in &b {
            for rec in sb.records() {
                let rec = sdk(rec)?;
                *self
                    .counts
                    .entry(cpu)
                    .or_default()
                    .entry((rec.event_id, rec.type_))
                    .or_default() += 1;
                if let Some(f) = self.files.get_mut(&cpu) {
                    let pos = self.pos.entry(cpu).or_default();
                    // Zero padding up to the record's aligned start.
                    let pad = (8 - (*pos % 8)) % 8;
                    let len = u32::try_from(rec.data.len()).map_err(e2s)?;
                    let mut hdr = Vec::with_capacity(16 + pad as usize);
                    hdr.resize(pad as usize, 0u8);
                    hdr.extend_from_slice(&rec.ts_ns.to_ne_bytes());
                    hdr.extend_from_slice(&rec.event_id.to_ne_bytes());
                    hdr.extend_from_slice(&rec.type_.to_ne_bytes());
                    hdr.extend_from_slice(&len.to_ne_bytes());
                    f.write_all(&hdr).map_err(e2s)?;
                    f.write_all(rec.data).map_err(e2s)?;
                    *pos += hdr.len() as u64 + rec.data.len() as u64;
                }
            }
        }
        ensure!(
            b.corrupt().is_empty(),
            "cpu {cpu}: corrupt sub-buffers {:?}",
            b.corrupt()
        );
        sdk(b.release())?;
        Ok(n)
    }
}

/// Destroyed by its creator and nothing left on any CPU.
fn closed_and_drained(readers: &mut [CpuReader]) -> Result<bool, String> {
    for r in readers.iter_mut() {
        let c = sdk(r.cursor())?;
        if !c.destroyed || c.produced != c.consumed {
            return Ok(false);
        }
    }
    Ok(true)
}

pub fn count(o: &Opts) -> TestResult {
    let stop_file = o.stop_file.as_ref().map(PathBuf::from);
    let out = o.out.as_ref().map(PathBuf::from);
    let ch = sdk(Channel::open(&o.channel))?;
    let mut readers = sdk(ch.readers())?;
    let mut sink = Sink {
        counts: BTreeMap::new(),
        files: BTreeMap::new(),
        pos: BTreeMap::new(),
    };
    if let Some(dir) = &out {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for r in &readers {
            let p = dir.join(format!("cpu{}.out", r.cpu()));
            let f = File::create(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            sink.files.insert(r.cpu(), BufWriter::new(f));
        }
    }
    let mut ready = sdk(ReadySet::new(&readers))?;
    println!("count: consuming {}: {} CPUs", o.channel, readers.len());
    let stop = |p: &Option<PathBuf>| p.as_deref().is_some_and(Path::exists);
    let mut why = "stop file";
    loop {
        o.check_deadline("while consuming")?;
        if stop(&stop_file) {
            break;
        }
        let idx = sdk(ready.wait(Some(QUIET)))?;
        if idx.is_empty() {
            // A timeout, or POLLHUP only: destroyed and drained.
            if closed_and_drained(&mut readers)? {
                why = "channel destroyed and drained";
                break;
            }
            continue;
        }
        for i in idx {
            sink.take(&mut readers[i])?;
        }
    }
    // The rest: a flush (also works after a destroy), then every reader to its end.
    sdk(ch.flush(None))?;
    for r in readers.iter_mut() {
        while sink.take(r)? > 0 {}
        ensure!(
            sdk(r.is_drained())?,
            "cpu {}: not drained at the end",
            r.cpu()
        );
    }
    for f in sink.files.values_mut() {
        f.flush().map_err(e2s)?;
    }
    println!("count: stopped: {why}");
    let mut total = 0;
    for r in &readers {
        let cpu = r.cpu();
        let by_type = sink.counts.get(&cpu).cloned().unwrap_or_default();
        let n: u64 = by_type.values().sum();
        for ((ev, ty), k) in &by_type {
            println!("count: cpu {cpu} event {ev} type {ty:#x} records {k}");
        }
        println!("count: cpu {cpu} records {n}");
        let l = r.loss();
        println!(
            "count: cpu {cpu} loss records_dropped {} records_rejected {} subbufs_lapped {} subbufs_corrupt {}",
            l.records_dropped, l.records_rejected, l.subbufs_lapped, l.subbufs_corrupt
        );
        total += n;
    }
    println!("count: total records {total}");
    Ok(())
}
