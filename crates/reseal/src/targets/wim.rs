//! [`WimTarget`]: one image of a WIM (or ESD) file, edited in place without extracting it.
//!
//! Reads go straight to the WIM's resources. Writes are staged in `reseal-wim`'s batch mode and
//! reach the file only in [`Target::commit`]: new blobs, one metadata resource, the blob table and
//! the XML are appended, and the header is rewritten last. Until that header write the file
//! describes the original image, so a run is all-or-nothing without a journal, and there is
//! never anything to recover. Dropping the target without committing, or [`Target::abort`],
//! discards the staged edits.
//!
//! The file is opened read-only and parsed once per run; [`Target::begin`] only reopens it for
//! update, so `inspect` works on a WIM the user may not write.

use std::path::{Path, PathBuf};

use reseal_wim::WimImage;

use super::{path_components, DirEntry, FileSecuritySwap, RecoveryOutcome, Target};
use crate::error::{Error, ErrorKind, Remedy, Result};
use crate::progress::{in_phase, Progress};
use reseal_nt::domain_swap::DomainSwap;

/// The first eight bytes of every WIM, ESD and SWM file.
pub const WIM_MAGIC: &[u8; 8] = b"MSWIM\0\0\0";

/// `true` when `path` is a WIM file: its name ends in `.wim` or `.esd` (any case), or it is a
/// file that starts with the WIM magic (`.swm` parts, renamed files).
pub fn is_wim_file(path: &Path) -> bool {
    let by_extension = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("wim") || e.eq_ignore_ascii_case("esd"));
    by_extension || starts_with_wim_magic(path)
}

/// `true` when `path` is a regular file whose first bytes are the WIM magic.
fn starts_with_wim_magic(path: &Path) -> bool {
    use std::io::Read;
    if !path.is_file() {
        return false;
    }
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .is_ok_and(|()| &magic == WIM_MAGIC)
}

/// One image of a WIM file.
pub struct WimTarget {
    path: PathBuf,
    image: WimImage,
    /// The image's name in the WIM's XML data, for messages.
    name: Option<String>,
    writable: bool,
    /// Set when several images are edited for one commit: [`Target::commit`] leaves the edits
    /// staged, and [`WimTarget::commit_all`] writes them.
    deferred: bool,
}

/// An image a WIM file holds, as its XML data describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WimImageInfo {
    /// The 1-based image index.
    pub index: u32,
    /// The image name, when the XML data gives one.
    pub name: Option<String>,
}

impl std::fmt::Display for WimImageInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{}: {name}", self.index),
            None => write!(f, "{}", self.index),
        }
    }
}

impl WimTarget {
    /// Opens image `selector` (a 1-based index or an image name) of the WIM file at `path`.
    pub fn open(path: &Path, selector: &str) -> Result<WimTarget> {
        WimTarget::open_selected(path, Some(selector))
    }

    /// Opens the WIM file at `path` once and the image `selector` chooses (a 1-based index or
    /// an image name), or its only image when `selector` is `None`; a WIM with several images
    /// needs one chosen (the error lists them).
    pub fn open_selected(path: &Path, selector: Option<&str>) -> Result<WimTarget> {
        let wim = reseal_wim::Wim::open(path).map_err(from_wim)?;
        let selector = match selector {
            Some(selector) => selector.to_string(),
            None if wim.image_count() == 1 => "1".to_string(),
            None => {
                let images = image_list(&wim);
                let list: Vec<String> = images.iter().map(ToString::to_string).collect();
                return Err(Error {
                    remedy: Some(Remedy::ChooseWimImage),
                    ..Error::usage(format!(
                        "{} holds {} images: {}",
                        path.display(),
                        images.len(),
                        list.join(", ")
                    ))
                });
            }
        };
        let image = WimImage::from_wim(wim, &selector).map_err(from_wim)?;
        let name = image_name(&image);
        Ok(WimTarget {
            path: path.to_path_buf(),
            image,
            name,
            writable: false,
            deferred: false,
        })
    }

