//! The ABI 2 layout as `include/relaymap_abi.h` states it in prose and
//! struct order, typed in by hand here. The oracles below decode and
//! encode with these numbers only, never with the SDK's `abi` module, so a
//! bug shared by the SDK's constants and its walker cannot cancel out.
//! (`tests/unit.rs` compares these numbers once with `relaymap::abi`,
//! which bindgen generates from the header.)

/// `RELAYMAP_ABI_VERSION`.
pub const ABI_VERSION: u16 = 2;
/// `RELAYMAP_CTF_MAGIC`: first word of every sub-buffer.
pub const MAGIC: u32 = 0xC1FC_1FC1;
/// `sizeof(struct relaymap_subbuf_header)`: 112 bytes.
pub const HEADER_SIZE: usize = 112;
/// `sizeof(struct relaymap_record)`: 16 bytes.
pub const RECORD_HEADER: usize = 16;
/// `RELAYMAP_RECORD_ALIGN`.
pub const RECORD_ALIGN: usize = 8;
/// `RELAYMAP_EVENT_PRINTF`: the highest event_id the module defines.
pub const EVENT_PRINTF: u16 = 1;
/// `RELAYMAP_SB_FLUSHED | RELAYMAP_SB_DROPS`.
pub const SB_KNOWN_FLAGS: u32 = 0b11;
/// `RELAYMAP_INFO_OVERWRITE`, `RELAYMAP_INFO_DESTROYED`.
pub const INFO_OVERWRITE: u32 = 1;
/// See [`INFO_OVERWRITE`].
pub const INFO_DESTROYED: u32 = 2;
/// `RELAYMAP_CURSOR_HELD`, `RELAYMAP_CURSOR_DESTROYED`.
pub const CURSOR_HELD: u32 = 2;
/// See [`CURSOR_HELD`].
pub const CURSOR_DESTROYED: u32 = 4;
/// `RELAYMAP_FNV_OFFSET`, `RELAYMAP_FNV_PRIME`.
pub const FNV_OFFSET: u32 = 0x811c_9dc5;
/// See [`FNV_OFFSET`].
pub const FNV_PRIME: u32 = 0x0100_0193;

/// Byte offsets of `struct relaymap_subbuf_header`, in field order
/// (every field at its natural alignment, no holes).
pub mod off {
    pub const MAGIC: usize = 0; // __u32
    pub const UUID: usize = 4; // __u8[16]
    pub const STREAM_ID: usize = 20; // __u32
    pub const STREAM_INSTANCE_ID: usize = 24; // __u64
    pub const TIMESTAMP_BEGIN: usize = 32;
    pub const TIMESTAMP_END: usize = 40;
    pub const CONTENT_SIZE: usize = 48;
    pub const PACKET_SIZE: usize = 56;
    pub const PACKET_SEQ_NUM: usize = 64;
    pub const EVENTS_DISCARDED: usize = 72;
    pub const CPU_ID: usize = 80; // __u32
    pub const FLAGS: usize = 84; // __u32
    pub const EVENTS_REJECTED: usize = 88; // __u64
    pub const ABI_VERSION: usize = 96; // __u16
    pub const HEADER_SIZE: usize = 98; // __u16
    pub const RESERVED: usize = 100; // __u32
    pub const COMMIT: usize = 104; // __u64, last
}

/// `ALIGN(n, RELAYMAP_RECORD_ALIGN)`, `None` on overflow.
pub fn align8(n: usize) -> Option<usize> {
    n.checked_add(RECORD_ALIGN - 1)
        .map(|x| x & !(RECORD_ALIGN - 1))
}

pub fn rd_u16(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}
pub fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}
pub fn rd_u64(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
}

/// A sub-buffer header, every field as stored (sizes in bits, host order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub magic: u32,
    pub uuid: [u8; 16],
    pub stream_id: u32,
    pub stream_instance_id: u64,
    pub timestamp_begin: u64,
    pub timestamp_end: u64,
    pub content_size: u64,
    pub packet_size: u64,
    pub packet_seq_num: u64,
    pub events_discarded: u64,
    pub cpu_id: u32,
    pub flags: u32,
    pub events_rejected: u64,
    pub abi_version: u16,
    pub header_size: u16,
    pub reserved: u32,
    pub commit: u64,
}

impl Header {
    /// The header the module writes when it closes sub-buffer `seq` of
    /// `cpu` with `events` bytes of events on pages of `page` bytes.
    pub fn closed(seq: u64, cpu: u32, events: usize, page: u64) -> Header {
        let content = (HEADER_SIZE + events) as u64;
        Header {
            magic: MAGIC,
            uuid: *b"relaymap-fuzz-id",
            stream_id: 0,
            stream_instance_id: u64::from(cpu),
            timestamp_begin: 1000 + seq * 10,
            timestamp_end: 1005 + seq * 10,
            content_size: content * 8,
            packet_size: content.div_ceil(page) * page * 8,
            packet_seq_num: seq,
            events_discarded: 0,
            cpu_id: cpu,
            flags: 0,
            events_rejected: 0,
            abi_version: ABI_VERSION,
            header_size: HEADER_SIZE as u16,
            reserved: 0,
            commit: seq + 1,
        }
    }

