//! The refcount table and refcount blocks: how many references each host cluster has.
//!
//! The table (contiguous clusters at `refcount_table_offset`) holds the offsets of refcount
//! blocks; a block is one cluster of `refcount_bits`-wide entries, one per host cluster.
//! Entries narrower than a byte are packed from the least significant bit, wider ones are
//! big-endian (qemu's `get_refcount_ro*`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::image_file::{read_structure, ImageFile};

/// The header's refcount_table_offset (8 bytes), followed by refcount_table_clusters (4).
const REFCOUNT_TABLE_HEADER_OFFSET: u64 = 48;

/// Bits 9-63 of a table entry: a cluster-aligned refcount block offset.
const BLOCK_OFFSET_MASK: u64 = !0x1ff;

/// The largest refcount table qemu opens (`QCOW_MAX_REFTABLE_SIZE`, enough for 2 PB at 64 KiB
/// clusters). A larger one is never written by qemu, and is refused before it is read into
/// memory: a sparse file can claim any length.
const MAX_TABLE_BYTES: u64 = 8 << 20;

pub(crate) struct Refcounts {
    path: PathBuf,
    table_offset: u64,
    table: Vec<u64>,
    cluster_bits: u32,
    refcount_order: u32,
    /// Refcount blocks read so far, by their offset in the file.
    blocks: BTreeMap<u64, Vec<u8>>,
    /// The next host cluster an allocation tries: clusters are only ever appended.
    next_free: u64,
}

