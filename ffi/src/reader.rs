//! Per-CPU readers: each owns one CPU's consumer claim, fd and read-only
//! mapping (an SDK `CpuReader`). Sub-buffers are taken with
//! `relaymap_reader_next()` (one) or `relaymap_reader_acquire()` (a batch)
//! and handed back with `relaymap_reader_release()`; waits over one reader
//! or many.

use std::os::fd::AsRawFd;
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use sdk::{Acquired, CpuReader, ReadySet, Subbuf};

use crate::boundary::{
    arg_out, arg_ref, guard, null_arg, put, relaymap_result, Failure, FfiResult,
};
use crate::channel::relaymap_cpu_cursor;

/// Read-only bytes: `len` bytes at `ptr` (a non-NULL dangling pointer when
/// `len` is 0). Layout-compatible with `struct iovec`'s two fields.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct relaymap_slice {
    /// The first byte.
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

impl relaymap_slice {
    fn of(s: &[u8]) -> relaymap_slice {
        relaymap_slice {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }
}

/// One finished sub-buffer of a reader's outstanding batch. Its slices
/// point into the kernel's buffer (no copy) in no-overwrite mode, into a
/// validated copy owned by the reader in overwrite mode; either way they
/// are valid, and never change, until the batch is released
/// (`relaymap_reader_release()`, `relaymap_reader_release_until()`) or the
/// reader is closed. Read-only: never write through them.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct relaymap_subbuf {
    /// The events (records): from `header_size` to the end of the last
    /// record's data. Iterate with `relaymap_record_iter_init()`.
    pub payload: relaymap_slice,
    /// The CTF packet exactly as the kernel wrote it: header and events,
    /// rounded up to the page size (what a dump writes).
    pub packet: relaymap_slice,
    /// Sub-buffer number on this CPU (from 0; restarts at a reset).
    pub seq: u64,
    /// CLOCK_MONOTONIC (ns) when the sub-buffer was opened.
    pub ts_begin_ns: u64,
    /// CLOCK_MONOTONIC (ns) when it was closed.
    pub ts_end_ns: u64,
    /// Records dropped on this CPU (buffer full), cumulative, at close.
    pub events_discarded: u64,
    /// Writes refused on this CPU (too large), cumulative, at close.
    pub events_rejected: u64,
    /// Channel instance (`relaymap_channel_info.uuid`).
    pub uuid: [u8; 16],
    /// CPU that owns the buffer.
    pub cpu: u32,
    /// `RELAYMAP_SB_*` flags (`RELAYMAP_SB_FLUSHED`, `RELAYMAP_SB_DROPS`).
    pub flags: u32,
    /// Bytes of the header (the payload starts there in `packet`).
    pub header_size: u32,
}

fn subbuf_of(sb: &Subbuf<'_>) -> relaymap_subbuf {
    let h = sb.header();
    relaymap_subbuf {
        payload: relaymap_slice::of(sb.payload()),
        packet: relaymap_slice::of(sb.packet()),
        seq: h.seq,
        ts_begin_ns: h.ts_begin_ns,
        ts_end_ns: h.ts_end_ns,
        events_discarded: h.events_discarded,
        events_rejected: h.events_rejected,
        uuid: h.uuid,
        cpu: h.cpu,
        flags: h.flags,
        header_size: u32::from(h.header_size),
    }
}

/// The sub-buffers a reader took at once (`relaymap_reader_acquire()`):
/// `subbufs[0 .. len-1]`, in order, all valid together until the batch is
/// released (one control call to hand them all back).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct relaymap_batch {
    /// The delivered sub-buffers (an array owned by the reader).
    pub subbufs: *const relaymap_subbuf,
    /// Number of delivered sub-buffers.
    pub len: usize,
    /// First sub-buffer number covered (delivered, lapped or corrupt).
    pub seq_begin: u64,
    /// One past the last sub-buffer number covered.
    pub seq_end: u64,
    /// Sub-buffers of the range skipped because the kernel lapped them
    /// (overwrite mode).
    pub lapped: u64,
    /// Sub-buffers of the range skipped because their header was corrupt.
    pub corrupt: u64,
    /// Payload bytes of the delivered sub-buffers.
    pub payload_bytes: u64,
    /// The CPU.
    pub cpu: u32,
}

