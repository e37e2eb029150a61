//! Windows' upper-casing of names, one UTF-16 code unit at a time: the one table reseal uses
//! wherever Windows compares names without regard to case (registry key and value names and the
//! `lh` hash, file names in WIM images, on NTFS volumes and in directories).
//!
//! Windows upper-cases a name unit by unit with one table of 65536 entries (the data behind
//! `RtlUpcaseUnicodeChar`; an NTFS volume carries a copy in `$UpCase`). No unit becomes several
//! (`ß` stays `ß`), none is dropped, and surrogate halves are left alone, so a name keeps its length.
//!
//! # How the table is built
//!
//! From Unicode's case data through Rust's `char` methods, by three rules:
//!
//! 1. **One unit to one.** Mappings that expand (`ß` → `SS`, `ŉ` → `ʼN`) or leave the Basic
//!    Multilingual Plane are not made; surrogate halves map to themselves.
//! 2. **Simple mapping, both ways.** `c` becomes `U` only when `U` lower-cases back to `c` alone.
//!    Letters that merely fold into another letter's capital therefore stay as they are: `µ`,
//!    `ı`, `ſ`, `ς`, `ϐ ϑ ϕ ϖ ϰ ϱ ϵ`, `ẛ`, `ι` (U+1FBE), U+0345, the title-case digraphs
//!    `ǅ ǈ ǋ ǲ` and the Cyrillic variants U+1C80..U+1C88. Where Unicode's full mapping expands
//!    but its simple mapping does not (Greek letters with ypogegrammeni: `ᾳ` → `ᾼ`, `ᾀ` → `ᾈ`),
//!    `U` is the title-case letter that lower-cases to `c` and upper-cases as `c` does.
//! 3. **Unicode 5.1's case pairs.** Windows' table predates later Unicode versions: a pair one of
//!    whose letters is in [`NEWER_THAN_UNICODE_5_1`] is not made (Georgian Mtavruli, Cherokee
//!    small letters, most of Latin Extended-D, ...).
//!
//! # Evidence
//!
//! - The result equals, unit for unit, the `$UpCase` that mkntfs (ntfs-3g 2022.10.3) writes,
//!   whose MD5 `7ff498a44e45e77374cc7c962b1b92f2` is the one ntfs-3g records for the `$UpCase`
//!   of Windows 8 and later (`tests/upcase.rs`, and [`TABLE_CRC32`] pinned below so that a Rust
//!   release with newer case data fails a unit test rather than changing the table silently).
//! - Rule 3 was derived from Unicode's `Age` property (Perl's Unicode::UCD, Unicode 14): of the
//!   1171 units that rules 1 and 2 or mkntfs map, mkntfs maps exactly those whose pair was complete
//!   in Unicode 5.1, and maps them as rules 1 and 2 do. Every unit of the ranges below was
//!   assigned after 5.1 (or is unassigned in Unicode 14).
//! - It reproduces the `lh` hash Windows stored for every key of the real hives reseal-hive's
//!   tests read (`crates/reseal-hive/tests/upcase_real.rs`: 73879 `lh` elements). Their
//!   non-ASCII names (`ß`, `™`, `Ａ`, surrogate pairs, Latin-1 capitals) confirm rule 1; none
//!   holds a unit that rules 2 and 3 decide, for which mkntfs's table is the evidence.

use std::cmp::Ordering;
use std::sync::OnceLock;

/// Characters assigned after Unicode 5.1 that Rust's case data pairs with another letter; a pair
/// involving one of them is not in Windows' table. Each range holds only characters assigned after
/// 5.1 (Unicode version in the comment).
pub const NEWER_THAN_UNICODE_5_1: &[(u16, u16)] = &[
    (0x037F, 0x037F), // 7.0: Greek capital yot
    (0x0524, 0x052F), // 5.2-7.0: Cyrillic Supplement
    (0x10C7, 0x10CD), // 6.1: Georgian capitals
    (0x10FD, 0x10FF), // 6.1: Georgian small letters
    (0x13F5, 0x13FD), // 8.0: Cherokee
    (0x1C80, 0x1CBF), // 9.0 and later: Cyrillic Extended-C, Georgian Mtavruli
    (0x2C2F, 0x2C2F), // 14.0: Glagolitic
    (0x2C5F, 0x2C5F), // 14.0: Glagolitic
    (0x2C70, 0x2C70), // 5.2: Latin capital turned alpha
    (0x2C7E, 0x2C7F), // 5.2: Latin capitals with swash tail
    (0x2CEB, 0x2CF3), // 5.2-6.1: Coptic
    (0x2D27, 0x2D2D), // 6.1: Georgian small letters
    (0xA660, 0xA661), // 6.0: Cyrillic reversed tse
    (0xA698, 0xA69B), // 7.0: Cyrillic
    (0xA78D, 0xA7F7), // 6.0 and later: Latin Extended-D
    (0xAB30, 0xABBF), // 7.0 and later: Latin Extended-E, Cherokee small letters
];

