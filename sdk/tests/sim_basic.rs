//! Host tests of the SDK against the simulated producer.
#![cfg(feature = "sim")]

use std::time::Duration;

use relaymap::sim::{Inject, SimChannel, SimGeometry, WriteOutcome};
use relaymap::{Channel, Error, LoadgenRecord, Mode};

fn geo(subbuf: u64, n: u64, cpus: u32) -> SimGeometry {
    SimGeometry {
        subbuf_size: subbuf,
        n_subbufs: n,
        cpus,
    }
}

/// Collects loadgen seqs per CPU from a drain.
fn drain_seqs(ch: &mut Channel, out: &mut [Vec<u64>]) -> relaymap::DrainStats {
    ch.drain(|sb| {
        for r in sb.records() {
            let r = r.expect("framing");
            let lg = LoadgenRecord::parse(r.data).expect("checksum");
            assert_eq!(lg.cpu, sb.cpu());
            out[sb.cpu() as usize].push(lg.seq);
        }
    })
    .unwrap()
}

#[test]
fn lossless_roundtrip() {
    let sim = SimChannel::create_temp(geo(4096, 4, 2), Mode::NoOverwrite).unwrap();
    let mut ch = sim.consumer().unwrap();
    assert_eq!(ch.cpus(), vec![0, 1]);
    let mut seqs = vec![Vec::new(), Vec::new()];
    let mut next = [0u64; 2];
    for _ in 0..50 {
        for cpu in 0..2u32 {
            for _ in 0..37 {
                // Lossless: a full buffer refuses without counting; retry
                // the same seq after the next drain.
                match sim.try_write_loadgen(cpu, next[cpu as usize], 96).unwrap() {
                    WriteOutcome::Written => next[cpu as usize] += 1,
                    WriteOutcome::Full => break,
                    WriteOutcome::Dropped => unreachable!("try_write never counts a drop"),
                }
            }
        }
        drain_seqs(&mut ch, &mut seqs);
    }
    sim.flush(None).unwrap();
    ch.drain_and_stop(|_| {}).unwrap();
    // drain_and_stop above consumed without recording: re-run the check on
    // what was recorded before, which must be a gap-free prefix.
    for per_cpu in &seqs {
        for (i, s) in per_cpu.iter().enumerate() {
            assert_eq!(*s, i as u64);
        }
    }
    assert_eq!(ch.loss().records_dropped, 0);
    assert!(ch.is_drained().unwrap());
}

#[test]
fn drops_are_counted() {
    let sim = SimChannel::create_temp(geo(1024, 2, 1), Mode::NoOverwrite).unwrap();
    let mut ch = sim.consumer().unwrap();
    let mut dropped = 0;
    for seq in 0..200 {
        if sim.write_loadgen(0, seq, 64).unwrap() == WriteOutcome::Dropped {
            dropped += 1;
        }
    }
    assert!(dropped > 0);
    let mut seqs = vec![Vec::new()];
    drain_seqs(&mut ch, &mut seqs);
    assert_eq!(ch.loss().records_dropped, dropped);
}

/// A full buffer: `try_write_*` refuses without counting (like
/// `relaymap_try_write()`), `write_*` drops and counts (like
/// `relaymap_write()`); the refused record is written once space frees.
#[test]
fn try_write_refuses_without_counting() {
    let sim = SimChannel::create_temp(geo(1024, 2, 1), Mode::NoOverwrite).unwrap();
    let mut ch = sim.consumer().unwrap();
    let mut seq = 0;
    while sim.try_write_loadgen(0, seq, 64).unwrap() == WriteOutcome::Written {
        seq += 1;
    }
    assert!(seq > 0);
    // Full now: every try variant refuses, none counts.
    assert_eq!(
        sim.try_write_loadgen(0, seq, 64).unwrap(),
        WriteOutcome::Full
    );
    assert_eq!(
        sim.try_write_record(0, relaymap::abi::RELAYMAP_REC_USER, b"x")
            .unwrap(),
        WriteOutcome::Full
    );
    assert_eq!(sim.try_write_raw(0, &[0; 8]).unwrap(), WriteOutcome::Full);
    assert_eq!(sim.stats(Some(0)).unwrap().records_dropped, 0);
    assert_eq!(sim.cursor(0).unwrap().records_dropped, 0);
    assert_eq!(ch.loss().records_dropped, 0);
    // The counting write drops and counts.
    assert_eq!(
        sim.write_loadgen(0, seq, 64).unwrap(),
        WriteOutcome::Dropped
    );
    assert_eq!(sim.stats(Some(0)).unwrap().records_dropped, 1);
    // The consumer frees space: the refused seq goes in (lossless).
    let mut seqs = vec![Vec::new()];
    drain_seqs(&mut ch, &mut seqs);
    assert_eq!(
        sim.try_write_loadgen(0, seq, 64).unwrap(),
        WriteOutcome::Written
    );
    sim.flush(None).unwrap();
    drain_seqs(&mut ch, &mut seqs);
    assert_eq!(seqs[0], (0..=seq).collect::<Vec<_>>());
    assert_eq!(ch.loss().records_dropped, 1);
}

