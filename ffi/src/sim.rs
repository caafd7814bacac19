//! The testing part of the C API (feature `sim`, `RELAYMAP_TESTING` in the
//! header): the simulated producer of crate `relaymap-sim`, so C programs
//! can be tested on a host without the kernel module. It writes the
//! identical layout into a directory; `relaymap_channel_open_path()` on
//! that directory opens it like a kernel channel, and its readers claim
//! CPUs exclusively across processes, like the kernel's.

use std::ffi::{c_char, CString};
use std::os::unix::ffi::OsStrExt;

use ::relaymap_sim::{SimChannel, SimGeometry, WriteOutcome};
use sdk::Mode;

use crate::boundary::{
    arg_out, arg_ref, guard, null_arg, put, relaymap_result, Failure, FfiResult,
};
use crate::channel::{cpu_arg, path_arg, relaymap_channel_stats};

/// A simulated channel and its producer (opaque; testing API). Made by
/// `relaymap_sim_create()`, owned by the caller, freed by
/// `relaymap_sim_free()`. Thread-safe: several threads may write at once
/// (one lock per CPU buffer), e.g. one producer thread per CPU.
#[derive(Debug)]
pub struct relaymap_sim {
    sim: SimChannel,
    dir: CString,
}

/// Creates a simulated channel with `cpus` CPU buffers (1..64) of
/// `n_subbufs` (>= 2) sub-buffers of `subbuf_size` bytes (a multiple of the
/// page size), in flight-recorder mode if `overwrite`. In directory `dir`
/// (created if missing, channel files replaced), or, if `dir` is NULL, in a
/// fresh directory under /dev/shm that `relaymap_sim_free()` removes.
/// `*out` is the new handle (NULL on failure).
#[no_mangle]
pub unsafe extern "C" fn relaymap_sim_create(
    dir: *const c_char,
    subbuf_size: u64,
    n_subbufs: u64,
    cpus: u32,
    overwrite: bool,
    out: *mut *mut relaymap_sim,
) -> relaymap_result {
    guard("relaymap_sim_create", || {
        let out = arg_out(out, "out")?;
        // SAFETY: checked non-NULL; the caller's pointer is writable.
        unsafe { put(out, std::ptr::null_mut()) };
        let geometry = SimGeometry {
            subbuf_size,
            n_subbufs,
            cpus,
        };
        let mode = if overwrite {
            Mode::Overwrite
        } else {
            Mode::NoOverwrite
        };
        let sim = if dir.is_null() {
            SimChannel::create_temp(geometry, mode)?
        } else {
            // SAFETY: non-NULL; the caller passes a NUL-terminated string.
            SimChannel::create(unsafe { path_arg(dir, "dir") }?, geometry, mode)?
        };
        let dir = CString::new(sim.dir().as_os_str().as_bytes())
            .map_err(|_| Failure::invalid("the directory name contains a NUL byte"))?;
        // SAFETY: checked non-NULL; the caller owns the handle from now.
        unsafe { put(out, Box::into_raw(Box::new(relaymap_sim { sim, dir }))) };
        Ok(())
    })
}

/// Frees a simulated channel (and removes its directory if
/// `relaymap_sim_create()` chose it). Consumers that still have it open
/// keep their mappings. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn relaymap_sim_free(sim: *mut relaymap_sim) {
    let _ = guard("relaymap_sim_free", || {
        if !sim.is_null() {
            // SAFETY: a non-NULL `sim` came from relaymap_sim_create
            // (Box::into_raw) and is not used again by the caller.
            drop(unsafe { Box::from_raw(sim) });
        }
        Ok(())
    });
}

/// The simulated channel's directory, for `relaymap_channel_open_path()`
/// (in this process or another). Owned by the handle: valid until
/// `relaymap_sim_free()`. NULL if `sim` is NULL.
#[no_mangle]
pub unsafe extern "C" fn relaymap_sim_dir(sim: *const relaymap_sim) -> *const c_char {
    crate::boundary::guard_value(std::ptr::null(), || {
        // SAFETY: the caller passes a live handle or NULL.
        match unsafe { sim.as_ref() } {
            Some(s) => s.dir.as_ptr(),
            None => std::ptr::null(),
        }
    })
}

/// Writes one framed record of type `rec_type` with `len` bytes of `data`
/// (may be NULL if `len` is 0) into `cpu`'s buffer, stamped with
/// CLOCK_MONOTONIC, like the module's `relaymap_write()`. `*written` is
/// false if the buffer was full (no-overwrite): the record was dropped and
/// counted, as the module does. Lossless writers that retry use
/// `relaymap_sim_try_write_record()`.
#[no_mangle]
pub unsafe extern "C" fn relaymap_sim_write_record(
    sim: *const relaymap_sim,
    cpu: u32,
    rec_type: u16,
    data: *const u8,
    len: usize,
    written: *mut bool,
) -> relaymap_result {
    guard("relaymap_sim_write_record", || {
        // SAFETY: the caller's pointers, as documented above.
        unsafe { sim_write_record(sim, cpu, rec_type, data, len, written, true) }
    })
}

/// Like `relaymap_sim_write_record()`, but like the module's
/// `relaymap_try_write()`: `*written` is false if the buffer was full
/// (no-overwrite) and the record was refused *without* counting a drop,
/// for lossless writers that retry.
#[no_mangle]
pub unsafe extern "C" fn relaymap_sim_try_write_record(
    sim: *const relaymap_sim,
    cpu: u32,
    rec_type: u16,
    data: *const u8,
    len: usize,
    written: *mut bool,
) -> relaymap_result {
    guard("relaymap_sim_try_write_record", || {
        // SAFETY: the caller's pointers, as documented above.
        unsafe { sim_write_record(sim, cpu, rec_type, data, len, written, false) }
    })
}

