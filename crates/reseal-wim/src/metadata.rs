//! An image's metadata resource, uncompressed: the security data block followed by the dentry
//! tree (see `security.rs` and `dentry.rs`). Its blob table entry is flagged
//! `RESOURCE_METADATA`; its hash is the SHA-1 of the uncompressed bytes.
//!
//! The bytes are kept so that edits which do not change any dentry's size (a new stream hash,
//! a new last write time) can be patched in place and everything else written back
//! byte-for-byte. Edits that change the tree's shape (a dentry unlinked or added, a new
//! security descriptor) change only the parsed tree; [`ImageMetadata::serialize`] lays the
//! bytes out again once, when the image is written, however many such edits were made.

use std::collections::{HashMap, HashSet};

use crate::blob_table::Sha1;
use crate::dentry::{self, Dentry, LAST_WRITE_TIME_FIELD};
use crate::error::Malformed;
use crate::security::SecurityData;
use crate::xml::ImageCounts;

#[derive(Debug, Clone)]
pub struct ImageMetadata {
    pub bytes: Vec<u8>,
    pub security: SecurityData,
    /// Depth-first, the root first (dentries added since parsing at the end). Unlinked
    /// dentries stay until the next serialization.
    pub dentries: Vec<Dentry>,
    /// Bytes of dentries added since parsing, by index.
    added: HashMap<usize, Vec<u8>>,
    /// Dentries unlinked since parsing (with everything below them).
    unlinked: HashSet<usize>,
    /// `true` when a descriptor was added to `security` since parsing.
    security_changed: bool,
}

impl ImageMetadata {
    pub fn parse(bytes: Vec<u8>) -> Result<Self, Malformed> {
        let security = SecurityData::parse(&bytes)?;
        let dentries = dentry::parse_tree(&bytes, security.total_length)?;
        for dentry in &dentries {
            if dentry.security_id >= 0 && dentry.security_id as usize >= security.descriptors.len()
            {
                return Err(Malformed::new(
                    "dentry",
                    format!(
                        "{:?} at offset {} has security id {} but there are {} descriptors",
                        dentry.name,
                        dentry.offset,
                        dentry.security_id,
                        security.descriptors.len()
                    ),
                ));
            }
        }
        Ok(Self {
            bytes,
            security,
            dentries,
            added: HashMap::new(),
            unlinked: HashSet::new(),
            security_changed: false,
        })
    }

    /// The dentry at `path` (components separated by `\` or `/`, relative to the root,
    /// compared case-insensitively; an exact-case match wins when names differ only in case).
    pub fn lookup(&self, path: &str) -> Option<usize> {
        let mut current = 0usize;
        for component in path
            .split(['\\', '/'])
            .filter(|c| !c.is_empty() && *c != ".")
        {
            if component == ".." {
                return None;
            }
            let children = &self.dentries[current].children;
            let exact = children
                .iter()
                .find(|&&c| self.dentries[c].name == component);
            let wanted = reseal_nt::upcase::upcase_str(component);
            current = *exact.or_else(|| {
                children
                    .iter()
                    .find(|&&c| reseal_nt::upcase::upcase_str(&self.dentries[c].name) == wanted)
            })?;
        }
        Some(current)
    }

    /// The path of a dentry from the root, components joined by `\` (`""` for the root).
    pub fn path_of(&self, index: usize) -> String {
        let mut names = Vec::new();
        let mut current = Some(index);
        while let Some(i) = current {
            if self.dentries[i].parent.is_some() {
                names.push(self.dentries[i].name.as_str());
            }
            current = self.dentries[i].parent;
        }
        names.reverse();
        names.join("\\")
    }

    pub fn security_descriptor(&self, index: usize) -> Option<&[u8]> {
        let id = self.dentries[index].security_id;
        (id >= 0)
            .then(|| {
                self.security
                    .descriptors
                    .get(id as usize)
                    .map(Vec::as_slice)
            })
            .flatten()
    }

    /// `true` when dentries were added or unlinked, or a descriptor added, since parsing:
    /// `bytes` no longer describe the tree until [`ImageMetadata::serialize`].
    pub fn has_unserialized_changes(&self) -> bool {
        !self.added.is_empty() || !self.unlinked.is_empty() || self.security_changed
    }

    /// `false` for a dentry unlinked (directly or with an ancestor) since parsing.
    pub fn is_linked(&self, index: usize) -> bool {
        !self.unlinked.contains(&index)
    }

    /// Every dentry in the tree that is a link to the same file as `index` (itself included).
    pub fn hard_links(&self, index: usize) -> Vec<usize> {
        let group = self.dentries[index].hard_link_group_id;
        if group == 0 {
            return vec![index];
        }
        (0..self.dentries.len())
            .filter(|&i| self.dentries[i].hard_link_group_id == group && self.is_linked(i))
            .collect()
    }

