//! One writer per image: an advisory OS file lock (`flock(2)`, through `rustix`)
//! taken before a run reads, recovers or plans anything, and held until its target is dropped.
//!
//! - A WIM file or a disk image is locked itself (the input image of a disk run with a
//!   differencing child: the parents are only read and need none). Its holder writes its pid
//!   into [`PID_FILE_SUFFIX`] beside the image (`install.wim.reseal-lock`), for the message
//!   another run gives; the image's contents are never touched by the lock.
//! - A directory is locked through [`DIRECTORY_LOCK_FILE`] at its root, created when missing,
//!   holding its holder's pid. A holder alone on the image removes it when done, so no lock
//!   file is left in the image; a locker whose file was removed meanwhile (it then holds a lock
//!   on a file no one else can open) sees it and starts over. The directory target neither
//!   lists nor writes it.
//!
//! A run that may write or recover takes the lock exclusively; a run that only reads
//! (`inspect`, `verify`) takes it shared, so readers do not block each other but never read
//! an image a writer is changing, and never recover anything while holding it shared.

use std::fs::{self, File, OpenOptions as FileOptions};
use std::io::{ErrorKind as IoErrorKind, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::targets::{DirEntry, FileSecuritySwap, RecoveryOutcome, Target};
use reseal_nt::domain_swap::DomainSwap;

/// The lock file at the root of a directory image.
pub const DIRECTORY_LOCK_FILE: &str = "reseal.lock";

/// Appended to a WIM or disk image's file name: the file beside it that names the lock's holder.
pub const PID_FILE_SUFFIX: &str = ".reseal-lock";

/// How a run holds an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// Alone: the run may write the image or recover an interrupted run (the default).
    #[default]
    Exclusive,
    /// With other readers, never with a writer: the run only reads.
    Shared,
}

/// The lock on one image, released when dropped.
#[derive(Debug)]
pub struct ImageLock {
    /// The locked file; `None` when the image could not be locked (see [`ImageLock::acquire`]).
    file: Option<File>,
    mode: LockMode,
    /// The file that names the holder: the lock file itself for a directory.
    pid_file: PathBuf,
}

impl ImageLock {
    /// Locks the image at `path` in `mode`, waiting for other runs to release it when `wait`,
    /// else failing at once with [`crate::ErrorKind::InUse`], naming the holder's pid when it
    /// is known.
    ///
    /// A path that does not exist is not locked (opening it gives the error). Neither is a
    /// directory where the lock file cannot be created (a read-only mount, a folder of another
    /// user): no run of this user can write there either.
    pub fn acquire(path: &Path, mode: LockMode, wait: bool) -> Result<ImageLock> {
        if path.is_dir() {
            return acquire_directory(path, mode, wait);
        }
        // Opening a FIFO would block until something writes to it; a device, FIFO or socket is
        // no image file.
        if let Ok(metadata) = fs::metadata(path) {
            if !metadata.is_file() {
                return Err(Error::usage(format!(
                    "{} is a FIFO, socket or device; give a folder holding Windows, a WIM file or \
                     a disk image file",
                    path.display()
                )));
            }
        }
        let pid_file = sibling_pid_file(path);
        let file = match File::open(path) {
            Ok(file) => file,
            Err(_) => {
                return Ok(ImageLock {
                    file: None,
                    mode,
                    pid_file,
                })
            }
        };
        if !take(&file, mode, wait).map_err(|e| lock_error(path, &e))? {
            return Err(Error::in_use(
                &path.display().to_string(),
                holder(&pid_file),
            ));
        }
        // The pid is for messages only: an image beside which nothing can be written is locked
        // all the same.
        write_pid_file(&pid_file);
        Ok(ImageLock {
            file: Some(file),
            mode,
            pid_file,
        })
    }

    /// How the lock is held.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// `true` when the image is locked (see [`ImageLock::acquire`] for when it is not).
    pub fn is_held(&self) -> bool {
        self.file.is_some()
    }
}

impl Drop for ImageLock {
    fn drop(&mut self) {
        let Some(file) = &self.file else {
            return;
        };
        // Only a holder alone on the image removes the holder's file: a shared holder first
        // tries to become the only one (it never waits for that).
        if self.mode == LockMode::Exclusive
            || take(file, LockMode::Exclusive, false).unwrap_or(false)
        {
            let _ = fs::remove_file(&self.pid_file);
        }
        // Released here, not by closing the file: a process this one starts (qemu-img, a
        // test's helper) holds a copy of every descriptor from its fork until its exec, and a
        // lock lives as long as any copy does, so a run that opens the image again right after
        // would find it held ("in use by another reseal run (pid unknown)").
        let _ = rustix::fs::flock(file, rustix::fs::FlockOperation::Unlock);
    }
}

