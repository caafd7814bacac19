//! The record framing of ABI 2 (CTF events): the one framing walker, and
//! the load generator's record data.
//!
//! A payload (the events of one sub-buffer) is a sequence of
//! `struct relaymap_record { u64 ts_ns; u16 event_id; u16 type; u32 len; }`
//! followed by `len` data bytes, in host byte order; the next record starts
//! at `ALIGN(16 + len, 8)`, and the last record's data ends exactly at the
//! end of the payload (no trailing alignment).

use crate::abi;
use crate::error::{Error, Result};

/// One framed record, borrowed from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// CTF event class: `RELAYMAP_EVENT_RECORD` (binary) or
    /// `RELAYMAP_EVENT_PRINTF` (text).
    pub event_id: u16,
    /// `RELAYMAP_REC_*` or a writer's own type `>= 0x100`.
    pub type_: u16,
    /// CLOCK_MONOTONIC (ns) when the record was written.
    pub ts_ns: u64,
    /// The record's data (`len` bytes).
    pub data: &'a [u8],
    /// Byte offset of the record's header in its payload.
    pub offset: usize,
}

impl Record<'_> {
    /// Bytes of header + data (unaligned).
    pub fn size(&self) -> usize {
        abi::RECORD_HEADER_SIZE + self.data.len()
    }
}

/// Iterator over the records of one payload. Yields one `Err` on corrupt
/// framing (a header cut short, data past the payload's end, an unknown
/// `event_id`) and then stops; it never panics on any input.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    buf: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Records<'a> {
    /// Iterates the records of `payload`.
    pub fn new(payload: &'a [u8]) -> Records<'a> {
        Records {
            buf: payload,
            pos: 0,
            done: payload.is_empty(),
        }
    }

    /// Resumes iteration at `offset`, a record boundary this walker
    /// reported ([`Records::next_offset`] or a [`Record::offset`]); offsets
    /// of later records and errors stay relative to `payload`.
    pub fn at(payload: &'a [u8], offset: usize) -> Records<'a> {
        Records {
            buf: payload,
            pos: offset.min(payload.len()),
            done: offset >= payload.len(),
        }
    }

    /// Where the next record starts (`None` once the iteration is over).
    pub fn next_offset(&self) -> Option<usize> {
        (!self.done).then_some(self.pos)
    }

    fn fail(
        &mut self,
        offset: usize,
        len: u32,
        reason: &'static str,
    ) -> Option<Result<Record<'a>>> {
        self.done = true;
        Some(Err(Error::CorruptRecord {
            offset,
            len,
            reason,
        }))
    }
}

fn ne_u16(b: &[u8]) -> u16 {
    u16::from_ne_bytes([b[0], b[1]])
}
fn ne_u32(b: &[u8]) -> u32 {
    u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
}
fn ne_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_ne_bytes(a)
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let offset = self.pos;
        let rest = self.buf.len() - offset;
        if rest < abi::RECORD_HEADER_SIZE {
            return self.fail(
                offset,
                0,
                "bytes after the last record are not a record header",
            );
        }
        let h = &self.buf[offset..offset + abi::RECORD_HEADER_SIZE];
        let ts_ns = ne_u64(&h[0..8]);
        let event_id = ne_u16(&h[8..10]);
        let type_ = ne_u16(&h[10..12]);
        let len = ne_u32(&h[12..16]);
        if u32::from(event_id) > abi::RELAYMAP_EVENT_PRINTF {
            return self.fail(offset, len, "unknown event_id");
        }
        let data_start = offset + abi::RECORD_HEADER_SIZE;
        if len as usize > self.buf.len() - data_start {
            return self.fail(offset, len, "data runs past the end of the payload");
        }
        let end = data_start + len as usize;
        if end == self.buf.len() {
            self.done = true;
        } else {
            self.pos = abi::record_align(end);
            if self.pos >= self.buf.len() {
                // Only alignment padding after this record: the ABI says
                // the last record's data ends exactly at the payload's end.
                self.pos = end;
            }
        }
        Some(Ok(Record {
            event_id,
            type_,
            ts_ns,
            data: &self.buf[data_start..end],
            offset,
        }))
    }
}

impl std::iter::FusedIterator for Records<'_> {}

