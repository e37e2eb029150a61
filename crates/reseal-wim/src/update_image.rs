//! Edits of one image's dentry tree: replace a file's data, create a file or directory, delete
//! a subtree (wimlib's `update_image.c`).
//!
//! Each edit stores its new blob and changes the in-memory tree, then is written at once or,
//! in batch mode, staged: a replaced file's dentry is patched in place, while deletes and
//! creates leave the tree to be serialized once, by the commit, however many there were.

use crate::blob_table::ZERO_HASH;
use crate::dentry::{self, FILE_ATTRIBUTE_ENCRYPTED};
use crate::error::{Error, Malformed, Result};
use crate::metadata::ImageMetadata;
use crate::wim::Wim;
use crate::write::Update;
use reseal_nt::security_descriptor::{self, ObjectKind};

impl Wim {
    /// Replaces the contents of the file `dentry` in `image` (image number `index`) and
    /// commits the change to the WIM file. The dentry and its hard links keep everything
    /// (security descriptor, attributes, creation and access times, short name, alternate data
    /// streams, object id) except the data and the last write time, which becomes now. The
    /// metadata resource is patched in place: no other byte of it changes.
    pub fn replace_file_data(
        &mut self,
        index: u32,
        image: &mut ImageMetadata,
        dentry: usize,
        contents: &[u8],
    ) -> Result<()> {
        let target = &image.dentries[dentry];
        let shown = image.path_of(dentry);
        if target.is_dir() {
            return Err(self.usage(format!("{shown:?} is a directory")));
        }
        if target.attributes & FILE_ATTRIBUTE_ENCRYPTED != 0 {
            return Err(Error::from_malformed(
                &self.path,
                Malformed::unsupported("dentry", format!("{shown:?} is encrypted (EFS)")),
            ));
        }
        if !image.can_patch_data(dentry) {
            return Err(Error::from_malformed(
                &self.path,
                Malformed::unsupported(
                    "dentry",
                    format!("{shown:?} is a reparse point without a data stream entry"),
                ),
            ));
        }
        let old_hash = target.data_hash();
        let links = image.hard_links(dentry).len() as u32;
        self.edit(index, image, |wim, update, image| {
            let new_hash = update.store_blob(wim, contents, links, Some(&old_hash))?;
            update.release_blob(&old_hash, links);
            image.patch_data(dentry, new_hash, wim.now().0);
            Ok(())
        })
    }

    /// Replaces descriptors of `image`'s security data, each by one of the same length
    /// (`(security id, descriptor)`), and commits the change. The dentries keep their security
    /// ids; no blob changes.
    pub fn replace_descriptors(
        &mut self,
        index: u32,
        image: &mut ImageMetadata,
        replacements: Vec<(usize, Vec<u8>)>,
    ) -> Result<()> {
        if replacements.is_empty() {
            return Ok(());
        }
        self.edit(index, image, |wim, _, image| {
            // Checked first, so a refused replacement leaves every descriptor as it was.
            for (id, descriptor) in &replacements {
                let old_len = image.security.descriptors.get(*id).map(Vec::len);
                if old_len != Some(descriptor.len()) {
                    return Err(Error::from_malformed(
                        &wim.path,
                        Malformed::new(
                            "security data",
                            format!(
                                "descriptor {id} ({old_len:?} bytes) cannot be replaced by one of {} bytes",
                                descriptor.len()
                            ),
                        ),
                    ));
                }
            }
            for (id, descriptor) in replacements {
                image
                    .replace_descriptor(id, descriptor)
                    .map_err(|m| Error::from_malformed(&wim.path, m))?;
            }
            Ok(())
        })
    }

    /// Deletes `dentry` of `image` with everything below it and commits the change. The blobs
    /// it referenced lose those references (their bytes stay where they are, unused).
    pub fn delete(&mut self, index: u32, image: &mut ImageMetadata, dentry: usize) -> Result<()> {
        if dentry == 0 {
            return Err(self.usage("the root directory cannot be deleted".into()));
        }
        self.edit(index, image, |_, update, image| {
            for i in image.subtree(dentry) {
                let removed = &image.dentries[i];
                let streams = removed
                    .data
                    .iter()
                    .chain(removed.reparse_data.iter())
                    .chain(removed.named_streams.iter());
                for stream in streams {
                    update.release_blob(&stream.hash, 1);
                }
            }
            image.unlink(dentry);
            Ok(())
        })
    }

