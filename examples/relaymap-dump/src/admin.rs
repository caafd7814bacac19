//! `relaymap list` and `relaymap stat`: what channels exist and how their
//! CPUs stand. Observers only: they open channels (a channel fd) and never
//! claim a CPU, so they work while a dumper consumes.

use std::fmt::Write as _;

use serde::Serialize;

use relaymap::{Channel, Cursor, Mode};

use crate::dump::cpu_list;
use crate::error::Failure;
use crate::target::{self, Target};

/// A channel's geometry, as `list` and `stat` show it.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelSummary {
    /// Channel name.
    pub name: String,
    /// "no-overwrite" or "overwrite".
    pub mode: &'static str,
    /// Bytes per sub-buffer.
    pub subbuf_size: u64,
    /// Sub-buffers per CPU.
    pub n_subbufs: u64,
    /// Bytes mapped per CPU.
    pub alloc_size: u64,
    /// Largest data of one record.
    pub max_data_size: u64,
    /// CPUs with a buffer.
    pub cpus: Vec<u32>,
    /// The channel instance (changes at RESET).
    pub uuid: String,
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Overwrite => "overwrite",
        _ => "no-overwrite",
    }
}

fn uuid_string(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl ChannelSummary {
    /// The summary of an open channel.
    pub fn of(ch: &Channel) -> ChannelSummary {
        let i = ch.info();
        ChannelSummary {
            name: i.name.clone(),
            mode: mode_name(ch.mode()),
            subbuf_size: i.subbuf_size,
            n_subbufs: i.n_subbufs,
            alloc_size: i.alloc_size,
            max_data_size: u64::from(i.max_data_size),
            cpus: ch.cpus().to_vec(),
            uuid: uuid_string(&i.uuid),
        }
    }
}

/// `relaymap list --json`.
#[derive(Debug, Serialize)]
pub struct ListReport {
    /// The misc device asked.
    pub device: String,
    /// RELAYMAP_ABI_VERSION of the loaded module.
    pub abi_version: u32,
    /// The ABI version this program was built for.
    pub sdk_abi_version: u32,
    /// Channels in creation order.
    pub channels: Vec<ChannelSummary>,
}

/// Lists the channels of the loaded module.
pub fn list() -> Result<ListReport, Failure> {
    let device = relaymap::DEVICE_PATH.to_string();
    let abi_version = relaymap::device_abi_version().map_err(target::device_failure)?;
    let names = relaymap::list_channels().map_err(target::device_failure)?;
    let mut channels = Vec::with_capacity(names.len());
    for n in names {
        match Channel::open(&n) {
            Ok(ch) => channels.push(ChannelSummary::of(&ch)),
            // Destroyed between LIST and OPEN_CHANNEL: not there any more.
            Err(relaymap::Error::NoSuchChannel { .. }) => {}
            Err(e) => return Err(target::open_failure(&Target::Name(n), e)),
        }
    }
    Ok(ListReport {
        device,
        abi_version,
        sdk_abi_version: relaymap::abi::RELAYMAP_ABI_VERSION,
        channels,
    })
}

impl ListReport {
    /// The table.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{}: relaymap ABI {} ({} channel{})\n",
            self.device,
            self.abi_version,
            self.channels.len(),
            if self.channels.len() == 1 { "" } else { "s" }
        );
        if self.channels.is_empty() {
            return s;
        }
        let w = self
            .channels
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            s,
            "{:<w$}  {:<12}  {:>18}  {:>10}  CPUS",
            "NAME", "MODE", "SUB-BUFFERS", "PER CPU"
        );
        for c in &self.channels {
            let _ = writeln!(
                s,
                "{:<w$}  {:<12}  {:>18}  {:>10}  {}",
                c.name,
                c.mode,
                format!("{} x {}", c.n_subbufs, bytes(c.subbuf_size)),
                bytes(c.alloc_size),
                cpu_list(&c.cpus)
            );
        }
        s
    }
}

