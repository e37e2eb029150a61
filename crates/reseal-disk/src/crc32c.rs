//! CRC-32C (Castagnoli), the checksum of every VHDX structure.

const POLYNOMIAL: u32 = 0x82F6_3B78;

const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut index = 0;
    while index < 256 {
        let mut crc = index as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLYNOMIAL
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[index] = crc;
        index += 1;
    }
    table
};

pub(crate) fn crc32c(bytes: &[u8]) -> u32 {
    !update(!0, bytes)
}

/// Feeds `bytes` to a running CRC-32C register.
fn update(crc: u32, bytes: &[u8]) -> u32 {
    bytes.iter().fold(crc, |crc, &byte| {
        TABLE[((crc ^ byte as u32) & 0xFF) as usize] ^ (crc >> 8)
    })
}

/// CRC-32C of a structure whose checksum field (4 bytes at `field`) counts as zero.
pub(crate) fn crc32c_with_zeroed_field(bytes: &[u8], field: usize) -> u32 {
    crc32c_of_split_with_zeroed_field(bytes, &[], field)
}

/// [`crc32c_with_zeroed_field`] of a structure held in two pieces, `first` then `second`,
/// with the field in `first`: a log entry that wraps around the log is checked in place.
pub(crate) fn crc32c_of_split_with_zeroed_field(first: &[u8], second: &[u8], field: usize) -> u32 {
    let crc = update(!0, &first[..field]);
    let crc = update(crc, &[0; 4]);
    let crc = update(crc, &first[field + 4..]);
    !update(crc, second)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_check_value() {
        // The standard check value of CRC-32C.
        assert_eq!(super::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn a_split_structure_has_the_checksum_of_the_whole() {
        let whole = b"0123CRC!456789abcdef";
        let mut zeroed = whole.to_vec();
        zeroed[4..8].fill(0);
        let expected = super::crc32c(&zeroed);
        assert_eq!(super::crc32c_with_zeroed_field(whole, 4), expected);
        for split in 8..whole.len() {
            let (first, second) = whole.split_at(split);
            assert_eq!(
                super::crc32c_of_split_with_zeroed_field(first, second, 4),
                expected,
                "split at {split}"
            );
        }
    }
}
