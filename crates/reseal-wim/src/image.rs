//! One image of a WIM file seen through paths: [`WimImage`] looks up, reads, lists, replaces,
//! creates and deletes by a Windows path, relative to the image root, compared
//! case-insensitively, over the [`Wim`] handle and the image's [`ImageMetadata`].

use std::path::Path;

use crate::dentry::{self, Dentry, FILE_ATTRIBUTE_ENCRYPTED};
use crate::error::{Error, Malformed, Result};
use crate::metadata::ImageMetadata;
use crate::wim::Wim;
use crate::writer::WimWriter;
use reseal_nt::domain_swap::DomainSwap;

/// One entry of [`WimImage::list_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    pub name: String,
    pub is_dir: bool,
    /// Size of the unnamed data stream (0 for directories).
    pub size: u64,
}

/// What replacing one account-domain SID by another changes in an image's security data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescriptorSwap {
    /// `(security id, descriptor with the SIDs replaced)` for each descriptor that names a SID
    /// of the old domain, in security-id order.
    pub descriptors: Vec<(usize, Vec<u8>)>,
    /// The dentries (names: a file with two hard links counts twice) whose descriptor is one
    /// of them.
    pub files: u64,
}

/// One image of a WIM file, with the file operations a reseal target needs. Paths are relative
/// to the image root, separated by `\` or `/`, compared case-insensitively.
pub struct WimImage {
    wim: Wim,
    index: u32,
    metadata: ImageMetadata,
}

impl WimImage {
    /// Opens image `selector` (a 1-based number or a name) of `path`, for reading or updates.
    pub fn open(path: impl AsRef<Path>, selector: &str, writable: bool) -> Result<Self> {
        Self::from_wim(Wim::open_with(path.as_ref(), writable)?, selector)
    }

    /// Image `selector` (a 1-based number or a name) of the WIM file already open as `wim`.
    pub fn from_wim(mut wim: Wim, selector: &str) -> Result<Self> {
        let index = wim.resolve_image(selector)?;
        let metadata = wim.load_image(index)?;
        Ok(Self {
            wim,
            index,
            metadata,
        })
    }

    /// Moves to image `selector` (a 1-based number or a name) of the same file. Edits staged
    /// on the image left stay staged, set aside (see [`Wim::set_aside`]): the next
    /// [`WimImage::commit`] writes every edited image in one update, so the file holds all the
    /// old images or all the new ones. Coming back to an image set aside resumes its edits.
    pub fn select_image(&mut self, selector: &str) -> Result<()> {
        let next = self.wim.resolve_image(selector)?;
        if next == self.index {
            return Ok(());
        }
        self.metadata = self.wim.set_aside(self.index, &self.metadata, next)?;
        self.index = next;
        Ok(())
    }

    /// Makes the image writable without reading it again (see [`Wim::reopen_for_update`]).
    pub fn reopen_for_update(&mut self) -> Result<()> {
        self.wim.reopen_for_update()
    }

    pub fn wim(&self) -> &Wim {
        &self.wim
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn metadata(&self) -> &ImageMetadata {
        &self.metadata
    }

    pub fn lookup(&self, path: &str) -> Option<&Dentry> {
        self.metadata
            .lookup(path)
            .map(|i| &self.metadata.dentries[i])
    }

    pub fn exists(&self, path: &str) -> bool {
        self.metadata.lookup(path).is_some()
    }

    /// The contents of the file's unnamed data stream; `None` when nothing is at `path`.
    pub fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        let Some(index) = self.metadata.lookup(path) else {
            return Ok(None);
        };
        let dentry = &self.metadata.dentries[index];
        if dentry.is_dir() {
            return Err(self.wim.usage(format!("{path:?} is a directory")));
        }
        if dentry.attributes & FILE_ATTRIBUTE_ENCRYPTED != 0 {
            return Err(Error::from_malformed(
                &self.wim.path,
                Malformed::unsupported("dentry", format!("{path:?} is encrypted (EFS)")),
            ));
        }
        let hash = dentry.data_hash();
        self.wim.read_blob(&hash).map(Some)
    }

    /// The contents of the alternate data stream `name` (case-insensitive) of the file at
    /// `path`; `None` when the file or the stream does not exist.
    pub fn read_named_stream(&mut self, path: &str, name: &str) -> Result<Option<Vec<u8>>> {
        let Some(index) = self.metadata.lookup(path) else {
            return Ok(None);
        };
        let wanted = reseal_nt::upcase::upcase_str(name);
        let stream = self.metadata.dentries[index]
            .named_streams
            .iter()
            .find(|stream| reseal_nt::upcase::upcase_str(&stream.name) == wanted);
        match stream.map(|stream| stream.hash) {
            Some(hash) => self.wim.read_blob(&hash).map(Some),
            None => Ok(None),
        }
    }

    /// The entries of the directory at `path` (`""` = the root) in on-disk order; `None` when
    /// it does not exist.
    pub fn list_dir(&self, path: &str) -> Result<Option<Vec<EntryInfo>>> {
        let Some(index) = self.metadata.lookup(path) else {
            return Ok(None);
        };
        let dir = &self.metadata.dentries[index];
        if !dir.is_dir() {
            return Err(self.wim.usage(format!("{path:?} is not a directory")));
        }
        let entries = dir
            .children
            .iter()
            .map(|&child| {
                let dentry = &self.metadata.dentries[child];
                EntryInfo {
                    name: dentry.name.clone(),
                    is_dir: dentry.is_dir(),
                    size: if dentry.is_dir() {
                        0
                    } else {
                        self.wim.blob_size(&dentry.data_hash()).unwrap_or(0)
                    },
                }
            })
            .collect();
        Ok(Some(entries))
    }

