//! File contents as shared bytes: owned (what a browser fetched, a test built) or a memory map.
//! Native builds read files here and nowhere else; with the `mmap` feature large files are
//! memory-mapped instead of read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Immutable bytes, cheap to clone. Each distinct buffer has its own identity (see
/// [`Bytes::id`]), which the loaded-model cache uses to recognise the same file.
#[derive(Clone)]
pub struct Bytes {
    data: Arc<dyn AsRef<[u8]> + Send + Sync>,
    id: u64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Bytes {
    /// Bytes backed by anything that derefs to a byte slice (a `Vec`, a memory map, ...).
    pub fn new(data: impl AsRef<[u8]> + Send + Sync + 'static) -> Bytes {
        Bytes {
            data: Arc::new(data),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Identity of the underlying buffer: equal for clones, distinct for separately created
    /// buffers even when their contents are equal.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn as_slice(&self) -> &[u8] {
        (*self.data).as_ref()
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Bytes {
        Bytes::new(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Bytes {
        Bytes::new(v.to_vec())
    }
}

impl From<String> for Bytes {
    fn from(s: String) -> Bytes {
        Bytes::new(s.into_bytes())
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.len())
    }
}

/// The contents of a regular file (memory-mapped with the `mmap` feature). A path that is not
/// a regular file (a directory, a FIFO, a device) is refused before it is opened for reading,
/// so it can never block.
#[cfg(not(target_arch = "wasm32"))]
pub fn read(path: &std::path::Path) -> crate::Result<Bytes> {
    use crate::error::Error;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    #[cfg(feature = "mmap")]
    {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only; a file truncated underneath us is outside our contract,
        // like for every mmap-based loader.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Ok(Bytes::new(map))
    }
    #[cfg(not(feature = "mmap"))]
    {
        Ok(Bytes::new(
            std::fs::read(path).map_err(|e| Error::io(path, e))?,
        ))
    }
}