/// A reader's losses, in exact units, as of its latest cursor read.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct relaymap_loss {
    /// Records the kernel dropped on this CPU because the buffer was full
    /// (no-overwrite), cumulative since the channel's last reset.
    pub records_dropped: u64,
    /// Writes the kernel refused on this CPU as too large, cumulative.
    pub records_rejected: u64,
    /// Sub-buffers this reader never delivered because the kernel lapped
    /// them (overwrite mode), since open.
    pub subbufs_lapped: u64,
    /// Sub-buffers skipped because their header was corrupt, since open.
    pub subbufs_corrupt: u64,
}

impl From<sdk::Loss> for relaymap_loss {
    fn from(l: sdk::Loss) -> Self {
        relaymap_loss {
            records_dropped: l.records_dropped,
            records_rejected: l.records_rejected,
            subbufs_lapped: l.subbufs_lapped,
            subbufs_corrupt: l.subbufs_corrupt,
        }
    }
}

/// A reader of one CPU (opaque): holds that CPU's consumer claim (exclusive
/// across processes) and its read-only mapping. Made by
/// `relaymap_reader_open()` or `relaymap_channel_open_readers()`, owned by
/// the caller, freed by `relaymap_reader_close()`. One thread at a time: a
/// call while another thread is inside a call on the same reader fails
/// with `RELAYMAP_ERR_HANDLE_IN_USE`. Different readers are independent, so
/// CPUs can be consumed from different threads.
#[derive(Debug)]
pub struct relaymap_reader {
    state: Mutex<ReaderState>,
}

/// The reader and its one outstanding acquisition.
#[derive(Debug)]
pub struct ReaderState {
    rd: CpuReader,
    /// The outstanding acquisition (delivered or skipped sub-buffers not
    /// handed back yet), if any.
    out: Option<Acquired>,
    /// The views of `out`'s delivered sub-buffers, handed to C as
    /// `relaymap_batch.subbufs`; reused from batch to batch.
    subbufs: Vec<relaymap_subbuf>,
}

// SAFETY: the raw pointers in `subbufs` point into the mapping or the
// overwrite-mode copies owned by `rd`, which moves with them; nothing in
// ReaderState is tied to a thread (CpuReader is Send).
unsafe impl Send for ReaderState {}

impl ReaderState {
    pub(crate) fn new(rd: CpuReader) -> ReaderState {
        ReaderState {
            rd,
            out: None,
            subbufs: Vec::new(),
        }
    }

    fn not_outstanding(&self) -> FfiResult {
        match &self.out {
            None => Ok(()),
            Some(a) => Err(Failure::state(format!(
                "cpu {}: sub-buffers {}..{} are outstanding: release them first \
                 (relaymap_reader_release)",
                self.rd.cpu(),
                a.seqs.start,
                a.seqs.end
            ))),
        }
    }

    /// Takes up to `limit` sub-buffers. An acquisition that delivers
    /// nothing but covers skipped (lapped or corrupt) sub-buffers is handed
    /// back at once, so nothing is outstanding after an empty batch.
    fn acquire(&mut self, limit: usize) -> FfiResult<relaymap_batch> {
        self.not_outstanding()?;
        let a = self.rd.acquire_raw(limit)?;
        self.subbufs.clear();
        let mut payload_bytes = 0u64;
        for i in 0..a.len {
            let Some(sb) = self.rd.subbuf(&a, i) else {
                // Cannot happen (the acquisition was just made); hand
                // nothing back, so all of it is delivered again.
                self.subbufs.clear();
                self.rd.release_raw(Some(a.seqs.start))?;
                return Err(Failure::state(format!(
                    "cpu {}: sub-buffer {i} of {} acquired is missing",
                    a.cpu, a.len
                )));
            };
            payload_bytes += sb.payload().len() as u64;
            self.subbufs.push(subbuf_of(&sb));
        }
        let b = relaymap_batch {
            subbufs: self.subbufs.as_ptr(),
            len: a.len,
            seq_begin: a.seqs.start,
            seq_end: a.seqs.end,
            lapped: a.lapped,
            corrupt: (a.seqs.end - a.seqs.start).saturating_sub(a.len as u64 + a.lapped),
            payload_bytes,
            cpu: self.rd.cpu(),
        };
        if a.len == 0 {
            if !a.seqs.is_empty() {
                self.rd.release_raw(None)?;
            }
        } else {
            self.out = Some(a);
        }
        Ok(b)
    }

    fn release(&mut self, upto: Option<u64>) -> FfiResult {
        if self.out.take().is_none() {
            return Err(Failure::state(format!(
                "cpu {}: no batch is outstanding",
                self.rd.cpu()
            )));
        }
        self.subbufs.clear();
        Ok(self.rd.release_raw(upto)?)
    }
}

