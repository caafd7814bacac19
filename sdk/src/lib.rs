//! relaymap: zero-copy consumer for relaymap kernel relay channels.
//!
//! A relaymap channel (kernel module `relaymap.ko`, ABI in
//! `include/relaymap_abi.h`) is one relay buffer per CPU plus a control
//! file, in `/sys/kernel/debug/relaymap/<name>/`. This crate maps each
//! per-CPU buffer read-only, asks the control file which sub-buffers are
//! finished, and hands them out as views into the mapping, without copying;
//! dropping a view (or a [`Batch`]) hands the sub-buffers back.
//!
//! # The whole loop
//!
//! ```no_run
//! use std::time::Duration;
//! use relaymap::Channel;
//!
//! fn main() -> relaymap::Result<()> {
//!     // Open: maps cpu0..cpuN-1, checks the ABI version and geometry.
//!     let mut ch = Channel::builder("/sys/kernel/debug/relaymap/demo")
//!         .populate(true)
//!         .poll_timeout(Some(Duration::from_millis(500)))
//!         .open()?;
//!     let mut bytes = 0u64;
//!     for _ in 0..100 {
//!         // Wait: one poll over every CPU.
//!         if !ch.wait()? {
//!             ch.flush()?; // quiet: make partial sub-buffers visible
//!             continue;
//!         }
//!         // Drain: per CPU, one GET_CURSOR and one PUT_CONSUMED per batch.
//!         for cpu in ch.cpus() {
//!             let batch = ch.batch(cpu)?;
//!             for sb in batch.iter() {
//!                 for rec in sb.records() {
//!                     let rec = rec?; // corrupt framing is an error, not a panic
//!                     bytes += rec.data.len() as u64;
//!                 }
//!             }
//!         } // each batch is handed back when dropped
//!     }
//!     // Stop: flush, drain until produced == consumed everywhere.
//!     ch.drain_and_stop(|sb| bytes += sb.payload().len() as u64)?;
//!     println!("{bytes} bytes, lost {:?}", ch.loss());
//!     Ok(())
//! } // the mappings and poll registrations go with the channel
//! ```
//!
//! # Pieces
//!
//! * [`Channel`] / [`ChannelBuilder`]: open, [`wait`](Channel::wait),
//!   [`batch`](Channel::batch) (zero-copy, one control call each way per
//!   CPU), [`next`](Channel::next) (one sub-buffer, handed back on drop),
//!   [`drain`](Channel::drain), [`drain_merged`](Channel::drain_merged)
//!   (records merged across CPUs by timestamp),
//!   [`flush`](Channel::flush), [`drain_and_stop`](Channel::drain_and_stop),
//!   [`loss`](Channel::loss), [`refresh_cpus`](Channel::refresh_cpus).
//! * [`Records`]: the ABI's record framing.
//! * [`Control`]: the control operations, implemented by the ioctl backend
//!   and, with feature `sim`, by [`sim::SimControl`].
//! * [`abi`]: the Rust mirror of the C header (checked against it by a test).
//!
//! # Features
//!
//! * `sim`: [`sim::SimChannel`], a userspace producer that writes the same
//!   layout into shared files (a directory that mimics a channel); a
//!   [`Channel`] opens it like a kernel channel. For host tests.
//! * `tokio`: [`AsyncChannel`], await data with `AsyncFd`.
//!
//! # Memory safety
//!
//! The kernel writes the mapped buffers. No slice is made over memory the
//! kernel may still write: in no-overwrite mode a sub-buffer reported
//! `produced` by `GET_CURSOR` has a final header (the module stores
//! `commit` with `smp_store_release` before publishing `produced`) and is
//! not written again until this consumer hands it back; in overwrite mode
//! payloads are copied with volatile reads and validated with the header's
//! seqlock (`commit`/`seq` before and after) before they are handed out.
//! The pure walker that makes these decisions runs over plain memory in the
//! unit tests.
//!
//! # Minimum kernel
//!
//! Linux 6.1, with relay's mmap support and `relaymap.ko` loaded. The SDK's
//! integration tests (`tests/vm/rust`, run by `tests/vm/run`) pass against
//! the real module on Debian's 6.1, 6.12 and 7.2 kernels at `-smp 2`. Debugfs must be mounted and usable (under kernel
//! lockdown, debugfs refuses relay files with mmap/ioctl). Root, or file
//! modes changed: `cpuN` are 0400 and `control` 0600.
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod abi;
#[cfg(feature = "tokio")]
mod async_channel;
mod channel;
mod control;
mod error;
mod mapping;
mod records;
#[cfg(feature = "sim")]
pub mod sim;
mod sim_detect;
mod walker;

#[cfg(feature = "tokio")]
pub use async_channel::AsyncChannel;
pub use channel::{
    Acquired, Batch, Channel, ChannelBuilder, ChannelInfo, CorruptSubbuf, DrainStats, Loss, Subbuf,
    SubbufGuard,
};
pub use control::{Control, Cursor, IoctlControl, Stats};
pub use error::{ControlOp, Corruption, Error, Result};
pub use records::{
    encode_record, loadgen_checksum, loadgen_data, loadgen_fill_byte, LoadgenRecord, Record,
    Records,
};
pub use walker::{Mode, SubbufHeader};
