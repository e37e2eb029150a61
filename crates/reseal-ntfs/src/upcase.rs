//! Case-insensitive name comparison with the volume's own `$UpCase` table, as Windows does: a
//! volume's names were ordered with its own table, which can be older than today's.

use std::borrow::Cow;

/// Maps each UTF-16 unit to its upper case.
pub struct Upcase {
    table: Cow<'static, [u16]>,
}

impl Upcase {
    /// The table read from `$UpCase` (65536 little-endian units); `None` if it has another size.
    pub fn from_bytes(bytes: &[u8]) -> Option<Upcase> {
        if bytes.len() != 65536 * 2 {
            return None;
        }
        let table = bytes
            .chunks_exact(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        Some(Upcase {
            table: Cow::Owned(table),
        })
    }

    /// Windows' table (the `$UpCase` of volumes Windows 8 and later format), for a volume whose
    /// `$UpCase` is unreadable.
    pub fn fallback() -> Upcase {
        Upcase {
            table: Cow::Borrowed(reseal_nt::upcase::table()),
        }
    }

    fn upper(&self, unit: u16) -> u16 {
        self.table.get(usize::from(unit)).copied().unwrap_or(unit)
    }

    /// Whether two UTF-16 names are equal without regard to case.
    pub fn eq_ignore_case(&self, a: &[u16], b: &[u16]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x == y || self.upper(*x) == self.upper(*y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn fallback_folds_ascii_and_latin() {
        let upcase = Upcase::fallback();
        assert!(upcase.eq_ignore_case(&utf16("System32"), &utf16("SYSTEM32")));
        assert!(upcase.eq_ignore_case(&utf16("été"), &utf16("ÉTÉ")));
        assert!(!upcase.eq_ignore_case(&utf16("config"), &utf16("configs")));
        assert!(!upcase.eq_ignore_case(&utf16("a"), &utf16("b")));
    }

    #[test]
    fn fallback_is_windows_table() {
        let upcase = Upcase::fallback();
        for unit in 0..=u16::MAX {
            assert_eq!(upcase.upper(unit), reseal_nt::upcase::upcase_unit(unit));
        }
        // Windows leaves the dotless i and the final sigma alone.
        assert!(!upcase.eq_ignore_case(&utf16("ı"), &utf16("I")));
        assert!(!upcase.eq_ignore_case(&utf16("ς"), &utf16("Σ")));
    }

    #[test]
    fn refuses_tables_of_the_wrong_size() {
        assert!(Upcase::from_bytes(&[0; 10]).is_none());
        let identity: Vec<u8> = (0..=u16::MAX).flat_map(|u| u.to_le_bytes()).collect();
        let upcase = Upcase::from_bytes(&identity).unwrap();
        // An identity table folds nothing.
        assert!(!upcase.eq_ignore_case(&utf16("a"), &utf16("A")));
    }
}
