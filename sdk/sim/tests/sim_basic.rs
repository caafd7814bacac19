//! Host tests of the SDK against the simulated producer.

use std::time::Duration;

use relaymap::{Channel, CpuReader, Error, LoadgenRecord, Mode, ReaderOptions, ReadySet};
use relaymap_sim::{Inject, SimChannel, SimGeometry, WriteOutcome};

const PAGE: u64 = 4096;

fn geo(subbuf: u64, n: u64, cpus: u32) -> SimGeometry {
    SimGeometry {
        subbuf_size: subbuf,
        n_subbufs: n,
        cpus,
    }
}

/// What one batch delivered and skipped.
#[derive(Debug, Default)]
struct Drained {
    subbufs: u64,
    lapped: u64,
    corrupt: u64,
}

/// Drains one reader once, collecting loadgen seqs.
fn drain_seqs(r: &mut CpuReader, out: &mut Vec<u64>) -> Drained {
    let b = r.batch().unwrap();
    let mut d = Drained {
        lapped: b.lapped(),
        corrupt: b.corrupt().len() as u64,
        ..Drained::default()
    };
    for sb in &b {
        d.subbufs += 1;
        for rec in sb.records() {
            let rec = rec.expect("framing");
            let lg = LoadgenRecord::parse(rec.data).expect("checksum");
            assert_eq!(lg.cpu, sb.cpu());
            out.push(lg.seq);
        }
    }
    b.release().unwrap();
    d
}

#[test]
fn lossless_roundtrip() {
    let sim = SimChannel::create_temp(geo(PAGE, 4, 2), Mode::NoOverwrite).unwrap();
    let ch = sim.open().unwrap();
    assert_eq!(ch.cpus(), &[0, 1]);
    let mut readers = ch.readers().unwrap();
    let mut seqs = [Vec::new(), Vec::new()];
    let mut next = [0u64; 2];
    for _ in 0..50 {
        for cpu in 0..2u32 {
            for _ in 0..37 {
                match sim.try_write_loadgen(cpu, next[cpu as usize], 96).unwrap() {
                    WriteOutcome::Written => next[cpu as usize] += 1,
                    WriteOutcome::Full => break,
                    other => panic!("{other:?}"),
                }
            }
        }
        for r in &mut readers {
            drain_seqs(r, &mut seqs[r.cpu() as usize]);
        }
    }
    sim.flush(None).unwrap();
    for r in &mut readers {
        drain_seqs(r, &mut seqs[r.cpu() as usize]);
        assert!(r.is_drained().unwrap());
        assert_eq!(r.loss(), relaymap::Loss::default());
    }
    for (cpu, per_cpu) in seqs.iter().enumerate() {
        assert_eq!(
            per_cpu.len() as u64,
            next[cpu],
            "cpu {cpu}: every record once"
        );
        assert!(per_cpu.iter().enumerate().all(|(i, s)| *s == i as u64));
    }
}

#[test]
fn drops_are_counted() {
    let sim = SimChannel::create_temp(geo(PAGE, 2, 1), Mode::NoOverwrite).unwrap();
    let ch = sim.open().unwrap();
    let mut r = ch.reader(0).unwrap();
    let mut dropped = 0;
    for seq in 0..500 {
        if sim.write_loadgen(0, seq, 64).unwrap() == WriteOutcome::Dropped {
            dropped += 1;
        }
    }
    assert!(dropped > 0);
    let mut seqs = Vec::new();
    drain_seqs(&mut r, &mut seqs);
    assert_eq!(r.loss().records_dropped, dropped);
    assert_eq!(ch.stats(None).unwrap().records_dropped, dropped);
}