    /// Points the unnamed data stream of `index` and its hard links at `hash` and sets their
    /// last write time, in the serialized bytes and in the parsed tree. Returns `false` when
    /// the file has no slot for an unnamed data stream (a reparse point whose only slot holds
    /// its reparse data), which needs a new stream entry and so a re-serialized tree.
    pub fn patch_data(&mut self, index: usize, hash: Sha1, last_write_time: u64) -> bool {
        if !self.can_patch_data(index) {
            return false;
        }
        let links = self.hard_links(index);
        for i in links {
            let dentry = &mut self.dentries[i];
            let stream = dentry.data.as_mut().expect("checked above");
            stream.hash = hash;
            dentry.last_write_time = last_write_time;
            // An added dentry was parsed on its own: its field offsets count from its start.
            let (bytes, start) = match self.added.get_mut(&i) {
                Some(bytes) => (bytes, 0),
                None => (&mut self.bytes, dentry.offset),
            };
            bytes[stream.hash_field..stream.hash_field + 20].copy_from_slice(&hash);
            let at = start + LAST_WRITE_TIME_FIELD;
            bytes[at..at + 8].copy_from_slice(&last_write_time.to_le_bytes());
        }
        true
    }

    /// `true` when [`ImageMetadata::patch_data`] can point the unnamed data stream of
    /// `index` at a new blob.
    pub fn can_patch_data(&self, index: usize) -> bool {
        self.hard_links(index)
            .iter()
            .all(|&i| self.dentries[i].data.is_some())
    }

    /// The XML counts of the tree (see [`ImageCounts`]), with `blob_size` giving each stream's
    /// size (0 for a blob that is not stored).
    pub fn counts(&self, blob_size: impl Fn(&Sha1) -> u64) -> ImageCounts {
        let mut counts = ImageCounts::default();
        // The size of each hard-link group's inode, taken from its first link. Sizes come from
        // the blob table unchecked, so sums saturate rather than overflow.
        let mut inode_sizes = HashMap::new();
        for i in self.subtree(0) {
            let dentry = &self.dentries[i];
            if dentry::has_child_list(dentry.attributes) {
                counts.dir_count += 1;
            } else {
                counts.file_count += 1;
            }
            let own_size = || {
                let streams = dentry
                    .data
                    .iter()
                    .chain(dentry.reparse_data.iter())
                    .chain(dentry.named_streams.iter());
                streams.fold(0u64, |sum, stream| {
                    sum.saturating_add(blob_size(&stream.hash))
                })
            };
            if dentry.hard_link_group_id == 0 {
                counts.total_bytes = counts.total_bytes.saturating_add(own_size());
                continue;
            }
            match inode_sizes.get(&dentry.hard_link_group_id) {
                Some(&size) => {
                    counts.total_bytes = counts.total_bytes.saturating_add(size);
                    counts.hard_link_bytes = counts.hard_link_bytes.saturating_add(size);
                }
                None => {
                    let size = own_size();
                    inode_sizes.insert(dentry.hard_link_group_id, size);
                    counts.total_bytes = counts.total_bytes.saturating_add(size);
                }
            }
        }
        counts
    }

    /// `index` and everything below it, parents first.
    pub fn subtree(&self, index: usize) -> Vec<usize> {
        let mut out = vec![index];
        let mut next = 0;
        while next < out.len() {
            out.extend(self.dentries[out[next]].children.iter().copied());
            next += 1;
        }
        out
    }

    /// Takes `index` (and its subtree) out of its parent's child list. The root stays.
    pub fn unlink(&mut self, index: usize) {
        let Some(parent) = self.dentries[index].parent else {
            return;
        };
        self.dentries[parent]
            .children
            .retain(|&child| child != index);
        self.unlinked.extend(self.subtree(index));
    }

    /// Adds a child of `parent` from its serialized bytes, keeping the children sorted by
    /// upper-cased name where they already were. `new_descriptor` is the descriptor the
    /// dentry's security id stands for when it is not yet in the security data (its id must
    /// then be the number of descriptors, see [`ImageMetadata::security_id_of`]). Nothing
    /// changes when the bytes are not a valid dentry.
    pub fn add_child(
        &mut self,
        parent: usize,
        bytes: Vec<u8>,
        new_descriptor: Option<Vec<u8>>,
    ) -> Result<usize, Malformed> {
        let mut probe = vec![0u8; bytes.len() + 8];
        probe[..bytes.len()].copy_from_slice(&bytes);
        let mut parsed = dentry::parse_tree(&probe, 0)?.swap_remove(0);
        if let Some(descriptor) = new_descriptor {
            if parsed.security_id as usize != self.security.descriptors.len() {
                return Err(Malformed::new(
                    "dentry",
                    format!(
                        "{:?} has security id {} for a new descriptor, not {}",
                        parsed.name,
                        parsed.security_id,
                        self.security.descriptors.len()
                    ),
                ));
            }
            self.security.descriptors.push(descriptor);
            self.security_changed = true;
        }
        parsed.parent = Some(parent);
        parsed.offset = usize::MAX;
        let index = self.dentries.len();
        let key = reseal_nt::upcase::upcase_str(&parsed.name);
        let position = self.dentries[parent]
            .children
            .iter()
            .position(|&c| reseal_nt::upcase::upcase_str(&self.dentries[c].name) > key)
            .unwrap_or(self.dentries[parent].children.len());
        self.dentries.push(parsed);
        self.dentries[parent].children.insert(position, index);
        self.added.insert(index, bytes);
        Ok(index)
    }

