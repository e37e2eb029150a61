//! [`Folder`]: the files of an image folder on the host (a mounted NTFS volume or a copy),
//! written through. The [`DirectoryTarget`](super::DirectoryTarget) makes transactions of its
//! writes with the journal.
//!
//! Image paths are resolved component by component as Windows would: an exact name first, else
//! the one entry whose name matches case-insensitively. Symbolic links are never followed, so no
//! path can lead outside the image.
//!
//! Writes go to a temporary file beside the destination, are flushed to disk, then renamed over
//! it, and the directory is flushed: a file is always either entirely old or entirely new.
//! Replacing a file keeps its metadata, including every extended attribute that can be read
//! (on ntfs-3g, `system.ntfs_acl` is the NTFS security descriptor and `system.ntfs_attrib` the
//! file attributes).
//!
//! [`replace_host_file`] and [`replace_host_hive`] are that replacement for any host file, for
//! callers that edit one file outside an image (`reseal hive`).

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind as IoKind, Write};
use std::path::{Path, PathBuf};

use reseal_hive::Hive;

use super::FileStore;
use crate::error::{Error, Result};
use crate::targets::{path_components, upper_case_name, DirEntry};

/// An image stored as a host directory: the folder that holds `Windows\System32\config`.
pub struct Folder {
    root: PathBuf,
}

/// Where an image path leads on the host.
struct Resolved {
    /// The host path: the existing components as they are named on disk, then the missing ones
    /// as the caller spelled them.
    host: PathBuf,
    /// How many trailing components do not exist (0 = the whole path exists).
    missing: usize,
}

impl Resolved {
    fn exists(&self) -> bool {
        self.missing == 0
    }
}

/// The prefix of the temporary file a write goes through, beside its destination.
const TEMP_PREFIX: &str = ".reseal-new.";

#[cfg(unix)]
/// ntfs-3g's extended attribute holding a file's NTFS security descriptor (self-relative).
const NTFS_ACL: &str = "system.ntfs_acl";

impl Folder {
    /// Opens the image folder at `root` (it must be a directory).
    pub fn open(root: &Path) -> Result<Folder> {
        let shown = root.display().to_string();
        let meta =
            fs::metadata(root).map_err(|e| Error::io(&shown, "cannot open the image", &e))?;
        if !meta.is_dir() {
            return Err(Error::usage(format!(
                "{shown} is not a directory (give the folder that holds Windows\\System32\\config)"
            )));
        }
        let root = fs::canonicalize(root).map_err(|e| Error::io(&shown, "cannot open", &e))?;
        Ok(Folder { root })
    }

    /// The host folder of the image.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path the image path `path` leads to (whether or not it exists).
    pub fn host_path(&self, path: &str) -> Result<PathBuf> {
        Ok(self.resolve(path)?.host)
    }

    /// Resolves `path` case-insensitively, refusing to pass through symbolic links.
    fn resolve(&self, path: &str) -> Result<Resolved> {
        let components = path_components(path)?;
        let mut host = self.root.clone();
        for (index, component) in components.iter().enumerate() {
            match self.find_entry(&host, component)? {
                Some(name) => {
                    host.push(name);
                    let meta = fs::symlink_metadata(&host)
                        .map_err(|e| Error::io(shown(&host), "cannot read metadata", &e))?;
                    let is_last = index + 1 == components.len();
                    if let Some(kind) = special_kind(&meta) {
                        let expected = if is_last {
                            "a file or folder"
                        } else {
                            "a folder"
                        };
                        return Err(unexpected_kind(&host, kind, expected));
                    }
                }
                None => {
                    components[index..].iter().for_each(|c| host.push(c));
                    return Ok(Resolved {
                        host,
                        missing: components.len() - index,
                    });
                }
            }
        }
        Ok(Resolved { host, missing: 0 })
    }

