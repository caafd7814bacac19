//! Channels: open (by name through `/dev/relaymap`, or by a debugfs or
//! simulated channel directory), info, cursors, stats, flush, reset, and the
//! readers they hand out (`crate::reader`). A channel is an observer and
//! controller: it never consumes.

use std::ffi::{c_char, CStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use sdk::{Channel, Mode};

use crate::boundary::{
    arg_out, arg_ref, guard, null_arg, put, relaymap_result, Failure, FfiResult,
};
use crate::reader::{relaymap_reader, ReaderState};

/// An open channel (opaque): an observer and controller that never
/// consumes. Made by `relaymap_channel_open()` or
/// `relaymap_channel_open_path()`, owned by the caller, freed by
/// `relaymap_channel_close()`. Thread-safe: any thread may call it at any
/// time (calls on one channel are serialised). It hands out per-CPU
/// readers (`relaymap_reader_open()`, `relaymap_channel_open_readers()`),
/// which keep what they need of the channel alive: a reader may outlive
/// its channel handle.
#[derive(Debug)]
pub struct relaymap_channel {
    ch: Mutex<Channel>,
}

impl relaymap_channel {
    pub(crate) fn new(ch: Channel) -> relaymap_channel {
        relaymap_channel { ch: Mutex::new(ch) }
    }

    pub(crate) fn lock(&self) -> FfiResult<MutexGuard<'_, Channel>> {
        self.ch.lock().map_err(|_| {
            Failure::new(
                relaymap_result::RELAYMAP_ERR_PANIC,
                "an earlier call on this channel panicked; close it",
            )
        })
    }
}

/// Geometry and identity of a channel (`relaymap_channel_get_info()`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct relaymap_channel_info {
    /// Channel name, NUL-terminated.
    pub name: [c_char; 64],
    /// Channel instance: new at creation and at every reset (every
    /// sub-buffer header carries it).
    pub uuid: [u8; 16],
    /// Bytes per sub-buffer (a multiple of `page_size`).
    pub subbuf_size: u64,
    /// Sub-buffers per CPU.
    pub n_subbufs: u64,
    /// Bytes mapped per CPU (by each reader).
    pub alloc_size: u64,
    /// The module's ABI version (equal to `RELAYMAP_ABI_VERSION`).
    pub abi_version: u32,
    /// Bytes of the header at the start of each sub-buffer (the events
    /// start there).
    pub header_size: u32,
    /// Largest framed record a writer may emit, its 16-byte header
    /// included.
    pub max_record_size: u32,
    /// Largest data of one record (`max_record_size` - 16).
    pub max_data_size: u32,
    /// The kernel's page size.
    pub page_size: u32,
    /// CPUs with a buffer (see `relaymap_channel_cpus()`).
    pub n_cpus: u32,
    /// Flight-recorder mode (`RELAYMAP_INFO_OVERWRITE`): payloads are
    /// validated copies, and laps are counted in the loss counters.
    pub overwrite: bool,
}

/// The kernel's cursor of one CPU (`GET_CURSOR`), as
/// `relaymap_channel_cursor()`, `relaymap_channel_cursors()` and
/// `relaymap_reader_cursor()` report it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct relaymap_cpu_cursor {
    /// Sub-buffers closed and committed.
    pub produced: u64,
    /// Sub-buffers handed back.
    pub consumed: u64,
    /// Records dropped because the buffer was full (no-overwrite).
    pub records_dropped: u64,
    /// Unconsumed sub-buffers overwritten (overwrite mode).
    pub subbufs_lapped: u64,
    /// Writes refused as larger than `max_data_size`.
    pub records_rejected: u64,
    /// The CPU.
    pub cpu: u32,
    /// Pid (thread group) of the consumer holding this CPU, 0 if none.
    pub holder_pid: i32,
    /// A consumer (a reader, here or in another process) holds this CPU.
    pub held: bool,
    /// The channel was destroyed by its creator (drain what is left).
    pub destroyed: bool,
    /// The holder's command name, NUL-terminated ("" if none).
    pub holder_comm: [c_char; 16],
}

impl From<&sdk::Cursor> for relaymap_cpu_cursor {
    fn from(c: &sdk::Cursor) -> Self {
        let mut comm = [0 as c_char; 16];
        if let Some(s) = &c.holder_comm {
            fill_cstr(&mut comm, s);
        }
        relaymap_cpu_cursor {
            produced: c.produced,
            consumed: c.consumed,
            records_dropped: c.records_dropped,
            subbufs_lapped: c.subbufs_lapped,
            records_rejected: c.records_rejected,
            cpu: c.cpu,
            holder_pid: c.holder_pid.unwrap_or(0),
            held: c.held,
            destroyed: c.destroyed,
            holder_comm: comm,
        }
    }
}

