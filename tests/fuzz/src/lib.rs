//! The drivers of the relaymap fuzz targets (`fuzz_targets/*.rs` are one
//! line each): every driver turns fuzz bytes into an input for one parser
//! of the SDK, runs it through the public API, and checks what it returns
//! against an oracle written from the text of `include/relaymap_abi.h`
//! ([`abi_text`]), not from the SDK's code. A failed check panics, which
//! libFuzzer reports as a crash and saves the input.
//!
//! * [`walker_one`]: the sub-buffer walker and `CpuReader` over a fake
//!   mapping (a memfd the SDK maps itself, through the public `Backend`
//!   seam), both modes, strict or not, a well-behaved or a hostile kernel.
//! * `walker_raw_one` (with `--cfg fuzzing` only): the walker's own
//!   functions through the SDK's test seam `relaymap::fuzzing`.
//! * [`records_one`]: the record framing, `Records::new` and
//!   `Records::at` resumption, and `LoadgenRecord::parse`.
//! * [`info_one`]: `ChannelInfo::from_raw`, `Cursor::from_raw` and `Stats`
//!   over ioctl answers.
//! * [`merge_one`]: the timestamp merge of per-CPU streams.
//! * [`verify_one`]: `relaymap-dump verify`'s dump reader (CTF trace
//!   directories, merged stream files, load generator status files).
//! * [`cli_one`]: the dumper's size and duration parsers, and its clap
//!   command line.

pub mod abi_text;
mod dump;
mod walk;

use relaymap::merge::Merge;
use relaymap::{abi, ChannelInfo, Cursor, Error, LoadgenRecord, Record, Records, Stats};

use abi_text::{loadgen_parse, push_record, ref_frame, RefEnd};

pub use dump::{cli_one, verify_one};
#[cfg(fuzzing)]
pub use walk::walker_raw_one;
pub use walk::{walker_one, WalkStats};

/// Reads fuzz bytes as numbers; reads past the end give zeroes, so every
/// input is a valid program.
#[derive(Debug)]
pub struct Src<'a> {
    b: &'a [u8],
}

impl<'a> Src<'a> {
    pub fn new(b: &'a [u8]) -> Src<'a> {
        Src { b }
    }
    pub fn is_empty(&self) -> bool {
        self.b.is_empty()
    }
    pub fn u8(&mut self) -> u8 {
        match self.b.split_first() {
            Some((x, rest)) => {
                self.b = rest;
                *x
            }
            None => 0,
        }
    }
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | (u32::from(self.u16()) << 16)
    }
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }
    /// `0..n` (`n > 0`), from one to four bytes.
    pub fn below(&mut self, n: u64) -> u64 {
        let x = match n {
            0..=0x100 => u64::from(self.u8()),
            0x101..=0x1_0000 => u64::from(self.u16()),
            _ => u64::from(self.u32()),
        };
        x % n
    }
    /// Up to `n` bytes (fewer if the input ends).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.b.len());
        let (x, rest) = self.b.split_at(n);
        self.b = rest;
        x
    }
    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.b)
    }
}

/// What [`check_records`] walked.
#[derive(Debug, Default, Clone, Copy)]
pub struct RecStats {
    pub records: u64,
    pub corrupt: u64,
    pub loadgen: u64,
}

/// Walks `payload` from `start` with `Records::at` (and `Records::new`
/// when `start == 0`) and checks every step against [`ref_frame`]:
/// the same records in the same order (offsets strictly increasing,
/// `next_offset()` announcing each), every `data` slice exactly the
/// record's bytes inside the payload, one `CorruptRecord` at the
/// reference's offset ending the iteration for good, and
/// `LoadgenRecord::parse` agreeing with the ABI's checksum and fill.
pub fn check_records(payload: &[u8], start: usize) -> RecStats {
    let (refs, end) = ref_frame(payload, start);
    let mut st = walk_records(payload, Records::at(payload, start), &refs, end);
    if start == 0 {
        let again = walk_records(payload, Records::new(payload), &refs, end);
        assert_eq!(again.records, st.records, "Records::new != Records::at(0)");
    }
    st.records = refs.len() as u64;
    st
}