    /// The on-disk name in `dir` that Windows would open for `name`, if any.
    fn find_entry(&self, dir: &Path, name: &str) -> Result<Option<String>> {
        match fs::symlink_metadata(dir.join(name)) {
            Ok(_) => return Ok(Some(name.to_string())),
            Err(e) if e.kind() == IoKind::NotFound => {}
            Err(e) if e.kind() == IoKind::NotADirectory => return Ok(None),
            Err(e) => {
                return Err(Error::io(
                    shown(&dir.join(name)),
                    "cannot read metadata",
                    &e,
                ))
            }
        }
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if matches!(e.kind(), IoKind::NotFound | IoKind::NotADirectory) => {
                return Ok(None)
            }
            Err(e) => return Err(Error::io(shown(dir), "cannot list", &e)),
        };
        let wanted = upper_case_name(name);
        let mut found: Vec<String> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(shown(dir), "cannot list", &e))?;
            let entry_name = entry.file_name().to_string_lossy().into_owned();
            if upper_case_name(&entry_name) == wanted {
                found.push(entry_name);
            }
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            _ => Err(Error::other(
                Some(&shown(dir)),
                format!(
                    "holds {} entries that Windows would see as one name ({}); rename all but one",
                    found.len(),
                    found.join(", ")
                ),
            )),
        }
    }

    /// Resolves `path`, which must exist as a regular file.
    fn existing_file(&self, path: &str) -> Result<Option<PathBuf>> {
        let resolved = self.resolve(path)?;
        if !resolved.exists() {
            return Ok(None);
        }
        let meta = fs::symlink_metadata(&resolved.host)
            .map_err(|e| Error::io(shown(&resolved.host), "cannot read metadata", &e))?;
        if !meta.is_file() {
            let kind = special_kind(&meta).unwrap_or("a folder");
            return Err(unexpected_kind(&resolved.host, kind, "a file"));
        }
        Ok(Some(resolved.host))
    }
}

impl FileStore for Folder {
    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.existing_file(path)? {
            Some(host) => fs::read(&host)
                .map(Some)
                .map_err(|e| Error::io(shown(&host), "cannot read", &e)),
            None => Ok(None),
        }
    }

    fn list_dir(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>> {
        let resolved = self.resolve(path)?;
        if !resolved.exists() {
            return Ok(None);
        }
        let host = resolved.host;
        let entries = match fs::read_dir(&host) {
            Ok(entries) => entries,
            Err(e) if e.kind() == IoKind::NotADirectory => return Ok(None),
            Err(e) => return Err(Error::io(shown(&host), "cannot list", &e)),
        };
        let mut listing = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(shown(&host), "cannot list", &e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let meta = entry
                .metadata()
                .map_err(|e| Error::io(shown(&entry.path()), "cannot read metadata", &e))?;
            listing.push(DirEntry {
                name,
                is_dir: meta.is_dir(),
                size: if meta.is_file() { meta.len() } else { 0 },
            });
        }
        listing.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(listing))
    }

    fn exists(&mut self, path: &str) -> Result<bool> {
        Ok(self.resolve(path)?.exists())
    }

    fn replace_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        let host = self.existing_file(path)?.ok_or_else(|| {
            Error::other(
                Some(path),
                "cannot replace: the file does not exist in the image",
            )
        })?;
        replace_host_file(&host, contents)
    }

    fn create_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        let resolved = self.resolve(path)?;
        if resolved.exists() {
            return Err(Error::other(
                Some(&shown(&resolved.host)),
                "cannot create: it already exists",
            ));
        }
        let host = resolved.host;
        let parent = host
            .parent()
            .ok_or_else(|| Error::usage(format!("{path:?} names no file")))?;
        create_parents(parent, resolved.missing - 1)?;
        let temp = temp_path(&host);
        let result =
            write_temp(&temp, contents, |_| Ok(())).and_then(|()| rename_durably(&temp, &host));
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    fn delete_file(&mut self, path: &str) -> Result<()> {
        let Some(host) = self.existing_file(path)? else {
            return Ok(());
        };
        fs::remove_file(&host).map_err(|e| Error::io(shown(&host), "cannot delete", &e))?;
        sync_parent(&host)
    }

    fn delete_dir_all(&mut self, path: &str) -> Result<()> {
        let resolved = self.resolve(path)?;
        if !resolved.exists() {
            return Ok(());
        }
        let host = resolved.host;
        if host == self.root {
            return Err(Error::usage("refusing to delete the whole image"));
        }
        let meta = fs::symlink_metadata(&host)
            .map_err(|e| Error::io(shown(&host), "cannot read metadata", &e))?;
        if !meta.is_dir() {
            let kind = special_kind(&meta).unwrap_or("a file");
            return Err(unexpected_kind(&host, kind, "a folder"));
        }
        fs::remove_dir_all(&host)
            .map_err(|e| Error::io(shown(&host), "cannot delete the directory", &e))?;
        sync_parent(&host)
    }

    fn ntfs_security_descriptor(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        let resolved = self.resolve(path)?;
        if !resolved.exists() {
            return Ok(None);
        }
        // Other file systems have no such attribute (or no extended attributes at all).
        #[cfg(unix)]
        return Ok(xattr::get(&resolved.host, NTFS_ACL).ok().flatten());
        #[cfg(not(unix))]
        return Ok(None);
    }

    /// Sets ntfs-3g's `system.ntfs_acl` (libntfs-3g adds the descriptor to `$Secure` and
    /// points the file at it), then flushes the file so the change is on the volume.
    fn set_ntfs_security_descriptor(&mut self, path: &str, descriptor: &[u8]) -> Result<()> {
        let resolved = self.resolve(path)?;
        if !resolved.exists() {
            return Err(Error::other(
                Some(&shown(&resolved.host)),
                "cannot set its NTFS security descriptor: it does not exist",
            ));
        }
        set_ntfs_acl(&resolved.host, descriptor)
    }

    fn discard_incomplete_write(&mut self, path: &str) -> Result<()> {
        let resolved = self.resolve(path)?;
        // Only the last component can be missing for a temporary file to exist beside it.
        if resolved.missing > 1 {
            return Ok(());
        }
        let temp = temp_path(&resolved.host);
        match fs::remove_file(&temp) {
            Ok(()) => sync_parent(&temp),
            Err(e) if e.kind() == IoKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(shown(&temp), "cannot delete", &e)),
        }
    }
}