impl relaymap_reader {
    pub(crate) fn boxed(st: ReaderState) -> *mut relaymap_reader {
        Box::into_raw(Box::new(relaymap_reader {
            state: Mutex::new(st),
        }))
    }

    fn lock(&self) -> FfiResult<MutexGuard<'_, ReaderState>> {
        match self.state.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::WouldBlock) => Err(Failure::new(
                relaymap_result::RELAYMAP_ERR_HANDLE_IN_USE,
                "the reader is in use by another thread (a reader is for one thread at a time)",
            )),
            Err(TryLockError::Poisoned(_)) => Err(Failure::new(
                relaymap_result::RELAYMAP_ERR_PANIC,
                "an earlier call on this reader panicked; close it",
            )),
        }
    }
}

/// Borrows the reader.
///
/// # Safety
///
/// `rd` is NULL or a live reader.
unsafe fn reader<'a>(rd: *const relaymap_reader) -> FfiResult<&'a relaymap_reader> {
    // SAFETY: the caller's contract; the Mutex inside makes shared access
    // from several threads sound.
    unsafe { arg_ref(rd, "rd") }
}

/// `timeout_ms` negative: no limit.
fn timeout(timeout_ms: i64) -> Option<Duration> {
    u64::try_from(timeout_ms).ok().map(Duration::from_millis)
}

/// Closes a reader: unmaps its buffer and releases its claim on the CPU.
/// An outstanding batch is *not* handed back (the next consumer of the CPU
/// gets those sub-buffers again); every pointer into it becomes invalid.
/// NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn relaymap_reader_close(rd: *mut relaymap_reader) {
    let _ = guard("relaymap_reader_close", || {
        if !rd.is_null() {
            // SAFETY: a non-NULL `rd` came from relaymap_reader_open or
            // relaymap_channel_open_readers (Box::into_raw) and is not used
            // again by the caller.
            drop(unsafe { Box::from_raw(rd) });
        }
        Ok(())
    });
}

/// The reader's CPU.
#[no_mangle]
pub unsafe extern "C" fn relaymap_reader_cpu(
    rd: *const relaymap_reader,
    cpu: *mut u32,
) -> relaymap_result {
    guard("relaymap_reader_cpu", || {
        // SAFETY: the caller passes a live reader or NULL.
        let rd = unsafe { reader(rd) }?;
        let cpu = arg_out(cpu, "cpu")?;
        let c = rd.lock()?.rd.cpu();
        // SAFETY: checked non-NULL.
        unsafe { put(cpu, c) };
        Ok(())
    })
}

/// The reader's consumer fd, for another event loop (poll/epoll for
/// `POLLIN`: readable when sub-buffers are ready; level-triggered).
/// Owned by the reader: do not close it or read from it; valid until
/// `relaymap_reader_close()`.
#[no_mangle]
pub unsafe extern "C" fn relaymap_reader_fd(
    rd: *const relaymap_reader,
    fd: *mut i32,
) -> relaymap_result {
    guard("relaymap_reader_fd", || {
        // SAFETY: the caller passes a live reader or NULL.
        let rd = unsafe { reader(rd) }?;
        let fd = arg_out(fd, "fd")?;
        let raw = rd.lock()?.rd.as_raw_fd();
        // SAFETY: checked non-NULL.
        unsafe { put(fd, raw) };
        Ok(())
    })
}

/// Waits until this reader's CPU has a finished sub-buffer, for at most
/// `timeout_ms` milliseconds (negative: no limit). `*ready` is false on
/// timeout or when a signal interrupted the wait; true may be spurious, so
/// callers loop. Level-triggered.
#[no_mangle]
pub unsafe extern "C" fn relaymap_reader_wait(
    rd: *const relaymap_reader,
    timeout_ms: i64,
    ready: *mut bool,
) -> relaymap_result {
    guard("relaymap_reader_wait", || {
        // SAFETY: the caller passes a live reader or NULL.
        let rd = unsafe { reader(rd) }?;
        let ready = arg_out(ready, "ready")?;
        let r = rd.lock()?.rd.wait(timeout(timeout_ms))?;
        // SAFETY: checked non-NULL.
        unsafe { put(ready, r) };
        Ok(())
    })
}

