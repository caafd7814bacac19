//! The pure walker: a function of (mapped bytes, cursor), no syscalls.
//!
//! It decides which sub-buffers of one CPU can be handed out and validates
//! their headers. Everything here works on a [`Region`] (pointer + length)
//! so the unit tests run it over plain heap memory, under Miri too
//! (`tests/host/30-miri.sh`); [`crate::CpuReader`] runs it over the
//! kernel's mapping.

use std::ops::Range;
use std::sync::atomic::{fence, AtomicU64, Ordering};

use crate::abi::{self, off};
use crate::error::Corruption;

/// Whether the kernel waits for the reader or laps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The default: a full buffer drops new records (counted); a finished
    /// sub-buffer stays untouched until consumed, so views are zero-copy.
    NoOverwrite,
    /// Flight recorder: the kernel laps unconsumed sub-buffers. Packets are
    /// copied and validated (seqlock) before they are handed out.
    Overwrite,
}

/// Geometry of one CPU buffer, as checked at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per sub-buffer.
    pub subbuf_size: u64,
    /// Sub-buffers per CPU buffer.
    pub n_subbufs: u64,
    /// The kernel's page size.
    pub page_size: u64,
}

impl Geometry {
    pub fn slot_offset(&self, seq: u64) -> usize {
        ((seq % self.n_subbufs) * self.subbuf_size) as usize
    }
}

/// A sub-buffer header as read from memory (a copy), sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubbufHeader {
    /// CPU that owns the buffer (`cpu_id`).
    pub cpu: u32,
    /// `RELAYMAP_SB_*` flags.
    pub flags: u32,
    /// Sub-buffer number on this CPU (`packet_seq_num`).
    pub seq: u64,
    /// Channel instance.
    pub uuid: [u8; 16],
    /// CLOCK_MONOTONIC (ns) when the sub-buffer was opened.
    pub ts_begin_ns: u64,
    /// CLOCK_MONOTONIC (ns) when it was closed.
    pub ts_end_ns: u64,
    /// Where the events start.
    pub header_size: u16,
    /// Bytes of header + events (`content_size / 8`).
    pub content_size: u64,
    /// Bytes of the CTF packet: content rounded up to the page
    /// (`packet_size / 8`).
    pub packet_size: u64,
    /// Records dropped on this CPU (cumulative) when it was closed.
    pub events_discarded: u64,
    /// Writes refused as too large on this CPU (cumulative) at close.
    pub events_rejected: u64,
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
    /// Bytes of events (`content_size - header_size`).
    pub fn payload_size(&self) -> u64 {
        self.content_size - u64::from(self.header_size)
    }
}

