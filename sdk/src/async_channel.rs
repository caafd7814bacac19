//! [`AsyncChannel`] (feature `tokio`): await data with tokio's `AsyncFd`.

use std::os::fd::{AsRawFd, RawFd};

use tokio::io::unix::AsyncFd;

use crate::channel::Channel;
use crate::error::{Error, Result};

/// The channel's poller fd, borrowed (the channel owns it and outlives the
/// `AsyncFd`: see the field order of [`AsyncChannel`]).
#[derive(Debug)]
struct PollerFd(RawFd);

impl AsRawFd for PollerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A [`Channel`] whose wait is a future. The channel's level-triggered
/// poller fd is registered with tokio; [`AsyncChannel::readable`] returns
/// when some CPU has data.
///
/// ```no_run
/// # async fn f() -> relaymap::Result<()> {
/// let ch = relaymap::Channel::open("/sys/kernel/debug/relaymap/demo")?;
/// let mut ch = relaymap::AsyncChannel::new(ch)?;
/// loop {
///     ch.readable().await?;
///     ch.get_mut().drain(|sb| println!("cpu {} seq {}", sb.cpu(), sb.seq()))?;
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct AsyncChannel {
    // Dropped first: deregisters the fd from tokio before the channel
    // closes its poller.
    afd: AsyncFd<PollerFd>,
    chan: Channel,
}

impl AsyncChannel {
    /// Registers the channel with the current tokio runtime (needs the IO
    /// driver).
    pub fn new(chan: Channel) -> Result<AsyncChannel> {
        use std::os::fd::AsFd;
        let fd = chan.as_fd().as_raw_fd();
        // SAFETY: `fd` is the channel's poller (an epoll fd) owned by
        // `chan`, which is stored next to the AsyncFd and dropped after it
        // (field order; `into_inner` drops the AsyncFd first), so the fd
        // stays open and the same for the AsyncFd's whole life.
        let afd =
            unsafe { AsyncFd::register_with_interest(PollerFd(fd), tokio::io::Interest::READABLE) }
                .map_err(|e| Error::Poll {
                    cpu: None,
                    source: e.into_parts().1,
                })?;
        Ok(AsyncChannel { afd, chan })
    }

    /// Waits until some CPU has data (may be spurious; drain and loop).
    pub async fn readable(&mut self) -> Result<()> {
        loop {
            let mut guard = self.afd.readable().await.map_err(|e| Error::Poll {
                cpu: None,
                source: e,
            })?;
            // The inner poller is level-triggered: a zero-timeout wait says
            // whether anything is ready now. Only clear tokio's readiness
            // when nothing is, so no wakeup is lost.
            if self.chan.wait_timeout(Some(std::time::Duration::ZERO))? {
                return Ok(());
            }
            guard.clear_ready();
        }
    }

    /// The channel.
    pub fn get_ref(&self) -> &Channel {
        &self.chan
    }
    /// The channel, to drain it.
    pub fn get_mut(&mut self) -> &mut Channel {
        &mut self.chan
    }
    /// Deregisters from tokio and returns the channel.
    pub fn into_inner(self) -> Channel {
        let AsyncChannel { afd, chan } = self;
        drop(afd);
        chan
    }
}