#[test]
fn overwrite_laps_are_counted() {
    let sim = SimChannel::create_temp(geo(1024, 4, 1), Mode::Overwrite).unwrap();
    let mut ch = sim.consumer().unwrap();
    for seq in 0..1000 {
        assert_eq!(
            sim.write_loadgen(0, seq, 64).unwrap(),
            WriteOutcome::Written
        );
    }
    let mut seqs = vec![Vec::new()];
    let st = drain_seqs(&mut ch, &mut seqs);
    assert_eq!(st.subbufs, 3, "only n_subbufs - 1 can be valid");
    let produced = sim.cursor(0).unwrap().produced;
    assert_eq!(st.lapped + st.subbufs, produced);
    assert_eq!(ch.loss().subbufs_lapped, st.lapped);
    // Records delivered are consecutive at the end.
    let s = &seqs[0];
    assert!(s.windows(2).all(|w| w[1] == w[0] + 1));
}

#[test]
fn corrupt_headers_are_skipped_and_counted() {
    let sim = SimChannel::create_temp(geo(1024, 8, 1), Mode::NoOverwrite).unwrap();
    let mut ch = sim.consumer().unwrap();
    sim.write_loadgen(0, 0, 64).unwrap();
    sim.inject(0, Inject::BadMagic).unwrap();
    sim.flush(Some(0)).unwrap();
    sim.write_loadgen(0, 1, 64).unwrap();
    sim.inject(0, Inject::PayloadBeyondSubbuf).unwrap();
    sim.flush(Some(0)).unwrap();
    sim.write_loadgen(0, 2, 64).unwrap();
    sim.inject(0, Inject::SeqBackwards).unwrap();
    sim.flush(Some(0)).unwrap();
    sim.write_loadgen(0, 3, 64).unwrap();
    sim.flush(Some(0)).unwrap();
    let b = ch.batch(0).unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b.corrupt().len(), 3);
    assert_eq!(b.seqs(), 0..4);
    drop(b);
    assert_eq!(ch.loss().subbufs_corrupt, 3);
    assert!(ch.is_drained().unwrap());
}

