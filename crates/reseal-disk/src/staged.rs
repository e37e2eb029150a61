//! [`StagedDevice`]: a device whose writes are held in memory over a read-only base device.
//!
//! A file system mounted on a `StagedDevice` can be edited freely while the image file stays
//! exactly as it was; reads see the staged state. Afterwards [`Staged::changes`] lists the
//! byte ranges that really differ from the base, which the caller writes where it wants: back
//! into the image through a [`crate::redo_log`], or into a new differencing child.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::block_device::{check_range, BlockDevice};
use crate::error::Result;

/// The unit of staging: 4 KiB, the cluster size of nearly every NTFS volume, so a cluster
/// written is one chunk.
pub const CHUNK: u64 = 4096;

/// A device whose writes go to memory (see the module documentation).
pub struct StagedDevice {
    staged: Staged,
    path: PathBuf,
    len: u64,
    sector_size: u32,
}

/// The staged writes of a [`StagedDevice`] and its base, shared with the device so they can
/// be read after the device itself was handed to (and dropped by) a file system layer.
#[derive(Clone)]
pub struct Staged {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    base: Box<dyn BlockDevice>,
    /// Chunk number -> its whole staged content (shorter only for a last, partial chunk).
    chunks: BTreeMap<u64, Vec<u8>>,
}

/// One run of changed bytes: where it starts on the device and the new content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub offset: u64,
    pub data: Vec<u8>,
}

/// Writes `changes` into `device` and flushes it.
pub fn write_changes(device: &mut dyn BlockDevice, changes: &[Change]) -> Result<()> {
    for change in changes {
        device.write_at(change.offset, &change.data)?;
    }
    device.flush()
}

impl StagedDevice {
    /// Stages writes over `base`, which is only ever read.
    pub fn new(base: Box<dyn BlockDevice>) -> StagedDevice {
        let path = base.path().to_path_buf();
        let len = base.len();
        let sector_size = base.logical_sector_size();
        StagedDevice {
            staged: Staged {
                inner: Arc::new(Mutex::new(Inner {
                    base,
                    chunks: BTreeMap::new(),
                })),
            },
            path,
            len,
            sector_size,
        }
    }

    /// A handle on the staged writes that outlives the device.
    pub fn staged(&self) -> Staged {
        self.staged.clone()
    }
}