fn walk_records(
    payload: &[u8],
    mut it: Records<'_>,
    refs: &[abi_text::RefRecord],
    end: RefEnd,
) -> RecStats {
    let base = payload.as_ptr() as usize;
    let mut st = RecStats::default();
    let mut i = 0usize;
    let mut last: Option<usize> = None;
    loop {
        let announced = it.next_offset();
        match it.next() {
            None => {
                assert_eq!(
                    announced, None,
                    "next_offset() promised a record that never came"
                );
                assert!(it.next().is_none(), "a finished Records yields again");
                assert_eq!(
                    end,
                    RefEnd::Clean,
                    "iteration ended without the corruption at {end:?}"
                );
                break;
            }
            Some(Ok(r)) => {
                let rf = refs.get(i).unwrap_or_else(|| {
                    panic!(
                        "Records yielded a record at {} the reference ({end:?}) has not",
                        r.offset
                    )
                });
                assert_eq!(
                    announced,
                    Some(r.offset),
                    "next_offset() != the record's offset"
                );
                assert_eq!(r.offset, rf.offset, "record {i}: offset");
                assert_eq!(
                    (r.ts_ns, r.event_id, r.type_),
                    (rf.ts_ns, rf.event_id, rf.type_)
                );
                assert_eq!(r.data.len(), rf.len as usize, "record {i}: data length");
                let d = r.data.as_ptr() as usize;
                assert_eq!(
                    d,
                    base + r.offset + 16,
                    "record {i}: data does not follow its header"
                );
                assert!(
                    d + r.data.len() <= base + payload.len(),
                    "record {i}: data slice past the payload"
                );
                assert!(last.is_none_or(|l| r.offset > l), "offsets must increase");
                assert_eq!(r.size(), 16 + r.data.len());
                last = Some(r.offset);
                let sdk = LoadgenRecord::parse(r.data).map(|l| (l.seq, l.cpu, l.fill_len));
                assert_eq!(
                    sdk,
                    loadgen_parse(r.data),
                    "LoadgenRecord::parse vs the ABI's checksum/fill"
                );
                if sdk.is_some() {
                    st.loadgen += 1;
                }
                i += 1;
            }
            Some(Err(e)) => {
                match e {
                    Error::CorruptRecord { offset, len, .. } => {
                        assert_eq!(
                            RefEnd::Corrupt { offset, len },
                            end,
                            "corruption reported where the reference has none or another"
                        );
                        assert_eq!(announced, Some(offset), "error offset != next_offset()");
                    }
                    other => panic!("Records returned a non-framing error: {other:?}"),
                }
                for _ in 0..3 {
                    assert!(it.next().is_none(), "an error must end the iteration");
                }
                assert_eq!(it.next_offset(), None, "next_offset() after an error");
                st.corrupt += 1;
                break;
            }
        }
    }
    assert_eq!(i, refs.len(), "Records stopped before the reference");
    st
}

