//! The blob table: where every stream ("blob") of the WIM lies, keyed by SHA-1.
//!
//! An uncompressed-or-compressed resource described by the header's blob table resource
//! header, holding 50-byte entries:
//!
//! | offset | size | field                                    |
//! |-------:|-----:|------------------------------------------|
//! |      0 |   24 | resource header (`header::ResourceHeader`) |
//! |     24 |    2 | part number                              |
//! |     26 |    4 | reference count                          |
//! |     30 |   20 | SHA-1 of the uncompressed blob           |
//!
//! Entries flagged `RESOURCE_METADATA` are the images' metadata resources, image 1 first, in
//! table order. In solid WIMs (version 0xe00) a run of consecutive `RESOURCE_SOLID` entries
//! describes solid resources (entries whose uncompressed size is the magic 0x1_0000_0000) and
//! the blobs inside them: for a blob entry, `offset` is its position in the concatenated
//! uncompressed contents of the run's resources and `size_in_wim` its size.

use std::collections::HashMap;

use crate::error::Malformed;
use crate::header::{self, ResourceHeader, RESOURCE_HEADER_SIZE};
use reseal_nt::le;

pub const ENTRY_SIZE: usize = 50;
pub const SOLID_RESOURCE_MAGIC: u64 = 0x1_0000_0000;

pub type Sha1 = [u8; 20];
pub const ZERO_HASH: Sha1 = [0; 20];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    pub reshdr: ResourceHeader,
    pub part_number: u16,
    pub refcount: u32,
    pub hash: Sha1,
    /// For an entry of a solid run: the index of the run in [`BlobTable::solid_runs`].
    pub solid_run: Option<usize>,
}

impl BlobEntry {
    pub fn to_bytes(&self) -> [u8; ENTRY_SIZE] {
        let mut out = [0u8; ENTRY_SIZE];
        out[..24].copy_from_slice(&self.reshdr.to_bytes());
        out[24..26].copy_from_slice(&self.part_number.to_le_bytes());
        out[26..30].copy_from_slice(&self.refcount.to_le_bytes());
        out[30..50].copy_from_slice(&self.hash);
        out
    }

    pub fn is_metadata(&self) -> bool {
        self.reshdr.flags & header::RESOURCE_METADATA != 0
    }

    pub fn is_solid_resource(&self) -> bool {
        self.solid_run.is_some() && self.reshdr.uncompressed_size == SOLID_RESOURCE_MAGIC
    }

    /// The resource header of this blob when a new resource replacing it may copy its chunks:
    /// compressed, and not part of a solid run.
    pub(crate) fn reusable_resource(&self) -> Option<ResourceHeader> {
        (self.solid_run.is_none() && self.reshdr.is_compressed()).then_some(self.reshdr)
    }
}

#[derive(Debug, Clone, Default)]
pub struct BlobTable {
    /// Every entry in on-disk order (rewritten in the same order).
    pub entries: Vec<BlobEntry>,
    /// Indices into `entries` of the metadata resources, image 1 first.
    pub metadata: Vec<usize>,
    /// For each solid run, the indices of its resource entries in order.
    pub solid_runs: Vec<Vec<usize>>,
    by_hash: HashMap<Sha1, usize>,
}

