//! Recognising a simulated channel directory (always compiled, so that a
//! build without the `sim` feature can say what it found).

use std::fs::Metadata;
use std::io::Read;
use std::path::Path;

/// First bytes of a simulated channel's `control` file.
pub(crate) const SIM_MAGIC: [u8; 8] = *b"RMSIMCT1";

/// A kernel control file is a debugfs file of size 0: only a regular file
/// with content that starts with [`SIM_MAGIC`] is a simulated one.
pub(crate) fn is_sim_control(path: &Path, md: &Metadata) -> bool {
    if !md.is_file() || md.len() < SIM_MAGIC.len() as u64 {
        return false;
    }
    let mut m = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut m))
        .map(|_| m == SIM_MAGIC)
        .unwrap_or(false)
}
