//! `relaymap::AsyncCpuReader` (feature `tokio`) over the simulator.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use relaymap::{LoadgenRecord, Mode};
use relaymap_sim::{SimChannel, SimGeometry};

#[test]
fn readable_wakes_on_a_publication() {
    let geo = SimGeometry {
        subbuf_size: 4096,
        n_subbufs: 4,
        cpus: 2,
    };
    let sim = Arc::new(SimChannel::create_temp(geo, Mode::NoOverwrite).unwrap());
    let ch = sim.open().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut r = relaymap::AsyncCpuReader::new(ch.reader(1).unwrap()).unwrap();
        // Nothing yet: readable() does not return.
        assert!(
            tokio::time::timeout(Duration::from_millis(30), r.readable())
                .await
                .is_err()
        );
        let s2 = sim.clone();
        let t = thread::spawn(move || {
            s2.write_loadgen(1, 0, 64).unwrap();
            s2.flush(None).unwrap();
        });
        let mut seqs = Vec::new();
        while seqs.is_empty() {
            tokio::time::timeout(Duration::from_secs(10), r.readable())
                .await
                .expect("woken")
                .unwrap();
            let b = r.get_mut().batch().unwrap();
            for sb in &b {
                for rec in sb.records() {
                    seqs.push(LoadgenRecord::parse(rec.unwrap().data).unwrap().seq);
                }
            }
        }
        assert_eq!(seqs, [0]);
        t.join().unwrap();
        let back = r.into_inner();
        assert_eq!(back.cpu(), 1);
    });
}
