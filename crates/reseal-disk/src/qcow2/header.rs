//! The qcow2 header (versions 2 and 3) and its extensions, as qemu's docs/interop/qcow2.txt
//! describes them. All fields are big-endian.

use std::path::Path;

use crate::bytes::{be_u32, be_u64};
use crate::error::{Error, Result};
use crate::image_file::{read_structure, ImageFile};

pub(crate) const MAGIC: &[u8; 4] = b"QFI\xfb";
const VERSION_2_LENGTH: usize = 72;
pub(crate) const VERSION_3_MIN_LENGTH: usize = 104;
/// The longest backing file name qemu writes or reads.
pub(crate) const MAX_BACKING_NAME: u32 = 1023;
/// Cluster sizes qemu allows: 512 bytes to 2 MiB.
const CLUSTER_BITS: std::ops::RangeInclusive<u32> = 9..=21;

/// Incompatible feature bits (an image with a bit set that a reader does not know must not
/// be opened).
pub(crate) const INCOMPATIBLE_DIRTY: u64 = 1 << 0;
pub(crate) const INCOMPATIBLE_CORRUPT: u64 = 1 << 1;
pub(crate) const INCOMPATIBLE_EXTERNAL_DATA: u64 = 1 << 2;
pub(crate) const INCOMPATIBLE_COMPRESSION_TYPE: u64 = 1 << 3;
pub(crate) const INCOMPATIBLE_EXTENDED_L2: u64 = 1 << 4;
const INCOMPATIBLE_KNOWN: u64 = INCOMPATIBLE_DIRTY
    | INCOMPATIBLE_CORRUPT
    | INCOMPATIBLE_EXTERNAL_DATA
    | INCOMPATIBLE_COMPRESSION_TYPE
    | INCOMPATIBLE_EXTENDED_L2;
/// Compatible feature bit 0: refcounts may be left stale while the dirty bit is set.
pub(crate) const COMPATIBLE_LAZY_REFCOUNTS: u64 = 1 << 0;

/// Offsets of the fields a writer changes.
pub(crate) const AUTOCLEAR_FEATURES_OFFSET: u64 = 88;

const EXTENSION_END: u32 = 0;
pub(crate) const EXTENSION_BACKING_FORMAT: u32 = 0xe279_2aca;
const EXTENSION_FEATURE_NAMES: u32 = 0x6803_f857;
const EXTENSION_EXTERNAL_DATA_FILE: u32 = 0x4441_5441;
const EXTENSION_FULL_DISK_ENCRYPTION: u32 = 0x0537_be77;

/// How compressed clusters are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionType {
    /// Raw deflate (RFC 1951), qemu's default.
    Deflate,
    Zstd,
}

/// A feature bit and the name the image's feature-name table gives it.
#[derive(Clone, Debug)]
pub(crate) struct FeatureName {
    /// 0 incompatible, 1 compatible, 2 autoclear.
    pub kind: u8,
    pub bit: u8,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct Header {
    pub version: u32,
    pub backing_file_offset: u64,
    pub backing_file_size: u32,
    pub cluster_bits: u32,
    pub size: u64,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
    pub nb_snapshots: u32,
    pub snapshots_offset: u64,
    pub incompatible_features: u64,
    pub compatible_features: u64,
    pub autoclear_features: u64,
    pub refcount_order: u32,
    pub header_length: u32,
    pub compression_type: CompressionType,
    /// The backing file's format as the backing-format extension names it.
    pub backing_format: Option<String>,
    pub(crate) feature_names: Vec<FeatureName>,
}

fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    Error::corrupt(path, "qcow2 header", reason)
}

impl Header {
    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    pub fn has_extended_l2(&self) -> bool {
        self.incompatible_features & INCOMPATIBLE_EXTENDED_L2 != 0
    }

    pub fn has_lazy_refcounts(&self) -> bool {
        self.compatible_features & COMPATIBLE_LAZY_REFCOUNTS != 0
    }

    pub fn is_dirty(&self) -> bool {
        self.incompatible_features & INCOMPATIBLE_DIRTY != 0
    }