#[test]
fn too_large_writes_are_rejected_and_counted() {
    let sim = SimChannel::create_temp(geo(PAGE, 4, 1), Mode::NoOverwrite).unwrap();
    let ch = sim.open().unwrap();
    let max = sim.max_data_size();
    assert_eq!(max as u32, ch.info().max_data_size);
    let big = vec![7u8; max + 1];
    assert_eq!(
        sim.try_write_record(0, 0x100, &big).unwrap(),
        WriteOutcome::Rejected
    );
    assert_eq!(
        ch.stats(Some(0)).unwrap().records_rejected,
        0,
        "try_ counts nothing"
    );
    assert_eq!(
        sim.write_record(0, 0x100, &big).unwrap(),
        WriteOutcome::Rejected
    );
    assert_eq!(ch.stats(Some(0)).unwrap().records_rejected, 1);
    // The largest accepted record fills a sub-buffer exactly.
    assert_eq!(
        sim.write_record(0, 0x100, &big[..max]).unwrap(),
        WriteOutcome::Written
    );
    sim.flush(None).unwrap();
    let mut r = ch.reader(0).unwrap();
    let b = r.batch().unwrap();
    assert_eq!(b.len(), 1);
    let sb = b.get(0).unwrap();
    assert_eq!(sb.header().content_size, PAGE);
    assert_eq!(sb.header().events_rejected, 1);
    let recs: Vec<_> = sb.records().collect::<relaymap::Result<_>>().unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].data.len(), max);
    drop(b);
    assert_eq!(r.loss().records_rejected, 1);
}

/// A full buffer: `try_write_*` refuses without counting, `write_*` drops
/// and counts; the refused record is written once space frees.
#[test]
fn try_write_refuses_without_counting() {
    let sim = SimChannel::create_temp(geo(PAGE, 2, 1), Mode::NoOverwrite).unwrap();
    let ch = sim.open().unwrap();
    let mut r = ch.reader(0).unwrap();
    let mut seq = 0;
    while sim.try_write_loadgen(0, seq, 64).unwrap() == WriteOutcome::Written {
        seq += 1;
    }
    assert!(seq > 0);
    assert_eq!(
        sim.try_write_loadgen(0, seq, 64).unwrap(),
        WriteOutcome::Full
    );
    assert_eq!(
        sim.try_write_record(0, 0x100, b"x").unwrap(),
        WriteOutcome::Full
    );
    assert_eq!(sim.try_write_raw(0, &[0; 8]).unwrap(), WriteOutcome::Full);
    assert_eq!(sim.stats(Some(0)).unwrap().records_dropped, 0);
    assert_eq!(
        sim.write_loadgen(0, seq, 64).unwrap(),
        WriteOutcome::Dropped
    );
    assert_eq!(sim.stats(Some(0)).unwrap().records_dropped, 1);
    let mut seqs = Vec::new();
    drain_seqs(&mut r, &mut seqs);
    assert_eq!(
        sim.try_write_loadgen(0, seq, 64).unwrap(),
        WriteOutcome::Written
    );
    sim.flush(None).unwrap();
    drain_seqs(&mut r, &mut seqs);
    assert_eq!(seqs, (0..=seq).collect::<Vec<_>>());
    assert_eq!(r.loss().records_dropped, 1);
}

#[test]
fn overwrite_laps_are_counted() {
    let sim = SimChannel::create_temp(geo(PAGE, 4, 1), Mode::Overwrite).unwrap();
    let ch = sim.open().unwrap();
    let mut r = ch.reader(0).unwrap();
    for seq in 0..2000 {
        assert_eq!(
            sim.write_loadgen(0, seq, 64).unwrap(),
            WriteOutcome::Written
        );
    }
    let mut seqs = Vec::new();
    let d = drain_seqs(&mut r, &mut seqs);
    assert_eq!(d.subbufs, 3, "only n_subbufs - 1 can be valid");
    let produced = sim.cursor(0).unwrap().produced;
    assert_eq!(d.lapped + d.subbufs, produced);
    assert_eq!(r.loss().subbufs_lapped, d.lapped);
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
}