/// The file beside `image` that names the holder of its lock.
fn sibling_pid_file(image: &Path) -> PathBuf {
    let mut name = image.file_name().unwrap_or_default().to_os_string();
    name.push(PID_FILE_SUFFIX);
    image.with_file_name(name)
}

/// Options that never follow a symbolic link at the last component of the path: a link planted
/// where a lock or pid file goes must not make reseal create or write a file elsewhere
/// (`O_NOFOLLOW`: opening one fails with `ELOOP`).
fn no_follow() -> FileOptions {
    let mut options = FileOptions::new();
    options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    options
}

/// Writes this process's pid into `pid_file` as a new file. What was there is unlinked first,
/// not written through: a symbolic or hard link there must not pass the write to another file.
fn write_pid_file(pid_file: &Path) {
    let _ = fs::remove_file(pid_file);
    if let Ok(file) = no_follow().write(true).create_new(true).open(pid_file) {
        let _ = file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0);
    }
}

/// How many times a directory's lock is taken again after its file was replaced meanwhile
/// before the run gives up (each time means another run removed the file it locked).
const DIRECTORY_LOCK_ATTEMPTS: usize = 100;

/// Locks `root`'s lock file, creating it when missing.
fn acquire_directory(root: &Path, mode: LockMode, wait: bool) -> Result<ImageLock> {
    let lock_path = root.join(DIRECTORY_LOCK_FILE);
    let shown = lock_path.display().to_string();
    for _ in 0..DIRECTORY_LOCK_ATTEMPTS {
        let file = match no_follow()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
        {
            Ok(file) => file,
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                return Err(not_a_lock_file(&shown, "a symbolic link"));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    IoErrorKind::ReadOnlyFilesystem | IoErrorKind::PermissionDenied
                ) =>
            {
                return Ok(ImageLock {
                    file: None,
                    mode,
                    pid_file: lock_path,
                })
            }
            Err(e) => return Err(Error::io(&shown, "cannot create the lock file", &e)),
        };
        let metadata = file
            .metadata()
            .map_err(|e| Error::io(&shown, "cannot read the lock file's metadata", &e))?;
        if !metadata.is_file() {
            return Err(not_a_lock_file(&shown, "not a regular file"));
        }
        // Its pid is written in place: a second name would put it into another file.
        if metadata.nlink() > 1 {
            return Err(not_a_lock_file(&shown, "hard-linked to another file"));
        }
        if !take(&file, mode, wait).map_err(|e| lock_error(&lock_path, &e))? {
            return Err(Error::in_use(
                &root.display().to_string(),
                holder(&lock_path),
            ));
        }
        // The holder before us may have removed the file as we opened it: a lock on a file no
        // longer at the path locks nothing.
        let same = match (file.metadata(), fs::symlink_metadata(&lock_path)) {
            (Ok(held), Ok(there)) => held.dev() == there.dev() && held.ino() == there.ino(),
            _ => false,
        };
        if !same {
            continue;
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.write_all_at(pid.as_bytes(), 0))
            .map_err(|e| Error::io(&shown, "cannot write the lock file", &e))?;
        return Ok(ImageLock {
            file: Some(file),
            mode,
            pid_file: lock_path,
        });
    }
    Err(Error::other(
        Some(&shown),
        format!(
            "the lock file was replaced {DIRECTORY_LOCK_ATTEMPTS} times while this run took it; \
             another program keeps removing it"
        ),
    ))
}

/// The refusal of a directory whose lock file is not one this run could have made.
fn not_a_lock_file(shown: &str, what: &str) -> Error {
    Error::other(
        Some(shown),
        format!(
            "the lock file is {what}, which reseal never makes; remove it if no reseal run is \
             using the image"
        ),
    )
}

