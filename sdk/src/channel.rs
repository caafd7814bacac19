//! [`Channel`]: open, wait, take sub-buffers, hand them back.

use std::fs::File;
use std::num::NonZeroUsize;
use std::ops::{AddAssign, Range};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use once_cell::sync::Lazy;
use polling::{Event, Events, PollMode, Poller};

use crate::abi;
use crate::control::{Control, Cursor, IoctlControl, Stats};
use crate::error::{ControlOp, Corruption, Error, Result};
use crate::mapping::Mapping;
use crate::records::{Record, Records};
use crate::walker::{self, Copied, Geometry, Mode, Region, SubbufHeader};

static PAGE_SIZE: Lazy<u64> = Lazy::new(|| {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
});

/// Poller key of the backend's wake fd (sim); CPU files use their index.
const WAKE_KEY: usize = usize::MAX - 1;

/// Identity and geometry of a channel (`GET_INFO`, checked).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// Channel name.
    pub name: String,
    /// The module's ABI version (equal to the SDK's, or open fails).
    pub abi_version: u32,
    /// Bytes reserved per sub-buffer for the header.
    pub header_size: u32,
    /// No-overwrite or overwrite (flight recorder).
    pub mode: Mode,
    /// Bytes per sub-buffer.
    pub subbuf_size: u64,
    /// Sub-buffers per CPU.
    pub n_subbufs: u64,
    /// Bytes mapped per CPU file.
    pub alloc_size: u64,
    /// CPUs the kernel can have.
    pub nr_cpu_ids: u32,
    /// Largest framed record a writer may emit.
    pub max_record_size: u32,
    /// CPUs that have a buffer (`cpu<N>` files), ascending.
    pub cpus: Vec<u32>,
}

impl ChannelInfo {
    fn from_raw(dir: &Path, raw: &abi::relaymap_info) -> Result<ChannelInfo> {
        if raw.abi_version != abi::RELAYMAP_ABI_VERSION {
            return Err(Error::AbiMismatch {
                kernel: raw.abi_version,
                sdk: abi::RELAYMAP_ABI_VERSION,
            });
        }
        let geo_err = |reason: String| Error::Geometry { cpu: None, reason };
        let hs = u64::from(raw.header_size);
        if (hs as usize) < abi::SUBBUF_HEADER_SIZE || hs % 8 != 0 {
            return Err(geo_err(format!(
                "header_size {hs} (must be >= {} and a multiple of 8)",
                abi::SUBBUF_HEADER_SIZE
            )));
        }
        if raw.subbuf_size <= hs
            || raw.subbuf_size % 8 != 0
            || raw.subbuf_size > u64::from(u32::MAX)
        {
            return Err(geo_err(format!("subbuf_size {}", raw.subbuf_size)));
        }
        if raw.n_subbufs < 2 {
            return Err(geo_err(format!(
                "n_subbufs {} (must be >= 2)",
                raw.n_subbufs
            )));
        }
        let page = *PAGE_SIZE;
        let want = raw
            .subbuf_size
            .checked_mul(raw.n_subbufs)
            .and_then(|b| b.checked_add(page - 1))
            .map(|b| b / page * page);
        if want != Some(raw.alloc_size) || usize::try_from(raw.alloc_size).is_err() {
            return Err(geo_err(format!(
                "alloc_size {} != PAGE_ALIGN(subbuf_size {} * n_subbufs {})",
                raw.alloc_size, raw.subbuf_size, raw.n_subbufs
            )));
        }
        if raw.nr_cpu_ids as usize > abi::RELAYMAP_MAX_CPUS {
            return Err(geo_err(format!("nr_cpu_ids {}", raw.nr_cpu_ids)));
        }
        let cpus: Vec<u32> = (0..raw.nr_cpu_ids)
            .filter(|c| raw.cpu_mask[*c as usize / 64] & (1u64 << (c % 64)) != 0)
            .collect();
        if cpus.is_empty() {
            return Err(Error::NotAChannel {
                dir: dir.to_path_buf(),
                reason: "GET_INFO reports no CPU buffers".into(),
            });
        }
        let name_len = raw
            .name
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(raw.name.len());
        Ok(ChannelInfo {
            name: String::from_utf8_lossy(&raw.name[..name_len]).into_owned(),
            abi_version: raw.abi_version,
            header_size: raw.header_size,
            mode: if raw.flags & abi::RELAYMAP_INFO_OVERWRITE != 0 {
                Mode::Overwrite
            } else {
                Mode::NoOverwrite
            },
            subbuf_size: raw.subbuf_size,
            n_subbufs: raw.n_subbufs,
            alloc_size: raw.alloc_size,
            nr_cpu_ids: raw.nr_cpu_ids,
            max_record_size: raw.max_record_size,
            cpus,
        })
    }
}

/// Losses, in exact units. Per CPU ([`Channel::loss_by_cpu`]) or summed
/// ([`Channel::loss`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loss {
    /// Records the kernel dropped because the buffer was full
    /// (no-overwrite), cumulative since the channel's last reset, as of the
    /// latest cursor read.
    pub records_dropped: u64,
    /// Sub-buffers this consumer never delivered because the kernel lapped
    /// them (overwrite mode), since open.
    pub subbufs_lapped: u64,
    /// Sub-buffers skipped because their header was corrupt, since open.
    pub subbufs_corrupt: u64,
}

impl AddAssign for Loss {
    fn add_assign(&mut self, o: Loss) {
        self.records_dropped += o.records_dropped;
        self.subbufs_lapped += o.subbufs_lapped;
        self.subbufs_corrupt += o.subbufs_corrupt;
    }
}

