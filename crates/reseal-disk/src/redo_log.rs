//! The redo log: how staged changes reach a disk image all at once, even across a crash.
//!
//! A file system edited through libntfs-3g is not journaled, so writing its changes straight
//! into the image could leave half of them behind. Instead the changes (from
//! [`crate::Staged::changes`]) first go to `<image>.reseal-redo` beside the image:
//!
//! 1. the log is written and flushed, then its directory entry; it ends with a CRC-32C and an
//!    end marker, so a torn log is recognized;
//! 2. the changes are written into the image (through its container, so a dynamic VHD/VHDX
//!    allocates blocks as usual) and flushed;
//! 3. the log is removed.
//!
//! A crash before the log is complete leaves the image untouched and an incomplete log, which
//! [`recover`] deletes. A crash after it leaves a complete log, which [`recover`] writes into
//! the image again (writing the same bytes twice does no harm) before removing it. The image
//! therefore holds either the old or the new state once recovered.
//!
//! # Format (little-endian)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `RESEALRD` |
//! | 8 | 4 | version (1) |
//! | 12 | 4 | reserved (0) |
//! | 16 | 8 | the virtual disk's size in bytes |
//! | 24 | 4 | length of the description |
//! | 28 | n | description: UTF-8 lines saying what the changes are |
//! | | 8 | number of changes |
//! | | | each change: offset (8), length (8), the bytes |
//! | | 4 | CRC-32C of everything before it |
//! | | 8 | end marker `REDOEND\0` |

use std::fs::{self, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::crc32c::crc32c;
use crate::error::{Error, Result};
use crate::image_file::sync_directory_of;
use crate::staged::{write_changes, Change};
use crate::Entropy;

const MAGIC: &[u8; 8] = b"RESEALRD";
const END_MARKER: &[u8; 8] = b"REDOEND\0";
const VERSION: u32 = 1;

/// The largest redo log written or read: a run's changes are its hives and small files, held in
/// memory until the commit, far below this; a larger file beside an image is not reseal's and is
/// not read whole.
pub const MAX_LOG_SIZE: u64 = 4 << 30;

/// Where the redo log of `image` lives: beside it, named after it.
pub fn redo_log_path(image: &Path) -> PathBuf {
    let mut name = image.file_name().unwrap_or_default().to_os_string();
    name.push(".reseal-redo");
    image.with_file_name(name)
}

/// `true` when `image` has a redo log that [`recover`] has to deal with first.
pub fn is_pending(image: &Path) -> bool {
    redo_log_path(image).exists()
}

/// What [`recover`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// There was no redo log.
    Nothing,
    /// A complete log was written into the image and removed; its description lines.
    RolledForward { description: Vec<String> },
    /// An incomplete log was removed; the image had not been touched.
    Discarded,
}

/// Writes `changes` into the disk image `image` through a redo log (see the module
/// documentation). `description` is kept in the log for [`recover`] to report; what the
/// container draws for the write (a VHDX's new write GUIDs) comes from `entropy`.
pub fn commit(
    image: &Path,
    changes: &[Change],
    description: &[String],
    entropy: Entropy,
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    if is_pending(image) {
        return Err(Error::unsupported(
            image,
            "redo log",
            "an unfinished commit's redo log is still beside the image; recover it first",
        ));
    }
    // Opened for writing before the log exists: an image that cannot be written (read-only,
    // say) must not leave a complete log that every later run would try to finish.
    let mut device = crate::open_writable_with(image, entropy)?;
    write_log(image, device.len(), changes, description)?;
    write_changes(device.as_mut(), changes)?;
    drop(device);
    remove_log(&redo_log_path(image))
}

/// Finishes or discards what an interrupted [`commit`] left beside `image`.
pub fn recover(image: &Path) -> Result<Recovery> {
    let log_path = redo_log_path(image);
    if !log_path.exists() {
        return Ok(Recovery::Nothing);
    }
    match replay(image) {
        Ok(description) => Ok(Recovery::RolledForward { description }),
        Err(Error::Corrupt {
            structure: "redo log",
            ..
        }) => {
            remove_log(&log_path)?;
            Ok(Recovery::Discarded)
        }
        Err(error) => Err(error),
    }
}

