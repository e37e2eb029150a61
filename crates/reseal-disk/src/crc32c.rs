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
    !bytes.iter().fold(!0u32, |crc, &byte| {
        TABLE[((crc ^ byte as u32) & 0xFF) as usize] ^ (crc >> 8)
    })
}

/// CRC-32C of a structure whose checksum field (4 bytes at `field`) counts as zero.
pub(crate) fn crc32c_with_zeroed_field(bytes: &[u8], field: usize) -> u32 {
    let mut copy = bytes.to_vec();
    copy[field..field + 4].fill(0);
    crc32c(&copy)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_check_value() {
        // The standard check value of CRC-32C.
        assert_eq!(super::crc32c(b"123456789"), 0xE306_9283);
    }
}
