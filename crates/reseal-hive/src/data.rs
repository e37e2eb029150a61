//! Registry value types and the encodings of their data (UTF-16LE strings, little-endian numbers).

use std::fmt;

use reseal_nt::utf16;

/// A registry value type (`REG_*`). Any `u32` is possible on disk; the constants name the known ones.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueType(pub u32);

impl ValueType {
    pub const NONE: ValueType = ValueType(0);
    pub const SZ: ValueType = ValueType(1);
    pub const EXPAND_SZ: ValueType = ValueType(2);
    pub const BINARY: ValueType = ValueType(3);
    pub const DWORD: ValueType = ValueType(4);
    pub const DWORD_BIG_ENDIAN: ValueType = ValueType(5);
    pub const LINK: ValueType = ValueType(6);
    pub const MULTI_SZ: ValueType = ValueType(7);
    pub const RESOURCE_LIST: ValueType = ValueType(8);
    pub const FULL_RESOURCE_DESCRIPTOR: ValueType = ValueType(9);
    pub const RESOURCE_REQUIREMENTS_LIST: ValueType = ValueType(10);
    pub const QWORD: ValueType = ValueType(11);

    /// The `REG_*` name, or `None` for a type number Windows does not define.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "REG_NONE",
            1 => "REG_SZ",
            2 => "REG_EXPAND_SZ",
            3 => "REG_BINARY",
            4 => "REG_DWORD",
            5 => "REG_DWORD_BIG_ENDIAN",
            6 => "REG_LINK",
            7 => "REG_MULTI_SZ",
            8 => "REG_RESOURCE_LIST",
            9 => "REG_FULL_RESOURCE_DESCRIPTOR",
            10 => "REG_RESOURCE_REQUIREMENTS_LIST",
            11 => "REG_QWORD",
            _ => return None,
        })
    }

    /// Parses `REG_SZ`, `sz`, `dword`, ... (case-insensitive, `REG_` optional) or a decimal/`0x` number.
    pub fn parse(text: &str) -> Option<ValueType> {
        let upper = text.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("REG_").unwrap_or(&upper);
        (0..=11)
            .map(ValueType)
            .find(|t| t.name().map(|n| &n[4..]) == Some(bare))
            .or_else(|| match bare.strip_prefix("0X") {
                Some(hex) => u32::from_str_radix(hex, 16).ok().map(ValueType),
                None => bare.parse().ok().map(ValueType),
            })
    }
}

impl fmt::Debug for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "ValueType({:#x})", self.0),
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Encodes a `REG_SZ`/`REG_EXPAND_SZ` string: UTF-16LE with a terminating NUL, as Windows stores it.
pub fn encode_sz(s: &str) -> Vec<u8> {
    let mut out = utf16::encode_le(s);
    out.extend([0, 0]);
    out
}

/// Encodes a `REG_MULTI_SZ`: each string NUL-terminated, then one more NUL.
pub fn encode_multi_sz<S: AsRef<str>>(strings: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in strings {
        out.extend(encode_sz(s.as_ref()));
    }
    out.extend([0, 0]);
    out
}

/// Encodes a `REG_DWORD` (little-endian).
pub fn encode_dword(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// Encodes a `REG_QWORD` (little-endian).
pub fn encode_qword(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// Decodes UTF-16LE string data, stopping at the first NUL; an odd trailing byte is ignored and
/// unpaired surrogates become U+FFFD (Windows does not validate what programs store).
pub fn decode_sz(data: &[u8]) -> String {
    utf16::decode_le_lossy_until_nul(data)
}

/// Decodes `REG_MULTI_SZ` data into its strings (the empty string that ends the list is not returned).
pub fn decode_multi_sz(data: &[u8]) -> Vec<String> {
    let units: Vec<u16> = utf16::units_le(data).collect();
    let mut strings: Vec<String> = units
        .split(|&u| u == 0)
        .map(String::from_utf16_lossy)
        .collect();
    // Everything from the first empty string on is the terminator (and any padding after it).
    if let Some(end) = strings.iter().position(String::is_empty) {
        strings.truncate(end);
    }
    strings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip() {
        for t in 0..=11 {
            let vt = ValueType(t);
            assert_eq!(ValueType::parse(vt.name().unwrap()), Some(vt));
        }
        assert_eq!(ValueType::parse("dword"), Some(ValueType::DWORD));
        assert_eq!(ValueType::parse("0x20"), Some(ValueType(0x20)));
        assert_eq!(ValueType::parse("nonsense"), None);
    }

    #[test]
    fn strings_round_trip() {
        assert_eq!(decode_sz(&encode_sz("Grüße")), "Grüße");
        let multi = encode_multi_sz(&["autocheck autochk *", "setupcl.exe"]);
        assert_eq!(
            decode_multi_sz(&multi),
            vec!["autocheck autochk *", "setupcl.exe"]
        );
        assert!(decode_multi_sz(&encode_multi_sz::<&str>(&[])).is_empty());
    }
}
