//! The one owner of a per-CPU mapping.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::walker::Region;

/// One CPU buffer mapped read-only and shared, exactly `alloc_size` bytes
/// at offset 0 (what the module accepts). Private: the mapping is never
/// exposed as a slice; readers go through [`Region`] and the walker, which
/// decides what may be sliced.
#[derive(Debug)]
pub(crate) struct Mapping {
    // memmap2's MmapRaw (not Mmap): a `&[u8]` over the whole buffer would be
    // unsound because the kernel writes to it. It unmaps in Drop.
    raw: memmap2::MmapRaw,
}

impl Mapping {
    /// Maps `len` bytes of `fd` at offset 0, `PROT_READ`, `MAP_SHARED`, and
    /// `MAP_POPULATE` when asked.
    pub fn map(fd: BorrowedFd<'_>, len: usize, populate: bool) -> io::Result<Mapping> {
        let mut opts = memmap2::MmapOptions::new();
        opts.len(len);
        if populate {
            opts.populate();
        }
        let raw = opts.map_raw_read_only(fd.as_raw_fd())?;
        if raw.len() != len {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "short mapping"));
        }
        Ok(Mapping { raw })
    }

    pub fn region(&self) -> Region {
        // SAFETY: the mapping is page-aligned, `len` bytes long, and lives as
        // long as `self`; every Region made here is used only while the
        // owning CpuReader (and so this Mapping) is alive.
        unsafe { Region::new(self.raw.as_ptr(), self.raw.len()) }
    }
}
