//! Iterating the records of a view (the ABI's framing, parsed by the SDK's
//! `Records`), and checking load generator records.

use sdk::abi::{RELAYMAP_RECORD_ALIGN, RELAYMAP_REC_LOADGEN};
use sdk::{LoadgenRecord, Records};

use crate::boundary::{arg_out, arg_ref, guard, put, relaymap_result, FfiResult};
use crate::channel::relaymap_view;

/// One framed record (`struct relaymap_record` + data) of a view. `data`
/// points into the view's payload and is valid as long as the view.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct relaymap_record_view {
    /// The record's data, after its 16-byte header.
    pub data: *const u8,
    /// Bytes of data (`size - 16`).
    pub len: usize,
    /// Byte offset of the record in the view's payload.
    pub offset: usize,
    /// CLOCK_MONOTONIC (ns) when the record was written.
    pub ts_ns: u64,
    /// The record's `size` field: header included, before alignment.
    pub size: u32,
    /// `RELAYMAP_REC_*` or a writer's own type (>= `RELAYMAP_REC_USER`).
    pub rec_type: u16,
    /// Reserved flags (0).
    pub flags: u16,
}

/// Iterator over the records of one view: `relaymap_record_iter_init()`,
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
    /// Corrupt framing was met: the iteration is over.
    pub failed: bool,
}

/// Starts iterating the records of `view`'s payload.
#[no_mangle]
pub unsafe extern "C" fn relaymap_record_iter_init(
    it: *mut relaymap_record_iter,
    view: *const relaymap_view,
) -> relaymap_result {
    guard("relaymap_record_iter_init", || {
        let it = arg_out(it, "it")?;
        // SAFETY: the caller passes a valid view or NULL.
        let v = unsafe { arg_ref(view, "view") }?;
        let i = relaymap_record_iter {
            data: v.data,
            len: if v.data.is_null() { 0 } else { v.len },
            pos: 0,
            failed: false,
        };
        // SAFETY: checked non-NULL.
        unsafe { put(it, i) };
        Ok(())
    })
}

/// The next record: fills `*rec` and sets `*got` to true, or sets `*got`
/// to false at the end of the payload. Corrupt framing (a size smaller than
/// the record header or running past the payload) is
/// `RELAYMAP_ERR_CORRUPT` with the offset in the message, once; the
/// iteration then ends. The view must still be outstanding.
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
        // SAFETY: non-NULL and the caller's iterator (initialised by
        // relaymap_record_iter_init; a plain struct, so any bits are valid
        // except `failed`, a bool the library itself wrote).
        let i = unsafe { &mut *it };
        if i.failed || i.data.is_null() || i.pos >= i.len {
            return Ok(());
        }
        // SAFETY: `data`/`len` were copied from a view, whose payload stays
        // valid and unwritten until the view is released (the caller's
        // contract: iterate only outstanding views).
        let payload = unsafe { std::slice::from_raw_parts(i.data, i.len) };
        let pos = i.pos;
        match Records::new(&payload[pos..]).next() {
            None => Ok(()),
            Some(Ok(r)) => {
                let size = r.size();
                let v = relaymap_record_view {
                    data: r.data.as_ptr(),
                    len: r.data.len(),
                    offset: pos + r.offset,
                    ts_ns: r.ts_ns,
                    size: size as u32,
                    rec_type: r.type_,
                    flags: r.flags,
                };
                i.pos =
                    pos + r.offset + size.div_ceil(RELAYMAP_RECORD_ALIGN) * RELAYMAP_RECORD_ALIGN;
                // SAFETY: checked non-NULL.
                unsafe {
                    put(rec, v);
                    put(got, true);
                }
                Ok(())
            }
            Some(Err(e)) => {
                i.failed = true;
                let e = match e {
                    sdk::Error::CorruptRecord {
                        offset,
                        size,
                        reason,
                    } => sdk::Error::CorruptRecord {
                        offset: offset + pos,
                        size,
                        reason,
                    },
                    other => other,
                };
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
        if r.rec_type != RELAYMAP_REC_LOADGEN || r.data.is_null() {
            return Ok(());
        }
        // SAFETY: a record view's data points into an outstanding view's
        // payload (the caller's contract), `len` bytes.
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
