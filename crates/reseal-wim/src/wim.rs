//! A WIM file opened for reading, and for in-place updates of one image: the [`Wim`] handle.
//!
//! Opening reads the header, the blob table and the XML data; reads then touch only the
//! selected image's metadata resource and the chunks of the blobs asked for. The edits of an
//! image's tree are in `update_image`, the way they reach the file (the commit protocol) in
//! `write`, and the path-based view of one image in `image`.

use reseal_nt::FileTime;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1 as Sha1Hasher};

use crate::blob_table::{BlobEntry, BlobTable, Sha1, ZERO_HASH};
use crate::chunk_reuse::WrittenChunks;
use crate::error::{Error, Malformed, Result};
use crate::header::{Header, ResourceHeader, FLAG_READONLY, HEADER_SIZE, VERSION_SOLID};
use crate::metadata::ImageMetadata;
use crate::resource::{self, Decompressors, ResourceSpec};
use crate::write::Update;
use crate::writer::WimWriter;
use crate::xml::{ImageInfo, XmlData};
use reseal_nt::hex;
use reseal_wimlib_sys::Codec;

/// The XML data is read whole; real ones are a few kilobytes.
const MAX_XML_SIZE: u64 = 64 << 20;

/// The blob table and a metadata resource are read whole. However small the file, a header may
/// claim chunks of up to 1 GiB that expand from a few bytes each: beside the bound by the file's
/// size, these absolute ones keep a crafted file from making a read take all memory. The real
/// ones are far smaller: 50 bytes per blob (a million blobs: 50 MB), and about 200 bytes per
/// file of an image (a million files: 200 MB).
const MAX_BLOB_TABLE_SIZE: u64 = 1 << 30;
const MAX_METADATA_SIZE: u64 = 2 << 30;

/// An open WIM file (one part, not pipable).
pub struct Wim {
    pub(crate) path: PathBuf,
    /// Reads go here.
    pub(crate) file: File,
    /// Writes go here: the same file (or, in tests, a wrapper around it).
    pub(crate) writer: Box<dyn WimWriter>,
    /// Set while the header is being written and left set when that fails: the file then
    /// holds the old or the new image, and this handle writes nothing more.
    pub(crate) header_in_doubt: bool,
    pub(crate) file_len: u64,
    pub(crate) writable: bool,
    /// When set, edits are staged and written by [`Wim::commit`].
    pub(crate) batch: bool,
    /// The staged update and the image it is for.
    pub(crate) pending: Option<(u32, Update)>,
    pub(crate) header: Header,
    pub(crate) blob_table: BlobTable,
    pub(crate) xml: XmlData,
    pub(crate) decompressors: Decompressors,
    /// The time new and replaced files and the image's XML get; `None`: the clock.
    pub(crate) fixed_time: Option<FileTime>,
    pub(crate) written_chunks: WrittenChunks,
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