    /// Creates `name` in the directory `parent` of `image`: a file with `contents`, or an empty
    /// directory when `contents` is `None`, and commits the change. Its security descriptor is
    /// the one Windows gives a new file there ([`security_descriptor::inherit`], the same for
    /// every reseal target), from the nearest ancestor that has a descriptor; only an image
    /// without any descriptor gives none.
    pub fn create(
        &mut self,
        index: u32,
        image: &mut ImageMetadata,
        parent: usize,
        name: &str,
        contents: Option<&[u8]>,
    ) -> Result<usize> {
        if name.is_empty() || name.contains(['\\', '/', ':', '\0']) || name == "." || name == ".." {
            return Err(self.usage(format!("{name:?} is not a valid file name")));
        }
        if !dentry::has_child_list(image.dentries[parent].attributes) {
            return Err(self.usage(format!("{:?} is not a directory", image.path_of(parent))));
        }
        let wanted = reseal_nt::upcase::upcase_str(name);
        if image.dentries[parent]
            .children
            .iter()
            .any(|&c| reseal_nt::upcase::upcase_str(&image.dentries[c].name) == wanted)
        {
            return Err(self.usage(format!(
                "{name:?} already exists in {:?}",
                image.path_of(parent)
            )));
        }
        let mut ancestor = Some(parent);
        let mut parent_descriptor = None;
        while let (Some(i), None) = (ancestor, &parent_descriptor) {
            parent_descriptor = image.security_descriptor(i).map(<[u8]>::to_vec);
            ancestor = image.dentries[i].parent;
        }
        let kind = match contents {
            Some(_) => ObjectKind::File,
            None => ObjectKind::Directory,
        };
        let inherited = parent_descriptor
            .map(|descriptor| security_descriptor::inherit(&descriptor, kind))
            .transpose()
            .map_err(|e| {
                Error::from_malformed(
                    &self.path,
                    Malformed::new("security descriptor", e.to_string()),
                )
            })?;
        let created_path = match image.path_of(parent) {
            parent_path if parent_path.is_empty() => name.to_string(),
            parent_path => format!("{parent_path}\\{name}"),
        };
        self.edit(index, image, |wim, update, image| {
            let (security_id, new_descriptor) = match inherited {
                Some(descriptor) => match image.security_id_of(&descriptor) {
                    Some(id) => (id, None),
                    None => (image.security.descriptors.len() as i32, Some(descriptor)),
                },
                None => (-1, None),
            };
            let (attributes, hash) = match contents {
                Some(data) => (
                    FILE_ATTRIBUTE_ARCHIVE,
                    update.store_blob(wim, data, 1, None)?,
                ),
                None => (dentry::FILE_ATTRIBUTE_DIRECTORY, ZERO_HASH),
            };
            let bytes = dentry::new_dentry_bytes(name, attributes, security_id, wim.now().0, &hash);
            image
                .add_child(parent, bytes, new_descriptor)
                .map_err(|m| {
                    // The blob stays appended, unused; its reference goes.
                    update.release_blob(&hash, 1);
                    Error::from_malformed(&wim.path, m)
                })?;
            Ok(())
        })?;
        // Written edits renumber the dentries: find the new one by its path.
        image.lookup(&created_path).ok_or_else(|| {
            self.corrupt(
                "dentry tree",
                format!("{created_path:?} is missing after its creation"),
            )
        })
    }

    /// Stages edits instead of writing each one (`true`), or writes each edit when it is made
    /// (`false`, the default). Staged edits reach the file only through [`Wim::commit`]; until
    /// then the file shows the image as it was (new blobs are appended, unreferenced).
    pub fn set_batch(&mut self, batch: bool) {
        self.batch = batch;
    }

    /// `true` when edits are staged and not yet written.
    pub fn has_pending_changes(&self) -> bool {
        self.pending.is_some()
    }

    /// Makes one edit of image `index`: `change` stores blobs and adjusts references in the
    /// update and changes `image`, and must leave both as they were when it fails. When
    /// batching, the edit joins the staged ones; otherwise it is written now, with any staged
    /// edits, and `image` changes only when the write succeeds.
    fn edit<T>(
        &mut self,
        index: u32,
        image: &mut ImageMetadata,
        change: impl FnOnce(&mut Self, &mut Update, &mut ImageMetadata) -> Result<T>,
    ) -> Result<T> {
        self.check_writable()?;
        let (mut update, was_staged) = match self.pending.take() {
            Some((staged, update)) if staged == index => (update, true),
            Some((staged, update)) => {
                self.pending = Some((staged, update));
                return Err(self.usage(format!(
                    "image {staged} has staged edits: commit them before editing image {index}"
                )));
            }
            None => (Update::new(self), false),
        };
        // What the file held before this edit appended anything: a failed edit cuts it back.
        let keep_len = update.write_at;
        if self.batch {
            let result = change(self, &mut update, image);
            match result {
                Ok(_) => update.current_edited = true,
                Err(_) => self.discard_after(keep_len),
            }
            if result.is_ok() || was_staged {
                self.pending = Some((index, update));
            }
            return result;
        }
        let staged = was_staged.then(|| update.clone());
        let mut edited = image.clone();
        let result = match change(self, &mut update, &mut edited) {
            Ok(value) => {
                update.current_edited = true;
                self.write_update(index, &mut edited, update, keep_len)
                    .map(|()| value)
            }
            Err(err) => {
                self.discard_after(keep_len);
                Err(err)
            }
        };
        match result {
            Ok(value) => {
                *image = edited;
                Ok(value)
            }
            Err(err) => {
                self.pending = staged.map(|update| (index, update));
                Err(err)
            }
        }
    }

    /// Refuses edits on a handle opened read-only or after a header write that failed.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if !self.writable {
            Err(self.usage("opened read-only; use Wim::open_for_update".into()))
        } else if self.header_in_doubt {
            Err(self
                .usage("a header write failed: reopen the file to see which image it holds".into()))
        } else {
            Ok(())
        }
    }
}

const FILE_ATTRIBUTE_ARCHIVE: u32 = 0x20;
