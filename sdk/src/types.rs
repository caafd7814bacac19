//! Plain data the SDK hands out: [`ChannelInfo`], [`Cursor`], [`Stats`],
//! [`Loss`].

use std::ops::AddAssign;

use crate::abi;
use crate::error::{Error, Result};
use crate::walker::Mode;

/// Identity and geometry of a channel (`GET_INFO`, checked at open).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// Channel name.
    pub name: String,
    /// Channel instance (new at create and at RESET; every header carries it).
    pub uuid: [u8; 16],
    /// The module's ABI version (equal to the SDK's, or open fails).
    pub abi_version: u32,
    /// Bytes of the sub-buffer header: the events start here.
    pub header_size: u32,
    /// No-overwrite or overwrite (flight recorder).
    pub mode: Mode,
    /// The channel's creator destroyed it: drain what is left.
    pub destroyed: bool,
    /// Bytes per sub-buffer (a multiple of `page_size`).
    pub subbuf_size: u64,
    /// Sub-buffers per CPU.
    pub n_subbufs: u64,
    /// Bytes mapped per CPU.
    pub alloc_size: u64,
    /// CPUs the kernel can have.
    pub nr_cpu_ids: u32,
    /// Largest framed record, header included.
    pub max_record_size: u32,
    /// Largest data of one record (`max_record_size - 16`).
    pub max_data_size: u32,
    /// The kernel's page size.
    pub page_size: u32,
    /// CPUs that have a buffer, ascending.
    pub cpus: Vec<u32>,
}