/// Fuzz target `records`: a payload (framed records built from the input
/// and then damaged, or raw input bytes), walked from 0, resumed at
/// every boundary the walk reported, and from offsets taken from the
/// input (unaligned, past the end).
pub fn records_one(data: &[u8]) -> RecStats {
    let mut s = Src::new(data);
    let starts = [s.u16() as usize, s.u8() as usize];
    let payload: Vec<u8> = if s.bool() {
        s.rest().to_vec()
    } else {
        let mut p = Vec::new();
        for _ in 0..s.below(12) {
            let event_id = match s.below(8) {
                0..=3 => 0,
                4..=5 => 1,
                6 => 2,
                _ => s.u16(),
            };
            let ts = s.u64();
            let type_ = s.u16();
            if s.below(4) == 0 {
                let d = abi_text::loadgen_data(s.u64() % 1000, s.u32() % 4, s.below(48) as usize);
                push_record(&mut p, ts, event_id, type_, &d);
            } else {
                let n = s.below(40) as usize;
                let d = s.bytes(n).to_vec();
                push_record(&mut p, ts, event_id, type_, &d);
            }
        }
        match s.below(5) {
            0 => {}
            1 => {
                let n = 1 + s.below(24) as usize;
                p.extend_from_slice(s.bytes(n));
            }
            2 => {
                let cut = s.below(p.len() as u64 + 1) as usize;
                p.truncate(p.len() - cut.min(p.len()));
            }
            _ => {
                for _ in 0..1 + s.below(4) {
                    if !p.is_empty() {
                        let at = s.below(p.len() as u64) as usize;
                        p[at] = s.u8();
                    }
                }
            }
        }
        p
    };
    let mut st = check_records(&payload, 0);
    // Resume at every boundary a walk reports, and at arbitrary offsets.
    let mut it = Records::new(&payload);
    let mut points = Vec::new();
    while let Some(o) = it.next_offset() {
        points.push(o);
        if !matches!(it.next(), Some(Ok(_))) {
            break;
        }
    }
    for p in points.into_iter().chain(starts) {
        let r = check_records(&payload, p);
        st.corrupt += r.corrupt;
    }
    st
}

/// Fuzz target `info`: `GET_INFO`, `GET_CURSOR` and `GET_STATS` answers
/// (a valid geometry damaged field by field, or any bytes) through
/// `ChannelInfo::from_raw`, `Cursor::from_raw` and `Stats::from`. An
/// accepted geometry must be one the walker can trust (the ABI's
/// relations hold); an exact kernel answer must be accepted; the ABI
/// version is checked first.
pub fn info_one(data: &[u8]) -> bool {
    let mut s = Src::new(data);
    let page = 4096u64 << s.below(3);
    let subbuf = page * (1 + s.below(64));
    let n = 2 + s.below(64);
    let nr_cpu_ids = 1 + s.below(1024) as u32;
    let mut i = abi::relaymap_info {
        size: abi::RELAYMAP_INFO_SIZE_VER0,
        abi_version: 2,
        header_size: 112,
        flags: (s.u8() & 3) as u32,
        subbuf_size: subbuf,
        n_subbufs: n,
        alloc_size: subbuf * n,
        nr_cpu_ids,
        max_record_size: (subbuf - 112) as u32,
        max_data_size: (subbuf - 128) as u32,
        page_size: page as u32,
        ..Default::default()
    };
    for c in 0..nr_cpu_ids.min(1024) {
        if s.below(4) != 0 {
            i.cpu_mask[c as usize / 64] |= 1u64 << (c % 64);
        }
    }
    for (k, b) in s.bytes(64).iter().enumerate() {
        i.name[k] = *b as core::ffi::c_char;
    }
    i.name[63] = 0;
    let exact = s.below(4) == 0;
    if !exact {
        for _ in 0..1 + s.below(4) {
            let v = match s.below(6) {
                0 => 0,
                1 => 1,
                2 => u64::MAX,
                3 => subbuf,
                4 => subbuf * n,
                _ => s.u64(),
            };
            match s.below(12) {
                0 => i.abi_version = v as u32,
                1 => i.header_size = v as u32,
                2 => i.flags = v as u32,
                3 => i.subbuf_size = v,
                4 => i.n_subbufs = v,
                5 => i.alloc_size = v,
                6 => i.nr_cpu_ids = v as u32,
                7 => i.max_record_size = v as u32,
                8 => i.max_data_size = v as u32,
                9 => i.page_size = v as u32,
                10 => i.cpu_mask[s.below(16) as usize] = v,
                _ => i.name[s.below(64) as usize] = v as core::ffi::c_char,
            }
        }
    }
    let ok = match ChannelInfo::from_raw(&i) {
        Ok(ci) => {
            check_info(&i, &ci);
            true
        }
        Err(Error::AbiMismatch { kernel, sdk }) => {
            assert!(!exact, "an exact GET_INFO refused as an ABI mismatch");
            assert_eq!((kernel, sdk), (i.abi_version, 2));
            assert_ne!(i.abi_version, 2, "AbiMismatch for version 2");
            false
        }
        Err(Error::Geometry { .. }) => {
            assert!(!exact, "an exact GET_INFO refused: {i:?}");
            assert_eq!(
                i.abi_version, 2,
                "the ABI version is checked before the geometry"
            );
            false
        }
        Err(e) => panic!("from_raw: unexpected error kind {e:?}"),
    };
    check_cursor(&mut s);
    check_stats(&mut s);
    ok
}

