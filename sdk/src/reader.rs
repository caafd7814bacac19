//! [`CpuReader`]: one CPU's consumer fd, its one mapping, and the walk of
//! its ready sub-buffers.

use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use crate::backend::ConsumerBackend;
use crate::batch::{Batch, CorruptSubbuf, Subbuf};
use crate::error::{ControlOp, Error, Result};
use crate::mapping::Mapping;
use crate::ready::poll_one;
use crate::types::{ChannelInfo, Cursor, Loss};
use crate::walker::{self, Copied, Geometry, Mode, Region, SubbufHeader};

/// How readers are opened ([`crate::Channel::set_reader_options`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaderOptions {
    /// Pre-fault the mapping (`MAP_POPULATE`): costs ~0.28 us per 4 KiB at
    /// open instead of on first touch. Default off.
    pub populate: bool,
    /// Strict mode: a corrupt sub-buffer header, or a cursor that moves
    /// backwards (a RESET by someone else), is returned as an error
    /// ([`Error::CorruptHeader`], [`Error::CursorBackwards`]) by the next
    /// call instead of only being counted ([`Loss::subbufs_corrupt`]) or
    /// followed. An acquisition stops after the first corrupt sub-buffer.
    pub strict: bool,
}

impl ReaderOptions {
    /// Sets [`ReaderOptions::populate`].
    pub fn populate(mut self, yes: bool) -> Self {
        self.populate = yes;
        self
    }
    /// Sets [`ReaderOptions::strict`].
    pub fn strict(mut self, yes: bool) -> Self {
        self.strict = yes;
        self
    }
}

/// Where a delivered sub-buffer's packet is.
#[derive(Debug, Clone)]
enum Loc {
    /// In the mapping (no-overwrite: zero-copy).
    Map(Range<usize>),
    /// A validated copy (overwrite), owned by the entry: its address stays
    /// put until the acquisition is released, whatever else is acquired.
    Copy(Box<[u8]>),
}

#[derive(Debug, Clone)]
struct Entry {
    header: SubbufHeader,
    loc: Loc,
}

/// An outstanding acquisition, in the borrow-free form for bindings
/// ([`CpuReader::acquire_raw`]): the sub-buffers `seqs` of one CPU, of which
/// `len` were delivered ([`CpuReader::subbuf`]`(&a, 0..len)`); the rest
/// were lapped or corrupt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    /// The CPU.
    pub cpu: u32,
    /// Sub-buffer numbers covered (delivered, lapped or corrupt).
    pub seqs: Range<u64>,
    /// Delivered sub-buffers.
    pub len: usize,
    /// Skipped in this acquisition because lapped (overwrite mode).
    pub lapped: u64,
    first: usize,
    corrupt: Range<usize>,
    epoch: u64,
}

/// One CPU of a channel: owns that CPU's consumer fd (the kernel's
/// exclusive claim, released when the reader drops) and its one read-only
/// mapping. Readers are independent and `Send`: consume different CPUs
/// from different threads, or hold batches of several CPUs at once.
#[derive(Debug)]
pub struct CpuReader {
    cpu: u32,
    info: Arc<ChannelInfo>,
    geo: Geometry,
    strict: bool,
    region: Region,
    // Field order: unmap before the consumer fd closes.
    _map: Mapping,
    be: Box<dyn ConsumerBackend>,
    synced: bool,
    /// Next sub-buffer number to deliver.
    next: u64,
    /// The kernel's `consumed`, as this reader has handed back.
    released: u64,
    /// Latest `produced` seen.
    produced: u64,
    loss: Loss,
    /// Outstanding delivered sub-buffers. Only `acquire_raw` (appends) and
    /// `release_raw` (clears) change it, so every slice handed out stays
    /// valid and unchanged until `release_raw` (bindings keep raw pointers).
    entries: Vec<Entry>,
    corrupt: Vec<CorruptSubbuf>,
    epoch: u64,
    deferred: Option<Error>,
}

