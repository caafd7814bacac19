//! The kernel backend: ioctls on `/dev/relaymap`, on a channel fd (or a
//! debugfs `control` file) and on per-CPU consumer fds.
//!
//! Every struct is passed with `size` = the Rust `sizeof` (the ABI's
//! extensible-struct rule); the command numbers come from [`crate::abi`].

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Backend, ConsumerBackend};
use crate::abi;
use crate::error::{ControlOp, Error, Result};
use crate::types::{Cursor, Stats};

fn size_u32<T>() -> u32 {
    std::mem::size_of::<T>() as u32
}

/// `ioctl(fd, cmd, arg)` with a pointer argument (or none).
///
/// # Safety
/// `arg` must be null (for commands without an argument) or point to a
/// valid, writable `T` whose `size` field (if any) says how many bytes the
/// kernel may read and write; every user pointer inside it must be valid
/// for what it describes.
unsafe fn ioctl_raw<T>(fd: RawFd, cmd: u32, arg: *mut T) -> io::Result<libc::c_int> {
    // SAFETY: the caller's contract; the fd is only used for this call.
    let r = unsafe { libc::ioctl(fd, cmd as _, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `DEVICE_PATH`, or `$RELAYMAP_DEVICE` when set (for tests).
pub(crate) fn device_path() -> PathBuf {
    std::env::var_os("RELAYMAP_DEVICE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(abi::DEVICE_PATH))
}

/// A hint for EACCES on a file: who owns it and whether we are in its group.
pub(crate) fn permission_hint(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(md) = std::fs::metadata(path) else {
        return "run as root".into();
    };
    let mode = md.mode() & 0o777;
    // With relaymap.ko group=G the node is 0666 and the module itself
    // admits only members of G (and CAP_SYS_ADMIN): name that group.
    if let Some(g) = module_group().filter(|_| path == device_path()) {
        return match group_name(g) {
            Some(name) => format!(
                "the module admits only members of group {name} (relaymap.ko group={g}) and this \
                 user is not in it: `usermod -aG {name} $USER`, then log in again, or run as root"
            ),
            None => format!(
                "the module admits only members of gid {g} (relaymap.ko group={g}), which has no \
                 name here, and this user is not in it: `groupadd -g {g} relaymap`, \
                 `usermod -aG relaymap $USER`, then log in again, or run as root"
            ),
        };
    }
    let gid = md.gid();
    let group = group_name(gid).unwrap_or_else(|| format!("gid {gid}"));
    let in_group = user_groups().contains(&gid);
    if gid == 0 {
        format!(
            "it is owned by root:{group} with mode {mode:o}: load the module with group=relaymap \
             (and the udev rule in kmod/) and add this user to that group, or run as root"
        )
    } else if !in_group {
        format!(
            "it is owned by group {group} (mode {mode:o}) and this user is not in {group}: \
             `usermod -aG {group} $USER`, then log in again"
        )
    } else {
        format!("mode {mode:o} of group {group} does not allow read-write: check the module's mode= parameter")
    }
}

/// The gid of relaymap.ko's `group=` parameter, when it is set (>= 0).
fn module_group() -> Option<u32> {
    let s = std::fs::read_to_string("/sys/module/relaymap/parameters/group").ok()?;
    s.trim()
        .parse::<i64>()
        .ok()
        .and_then(|g| u32::try_from(g).ok())
}

fn group_name(gid: u32) -> Option<String> {
    let s = std::fs::read_to_string("/etc/group").ok()?;
    s.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _ = f.next();
        (f.next()?.parse::<u32>().ok()? == gid).then(|| name.to_string())
    })
}

fn user_groups() -> Vec<u32> {
    // SAFETY: getgroups(0, NULL) only returns the count.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let mut v = vec![0 as libc::gid_t; n.max(0) as usize];
    // SAFETY: `v` has room for `n` gids.
    let n = unsafe { libc::getgroups(v.len() as libc::c_int, v.as_mut_ptr()) };
    v.truncate(n.max(0) as usize);
    // SAFETY: getegid has no preconditions.
    v.push(unsafe { libc::getegid() });
    v
}

/// The active lockdown level, if the kernel is locked down.
pub(crate) fn lockdown_level() -> Option<String> {
    let s = std::fs::read_to_string("/sys/kernel/security/lockdown").ok()?;
    let level = s.split_whitespace().find(|w| w.starts_with('['))?;
    let level = level.trim_matches(|c| c == '[' || c == ']');
    (level != "none").then(|| level.to_string())
}

fn debugfs_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split_whitespace().nth(2) == Some("debugfs"))
        })
        .unwrap_or(true)
}

