//! The commit protocol: how edits reach the file (wimlib's append mode, `write.c`).
//!
//! An update appends, after everything the file holds, in this order: the new blobs (unless a
//! blob with the same hash is already stored), the image's new metadata resource, a new blob
//! table, new XML data and, if the file had one, a new integrity table; then it rewrites the
//! 208-byte header. An update of several images appends each image's metadata resource when
//! the edits move on to the next image ([`Wim::set_aside`]), so those lie among the blobs. Until that last write the old header points at the old, untouched
//! structures, so an interrupted update leaves the original image (plus unused bytes at the
//! end). An update that fails before the header write cuts the file back to its length
//! before the update, as wimlib does; one whose header write fails leaves a file holding the
//! old or the new image, and the handle refuses to write more. All writes go through a
//! [`WimWriter`], which tests wrap to fail at each step.

use sha1::{Digest, Sha1 as Sha1Hasher};

use crate::blob_table::{BlobEntry, BlobTable, Sha1, ZERO_HASH};
use crate::chunk_reuse::{self, ChunkCounts, OldResource};
use crate::error::{Error, Result};
use crate::header::{Header, ResourceHeader, FLAG_COMPRESSION, RESOURCE_METADATA};
use crate::integrity;
use crate::metadata::ImageMetadata;
use crate::resource::{self, ResourceSpec};
use crate::wim::{blob_size_in, Wim};
use crate::writer::WimWriter;
use crate::xml::{ImageCounts, XmlData};

impl Wim {
    /// Writes the staged edits of `image` (the same metadata the edits were made on), and
    /// those of the images set aside by [`Wim::set_aside`], in one update: one blob table, XML
    /// data and header for all of them. A tree whose shape changed is serialized here, once
    /// for all the staged edits; `image` is then the re-parsed result (the same tree, its
    /// dentries renumbered depth-first).
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

    /// Moves the staged edits from image `index` (`image`, the metadata they were made on) to
    /// image `next`, so that both reach the file by the next commit, and gives back the
    /// metadata of `next`: as its staged edits left it when it was set aside before, else as
    /// committed. The edited image's new metadata resource is appended now (the commit only
    /// points the header at it), so only the image being edited is held in memory. Without
    /// staged edits of `index` since it was moved to, nothing is written. On failure nothing
    /// is staged anew and `index` stays the image being edited.
    pub fn set_aside(
        &mut self,
        index: u32,
        image: &ImageMetadata,
        next: u32,
    ) -> Result<ImageMetadata> {
        if next == index {
            return Err(self.usage(format!("image {index} is the one being edited")));
        }
        if self.pending.is_some() {
            self.check_writable()?;
        }
        let Some((staged, mut update)) = self.pending.take() else {
            return self.load_image(next);
        };
        // Read before anything is written, so that a failure changes nothing.
        let next_image = match update.parked.iter().position(|p| p.index == next) {
            Some(at) => self.read_parked(&update, at),
            None => self.load_image(next),
        };
        let next_image = match next_image {
            Ok(next_image) => next_image,
            Err(err) => {
                self.pending = Some((staged, update));
                return Err(err);
            }
        };
        if staged == index && update.current_edited {
            let keep_len = update.write_at;
            if let Err(err) = self.park(index, image, &mut update) {
                self.discard_after(keep_len);
                update.write_at = keep_len;
                self.pending = Some((staged, update));
                return Err(err);
            }
        }
        // An image resumed keeps its appended resource until it is edited again.
        update.current_edited = false;
        self.pending = Some((next, update));
        Ok(next_image)
    }

    /// Appends the metadata resource of image `index` and records it for the commit. The tree
    /// is not parsed back from the bytes written, as a commit does: the caller drops it.
    fn park(&mut self, index: u32, image: &ImageMetadata, update: &mut Update) -> Result<()> {
        let serialized;
        let bytes = if image.has_unserialized_changes() {
            serialized = image.serialized_bytes();
            &serialized
        } else {
            &image.bytes
        };
        let reshdr = self.append_metadata(index, bytes, update)?;
        let counts = image.counts(|hash| update.blob_size(hash));
        update.parked.retain(|p| p.index != index);
        update.parked.push(ParkedImage {
            index,
            reshdr,
            counts,
        });
        Ok(())
    }

