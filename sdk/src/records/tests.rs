//! Record framing tests. The known-answer vectors are written byte by byte
//! from the ABI text (`include/relaymap_abi.h`: `{u64 ts_ns; u16 event_id;
//! u16 type; u32 len}`, data, next record at ALIGN(16 + len, 8), the last
//! record's data ending at the payload's end), not from the encoder.

use super::*;

/// Two records, little-endian, as the module writes them on x86:
/// ts 0x0102030405060708, event 0, type 0x100, "abc", 5 bytes of alignment;
/// then ts 42, event 1 (printf), type 1, "hello", ending the payload.
#[rustfmt::skip]
const KAT_LE: [u8; 45] = [
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // ts_ns
    0x00, 0x00,                                     // event_id 0
    0x00, 0x01,                                     // type 0x100
    0x03, 0x00, 0x00, 0x00,                         // len 3
    b'a', b'b', b'c',                               // data
    0, 0, 0, 0, 0,                                  // to ALIGN(19, 8) = 24
    0x2a, 0, 0, 0, 0, 0, 0, 0,                      // ts_ns 42
    0x01, 0x00,                                     // event_id 1
    0x01, 0x00,                                     // type 1
    0x05, 0x00, 0x00, 0x00,                         // len 5
    b'h', b'e', b'l', b'l', b'o',                   // data, ends at 45
];

#[test]
#[cfg_attr(
    target_endian = "big",
    ignore = "vector written for little-endian hosts"
)]
fn known_answer_framing() {
    let v: Vec<_> = Records::new(&KAT_LE).collect::<Result<_>>().unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(
        (
            v[0].ts_ns,
            v[0].event_id,
            v[0].type_,
            v[0].data,
            v[0].offset
        ),
        (0x0102_0304_0506_0708, 0, 0x100, &b"abc"[..], 0)
    );
    assert_eq!(
        (
            v[1].ts_ns,
            v[1].event_id,
            v[1].type_,
            v[1].data,
            v[1].offset
        ),
        (42, 1, 1, &b"hello"[..], 24)
    );
    // The encoder builds the same bytes (checked against the vector, not
    // against the decoder).
    let mut out = Vec::new();
    assert_eq!(
        encode_record(&mut out, 0, 0x100, 0x0102_0304_0506_0708, b"abc"),
        0
    );
    assert_eq!(encode_record(&mut out, 1, 1, 42, b"hello"), 24);
    assert_eq!(out, KAT_LE);
}

#[test]
#[cfg_attr(
    target_endian = "big",
    ignore = "vector written for little-endian hosts"
)]
fn known_answer_corruptions() {
    let reason = |p: &[u8]| -> Vec<std::result::Result<usize, &'static str>> {
        Records::new(p)
            .map(|r| match r {
                Ok(r) => Ok(r.offset),
                Err(Error::CorruptRecord { reason, .. }) => Err(reason),
                Err(e) => panic!("{e}"),
            })
            .collect()
    };
    // Alignment padding after the last record is not allowed: the data
    // must end exactly at the payload's end.
    let mut p = KAT_LE.to_vec();
    p.extend_from_slice(&[0, 0, 0]);
    assert_eq!(
        reason(&p),
        [
            Ok(0),
            Ok(24),
            Err("bytes after the last record are not a record header")
        ]
    );
    // Data past the end: the second record claims 6 bytes.
    let mut p = KAT_LE;
    p[36] = 6;
    assert_eq!(
        reason(&p),
        [Ok(0), Err("data runs past the end of the payload")]
    );
    // Unknown event_id 2.
    let mut p = KAT_LE;
    p[32] = 2;
    assert_eq!(reason(&p), [Ok(0), Err("unknown event_id")]);
    // A header cut short.
    assert_eq!(
        reason(&KAT_LE[..10]),
        [Err("bytes after the last record are not a record header")]
    );
    // Empty payload: no record, no error.
    assert!(Records::new(&[]).next().is_none());
    // A record with no data that ends the payload.
    let mut p = KAT_LE[..24].to_vec();
    p.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0]);
    assert_eq!(reason(&p), [Ok(0), Ok(24)]);
}