/// What one drain call delivered and skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainStats {
    /// Sub-buffers delivered.
    pub subbufs: u64,
    /// Payload bytes delivered.
    pub bytes: u64,
    /// Sub-buffers skipped because they were lapped.
    pub lapped: u64,
    /// Sub-buffers skipped because their header was corrupt.
    pub corrupt: u64,
    /// Payloads whose record framing was corrupt (only counted by
    /// [`Channel::drain_merged`]; the rest of such a payload is skipped).
    pub corrupt_records: u64,
}

impl AddAssign for DrainStats {
    fn add_assign(&mut self, o: DrainStats) {
        self.subbufs += o.subbufs;
        self.bytes += o.bytes;
        self.lapped += o.lapped;
        self.corrupt += o.corrupt;
        self.corrupt_records += o.corrupt_records;
    }
}

/// A view of one finished sub-buffer: header fields and the payload, with
/// header and padding stripped. No copy in no-overwrite mode: `payload`
/// points into the kernel's buffer, which the kernel leaves alone until the
/// sub-buffer is handed back.
#[derive(Debug, Clone, Copy)]
pub struct Subbuf<'a> {
    header: SubbufHeader,
    payload: &'a [u8],
}

impl<'a> Subbuf<'a> {
    /// The header (a copy).
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
    /// The payload bytes.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
    /// The records of the payload (for framed channels).
    pub fn records(&self) -> Records<'a> {
        Records::new(self.payload)
    }
}

/// A sub-buffer taken with [`Channel::next`]; handed back to the kernel
/// (one `PUT_CONSUMED`) when dropped or [`released`](SubbufGuard::release).
#[derive(Debug)]
pub struct SubbufGuard<'a> {
    chan: &'a mut Channel,
    idx: usize,
    entry: Entry,
    done: bool,
}

impl SubbufGuard<'_> {
    /// The view.
    pub fn subbuf(&self) -> Subbuf<'_> {
        self.chan.view(self.idx, &self.entry)
    }
    /// The header (a copy).
    pub fn header(&self) -> &SubbufHeader {
        &self.entry.header
    }
    /// The payload bytes.
    pub fn payload(&self) -> &[u8] {
        self.subbuf().payload
    }
    /// The records of the payload.
    pub fn records(&self) -> Records<'_> {
        self.subbuf().records()
    }
    /// Hands the sub-buffer back now, reporting any error (Drop defers it
    /// to the channel's next call instead).
    pub fn release(mut self) -> Result<()> {
        self.done = true;
        let to = self.entry.header.seq + 1;
        self.chan.release(self.idx, to)
    }
}

impl Drop for SubbufGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            let to = self.entry.header.seq + 1;
            if let Err(e) = self.chan.release(self.idx, to) {
                self.chan.deferred.get_or_insert(e);
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Loc {
    Map(Range<usize>),
    Copy(Range<usize>),
}

#[derive(Debug, Clone)]
struct Entry {
    header: SubbufHeader,
    loc: Loc,
}

/// A sub-buffer skipped because its header was corrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorruptSubbuf {
    /// Its number.
    pub seq: u64,
    /// Why.
    pub reason: Corruption,
}

/// Every sub-buffer one CPU had ready, taken at once ([`Channel::batch`]).
/// All views stay valid while the batch lives (so a dumper can gather them
/// into one `pwritev`); the whole range is handed back with **one**
/// `PUT_CONSUMED` when the batch is dropped or released.
#[derive(Debug)]
pub struct Batch<'a> {
    chan: &'a mut Channel,
    done: bool,
}

impl Batch<'_> {
    fn acq(&self) -> &Acquired {
        self.chan
            .acquired
            .as_ref()
            .expect("a Batch owns the acquisition")
    }
    /// The CPU.
    pub fn cpu(&self) -> u32 {
        self.acq().cpu
    }
    /// Sub-buffer numbers covered (delivered, lapped or corrupt).
    pub fn seqs(&self) -> Range<u64> {
        self.acq().seqs.clone()
    }
    /// Delivered sub-buffers.
    pub fn len(&self) -> usize {
        self.chan.entries.len()
    }
    /// No sub-buffer delivered.
    pub fn is_empty(&self) -> bool {
        self.chan.entries.is_empty()
    }
    /// The `i`-th delivered sub-buffer.
    pub fn get(&self, i: usize) -> Option<Subbuf<'_>> {
        self.chan.acquired_subbuf(i)
    }
    /// The delivered sub-buffers in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Subbuf<'_>> + '_ {
        let idx = self.chan.acquired.as_ref().map_or(0, |a| a.idx);
        self.chan
            .entries
            .iter()
            .map(move |e| self.chan.view(idx, e))
    }
    /// Total payload bytes delivered.
    pub fn payload_bytes(&self) -> u64 {
        self.chan
            .entries
            .iter()
            .map(|e| u64::from(e.header.payload_size))
            .sum()
    }
    /// Sub-buffers skipped in this batch because they were lapped.
    pub fn lapped(&self) -> u64 {
        self.acq().lapped
    }
    /// Sub-buffers skipped in this batch because their header was corrupt.
    pub fn corrupt(&self) -> &[CorruptSubbuf] {
        &self.chan.corrupt
    }
    /// Hands the whole range back (one `PUT_CONSUMED`, or one per
    /// `n_subbufs` after a long overwrite lap).
    pub fn release(mut self) -> Result<()> {
        self.done = true;
        self.chan.release_acquired(None)
    }
    /// Hands back only the sub-buffers before `seq` (clamped to the batch);
    /// the rest are delivered again by the next batch.
    pub fn release_until(mut self, seq: u64) -> Result<()> {
        self.done = true;
        self.chan.release_acquired(Some(seq))
    }
    /// Hands nothing back; the whole range is delivered again by the next
    /// batch.
    pub fn keep(mut self) {
        self.done = true;
        let start = self.acq().seqs.start;
        // Releasing "until start" releases nothing and rewinds.
        let _ = self.chan.release_acquired(Some(start));
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.chan.release_acquired(None) {
                self.chan.deferred.get_or_insert(e);
            }
        }
    }
}

