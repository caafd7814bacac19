//! Channels: open/close, info, wait, sub-buffer views and batches, flush,
//! loss and stats.

use std::ffi::{c_char, CStr};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use sdk::{Channel, Mode, Subbuf};

use crate::boundary::{
    arg_out, arg_ref, guard, null_arg, put, relaymap_result, Failure, FfiResult,
};

/// `relaymap_channel_open()` flag: pre-fault the mappings (`MAP_POPULATE`)
/// so that the first pass over each buffer takes no page faults.
pub const RELAYMAP_OPEN_POPULATE: u32 = 1;

/// An open channel (opaque). Made by `relaymap_channel_open()`, owned by
/// the caller, freed by `relaymap_channel_close()`. One thread at a time: a
/// call while another thread is inside a call on the same handle fails
/// with `RELAYMAP_ERR_BUSY`. Different handles are independent.
#[derive(Debug)]
pub struct relaymap_channel {
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outstanding {
    None,
    /// One view from `relaymap_channel_next()`.
    View {
        cpu: u32,
        seq: u64,
    },
    /// A batch from `relaymap_channel_acquire()`.
    Batch,
}

#[derive(Debug)]
struct State {
    ch: Channel,
    out: Outstanding,
    /// Round-robin start for `relaymap_channel_next(ch, RELAYMAP_ALL_CPUS)`.
    rr: usize,
}

impl State {
    /// Ends the outstanding view (hands back that one sub-buffer) or batch
    /// (hands back all of it).
    fn end_outstanding(&mut self) -> FfiResult {
        match std::mem::replace(&mut self.out, Outstanding::None) {
            Outstanding::None => Ok(()),
            Outstanding::View { seq, .. } => Ok(self.ch.release_acquired(Some(seq + 1))?),
            Outstanding::Batch => Ok(self.ch.release_acquired(None)?),
        }
    }

    fn next(&mut self, cpu: i32) -> FfiResult<Option<relaymap_view>> {
        self.end_outstanding()?;
        let cpus = self.ch.cpus();
        let order: Vec<u32> = match cpu {
            -1 => (0..cpus.len())
                .map(|k| cpus[(self.rr + k) % cpus.len()])
                .collect(),
            c if c >= 0 => vec![c as u32],
            c => return Err(Failure::invalid(format!("cpu {c}"))),
        };
        for (k, c) in order.iter().enumerate() {
            let a = self.ch.acquire(*c)?;
            if a.len > 0 {
                let v = view_of(&self.ch.acquired_subbuf(0).expect("acquired len > 0"));
                self.out = Outstanding::View {
                    cpu: *c,
                    seq: v.seq,
                };
                if cpu == -1 {
                    self.rr = (self.rr + k + 1) % cpus.len();
                }
                return Ok(Some(v));
            }
            // Nothing deliverable; hand back what was skipped (lapped or
            // corrupt sub-buffers are accounted as losses).
            self.ch.release_acquired(None)?;
        }
        Ok(None)
    }
}

fn lock(ch: &relaymap_channel) -> FfiResult<MutexGuard<'_, State>> {
    match ch.state.try_lock() {
        Ok(g) => Ok(g),
        Err(TryLockError::WouldBlock) => Err(Failure::new(
            relaymap_result::RELAYMAP_ERR_BUSY,
            "the channel is in use by another thread (a handle is for one thread at a time)",
        )),
        Err(TryLockError::Poisoned(_)) => Err(Failure::new(
            relaymap_result::RELAYMAP_ERR_PANIC,
            "an earlier call on this channel panicked; close it",
        )),
    }
}