/// Appends one framed record to `out` as a writer in the module does: first
/// zero padding up to the next multiple of 8 of `out.len()` (the alignment
/// of a record that follows another), then the 16-byte header in host order
/// and the data. Returns the record's offset in `out`. Calls in sequence
/// build exactly an ABI 2 payload (no trailing padding). For simulators and
/// tests; consumers only read.
pub fn encode_record(
    out: &mut Vec<u8>,
    event_id: u16,
    type_: u16,
    ts_ns: u64,
    data: &[u8],
) -> usize {
    let at = abi::record_align(out.len());
    out.resize(at, 0);
    out.extend_from_slice(&ts_ns.to_ne_bytes());
    out.extend_from_slice(&event_id.to_ne_bytes());
    out.extend_from_slice(&type_.to_ne_bytes());
    out.extend_from_slice(&(data.len() as u32).to_ne_bytes());
    out.extend_from_slice(data);
    at
}

/// The load generator's record data (`struct relaymap_loadgen_payload` +
/// fill), checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadgenRecord {
    /// Write attempt number on that CPU (a gap is a dropped record).
    pub seq: u64,
    /// CPU of the writer.
    pub cpu: u32,
    /// Fill bytes after the payload struct.
    pub fill_len: usize,
}

/// FNV-1a 32 over `seq` (8 bytes), `cpu` (4 bytes), both in host order,
/// then `fill`: the load generator's checksum.
pub fn loadgen_checksum(seq: u64, cpu: u32, fill: &[u8]) -> u32 {
    let mut h = abi::RELAYMAP_FNV_OFFSET;
    for b in seq
        .to_ne_bytes()
        .iter()
        .chain(cpu.to_ne_bytes().iter())
        .chain(fill)
    {
        h ^= u32::from(*b);
        h = h.wrapping_mul(abi::RELAYMAP_FNV_PRIME);
    }
    h
}

/// `fill[i] = (u8)(seq * 13 + i * 7 + cpu)`.
pub fn loadgen_fill_byte(seq: u64, i: usize, cpu: u32) -> u8 {
    (seq.wrapping_mul(13)
        .wrapping_add((i as u64).wrapping_mul(7))
        .wrapping_add(u64::from(cpu))) as u8
}

/// The data of a load generator record of `record_size` bytes, header
/// included (the module's `record_size` parameter): `record_size - 16`
/// data bytes, at least the 16-byte payload struct.
pub fn loadgen_data(seq: u64, cpu: u32, record_size: usize) -> Vec<u8> {
    let data_len = record_size
        .saturating_sub(abi::RECORD_HEADER_SIZE)
        .max(abi::LOADGEN_PAYLOAD_SIZE);
    let fill: Vec<u8> = (0..data_len - abi::LOADGEN_PAYLOAD_SIZE)
        .map(|i| loadgen_fill_byte(seq, i, cpu))
        .collect();
    let mut d = Vec::with_capacity(data_len);
    d.extend_from_slice(&seq.to_ne_bytes());
    d.extend_from_slice(&cpu.to_ne_bytes());
    d.extend_from_slice(&loadgen_checksum(seq, cpu, &fill).to_ne_bytes());
    d.extend_from_slice(&fill);
    d
}

impl LoadgenRecord {
    /// Parses and verifies (checksum and fill pattern) a load generator
    /// record's data. `None` if it is too short or does not verify.
    pub fn parse(data: &[u8]) -> Option<LoadgenRecord> {
        if data.len() < abi::LOADGEN_PAYLOAD_SIZE {
            return None;
        }
        let seq = ne_u64(&data[0..8]);
        let cpu = ne_u32(&data[8..12]);
        let sum = ne_u32(&data[12..16]);
        let fill = &data[abi::LOADGEN_PAYLOAD_SIZE..];
        if loadgen_checksum(seq, cpu, fill) != sum {
            return None;
        }
        if fill
            .iter()
            .enumerate()
            .any(|(i, b)| *b != loadgen_fill_byte(seq, i, cpu))
        {
            return None;
        }
        Some(LoadgenRecord {
            seq,
            cpu,
            fill_len: fill.len(),
        })
    }
}

#[cfg(test)]
mod tests;
