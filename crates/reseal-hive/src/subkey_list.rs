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

use crate::cell::{read_u16, read_u32, require_len};
use crate::{cell, name, Error, Result};

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
        let count = usize::from(read_u16(data, 2));
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
            offset: read_u32(self.data, at),
            hint: if size == 8 {
                read_u32(self.data, at + 4)
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