fn open_device() -> Result<File> {
    let path = device_path();
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound
                if path == Path::new(abi::DEVICE_PATH)
                    && Path::new("/sys/module/relaymap").exists()
                    && !Path::new("/sys/class/misc/relaymap").exists() =>
            {
                // A relaymap module without the misc device: ABI 1.
                Error::AbiMismatch {
                    kernel: 1,
                    sdk: abi::RELAYMAP_ABI_VERSION,
                }
            }
            io::ErrorKind::NotFound => Error::ModuleNotLoaded { path: path.clone() },
            io::ErrorKind::PermissionDenied => Error::PermissionDenied {
                hint: permission_hint(&path),
                path: path.clone(),
                source: e,
            },
            _ => Error::Open {
                path: path.clone(),
                source: e,
            },
        })
}

fn check_version(dev: &File) -> Result<()> {
    // SAFETY: GET_VERSION takes no argument.
    let v = unsafe {
        ioctl_raw::<u8>(
            dev.as_raw_fd(),
            abi::RELAYMAP_IOC_GET_VERSION,
            std::ptr::null_mut(),
        )
    }
    .map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOTTY) {
            return Error::NotAChannel {
                path: device_path(),
                reason:
                    "it does not answer RELAYMAP_IOC_GET_VERSION (ENOTTY): not the relaymap device"
                        .into(),
            };
        }
        Error::ioctl(ControlOp::GetVersion, None, e)
    })?;
    if v as u32 != abi::RELAYMAP_ABI_VERSION {
        return Err(Error::AbiMismatch {
            kernel: v as u32,
            sdk: abi::RELAYMAP_ABI_VERSION,
        });
    }
    Ok(())
}

/// `GET_VERSION` on `/dev/relaymap`: the module's ABI version.
pub fn device_abi_version() -> Result<u32> {
    let dev = open_device()?;
    // SAFETY: GET_VERSION takes no argument.
    let v = unsafe {
        ioctl_raw::<u8>(
            dev.as_raw_fd(),
            abi::RELAYMAP_IOC_GET_VERSION,
            std::ptr::null_mut(),
        )
    }
    .map_err(|e| Error::ioctl(ControlOp::GetVersion, None, e))?;
    Ok(v as u32)
}

fn list_on(dev: &File) -> Result<Vec<String>> {
    let name_max = abi::RELAYMAP_NAME_MAX as usize;
    let mut cap = 0u32;
    loop {
        let mut names = vec![0u8; cap as usize * name_max];
        let mut l = abi::relaymap_list {
            size: size_u32::<abi::relaymap_list>(),
            nr: cap,
            names: if cap == 0 {
                0
            } else {
                names.as_mut_ptr() as u64
            },
        };
        // SAFETY: `l` is a valid relaymap_list; `names` has room for `nr`
        // names of RELAYMAP_NAME_MAX bytes (or is 0 to count).
        unsafe { ioctl_raw(dev.as_raw_fd(), abi::RELAYMAP_IOC_LIST, &mut l) }
            .map_err(|e| Error::ioctl(ControlOp::List, None, e))?;
        if l.nr <= cap {
            return Ok(names
                .chunks(name_max)
                .take(l.nr as usize)
                .map(|c| {
                    let n = c.iter().position(|b| *b == 0).unwrap_or(c.len());
                    String::from_utf8_lossy(&c[..n]).into_owned()
                })
                .collect());
        }
        // Channels were created between the two calls: ask again, bigger.
        cap = l.nr;
    }
}