fn check_info(i: &abi::relaymap_info, ci: &ChannelInfo) {
    assert_eq!(i.abi_version, 2);
    assert!(
        i.header_size as usize >= abi_text::HEADER_SIZE,
        "header_size below the header"
    );
    let page = u64::from(i.page_size);
    assert!(
        page > 0 && i.subbuf_size.is_multiple_of(page),
        "subbuf_size not whole pages"
    );
    assert!(
        i.subbuf_size > u64::from(i.header_size),
        "no room for events"
    );
    assert_eq!(
        i.subbuf_size.checked_mul(i.n_subbufs),
        Some(i.alloc_size),
        "alloc_size"
    );
    assert!(usize::try_from(i.alloc_size).is_ok());
    assert_eq!(
        i.max_data_size as u64 + 16,
        u64::from(i.max_record_size),
        "max_data_size"
    );
    assert!(
        u64::from(i.max_record_size) <= i.subbuf_size - u64::from(i.header_size),
        "max_record_size beyond the events"
    );
    assert_eq!(
        (
            ci.subbuf_size,
            ci.n_subbufs,
            ci.alloc_size,
            ci.header_size,
            ci.page_size
        ),
        (
            i.subbuf_size,
            i.n_subbufs,
            i.alloc_size,
            i.header_size,
            i.page_size
        )
    );
    assert_eq!(
        (ci.nr_cpu_ids, ci.max_record_size, ci.max_data_size, ci.uuid),
        (i.nr_cpu_ids, i.max_record_size, i.max_data_size, i.uuid)
    );
    assert_eq!(
        ci.mode == relaymap::Mode::Overwrite,
        i.flags & abi_text::INFO_OVERWRITE != 0
    );
    assert_eq!(ci.destroyed, i.flags & abi_text::INFO_DESTROYED != 0);
    let want: Vec<u32> = (0..i.nr_cpu_ids.min(1024))
        .filter(|c| i.cpu_mask[*c as usize / 64] >> (c % 64) & 1 != 0)
        .collect();
    assert_eq!(ci.cpus, want, "cpus vs cpu_mask below nr_cpu_ids");
    let raw: Vec<u8> = i
        .name
        .iter()
        .map(|c| *c as u8)
        .take_while(|c| *c != 0)
        .collect();
    assert_eq!(ci.name, String::from_utf8_lossy(&raw), "name");
}

fn check_cursor(s: &mut Src<'_>) {
    let mut c = abi::relaymap_cursor {
        size: 72,
        cpu: s.u32(),
        produced: s.u64(),
        consumed: s.u64(),
        records_dropped: s.u64(),
        subbufs_lapped: s.u64(),
        records_rejected: s.u64(),
        flags: s.u32(),
        holder_pid: s.u32() as i32,
        ..Default::default()
    };
    for (k, b) in s.bytes(16).iter().enumerate() {
        c.holder_comm[k] = *b as core::ffi::c_char;
    }
    let r = Cursor::from_raw(&c);
    assert_eq!(
        (
            r.cpu,
            r.produced,
            r.consumed,
            r.records_dropped,
            r.subbufs_lapped,
            r.records_rejected
        ),
        (
            c.cpu,
            c.produced,
            c.consumed,
            c.records_dropped,
            c.subbufs_lapped,
            c.records_rejected
        )
    );
    assert_eq!(r.held, c.flags & abi_text::CURSOR_HELD != 0);
    assert_eq!(r.destroyed, c.flags & abi_text::CURSOR_DESTROYED != 0);
    assert_eq!(r.holder_pid, (c.holder_pid != 0).then_some(c.holder_pid));
    let comm: Vec<u8> = c
        .holder_comm
        .iter()
        .map(|x| *x as u8)
        .take_while(|x| *x != 0)
        .collect();
    let want = (!comm.is_empty()).then(|| String::from_utf8_lossy(&comm).into_owned());
    assert_eq!(
        r.holder_comm, want,
        "holder_comm: up to the NUL, at most 16 bytes"
    );
}

