//! Property tests: the walker and batches against the simulated producer,
//! with random geometry, record sizes, modes and operation interleavings.
#![cfg(feature = "sim")]

use proptest::prelude::*;
use relaymap::sim::{SimChannel, SimGeometry, WriteOutcome};
use relaymap::{Channel, LoadgenRecord, Mode};

#[derive(Debug, Clone)]
enum Op {
    Write { cpu: u32, size: usize },
    Flush,
    Batch { cpu: u32, keep: bool },
    Next { cpu: u32 },
    Drain,
    Merged,
}

fn op(cpus: u32, max_rec: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..cpus, 32usize..=max_rec).prop_map(|(cpu, s)| Op::Write { cpu, size: s & !7 }),
        1 => Just(Op::Flush),
        2 => (0..cpus, any::<bool>()).prop_map(|(cpu, keep)| Op::Batch { cpu, keep }),
        1 => (0..cpus).prop_map(|cpu| Op::Next { cpu }),
        1 => Just(Op::Drain),
        1 => Just(Op::Merged),
    ]
}

fn scenario() -> impl Strategy<Value = (SimGeometry, Mode, Vec<Op>)> {
    (
        (16u64..=512).prop_map(|w| w * 8),
        2u64..=8,
        1u32..=3,
        prop_oneof![Just(Mode::NoOverwrite), Just(Mode::Overwrite)],
    )
        .prop_flat_map(|(subbuf, n, cpus, mode)| {
            let max_rec = ((subbuf - 64) as usize).min(600);
            (
                Just(SimGeometry {
                    subbuf_size: subbuf,
                    n_subbufs: n,
                    cpus,
                }),
                Just(mode),
                proptest::collection::vec(op(cpus, max_rec), 1..300),
            )
        })
}

/// Checks one delivered payload; pushes the loadgen seqs seen.
fn check_payload(cpu: u32, payload: &[u8], seen: &mut [Vec<u64>]) {
    for r in relaymap::Records::new(payload) {
        let r = r.expect("framing written by the sim is never corrupt");
        let lg = LoadgenRecord::parse(r.data).expect("payload verifies");
        assert_eq!(lg.cpu, cpu);
        seen[cpu as usize].push(lg.seq);
    }
}

fn run(geo: SimGeometry, mode: Mode, ops: Vec<Op>) {
    let sim = SimChannel::create_temp(geo, mode).unwrap();
    let mut ch: Channel = sim.consumer().unwrap();
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
                    WriteOutcome::Full => unreachable!("write never reports Full"),
                }
            }
            Op::Flush => ch.flush().unwrap(),
            Op::Batch { cpu, keep } => {
                let b = ch.batch(cpu).unwrap();
                assert!(b.corrupt().is_empty());
                if keep {
                    b.keep();
                } else {
                    for sb in b.iter() {
                        delivered += 1;
                        assert_eq!(sb.cpu(), cpu);
                        check_payload(cpu, sb.payload(), &mut seen);
                    }
                    b.release().unwrap();
                }
            }
            Op::Next { cpu } => {
                if let Some(g) = ch.next(cpu).unwrap() {
                    delivered += 1;
                    check_payload(cpu, g.payload(), &mut seen);
                }
            }
            Op::Drain => {
                delivered += ch
                    .drain(|sb| check_payload(sb.cpu(), sb.payload(), &mut seen))
                    .unwrap()
                    .subbufs;
            }
            Op::Merged => {
                let mut last_ts = 0;
                delivered += ch
                    .drain_merged(|cpu, r| {
                        assert!(r.ts_ns >= last_ts, "merged by timestamp");
                        last_ts = r.ts_ns;
                        let lg = LoadgenRecord::parse(r.data).unwrap();
                        seen[cpu as usize].push(lg.seq);
                    })
                    .unwrap()
                    .subbufs;
            }
        }
    }
    delivered += ch
        .drain_and_stop(|sb| check_payload(sb.cpu(), sb.payload(), &mut seen))
        .unwrap()
        .subbufs;
    assert!(ch.is_drained().unwrap());
    let loss = ch.loss();
    assert_eq!(loss.subbufs_corrupt, 0);
    for c in 0..n {
        match mode {
            Mode::NoOverwrite => {
                // Lossless except what the producer was told was dropped.
                assert_eq!(
                    seen[c], written[c],
                    "cpu {c}: every accepted record, in order"
                );
                assert_eq!(loss.subbufs_lapped, 0);
            }
            Mode::Overwrite => {
                assert!(seen[c].windows(2).all(|w| w[0] < w[1]), "cpu {c} in order");
                assert!(seen[c].iter().all(|s| written[c].binary_search(s).is_ok()));
                assert_eq!(dropped[c], 0);
            }
        }
    }
    let dropped_total: u64 = dropped.iter().sum();
    assert_eq!(loss.records_dropped, dropped_total, "drops counted exactly");
    if mode == Mode::Overwrite {
        // Every produced sub-buffer was delivered or counted as lapped.
        let produced: u64 = (0..geo.cpus).map(|c| sim.cursor(c).unwrap().produced).sum();
        let st = sim.stats(None).unwrap();
        assert_eq!(st.subbufs_produced, produced);
        assert_eq!(
            delivered + loss.subbufs_lapped,
            produced,
            "every sub-buffer delivered or counted as lapped, once"
        );
    } else {
        let produced: u64 = (0..geo.cpus).map(|c| sim.cursor(c).unwrap().produced).sum();
        assert_eq!(delivered, produced);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn walker_against_sim((geo, mode, ops) in scenario()) {
        run(geo, mode, ops);
    }
}