    pub fn decode(b: &[u8]) -> Header {
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[off::UUID..off::UUID + 16]);
        Header {
            magic: rd_u32(b, off::MAGIC),
            uuid,
            stream_id: rd_u32(b, off::STREAM_ID),
            stream_instance_id: rd_u64(b, off::STREAM_INSTANCE_ID),
            timestamp_begin: rd_u64(b, off::TIMESTAMP_BEGIN),
            timestamp_end: rd_u64(b, off::TIMESTAMP_END),
            content_size: rd_u64(b, off::CONTENT_SIZE),
            packet_size: rd_u64(b, off::PACKET_SIZE),
            packet_seq_num: rd_u64(b, off::PACKET_SEQ_NUM),
            events_discarded: rd_u64(b, off::EVENTS_DISCARDED),
            cpu_id: rd_u32(b, off::CPU_ID),
            flags: rd_u32(b, off::FLAGS),
            events_rejected: rd_u64(b, off::EVENTS_REJECTED),
            abi_version: rd_u16(b, off::ABI_VERSION),
            header_size: rd_u16(b, off::HEADER_SIZE),
            reserved: rd_u32(b, off::RESERVED),
            commit: rd_u64(b, off::COMMIT),
        }
    }

    pub fn encode(&self, b: &mut [u8]) {
        fn put(b: &mut [u8], at: usize, v: &[u8]) {
            b[at..at + v.len()].copy_from_slice(v);
        }
        put(b, off::MAGIC, &self.magic.to_ne_bytes());
        put(b, off::UUID, &self.uuid);
        put(b, off::STREAM_ID, &self.stream_id.to_ne_bytes());
        put(
            b,
            off::STREAM_INSTANCE_ID,
            &self.stream_instance_id.to_ne_bytes(),
        );
        put(b, off::TIMESTAMP_BEGIN, &self.timestamp_begin.to_ne_bytes());
        put(b, off::TIMESTAMP_END, &self.timestamp_end.to_ne_bytes());
        put(b, off::CONTENT_SIZE, &self.content_size.to_ne_bytes());
        put(b, off::PACKET_SIZE, &self.packet_size.to_ne_bytes());
        put(b, off::PACKET_SEQ_NUM, &self.packet_seq_num.to_ne_bytes());
        put(
            b,
            off::EVENTS_DISCARDED,
            &self.events_discarded.to_ne_bytes(),
        );
        put(b, off::CPU_ID, &self.cpu_id.to_ne_bytes());
        put(b, off::FLAGS, &self.flags.to_ne_bytes());
        put(b, off::EVENTS_REJECTED, &self.events_rejected.to_ne_bytes());
        put(b, off::ABI_VERSION, &self.abi_version.to_ne_bytes());
        put(b, off::HEADER_SIZE, &self.header_size.to_ne_bytes());
        put(b, off::RESERVED, &self.reserved.to_ne_bytes());
        put(b, off::COMMIT, &self.commit.to_ne_bytes());
    }

    /// Why a reader must NOT hand this header out as sub-buffer `seq` of
    /// `cpu` in a buffer of `subbuf` bytes: it would name another
    /// sub-buffer, another CPU or ABI, or bytes outside the sub-buffer.
    /// `None`: handing it out is allowed (not necessarily required).
    pub fn must_reject(&self, seq: u64, cpu: u32, subbuf: u64) -> Option<&'static str> {
        let content = self.content_size / 8;
        let packet = self.packet_size / 8;
        if self.magic != MAGIC {
            Some("bad magic")
        } else if self.abi_version != ABI_VERSION {
            Some("another ABI version")
        } else if seq.checked_add(1) != Some(self.commit) {
            Some("commit != seq + 1 (open, or another lap)")
        } else if self.packet_seq_num != seq {
            Some("packet_seq_num != seq")
        } else if self.cpu_id != cpu || self.stream_instance_id != u64::from(cpu) {
            Some("another CPU")
        } else if !self.content_size.is_multiple_of(8) || !self.packet_size.is_multiple_of(8) {
            Some("sizes are not whole bytes")
        } else if (self.header_size as usize) < HEADER_SIZE {
            Some("header_size below the header")
        } else if content < u64::from(self.header_size) {
            Some("content ends inside the header")
        } else if content > subbuf || packet > subbuf {
            Some("content or packet beyond the sub-buffer")
        } else if packet < content {
            Some("packet smaller than its content")
        } else {
            None
        }
    }

    /// Exactly what the module writes for a closed sub-buffer `seq` of
    /// `cpu`: a reader MUST hand it out.
    pub fn must_accept(&self, seq: u64, cpu: u32, subbuf: u64, page: u64) -> bool {
        let content = self.content_size / 8;
        self.must_reject(seq, cpu, subbuf).is_none()
            && self.header_size as usize == HEADER_SIZE
            && self.stream_id == 0
            && self.reserved == 0
            && self.flags & !SB_KNOWN_FLAGS == 0
            && self.packet_size == content.div_ceil(page) * page * 8
    }
}

