//! Per-CPU record checker: every load generator record verifies (checksum
//! and fill), record seqs strictly increase, gaps (dropped records) are
//! counted, and `strict` forbids gaps. Sub-buffer seqs must increase too.

use std::collections::BTreeMap;

use relaymap::{LoadgenRecord, Subbuf};

use crate::util::{ensure, TestResult};

/// What one consumer (or one thread of it) has seen.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Next expected record seq per CPU.
    pub next: BTreeMap<u32, u64>,
    /// Records received per CPU.
    pub received: BTreeMap<u32, u64>,
    /// Records missing between received ones (drops seen as gaps).
    pub gaps: BTreeMap<u32, u64>,
    /// Sub-buffers delivered per CPU.
    pub subbufs: BTreeMap<u32, u64>,
    /// Next sub-buffer seq at least expected per CPU.
    pub next_sb: BTreeMap<u32, u64>,
    /// Sub-buffers with the FLUSHED flag.
    pub flushed: u64,
    /// Payload bytes delivered.
    pub bytes: u64,
    /// Per CPU, the seq the next delivered sub-buffer must have (checked
    /// once, then removed): where a resumed consumer must start.
    expect_first: BTreeMap<u32, u64>,
    strict: bool,
    error: Option<String>,
}

impl Tracker {
    /// A tracker; `strict` fails on any gap in a CPU's record seqs.
    pub fn new(strict: bool) -> Tracker {
        Tracker {
            strict,
            ..Tracker::default()
        }
    }

    /// Checks every record of one delivered sub-buffer. The first failure
    /// is kept for [`Tracker::check`].
    pub fn subbuf(&mut self, sb: Subbuf<'_>) {
        if self.error.is_some() {
            return;
        }
        let cpu = sb.cpu();
        if let Some(first) = self.expect_first.remove(&cpu) {
            if sb.seq() != first {
                self.error = Some(format!(
                    "cpu {cpu}: first sub-buffer delivered is seq {}, want {first} (what was handed back)",
                    sb.seq()
                ));
                return;
            }
        }
        let want = self.next_sb.get(&cpu).copied().unwrap_or(0);
        if sb.seq() < want {
            self.error = Some(format!(
                "cpu {cpu}: sub-buffer seq {} after {} (duplicate or backwards)",
                sb.seq(),
                want - 1
            ));
            return;
        }
        self.next_sb.insert(cpu, sb.seq() + 1);
        *self.subbufs.entry(cpu).or_default() += 1;
        self.bytes += sb.payload().len() as u64;
        if sb.header().is_flushed() {
            self.flushed += 1;
        }
        for r in sb.records() {
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    self.error = Some(format!("cpu {cpu} sub-buffer {}: {e}", sb.seq()));
                    return;
                }
            };
            if let Err(e) = self.record(cpu, r.type_, r.data) {
                self.error = Some(format!("cpu {cpu} sub-buffer {}: {e}", sb.seq()));
                return;
            }
        }
    }

    /// Checks one record of `cpu`'s buffer.
    pub fn record(&mut self, cpu: u32, type_: u16, data: &[u8]) -> TestResult {
        ensure!(
            u32::from(type_) == relaymap::abi::RELAYMAP_REC_LOADGEN,
            "record type {type_}, want the load generator's"
        );
        let lg = LoadgenRecord::parse(data)
            .ok_or("record does not verify (checksum/fill): torn or corrupt")?;
        ensure!(
            lg.cpu == cpu,
            "record of cpu {} in cpu {cpu}'s buffer",
            lg.cpu
        );
        let next = self.next.entry(cpu).or_default();
        ensure!(
            lg.seq >= *next,
            "cpu {cpu}: record seq {} after {} (duplicate or backwards)",
            lg.seq,
            *next
        );
        let gap = lg.seq - *next;
        ensure!(
            !self.strict || gap == 0,
            "cpu {cpu}: expected record seq {}, got {} (lost records)",
            *next,
            lg.seq
        );
        *self.gaps.entry(cpu).or_default() += gap;
        *next = lg.seq + 1;
        *self.received.entry(cpu).or_default() += 1;
        Ok(())
    }

    /// The next sub-buffer delivered from each CPU of `first` must have
    /// that seq.
    pub fn expect_first(&mut self, first: BTreeMap<u32, u64>) {
        self.expect_first = first;
    }

    /// CPUs whose expected first sub-buffer has not arrived yet.
    pub fn pending_first(&self) -> &BTreeMap<u32, u64> {
        &self.expect_first
    }

    /// The first failure seen so far, if any (and clears it).
    pub fn check(&mut self) -> TestResult {
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Records received from `cpu`.
    pub fn received(&self, cpu: u32) -> u64 {
        self.received.get(&cpu).copied().unwrap_or(0)
    }

    /// Records received from all CPUs.
    pub fn total(&self) -> u64 {
        self.received.values().sum()
    }

    /// Sub-buffers delivered from `cpu`.
    pub fn subbufs(&self, cpu: u32) -> u64 {
        self.subbufs.get(&cpu).copied().unwrap_or(0)
    }

    /// Adds what `other` (a later consumer or another thread) saw.
    pub fn absorb(&mut self, other: Tracker) {
        for (c, n) in other.received {
            *self.received.entry(c).or_default() += n;
        }
        for (c, n) in other.gaps {
            *self.gaps.entry(c).or_default() += n;
        }
        for (c, n) in other.subbufs {
            *self.subbufs.entry(c).or_default() += n;
        }
        for (c, n) in other.next {
            let e = self.next.entry(c).or_default();
            *e = (*e).max(n);
        }
        for (c, n) in other.next_sb {
            let e = self.next_sb.entry(c).or_default();
            *e = (*e).max(n);
        }
        self.flushed += other.flushed;
        self.bytes += other.bytes;
        if self.error.is_none() {
            self.error = other.error;
        }
    }
}
