//! Fuzz target `walker`: the SDK's sub-buffer walker and `CpuReader`,
//! through the public API only, over a fake kernel.
//!
//! The fake kernel is a `Backend` whose consumer maps a memfd: the SDK
//! maps it itself (read-only, shared) exactly as it maps a consumer fd,
//! while the driver writes sub-buffers into it with `pwrite` (the kernel
//! writing the buffer) and answers `GET_CURSOR`/`PUT_CONSUMED` from its
//! own counts. The geometry comes from the first input byte (page 4 or 8
//! KiB, 1-4 pages per sub-buffer, 2-5 sub-buffers, no-overwrite or
//! overwrite, strict or not, a well-behaved or a hostile kernel); the
//! rest is a program: produce sub-buffers (exact ABI 2 headers with
//! framed events, then maybe damaged field by field), acquire (raw and
//! `Batch`), release (all, up to a seq, keep, drop), and for the hostile
//! kernel also rewrite any slot and move the cursor backwards.
//!
//! Checked after every acquisition, against the bytes the fake kernel
//! wrote and `abi_text::Header` (the ABI's text):
//!  - nothing handed out that the ABI forbids ([`Header::must_reject`]),
//!    every exact kernel header in the range handed out
//!    ([`Header::must_accept`]; in overwrite mode within the `n - 1`
//!    window before `produced`), in order, each seq at most once;
//!  - each `packet()` is exactly the first `packet_size` bytes of its
//!    sub-buffer's slot (no byte outside the sub-buffer; in no-overwrite
//!    mode the very bytes of the mapping: one common, page-aligned base
//!    for every packet), `payload()` the events, the header fields as
//!    stored; the events' records against the reference framing;
//!  - handles of released acquisitions give nothing; `PUT_CONSUMED`
//!    counts are ones the kernel accepts (well-behaved kernel) and add up
//!    to what was released; no error from a well-behaved kernel in
//!    non-strict mode; loss counters never go down.
//!
//! The SDK reads the mapping through its own bounds-checked `Region`
//! (an out-of-bounds read is a panic there, so a crash here).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use relaymap::{
    abi, Acquired, Backend, Channel, ConsumerBackend, CpuReader, Cursor, Mode, ReaderOptions,
    Stats, Subbuf,
};

use crate::abi_text::{self, push_record, Header, HEADER_SIZE};
use crate::{check_records, Src};

/// What one input exercised (for the coverage unit test and the smoke).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WalkStats {
    pub produced: u64,
    pub delivered: u64,
    pub corrupt: u64,
    pub lapped: u64,
    pub records: u64,
    pub errors: u64,
}

#[derive(Debug)]
struct State {
    cpu: u32,
    n: u64,
    hostile: bool,
    produced: u64,
    consumed: u64,
    /// `produced` as last answered to GET_CURSOR (what the reader planned with).
    reported: u64,
    dropped: u64,
    claimed: bool,
    ops: u64,
}

type Shared = Arc<Mutex<State>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn cursor_of(st: &mut State) -> Cursor {
    st.ops += 1;
    st.reported = st.produced;
    Cursor {
        cpu: st.cpu,
        produced: st.produced,
        consumed: st.consumed,
        records_dropped: st.dropped,
        held: st.claimed,
        ..Default::default()
    }
}

#[derive(Debug)]
struct FakeChannel {
    st: Shared,
    info: abi::relaymap_info,
    fd: Arc<OwnedFd>,
}

#[derive(Debug)]
struct FakeConsumer {
    st: Shared,
    fd: Arc<OwnedFd>,
}

fn einval() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

