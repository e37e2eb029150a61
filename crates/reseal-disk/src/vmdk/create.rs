//! New monolithicSparse children of a VMDK, laid out as qemu-img lays out its own: the header,
//! the embedded descriptor (20 sectors), the redundant grain directory and its grain tables,
//! the grain directory and its grain tables, every table made (empty) up front, so a write only
//! ever appends grains.

use std::path::Path;

use super::descriptor::{self, NO_PARENT_CID};
use super::sparse_header::{self, GD_AT_END};
use crate::error::{Error, Result};
use crate::image_file::{ImageFile, LocalFile};
use crate::parent::parent_paths_for_child;
use crate::Entropy;

/// What a child records of its VMDK parent.
#[derive(Clone, Debug)]
pub struct ParentRecord {
    pub cid: u32,
    /// The virtual disk size in bytes (a multiple of 512).
    pub size: u64,
    /// The parent's `ddb.` lines that describe the virtual hardware (geometry, adapter).
    pub hardware_lines: Vec<String>,
}

const GRAIN_SECTORS: u64 = 128;
const GTES_PER_GT: u64 = 512;
const DESCRIPTOR_OFFSET: u64 = 1;
const DESCRIPTOR_SECTORS: u64 = 20;

/// A random CID from `entropy` that means neither "no parent" nor "invalid".
pub(crate) fn random_cid(path: &Path, entropy: &Entropy) -> Result<u32> {
    loop {
        let mut random = [0u8; 4];
        entropy
            .fill(&mut random)
            .map_err(|e| Error::no_random(path, reseal_nt::GuidError::NoRandom(e)))?;
        let cid = u32::from_le_bytes(random);
        if cid < NO_PARENT_CID - 1 {
            return Ok(cid);
        }
    }
}

/// The name a child records for its parent: relative to the child's directory with `/`, or
/// the parent's absolute path when they share no root.
fn parent_hint(parent_path: &Path, child_path: &Path) -> Result<String> {
    let (absolute, relative) = parent_paths_for_child(parent_path, child_path)?;
    Ok(match relative {
        Some(relative) => {
            let relative = relative.replace('\\', "/");
            relative
                .strip_prefix("./")
                .map(str::to_string)
                .unwrap_or(relative)
        }
        None => absolute.to_string_lossy().into_owned(),
    })
}

/// Creates an empty monolithicSparse child of the VMDK at `parent_path`, described by
/// `parent`, at `child_path`, naming itself `extent_name` in its descriptor; its CID is drawn
/// from `entropy`.
pub(crate) fn create_differencing_child(
    parent: &ParentRecord,
    parent_path: &Path,
    child_path: &Path,
    extent_name: &str,
    entropy: &Entropy,
) -> Result<()> {
    let hint = parent_hint(parent_path, child_path)?;
    if hint.contains('"') || extent_name.contains('"') {
        return Err(Error::unsupported(
            child_path,
            "VMDK descriptor",
            "a file name holding a double quote cannot be written in a descriptor",
        ));
    }
    let capacity = parent.size / 512;
    let tables = (capacity * 512).div_ceil(GRAIN_SECTORS * 512 * GTES_PER_GT);
    let directory_sectors = (tables * 4).div_ceil(512);
    let table_sectors = GTES_PER_GT * 4 / 512;
    let rgd_offset = DESCRIPTOR_OFFSET + DESCRIPTOR_SECTORS;
    let gd_offset = rgd_offset + directory_sectors + tables * table_sectors;
    let end = gd_offset + directory_sectors + tables * table_sectors;
    let overhead = end.div_ceil(GRAIN_SECTORS) * GRAIN_SECTORS;
    if overhead + capacity > u64::from(u32::MAX) {
        return Err(Error::unsupported(
            child_path,
            "VMDK sparse extent header",
            format!(
                "a {}-byte disk is too large for one sparse extent's 32-bit sector numbers",
                parent.size
            ),
        ));
    }

    let mut header = [0u8; sparse_header::SIZE];
    header[..4].copy_from_slice(sparse_header::MAGIC);
    header[4..8].copy_from_slice(&1u32.to_le_bytes());
    // Newline test and redundant grain tables, as qemu and VMware write.
    header[8..12].copy_from_slice(&3u32.to_le_bytes());
    header[12..20].copy_from_slice(&capacity.to_le_bytes());
    header[20..28].copy_from_slice(&GRAIN_SECTORS.to_le_bytes());
    header[28..36].copy_from_slice(&DESCRIPTOR_OFFSET.to_le_bytes());
    header[36..44].copy_from_slice(&DESCRIPTOR_SECTORS.to_le_bytes());
    header[44..48].copy_from_slice(&(GTES_PER_GT as u32).to_le_bytes());
    header[48..56].copy_from_slice(&rgd_offset.to_le_bytes());
    header[56..64].copy_from_slice(&gd_offset.to_le_bytes());
    header[64..72].copy_from_slice(&overhead.to_le_bytes());
    header[73..77].copy_from_slice(b"\n \r\n");
    debug_assert_ne!(gd_offset, GD_AT_END);

    let mut text = format!(
        "# Disk DescriptorFile\nversion=1\nCID={:08x}\nparentCID={:08x}\ncreateType=\"monolithicSparse\"\nparentFileNameHint=\"{hint}\"\n\n# Extent description\nRW {capacity} SPARSE \"{extent_name}\"\n\n# The Disk Data Base\n#DDB\n\n",
        random_cid(child_path, entropy)?,
        parent.cid,
    );
    for line in &parent.hardware_lines {
        text.push_str(line);
        text.push('\n');
    }
    if text.len() as u64 > DESCRIPTOR_SECTORS * 512 {
        return Err(Error::unsupported(
            child_path,
            "VMDK descriptor",
            format!(
                "the child's descriptor would be {} bytes, more than its {} sectors",
                text.len(),
                DESCRIPTOR_SECTORS
            ),
        ));
    }
    // Parsed back before it is written: what is written is what the reader accepts.
    descriptor::Descriptor::parse(child_path, text.as_bytes())?;

    let directory = |first_table: u64| -> Vec<u8> {
        let mut bytes = vec![0u8; (directory_sectors * 512) as usize];
        for table in 0..tables {
            let sector = (first_table + table * table_sectors) as u32;
            let at = table as usize * 4;
            bytes[at..at + 4].copy_from_slice(&sector.to_le_bytes());
        }
        bytes
    };

    let mut child = LocalFile::create(child_path)?;
    child.set_len(overhead * 512)?;
    child.write_at(0, &header)?;
    child.write_at(DESCRIPTOR_OFFSET * 512, text.as_bytes())?;
    child.write_at(rgd_offset * 512, &directory(rgd_offset + directory_sectors))?;
    child.write_at(gd_offset * 512, &directory(gd_offset + directory_sectors))?;
    child.sync()
}