/// The kernel's counters of one CPU or of the whole channel (`GET_STATS`;
/// the simulator's `relaymap_sim_stats()` fills the same struct). Each
/// moves only as described; only a reset sets them back to 0 (except
/// `resets`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct relaymap_channel_stats {
    /// Records accepted by the module's write API.
    pub records_written: u64,
    /// Data bytes accepted by the module's write API.
    pub bytes_written: u64,
    /// Write attempts dropped because the buffer was full (not counted for
    /// `relaymap_try_write()` writers, which retry).
    pub records_dropped: u64,
    /// Writes refused as larger than `max_data_size`.
    pub records_rejected: u64,
    /// Sub-buffers closed and committed.
    pub subbufs_produced: u64,
    /// Sub-buffers handed back by consumers.
    pub subbufs_consumed: u64,
    /// Unconsumed sub-buffers overwritten (overwrite mode).
    pub subbufs_lapped: u64,
    /// Sub-buffers closed early by a flush.
    pub flushes: u64,
    /// Resets since the channel was created (never reset).
    pub resets: u64,
}

impl From<sdk::Stats> for relaymap_channel_stats {
    fn from(s: sdk::Stats) -> Self {
        relaymap_channel_stats {
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

/// Copies `s` into a fixed C string buffer, truncated, NUL-terminated.
pub(crate) fn fill_cstr(dst: &mut [c_char], s: &str) {
    let n = s.len().min(dst.len().saturating_sub(1));
    for (d, b) in dst.iter_mut().zip(&s.as_bytes()[..n]) {
        *d = *b as c_char;
    }
    if let Some(z) = dst.get_mut(n) {
        *z = 0;
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

/// A non-empty C string argument.
///
/// # Safety
///
/// `s` is NULL or a valid NUL-terminated string.
pub(crate) unsafe fn str_arg<'a>(s: *const c_char, arg: &str) -> FfiResult<&'a [u8]> {
    if s.is_null() {
        return Err(null_arg(arg));
    }
    // SAFETY: non-NULL, and the caller guarantees a NUL-terminated string
    // that outlives this call.
    let bytes = unsafe { CStr::from_ptr(s) }.to_bytes();
    if bytes.is_empty() {
        return Err(Failure::invalid(format!("`{arg}` is an empty string")));
    }
    Ok(bytes)
}

/// A C string argument as a path.
///
/// # Safety
///
/// `s` is NULL or a valid NUL-terminated string.
pub(crate) unsafe fn path_arg<'a>(s: *const c_char, arg: &str) -> FfiResult<&'a Path> {
    // SAFETY: the caller's contract, passed on.
    let bytes = unsafe { str_arg(s, arg) }?;
    Ok(Path::new(std::ffi::OsStr::from_bytes(bytes)))
}

/// Stores a new channel handle in `*out`.
///
/// # Safety
///
/// `out` was checked by `arg_out` and is valid for writes.
unsafe fn give(out: *mut *mut relaymap_channel, ch: Channel) {
    let h = Box::new(relaymap_channel::new(ch));
    // SAFETY: the caller checked `out`; the caller of the export owns the
    // handle from now on.
    unsafe { put(out, Box::into_raw(h)) };
}

/// Opens the channel called `name` through `/dev/relaymap` (the
/// environment variable `RELAYMAP_DEVICE` names another device node, for
/// tests). This works for non-root users in the device's group and under
/// lockdown (Secure Boot). On success `*out` is a new handle that the
/// caller owns and frees with `relaymap_channel_close()`; on failure
/// `*out` is NULL and the result names the cause:
/// `RELAYMAP_ERR_MODULE_NOT_LOADED` (no /dev/relaymap),
/// `RELAYMAP_ERR_PERMISSION_DENIED` (not in the device's group: the message
/// names it), `RELAYMAP_ERR_NO_SUCH_CHANNEL` (the message lists the
/// channels that exist), `RELAYMAP_ERR_ABI_MISMATCH`. Opening claims
/// nothing: consume with readers.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_open(
    name: *const c_char,
    out: *mut *mut relaymap_channel,
) -> relaymap_result {
    guard("relaymap_channel_open", || {
        let out = arg_out(out, "out")?;
        // SAFETY: `out` is non-NULL and valid for writes (caller's contract).
        unsafe { put(out, std::ptr::null_mut()) };
        // SAFETY: caller's contract: NULL or a NUL-terminated string.
        let name = unsafe { str_arg(name, "name") }?;
        let name =
            std::str::from_utf8(name).map_err(|_| Failure::invalid("`name` is not UTF-8"))?;
        let ch = Channel::open(name)?;
        // SAFETY: checked by arg_out.
        unsafe { give(out, ch) };
        Ok(())
    })
}

/// Opens the channel in directory `dir`: a debugfs channel directory
/// (`/sys/kernel/debug/relaymap/NAME`, root only, refused under lockdown:
/// `RELAYMAP_ERR_LOCKDOWN`, and `RELAYMAP_ERR_DEBUGFS_NOT_MOUNTED` without
/// debugfs) or, in a library built with the testing API, a simulated
/// channel's directory (`relaymap_sim_dir()`). Otherwise as
/// `relaymap_channel_open()`; prefer that one for kernel channels.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_open_path(
    dir: *const c_char,
    out: *mut *mut relaymap_channel,
) -> relaymap_result {
    guard("relaymap_channel_open_path", || {
        let out = arg_out(out, "out")?;
        // SAFETY: `out` is non-NULL and valid for writes (caller's contract).
        unsafe { put(out, std::ptr::null_mut()) };
        // SAFETY: caller's contract: NULL or a NUL-terminated string.
        let dir = unsafe { path_arg(dir, "dir") }?;
        #[cfg(feature = "sim")]
        if ::relaymap_sim::is_sim_dir(dir) {
            let ch = ::relaymap_sim::open_dir(dir)?;
            // SAFETY: checked by arg_out.
            unsafe { give(out, ch) };
            return Ok(());
        }
        let ch = Channel::open_path(dir)?;
        // SAFETY: checked by arg_out.
        unsafe { give(out, ch) };
        Ok(())
    })
}

/// Closes a channel handle. Readers it handed out stay valid (each keeps
/// what it needs); close them with `relaymap_reader_close()`. NULL is a
/// no-op.
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
pub(crate) unsafe fn chan<'a>(ch: *const relaymap_channel) -> FfiResult<&'a relaymap_channel> {
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
        let c = ch.lock()?;
        let i = c.info();
        let mut name = [0 as c_char; 64];
        fill_cstr(&mut name, &i.name);
        let v = relaymap_channel_info {
            name,
            uuid: i.uuid,
            subbuf_size: i.subbuf_size,
            n_subbufs: i.n_subbufs,
            alloc_size: i.alloc_size,
            abi_version: i.abi_version,
            header_size: i.header_size,
            max_record_size: i.max_record_size,
            max_data_size: i.max_data_size,
            page_size: i.page_size,
            n_cpus: c.cpus().len() as u32,
            overwrite: i.mode == Mode::Overwrite,
        };
        // SAFETY: checked non-NULL; the caller's struct is writable.
        unsafe { put(info, v) };
        Ok(())
    })
}

/// Writes up to `cap` values of `list` to `out` and their number to `*n`;
/// `RELAYMAP_ERR_BUFFER_TOO_SMALL` (with `*n` the number needed) if they do
/// not fit.
///
/// # Safety
///
/// `out` is NULL or valid for `cap` writes; `n` was checked by `arg_out`.
pub(crate) unsafe fn put_list<T: Copy>(
    list: &[T],
    out: *mut T,
    cap: usize,
    n: *mut usize,
    what: &str,
) -> FfiResult {
    // SAFETY: checked by the caller.
    unsafe { put(n, list.len()) };
    if list.len() > cap {
        return Err(Failure::new(
            relaymap_result::RELAYMAP_ERR_BUFFER_TOO_SMALL,
            format!("{} {what}, room for {cap}", list.len()),
        ));
    }
    for (i, v) in list.iter().enumerate() {
        // SAFETY: `out` is non-NULL (list non-empty and cap >= len > 0;
        // the callers check `cap > 0` implies non-NULL) and has room for
        // `cap` >= list.len() values (caller's contract).
        unsafe { put(out.add(i), *v) };
    }
    Ok(())
}

/// The CPUs with a buffer, ascending: writes up to `cap` of them to `cpus`
/// and their number to `*n`. If `cap` is too small, `*n` is still the
/// number needed and the result is `RELAYMAP_ERR_BUFFER_TOO_SMALL` (call
/// with `cap` 0 and `cpus` NULL to ask).
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
        let list = ch.lock()?.cpus().to_vec();
        // SAFETY: `cpus` has room for `cap` values (caller's contract).
        unsafe { put_list(&list, cpus, cap, n, "CPUs") }
    })
}

