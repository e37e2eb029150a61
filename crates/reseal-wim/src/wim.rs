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
//! end). This is wimlib's append mode.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha1::{Digest, Sha1 as Sha1Hasher};

use crate::blob_table::{BlobEntry, BlobTable, Sha1, ZERO_HASH};
use crate::dentry::{Dentry, FILE_ATTRIBUTE_ENCRYPTED};
use crate::error::{Error, Malformed, Result};
use crate::ffi::Codec;
use crate::header::{
    Header, ResourceHeader, FLAG_READONLY, HEADER_SIZE, RESOURCE_METADATA, VERSION_SOLID,
};
use crate::integrity;
use crate::metadata::ImageMetadata;
use crate::resource::{self, Decompressors, ResourceSpec};
use crate::xml::{ImageInfo, XmlData};

/// The XML data is read whole; real ones are a few kilobytes.
const MAX_XML_SIZE: u64 = 64 << 20;

/// An open WIM file (one part, not pipable).
pub struct Wim {
    path: PathBuf,
    file: File,
    file_len: u64,
    writable: bool,
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
        Ok(Self {
            path: path.into(),
            file,
            file_len,
            writable,
            header,
            blob_table,
            xml,
            decompressors,
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
        if *hash == ZERO_HASH {
            return Some(0);
        }
        let entry = &self.blob_table.entries[self.blob_table.find(hash)?];
        Some(if entry.solid_run.is_some() {
            entry.reshdr.size_in_wim
        } else {
            entry.reshdr.uncompressed_size
        })
    }

    /// The contents of the blob with this hash, checked against it.
    pub fn read_blob(&mut self, hash: &Sha1) -> Result<Vec<u8>> {
        if *hash == ZERO_HASH {
            return Ok(Vec::new());
        }
        let Some(index) = self.blob_table.find(hash) else {
            return Err(self.corrupt("blob table", format!("no entry for blob {}", hex(hash))));
        };
        let entry = self.blob_table.entries[index].clone();
        let data = match entry.solid_run {
            None => {
                let spec =
                    ResourceSpec::plain(&entry.reshdr, self.codec()?, self.header.chunk_size);
                resource::read_range(
                    &self.file,
                    &self.path,
                    self.file_len,
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
                for &resource_index in &self.blob_table.solid_runs[run] {
                    let reshdr = self.blob_table.entries[resource_index].reshdr;
                    let spec = resource::read_solid_header(
                        &self.file,
                        &self.path,
                        self.file_len,
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
                    self.file_len,
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

    /// Replaces the contents of the file `dentry` in `image` (image number `index`) and
    /// commits the change to the WIM file. The dentry and its hard links keep everything
    /// (security descriptor, attributes, creation and access times, short name, alternate data
    /// streams, object id) except the data and the last write time, which becomes now.
    pub fn replace_file_data(
        &mut self,
        index: u32,
        image: &mut ImageMetadata,
        dentry: usize,
        contents: &[u8],
    ) -> Result<()> {
        if !self.writable {
            return Err(self.usage("opened read-only; use Wim::open_for_update".into()));
        }
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
        let old_hash = target.data_hash();
        let new_hash: Sha1 = Sha1Hasher::digest(contents).into();
        let new_hash = if contents.is_empty() {
            ZERO_HASH
        } else {
            new_hash
        };
        let old_size = self.blob_size(&old_hash).unwrap_or(0);
        let links = image.hard_links(dentry).len() as u32;

        let mut patched = image.clone();
        if !patched.patch_data(dentry, new_hash, filetime_now()) {
            return Err(Error::from_malformed(
                &self.path,
                Malformed::unsupported(
                    "dentry",
                    format!("{shown:?} is a reparse point without a data stream entry"),
                ),
            ));
        }

        let codec = self.codec()?;
        let chunk_size = self.header.chunk_size.max(32768);
        let mut table = self.blob_table.clone();
        let mut write_at = self.file_len;
        if new_hash != ZERO_HASH {
            match table.find(&new_hash) {
                Some(existing) => {
                    table.entries[existing].refcount =
                        table.entries[existing].refcount.saturating_add(links)
                }
                None => {
                    let reshdr = resource::append(
                        &mut self.file,
                        &self.path,
                        write_at,
                        contents,
                        codec,
                        chunk_size,
                        0,
                    )?;
                    write_at += reshdr.size_in_wim;
                    table.push(BlobEntry {
                        reshdr,
                        part_number: 1,
                        refcount: links,
                        hash: new_hash,
                        solid_run: None,
                    });
                }
            }
        }
        if old_hash != ZERO_HASH {
            // The entry stays (the data stays readable where it is); only its count drops.
            if let Some(old) = table.find(&old_hash) {
                table.entries[old].refcount = table.entries[old].refcount.saturating_sub(links);
            }
        }

        let metadata_hash: Sha1 = Sha1Hasher::digest(&patched.bytes).into();
        let metadata_reshdr = resource::append(
            &mut self.file,
            &self.path,
            write_at,
            &patched.bytes,
            codec,
            chunk_size,
            RESOURCE_METADATA,
        )?;
        write_at += metadata_reshdr.size_in_wim;
        let metadata_index = self.blob_table.metadata[index as usize - 1];
        table.entries[metadata_index].reshdr = metadata_reshdr;
        table.entries[metadata_index].hash = metadata_hash;

        let table_bytes = table.to_bytes();
        let table_reshdr = resource::append(
            &mut self.file,
            &self.path,
            write_at,
            &table_bytes,
            None,
            chunk_size,
            0,
        )?;
        write_at += table_reshdr.size_in_wim;

        let mut xml = self.xml.clone();
        let total_bytes = self
            .images()
            .iter()
            .find(|image| image.index == index)
            .and_then(|image| image.total_bytes)
            .map(|total| {
                (total + u64::from(links) * contents.len() as u64)
                    .saturating_sub(u64::from(links) * old_size)
            });
        xml.update_image(index, total_bytes, filetime_now());
        xml.set_wim_total_bytes(write_at);
        let xml_reshdr = resource::append(
            &mut self.file,
            &self.path,
            write_at,
            &xml.to_bytes(),
            None,
            chunk_size,
            0,
        )?;
        write_at += xml_reshdr.size_in_wim;

        let mut header = self.header.clone();
        header.blob_table = table_reshdr;
        header.xml_data = xml_reshdr;
        if header.boot_index == index {
            header.boot_metadata = metadata_reshdr;
        }
        self.sync("syncing the appended resources")?;
        let file_len = write_at;
        if self.header.has_integrity_table() {
            let old = self.header.integrity_table;
            let old_table = resource::read_range(
                &self.file,
                &self.path,
                file_len,
                &ResourceSpec::plain(&old, None, chunk_size),
                0,
                old.uncompressed_size.min(1 << 30),
                &mut self.decompressors,
            )?;
            let integrity_chunk =
                integrity::chunk_size_of(&old_table).unwrap_or(integrity::DEFAULT_CHUNK_SIZE);
            let check_end = table_reshdr.end().unwrap_or(u64::MAX);
            let integrity_table =
                integrity::compute(&self.file, &self.path, file_len, check_end, integrity_chunk)?;
            header.integrity_table = resource::append(
                &mut self.file,
                &self.path,
                write_at,
                &integrity_table,
                None,
                chunk_size,
                0,
            )?;
            write_at += header.integrity_table.size_in_wim;
            self.sync("syncing the integrity table")?;
        }

        // The commit point: one 208-byte write.
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.write_all(&header.to_bytes()))
            .map_err(|e| Error::io(&self.path, "writing the header", e))?;
        self.sync("syncing the header")?;

        self.header = header;
        self.blob_table = table;
        self.xml = xml;
        self.file_len = write_at;
        *image = patched;
        Ok(())
    }

    fn sync(&self, action: &str) -> Result<()> {
        self.file
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
        let wanted = crate::dentry::upper_case_name(name);
        let stream = self.metadata.dentries[index]
            .named_streams
            .iter()
            .find(|stream| crate::dentry::upper_case_name(&stream.name) == wanted);
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
}

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
