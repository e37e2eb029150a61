//! A WIM file opened for reading, and for in-place updates of one image.
//!
//! Reads touch only the header, the blob table, the XML data, the selected image's metadata
//! resource and the chunks of the blobs asked for.
//!
//! An update appends, after everything the file holds, in this order: the new blob (unless a
//! blob with the same hash is already stored), the image's new metadata resource, a new blob
//! table, new XML data and, if the file had one, a new integrity table; then it rewrites the
//! 208-byte header. Until that last write the old header points at the old, untouched
//! structures, so an interrupted update leaves the original image (plus unused bytes at the
//! end). This is wimlib's append mode. An update that fails before the header write cuts
//! the file back to its length before the update, as wimlib does; one whose header write
//! fails leaves a file holding the old or the new image, and the handle refuses to write more.
//! All writes go through a [`WimWriter`], which tests wrap to fail at each step.
//!
//! In batch mode each edit appends its new blob and changes the in-memory tree only; a
//! replaced file's dentry is patched in place, while deletes and creates leave the tree to be
//! serialized once, by the commit, however many there were.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha1::{Digest, Sha1 as Sha1Hasher};

use crate::blob_table::{BlobEntry, BlobTable, Sha1, ZERO_HASH};
use crate::dentry::{self, Dentry, FILE_ATTRIBUTE_ENCRYPTED};
use crate::error::{Error, Malformed, Result};
use crate::header::{
    Header, ResourceHeader, FLAG_COMPRESSION, FLAG_READONLY, HEADER_SIZE, RESOURCE_METADATA,
    VERSION_SOLID,
};
use crate::integrity;
use crate::metadata::ImageMetadata;
use crate::resource::{self, Decompressors, ResourceSpec};
use crate::writer::WimWriter;
use crate::xml::{ImageInfo, XmlData};
use reseal_nt::security_descriptor::{self, ObjectKind};
use reseal_wimlib_sys::Codec;

/// The XML data is read whole; real ones are a few kilobytes.
const MAX_XML_SIZE: u64 = 64 << 20;

/// An open WIM file (one part, not pipable).
pub struct Wim {
    path: PathBuf,
    /// Reads go here.
    file: File,
    /// Writes go here: the same file (or, in tests, a wrapper around it).
    writer: Box<dyn WimWriter>,
    /// Set while the header is being written and left set when that fails: the file then
    /// holds the old or the new image, and this handle writes nothing more.
    header_in_doubt: bool,
    file_len: u64,
    writable: bool,
    /// When set, edits are staged and written by [`Wim::commit`].
    batch: bool,
    /// The staged update and the image it is for.
    pending: Option<(u32, Update)>,
    header: Header,
    blob_table: BlobTable,
    xml: XmlData,
    decompressors: Decompressors,
}

