//! Real concurrency on the host: producer threads write through the
//! simulator while consumers wait and drain (no timing assertions).

use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use relaymap::{CpuReader, LoadgenRecord, Mode, ReadySet, Subbuf};
use relaymap_sim::{SimChannel, SimGeometry, WriteOutcome};

const RECORD: usize = 64;
const PAGE: u64 = 4096;

fn writer(sim: Arc<SimChannel>, cpu: u32, count: u64, lossless: bool) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut dropped = 0;
        for seq in 0..count {
            loop {
                let w = if lossless {
                    sim.try_write_loadgen(cpu, seq, RECORD).unwrap()
                } else {
                    sim.write_loadgen(cpu, seq, RECORD).unwrap()
                };
                match w {
                    WriteOutcome::Written => break,
                    // Refused, not counted: retry (lossless).
                    WriteOutcome::Full => thread::yield_now(),
                    WriteOutcome::Dropped => {
                        dropped += 1;
                        break;
                    }
                    WriteOutcome::Rejected => panic!("64-byte records fit"),
                }
            }
        }
        dropped
    })
}

fn check(sb: Subbuf<'_>, seen: &mut Vec<u64>) {
    for r in sb.records() {
        let r = r.unwrap();
        let lg = LoadgenRecord::parse(r.data).expect("checksum and fill verify");
        assert_eq!(lg.cpu, sb.cpu());
        seen.push(lg.seq);
    }
}

/// One batch of `r`, checked; returns the sub-buffers delivered.
fn drain(r: &mut CpuReader, seen: &mut Vec<u64>) -> u64 {
    let b = r.batch().unwrap();
    for sb in &b {
        check(sb, seen);
    }
    b.len() as u64
}

/// Flushes, then drains until everything produced was handed back.
fn drain_and_stop(sim: &SimChannel, r: &mut CpuReader, seen: &mut Vec<u64>) -> u64 {
    sim.flush(Some(r.cpu())).unwrap();
    let mut n = 0;
    loop {
        n += drain(r, seen);
        if r.is_drained().unwrap() {
            return n;
        }
    }
}

fn geo(subbuf: u64, n: u64) -> SimGeometry {
    SimGeometry {
        subbuf_size: subbuf,
        n_subbufs: n,
        cpus: 2,
    }
}

/// Lossless writers (retry while full) on two CPUs, one consumer waiting
/// on a ReadySet and draining only the ready CPUs: every record arrives
/// once, in order, verified.
#[test]
fn lossless_order_under_concurrency() {
    let sim = Arc::new(SimChannel::create_temp(geo(PAGE, 4), Mode::NoOverwrite).unwrap());
    sim.set_publish_delay(200);
    let ch = sim.open().unwrap();
    let mut readers = ch.readers().unwrap();
    let mut ready = ReadySet::new(&readers).unwrap();
    let n = 50_000;
    let w: Vec<_> = (0..2).map(|c| writer(sim.clone(), c, n, true)).collect();
    let mut seen = [Vec::new(), Vec::new()];
    while !w.iter().all(|h| h.is_finished()) {
        for i in ready.wait(Some(Duration::from_millis(50))).unwrap() {
            drain(&mut readers[i], &mut seen[i]);
        }
    }
    for h in w {
        assert_eq!(h.join().unwrap(), 0);
    }
    for (i, r) in readers.iter_mut().enumerate() {
        drain_and_stop(&sim, r, &mut seen[i]);
        let loss = r.loss();
        assert_eq!(
            loss.records_dropped, 0,
            "refused try_write attempts are not counted"
        );
        assert_eq!((loss.subbufs_lapped, loss.subbufs_corrupt), (0, 0));
    }
    for s in &seen {
        assert_eq!(s.len() as u64, n);
        assert!(s.iter().enumerate().all(|(i, v)| *v == i as u64));
    }
}

/// Each CPU consumed by its own thread with its own reader (readers are
/// Send): lossless and in order.
#[test]
fn readers_on_their_own_threads() {
    let sim = Arc::new(SimChannel::create_temp(geo(PAGE, 4), Mode::NoOverwrite).unwrap());
    let ch = sim.open().unwrap();
    let n = 30_000;
    let stop = Arc::new(AtomicBool::new(false));
    let consumers: Vec<_> = ch
        .readers()
        .unwrap()
        .into_iter()
        .map(|mut r| {
            let (sim, stop) = (sim.clone(), stop.clone());
            thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Acquire) {
                    if r.wait(Some(Duration::from_millis(20))).unwrap() {
                        drain(&mut r, &mut seen);
                    }
                }
                drain_and_stop(&sim, &mut r, &mut seen);
                (r.cpu(), seen)
            })
        })
        .collect();
    let w: Vec<_> = (0..2).map(|c| writer(sim.clone(), c, n, true)).collect();
    for h in w {
        h.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    for c in consumers {
        let (_, seen) = c.join().unwrap();
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
    }
}

