//! The largest size reseal reads whole for each kind of file, and the reads that keep to it.
//!
//! Everything reseal edits is read into memory first. A file larger than its format allows (or
//! than any real one is) is refused before it is read, with its size and the limit, instead of
//! exhausting memory: a damaged or hostile image can claim any size, and a path such as
//! `/dev/zero` has no end at all.

use std::io::Read;
use std::path::Path;

use crate::targets::{canonical_path, split_parent, DirEntry, Target};
use crate::{Error, Result};

/// A kind of file read whole, and the most bytes reseal reads of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimit {
    /// What the file is, for messages ("registry hive").
    pub what: &'static str,
    /// The most bytes read.
    pub max: u64,
}

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// A registry hive or one of its transaction logs: no valid one is larger than the format can
/// address ([`reseal_hive::MAX_FILE_SIZE`]).
pub const HIVE: ReadLimit = ReadLimit {
    what: "registry hive",
    max: reseal_hive::MAX_FILE_SIZE,
};

/// `Windows\Setup\State\State.ini`: two short lines on every Windows version.
pub const STATE_INI: ReadLimit = ReadLimit {
    what: "State.ini",
    max: MIB,
};

/// An event log (`.evtx`): Windows caps a log's `MaxSize` at 4 GiB less 64 KiB; 4 GiB keeps
/// every log Windows can write.
pub const EVENT_LOG: ReadLimit = ReadLimit {
    what: "event log",
    max: 4 * GIB,
};

/// An answer file: real ones are a few kilobytes; Windows Setup's own schema-checked files are
/// far below this.
pub const ANSWER_FILE: ReadLimit = ReadLimit {
    what: "answer file",
    max: 16 * MIB,
};

/// `Windows\Panther\reseal.log`, the record of reseal's runs in the image: a section of a few
/// hundred lines a run, appended to; this keeps thousands of runs.
pub const RUN_RECORD: ReadLimit = ReadLimit {
    what: "reseal's run record",
    max: 64 * MIB,
};

/// An app package's `AppxManifest.xml`: a few kilobytes to a few hundred in real packages.
pub const APPX_MANIFEST: ReadLimit = ReadLimit {
    what: "package manifest",
    max: 16 * MIB,
};

/// A scheduled task's XML file: a few kilobytes in real images; Task Scheduler refuses far
/// smaller ones than this.
pub const TASK_FILE: ReadLimit = ReadLimit {
    what: "task file",
    max: 16 * MIB,
};

/// The manifest of a directory target's journal: one line per file a run writes or deletes.
pub const JOURNAL_MANIFEST: ReadLimit = ReadLimit {
    what: "journal manifest",
    max: 64 * MIB,
};

/// A file staged in a directory target's journal: a copy of a file a run writes, the largest of
/// which are hives.
pub const STAGED_FILE: ReadLimit = ReadLimit {
    what: "staged file",
    max: reseal_hive::MAX_FILE_SIZE,
};

impl ReadLimit {
    /// Refuses the image file `file` of `size` bytes when it is larger than the limit.
    pub fn check(self, file: &str, size: u64) -> Result<()> {
        if size <= self.max {
            return Ok(());
        }
        Err(Error::corrupt(
            file,
            format!(
                "the {} is {size} bytes; no valid one is larger than {} bytes, so it is not read",
                self.what, self.max
            ),
        ))
    }
}

/// The contents of the image file at `path`, or `None` when it does not exist; a file larger
/// than `limit` is refused as corrupt before it is read.
///
/// The size comes from the directory listing, which every target answers from its metadata.
pub fn read_image_file(
    target: &mut dyn Target,
    path: &str,
    limit: ReadLimit,
) -> Result<Option<Vec<u8>>> {
    if let Some(entry) = listed_file(target.list_dir(&split_parent(path).0)?, path) {
        limit.check(path, entry.size)?;
    }
    let bytes = target.read_file(path)?;
    // The listing and the read may disagree on a target that changes under us; the limit holds
    // for what was read.
    if let Some(bytes) = &bytes {
        limit.check(path, bytes.len() as u64)?;
    }
    Ok(bytes)
}

/// The entry of the file `path` names in `listing` (the listing of its parent folder).
pub(crate) fn listed_file(listing: Option<Vec<DirEntry>>, path: &str) -> Option<DirEntry> {
    let wanted = canonical_path(&split_parent(path).1);
    listing?
        .into_iter()
        .find(|e| !e.is_dir && canonical_path(&e.name) == wanted)
}

/// The contents of the host file at `path` (a pipe or a device included), reading at most
/// `limit.max` bytes: a longer input is refused once the limit is passed.
pub fn read_host_file(path: &Path, limit: ReadLimit) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit.max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit.max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "the {} is more than {} bytes, so it is not read",
                limit.what, limit.max
            ),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_file_without_end_is_cut_at_the_limit() {
        let small = ReadLimit {
            what: "answer file",
            max: 4096,
        };
        let err = read_host_file(Path::new("/dev/zero"), small).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("more than 4096 bytes"), "{err}");
    }

    #[test]
    fn a_host_file_at_the_limit_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [7u8; 100]).unwrap();
        let exact = ReadLimit {
            what: "answer file",
            max: 100,
        };
        assert_eq!(read_host_file(&path, exact).unwrap(), vec![7u8; 100]);
        let smaller = ReadLimit { max: 99, ..exact };
        assert!(read_host_file(&path, smaller).is_err());
    }
}