impl Refcounts {
    pub fn read(
        file: &mut dyn ImageFile,
        table_offset: u64,
        table_clusters: u32,
        cluster_bits: u32,
        refcount_order: u32,
    ) -> Result<Refcounts> {
        let path = file.path().to_path_buf();
        let cluster_size = 1u64 << cluster_bits;
        let length = u64::from(table_clusters) << cluster_bits;
        if length > MAX_TABLE_BYTES {
            return Err(Error::corrupt(
                &path,
                "qcow2 refcount table",
                format!("{table_clusters} clusters of {cluster_size} bytes are more than qemu's limit of {MAX_TABLE_BYTES} bytes"),
            ));
        }
        if table_offset % cluster_size != 0 || length == 0 || length > file.len() {
            return Err(Error::corrupt(
                &path,
                "qcow2 refcount table",
                format!("{table_clusters} clusters at offset {table_offset}: not cluster-aligned, empty or larger than the file ({} bytes)", file.len()),
            ));
        }
        let bytes = read_structure(file, table_offset, length as usize, "qcow2 refcount table")?;
        let table: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|entry| u64::from_be_bytes(entry.try_into().unwrap_or_default()))
            .collect();
        for (index, &entry) in table.iter().enumerate() {
            if entry & !BLOCK_OFFSET_MASK != 0 || entry % cluster_size != 0 {
                return Err(Error::corrupt(
                    &path,
                    "qcow2 refcount table",
                    format!("entry {index} is 0x{entry:016x}, not a cluster-aligned offset"),
                ));
            }
        }
        Ok(Refcounts {
            next_free: file.len().div_ceil(cluster_size),
            path,
            table_offset,
            table,
            cluster_bits,
            refcount_order,
            blocks: BTreeMap::new(),
        })
    }

    fn refcount_bits(&self) -> u64 {
        1 << self.refcount_order
    }

    fn entries_per_block(&self) -> u64 {
        (8u64 << self.cluster_bits) >> self.refcount_order
    }

    pub fn max_refcount(&self) -> u64 {
        if self.refcount_order == 6 {
            u64::MAX
        } else {
            (1 << self.refcount_bits()) - 1
        }
    }

    /// The refcount block holding `cluster`'s entry: its offset (0: none yet) and the entry's
    /// index in it.
    fn locate(&self, cluster: u64) -> Result<(usize, u64, u64)> {
        let per_block = self.entries_per_block();
        let table_index = cluster / per_block;
        let block = usize::try_from(table_index)
            .ok()
            .and_then(|index| self.table.get(index).map(|&offset| (index, offset)));
        match block {
            Some((index, offset)) => Ok((index, offset, cluster % per_block)),
            None => Err(Error::corrupt(
                &self.path,
                "qcow2 refcount table",
                format!(
                    "host cluster {cluster} lies past what the refcount table covers ({} blocks)",
                    self.table.len()
                ),
            )),
        }
    }

    fn block(&mut self, file: &mut dyn ImageFile, offset: u64) -> Result<&mut Vec<u8>> {
        if !self.blocks.contains_key(&offset) {
            let bytes =
                read_structure(file, offset, 1 << self.cluster_bits, "qcow2 refcount block")?;
            self.blocks.insert(offset, bytes);
        }
        Ok(self.blocks.entry(offset).or_default())
    }

    /// The byte range of entry `index` in a block, and its bit shift within that range.
    fn entry_bytes(&self, index: u64) -> (usize, usize, u32) {
        let bits = self.refcount_bits();
        if bits < 8 {
            let byte = (index * bits / 8) as usize;
            (byte, byte + 1, ((index * bits) % 8) as u32)
        } else {
            let width = (bits / 8) as usize;
            let start = index as usize * width;
            (start, start + width, 0)
        }
    }

    fn decode(&self, bytes: &[u8], shift: u32) -> u64 {
        let bits = self.refcount_bits();
        if bits < 8 {
            (u64::from(bytes[0]) >> shift) & ((1 << bits) - 1)
        } else {
            bytes
                .iter()
                .fold(0u64, |value, &b| (value << 8) | u64::from(b))
        }
    }

    /// The refcount of the host cluster `cluster` (0 where no block covers it).
    pub fn get(&mut self, file: &mut dyn ImageFile, cluster: u64) -> Result<u64> {
        let Ok((_, offset, index)) = self.locate(cluster) else {
            return Ok(0);
        };
        if offset == 0 {
            return Ok(0);
        }
        let (start, end, shift) = self.entry_bytes(index);
        let block = self.block(file, offset)?;
        let bytes = block[start..end].to_vec();
        Ok(self.decode(&bytes, shift))
    }

    /// Sets the refcount of `cluster`, whose block must exist, writing only its entry's bytes.
    pub fn set(&mut self, file: &mut dyn ImageFile, cluster: u64, value: u64) -> Result<()> {
        let (_, offset, index) = self.locate(cluster)?;
        if offset == 0 {
            return Err(Error::corrupt(
                &self.path,
                "qcow2 refcount table",
                format!("host cluster {cluster} is in use but no refcount block covers it"),
            ));
        }
        if value > self.max_refcount() {
            return Err(Error::unsupported(
                &self.path,
                "qcow2 refcount block",
                format!("host cluster {cluster} would need a refcount of {value}, more than {} bits hold", self.refcount_bits()),
            ));
        }
        let (start, end, shift) = self.entry_bytes(index);
        let bits = self.refcount_bits();
        let block = self.block(file, offset)?;
        if bits < 8 {
            let mask = (((1u16 << bits) - 1) as u8) << shift;
            block[start] = (block[start] & !mask) | (((value as u8) << shift) & mask);
        } else {
            let width = end - start;
            block[start..end].copy_from_slice(&value.to_be_bytes()[8 - width..]);
        }
        let bytes = block[start..end].to_vec();
        file.write_at(offset + start as u64, &bytes)
    }

    /// Adds `delta` (which may be negative) to the refcount of `cluster`.
    pub fn add(&mut self, file: &mut dyn ImageFile, cluster: u64, delta: i64) -> Result<()> {
        let current = self.get(file, cluster)?;
        let Some(value) = current.checked_add_signed(delta) else {
            return Err(Error::corrupt(
                &self.path,
                "qcow2 refcount block",
                format!(
                    "host cluster {cluster} has a refcount of {current}, too low to drop by {}",
                    -delta
                ),
            ));
        };
        self.set(file, cluster, value)
    }

    /// A free host cluster at the end of the file for new data, whose refcount block exists.
    /// Its refcount stays 0 until the caller has written it and calls [`Refcounts::set`]; a
    /// crash in between leaves unused bytes at the end of the file, nothing referenced.
    ///
    /// A missing refcount block is made in the cluster it covers first: written and flushed,
    /// then entered in the table (and flushed), so a crash leaves either no block or a block
    /// that counts itself.
    pub fn reserve_cluster(&mut self, file: &mut dyn ImageFile) -> Result<u64> {
        let cluster_size = 1u64 << self.cluster_bits;
        loop {
            let cluster = self.next_free;
            if cluster / self.entries_per_block() >= self.table.len() as u64 {
                self.grow_table(file)?;
                continue;
            }
            let (table_index, block_offset, index) = self.locate(cluster)?;
            self.next_free += 1;
            if block_offset == 0 {
                let offset = cluster << self.cluster_bits;
                let mut block = vec![0u8; cluster_size as usize];
                let (start, end, shift) = self.entry_bytes(index);
                if self.refcount_bits() < 8 {
                    block[start] = 1 << shift;
                } else {
                    block[end - 1] = 1;
                }
                file.write_at(offset, &block)?;
                file.order_writes()?;
                file.write_at(
                    self.table_offset + 8 * table_index as u64,
                    &offset.to_be_bytes(),
                )?;
                file.order_writes()?;
                self.table[table_index] = offset;
                self.blocks.insert(offset, block);
                continue;
            }
            if self.get(file, cluster)? == 0 {
                return Ok(cluster << self.cluster_bits);
            }
        }
    }

    /// Makes a larger refcount table, as qemu does when an allocation needs a refcount block
    /// the table cannot address: at the end of the file, the refcount blocks the new clusters
    /// need (counting themselves and the table), then the table (the old entries, the new
    /// blocks, and room to grow), flushed; then the header's table offset and size in one
    /// 12-byte write, flushed; then the old table's clusters freed. A crash before the header
    /// write leaves the old table in use and the new clusters leaked; after it, the old table
    /// leaked at worst.
    fn grow_table(&mut self, file: &mut dyn ImageFile) -> Result<()> {
        let cluster_size = 1u64 << self.cluster_bits;
        let per_block = self.entries_per_block();
        let start = self.next_free;
        let first_block = start / per_block;
        let old_entries = self.table.len() as u64;
        // The table grows by half again at least, so growing stays rare.
        let mut table_entries = (old_entries + old_entries / 2).max(first_block + 1);
        let (blocks, table_clusters) = loop {
            let table_clusters = (table_entries * 8).div_ceil(cluster_size);
            // Blocks needed for the area [start, start + blocks + table): found by growing the
            // count until it covers itself.
            let mut blocks = 1;
            while (start + blocks + table_clusters).div_ceil(per_block) - first_block > blocks {
                blocks += 1;
            }
            let last_block = (start + blocks + table_clusters - 1) / per_block;
            if last_block < table_entries {
                break (blocks, table_clusters);
            }
            table_entries = last_block + 1;
        };
        let table_start = start + blocks;
        let end = table_start + table_clusters;
        if table_clusters.saturating_mul(cluster_size) > MAX_TABLE_BYTES
            || end.checked_mul(cluster_size).is_none()
        {
            return Err(Error::unsupported(
                &self.path,
                "qcow2 refcount table",
                format!(
                    "a refcount table of {table_entries} entries is larger than qemu opens ({MAX_TABLE_BYTES} bytes)"
                ),
            ));
        }
        let mut table = self.table.clone();
        // The table is read back as whole clusters of entries.
        table.resize((table_clusters * cluster_size / 8) as usize, 0);
        let mut new_blocks = Vec::new();
        for block in 0..blocks {
            let index = first_block + block;
            let offset = (start + block) << self.cluster_bits;
            let mut bytes = vec![0u8; cluster_size as usize];
            let covered = index * per_block..(index + 1) * per_block;
            for cluster in start.max(covered.start)..end.min(covered.end) {
                let (byte, stop, shift) = self.entry_bytes(cluster - covered.start);
                if self.refcount_bits() < 8 {
                    bytes[byte] |= 1 << shift;
                } else {
                    bytes[stop - 1] = 1;
                }
            }
            file.write_at(offset, &bytes)?;
            table[index as usize] = offset;
            new_blocks.push((offset, bytes));
        }
        let table_offset = table_start << self.cluster_bits;
        let mut table_bytes = vec![0u8; (table_clusters * cluster_size) as usize];
        for (entry, offset) in table_bytes.chunks_exact_mut(8).zip(&table) {
            entry.copy_from_slice(&offset.to_be_bytes());
        }
        file.write_at(table_offset, &table_bytes)?;
        file.order_writes()?;
        let mut header_fields = table_offset.to_be_bytes().to_vec();
        header_fields.extend_from_slice(&(table_clusters as u32).to_be_bytes());
        file.write_at(REFCOUNT_TABLE_HEADER_OFFSET, &header_fields)?;
        file.order_writes()?;
        let (old_offset, old_length) = self.table_extent();
        self.table = table;
        self.table_offset = table_offset;
        self.blocks.extend(new_blocks);
        self.next_free = end;
        let old_first = old_offset >> self.cluster_bits;
        for cluster in old_first..old_first + old_length.div_ceil(cluster_size) {
            self.add(file, cluster, -1)?;
        }
        file.order_writes()
    }

    /// Every refcount block's offset, for the consistency check.
    pub fn table(&self) -> &[u64] {
        &self.table
    }

    /// The table's offset and length in bytes (whole clusters).
    pub fn table_extent(&self) -> (u64, u64) {
        (self.table_offset, (self.table.len() * 8) as u64)
    }
}