fn check_stats(s: &mut Src<'_>) {
    let raw = abi::relaymap_stats {
        size: 80,
        cpu: s.u32() as i32,
        records_written: s.u64(),
        bytes_written: s.u64(),
        records_dropped: s.u64(),
        subbufs_produced: s.u64(),
        subbufs_consumed: s.u64(),
        subbufs_lapped: s.u64(),
        flushes: s.u64(),
        resets: s.u64(),
        records_rejected: s.u64(),
    };
    let st = Stats::from(raw);
    assert_eq!(
        [
            st.records_written,
            st.bytes_written,
            st.records_dropped,
            st.subbufs_produced,
            st.subbufs_consumed,
            st.subbufs_lapped,
            st.flushes,
            st.resets,
            st.records_rejected
        ],
        [
            raw.records_written,
            raw.bytes_written,
            raw.records_dropped,
            raw.subbufs_produced,
            raw.subbufs_consumed,
            raw.subbufs_lapped,
            raw.flushes,
            raw.resets,
            raw.records_rejected
        ]
    );
}

/// A merged item: a record, or an error tagged (stream, position).
type Item = Result<Record<'static>, (usize, usize)>;

/// Fuzz target `merge`: up to 8 streams of records (sorted by timestamp
/// as the kernel writes them, or not), some with errors, through
/// `merge::Merge`. Always: every item comes out exactly once and each
/// stream's order is kept. For sorted streams: keys never go down, equal
/// keys go to the lower stream first, an error (key 0) comes before
/// every record of a later stream position.
pub fn merge_one(data: &[u8]) -> usize {
    let mut s = Src::new(data);
    let k = s.below(9) as usize;
    let sorted = s.below(4) != 0;
    let mut streams: Vec<Vec<Item>> = Vec::new();
    for si in 0..k {
        let mut ts = s.below(8);
        let mut v = Vec::new();
        for j in 0..s.below(16) as usize {
            if s.below(16) == 0 {
                v.push(Err((si, j)));
                continue;
            }
            ts = if sorted { ts + s.below(4) } else { s.below(16) };
            v.push(Ok(Record {
                event_id: 0,
                type_: 0,
                ts_ns: ts,
                data: &[],
                offset: j,
            }));
        }
        streams.push(v);
    }
    let total: usize = streams.iter().map(Vec::len).sum();
    let out: Vec<(usize, Item)> =
        Merge::new(streams.iter().map(|v| v.clone().into_iter())).collect();
    assert_eq!(out.len(), total, "merge lost or duplicated items");
    let mut next = vec![0usize; k];
    let all_sorted = streams.iter().all(|v| is_sorted(v));
    let mut prev: Option<(u64, usize)> = None;
    for (si, item) in &out {
        let j = next[*si];
        assert_eq!(
            Some(item),
            streams[*si].get(j),
            "stream {si}: item out of its order"
        );
        next[*si] += 1;
        if all_sorted {
            // Errors sort as key 0 (they surface first).
            let key = key_of(item);
            if let Some((pk, ps)) = prev {
                assert!(key >= pk, "keys went down: {pk} -> {key}");
                if key == pk {
                    assert!(*si >= ps, "a tie went to the higher stream first");
                }
            }
            prev = Some((key, *si));
        }
    }
    total
}

fn key_of(r: &Item) -> u64 {
    r.as_ref().map_or(0, |r| r.ts_ns)
}

fn is_sorted(v: &[Item]) -> bool {
    v.windows(2).all(|w| key_of(&w[0]) <= key_of(&w[1]))
}