/// The first step of [`commit`] on its own: writes and flushes the complete redo log of
/// `changes` for the disk image `image` (whose virtual disk is `device_len` bytes), leaving the
/// image untouched. [`recover`] then writes the changes in, as after a crash at that point.
pub fn write_log(
    image: &Path,
    device_len: u64,
    changes: &[Change],
    description: &[String],
) -> Result<()> {
    let log_path = redo_log_path(image);
    let text = description.join("\n");
    let mut bytes = Vec::with_capacity(
        64 + text.len() + changes.iter().map(|c| 16 + c.data.len()).sum::<usize>(),
    );
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&device_len.to_le_bytes());
    bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
    bytes.extend_from_slice(text.as_bytes());
    bytes.extend_from_slice(&(changes.len() as u64).to_le_bytes());
    for change in changes {
        bytes.extend_from_slice(&change.offset.to_le_bytes());
        bytes.extend_from_slice(&(change.data.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&change.data);
    }
    bytes.extend_from_slice(&crc32c(&bytes).to_le_bytes());
    bytes.extend_from_slice(END_MARKER);
    if bytes.len() as u64 > MAX_LOG_SIZE {
        return Err(Error::unsupported(
            &log_path,
            "redo log",
            format!(
                "the changes need {} bytes, more than the {MAX_LOG_SIZE} a redo log may hold",
                bytes.len()
            ),
        ));
    }

    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&log_path)
        .map_err(|e| Error::io(&log_path, "cannot create the redo log", e))?;
    let written = (|| {
        let mut writer = BufWriter::new(file);
        writer
            .write_all(&bytes)
            .and_then(|()| writer.flush())
            .map_err(|e| Error::io(&log_path, "cannot write the redo log", e))?;
        writer
            .get_ref()
            .sync_all()
            .map_err(|e| Error::io(&log_path, "cannot flush the redo log", e))?;
        sync_log_directory(&log_path)
    })();
    if written.is_err() {
        // The run fails here, so its log must not be finished by a later one.
        let _ = fs::remove_file(&log_path);
    }
    written
}

/// A parsed, complete redo log.
struct Log {
    device_len: u64,
    description: Vec<String>,
    changes: Vec<Change>,
}

fn read_log(log_path: &Path) -> Result<Log> {
    let size = fs::metadata(log_path)
        .map_err(|e| Error::io(log_path, "cannot read the redo log", e))?
        .len();
    if size > MAX_LOG_SIZE {
        // Not treated as an incomplete log (which is discarded): reseal never wrote it.
        return Err(Error::unsupported(
            log_path,
            "redo log",
            format!(
                "{size} bytes, more than the {MAX_LOG_SIZE} reseal ever writes; it is not read, \
                 and it was not written by reseal"
            ),
        ));
    }
    let bytes =
        fs::read(log_path).map_err(|e| Error::io(log_path, "cannot read the redo log", e))?;
    let corrupt = |reason: &str| Error::corrupt(log_path, "redo log", reason.to_string());
    let trailer = 4 + END_MARKER.len();
    if bytes.len() < 36 + trailer || &bytes[..8] != MAGIC {
        return Err(corrupt(
            "incomplete: no header (the commit stopped while writing it)",
        ));
    }
    if !bytes.ends_with(END_MARKER) {
        return Err(corrupt(
            "incomplete: no end marker (the commit stopped while writing it)",
        ));
    }
    let body_len = bytes.len() - trailer;
    let stored_crc = u32::from_le_bytes(bytes[body_len..body_len + 4].try_into().unwrap());
    if crc32c(&bytes[..body_len]) != stored_crc {
        return Err(corrupt("its checksum does not match (torn or damaged)"));
    }
    let mut reader = Reader {
        bytes: &bytes[..body_len],
        at: 8,
    };
    let version = reader.u32().ok_or_else(|| corrupt("truncated header"))?;
    if version != VERSION {
        // Complete, so possibly half written into the image already: kept, not discarded.
        return Err(Error::unsupported(
            log_path,
            "redo log",
            format!("version {version}, but this reseal writes and reads version {VERSION}; recover it with the reseal that wrote it"),
        ));
    }
    reader.u32().ok_or_else(|| corrupt("truncated header"))?;
    let device_len = reader.u64().ok_or_else(|| corrupt("truncated header"))?;
    let text_len = reader.u32().ok_or_else(|| corrupt("truncated header"))? as u64;
    let text = reader
        .take(text_len)
        .ok_or_else(|| corrupt("truncated description"))?;
    let description = String::from_utf8_lossy(text)
        .lines()
        .map(str::to_string)
        .collect();
    let count = reader
        .u64()
        .ok_or_else(|| corrupt("truncated change count"))?;
    let mut changes = Vec::new();
    for _ in 0..count {
        let offset = reader.u64().ok_or_else(|| corrupt("truncated change"))?;
        let len = reader.u64().ok_or_else(|| corrupt("truncated change"))?;
        let data = reader
            .take(len)
            .ok_or_else(|| corrupt("truncated change data"))?;
        if offset.checked_add(len).is_none_or(|end| end > device_len) {
            return Err(corrupt("a change reaches past the end of the disk"));
        }
        changes.push(Change {
            offset,
            data: data.to_vec(),
        });
    }
    if reader.at != reader.bytes.len() {
        return Err(corrupt("bytes after the last change"));
    }
    Ok(Log {
        device_len,
        description,
        changes,
    })
}

