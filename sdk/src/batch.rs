//! [`Batch`] (a range of one CPU's sub-buffers, handed back on drop) and
//! [`Subbuf`] (a view of one).

use std::ops::{Deref, Range};

use crate::error::{Corruption, Result};
use crate::reader::{Acquired, CpuReader};
use crate::records::Records;
use crate::walker::SubbufHeader;

/// A view of one finished sub-buffer. `Deref<Target = [u8]>` is the
/// payload (the events). Zero-copy in no-overwrite mode (the bytes are the
/// kernel's, left alone until the batch is handed back); a validated copy
/// in overwrite mode.
#[derive(Debug, Clone, Copy)]
pub struct Subbuf<'a> {
    header: SubbufHeader,
    packet: &'a [u8],
}

impl<'a> Subbuf<'a> {
    pub(crate) fn new(header: SubbufHeader, packet: &'a [u8]) -> Subbuf<'a> {
        debug_assert_eq!(packet.len() as u64, header.packet_size);
        Subbuf { header, packet }
    }
    /// The header (a copy, sizes in bytes).
    pub fn header(&self) -> &SubbufHeader {
        &self.header
    }
    /// The CPU.
    pub fn cpu(&self) -> u32 {
        self.header.cpu
    }
    /// Sub-buffer number on this CPU.
    pub fn seq(&self) -> u64 {
        self.header.seq
    }
    /// The events: `header_size .. content_size`.
    pub fn payload(&self) -> &'a [u8] {
        &self.packet[self.header.header_size as usize..self.header.content_size as usize]
    }
    /// The CTF packet exactly as the kernel wrote it: the header, the
    /// events and the padding up to the page (`packet_size` bytes). What a
    /// dump writes.
    pub fn packet(&self) -> &'a [u8] {
        self.packet
    }
    /// The records of the payload (for framed channels).
    pub fn records(&self) -> Records<'a> {
        Records::new(self.payload())
    }
}

impl Deref for Subbuf<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.payload()
    }
}

/// A sub-buffer skipped because its header was corrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorruptSubbuf {
    /// Its number.
    pub seq: u64,
    /// Why.
    pub reason: Corruption,
}

/// A range of one CPU's sub-buffers ([`CpuReader::acquire`]). It owns the
/// range: dropping it hands the whole range back with **one**
/// `PUT_CONSUMED` (a failure then is returned by the reader's next call);
/// [`Batch::release`] does the same and returns the error. All views of a
/// batch are valid together (e.g. for one `pwritev`).
#[derive(Debug)]
pub struct Batch<'r> {
    reader: &'r mut CpuReader,
    acq: Acquired,
    done: bool,
}

impl<'r> Batch<'r> {
    pub(crate) fn new(reader: &'r mut CpuReader, acq: Acquired) -> Batch<'r> {
        Batch {
            reader,
            acq,
            done: false,
        }
    }
    /// The CPU.
    pub fn cpu(&self) -> u32 {
        self.acq.cpu
    }
    /// Sub-buffer numbers covered (delivered, lapped or corrupt).
    pub fn seqs(&self) -> Range<u64> {
        self.acq.seqs.clone()
    }
    /// Delivered sub-buffers.
    pub fn len(&self) -> usize {
        self.acq.len
    }
    /// No sub-buffer delivered.
    pub fn is_empty(&self) -> bool {
        self.acq.len == 0
    }
    /// The `i`-th delivered sub-buffer.
    pub fn get(&self, i: usize) -> Option<Subbuf<'_>> {
        self.reader.subbuf(&self.acq, i)
    }
    /// The delivered sub-buffers in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            reader: self.reader,
            acq: &self.acq,
            i: 0,
        }
    }
    /// Total payload bytes delivered.
    pub fn payload_bytes(&self) -> u64 {
        self.iter().map(|s| s.payload().len() as u64).sum()
    }
    /// Sub-buffers skipped in this batch because they were lapped.
    pub fn lapped(&self) -> u64 {
        self.acq.lapped
    }
    /// Sub-buffers skipped in this batch because their header was corrupt.
    pub fn corrupt(&self) -> &[CorruptSubbuf] {
        self.reader.corrupt_of(&self.acq)
    }
    /// Hands the whole range back now (one `PUT_CONSUMED`).
    pub fn release(mut self) -> Result<()> {
        self.done = true;
        self.reader.release_raw(None)
    }
    /// Hands back only the sub-buffers before `seq` (clamped to the batch);
    /// the rest are delivered again by the next acquisition.
    pub fn release_until(mut self, seq: u64) -> Result<()> {
        self.done = true;
        let s = seq.clamp(self.acq.seqs.start, self.acq.seqs.end);
        self.reader.release_raw(Some(s))
    }
    /// Hands nothing back: the whole range is delivered again by the next
    /// acquisition.
    pub fn keep(mut self) {
        self.done = true;
        let start = self.acq.seqs.start;
        // Releasing "until start" hands back nothing before this batch that
        // was not already acquired, and rewinds to the batch's start.
        if let Err(e) = self.reader.release_raw(Some(start)) {
            self.reader.defer(e);
        }
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.reader.release_raw(None) {
                self.reader.defer(e);
            }
        }
    }
}

/// Iterator over a batch's delivered sub-buffers.
#[derive(Debug, Clone)]
pub struct Iter<'b> {
    reader: &'b CpuReader,
    acq: &'b Acquired,
    i: usize,
}

impl<'b> Iterator for Iter<'b> {
    type Item = Subbuf<'b>;
    fn next(&mut self) -> Option<Subbuf<'b>> {
        let s = self.reader.subbuf(self.acq, self.i)?;
        self.i += 1;
        Some(s)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.acq.len.saturating_sub(self.i);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'b> IntoIterator for &'b Batch<'_> {
    type Item = Subbuf<'b>;
    type IntoIter = Iter<'b>;
    fn into_iter(self) -> Iter<'b> {
        self.iter()
    }
}