/// The outstanding acquisition of [`Channel::acquire`] (the borrow-free
/// form of a [`Batch`], for bindings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    idx: usize,
    /// The CPU.
    pub cpu: u32,
    /// Sub-buffer numbers covered (delivered, lapped or corrupt).
    pub seqs: Range<u64>,
    /// Delivered sub-buffers: [`Channel::acquired_subbuf`]`(0..len)`.
    pub len: usize,
    /// Skipped because lapped.
    pub lapped: u64,
    /// Skipped because corrupt.
    pub corrupt: u64,
    walk: Walk,
}

/// One walk of a CPU's ready range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Walk {
    /// `next` before the walk.
    from: u64,
    /// First sub-buffer that could still be valid (overwrite: after laps).
    start: u64,
    /// One past the last sub-buffer walked.
    end: u64,
    /// Lapped while being read (overwrite seqlock failures).
    lapped_seqs: Vec<u64>,
    /// This walk's entries in `Channel::corrupt`.
    corrupt: Range<usize>,
}

impl Walk {
    fn lapped(&self) -> u64 {
        self.start - self.from + self.lapped_seqs.len() as u64
    }
}

#[derive(Debug)]
struct CpuBuf {
    cpu: u32,
    // Kept open: relay's buffer lives while a file is open, and the kernel
    // channel's poll is on this fd.
    file: File,
    _map: Mapping,
    region: Region,
    synced: bool,
    /// Next sub-buffer number to deliver.
    next: u64,
    /// Kernel `consumed` as this consumer has reported it.
    released: u64,
    /// Latest `produced` seen.
    produced: u64,
    loss: Loss,
    registered: bool,
}

/// Options for [`Channel`]s: which CPUs, pre-faulting, poll timeout.
#[derive(Debug)]
pub struct ChannelBuilder {
    dir: PathBuf,
    cpus: Option<Vec<u32>>,
    populate: bool,
    poll_timeout: Option<Duration>,
    control: Option<Box<dyn Control>>,
    strict: bool,
}

impl ChannelBuilder {
    /// Options for the channel directory `dir` (e.g.
    /// `/sys/kernel/debug/relaymap/demo`).
    pub fn new(dir: impl AsRef<Path>) -> ChannelBuilder {
        ChannelBuilder {
            dir: dir.as_ref().to_path_buf(),
            cpus: None,
            populate: false,
            poll_timeout: None,
            control: None,
            strict: false,
        }
    }
    /// Map only these CPUs (default: every CPU with a buffer). Asking for a
    /// CPU without a buffer fails with [`Error::UnknownCpu`].
    pub fn cpus(mut self, cpus: impl IntoIterator<Item = u32>) -> Self {
        let mut v: Vec<u32> = cpus.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        self.cpus = Some(v);
        self
    }
    /// Pre-fault the mappings (`MAP_POPULATE`): costs ~0.28 us per 4 KiB at
    /// open instead of on first touch. Default off.
    pub fn populate(mut self, yes: bool) -> Self {
        self.populate = yes;
        self
    }
    /// Timeout of [`Channel::wait`] (`None`, the default: wait forever).
    pub fn poll_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.poll_timeout = timeout;
        self
    }
    /// Strict mode (default off): a corrupt sub-buffer header, or a cursor
    /// that moves backwards without a [`Channel::reset`] by this channel,
    /// is reported as an error ([`Error::CorruptHeader`],
    /// [`Error::CursorBackwards`]) instead of only being counted
    /// ([`Loss::subbufs_corrupt`]) or followed. A batch stops at the first
    /// corrupt sub-buffer: the ones before it are delivered, the corrupt one
    /// is skipped (handed back with the batch, counted), and the error is
    /// returned by the channel's next call. Nothing else changes; the
    /// consumer can go on after the error.
    pub fn strict(mut self, yes: bool) -> Self {
        self.strict = yes;
        self
    }
    /// Use this control backend instead of the one found in the directory
    /// (the `control` file's ioctls, or the simulator's).
    pub fn control(mut self, control: Box<dyn Control>) -> Self {
        self.control = Some(control);
        self
    }
    /// Opens the channel.
    pub fn open(self) -> Result<Channel> {
        Channel::open_with(self)
    }
}

/// A relaymap channel opened for consuming: one read-only shared mapping per
/// CPU, the control backend, and a poller over all CPUs.
///
/// One consumer per channel: the kernel keeps one `consumed` count per CPU.
#[derive(Debug)]
pub struct Channel {
    dir: PathBuf,
    info: ChannelInfo,
    geo: Geometry,
    ctl: Box<dyn Control>,
    cpus: Vec<CpuBuf>,
    selection: Option<Vec<u32>>,
    populate: bool,
    timeout: Option<Duration>,
    poller: Poller,
    events: Events,
    wake_registered: bool,
    scratch: Vec<u8>,
    entries: Vec<Entry>,
    corrupt: Vec<CorruptSubbuf>,
    deferred: Option<Error>,
    acquired: Option<Acquired>,
    rr: usize,
    strict: bool,
}