/// Checks for CPUs that gained a buffer since the channel was opened (CPU
/// hotplug): writes the new ones to `cpus` (up to `cap`) and their number
/// to `*n` (0: none). They are added to `relaymap_channel_cpus()`; open
/// readers for them with `relaymap_reader_open()`.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_refresh_cpus(
    ch: *const relaymap_channel,
    cpus: *mut u32,
    cap: usize,
    n: *mut usize,
) -> relaymap_result {
    guard("relaymap_channel_refresh_cpus", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let n = arg_out(n, "n")?;
        if cap > 0 && cpus.is_null() {
            return Err(null_arg("cpus"));
        }
        let list = ch.lock()?.refresh_cpus()?;
        // SAFETY: `cpus` has room for `cap` values (caller's contract).
        unsafe { put_list(&list, cpus, cap, n, "new CPUs") }
    })
}

/// The kernel's cursor of `cpu` (an observer: needs no claim), with the
/// holder's pid and command if a consumer holds it.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_cursor(
    ch: *const relaymap_channel,
    cpu: u32,
    cursor: *mut relaymap_cpu_cursor,
) -> relaymap_result {
    guard("relaymap_channel_cursor", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let cursor = arg_out(cursor, "cursor")?;
        let c = ch.lock()?.cursor(cpu)?;
        // SAFETY: checked non-NULL.
        unsafe { put(cursor, (&c).into()) };
        Ok(())
    })
}

