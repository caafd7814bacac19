//! The pure walker: a function of (mapped bytes, cursor), no syscalls.
//!
//! It decides which sub-buffers of one CPU can be handed out and validates
//! their headers. Everything here works on a [`Region`] (pointer + length)
//! so the unit tests run it over plain heap memory (and are Miri-ready);
//! [`crate::Channel`] runs it over the kernel's mapping.

use std::sync::atomic::{fence, AtomicU64, Ordering};

use crate::abi::{self, off};
use crate::error::Corruption;

/// Whether the kernel waits for the reader or laps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The default: a full buffer drops new records (counted); a finished
    /// sub-buffer stays untouched until consumed, so views are zero-copy.
    NoOverwrite,
    /// Flight recorder: the kernel laps unconsumed sub-buffers. Payloads are
    /// copied and validated (seqlock) before they are handed out.
    Overwrite,
}

/// Geometry of one CPU buffer, as checked at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub subbuf_size: u64,
    pub n_subbufs: u64,
    pub alloc_size: u64,
}

impl Geometry {
    pub fn slot_offset(&self, seq: u64) -> usize {
        ((seq % self.n_subbufs) * self.subbuf_size) as usize
    }
}

/// A sub-buffer header as read from memory (a copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubbufHeader {
    /// CPU that owns the buffer.
    pub cpu: u32,
    /// `RELAYMAP_SB_*` flags.
    pub flags: u32,
    /// Sub-buffer number on this CPU.
    pub seq: u64,
    /// CLOCK_MONOTONIC (ns) when the sub-buffer was opened.
    pub ts_begin_ns: u64,
    /// CLOCK_MONOTONIC (ns) when it was closed.
    pub ts_end_ns: u64,
    /// Where the payload starts.
    pub header_size: u16,
    /// Payload bytes.
    pub payload_size: u32,
    /// Unused bytes at the end.
    pub padding: u32,
    /// Records dropped on this CPU (cumulative) when it was closed.
    pub records_dropped: u64,
}

impl SubbufHeader {
    /// Closed early by a flush.
    pub fn is_flushed(&self) -> bool {
        self.flags & abi::RELAYMAP_SB_FLUSHED != 0
    }
    /// Records were dropped since the previous sub-buffer closed.
    pub fn had_drops(&self) -> bool {
        self.flags & abi::RELAYMAP_SB_DROPS != 0
    }
}

/// Read-only view of mapped memory that another party (the kernel, or the
/// simulated producer) may write concurrently. It never hands out a `&[u8]`
/// by itself: [`Region::slice`] is `unsafe` and its callers say why the
/// bytes are stable.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region {
    ptr: *const u8,
    len: usize,
}

// SAFETY: a Region is a pointer + length into a mapping owned elsewhere;
// reading it from another thread is as safe as from this one (all reads
// are volatile/atomic or documented at the slice).
unsafe impl Send for Region {}
// SAFETY: as above; a Region has no interior state.
unsafe impl Sync for Region {}

impl Region {
    /// # Safety
    /// `ptr..ptr+len` must stay mapped and readable for as long as the
    /// Region (and every slice made from it) is used, and `ptr` must be
    /// 8-byte aligned.
    pub unsafe fn new(ptr: *const u8, len: usize) -> Region {
        debug_assert!(ptr as usize % 8 == 0);
        Region { ptr, len }
    }

    fn check(&self, off: usize, n: usize) {
        assert!(
            off.checked_add(n).is_some_and(|e| e <= self.len),
            "walker read out of region: {off}+{n} > {}",
            self.len
        );
    }

    /// Acquire load of an 8-byte aligned u64 (the `commit` mark).
    pub fn load_u64_acquire(&self, off: usize) -> u64 {
        self.check(off, 8);
        assert!(off % 8 == 0);
        // SAFETY: in bounds and aligned (checked above; the base is 8-byte
        // aligned by `new`'s contract). The writer stores this word with
        // smp_store_release / AtomicU64::store(Release), so an atomic view
        // of it is the right type; we never write through it.
        let a = unsafe { &*(self.ptr.add(off) as *const AtomicU64) };
        a.load(Ordering::Acquire)
    }