/// Read-only view of mapped memory that another party (the kernel, or the
/// simulated producer) may write concurrently. It never hands out a `&[u8]`
/// by itself: [`Region::slice`] is `unsafe` and its callers say why the
/// bytes are stable.
#[derive(Debug, Clone, Copy)]
pub struct Region {
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
        debug_assert!((ptr as usize).is_multiple_of(8));
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
        assert!(off.is_multiple_of(8));
        // SAFETY: in bounds and aligned (checked above; the base is 8-byte
        // aligned by `new`'s contract). The writer stores this word with
        // smp_store_release() / AtomicU64::store(Release), so an atomic view
        // of it is the right type; we never write through it.
        let a = unsafe { &*(self.ptr.add(off) as *const AtomicU64) };
        a.load(Ordering::Acquire)
    }

    fn read<T: Copy>(&self, off: usize) -> T {
        self.check(off, std::mem::size_of::<T>());
        // SAFETY: in bounds (checked). Volatile because the writer may be
        // another process or the kernel; every header field sits at its
        // natural alignment (offsets from the ABI, base 8-byte aligned).
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
    pub fn read_uuid(&self, off: usize) -> [u8; 16] {
        self.read(off)
    }

    /// Volatile copy of `len` bytes at `off` into `dst` (appended).
    pub fn copy_volatile(&self, off: usize, len: usize, dst: &mut Vec<u8>) {
        self.check(off, len);
        dst.reserve(len);
        let words = len / 8;
        let base = self.ptr.wrapping_add(off);
        if (base as usize).is_multiple_of(8) {
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
pub struct Plan {
    /// First sub-buffer to read.
    pub start: u64,
    /// One past the last sub-buffer to read.
    pub end: u64,
    /// Sub-buffers before `start` that were lapped (overwrite mode).
    pub lapped: u64,
}

/// The sub-buffers worth reading after `next` when the kernel says
/// `produced`. In overwrite mode only the `n_subbufs - 1` before `produced`
/// can still be valid (the slot of `produced` itself is being written).
pub fn plan(next: u64, produced: u64, n_subbufs: u64, mode: Mode) -> Plan {
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

/// Reads and validates every header field except `commit` and
/// `packet_seq_num` (checked by the callers) at `base`.
fn read_fields(
    r: &Region,
    base: usize,
    geo: &Geometry,
    cpu: u32,
    seq: u64,
) -> Result<SubbufHeader, Corruption> {
    let magic = r.read_u32(base + off::MAGIC);
    if magic != abi::RELAYMAP_CTF_MAGIC {
        return Err(Corruption::BadMagic { found: magic });
    }
    let v = r.read_u16(base + off::ABI_VERSION);
    if u32::from(v) != abi::RELAYMAP_ABI_VERSION {
        return Err(Corruption::BadAbiVersion { found: v });
    }
    let header_size = r.read_u16(base + off::HEADER_SIZE);
    if (header_size as usize) < abi::SUBBUF_HEADER_SIZE
        || !(header_size as usize).is_multiple_of(abi::RECORD_ALIGN)
        || u64::from(header_size) > geo.subbuf_size
    {
        return Err(Corruption::BadHeaderSize { found: header_size });
    }
    let hcpu = r.read_u32(base + off::CPU_ID);
    if hcpu != cpu || r.read_u64(base + off::STREAM_INSTANCE_ID) != u64::from(cpu) {
        return Err(Corruption::WrongCpu { found: hcpu });
    }
    let content_bits = r.read_u64(base + off::CONTENT_SIZE);
    let packet_bits = r.read_u64(base + off::PACKET_SIZE);
    let content = content_bits / 8;
    let packet = packet_bits / 8;
    if !content_bits.is_multiple_of(8)
        || !packet_bits.is_multiple_of(8)
        || content < u64::from(header_size)
        || packet < content
        || packet > geo.subbuf_size
        || !packet.is_multiple_of(geo.page_size)
    {
        return Err(Corruption::BadSize {
            content_bits,
            packet_bits,
            subbuf_size: geo.subbuf_size,
        });
    }
    Ok(SubbufHeader {
        cpu: hcpu,
        flags: r.read_u32(base + off::FLAGS),
        seq,
        uuid: r.read_uuid(base + off::UUID),
        ts_begin_ns: r.read_u64(base + off::TIMESTAMP_BEGIN),
        ts_end_ns: r.read_u64(base + off::TIMESTAMP_END),
        header_size,
        content_size: content,
        packet_size: packet,
        events_discarded: r.read_u64(base + off::EVENTS_DISCARDED),
        events_rejected: r.read_u64(base + off::EVENTS_REJECTED),
    })
}

/// No-overwrite mode: validates sub-buffer `seq`, which the cursor says is
/// produced (committed) and not consumed. Returns the header and the byte
/// range of the packet (header, events, page padding) inside the region.
/// The caller may make a slice of that range: the kernel does not write the
/// sub-buffer again until it is consumed.
pub fn read_stable(
    r: &Region,
    geo: &Geometry,
    cpu: u32,
    seq: u64,
) -> Result<(SubbufHeader, Range<usize>), Corruption> {
    let base = geo.slot_offset(seq);
    // Who writes: the module, on the CPU that owns the buffer: the events
    // (relaymap_write() and friends), then the header's closing fields,
    // then `commit` with smp_store_release() when it closes the sub-buffer
    // (kmod: relaymap_close_subbuf(), from relay's subbuf_start callback),
    // and only then the published `produced` count, also with release.
    // This acquire load of `commit` pairs with that store-release of
    // `commit`, so every header field and event byte of sub-buffer `seq` is
    // visible below. (GET_CURSOR's smp_load_acquire() of `produced` already
    // ordered the ioctl after it; this local acquire also covers the sim
    // backend, whose producer is another thread or process.)
    let commit = r.load_u64_acquire(base + off::COMMIT);
    let hseq = r.read_u64(base + off::PACKET_SEQ_NUM);
    if commit != seq + 1 || hseq != seq {
        return Err(Corruption::SeqMismatch {
            expected: seq,
            found: hseq,
            commit,
        });
    }
    let h = read_fields(r, base, geo, cpu, seq)?;
    Ok((h, base..base + h.packet_size as usize))
}

/// Outcome of reading one sub-buffer in overwrite mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Copied {
    /// Copied and validated: the header, and the packet's range in `dst`.
    Ok(SubbufHeader, Range<usize>),
    /// The kernel lapped it (before or during the copy).
    Lapped,
    /// Corrupt header.
    Corrupt(Corruption),
}

/// Overwrite mode: copies the packet of sub-buffer `seq` into `dst` and
/// validates it with the seqlock of the ABI (commit + seq before and after
/// the copy). On anything but `Copied::Ok`, `dst` is truncated back.
pub fn read_copy(r: &Region, geo: &Geometry, cpu: u32, seq: u64, dst: &mut Vec<u8>) -> Copied {
    let base = geo.slot_offset(seq);
    let mark = dst.len();
    // Seqlock read side, first half. Acquire pairs with the module's
    // smp_store_release() of `commit` when it closed the sub-buffer: if we
    // see commit == seq + 1, the header and events of that lap are visible.
    let commit1 = r.load_u64_acquire(base + off::COMMIT);
    let seq1 = r.read_u64(base + off::PACKET_SEQ_NUM);
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
    let h = match read_fields(r, base, geo, cpu, seq) {
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
    r.copy_volatile(base, h.packet_size as usize, dst);
    // Seqlock read side, second half. When the module laps this slot it
    // first stores commit = 0, then smp_wmb() (when it opens the
    // sub-buffer), then rewrites the header and events. This acquire fence
    // orders the copy above before the re-reads below, so if the copy saw
    // any byte of the new lap, the re-read sees commit != seq + 1 (or a new
    // seq) and the copy is thrown away as lapped.
    fence(Ordering::Acquire);
    let commit2 = r.read_u64(base + off::COMMIT);
    let seq2 = r.read_u64(base + off::PACKET_SEQ_NUM);
    if commit2 != commit1 || seq2 != seq {
        dst.truncate(mark);
        return Copied::Lapped;
    }
    Copied::Ok(h, mark..dst.len())
}

#[cfg(test)]
mod tests;