/// Geometry and identity of a channel (`relaymap_channel_get_info()`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct relaymap_channel_info {
    /// Channel name, NUL-terminated.
    pub name: [c_char; 64],
    /// Bytes per sub-buffer.
    pub subbuf_size: u64,
    /// Sub-buffers per CPU.
    pub n_subbufs: u64,
    /// Bytes mapped per CPU.
    pub alloc_size: u64,
    /// The module's ABI version (equal to `RELAYMAP_ABI_VERSION`).
    pub abi_version: u32,
    /// Bytes reserved at the start of each sub-buffer for its header.
    pub header_size: u32,
    /// CPUs the kernel can have.
    pub nr_cpu_ids: u32,
    /// Largest framed record a writer may emit, header included.
    pub max_record_size: u32,
    /// CPUs this handle maps (see `relaymap_channel_cpus()`).
    pub n_cpus: u32,
    /// Flight-recorder mode (`RELAYMAP_INFO_OVERWRITE`): payloads are
    /// validated copies, and laps are counted in the loss counters.
    pub overwrite: bool,
}

/// One finished sub-buffer: its payload (`data`, `len`; header and padding
/// stripped) and its header's fields. `data` points into the kernel's
/// buffer (no copy) in no-overwrite mode, into a copy owned by the channel
/// in overwrite mode; either way it is valid until the view is released
/// (`relaymap_view_release()`, or `relaymap_batch_release()` for a view of
/// a batch), the next `relaymap_channel_next()`/`relaymap_channel_acquire()`
/// /`relaymap_channel_reset()` on the channel, or `relaymap_channel_close()`.
/// Read-only: never write through `data`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct relaymap_view {
    /// The payload (may be a non-NULL dangling pointer when `len` is 0).
    pub data: *const u8,
    /// Payload bytes (= `payload_size`).
    pub len: usize,
    /// Sub-buffer number on this CPU (from 0; restarts on reset).
    pub seq: u64,
    /// CLOCK_MONOTONIC (ns) when the sub-buffer was opened.
    pub ts_begin_ns: u64,
    /// CLOCK_MONOTONIC (ns) when it was closed.
    pub ts_end_ns: u64,
    /// Records dropped on this CPU (cumulative) when it was closed.
    pub records_dropped: u64,
    /// CPU that owns the buffer.
    pub cpu: u32,
    /// `RELAYMAP_SB_*` flags (`RELAYMAP_SB_FLUSHED`, `RELAYMAP_SB_DROPS`).
    pub flags: u32,
    /// Bytes reserved for the header (the payload starts there).
    pub header_size: u32,
    /// Payload bytes.
    pub payload_size: u32,
    /// Unused bytes at the end of the sub-buffer.
    pub padding: u32,
}

fn view_of(sb: &Subbuf<'_>) -> relaymap_view {
    let h = sb.header();
    let p = sb.payload();
    relaymap_view {
        data: p.as_ptr(),
        len: p.len(),
        seq: h.seq,
        ts_begin_ns: h.ts_begin_ns,
        ts_end_ns: h.ts_end_ns,
        records_dropped: h.records_dropped,
        cpu: h.cpu,
        flags: h.flags,
        header_size: u32::from(h.header_size),
        payload_size: h.payload_size,
        padding: h.padding,
    }
}

/// Every sub-buffer one CPU had ready, taken at once
/// (`relaymap_channel_acquire()`): one control call to take them, one to
/// hand them all back (`relaymap_batch_release()`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct relaymap_batch {
    /// Delivered sub-buffers: `relaymap_batch_view(ch, 0 .. len-1)`.
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

/// Losses, in exact units.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct relaymap_loss {
    /// Records the kernel dropped because the buffer was full
    /// (no-overwrite), cumulative since the channel's last reset, as of the
    /// latest cursor read.
    pub records_dropped: u64,
    /// Sub-buffers this handle never delivered because the kernel lapped
    /// them (overwrite mode), since open.
    pub subbufs_lapped: u64,
    /// Sub-buffers skipped because their header was corrupt, since open.
    pub subbufs_corrupt: u64,
}

impl From<sdk::Loss> for relaymap_loss {
    fn from(l: sdk::Loss) -> Self {
        relaymap_loss {
            records_dropped: l.records_dropped,
            subbufs_lapped: l.subbufs_lapped,
            subbufs_corrupt: l.subbufs_corrupt,
        }
    }
}