    /// Reads and checks the header and its extensions from the first cluster of `file`.
    pub(crate) fn read(file: &mut dyn ImageFile) -> Result<Header> {
        let path = file.path().to_path_buf();
        let fixed = read_structure(file, 0, VERSION_2_LENGTH, "qcow2 header")?;
        if &fixed[0..4] != MAGIC {
            return Err(corrupt(&path, "the file does not start with \"QFI\\xfb\""));
        }
        let version = be_u32(&fixed, 4);
        if version != 2 && version != 3 {
            return Err(Error::unsupported(
                &path,
                "qcow2 header",
                format!("version {version} (versions 2 and 3 are supported)"),
            ));
        }
        let cluster_bits = be_u32(&fixed, 20);
        if !CLUSTER_BITS.contains(&cluster_bits) {
            return Err(corrupt(
                &path,
                format!(
                    "cluster_bits is {cluster_bits}, expected {} to {} (512 bytes to 2 MiB)",
                    CLUSTER_BITS.start(),
                    CLUSTER_BITS.end()
                ),
            ));
        }
        let crypt_method = be_u32(&fixed, 32);
        if crypt_method != 0 {
            return Err(Error::unsupported(
                &path,
                "qcow2 header",
                format!("the image is encrypted (crypt_method {crypt_method}); decrypt it with qemu-img convert first"),
            ));
        }
        let mut header = Header {
            version,
            backing_file_offset: be_u64(&fixed, 8),
            backing_file_size: be_u32(&fixed, 16),
            cluster_bits,
            size: be_u64(&fixed, 24),
            l1_size: be_u32(&fixed, 36),
            l1_table_offset: be_u64(&fixed, 40),
            refcount_table_offset: be_u64(&fixed, 48),
            refcount_table_clusters: be_u32(&fixed, 56),
            nb_snapshots: be_u32(&fixed, 60),
            snapshots_offset: be_u64(&fixed, 64),
            incompatible_features: 0,
            compatible_features: 0,
            autoclear_features: 0,
            refcount_order: 4,
            header_length: VERSION_2_LENGTH as u32,
            compression_type: CompressionType::Deflate,
            backing_format: None,
            feature_names: Vec::new(),
        };
        let cluster_size = header.cluster_size();
        if version == 3 {
            let v3 = read_structure(file, 0, VERSION_3_MIN_LENGTH, "qcow2 header")?;
            header.incompatible_features = be_u64(&v3, 72);
            header.compatible_features = be_u64(&v3, 80);
            header.autoclear_features = be_u64(&v3, 88);
            header.refcount_order = be_u32(&v3, 96);
            header.header_length = be_u32(&v3, 100);
            if header.header_length < VERSION_3_MIN_LENGTH as u32
                || header.header_length % 8 != 0
                || u64::from(header.header_length) > cluster_size
            {
                return Err(corrupt(
                    &path,
                    format!(
                        "header_length is {}, expected a multiple of 8 from {VERSION_3_MIN_LENGTH} to the cluster size ({cluster_size})",
                        header.header_length
                    ),
                ));
            }
            if header.refcount_order > 6 {
                return Err(corrupt(
                    &path,
                    format!(
                        "refcount_order is {}, expected 0 to 6",
                        header.refcount_order
                    ),
                ));
            }
        }
        let first_cluster = cluster_size.min(file.len()) as usize;
        let full = read_structure(file, 0, first_cluster, "qcow2 header")?;
        if header.incompatible_features & INCOMPATIBLE_COMPRESSION_TYPE != 0 {
            if header.header_length <= 104 {
                return Err(corrupt(
                    &path,
                    "the compression type bit is set but the header has no compression_type field",
                ));
            }
            header.compression_type = match full.get(104).copied().unwrap_or(0) {
                0 => CompressionType::Deflate,
                1 => CompressionType::Zstd,
                other => {
                    return Err(corrupt(
                        &path,
                        format!("compression_type is {other}, expected 0 (deflate) or 1 (zstd)"),
                    ))
                }
            };
        }
        header.read_extensions(&path, &full)?;
        header.check_features(&path)?;
        if header.has_extended_l2() && cluster_bits < 14 {
            return Err(corrupt(
                &path,
                format!("extended L2 entries need clusters of at least 16 KiB, this image has {cluster_size} bytes"),
            ));
        }
        Ok(header)
    }