impl BlobTable {
    /// Checks that every entry stored in the file (all but the blobs inside solid resources,
    /// whose offsets are within their run) lies within its `file_len` bytes.
    pub fn check_within(&self, file_len: u64) -> Result<(), Malformed> {
        for (index, entry) in self.entries.iter().enumerate() {
            if entry.solid_run.is_some() && !entry.is_solid_resource() {
                continue;
            }
            let reshdr = &entry.reshdr;
            if reshdr.end().is_none_or(|end| end > file_len) {
                return Err(Malformed::new(
                    "blob table",
                    format!(
                        "entry {index} lies at offset {} with {} bytes, past the end of the {file_len}-byte file",
                        reshdr.offset, reshdr.size_in_wim
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn parse(bytes: &[u8], solid_allowed: bool) -> Result<Self, Malformed> {
        if bytes.len() % ENTRY_SIZE != 0 {
            return Err(Malformed::new(
                "blob table",
                format!("size {} is not a multiple of {ENTRY_SIZE}", bytes.len()),
            ));
        }
        let mut table = BlobTable::default();
        let mut current_run: Option<usize> = None;
        for raw in bytes.chunks_exact(ENTRY_SIZE) {
            let mut reshdr_bytes = [0u8; RESOURCE_HEADER_SIZE];
            reshdr_bytes.copy_from_slice(&raw[..24]);
            let reshdr = ResourceHeader::parse(&reshdr_bytes);
            let mut hash = ZERO_HASH;
            hash.copy_from_slice(&raw[30..50]);
            // wimlib ignores the flag in non-solid WIMs; so do we.
            let solid = solid_allowed && reshdr.flags & header::RESOURCE_SOLID != 0;
            let solid_run = if solid {
                let run = *current_run.get_or_insert_with(|| {
                    table.solid_runs.push(Vec::new());
                    table.solid_runs.len() - 1
                });
                if reshdr.uncompressed_size == SOLID_RESOURCE_MAGIC {
                    table.solid_runs[run].push(table.entries.len());
                }
                Some(run)
            } else {
                current_run = None;
                if !reshdr.is_compressed() && reshdr.size_in_wim != reshdr.uncompressed_size {
                    return Err(Malformed::new(
                        "blob table",
                        format!(
                            "entry {} is uncompressed but its sizes differ ({} in file, {} expanded)",
                            table.entries.len(),
                            reshdr.size_in_wim,
                            reshdr.uncompressed_size
                        ),
                    ));
                }
                None
            };
            let entry = BlobEntry {
                reshdr,
                part_number: le::u16_at(raw, 24).unwrap_or_default(),
                refcount: le::u32_at(raw, 26).unwrap_or_default(),
                hash,
                solid_run,
            };
            let index = table.entries.len();
            if entry.is_metadata() {
                // Unreferenced metadata entries exist in some Microsoft WIMs; wimlib skips them.
                if entry.refcount != 0 {
                    if solid {
                        return Err(Malformed::unsupported(
                            "blob table",
                            "image metadata inside a solid resource",
                        ));
                    }
                    table.metadata.push(index);
                }
            } else if !entry.is_solid_resource() && entry.hash != ZERO_HASH {
                // Like wimlib, the first entry of a duplicated hash wins.
                table.by_hash.entry(entry.hash).or_insert(index);
            }
            table.entries.push(entry);
        }
        for run in &table.solid_runs {
            if run.is_empty() {
                return Err(Malformed::new(
                    "blob table",
                    "solid blob entries without a solid resource entry",
                ));
            }
        }
        Ok(table)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * ENTRY_SIZE);
        for entry in &self.entries {
            out.extend_from_slice(&entry.to_bytes());
        }
        out
    }

    /// The index of the entry holding the blob with this hash.
    pub fn find(&self, hash: &Sha1) -> Option<usize> {
        self.by_hash.get(hash).copied()
    }

    /// Appends an entry for a new blob and indexes it.
    pub fn push(&mut self, entry: BlobEntry) -> usize {
        let index = self.entries.len();
        if !entry.is_metadata() {
            self.by_hash.entry(entry.hash).or_insert(index);
        }
        self.entries.push(entry);
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(flags: u8, offset: u64, size: u64, usize_: u64, hash: u8) -> BlobEntry {
        BlobEntry {
            reshdr: ResourceHeader {
                size_in_wim: size,
                flags,
                offset,
                uncompressed_size: usize_,
            },
            part_number: 1,
            refcount: 1,
            hash: [hash; 20],
            solid_run: None,
        }
    }

    #[test]
    fn entries_round_trip_and_metadata_is_found_in_order() {
        let mut table = BlobTable::default();
        table.push(entry(0, 208, 10, 10, 1));
        table.push(entry(
            header::RESOURCE_METADATA | header::RESOURCE_COMPRESSED,
            218,
            5,
            40,
            2,
        ));
        table.push(entry(header::RESOURCE_METADATA, 223, 7, 7, 3));
        let parsed = BlobTable::parse(&table.to_bytes(), false).unwrap();
        assert_eq!(parsed.entries, table.entries);
        assert_eq!(parsed.metadata, vec![1, 2]);
        assert_eq!(parsed.find(&[1; 20]), Some(0));
        assert_eq!(parsed.find(&[9; 20]), None);
    }

    #[test]
    fn solid_runs_group_resources_and_blobs() {
        let mut table = BlobTable::default();
        table.push(entry(
            header::RESOURCE_SOLID | header::RESOURCE_COMPRESSED,
            208,
            100,
            SOLID_RESOURCE_MAGIC,
            0,
        ));
        table.push(entry(header::RESOURCE_SOLID, 0, 30, 30, 5));
        table.push(entry(header::RESOURCE_SOLID, 30, 20, 20, 6));
        table.push(entry(0, 308, 4, 4, 7));
        let parsed = BlobTable::parse(&table.to_bytes(), true).unwrap();
        assert_eq!(parsed.solid_runs, vec![vec![0]]);
        assert_eq!(parsed.entries[2].solid_run, Some(0));
        assert_eq!(parsed.entries[3].solid_run, None);
        // In a non-solid WIM the flag is ignored, as wimlib does.
        let plain = BlobTable::parse(&table.to_bytes(), false).unwrap();
        assert!(plain.solid_runs.is_empty());
        assert_eq!(plain.entries[2].solid_run, None);
    }

    #[test]
    fn ragged_tables_are_refused() {
        assert!(BlobTable::parse(&[0u8; 49], false).is_err());
    }
}
