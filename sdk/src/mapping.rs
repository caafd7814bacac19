//! The one owner of a per-CPU mapping.

use std::fs::File;
use std::io;

use crate::walker::Region;

/// A whole per-CPU relay file mapped read-only and shared. Private: the
/// mapping is never exposed as a slice; readers go through [`Region`] and
/// the walker, which decides what may be sliced.
#[derive(Debug)]
pub(crate) struct Mapping {
    // memmap2's MmapRaw (not Mmap): a `&[u8]` over the whole buffer would be
    // unsound because the kernel writes to it. It unmaps in Drop.
    raw: memmap2::MmapRaw,
}

impl Mapping {
    /// Maps `len` bytes at offset 0 (relay accepts exactly `alloc_size`),
    /// `PROT_READ`, `MAP_SHARED`, and `MAP_POPULATE` when asked.
    pub fn map(file: &File, len: usize, populate: bool) -> io::Result<Mapping> {
        let mut opts = memmap2::MmapOptions::new();
        opts.len(len);
        if populate {
            opts.populate();
        }
        let raw = opts.map_raw_read_only(file)?;
        if raw.len() != len {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "short mapping"));
        }
        Ok(Mapping { raw })
    }

    pub fn region(&self) -> Region {
        // SAFETY: the mapping is page-aligned, `len` bytes long, and lives as
        // long as `self`; every Region made here is used only while the
        // owning CpuBuf (and so this Mapping) is alive.
        unsafe { Region::new(self.raw.as_ptr(), self.raw.len()) }
    }
}
