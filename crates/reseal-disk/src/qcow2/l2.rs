//! L1 and L2 table entries: where each guest cluster lives in the file.
//!
//! The L1 table points at L2 tables; an L2 entry maps one guest cluster. With extended L2
//! entries (incompatible feature bit 4) each entry is followed by a 64-bit bitmap saying, for
//! each of the cluster's 32 subclusters, whether it is allocated (low half) or reads as zeros
//! (high half).

use std::path::Path;

use crate::error::{Error, Result};

/// Bit 63 of an L1 or standard L2 entry: the table or cluster has a refcount of exactly one,
/// so it may be written in place.
pub(crate) const COPIED: u64 = 1 << 63;
const COMPRESSED: u64 = 1 << 62;
const ZERO: u64 = 1;
/// Bits 9-55: a cluster-aligned host offset.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
pub(crate) const ALL_SUBCLUSTERS: u32 = u32::MAX;

/// An L1 entry: the offset of an L2 table (0: none) and whether it is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct L1Entry {
    pub l2_offset: u64,
    pub copied: bool,
}

impl L1Entry {
    pub fn parse(path: &Path, index: usize, raw: u64, cluster_size: u64) -> Result<L1Entry> {
        let l2_offset = raw & OFFSET_MASK;
        if raw & !(OFFSET_MASK | COPIED) != 0 || l2_offset % cluster_size != 0 {
            return Err(Error::corrupt(
                path,
                "qcow2 L1 table",
                format!("entry {index} is 0x{raw:016x}: reserved bits set or an L2 table offset not aligned to the {cluster_size}-byte cluster"),
            ));
        }
        Ok(L1Entry {
            l2_offset,
            copied: raw & COPIED != 0,
        })
    }

    pub fn to_raw(self) -> u64 {
        self.l2_offset | if self.copied { COPIED } else { 0 }
    }
}

/// What an L2 entry says about one guest cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mapping {
    /// Nothing here: the backing file's data, or zeros.
    Unallocated,
    /// Reads as zeros; `host` keeps a preallocated cluster, if any.
    Zero { host: Option<u64>, copied: bool },
    /// The whole cluster at `host` (standard entries) or the subclusters `bitmap` says
    /// (extended entries: low 32 bits allocated, high 32 bits zero).
    Normal {
        host: u64,
        copied: bool,
        bitmap: u64,
    },
    /// Compressed data of `length` bytes at most, starting at `host`.
    Compressed { host: u64, length: u64 },
}

/// The layout of one image's L2 entries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct L2Layout {
    pub cluster_bits: u32,
    pub extended: bool,
    /// Version 2 images have no zero flag.
    pub zero_flag: bool,
}

impl L2Layout {
    pub fn entry_size(&self) -> u64 {
        if self.extended {
            16
        } else {
            8
        }
    }

    pub fn entries_per_table(&self) -> u64 {
        (1u64 << self.cluster_bits) / self.entry_size()
    }

    pub fn parse(&self, path: &Path, guest_cluster: u64, raw: u64, bitmap: u64) -> Result<Mapping> {
        let cluster_size = 1u64 << self.cluster_bits;
        let bad = |why: &str| {
            Error::corrupt(
                path,
                "qcow2 L2 table",
                format!("the entry of guest cluster {guest_cluster} (0x{raw:016x}, bitmap 0x{bitmap:016x}) {why}"),
            )
        };
        if raw & COMPRESSED != 0 {
            if self.extended && bitmap != 0 {
                return Err(bad("is compressed but has a subcluster bitmap"));
            }
            // Bits 0..x-1 are the offset, x..61 the number of 512-byte sectors beyond the first.
            let x = 62 - (self.cluster_bits - 8);
            let host = raw & ((1u64 << x) - 1);
            let sectors = (raw & !COMPRESSED & !COPIED) >> x;
            let length = (sectors + 1) * 512 - (host & 511);
            return Ok(Mapping::Compressed { host, length });
        }
        let host = raw & OFFSET_MASK;
        let copied = raw & COPIED != 0;
        let reserved = if self.extended {
            !(OFFSET_MASK | COPIED)
        } else {
            !(OFFSET_MASK | COPIED | ZERO)
        };
        if raw & reserved != 0 {
            return Err(bad("has reserved bits set"));
        }
        if host % cluster_size != 0 {
            return Err(bad(&format!(
                "points to an offset not aligned to the {cluster_size}-byte cluster"
            )));
        }
        if self.extended {
            let allocated = bitmap as u32;
            let zero = (bitmap >> 32) as u32;
            if allocated & zero != 0 {
                return Err(bad("marks subclusters both allocated and zero"));
            }
            if host == 0 {
                if allocated != 0 {
                    return Err(bad("marks subclusters allocated without a host cluster"));
                }
                return Ok(if zero == 0 {
                    Mapping::Unallocated
                } else {
                    Mapping::Normal {
                        host: 0,
                        copied,
                        bitmap,
                    }
                });
            }
            return Ok(Mapping::Normal {
                host,
                copied,
                bitmap,
            });
        }
        if raw & ZERO != 0 && self.zero_flag {
            return Ok(Mapping::Zero {
                host: (host != 0).then_some(host),
                copied,
            });
        }
        if raw & ZERO != 0 {
            return Err(bad("has the zero flag set in a version 2 image"));
        }
        if host == 0 {
            return Ok(Mapping::Unallocated);
        }
        Ok(Mapping::Normal {
            host,
            copied,
            bitmap: u64::from(ALL_SUBCLUSTERS),
        })
    }

    /// The entry (and bitmap) of a cluster wholly allocated at `host` with a refcount of one.
    pub fn allocated(&self, host: u64) -> (u64, u64) {
        (
            host | COPIED,
            if self.extended {
                u64::from(ALL_SUBCLUSTERS)
            } else {
                0
            },
        )
    }
}