impl CpuReader {
    /// Maps `be`'s buffer. Used by [`crate::Channel::reader`].
    pub(crate) fn new(
        be: Box<dyn ConsumerBackend>,
        info: Arc<ChannelInfo>,
        opts: ReaderOptions,
    ) -> Result<CpuReader> {
        let cpu = be.cpu();
        let map = Mapping::map(be.map_fd(), info.alloc_size as usize, opts.populate)
            .map_err(|e| Error::Mmap { cpu, source: e })?;
        let region = map.region();
        let geo = Geometry {
            subbuf_size: info.subbuf_size,
            n_subbufs: info.n_subbufs,
            page_size: u64::from(info.page_size),
        };
        Ok(CpuReader {
            cpu,
            info,
            geo,
            strict: opts.strict,
            region,
            _map: map,
            be,
            synced: false,
            next: 0,
            released: 0,
            produced: 0,
            loss: Loss::default(),
            entries: Vec::new(),
            corrupt: Vec::new(),
            epoch: 0,
            deferred: None,
        })
    }

    /// The CPU.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }
    /// No-overwrite or overwrite.
    pub fn mode(&self) -> Mode {
        self.info.mode
    }
    /// The channel's identity and geometry (as of open).
    pub fn info(&self) -> &ChannelInfo {
        &self.info
    }
    /// Calls to the kernel issued by this reader (`GET_CURSOR`,
    /// `PUT_CONSUMED`; for the ioctl backend each is one syscall).
    pub fn control_ops(&self) -> u64 {
        self.be.ops()
    }
    /// Losses seen by this reader.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// `GET_CURSOR` of this CPU, as the kernel reports it now (does not
    /// change what [`CpuReader::acquire`] knows).
    pub fn cursor(&self) -> Result<Cursor> {
        self.be
            .cursor()
            .map_err(|e| Error::ioctl(ControlOp::GetCursor, Some(self.cpu), e))
    }

    fn take_deferred(&mut self) -> Result<()> {
        self.deferred.take().map_or(Ok(()), Err)
    }

    /// Reads the cursor and follows it; resynchronises when it moved in a
    /// way only a RESET by someone else explains.
    fn sync(&mut self) -> Result<()> {
        let c = self
            .be
            .cursor()
            .map_err(|e| Error::ioctl(ControlOp::GetCursor, Some(self.cpu), e))?;
        let mut backwards = None;
        if !self.synced || c.consumed != self.released || c.produced < self.next {
            if self.synced && (c.produced < self.next || c.consumed < self.released) {
                backwards = Some(Error::CursorBackwards {
                    cpu: self.cpu,
                    produced: c.produced,
                    consumed: c.consumed,
                    expected: self.next,
                });
            }
            // Outstanding entries stay allocated until release_raw (their
            // slices may be held); the kernel refuses RESET while a
            // consumer fd is open, so only a backend without that rule
            // gets here with an acquisition outstanding.
            self.next = c.consumed;
            self.released = c.consumed;
            self.synced = true;
        }
        self.produced = c.produced;
        self.loss.records_dropped = c.records_dropped;
        self.loss.records_rejected = c.records_rejected;
        match backwards {
            Some(e) if self.strict => Err(e),
            _ => Ok(()),
        }
    }