/// The cursors of every CPU with a buffer, in one control call, in the
/// order of `relaymap_channel_cpus()`: up to `cap` to `cursors`, their
/// number to `*n` (`RELAYMAP_ERR_BUFFER_TOO_SMALL` as for
/// `relaymap_channel_cpus()`).
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_cursors(
    ch: *const relaymap_channel,
    cursors: *mut relaymap_cpu_cursor,
    cap: usize,
    n: *mut usize,
) -> relaymap_result {
    guard("relaymap_channel_cursors", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let n = arg_out(n, "n")?;
        if cap > 0 && cursors.is_null() {
            return Err(null_arg("cursors"));
        }
        let list: Vec<relaymap_cpu_cursor> = ch.lock()?.cursors()?.iter().map(Into::into).collect();
        // SAFETY: `cursors` has room for `cap` values (caller's contract).
        unsafe { put_list(&list, cursors, cap, n, "cursors") }
    })
}

/// The kernel's counters (`GET_STATS`) for `cpu`, or for the whole channel
/// with `RELAYMAP_ALL_CPUS`.
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
        let s = ch.lock()?.stats(cpu)?;
        // SAFETY: checked non-NULL.
        unsafe { put(stats, s.into()) };
        Ok(())
    })
}

/// Closes the current sub-buffer of `cpu`, or of every CPU with
/// `RELAYMAP_ALL_CPUS`, so that partial data becomes visible (safe while
/// writers run; needs no claim). A CPU with nothing written is left alone.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_flush(
    ch: *const relaymap_channel,
    cpu: i32,
) -> relaymap_result {
    guard("relaymap_channel_flush", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let cpu = cpu_arg(cpu)?;
        Ok(ch.lock()?.flush(cpu)?)
    })
}

/// `RESET`: empties every buffer of the channel, restarts its sequence
/// numbers and counters, gives it a new uuid. `RELAYMAP_ERR_BUSY` while a
/// writer is registered or any reader (here or in another process) is
/// open.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_reset(ch: *const relaymap_channel) -> relaymap_result {
    guard("relaymap_channel_reset", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        Ok(ch.lock()?.reset()?)
    })
}

/// Control calls (ioctls, or their simulated equivalent) issued so far by
/// this channel and the readers it handed out.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_control_ops(
    ch: *const relaymap_channel,
    ops: *mut u64,
) -> relaymap_result {
    guard("relaymap_channel_control_ops", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let ops = arg_out(ops, "ops")?;
        let v = ch.lock()?.control_ops();
        // SAFETY: checked non-NULL.
        unsafe { put(ops, v) };
        Ok(())
    })
}

/// Claims `cpu` for consuming and maps its buffer: `*out` is a new reader
/// that the caller owns and frees with `relaymap_reader_close()` (which
/// releases the claim). Consuming is exclusive per CPU: if another
/// consumer (in this process or another) holds it, the result is
/// `RELAYMAP_ERR_BUSY` and the message names the holder's pid and command.
/// `RELAYMAP_ERR_UNKNOWN_CPU` if `cpu` has no buffer.
#[no_mangle]
pub unsafe extern "C" fn relaymap_reader_open(
    ch: *const relaymap_channel,
    cpu: u32,
    out: *mut *mut relaymap_reader,
) -> relaymap_result {
    guard("relaymap_reader_open", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let out = arg_out(out, "out")?;
        // SAFETY: checked non-NULL.
        unsafe { put(out, std::ptr::null_mut()) };
        let c = ch.lock()?;
        let rd = c
            .reader(cpu)
            .map_err(|e| Failure::from(e).context(format_args!("channel {}", c.name())))?;
        // SAFETY: checked non-NULL; the caller owns the reader from now.
        unsafe { put(out, relaymap_reader::boxed(ReaderState::new(rd))) };
        Ok(())
    })
}