/// Replaces the existing regular file at `path` on the host with `contents`, atomically and
/// keeping its metadata, as the directory target replaces every file: the contents go to a
/// temporary file beside it that gets the file's owner, permissions, access time and extended
/// attributes (on an ntfs-3g mount also `system.ntfs_acl`, the NTFS security descriptor, and
/// `system.ntfs_attrib`, which `listxattr` may not list), is flushed to disk and renamed over
/// it; then the directory is flushed. The modification time becomes now.
///
/// After a crash the file is either old or new; a leftover temporary file
/// (`.reseal-new.NAME` beside it) is reused by the next replacement of the same file.
pub fn replace_host_file(path: &Path, contents: &[u8]) -> Result<()> {
    let original = fs::symlink_metadata(path)
        .map_err(|e| Error::io(shown(path), "cannot read metadata", &e))?;
    if !original.is_file() {
        let kind = special_kind(&original).unwrap_or("a folder");
        return Err(unexpected_kind(path, kind, "a file"));
    }
    let temp = temp_path(path);
    let result = write_temp(&temp, contents, |file| {
        metadata::copy(path, &temp, file, &original)
    })
    .and_then(|()| rename_durably(&temp, path));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Commits `hive` and writes it over the hive file at `path` with [`replace_host_file`], then
/// empties the transaction logs beside it (`.LOG1`, `.LOG2`, `.LOG`, any case) the same way, as
/// `apply` does for a hive in an image: the commit's sequence numbers are above the logs', and
/// the emptied logs leave nothing to replay over the new contents.
pub fn replace_host_hive(path: &Path, hive: Hive) -> Result<()> {
    let logs =
        reseal_hive::log_files_beside(path).map_err(|e| Error::from_hive(&shown(path), e))?;
    replace_host_file(path, &hive.into_committed())?;
    for log in logs {
        replace_host_file(&log, &[])?;
    }
    Ok(())
}

/// A host path for messages.
fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// What `meta` describes when it is neither a regular file nor a folder: a Windows volume
/// copied or mounted on the host holds neither links (ntfs-3g shows junctions and symbolic
/// links as symbolic links) that reseal could follow without leaving the image, nor special
/// files.
fn special_kind(meta: &fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_symlink() {
        Some("a symbolic link (an NTFS junction or symbolic link?)")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_char_device() {
        Some("a character device")
    } else {
        None
    }
}

/// The error for `host`, which is `found` where the image should hold `expected`: a layout no
/// Windows volume has, refused as damaged input without following or opening it.
fn unexpected_kind(host: &Path, found: &str, expected: &str) -> Error {
    Error::corrupt(
        shown(host),
        format!(
            "is {found} where the image should hold {expected}; reseal neither follows links nor \
             opens special files, so it never reads or writes outside the image"
        ),
    )
}

/// The temporary file a write of `host` goes through: same directory, a name derived from the
/// destination's so an interrupted write can be found and removed.
fn temp_path(host: &Path) -> PathBuf {
    let name = host
        .file_name()
        .map(|n| upper_case_name(&n.to_string_lossy()))
        .unwrap_or_default();
    host.with_file_name(format!("{TEMP_PREFIX}{name}"))
}

/// Writes `contents` to a fresh `temp`, lets `finish` set its metadata, and flushes it to disk.
fn write_temp(
    temp: &Path,
    contents: &[u8],
    finish: impl FnOnce(&File) -> Result<()>,
) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)
        .map_err(|e| Error::io(shown(temp), "cannot create a temporary file", &e))?;
    file.write_all(contents)
        .map_err(|e| Error::io(shown(temp), "cannot write", &e))?;
    finish(&file)?;
    file.sync_all()
        .map_err(|e| Error::io(shown(temp), "cannot flush to disk", &e))
}

