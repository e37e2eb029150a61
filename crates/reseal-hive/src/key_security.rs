//! Key security records (`sk`): a security descriptor shared by any number of keys.
//!
//! Layout of the cell data (msuhanov's specification, "Key security"):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | signature `sk` |
//! | 2 | 2 | reserved |
//! | 4 | 4 | flink: next `sk` in the hive's circular list |
//! | 8 | 4 | blink: previous `sk` |
//! | 12 | 4 | reference count (number of keys using it) |
//! | 16 | 4 | security descriptor size |
//! | 20 | ... | self-relative security descriptor |
//!
//! `Hive`'s methods here list the hive's `sk` records, replace a descriptor in place by one of
//! the same length, and drop references to an `sk`, unlinking and freeing it at zero.

use std::collections::BTreeSet;

use crate::cell::{file_offset, require_len, require_signature, write_u32};
use crate::{Error, Hive, Result};
use reseal_nt::le;
use reseal_nt::security_descriptor::SecurityDescriptor;

pub(crate) const FLINK: usize = 4;
pub(crate) const BLINK: usize = 8;
pub(crate) const REFERENCE_COUNT: usize = 12;
const DESCRIPTOR_SIZE: usize = 16;
const DESCRIPTOR: usize = 20;

/// A view of a key security record's cell data.
#[derive(Clone, Copy)]
pub(crate) struct KeySecurity<'a> {
    data: &'a [u8],
}

impl<'a> KeySecurity<'a> {
    pub(crate) fn parse(data: &'a [u8], offset: u32) -> Result<Self> {
        require_len(data, DESCRIPTOR, offset, "key security")?;
        require_signature(data, "sk", offset)?;
        let sk = KeySecurity { data };
        require_len(
            data,
            DESCRIPTOR + sk.descriptor_size() as usize,
            offset,
            "security descriptor",
        )?;
        Ok(sk)
    }
    pub(crate) fn flink(&self) -> u32 {
        le::u32_at(self.data, FLINK).unwrap_or_default()
    }
    pub(crate) fn blink(&self) -> u32 {
        le::u32_at(self.data, BLINK).unwrap_or_default()
    }
    pub(crate) fn reference_count(&self) -> u32 {
        le::u32_at(self.data, REFERENCE_COUNT).unwrap_or_default()
    }
    fn descriptor_size(&self) -> u32 {
        le::u32_at(self.data, DESCRIPTOR_SIZE).unwrap_or_default()
    }
    pub(crate) fn descriptor(&self) -> &'a [u8] {
        &self.data[DESCRIPTOR..DESCRIPTOR + self.descriptor_size() as usize]
    }
}

/// The cell data of an `sk` at `offset` alone in its list (flink = blink = itself), used by one key.
pub(crate) fn encode(offset: u32, descriptor: &[u8]) -> Vec<u8> {
    let mut data = vec![0u8; DESCRIPTOR];
    data[..2].copy_from_slice(b"sk");
    data[FLINK..FLINK + 4].copy_from_slice(&offset.to_le_bytes());
    data[BLINK..BLINK + 4].copy_from_slice(&offset.to_le_bytes());
    data[REFERENCE_COUNT..REFERENCE_COUNT + 4].copy_from_slice(&1u32.to_le_bytes());
    data[DESCRIPTOR_SIZE..DESCRIPTOR_SIZE + 4]
        .copy_from_slice(&(descriptor.len() as u32).to_le_bytes());
    data.extend_from_slice(descriptor);
    data
}

