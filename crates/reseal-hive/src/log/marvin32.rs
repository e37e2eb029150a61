//! Marvin32: the 64-bit keyed checksum that protects new-format log entries (`Hash-1`, `Hash-2`).
//!
//! The state is two 32-bit words taken from the seed (low word first). Each little-endian 32-bit
//! word of the data is mixed in; the 0 to 3 trailing bytes are padded with a `0x80` byte into one
//! last word, then a zero word is mixed in. The result is `high word << 32 | low word`.
//!
//! Log entries use the seed [`LOG_ENTRY_SEED`]. The regf specification spells it as the byte string
//! `82 EF 4D 88 7A 4E 55 C5`, which must be read as this big-endian number: the little-endian
//! reading gives hashes that no Windows log verifies against.

/// The seed of `Hash-1` and `Hash-2` in new-format log entries.
pub const LOG_ENTRY_SEED: u64 = 0x82EF_4D88_7A4E_55C5;

/// One mixing round over the state `(lo, hi)`.
fn mix(lo: &mut u32, hi: &mut u32, word: u32) {
    *lo = lo.wrapping_add(word);
    *hi ^= *lo;
    *lo = lo.rotate_left(20).wrapping_add(*hi);
    *hi = hi.rotate_left(9) ^ *lo;
    *lo = lo.rotate_left(27).wrapping_add(*hi);
    *hi = hi.rotate_left(19);
}

/// The Marvin32 hash of `data` with `seed`.
pub fn marvin32(seed: u64, data: &[u8]) -> u64 {
    let mut lo = seed as u32;
    let mut hi = (seed >> 32) as u32;

    let mut words = data.chunks_exact(4);
    for word in &mut words {
        mix(
            &mut lo,
            &mut hi,
            u32::from_le_bytes([word[0], word[1], word[2], word[3]]),
        );
    }
    // The tail bytes fill the low end of the last word, followed by the 0x80 marker.
    let tail = words.remainder();
    let last = tail
        .iter()
        .rev()
        .fold(0x80u32, |acc, &byte| (acc << 8) | u32::from(byte));
    mix(&mut lo, &mut hi, last);
    mix(&mut lo, &mut hi, 0);

    (u64::from(hi) << 32) | u64::from(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published vectors of the .NET runtime's Marvin tests (seeds and expected 64-bit hashes).
    const SEED1: u64 = 0x004F_B61A_001B_DBCC;
    const SEED2: u64 = 0x804F_B61A_001B_DBCC;
    const SEED3: u64 = 0x804F_B61A_801B_DBCC;

    #[test]
    fn published_vectors() {
        let cases: &[(u64, &[u8], u64)] = &[
            (SEED1, &[], 0x30ED_35C1_00CD_3C7D),
            (SEED1, &[0xaf], 0x48E7_3FC7_7D75_DDC1),
            (SEED1, &[0xe7, 0x0f], 0xB5F6_E1FC_485D_BFF8),
            (SEED1, &[0x37, 0xf4, 0x95], 0xF0B0_7C78_9B8C_F7E8),
            (SEED1, &[0x86, 0x42, 0xdc, 0x59], 0x7008_F2E8_7E9C_F556),
            (
                SEED1,
                &[0x15, 0x3f, 0xb7, 0x98, 0x26],
                0xE6C0_8C6D_A2AF_A997,
            ),
            (
                SEED1,
                &[0x09, 0x32, 0xe6, 0x24, 0x6c, 0x47],
                0x6F04_BF1A_5EA2_4060,
            ),
            (
                SEED1,
                &[0xab, 0x42, 0x7e, 0xa8, 0xd1, 0x0f, 0xc7],
                0xE118_47E4_F067_8C41,
            ),
            (SEED2, &[], 0x10A9_D5D3_996F_D65D),
            (SEED2, &[0xaf], 0x6820_1F91_960E_BF91),
            (SEED2, &[0xe7, 0x0f], 0x64B5_8163_1F6A_B378),
            (SEED2, &[0x37, 0xf4, 0x95], 0xE1F2_DFA6_E513_1408),
            (SEED2, &[0x86, 0x42, 0xdc, 0x59], 0x3628_9D96_54FB_49F6),
            (
                SEED2,
                &[0x15, 0x3f, 0xb7, 0x98, 0x26],
                0x0A06_114B_1346_4DBD,
            ),
            (
                SEED2,
                &[0x09, 0x32, 0xe6, 0x24, 0x6c, 0x47],
                0xD6DD_5E40_AD1B_C2ED,
            ),
            (
                SEED2,
                &[0xab, 0x42, 0x7e, 0xa8, 0xd1, 0x0f, 0xc7],
                0xE203_987D_BA25_2FB3,
            ),
            (SEED3, &[0x00], 0xA37F_B0DA_2ECA_E06C),
            (SEED3, &[0xff], 0xFECE_F370_701A_E054),
            (SEED3, &[0x00, 0xff], 0xA638_E757_0004_8880),
            (SEED3, &[0xff, 0x00], 0xBDFB_46D9_6973_0E2A),
            (SEED3, &[0xff, 0x00, 0xff], 0x9D85_77C0_FE0D_30BF),
        ];
        for &(seed, data, expected) in cases {
            assert_eq!(
                marvin32(seed, data),
                expected,
                "seed {seed:#x}, data {data:02x?}"
            );
        }
    }

    #[test]
    fn seed_and_data_both_matter() {
        let data = b"HvLE";
        assert_ne!(marvin32(LOG_ENTRY_SEED, data), marvin32(SEED1, data));
        assert_ne!(
            marvin32(LOG_ENTRY_SEED, data),
            marvin32(LOG_ENTRY_SEED, b"HvLF")
        );
    }
}