#[test]
fn abi_mismatch_names_both_versions() {
    let sim = SimChannel::create_temp(geo(1024, 2, 1), Mode::NoOverwrite).unwrap();
    sim.set_reported_abi_version(7);
    let e = sim.consumer().unwrap_err();
    assert!(matches!(e, Error::AbiMismatch { kernel: 7, sdk: 1 }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains('7') && msg.contains('1'), "{msg}");
}

#[test]
fn not_a_channel() {
    let e = Channel::open("/nonexistent/relaymap").unwrap_err();
    assert!(matches!(e, Error::NotAChannel { .. }), "{e}");
    let d = std::env::temp_dir();
    let e = Channel::open(&d).unwrap_err();
    assert!(e.to_string().contains("no control file"), "{e}");
}

#[test]
fn wait_times_out_then_wakes() {
    let sim = SimChannel::create_temp(geo(1024, 4, 2), Mode::NoOverwrite).unwrap();
    let mut ch = sim.consumer().unwrap();
    assert!(!ch.wait_timeout(Some(Duration::from_millis(20))).unwrap());
    sim.write_loadgen(1, 0, 64).unwrap();
    sim.flush(None).unwrap();
    assert!(ch.wait_timeout(Some(Duration::from_secs(5))).unwrap());
    let g = ch.next_any().unwrap().unwrap();
    assert_eq!(g.header().cpu, 1);
    assert!(g.header().is_flushed());
    drop(g);
    assert!(ch.is_drained().unwrap());
}

#[test]
fn hotplug_cpu_is_reported_and_picked_up() {
    let sim = SimChannel::create_temp(geo(1024, 4, 1), Mode::NoOverwrite).unwrap();
    let mut ch = sim.consumer().unwrap();
    assert!(ch.pending_cpus().unwrap().is_empty());
    sim.add_cpu(3).unwrap();
    assert_eq!(ch.pending_cpus().unwrap(), vec![3]);
    assert_eq!(ch.refresh_cpus().unwrap(), vec![3]);
    assert_eq!(ch.cpus(), vec![0, 3]);
    sim.write_loadgen(3, 0, 64).unwrap();
    sim.flush(None).unwrap();
    let st = ch.drain(|sb| assert_eq!(sb.cpu(), 3)).unwrap();
    assert_eq!(st.subbufs, 1);
}

#[test]
fn reopen_resumes_where_the_kernel_says() {
    let sim = SimChannel::create_temp(geo(1024, 8, 1), Mode::NoOverwrite).unwrap();
    for seq in 0..40 {
        sim.write_loadgen(0, seq, 64).unwrap();
    }
    let first = {
        let mut ch = sim.consumer().unwrap();
        let g = ch.next(0).unwrap().unwrap();
        let n = g.records().count();
        drop(g);
        n
    };
    let mut ch = sim.consumer().unwrap();
    let g = ch.next(0).unwrap().unwrap();
    assert_eq!(g.header().seq, 1);
    let r = g.records().next().unwrap().unwrap();
    assert_eq!(LoadgenRecord::parse(r.data).unwrap().seq, first as u64);
}

#[test]
fn strict_mode_reports_corrupt_headers() {
    let sim = SimChannel::create_temp(geo(1024, 8, 1), Mode::NoOverwrite).unwrap();
    let mut ch = sim.consumer_builder().strict(true).open().unwrap();
    sim.write_loadgen(0, 0, 64).unwrap();
    sim.flush(Some(0)).unwrap();
    sim.write_loadgen(0, 1, 64).unwrap();
    sim.inject(0, Inject::SeqBackwards).unwrap();
    sim.flush(Some(0)).unwrap();
    sim.write_loadgen(0, 2, 64).unwrap();
    sim.flush(Some(0)).unwrap();
    let b = ch.batch(0).unwrap();
    assert_eq!(b.len(), 1, "delivered up to the corrupt one");
    assert_eq!(b.seqs(), 0..2);
    drop(b);
    let e = ch.batch(0).unwrap_err();
    assert!(
        matches!(e, Error::CorruptHeader { cpu: 0, seq: 1, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("seq"), "{e}");
    let b = ch.batch(0).unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b.get(0).unwrap().seq(), 2);
    drop(b);
    assert_eq!(ch.loss().subbufs_corrupt, 1);
}

#[test]
fn strict_mode_reports_a_foreign_reset() {
    let sim = SimChannel::create_temp(geo(1024, 8, 1), Mode::NoOverwrite).unwrap();
    let mut ch = sim.consumer_builder().strict(true).open().unwrap();
    for s in 0..40 {
        sim.write_loadgen(0, s, 64).unwrap();
    }
    ch.drain(|_| {}).unwrap();
    // Somebody else resets the channel.
    relaymap::Control::reset(&relaymap::sim::SimControl::open(sim.dir()).unwrap()).unwrap();
    let e = ch.drain(|_| {}).unwrap_err();
    assert!(matches!(e, Error::CursorBackwards { cpu: 0, .. }), "{e}");
    // Resynchronised: the next data arrives.
    sim.write_loadgen(0, 0, 64).unwrap();
    sim.flush(None).unwrap();
    assert_eq!(ch.drain(|_| {}).unwrap().subbufs, 1);
}

#[test]
fn thread_safety_of_public_types() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<Channel>();
    send_sync::<SimChannel>();
    send_sync::<relaymap::sim::SimControl>();
    send_sync::<relaymap::IoctlControl>();
}

#[test]
fn next_in_overwrite_mode_skips_laps() {
    let sim = SimChannel::create_temp(geo(1024, 4, 1), Mode::Overwrite).unwrap();
    let mut ch = sim.consumer().unwrap();
    let mut delivered = 0;
    let mut last = None;
    for round in 0..20u64 {
        for i in 0..(round * 37 % 200) {
            sim.write_loadgen(0, round * 1000 + i, 64).unwrap();
        }
        while let Some(g) = ch.next(0).unwrap() {
            let seq = g.header().seq;
            assert!(last.map_or(true, |l| seq > l));
            last = Some(seq);
            for r in g.records() {
                LoadgenRecord::parse(r.unwrap().data).unwrap();
            }
            delivered += 1;
        }
    }
    let produced = sim.cursor(0).unwrap().produced;
    assert!(ch.loss().subbufs_lapped > 0);
    assert_eq!(delivered + ch.loss().subbufs_lapped, produced);
}

/// A handle that only waits (the dumper's poller) must not report data that
/// another handle has consumed since: its cached cursor is stale.
#[test]
fn wait_rereads_cursors_consumed_by_another_handle() {
    let sim = SimChannel::create_temp(geo(4096, 4, 1), Mode::NoOverwrite).unwrap();
    let mut waiter = sim.consumer().unwrap();
    let mut reader = sim.consumer().unwrap();
    sim.write_record(0, relaymap::abi::RELAYMAP_REC_USER, b"x")
        .unwrap();
    sim.flush(None).unwrap();
    assert!(waiter.wait_timeout(Some(Duration::from_secs(5))).unwrap());
    let stats = reader.drain(|_| {}).unwrap();
    assert_eq!(stats.subbufs, 1);
    let start = std::time::Instant::now();
    assert!(!waiter
        .wait_timeout(Some(Duration::from_millis(50)))
        .unwrap());
    assert!(start.elapsed() >= Duration::from_millis(40));
}