/// Drop mode: records dropped by the producer are exactly the gaps seen by
/// the consumer, and exactly the kernel-side count.
#[test]
fn drop_accounting_under_concurrency() {
    let sim = Arc::new(SimChannel::create_temp(geo(PAGE, 2), Mode::NoOverwrite).unwrap());
    let ch = sim.open().unwrap();
    let mut readers = ch.readers().unwrap();
    let mut ready = ReadySet::new(&readers).unwrap();
    let n = 100_000;
    let w: Vec<_> = (0..2).map(|c| writer(sim.clone(), c, n, false)).collect();
    let mut seen = [Vec::new(), Vec::new()];
    while !w.iter().all(|h| h.is_finished()) {
        for i in ready.wait(Some(Duration::from_millis(20))).unwrap() {
            drain(&mut readers[i], &mut seen[i]);
        }
    }
    let dropped: Vec<u64> = w.into_iter().map(|h| h.join().unwrap()).collect();
    for (i, r) in readers.iter_mut().enumerate() {
        drain_and_stop(&sim, r, &mut seen[i]);
        let s = &seen[i];
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(n - s.len() as u64, dropped[i], "cpu {i}: gaps == drops");
        assert_eq!(r.loss().records_dropped, dropped[i]);
    }
}

/// Overwrite mode at full speed: the consumer never hands out a torn copy
/// (every record verifies), and delivered + lapped == produced.
#[test]
fn overwrite_never_tears() {
    let sim = Arc::new(SimChannel::create_temp(geo(PAGE, 3), Mode::Overwrite).unwrap());
    let ch = sim.open().unwrap();
    let mut readers = ch.readers().unwrap();
    let n = 100_000;
    let w: Vec<_> = (0..2).map(|c| writer(sim.clone(), c, n, false)).collect();
    let mut seen = [Vec::new(), Vec::new()];
    let mut delivered = 0;
    while !w.iter().all(|h| h.is_finished()) {
        for (i, r) in readers.iter_mut().enumerate() {
            delivered += drain(r, &mut seen[i]);
        }
    }
    for h in w {
        h.join().unwrap();
    }
    let mut lapped = 0;
    for (i, r) in readers.iter_mut().enumerate() {
        delivered += drain_and_stop(&sim, r, &mut seen[i]);
        lapped += r.loss().subbufs_lapped;
        assert!(seen[i].windows(2).all(|w| w[0] < w[1]));
    }
    let produced = sim.cursor(0).unwrap().produced + sim.cursor(1).unwrap().produced;
    assert_eq!(delivered + lapped, produced);
}

/// The simulator reproduces relay's order: relay's own count runs ahead
/// of the committed header (a consumer trusting it would read a stale
/// header), while GET_CURSOR's `produced` never does.
#[test]
fn relay_order_window_is_reproduced() {
    let sim = Arc::new(SimChannel::create_temp(geo(PAGE, 64), Mode::NoOverwrite).unwrap());
    sim.set_publish_delay(50_000);
    let f = std::fs::File::open(sim.dir().join("cpu0")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Writes until the window was seen (bounded, so a broken simulator
    // fails instead of hanging).
    let w = {
        let (sim, stop) = (sim.clone(), stop.clone());
        thread::spawn(move || {
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed) && seq < 2_000_000 {
                sim.write_loadgen(0, seq, RECORD).unwrap();
                seq += 1;
            }
        })
    };
    let mut stale = 0u64;
    let ch = sim.open().unwrap();
    let mut r = ch.reader(0).unwrap();
    let commit_off = relaymap::abi::off::COMMIT as u64;
    while !w.is_finished() {
        let rp = sim.relay_produced(0).unwrap();
        let p = sim.cursor(0).unwrap().produced;
        if rp > p {
            let s = rp - 1;
            let mut b = [0u8; 8];
            f.read_exact_at(&mut b, (s % 64) * PAGE + commit_off)
                .unwrap();
            if u64::from_ne_bytes(b) != s + 1 {
                stale += 1;
                if stale >= 3 {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
        // The SDK path never sees an uncommitted header.
        let b = r.batch().unwrap();
        assert!(b.corrupt().is_empty());
    }
    w.join().unwrap();
    assert!(
        stale > 0,
        "the window between relay's count and the commit was never observed"
    );
    assert_eq!(r.loss().subbufs_corrupt, 0);
}