/// Renames `temp` over `host` and flushes the directory so the rename survives a power loss.
fn rename_durably(temp: &Path, host: &Path) -> Result<()> {
    fs::rename(temp, host).map_err(|e| {
        Error::io(
            shown(host),
            &format!("cannot rename {} over it", temp.display()),
            &e,
        )
    })?;
    sync_parent(host)
}

/// Creates the last `count` components of `dir`, flushing each parent.
fn create_parents(dir: &Path, count: usize) -> Result<()> {
    let mut to_create: Vec<&Path> = dir.ancestors().take(count).collect();
    to_create.reverse();
    for path in to_create {
        match fs::create_dir(path) {
            Ok(()) => sync_parent(path)?,
            Err(e) if e.kind() == IoKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(shown(path), "cannot create the directory", &e)),
        }
    }
    Ok(())
}

/// Sets the NTFS security descriptor of `host` on an ntfs-3g mount and flushes it to the
/// volume (a symbolic link, an NTFS reparse point, is set but cannot be opened to be flushed:
/// the directory holding it is flushed instead).
#[cfg(unix)]
fn set_ntfs_acl(host: &Path, descriptor: &[u8]) -> Result<()> {
    xattr::set(host, NTFS_ACL, descriptor).map_err(|e| {
        Error::io(
            shown(host),
            &format!("cannot set its NTFS security descriptor ({NTFS_ACL}; run as root?)"),
            &e,
        )
    })?;
    let meta = fs::symlink_metadata(host)
        .map_err(|e| Error::io(shown(host), "cannot read metadata", &e))?;
    if meta.file_type().is_symlink() {
        return sync_parent(host);
    }
    File::open(host)
        .and_then(|file| file.sync_all())
        .map_err(|e| Error::io(shown(host), "cannot flush to disk", &e))
}

#[cfg(not(unix))]
fn set_ntfs_acl(host: &Path, _descriptor: &[u8]) -> Result<()> {
    Err(Error::other(
        Some(&shown(host)),
        "cannot set its NTFS security descriptor: no extended attributes here",
    ))
}