/// The kernel's counters of one CPU or of the whole channel (`GET_STATS`),
/// and this handle's loss counters.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct relaymap_channel_stats {
    /// Records accepted by the module's write API.
    pub records_written: u64,
    /// Payload bytes accepted by the module's write API.
    pub bytes_written: u64,
    /// Write attempts dropped because the buffer was full.
    pub records_dropped: u64,
    /// Sub-buffers closed and committed since reset.
    pub subbufs_produced: u64,
    /// Sub-buffers handed back.
    pub subbufs_consumed: u64,
    /// Unconsumed sub-buffers overwritten (overwrite mode).
    pub subbufs_lapped: u64,
    /// Sub-buffers closed early by a flush.
    pub flushes: u64,
    /// Resets since the channel was created.
    pub resets: u64,
    /// This handle's losses (the same as `relaymap_channel_loss()`).
    pub loss: relaymap_loss,
}

impl relaymap_channel_stats {
    pub(crate) fn from_sdk(s: sdk::Stats, loss: relaymap_loss) -> Self {
        relaymap_channel_stats {
            records_written: s.records_written,
            bytes_written: s.bytes_written,
            records_dropped: s.records_dropped,
            subbufs_produced: s.subbufs_produced,
            subbufs_consumed: s.subbufs_consumed,
            subbufs_lapped: s.subbufs_lapped,
            flushes: s.flushes,
            resets: s.resets,
            loss,
        }
    }
}

/// `cpu` argument: `RELAYMAP_ALL_CPUS` (-1) -> None, a CPU -> Some.
pub(crate) fn cpu_arg(cpu: i32) -> FfiResult<Option<u32>> {
    match cpu {
        -1 => Ok(None),
        c if c >= 0 => Ok(Some(c as u32)),
        c => Err(Failure::invalid(format!(
            "cpu {c} (a CPU number or RELAYMAP_ALL_CPUS)"
        ))),
    }
}

/// A C string argument as a path.
///
/// # Safety
///
/// `s` is NULL or a valid NUL-terminated string.
pub(crate) unsafe fn path_arg<'a>(s: *const c_char, arg: &str) -> FfiResult<&'a Path> {
    if s.is_null() {
        return Err(null_arg(arg));
    }
    // SAFETY: non-NULL, and the caller guarantees a NUL-terminated string
    // that outlives this call.
    let bytes = unsafe { CStr::from_ptr(s) }.to_bytes();
    if bytes.is_empty() {
        return Err(Failure::invalid(format!("`{arg}` is an empty string")));
    }
    Ok(Path::new(std::ffi::OsStr::from_bytes(bytes)))
}

/// Opens the channel in directory `dir` (e.g.
/// `"/sys/kernel/debug/relaymap/demo"`, or a simulated channel's directory)
/// and maps every CPU's buffer read-only. `flags`: 0 or
/// `RELAYMAP_OPEN_POPULATE`. On success `*out` is a new handle that the
/// caller owns and frees with `relaymap_channel_close()`; on failure
/// `*out` is NULL. One consumer per channel: the kernel keeps one
/// `consumed` count per CPU.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_open(
    dir: *const c_char,
    flags: u32,
    out: *mut *mut relaymap_channel,
) -> relaymap_result {
    guard("relaymap_channel_open", || {
        // SAFETY: the caller's pointers are passed on with the same contract.
        unsafe { open(dir, flags, std::ptr::null(), 0, out) }
    })
}

/// `relaymap_channel_open()` mapping only the `n_cpus` CPUs in `cpus` (an
/// array the call only reads). A CPU without a buffer is
/// `RELAYMAP_ERR_UNKNOWN_CPU`. `n_cpus` 0 means every CPU (`cpus` may then
/// be NULL).
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_open_cpus(
    dir: *const c_char,
    flags: u32,
    cpus: *const u32,
    n_cpus: usize,
    out: *mut *mut relaymap_channel,
) -> relaymap_result {
    guard("relaymap_channel_open_cpus", || {
        // SAFETY: the caller's pointers are passed on with the same contract.
        unsafe { open(dir, flags, cpus, n_cpus, out) }
    })
}