/// Takes the lock on `file`: `false` when another holds it and `wait` is not asked.
fn take(file: &File, mode: LockMode, wait: bool) -> std::io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    let operation = match (mode, wait) {
        (LockMode::Exclusive, true) => FlockOperation::LockExclusive,
        (LockMode::Shared, true) => FlockOperation::LockShared,
        (LockMode::Exclusive, false) => FlockOperation::NonBlockingLockExclusive,
        (LockMode::Shared, false) => FlockOperation::NonBlockingLockShared,
    };
    loop {
        match flock(file, operation) {
            Ok(()) => return Ok(true),
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(false),
            Err(rustix::io::Errno::INTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
}

fn lock_error(path: &Path, err: &std::io::Error) -> Error {
    Error::io(path.display().to_string(), "cannot lock", err)
}

/// The pid the holder wrote into `pid_file`; it writes it right after taking the lock, so an
/// empty file is read again for a moment.
fn holder(pid_file: &Path) -> Option<u32> {
    let read_pid = || {
        // A pid takes a few bytes; whatever else is there (a link, a device) is not read, and a
        // FIFO does not block the open.
        let no_follow_nor_block = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
        let file = FileOptions::new()
            .read(true)
            .custom_flags(no_follow_nor_block.bits() as i32)
            .open(pid_file)
            .ok()?;
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut text = String::new();
        file.take(32).read_to_string(&mut text).ok()?;
        text.lines().next()?.trim().parse().ok()
    };
    for _ in 0..20 {
        if let Some(pid) = read_pid() {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// A target with the lock on its image, released when the target is dropped (after the target
/// itself, which closes the image first). A target held shared refuses to write or recover.
pub(crate) struct LockedTarget {
    inner: Box<dyn Target>,
    lock: Arc<ImageLock>,
}

impl LockedTarget {
    pub(crate) fn new(inner: Box<dyn Target>, lock: Arc<ImageLock>) -> LockedTarget {
        LockedTarget { inner, lock }
    }

    /// Refuses a write or a recovery when the image is held shared.
    fn check_exclusive(&self) -> Result<()> {
        if self.lock.mode() == LockMode::Shared {
            return Err(Error::usage(format!(
                "{}: opened for reading only (other runs may be reading it); open it for \
                 writing to change it",
                self.inner.describe()
            )));
        }
        Ok(())
    }
}

impl Target for LockedTarget {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        self.inner.read_file(path)
    }
    fn list_dir(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>> {
        self.inner.list_dir(path)
    }
    fn exists(&mut self, path: &str) -> Result<bool> {
        self.inner.exists(path)
    }
    fn prepare_for_writes(&mut self) -> Result<()> {
        self.check_exclusive()?;
        self.inner.prepare_for_writes()
    }
    fn begin(&mut self) -> Result<()> {
        self.check_exclusive()?;
        self.inner.begin()
    }
    fn replace_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        self.inner.replace_file(path, contents)
    }
    fn create_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        self.inner.create_file(path, contents)
    }
    fn delete_file(&mut self, path: &str) -> Result<()> {
        self.inner.delete_file(path)
    }
    fn delete_dir_all(&mut self, path: &str) -> Result<()> {
        self.inner.delete_dir_all(path)
    }
    fn commit(&mut self, progress: &dyn Progress) -> Result<()> {
        self.check_exclusive()?;
        self.inner.commit(progress)
    }
    fn abort(&mut self) {
        self.inner.abort();
    }
    fn give_back(&mut self, buffer: Vec<u8>) {
        self.inner.give_back(buffer);
    }
    fn scan_file_security(&mut self, swap: &DomainSwap) -> Result<FileSecuritySwap> {
        self.inner.scan_file_security(swap)
    }
    fn swap_file_security(&mut self, swap: &DomainSwap) -> Result<FileSecuritySwap> {
        self.inner.swap_file_security(swap)
    }
    fn has_interrupted_run(&mut self) -> Result<bool> {
        self.inner.has_interrupted_run()
    }
    fn recover(&mut self) -> Result<Option<RecoveryOutcome>> {
        if !self.inner.has_interrupted_run()? {
            return self.inner.recover();
        }
        self.check_exclusive()?;
        self.inner.recover()
    }
    fn set_entropy(&mut self, entropy: reseal_nt::Entropy) {
        self.inner.set_entropy(entropy);
    }
    fn disk_container(&mut self) -> Result<Option<crate::inspect::DiskContainer>> {
        self.inner.disk_container()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of the lock's descriptor (what a forked child holds until it execs) does not keep
    /// the image locked once the lock is dropped.
    #[test]
    fn a_dropped_lock_is_released_while_a_copy_of_its_descriptor_lives() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.raw");
        fs::write(&image, b"image").unwrap();
        let lock = ImageLock::acquire(&image, LockMode::Exclusive, false).unwrap();
        let copy = lock.file.as_ref().unwrap().try_clone().unwrap();
        drop(lock);
        let again = ImageLock::acquire(&image, LockMode::Exclusive, false);
        assert!(again.is_ok(), "{:?}", again.err());
        drop(copy);
    }
}
