//! The internal snapshot table: each snapshot keeps an L1 table of its own, whose clusters
//! the active image shares through refcounts.

use crate::bytes::{be_u32, be_u64};
use crate::error::{Error, Result};
use crate::image_file::{read_structure, ImageFile};

use super::header::Header;
use super::l2::L1Entry;

/// qemu's limit on the number of snapshots.
const MAX_SNAPSHOTS: u32 = 65536;
const ENTRY_HEADER: usize = 40;

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub l1_table_offset: u64,
    pub l1_size: u32,
    pub id: String,
    pub name: String,
}

/// The snapshots and the number of bytes the table takes.
pub(crate) fn read_table(
    file: &mut dyn ImageFile,
    header: &Header,
) -> Result<(Vec<Snapshot>, u64)> {
    let path = file.path().to_path_buf();
    if header.nb_snapshots == 0 {
        return Ok((Vec::new(), 0));
    }
    if header.nb_snapshots > MAX_SNAPSHOTS {
        return Err(Error::corrupt(
            &path,
            "qcow2 snapshot table",
            format!(
                "{} snapshots, more than {MAX_SNAPSHOTS}",
                header.nb_snapshots
            ),
        ));
    }
    let mut snapshots = Vec::new();
    let mut at = header.snapshots_offset;
    for number in 0..header.nb_snapshots {
        let fixed = read_structure(file, at, ENTRY_HEADER, "qcow2 snapshot table")?;
        let id_size = u16::from_be_bytes([fixed[12], fixed[13]]) as u64;
        let name_size = u16::from_be_bytes([fixed[14], fixed[15]]) as u64;
        let extra_size = u64::from(be_u32(&fixed, 36));
        if extra_size > 1024 {
            return Err(Error::corrupt(
                &path,
                "qcow2 snapshot table",
                format!("snapshot {number} at offset {at} has {extra_size} bytes of extra data, more than 1024"),
            ));
        }
        let strings_at = at + ENTRY_HEADER as u64 + extra_size;
        let id = read_structure(file, strings_at, id_size as usize, "qcow2 snapshot table")?;
        let name = read_structure(
            file,
            strings_at + id_size,
            name_size as usize,
            "qcow2 snapshot table",
        )?;
        snapshots.push(Snapshot {
            l1_table_offset: be_u64(&fixed, 0),
            l1_size: be_u32(&fixed, 8),
            id: String::from_utf8_lossy(&id).into_owned(),
            name: String::from_utf8_lossy(&name).into_owned(),
        });
        let length = ENTRY_HEADER as u64 + extra_size + id_size + name_size;
        at += length.div_ceil(8) * 8;
    }
    Ok((snapshots, at - header.snapshots_offset))
}

/// The L2 table offsets (0: none) of a snapshot's L1 table, refused when the table is larger
/// than the file or qemu's limit.
pub(crate) fn read_l1(
    file: &mut dyn ImageFile,
    snapshot: &Snapshot,
    cluster_size: u64,
) -> Result<Vec<u64>> {
    let length = u64::from(snapshot.l1_size) * 8;
    if length > file.len() || length > super::MAX_L1_BYTES {
        return Err(Error::corrupt(
            file.path(),
            "qcow2 snapshot table",
            format!(
                "snapshot {:?} has an L1 table of {} entries, larger than the file or qemu's limit of {} bytes",
                snapshot.name, snapshot.l1_size, super::MAX_L1_BYTES
            ),
        ));
    }
    let bytes = read_structure(
        file,
        snapshot.l1_table_offset,
        length as usize,
        "qcow2 snapshot L1 table",
    )?;
    bytes
        .chunks_exact(8)
        .enumerate()
        .map(|(index, raw)| {
            let raw = u64::from_be_bytes(raw.try_into().unwrap_or_default());
            L1Entry::parse(file.path(), index, raw, cluster_size).map(|entry| entry.l2_offset)
        })
        .collect()
}