    /// The images the WIM file at `path` holds, in index order.
    pub fn list_images(path: &Path) -> Result<Vec<WimImageInfo>> {
        let wim = reseal_wim::Wim::open(path).map_err(from_wim)?;
        Ok(image_list(&wim))
    }

    /// The WIM file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The 1-based index of the image.
    pub fn index(&self) -> u32 {
        self.image.index()
    }

    /// The image's name in the WIM's XML data, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Makes [`Target::commit`] leave the edits staged, so that the edits of several images
    /// (see [`WimTarget::select_image`]) reach the file by one [`WimTarget::commit_all`].
    pub(crate) fn defer_commits(&mut self) {
        self.deferred = true;
    }

    /// Moves to image `selector` of the same file; what is staged on the image left stays
    /// staged, for [`WimTarget::commit_all`].
    pub(crate) fn select_image(&mut self, selector: &str) -> Result<()> {
        self.image.select_image(selector).map_err(from_wim)?;
        self.name = image_name(&self.image);
        Ok(())
    }

    /// Writes the staged edits of every image in one update: the file then holds every new
    /// image, or, after a failure or a crash, every old one.
    pub(crate) fn commit_all(&mut self, progress: &dyn Progress) -> Result<()> {
        if !self.writable {
            return Ok(());
        }
        in_phase(progress, "writing the changes into the WIM file", || {
            self.image.commit().map_err(from_wim)
        })?;
        self.writable = false;
        Ok(())
    }

    /// The image, open for update: only inside a transaction.
    fn writable_image(&mut self) -> Result<&mut WimImage> {
        if !self.writable {
            return Err(Error::usage(format!(
                "{}: a write outside a transaction (begin one first)",
                self.describe()
            )));
        }
        Ok(&mut self.image)
    }
}

impl From<reseal_wim::EntryInfo> for DirEntry {
    fn from(entry: reseal_wim::EntryInfo) -> DirEntry {
        DirEntry {
            name: entry.name,
            is_dir: entry.is_dir,
            size: entry.size,
        }
    }
}

/// The images `wim` holds, in index order, named as its XML data names them.
fn image_list(wim: &reseal_wim::Wim) -> Vec<WimImageInfo> {
    let names = wim.images();
    (1..=wim.image_count())
        .map(|index| WimImageInfo {
            index,
            name: names
                .iter()
                .find(|image| image.index == index)
                .and_then(|image| image.name.clone()),
        })
        .collect()
}

/// The name the XML data gives the open image.
fn image_name(image: &WimImage) -> Option<String> {
    image
        .wim()
        .images()
        .into_iter()
        .find(|info| info.index == image.index())
        .and_then(|info| info.name)
}

/// `path` checked (no escape from the image) and joined with `\`, as reseal-wim expects.
fn wim_path(path: &str) -> Result<String> {
    Ok(path_components(path)?.join("\\"))
}

/// A `reseal-wim` error as a reseal error: damaged structures and unsupported WIM features
/// (split, pipable, encrypted files) are corrupt or unsupported input ([`ErrorKind::CorruptInput`]). The message
/// already names the WIM file, the structure and the reason.
pub fn from_wim(err: reseal_wim::Error) -> Error {
    let kind = match &err {
        reseal_wim::Error::Io { .. } => ErrorKind::Other,
        reseal_wim::Error::Corrupt { .. } | reseal_wim::Error::Unsupported { .. } => {
            ErrorKind::CorruptInput
        }
        reseal_wim::Error::Usage { .. } => ErrorKind::Usage,
    };
    Error::wrap(kind, None, err)
}

