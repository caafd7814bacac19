//! Walker unit tests over plain memory (Miri-ready: `tests/host/30-miri.sh`).

use super::*;

const PAGE: u64 = 4096;

/// An aligned heap buffer laid out like a CPU buffer.
struct Fake {
    words: Vec<u64>,
    geo: Geometry,
}

impl Fake {
    fn new(subbuf_size: u64, n: u64, page_size: u64) -> Fake {
        Fake {
            words: vec![0; (subbuf_size * n / 8) as usize],
            geo: Geometry {
                subbuf_size,
                n_subbufs: n,
                page_size,
            },
        }
    }
    fn bytes(&mut self) -> &mut [u8] {
        let len = self.words.len() * 8;
        // SAFETY: the Vec<u64> owns len bytes; u8 has no alignment.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr() as *mut u8, len) }
    }
    fn region(&self) -> Region {
        // SAFETY: the Vec outlives every use in the test; aligned to 8.
        unsafe { Region::new(self.words.as_ptr() as *const u8, self.words.len() * 8) }
    }
    fn put<const N: usize>(&mut self, at: usize, v: [u8; N]) {
        self.bytes()[at..at + N].copy_from_slice(&v);
    }
    /// Writes a closed sub-buffer as the module does (field by field, host
    /// order), `commit` last.
    fn close(&mut self, cpu: u32, seq: u64, payload: &[u8]) {
        let geo = self.geo;
        let b = geo.slot_offset(seq);
        let content = 112 + payload.len() as u64;
        let packet = content.div_ceil(geo.page_size) * geo.page_size;
        self.put(b + off::MAGIC, abi::RELAYMAP_CTF_MAGIC.to_ne_bytes());
        self.put(b + off::UUID, [7u8; 16]);
        self.put(b + off::STREAM_ID, 0u32.to_ne_bytes());
        self.put(b + off::STREAM_INSTANCE_ID, u64::from(cpu).to_ne_bytes());
        self.put(b + off::TIMESTAMP_BEGIN, 1u64.to_ne_bytes());
        self.put(b + off::TIMESTAMP_END, 2u64.to_ne_bytes());
        self.put(b + off::CONTENT_SIZE, (content * 8).to_ne_bytes());
        self.put(b + off::PACKET_SIZE, (packet * 8).to_ne_bytes());
        self.put(b + off::PACKET_SEQ_NUM, seq.to_ne_bytes());
        self.put(b + off::EVENTS_DISCARDED, 5u64.to_ne_bytes());
        self.put(b + off::CPU_ID, cpu.to_ne_bytes());
        self.put(b + off::FLAGS, abi::RELAYMAP_SB_FLUSHED.to_ne_bytes());
        self.put(b + off::EVENTS_REJECTED, 6u64.to_ne_bytes());
        self.put(
            b + off::ABI_VERSION,
            (abi::RELAYMAP_ABI_VERSION as u16).to_ne_bytes(),
        );
        self.put(b + off::HEADER_SIZE, 112u16.to_ne_bytes());
        self.put(b + off::RESERVED, 0u32.to_ne_bytes());
        self.bytes()[b + 112..b + 112 + payload.len()].copy_from_slice(payload);
        self.put(b + off::COMMIT, (seq + 1).to_ne_bytes());
    }
}

#[test]
fn plan_modes() {
    let p = |start, end, lapped| Plan { start, end, lapped };
    assert_eq!(plan(0, 0, 4, Mode::NoOverwrite), p(0, 0, 0));
    assert_eq!(plan(2, 5, 4, Mode::NoOverwrite), p(2, 5, 0));
    assert_eq!(plan(0, 10, 4, Mode::Overwrite), p(7, 10, 7));
    assert_eq!(plan(8, 10, 4, Mode::Overwrite), p(8, 10, 0));
    assert_eq!(plan(12, 10, 4, Mode::Overwrite).end, 12);
}

#[test]
fn stable_ok_and_corrupt() {
    let mut f = Fake::new(PAGE, 4, PAGE);
    f.close(3, 0, b"hello world.....");
    let r = f.region();
    let (h, range) = read_stable(&r, &f.geo, 3, 0).unwrap();
    assert_eq!(
        (h.content_size, h.packet_size, h.header_size),
        (128, PAGE, 112)
    );
    assert_eq!(
        (h.events_discarded, h.events_rejected, h.uuid),
        (5, 6, [7; 16])
    );
    assert!(h.is_flushed() && !h.had_drops());
    assert_eq!(h.payload_size(), 16);
    assert_eq!(range, 0..PAGE as usize);
    // SAFETY: nobody writes the fake buffer during the test.
    let packet = unsafe { r.slice(range.start, range.len()) };
    assert_eq!(&packet[112..128], b"hello world.....");
    // Wrong seq expected (cursor says 4, slot holds 0).
    assert!(matches!(
        read_stable(&r, &f.geo, 3, 4),
        Err(Corruption::SeqMismatch {
            expected: 4,
            found: 0,
            ..
        })
    ));
    assert_eq!(
        read_stable(&r, &f.geo, 1, 0),
        Err(Corruption::WrongCpu { found: 3 })
    );
    // stream_instance_id must name the CPU too.
    f.put(off::STREAM_INSTANCE_ID, 9u64.to_ne_bytes());
    assert_eq!(
        read_stable(&f.region(), &f.geo, 3, 0),
        Err(Corruption::WrongCpu { found: 3 })
    );
    f.put(off::STREAM_INSTANCE_ID, 3u64.to_ne_bytes());
    f.put(off::ABI_VERSION, 1u16.to_ne_bytes());
    assert_eq!(
        read_stable(&f.region(), &f.geo, 3, 0),
        Err(Corruption::BadAbiVersion { found: 1 })
    );
    f.put(off::ABI_VERSION, 2u16.to_ne_bytes());
    f.put(off::HEADER_SIZE, 100u16.to_ne_bytes());
    assert!(matches!(
        read_stable(&f.region(), &f.geo, 3, 0),
        Err(Corruption::BadHeaderSize { found: 100 })
    ));
    f.put(off::HEADER_SIZE, 112u16.to_ne_bytes());
    f.bytes()[0] = 0;
    assert!(matches!(
        read_stable(&f.region(), &f.geo, 3, 0),
        Err(Corruption::BadMagic { .. })
    ));
}

