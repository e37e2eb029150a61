//! The hive as a file beside its transaction logs: [`Hive::open_file`] reads both and replays the
//! logs, [`Hive::write_file_atomic`] replaces the file and empties the logs.

use std::path::Path;

use crate::log::ReplayReport;
use crate::{Error, Hive, Result};

impl Hive {
    /// Reads a hive file and its transaction logs (`<file>.LOG1`, `<file>.LOG2`, `<file>.LOG`,
    /// matched case-insensitively in the same directory) and replays them.
    pub fn open_file(path: &Path) -> Result<(Hive, ReplayReport)> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| Error::Io {
                path: p.to_path_buf(),
                source,
            })
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

    /// Commits and writes the hive to `path` atomically (temporary file in the same directory,
    /// fsync, rename over, fsync the directory), then empties any `.LOG1`/`.LOG2`/`.LOG` beside it
    /// so no stale entry can be replayed over the new contents.
    pub fn write_file_atomic(&mut self, path: &Path) -> Result<()> {
        use std::io::Write;
        let io_error = |p: &Path| {
            let p = p.to_path_buf();
            move |source| Error::Io { path: p, source }
        };
        // Sealed in place and written from the hive's own bytes: no second copy of the hive.
        self.seal();
        let bytes = &self.store.bytes;
        let file_name = path.file_name().ok_or_else(|| {
            Error::InvalidArgument(format!("{} has no file name", path.display()))
        })?;
        let dir = parent_dir(path);
        let temp = dir.join(format!(
            ".{}.{}.reseal-tmp",
            file_name.to_string_lossy(),
            std::process::id()
        ));
        let written = (|| {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(bytes)?;
            // The replaced file's permissions carry over to the new one.
            if let Ok(existing) = std::fs::metadata(path) {
                file.set_permissions(existing.permissions())?;
            }
            file.sync_all()
        })();
        if let Err(source) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(Error::Io { path: temp, source });
        }
        if let Err(source) = std::fs::rename(&temp, path) {
            let _ = std::fs::remove_file(&temp);
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(dir))?;
        for log in log_files_beside(path)? {
            std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&log)
                .and_then(|f| f.sync_all())
                .map_err(io_error(&log))?;
        }
        Ok(())
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
fn log_files_beside(path: &Path) -> Result<Vec<std::path::PathBuf>> {
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