/// One wait over `n` readers (one poll): waits until at least one has a
/// finished sub-buffer, for at most `timeout_ms` milliseconds (negative: no
/// limit). `*n_ready` is how many are ready (0: timeout or a signal), and
/// `ready[i]` (an array of `n`, or NULL) says whether `readers[i]` is.
/// Ready may be spurious; level-triggered. Each reader must not be in use
/// by another thread meanwhile (`RELAYMAP_ERR_HANDLE_IN_USE`).
#[no_mangle]
pub unsafe extern "C" fn relaymap_readers_wait(
    readers: *const *const relaymap_reader,
    n: usize,
    timeout_ms: i64,
    ready: *mut bool,
    n_ready: *mut usize,
) -> relaymap_result {
    guard("relaymap_readers_wait", || {
        let n_ready = arg_out(n_ready, "n_ready")?;
        if n > 0 && readers.is_null() {
            return Err(null_arg("readers"));
        }
        let ptrs: &[*const relaymap_reader] = if n == 0 {
            &[]
        } else {
            // SAFETY: non-NULL, and the caller guarantees `n` readable
            // pointers that nobody writes during the call.
            unsafe { std::slice::from_raw_parts(readers, n) }
        };
        let mut guards = Vec::with_capacity(n);
        for (i, p) in ptrs.iter().enumerate() {
            // SAFETY: each is a live reader or NULL (caller's contract).
            let rd = unsafe { p.as_ref() }.ok_or_else(|| null_arg(&format!("readers[{i}]")))?;
            guards.push(rd.lock()?);
        }
        // The set holds the fds; the guards keep the readers (and so their
        // fds) alive and unused by other threads until the wait is over.
        let mut set = ReadySet::new(&[])?;
        for g in &guards {
            set.push(&g.rd);
        }
        let hits = set.wait(timeout(timeout_ms))?;
        if !ready.is_null() {
            for i in 0..n {
                // SAFETY: non-NULL and the caller guarantees room for `n`
                // bools.
                unsafe { put(ready.add(i), false) };
            }
            for &i in &hits {
                // SAFETY: as above; i < n (indices into `refs`).
                unsafe { put(ready.add(i), true) };
            }
        }
        // SAFETY: checked non-NULL.
        unsafe { put(n_ready, hits.len()) };
        Ok(())
    })
}

/// Takes the next finished sub-buffer of the reader's CPU (acquire of one:
/// constant cost per sub-buffer; the kernel's cursor is read only when the
/// last one read is used up). If there is one, `*sb` describes it, `*got`
/// is true, and it is outstanding until `relaymap_reader_release()`; if
/// there is none, `*got` is false and nothing is outstanding. Lapped or
/// corrupt sub-buffers on the way are skipped and counted in the loss
/// counters. `RELAYMAP_ERR_STATE` while a batch is outstanding.
#[no_mangle]
pub unsafe extern "C" fn relaymap_reader_next(
    rd: *const relaymap_reader,
    sb: *mut relaymap_subbuf,
    got: *mut bool,
) -> relaymap_result {
    guard("relaymap_reader_next", || {
        // SAFETY: the caller passes a live reader or NULL.
        let rd = unsafe { reader(rd) }?;
        let sb = arg_out(sb, "sb")?;
        let got = arg_out(got, "got")?;
        // SAFETY: checked non-NULL.
        unsafe { put(got, false) };
        let mut st = rd.lock()?;
        loop {
            let b = st.acquire(1)?;
            if b.len == 1 {
                // SAFETY: checked non-NULL.
                unsafe {
                    put(sb, st.subbufs[0]);
                    put(got, true);
                }
                return Ok(());
            }
            if b.seq_begin == b.seq_end {
                return Ok(());
            }
            // Only skipped sub-buffers (already handed back): look further.
        }
    })
}

/// Takes up to `limit` finished sub-buffers of the reader's CPU at once
/// (`SIZE_MAX`: every ready one), in order: `batch->subbufs[0 ..
/// batch->len - 1]`, all valid together until the batch is released (one
/// control call each way). `RELAYMAP_ERR_STATE` while a batch is
/// outstanding; `RELAYMAP_ERR_INVALID_ARGUMENT` if `limit` is 0. An empty
/// batch (`len` 0) leaves nothing outstanding; its range may still cover
/// skipped (lapped or corrupt) sub-buffers, already handed back.
#[no_mangle]
pub unsafe extern "C" fn relaymap_reader_acquire(
    rd: *const relaymap_reader,
    limit: usize,
    batch: *mut relaymap_batch,
) -> relaymap_result {
    guard("relaymap_reader_acquire", || {
        // SAFETY: the caller passes a live reader or NULL.
        let rd = unsafe { reader(rd) }?;
        let batch = arg_out(batch, "batch")?;
        if limit == 0 {
            return Err(Failure::invalid(
                "limit 0 (SIZE_MAX: every ready sub-buffer)",
            ));
        }
        let b = rd.lock()?.acquire(limit)?;
        // SAFETY: checked non-NULL.
        unsafe { put(batch, b) };
        Ok(())
    })
}