    fn read_extensions(&mut self, path: &Path, first_cluster: &[u8]) -> Result<()> {
        let structure = "qcow2 header extension";
        let mut at = self.header_length as usize;
        loop {
            if at + 8 > first_cluster.len() {
                return Err(Error::corrupt(
                    path,
                    structure,
                    format!("the extensions reach past the first cluster at offset {at} without an end marker"),
                ));
            }
            let kind = be_u32(first_cluster, at);
            let length = be_u32(first_cluster, at + 4) as usize;
            let data_start = at + 8;
            let data_end = data_start
                .checked_add(length)
                .filter(|&end| end <= first_cluster.len());
            let Some(data_end) = data_end else {
                return Err(Error::corrupt(
                    path,
                    structure,
                    format!("extension 0x{kind:08x} at offset {at} has {length} bytes, past the first cluster"),
                ));
            };
            let data = &first_cluster[data_start..data_end];
            match kind {
                EXTENSION_END => return Ok(()),
                EXTENSION_BACKING_FORMAT => {
                    self.backing_format = Some(String::from_utf8_lossy(data).into_owned());
                }
                EXTENSION_FEATURE_NAMES => {
                    for entry in data.chunks_exact(48) {
                        let name_bytes = &entry[2..];
                        let end = name_bytes
                            .iter()
                            .position(|&b| b == 0)
                            .unwrap_or(name_bytes.len());
                        self.feature_names.push(FeatureName {
                            kind: entry[0],
                            bit: entry[1],
                            name: String::from_utf8_lossy(&name_bytes[..end]).into_owned(),
                        });
                    }
                }
                EXTENSION_EXTERNAL_DATA_FILE => {
                    return Err(Error::unsupported(
                        path,
                        "qcow2 external data file",
                        format!(
                            "the guest data lives in another file ({:?}), which is not supported",
                            String::from_utf8_lossy(data)
                        ),
                    ));
                }
                EXTENSION_FULL_DISK_ENCRYPTION => {
                    return Err(Error::unsupported(
                        path,
                        "qcow2 header extension",
                        "the image is encrypted (LUKS); decrypt it with qemu-img convert first",
                    ));
                }
                // Bitmaps and extensions unknown to this reader change no guest data.
                _ => {}
            }
            at = data_start + length.div_ceil(8) * 8;
        }
    }

    /// The name the feature-name table gives an incompatible feature bit.
    fn incompatible_name(&self, bit: u8) -> Option<&str> {
        self.feature_names
            .iter()
            .find(|feature| feature.kind == 0 && feature.bit == bit)
            .map(|feature| feature.name.as_str())
    }

    fn check_features(&self, path: &Path) -> Result<()> {
        let unknown = self.incompatible_features & !INCOMPATIBLE_KNOWN;
        if unknown != 0 {
            let bit = unknown.trailing_zeros() as u8;
            let name = self
                .incompatible_name(bit)
                .map(|name| format!(" ({name:?})"))
                .unwrap_or_default();
            return Err(Error::unsupported(
                path,
                "qcow2 header",
                format!(
                    "incompatible feature bit {bit}{name} is set, which this reader does not know"
                ),
            ));
        }
        if self.incompatible_features & INCOMPATIBLE_CORRUPT != 0 {
            return Err(corrupt(
                path,
                "the image is marked corrupt (incompatible feature bit 1); qemu-img check -r all may repair it",
            ));
        }
        if self.incompatible_features & INCOMPATIBLE_EXTERNAL_DATA != 0 {
            return Err(Error::unsupported(
                path,
                "qcow2 external data file",
                "the guest data lives in an external data file (incompatible feature bit 2), which is not supported",
            ));
        }
        if self.backing_file_offset != 0 && self.backing_file_size > MAX_BACKING_NAME {
            return Err(corrupt(
                path,
                format!(
                    "the backing file name is {} bytes long, more than {MAX_BACKING_NAME}",
                    self.backing_file_size
                ),
            ));
        }
        Ok(())
    }

    /// The backing file name, when the image has one.
    pub(crate) fn backing_file_name(&self, file: &mut dyn ImageFile) -> Result<Option<String>> {
        if self.backing_file_offset == 0 || self.backing_file_size == 0 {
            return Ok(None);
        }
        let bytes = read_structure(
            file,
            self.backing_file_offset,
            self.backing_file_size as usize,
            "qcow2 backing file name",
        )?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }
}