    /// Up to `limit` ready sub-buffers, in order, after what was already
    /// acquired. Asks the kernel (`GET_CURSOR`) only when the last known
    /// cursor is used up, so `acquire(1)` in a loop costs O(1) per
    /// sub-buffer. Dropping the batch hands its range back (one
    /// `PUT_CONSUMED`).
    pub fn acquire(&mut self, limit: usize) -> Result<Batch<'_>> {
        let acq = self.acquire_raw(limit)?;
        Ok(Batch::new(self, acq))
    }

    /// [`CpuReader::acquire`]`(usize::MAX)`: everything known ready.
    pub fn batch(&mut self) -> Result<Batch<'_>> {
        self.acquire(usize::MAX)
    }

    /// The borrow-free form of [`CpuReader::acquire`], for bindings: the
    /// sub-buffers stay outstanding until [`CpuReader::release_raw`].
    /// Several acquisitions may be outstanding; each continues after the
    /// previous one. Every slice [`CpuReader::subbuf`] returns (payload and
    /// packet, in overwrite mode too: the copy is owned by the entry) stays
    /// valid and unchanged until `release_raw` or the reader's drop,
    /// whatever else is acquired meanwhile. Dropping the reader with
    /// acquisitions outstanding hands nothing back: the next consumer gets
    /// those sub-buffers again.
    pub fn acquire_raw(&mut self, limit: usize) -> Result<Acquired> {
        self.take_deferred()?;
        if !self.synced || self.next >= self.produced {
            self.sync()?;
        }
        let from = self.next;
        let first = self.entries.len();
        let corrupt_from = self.corrupt.len();
        let mode = self.info.mode;
        let plan = walker::plan(self.next, self.produced, self.geo.n_subbufs, mode);
        let want = plan.end - plan.start;
        let end = plan.start + want.min(limit as u64);
        let mut stop = end;
        let mut lapped = plan.lapped;
        for s in plan.start..end {
            if self.strict && self.corrupt.len() > corrupt_from {
                stop = s;
                break;
            }
            match mode {
                Mode::NoOverwrite => {
                    match walker::read_stable(&self.region, &self.geo, self.cpu, s) {
                        Ok((header, r)) => self.entries.push(Entry {
                            header,
                            loc: Loc::Map(r),
                        }),
                        Err(reason) => self.corrupt.push(CorruptSubbuf { seq: s, reason }),
                    }
                }
                Mode::Overwrite => {
                    let mut copy = Vec::new();
                    match walker::read_copy(&self.region, &self.geo, self.cpu, s, &mut copy) {
                        Copied::Ok(header, r) => {
                            debug_assert_eq!(r, 0..copy.len());
                            self.entries.push(Entry {
                                header,
                                loc: Loc::Copy(copy.into_boxed_slice()),
                            })
                        }
                        Copied::Lapped => lapped += 1,
                        Copied::Corrupt(reason) => {
                            self.corrupt.push(CorruptSubbuf { seq: s, reason })
                        }
                    }
                }
            }
        }
        self.next = stop.max(self.next);
        if self.strict {
            if let Some(c) = self.corrupt.get(corrupt_from) {
                self.deferred.get_or_insert(Error::CorruptHeader {
                    cpu: self.cpu,
                    seq: c.seq,
                    reason: c.reason,
                });
            }
        }
        Ok(Acquired {
            cpu: self.cpu,
            seqs: from..self.next,
            len: self.entries.len() - first,
            lapped,
            first,
            corrupt: corrupt_from..self.corrupt.len(),
            epoch: self.epoch,
        })
    }

    /// The `i`-th delivered sub-buffer of an outstanding acquisition
    /// (`None` past its end, or once it was released).
    pub fn subbuf(&self, a: &Acquired, i: usize) -> Option<Subbuf<'_>> {
        if a.epoch != self.epoch || i >= a.len {
            return None;
        }
        self.entries.get(a.first + i).map(|e| self.view(e))
    }

    pub(crate) fn corrupt_of(&self, a: &Acquired) -> &[CorruptSubbuf] {
        if a.epoch != self.epoch {
            return &[];
        }
        &self.corrupt[a.corrupt.clone()]
    }

    /// Ends every outstanding acquisition: hands back the sub-buffers
    /// before `upto_seq` (`None`: all acquired so far) with one
    /// `PUT_CONSUMED`; the rest are delivered again by the next acquisition.
    pub fn release_raw(&mut self, upto_seq: Option<u64>) -> Result<()> {
        let to = upto_seq.map_or(self.next, |s| s.clamp(self.released, self.next));
        // Everything in released..next is a delivered entry, a corrupt
        // sub-buffer, or lapped (skipped). Losses are counted only for the
        // part handed back, so a range delivered again is not counted twice.
        let entries = self.entries.iter().filter(|e| e.header.seq < to).count() as u64;
        let corrupt = self.corrupt.iter().filter(|c| c.seq < to).count() as u64;
        let lapped = (to - self.released).saturating_sub(entries + corrupt);
        self.next = to;
        self.entries.clear();
        self.corrupt.clear();
        self.epoch += 1;
        let n_subbufs = self.geo.n_subbufs;
        while self.released < to {
            // The module refuses count > n_subbufs (relay would ignore it).
            let n = (to - self.released).min(n_subbufs);
            if let Err(e) = self.be.put_consumed(n) {
                // Not handed back: deliver it again.
                self.next = self.released;
                return Err(Error::ioctl(ControlOp::PutConsumed, Some(self.cpu), e));
            }
            self.released += n;
        }
        self.loss.subbufs_corrupt += corrupt;
        self.loss.subbufs_lapped += lapped;
        Ok(())
    }

    pub(crate) fn defer(&mut self, e: Error) {
        self.deferred.get_or_insert(e);
    }

    fn view<'s>(&'s self, e: &'s Entry) -> Subbuf<'s> {
        let packet = match &e.loc {
            Loc::Map(r) => {
                // SAFETY: who writes this memory: the kernel (relay writers
                // on the owning CPU) and nobody else. `r` is the packet of a
                // sub-buffer that GET_CURSOR reported produced: its writers
                // finished, the module stored `commit` and then `produced`
                // with smp_store_release(), and the walker's acquire load of
                // `commit` pairs with the first. Only no-overwrite entries
                // are `Loc::Map`: there relay does not reuse a sub-buffer
                // until it is consumed (relay_buf_full() makes subbuf_start
                // refuse it), and this reader sends PUT_CONSUMED for it only
                // in `release_raw`, which takes `&mut self`, so no view of
                // it (they borrow `&self`) is alive then. The range lies
                // inside the sub-buffer (checked by the walker against
                // subbuf_size) inside the live mapping.
                unsafe { self.region.slice(r.start, r.len()) }
            }
            Loc::Copy(b) => b,
        };
        Subbuf::new(e.header, packet)
    }

    /// Waits until this CPU may have data, up to `timeout` (`None`:
    /// forever): `true` at once if sub-buffers are known ready, else one
    /// poll of the consumer fd. `false` on timeout or a signal. `true` may
    /// be spurious (relay wakes readers a moment before the module
    /// publishes); callers loop.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool> {
        self.take_deferred()?;
        if self.synced && self.next < self.produced {
            return Ok(true);
        }
        poll_one(self.be.poll_fd(), self.cpu, timeout)
    }

    /// Sub-buffers the last cursor read showed ready that were not acquired
    /// yet. No syscall: a loop `while r.known_ready() > 0 { r.acquire(1) }`
    /// stops without the `GET_CURSOR` an acquire that finds nothing would
    /// cost. 0 before the first acquire; in overwrite mode it may count
    /// sub-buffers that were lapped meanwhile (the acquire reports those).
    pub fn known_ready(&self) -> u64 {
        if self.synced {
            self.produced.saturating_sub(self.next)
        } else {
            0
        }
    }

    /// `true` when everything produced has been handed back (one
    /// `GET_CURSOR`; does not change what is outstanding).
    pub fn is_drained(&mut self) -> Result<bool> {
        self.take_deferred()?;
        let c = self.cursor()?;
        Ok(c.produced == c.consumed)
    }
}

impl AsFd for CpuReader {
    /// The fd to poll for this CPU's data (the consumer fd).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.be.poll_fd()
    }
}

impl AsRawFd for CpuReader {
    fn as_raw_fd(&self) -> RawFd {
        self.be.poll_fd().as_raw_fd()
    }
}
