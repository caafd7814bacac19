//! relaymap-sim: a kernel-free relaymap channel (ABI 2 layout) behind the
//! SDK's [`relaymap::Backend`] traits.
//!
//! A simulated channel is a directory that stands in for the kernel:
//!
//! ```text
//! control          shared state (geometry, cursors, counters), mapped
//! cpu0 .. cpuN-1   the CPU buffers: files of alloc_size bytes, mapped shared
//! cpuN.lock        per-CPU consumer claims (flock: exclusive across processes)
//! wakeN            per-CPU FIFOs: readable when that CPU may have data
//! ```
//!
//! [`SimChannel`] is the producer (the "kernel"): it writes sub-buffer
//! headers and records exactly as the module does (CTF 1.8 packet header,
//! `commit` stored last with release ordering, content ending at the last
//! record's data, packets rounded up to the page), including the hard
//! cases: relay counts and wakes a sub-buffer *before* its header is final,
//! a full buffer drops (counted) or refuses (`try_*`, not counted), writes
//! above `max_data_size` are rejected (counted), overwrite mode laps
//! (counted). [`SimBackend`] is the consumer side: [`open_dir`] gives a
//! [`relaymap::Channel`] over a directory, in this process or another one.
//!
//! ```
//! use relaymap::Mode;
//! use relaymap_sim::{SimChannel, SimGeometry};
//!
//! # fn main() -> relaymap::Result<()> {
//! let sim = SimChannel::create_temp(SimGeometry::default(), Mode::NoOverwrite)?;
//! sim.write_loadgen(0, 0, 64)?;
//! sim.flush(None)?;
//! let ch = sim.open()?; // a relaymap::Channel, like Channel::open("demo")
//! let mut r = ch.reader(0)?;
//! let batch = r.batch()?;
//! assert_eq!(batch.len(), 1);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod backend;
mod producer;
mod shared;

use std::path::Path;

pub use backend::SimBackend;
pub use producer::{Inject, SimChannel, SimGeometry, WriteOutcome};
pub use shared::SIM_MAX_CPUS;

/// Opens the simulated channel in `dir` as a consumer-side
/// [`relaymap::Channel`] (the producer may be another process).
pub fn open_dir(dir: impl AsRef<Path>) -> relaymap::Result<relaymap::Channel> {
    relaymap::Channel::with_backend(Box::new(SimBackend::open(dir.as_ref())?))
}

/// `true` if `dir` holds a simulated channel (its `control` file starts
/// with the simulator's magic).
pub fn is_sim_dir(dir: impl AsRef<Path>) -> bool {
    shared::is_sim_control(&dir.as_ref().join("control"))
}
