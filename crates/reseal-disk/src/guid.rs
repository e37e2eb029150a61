//! GUIDs as stored on disk: the first three fields little-endian, the last eight bytes as is.

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    pub const ZERO: Guid = Guid([0; 16]);

    pub(crate) const fn from_fields(first: u32, second: u16, third: u16, rest: [u8; 8]) -> Self {
        let a = first.to_le_bytes();
        let b = second.to_le_bytes();
        let c = third.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], rest[0], rest[1], rest[2], rest[3],
            rest[4], rest[5], rest[6], rest[7],
        ])
    }

    /// A random (version 4) GUID.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).expect("the operating system provides random bytes");
        bytes[7] = (bytes[7] & 0x0F) | 0x40;
        bytes[8] = (bytes[8] & 0x3F) | 0x80;
        Guid(bytes)
    }

    pub fn is_zero(&self) -> bool {
        *self == Guid::ZERO
    }
}

/// Formats as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, the way Windows writes it in text.
impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

impl std::str::FromStr for Guid {
    type Err = ();

    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, with or without braces.
    fn from_str(text: &str) -> Result<Self, ()> {
        let hex: String = text
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .chars()
            .filter(|&c| c != '-')
            .collect();
        if hex.len() != 32 || !hex.is_ascii() {
            return Err(());
        }
        let mut text_order = [0u8; 16];
        for (index, byte) in text_order.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[index * 2..index * 2 + 2], 16).map_err(|_| ())?;
        }
        let t = text_order;
        Ok(Guid::from_fields(
            u32::from_be_bytes([t[0], t[1], t[2], t[3]]),
            u16::from_be_bytes([t[4], t[5]]),
            u16::from_be_bytes([t[6], t[7]]),
            [t[8], t[9], t[10], t[11], t[12], t[13], t[14], t[15]],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::Guid;

    #[test]
    fn text_round_trip() {
        let text = "2dc27766-f623-4200-9d64-115e9bfd4a08";
        let guid: Guid = text.parse().unwrap();
        assert_eq!(guid.0[0], 0x66);
        assert_eq!(guid.to_string(), text);
    }
}