/// One CPU of `relaymap stat`.
#[derive(Debug, Clone, Serialize)]
pub struct CpuStat {
    /// The CPU.
    pub cpu: u32,
    /// Sub-buffers closed and committed.
    pub produced: u64,
    /// Sub-buffers handed back by consumers.
    pub consumed: u64,
    /// produced - consumed: waiting for a consumer.
    pub pending: u64,
    /// Records dropped, buffer full (cumulative).
    pub dropped: u64,
    /// Writes refused as too large (cumulative).
    pub rejected: u64,
    /// Unconsumed sub-buffers overwritten (overwrite mode).
    pub lapped: u64,
    /// Pid of the consumer holding this CPU, if any.
    pub holder_pid: Option<i32>,
    /// Its comm.
    pub holder_comm: Option<String>,
}

impl From<&Cursor> for CpuStat {
    fn from(c: &Cursor) -> CpuStat {
        CpuStat {
            cpu: c.cpu,
            produced: c.produced,
            consumed: c.consumed,
            pending: c.produced.saturating_sub(c.consumed),
            dropped: c.records_dropped,
            rejected: c.records_rejected,
            lapped: c.subbufs_lapped,
            holder_pid: c.holder_pid.filter(|_| c.held),
            holder_comm: c.holder_comm.clone().filter(|_| c.held),
        }
    }
}

/// `relaymap stat <channel> --json`.
#[derive(Debug, Serialize)]
pub struct StatReport {
    /// The channel's geometry.
    pub channel: ChannelSummary,
    /// RELAYMAP_ABI_VERSION the channel reports.
    pub abi_version: u32,
    /// The channel was destroyed by its creator (what is left can be drained).
    pub destroyed: bool,
    /// Per CPU, from one GET_CURSORS.
    pub cpus: Vec<CpuStat>,
}

/// The cursors of every CPU of `t` (one `GET_CURSORS`).
pub fn stat(t: &Target) -> Result<StatReport, Failure> {
    let ch = target::open(t)?;
    let cursors = ch.cursors()?;
    Ok(StatReport {
        channel: ChannelSummary::of(&ch),
        abi_version: ch.info().abi_version,
        destroyed: cursors.iter().any(|c| c.destroyed),
        cpus: cursors.iter().map(CpuStat::from).collect(),
    })
}

impl StatReport {
    /// The table.
    pub fn text(&self) -> String {
        let c = &self.channel;
        let mut s = format!(
            "channel {}: {}, {} x {} per CPU, cpus {}, ABI {}{}\n",
            c.name,
            c.mode,
            c.n_subbufs,
            bytes(c.subbuf_size),
            cpu_list(&c.cpus),
            self.abi_version,
            if self.destroyed { ", destroyed" } else { "" }
        );
        let _ = writeln!(
            s,
            "{:>4}  {:>10}  {:>10}  {:>7}  {:>10}  {:>8}  {:>8}  CONSUMER",
            "CPU", "PRODUCED", "CONSUMED", "PENDING", "DROPPED", "REJECTED", "LAPPED"
        );
        for p in &self.cpus {
            let holder = match (&p.holder_pid, &p.holder_comm) {
                (Some(pid), Some(comm)) => format!("pid {pid} ({comm})"),
                (Some(pid), None) => format!("pid {pid}"),
                (None, _) => "-".into(),
            };
            let _ = writeln!(
                s,
                "{:>4}  {:>10}  {:>10}  {:>7}  {:>10}  {:>8}  {:>8}  {holder}",
                p.cpu, p.produced, p.consumed, p.pending, p.dropped, p.rejected, p.lapped
            );
        }
        s
    }
}

/// `262144` -> `256 KiB`, exact binary units only.
pub fn bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (u, name) in UNITS {
        if n >= u && n.is_multiple_of(u) {
            return format!("{} {name}", n / u);
        }
    }
    format!("{n} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_uuids() {
        assert_eq!(bytes(262144), "256 KiB");
        assert_eq!(bytes(2 << 20), "2 MiB");
        assert_eq!(bytes(12288), "12 KiB");
        assert_eq!(bytes(1000), "1000 B");
        let u: [u8; 16] = std::array::from_fn(|i| i as u8 * 17);
        assert_eq!(uuid_string(&u), "00112233-4455-6677-8899-aabbccddeeff");
    }
}