    /// Replaces the contents of the existing file at `path`, keeping its metadata, and commits
    /// the change to the WIM file (see [`Wim::replace_file_data`]).
    pub fn replace_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        let Some(index) = self.metadata.lookup(path) else {
            return Err(self
                .wim
                .usage(format!("{path:?} does not exist in image {}", self.index)));
        };
        self.wim
            .replace_file_data(self.index, &mut self.metadata, index, contents)
    }

    /// The descriptors of the image's security data that name a SID of `swap`'s old domain,
    /// with those SIDs replaced (lengths kept), and the dentries using them. A descriptor that
    /// does not parse is corrupt input: nothing damaged is edited.
    pub fn domain_swap(&self, swap: &DomainSwap) -> Result<DescriptorSwap> {
        let mut descriptors = Vec::new();
        for (id, descriptor) in self.metadata.security.descriptors.iter().enumerate() {
            let swapped = swap.swap_in_descriptor(descriptor).map_err(|e| {
                Error::from_malformed(
                    &self.wim.path,
                    Malformed::new("security data", format!("descriptor {id}: {e}")),
                )
            })?;
            if let Some(swapped) = swapped {
                descriptors.push((id, swapped));
            }
        }
        let files = (0..self.metadata.dentries.len())
            .filter(|&i| self.metadata.is_linked(i))
            .filter(|&i| {
                let id = self.metadata.dentries[i].security_id;
                id >= 0
                    && descriptors
                        .binary_search_by_key(&(id as usize), |(id, _)| *id)
                        .is_ok()
            })
            .count() as u64;
        Ok(DescriptorSwap { descriptors, files })
    }

    /// Replaces `swap`'s old domain SID by the new one in every descriptor of the image's
    /// security data that names it, and commits (see [`WimImage::set_batch`]); returns what it
    /// changed.
    pub fn swap_domain(&mut self, swap: &DomainSwap) -> Result<DescriptorSwap> {
        let planned = self.domain_swap(swap)?;
        self.wim.replace_descriptors(
            self.index,
            &mut self.metadata,
            planned.descriptors.clone(),
        )?;
        Ok(planned)
    }

    /// Stages the following edits until [`WimImage::commit`] (see [`Wim::set_batch`]): one
    /// metadata resource, blob table and header are written for all of them. Dropping the
    /// image without committing discards them and leaves the file as it was.
    pub fn set_batch(&mut self, batch: bool) {
        self.wim.set_batch(batch);
    }

    /// Stamps new and replaced files and the XML with `time` (see [`Wim::set_fixed_time`]).
    pub fn set_fixed_time(&mut self, time: Option<reseal_nt::FileTime>) {
        self.wim.set_fixed_time(time);
    }

    /// Makes updates write through `writer` (see [`Wim::set_writer`]).
    #[doc(hidden)]
    pub fn set_writer(&mut self, writer: Box<dyn WimWriter>) {
        self.wim.set_writer(writer);
    }

    /// Drops the staged edits of every image and cuts off the blobs they appended (see
    /// [`Wim::discard_staged`]); the image is read again from the file.
    pub fn discard_staged(&mut self) -> Result<()> {
        self.wim.discard_staged();
        self.metadata = self.wim.load_image(self.index)?;
        Ok(())
    }

    /// Takes back a buffer the caller is done with, for a later read (see [`Wim::give_back`]).
    pub fn give_back(&mut self, buffer: Vec<u8>) {
        self.wim.give_back(buffer);
    }

    /// Writes the staged edits.
    pub fn commit(&mut self) -> Result<()> {
        self.wim.commit(&mut self.metadata)
    }

    /// Creates the file at `path` (it must not exist), creating missing parent directories,
    /// and commits. New entries inherit their security descriptor from their parent.
    pub fn create_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        let (parent, name) = self.parent_for_create(path)?;
        self.wim
            .create(
                self.index,
                &mut self.metadata,
                parent,
                &name,
                Some(contents),
            )
            .map(drop)
    }

    /// Creates the directory at `path` and any missing parents; an existing directory is fine.
    pub fn create_dir_all(&mut self, path: &str) -> Result<()> {
        let mut current = 0usize;
        let mut so_far = String::new();
        for component in path
            .split(['\\', '/'])
            .filter(|c| !c.is_empty() && *c != ".")
        {
            if !so_far.is_empty() {
                so_far.push('\\');
            }
            so_far.push_str(component);
            current = match self.metadata.lookup(&so_far) {
                Some(existing)
                    if dentry::has_child_list(self.metadata.dentries[existing].attributes) =>
                {
                    existing
                }
                Some(_) => {
                    return Err(self
                        .wim
                        .usage(format!("{so_far:?} exists and is not a directory")))
                }
                None => {
                    self.wim
                        .create(self.index, &mut self.metadata, current, component, None)?
                }
            };
        }
        Ok(())
    }

    /// Deletes the file or directory (with its contents) at `path` and commits; `false` when
    /// nothing was there.
    pub fn delete(&mut self, path: &str) -> Result<bool> {
        let Some(index) = self.metadata.lookup(path) else {
            return Ok(false);
        };
        self.wim.delete(self.index, &mut self.metadata, index)?;
        Ok(true)
    }

    fn parent_for_create(&mut self, path: &str) -> Result<(usize, String)> {
        let components: Vec<&str> = path
            .split(['\\', '/'])
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        let Some((name, parents)) = components.split_last() else {
            return Err(self.wim.usage(format!("{path:?} names no file")));
        };
        let parent_path = parents.join("\\");
        self.create_dir_all(&parent_path)?;
        let parent = self.metadata.lookup(&parent_path).expect("created above");
        Ok((parent, (*name).to_string()))
    }
}