#[test]
fn sizes_must_fit_the_subbuf() {
    let bad = |content: u64, packet: u64| {
        let mut f = Fake::new(2 * PAGE, 2, PAGE);
        f.close(0, 1, b"x");
        let b = f.geo.slot_offset(1);
        f.put(b + off::CONTENT_SIZE, content.to_ne_bytes());
        f.put(b + off::PACKET_SIZE, packet.to_ne_bytes());
        read_stable(&f.region(), &f.geo, 0, 1)
    };
    assert!(bad(113 * 8, PAGE * 8).is_ok());
    // Content past the sub-buffer, packet past it, packet not whole pages,
    // content not whole bytes, content below the header.
    for (c, p) in [
        (3 * PAGE * 8, 3 * PAGE * 8),
        (113 * 8, 3 * PAGE * 8),
        (113 * 8, 200 * 8),
        (113 * 8 + 1, PAGE * 8),
        (100 * 8, PAGE * 8),
        (PAGE * 8 + 8, PAGE * 8),
    ] {
        assert!(
            matches!(bad(c, p), Err(Corruption::BadSize { .. })),
            "{c} {p}"
        );
    }
}

#[test]
fn copy_detects_laps() {
    let mut f = Fake::new(PAGE, 2, PAGE);
    f.close(0, 5, b"abcdefghij");
    let r = f.region();
    let mut dst = Vec::new();
    match read_copy(&r, &f.geo, 0, 5, &mut dst) {
        Copied::Ok(h, range) => {
            assert_eq!(h.seq, 5);
            assert_eq!(range, 0..PAGE as usize);
            assert_eq!(&dst[112..122], b"abcdefghij");
        }
        other => panic!("{other:?}"),
    }
    // Slot of 3 holds 5: lapped.
    assert_eq!(read_copy(&r, &f.geo, 0, 3, &mut dst), Copied::Lapped);
    // Open sub-buffer (commit 0): lapped too (being rewritten).
    let c = f.geo.slot_offset(5) + off::COMMIT;
    f.put(c, 0u64.to_ne_bytes());
    assert_eq!(
        read_copy(&f.region(), &f.geo, 0, 5, &mut dst),
        Copied::Lapped
    );
    assert_eq!(dst.len(), PAGE as usize);
}

#[test]
fn odd_lengths_copy() {
    let mut f = Fake::new(PAGE, 2, PAGE);
    f.close(0, 0, b"abc");
    let r = f.region();
    let mut dst = vec![9];
    r.copy_volatile(112, 3, &mut dst);
    assert_eq!(dst, [9, b'a', b'b', b'c']);
    r.copy_volatile(113, 2, &mut dst);
    assert_eq!(&dst[4..], b"bc");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: if cfg!(miri) { 8 } else { 256 },
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Any bytes, any cursor: the walker answers, never panics, and a
    /// packet it accepts lies inside its sub-buffer, with the payload
    /// inside the packet.
    #[test]
    fn walker_total_on_garbage(
        words in proptest::collection::vec(proptest::prelude::any::<u64>(), 64..256),
        n in 2u64..4,
        seq in 0u64..20,
        cpu in 0u32..3,
        header_ok in proptest::prelude::any::<bool>(),
    ) {
        let mut words = words;
        // A small "page" so garbage buffers stay small under Miri.
        let page = 64u64;
        let subbuf = ((words.len() as u64 * 8) / n) / page * page;
        proptest::prop_assume!(subbuf >= 128);
        let geo = Geometry { subbuf_size: subbuf, n_subbufs: n, page_size: page };
        if header_ok {
            // Make the fixed fields right so the size checks get exercised.
            let b = geo.slot_offset(seq) / 8;
            words[b] = u64::from(abi::RELAYMAP_CTF_MAGIC) | (words[b] & !0xffff_ffff);
            words[b + off::STREAM_INSTANCE_ID / 8] = u64::from(cpu);
            words[b + off::PACKET_SEQ_NUM / 8] = seq;
            words[b + off::COMMIT / 8] = seq + 1;
        }
        // SAFETY: `words` outlives the region and nobody writes it.
        let r = unsafe { Region::new(words.as_ptr() as *const u8, words.len() * 8) };
        if let Ok((h, range)) = read_stable(&r, &geo, cpu, seq) {
            let base = geo.slot_offset(seq);
            proptest::prop_assert_eq!(range.start, base);
            proptest::prop_assert!(range.end <= base + subbuf as usize);
            proptest::prop_assert!(h.content_size <= h.packet_size);
            proptest::prop_assert!(u64::from(h.header_size) <= h.content_size);
        }
        let mut dst = Vec::new();
        if let Copied::Ok(h, range) = read_copy(&r, &geo, cpu, seq, &mut dst) {
            proptest::prop_assert_eq!(range.end, dst.len());
            proptest::prop_assert_eq!(range.len() as u64, h.packet_size);
        }
    }
}
