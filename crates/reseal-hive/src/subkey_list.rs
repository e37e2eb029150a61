//! Subkey lists: `li`, `lf`, `lh` (leaves) and `ri` (an index root of leaves).
//!
//! Layout of the cell data (msuhanov's specification, "Subkeys list"): a two-byte signature, a
//! 16-bit element count, then the elements:
//! - `li`: key node offsets (4 bytes each);
//! - `lf`: key node offset + name hint (the first 4 characters, one byte each);
//! - `lh`: key node offset + name hash (`H = 37 * H + upcase(c)`);
//! - `ri`: offsets of leaves (`li`/`lf`/`lh`, never another `ri`).
//!
//! Elements are sorted by upper-cased name, across all leaves of an `ri`.
//!
//! `Hive`'s methods here read a key's whole index, find a name in it by binary search, and insert
//! or remove a key, splitting a full leaf under an `ri` and dropping an empty one.

use std::collections::HashSet;

use crate::cell::{file_offset, require_len, write_u32, write_u64, NIL};
use crate::key_node;
use crate::name::name_bytes_len;
use crate::{cell, name, Error, Hive, Result};
use reseal_nt::le;

/// Leaves written by this engine hold at most this many elements: a larger leaf is split in two
/// under an `ri`. Windows keeps leaves within one 4 KiB page plus a little (about 500 lh elements);
/// 512 keeps our leaf cells the same order of size while keeping an `ri` rarely needed.
pub(crate) const MAX_LEAF_ELEMENTS: usize = 512;
const HEADER: usize = 4;

/// The kind of a subkey list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListKind {
    Li,
    Lf,
    Lh,
    Ri,
}

impl ListKind {
    fn signature(self) -> &'static [u8; 2] {
        match self {
            ListKind::Li => b"li",
            ListKind::Lf => b"lf",
            ListKind::Lh => b"lh",
            ListKind::Ri => b"ri",
        }
    }
    fn element_size(self) -> usize {
        match self {
            ListKind::Li | ListKind::Ri => 4,
            ListKind::Lf | ListKind::Lh => 8,
        }
    }
    /// The hint stored with an element for a key named `key_name` (0 for lists without hints).
    pub(crate) fn hint(self, key_name: &[u16]) -> u32 {
        match self {
            ListKind::Lf => name::lf_hint(key_name),
            ListKind::Lh => name::lh_hash(key_name),
            ListKind::Li | ListKind::Ri => 0,
        }
    }
}

/// One list element: a key node (or, in an `ri`, a leaf) offset and its hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) offset: u32,
    pub(crate) hint: u32,
}

/// A view of a subkey list's cell data.
pub(crate) struct SubkeyList<'a> {
    pub(crate) kind: ListKind,
    data: &'a [u8],
    count: usize,
}

impl<'a> SubkeyList<'a> {
    pub(crate) fn parse(data: &'a [u8], offset: u32) -> Result<Self> {
        require_len(data, HEADER, offset, "subkey list")?;
        let kind = match &data[..2] {
            b"li" => ListKind::Li,
            b"lf" => ListKind::Lf,
            b"lh" => ListKind::Lh,
            b"ri" => ListKind::Ri,
            other => {
                return Err(Error::BadSignature {
                    offset: cell::file_offset(offset) + u64::from(cell::SIZE_FIELD),
                    expected: "li, lf, lh or ri",
                    found: String::from_utf8_lossy(other).into_owned(),
                })
            }
        };
        let count = usize::from(le::u16_at(data, 2).unwrap_or_default());
        require_len(
            data,
            HEADER + count * kind.element_size(),
            offset,
            "subkey list elements",
        )?;
        Ok(SubkeyList { kind, data, count })
    }

    /// The number of elements.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Element `i`, if the list has that many.
    pub(crate) fn get(&self, i: usize) -> Option<Element> {
        if i >= self.count {
            return None;
        }
        let size = self.kind.element_size();
        let at = HEADER + i * size;
        Some(Element {
            offset: le::u32_at(self.data, at).unwrap_or_default(),
            hint: if size == 8 {
                le::u32_at(self.data, at + 4).unwrap_or_default()
            } else {
                0
            },
        })
    }

    pub(crate) fn elements(&self) -> impl Iterator<Item = Element> + '_ {
        (0..self.count).filter_map(|i| self.get(i))
    }
}

