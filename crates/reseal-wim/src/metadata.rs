//! An image's metadata resource, uncompressed: the security data block followed by the dentry
//! tree (see `security.rs` and `dentry.rs`). Its blob table entry is flagged
//! `RESOURCE_METADATA`; its hash is the SHA-1 of the uncompressed bytes.
//!
//! The bytes are kept so that edits which do not change any dentry's size (a new stream hash,
//! a new last write time) can be patched in place and everything else written back
//! byte-for-byte.

use crate::blob_table::Sha1;
use crate::dentry::{self, Dentry, LAST_WRITE_TIME_FIELD};
use crate::error::Malformed;
use crate::security::SecurityData;

#[derive(Debug, Clone)]
pub struct ImageMetadata {
    pub bytes: Vec<u8>,
    pub security: SecurityData,
    /// Depth-first, the root first.
    pub dentries: Vec<Dentry>,
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
            let wanted = dentry::upper_case_name(component);
            current = *exact.or_else(|| {
                children
                    .iter()
                    .find(|&&c| dentry::upper_case_name(&self.dentries[c].name) == wanted)
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

    /// Every dentry that is a link to the same file as `index` (itself included).
    pub fn hard_links(&self, index: usize) -> Vec<usize> {
        let group = self.dentries[index].hard_link_group_id;
        if group == 0 {
            return vec![index];
        }
        (0..self.dentries.len())
            .filter(|&i| self.dentries[i].hard_link_group_id == group)
            .collect()
    }

    /// Points the unnamed data stream of `index` and its hard links at `hash` and sets their
    /// last write time, in the serialized bytes and in the parsed tree. Returns `false` when
    /// the file has no slot for an unnamed data stream (a reparse point whose only slot holds
    /// its reparse data), which needs a new stream entry and so a re-serialized tree.
    pub fn patch_data(&mut self, index: usize, hash: Sha1, last_write_time: u64) -> bool {
        let links = self.hard_links(index);
        if links.iter().any(|&i| self.dentries[i].data.is_none()) {
            return false;
        }
        for i in links {
            let dentry = &mut self.dentries[i];
            let stream = dentry.data.as_mut().expect("checked above");
            stream.hash = hash;
            self.bytes[stream.hash_field..stream.hash_field + 20].copy_from_slice(&hash);
            dentry.last_write_time = last_write_time;
            let at = dentry.offset + LAST_WRITE_TIME_FIELD;
            self.bytes[at..at + 8].copy_from_slice(&last_write_time.to_le_bytes());
        }
        true
    }
}