    /// The metadata of the image set aside at `update.parked[at]`, read back from the
    /// resource appended for it.
    fn read_parked(&mut self, update: &Update, at: usize) -> Result<ImageMetadata> {
        let parked = &update.parked[at];
        let entry = &update.table.entries[self.blob_table.metadata[parked.index as usize - 1]];
        self.read_metadata(parked.index, entry.reshdr, entry.hash, update.write_at)
    }

    /// Drops every staged edit and cuts off the blobs they appended, so that the file is again
    /// byte for byte what the last commit left.
    pub fn discard_staged(&mut self) {
        if self.pending.take().is_some() {
            self.discard_after(self.file_len);
        }
        self.decompressors.drop_spare();
    }

    /// Cuts off what a failed edit appended after `len` bytes. Best effort, as this already
    /// follows a failure: the old header never points there, so the bytes are unused anyway.
    /// Nothing is cut after a header write that failed part-way: the new header may be on disk
    /// and point there.
    pub(crate) fn discard_after(&mut self, len: u64) {
        if self.header_in_doubt {
            return;
        }
        let _ = self.writer.set_len(len);
    }

    /// Appends `contents` at `offset` as a resource with `extra_flags`. When it replaces the
    /// resource `replaces` (one whose chunks can be reused), the chunks whose bytes did not
    /// change are copied as stored and only the others compressed; the counts say how many of
    /// each (none for a plain append).
    fn append_replacing(
        &mut self,
        offset: u64,
        contents: &[u8],
        chunk_size: u32,
        extra_flags: u8,
        replaces: Option<ResourceHeader>,
    ) -> Result<(ResourceHeader, ChunkCounts)> {
        let codec = self.codec()?;
        match (codec, replaces) {
            (Some(codec), Some(old)) => {
                let old = OldResource {
                    file: &self.file,
                    file_len: offset,
                    spec: ResourceSpec::plain(&old, Some(codec), chunk_size),
                    decompressors: &mut self.decompressors,
                };
                chunk_reuse::append_reusing(
                    self.writer.as_mut(),
                    &self.path,
                    offset,
                    contents,
                    codec,
                    chunk_size,
                    extra_flags,
                    old,
                )
            }
            _ => {
                let reshdr = resource::append(
                    self.writer.as_mut(),
                    &self.path,
                    offset,
                    contents,
                    codec,
                    chunk_size,
                    extra_flags,
                )?;
                Ok((reshdr, ChunkCounts::default()))
            }
        }
    }

    /// Writes the new metadata resource of image `index`, the blob table, the XML data and the
    /// integrity table after everything else, then the header. When this fails before the
    /// header write, the file is cut back to `keep_len` bytes as wimlib does (the old header
    /// never pointed past it); once the header write was attempted the file may hold either
    /// image, so nothing more is written through this handle.
    pub(crate) fn write_update(
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

        self.decompressors.drop_spare();
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
        let chunk_size = update.chunk_size;
        let mut images = std::mem::take(&mut update.parked);
        // An image moved to and left unedited keeps its metadata resource and XML element.
        if update.current_edited {
            if edited.has_unserialized_changes() {
                *edited = edited
                    .serialize()
                    .map_err(|m| Error::from_malformed(&self.path, m))?;
            }
            let reshdr = self.append_metadata(index, &edited.bytes, update)?;
            let counts = edited.counts(|hash| update.blob_size(hash));
            images.retain(|p| p.index != index);
            images.push(ParkedImage {
                index,
                reshdr,
                counts,
            });
        }

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
        let now = self.now().0;
        for image in &images {
            xml.update_image(image.index, &image.counts, now);
        }
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
        for image in &images {
            if header.boot_index == image.index {
                header.boot_metadata = image.reshdr;
            }
        }
        self.sync("syncing the appended resources")?;
        self.append_integrity_table(&mut header, update, table_reshdr)?;
        Ok((header, xml))
    }

