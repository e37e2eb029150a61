//! Little-endian integers read from byte buffers, with bounds checks: `None` where the field
//! does not lie wholly inside the buffer, never a panic.
//!
//! Parsers that check a structure's size when they open it read its fixed fields with
//! `.unwrap_or_default()`: the check guarantees the field is there, and a mistake in it gives
//! a zero rather than a panic.

/// The `N` bytes at `offset`, if they are all there.
pub fn array_at<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    bytes.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

/// The little-endian `u16` at `offset`.
pub fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    array_at(bytes, offset).map(u16::from_le_bytes)
}

/// The little-endian `u32` at `offset`.
pub fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    array_at(bytes, offset).map(u32::from_le_bytes)
}

/// The little-endian `u64` at `offset`.
pub fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    array_at(bytes, offset).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_little_endian() {
        let bytes = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];
        assert_eq!(u16_at(&bytes, 0), Some(0x0201));
        assert_eq!(u32_at(&bytes, 1), Some(0x0504_0302));
        assert_eq!(u64_at(&bytes, 1), Some(0x0908_0706_0504_0302));
        assert_eq!(array_at::<3>(&bytes, 6), Some([0x07, 0x08, 0x09]));
    }

    #[test]
    fn fields_past_the_end_are_none() {
        let bytes = [0u8; 8];
        assert_eq!(u16_at(&bytes, 7), None);
        assert_eq!(u32_at(&bytes, 5), None);
        assert_eq!(u64_at(&bytes, 1), None);
        assert_eq!(u64_at(&bytes, usize::MAX), None);
        assert_eq!(u16_at(&[], 0), None);
    }
}