#[test]
fn resume_at_a_reported_boundary() {
    let mut p = Vec::new();
    for i in 0..5u8 {
        encode_record(&mut p, 0, 0x100, u64::from(i), &vec![i; usize::from(i) * 3]);
    }
    let mut it = Records::new(&p);
    it.next().unwrap().unwrap();
    it.next().unwrap().unwrap();
    let off = it.next_offset().unwrap();
    let rest: Vec<_> = Records::at(&p, off).map(|r| r.unwrap().ts_ns).collect();
    assert_eq!(rest, [2, 3, 4]);
    let whole: Vec<_> = it.map(|r| r.unwrap().offset).collect();
    let resumed: Vec<_> = Records::at(&p, off).map(|r| r.unwrap().offset).collect();
    assert_eq!(whole, resumed);
    assert!(Records::at(&p, p.len()).next().is_none());
    let mut it = Records::new(&p);
    for _ in 0..5 {
        it.next();
    }
    assert_eq!(it.next_offset(), None);
}

/// FNV-1a 32 vectors: the published one for "a", and load generator data
/// computed independently from the ABI text (seq and cpu in little-endian,
/// then fill[i] = seq * 13 + i * 7 + cpu).
#[test]
#[cfg_attr(
    target_endian = "big",
    ignore = "vector written for little-endian hosts"
)]
fn known_answer_loadgen() {
    // FNV-1a("a"), the published test vector: the hash itself is right.
    let mut h = abi::RELAYMAP_FNV_OFFSET;
    h ^= u32::from(b'a');
    h = h.wrapping_mul(abi::RELAYMAP_FNV_PRIME);
    assert_eq!(h, 0xe40c_292c);
    let fill = [0x0f, 0x16, 0x1d, 0x24, 0x2b, 0x32, 0x39, 0x40];
    assert_eq!(loadgen_checksum(1, 2, &fill), 0x9b47_2d8e);
    #[rustfmt::skip]
    let want: [u8; 24] = [
        1, 0, 0, 0, 0, 0, 0, 0,     // seq 1
        2, 0, 0, 0,                 // cpu 2
        0x8e, 0x2d, 0x47, 0x9b,     // checksum
        0x0f, 0x16, 0x1d, 0x24, 0x2b, 0x32, 0x39, 0x40, // fill
    ];
    // record_size 40 = 16 header + 24 data.
    assert_eq!(loadgen_data(1, 2, 40), want);
    assert_eq!(
        LoadgenRecord::parse(&want),
        Some(LoadgenRecord {
            seq: 1,
            cpu: 2,
            fill_len: 8
        })
    );
    let d = loadgen_data(1000, 3, 16 + 16 + 48);
    assert_eq!(&d[12..16], &0xdaf2_c5bfu32.to_le_bytes());
    assert_eq!(&d[16..20], &[0xcb, 0xd2, 0xd9, 0xe0]);
    let mut bad = want;
    bad[20] ^= 1;
    assert_eq!(LoadgenRecord::parse(&bad), None);
    assert_eq!(LoadgenRecord::parse(&want[..15]), None);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: if cfg!(miri) { 16 } else { 512 },
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Any bytes: the walker answers, never panics, every record lies
    /// inside the payload, offsets are aligned and increasing, and an error
    /// ends the iteration.
    #[test]
    fn total_on_garbage(p in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let mut last = None;
        let mut it = Records::new(&p);
        while let Some(r) = it.next() {
            match r {
                Ok(r) => {
                    proptest::prop_assert!(r.offset + r.size() <= p.len());
                    proptest::prop_assert_eq!(r.offset % 8, 0);
                    proptest::prop_assert!(last.is_none_or(|l| r.offset > l));
                    last = Some(r.offset);
                }
                Err(_) => {
                    proptest::prop_assert!(it.next().is_none());
                    break;
                }
            }
        }
    }

    /// Records written in sequence read back field for field.
    #[test]
    fn encoded_sequences_read_back(recs in proptest::collection::vec(
        (0u16..2, proptest::prelude::any::<u16>(), proptest::prelude::any::<u64>(),
         proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)), 0..8)) {
        let mut p = Vec::new();
        for (e, t, ts, d) in &recs {
            encode_record(&mut p, *e, *t, *ts, d);
        }
        let got: Vec<_> = Records::new(&p).collect::<Result<_>>().unwrap();
        proptest::prop_assert_eq!(got.len(), recs.len());
        for (g, (e, t, ts, d)) in got.iter().zip(&recs) {
            proptest::prop_assert_eq!((g.event_id, g.type_, g.ts_ns, g.data), (*e, *t, *ts, &d[..]));
        }
    }
}
