//! Key and value names: decoding, encoding, Windows-style case folding and the `lh` name hash.
//!
//! Names are stored either "compressed" (one byte per character, Latin-1: flag `KEY_COMP_NAME` on
//! a key node, `VALUE_COMP_NAME` on a key value) or as UTF-16LE. Windows compares names by
//! upper-casing each UTF-16 code unit on its own (`RtlUpcaseUnicodeChar`): no case mapping expands
//! one unit into several (so `ß` stays `ß`) and surrogates are left alone. [`upcase_unit`] follows
//! that rule with Unicode's simple upper-case mapping.

use std::cmp::Ordering;

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
        String::from_utf16_lossy(&units(raw, false))
    }
}

/// The on-disk form of `name`: Latin-1 bytes (compressed) when every character fits in one byte,
/// as Windows does, UTF-16LE otherwise. Returns the bytes and whether they are compressed.
pub(crate) fn encode(name: &str) -> (Vec<u8>, bool) {
    let latin1: Option<Vec<u8>> = name.chars().map(|c| u8::try_from(c).ok()).collect();
    match latin1 {
        Some(bytes) => (bytes, true),
        None => (
            name.encode_utf16().flat_map(u16::to_le_bytes).collect(),
            false,
        ),
    }
}

/// Upper-cases one UTF-16 code unit the way Windows does (one unit in, one unit out).
pub(crate) fn upcase_unit(unit: u16) -> u16 {
    if unit < 0x80 {
        return u16::from((unit as u8).to_ascii_uppercase());
    }
    let Some(c) = char::from_u32(u32::from(unit)) else {
        return unit; // a surrogate half
    };
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u16::try_from(u32::from(u)).unwrap_or(unit),
        _ => unit,
    }
}

/// Compares two names as Windows orders subkey lists: unit by unit after upper-casing.
pub(crate) fn compare(a: &[u16], b: &[u16]) -> Ordering {
    a.iter()
        .map(|&u| upcase_unit(u))
        .cmp(b.iter().map(|&u| upcase_unit(u)))
}

/// The upper-cased form of a name, for repeated comparisons with [`compare_upcased`].
pub(crate) fn upcase(name: &[u16]) -> Vec<u16> {
    name.iter().map(|&u| upcase_unit(u)).collect()
}

/// [`compare`] of a stored name with a name already upper-cased by [`upcase`], without
/// decoding the stored name into a buffer (subkey lookups compare many stored names).
pub(crate) fn compare_upcased(raw: &[u8], compressed: bool, upcased: &[u16]) -> Ordering {
    units_iter(raw, compressed)
        .map(upcase_unit)
        .cmp(upcased.iter().copied())
}

/// `true` when two names are equal ignoring case.
pub(crate) fn eq_ignore_case(a: &[u16], b: &[u16]) -> bool {
    a.len() == b.len() && compare(a, b) == Ordering::Equal
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

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn folding_is_unicode_but_one_to_one() {
        assert!(eq_ignore_case(&u("grüße"), &u("GRÜßE")));
        assert!(eq_ignore_case(&u("σίσυφος"), &u("ΣΊΣΥΦΟΣ")));
        assert!(!eq_ignore_case(&u("straße"), &u("STRASSE")));
        assert_eq!(compare(&u("abc"), &u("ABD")), Ordering::Less);
        assert_eq!(compare(&u("ab"), &u("AB_")), Ordering::Less);
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
            "",
        ];
        for a in names {
            for b in names {
                let (raw, compressed) = encode(a);
                assert_eq!(
                    compare_upcased(&raw, compressed, &upcase(&u(b))),
                    compare(&u(a), &u(b)),
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
