//! Directory entries ("dentries"): the file tree of an image, after the security data in the
//! metadata resource.
//!
//! Each dentry (all little-endian, 8-byte aligned):
//!
//! | offset | size | field                                                            |
//! |-------:|-----:|------------------------------------------------------------------|
//! |      0 |    8 | length, excluding extra stream entries (≤ 8 ends a directory)    |
//! |      8 |    4 | attributes (`FILE_ATTRIBUTE_*`)                                  |
//! |     12 |    4 | security id (index into the security data, -1 = none)            |
//! |     16 |    8 | offset of the first child in the metadata resource (0 = none)    |
//! |     24 |   16 | unused                                                           |
//! |     40 |    8 | creation time (FILETIME)                                         |
//! |     48 |    8 | last access time                                                 |
//! |     56 |    8 | last write time                                                  |
//! |     64 |   20 | main hash: unnamed data (or reparse data for reparse points)     |
//! |     84 |    4 | unknown                                                          |
//! |     88 |    8 | hard link group id, or reparse tag (4) + reserved (2) + flags (2)|
//! |     96 |    2 | number of extra stream entries                                   |
//! |     98 |    2 | short name length in bytes                                       |
//! |    100 |    2 | name length in bytes                                             |
//! |    102 |    … | name (UTF-16LE + NUL if any), short name (+ NUL if any), tagged  |
//! |        |      | items (object id…), padding to `length`                          |
//!
//! Then `num_extra_streams` stream entries, each: length (8), reserved (8), hash (20), name
//! length (2), UTF-16LE name + NUL, padded to 8. A directory's children are consecutive
//! dentries at its subdir offset, ended by an 8-byte zero length. Stream types follow wimlib's
//! rules: named entries are alternate data streams; the first unnamed one (or a non-zero main
//! hash) is the reparse data of a reparse point, the next the unnamed data stream.

use std::collections::{BTreeMap, HashSet};

use crate::blob_table::{Sha1, ZERO_HASH};
use crate::error::Malformed;

use reseal_nt::{le, utf16};

pub const DENTRY_FIXED_SIZE: usize = 102;
pub const STREAM_ENTRY_FIXED_SIZE: usize = 38;

pub const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
pub const FILE_ATTRIBUTE_ENCRYPTED: u32 = 0x4000;
pub const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;

/// Field offsets inside a dentry, for in-place patches.
pub const LAST_WRITE_TIME_FIELD: usize = 56;
pub const MAIN_HASH_FIELD: usize = 64;

/// A stream of a dentry: where its hash is stored in the metadata resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRef {
    /// Empty for the unnamed stream.
    pub name: String,
    pub hash: Sha1,
    /// Absolute offset of the 20-byte hash in the uncompressed metadata resource.
    pub hash_field: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dentry {
    /// Absolute offset of the dentry in the uncompressed metadata resource.
    pub offset: usize,
    /// Bytes of the dentry with its extra stream entries (copied as is when the tree is
    /// re-serialized).
    pub extent: usize,
    pub name: String,
    pub short_name: String,
    pub attributes: u32,
    pub security_id: i32,
    pub creation_time: u64,
    pub last_access_time: u64,
    pub last_write_time: u64,
    /// 0 for a file with a single link (and always for reparse points).
    pub hard_link_group_id: u64,
    pub reparse_tag: u32,
    /// The unnamed data stream, if the file has one slot for it (a zero hash = empty).
    pub data: Option<StreamRef>,
    /// The reparse data of a reparse point.
    pub reparse_data: Option<StreamRef>,
    /// Named (alternate) data streams.
    pub named_streams: Vec<StreamRef>,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
}

impl Dentry {
    pub fn is_dir(&self) -> bool {
        self.attributes & FILE_ATTRIBUTE_DIRECTORY != 0
    }

    pub fn data_hash(&self) -> Sha1 {
        self.data.as_ref().map_or(ZERO_HASH, |stream| stream.hash)
    }
}

