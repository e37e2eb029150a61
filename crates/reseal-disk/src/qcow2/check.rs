//! Counting every reference to every host cluster, as `qemu-img check` does, to tell whether
//! an image left dirty with lazy refcounts still counts its clusters right.

use std::collections::HashMap;

use crate::error::Result;

use super::{snapshots, Qcow2};

/// The number of references to each host cluster: the header, the refcount structures, the
/// snapshot table and, for the active image and every snapshot, its L1 table, the L2 tables it
/// points to and the clusters they map (a table shared by two L1 tables is walked twice, as its
/// clusters are counted twice).
pub(crate) fn count_references(image: &mut Qcow2) -> Result<HashMap<u64, u64>> {
    let bits = image.header.cluster_bits;
    let mut references: HashMap<u64, u64> = HashMap::new();
    let count_range = |references: &mut HashMap<u64, u64>, offset: u64, length: u64| {
        if length == 0 {
            return;
        }
        for cluster in (offset >> bits)..=((offset + length - 1) >> bits) {
            *references.entry(cluster).or_default() += 1;
        }
    };
    count_range(&mut references, 0, 1);
    let (table_offset, table_length) = image.refcounts.table_extent();
    count_range(&mut references, table_offset, table_length);
    for &block in image.refcounts.table() {
        if block != 0 {
            count_range(&mut references, block, 1);
        }
    }
    let header = image.header.clone();
    let (snapshots, snapshot_bytes) = snapshots::read_table(&mut *image.file, &header)?;
    count_range(&mut references, header.snapshots_offset, snapshot_bytes);

    let mut trees = vec![(header.l1_table_offset, header.l1_size, image.l1_offsets())];
    for snapshot in &snapshots {
        let entries = snapshots::read_l1(&mut *image.file, snapshot, header.cluster_size())?;
        trees.push((snapshot.l1_table_offset, snapshot.l1_size, entries));
    }
    let per_table = image.layout.entries_per_table();
    let step = image.layout.entry_size() as usize;
    for (l1_offset, l1_size, l2_offsets) in trees {
        count_range(&mut references, l1_offset, u64::from(l1_size) * 8);
        for (l1_index, l2_offset) in l2_offsets.into_iter().enumerate() {
            if l2_offset == 0 {
                continue;
            }
            count_range(&mut references, l2_offset, 1);
            let table = image.l2_table(l2_offset)?.clone();
            for index in 0..per_table as usize {
                let raw = u64::from_be_bytes(crate::bytes::array(&table, index * step));
                let bitmap = if image.layout.extended {
                    u64::from_be_bytes(crate::bytes::array(&table, index * step + 8))
                } else {
                    0
                };
                let guest = l1_index as u64 * per_table + index as u64;
                let mapping = image.layout.parse(image.file.path(), guest, raw, bitmap)?;
                for cluster in image.host_clusters(mapping) {
                    *references.entry(cluster).or_default() += 1;
                }
            }
        }
    }
    Ok(references)
}
