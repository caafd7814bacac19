//! The CTF 1.8 side of a dump: the trace `metadata` the dumper writes and
//! the packet header reader that the restart scan and `verify` share.
//!
//! A sub-buffer of ABI 2 *is* a CTF packet (`include/relaymap_abi.h`): the
//! dumper writes the first `packet_size / 8` bytes of each one as they are,
//! and this module only describes that layout to CTF readers (babeltrace2,
//! Trace Compass) and reads the headers back. The events inside a packet
//! are walked with the SDK's one framing walker (`relaymap::Records`).

use std::fmt::Write as _;

use relaymap::abi::{self, off};
use relaymap::ChannelInfo;

/// Marker in the metadata's `env` that says the trace was written by
/// relaymap-dump (a restart continues only such a trace).
pub const ENV_MARK: &str = "relaymap_dump_format";

/// The format version behind [`ENV_MARK`].
pub const FORMAT: u32 = 1;

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn uuid_str(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses [`uuid_str`]'s format.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || s.len() != 36 {
        return None;
    }
    let mut u = [0u8; 16];
    for (i, b) in u.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(u)
}

/// CLOCK_REALTIME - CLOCK_MONOTONIC now, in ns (the clock's offset: a CTF
/// reader adds it to every timestamp to show wall-clock time).
pub fn realtime_minus_monotonic_ns() -> i128 {
    let now = |clk| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the call.
        unsafe { libc::clock_gettime(clk, &mut ts) };
        i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
    };
    // Bracket the realtime read by two monotonic reads: the midpoint.
    let m0 = now(libc::CLOCK_MONOTONIC);
    let r = now(libc::CLOCK_REALTIME);
    let m1 = now(libc::CLOCK_MONOTONIC);
    r - (m0 + m1) / 2
}

/// This host's name (`uname -n`).
pub fn hostname() -> String {
    // SAFETY: an all-zero utsname is a valid value of this plain C struct.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname for the call.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    let b: Vec<u8> = u
        .nodename
        .iter()
        .map(|c| *c as u8)
        .take_while(|c| *c != 0)
        .collect();
    String::from_utf8_lossy(&b).into_owned()
}

/// A TSDL string literal's content (quotes and backslashes escaped,
/// control characters dropped).
fn tsdl_str(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

/// `le` or `be`: the byte order of this host, which is the order of the
/// kernel that wrote the buffers.
pub fn byte_order() -> &'static str {
    if cfg!(target_endian = "big") {
        "be"
    } else {
        "le"
    }
}