/// # Safety
///
/// As for `relaymap_channel_open_cpus`: valid pointers or NULL.
unsafe fn open(
    dir: *const c_char,
    flags: u32,
    cpus: *const u32,
    n_cpus: usize,
    out: *mut *mut relaymap_channel,
) -> FfiResult {
    let out = arg_out(out, "out")?;
    // SAFETY: `out` is non-NULL and valid for writes (caller's contract).
    unsafe { put(out, std::ptr::null_mut()) };
    // SAFETY: caller's contract: NULL or a NUL-terminated string.
    let dir = unsafe { path_arg(dir, "dir") }?;
    if flags & !RELAYMAP_OPEN_POPULATE != 0 {
        return Err(Failure::invalid(format!(
            "unknown flags {:#x}",
            flags & !RELAYMAP_OPEN_POPULATE
        )));
    }
    let mut b = Channel::builder(dir).populate(flags & RELAYMAP_OPEN_POPULATE != 0);
    if n_cpus > 0 {
        if cpus.is_null() {
            return Err(null_arg("cpus"));
        }
        // SAFETY: non-NULL, and the caller guarantees `n_cpus` readable
        // u32s that nobody writes during the call.
        let sel = unsafe { std::slice::from_raw_parts(cpus, n_cpus) };
        b = b.cpus(sel.to_vec());
    }
    let ch = b.open()?;
    let h = Box::new(relaymap_channel {
        state: Mutex::new(State {
            ch,
            out: Outstanding::None,
            rr: 0,
        }),
    });
    // SAFETY: checked non-NULL above; the caller owns the handle from now.
    unsafe { put(out, Box::into_raw(h)) };
    Ok(())
}

/// Closes a channel: unmaps its buffers and frees the handle. An
/// outstanding view or batch is *not* handed back (the next consumer gets
/// those sub-buffers again); every pointer into the channel becomes
/// invalid. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_close(ch: *mut relaymap_channel) {
    let _ = guard("relaymap_channel_close", || {
        if !ch.is_null() {
            // SAFETY: a non-NULL `ch` came from relaymap_channel_open*
            // (Box::into_raw) and is not used again by the caller.
            drop(unsafe { Box::from_raw(ch) });
        }
        Ok(())
    });
}

/// Borrows the handle.
///
/// # Safety
///
/// `ch` is NULL or a live handle from `relaymap_channel_open*`.
unsafe fn chan<'a>(ch: *const relaymap_channel) -> FfiResult<&'a relaymap_channel> {
    // SAFETY: the caller's contract; the Mutex inside makes shared access
    // from several threads sound.
    unsafe { arg_ref(ch, "ch") }
}

/// Fills `*info` with the channel's geometry and identity.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_get_info(
    ch: *const relaymap_channel,
    info: *mut relaymap_channel_info,
) -> relaymap_result {
    guard("relaymap_channel_get_info", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let info = arg_out(info, "info")?;
        let st = lock(ch)?;
        let i = st.ch.info();
        let mut name = [0 as c_char; 64];
        for (d, s) in name.iter_mut().zip(i.name.bytes().take(63)) {
            *d = s as c_char;
        }
        let v = relaymap_channel_info {
            name,
            subbuf_size: i.subbuf_size,
            n_subbufs: i.n_subbufs,
            alloc_size: i.alloc_size,
            abi_version: i.abi_version,
            header_size: i.header_size,
            nr_cpu_ids: i.nr_cpu_ids,
            max_record_size: i.max_record_size,
            n_cpus: st.ch.cpus().len() as u32,
            overwrite: i.mode == Mode::Overwrite,
        };
        // SAFETY: checked non-NULL; the caller's struct is writable.
        unsafe { put(info, v) };
        Ok(())
    })
}