/// The cell data of a list of `kind` with `elements`.
pub(crate) fn encode(kind: ListKind, elements: &[Element]) -> Vec<u8> {
    let mut data = Vec::with_capacity(HEADER + elements.len() * kind.element_size());
    data.extend_from_slice(kind.signature());
    data.extend_from_slice(&(elements.len() as u16).to_le_bytes());
    for element in elements {
        data.extend_from_slice(&element.offset.to_le_bytes());
        if kind.element_size() == 8 {
            data.extend_from_slice(&element.hint.to_le_bytes());
        }
    }
    data
}

/// One leaf of a key's subkey index.
pub(crate) struct Leaf {
    pub(crate) offset: u32,
    pub(crate) kind: ListKind,
    pub(crate) elements: Vec<Element>,
}

/// A key's subkey list as stored: one leaf, or an `ri` over several leaves.
pub(crate) struct SubkeyIndex {
    pub(crate) ri: Option<u32>,
    pub(crate) leaves: Vec<Leaf>,
}

impl SubkeyIndex {
    pub(crate) fn elements(&self) -> impl Iterator<Item = &Element> {
        self.leaves.iter().flat_map(|leaf| leaf.elements.iter())
    }
}

/// Where a name is or belongs in a key's subkey list (see [`Hive::locate_subkey`]).
struct Place {
    ri: Option<u32>,
    leaf_offsets: Vec<u32>,
    /// The leaf holding the name or its place.
    leaf_at: usize,
    /// The name's position in that leaf: the first element that does not sort before it.
    position: usize,
    /// The key with that name, if there is one.
    found: Option<u32>,
}