/// Parses the tree whose root dentry starts at `root_offset`. Dentries come back in
/// depth-first order with the root at index 0.
pub fn parse_tree(metadata: &[u8], root_offset: usize) -> Result<Vec<Dentry>, Malformed> {
    let (root, root_end) = parse_dentry(metadata, root_offset)?
        .ok_or_else(|| Malformed::new("dentry tree", "the image has no root directory"))?;
    let mut tree = vec![root];
    // Each dentry's bytes belong to it alone: lists that overlap would make one file two, and
    // a crafted resource could have its bytes parsed again and again (each directory's list a
    // suffix of the last's). Refusing overlaps bounds the tree by the resource's size.
    let mut claimed = BTreeMap::from([(root_offset, root_end)]);
    let mut visited_dirs = HashSet::new();
    let mut pending = vec![0usize];
    while let Some(parent) = pending.pop() {
        let subdir_offset = le::u64_at(metadata, tree[parent].offset + 16).unwrap_or_default();
        if subdir_offset == 0 {
            continue;
        }
        // A directory list reached twice would make the tree a graph (or loop forever).
        if !visited_dirs.insert(subdir_offset) {
            return Err(Malformed::new(
                "dentry tree",
                format!("subdirectory offset {subdir_offset} is shared by two directories"),
            ));
        }
        let mut offset = usize::try_from(subdir_offset).unwrap_or(usize::MAX);
        while let Some((mut child, next)) = parse_dentry(metadata, offset)? {
            claim(&mut claimed, offset, next)?;
            if let Some(reason) = unusable_name(&child.name) {
                return Err(Malformed::new(
                    "dentry",
                    format!("at offset {}: {reason}", child.offset),
                ));
            }
            child.parent = Some(parent);
            let index = tree.len();
            tree[parent].children.push(index);
            if le::u64_at(metadata, child.offset + 16).unwrap_or_default() != 0 {
                pending.push(index);
            }
            tree.push(child);
            offset = next;
        }
    }
    Ok(tree)
}

/// Records that the bytes `start..end` are a dentry's, refusing bytes already another's.
fn claim(claimed: &mut BTreeMap<usize, usize>, start: usize, end: usize) -> Result<(), Malformed> {
    let before = claimed.range(..=start).next_back();
    let after = claimed.range(start..).next();
    let overlapping = before
        .filter(|(_, &before_end)| before_end > start)
        .or(after.filter(|(&after_start, _)| after_start < end));
    if let Some((&other, &other_end)) = overlapping {
        return Err(Malformed::new(
            "dentry tree",
            format!(
                "the dentry at offset {start} (to {end}) overlaps the one at {other} (to \
                 {other_end}): two directories list the same bytes"
            ),
        ));
    }
    claimed.insert(start, end);
    Ok(())
}

/// Why `name` cannot name a file below the root (which alone has no name), if it cannot: a
/// Windows file name is never empty, `.` or `..`, and holds no `/`, `\` or NUL. Such a name
/// would make a path mean another file, or leave the directory, when the image is applied.
fn unusable_name(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("the name is empty".into())
    } else if name == "." || name == ".." {
        Some(format!("the name is {name:?}"))
    } else {
        name.chars()
            .find(|c| matches!(c, '/' | '\\' | '\0'))
            .map(|bad| format!("the name {name:?} contains {bad:?}"))
    }
}