/// The CPUs this handle maps, ascending as batches walk them: writes up to
/// `cap` of them to `cpus` and their number to `*n`. If `cap` is too small,
/// `*n` is still the number needed and the result is
/// `RELAYMAP_ERR_BUFFER_TOO_SMALL` (call with `cap` 0 and `cpus` NULL to ask).
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_cpus(
    ch: *const relaymap_channel,
    cpus: *mut u32,
    cap: usize,
    n: *mut usize,
) -> relaymap_result {
    guard("relaymap_channel_cpus", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let n = arg_out(n, "n")?;
        if cap > 0 && cpus.is_null() {
            return Err(null_arg("cpus"));
        }
        let list = lock(ch)?.ch.cpus();
        // SAFETY: checked non-NULL.
        unsafe { put(n, list.len()) };
        if list.len() > cap {
            return Err(Failure::new(
                relaymap_result::RELAYMAP_ERR_BUFFER_TOO_SMALL,
                format!("{} CPUs, room for {cap}", list.len()),
            ));
        }
        for (i, c) in list.iter().enumerate() {
            // SAFETY: `cpus` is non-NULL (cap > 0 here) and has room for
            // `cap` >= list.len() values (caller's contract).
            unsafe { put(cpus.add(i), *c) };
        }
        Ok(())
    })
}

/// A file descriptor that is readable when `relaymap_channel_wait()` would
/// report data, for another event loop (epoll, poll, libuv, ...). Owned by
/// the channel: do not close it; valid until `relaymap_channel_close()`.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_fd(
    ch: *const relaymap_channel,
    fd: *mut i32,
) -> relaymap_result {
    guard("relaymap_channel_fd", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let fd = arg_out(fd, "fd")?;
        let raw = lock(ch)?.ch.as_fd().as_raw_fd();
        // SAFETY: checked non-NULL.
        unsafe { put(fd, raw) };
        Ok(())
    })
}

/// Waits until some CPU has data, for at most `timeout_ms` milliseconds
/// (negative: no limit). One wait covers every CPU. `*ready` is false on
/// timeout or when a signal interrupted the wait; true may be spurious, so
/// callers loop. Level-triggered: data left unconsumed makes it return at
/// once.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_wait(
    ch: *mut relaymap_channel,
    timeout_ms: i64,
    ready: *mut bool,
) -> relaymap_result {
    guard("relaymap_channel_wait", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let ready = arg_out(ready, "ready")?;
        let t = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        let r = lock(ch)?.ch.wait_timeout(t)?;
        // SAFETY: checked non-NULL.
        unsafe { put(ready, r) };
        Ok(())
    })
}

/// Takes the next finished sub-buffer of `cpu`, or of any CPU
/// (round-robin) if `cpu` is `RELAYMAP_ALL_CPUS`. If there is one, fills
/// `*view`, sets `*got` to true, and the view is outstanding until
/// `relaymap_view_release()`; if there is none, `*got` is false. A view or
/// batch still outstanding is released first (a view: that sub-buffer
/// only; a batch: all of it), so its pointers become invalid.
/// One control call to look and one to hand back per sub-buffer: prefer
/// `relaymap_channel_acquire()` for throughput.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_next(
    ch: *mut relaymap_channel,
    cpu: i32,
    view: *mut relaymap_view,
    got: *mut bool,
) -> relaymap_result {
    guard("relaymap_channel_next", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let view = arg_out(view, "view")?;
        let got = arg_out(got, "got")?;
        // SAFETY: checked non-NULL.
        unsafe { put(got, false) };
        let v = lock(ch)?.next(cpu)?;
        if let Some(v) = v {
            // SAFETY: checked non-NULL.
            unsafe {
                put(view, v);
                put(got, true);
            }
        }
        Ok(())
    })
}