impl Target for WimTarget {
    fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!(
                "WIM image {} ({name}) of {}",
                self.image.index(),
                self.path.display()
            ),
            None => format!(
                "WIM image {} of {}",
                self.image.index(),
                self.path.display()
            ),
        }
    }

    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        let path = wim_path(path)?;
        self.image.read_file(&path).map_err(from_wim)
    }

    fn list_dir(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>> {
        let path = wim_path(path)?;
        let entries = self.image.list_dir(&path).map_err(from_wim)?;
        Ok(entries.map(|entries| entries.into_iter().map(DirEntry::from).collect()))
    }

    fn exists(&mut self, path: &str) -> Result<bool> {
        let path = wim_path(path)?;
        Ok(self.image.exists(&path))
    }

    fn replace_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        let path = wim_path(path)?;
        self.writable_image()?
            .replace_file(&path, contents)
            .map_err(from_wim)
    }

    fn create_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        let path = wim_path(path)?;
        if self.image.exists(&path) {
            return Err(Error::other(
                Some(&path),
                format!("cannot create: it already exists in {}", self.describe()),
            ));
        }
        self.writable_image()?
            .create_file(&path, contents)
            .map_err(from_wim)
    }

    fn delete_file(&mut self, path: &str) -> Result<()> {
        let path = wim_path(path)?;
        match self.image.lookup(&path) {
            None => Ok(()),
            Some(entry) if entry.is_dir() => Err(Error::other(
                Some(&path),
                "cannot delete as a file: it is a directory",
            )),
            Some(_) => self
                .writable_image()?
                .delete(&path)
                .map(drop)
                .map_err(from_wim),
        }
    }

    fn delete_dir_all(&mut self, path: &str) -> Result<()> {
        let path = wim_path(path)?;
        match self.image.lookup(&path) {
            None => Ok(()),
            Some(entry) if !entry.is_dir() => Err(Error::other(
                Some(&path),
                "cannot delete as a directory: it is a file",
            )),
            Some(_) => self
                .writable_image()?
                .delete(&path)
                .map(drop)
                .map_err(from_wim),
        }
    }

    fn set_entropy(&mut self, entropy: reseal_nt::Entropy) {
        self.image.set_fixed_time(entropy.fixed_time());
    }

    fn begin(&mut self) -> Result<()> {
        if self.writable {
            return Ok(());
        }
        // The file is reopened for writing, not read again: what was read stays valid unless
        // the file changed meanwhile, which the reopening refuses.
        self.image.reopen_for_update().map_err(from_wim)?;
        self.image.set_batch(true);
        self.writable = true;
        Ok(())
    }

    fn commit(&mut self, progress: &dyn Progress) -> Result<()> {
        if !self.writable || self.deferred {
            return Ok(());
        }
        in_phase(progress, "writing the changes into the image", || {
            self.image.commit().map_err(from_wim)
        })?;
        self.writable = false;
        Ok(())
    }

    fn abort(&mut self) {
        if !self.writable {
            return;
        }
        // The staged edits live in memory and their blobs after the file's committed end:
        // cutting those off and reloading the image drops them, leaving the file as it was.
        // Should the reload fail, the image stays as staged but can no longer be written.
        let _ = self.image.discard_staged();
        let index = self.image.index().to_string();
        if let Ok(image) = WimImage::open(&self.path, &index, false) {
            self.image = image;
        }
        self.writable = false;
    }

    fn give_back(&mut self, buffer: Vec<u8>) {
        self.image.give_back(buffer);
    }

    fn scan_file_security(&mut self, swap: &DomainSwap) -> Result<FileSecuritySwap> {
        let planned = self.image.domain_swap(swap).map_err(from_wim)?;
        Ok(FileSecuritySwap {
            descriptors: planned.descriptors.len() as u64,
            files: planned.files,
        })
    }

    /// The image's security table edited where it stands (every descriptor keeps its length),
    /// written with the metadata resource at commit.
    fn swap_file_security(&mut self, swap: &DomainSwap) -> Result<FileSecuritySwap> {
        let done = self.writable_image()?.swap_domain(swap).map_err(from_wim)?;
        Ok(FileSecuritySwap {
            descriptors: done.descriptors.len() as u64,
            files: done.files,
        })
    }

    fn has_interrupted_run(&mut self) -> Result<bool> {
        Ok(false)
    }

    fn recover(&mut self) -> Result<Option<RecoveryOutcome>> {
        Ok(None)
    }
}