/// The default descriptor of a new hive's root key, as offreg gives it: owner Administrators,
/// group SYSTEM, DACL granting SYSTEM and Administrators full control and Everyone read access,
/// inherited by subkeys.
pub(crate) fn default_descriptor() -> Vec<u8> {
    const SE_SELF_RELATIVE: u16 = 0x8000;
    const SE_DACL_PRESENT: u16 = 0x0004;
    const KEY_ALL_ACCESS: u32 = 0x000F_003F;
    const KEY_READ: u32 = 0x0002_0019;
    const CONTAINER_INHERIT_ACE: u8 = 0x02;
    let system: &[u8] = &[1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0];
    let administrators: &[u8] = &[1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0];
    let everyone: &[u8] = &[1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    let aces: Vec<Vec<u8>> = [
        (system, KEY_ALL_ACCESS),
        (administrators, KEY_ALL_ACCESS),
        (everyone, KEY_READ),
    ]
    .iter()
    .map(|(sid, mask)| {
        let mut ace = vec![0u8, CONTAINER_INHERIT_ACE];
        ace.extend_from_slice(&((8 + sid.len()) as u16).to_le_bytes());
        ace.extend_from_slice(&mask.to_le_bytes());
        ace.extend_from_slice(sid);
        ace
    })
    .collect();
    let acl_size = 8 + aces.iter().map(Vec::len).sum::<usize>();
    let mut acl = vec![2u8, 0];
    acl.extend_from_slice(&(acl_size as u16).to_le_bytes());
    acl.extend_from_slice(&(aces.len() as u16).to_le_bytes());
    acl.extend_from_slice(&[0, 0]);
    aces.iter().for_each(|ace| acl.extend_from_slice(ace));

    let owner_at = 20u32;
    let group_at = owner_at + administrators.len() as u32;
    let dacl_at = group_at + system.len() as u32;
    let mut sd = vec![1u8, 0];
    sd.extend_from_slice(&(SE_SELF_RELATIVE | SE_DACL_PRESENT).to_le_bytes());
    for field in [owner_at, group_at, 0, dacl_at] {
        sd.extend_from_slice(&field.to_le_bytes());
    }
    sd.extend_from_slice(administrators);
    sd.extend_from_slice(system);
    sd.extend_from_slice(&acl);
    sd
}

/// One key security record (`sk`) of a hive, as [`Hive::security_records`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityRecord<'h> {
    /// The cell's offset (relative to the first hive bin), which keys refer to.
    pub offset: u32,
    /// How many keys use it.
    pub reference_count: u32,
    /// The self-relative security descriptor.
    pub descriptor: &'h [u8],
}

impl Hive {
    /// Every `sk` record of the hive, following the list from the root key's record (each once).
    /// A list that loops back without returning to its start, or whose next record's blink does
    /// not point back, is corrupt.
    pub fn security_records(&self) -> Result<Vec<SecurityRecord<'_>>> {
        let start = self.nk(self.base_block().root_cell_offset())?.security();
        let mut seen = BTreeSet::new();
        let mut records = Vec::new();
        let mut at = start;
        loop {
            let sk = self.sk(at)?;
            records.push(SecurityRecord {
                offset: at,
                reference_count: sk.reference_count(),
                descriptor: sk.descriptor(),
            });
            seen.insert(at);
            let next = sk.flink();
            if next == start {
                break;
            }
            let next_blink = self.sk(next)?.blink();
            if next_blink != at {
                return Err(Error::corrupt(
                    file_offset(next),
                    format!(
                        "security record's blink is {:#x}, expected {:#x} (the record before it)",
                        file_offset(next_blink),
                        file_offset(at)
                    ),
                ));
            }
            if seen.contains(&next) {
                return Err(Error::corrupt(
                    file_offset(next),
                    "security list loops back without returning to its start",
                ));
            }
            at = next;
        }
        Ok(records)
    }

    /// Replaces, in place, the descriptor of the `sk` record at `offset` by `descriptor`, which
    /// must have the same length and parse as a self-relative descriptor. The record keeps its
    /// list links and reference count; the keys using it see the new descriptor. Two records
    /// may end up holding equal descriptors: that is valid, only wasteful.
    pub fn replace_security_descriptor(&mut self, offset: u32, descriptor: &[u8]) -> Result<()> {
        let current = self.sk(offset)?.descriptor();
        if current.len() != descriptor.len() {
            return Err(Error::InvalidArgument(format!(
                "the security descriptor at file offset {:#x} is {} bytes long; its replacement \
                 is {}",
                file_offset(offset),
                current.len(),
                descriptor.len()
            )));
        }
        if current == descriptor {
            return Ok(());
        }
        SecurityDescriptor::parse(descriptor).map_err(|e| {
            Error::InvalidArgument(format!(
                "the replacement for the security descriptor at file offset {:#x}: {e}",
                file_offset(offset)
            ))
        })?;
        self.modified = true;
        let cell = self.store.cell_mut(offset)?;
        cell[DESCRIPTOR..DESCRIPTOR + descriptor.len()].copy_from_slice(descriptor);
        Ok(())
    }

    /// Decreases the reference count of the `sk` at `offset`; at zero it leaves the sk list and is freed.
    pub(crate) fn drop_security_references(&mut self, offset: u32, dropped: u32) -> Result<()> {
        let sk = self.sk(offset)?;
        let (count, flink, blink) = (sk.reference_count(), sk.flink(), sk.blink());
        let count = count.saturating_sub(dropped);
        if count > 0 {
            write_u32(self.store.cell_mut(offset)?, REFERENCE_COUNT, count);
            return Ok(());
        }
        if flink != offset {
            self.sk(flink)?;
            self.sk(blink)?;
            write_u32(self.store.cell_mut(blink)?, FLINK, flink);
            write_u32(self.store.cell_mut(flink)?, BLINK, blink);
        }
        self.store.free(offset)
    }
}