/// The trace's `metadata` (CTF 1.8 TSDL) for a dump of channel `info`.
/// The trace and clock UUID is the channel's (every packet header carries
/// it). `clock_offset_ns` is CLOCK_REALTIME - CLOCK_MONOTONIC at the start.
pub fn metadata(info: &ChannelInfo, host: &str, clock_offset_ns: i128) -> String {
    let uuid = uuid_str(&info.uuid);
    let off_s = clock_offset_ns.div_euclid(1_000_000_000);
    let off_ns = clock_offset_ns.rem_euclid(1_000_000_000);
    let mode = match info.mode {
        relaymap::Mode::NoOverwrite => "no-overwrite",
        relaymap::Mode::Overwrite => "overwrite",
    };
    format!(
        r#"/* CTF 1.8 */
/* Written by relaymap-dump {version}: every data file is whole relaymap
 * sub-buffers (ABI {abi}) as the kernel wrote them, one file (or a rotated
 * series) per CPU. See include/relaymap_abi.h. */
typealias integer {{ size = 8; align = 8; signed = false; }} := uint8_t;
typealias integer {{ size = 16; align = 8; signed = false; }} := uint16_t;
typealias integer {{ size = 32; align = 8; signed = false; }} := uint32_t;
typealias integer {{ size = 64; align = 8; signed = false; }} := uint64_t;
typealias integer {{ size = 8; align = 8; signed = false; encoding = UTF8; }} := utf8_t;

trace {{
	major = 1;
	minor = 8;
	uuid = "{uuid}";
	byte_order = {bo};
	packet.header := struct {{
		uint32_t magic;
		uint8_t uuid[16];
		uint32_t stream_id;
		uint64_t stream_instance_id;
	}};
}};

env {{
	hostname = "{host}";
	domain = "kernel";
	tracer_name = "relaymap";
	channel = "{name}";
	channel_mode = "{mode}";
	subbuf_size = {sbs};
	n_subbufs = {nsb};
	page_size = {page};
	abi_version = {abi};
	{mark} = {format};
}};

clock {{
	name = monotonic;
	uuid = "{uuid}";
	description = "CLOCK_MONOTONIC";
	freq = 1000000000;
	offset_s = {off_s};
	offset = {off_ns};
	absolute = false;
}};

typealias integer {{ size = 64; align = 8; signed = false; map = clock.monotonic.value; }} := mono_ts_t;

stream {{
	id = 0;
	packet.context := struct {{
		mono_ts_t timestamp_begin;
		mono_ts_t timestamp_end;
		uint64_t content_size;
		uint64_t packet_size;
		uint64_t packet_seq_num;
		uint64_t events_discarded;
		uint32_t cpu_id;
		uint32_t flags;
		uint64_t events_rejected;
		uint16_t abi_version;
		uint16_t header_size;
		uint32_t reserved;
		uint64_t commit;
	}};
	event.header := struct {{
		mono_ts_t timestamp;
		uint16_t id;
	}} align(64);
}};

event {{
	name = "relaymap:record";
	id = {ev_rec};
	stream_id = 0;
	fields := struct {{
		uint16_t type;
		uint32_t len;
		uint8_t data[len];
	}};
}};

event {{
	name = "relaymap:printf";
	id = {ev_printf};
	stream_id = 0;
	fields := struct {{
		uint16_t type;
		uint32_t len;
		utf8_t text[len];
	}};
}};
"#,
        version = env!("CARGO_PKG_VERSION"),
        abi = info.abi_version,
        bo = byte_order(),
        host = tsdl_str(host),
        name = tsdl_str(&info.name),
        sbs = info.subbuf_size,
        nsb = info.n_subbufs,
        page = info.page_size,
        mark = ENV_MARK,
        format = FORMAT,
        ev_rec = abi::RELAYMAP_EVENT_RECORD,
        ev_printf = abi::RELAYMAP_EVENT_PRINTF,
    )
}

/// What a restart and `verify` need from a trace's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceMeta {
    /// The trace UUID (= the channel instance).
    pub uuid: [u8; 16],
    /// `env.channel`.
    pub channel: String,
    /// `env.channel_mode` is `overwrite`.
    pub overwrite: bool,
}

/// `key = "value";` or `key = value;` from the metadata text (the first
/// occurrence after `section {`).
fn field<'a>(text: &'a str, section: &str, key: &str) -> Option<&'a str> {
    let start = text.find(&format!("\n{section} {{"))?;
    let body = &text[start..];
    let body = &body[..body.find("\n}")?];
    for line in body.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix(key) {
            let rest = rest.trim_start();
            if let Some(v) = rest.strip_prefix('=') {
                let v = v.trim().trim_end_matches(';').trim();
                return Some(v.trim_matches('"'));
            }
        }
    }
    None
}

/// Reads back a metadata written by [`metadata`]; `None` if the text is
/// not a relaymap-dump trace's.
pub fn parse_metadata(text: &str) -> Option<TraceMeta> {
    if !text.starts_with("/* CTF 1.8 */") {
        return None;
    }
    field(text, "env", ENV_MARK)?;
    Some(TraceMeta {
        uuid: parse_uuid(field(text, "trace", "uuid")?)?,
        channel: field(text, "env", "channel").unwrap_or("").to_string(),
        overwrite: field(text, "env", "channel_mode") == Some("overwrite"),
    })
}