/// CRC-32 of the table as 65536 little-endian units: that of the `$UpCase` mkntfs writes.
pub const TABLE_CRC32: u32 = 0xCEE8_CFFA;

/// The upper case of one UTF-16 code unit, as Windows upper-cases it.
pub fn upcase_unit(unit: u16) -> u16 {
    if unit < 0x80 {
        return u16::from((unit as u8).to_ascii_uppercase());
    }
    table()[usize::from(unit)]
}

/// The whole table: entry `u` is the upper case of unit `u` (the layout of NTFS's `$UpCase`).
pub fn table() -> &'static [u16] {
    static TABLE: OnceLock<Box<[u16]>> = OnceLock::new();
    TABLE.get_or_init(build)
}

/// `name` with every unit upper-cased.
pub fn upcase_units(name: &[u16]) -> Vec<u16> {
    name.iter().map(|&unit| upcase_unit(unit)).collect()
}

/// Compares two names unit by unit after upper-casing (the order of registry subkey lists).
pub fn compare_ignore_case(a: &[u16], b: &[u16]) -> Ordering {
    a.iter()
        .map(|&unit| upcase_unit(unit))
        .cmp(b.iter().map(|&unit| upcase_unit(unit)))
}

/// `true` when two names are equal without regard to case.
pub fn eq_ignore_case(a: &[u16], b: &[u16]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(&x, &y)| x == y || upcase_unit(x) == upcase_unit(y))
}

/// `name` upper-cased as Windows compares names: each character of the Basic Multilingual Plane
/// through the table, characters beyond it (two units, both surrogates) unchanged.
pub fn upcase_str(name: &str) -> String {
    name.chars()
        .map(|c| match u16::try_from(u32::from(c)) {
            // The table maps characters to characters, never to a surrogate half.
            Ok(unit) => char::from_u32(u32::from(upcase_unit(unit))).unwrap_or(c),
            Err(_) => c,
        })
        .collect()
}

fn is_newer_than_unicode_5_1(c: char) -> bool {
    let code = u32::from(c);
    NEWER_THAN_UNICODE_5_1
        .iter()
        .any(|&(first, last)| (u32::from(first)..=u32::from(last)).contains(&code))
}

/// The only character of `chars`, if there is exactly one.
fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
    let first = chars.next()?;
    chars.next().is_none().then_some(first)
}