/// Hands the view from `relaymap_channel_next()` back to the kernel (which
/// may then reuse its memory). `view` must be the outstanding view
/// (same CPU and seq), else `RELAYMAP_ERR_STATE`.
#[no_mangle]
pub unsafe extern "C" fn relaymap_view_release(
    ch: *mut relaymap_channel,
    view: *const relaymap_view,
) -> relaymap_result {
    guard("relaymap_view_release", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        // SAFETY: the caller passes a valid view or NULL.
        let v = unsafe { arg_ref(view, "view") }?;
        let mut st = lock(ch)?;
        match st.out {
            Outstanding::View { cpu, seq } if cpu == v.cpu && seq == v.seq => st.end_outstanding(),
            Outstanding::View { cpu, seq } => Err(Failure::state(format!(
                "view cpu {} seq {} is not the outstanding one (cpu {cpu} seq {seq})",
                v.cpu, v.seq
            ))),
            Outstanding::Batch => Err(Failure::state(
                "this view belongs to a batch: release it with relaymap_batch_release()",
            )),
            Outstanding::None => Err(Failure::state(
                "no view is outstanding (already released, or released by a later \
                 relaymap_channel_next/acquire)",
            )),
        }
    })
}

/// Takes every finished sub-buffer of `cpu` at once (the fast path: one
/// control call here, one in `relaymap_batch_release()`). Fills `*batch`;
/// its views are `relaymap_batch_view(ch, 0 .. batch->len - 1)`, all valid
/// together until the batch is released. A view or batch still outstanding
/// is released first. An empty batch (`len` 0) may still cover skipped
/// sub-buffers (lapped, corrupt): release it too (or let the next call do
/// it).
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_acquire(
    ch: *mut relaymap_channel,
    cpu: u32,
    batch: *mut relaymap_batch,
) -> relaymap_result {
    guard("relaymap_channel_acquire", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let batch = arg_out(batch, "batch")?;
        let mut st = lock(ch)?;
        st.end_outstanding()?;
        let a = st.ch.acquire(cpu)?;
        st.out = Outstanding::Batch;
        let payload_bytes = (0..a.len)
            .filter_map(|i| st.ch.acquired_subbuf(i))
            .map(|s| s.payload().len() as u64)
            .sum();
        let b = relaymap_batch {
            len: a.len,
            seq_begin: a.seqs.start,
            seq_end: a.seqs.end,
            lapped: a.lapped,
            corrupt: a.corrupt,
            payload_bytes,
            cpu,
        };
        // SAFETY: checked non-NULL.
        unsafe { put(batch, b) };
        Ok(())
    })
}

/// The `i`-th view of the outstanding batch (`i < batch->len`). Valid until
/// the batch is released. Do not pass it to `relaymap_view_release()`.
#[no_mangle]
pub unsafe extern "C" fn relaymap_batch_view(
    ch: *const relaymap_channel,
    i: usize,
    view: *mut relaymap_view,
) -> relaymap_result {
    guard("relaymap_batch_view", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let view = arg_out(view, "view")?;
        let st = lock(ch)?;
        if st.out != Outstanding::Batch {
            return Err(Failure::state("no batch is outstanding"));
        }
        let sb = st
            .ch
            .acquired_subbuf(i)
            .ok_or_else(|| Failure::invalid(format!("index {i} is past the batch")))?;
        // SAFETY: checked non-NULL.
        unsafe { put(view, view_of(&sb)) };
        Ok(())
    })
}

/// Hands the whole outstanding batch back to the kernel (one control call).
/// Its views become invalid.
#[no_mangle]
pub unsafe extern "C" fn relaymap_batch_release(ch: *mut relaymap_channel) -> relaymap_result {
    guard("relaymap_batch_release", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let mut st = lock(ch)?;
        if st.out != Outstanding::Batch {
            return Err(Failure::state("no batch is outstanding"));
        }
        st.end_outstanding()
    })
}