/// # Safety
/// `sim` is a live handle or NULL, `data` has `len` readable bytes (or
/// `len` is 0), `written` is writable or NULL.
unsafe fn sim_write_record(
    sim: *const relaymap_sim,
    cpu: u32,
    rec_type: u16,
    data: *const u8,
    len: usize,
    written: *mut bool,
    count_drop: bool,
) -> FfiResult {
    // SAFETY: the caller passes a live handle or NULL.
    let s = unsafe { arg_ref(sim, "sim") }?;
    let written = arg_out(written, "written")?;
    let bytes: &[u8] = if len == 0 {
        &[]
    } else if data.is_null() {
        return Err(null_arg("data"));
    } else {
        // SAFETY: non-NULL and the caller guarantees `len` readable
        // bytes for the duration of the call.
        unsafe { std::slice::from_raw_parts(data, len) }
    };
    let w = if count_drop {
        s.sim.write_record(cpu, rec_type, bytes)?
    } else {
        s.sim.try_write_record(cpu, rec_type, bytes)?
    };
    // SAFETY: checked non-NULL.
    unsafe { put(written, w == WriteOutcome::Written) };
    Ok(())
}

/// Writes a load generator record (`RELAYMAP_REC_LOADGEN`) with sequence
/// number `seq` of `record_size` bytes (header included, >= 32) into
/// `cpu`'s buffer, exactly as relaymap_loadgen.ko frames it in drop mode
/// (`relaymap_write()`). `*written` as for `relaymap_sim_write_record()`:
/// false = dropped and counted.
#[no_mangle]
pub unsafe extern "C" fn relaymap_sim_write_loadgen(
    sim: *const relaymap_sim,
    cpu: u32,
    seq: u64,
    record_size: usize,
    written: *mut bool,
) -> relaymap_result {
    guard("relaymap_sim_write_loadgen", || {
        // SAFETY: the caller's pointers, as documented above.
        unsafe { sim_write_loadgen(sim, cpu, seq, record_size, written, true) }
    })
}

/// Like `relaymap_sim_write_loadgen()`, but as relaymap_loadgen.ko's
/// lossless mode (`relaymap_try_write()`): `*written` is false if the
/// buffer was full and the record was refused *without* counting a drop;
/// retry it once the consumer has freed space.
#[no_mangle]
pub unsafe extern "C" fn relaymap_sim_try_write_loadgen(
    sim: *const relaymap_sim,
    cpu: u32,
    seq: u64,
    record_size: usize,
    written: *mut bool,
) -> relaymap_result {
    guard("relaymap_sim_try_write_loadgen", || {
        // SAFETY: the caller's pointers, as documented above.
        unsafe { sim_write_loadgen(sim, cpu, seq, record_size, written, false) }
    })
}

/// # Safety
/// `sim` is a live handle or NULL, `written` is writable or NULL.
unsafe fn sim_write_loadgen(
    sim: *const relaymap_sim,
    cpu: u32,
    seq: u64,
    record_size: usize,
    written: *mut bool,
    count_drop: bool,
) -> FfiResult {
    // SAFETY: the caller passes a live handle or NULL.
    let s = unsafe { arg_ref(sim, "sim") }?;
    let written = arg_out(written, "written")?;
    if record_size < 32 {
        return Err(Failure::invalid(format!(
            "record_size {record_size} (a load generator record is >= 32 bytes)"
        )));
    }
    let w = if count_drop {
        s.sim.write_loadgen(cpu, seq, record_size)?
    } else {
        s.sim.try_write_loadgen(cpu, seq, record_size)?
    };
    // SAFETY: checked non-NULL.
    unsafe { put(written, w == WriteOutcome::Written) };
    Ok(())
}

/// Closes the current sub-buffer of `cpu` (or of every CPU with
/// `RELAYMAP_ALL_CPUS`) if it has data, as the kernel's flush does.
#[no_mangle]
pub unsafe extern "C" fn relaymap_sim_flush(sim: *const relaymap_sim, cpu: i32) -> relaymap_result {
    guard("relaymap_sim_flush", || {
        // SAFETY: the caller passes a live handle or NULL.
        let s = unsafe { arg_ref(sim, "sim") }?;
        Ok(s.sim.flush(cpu_arg(cpu)?)?)
    })
}

/// The simulated kernel's counters for `cpu` (or all with
/// `RELAYMAP_ALL_CPUS`), as `relaymap_channel_get_stats()` reports them.
#[no_mangle]
pub unsafe extern "C" fn relaymap_sim_stats(
    sim: *const relaymap_sim,
    cpu: i32,
    stats: *mut relaymap_channel_stats,
) -> relaymap_result {
    guard("relaymap_sim_stats", || {
        // SAFETY: the caller passes a live handle or NULL.
        let s = unsafe { arg_ref(sim, "sim") }?;
        let stats = arg_out(stats, "stats")?;
        let st = s.sim.stats(cpu_arg(cpu)?)?;
        // SAFETY: checked non-NULL.
        unsafe { put(stats, st.into()) };
        Ok(())
    })
}

// Producer threads share one handle: it must be Send + Sync.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<relaymap_sim>();
};
