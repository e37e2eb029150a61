//! Key and value names: decoding, encoding, comparison with a stored name and the `lh` name hash.
//!
//! Names are stored either "compressed" (one byte per character, Latin-1: flag `KEY_COMP_NAME` on
//! a key node, `VALUE_COMP_NAME` on a key value) or as UTF-16LE. Windows compares names by
//! upper-casing each UTF-16 code unit on its own (`RtlUpcaseUnicodeChar`), with the table in
//! [`reseal_nt::upcase`].

use std::cmp::Ordering;

use reseal_nt::upcase::upcase_unit;
use reseal_nt::utf16;

/// Longest key name Windows accepts, in UTF-16 code units.
pub(crate) const MAX_KEY_NAME_LEN: usize = 255;
/// Longest value name Windows accepts, in UTF-16 code units.
pub(crate) const MAX_VALUE_NAME_LEN: usize = 16383;

/// The UTF-16 code units of a stored name, one by one (a unit is one Latin-1 byte when
/// compressed, two little-endian bytes otherwise).
pub(crate) fn units_iter(raw: &[u8], compressed: bool) -> impl Iterator<Item = u16> + '_ {
    let width = if compressed { 1 } else { 2 };
    raw.chunks_exact(width).map(|unit| {
        unit.iter()
            .rev()
            .fold(0u16, |acc, &b| acc << 8 | u16::from(b))
    })
}

/// The UTF-16 code units of a stored name.
pub(crate) fn units(raw: &[u8], compressed: bool) -> Vec<u16> {
    units_iter(raw, compressed).collect()
}

/// A stored name as a `String` (unpaired surrogates become U+FFFD).
pub(crate) fn decode(raw: &[u8], compressed: bool) -> String {
    if compressed {
        raw.iter().map(|&b| char::from(b)).collect()
    } else {
        utf16::decode_le_lossy(raw)
    }
}

/// The on-disk form of `name`: Latin-1 bytes (compressed) when every character fits in one byte,
/// as Windows does, UTF-16LE otherwise. Returns the bytes and whether they are compressed.
pub(crate) fn encode(name: &str) -> (Vec<u8>, bool) {
    let latin1: Option<Vec<u8>> = name.chars().map(|c| u8::try_from(c).ok()).collect();
    match latin1 {
        Some(bytes) => (bytes, true),
        None => (utf16::encode_le(name), false),
    }
}

/// Compares a stored name with a name already upper-cased by [`reseal_nt::upcase::upcase_units`],
/// as [`reseal_nt::upcase::compare_ignore_case`] would, without decoding the stored name into a
/// buffer (subkey lookups compare many stored names).
pub(crate) fn compare_upcased(raw: &[u8], compressed: bool, upcased: &[u16]) -> Ordering {
    units_iter(raw, compressed)
        .map(upcase_unit)
        .cmp(upcased.iter().copied())
}

/// The `lh` hash: `H = 37 * H + upcase(unit)` over the name's UTF-16 code units, wrapping.
pub(crate) fn lh_hash(name: &[u16]) -> u32 {
    name.iter().fold(0u32, |h, &u| {
        h.wrapping_mul(37).wrapping_add(u32::from(upcase_unit(u)))
    })
}

/// The `lf` hint: the first four characters of the name as stored (not upper-cased), one byte
/// each, zero-padded; all zero when one of them does not fit in a byte (as Windows writes it: seen
/// in real hives for names such as "Привет" and "txt\u{f00d}").
pub(crate) fn lf_hint(name: &[u16]) -> u32 {
    let mut hint = [0u8; 4];
    for (slot, &unit) in hint.iter_mut().zip(name) {
        match u8::try_from(unit) {
            Ok(byte) => *slot = byte,
            Err(_) => return 0,
        }
    }
    u32::from_le_bytes(hint)
}

pub(crate) fn units_of(text: &str) -> Vec<u16> {
    text.encode_utf16().collect()
}

/// "Largest name length" fields count bytes of the UTF-16LE form.
pub(crate) fn name_bytes_len(units: &[u16]) -> u32 {
    units.len() as u32 * 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use reseal_nt::upcase::{compare_ignore_case, upcase_units};

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn stored_names_compare_like_decoded_ones() {
        let names = [
            "Grüße",
            "grüsse",
            "ab",
            "AB_",
            "日本",
            "ΣΊΣΥΦΟΣ",
            "σίσυφος",
            "σίσυφοσ",
            "",
        ];
        for a in names {
            for b in names {
                let (raw, compressed) = encode(a);
                assert_eq!(
                    compare_upcased(&raw, compressed, &upcase_units(&u(b))),
                    compare_ignore_case(&u(a), &u(b)),
                    "{a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn lh_hash_of_known_names() {
        // H("A") = 'A'; H("ab") = 37*'A' + 'B'
        assert_eq!(lh_hash(&u("a")), 0x41);
        assert_eq!(lh_hash(&u("ab")), 37 * 0x41 + 0x42);
        assert_eq!(lh_hash(&u("Ab")), lh_hash(&u("aB")));
    }

    #[test]
    fn lf_hints() {
        assert_eq!(lf_hint(&u("Software")), u32::from_le_bytes(*b"Soft"));
        assert_eq!(lf_hint(&u("ab")), u32::from_le_bytes([b'a', b'b', 0, 0]));
        assert_eq!(
            lf_hint(&u("Grüße")),
            u32::from_le_bytes([b'G', b'r', 0xFC, 0xDF])
        );
        assert_eq!(lf_hint(&u("Привет")), 0);
        assert_eq!(lf_hint(&u("txt\u{f00d}")), 0);
    }

    #[test]
    fn encoding_prefers_latin1() {
        assert_eq!(encode("Grüße"), (vec![b'G', b'r', 0xFC, 0xDF, b'e'], true));
        let (bytes, compressed) = encode("日本");
        assert!(!compressed);
        assert_eq!(decode(&bytes, false), "日本");
        assert_eq!(decode(&[b'a', 0xE4], true), "aä");
    }
}
