//! UTF-16 little-endian text, the form Windows stores names and strings in: bytes to code units
//! and text, and back.
//!
//! Two rules hold for every function here:
//!
//! - **An odd trailing byte is ignored.** No code unit can be made of it, so decoding stops
//!   before it. A caller for which an odd length makes the data malformed checks
//!   `bytes.len() % 2` first and says so in its own words.
//! - **Unpaired surrogates** (a high surrogate without its low one, or a low one alone) become
//!   U+FFFD in the `_lossy` functions, as Windows does not validate what programs store; the
//!   strict [`decode_le`] refuses them with std's [`FromUtf16Error`].
//!
//! A byte-order mark is neither expected nor removed by the decoders: callers that accept one
//! strip [`BOM`] themselves. [`encode_le_with_bom`] writes one, as regedit and wimlib do.

use std::string::FromUtf16Error;

/// The byte-order mark U+FEFF as UTF-16LE bytes.
pub const BOM: [u8; 2] = [0xFF, 0xFE];

/// The code units of `bytes`, two little-endian bytes each (an odd trailing byte is ignored).
pub fn units_le(bytes: &[u8]) -> impl Iterator<Item = u16> + '_ {
    bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
}

/// The text of `bytes`; unpaired surrogates become U+FFFD.
pub fn decode_le_lossy(bytes: &[u8]) -> String {
    let units: Vec<u16> = units_le(bytes).collect();
    String::from_utf16_lossy(&units)
}

/// The text of `bytes` up to the first NUL unit (all of it when there is none), as fixed-size
/// name fields and `REG_SZ` data hold it; unpaired surrogates become U+FFFD.
pub fn decode_le_lossy_until_nul(bytes: &[u8]) -> String {
    let units: Vec<u16> = units_le(bytes).take_while(|&unit| unit != 0).collect();
    String::from_utf16_lossy(&units)
}

/// The text of `bytes`, or std's error when it holds an unpaired surrogate.
pub fn decode_le(bytes: &[u8]) -> Result<String, FromUtf16Error> {
    let units: Vec<u16> = units_le(bytes).collect();
    String::from_utf16(&units)
}

/// `text` as UTF-16LE bytes, without a byte-order mark or a terminating NUL.
pub fn encode_le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// `text` as UTF-16LE bytes after a byte-order mark ([`BOM`]), as regedit saves `.reg` files
/// and Windows writes a WIM's XML data.
pub fn encode_le_with_bom(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(BOM.len() + 2 * text.len());
    bytes.extend_from_slice(&BOM);
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Aé€😀": one ASCII unit, one Latin-1 unit, one BMP unit, one surrogate pair.
    const TEXT: &str = "A\u{e9}\u{20ac}\u{1f600}";
    const BYTES: [u8; 10] = [0x41, 0x00, 0xE9, 0x00, 0xAC, 0x20, 0x3D, 0xD8, 0x00, 0xDE];

    #[test]
    fn known_text_encodes_and_decodes() {
        assert_eq!(encode_le(TEXT), BYTES);
        assert_eq!(
            units_le(&BYTES).collect::<Vec<_>>(),
            [0x0041, 0x00E9, 0x20AC, 0xD83D, 0xDE00]
        );
        assert_eq!(decode_le(&BYTES).unwrap(), TEXT);
        assert_eq!(decode_le_lossy(&BYTES), TEXT);
        assert_eq!(decode_le_lossy_until_nul(&BYTES), TEXT);
        assert_eq!(encode_le(""), Vec::<u8>::new());
        assert_eq!(decode_le(&[]).unwrap(), "");
    }

    #[test]
    fn the_bom_comes_first_and_is_not_stripped_by_decoding() {
        let bytes = encode_le_with_bom("hi");
        assert_eq!(bytes, [0xFF, 0xFE, b'h', 0, b'i', 0]);
        assert_eq!(decode_le(&bytes).unwrap(), "\u{feff}hi");
        assert_eq!(decode_le(bytes.strip_prefix(&BOM).unwrap()).unwrap(), "hi");
    }

    #[test]
    fn an_odd_trailing_byte_is_ignored() {
        let odd = [b'o', 0, b'k', 0, b'!'];
        assert_eq!(units_le(&odd).collect::<Vec<_>>(), [0x6F, 0x6B]);
        assert_eq!(decode_le(&odd).unwrap(), "ok");
        assert_eq!(decode_le_lossy(&odd), "ok");
        assert_eq!(decode_le_lossy_until_nul(&odd), "ok");
        assert_eq!(decode_le_lossy(&[0x41]), "");
    }

    #[test]
    fn unpaired_surrogates_are_replaced_or_refused() {
        // A high surrogate followed by 'x', and a low surrogate alone at the end.
        let bytes = [0x3D, 0xD8, b'x', 0, 0x00, 0xDE];
        assert_eq!(decode_le_lossy(&bytes), "\u{fffd}x\u{fffd}");
        let error = decode_le(&bytes).unwrap_err();
        assert_eq!(error.to_string(), "invalid utf-16: lone surrogate found");
        assert_eq!(decode_le_lossy_until_nul(&bytes[..2]), "\u{fffd}");
    }

    #[test]
    fn decoding_until_nul_stops_at_the_first_nul_unit() {
        // The NUL unit is a whole aligned pair: 0x00 bytes inside units do not end the text.
        let bytes = [b'a', 0, 0x00, 0x01, 0, 0, b'b', 0];
        assert_eq!(decode_le_lossy_until_nul(&bytes), "a\u{100}");
        assert_eq!(decode_le_lossy(&bytes), "a\u{100}\0b");
        assert_eq!(decode_le_lossy_until_nul(&[0, 0, b'b', 0]), "");
    }
}