/// [`slice::partition_point`] over `0..len` with a predicate that can fail.
fn try_partition_point(
    len: usize,
    mut is_before: impl FnMut(usize) -> Result<bool>,
) -> Result<usize> {
    let (mut low, mut high) = (0, len);
    while low < high {
        let middle = low + (high - low) / 2;
        if is_before(middle)? {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    Ok(low)
}

impl Hive {
    /// The subkey index of the key at `key`: its leaves (and `ri`), each leaf read once, checked
    /// for leaves or keys listed twice. Readers take the subkeys from the list, as Windows does;
    /// the key's count is held against it by [`Hive::subkey_count_problem`].
    pub(crate) fn subkey_index(&self, key: u32) -> Result<SubkeyIndex> {
        let (ri, leaf_offsets) = self.subkey_leaf_offsets(key)?;
        // The key's list cell: the ri, or its only leaf.
        let list = ri.or(leaf_offsets.first().copied()).unwrap_or(NIL);
        let mut seen = HashSet::new();
        let mut leaves = Vec::with_capacity(leaf_offsets.len());
        for offset in leaf_offsets {
            if !seen.insert(offset) {
                return Err(Error::corrupt(
                    file_offset(list),
                    format!("index root lists leaf {offset:#x} twice"),
                ));
            }
            leaves.push(self.leaf(offset)?);
        }
        let mut keys = HashSet::new();
        if let Some(twice) = leaves
            .iter()
            .flat_map(|l| l.elements.iter())
            .find(|e| !keys.insert(e.offset))
        {
            return Err(Error::corrupt(
                file_offset(list),
                format!("subkey list names key {:#x} twice", twice.offset),
            ));
        }
        Ok(SubkeyIndex { ri, leaves })
    }

    /// Edits update the key's subkey count from its stored value: it must be the number of
    /// subkeys its list holds.
    pub(crate) fn subkey_count_problem(&self, key: u32, index: &SubkeyIndex) -> Option<Error> {
        let stated = self.nk(key).ok()?.subkey_count();
        let held = index.elements().count();
        (held as u64 != u64::from(stated)).then(|| {
            Error::corrupt(
                file_offset(key),
                format!(
                    "key node's subkey count is {stated}, but its subkey list holds {held} keys"
                ),
            )
        })
    }

    /// The `ri` of the key at `key`, if its list has one, and the offsets of its leaves (none when
    /// the key has no subkeys). The leaves themselves are not read.
    fn subkey_leaf_offsets(&self, key: u32) -> Result<(Option<u32>, Vec<u32>)> {
        let node = self.nk(key)?;
        let list = node.subkeys_list();
        if node.subkey_count() == 0 || list == NIL {
            return Ok((None, Vec::new()));
        }
        let top = SubkeyList::parse(self.store.cell(list)?, list)?;
        Ok(match top.kind {
            ListKind::Ri => (Some(list), top.elements().map(|e| e.offset).collect()),
            _ => (None, vec![list]),
        })
    }

    /// The leaf list at `offset`, never an `ri` (an index root only points to leaves).
    fn leaf_list(&self, offset: u32) -> Result<SubkeyList<'_>> {
        let list = SubkeyList::parse(self.store.cell(offset)?, offset)?;
        if list.kind == ListKind::Ri {
            return Err(Error::corrupt(
                file_offset(offset),
                "an index root (ri) points to another index root",
            ));
        }
        Ok(list)
    }

    /// The leaf at `offset` with its elements.
    fn leaf(&self, offset: u32) -> Result<Leaf> {
        let list = self.leaf_list(offset)?;
        Ok(Leaf {
            offset,
            kind: list.kind,
            elements: list.elements().collect(),
        })
    }

    /// Where the name `upcased` (see [`reseal_nt::upcase::upcase_units`]) is or belongs in the
    /// subkey list of the key at `key`, found by binary search as Windows does (lists are sorted by
    /// upper-cased name): `None` when the key has no subkeys.
    fn locate_subkey(&self, key: u32, upcased: &[u16]) -> Result<Option<Place>> {
        let (ri, leaf_offsets) = self.subkey_leaf_offsets(key)?;
        let Some(last_leaf) = leaf_offsets.len().checked_sub(1) else {
            return Ok(None);
        };
        let sorts_before = |element: Element| -> Result<bool> {
            Ok(self.nk(element.offset)?.compare_name(upcased).is_lt())
        };
        // The first leaf whose last name sorts at or after the name, else the last leaf.
        let leaf_at = try_partition_point(leaf_offsets.len(), |i| {
            let leaf = self.leaf_list(leaf_offsets[i])?;
            match leaf.get(leaf.len().wrapping_sub(1)) {
                Some(last) => sorts_before(last),
                None => Ok(true),
            }
        })?
        .min(last_leaf);
        let leaf = self.leaf_list(leaf_offsets[leaf_at])?;
        let position = try_partition_point(leaf.len(), |i| match leaf.get(i) {
            Some(element) => sorts_before(element),
            None => Ok(false),
        })?;
        let found = match leaf.get(position) {
            Some(element) if self.nk(element.offset)?.compare_name(upcased).is_eq() => {
                Some(element.offset)
            }
            _ => None,
        };
        Ok(Some(Place {
            ri,
            leaf_offsets,
            leaf_at,
            position,
            found,
        }))
    }

    pub(crate) fn find_subkey(&self, key: u32, wanted: &[u16]) -> Result<Option<u32>> {
        Ok(self
            .locate_subkey(key, &reseal_nt::upcase::upcase_units(wanted))?
            .and_then(|place| place.found))
    }

    /// Inserts `key` (named `key_name`) into `parent`'s subkey list at its sorted place and updates
    /// the parent's subkey count, largest subkey name length and last-written time.
    pub(crate) fn insert_subkey(&mut self, parent: u32, key: u32, key_name: &[u16]) -> Result<()> {
        let now = self.now().0;
        // A key without subkeys gets its first leaf.
        let place = self
            .locate_subkey(parent, &reseal_nt::upcase::upcase_units(key_name))?
            .unwrap_or(Place {
                ri: None,
                leaf_offsets: vec![NIL],
                leaf_at: 0,
                position: 0,
                found: None,
            });
        let mut leaf = match place.leaf_offsets[place.leaf_at] {
            NIL => Leaf {
                offset: NIL,
                kind: if self.minor_version() >= 5 {
                    ListKind::Lh
                } else {
                    ListKind::Lf
                },
                elements: Vec::new(),
            },
            offset => self.leaf(offset)?,
        };
        let element = Element {
            offset: key,
            hint: leaf.kind.hint(key_name),
        };
        leaf.elements.insert(place.position, element);
        self.write_subkey_leaf(parent, place.ri, place.leaf_offsets, place.leaf_at, leaf)?;

        let node = self.nk(parent)?;
        let (count, max_name) = (node.subkey_count(), node.max_subkey_name());
        let longest = (max_name & key_node::MAX_SUBKEY_NAME_MASK).max(name_bytes_len(key_name));
        let max_name = (max_name & !key_node::MAX_SUBKEY_NAME_MASK)
            | longest.min(key_node::MAX_SUBKEY_NAME_MASK);
        let cell = self.store.cell_mut(parent)?;
        write_u32(cell, key_node::SUBKEY_COUNT, count.saturating_add(1));
        write_u32(cell, key_node::MAX_SUBKEY_NAME, max_name);
        write_u64(cell, key_node::LAST_WRITTEN, now);
        Ok(())
    }

    /// Unlinks `key` from `parent`'s subkey list and updates the parent's count and last-written time.
    pub(crate) fn remove_subkey(&mut self, parent: u32, key: u32) -> Result<()> {
        let now = self.now().0;
        let mut index = self.subkey_index(parent)?;
        let found = index.leaves.iter().enumerate().find_map(|(i, leaf)| {
            leaf.elements
                .iter()
                .position(|e| e.offset == key)
                .map(|at| (i, at))
        });
        let Some((leaf_at, position)) = found else {
            return Err(Error::corrupt(
                file_offset(parent),
                format!("key {key:#x} is missing from its parent's subkey list"),
            ));
        };
        let leaf_offsets = index.leaves.iter().map(|l| l.offset).collect();
        let mut leaf = index.leaves.swap_remove(leaf_at);
        leaf.elements.remove(position);
        self.write_subkey_leaf(parent, index.ri, leaf_offsets, leaf_at, leaf)?;
        let node = self.nk(parent)?;
        let count = node.subkey_count().saturating_sub(1);
        let max_name = node.max_subkey_name();
        let cell = self.store.cell_mut(parent)?;
        write_u32(cell, key_node::SUBKEY_COUNT, count);
        if count == 0 {
            // As Windows does when a key's last subkey goes; the upper bits are flags and stay.
            write_u32(
                cell,
                key_node::MAX_SUBKEY_NAME,
                max_name & !key_node::MAX_SUBKEY_NAME_MASK,
            );
            write_u32(cell, key_node::MAX_SUBKEY_CLASS, 0);
        }
        write_u64(cell, key_node::LAST_WRITTEN, now);
        Ok(())
    }

    /// Writes back `leaf`, leaf `changed` of the list whose `ri` and leaves are `ri` and
    /// `leaf_offsets` (its elements were edited): in place when it fits, split in two under an
    /// `ri` when it grew past [`MAX_LEAF_ELEMENTS`], dropped when empty. The `ri` and the parent's
    /// list offset are rewritten only when the set of leaves changed; other leaves are not touched.
    fn write_subkey_leaf(
        &mut self,
        parent: u32,
        ri: Option<u32>,
        leaf_offsets: Vec<u32>,
        changed: usize,
        mut leaf: Leaf,
    ) -> Result<()> {
        let mut after = leaf_offsets.clone();
        let old_offset = (leaf.offset != NIL).then_some(leaf.offset);
        if leaf.elements.is_empty() {
            if let Some(offset) = old_offset {
                self.store.free(offset)?;
            }
            after.remove(changed);
        } else if leaf.elements.len() > MAX_LEAF_ELEMENTS {
            let upper = leaf.elements.split_off(leaf.elements.len() / 2);
            after[changed] = self
                .store
                .rewrite(old_offset, &encode(leaf.kind, &leaf.elements))?;
            let upper_offset = self.store.alloc_with(&encode(leaf.kind, &upper))?;
            after.insert(changed + 1, upper_offset);
        } else {
            after[changed] = self
                .store
                .rewrite(old_offset, &encode(leaf.kind, &leaf.elements))?;
        }
        if leaf_offsets == after {
            return Ok(());
        }
        let ri_elements: Vec<Element> = after
            .iter()
            .map(|&offset| Element { offset, hint: 0 })
            .collect();
        let list = match (ri, after.len()) {
            (Some(ri), 0) => {
                self.store.free(ri)?;
                NIL
            }
            (None, 0) => NIL,
            (None, 1) => after[0],
            (ri, _) => self
                .store
                .rewrite(ri, &encode(ListKind::Ri, &ri_elements))?,
        };
        write_u32(self.store.cell_mut(parent)?, key_node::SUBKEYS_LIST, list);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let elements = [
            Element {
                offset: 0x20,
                hint: 7,
            },
            Element {
                offset: 0x80,
                hint: 9,
            },
        ];
        let data = encode(ListKind::Lh, &elements);
        let list = SubkeyList::parse(&data, 0).unwrap();
        assert_eq!(list.kind, ListKind::Lh);
        assert_eq!(list.elements().collect::<Vec<_>>(), elements);
        // A count larger than the cell is an error, not a read past the end.
        assert!(SubkeyList::parse(&data[..10], 0).is_err());
        let li = encode(ListKind::Li, &elements);
        assert_eq!(li.len(), 12);
        assert_eq!(
            SubkeyList::parse(&li, 0)
                .unwrap()
                .elements()
                .map(|e| e.hint)
                .sum::<u32>(),
            0
        );
    }
}