/// Writes a complete log's changes into the image, flushes, and removes the log.
fn replay(image: &Path) -> Result<Vec<String>> {
    let log_path = redo_log_path(image);
    let log = read_log(&log_path)?;
    let mut device = crate::open_writable(image)?;
    if device.len() != log.device_len {
        return Err(Error::unsupported(
            &log_path,
            "redo log",
            format!(
                "it was written for a disk of {} bytes, but {} is {} bytes; it belongs to another image",
                log.device_len,
                image.display(),
                device.len()
            ),
        ));
    }
    write_changes(device.as_mut(), &log.changes)?;
    drop(device);
    remove_log(&log_path)?;
    Ok(log.description)
}

fn remove_log(log_path: &Path) -> Result<()> {
    fs::remove_file(log_path).map_err(|e| Error::io(log_path, "cannot remove the redo log", e))?;
    sync_log_directory(log_path)
}

/// Makes the log's creation or removal durable.
fn sync_log_directory(log_path: &Path) -> Result<()> {
    sync_directory_of(log_path).map_err(|e| {
        Error::io(
            log_path,
            "cannot flush the directory holding the redo log",
            e,
        )
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: u64) -> Option<&'a [u8]> {
        let len = usize::try_from(len).ok()?;
        let end = self.at.checked_add(len)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes() -> Vec<Change> {
        vec![
            Change {
                offset: 0,
                data: vec![0xAA; 4096],
            },
            Change {
                offset: 3 * 4096,
                data: vec![0xBB; 8192],
            },
        ]
    }

    fn raw_image(dir: &Path) -> (PathBuf, Vec<u8>) {
        let path = dir.join("disk.img");
        let bytes: Vec<u8> = (0..8 * 4096).map(|i| (i % 253) as u8).collect();
        fs::write(&path, &bytes).unwrap();
        (path, bytes)
    }

    fn with_changes(mut bytes: Vec<u8>) -> Vec<u8> {
        for change in changes() {
            let at = change.offset as usize;
            bytes[at..at + change.data.len()].copy_from_slice(&change.data);
        }
        bytes
    }

    #[test]
    fn commit_writes_the_changes_and_leaves_no_log() {
        let dir = tempfile::tempdir().unwrap();
        let (image, original) = raw_image(dir.path());
        commit(&image, &changes(), &["a".into()], Entropy::default()).unwrap();
        assert_eq!(fs::read(&image).unwrap(), with_changes(original));
        assert!(!is_pending(&image));
        assert_eq!(recover(&image).unwrap(), Recovery::Nothing);
    }

    /// A crash at every point: while the log is written (every length of it), and after it
    /// with any number of the changes written into the image.
    #[test]
    fn recovery_after_a_crash_anywhere_gives_the_old_or_the_new_image() {
        let dir = tempfile::tempdir().unwrap();
        let (image, original) = raw_image(dir.path());
        let new = with_changes(original.clone());
        write_log(
            &image,
            original.len() as u64,
            &changes(),
            &["SYSTEM".into()],
        )
        .unwrap();
        let complete_log = fs::read(redo_log_path(&image)).unwrap();
        fs::remove_file(redo_log_path(&image)).unwrap();

        for cut in (0..complete_log.len()).step_by(509) {
            fs::write(&image, &original).unwrap();
            fs::write(redo_log_path(&image), &complete_log[..cut]).unwrap();
            assert_eq!(
                recover(&image).unwrap(),
                Recovery::Discarded,
                "cut at {cut}"
            );
            assert_eq!(fs::read(&image).unwrap(), original, "cut at {cut}");
            assert!(!is_pending(&image));
        }
        let mut flipped = complete_log.clone();
        flipped[40] ^= 1;
        fs::write(redo_log_path(&image), &flipped).unwrap();
        assert_eq!(recover(&image).unwrap(), Recovery::Discarded);

        for written in 0..=changes().len() {
            let mut partly = original.clone();
            for change in &changes()[..written] {
                let at = change.offset as usize;
                partly[at..at + change.data.len()].copy_from_slice(&change.data);
            }
            fs::write(&image, &partly).unwrap();
            fs::write(redo_log_path(&image), &complete_log).unwrap();
            assert_eq!(
                recover(&image).unwrap(),
                Recovery::RolledForward {
                    description: vec!["SYSTEM".into()]
                }
            );
            assert_eq!(fs::read(&image).unwrap(), new, "{written} changes written");
            assert!(!is_pending(&image));
        }
    }

    #[test]
    fn a_log_for_another_disk_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (image, original) = raw_image(dir.path());
        write_log(&image, original.len() as u64 + 512, &changes(), &[]).unwrap();
        let error = recover(&image).unwrap_err().to_string();
        assert!(error.contains("belongs to another image"), "{error}");
        assert_eq!(fs::read(&image).unwrap(), original);
        assert!(is_pending(&image));
        assert!(
            commit(&image, &changes(), &[], Entropy::default()).is_err(),
            "a pending log blocks a commit"
        );
    }

    #[test]
    fn a_log_larger_than_reseal_writes_is_refused_unread_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (image, original) = raw_image(dir.path());
        let log = fs::File::create(redo_log_path(&image)).unwrap();
        // Sparse: large to every reader, nothing on the host's disk.
        log.set_len(MAX_LOG_SIZE + 1).unwrap();
        let error = recover(&image).unwrap_err().to_string();
        assert!(error.contains("more than the 4294967296"), "{error}");
        assert_eq!(fs::read(&image).unwrap(), original);
        assert!(is_pending(&image), "the log is kept");
    }

    #[test]
    fn a_complete_log_of_another_version_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (image, original) = raw_image(dir.path());
        write_log(&image, original.len() as u64, &changes(), &[]).unwrap();
        let log_path = redo_log_path(&image);
        let mut log = fs::read(&log_path).unwrap();
        log[8..12].copy_from_slice(&2u32.to_le_bytes());
        let body_len = log.len() - 12;
        let crc = crc32c(&log[..body_len]);
        log[body_len..body_len + 4].copy_from_slice(&crc.to_le_bytes());
        fs::write(&log_path, &log).unwrap();
        let error = recover(&image).unwrap_err();
        assert!(matches!(error, Error::Unsupported { .. }), "{error}");
        assert!(error.to_string().contains("version 2"), "{error}");
        assert_eq!(fs::read(&image).unwrap(), original);
        assert_eq!(fs::read(&log_path).unwrap(), log, "the log was not kept");
    }

    /// An image that can be read but not written gets no log. Linux refuses to open a running
    /// program for writing (ETXTBSY), root included, so the image is a copy of `sleep` that is
    /// running; any file is a raw disk.
    #[test]
    fn an_image_that_cannot_be_written_gets_no_log() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        fs::copy("/bin/sleep", &image).unwrap();
        fs::set_permissions(&image, fs::Permissions::from_mode(0o755)).unwrap();
        let original = fs::read(&image).unwrap();
        // `spawn` returns once the program runs.
        let mut running = std::process::Command::new(&image)
            .arg("30")
            .spawn()
            .unwrap();
        let writable = OpenOptions::new().write(true).open(&image).is_ok();
        let result = (!writable).then(|| commit(&image, &changes(), &[], Entropy::default()));
        running.kill().unwrap();
        running.wait().unwrap();
        let Some(result) = result else {
            eprintln!("skipping: this kernel lets a running program be opened for writing");
            return;
        };
        let error = result.unwrap_err();
        assert!(error.to_string().contains("disk.img"), "{error}");
        assert!(
            !redo_log_path(&image).exists(),
            "a log was left beside the image"
        );
        assert_eq!(fs::read(&image).unwrap(), original);
    }
}
