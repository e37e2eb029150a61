//! Finding the keys that may hold some bytes by reading the cells in file order.
//!
//! Looking at every key, value name and value of a hive by walking its tree visits the cells
//! in tree order, which in an 80 MiB SOFTWARE hive is all over the file: nearly every step
//! misses the processor's caches. Searching the hive bins for the caller's byte strings
//! instead (say, the forms of a SID's first number), in file order, picks the few cells worth
//! a look, and only the keys they belong to, and the keys above them, are walked to:
//!
//! 1. every allocated cell where a byte string starts counts: key nodes (`nk`, whose name is
//!    in the cell), values (`vk`, name in the cell, data in a cell of its own or inline) and
//!    any other cell (value data, value lists, big data segments; whatever its first bytes,
//!    since value data may begin like a record), and a big data record (`db`) always counts,
//!    since a byte string may cross from one segment into the next;
//! 2. a value counts when its own cell or its data cell does;
//! 3. a key counts when its own cell or one of the values in its value list does, and the keys
//!    above it (by their parent fields) lead to it.
//!
//! A key whose parent fields do not lead to the root, or lead elsewhere than the tree does (a
//! cell left allocated by an earlier writer, or a damaged parent field), is found here but
//! not reached by a walk that follows [`KeyFilter::leads_to`]; the caller compares the count
//! it reached with [`KeyFilter::len`] and walks the whole tree when they differ.

use std::collections::HashSet;

use crate::base_block::BASE_BLOCK_SIZE;
use crate::cell::{CELL_ALIGNMENT, NIL, SIZE_FIELD};
use crate::key::MAX_KEY_DEPTH;
use crate::key_node;
use crate::key_value::{DATA_INLINE, DATA_OFFSET, DATA_SIZE};
use crate::{Hive, Key, Result};
use memchr::memmem;
use reseal_nt::le;

/// One bit per 8-byte cell unit of the hive bins data.
struct CellSet(Vec<u64>);

impl CellSet {
    fn new(bins_size: u32) -> CellSet {
        CellSet(vec![0; (bins_size / CELL_ALIGNMENT) as usize / 64 + 1])
    }
    fn insert(&mut self, offset: u32) {
        let unit = (offset / CELL_ALIGNMENT) as usize;
        if let Some(word) = self.0.get_mut(unit / 64) {
            *word |= 1 << (unit % 64);
        }
    }
    fn contains(&self, offset: u32) -> bool {
        let unit = (offset / CELL_ALIGNMENT) as usize;
        self.0
            .get(unit / 64)
            .is_some_and(|word| word & (1 << (unit % 64)) != 0)
    }
}

/// The keys [`Hive::keys_possibly_holding`] found, and the keys above them.
pub struct KeyFilter {
    candidates: HashSet<u32>,
    on_paths: HashSet<u32>,
}

impl KeyFilter {
    /// Whether `key` may hold what was looked for: in its name, a value's name or a value's data.
    pub fn may_hold(&self, key: &Key<'_>) -> bool {
        self.candidates.contains(&key.offset)
    }

    /// Whether `key` is one of the keys found or lies above one (by the found key's parent
    /// fields): a walk from the root that enters only such keys reaches every key found.
    pub fn leads_to(&self, key: &Key<'_>) -> bool {
        self.on_paths.contains(&key.offset)
    }

    /// How many keys were found.
    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }
}

