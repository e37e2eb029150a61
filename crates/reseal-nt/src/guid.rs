//! GUIDs in Windows' byte layout: the first three fields little-endian, the last eight bytes
//! as they are (the layout of `GUID` in memory, of VHD, VHDX and GPT structures, and of event
//! log templates), parsed from and written as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.

use std::fmt;
use std::str::FromStr;

/// A GUID, its 16 bytes in Windows' layout.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Guid(pub [u8; 16]);

/// Why a GUID could not be read or made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuidError {
    #[error("{0:?} is not a GUID")]
    Malformed(String),
    #[error("no random numbers for a GUID: {0}")]
    NoRandom(String),
}

impl Guid {
    pub const ZERO: Guid = Guid([0; 16]);

    /// The GUID whose text is `first-second-third-rest[0..2]-rest[2..8]`.
    pub const fn from_fields(first: u32, second: u16, third: u16, rest: [u8; 8]) -> Self {
        let a = first.to_le_bytes();
        let b = second.to_le_bytes();
        let c = third.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], rest[0], rest[1], rest[2], rest[3],
            rest[4], rest[5], rest[6], rest[7],
        ])
    }

    /// A random (version 4) GUID from the operating system's random source.
    pub fn random() -> Result<Self, GuidError> {
        Guid::random_from(&crate::Entropy::default())
    }

    /// A random (version 4) GUID drawn from `entropy` (the same for the same seed).
    pub fn random_from(entropy: &crate::Entropy) -> Result<Self, GuidError> {
        let mut bytes = [0u8; 16];
        entropy.fill(&mut bytes).map_err(GuidError::NoRandom)?;
        // The version is the high nibble of the third field, stored little-endian.
        bytes[7] = (bytes[7] & 0x0F) | 0x40;
        bytes[8] = (bytes[8] & 0x3F) | 0x80;
        Ok(Guid(bytes))
    }

    pub fn is_zero(&self) -> bool {
        *self == Guid::ZERO
    }

    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, bare or in braces, digits of either case;
    /// white space around it is ignored.
    pub fn parse(text: &str) -> Result<Self, GuidError> {
        let malformed = || GuidError::Malformed(text.to_string());
        let trimmed = text.trim();
        let bare = match trimmed.strip_prefix('{') {
            Some(inner) => inner.strip_suffix('}').ok_or_else(malformed)?,
            None => trimmed,
        };
        let groups: Vec<&str> = bare.split('-').collect();
        let lengths: Vec<usize> = groups.iter().map(|group| group.len()).collect();
        if lengths != [8, 4, 4, 4, 12] {
            return Err(malformed());
        }
        let digits = crate::hex::decode(&groups.concat()).map_err(|_| malformed())?;
        let text_order: [u8; 16] = digits.try_into().map_err(|_| malformed())?;
        let t = text_order;
        Ok(Guid::from_fields(
            u32::from_be_bytes([t[0], t[1], t[2], t[3]]),
            u16::from_be_bytes([t[4], t[5]]),
            u16::from_be_bytes([t[6], t[7]]),
            [t[8], t[9], t[10], t[11], t[12], t[13], t[14], t[15]],
        ))
    }

    /// `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`, the form of the registry and of event logs.
    pub fn to_braced_upper(&self) -> String {
        format!("{{{}}}", self.to_string().to_ascii_uppercase())
    }
}

/// Formats as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower case, no braces.
impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{}-{}",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            crate::hex::encode(&b[8..10]),
            crate::hex::encode(&b[10..16]),
        )
    }
}

/// `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}`.
impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

impl FromStr for Guid {
    type Err = GuidError;

    fn from_str(text: &str) -> Result<Self, GuidError> {
        Guid::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event provider's GUID, as Windows shows it and as it lies in memory.
    const TEXT: &str = "{A68CA8B7-004F-D7B6-A698-07E2DE0F1F5D}";
    const BYTES: [u8; 16] = [
        0xb7, 0xa8, 0x8c, 0xa6, 0x4f, 0x00, 0xb6, 0xd7, 0xa6, 0x98, 0x07, 0xe2, 0xde, 0x0f, 0x1f,
        0x5d,
    ];

    #[test]
    fn text_and_bytes_follow_windows_layout() {
        let guid = Guid::parse(TEXT).unwrap();
        assert_eq!(guid.0, BYTES);
        assert_eq!(guid.to_string(), "a68ca8b7-004f-d7b6-a698-07e2de0f1f5d");
        assert_eq!(guid.to_braced_upper(), TEXT);
        assert_eq!(
            format!("{guid:?}"),
            "{a68ca8b7-004f-d7b6-a698-07e2de0f1f5d}"
        );
        assert_eq!(
            Guid::from_fields(
                0xa68c_a8b7,
                0x004f,
                0xd7b6,
                [0xa6, 0x98, 0x07, 0xe2, 0xde, 0x0f, 0x1f, 0x5d]
            ),
            guid
        );
    }

    #[test]
    fn bare_and_braced_forms_parse_the_same() {
        let bare = "2dc27766-f623-4200-9d64-115e9bfd4a08";
        let guid: Guid = bare.parse().unwrap();
        assert_eq!(guid.0[0], 0x66);
        assert_eq!(guid.to_string(), bare);
        assert_eq!(Guid::parse(&format!(" {{{bare}}} ")), Ok(guid));
    }

    #[test]
    fn malformed_text_is_an_error() {
        for text in [
            "",
            "{}",
            "{2dc27766-f623-4200-9d64-115e9bfd4a08",
            "2dc27766f62342009d64115e9bfd4a08",
            "2dc27766-f623-4200-9d64-115e9bfd4a0",
            "2dc27766-f623-4200-9d64-115e9bfd4a0g",
            "2dc2776-6f623-4200-9d64-115e9bfd4a08",
            "2dc27766-f623-4200-9d64-115e9bfd4é",
        ] {
            assert_eq!(
                Guid::parse(text),
                Err(GuidError::Malformed(text.to_string())),
                "{text}"
            );
        }
    }

    #[test]
    fn random_guids_are_version_4() {
        let guid = Guid::random().unwrap();
        let text = guid.to_string();
        assert_eq!(&text[14..15], "4", "{text}");
        assert!("89ab".contains(&text[19..20]), "{text}");
        assert_ne!(Guid::random().unwrap(), guid);
    }
}
