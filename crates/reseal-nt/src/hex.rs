//! Hexadecimal text of bytes: lower-case digits two per byte, and back.

use std::fmt::Write;

/// Why text is not hexadecimal bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("an odd number of hex digits")]
    OddLength,
    #[error("not a hex digit at position {position}")]
    InvalidDigit { position: usize },
}

/// Lower-case hex, two digits a byte, nothing between them.
pub fn encode(bytes: &[u8]) -> String {
    encode_separated(bytes, "")
}

/// Lower-case hex, two digits a byte, `separator` between bytes.
pub fn encode_separated(bytes: &[u8], separator: &str) -> String {
    let mut text = String::with_capacity(bytes.len() * (2 + separator.len()));
    for (index, byte) in bytes.iter().enumerate() {
        if index > 0 {
            text.push_str(separator);
        }
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The bytes of hex text (digits of either case, nothing else).
pub fn decode(text: &str) -> Result<Vec<u8>, HexError> {
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return Err(HexError::OddLength);
    }
    let value = |position: usize| {
        char::from(digits[position])
            .to_digit(16)
            .map(|digit| digit as u8)
            .ok_or(HexError::InvalidDigit { position })
    };
    (0..digits.len())
        .step_by(2)
        .map(|at| Ok(value(at)? << 4 | value(at + 1)?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_through_text() {
        let bytes = [0x00, 0x0f, 0xa5, 0xff];
        assert_eq!(encode(&bytes), "000fa5ff");
        assert_eq!(encode_separated(&bytes, " "), "00 0f a5 ff");
        assert_eq!(encode(&[]), "");
        assert_eq!(decode("000fa5ff"), Ok(bytes.to_vec()));
        assert_eq!(decode("000FA5FF"), Ok(bytes.to_vec()));
        assert_eq!(decode(""), Ok(Vec::new()));
    }

    #[test]
    fn bad_text_is_an_error_not_a_panic() {
        assert_eq!(decode("abc"), Err(HexError::OddLength));
        assert_eq!(decode("0g"), Err(HexError::InvalidDigit { position: 1 }));
        assert_eq!(decode("+f"), Err(HexError::InvalidDigit { position: 0 }));
        // "é" is two bytes of UTF-8, neither of them a digit.
        assert_eq!(decode("é"), Err(HexError::InvalidDigit { position: 0 }));
        assert_eq!(decode("é0"), Err(HexError::OddLength));
    }
}
