//! Iterating the records of a payload with the SDK's one framing walker
//! (`sdk::Records`), and checking load generator records.

use sdk::abi::RELAYMAP_REC_LOADGEN;
use sdk::{LoadgenRecord, Records};

use crate::boundary::{arg_out, arg_ref, guard, put, relaymap_result, FfiResult};
use crate::reader::relaymap_slice;

/// One record (`struct relaymap_record` + data) of a payload. `data`
/// points into the payload and is valid as long as it is.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct relaymap_record_view {
    /// The record's data, after its 16-byte header.
    pub data: *const u8,
    /// Bytes of data.
    pub len: usize,
    /// Byte offset of the record (its header) in the payload.
    pub offset: usize,
    /// CLOCK_MONOTONIC (ns) when the record was written.
    pub ts_ns: u64,
    /// `RELAYMAP_EVENT_RECORD` (binary data) or `RELAYMAP_EVENT_PRINTF`
    /// (UTF-8 text, no NUL).
    pub event_id: u16,
    /// `RELAYMAP_REC_*` or a writer's own type (>= `RELAYMAP_REC_USER`).
    pub rec_type: u16,
}

/// Iterator over the records of one payload: `relaymap_record_iter_init()`,
/// then `relaymap_record_iter_next()` until it reports no record. A plain
/// struct the caller owns (on the stack is fine); nothing to free. Treat
/// its fields as private.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct relaymap_record_iter {
    /// The payload being iterated.
    pub data: *const u8,
    /// Its length.
    pub len: usize,
    /// Offset of the next record.
    pub pos: usize,
    /// The iteration is over (end reached, or corrupt framing met).
    pub done: bool,
}

/// Starts iterating the records of `payload` (a sub-buffer's `payload`,
/// or any bytes in the ABI's record framing).
#[no_mangle]
pub unsafe extern "C" fn relaymap_record_iter_init(
    it: *mut relaymap_record_iter,
    payload: relaymap_slice,
) -> relaymap_result {
    guard("relaymap_record_iter_init", || {
        let it = arg_out(it, "it")?;
        let len = if payload.ptr.is_null() {
            0
        } else {
            payload.len
        };
        let i = relaymap_record_iter {
            data: payload.ptr,
            len,
            pos: 0,
            done: len == 0,
        };
        // SAFETY: checked non-NULL.
        unsafe { put(it, i) };
        Ok(())
    })
}

/// The next record: fills `*rec` and sets `*got` to true, or sets `*got`
/// to false at the end of the payload. Corrupt framing (a record running
/// past the payload, an unknown event id) is `RELAYMAP_ERR_CORRUPT` with
/// the offset in the message, once; the iteration then ends. The payload
/// must still be valid (its batch not released).
#[no_mangle]
pub unsafe extern "C" fn relaymap_record_iter_next(
    it: *mut relaymap_record_iter,
    rec: *mut relaymap_record_view,
    got: *mut bool,
) -> relaymap_result {
    guard("relaymap_record_iter_next", || {
        let it = arg_out(it, "it")?;
        let rec = arg_out(rec, "rec")?;
        let got = arg_out(got, "got")?;
        // SAFETY: checked non-NULL.
        unsafe { put(got, false) };
        // SAFETY: non-NULL and the caller's iterator, initialised by
        // relaymap_record_iter_init (a plain struct; `done` is a bool the
        // library itself wrote).
        let i = unsafe { &mut *it };
        if i.done || i.data.is_null() {
            return Ok(());
        }
        // SAFETY: `data`/`len` were copied from a payload slice, which
        // stays valid and unwritten until its batch is released (the
        // caller's contract: iterate only outstanding sub-buffers).
        let payload = unsafe { std::slice::from_raw_parts(i.data, i.len) };
        let mut walker = Records::at(payload, i.pos);
        match walker.next() {
            None => {
                i.done = true;
                Ok(())
            }
            Some(Ok(r)) => {
                let v = relaymap_record_view {
                    data: r.data.as_ptr(),
                    len: r.data.len(),
                    offset: r.offset,
                    ts_ns: r.ts_ns,
                    event_id: r.event_id,
                    rec_type: r.type_,
                };
                // Where the walker would go on: the iterator resumes there.
                match walker.next_offset() {
                    Some(p) => i.pos = p,
                    None => i.done = true,
                }
                // SAFETY: checked non-NULL.
                unsafe {
                    put(rec, v);
                    put(got, true);
                }
                Ok(())
            }
            Some(Err(e)) => {
                i.done = true;
                Err(e.into())
            }
        }
    })
}

/// A load generator record (`RELAYMAP_REC_LOADGEN`, `struct
/// relaymap_loadgen_payload` + fill), checked.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct relaymap_loadgen_record {
    /// Write attempt number on that CPU (a gap is a dropped record).
    pub seq: u64,
    /// Fill bytes after the payload struct.
    pub fill_len: u64,
    /// CPU of the writer.
    pub cpu: u32,
}

/// Checks a record written by the load generator (relaymap_loadgen.ko, or
/// the simulator's `relaymap_sim_write_loadgen()`): `*valid` is true and
/// `*out` filled if its type is `RELAYMAP_REC_LOADGEN` and its checksum and
/// fill pattern verify; false otherwise (not an error).
#[no_mangle]
pub unsafe extern "C" fn relaymap_loadgen_parse(
    rec: *const relaymap_record_view,
    out: *mut relaymap_loadgen_record,
    valid: *mut bool,
) -> relaymap_result {
    guard("relaymap_loadgen_parse", || -> FfiResult {
        // SAFETY: the caller passes a valid record view or NULL.
        let r = unsafe { arg_ref(rec, "rec") }?;
        let out = arg_out(out, "out")?;
        let valid = arg_out(valid, "valid")?;
        // SAFETY: checked non-NULL.
        unsafe { put(valid, false) };
        if r.rec_type != RELAYMAP_REC_LOADGEN as u16 || r.data.is_null() {
            return Ok(());
        }
        // SAFETY: a record view's data points into an outstanding
        // sub-buffer's payload (the caller's contract), `len` bytes.
        let data = unsafe { std::slice::from_raw_parts(r.data, r.len) };
        if let Some(l) = LoadgenRecord::parse(data) {
            // SAFETY: checked non-NULL.
            unsafe {
                put(
                    out,
                    relaymap_loadgen_record {
                        seq: l.seq,
                        fill_len: l.fill_len as u64,
                        cpu: l.cpu,
                    },
                );
                put(valid, true);
            }
        }
        Ok(())
    })
}