/// One dentry at `offset`: `None` at an end-of-directory marker, else the dentry and the
/// offset of its next sibling.
fn parse_dentry(metadata: &[u8], offset: usize) -> Result<Option<(Dentry, usize)>, Malformed> {
    let bad = |reason: String| Malformed::new("dentry", format!("at offset {offset}: {reason}"));
    if offset.checked_add(8).is_none_or(|end| end > metadata.len()) {
        return Err(bad(format!(
            "beyond the {}-byte metadata resource",
            metadata.len()
        )));
    }
    let raw_length = le::u64_at(metadata, offset).unwrap_or_default();
    if raw_length <= 8 {
        return Ok(None);
    }
    // Saturating: a length near 2^64 rounded up to 8 bytes would overflow; it is refused below.
    let length = usize::try_from(raw_length.div_ceil(8).saturating_mul(8)).unwrap_or(usize::MAX);
    if length < DENTRY_FIXED_SIZE
        || offset
            .checked_add(length)
            .is_none_or(|end| end > metadata.len())
    {
        return Err(bad(format!(
            "length {raw_length} is too small or runs past the metadata resource"
        )));
    }
    let raw = &metadata[offset..offset + length];
    let attributes = le::u32_at(raw, 8).unwrap_or_default();
    let name_bytes = le::u16_at(raw, 100).unwrap_or_default() as usize;
    let short_name_bytes = le::u16_at(raw, 98).unwrap_or_default() as usize;
    if name_bytes % 2 != 0 || short_name_bytes % 2 != 0 {
        return Err(bad("odd name length".into()));
    }
    let with_nul = |n: usize| if n == 0 { 0 } else { n + 2 };
    let names_end = DENTRY_FIXED_SIZE + with_nul(name_bytes) + with_nul(short_name_bytes);
    if names_end > length {
        return Err(bad(format!(
            "names of {name_bytes} + {short_name_bytes} bytes do not fit in {length}"
        )));
    }
    let name = utf16::decode_le_lossy(&raw[DENTRY_FIXED_SIZE..DENTRY_FIXED_SIZE + name_bytes]);
    let short_start = DENTRY_FIXED_SIZE + with_nul(name_bytes);
    let short_name = utf16::decode_le_lossy(&raw[short_start..short_start + short_name_bytes]);
    let is_reparse = attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0;

    let mut main_hash = ZERO_HASH;
    main_hash.copy_from_slice(&raw[MAIN_HASH_FIELD..MAIN_HASH_FIELD + 20]);
    let mut streams = vec![StreamRef {
        name: String::new(),
        hash: main_hash,
        hash_field: offset + MAIN_HASH_FIELD,
    }];
    let mut position = offset + length;
    for index in 0..le::u16_at(raw, 96).unwrap_or_default() {
        let bad_stream = |reason: String| {
            Malformed::new(
                "extra stream entry",
                format!("{index} of the dentry at offset {offset}: {reason}"),
            )
        };
        if position
            .checked_add(STREAM_ENTRY_FIXED_SIZE)
            .is_none_or(|end| end > metadata.len())
        {
            return Err(bad_stream("runs past the metadata resource".into()));
        }
        let entry_length = usize::try_from(
            le::u64_at(metadata, position)
                .unwrap_or_default()
                .div_ceil(8)
                .saturating_mul(8),
        )
        .unwrap_or(usize::MAX);
        if entry_length < STREAM_ENTRY_FIXED_SIZE
            || position
                .checked_add(entry_length)
                .is_none_or(|end| end > metadata.len())
        {
            return Err(bad_stream(format!("length {entry_length} is invalid")));
        }
        let stream_name_bytes = le::u16_at(metadata, position + 36).unwrap_or_default() as usize;
        if stream_name_bytes % 2 != 0 || STREAM_ENTRY_FIXED_SIZE + stream_name_bytes > entry_length
        {
            return Err(bad_stream(format!(
                "name of {stream_name_bytes} bytes does not fit"
            )));
        }
        let mut hash = ZERO_HASH;
        hash.copy_from_slice(&metadata[position + 16..position + 36]);
        let name_start = position + STREAM_ENTRY_FIXED_SIZE;
        streams.push(StreamRef {
            name: utf16::decode_le_lossy(&metadata[name_start..name_start + stream_name_bytes]),
            hash,
            hash_field: position + 16,
        });
        position += entry_length;
    }

    // wimlib's assign_stream_types_unencrypted().
    let mut data = None;
    let mut reparse_data = None;
    let mut named_streams = Vec::new();
    let main_slot = streams[0].clone();
    for (index, stream) in streams.into_iter().enumerate() {
        if !stream.name.is_empty() {
            named_streams.push(stream);
        } else if index != 0 || stream.hash != ZERO_HASH {
            if is_reparse && reparse_data.is_none() {
                reparse_data = Some(stream);
            } else if data.is_none() {
                data = Some(stream);
            }
        }
    }
    if data.is_none() && reparse_data.is_none() {
        if is_reparse {
            reparse_data = Some(main_slot);
        } else {
            data = Some(main_slot);
        }
    }

    let dentry = Dentry {
        offset,
        extent: position - offset,
        name,
        short_name,
        attributes,
        security_id: le::u32_at(raw, 12).unwrap_or_default() as i32,
        creation_time: le::u64_at(raw, 40).unwrap_or_default(),
        last_access_time: le::u64_at(raw, 48).unwrap_or_default(),
        last_write_time: le::u64_at(raw, LAST_WRITE_TIME_FIELD).unwrap_or_default(),
        hard_link_group_id: if is_reparse {
            0
        } else {
            le::u64_at(raw, 88).unwrap_or_default()
        },
        reparse_tag: if is_reparse {
            le::u32_at(raw, 88).unwrap_or_default()
        } else {
            0
        },
        data,
        reparse_data,
        named_streams,
        parent: None,
        children: Vec::new(),
    };
    Ok(Some((dentry, position)))
}

/// A new dentry (no short name, no extra streams, no hard links, all times `time`), its
/// subdir offset left 0 for the serializer to set.
pub fn new_dentry_bytes(
    name: &str,
    attributes: u32,
    security_id: i32,
    time: u64,
    hash: &Sha1,
) -> Vec<u8> {
    let name = utf16::encode_le(name);
    let length = (DENTRY_FIXED_SIZE + name.len() + 2).div_ceil(8) * 8;
    let mut out = vec![0u8; length];
    out[..8].copy_from_slice(&(length as u64).to_le_bytes());
    out[8..12].copy_from_slice(&attributes.to_le_bytes());
    out[12..16].copy_from_slice(&security_id.to_le_bytes());
    for field in [40, 48, LAST_WRITE_TIME_FIELD] {
        out[field..field + 8].copy_from_slice(&time.to_le_bytes());
    }
    out[MAIN_HASH_FIELD..MAIN_HASH_FIELD + 20].copy_from_slice(hash);
    out[100..102].copy_from_slice(&(name.len() as u16).to_le_bytes());
    out[DENTRY_FIXED_SIZE..DENTRY_FIXED_SIZE + name.len()].copy_from_slice(&name);
    out
}

