//! The hive as a file beside its transaction logs: [`Hive::open_file`] reads both and replays the
//! logs; [`log_files_beside`] finds the logs.
//!
//! Writing a hive file back is not done here: replacing a file must keep its owner, permissions
//! and extended attributes (on ntfs-3g, the NTFS security descriptor), which is the `reseal`
//! crate's `replace_host_hive`. This crate only gives the bytes
//! ([`Hive::commit`], [`Hive::into_committed`]).

use std::path::Path;

use crate::log::ReplayReport;
use crate::{Error, Hive, Result};

/// The largest hive file (or transaction log) there can be: hive bins are addressed by 32-bit
/// offsets after the 4 KiB base block.
pub const MAX_FILE_SIZE: u64 = (1 << 32) + 4096;

impl Hive {
    /// Reads a hive file and its transaction logs (`<file>.LOG1`, `<file>.LOG2`, `<file>.LOG`,
    /// matched case-insensitively in the same directory) and replays them.
    pub fn open_file(path: &Path) -> Result<(Hive, ReplayReport)> {
        let read = |p: &Path| {
            let io_error = |source| Error::Io {
                path: p.to_path_buf(),
                source,
            };
            // A FIFO or a device has no size to check and may have no end: only regular files
            // (through symbolic links) are hives.
            let metadata = std::fs::metadata(p).map_err(io_error)?;
            if !metadata.is_file() {
                return Err(io_error(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a regular file",
                )));
            }
            if metadata.len() > MAX_FILE_SIZE {
                return Err(Error::Unsupported(format!(
                    "{} is {} bytes; no hive is larger than {MAX_FILE_SIZE} bytes",
                    p.display(),
                    metadata.len()
                )));
            }
            std::fs::read(p).map_err(io_error)
        };
        let bytes = read(path)?;
        let mut logs = Vec::new();
        for log_path in log_files_beside(path)? {
            let log_name = log_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            logs.push((log_name, read(&log_path)?));
        }
        let log_refs: Vec<(&str, &[u8])> = logs
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        Hive::from_bytes_with_logs(bytes, &log_refs)
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The transaction logs beside the hive at `path`: `<name>.LOG1`, `<name>.LOG2`, `<name>.LOG`
/// (in that order), file names compared case-insensitively.
pub fn log_files_beside(path: &Path) -> Result<Vec<std::path::PathBuf>> {
    let Some(file_name) = path.file_name() else {
        return Ok(Vec::new());
    };
    let base = file_name.to_string_lossy().to_lowercase();
    let dir = parent_dir(path);
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut found: Vec<(usize, std::path::PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let entry_name = entry.file_name().to_string_lossy().to_lowercase();
        let rank = ["log1", "log2", "log"]
            .iter()
            .position(|ext| entry_name == format!("{base}.{ext}"));
        if let Some(rank) = rank {
            found.push((rank, entry.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}