    fn read<T: Copy>(&self, off: usize) -> T {
        self.check(off, std::mem::size_of::<T>());
        // SAFETY: in bounds (checked). Volatile because the writer may be
        // another process or the kernel; unaligned-safe read for small
        // header fields at their natural alignment in practice.
        unsafe { std::ptr::read_volatile(self.ptr.add(off) as *const T) }
    }

    pub fn read_u16(&self, off: usize) -> u16 {
        self.read(off)
    }
    pub fn read_u32(&self, off: usize) -> u32 {
        self.read(off)
    }
    pub fn read_u64(&self, off: usize) -> u64 {
        self.read(off)
    }

    /// Volatile copy of `len` bytes at `off` into `dst` (appended).
    pub fn copy_volatile(&self, off: usize, len: usize, dst: &mut Vec<u8>) {
        self.check(off, len);
        dst.reserve(len);
        let words = len / 8;
        let base = self.ptr.wrapping_add(off);
        if base as usize % 8 == 0 {
            for w in 0..words {
                // SAFETY: in bounds (checked), aligned (base is aligned).
                let v = unsafe { std::ptr::read_volatile((base as *const u64).add(w)) };
                dst.extend_from_slice(&v.to_ne_bytes());
            }
        } else {
            for i in 0..words * 8 {
                // SAFETY: in bounds (checked).
                dst.push(unsafe { std::ptr::read_volatile(base.add(i)) });
            }
        }
        for i in words * 8..len {
            // SAFETY: in bounds (checked).
            dst.push(unsafe { std::ptr::read_volatile(base.add(i)) });
        }
    }

    /// # Safety
    /// Nobody may write `off..off+len` while the returned slice lives. The
    /// caller names why (e.g. a committed sub-buffer in no-overwrite mode is
    /// not touched by the kernel until it is consumed).
    pub unsafe fn slice<'a>(&self, off: usize, len: usize) -> &'a [u8] {
        self.check(off, len);
        // SAFETY: in bounds (checked); stability is the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr.add(off), len) }
    }
}

/// What to read for one CPU, given a cursor: `[start, end)`, and how many
/// sub-buffers before `start` were lapped (overwrite mode only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    pub start: u64,
    pub end: u64,
    pub lapped: u64,
}

/// The sub-buffers worth reading after `next` when the kernel says
/// `produced`. In overwrite mode only the `n_subbufs - 1` before `produced`
/// can still be valid (the slot of `produced` itself is being written).
pub(crate) fn plan(next: u64, produced: u64, n_subbufs: u64, mode: Mode) -> Plan {
    if produced <= next {
        return Plan {
            start: next,
            end: next,
            lapped: 0,
        };
    }
    match mode {
        Mode::NoOverwrite => Plan {
            start: next,
            end: produced,
            lapped: 0,
        },
        Mode::Overwrite => {
            let window = n_subbufs.saturating_sub(1);
            let start = next.max(produced.saturating_sub(window));
            Plan {
                start,
                end: produced,
                lapped: start - next,
            }
        }
    }
}