fn cstr(b: &[core::ffi::c_char]) -> String {
    let bytes: Vec<u8> = b.iter().map(|c| *c as u8).take_while(|c| *c != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl ChannelInfo {
    /// Checks a raw `GET_INFO` answer: ABI version first
    /// ([`Error::AbiMismatch`]), then the geometry ([`Error::Geometry`]).
    pub fn from_raw(raw: &abi::relaymap_info) -> Result<ChannelInfo> {
        if raw.abi_version != abi::RELAYMAP_ABI_VERSION {
            return Err(Error::AbiMismatch {
                kernel: raw.abi_version,
                sdk: abi::RELAYMAP_ABI_VERSION,
            });
        }
        let geo = |reason: String| Error::Geometry { cpu: None, reason };
        let hs = u64::from(raw.header_size);
        if (hs as usize) < abi::SUBBUF_HEADER_SIZE || hs % 8 != 0 {
            return Err(geo(format!(
                "header_size {hs} (must be >= {} and a multiple of 8)",
                abi::SUBBUF_HEADER_SIZE
            )));
        }
        let page = u64::from(raw.page_size);
        if page < 4096 || !page.is_power_of_two() {
            return Err(geo(format!("page_size {page}")));
        }
        if raw.subbuf_size <= hs
            || !raw.subbuf_size.is_multiple_of(page)
            || raw.subbuf_size > u64::from(u32::MAX)
        {
            return Err(geo(format!(
                "subbuf_size {} (must be a multiple of the page size {page}, above the header)",
                raw.subbuf_size
            )));
        }
        if raw.n_subbufs < 2 {
            return Err(geo(format!("n_subbufs {} (must be >= 2)", raw.n_subbufs)));
        }
        if raw.subbuf_size.checked_mul(raw.n_subbufs) != Some(raw.alloc_size)
            || usize::try_from(raw.alloc_size).is_err()
        {
            return Err(geo(format!(
                "alloc_size {} != subbuf_size {} * n_subbufs {}",
                raw.alloc_size, raw.subbuf_size, raw.n_subbufs
            )));
        }
        if raw.nr_cpu_ids as usize > abi::RELAYMAP_MAX_CPUS as usize {
            return Err(geo(format!("nr_cpu_ids {}", raw.nr_cpu_ids)));
        }
        if u64::from(raw.max_record_size) > raw.subbuf_size - hs
            || raw.max_data_size as usize + abi::RECORD_HEADER_SIZE != raw.max_record_size as usize
        {
            return Err(geo(format!(
                "max_record_size {} / max_data_size {}",
                raw.max_record_size, raw.max_data_size
            )));
        }
        let cpus = cpus_of_mask(&raw.cpu_mask, raw.nr_cpu_ids);
        Ok(ChannelInfo {
            name: cstr(&raw.name),
            uuid: raw.uuid,
            abi_version: raw.abi_version,
            header_size: raw.header_size,
            mode: if raw.flags & abi::RELAYMAP_INFO_OVERWRITE != 0 {
                Mode::Overwrite
            } else {
                Mode::NoOverwrite
            },
            destroyed: raw.flags & abi::RELAYMAP_INFO_DESTROYED != 0,
            subbuf_size: raw.subbuf_size,
            n_subbufs: raw.n_subbufs,
            alloc_size: raw.alloc_size,
            nr_cpu_ids: raw.nr_cpu_ids,
            max_record_size: raw.max_record_size,
            max_data_size: raw.max_data_size,
            page_size: raw.page_size,
            cpus,
        })
    }
}

/// The CPUs whose bit is set in `mask`, below `nr_cpu_ids`.
pub(crate) fn cpus_of_mask(mask: &[u64], nr_cpu_ids: u32) -> Vec<u32> {
    (0..nr_cpu_ids.min((mask.len() * 64) as u32))
        .filter(|c| mask[*c as usize / 64] & (1u64 << (c % 64)) != 0)
        .collect()
}

/// One CPU's published counts and holder (`GET_CURSOR` / `GET_CURSORS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The CPU.
    pub cpu: u32,
    /// Sub-buffers closed **and committed** (header final).
    pub produced: u64,
    /// Sub-buffers handed back.
    pub consumed: u64,
    /// Records dropped because the buffer was full (no-overwrite),
    /// cumulative since reset.
    pub records_dropped: u64,
    /// Unconsumed sub-buffers overwritten (overwrite), cumulative.
    pub subbufs_lapped: u64,
    /// Writes refused as larger than `max_data_size`, cumulative.
    pub records_rejected: u64,
    /// A consumer fd holds this CPU.
    pub held: bool,
    /// The holder's pid (tgid).
    pub holder_pid: Option<i32>,
    /// The holder's comm.
    pub holder_comm: Option<String>,
    /// The channel was destroyed by its creator.
    pub destroyed: bool,
}

impl Cursor {
    /// Converts the ABI struct (host order).
    pub fn from_raw(c: &abi::relaymap_cursor) -> Cursor {
        let held = c.flags & abi::RELAYMAP_CURSOR_HELD != 0;
        let comm = cstr(&c.holder_comm);
        Cursor {
            cpu: c.cpu,
            produced: c.produced,
            consumed: c.consumed,
            records_dropped: c.records_dropped,
            subbufs_lapped: c.subbufs_lapped,
            records_rejected: c.records_rejected,
            held,
            holder_pid: (c.holder_pid != 0).then_some(c.holder_pid),
            holder_comm: (!comm.is_empty()).then_some(comm),
            destroyed: c.flags & abi::RELAYMAP_CURSOR_DESTROYED != 0,
        }
    }
}

/// Counters of one CPU or of the whole channel (`GET_STATS`). The one stats
/// type: the FFI and the dumper reuse it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records accepted by the module's write API.
    pub records_written: u64,
    /// Data bytes accepted by the module's write API.
    pub bytes_written: u64,
    /// Write attempts dropped because the buffer was full.
    pub records_dropped: u64,
    /// Writes refused as larger than `max_data_size`.
    pub records_rejected: u64,
    /// Sub-buffers closed and committed.
    pub subbufs_produced: u64,
    /// Sub-buffers handed back by consumers.
    pub subbufs_consumed: u64,
    /// Unconsumed sub-buffers overwritten (overwrite mode).
    pub subbufs_lapped: u64,
    /// Sub-buffers closed early by FLUSH.
    pub flushes: u64,
    /// RESETs of this channel since creation.
    pub resets: u64,
}

impl From<abi::relaymap_stats> for Stats {
    fn from(s: abi::relaymap_stats) -> Self {
        Stats {
            records_written: s.records_written,
            bytes_written: s.bytes_written,
            records_dropped: s.records_dropped,
            records_rejected: s.records_rejected,
            subbufs_produced: s.subbufs_produced,
            subbufs_consumed: s.subbufs_consumed,
            subbufs_lapped: s.subbufs_lapped,
            flushes: s.flushes,
            resets: s.resets,
        }
    }
}

/// Losses of one reader, in exact units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loss {
    /// Records the kernel dropped because the buffer was full
    /// (no-overwrite), cumulative since the channel's last reset, as of the
    /// latest cursor read.
    pub records_dropped: u64,
    /// Writes the kernel refused as too large, cumulative, as of the latest
    /// cursor read.
    pub records_rejected: u64,
    /// Sub-buffers this reader never delivered because the kernel lapped
    /// them (overwrite mode), since open.
    pub subbufs_lapped: u64,
    /// Sub-buffers skipped because their header was corrupt, since open.
    pub subbufs_corrupt: u64,
}

impl AddAssign for Loss {
    fn add_assign(&mut self, o: Loss) {
        self.records_dropped += o.records_dropped;
        self.records_rejected += o.records_rejected;
        self.subbufs_lapped += o.subbufs_lapped;
        self.subbufs_corrupt += o.subbufs_corrupt;
    }
}