/// Flushes the directory holding `path`, so a new, renamed or deleted entry is on disk.
fn sync_parent(path: &Path) -> Result<()> {
    reseal_disk::sync_directory_of(path).map_err(|e| {
        Error::io(
            shown(path.parent().unwrap_or(path)),
            "cannot flush the directory to disk",
            &e,
        )
    })
}

/// Copying a file's metadata to its replacement.
#[cfg(unix)]
mod metadata {
    use std::fs::{self, File, FileTimes, Metadata};
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;
    use std::time::SystemTime;

    use super::shown;
    use crate::error::{Error, Result};

    /// ntfs-3g attributes that carry NTFS metadata but may not be listed by `listxattr`.
    const NTFS_ATTRIBUTES: &[&str] = &[
        "system.ntfs_acl",
        "system.ntfs_attrib",
        "system.ntfs_crtime",
    ];

    /// Gives `temp` (open as `file`) the owner, permissions, extended attributes and access time
    /// of `original` (at `host`); its modification time becomes now.
    pub fn copy(host: &Path, temp: &Path, file: &File, original: &Metadata) -> Result<()> {
        let current = file
            .metadata()
            .map_err(|e| Error::io(shown(temp), "cannot read metadata", &e))?;
        if (current.uid(), current.gid()) != (original.uid(), original.gid()) {
            std::os::unix::fs::chown(temp, Some(original.uid()), Some(original.gid())).map_err(
                |e| {
                    Error::io(
                        shown(host),
                        &format!(
                            "cannot keep its owner {}:{} (run as root or as its owner)",
                            original.uid(),
                            original.gid()
                        ),
                        &e,
                    )
                },
            )?;
        }
        // Attributes before permissions: a read-only mode would forbid setting them. On ntfs-3g
        // the copied system.ntfs_acl already gives the original mode, and a chmod would rewrite it.
        copy_extended_attributes(host, temp)?;
        let mode = fs::metadata(temp)
            .map_err(|e| Error::io(shown(temp), "cannot read metadata", &e))?
            .permissions();
        if mode != original.permissions() {
            fs::set_permissions(temp, original.permissions())
                .map_err(|e| Error::io(shown(host), "cannot keep its permissions", &e))?;
        }
        let accessed = original.accessed().unwrap_or_else(|_| SystemTime::now());
        file.set_times(
            FileTimes::new()
                .set_accessed(accessed)
                .set_modified(SystemTime::now()),
        )
        .map_err(|e| Error::io(shown(host), "cannot keep its access time", &e))
    }

    /// Copies every readable extended attribute of `host` to `temp`.
    fn copy_extended_attributes(host: &Path, temp: &Path) -> Result<()> {
        let mut names: Vec<String> = match xattr::list(host) {
            Ok(list) => list.map(|n| n.to_string_lossy().into_owned()).collect(),
            // The filesystem has no extended attributes at all.
            Err(_) => Vec::new(),
        };
        for name in NTFS_ATTRIBUTES {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        for name in names {
            // Attributes that cannot be read (absent, or not supported here) are not copied.
            let Ok(Some(value)) = xattr::get(host, &name) else {
                continue;
            };
            if let Err(e) = xattr::set(temp, &name, &value) {
                // Host security labels (SELinux, capabilities) belong to the host, not the image;
                // the replacement gets the labels the host gives new files.
                if name.starts_with("security.") {
                    continue;
                }
                return Err(Error::io(
                    shown(host),
                    &format!("cannot keep its extended attribute {name} (run as root?)"),
                    &e,
                ));
            }
        }
        Ok(())
    }
}

/// Copying a file's metadata to its replacement (permissions only off Unix).
#[cfg(not(unix))]
mod metadata {
    use std::fs::{self, File, Metadata};
    use std::path::Path;

    use super::shown;
    use crate::error::{Error, Result};

    /// Gives `temp` the permissions of `original`.
    pub fn copy(host: &Path, temp: &Path, _file: &File, original: &Metadata) -> Result<()> {
        fs::set_permissions(temp, original.permissions())
            .map_err(|e| Error::io(shown(host), "cannot keep its permissions", &e))
    }
}