/// Reads and validates every header field except `commit` at `base`.
fn read_fields(
    r: &Region,
    base: usize,
    geo: &Geometry,
    cpu: u32,
) -> Result<SubbufHeader, Corruption> {
    let magic = r.read_u32(base + off::MAGIC);
    if magic != abi::RELAYMAP_SUBBUF_MAGIC {
        return Err(Corruption::BadMagic { found: magic });
    }
    let v = r.read_u16(base + off::ABI_VERSION);
    if u32::from(v) != abi::RELAYMAP_ABI_VERSION {
        return Err(Corruption::BadAbiVersion { found: v });
    }
    let header_size = r.read_u16(base + off::HEADER_SIZE);
    if (header_size as usize) < abi::SUBBUF_HEADER_SIZE
        || header_size as usize % abi::RELAYMAP_RECORD_ALIGN != 0
        || u64::from(header_size) > geo.subbuf_size
    {
        return Err(Corruption::BadHeaderSize { found: header_size });
    }
    let hcpu = r.read_u32(base + off::CPU);
    if hcpu != cpu {
        return Err(Corruption::WrongCpu { found: hcpu });
    }
    let payload_size = r.read_u32(base + off::PAYLOAD_SIZE);
    let padding = r.read_u32(base + off::PADDING);
    if u64::from(header_size) + u64::from(payload_size) + u64::from(padding) != geo.subbuf_size {
        return Err(Corruption::PayloadBeyondSubbuf {
            header_size,
            payload_size,
            padding,
            subbuf_size: geo.subbuf_size,
        });
    }
    Ok(SubbufHeader {
        cpu: hcpu,
        flags: r.read_u32(base + off::FLAGS),
        seq: r.read_u64(base + off::SEQ),
        ts_begin_ns: r.read_u64(base + off::TS_BEGIN),
        ts_end_ns: r.read_u64(base + off::TS_END),
        header_size,
        payload_size,
        padding,
        records_dropped: r.read_u64(base + off::RECORDS_DROPPED),
    })
}

/// No-overwrite mode: validates sub-buffer `seq`, which the cursor says is
/// produced (committed) and not consumed. Returns the header and the byte
/// range of the payload inside the region. The caller may make a slice of
/// that range: the kernel does not write the sub-buffer again until it is
/// consumed.
pub(crate) fn read_stable(
    r: &Region,
    geo: &Geometry,
    cpu: u32,
    seq: u64,
) -> Result<(SubbufHeader, std::ops::Range<usize>), Corruption> {
    let base = geo.slot_offset(seq);
    // Who writes: the module, on the CPU that owns the buffer: the payload
    // (relay_write/relaymap_write), then the header fields, then `commit`
    // with smp_store_release() in relaymap_close_subbuf() (called from the
    // subbuf_start callback), then `published` with smp_store_release().
    // This acquire load of `commit` pairs with that store-release, so every
    // header field and payload byte of sub-buffer `seq` is visible below.
    // (GET_CURSOR's smp_load_acquire() of `published` already ordered the
    // ioctl after it; the local acquire also covers the sim backend, whose
    // producer may be another process.)
    let commit = r.load_u64_acquire(base + off::COMMIT);
    let hseq = r.read_u64(base + off::SEQ);
    if commit != seq + 1 || hseq != seq {
        return Err(Corruption::SeqMismatch {
            expected: seq,
            found: hseq,
            commit,
        });
    }
    let h = read_fields(r, base, geo, cpu)?;
    let start = base + h.header_size as usize;
    Ok((h, start..start + h.payload_size as usize))
}

/// Outcome of reading one sub-buffer in overwrite mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Copied {
    /// Copied and validated: the header, and the payload's range in `dst`.
    Ok(SubbufHeader, std::ops::Range<usize>),
    /// The kernel lapped it (before or during the copy).
    Lapped,
    /// Corrupt header.
    Corrupt(Corruption),
}