fn not_a_channel(dir: &Path, reason: impl Into<String>) -> Error {
    Error::NotAChannel {
        dir: dir.to_path_buf(),
        reason: reason.into(),
    }
}

fn default_control(dir: &Path) -> Result<Box<dyn Control>> {
    let md = std::fs::metadata(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            Error::PermissionDenied {
                path: dir.to_path_buf(),
                source: e,
            }
        } else {
            not_a_channel(dir, format!("cannot stat: {e}"))
        }
    })?;
    if !md.is_dir() {
        return Err(not_a_channel(dir, "not a directory"));
    }
    let control = dir.join("control");
    let cmd = match std::fs::metadata(&control) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(not_a_channel(dir, "no control file"))
        }
        Err(e) => return Err(Error::open(control, e)),
    };
    if crate::sim_detect::is_sim_control(&control, &cmd) {
        #[cfg(feature = "sim")]
        {
            let c = crate::sim::SimControl::open(dir)?;
            return Ok(Box::new(c));
        }
        #[cfg(not(feature = "sim"))]
        return Err(not_a_channel(
            dir,
            "this is a simulated channel; build relaymap with feature `sim` to open it",
        ));
    }
    let c = IoctlControl::open(&control).map_err(|e| Error::open(control, e))?;
    Ok(Box::new(c))
}

impl Channel {
    /// Opens the channel in `dir` with default options: every CPU, no
    /// pre-faulting, waits without timeout.
    pub fn open(dir: impl AsRef<Path>) -> Result<Channel> {
        ChannelBuilder::new(dir).open()
    }

    /// Options for opening `dir`.
    pub fn builder(dir: impl AsRef<Path>) -> ChannelBuilder {
        ChannelBuilder::new(dir)
    }