    pub(crate) fn open_with(path: &Path, writable: bool) -> Result<Self> {
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
        let table_limit = file_len
            .saturating_mul(u64::from(header.chunk_size.max(1)))
            .min(MAX_BLOB_TABLE_SIZE);
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
        blob_table
            .check_within(file_len)
            .and_then(|()| check_image_count(&header, &blob_table, &xml))
            .map_err(|m| Error::from_malformed(path, m))?;
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
            fixed_time: None,
            written_chunks: WrittenChunks::default(),
        })
    }

    /// Gives new and replaced files and the image's XML `time` as their last write (and
    /// creation) time instead of the clock's, for a reproducible edit; `None`: the clock.
    pub fn set_fixed_time(&mut self, time: Option<FileTime>) {
        self.fixed_time = time;
    }

    /// The time an edit stamps now.
    pub(crate) fn now(&self) -> FileTime {
        self.fixed_time.unwrap_or_else(FileTime::now)
    }

    /// Makes a WIM opened for reading writable without parsing it again: the file is reopened
    /// for update and refused when its header is flagged read-only, or when it changed since it
    /// was read (another length or other header bytes), since what was read would then be stale.
    pub fn reopen_for_update(&mut self) -> Result<()> {
        if self.writable {
            return Ok(());
        }
        let path = self.path.clone();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, "opening for update", e))?;
        let file_len = file
            .metadata()
            .map_err(|e| Error::io(&path, "reading the file size", e))?
            .len();
        let mut raw = vec![0u8; HEADER_SIZE.min(file_len as usize)];
        resource::read_at(&file, &path, file_len, 0, &mut raw, "header")?;
        let header = Header::parse(&raw).map_err(|m| Error::from_malformed(&path, m))?;
        if file_len != self.file_len || header != self.header {
            return Err(Error::Usage {
                file: path,
                reason: "the file changed since it was read; run again".into(),
            });
        }
        if header.flags & FLAG_READONLY != 0 {
            return Err(Error::Usage {
                file: path,
                reason: "the WIM header is flagged read-only".into(),
            });
        }
        let writer = file
            .try_clone()
            .map_err(|e| Error::io(&path, "opening for update", e))?;
        self.file = file;
        self.writer = Box::new(writer);
        self.writable = true;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// What the updates through this handle did with the chunks they wrote: how many were
    /// copied from the resources they replace and how many compressed.
    pub fn written_chunks(&self) -> WrittenChunks {
        self.written_chunks
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
        let (reshdr, hash) = (entry.reshdr, entry.hash);
        self.read_metadata(index, reshdr, hash, self.file_len)
    }

    /// Reads the metadata resource of image `index` at `reshdr` (in the first `file_len` bytes
    /// of the file), checks it against `expected_hash` and parses it.
    pub(crate) fn read_metadata(
        &mut self,
        index: u32,
        reshdr: ResourceHeader,
        expected_hash: Sha1,
        file_len: u64,
    ) -> Result<ImageMetadata> {
        let codec = self.codec()?;
        // A dentry is at least 102 bytes and some file bytes hold each: bound by the file.
        let limit = file_len
            .saturating_mul(u64::from(self.header.chunk_size.max(1)))
            .min(MAX_METADATA_SIZE);
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
            file_len,
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

    /// Takes back a buffer the caller is done with (the contents of a file it replaced), for a
    /// later read of about its size to fill (see [`Decompressors`]).
    pub fn give_back(&mut self, buffer: Vec<u8>) {
        self.decompressors.give_back(buffer);
    }

    /// The contents of the blob with this hash, checked against it.
    pub fn read_blob(&mut self, hash: &Sha1) -> Result<Vec<u8>> {
        if *hash == ZERO_HASH {
            return Ok(Vec::new());
        }
        let Some(index) = self.current_table().find(hash) else {
            return Err(self.corrupt(
                "blob table",
                format!("no entry for blob {}", hex::encode(hash)),
            ));
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
                        format!(
                            "blob {} lies outside its solid resources",
                            hex::encode(hash)
                        ),
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
            return Err(self.corrupt(
                "blob",
                format!("{} does not match its SHA-1", hex::encode(hash)),
            ));
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

    pub(crate) fn codec(&self) -> Result<Option<Codec>> {
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

    pub(crate) fn corrupt(&self, structure: &'static str, reason: String) -> Error {
        Error::from_malformed(&self.path, Malformed::new(structure, reason))
    }

    pub(crate) fn usage(&self, reason: String) -> Error {
        Error::Usage {
            file: self.path.clone(),
            reason,
        }
    }
}

/// The uncompressed size of a blob of `table` (0 for the zero hash).
pub(crate) fn blob_size_in(table: &BlobTable, hash: &Sha1) -> Option<u64> {
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

/// The header's image count (at offset 44) must be the number of images the blob table holds
/// metadata for and the number the XML data describes, as wimlib requires: an image count that
/// disagrees would make an edit write metadata or XML for images that are not there.
fn check_image_count(
    header: &Header,
    blob_table: &BlobTable,
    xml: &XmlData,
) -> std::result::Result<(), Malformed> {
    let stated = header.image_count;
    let with_metadata = blob_table.metadata.len();
    if u64::from(stated) != with_metadata as u64 {
        return Err(Malformed::new(
            "header",
            format!("the image count at offset 44 is {stated}, but the blob table holds metadata for {with_metadata} images"),
        ));
    }
    let described = xml.images().len();
    if with_metadata != described {
        return Err(Malformed::new(
            "XML data",
            format!("it describes {described} images, the header and blob table {stated}"),
        ));
    }
    Ok(())
}