    /// Replaces descriptor `id` of the security data by `descriptor`, which must have the same
    /// length: the block keeps its layout, so its bytes are patched where they stand and the
    /// dentry tree after it does not move.
    pub fn replace_descriptor(&mut self, id: usize, descriptor: Vec<u8>) -> Result<(), Malformed> {
        let Some(old) = self.security.descriptors.get(id) else {
            return Err(Malformed::new(
                "security data",
                format!(
                    "descriptor {id} does not exist ({} descriptors)",
                    self.security.descriptors.len()
                ),
            ));
        };
        if old.len() != descriptor.len() {
            return Err(Malformed::new(
                "security data",
                format!(
                    "descriptor {id} of {} bytes cannot be replaced by one of {} bytes",
                    old.len(),
                    descriptor.len()
                ),
            ));
        }
        if !self.security_changed {
            // The parsed block is the bytes' block: descriptors follow the header and sizes.
            let count = self.security.descriptors.len();
            let start = 8
                + 8 * count
                + self.security.descriptors[..id]
                    .iter()
                    .map(Vec::len)
                    .sum::<usize>();
            self.bytes[start..start + descriptor.len()].copy_from_slice(&descriptor);
        }
        self.security.descriptors[id] = descriptor;
        Ok(())
    }

    /// The index of `descriptor` in the security data, if it is there.
    pub fn security_id_of(&self, descriptor: &[u8]) -> Option<i32> {
        self.security
            .descriptors
            .iter()
            .position(|d| d == descriptor)
            .map(|id| id as i32)
    }

    /// The metadata resource for the current tree, laid out as wimlib lays it out: security
    /// data (kept byte-for-byte unless a descriptor was added), the root and an end marker,
    /// then each directory's children followed by an end marker, directories in depth-first
    /// order. Dentries and their stream entries are copied as they are except the subdir
    /// offset.
    pub fn serialize(&self) -> Result<ImageMetadata, Malformed> {
        ImageMetadata::parse(self.serialized_bytes())
    }

    /// The bytes [`ImageMetadata::serialize`] parses: the resource for the current tree.
    pub fn serialized_bytes(&self) -> Vec<u8> {
        let mut out = if self.security_changed {
            self.security.to_bytes()
        } else {
            self.bytes[..self.security.total_length].to_vec()
        };
        let raw = |i: usize| -> &[u8] {
            match self.added.get(&i) {
                Some(bytes) => bytes,
                None => {
                    &self.bytes
                        [self.dentries[i].offset..self.dentries[i].offset + self.dentries[i].extent]
                }
            }
        };
        // Subdir offsets, assigned depth-first as wimlib's calculate_subdir_offsets().
        let mut subdir = HashMap::new();
        let mut next = (out.len() + raw(0).len() + 8) as u64;
        let mut order = Vec::new();
        let mut stack = vec![0usize];
        while let Some(dir) = stack.pop() {
            subdir.insert(dir, next);
            order.push(dir);
            next += self.dentries[dir]
                .children
                .iter()
                .map(|&c| raw(c).len() as u64)
                .sum::<u64>()
                + 8;
            for &child in self.dentries[dir].children.iter().rev() {
                if dentry::has_child_list(self.dentries[child].attributes) {
                    stack.push(child);
                }
            }
        }
        let emit = |out: &mut Vec<u8>, i: usize| {
            let start = out.len();
            out.extend_from_slice(raw(i));
            let offset = subdir.get(&i).copied().unwrap_or(0);
            out[start + 16..start + 24].copy_from_slice(&offset.to_le_bytes());
        };
        emit(&mut out, 0);
        out.extend_from_slice(&[0; 8]);
        for dir in order {
            debug_assert_eq!(out.len() as u64, subdir[&dir]);
            for &child in &self.dentries[dir].children {
                emit(&mut out, child);
            }
            out.extend_from_slice(&[0; 8]);
        }
        out
    }
}