    /// Appends `bytes` as the metadata resource of image `index` and points the new blob
    /// table's entry for it there.
    fn append_metadata(
        &mut self,
        index: u32,
        bytes: &[u8],
        update: &mut Update,
    ) -> Result<ResourceHeader> {
        let chunk_size = update.chunk_size;
        let metadata_hash: Sha1 = Sha1Hasher::digest(bytes).into();
        let metadata_index = self.blob_table.metadata[index as usize - 1];
        // The serialized tree keeps the bytes of everything before the first changed dentry,
        // and a replace patches dentries in place: the old resource's chunks there are copied.
        let replaces = self.blob_table.entries[metadata_index].reusable_resource();
        let (metadata_reshdr, counts) = self.append_replacing(
            update.write_at,
            bytes,
            chunk_size,
            RESOURCE_METADATA,
            replaces,
        )?;
        self.written_chunks.metadata.add(counts);
        update.write_at += metadata_reshdr.size_in_wim;
        update.table.entries[metadata_index].reshdr = metadata_reshdr;
        update.table.entries[metadata_index].hash = metadata_hash;
        Ok(metadata_reshdr)
    }

    /// Appends a new integrity table when the file has one, covering everything up to the end
    /// of the new blob table, and points `header` at it.
    fn append_integrity_table(
        &mut self,
        header: &mut Header,
        update: &mut Update,
        table_reshdr: ResourceHeader,
    ) -> Result<()> {
        let chunk_size = update.chunk_size;
        if self.header.has_integrity_table() {
            let old = self.header.integrity_table;
            let old_spec = ResourceSpec::plain(&old, None, chunk_size);
            let old_table = resource::read_range(
                &self.file,
                &self.path,
                update.write_at,
                &old_spec,
                0,
                // Its header alone gives the chunk size to keep.
                old.uncompressed_size.min(12),
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
        Ok(())
    }

    /// Makes updates write through `writer`, which must write to this WIM file. Tests use it
    /// to make writes fail part way.
    #[doc(hidden)]
    pub fn set_writer(&mut self, writer: Box<dyn WimWriter>) {
        self.writer = writer;
    }

    fn sync(&mut self, action: &str) -> Result<()> {
        self.writer
            .sync_all()
            .map_err(|e| Error::io(&self.path, action, e))
    }
}

/// An update being prepared: the new blob table and what is appended where.
#[derive(Clone)]
pub(crate) struct Update {
    pub(crate) table: BlobTable,
    pub(crate) write_at: u64,
    pub(crate) chunk_size: u32,
    /// Other images edited in this update, set aside while another one is edited: their
    /// metadata resources are appended; the commit points the header and XML data at them.
    pub(crate) parked: Vec<ParkedImage>,
    /// `true` once the image being edited has edits since it was moved to; until then its
    /// metadata resource is the committed one or, for an image resumed, the one appended when
    /// it was set aside.
    pub(crate) current_edited: bool,
}

/// An image set aside by [`Wim::set_aside`]: where its new metadata resource was appended, and
/// the counts its XML element gets.
#[derive(Clone)]
pub(crate) struct ParkedImage {
    index: u32,
    reshdr: ResourceHeader,
    counts: ImageCounts,
}

impl Update {
    pub(crate) fn new(wim: &Wim) -> Self {
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
            parked: Vec::new(),
            current_edited: false,
        }
    }

    /// Appends `contents` as a blob unless one with its hash is stored; adds `references`.
    /// When the blob replaces the blob `replaces`, the chunks they have in common are copied
    /// from it instead of compressed again.
    pub(crate) fn store_blob(
        &mut self,
        wim: &mut Wim,
        contents: &[u8],
        references: u32,
        replaces: Option<&Sha1>,
    ) -> Result<Sha1> {
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
                let replaces = replaces
                    .and_then(|old| self.table.find(old))
                    .and_then(|index| self.table.entries[index].reusable_resource());
                let (reshdr, counts) =
                    wim.append_replacing(self.write_at, contents, self.chunk_size, 0, replaces)?;
                wim.written_chunks.blobs.add(counts);
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
    pub(crate) fn release_blob(&mut self, hash: &Sha1, references: u32) {
        if *hash == ZERO_HASH {
            return;
        }
        if let Some(index) = self.table.find(hash) {
            let entry = &mut self.table.entries[index];
            entry.refcount = entry.refcount.saturating_sub(references);
        }
    }
}