/// FNV-1a 32 as the header defines it.
pub fn fnv1a(mut h: u32, bytes: &[u8]) -> u32 {
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// `fill[i] = (__u8)(seq * 13 + i * 7 + cpu)`.
pub fn fill_byte(seq: u64, i: usize, cpu: u32) -> u8 {
    seq.wrapping_mul(13)
        .wrapping_add((i as u64).wrapping_mul(7))
        .wrapping_add(u64::from(cpu)) as u8
}

/// A load generator record's data for (seq, cpu) with `fill` fill bytes.
pub fn loadgen_data(seq: u64, cpu: u32, fill: usize) -> Vec<u8> {
    let f: Vec<u8> = (0..fill).map(|i| fill_byte(seq, i, cpu)).collect();
    let mut sum_in = seq.to_ne_bytes().to_vec();
    sum_in.extend_from_slice(&cpu.to_ne_bytes());
    let sum = fnv1a(fnv1a(FNV_OFFSET, &sum_in), &f);
    let mut d = sum_in;
    d.extend_from_slice(&sum.to_ne_bytes());
    d.extend_from_slice(&f);
    d
}

/// `Some((seq, cpu, fill_len))` if `data` is a valid load generator record.
pub fn loadgen_parse(data: &[u8]) -> Option<(u64, u32, usize)> {
    if data.len() < 16 {
        return None;
    }
    let seq = rd_u64(data, 0);
    let cpu = rd_u32(data, 8);
    let sum = rd_u32(data, 12);
    let fill = &data[16..];
    if fnv1a(fnv1a(FNV_OFFSET, &data[..12]), fill) != sum {
        return None;
    }
    if fill
        .iter()
        .enumerate()
        .any(|(i, b)| *b != fill_byte(seq, i, cpu))
    {
        return None;
    }
    Some((seq, cpu, fill.len()))
}

/// Appends one record as the module's writers do: zero padding to the
/// next multiple of 8 first (not for the first record), then
/// `{u64 ts_ns; u16 event_id; u16 type; u32 len}` and the data.
pub fn push_record(out: &mut Vec<u8>, ts: u64, event_id: u16, type_: u16, data: &[u8]) -> usize {
    let at = align8(out.len()).unwrap();
    out.resize(at, 0);
    out.extend_from_slice(&ts.to_ne_bytes());
    out.extend_from_slice(&event_id.to_ne_bytes());
    out.extend_from_slice(&type_.to_ne_bytes());
    out.extend_from_slice(&(data.len() as u32).to_ne_bytes());
    out.extend_from_slice(data);
    at
}

/// One record as the reference framing reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefRecord {
    pub offset: usize,
    pub ts_ns: u64,
    pub event_id: u16,
    pub type_: u16,
    pub len: u32,
}

/// How a reference walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefEnd {
    /// The last record's data ended exactly at the payload's end (or the
    /// walk started at or past it).
    Clean,
    /// Corrupt framing at `offset`; `len` is the record's len field, 0
    /// when not even a record header fits.
    Corrupt { offset: usize, len: u32 },
}

/// The framing of the header's text, from `start`: a record at `pos` is
/// 16 header bytes and `len` data bytes, all inside the payload, with an
/// event_id of at most `RELAYMAP_EVENT_PRINTF`; the next record is at
/// `ALIGN(pos + 16 + len, 8)`; the last record's data ends exactly at
/// the payload's end, so bytes after a record that do not start at an
/// aligned record are corrupt (reported where they start).
pub fn ref_frame(payload: &[u8], start: usize) -> (Vec<RefRecord>, RefEnd) {
    let mut out = Vec::new();
    let len = payload.len();
    if start >= len {
        return (out, RefEnd::Clean);
    }
    let mut pos = start;
    loop {
        if len - pos < RECORD_HEADER {
            return (
                out,
                RefEnd::Corrupt {
                    offset: pos,
                    len: 0,
                },
            );
        }
        let event_id = rd_u16(payload, pos + 8);
        let rlen = rd_u32(payload, pos + 12);
        if event_id > EVENT_PRINTF {
            return (
                out,
                RefEnd::Corrupt {
                    offset: pos,
                    len: rlen,
                },
            );
        }
        let data_end = (pos + RECORD_HEADER) as u64 + u64::from(rlen);
        if data_end > len as u64 {
            return (
                out,
                RefEnd::Corrupt {
                    offset: pos,
                    len: rlen,
                },
            );
        }
        out.push(RefRecord {
            offset: pos,
            ts_ns: rd_u64(payload, pos),
            event_id,
            type_: rd_u16(payload, pos + 10),
            len: rlen,
        });
        let end = data_end as usize;
        if end == len {
            return (out, RefEnd::Clean);
        }
        let next = align8(end).unwrap();
        if next >= len {
            return (
                out,
                RefEnd::Corrupt {
                    offset: end,
                    len: 0,
                },
            );
        }
        pos = next;
    }
}