impl Wim {
    /// Opens `path` for reading.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path.as_ref(), false)
    }

    /// Opens `path` for reading and in-place updates.
    pub fn open_for_update(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path.as_ref(), true)
    }

    fn open_with(path: &Path, writable: bool) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| {
                Error::io(
                    path,
                    if writable {
                        "opening for update"
                    } else {
                        "opening"
                    },
                    e,
                )
            })?;
        let file_len = file
            .metadata()
            .map_err(|e| Error::io(path, "reading the file size", e))?
            .len();
        let mut raw = vec![0u8; HEADER_SIZE.min(file_len as usize)];
        resource::read_at(&file, path, file_len, 0, &mut raw, "header")?;
        let header = Header::parse(&raw).map_err(|m| Error::from_malformed(path, m))?;
        if writable && header.flags & FLAG_READONLY != 0 {
            return Err(Error::Usage {
                file: path.into(),
                reason: "the WIM header is flagged read-only".into(),
            });
        }
        let codec = header.codec().map_err(|m| Error::from_malformed(path, m))?;
        let mut decompressors = Decompressors::default();
        let read_whole = |reshdr: &ResourceHeader,
                          what: &'static str,
                          limit: u64,
                          decompressors: &mut Decompressors| {
            if reshdr.uncompressed_size > limit {
                return Err(Error::from_malformed(
                    path,
                    Malformed::new(
                        what,
                        format!(
                            "{} bytes, more than the {limit} allowed",
                            reshdr.uncompressed_size
                        ),
                    ),
                ));
            }
            let spec = ResourceSpec::plain(reshdr, codec, header.chunk_size);
            resource::read_range(
                &file,
                path,
                file_len,
                &spec,
                0,
                reshdr.uncompressed_size,
                decompressors,
            )
        };
        // 50 bytes per entry must come from somewhere in the file, compressed or not.
        let table_limit = file_len.saturating_mul(u64::from(header.chunk_size.max(1)));
        let table_bytes = read_whole(
            &header.blob_table,
            "blob table",
            table_limit,
            &mut decompressors,
        )?;
        let blob_table = BlobTable::parse(&table_bytes, header.version == VERSION_SOLID)
            .map_err(|m| Error::from_malformed(path, m))?;
        let xml_bytes = read_whole(
            &header.xml_data,
            "XML data",
            MAX_XML_SIZE,
            &mut decompressors,
        )?;
        let xml = XmlData::parse(&xml_bytes).map_err(|m| Error::from_malformed(path, m))?;
        let writer = file
            .try_clone()
            .map_err(|e| Error::io(path, "opening for update", e))?;
        Ok(Self {
            path: path.into(),
            file,
            writer: Box::new(writer),
            header_in_doubt: false,
            file_len,
            writable,
            header,
            blob_table,
            xml,
            decompressors,
            batch: false,
            pending: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn blob_table(&self) -> &BlobTable {
        &self.blob_table
    }

    /// Number of images, as the header and the metadata entries agree.
    pub fn image_count(&self) -> u32 {
        self.header
            .image_count
            .min(self.blob_table.metadata.len() as u32)
    }

    /// What the XML data says about each image.
    pub fn images(&self) -> Vec<ImageInfo> {
        self.xml.images()
    }

    /// The 1-based index of the image named by `selector`: a number, or an image name
    /// (compared exactly, then case-insensitively).
    pub fn resolve_image(&self, selector: &str) -> Result<u32> {
        let count = self.image_count();
        if let Ok(index) = selector.trim().parse::<u32>() {
            if (1..=count).contains(&index) {
                return Ok(index);
            }
            return Err(self.usage(format!(
                "image {index} does not exist (the WIM has {count})"
            )));
        }
        let images = self.images();
        let by_name = |exact: bool| {
            images.iter().find(|image| {
                image.name.as_deref().is_some_and(|name| {
                    if exact {
                        name == selector
                    } else {
                        name.eq_ignore_ascii_case(selector)
                    }
                })
            })
        };
        match by_name(true).or_else(|| by_name(false)) {
            Some(image) if (1..=count).contains(&image.index) => Ok(image.index),
            _ => Err(self.usage(format!("no image is named {selector:?}"))),
        }
    }

    /// Reads and parses the metadata resource of image `index` (1-based).
    pub fn load_image(&mut self, index: u32) -> Result<ImageMetadata> {
        let entry = self.metadata_entry(index)?;
        let reshdr = entry.reshdr;
        let expected_hash = entry.hash;
        let codec = self.codec()?;
        // A dentry is at least 102 bytes and some file bytes hold each: bound by the file.
        let limit = self
            .file_len
            .saturating_mul(u64::from(self.header.chunk_size.max(1)));
        if reshdr.uncompressed_size > limit {
            return Err(self.corrupt(
                "metadata resource",
                format!("claims {} bytes", reshdr.uncompressed_size),
            ));
        }
        let spec = ResourceSpec::plain(&reshdr, codec, self.header.chunk_size);
        let bytes = resource::read_range(
            &self.file,
            &self.path,
            self.file_len,
            &spec,
            0,
            reshdr.uncompressed_size,
            &mut self.decompressors,
        )?;
        if Sha1Hasher::digest(&bytes)[..] != expected_hash {
            return Err(self.corrupt(
                "metadata resource",
                format!("of image {index} does not match its SHA-1"),
            ));
        }
        ImageMetadata::parse(bytes).map_err(|m| Error::from_malformed(&self.path, m))
    }

    /// The uncompressed size of a stored blob (0 for the zero hash).
    pub fn blob_size(&self, hash: &Sha1) -> Option<u64> {
        blob_size_in(self.current_table(), hash)
    }

    /// The contents of the blob with this hash, checked against it.
    pub fn read_blob(&mut self, hash: &Sha1) -> Result<Vec<u8>> {
        if *hash == ZERO_HASH {
            return Ok(Vec::new());
        }
        let Some(index) = self.current_table().find(hash) else {
            return Err(self.corrupt("blob table", format!("no entry for blob {}", hex(hash))));
        };
        let entry = self.current_table().entries[index].clone();
        let data = match entry.solid_run {
            None => {
                let spec =
                    ResourceSpec::plain(&entry.reshdr, self.codec()?, self.header.chunk_size);
                resource::read_range(
                    &self.file,
                    &self.path,
                    self.current_len(),
                    &spec,
                    0,
                    entry.reshdr.uncompressed_size,
                    &mut self.decompressors,
                )?
            }
            Some(run) => {
                // Offsets run across the concatenated resources of the run (wimlib's
                // assign_blob_to_solid_resource()).
                let (mut offset, size) = (entry.reshdr.offset, entry.reshdr.size_in_wim);
                let mut found = None;
                for &resource_index in &self.current_table().solid_runs[run].clone() {
                    let reshdr = self.current_table().entries[resource_index].reshdr;
                    let spec = resource::read_solid_header(
                        &self.file,
                        &self.path,
                        self.current_len(),
                        &reshdr,
                    )?;
                    if offset
                        .checked_add(size)
                        .is_some_and(|end| end <= spec.uncompressed_size)
                    {
                        found = Some(spec);
                        break;
                    }
                    offset = offset.saturating_sub(spec.uncompressed_size);
                }
                let Some(spec) = found else {
                    return Err(self.corrupt(
                        "blob table",
                        format!("blob {} lies outside its solid resources", hex(hash)),
                    ));
                };
                resource::read_range(
                    &self.file,
                    &self.path,
                    self.current_len(),
                    &spec,
                    offset,
                    size,
                    &mut self.decompressors,
                )?
            }
        };
        if Sha1Hasher::digest(&data)[..] != hash[..] {
            return Err(self.corrupt("blob", format!("{} does not match its SHA-1", hex(hash))));
        }
        Ok(data)
    }

    /// The blob table with staged edits applied.
    fn current_table(&self) -> &BlobTable {
        self.pending
            .as_ref()
            .map_or(&self.blob_table, |(_, update)| &update.table)
    }

    /// The file length including blobs appended for staged edits.
    fn current_len(&self) -> u64 {
        self.pending
            .as_ref()
            .map_or(self.file_len, |(_, update)| update.write_at)
    }

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
            let new_hash = update.store_blob(wim, contents, links)?;
            update.release_blob(&old_hash, links);
            image.patch_data(dentry, new_hash, filetime_now());
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
                Some(data) => (FILE_ATTRIBUTE_ARCHIVE, update.store_blob(wim, data, 1)?),
                None => (dentry::FILE_ATTRIBUTE_DIRECTORY, ZERO_HASH),
            };
            let bytes =
                dentry::new_dentry_bytes(name, attributes, security_id, filetime_now(), &hash);
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

    /// Writes the staged edits of `image` (the same metadata the edits were made on). A tree
    /// whose shape changed is serialized here, once for all the staged edits; `image` is then
    /// the re-parsed result (the same tree, its dentries renumbered depth-first).
    pub fn commit(&mut self, image: &mut ImageMetadata) -> Result<()> {
        let Some((index, update)) = self.pending.take() else {
            return Ok(());
        };
        let keep_len = update.write_at;
        let result = self.write_update(index, image, update.clone(), keep_len);
        if result.is_err() {
            // Nothing was committed: keep the edits staged so the commit can be retried.
            self.pending = Some((index, update));
        }
        result
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
            if result.is_err() {
                self.discard_after(keep_len);
            }
            if result.is_ok() || was_staged {
                self.pending = Some((index, update));
            }
            return result;
        }
        let staged = was_staged.then(|| update.clone());
        let mut edited = image.clone();
        let result = match change(self, &mut update, &mut edited) {
            Ok(value) => self
                .write_update(index, &mut edited, update, keep_len)
                .map(|()| value),
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

    /// Cuts off what a failed edit appended after `len` bytes. Best effort, as this already
    /// follows a failure: the old header never points there, so the bytes are unused anyway.
    fn discard_after(&mut self, len: u64) {
        let _ = self.writer.set_len(len);
    }

    /// Writes the new metadata resource of image `index`, the blob table, the XML data and the
    /// integrity table after everything else, then the header. When this fails before the
    /// header write, the file is cut back to `keep_len` bytes as wimlib does (the old header
    /// never pointed past it); once the header write was attempted the file may hold either
    /// image, so nothing more is written through this handle.
    fn write_update(
        &mut self,
        index: u32,
        edited: &mut ImageMetadata,
        mut update: Update,
        keep_len: u64,
    ) -> Result<()> {
        if self.header_in_doubt {
            return Err(self.usage(
                "a header write failed: reopen the file to see which image it holds".into(),
            ));
        }
        let (header, xml) = match self.append_update(index, edited, &mut update) {
            Ok(appended) => appended,
            Err(err) => {
                self.discard_after(keep_len);
                return Err(err);
            }
        };

        // The commit point: one 208-byte write inside the first sector, which storage writes
        // whole (wimlib relies on the same).
        self.header_in_doubt = true;
        self.writer
            .write_all_at(0, &header.to_bytes())
            .map_err(|e| Error::io(&self.path, "writing the header", e))?;
        self.sync("syncing the header")?;
        self.header_in_doubt = false;

        self.header = header;
        self.blob_table = update.table;
        self.xml = xml;
        self.file_len = update.write_at;
        Ok(())
    }

    /// Everything [`Wim::write_update`] writes before the header; returns the new header and
    /// XML data.
    fn append_update(
        &mut self,
        index: u32,
        edited: &mut ImageMetadata,
        update: &mut Update,
    ) -> Result<(Header, XmlData)> {
        if edited.has_unserialized_changes() {
            *edited = edited
                .serialize()
                .map_err(|m| Error::from_malformed(&self.path, m))?;
        }
        let codec = self.codec()?;
        let chunk_size = update.chunk_size;
        let metadata_hash: Sha1 = Sha1Hasher::digest(&edited.bytes).into();
        let metadata_reshdr = resource::append(
            self.writer.as_mut(),
            &self.path,
            update.write_at,
            &edited.bytes,
            codec,
            chunk_size,
            RESOURCE_METADATA,
        )?;
        update.write_at += metadata_reshdr.size_in_wim;
        let metadata_index = self.blob_table.metadata[index as usize - 1];
        update.table.entries[metadata_index].reshdr = metadata_reshdr;
        update.table.entries[metadata_index].hash = metadata_hash;

        let table_bytes = update.table.to_bytes();
        let table_reshdr = resource::append(
            self.writer.as_mut(),
            &self.path,
            update.write_at,
            &table_bytes,
            None,
            chunk_size,
            0,
        )?;
        update.write_at += table_reshdr.size_in_wim;

        let mut xml = self.xml.clone();
        let counts = edited.counts(|hash| update.blob_size(hash));
        xml.update_image(index, &counts, filetime_now());
        xml.set_wim_total_bytes(update.write_at);
        let xml_reshdr = resource::append(
            self.writer.as_mut(),
            &self.path,
            update.write_at,
            &xml.to_bytes(),
            None,
            chunk_size,
            0,
        )?;
        update.write_at += xml_reshdr.size_in_wim;

        let mut header = self.header.clone();
        header.blob_table = table_reshdr;
        header.xml_data = xml_reshdr;
        if header.boot_index == index {
            header.boot_metadata = metadata_reshdr;
        }
        self.sync("syncing the appended resources")?;
        if self.header.has_integrity_table() {
            let old = self.header.integrity_table;
            let old_spec = ResourceSpec::plain(&old, None, chunk_size);
            let old_table = resource::read_range(
                &self.file,
                &self.path,
                update.write_at,
                &old_spec,
                0,
                old.uncompressed_size.min(1 << 30),
                &mut self.decompressors,
            )?;
            let integrity_chunk =
                integrity::chunk_size_of(&old_table).unwrap_or(integrity::DEFAULT_CHUNK_SIZE);
            let check_end = table_reshdr.end().unwrap_or(u64::MAX);
            let integrity_table = integrity::compute(
                &self.file,
                &self.path,
                update.write_at,
                check_end,
                integrity_chunk,
            )?;
            header.integrity_table = resource::append(
                self.writer.as_mut(),
                &self.path,
                update.write_at,
                &integrity_table,
                None,
                chunk_size,
                0,
            )?;
            update.write_at += header.integrity_table.size_in_wim;
            self.sync("syncing the integrity table")?;
        }
        Ok((header, xml))
    }

    /// Makes updates write through `writer`, which must write to this WIM file. Tests use it
    /// to make writes fail part way.
    #[doc(hidden)]
    pub fn set_writer(&mut self, writer: Box<dyn WimWriter>) {
        self.writer = writer;
    }

    fn check_writable(&self) -> Result<()> {
        if !self.writable {
            Err(self.usage("opened read-only; use Wim::open_for_update".into()))
        } else if self.header_in_doubt {
            Err(self
                .usage("a header write failed: reopen the file to see which image it holds".into()))
        } else {
            Ok(())
        }
    }

    fn sync(&mut self, action: &str) -> Result<()> {
        self.writer
            .sync_all()
            .map_err(|e| Error::io(&self.path, action, e))
    }

    fn codec(&self) -> Result<Option<Codec>> {
        self.header
            .codec()
            .map_err(|m| Error::from_malformed(&self.path, m))
    }

    fn metadata_entry(&self, index: u32) -> Result<&BlobEntry> {
        let count = self.image_count();
        if index == 0 || index > count {
            return Err(self.usage(format!(
                "image {index} does not exist (the WIM has {count})"
            )));
        }
        Ok(&self.blob_table.entries[self.blob_table.metadata[index as usize - 1]])
    }

    fn corrupt(&self, structure: &'static str, reason: String) -> Error {
        Error::from_malformed(&self.path, Malformed::new(structure, reason))
    }

    fn usage(&self, reason: String) -> Error {
        Error::Usage {
            file: self.path.clone(),
            reason,
        }
    }
}

/// An update being prepared: the new blob table and what is appended where.
#[derive(Clone)]
struct Update {
    table: BlobTable,
    write_at: u64,
    chunk_size: u32,
}

impl Update {
    fn new(wim: &Wim) -> Self {
        Self {
            table: wim.blob_table.clone(),
            write_at: wim.file_len,
            // Compressed resources must use the header's chunk size. Uncompressed WIMs may say
            // 0; the value then only bounds the compressor, which is not used.
            chunk_size: if wim.header.flags & FLAG_COMPRESSION != 0 {
                wim.header.chunk_size
            } else {
                32768
            },
        }
    }

    /// Appends `contents` as a blob unless one with its hash is stored; adds `references`.
    fn store_blob(&mut self, wim: &mut Wim, contents: &[u8], references: u32) -> Result<Sha1> {
        if contents.is_empty() {
            return Ok(ZERO_HASH);
        }
        let hash: Sha1 = Sha1Hasher::digest(contents).into();
        match self.table.find(&hash) {
            Some(existing) => {
                let entry = &mut self.table.entries[existing];
                entry.refcount = entry.refcount.saturating_add(references);
            }
            None => {
                let codec = wim.codec()?;
                let reshdr = resource::append(
                    wim.writer.as_mut(),
                    &wim.path,
                    self.write_at,
                    contents,
                    codec,
                    self.chunk_size,
                    0,
                )?;
                self.write_at += reshdr.size_in_wim;
                self.table.push(BlobEntry {
                    reshdr,
                    part_number: 1,
                    refcount: references,
                    hash,
                    solid_run: None,
                });
            }
        }
        Ok(hash)
    }

    /// The uncompressed size of a blob of the new table (0 when it is not there).
    fn blob_size(&self, hash: &Sha1) -> u64 {
        blob_size_in(&self.table, hash).unwrap_or(0)
    }

    /// Drops `references` from a blob's count. The entry stays even at 0: the bytes stay
    /// readable where they are, and a count that was already wrong cannot lose data.
    fn release_blob(&mut self, hash: &Sha1, references: u32) {
        if *hash == ZERO_HASH {
            return;
        }
        if let Some(index) = self.table.find(hash) {
            let entry = &mut self.table.entries[index];
            entry.refcount = entry.refcount.saturating_sub(references);
        }
    }
}

/// The uncompressed size of a blob of `table` (0 for the zero hash).
fn blob_size_in(table: &BlobTable, hash: &Sha1) -> Option<u64> {
    if *hash == ZERO_HASH {
        return Some(0);
    }
    let entry = &table.entries[table.find(hash)?];
    Some(if entry.solid_run.is_some() {
        entry.reshdr.size_in_wim
    } else {
        entry.reshdr.uncompressed_size
    })
}

/// One entry of [`WimImage::list_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    pub name: String,
    pub is_dir: bool,
    /// Size of the unnamed data stream (0 for directories).
    pub size: u64,
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
        let mut wim = Wim::open_with(path.as_ref(), writable)?;
        let index = wim.resolve_image(selector)?;
        let metadata = wim.load_image(index)?;
        Ok(Self {
            wim,
            index,
            metadata,
        })
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

    /// Stages the following edits until [`WimImage::commit`] (see [`Wim::set_batch`]): one
    /// metadata resource, blob table and header are written for all of them. Dropping the
    /// image without committing discards them and leaves the file as it was.
    pub fn set_batch(&mut self, batch: bool) {
        self.wim.set_batch(batch);
    }

    /// Makes updates write through `writer` (see [`Wim::set_writer`]).
    #[doc(hidden)]
    pub fn set_writer(&mut self, writer: Box<dyn WimWriter>) {
        self.wim.set_writer(writer);
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

const FILE_ATTRIBUTE_ARCHIVE: u32 = 0x20;

/// The current time as a Windows FILETIME (100 ns units since 1601).
fn filetime_now() -> u64 {
    const UNIX_EPOCH_AS_FILETIME: u64 = 116_444_736_000_000_000;
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    UNIX_EPOCH_AS_FILETIME
        + since_epoch.as_secs() * 10_000_000
        + u64::from(since_epoch.subsec_nanos() / 100)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