/// Hands the outstanding batch (or the sub-buffer from
/// `relaymap_reader_next()`) back to the kernel, which may then reuse its
/// memory: one control call. Its pointers become invalid.
/// `RELAYMAP_ERR_STATE` if nothing is outstanding.
#[no_mangle]
pub unsafe extern "C" fn relaymap_reader_release(rd: *const relaymap_reader) -> relaymap_result {
    guard("relaymap_reader_release", || {
        // SAFETY: the caller passes a live reader or NULL.
        let rd = unsafe { reader(rd) }?;
        rd.lock()?.release(None)
    })
}

/// Hands back only the sub-buffers of the outstanding batch numbered below
/// `seq` (clamped to the batch's range: `seq_begin` hands back nothing);
/// the rest are delivered again by the next `next`/`acquire`. Ends the
/// batch: all its pointers become invalid. `RELAYMAP_ERR_STATE` if nothing
/// is outstanding.
#[no_mangle]
pub unsafe extern "C" fn relaymap_reader_release_until(
    rd: *const relaymap_reader,
    seq: u64,
) -> relaymap_result {
    guard("relaymap_reader_release_until", || {
        // SAFETY: the caller passes a live reader or NULL.
        let rd = unsafe { reader(rd) }?;
        rd.lock()?.release(Some(seq))
    })
}

/// The kernel's cursor of the reader's CPU (one control call).
#[no_mangle]
pub unsafe extern "C" fn relaymap_reader_cursor(
    rd: *const relaymap_reader,
    cursor: *mut relaymap_cpu_cursor,
) -> relaymap_result {
    guard("relaymap_reader_cursor", || {
        // SAFETY: the caller passes a live reader or NULL.
        let rd = unsafe { reader(rd) }?;
        let cursor = arg_out(cursor, "cursor")?;
        let c = rd.lock()?.rd.cursor()?;
        // SAFETY: checked non-NULL.
        unsafe { put(cursor, (&c).into()) };
        Ok(())
    })
}

/// The reader's losses (no control call: as of its latest cursor read;
/// `relaymap_reader_is_drained()` reads the cursor).
#[no_mangle]
pub unsafe extern "C" fn relaymap_reader_loss(
    rd: *const relaymap_reader,
    loss: *mut relaymap_loss,
) -> relaymap_result {
    guard("relaymap_reader_loss", || {
        // SAFETY: the caller passes a live reader or NULL.
        let rd = unsafe { reader(rd) }?;
        let loss = arg_out(loss, "loss")?;
        let l = rd.lock()?.rd.loss();
        // SAFETY: checked non-NULL.
        unsafe { put(loss, l.into()) };
        Ok(())
    })
}

/// `*drained` = this CPU has handed back everything it produced and
/// nothing is outstanding. With the writers stopped, flush
/// (`relaymap_channel_flush()`) then consume until this is true to get
/// everything.
#[no_mangle]
pub unsafe extern "C" fn relaymap_reader_is_drained(
    rd: *const relaymap_reader,
    drained: *mut bool,
) -> relaymap_result {
    guard("relaymap_reader_is_drained", || {
        // SAFETY: the caller passes a live reader or NULL.
        let rd = unsafe { reader(rd) }?;
        let drained = arg_out(drained, "drained")?;
        let mut st = rd.lock()?;
        let d = st.out.is_none() && st.rd.is_drained()?;
        // SAFETY: checked non-NULL.
        unsafe { put(drained, d) };
        Ok(())
    })
}

/// Control calls (ioctls, or their simulated equivalent) this reader has
/// issued: a reader that keeps up costs about two per batch.
#[no_mangle]
pub unsafe extern "C" fn relaymap_reader_control_ops(
    rd: *const relaymap_reader,
    ops: *mut u64,
) -> relaymap_result {
    guard("relaymap_reader_control_ops", || {
        // SAFETY: the caller passes a live reader or NULL.
        let rd = unsafe { reader(rd) }?;
        let ops = arg_out(ops, "ops")?;
        let v = rd.lock()?.rd.control_ops();
        // SAFETY: checked non-NULL.
        unsafe { put(ops, v) };
        Ok(())
    })
}

// A reader may move between threads (one at a time; the Mutex turns
// concurrent use into RELAYMAP_ERR_HANDLE_IN_USE).
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<relaymap_reader>();
};
