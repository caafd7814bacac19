//! [`ReadySet`]: one `poll(2)` over many readers.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::reader::CpuReader;

fn timeout_ms(t: Option<Duration>) -> libc::c_int {
    match t {
        None => -1,
        // Round up so a short timeout does not become a busy poll.
        Some(d) => d
            .as_nanos()
            .div_ceil(1_000_000)
            .min(libc::c_int::MAX as u128) as libc::c_int,
    }
}

/// Polls `fds`; `Ok(false)` on timeout or EINTR.
fn poll_fds(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<bool> {
    // SAFETY: `fds` is a valid, writable array of `fds.len()` pollfds for
    // the whole call; poll only writes their `revents`.
    let n = unsafe {
        libc::poll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            timeout_ms(timeout),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(n > 0)
}

fn check_revents(p: &libc::pollfd, cpu: u32) -> Result<bool> {
    if p.revents & libc::POLLNVAL != 0 {
        return Err(Error::Poll {
            cpu: Some(cpu),
            source: io::Error::from_raw_os_error(libc::EBADF),
        });
    }
    // relay's poll reports POLLERR once the buffer is finalized (the
    // channel is going away); the mapping stays valid and what is left can
    // still be acquired.
    if p.revents & libc::POLLERR != 0 {
        return Err(Error::ChannelClosed { cpu });
    }
    // The module reports POLLHUP once its creator destroyed the channel and
    // this CPU is drained (produced == consumed). With POLLIN still set
    // there is data to drain first (delivered as ready); POLLHUP alone is
    // the end of the channel for this CPU.
    if p.revents & libc::POLLHUP != 0 && p.revents & libc::POLLIN == 0 {
        return Err(Error::ChannelClosed { cpu });
    }
    Ok(p.revents & libc::POLLIN != 0)
}

pub(crate) fn poll_one(fd: BorrowedFd<'_>, cpu: u32, timeout: Option<Duration>) -> Result<bool> {
    let mut p = [libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    if !poll_fds(&mut p, timeout).map_err(|e| Error::Poll {
        cpu: Some(cpu),
        source: e,
    })? {
        return Ok(false);
    }
    check_revents(&p[0], cpu)
}

/// One `poll(2)` over many readers: [`ReadySet::wait`] returns the indices
/// (in the slice given to [`ReadySet::new`]) of the readers poll reported
/// ready, so a consumer asks only those CPUs for their cursor.
///
/// Readiness is level-triggered, as relay's poll is: a CPU is ready while
/// it has sub-buffers not handed back (so a batch kept with
/// [`crate::Batch::keep`] keeps it ready), and may be ready spuriously a
/// moment before the module publishes a sub-buffer.
///
/// The set holds the readers' fds, not the readers: keep the readers alive
/// (and in the same order) while the set is used; a closed fd shows up as
/// [`Error::Poll`].
#[derive(Debug)]
pub struct ReadySet {
    fds: Vec<libc::pollfd>,
    cpus: Vec<u32>,
}

impl ReadySet {
    /// A set over `readers`, indexed like the slice.
    pub fn new(readers: &[CpuReader]) -> Result<ReadySet> {
        let mut s = ReadySet {
            fds: Vec::with_capacity(readers.len()),
            cpus: Vec::with_capacity(readers.len()),
        };
        for r in readers {
            s.push(r);
        }
        Ok(s)
    }

    /// Adds a reader (e.g. of a CPU that came online); returns its index.
    pub fn push(&mut self, reader: &CpuReader) -> usize {
        self.fds.push(libc::pollfd {
            fd: reader.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        self.cpus.push(reader.cpu());
        self.fds.len() - 1
    }

    /// Readers in the set.
    pub fn len(&self) -> usize {
        self.fds.len()
    }

    /// No reader in the set.
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// Waits up to `timeout` (`None`: forever) and returns the indices of
    /// the ready readers, ascending (empty on timeout or a signal).
    ///
    /// [`Error::ChannelClosed`] says that a reader's CPU reached the end of
    /// the channel: the kernel finalized its buffer, or the channel's
    /// creator destroyed it and that CPU is drained. That reader is then
    /// left out of later waits; drain the others (their data is still
    /// there) and stop.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Vec<usize>> {
        for p in &mut self.fds {
            p.revents = 0;
        }
        if !poll_fds(&mut self.fds, timeout).map_err(|e| Error::Poll {
            cpu: None,
            source: e,
        })? {
            return Ok(Vec::new());
        }
        let mut ready = Vec::new();
        for (i, p) in self.fds.iter_mut().enumerate() {
            match check_revents(p, self.cpus[i]) {
                Ok(true) => ready.push(i),
                Ok(false) => {}
                Err(e @ Error::ChannelClosed { .. }) => {
                    // Reported once: poll(2) ignores a negative fd, so the
                    // next wait does not return at once for this reader
                    // again (what is left on it can still be acquired).
                    p.fd = -1;
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(ready)
    }
}