impl Staged {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the map consistent (every update is a single
        // insert of a whole chunk), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The number of bytes staged (whole chunks, changed or not).
    pub fn staged_bytes(&self) -> u64 {
        self.lock().chunks.values().map(|c| c.len() as u64).sum()
    }

    /// The staged bytes that differ from the base, as runs in offset order: chunks written
    /// with what they already held are left out, and neighbouring changed chunks are merged.
    pub fn changes(&self) -> Result<Vec<Change>> {
        let mut inner = self.lock();
        let Inner { base, chunks } = &mut *inner;
        let mut changes: Vec<Change> = Vec::new();
        let mut original = vec![0u8; CHUNK as usize];
        for (&number, content) in chunks.iter() {
            let offset = number * CHUNK;
            let original = &mut original[..content.len()];
            base.read_at(offset, original)?;
            if original == content.as_slice() {
                continue;
            }
            match changes.last_mut() {
                Some(last) if last.offset + last.data.len() as u64 == offset => {
                    last.data.extend_from_slice(content)
                }
                _ => changes.push(Change {
                    offset,
                    data: content.clone(),
                }),
            }
        }
        Ok(changes)
    }

    /// Forgets every staged write: reads show the base again.
    pub fn discard(&self) {
        self.lock().chunks.clear();
    }
}

impl Inner {
    fn chunk_len(&self, number: u64) -> usize {
        CHUNK.min(self.base.len() - number * CHUNK) as usize
    }
}

impl BlockDevice for StagedDevice {
    fn path(&self) -> &Path {
        &self.path
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn logical_sector_size(&self) -> u32 {
        self.sector_size
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(&self.path, offset, buf.len(), self.len)?;
        let mut inner = self.staged.lock();
        let end = offset + buf.len() as u64;
        // Fill from the base in one read per gap between staged chunks.
        let mut position = offset;
        let first = offset / CHUNK;
        let last = end.div_ceil(CHUNK);
        let staged: Vec<u64> = inner.chunks.range(first..last).map(|(&n, _)| n).collect();
        for number in staged {
            let chunk_start = number * CHUNK;
            if chunk_start > position {
                let gap = (position - offset) as usize..(chunk_start - offset) as usize;
                inner.base.read_at(position, &mut buf[gap])?;
            }
            let chunk = &inner.chunks[&number];
            let from = position.max(chunk_start);
            let to = end.min(chunk_start + chunk.len() as u64);
            buf[(from - offset) as usize..(to - offset) as usize].copy_from_slice(
                &chunk[(from - chunk_start) as usize..(to - chunk_start) as usize],
            );
            position = to;
        }
        if position < end {
            inner
                .base
                .read_at(position, &mut buf[(position - offset) as usize..])?;
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_range(&self.path, offset, buf.len(), self.len)?;
        let mut inner = self.staged.lock();
        let end = offset + buf.len() as u64;
        let mut position = offset;
        while position < end {
            let number = position / CHUNK;
            let chunk_start = number * CHUNK;
            let chunk_len = inner.chunk_len(number);
            let to = end.min(chunk_start + chunk_len as u64);
            let whole = position == chunk_start && to == chunk_start + chunk_len as u64;
            if !inner.chunks.contains_key(&number) {
                let mut chunk = vec![0u8; chunk_len];
                if !whole {
                    inner.base.read_at(chunk_start, &mut chunk)?;
                }
                inner.chunks.insert(number, chunk);
            }
            let chunk = inner
                .chunks
                .get_mut(&number)
                .expect("the chunk was inserted above");
            chunk[(position - chunk_start) as usize..(to - chunk_start) as usize]
                .copy_from_slice(&buf[(position - offset) as usize..(to - offset) as usize]);
            position = to;
        }
        Ok(())
    }

    /// Nothing to make durable: staged writes live in memory until the caller commits them.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_file::LocalFile;
    use crate::raw::RawDisk;

    fn base(dir: &Path, len: usize) -> (PathBuf, Vec<u8>) {
        let path = dir.join("base.raw");
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        (path, bytes)
    }

    fn open(path: &Path) -> Box<dyn BlockDevice> {
        Box::new(RawDisk::new(Box::new(
            LocalFile::open(path, false).unwrap(),
        )))
    }

    #[test]
    fn writes_are_read_back_and_the_base_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        // Not a multiple of the chunk size: the last chunk is partial.
        let (path, original) = base(dir.path(), 5 * CHUNK as usize + 1000);
        let mut device = StagedDevice::new(open(&path));
        let staged = device.staged();
        let mut model = original.clone();
        let writes: [(u64, usize, u8); 5] = [
            (10, 20, 1),                    // inside one chunk
            (CHUNK - 5, 10, 2),             // across a chunk boundary
            (2 * CHUNK, CHUNK as usize, 3), // exactly one chunk
            (5 * CHUNK + 990, 10, 4),       // the end of the partial last chunk
            (12, 3, 5),                     // over an earlier write
        ];
        for (offset, len, value) in writes {
            let data = vec![value; len];
            device.write_at(offset, &data).unwrap();
            model[offset as usize..offset as usize + len].copy_from_slice(&data);
        }
        // Reads of every alignment see the model.
        for (offset, len) in [(0, model.len()), (CHUNK - 7, 20), (5 * CHUNK, 1000), (3, 1)] {
            let mut buf = vec![0u8; len];
            device.read_at(offset, &mut buf).unwrap();
            assert_eq!(buf, model[offset as usize..offset as usize + len]);
        }
        assert!(device.write_at(model.len() as u64 - 1, &[0, 0]).is_err());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            original,
            "the base is untouched"
        );

        // The changes, applied to the original, give the model; nothing else is listed.
        let changes = staged.changes().unwrap();
        let mut applied = original.clone();
        for change in &changes {
            let at = change.offset as usize;
            applied[at..at + change.data.len()].copy_from_slice(&change.data);
        }
        assert_eq!(applied, model);
        let offsets: Vec<u64> = changes.iter().map(|c| c.offset).collect();
        assert_eq!(
            offsets,
            [0, 5 * CHUNK],
            "chunks 0, 1 and 2 merge into one run"
        );
        assert_eq!(changes[0].data.len(), 3 * CHUNK as usize);

        staged.discard();
        let mut buf = vec![0u8; original.len()];
        device.read_at(0, &mut buf).unwrap();
        assert_eq!(buf, original);
    }

    #[test]
    fn rewriting_what_is_there_is_no_change() {
        let dir = tempfile::tempdir().unwrap();
        let (path, original) = base(dir.path(), 3 * CHUNK as usize);
        let mut device = StagedDevice::new(open(&path));
        device.write_at(100, &original[100..5000]).unwrap();
        assert!(device.staged().staged_bytes() > 0);
        assert!(device.staged().changes().unwrap().is_empty());
    }
}