/// Overwrite mode: copies sub-buffer `seq` into `dst` and validates it with
/// the seqlock of the ABI (commit + seq before and after the copy). On
/// anything but `Copied::Ok`, `dst` is truncated back.
pub(crate) fn read_copy(
    r: &Region,
    geo: &Geometry,
    cpu: u32,
    seq: u64,
    dst: &mut Vec<u8>,
) -> Copied {
    let base = geo.slot_offset(seq);
    let mark = dst.len();
    // Seqlock read side, first half. Acquire pairs with the
    // smp_store_release() of `commit` in relaymap_close_subbuf(): if we see
    // commit == seq + 1, the header and payload of that lap are visible.
    let commit1 = r.load_u64_acquire(base + off::COMMIT);
    let seq1 = r.read_u64(base + off::SEQ);
    if commit1 != seq + 1 || seq1 != seq {
        // Open (commit 0), or already a later lap, or never written.
        return if seq1 > seq || commit1 > seq + 1 || commit1 == 0 {
            Copied::Lapped
        } else {
            Copied::Corrupt(Corruption::SeqMismatch {
                expected: seq,
                found: seq1,
                commit: commit1,
            })
        };
    }
    let h = match read_fields(r, base, geo, cpu) {
        Ok(h) => h,
        Err(c) => {
            // A header torn by a concurrent lap looks corrupt: recheck.
            return if r.load_u64_acquire(base + off::COMMIT) != commit1 {
                Copied::Lapped
            } else {
                Copied::Corrupt(c)
            };
        }
    };
    r.copy_volatile(base + h.header_size as usize, h.payload_size as usize, dst);
    // Seqlock read side, second half. When the module laps this slot it
    // first stores commit = 0, then smp_wmb() (relaymap_open_subbuf()),
    // then rewrites the header and payload. This acquire fence orders the
    // copy above before the re-reads below, so if the copy saw any byte of
    // the new lap, the re-read sees commit != seq + 1 (or a new seq) and
    // the copy is thrown away as lapped.
    fence(Ordering::Acquire);
    let commit2 = r.read_u64(base + off::COMMIT);
    let seq2 = r.read_u64(base + off::SEQ);
    if commit2 != commit1 || seq2 != seq {
        dst.truncate(mark);
        return Copied::Lapped;
    }
    Copied::Ok(h, mark..dst.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An aligned heap buffer laid out like a CPU buffer.
    struct Fake {
        words: Vec<u64>,
        geo: Geometry,
    }

    impl Fake {
        fn new(subbuf_size: u64, n: u64) -> Fake {
            Fake {
                words: vec![0; (subbuf_size * n / 8) as usize],
                geo: Geometry {
                    subbuf_size,
                    n_subbufs: n,
                    alloc_size: subbuf_size * n,
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
        fn close(&mut self, cpu: u32, seq: u64, payload: &[u8]) {
            let geo = self.geo;
            let base = geo.slot_offset(seq);
            let h = abi::relaymap_subbuf_header {
                magic: abi::RELAYMAP_SUBBUF_MAGIC,
                abi_version: abi::RELAYMAP_ABI_VERSION as u16,
                header_size: abi::SUBBUF_HEADER_SIZE as u16,
                cpu,
                flags: 0,
                seq,
                ts_begin_ns: 1,
                ts_end_ns: 2,
                payload_size: payload.len() as u32,
                padding: (geo.subbuf_size as usize - 64 - payload.len()) as u32,
                records_dropped: 0,
                commit: seq + 1,
            };
            let b = self.bytes();
            // SAFETY: header is repr(C) plain data of 64 bytes.
            let hb: [u8; 64] = unsafe { std::mem::transmute(h) };
            b[base..base + 64].copy_from_slice(&hb);
            b[base + 64..base + 64 + payload.len()].copy_from_slice(payload);
        }
    }

    #[test]
    fn plan_modes() {
        assert_eq!(
            plan(0, 0, 4, Mode::NoOverwrite),
            Plan {
                start: 0,
                end: 0,
                lapped: 0
            }
        );
        assert_eq!(
            plan(2, 5, 4, Mode::NoOverwrite),
            Plan {
                start: 2,
                end: 5,
                lapped: 0
            }
        );
        assert_eq!(
            plan(0, 10, 4, Mode::Overwrite),
            Plan {
                start: 7,
                end: 10,
                lapped: 7
            }
        );
        assert_eq!(
            plan(8, 10, 4, Mode::Overwrite),
            Plan {
                start: 8,
                end: 10,
                lapped: 0
            }
        );
        assert_eq!(plan(12, 10, 4, Mode::Overwrite).end, 12);
    }

    #[test]
    fn stable_ok_and_corrupt() {
        let mut f = Fake::new(256, 4);
        f.close(3, 0, b"hello world.....");
        let r = f.region();
        let (h, range) = read_stable(&r, &f.geo, 3, 0).unwrap();
        assert_eq!(h.payload_size, 16);
        // SAFETY: nobody writes the fake buffer during the test.
        let payload = unsafe { r.slice(range.start, range.len()) };
        assert_eq!(payload, b"hello world.....");
        // Wrong seq expected (cursor says 4, slot holds 0).
        assert!(matches!(
            read_stable(&r, &f.geo, 3, 4),
            Err(Corruption::SeqMismatch {
                expected: 4,
                found: 0,
                ..
            })
        ));
        // Wrong cpu.
        assert_eq!(
            read_stable(&r, &f.geo, 1, 0),
            Err(Corruption::WrongCpu { found: 3 })
        );
        // Bad magic.
        f.bytes()[0] = 0;
        let r = f.region();
        assert!(matches!(
            read_stable(&r, &f.geo, 3, 0),
            Err(Corruption::BadMagic { .. })
        ));
        // Payload beyond sub-buffer.
        let mut f = Fake::new(256, 4);
        f.close(0, 1, b"x");
        let base = 256 + off::PAYLOAD_SIZE;
        f.bytes()[base..base + 4].copy_from_slice(&1000u32.to_ne_bytes());
        let r = f.region();
        assert!(matches!(
            read_stable(&r, &f.geo, 0, 1),
            Err(Corruption::PayloadBeyondSubbuf {
                payload_size: 1000,
                ..
            })
        ));
    }

    #[test]
    fn copy_detects_laps() {
        let mut f = Fake::new(128, 2);
        f.close(0, 5, b"abcdefghij");
        let r = f.region();
        let mut dst = Vec::new();
        match read_copy(&r, &f.geo, 0, 5, &mut dst) {
            Copied::Ok(h, range) => {
                assert_eq!(h.seq, 5);
                assert_eq!(&dst[range], b"abcdefghij");
            }
            other => panic!("{other:?}"),
        }
        // Slot of 3 holds 5: lapped.
        assert_eq!(read_copy(&r, &f.geo, 0, 3, &mut dst), Copied::Lapped);
        // Open sub-buffer (commit 0): lapped too (being rewritten).
        let base = f.geo.slot_offset(5) + off::COMMIT;
        f.bytes()[base..base + 8].copy_from_slice(&0u64.to_ne_bytes());
        let r = f.region();
        assert_eq!(read_copy(&r, &f.geo, 0, 5, &mut dst), Copied::Lapped);
        assert_eq!(dst.len(), 10);
    }

    #[test]
    fn odd_lengths_copy() {
        let mut f = Fake::new(128, 2);
        f.close(0, 0, b"abc");
        let r = f.region();
        let mut dst = vec![9];
        r.copy_volatile(64, 3, &mut dst);
        assert_eq!(dst, [9, b'a', b'b', b'c']);
        r.copy_volatile(65, 2, &mut dst);
        assert_eq!(&dst[4..], b"bc");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: if cfg!(miri) { 8 } else { 256 },
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Any bytes, any cursor: the walker answers, never panics, and a
        /// payload range it accepts lies inside its sub-buffer.
        #[test]
        fn walker_total_on_garbage(
            words in proptest::collection::vec(proptest::prelude::any::<u64>(), 32..256),
            n in 2u64..6,
            seq in 0u64..20,
            cpu in 0u32..3,
        ) {
            let subbuf = ((words.len() as u64 * 8) / n) & !7;
            proptest::prop_assume!(subbuf > 64);
            let geo = Geometry { subbuf_size: subbuf, n_subbufs: n, alloc_size: subbuf * n };
            // SAFETY: `words` outlives the region and nobody writes it.
            let r = unsafe { Region::new(words.as_ptr() as *const u8, words.len() * 8) };
            if let Ok((_, range)) = read_stable(&r, &geo, cpu, seq) {
                let base = geo.slot_offset(seq);
                proptest::prop_assert!(range.start >= base + 64);
                proptest::prop_assert!(range.end <= base + subbuf as usize);
            }
            let mut dst = Vec::new();
            if let Copied::Ok(_, range) = read_copy(&r, &geo, cpu, seq, &mut dst) {
                proptest::prop_assert_eq!(range.end, dst.len());
            }
            // And the record iterator over the same bytes.
            // SAFETY: as above.
            let all = unsafe { r.slice(0, words.len() * 8) };
            for rec in crate::records::Records::new(all).flatten() {
                proptest::prop_assert!(rec.offset + rec.size() <= all.len());
            }
        }
    }
}
