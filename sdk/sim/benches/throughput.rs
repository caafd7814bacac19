//! Host bench of the SDK's consumer path over the simulated producer.
//!
//! `cargo bench -p relaymap-sim --bench throughput`. Measures, over the
//! same buffer:
//! * `limit`: a plain sum over the whole mapped buffer (memory-read limit);
//! * `drain`: the SDK's zero-copy `batch()`, summing every payload;
//! * `pread_copy`: `pread(2)` of each sub-buffer from the page-cached
//!   simulated file into a buffer, then the same sum (what a copying,
//!   read()-style consumer pays; the kernel's relay `read()` is another
//!   path, measured only in the VM);
//! * `control calls per sub-buffer`: calls the reader made through the
//!   backend seam (`GET_CURSOR`, `PUT_CONSUMED`); on the kernel backend
//!   each is one ioctl syscall, here each is a shared-memory operation;
//! * `records`: records/s of the `Records` walker over framed records of
//!   16..1024 data bytes, summing every data byte.
//!
//! The last line is `ratios: ...`. No assertion: this is a measurement.

use std::fs::File;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use relaymap::Mode;
use relaymap_sim::{SimChannel, SimGeometry};

/// Bytes of buffer per geometry.
const TOTAL: u64 = 256 << 20;
/// Bytes of buffer for the records bench.
const RECORDS_TOTAL: u64 = 64 << 20;
const REPS: usize = 7;
const HEADER: usize = relaymap::abi::SUBBUF_HEADER_SIZE;