#[test]
fn corrupt_headers_are_skipped_and_counted() {
    let sim = SimChannel::create_temp(geo(PAGE, 8, 1), Mode::NoOverwrite).unwrap();
    let ch = sim.open().unwrap();
    let mut r = ch.reader(0).unwrap();
    for (seq, inj) in [
        (0, Some(Inject::BadMagic)),
        (1, Some(Inject::ContentBeyondSubbuf)),
        (2, Some(Inject::SeqBackwards)),
        (3, None),
    ] {
        sim.write_loadgen(0, seq, 64).unwrap();
        if let Some(i) = inj {
            sim.inject(0, i).unwrap();
        }
        sim.flush(Some(0)).unwrap();
    }
    let mut seqs = Vec::new();
    let d = drain_seqs(&mut r, &mut seqs);
    assert_eq!((d.subbufs, d.corrupt, d.lapped), (1, 3, 0));
    assert_eq!(seqs, [3]);
    assert_eq!(r.loss().subbufs_corrupt, 3);
    assert!(r.is_drained().unwrap());
}

#[test]
fn abi_mismatch_names_both_versions() {
    let sim = SimChannel::create_temp(geo(PAGE, 2, 1), Mode::NoOverwrite).unwrap();
    sim.set_reported_abi_version(1);
    let e = sim.open().unwrap_err();
    assert!(matches!(e, Error::AbiMismatch { kernel: 1, sdk: 2 }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("ABI 1") && msg.contains("speaks 2"), "{msg}");
}

#[test]
fn open_path_names_what_it_found() {
    let e = Channel::open_path("/nonexistent/relaymap").unwrap_err();
    assert!(matches!(e, Error::NotAChannel { .. }), "{e}");
    let sim = SimChannel::create_temp(geo(PAGE, 2, 1), Mode::NoOverwrite).unwrap();
    let e = Channel::open_path(sim.dir()).unwrap_err();
    assert!(e.to_string().contains("relaymap_sim::open_dir"), "{e}");
    assert!(relaymap_sim::is_sim_dir(sim.dir()));
    assert!(!relaymap_sim::is_sim_dir(std::env::temp_dir()));
    let e = relaymap_sim::open_dir(std::env::temp_dir()).unwrap_err();
    assert!(matches!(e, Error::NotAChannel { .. }), "{e}");
}

#[test]
fn second_consumer_is_busy_with_the_holder() {
    let sim = SimChannel::create_temp(geo(PAGE, 4, 2), Mode::NoOverwrite).unwrap();
    let ch = sim.open().unwrap();
    let r1 = ch.reader(1).unwrap();
    // Another Channel (another open file, as another process would have).
    let other = sim.open().unwrap();
    let e = other.reader(1).unwrap_err();
    let me = std::process::id() as i32;
    match &e {
        Error::Busy {
            cpu: 1,
            holder_pid: Some(p),
            holder_comm: Some(_),
        } => assert_eq!(*p, me),
        e => panic!("{e}"),
    }
    assert!(e.to_string().contains(&format!("pid {me}")), "{e}");
    // All or nothing: readers() fails and claims nothing.
    let e = other.readers().unwrap_err();
    assert!(matches!(e, Error::Busy { cpu: 1, .. }), "{e}");
    let r0 = other.reader(0).unwrap();
    drop(r0);
    // Observers need no claim and see the holder.
    let cs = other.cursors().unwrap();
    assert_eq!(cs.len(), 2);
    assert!(!cs[0].held && cs[1].held);
    assert_eq!(cs[1].holder_pid, Some(me));
    // RESET is refused while a consumer is open.
    assert!(other.reset().is_err());
    drop(r1);
    assert!(!other.cursor(1).unwrap().held);
    let _r = other.reader(1).unwrap();
}

#[test]
fn ready_set_reports_only_ready_cpus() {
    let sim = SimChannel::create_temp(geo(PAGE, 4, 3), Mode::NoOverwrite).unwrap();
    let ch = sim.open().unwrap();
    let mut readers = ch.readers().unwrap();
    let mut ready = ReadySet::new(&readers).unwrap();
    assert_eq!(ready.len(), 3);
    assert!(ready
        .wait(Some(Duration::from_millis(20)))
        .unwrap()
        .is_empty());
    sim.write_loadgen(2, 0, 64).unwrap();
    sim.flush(None).unwrap();
    let r = ready.wait(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(r, vec![2]);
    let ops0 = readers[0].control_ops() + readers[1].control_ops();
    let b = readers[2].acquire(usize::MAX).unwrap();
    assert_eq!(b.len(), 1);
    assert!(b.get(0).unwrap().header().is_flushed());
    drop(b);
    assert_eq!(readers[0].control_ops() + readers[1].control_ops(), ops0);
    // Handed back: nothing is ready any more.
    let b = readers[2].batch().unwrap();
    assert!(b.is_empty());
    drop(b);
    assert!(ready
        .wait(Some(Duration::from_millis(20)))
        .unwrap()
        .is_empty());
}

#[test]
fn acquire_one_is_o1_per_subbuf() {
    let sim = SimChannel::create_temp(geo(PAGE, 16, 1), Mode::NoOverwrite).unwrap();
    for i in 0..10 {
        sim.write_loadgen(0, i, 64).unwrap();
        sim.flush(None).unwrap();
    }
    let ch = sim.open().unwrap();
    let mut r = ch.reader(0).unwrap();
    let mut n = 0;
    loop {
        let b = r.acquire(1).unwrap();
        if b.is_empty() {
            break;
        }
        assert_eq!(b.seqs(), n..n + 1);
        n += 1;
    }
    assert_eq!(n, 10);
    // 10 PUT_CONSUMED, and GET_CURSOR only at the start and at the end.
    assert_eq!(r.control_ops(), 10 + 2);
}

#[test]
fn release_until_and_keep_deliver_again() {
    let sim = SimChannel::create_temp(geo(PAGE, 8, 1), Mode::NoOverwrite).unwrap();
    for i in 0..4 {
        sim.write_loadgen(0, i, 64).unwrap();
        sim.flush(None).unwrap();
    }
    let ch = sim.open().unwrap();
    let mut r = ch.reader(0).unwrap();
    let b = r.batch().unwrap();
    assert_eq!(b.seqs(), 0..4);
    b.keep();
    let b = r.batch().unwrap();
    assert_eq!(b.seqs(), 0..4);
    b.release_until(2).unwrap();
    assert_eq!(r.cursor().unwrap().consumed, 2);
    let b = r.batch().unwrap();
    assert_eq!(b.seqs(), 2..4);
    assert_eq!(b.get(0).unwrap().seq(), 2);
    drop(b);
    assert!(r.is_drained().unwrap());
}

#[test]
fn packet_is_the_header_and_events_rounded_to_the_page() {
    let sim = SimChannel::create_temp(geo(4 * PAGE, 4, 1), Mode::NoOverwrite).unwrap();
    for i in 0..70 {
        sim.write_loadgen(0, i, 80).unwrap();
    }
    sim.flush(None).unwrap();
    let ch = sim.open().unwrap();
    let mut r = ch.reader(0).unwrap();
    let b = r.batch().unwrap();
    let sb = b.get(0).unwrap();
    let h = *sb.header();
    // 70 records of 80 bytes, the last without trailing alignment.
    assert_eq!(h.content_size, 112 + 70 * 80);
    assert_eq!(h.packet_size, 2 * PAGE);
    assert_eq!(sb.packet().len() as u64, 2 * PAGE);
    assert_eq!(&sb.packet()[112..h.content_size as usize], sb.payload());
    assert_eq!(&*sb, sb.payload());
    let magic = u32::from_ne_bytes(sb.packet()[..4].try_into().unwrap());
    assert_eq!(magic, relaymap::abi::RELAYMAP_CTF_MAGIC);
    assert_eq!(sb.records().count(), 70);
    assert_eq!(h.uuid, ch.info().uuid);
}

#[test]
fn hotplug_cpu_is_reported_and_picked_up() {
    let sim = SimChannel::create_temp(geo(PAGE, 4, 1), Mode::NoOverwrite).unwrap();
    let mut ch = sim.open().unwrap();
    assert!(ch.refresh_cpus().unwrap().is_empty());
    sim.add_cpu(3).unwrap();
    assert!(matches!(ch.reader(3), Err(Error::UnknownCpu { cpu: 3 })));
    assert_eq!(ch.refresh_cpus().unwrap(), vec![3]);
    assert_eq!(ch.cpus(), &[0, 3]);
    let r0 = ch.reader(0).unwrap();
    let mut ready = ReadySet::new(std::slice::from_ref(&r0)).unwrap();
    let mut r3 = ch.reader(3).unwrap();
    assert_eq!(ready.push(&r3), 1);
    sim.write_loadgen(3, 0, 64).unwrap();
    sim.flush(None).unwrap();
    assert_eq!(ready.wait(Some(Duration::from_secs(5))).unwrap(), vec![1]);
    let b = r3.batch().unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b.get(0).unwrap().cpu(), 3);
}

#[test]
fn reopen_resumes_where_the_kernel_says() {
    let sim = SimChannel::create_temp(geo(PAGE, 8, 1), Mode::NoOverwrite).unwrap();
    for seq in 0..200 {
        sim.write_loadgen(0, seq, 64).unwrap();
    }
    let ch = sim.open().unwrap();
    let first = {
        let mut r = ch.reader(0).unwrap();
        let b = r.acquire(1).unwrap();
        b.get(0).unwrap().records().count()
    };
    let mut r = ch.reader(0).unwrap();
    let b = r.acquire(1).unwrap();
    let sb = b.get(0).unwrap();
    assert_eq!(sb.seq(), 1);
    let rec = sb.records().next().unwrap().unwrap();
    assert_eq!(LoadgenRecord::parse(rec.data).unwrap().seq, first as u64);
}

#[test]
fn strict_mode_reports_corrupt_headers() {
    let sim = SimChannel::create_temp(geo(PAGE, 8, 1), Mode::NoOverwrite).unwrap();
    let mut ch = sim.open().unwrap();
    ch.set_reader_options(ReaderOptions::default().strict(true));
    let mut r = ch.reader(0).unwrap();
    sim.write_loadgen(0, 0, 64).unwrap();
    sim.flush(Some(0)).unwrap();
    sim.write_loadgen(0, 1, 64).unwrap();
    sim.inject(0, Inject::SeqBackwards).unwrap();
    sim.flush(Some(0)).unwrap();
    sim.write_loadgen(0, 2, 64).unwrap();
    sim.flush(Some(0)).unwrap();
    let b = r.batch().unwrap();
    assert_eq!(b.len(), 1, "delivered up to the corrupt one");
    assert_eq!(b.seqs(), 0..2);
    drop(b);
    let e = r.batch().unwrap_err();
    assert!(
        matches!(e, Error::CorruptHeader { cpu: 0, seq: 1, .. }),
        "{e}"
    );
    let b = r.batch().unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b.get(0).unwrap().seq(), 2);
    drop(b);
    assert_eq!(r.loss().subbufs_corrupt, 1);
}

