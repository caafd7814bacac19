//! Throughput of the zero-copy drain against the memory-read limit and a
//! read()-based consumer, over the same buffer (filled by the sim backend).
//!
//! `cargo bench -p relaymap --bench throughput` (the `sim` feature comes
//! from the package's dev-dependency on itself). Prints one line per
//! measurement and, last:
//! `ratios: drain_vs_limit_1m=X drain_vs_limit_64k=Y drain_vs_read_1m=Z syscalls_per_subbuf_64k=W`.
//! No assertion: this is a measurement.

use std::fs::File;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use relaymap::sim::{SimChannel, SimGeometry};
use relaymap::Mode;

/// Bytes of buffer per geometry.
const TOTAL: u64 = 256 << 20;
const REPS: usize = 7;

/// Sum of the u64 words of `b` (8 lanes so it vectorises); the tail bytes
/// are added one by one.
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
    read: f64,
    syscalls_per_subbuf: f64,
}

fn fill(sim: &SimChannel, n: u64, chunk: &[u8]) {
    for _ in 0..n {
        sim.write_raw(0, chunk).expect("sim write");
    }
    sim.flush(Some(0)).expect("sim flush");
}

fn measure(subbuf: u64) -> Figures {
    let n = TOTAL / subbuf;
    let geo = SimGeometry {
        subbuf_size: subbuf,
        n_subbufs: n,
        cpus: 1,
    };
    let sim = SimChannel::create_temp(geo, Mode::NoOverwrite).expect("sim channel");
    let payload = (subbuf - 64) as usize;
    let chunk: Vec<u8> = (0..payload).map(|i| (i * 7) as u8).collect();
    let mut ch = sim
        .consumer_builder()
        .populate(true)
        .open()
        .expect("open consumer");
    let path = sim.dir().join("cpu0");
    let file = File::open(&path).expect("open cpu0");
    // SAFETY: nobody writes the file while `limit_map` is read below (the
    // sim producer only writes during `fill`, between measurements).
    let limit_map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }.expect("mmap");

    let mut best = Figures {
        limit: 0.0,
        drain: 0.0,
        read: 0.0,
        syscalls_per_subbuf: f64::MAX,
    };
    let mut rbuf = vec![0u8; subbuf as usize];
    let mut check = 0u64;
    for _ in 0..REPS {
        fill(&sim, n, &chunk);

        // 1. The memory-read limit: a plain sum over the whole buffer.
        let t = Instant::now();
        check ^= black_box(sum_u64(&limit_map));
        best.limit = best.limit.max(gbps(limit_map.len() as u64, t.elapsed()));

        // 2. A read() consumer: pread each sub-buffer, sum its payload.
        let t = Instant::now();
        let mut bytes = 0;
        for s in 0..n {
            file.read_exact_at(&mut rbuf, s * subbuf).expect("pread");
            check ^= black_box(sum_u64(&rbuf[64..]));
            bytes += payload as u64;
        }
        best.read = best.read.max(gbps(bytes, t.elapsed()));

        // 3. The SDK's zero-copy drain: one batch, sum of every payload.
        let ops = ch.control_ops();
        let t = Instant::now();
        let batch = ch.batch(0).expect("batch");
        let mut bytes = 0;
        let mut subbufs = 0;
        for sb in batch.iter() {
            check ^= black_box(sum_u64(sb.payload()));
            bytes += sb.payload().len() as u64;
            subbufs += 1;
        }
        batch.release().expect("release");
        best.drain = best.drain.max(gbps(bytes, t.elapsed()));
        assert_eq!(subbufs, n, "drained the whole buffer");
        let ops = ch.control_ops() - ops;
        best.syscalls_per_subbuf = best.syscalls_per_subbuf.min(ops as f64 / subbufs as f64);
    }
    black_box(check);
    println!(
        "subbuf {:>4} KiB x {:>4}: limit {:6.2} GB/s  drain {:6.2} GB/s  read() {:6.2} GB/s  control ops/subbuf {:.5}",
        subbuf >> 10,
        n,
        best.limit,
        best.drain,
        best.read,
        best.syscalls_per_subbuf
    );
    best
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
        "buffer: {} MiB per geometry, best of {REPS}, single consumer thread",
        TOTAL >> 20
    );
    let m1 = measure(1 << 20);
    let k64 = measure(64 << 10);
    println!(
        "ratios: drain_vs_limit_1m={:.2} drain_vs_limit_64k={:.2} drain_vs_read_1m={:.2} syscalls_per_subbuf_64k={:.4}",
        m1.drain / m1.limit,
        k64.drain / k64.limit,
        m1.drain / m1.read,
        k64.syscalls_per_subbuf
    );
}