fn build() -> Box<[u16]> {
    let bmp = || (0..=u16::MAX).filter_map(|unit| char::from_u32(u32::from(unit)));
    let mut upper: Vec<Option<char>> = vec![None; 1 << 16];
    for c in bmp() {
        upper[c as usize] = single(c.to_uppercase());
    }
    // Rust gives the full mapping; where it expands, Unicode's simple mapping is the title-case
    // letter with the same full upper case (ᾳ → ᾼ).
    for title in bmp() {
        let Some(lower) = single(title.to_lowercase()) else {
            continue;
        };
        if lower != title
            && lower.to_uppercase().nth(1).is_some()
            && lower.to_uppercase().eq(title.to_uppercase())
        {
            upper[lower as usize] = Some(title);
        }
    }
    (0..=u16::MAX)
        .map(|unit| {
            let Some(c) = char::from_u32(u32::from(unit)) else {
                return unit; // a surrogate half
            };
            match upper[usize::from(unit)] {
                Some(u)
                    if u != c
                        && single(u.to_lowercase()) == Some(c)
                        && !is_newer_than_unicode_5_1(c)
                        && !is_newer_than_unicode_5_1(u) =>
                {
                    u16::try_from(u32::from(u)).unwrap_or(unit)
                }
                _ => unit,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn table_is_the_one_mkntfs_writes() {
        let bytes: Vec<u8> = table().iter().flat_map(|unit| unit.to_le_bytes()).collect();
        assert_eq!(bytes.len(), 1 << 17);
        assert_eq!(
            crc32fast::hash(&bytes),
            TABLE_CRC32,
            "the table changed (newer Unicode case data in this Rust?): compare it with mkntfs's \
             $UpCase (tests/upcase.rs) and extend NEWER_THAN_UNICODE_5_1"
        );
    }

    #[test]
    fn ascii_and_latin1() {
        assert_eq!(upcase_str("System32"), "SYSTEM32");
        assert_eq!(upcase_str("été àÿ"), "ÉTÉ ÀŸ");
        for unit in 0..0x80u16 {
            let expected = u16::from((unit as u8).to_ascii_uppercase());
            assert_eq!(upcase_unit(unit), expected);
            assert_eq!(table()[usize::from(unit)], expected);
        }
    }

    #[test]
    fn one_unit_maps_to_one() {
        // ß, ŉ, ǰ and the ligatures expand under full upper-casing: they stay as they are.
        assert_eq!(upcase_str("straße"), "STRAßE");
        assert_eq!(upcase_str("ŉǰﬀﬁ"), "ŉǰﬀﬁ");
        assert!(!eq_ignore_case(&u("straße"), &u("STRASSE")));
        assert!(eq_ignore_case(&u("grüße"), &u("GRÜßE")));
        // Every entry is a unit of the same kind: a character stays a character.
        for (unit, &upper) in table().iter().enumerate() {
            let is_surrogate = |u: u16| (0xD800..0xE000).contains(&u);
            assert_eq!(
                is_surrogate(unit as u16),
                is_surrogate(upper),
                "{unit:#06x}"
            );
        }
    }

    #[test]
    fn surrogates_and_supplementary_characters_are_untouched() {
        for unit in 0xD800..0xE000u16 {
            assert_eq!(upcase_unit(unit), unit);
        }
        // U+10428 DESERET SMALL LETTER LONG I has a capital, but beyond one unit.
        assert_eq!(upcase_str("𐐨x"), "𐐨X");
        assert!(!eq_ignore_case(&u("𐐨"), &u("𐐀")));
        assert_eq!(upcase_units(&u("𐐨")), u("𐐨"));
    }

    #[test]
    fn letters_that_only_fold_stay() {
        for c in "µıſςϐϑϕϖϰϱϵẛǅǈǋǲᲀ\u{1FBE}\u{345}".chars() {
            assert_eq!(upcase_str(&c.to_string()), c.to_string(), "{c}");
        }
        assert_eq!(upcase_str("ǆǉǌǳσ"), "ǄǇǊǱΣ");
        assert!(!eq_ignore_case(&u("σίσυφος"), &u("ΣΊΣΥΦΟΣ")));
        assert!(eq_ignore_case(&u("σίσυφοσ"), &u("ΣΊΣΥΦΟΣ")));
        // The Kelvin sign is a capital of its own: k upper-cases to K, not to it.
        assert!(!eq_ignore_case(&u("\u{212A}"), &u("k")));
    }

    #[test]
    fn simple_mapping_where_the_full_one_expands() {
        assert_eq!(upcase_str("ᾳᾀῃῳ"), "ᾼᾈῌῼ");
        // The title-case letters themselves have no simple upper case.
        assert_eq!(upcase_str("ᾼᾈ"), "ᾼᾈ");
    }

    #[test]
    fn pairs_newer_than_unicode_5_1_are_left_out() {
        // Georgian Mkhedruli (capitals in 11.0), Cherokee small letters (8.0), ɡ (Ɡ in 7.0).
        assert_eq!(upcase_str("ა ꭰ ɡ ꞔ"), "ა ꭰ ɡ ꞔ");
        // Pairs of Unicode 5.1 and earlier are made: ⱥ → Ⱥ, ɐ → Ɐ, ꙁ → Ꙁ.
        assert_eq!(upcase_str("ⱥɐꙁꜣ"), "ȺⱯꙀꜢ");
        for &(first, last) in NEWER_THAN_UNICODE_5_1 {
            assert!(first <= last);
            for unit in first..=last {
                assert_eq!(upcase_unit(unit), unit, "{unit:#06x}");
            }
        }
    }

    #[test]
    fn comparison_orders_by_upper_case_units() {
        assert_eq!(compare_ignore_case(&u("abc"), &u("ABD")), Ordering::Less);
        assert_eq!(compare_ignore_case(&u("ab"), &u("AB_")), Ordering::Less);
        assert_eq!(compare_ignore_case(&u("Key"), &u("kEY")), Ordering::Equal);
        // '_' (0x5F) sorts after the capitals but before the small letters it is compared with.
        assert_eq!(compare_ignore_case(&u("a"), &u("_")), Ordering::Less);
        assert!(!eq_ignore_case(&u("config"), &u("configs")));
        assert!(!eq_ignore_case(&u("a"), &u("b")));
        assert_eq!(upcase_units(&u("Grüße")), u("GRÜßE"));
    }
}