/// `LIST` on `/dev/relaymap`: the channels' names, in creation order.
pub fn list_channels() -> Result<Vec<String>> {
    list_on(&open_device()?)
}

/// The ioctl backend: a channel fd from `OPEN_CHANNEL`, or a debugfs
/// `control` file.
#[derive(Debug)]
pub struct IoctlBackend {
    fd: OwnedFd,
    ops: Arc<AtomicU64>,
    nr_cpu_ids: u32,
}

impl IoctlBackend {
    /// `OPEN_CHANNEL(name)` on `/dev/relaymap` (after `GET_VERSION`).
    pub fn open(name: &str) -> Result<IoctlBackend> {
        let dev = open_device()?;
        check_version(&dev)?;
        let bytes = name.as_bytes();
        if bytes.len() >= abi::RELAYMAP_NAME_MAX as usize || bytes.contains(&0) {
            return Err(Error::NoSuchChannel {
                name: name.into(),
                available: list_on(&dev).unwrap_or_default(),
            });
        }
        let mut o = abi::relaymap_open_channel {
            size: size_u32::<abi::relaymap_open_channel>(),
            ..Default::default()
        };
        for (d, s) in o.name.iter_mut().zip(bytes) {
            *d = *s as core::ffi::c_char;
        }
        // SAFETY: `o` is a valid relaymap_open_channel with a NUL-terminated
        // name (the array was zeroed and the name is shorter than it).
        let fd = unsafe { ioctl_raw(dev.as_raw_fd(), abi::RELAYMAP_IOC_OPEN_CHANNEL, &mut o) }
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ENOENT) {
                    Error::NoSuchChannel {
                        name: name.into(),
                        available: list_on(&dev).unwrap_or_default(),
                    }
                } else {
                    Error::ioctl(ControlOp::OpenChannel, None, e)
                }
            })?;
        // SAFETY: OPEN_CHANNEL returned a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Self::from_fd(fd, Path::new(name))
    }

    /// A debugfs channel directory (`/sys/kernel/debug/relaymap/<name>`):
    /// its `control` file answers the channel-fd ioctls.
    pub fn open_path(dir: &Path) -> Result<IoctlBackend> {
        let control = dir.join("control");
        let in_debugfs = dir.starts_with("/sys/kernel/debug");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&control)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound if in_debugfs && !debugfs_mounted() => {
                    Error::DebugfsNotMounted {
                        path: dir.to_path_buf(),
                    }
                }
                io::ErrorKind::NotFound => Error::NotAChannel {
                    path: dir.to_path_buf(),
                    reason: if dir.is_dir() {
                        "no control file".into()
                    } else {
                        "no such directory".into()
                    },
                },
                _ if e.raw_os_error() == Some(libc::EPERM) && lockdown_level().is_some() => {
                    Error::Lockdown {
                        path: control.clone(),
                        level: lockdown_level().unwrap_or_default(),
                        source: e,
                    }
                }
                io::ErrorKind::PermissionDenied => Error::PermissionDenied {
                    hint: if in_debugfs {
                        "debugfs is root-only: run as root, or open the channel by name \
                         through /dev/relaymap (Channel::open(name)) as a member of its group"
                            .into()
                    } else {
                        permission_hint(&control)
                    },
                    path: control.clone(),
                    source: e,
                },
                _ => Error::Open {
                    path: control.clone(),
                    source: e,
                },
            })?;
        Self::from_fd(f.into(), dir)
    }

    fn from_fd(fd: OwnedFd, label: &Path) -> Result<IoctlBackend> {
        let mut b = IoctlBackend {
            fd,
            ops: Arc::new(AtomicU64::new(0)),
            nr_cpu_ids: 0,
        };
        let info = b.info().map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOTTY) {
                Error::NotAChannel {
                    path: label.to_path_buf(),
                    reason: "the control file does not answer relaymap ABI 2 ioctls (ENOTTY): \
                             an ABI 1 module? ABI 1 is not supported"
                        .into(),
                }
            } else {
                Error::ioctl(ControlOp::GetInfo, None, e)
            }
        })?;
        b.nr_cpu_ids = info.nr_cpu_ids.min(abi::RELAYMAP_MAX_CPUS);
        Ok(b)
    }

    fn count(&self) {
        self.ops.fetch_add(1, Ordering::Relaxed);
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn dup_consumer(fd: RawFd, cpu: u32, ops: &Arc<AtomicU64>) -> IoctlConsumer {
    // SAFETY: OPEN_CONSUMER returned a new fd that nothing else owns.
    let file = unsafe { File::from_raw_fd(fd) };
    IoctlConsumer {
        file,
        cpu,
        ops: AtomicU64::new(0),
        chan_ops: ops.clone(),
    }
}

impl Backend for IoctlBackend {
    fn info(&self) -> io::Result<abi::relaymap_info> {
        self.count();
        let mut info = abi::relaymap_info {
            size: size_u32::<abi::relaymap_info>(),
            ..Default::default()
        };
        // SAFETY: a valid relaymap_info sized by `size`.
        unsafe { ioctl_raw(self.raw(), abi::RELAYMAP_IOC_GET_INFO, &mut info) }?;
        Ok(info)
    }

    fn cursor(&self, cpu: u32) -> io::Result<Cursor> {
        self.count();
        let mut c = abi::relaymap_cursor {
            size: size_u32::<abi::relaymap_cursor>(),
            cpu,
            ..Default::default()
        };
        // SAFETY: a valid relaymap_cursor sized by `size`.
        unsafe { ioctl_raw(self.raw(), abi::RELAYMAP_IOC_GET_CURSOR, &mut c) }?;
        Ok(Cursor::from_raw(&c))
    }

    fn cursors(&self) -> io::Result<Vec<Cursor>> {
        self.count();
        let n = self.nr_cpu_ids.max(1);
        let mut arr = vec![abi::relaymap_cursor::default(); n as usize];
        let mut cs = abi::relaymap_cursors {
            size: size_u32::<abi::relaymap_cursors>(),
            first_cpu: 0,
            nr: n,
            cursor_size: size_u32::<abi::relaymap_cursor>(),
            cursors: arr.as_mut_ptr() as u64,
        };
        // SAFETY: `cs` is valid and `cursors` points to `nr` elements of
        // `cursor_size` bytes each, owned by `arr` for the whole call.
        unsafe { ioctl_raw(self.raw(), abi::RELAYMAP_IOC_GET_CURSORS, &mut cs) }?;
        Ok(arr
            .iter()
            .take(cs.nr.min(n) as usize)
            .filter(|c| c.flags & abi::RELAYMAP_CURSOR_NO_BUFFER == 0)
            .map(Cursor::from_raw)
            .collect())
    }

    fn stats(&self, cpu: Option<u32>) -> io::Result<Stats> {
        self.count();
        let mut s = abi::relaymap_stats {
            size: size_u32::<abi::relaymap_stats>(),
            cpu: cpu.map_or(abi::RELAYMAP_ALL_CPUS, |c| c as i32),
            ..Default::default()
        };
        // SAFETY: a valid relaymap_stats sized by `size`.
        unsafe { ioctl_raw(self.raw(), abi::RELAYMAP_IOC_GET_STATS, &mut s) }?;
        Ok(s.into())
    }

    fn flush(&self, cpu: Option<u32>) -> io::Result<()> {
        self.count();
        let mut f = abi::relaymap_flush {
            size: size_u32::<abi::relaymap_flush>(),
            cpu: cpu.map_or(abi::RELAYMAP_ALL_CPUS, |c| c as i32),
        };
        // SAFETY: a valid relaymap_flush sized by `size`.
        unsafe { ioctl_raw(self.raw(), abi::RELAYMAP_IOC_FLUSH, &mut f) }?;
        Ok(())
    }

    fn reset(&self) -> io::Result<()> {
        self.count();
        // SAFETY: RESET takes no argument.
        unsafe { ioctl_raw::<u8>(self.raw(), abi::RELAYMAP_IOC_RESET, std::ptr::null_mut()) }?;
        Ok(())
    }

    fn open_consumer(&self, cpu: u32) -> io::Result<Box<dyn ConsumerBackend>> {
        self.count();
        let mut o = abi::relaymap_open_consumer {
            size: size_u32::<abi::relaymap_open_consumer>(),
            cpu: cpu as i32,
            ..Default::default()
        };
        // SAFETY: a valid relaymap_open_consumer for one CPU (fds = 0).
        let fd = unsafe { ioctl_raw(self.raw(), abi::RELAYMAP_IOC_OPEN_CONSUMER, &mut o) }?;
        Ok(Box::new(dup_consumer(fd, cpu, &self.ops)))
    }

    fn open_consumers(&self) -> io::Result<Vec<Box<dyn ConsumerBackend>>> {
        self.count();
        let n = self.nr_cpu_ids.max(1);
        let mut fds = vec![-1i32; n as usize];
        let mut o = abi::relaymap_open_consumer {
            size: size_u32::<abi::relaymap_open_consumer>(),
            cpu: abi::RELAYMAP_ALL_CPUS,
            nr_fds: n,
            fds: fds.as_mut_ptr() as u64,
            ..Default::default()
        };
        // SAFETY: `fds` has room for `nr_fds` s32 and lives for the call.
        unsafe { ioctl_raw(self.raw(), abi::RELAYMAP_IOC_OPEN_CONSUMER, &mut o) }?;
        Ok(fds
            .iter()
            .enumerate()
            .filter(|(_, fd)| **fd >= 0)
            .map(|(cpu, fd)| {
                Box::new(dup_consumer(*fd, cpu as u32, &self.ops)) as Box<dyn ConsumerBackend>
            })
            .collect())
    }

    fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// One CPU's consumer fd (`[relaymap-consumer]`).
#[derive(Debug)]
struct IoctlConsumer {
    file: File,
    cpu: u32,
    ops: AtomicU64,
    chan_ops: Arc<AtomicU64>,
}

impl IoctlConsumer {
    fn count(&self) {
        self.ops.fetch_add(1, Ordering::Relaxed);
        self.chan_ops.fetch_add(1, Ordering::Relaxed);
    }
}

impl ConsumerBackend for IoctlConsumer {
    fn cpu(&self) -> u32 {
        self.cpu
    }
    fn map_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
    fn poll_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
    fn cursor(&self) -> io::Result<Cursor> {
        self.count();
        let mut c = abi::relaymap_cursor {
            size: size_u32::<abi::relaymap_cursor>(),
            cpu: self.cpu,
            ..Default::default()
        };
        // SAFETY: a valid relaymap_cursor sized by `size`.
        unsafe { ioctl_raw(self.file.as_raw_fd(), abi::RELAYMAP_IOC_GET_CURSOR, &mut c) }?;
        Ok(Cursor::from_raw(&c))
    }
    fn put_consumed(&self, count: u64) -> io::Result<()> {
        self.count();
        let mut c = abi::relaymap_consume {
            size: size_u32::<abi::relaymap_consume>(),
            reserved: 0,
            count,
        };
        // SAFETY: a valid relaymap_consume sized by `size`.
        unsafe {
            ioctl_raw(
                self.file.as_raw_fd(),
                abi::RELAYMAP_IOC_PUT_CONSUMED,
                &mut c,
            )
        }?;
        Ok(())
    }
    fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }
}