/// Claims every CPU with a buffer at once (all or nothing: if any CPU is
/// held, nothing is claimed and the result is `RELAYMAP_ERR_BUSY`, naming
/// the holder). `readers[i]` receives the reader of the i-th CPU of
/// `relaymap_channel_cpus()`; `*n` their number. If `cap` is smaller than
/// the number of CPUs, nothing is claimed, `*n` is the number needed and
/// the result is `RELAYMAP_ERR_BUFFER_TOO_SMALL`. Close each reader with
/// `relaymap_reader_close()`.
#[no_mangle]
pub unsafe extern "C" fn relaymap_channel_open_readers(
    ch: *const relaymap_channel,
    readers: *mut *mut relaymap_reader,
    cap: usize,
    n: *mut usize,
) -> relaymap_result {
    guard("relaymap_channel_open_readers", || {
        // SAFETY: the caller passes a live handle or NULL.
        let ch = unsafe { chan(ch) }?;
        let n = arg_out(n, "n")?;
        if cap > 0 && readers.is_null() {
            return Err(null_arg("readers"));
        }
        let c = ch.lock()?;
        let need = c.cpus().len();
        // SAFETY: checked non-NULL.
        unsafe { put(n, need) };
        if need > cap {
            return Err(Failure::new(
                relaymap_result::RELAYMAP_ERR_BUFFER_TOO_SMALL,
                format!("{need} CPUs, room for {cap} readers"),
            ));
        }
        let rds = c
            .readers()
            .map_err(|e| Failure::from(e).context(format_args!("channel {}", c.name())))?;
        // SAFETY: checked non-NULL.
        unsafe { put(n, rds.len()) };
        for (i, rd) in rds.into_iter().enumerate() {
            // SAFETY: `readers` has room for `cap` >= need pointers
            // (caller's contract); the caller owns each reader from now.
            unsafe { put(readers.add(i), relaymap_reader::boxed(ReaderState::new(rd))) };
        }
        Ok(())
    })
}

/// The names of the channels that exist, through `/dev/relaymap`, in
/// creation order: up to `cap` names into `names`, an array of `cap`
/// blocks of `RELAYMAP_NAME_MAX` bytes (each NUL-terminated), and their
/// number to `*n` (`RELAYMAP_ERR_BUFFER_TOO_SMALL` if they do not fit; call
/// with `cap` 0 and `names` NULL to count).
#[no_mangle]
pub unsafe extern "C" fn relaymap_list_channels(
    names: *mut c_char,
    cap: usize,
    n: *mut usize,
) -> relaymap_result {
    guard("relaymap_list_channels", || {
        let n = arg_out(n, "n")?;
        if cap > 0 && names.is_null() {
            return Err(null_arg("names"));
        }
        let list = sdk::list_channels()?;
        type Name = [c_char; sdk::abi::RELAYMAP_NAME_MAX as usize];
        let blocks: Vec<Name> = list
            .iter()
            .map(|s| {
                let mut b = [0 as c_char; sdk::abi::RELAYMAP_NAME_MAX as usize];
                fill_cstr(&mut b, s);
                b
            })
            .collect();
        // SAFETY: `names` has room for `cap` blocks of RELAYMAP_NAME_MAX
        // bytes (caller's contract); [c_char; N] has alignment 1.
        unsafe { put_list(&blocks, names.cast::<Name>(), cap, n, "channels") }
    })
}

/// The ABI version the loaded module speaks (`RELAYMAP_IOC_GET_VERSION` on
/// /dev/relaymap); this library speaks `RELAYMAP_ABI_VERSION`.
#[no_mangle]
pub unsafe extern "C" fn relaymap_device_abi_version(version: *mut u32) -> relaymap_result {
    guard("relaymap_device_abi_version", || {
        let version = arg_out(version, "version")?;
        let v = sdk::device_abi_version()?;
        // SAFETY: checked non-NULL.
        unsafe { put(version, v) };
        Ok(())
    })
}

// Any thread may use a channel handle.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<relaymap_channel>();
};