    fn open_with(b: ChannelBuilder) -> Result<Channel> {
        let dir = b.dir;
        let ctl = match b.control {
            Some(c) => c,
            None => default_control(&dir)?,
        };
        let raw = ctl.info().map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOTTY) {
                not_a_channel(
                    &dir,
                    "the control file does not answer relaymap ioctls (ENOTTY)",
                )
            } else {
                Error::ioctl(ControlOp::GetInfo, None, e)
            }
        })?;
        let info = ChannelInfo::from_raw(&dir, &raw)?;
        if let Some(sel) = &b.cpus {
            if let Some(c) = sel.iter().find(|c| !info.cpus.contains(c)) {
                return Err(Error::UnknownCpu { cpu: *c });
            }
        }
        let geo = Geometry {
            subbuf_size: info.subbuf_size,
            n_subbufs: info.n_subbufs,
            alloc_size: info.alloc_size,
        };
        let poller = Poller::new().map_err(|e| Error::Poll {
            cpu: None,
            source: e,
        })?;
        let mut ch = Channel {
            dir,
            info,
            geo,
            ctl,
            cpus: Vec::new(),
            selection: b.cpus,
            populate: b.populate,
            timeout: b.poll_timeout,
            poller,
            events: Events::with_capacity(NonZeroUsize::new(64).expect("64 > 0")),
            wake_registered: false,
            scratch: Vec::new(),
            entries: Vec::new(),
            corrupt: Vec::new(),
            deferred: None,
            acquired: None,
            rr: 0,
            strict: b.strict,
        };
        if let Some(fd) = ch.ctl.wake_fd() {
            // SAFETY: the fd belongs to `ch.ctl`, which lives as long as the
            // channel; Drop deletes it from the poller before `ctl` drops.
            unsafe {
                ch.poller
                    .add_with_mode(fd.as_raw_fd(), Event::readable(WAKE_KEY), PollMode::Level)
            }
            .map_err(|e| Error::Poll {
                cpu: None,
                source: e,
            })?;
            ch.wake_registered = true;
        }
        let want: Vec<u32> = ch.wanted_cpus(&ch.info.cpus);
        for cpu in want {
            ch.map_cpu(cpu)?;
        }
        Ok(ch)
    }

    fn wanted_cpus(&self, present: &[u32]) -> Vec<u32> {
        present
            .iter()
            .copied()
            .filter(|c| self.selection.as_ref().map_or(true, |s| s.contains(c)))
            .filter(|c| !self.cpus.iter().any(|b| b.cpu == *c))
            .collect()
    }

    fn map_cpu(&mut self, cpu: u32) -> Result<()> {
        let path = self.dir.join(format!("cpu{cpu}"));
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(not_a_channel(
                    &self.dir,
                    format!("GET_INFO lists cpu {cpu} but cpu{cpu} is missing"),
                ))
            }
            Err(e) => return Err(Error::open(path, e)),
        };
        let len = self.geo.alloc_size as usize;
        let map =
            Mapping::map(&file, len, self.populate).map_err(|e| Error::Mmap { cpu, source: e })?;
        let region = map.region();
        let idx = self.cpus.len();
        let mut buf = CpuBuf {
            cpu,
            file,
            _map: map,
            region,
            synced: false,
            next: 0,
            released: 0,
            produced: 0,
            loss: Loss::default(),
            registered: false,
        };
        if !self.wake_registered {
            // Level-triggered, deliberately: relay's poll reports EPOLLIN
            // as a *state* (produced != consumed). Level mode costs no
            // re-arm syscall per wait (oneshot would need a `modify` per CPU
            // per wakeup) and cannot lose a wakeup when a consumer leaves
            // data behind (edge mode could). The price: data left
            // unconsumed makes `wait` return at once, which is the
            // documented meaning of "ready".
            // SAFETY: the fd is owned by `buf.file`, which stays open until
            // Drop deletes the registration.
            unsafe {
                self.poller.add_with_mode(
                    buf.file.as_raw_fd(),
                    Event::readable(idx),
                    PollMode::Level,
                )
            }
            .map_err(|e| Error::Poll {
                cpu: Some(cpu),
                source: e,
            })?;
            buf.registered = true;
        }
        self.cpus.push(buf);
        Ok(())
    }

    /// The channel directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Identity and geometry.
    pub fn info(&self) -> &ChannelInfo {
        &self.info
    }
    /// No-overwrite or overwrite.
    pub fn mode(&self) -> Mode {
        self.info.mode
    }
    /// The CPUs this channel maps, in the order batches walk them.
    pub fn cpus(&self) -> Vec<u32> {
        self.cpus.iter().map(|b| b.cpu).collect()
    }
    /// Control operations issued so far (syscalls, for the kernel backend).
    pub fn control_ops(&self) -> u64 {
        self.ctl.ops()
    }
    /// The control backend.
    pub fn control(&self) -> &dyn Control {
        &*self.ctl
    }

    fn idx(&self, cpu: u32) -> Result<usize> {
        self.cpus
            .iter()
            .position(|b| b.cpu == cpu)
            .ok_or(Error::UnknownCpu { cpu })
    }

    fn take_deferred(&mut self) -> Result<()> {
        match self.deferred.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// `GET_CURSOR` for one CPU, as the kernel reports it.
    pub fn cursor(&self, cpu: u32) -> Result<Cursor> {
        self.ctl
            .cursor(cpu)
            .map_err(|e| Error::ioctl(ControlOp::GetCursor, Some(cpu), e))
    }

    /// `GET_STATS` for one CPU or the whole channel.
    pub fn stats(&self, cpu: Option<u32>) -> Result<Stats> {
        self.ctl
            .stats(cpu)
            .map_err(|e| Error::ioctl(ControlOp::GetStats, cpu, e))
    }

    /// Reads the cursor and resynchronises with it when it moved in a way
    /// only a RESET (or another consumer) explains.
    fn sync(&mut self, idx: usize) -> Result<()> {
        let cpu = self.cpus[idx].cpu;
        let c = self
            .ctl
            .cursor(cpu)
            .map_err(|e| Error::ioctl(ControlOp::GetCursor, Some(cpu), e))?;
        let b = &mut self.cpus[idx];
        let mut backwards = None;
        if !b.synced || c.consumed != b.released || c.produced < b.next {
            if b.synced && (c.produced < b.next || c.consumed < b.released) {
                // A RESET by someone else (or a second consumer): follow
                // the kernel, and say so in strict mode.
                backwards = Some(Error::CursorBackwards {
                    cpu,
                    produced: c.produced,
                    consumed: c.consumed,
                    expected: b.next,
                });
            }
            b.next = c.consumed;
            b.released = c.consumed;
            b.synced = true;
        }
        b.produced = c.produced;
        b.loss.records_dropped = c.records_dropped;
        match backwards {
            Some(e) if self.strict => Err(e),
            _ => Ok(()),
        }
    }

    /// Hands sub-buffers `released..to` of CPU `idx` back to the kernel.
    fn release(&mut self, idx: usize, to: u64) -> Result<()> {
        let n_subbufs = self.geo.n_subbufs;
        let b = &mut self.cpus[idx];
        while b.released < to {
            // relay_subbufs_consumed() ignores n > n_subbufs: split.
            let n = (to - b.released).min(n_subbufs);
            self.ctl
                .put_consumed(b.cpu, n)
                .map_err(|e| Error::ioctl(ControlOp::PutConsumed, Some(b.cpu), e))?;
            b.released += n;
        }
        Ok(())
    }

    fn view(&self, idx: usize, e: &Entry) -> Subbuf<'_> {
        let payload = match &e.loc {
            Loc::Map(r) => {
                // SAFETY: who writes this memory: the kernel (relay writers
                // on the owning CPU) and nobody else. `r` is the payload of
                // a sub-buffer that GET_CURSOR reports produced: its writer
                // finished, relaymap_close_subbuf() stored `commit` and then
                // `published` with smp_store_release(), and the walker's
                // acquire load of `commit` pairs with the first. Only
                // no-overwrite entries are `Loc::Map`: there relay does not
                // reuse a sub-buffer until it is consumed (relay_buf_full()
                // makes subbuf_start refuse it), and this channel sends
                // PUT_CONSUMED for it only after every view of the batch or
                // guard is gone (views borrow the channel, release needs
                // `&mut`). The range lies inside the sub-buffer (checked by
                // the walker against subbuf_size) inside the live mapping.
                unsafe { self.cpus[idx].region.slice(r.start, r.len()) }
            }
            Loc::Copy(r) => &self.scratch[r.clone()],
        };
        Subbuf {
            header: e.header,
            payload,
        }
    }

    /// Walks the ready sub-buffers of CPU `idx` into `self.entries` (and
    /// `self.corrupt`), cleared first unless `append`. Losses are accounted
    /// only when the range is handed back ([`Channel::account`]), so a
    /// range delivered again is not counted twice.
    fn walk(&mut self, idx: usize, append: bool, limit: Option<u64>) -> Walk {
        if !append {
            self.scratch.clear();
            self.entries.clear();
            self.corrupt.clear();
        }
        let corrupt_from = self.corrupt.len();
        let mode = self.info.mode;
        let b = &mut self.cpus[idx];
        let mut plan = walker::plan(b.next, b.produced, self.geo.n_subbufs, mode);
        if let Some(n) = limit {
            plan.end = plan.end.min(plan.start + n);
        }
        let mut lapped_seqs = Vec::new();
        let mut end = plan.end;
        for s in plan.start..plan.end {
            if self.strict && self.corrupt.len() > corrupt_from {
                // Strict: stop after the first corrupt sub-buffer.
                end = s;
                break;
            }
            match mode {
                Mode::NoOverwrite => match walker::read_stable(&b.region, &self.geo, b.cpu, s) {
                    Ok((header, r)) => self.entries.push(Entry {
                        header,
                        loc: Loc::Map(r),
                    }),
                    Err(reason) => self.corrupt.push(CorruptSubbuf { seq: s, reason }),
                },
                Mode::Overwrite => {
                    match walker::read_copy(&b.region, &self.geo, b.cpu, s, &mut self.scratch) {
                        Copied::Ok(header, r) => self.entries.push(Entry {
                            header,
                            loc: Loc::Copy(r),
                        }),
                        Copied::Lapped => lapped_seqs.push(s),
                        Copied::Corrupt(reason) => {
                            self.corrupt.push(CorruptSubbuf { seq: s, reason })
                        }
                    }
                }
            }
        }
        let from = b.next;
        b.next = end.max(b.next);
        if self.strict {
            if let Some(c) = self.corrupt.get(corrupt_from) {
                self.deferred.get_or_insert(Error::CorruptHeader {
                    cpu: b.cpu,
                    seq: c.seq,
                    reason: c.reason,
                });
            }
        }
        Walk {
            from,
            start: plan.start,
            end: b.next,
            lapped_seqs,
            corrupt: corrupt_from..self.corrupt.len(),
        }
    }

    /// Adds the losses of `w` below `to` (the part handed back) to CPU `idx`.
    fn account(&mut self, idx: usize, w: &Walk, to: u64) {
        let lapped = to.min(w.start).saturating_sub(w.from)
            + w.lapped_seqs.iter().filter(|s| **s < to).count() as u64;
        let corrupt = self.corrupt[w.corrupt.clone()]
            .iter()
            .filter(|c| c.seq < to)
            .count() as u64;
        let l = &mut self.cpus[idx].loss;
        l.subbufs_lapped += lapped;
        l.subbufs_corrupt += corrupt;
    }

    /// Takes every finished sub-buffer of `cpu` at once (one `GET_CURSOR`);
    /// dropping the batch hands them all back (one `PUT_CONSUMED`).
    pub fn batch(&mut self, cpu: u32) -> Result<Batch<'_>> {
        self.acquire(cpu)?;
        Ok(Batch {
            chan: self,
            done: false,
        })
    }

    /// The borrow-free form of [`Channel::batch`], for bindings (the C API):
    /// takes every finished sub-buffer of `cpu` and keeps them as the
    /// channel's one outstanding acquisition until
    /// [`Channel::release_acquired`]. Views come from
    /// [`Channel::acquired_subbuf`]; the borrow checker ends them before
    /// the release. An acquisition still outstanding is released in full
    /// first. Dropping the channel with an acquisition outstanding hands
    /// nothing back: the next consumer gets those sub-buffers again.
    pub fn acquire(&mut self, cpu: u32) -> Result<Acquired> {
        self.release_acquired(None)?;
        self.take_deferred()?;
        let idx = self.idx(cpu)?;
        self.sync(idx)?;
        let walk = self.walk(idx, false, None);
        let a = Acquired {
            idx,
            cpu,
            seqs: walk.from..walk.end,
            len: self.entries.len(),
            lapped: walk.lapped(),
            corrupt: walk.corrupt.len() as u64,
            walk,
        };
        self.acquired = Some(a.clone());
        Ok(a)
    }

    /// The `i`-th delivered sub-buffer of the outstanding acquisition.
    pub fn acquired_subbuf(&self, i: usize) -> Option<Subbuf<'_>> {
        let a = self.acquired.as_ref()?;
        self.entries.get(i).map(|e| self.view(a.idx, e))
    }

    /// Ends the outstanding acquisition (if any): hands back its sub-buffers
    /// before `until` (`None`: all of them, one `PUT_CONSUMED`); the rest are
    /// delivered again by the next acquisition.
    pub fn release_acquired(&mut self, until: Option<u64>) -> Result<()> {
        let Some(a) = self.acquired.take() else {
            return Ok(());
        };
        let to = until.map_or(a.seqs.end, |s| s.clamp(a.seqs.start, a.seqs.end));
        if to < a.seqs.end {
            self.cpus[a.idx].next = to;
        }
        self.account(a.idx, &a.walk, to);
        self.entries.clear();
        self.scratch.clear();
        self.release(a.idx, to)
    }

    /// Takes the next finished sub-buffer of `cpu`, if any. Reads the cursor
    /// only when the previous one is exhausted; the guard hands the
    /// sub-buffer back when dropped (one `PUT_CONSUMED` each: prefer
    /// [`Channel::batch`] for throughput).
    pub fn next(&mut self, cpu: u32) -> Result<Option<SubbufGuard<'_>>> {
        self.take_deferred()?;
        let idx = self.idx(cpu)?;
        self.next_idx(idx)
    }

    /// [`Channel::next`] over all CPUs, round-robin.
    pub fn next_any(&mut self) -> Result<Option<SubbufGuard<'_>>> {
        self.take_deferred()?;
        let n = self.cpus.len();
        for k in 0..n {
            let idx = (self.rr + k) % n;
            if self.has_ready(idx)? {
                self.rr = (idx + 1) % n;
                return self.next_idx(idx);
            }
        }
        Ok(None)
    }

    fn has_ready(&mut self, idx: usize) -> Result<bool> {
        let b = &self.cpus[idx];
        if b.synced && b.next < b.produced {
            return Ok(true);
        }
        self.sync(idx)?;
        let b = &self.cpus[idx];
        Ok(b.next < b.produced)
    }

    fn next_idx(&mut self, idx: usize) -> Result<Option<SubbufGuard<'_>>> {
        self.release_acquired(None)?;
        loop {
            if !self.has_ready(idx)? {
                return Ok(None);
            }
            // Walk exactly one sub-buffer (after any lapped gap).
            let w = self.walk(idx, false, Some(1));
            // A guard always hands back through its own sub-buffer.
            self.account(idx, &w, w.end);
            if let Some(entry) = self.entries.pop() {
                return Ok(Some(SubbufGuard {
                    chan: self,
                    idx,
                    entry,
                    done: false,
                }));
            }
            // Lapped or corrupt: hand it back and look further.
            let next = self.cpus[idx].next;
            self.release(idx, next)?;
        }
    }

    /// Drains every CPU once: one batch per CPU (one `GET_CURSOR` and at
    /// most one `PUT_CONSUMED` per CPU), calling `f` on each sub-buffer.
    pub fn drain<F: FnMut(Subbuf<'_>)>(&mut self, mut f: F) -> Result<DrainStats> {
        let mut st = DrainStats::default();
        for cpu in self.cpus() {
            let b = self.batch(cpu)?;
            for sb in b.iter() {
                st.subbufs += 1;
                st.bytes += sb.payload().len() as u64;
                f(sb);
            }
            st.lapped += b.lapped();
            st.corrupt += b.corrupt().len() as u64;
            b.release()?;
        }
        Ok(st)
    }

    /// Drains every CPU once and calls `f` on each record, merged across
    /// CPUs by timestamp (ties: lower CPU first). Order holds within one
    /// call; records that become visible later may carry older timestamps
    /// (a CPU's partial sub-buffer is invisible until flushed).
    pub fn drain_merged<F: FnMut(u32, Record<'_>)>(&mut self, mut f: F) -> Result<DrainStats> {
        self.release_acquired(None)?;
        self.take_deferred()?;
        self.scratch.clear();
        self.entries.clear();
        self.corrupt.clear();
        let mut st = DrainStats::default();
        // Per CPU: range of entries in self.entries, and the seq range.
        let mut spans: Vec<(usize, Range<usize>, Range<u64>)> = Vec::new();
        for idx in 0..self.cpus.len() {
            self.sync(idx)?;
            let first = self.entries.len();
            let w = self.walk(idx, true, None);
            st.lapped += w.lapped();
            st.corrupt += w.corrupt.len() as u64;
            self.account(idx, &w, w.end);
            spans.push((idx, first..self.entries.len(), w.from..w.end));
        }
        {
            let this = &*self;
            let mut iters: Vec<(u32, MergeIter<'_>)> = spans
                .iter()
                .map(|(idx, er, _)| {
                    let views: Vec<Subbuf<'_>> = this.entries[er.clone()]
                        .iter()
                        .map(|e| this.view(*idx, e))
                        .collect();
                    (this.cpus[*idx].cpu, MergeIter::new(views))
                })
                .collect();
            for (_, it) in &iters {
                for v in &it.views {
                    st.subbufs += 1;
                    st.bytes += v.payload().len() as u64;
                }
            }
            loop {
                let mut best: Option<(u64, usize)> = None;
                for (i, (_, it)) in iters.iter_mut().enumerate() {
                    if let Some(r) = it.peek() {
                        if best.map_or(true, |(ts, _)| r.ts_ns < ts) {
                            best = Some((r.ts_ns, i));
                        }
                    }
                }
                let Some((_, i)) = best else { break };
                let (cpu, it) = &mut iters[i];
                if let Some(rec) = it.take() {
                    f(*cpu, rec);
                }
            }
            for (_, it) in iters {
                st.corrupt_records += it.corrupt;
            }
        }
        for (idx, _, seqs) in spans {
            self.release(idx, seqs.end)?;
        }
        Ok(st)
    }

    /// Waits until some CPU has data, up to the builder's poll timeout.
    /// Returns `false` on timeout (or a signal). One wait covers every CPU.
    pub fn wait(&mut self) -> Result<bool> {
        self.wait_timeout(self.timeout)
    }

    /// Waits until some CPU has data or `timeout` passes (`None`: forever).
    /// `true` may be spurious (relay wakes readers when it counts a
    /// sub-buffer, a moment before the module publishes it); callers loop.
    pub fn wait_timeout(&mut self, timeout: Option<Duration>) -> Result<bool> {
        self.take_deferred()?;
        if self.wake_registered {
            // Backend with a wake fd (sim): clear it, then check cursors, so
            // a publication after the check is seen by the poll. Always a
            // fresh cursor: another handle may have consumed what this
            // one's cache still calls ready.
            self.ctl.clear_wake();
            for idx in 0..self.cpus.len() {
                self.sync(idx)?;
                let b = &self.cpus[idx];
                if b.next < b.produced {
                    return Ok(true);
                }
            }
        }
        self.events.clear();
        match self.poller.wait(&mut self.events, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(false),
            Err(e) => {
                return Err(Error::Poll {
                    cpu: None,
                    source: e,
                })
            }
        }
        let mut any = false;
        for ev in self.events.iter() {
            any = true;
            // relay's poll reports EPOLLERR (and polling also marks it
            // readable) once relay_close() finalized the buffer: without
            // this the level-triggered wait would return at once forever.
            // The mapping stays valid (our open file holds relay's
            // reference); data still in it can be drained.
            if ev.key != WAKE_KEY && ev.is_err() == Some(true) {
                let cpu = self.cpus.get(ev.key).map_or(u32::MAX, |b| b.cpu);
                return Err(Error::ChannelClosed { cpu });
            }
        }
        Ok(any)
    }

    /// Closes every CPU's current sub-buffer (on its own CPU, safe while
    /// writers run) so partial data becomes visible. A CPU with nothing
    /// written is left alone.
    pub fn flush(&self) -> Result<()> {
        self.ctl
            .flush(None)
            .map_err(|e| Error::ioctl(ControlOp::Flush, None, e))
    }

    /// [`Channel::flush`] for one CPU.
    pub fn flush_cpu(&self, cpu: u32) -> Result<()> {
        self.ctl
            .flush(Some(cpu))
            .map_err(|e| Error::ioctl(ControlOp::Flush, Some(cpu), e))
    }

    /// `true` when every mapped CPU has `produced == consumed` (one
    /// `GET_CURSOR` per CPU).
    pub fn is_drained(&mut self) -> Result<bool> {
        self.take_deferred()?;
        let mut all = true;
        for idx in 0..self.cpus.len() {
            self.sync(idx)?;
            let b = &self.cpus[idx];
            all &= b.produced == b.released;
        }
        Ok(all)
    }

    /// Drains everything and stops: flushes every CPU, then drains until
    /// `produced == consumed` on every CPU. Stop the writers first: with a
    /// writer still running this returns only when a pass finds every CPU
    /// empty.
    pub fn drain_and_stop<F: FnMut(Subbuf<'_>)>(&mut self, mut f: F) -> Result<DrainStats> {
        self.flush()?;
        let mut total = DrainStats::default();
        loop {
            total += self.drain(&mut f)?;
            if self.is_drained()? {
                return Ok(total);
            }
        }
    }

    /// `RESET`: empties every buffer and restarts counters (EBUSY while a
    /// writer is registered). The channel resynchronises its cursors.
    pub fn reset(&mut self) -> Result<()> {
        self.ctl
            .reset()
            .map_err(|e| Error::ioctl(ControlOp::Reset, None, e))?;
        for b in &mut self.cpus {
            b.synced = false;
        }
        Ok(())
    }

    /// Losses summed over the mapped CPUs.
    pub fn loss(&self) -> Loss {
        let mut l = Loss::default();
        for b in &self.cpus {
            l += b.loss;
        }
        l
    }

    /// Losses per mapped CPU.
    pub fn loss_by_cpu(&self) -> Vec<(u32, Loss)> {
        self.cpus.iter().map(|b| (b.cpu, b.loss)).collect()
    }

    /// CPUs that have a buffer now but are not mapped by this channel (they
    /// came online after open; relay creates their buffers on hotplug).
    /// One `GET_INFO`.
    pub fn pending_cpus(&self) -> Result<Vec<u32>> {
        let raw = self
            .ctl
            .info()
            .map_err(|e| Error::ioctl(ControlOp::GetInfo, None, e))?;
        let info = ChannelInfo::from_raw(&self.dir, &raw)?;
        Ok(self.wanted_cpus(&info.cpus))
    }

    /// Maps the CPUs of [`Channel::pending_cpus`] and adds them to the wait
    /// set; returns them.
    pub fn refresh_cpus(&mut self) -> Result<Vec<u32>> {
        let raw = self
            .ctl
            .info()
            .map_err(|e| Error::ioctl(ControlOp::GetInfo, None, e))?;
        let info = ChannelInfo::from_raw(&self.dir, &raw)?;
        let new = self.wanted_cpus(&info.cpus);
        for cpu in &new {
            self.map_cpu(*cpu)?;
        }
        self.info.cpus = info.cpus;
        Ok(new)
    }
}