#[test]
fn thread_safety_of_public_types() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<CpuReader>();
    send_sync::<Channel>();
    send_sync::<SimChannel>();
    send_sync::<relaymap_sim::SimBackend>();
    send_sync::<relaymap::backend::IoctlBackend>();
}

#[test]
fn overwrite_acquire_one_skips_laps() {
    let sim = SimChannel::create_temp(geo(PAGE, 4, 1), Mode::Overwrite).unwrap();
    let ch = sim.open().unwrap();
    let mut r = ch.reader(0).unwrap();
    let mut delivered = 0;
    let mut last = None;
    for round in 0..20u64 {
        for i in 0..(round * 37 % 400) {
            sim.write_loadgen(0, round * 1000 + i, 64).unwrap();
        }
        loop {
            let b = r.acquire(1).unwrap();
            if b.seqs().is_empty() {
                break;
            }
            if let Some(sb) = b.get(0) {
                assert!(last.is_none_or(|l| sb.seq() > l));
                last = Some(sb.seq());
                for rec in sb.records() {
                    LoadgenRecord::parse(rec.unwrap().data).unwrap();
                }
                delivered += 1;
            }
        }
    }
    let produced = sim.cursor(0).unwrap().produced;
    assert!(r.loss().subbufs_lapped > 0);
    assert_eq!(delivered + r.loss().subbufs_lapped, produced);
}

