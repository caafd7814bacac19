//! The ABI's record framing (`struct relaymap_record`, 8-byte aligned) and
//! the load generator's record payload.

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::abi;
use crate::error::{Error, Result};

/// One framed record, borrowed from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// `RELAYMAP_REC_*` or a writer's own type `>= 0x100`.
    pub type_: u16,
    /// Reserved flags (0).
    pub flags: u16,
    /// CLOCK_MONOTONIC (ns) when the record was written.
    pub ts_ns: u64,
    /// The record's data (`size - 16` bytes).
    pub data: &'a [u8],
    /// Byte offset of the record in its payload.
    pub offset: usize,
}

impl Record<'_> {
    /// The record's `size` field: header included, unaligned.
    pub fn size(&self) -> usize {
        self.data.len() + abi::RECORD_HEADER_SIZE
    }
}

/// Iterator over the records of one payload. Yields `Err` once on corrupt
/// framing (size smaller than the record header, or past the payload) and
/// then stops; it never panics on any input.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Records<'a> {
    /// Iterates the records of `payload`.
    pub fn new(payload: &'a [u8]) -> Records<'a> {
        Records {
            buf: payload,
            pos: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.buf.len().checked_sub(self.pos)?;
        if rest < abi::RECORD_HEADER_SIZE {
            return None;
        }
        let h = &self.buf[self.pos..self.pos + abi::RECORD_HEADER_SIZE];
        let size = LE::read_u32(&h[0..4]);
        let offset = self.pos;
        let bad = |reason| {
            Some(Err(Error::CorruptRecord {
                offset,
                size,
                reason,
            }))
        };
        if (size as usize) < abi::RECORD_HEADER_SIZE {
            self.failed = true;
            return bad("smaller than the record header");
        }
        if size as usize > rest {
            self.failed = true;
            return bad("runs past the payload");
        }
        let rec = Record {
            type_: LE::read_u16(&h[4..6]),
            flags: LE::read_u16(&h[6..8]),
            ts_ns: LE::read_u64(&h[8..16]),
            data: &self.buf[offset + abi::RECORD_HEADER_SIZE..offset + size as usize],
            offset,
        };
        let aligned =
            (size as usize).div_ceil(abi::RELAYMAP_RECORD_ALIGN) * abi::RELAYMAP_RECORD_ALIGN;
        self.pos = offset.saturating_add(aligned);
        Some(Ok(rec))
    }
}

impl std::iter::FusedIterator for Records<'_> {}

/// Writes one framed record (header + data + zero padding to 8 bytes) into
/// `out`; returns the aligned length. Used by the simulator and by tests.
pub fn encode_record(out: &mut Vec<u8>, type_: u16, ts_ns: u64, data: &[u8]) -> usize {
    let size = abi::RECORD_HEADER_SIZE + data.len();
    let start = out.len();
    let mut h = [0u8; abi::RECORD_HEADER_SIZE];
    LE::write_u32(&mut h[0..4], size as u32);
    LE::write_u16(&mut h[4..6], type_);
    LE::write_u16(&mut h[6..8], 0);
    LE::write_u64(&mut h[8..16], ts_ns);
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    let aligned = size.div_ceil(abi::RELAYMAP_RECORD_ALIGN) * abi::RELAYMAP_RECORD_ALIGN;
    out.resize(start + aligned, 0);
    aligned
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

const LG_SIZE: usize = std::mem::size_of::<abi::relaymap_loadgen_payload>();

/// FNV-1a 32 over seq (8 LE bytes), cpu (4 LE bytes), then `fill`.
pub fn loadgen_checksum(seq: u64, cpu: u32, fill: &[u8]) -> u32 {
    let mut h = abi::RELAYMAP_FNV_OFFSET;
    for b in seq
        .to_le_bytes()
        .iter()
        .chain(cpu.to_le_bytes().iter())
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

/// Builds the data of a load generator record of `record_size` bytes
/// (record header included), as the module does.
pub fn loadgen_data(seq: u64, cpu: u32, record_size: usize) -> Vec<u8> {
    let fill_len = record_size.saturating_sub(abi::RECORD_HEADER_SIZE + LG_SIZE);
    let fill: Vec<u8> = (0..fill_len)
        .map(|i| loadgen_fill_byte(seq, i, cpu))
        .collect();
    let mut d = Vec::with_capacity(LG_SIZE + fill_len);
    d.extend_from_slice(&seq.to_le_bytes());
    d.extend_from_slice(&cpu.to_le_bytes());
    d.extend_from_slice(&loadgen_checksum(seq, cpu, &fill).to_le_bytes());
    d.extend_from_slice(&fill);
    d
}

impl LoadgenRecord {
    /// Parses and verifies (checksum and fill pattern) a load generator
    /// record's data. `None` if it is too short or does not verify.
    pub fn parse(data: &[u8]) -> Option<LoadgenRecord> {
        if data.len() < LG_SIZE {
            return None;
        }
        let seq = LE::read_u64(&data[0..8]);
        let cpu = LE::read_u32(&data[8..12]);
        let sum = LE::read_u32(&data[12..16]);
        let fill = &data[LG_SIZE..];
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
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let mut p = Vec::new();
        encode_record(&mut p, 7, 100, b"abc");
        encode_record(&mut p, 8, 200, &[]);
        encode_record(&mut p, 9, 300, &[1; 8]);
        assert_eq!(p.len(), 24 + 16 + 24);
        let v: Vec<_> = Records::new(&p).collect::<Result<_>>().unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].data, b"abc");
        assert_eq!(v[1].ts_ns, 200);
        assert_eq!(v[2].type_, 9);
        assert_eq!(v[2].offset, 40);
    }

    #[test]
    fn corrupt_framing_is_an_error() {
        let mut p = Vec::new();
        encode_record(&mut p, 1, 1, b"abcdef");
        p[0] = 3; // size 3 < 16
        let v: Vec<_> = Records::new(&p).collect();
        assert_eq!(v.len(), 1);
        assert!(v[0].is_err());
        let mut p = Vec::new();
        encode_record(&mut p, 1, 1, b"abcdef");
        p[0] = 200; // past payload
        assert!(Records::new(&p).next().unwrap().is_err());
        // Trailing bytes shorter than a record header end the iteration.
        let mut p = Vec::new();
        encode_record(&mut p, 1, 1, b"");
        p.extend_from_slice(&[0xff; 15]);
        assert_eq!(Records::new(&p).count(), 1);
    }

    #[test]
    fn loadgen_verify() {
        let d = loadgen_data(42, 1, 64);
        let r = LoadgenRecord::parse(&d).unwrap();
        assert_eq!((r.seq, r.cpu, r.fill_len), (42, 1, 32));
        let mut bad = d.clone();
        bad[20] ^= 1;
        assert!(LoadgenRecord::parse(&bad).is_none());
    }
}