/// Records of one CPU's views in order, with one record of look-ahead.
struct MergeIter<'a> {
    views: Vec<Subbuf<'a>>,
    at: usize,
    cur: Option<Records<'a>>,
    peeked: Option<Record<'a>>,
    corrupt: u64,
}

impl<'a> MergeIter<'a> {
    fn new(views: Vec<Subbuf<'a>>) -> Self {
        MergeIter {
            views,
            at: 0,
            cur: None,
            peeked: None,
            corrupt: 0,
        }
    }

    fn advance(&mut self) -> Option<Record<'a>> {
        loop {
            if let Some(rs) = &mut self.cur {
                match rs.next() {
                    Some(Ok(r)) => return Some(r),
                    Some(Err(_)) => {
                        // Corrupt framing: skip the rest of this payload.
                        self.corrupt += 1;
                        self.cur = None;
                    }
                    None => self.cur = None,
                }
            }
            let v = self.views.get(self.at)?;
            self.at += 1;
            self.cur = Some(v.records());
        }
    }

    fn peek(&mut self) -> Option<&Record<'a>> {
        if self.peeked.is_none() {
            self.peeked = self.advance();
        }
        self.peeked.as_ref()
    }

    fn take(&mut self) -> Option<Record<'a>> {
        self.peek();
        self.peeked.take()
    }
}

impl AsFd for Channel {
    /// The poller's fd: readable when [`Channel::wait`] would return
    /// `true`, for integration into another event loop.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.poller.as_fd()
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        for b in &self.cpus {
            if b.registered {
                let _ = self.poller.delete(&b.file);
            }
        }
        if self.wake_registered {
            if let Some(fd) = self.ctl.wake_fd() {
                let _ = self.poller.delete(fd);
            }
        }
    }
}