/// A directory in wimlib's sense: it has a child list (reparse points never do).
pub fn has_child_list(attributes: u32) -> bool {
    attributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT)
        == FILE_ATTRIBUTE_DIRECTORY
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dentry with `name`, laid out as the module documentation says.
    pub(crate) fn dentry_bytes(name: &str, attributes: u32, subdir: u64, hash: u8) -> Vec<u8> {
        let name = utf16::encode_le(name);
        let name_bytes = name.len();
        let length =
            (DENTRY_FIXED_SIZE + if name_bytes > 0 { name_bytes + 2 } else { 0 }).div_ceil(8) * 8;
        let mut out = vec![0u8; length];
        out[..8].copy_from_slice(&(length as u64).to_le_bytes());
        out[8..12].copy_from_slice(&attributes.to_le_bytes());
        out[12..16].copy_from_slice(&(-1i32).to_le_bytes());
        out[16..24].copy_from_slice(&subdir.to_le_bytes());
        out[64..84].fill(hash);
        out[100..102].copy_from_slice(&(name_bytes as u16).to_le_bytes());
        out[102..102 + name_bytes].copy_from_slice(&name);
        out
    }

    #[test]
    fn a_small_tree_parses_and_loops_are_refused() {
        // root (104 bytes) at 0, its children at 104: "a" (children at 336), "f", end marker.
        let mut meta = dentry_bytes("", FILE_ATTRIBUTE_DIRECTORY, 104, 0);
        meta.extend(dentry_bytes("a", FILE_ATTRIBUTE_DIRECTORY, 336, 0));
        meta.extend(dentry_bytes("f", 0x20, 0, 7));
        meta.extend([0u8; 8]);
        assert_eq!(meta.len(), 336);
        meta.extend([0u8; 8]);
        let tree = parse_tree(&meta, 0).unwrap();
        assert_eq!(tree.len(), 3);
        assert_eq!(tree[0].children.len(), 2);
        assert_eq!(tree[2].name, "f");
        assert_eq!(tree[2].data_hash(), [7; 20]);
        assert!(tree[1].is_dir());

        let mut looping = meta.clone();
        looping[104 + 16..104 + 24].copy_from_slice(&104u64.to_le_bytes());
        assert!(parse_tree(&looping, 0).is_err());
        assert!(parse_tree(&meta[..150], 0).is_err());
    }

    /// Directories whose lists are suffixes of one shared list (directory j's list starting at
    /// the list's j-th entry) would make its entries many files each, and parsing quadratic:
    /// the second directory to claim an entry's bytes is refused.
    #[test]
    fn directories_sharing_a_list_are_refused() {
        const DIRS: usize = 3;
        let root_len = dentry_bytes("", FILE_ATTRIBUTE_DIRECTORY, 0, 0).len();
        let dir_len = dentry_bytes("d0", FILE_ATTRIBUTE_DIRECTORY, 0, 0).len();
        let leaf_len = dentry_bytes("l0", 0x20, 0, 1).len();
        let shared = (root_len + DIRS * dir_len + 8) as u64;
        let mut meta = dentry_bytes("", FILE_ATTRIBUTE_DIRECTORY, root_len as u64, 0);
        for j in 0..DIRS {
            let list = shared + (j * leaf_len) as u64;
            meta.extend(dentry_bytes(
                &format!("d{j}"),
                FILE_ATTRIBUTE_DIRECTORY,
                list,
                0,
            ));
        }
        meta.extend([0u8; 8]);
        assert_eq!(meta.len() as u64, shared);
        for j in 0..DIRS {
            meta.extend(dentry_bytes(&format!("l{j}"), 0x20, 0, 1));
        }
        meta.extend([0u8; 8]);
        let error = parse_tree(&meta, 0).unwrap_err().to_string();
        assert!(
            error.contains("two directories list the same bytes"),
            "{error}"
        );

        // The same layout with one list per directory parses.
        let mut separate = meta[..shared as usize].to_vec();
        for j in 0..DIRS {
            let list = meta.len() as u64 + (j * (leaf_len + 8)) as u64;
            separate[root_len + j * dir_len + 16..][..8].copy_from_slice(&list.to_le_bytes());
        }
        separate.extend(&meta[shared as usize..]);
        for j in 0..DIRS {
            separate.extend(dentry_bytes(&format!("own{j}"), 0x20, 0, 1));
            separate.extend([0u8; 8]);
        }
        let tree = parse_tree(&separate, 0).unwrap();
        assert_eq!(tree.len(), 1 + DIRS + DIRS);
    }
}
