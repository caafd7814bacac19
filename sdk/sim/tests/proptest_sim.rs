//! Property tests: readers, batches and the merge against the simulated
//! producer, with random geometry, record sizes, modes and interleavings.

use proptest::prelude::*;
use relaymap::merge::Merge;
use relaymap::{CpuReader, LoadgenRecord, Mode};
use relaymap_sim::{SimChannel, SimGeometry, WriteOutcome};

#[derive(Debug, Clone)]
enum Op {
    Write { cpu: u32, size: usize },
    Flush,
    Batch { cpu: u32, keep: bool },
    One { cpu: u32 },
    Drain,
    Merged,
}

fn op(cpus: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..cpus, 32usize..=600).prop_map(|(cpu, s)| Op::Write { cpu, size: s & !7 }),
        1 => Just(Op::Flush),
        2 => (0..cpus, any::<bool>()).prop_map(|(cpu, keep)| Op::Batch { cpu, keep }),
        1 => (0..cpus).prop_map(|cpu| Op::One { cpu }),
        1 => Just(Op::Drain),
        1 => Just(Op::Merged),
    ]
}

fn scenario() -> impl Strategy<Value = (SimGeometry, Mode, Vec<Op>)> {
    (
        1u64..=3,
        2u64..=6,
        1u32..=3,
        prop_oneof![Just(Mode::NoOverwrite), Just(Mode::Overwrite)],
    )
        .prop_flat_map(|(pages, n, cpus, mode)| {
            (
                Just(SimGeometry {
                    subbuf_size: pages * 4096,
                    n_subbufs: n,
                    cpus,
                }),
                Just(mode),
                proptest::collection::vec(op(cpus), 1..400),
            )
        })
}

fn check_payload(cpu: u32, payload: &[u8], seen: &mut [Vec<u64>]) {
    for r in relaymap::Records::new(payload) {
        let r = r.expect("framing written by the sim is never corrupt");
        let lg = LoadgenRecord::parse(r.data).expect("payload verifies");
        assert_eq!(lg.cpu, cpu);
        seen[cpu as usize].push(lg.seq);
    }
}

fn batch(r: &mut CpuReader, seen: &mut [Vec<u64>]) -> u64 {
    let b = r.batch().unwrap();
    assert!(b.corrupt().is_empty());
    for sb in &b {
        check_payload(r_cpu(&sb), sb.payload(), seen);
    }
    let n = b.len() as u64;
    b.release().unwrap();
    n
}

fn r_cpu(sb: &relaymap::Subbuf<'_>) -> u32 {
    sb.cpu()
}

fn run(geo: SimGeometry, mode: Mode, ops: Vec<Op>) {
    let sim = SimChannel::create_temp(geo, mode).unwrap();
    let ch = sim.open().unwrap();
    let mut readers = ch.readers().unwrap();
    let n = geo.cpus as usize;
    let mut next_seq = vec![0u64; n];
    let mut written = vec![Vec::new(); n];
    let mut dropped = vec![0u64; n];
    let mut seen = vec![Vec::new(); n];
    let mut delivered = 0u64;
    for op in ops {
        match op {
            Op::Write { cpu, size } => {
                let s = next_seq[cpu as usize];
                next_seq[cpu as usize] += 1;
                match sim.write_loadgen(cpu, s, size).unwrap() {
                    WriteOutcome::Written => written[cpu as usize].push(s),
                    WriteOutcome::Dropped => dropped[cpu as usize] += 1,
                    other => panic!("{other:?}"),
                }
            }
            Op::Flush => ch.flush(None).unwrap(),
            Op::Batch { cpu, keep } => {
                let r = &mut readers[cpu as usize];
                if keep {
                    r.batch().unwrap().keep();
                } else {
                    delivered += batch(r, &mut seen);
                }
            }
            Op::One { cpu } => {
                let b = readers[cpu as usize].acquire(1).unwrap();
                assert!(b.len() <= 1);
                if let Some(sb) = b.get(0) {
                    delivered += 1;
                    check_payload(cpu, sb.payload(), &mut seen);
                }
            }
            Op::Drain => {
                for r in &mut readers {
                    delivered += batch(r, &mut seen);
                }
            }
            Op::Merged => {
                // Batches of every CPU held at once, merged by timestamp.
                let mut batches: Vec<_> = readers.iter_mut().map(|r| r.batch().unwrap()).collect();
                delivered += batches.iter().map(|b| b.len() as u64).sum::<u64>();
                let mut last_ts = 0;
                let streams = batches.iter().map(|b| b.iter().flat_map(|sb| sb.records()));
                for (i, rec) in Merge::new(streams) {
                    let rec = rec.unwrap();
                    assert!(rec.ts_ns >= last_ts, "merged by timestamp");
                    last_ts = rec.ts_ns;
                    let lg = LoadgenRecord::parse(rec.data).unwrap();
                    assert_eq!(lg.cpu as usize, i);
                    seen[i].push(lg.seq);
                }
                for b in batches.drain(..) {
                    b.release().unwrap();
                }
            }
        }
    }
    ch.flush(None).unwrap();
    let mut lapped = 0;
    let mut dropped_seen = 0;
    for r in &mut readers {
        while !r.is_drained().unwrap() {
            delivered += batch(r, &mut seen);
        }
        let loss = r.loss();
        assert_eq!(loss.subbufs_corrupt, 0);
        lapped += loss.subbufs_lapped;
        dropped_seen += loss.records_dropped;
    }
    for c in 0..n {
        match mode {
            Mode::NoOverwrite => {
                assert_eq!(
                    seen[c], written[c],
                    "cpu {c}: every accepted record, in order"
                );
            }
            Mode::Overwrite => {
                assert!(seen[c].windows(2).all(|w| w[0] < w[1]), "cpu {c} in order");
                assert!(seen[c].iter().all(|s| written[c].binary_search(s).is_ok()));
                assert_eq!(dropped[c], 0);
            }
        }
    }
    if mode == Mode::NoOverwrite {
        assert_eq!(lapped, 0);
    }
    assert_eq!(
        dropped_seen,
        dropped.iter().sum::<u64>(),
        "drops counted exactly"
    );
    let produced: u64 = (0..geo.cpus).map(|c| sim.cursor(c).unwrap().produced).sum();
    assert_eq!(sim.stats(None).unwrap().subbufs_produced, produced);
    assert_eq!(
        delivered + lapped,
        produced,
        "every sub-buffer delivered or counted as lapped, once"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn readers_against_sim((geo, mode, ops) in scenario()) {
        run(geo, mode, ops);
    }
}