/// Hands back only the sub-buffers of the outstanding batch numbered below
/// `seq` (clamped to the batch's range); the rest are delivered again by
/// the next batch. Ends the batch: all its views become invalid.
#[no_mangle]
pub unsafe extern "C" fn relaymap_batch_release_until(
    ch: *mut relaymap_channel,
    seq: u64,
) -> relaymap_result {
    guard("relaymap_batch_release_until", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let mut st = lock(ch)?;
        if st.out != Outstanding::Batch {
            return Err(Failure::state("no batch is outstanding"));
        }
        st.out = Outstanding::None;
        Ok(st.ch.release_acquired(Some(seq))?)
    })
}

/// Closes the current sub-buffer of `cpu`, or of every CPU with
/// `RELAYMAP_ALL_CPUS`, so that partial data becomes visible (safe while
/// writers run). A CPU with nothing written is left alone.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_flush(
    ch: *mut relaymap_channel,
    cpu: i32,
) -> relaymap_result {
    guard("relaymap_channel_flush", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let cpu = cpu_arg(cpu)?;
        let st = lock(ch)?;
        match cpu {
            None => st.ch.flush()?,
            Some(c) => st.ch.flush_cpu(c)?,
        }
        Ok(())
    })
}

/// `*drained` = every mapped CPU has handed back all it produced (and
/// nothing is outstanding). With the writers stopped, flush then consume
/// until this is true to get everything.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_is_drained(
    ch: *mut relaymap_channel,
    drained: *mut bool,
) -> relaymap_result {
    guard("relaymap_channel_is_drained", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let drained = arg_out(drained, "drained")?;
        let mut st = lock(ch)?;
        let d = st.out == Outstanding::None && st.ch.is_drained()?;
        // SAFETY: checked non-NULL.
        unsafe { put(drained, d) };
        Ok(())
    })
}

fn loss_of(st: &State, cpu: Option<u32>) -> FfiResult<relaymap_loss> {
    match cpu {
        None => Ok(st.ch.loss().into()),
        Some(c) => st
            .ch
            .loss_by_cpu()
            .into_iter()
            .find(|(cc, _)| *cc == c)
            .map(|(_, l)| l.into())
            .ok_or_else(|| sdk::Error::UnknownCpu { cpu: c }.into()),
    }
}

/// This handle's losses for `cpu`, or summed over its CPUs with
/// `RELAYMAP_ALL_CPUS`.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_loss(
    ch: *const relaymap_channel,
    cpu: i32,
    loss: *mut relaymap_loss,
) -> relaymap_result {
    guard("relaymap_channel_loss", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let loss = arg_out(loss, "loss")?;
        let cpu = cpu_arg(cpu)?;
        let l = loss_of(&*lock(ch)?, cpu)?;
        // SAFETY: checked non-NULL.
        unsafe { put(loss, l) };
        Ok(())
    })
}

/// The kernel's counters (`GET_STATS`) for `cpu`, or for the whole channel
/// with `RELAYMAP_ALL_CPUS`, and this handle's losses (`stats->loss`).
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_get_stats(
    ch: *const relaymap_channel,
    cpu: i32,
    stats: *mut relaymap_channel_stats,
) -> relaymap_result {
    guard("relaymap_channel_get_stats", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let stats = arg_out(stats, "stats")?;
        let cpu = cpu_arg(cpu)?;
        let st = lock(ch)?;
        let s = st.ch.stats(cpu)?;
        let l = loss_of(&st, cpu)?;
        // SAFETY: checked non-NULL.
        unsafe { put(stats, relaymap_channel_stats::from_sdk(s, l)) };
        Ok(())
    })
}

/// `RESET`: empties every buffer of the channel and restarts its counters
/// (`RELAYMAP_ERR_IOCTL` with errno EBUSY while a writer is registered).
/// An outstanding view or batch is released first.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_reset(ch: *mut relaymap_channel) -> relaymap_result {
    guard("relaymap_channel_reset", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let mut st = lock(ch)?;
        st.end_outstanding()?;
        Ok(st.ch.reset()?)
    })
}

// The handle may be used from any thread (one at a time; the Mutex turns
// concurrent use into RELAYMAP_ERR_BUSY), so its state must be Send.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<State>();
};