impl Backend for FakeChannel {
    fn info(&self) -> io::Result<abi::relaymap_info> {
        Ok(self.info)
    }
    fn cursor(&self, cpu: u32) -> io::Result<Cursor> {
        let mut st = lock(&self.st);
        if cpu != st.cpu {
            return Err(einval());
        }
        Ok(cursor_of(&mut st))
    }
    fn cursors(&self) -> io::Result<Vec<Cursor>> {
        Ok(vec![cursor_of(&mut lock(&self.st))])
    }
    fn stats(&self, _cpu: Option<u32>) -> io::Result<Stats> {
        Ok(Stats::default())
    }
    fn flush(&self, _cpu: Option<u32>) -> io::Result<()> {
        Ok(())
    }
    fn reset(&self) -> io::Result<()> {
        Err(io::Error::from_raw_os_error(libc::EBUSY))
    }
    fn open_consumer(&self, cpu: u32) -> io::Result<Box<dyn ConsumerBackend>> {
        let mut st = lock(&self.st);
        if cpu != st.cpu {
            return Err(einval());
        }
        if st.claimed {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        st.claimed = true;
        st.ops += 1;
        Ok(Box::new(FakeConsumer {
            st: self.st.clone(),
            fd: self.fd.clone(),
        }))
    }
    fn open_consumers(&self) -> io::Result<Vec<Box<dyn ConsumerBackend>>> {
        let cpu = lock(&self.st).cpu;
        Ok(vec![self.open_consumer(cpu)?])
    }
    fn ops(&self) -> u64 {
        lock(&self.st).ops
    }
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl ConsumerBackend for FakeConsumer {
    fn cpu(&self) -> u32 {
        lock(&self.st).cpu
    }
    fn map_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
    fn poll_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
    fn cursor(&self) -> io::Result<Cursor> {
        Ok(cursor_of(&mut lock(&self.st)))
    }
    fn put_consumed(&self, count: u64) -> io::Result<()> {
        let mut st = lock(&self.st);
        st.ops += 1;
        // The module's rule: 1..=n_subbufs, and never past produced.
        let ok = count != 0 && count <= st.n && st.consumed + count <= st.produced;
        if !ok {
            assert!(
                st.hostile,
                "PUT_CONSUMED({count}) the kernel refuses: consumed {} produced {} n_subbufs {}",
                st.consumed, st.produced, st.n
            );
            return Err(einval());
        }
        st.consumed += count;
        Ok(())
    }
    fn ops(&self) -> u64 {
        lock(&self.st).ops
    }
}

impl Drop for FakeConsumer {
    fn drop(&mut self) {
        lock(&self.st).claimed = false;
    }
}

#[derive(Debug, Clone, Copy)]
struct Geo {
    page: u64,
    subbuf: u64,
    n: u64,
    cpu: u32,
    mode: Mode,
    strict: bool,
    hostile: bool,
}

impl Geo {
    fn slot(&self, seq: u64) -> usize {
        ((seq % self.n) * self.subbuf) as usize
    }
}

/// The mapped buffer as the fake kernel wrote it, and its memfd.
struct Mem {
    shadow: Vec<u8>,
    fd: Arc<OwnedFd>,
}

impl Mem {
    fn new(len: usize) -> Mem {
        // SAFETY: memfd_create with a NUL-terminated name; the fd is owned below.
        let raw = unsafe { libc::memfd_create(c"relaymap-fuzz".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(raw >= 0, "memfd_create: {}", io::Error::last_os_error());
        // SAFETY: raw is a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: plain syscall on an fd we own.
        let r = unsafe { libc::ftruncate(raw, len as libc::off_t) };
        assert_eq!(r, 0, "ftruncate: {}", io::Error::last_os_error());
        Mem {
            shadow: vec![0; len],
            fd: Arc::new(fd),
        }
    }

    /// The kernel writes bytes `at..at + len` (from the shadow).
    fn sync(&self, at: usize, len: usize) {
        use std::os::fd::AsRawFd;
        let b = &self.shadow[at..at + len];
        // SAFETY: b is a valid buffer of len bytes; the fd is ours.
        let w = unsafe {
            libc::pwrite(
                self.fd.as_raw_fd(),
                b.as_ptr().cast(),
                b.len(),
                at as libc::off_t,
            )
        };
        assert_eq!(w, len as isize, "pwrite: {}", io::Error::last_os_error());
    }
}

/// An interesting value for a header field that holds `typical`.
fn twist(s: &mut Src<'_>, typical: u64, geo: &Geo) -> u64 {
    match s.below(12) {
        0 => 0,
        1 => typical.wrapping_add(1),
        2 => typical.wrapping_sub(1),
        3 => typical.wrapping_add(8),
        4 => typical.wrapping_sub(8),
        5 => u64::MAX,
        6 => geo.subbuf * 8,
        7 => geo.subbuf * 8 + 8,
        8 => geo.subbuf,
        9 => typical.wrapping_add(geo.n),
        10 => typical ^ (1 << s.below(64)),
        _ => s.u64(),
    }
}

/// The events of one sub-buffer: framed records (as the module's writers
/// write them), raw bytes, or nothing.
fn gen_events(s: &mut Src<'_>, seq: u64, geo: &Geo) -> Vec<u8> {
    let room = (geo.subbuf as usize) - HEADER_SIZE;
    let mut ev = Vec::new();
    match s.below(4) {
        0 => {}
        1 | 2 => {
            let full = s.below(2) == 0;
            let size = 16 + s.below(200) as usize;
            let mut i = 0u64;
            loop {
                let data = if full {
                    abi_text::loadgen_data(seq * 1000 + i, geo.cpu, size)
                } else {
                    let n = match s.below(4) {
                        0 => s.below(16) as usize,
                        1 => s.below(room as u64 + 1) as usize,
                        _ => s.below(120) as usize,
                    };
                    let mut d = s.bytes(n).to_vec();
                    d.resize(n, 0x5a);
                    d
                };
                let at = abi_text::align8(ev.len()).unwrap();
                if at + 16 + data.len() > room {
                    break;
                }
                let event_id = if s.below(8) == 0 { 1 } else { 0 };
                push_record(&mut ev, 1000 + seq * 10 + i, event_id, 2, &data);
                i += 1;
                if !full && s.below(3) == 0 {
                    break;
                }
            }
        }
        _ => {
            let n = s.below(room as u64 + 1) as usize;
            ev.extend_from_slice(s.bytes(n));
        }
    }
    ev
}

/// The fake kernel closes sub-buffer `seq`: events, header, commit.
fn produce(s: &mut Src<'_>, mem: &mut Mem, geo: &Geo, seq: u64) {
    let at = geo.slot(seq);
    write_slot(s, &mut mem.shadow[at..at + geo.subbuf as usize], geo, seq);
    mem.sync(at, geo.subbuf as usize);
}

/// Sub-buffer `seq` as the module closes it (an exact ABI 2 header and
/// framed events), then maybe damaged field by field, into `slot`.
fn write_slot(s: &mut Src<'_>, slot: &mut [u8], geo: &Geo, seq: u64) {
    let ev = gen_events(s, seq, geo);
    let mut h = Header::closed(seq, geo.cpu, ev.len(), geo.page);
    h.flags = u32::from(s.u8()) & abi_text::SB_KNOWN_FLAGS;
    h.events_discarded = seq;
    let damage = match s.below(4) {
        0 | 1 => 0,
        2 => 1,
        _ => 1 + s.below(3),
    };
    for _ in 0..damage {
        match s.below(17) {
            0 => h.magic = twist(s, u64::from(h.magic), geo) as u32,
            1 => h.uuid[s.below(16) as usize] ^= 0xff,
            2 => h.stream_id = twist(s, 0, geo) as u32,
            3 => h.stream_instance_id = twist(s, h.stream_instance_id, geo),
            4 => h.timestamp_begin = s.u64(),
            5 => h.timestamp_end = s.u64(),
            6 => h.content_size = twist(s, h.content_size, geo),
            7 => h.packet_size = twist(s, h.packet_size, geo),
            8 => h.packet_seq_num = twist(s, seq, geo),
            9 => h.events_discarded = s.u64(),
            10 => h.cpu_id = twist(s, u64::from(h.cpu_id), geo) as u32,
            11 => h.flags = s.u32(),
            12 => h.events_rejected = s.u64(),
            13 => h.abi_version = twist(s, 2, geo) as u16,
            14 => h.header_size = twist(s, HEADER_SIZE as u64, geo) as u16,
            15 => h.reserved = s.u32(),
            _ => h.commit = twist(s, seq + 1, geo),
        }
    }
    // Whatever an earlier lap left after the events (not zero: a reader
    // that reads past content_size sees it).
    slot.fill(s.u8());
    h.encode(slot);
    slot[HEADER_SIZE..HEADER_SIZE + ev.len()].copy_from_slice(&ev);
}

/// The checks of one delivered sub-buffer (see the module docs).
fn check_subbuf(
    sb: &Subbuf<'_>,
    geo: &Geo,
    mem: &Mem,
    base: &mut Option<usize>,
    out: &mut WalkStats,
) {
    let seq = sb.seq();
    let at = geo.slot(seq);
    let slot = &mem.shadow[at..at + geo.subbuf as usize];
    let h = Header::decode(slot);
    if let Some(why) = h.must_reject(seq, geo.cpu, geo.subbuf) {
        panic!("sub-buffer {seq} handed out, but the ABI forbids it ({why}): {h:?}");
    }
    let sh = sb.header();
    assert_eq!(sb.cpu(), geo.cpu);
    assert_eq!(
        (
            sh.cpu,
            sh.flags,
            sh.seq,
            sh.uuid,
            sh.ts_begin_ns,
            sh.ts_end_ns
        ),
        (
            h.cpu_id,
            h.flags,
            h.packet_seq_num,
            h.uuid,
            h.timestamp_begin,
            h.timestamp_end
        ),
        "header fields of sub-buffer {seq}"
    );
    assert_eq!(
        (sh.header_size, sh.content_size * 8, sh.packet_size * 8),
        (h.header_size, h.content_size, h.packet_size),
        "sizes of sub-buffer {seq}"
    );
    assert_eq!(
        (sh.events_discarded, sh.events_rejected),
        (h.events_discarded, h.events_rejected)
    );
    let pk = sb.packet();
    assert_eq!(pk.len() as u64, h.packet_size / 8, "packet length");
    assert!(
        pk.len() as u64 <= geo.subbuf,
        "packet longer than the sub-buffer"
    );
    assert!(
        pk == &slot[..pk.len()],
        "packet of sub-buffer {seq} is not its slot's bytes"
    );
    let pl = sb.payload();
    let (hs, content) = (h.header_size as usize, (h.content_size / 8) as usize);
    assert!(
        pl == &slot[hs..content],
        "payload of sub-buffer {seq} is not header_size..content"
    );
    assert_eq!(&**sb, pl, "Deref != payload()");
    if geo.mode == Mode::NoOverwrite {
        // Zero-copy: the very bytes of the mapping, at its slot.
        let b = (pk.as_ptr() as usize).wrapping_sub(at);
        assert_eq!(
            b % 4096,
            0,
            "packet of sub-buffer {seq} is not at a slot of a page-aligned mapping"
        );
        assert_eq!(
            *base.get_or_insert(b),
            b,
            "packets of one mapping disagree on its base"
        );
        assert_eq!(pl.as_ptr() as usize, pk.as_ptr() as usize + hs);
    }
    let r = check_records(pl, 0);
    let n = sb.records().count() as u64;
    assert_eq!(
        n,
        r.records + r.corrupt,
        "Subbuf::records() vs Records::new(payload)"
    );
    out.records += r.records;
    out.delivered += 1;
}

/// Delivered seqs of `a`, checked; then completeness over `a.seqs`.
fn check_acquired(
    r: &CpuReader,
    (a, limit): (&Acquired, usize),
    geo: &Geo,
    mem: &Mem,
    st: &Shared,
    base: &mut Option<usize>,
    out: &mut WalkStats,
) {
    assert_eq!(a.cpu, geo.cpu);
    assert!(a.len <= limit, "acquire({limit}) delivered {}", a.len);
    let covered = a.seqs.end - a.seqs.start;
    assert!(
        a.len as u64 + a.lapped <= covered,
        "{a:?}: more delivered + lapped than covered"
    );
    let reported = lock(st).reported;
    assert!(
        a.seqs.end <= reported.max(a.seqs.start),
        "{a:?} beyond produced {reported}"
    );
    if geo.mode == Mode::NoOverwrite {
        assert_eq!(a.lapped, 0, "lapped in no-overwrite mode");
    }
    let mut delivered = Vec::new();
    for i in 0..a.len {
        let sb = r
            .subbuf(a, i)
            .expect("subbuf(i < len) of a live acquisition");
        assert!(
            a.seqs.contains(&sb.seq()),
            "seq {} outside {:?}",
            sb.seq(),
            a.seqs
        );
        assert!(
            delivered.last().is_none_or(|l| sb.seq() > *l),
            "seqs out of order"
        );
        delivered.push(sb.seq());
        check_subbuf(&sb, geo, mem, base, out);
    }
    assert!(r.subbuf(a, a.len).is_none(), "subbuf(len) must be None");
    if geo.hostile {
        return;
    }
    let window = reported.saturating_sub(geo.n - 1);
    for s in a.seqs.clone() {
        if geo.mode == Mode::Overwrite && s < window {
            continue;
        }
        let at = geo.slot(s);
        let h = Header::decode(&mem.shadow[at..at + geo.subbuf as usize]);
        if h.must_accept(s, geo.cpu, geo.subbuf, geo.page) {
            assert!(
                delivered.contains(&s),
                "sub-buffer {s} is exactly what the kernel writes but was not handed out ({a:?}): {h:?}"
            );
        }
    }
    out.corrupt += covered - a.len as u64 - a.lapped;
    out.lapped += a.lapped;
}

fn geo_of(s: &mut Src<'_>) -> Geo {
    let g = s.u8();
    let page = 4096u64 << (g & 1);
    Geo {
        page,
        subbuf: page * (1 + u64::from((g >> 1) & 3)),
        n: 2 + u64::from((g >> 3) & 3),
        cpu: s.below(4) as u32,
        mode: if g & 0x20 != 0 {
            Mode::Overwrite
        } else {
            Mode::NoOverwrite
        },
        strict: g & 0x40 != 0,
        hostile: g & 0x80 != 0,
    }
}

/// Runs one input; panics when a check fails.
pub fn walker_one(data: &[u8]) -> WalkStats {
    let mut s = Src::new(data);
    let geo = geo_of(&mut s);
    let page = geo.page;
    let alloc = geo.subbuf * geo.n;
    let mut info = abi::relaymap_info {
        size: abi::RELAYMAP_INFO_SIZE_VER0,
        abi_version: 2,
        header_size: HEADER_SIZE as u32,
        flags: if geo.mode == Mode::Overwrite { 1 } else { 0 },
        subbuf_size: geo.subbuf,
        n_subbufs: geo.n,
        alloc_size: alloc,
        nr_cpu_ids: 4,
        max_record_size: (geo.subbuf - HEADER_SIZE as u64) as u32,
        max_data_size: (geo.subbuf - HEADER_SIZE as u64 - 16) as u32,
        page_size: page as u32,
        uuid: *b"relaymap-fuzz-id",
        ..Default::default()
    };
    info.cpu_mask[0] = 1 << geo.cpu;
    let mut mem = Mem::new(alloc as usize);
    // Whatever the pages held before the first lap.
    mem.shadow.fill(s.u8());
    mem.sync(0, alloc as usize);
    let st: Shared = Arc::new(Mutex::new(State {
        cpu: geo.cpu,
        n: geo.n,
        hostile: geo.hostile,
        produced: 0,
        consumed: 0,
        reported: 0,
        dropped: 0,
        claimed: false,
        ops: 0,
    }));
    let mut ch = Channel::with_backend(Box::new(FakeChannel {
        st: st.clone(),
        info,
        fd: mem.fd.clone(),
    }))
    .expect("an exact GET_INFO must open");
    ch.set_reader_options(
        ReaderOptions::default()
            .strict(geo.strict)
            .populate(s.bool()),
    );
    let mut r = ch.reader(geo.cpu).expect("reader of the channel's one CPU");
    assert!(
        matches!(ch.reader(geo.cpu), Err(relaymap::Error::Busy { .. })),
        "second claim"
    );

    let mut out = WalkStats::default();
    let mut base = None;
    let mut live: Vec<(Acquired, usize)> = Vec::new();
    let mut dead: Vec<Acquired> = Vec::new();
    let mut acq_end = 0u64;
    let mut loss = r.loss();
    let tolerate = |e: &relaymap::Error, out: &mut WalkStats| {
        assert!(
            geo.strict || geo.hostile,
            "error from a well-behaved kernel: {e:?}"
        );
        out.errors += 1;
    };

    for _ in 0..32 {
        if s.is_empty() {
            break;
        }
        match s.below(8) {
            // The kernel closes up to n + 1 sub-buffers.
            0..=2 => {
                for _ in 0..1 + s.below(geo.n + 1) {
                    let mut g = lock(&st);
                    if !geo.hostile
                        && geo.mode == Mode::NoOverwrite
                        && g.produced - g.consumed >= geo.n
                    {
                        g.dropped += 1; // buffer full: the record is dropped
                        break;
                    }
                    let seq = g.produced;
                    drop(g);
                    produce(&mut s, &mut mem, &geo, seq);
                    lock(&st).produced += 1;
                    out.produced += 1;
                }
            }
            // acquire_raw: the borrow-free form.
            3 => {
                let limit = match s.below(4) {
                    0 => usize::MAX,
                    n => n as usize,
                };
                match r.acquire_raw(limit) {
                    Ok(a) => {
                        if let (Some((p, _)), false) = (live.last(), geo.hostile) {
                            assert_eq!(
                                a.seqs.start, p.seqs.end,
                                "acquisitions must continue each other"
                            );
                        }
                        check_acquired(&r, (&a, limit), &geo, &mem, &st, &mut base, &mut out);
                        acq_end = a.seqs.end;
                        live.push((a, limit));
                    }
                    Err(e) => tolerate(&e, &mut out),
                }
            }
            // A Batch: checked, then released, partly released, kept or dropped.
            4 | 5 => {
                let limit = 1 + s.below(geo.n + 1) as usize;
                let how = s.below(4);
                let until = s.below(8);
                let before = lock(&st).consumed;
                let res = match r.acquire(limit) {
                    Ok(b) => {
                        let seqs = b.seqs();
                        assert!(b.len() <= limit && b.len() == b.iter().count());
                        for (i, sb) in b.iter().enumerate() {
                            let g = b.get(i).expect("get(i < len)");
                            assert_eq!(
                                (g.seq(), g.packet().as_ptr()),
                                (sb.seq(), sb.packet().as_ptr())
                            );
                            check_subbuf(&sb, &geo, &mem, &mut base, &mut out);
                        }
                        assert!(b.get(b.len()).is_none());
                        for c in b.corrupt() {
                            assert!(seqs.contains(&c.seq), "corrupt seq outside the batch");
                            let at = geo.slot(c.seq);
                            let h = Header::decode(&mem.shadow[at..at + geo.subbuf as usize]);
                            assert!(
                                geo.hostile || !h.must_accept(c.seq, geo.cpu, geo.subbuf, geo.page),
                                "an exact kernel header called corrupt ({:?}): {h:?}",
                                c.reason
                            );
                        }
                        let payload: u64 = b.iter().map(|x| x.payload().len() as u64).sum();
                        assert_eq!(b.payload_bytes(), payload);
                        let to = match how {
                            0 => {
                                let res = b.release();
                                (res, seqs.end)
                            }
                            1 => {
                                let u = seqs.start + until;
                                (b.release_until(u), u.clamp(seqs.start, seqs.end))
                            }
                            2 => {
                                b.keep();
                                (Ok(()), seqs.start)
                            }
                            _ => {
                                drop(b);
                                (Ok(()), seqs.end)
                            }
                        };
                        Some(to)
                    }
                    Err(e) => {
                        tolerate(&e, &mut out);
                        None
                    }
                };
                if let Some((res, to)) = res {
                    dead.extend(live.drain(..).map(|(a, _)| a));
                    match res {
                        Ok(()) if !geo.hostile => {
                            let now = lock(&st).consumed;
                            assert_eq!(now, to.max(before), "handed back != released range");
                        }
                        Ok(()) => {}
                        Err(e) => tolerate(&e, &mut out),
                    }
                    acq_end = lock(&st).consumed;
                }
            }
            // release_raw: everything, or before a seq.
            6 => {
                let upto = if s.bool() {
                    None
                } else {
                    Some(acq_end.saturating_sub(s.below(4)))
                };
                let before = lock(&st).consumed;
                match r.release_raw(upto) {
                    Ok(()) => {
                        if !geo.hostile {
                            let want = upto.map_or(acq_end, |u| u.clamp(before, acq_end));
                            assert_eq!(
                                lock(&st).consumed,
                                want,
                                "release_raw({upto:?}) handed back"
                            );
                        }
                    }
                    Err(e) => tolerate(&e, &mut out),
                }
                dead.extend(live.drain(..).map(|(a, _)| a));
                acq_end = lock(&st).consumed;
            }
            // The hostile kernel rewrites a slot or moves its cursor.
            _ => {
                if !geo.hostile {
                    // Observers: they change nothing the reader planned with.
                    let planned = lock(&st).reported;
                    let c = r.cursor().expect("GET_CURSOR of a well-behaved kernel");
                    assert_eq!(c.produced, lock(&st).produced);
                    match r.is_drained() {
                        // (A deferred strict-mode error comes first.)
                        Ok(d) => assert_eq!(d, c.produced == c.consumed),
                        Err(e) => tolerate(&e, &mut out),
                    }
                    lock(&st).reported = planned;
                    continue;
                }
                match s.below(3) {
                    0 => {
                        let seq = s.below(geo.n * 2);
                        produce(&mut s, &mut mem, &geo, seq);
                    }
                    1 => {
                        let mut g = lock(&st);
                        g.produced = 0;
                        g.consumed = 0;
                    }
                    _ => {
                        let mut g = lock(&st);
                        g.consumed = g.produced.min(g.consumed + s.below(3));
                        g.dropped = g.dropped.wrapping_add(s.below(3));
                    }
                }
            }
        }
        // Outstanding zero-copy views still show what was delivered.
        if !geo.hostile && geo.mode == Mode::NoOverwrite {
            for (a, limit) in &live {
                let mut tmp = WalkStats::default();
                check_acquired(&r, (a, *limit), &geo, &mem, &st, &mut base, &mut tmp);
            }
        }
        for a in &dead {
            assert!(
                r.subbuf(a, 0).is_none(),
                "a released acquisition still gives views"
            );
        }
        let l = r.loss();
        assert!(
            l.subbufs_corrupt >= loss.subbufs_corrupt && l.subbufs_lapped >= loss.subbufs_lapped,
            "loss went down: {loss:?} -> {l:?}"
        );
        loss = l;
    }
    if !geo.hostile {
        match r.release_raw(None) {
            Ok(()) => assert_eq!(lock(&st).consumed, acq_end, "final release"),
            Err(e) => panic!("final release_raw from a well-behaved kernel: {e:?}"),
        }
    }
    drop(r);
    assert!(!lock(&st).claimed, "dropping the reader releases the claim");
    out
}

/// Fuzz target `walker_raw` (only with `--cfg fuzzing`, which cargo-fuzz
/// sets): the walker's functions themselves through the SDK's test seam
/// `relaymap::fuzzing`, over plain memory, several sub-buffers per input.
/// `read_stable`: an `Ok` range is exactly the slot's first packet_size
/// bytes (inside the sub-buffer), the header as stored, nothing the ABI
/// forbids; an exact kernel header is `Ok`. `read_copy`: the copy is those
/// bytes; exact headers are `Ok`, forbidden ones never. `plan`: the
/// window relations of the ABI's reading protocol.
#[cfg(fuzzing)]
pub fn walker_raw_one(data: &[u8]) -> u64 {
    use relaymap::fuzzing::{plan, read_copy, read_stable, Copied, Geometry, Region};

    let mut s = Src::new(data);
    let geo = geo_of(&mut s);
    let alloc = (geo.subbuf * geo.n) as usize;
    // u64 words: the walker wants an 8-byte aligned base.
    let mut words = vec![0u64; alloc / 8];
    // SAFETY: reinterpreting the u64 buffer as bytes (same length in bytes,
    // u8 has no alignment requirement); `words` is not used otherwise meanwhile.
    let bytes = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), alloc) };
    bytes.fill(s.u8());
    for i in 0..geo.n {
        // Slot i holds seq i or a later lap of it (or a wrong seq).
        let seq = i + geo.n * s.below(3);
        let at = geo.slot(seq);
        write_slot(&mut s, &mut bytes[at..at + geo.subbuf as usize], &geo, seq);
    }
    let shadow = bytes.to_vec();
    // SAFETY: `words` outlives `r` and every slice made from it below, is
    // 8-byte aligned (a Vec<u64>), and nothing writes it meanwhile.
    let r = unsafe { Region::new(words.as_ptr().cast::<u8>(), alloc) };
    let g = Geometry {
        subbuf_size: geo.subbuf,
        n_subbufs: geo.n,
        page_size: geo.page,
    };
    let mut ok = 0;
    for _ in 0..1 + s.below(6) {
        let seq = s.below(geo.n * 3);
        let at = geo.slot(seq);
        let slot = &shadow[at..at + geo.subbuf as usize];
        let h = Header::decode(slot);
        let forbidden = h.must_reject(seq, geo.cpu, geo.subbuf);
        let exact = h.must_accept(seq, geo.cpu, geo.subbuf, geo.page);
        match read_stable(&r, &g, geo.cpu, seq) {
            Ok((sh, range)) => {
                assert!(
                    forbidden.is_none(),
                    "read_stable({seq}) accepted a header the ABI forbids ({forbidden:?}): {h:?}"
                );
                assert_eq!(range.start, at, "the packet does not start at its slot");
                assert_eq!(
                    range.len() as u64 * 8,
                    h.packet_size,
                    "packet range != packet_size"
                );
                assert!(
                    range.len() as u64 <= geo.subbuf,
                    "packet range beyond the sub-buffer"
                );
                assert_eq!(
                    (
                        sh.seq,
                        sh.cpu,
                        sh.content_size * 8,
                        u64::from(sh.header_size)
                    ),
                    (
                        h.packet_seq_num,
                        h.cpu_id,
                        h.content_size,
                        u64::from(h.header_size)
                    )
                );
                ok += 1;
            }
            Err(c) => assert!(
                !exact,
                "read_stable({seq}) refused an exact kernel header ({c:?}): {h:?}"
            ),
        }
        let mut dst = s.bytes(8).to_vec();
        let mark = dst.len();
        match read_copy(&r, &g, geo.cpu, seq, &mut dst) {
            Copied::Ok(sh, range) => {
                assert!(
                    forbidden.is_none(),
                    "read_copy({seq}) accepted a forbidden header ({forbidden:?})"
                );
                assert_eq!(range.start, mark, "the copy does not start where dst ended");
                assert_eq!(
                    &dst[range.clone()],
                    &slot[..range.len()],
                    "the copy is not the slot's bytes"
                );
                assert_eq!(range.len() as u64 * 8, h.packet_size);
                assert_eq!(sh.seq, seq);
            }
            Copied::Lapped | Copied::Corrupt(_) => {
                assert!(
                    !exact,
                    "read_copy({seq}) refused an exact kernel header: {h:?}"
                );
                assert_eq!(dst.len(), mark, "a refused copy left bytes in dst");
            }
        }
    }
    let (next, produced) = (s.u64() >> s.below(64), s.u64() >> s.below(64));
    let p = plan(next, produced, geo.n, geo.mode);
    assert!(
        p.start >= next && p.end >= p.start,
        "{p:?} from next {next} produced {produced}"
    );
    assert_eq!(p.lapped, p.start - next);
    if produced > next {
        assert_eq!(p.end, produced);
        if geo.mode == Mode::NoOverwrite {
            assert_eq!((p.start, p.lapped), (next, 0));
        } else {
            assert!(
                p.end - p.start <= geo.n - 1,
                "overwrite window wider than n - 1: {p:?}"
            );
            assert_eq!(p.start, next.max(produced.saturating_sub(geo.n - 1)));
        }
    } else {
        assert_eq!((p.start, p.end), (next, next));
    }
    ok
}