/// Sum of the u64 words of `b` (8 lanes); the tail bytes one by one.
#[inline(never)]
fn sum_u64(b: &[u8]) -> u64 {
    let mut acc = [0u64; 8];
    let mut chunks = b.chunks_exact(64);
    for c in &mut chunks {
        for (i, a) in acc.iter_mut().enumerate() {
            let w = u64::from_ne_bytes(c[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            *a = a.wrapping_add(w);
        }
    }
    let mut s = acc.iter().fold(0u64, |x, y| x.wrapping_add(*y));
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(8);
    for w in &mut words {
        s = s.wrapping_add(u64::from_ne_bytes(w.try_into().expect("8 bytes")));
    }
    for b in words.remainder() {
        s = s.wrapping_add(u64::from(*b));
    }
    s
}

fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

struct Figures {
    limit: f64,
    drain: f64,
    pread_copy: f64,
    calls_per_subbuf: f64,
}

fn measure(subbuf: u64) -> Figures {
    let n = TOTAL / subbuf;
    let geo = SimGeometry {
        subbuf_size: subbuf,
        n_subbufs: n,
        cpus: 1,
    };
    let sim = SimChannel::create_temp(geo, Mode::NoOverwrite).expect("sim channel");
    let payload = subbuf as usize - HEADER;
    let chunk: Vec<u8> = (0..payload).map(|i| (i * 7) as u8).collect();
    let mut ch = sim.open().expect("open consumer");
    ch.set_reader_options(relaymap::ReaderOptions::default().populate(true));
    let mut r = ch.reader(0).expect("reader");
    let file = File::open(sim.dir().join("cpu0")).expect("open cpu0");
    // SAFETY: nobody writes the file while `limit_map` is read below (the
    // sim producer only writes during the fill, between measurements).
    let limit_map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }.expect("mmap");

    let mut best = Figures {
        limit: 0.0,
        drain: 0.0,
        pread_copy: 0.0,
        calls_per_subbuf: f64::MAX,
    };
    let mut rbuf = vec![0u8; subbuf as usize];
    let mut check = 0u64;
    for _ in 0..REPS {
        for _ in 0..n {
            sim.write_raw(0, &chunk).expect("sim write");
        }
        sim.flush(Some(0)).expect("sim flush");

        let t = Instant::now();
        check ^= black_box(sum_u64(&limit_map));
        best.limit = best.limit.max(gbps(limit_map.len() as u64, t.elapsed()));

        let t = Instant::now();
        let mut bytes = 0;
        for s in 0..n {
            file.read_exact_at(&mut rbuf, s * subbuf).expect("pread");
            check ^= black_box(sum_u64(&rbuf[HEADER..]));
            bytes += payload as u64;
        }
        best.pread_copy = best.pread_copy.max(gbps(bytes, t.elapsed()));

        let calls = r.control_ops();
        let t = Instant::now();
        let batch = r.batch().expect("batch");
        let mut bytes = 0;
        for sb in &batch {
            check ^= black_box(sum_u64(&sb));
            bytes += sb.len() as u64;
        }
        let subbufs = batch.len() as u64;
        batch.release().expect("release");
        best.drain = best.drain.max(gbps(bytes, t.elapsed()));
        assert_eq!(subbufs, n, "drained the whole buffer");
        let calls = r.control_ops() - calls;
        best.calls_per_subbuf = best.calls_per_subbuf.min(calls as f64 / subbufs as f64);
    }
    black_box(check);
    println!(
        "subbuf {:>4} KiB x {:>4}: limit {:6.2} GB/s  drain {:6.2} GB/s  pread_copy {:6.2} GB/s  control calls/subbuf {:.5}",
        subbuf >> 10,
        n,
        best.limit,
        best.drain,
        best.pread_copy,
        best.calls_per_subbuf
    );
    best
}

/// Records/s and GB/s (of payload walked, headers included) of the
/// `Records` walker over records of `data` bytes.
fn records(data: usize, limit: f64) -> (f64, f64) {
    let subbuf = 1u64 << 20;
    let n = RECORDS_TOTAL / subbuf;
    let geo = SimGeometry {
        subbuf_size: subbuf,
        n_subbufs: n,
        cpus: 1,
    };
    let sim = SimChannel::create_temp(geo, Mode::NoOverwrite).expect("sim channel");
    let ch = sim.open().expect("open consumer");
    let mut r = ch.reader(0).expect("reader");
    let body: Vec<u8> = (0..data).map(|i| i as u8).collect();
    let mut best_rps = 0f64;
    let mut best_gbps = 0f64;
    let mut check = 0u64;
    for _ in 0..REPS {
        let per = (subbuf as usize - HEADER) / relaymap::abi::record_align(16 + data);
        for _ in 0..n {
            for _ in 0..per {
                sim.write_record_ts(0, 0x100, 1, &body).expect("write");
            }
        }
        sim.flush(Some(0)).expect("flush");
        let t = Instant::now();
        let batch = r.batch().expect("batch");
        let (mut recs, mut bytes) = (0u64, 0u64);
        for sb in &batch {
            bytes += sb.len() as u64;
            for rec in sb.records() {
                let rec = rec.expect("framing");
                check ^= black_box(sum_u64(rec.data));
                recs += 1;
            }
        }
        batch.release().expect("release");
        let d = t.elapsed();
        best_rps = best_rps.max(recs as f64 / d.as_secs_f64());
        best_gbps = best_gbps.max(gbps(bytes, d));
    }
    black_box(check);
    println!(
        "records of {data:>4} B: {:8.2} M records/s  {:6.2} GB/s walked ({:.2} of the read limit)",
        best_rps / 1e6,
        best_gbps,
        best_gbps / limit
    );
    (best_rps, best_gbps)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores available")
}

fn main() {
    // `cargo bench` passes --bench; ignore arguments.
    println!("machine: {}", machine());
    println!(
        "buffer: {} MiB per geometry, best of {REPS}, single consumer thread, simulated producer",
        TOTAL >> 20
    );
    let m1 = measure(1 << 20);
    let k64 = measure(64 << 10);
    let mut rec = Vec::new();
    for size in [16, 64, 256, 1024] {
        rec.push((size, records(size, m1.limit)));
    }
    let mut line = format!(
        "ratios: drain_vs_limit_1m={:.2} drain_vs_limit_64k={:.2} drain_vs_pread_copy_1m={:.2} control_calls_per_subbuf_64k={:.4}",
        m1.drain / m1.limit,
        k64.drain / k64.limit,
        m1.drain / m1.pread_copy,
        k64.calls_per_subbuf
    );
    for (size, (rps, g)) in rec {
        line += &format!(
            " records_{size}b_mps={:.1} records_{size}b_vs_limit={:.2}",
            rps / 1e6,
            g / m1.limit
        );
    }
    println!("{line}");
}