#[test]
fn raw_acquisitions_accumulate_and_stay_valid() {
    let sim = SimChannel::create_temp(geo(PAGE, 8, 1), Mode::Overwrite).unwrap();
    for i in 0..3 {
        sim.write_loadgen(0, i, 64).unwrap();
        sim.flush(None).unwrap();
    }
    let ch = sim.open().unwrap();
    let mut r = ch.reader(0).unwrap();
    let a = r.acquire_raw(1).unwrap();
    let p0 = r.subbuf(&a, 0).unwrap().packet().as_ptr();
    let b = r.acquire_raw(usize::MAX).unwrap();
    assert_eq!((a.seqs.clone(), b.seqs.clone()), (0..1, 1..3));
    // The first copy did not move.
    assert_eq!(r.subbuf(&a, 0).unwrap().packet().as_ptr(), p0);
    assert_eq!(r.subbuf(&b, 1).unwrap().seq(), 2);
    r.release_raw(None).unwrap();
    assert!(r.subbuf(&a, 0).is_none(), "released: stale handle");
    assert_eq!(r.cursor().unwrap().consumed, 3);
}

/// Exclusive claims across processes: a child process (this test binary,
/// re-run as a holder) claims CPU 0; this process gets `Busy` naming the
/// child's pid, and gets the CPU once the child is gone.
#[test]
fn claims_are_exclusive_across_processes() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    if let Some(dir) = std::env::var_os("RELAYMAP_SIM_HOLDER_DIR") {
        // The child: hold CPU 0 until stdin closes.
        let ch = relaymap_sim::open_dir(dir).unwrap();
        let _r = ch.reader(0).unwrap();
        println!("holding");
        std::io::stdout().flush().unwrap();
        let mut s = String::new();
        let _ = std::io::stdin().read_line(&mut s);
        return;
    }
    let sim = SimChannel::create_temp(geo(PAGE, 4, 1), Mode::NoOverwrite).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "claims_are_exclusive_across_processes",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RELAYMAP_SIM_HOLDER_DIR", sim.dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    // Bounded: the child prints `holding` or exits (EOF) on failure.
    while out.read_line(&mut line).unwrap() > 0 && !line.contains("holding") {
        line.clear();
    }
    assert!(line.contains("holding"), "the holder child failed");
    let ch = sim.open().unwrap();
    match ch.reader(0).unwrap_err() {
        Error::Busy {
            cpu: 0, holder_pid, ..
        } => assert_eq!(holder_pid, Some(child.id() as i32)),
        e => panic!("{e}"),
    }
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let _r = ch.reader(0).expect("free once the holder exited");
}

/// Readiness is level-triggered like relay's poll: after everything was
/// handed back the reader is not woken again for nothing.
#[test]
fn no_wakeup_after_everything_was_handed_back() {
    let sim = SimChannel::create_temp(geo(PAGE, 4, 1), Mode::NoOverwrite).unwrap();
    let ch = sim.open().unwrap();
    let mut r = ch.reader(0).unwrap();
    sim.write_loadgen(0, 0, 64).unwrap();
    sim.flush(None).unwrap();
    assert!(r.wait(Some(Duration::from_secs(5))).unwrap());
    let b = r.batch().unwrap();
    assert_eq!(b.len(), 1);
    drop(b);
    assert!(!r.wait(Some(Duration::from_millis(20))).unwrap());
    // Kept data keeps it ready.
    sim.write_loadgen(0, 1, 64).unwrap();
    sim.flush(None).unwrap();
    r.batch().unwrap().keep();
    assert!(r.wait(Some(Duration::from_millis(20))).unwrap());
}