/// A packet header read from a dump file (sizes in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// `packet_seq_num`.
    pub seq: u64,
    /// `stream_instance_id` (the CPU).
    pub stream_instance_id: u64,
    /// `cpu_id`.
    pub cpu: u32,
    /// Channel instance.
    pub uuid: [u8; 16],
    /// `timestamp_begin`.
    pub ts_begin: u64,
    /// `timestamp_end`.
    pub ts_end: u64,
    /// Where the events start.
    pub header_size: usize,
    /// Header + events, bytes.
    pub content_size: usize,
    /// The packet's length in the file, bytes.
    pub packet_size: usize,
    /// Cumulative kernel drops at close.
    pub events_discarded: u64,
    /// Cumulative rejections at close.
    pub events_rejected: u64,
}

impl Packet {
    /// Reads and checks a header (the first [`abi::SUBBUF_HEADER_SIZE`]
    /// bytes of a packet); the error says what is wrong.
    pub fn parse(h: &[u8]) -> Result<Packet, String> {
        if h.len() < abi::SUBBUF_HEADER_SIZE {
            return Err(format!("{} bytes, a packet header has 112", h.len()));
        }
        let u16_at = |o: usize| u16::from_ne_bytes([h[o], h[o + 1]]);
        let u32_at = |o: usize| u32::from_ne_bytes(h[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_ne_bytes(h[o..o + 8].try_into().expect("8 bytes"));
        let magic = u32_at(off::MAGIC);
        if magic != abi::RELAYMAP_CTF_MAGIC {
            return Err(format!(
                "magic {magic:#x}, not {:#x}",
                abi::RELAYMAP_CTF_MAGIC
            ));
        }
        let seq = u64_at(off::PACKET_SEQ_NUM);
        let commit = u64_at(off::COMMIT);
        if commit != seq.wrapping_add(1) {
            return Err(format!("commit {commit} for packet_seq_num {seq}"));
        }
        let abi_v = u16_at(off::ABI_VERSION);
        if u32::from(abi_v) != abi::RELAYMAP_ABI_VERSION {
            return Err(format!("abi_version {abi_v}"));
        }
        let header_size = usize::from(u16_at(off::HEADER_SIZE));
        let (cs, ps) = (u64_at(off::CONTENT_SIZE), u64_at(off::PACKET_SIZE));
        if cs % 8 != 0 || ps % 8 != 0 {
            return Err(format!(
                "content_size {cs} / packet_size {ps} bits: not whole bytes"
            ));
        }
        let (content_size, packet_size) = ((cs / 8) as usize, (ps / 8) as usize);
        if header_size < abi::SUBBUF_HEADER_SIZE
            || content_size < header_size
            || packet_size < content_size
            || packet_size % 4096 != 0
            || packet_size > 1 << 32
        {
            return Err(format!(
                "header_size {header_size}, content_size {content_size}, packet_size {packet_size} bytes: inconsistent"
            ));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&h[off::UUID..off::UUID + 16]);
        Ok(Packet {
            seq,
            stream_instance_id: u64_at(off::STREAM_INSTANCE_ID),
            cpu: u32_at(off::CPU_ID),
            uuid,
            ts_begin: u64_at(off::TIMESTAMP_BEGIN),
            ts_end: u64_at(off::TIMESTAMP_END),
            header_size,
            content_size,
            packet_size,
            events_discarded: u64_at(off::EVENTS_DISCARDED),
            events_rejected: u64_at(off::EVENTS_REJECTED),
        })
    }

    /// The events of this packet, given its bytes.
    pub fn payload<'a>(&self, packet: &'a [u8]) -> &'a [u8] {
        &packet[self.header_size..self.content_size]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_round_trip() {
        let u = [
            0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x56, 0x78, 0x12, 0x34,
            0x56, 0x78,
        ];
        assert_eq!(uuid_str(&u), "12345678-1234-5678-1234-567812345678");
        assert_eq!(parse_uuid(&uuid_str(&u)), Some(u));
        assert_eq!(parse_uuid("nope"), None);
    }

    #[test]
    fn escapes() {
        assert_eq!(tsdl_str("a\"b\\c\n"), "a\\\"b\\\\c");
    }
}