impl Hive {
    /// The keys whose cell, or one of whose values' cells or data, holds one of `patterns`
    /// (see the module documentation). It may find too much (a string that starts in a cell
    /// and runs past its end counts, and value data that begins like a key node is taken for
    /// one; the caller looks at each key found). Data stored inline in a value (at most 4
    /// bytes) is not looked at: what is looked for must be longer.
    pub fn keys_possibly_holding<P: AsRef<[u8]>>(&self, patterns: &[P]) -> Result<KeyFilter> {
        let store = &self.store;
        let bins_end = BASE_BLOCK_SIZE + store.bins_size as usize;
        let bins = store
            .bytes
            .get(BASE_BLOCK_SIZE..bins_end)
            .unwrap_or_default();
        let mut starts: Vec<usize> = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            if pattern.is_empty() {
                continue;
            }
            // Every start, overlapping ones too: a match that begins outside a cell (in a
            // size field, say) must not hide one that begins inside it.
            let finder = memmem::Finder::new(pattern);
            let mut from = 0;
            while let Some(at) = bins.get(from..).and_then(|rest| finder.find(rest)) {
                starts.push(from + at);
                from += at + 1;
            }
        }
        starts.sort_unstable();
        // Three passes over the cells in file order, each holding no more than a bit per
        // cell: one list of every key and value of an 80 MiB hive took longer to build than
        // the passes take.
        let allocated = |visit: &mut dyn FnMut(u32, &[u8])| {
            store.for_each_cell(|offset, raw| {
                if raw < 0 {
                    let start = (offset + SIZE_FIELD) as usize;
                    let end = offset as usize + raw.unsigned_abs() as usize;
                    visit(offset, bins.get(start..end).unwrap_or_default());
                }
            })
        };
        // 1. The cells holding a string. Value data has no signature and may begin with any
        // two bytes, so every cell counts whatever it looks like.
        let mut next_start = starts.iter().copied().peekable();
        let mut holding = CellSet::new(store.bins_size);
        allocated(&mut |offset, data| {
            let start = (offset + SIZE_FIELD) as usize;
            // Cells come in file order: strings starting before this one are behind us.
            while next_start.next_if(|&at| at < start).is_some() {}
            let holds = next_start.peek().is_some_and(|&at| at < start + data.len());
            if holds || data.get(..2) == Some(b"db") {
                holding.insert(offset);
            }
        })?;
        // 2. The values whose own cell or data cell holds one.
        let mut value_hits = CellSet::new(store.bins_size);
        let mut any_value = false;
        allocated(&mut |offset, data| {
            if data.get(..2) != Some(b"vk") {
                return;
            }
            let size = le::u32_at(data, DATA_SIZE).unwrap_or_default();
            let data_cell = if size & DATA_INLINE != 0 || size == 0 {
                NIL
            } else {
                le::u32_at(data, DATA_OFFSET).unwrap_or(NIL)
            };
            if holding.contains(offset) || (data_cell != NIL && holding.contains(data_cell)) {
                value_hits.insert(offset);
                any_value = true;
            }
        })?;
        // 3. The keys whose own cell holds one, or whose value list names such a value.
        let mut candidates = HashSet::new();
        allocated(&mut |offset, data| {
            if data.get(..2) != Some(b"nk") {
                return;
            }
            let count = le::u32_at(data, key_node::VALUE_COUNT).unwrap_or_default();
            let list = le::u32_at(data, key_node::VALUES_LIST).unwrap_or(NIL);
            let named = any_value && count > 0 && self.lists_any(list, count, &value_hits);
            if holding.contains(offset) || named {
                candidates.insert(offset);
            }
        })?;
        let root = self.base_block().root_cell_offset();
        let mut on_paths = HashSet::new();
        for &candidate in &candidates {
            let mut at = candidate;
            for _ in 0..=MAX_KEY_DEPTH {
                if !on_paths.insert(at) || at == root {
                    break;
                }
                match self.nk(at) {
                    Ok(node) => at = node.parent(),
                    Err(_) => break,
                }
            }
        }
        Ok(KeyFilter {
            candidates,
            on_paths,
        })
    }

    /// Whether the value list at `list`, of `count` values, names one of `values`. A list that
    /// cannot be read counts as naming one, so that the walk that follows reads it and reports
    /// what is wrong with it.
    fn lists_any(&self, list: u32, count: u32, values: &CellSet) -> bool {
        let Ok(data) = self.store.cell(list) else {
            return true;
        };
        let Some(entries) = data.get(..(count as usize).saturating_mul(4)) else {
            return true;
        };
        entries
            .chunks_exact(4)
            .any(|entry| values.contains(le::u32_at(entry, 0).unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ValueType;

    const NEEDLE: &[u8] = b"needle";

    /// Keys holding the needle in a value's data, a value's name and the key's own name, a big
    /// data value without it, and keys without it.
    fn sample() -> Hive {
        let mut hive = Hive::new_empty("ROOT", 6);
        for path in [
            "A\\Data",
            "A\\ValueName",
            "A\\Plain",
            "A\\LikeList",
            "A\\LikeValue",
            "A\\LikeKey",
            "needle-key",
            "Big",
            "Other\\Deep",
        ] {
            hive.create_key(path).unwrap();
        }
        let mut data = vec![7u8; 100];
        data[40..46].copy_from_slice(NEEDLE);
        hive.set_value("A\\Data", "x", ValueType::BINARY, &data)
            .unwrap();
        // Data that begins as a subkey list or a value record would.
        for (path, start) in [
            ("A\\LikeList", b"lf"),
            ("A\\LikeValue", b"vk"),
            ("A\\LikeKey", b"nk"),
        ] {
            let mut data = data.clone();
            data[..2].copy_from_slice(start);
            hive.set_value(path, "x", ValueType::BINARY, &data).unwrap();
        }
        hive.set_value(
            "A\\ValueName",
            "the needle",
            ValueType::DWORD,
            &[1, 2, 3, 4],
        )
        .unwrap();
        hive.set_value("A\\Plain", "y", ValueType::BINARY, &[9u8; 100])
            .unwrap();
        hive.set_value("Big", "z", ValueType::BINARY, &[5u8; 40_000])
            .unwrap();
        hive.set_value("Other\\Deep", "w", ValueType::DWORD, b"need")
            .unwrap();
        Hive::from_bytes(hive.commit()).unwrap()
    }

    fn key<'h>(hive: &'h Hive, path: &str) -> Key<'h> {
        hive.key(path).unwrap().unwrap()
    }

    #[test]
    fn keys_holding_the_bytes_and_the_keys_above_them_are_found() {
        let hive = sample();
        let filter = hive.keys_possibly_holding(&[NEEDLE]).unwrap();
        for (path, holds) in [
            ("A\\Data", true),
            ("A\\ValueName", true),
            ("A\\LikeList", true),
            ("A\\LikeValue", true),
            ("A\\LikeKey", true),
            ("needle-key", true),
            // Big data always counts: a needle may cross from one segment into the next.
            ("Big", true),
            ("A\\Plain", false),
            ("A", false),
            ("Other", false),
            ("Other\\Deep", false),
        ] {
            assert_eq!(filter.may_hold(&key(&hive, path)), holds, "{path}");
        }
        // The seven keys, and LikeKey's data taken for a key node: a walk from the root does
        // not reach it, which tells the caller to walk every key.
        assert_eq!(filter.len(), 8);
        assert!(filter.leads_to(&hive.root().unwrap()));
        assert!(filter.leads_to(&key(&hive, "A")));
        assert!(filter.leads_to(&key(&hive, "A\\Data")));
        assert!(!filter.leads_to(&key(&hive, "A\\Plain")));
        assert!(!filter.leads_to(&key(&hive, "Other")));
    }

    #[test]
    fn without_byte_strings_only_big_data_is_found() {
        let hive = sample();
        let filter = hive.keys_possibly_holding::<&[u8]>(&[]).unwrap();
        // Of the keys, only the one with the big data value, which always counts (LikeKey's
        // data, taken for a key node whose value list cannot be read, counts too).
        assert!(filter.may_hold(&key(&hive, "Big")));
        for path in ["A", "A\\Data", "A\\LikeKey", "needle-key", "Other\\Deep"] {
            assert!(!filter.may_hold(&key(&hive, path)), "{path}");
        }
        assert!(!filter.leads_to(&key(&hive, "A")));
    }
}
