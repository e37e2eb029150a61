//! Sector bitmaps: one bit per sector saying whether the sector's data is in this file.
//! VHD numbers bits from the most significant one, VHDX from the least significant one.

#[derive(Clone, Copy, Debug)]
pub(crate) enum BitOrder {
    MostSignificantFirst,
    LeastSignificantFirst,
}

fn mask(index: u64, order: BitOrder) -> u8 {
    match order {
        BitOrder::MostSignificantFirst => 0x80 >> (index % 8),
        BitOrder::LeastSignificantFirst => 1 << (index % 8),
    }
}

pub(crate) fn is_set(bitmap: &[u8], index: u64, order: BitOrder) -> bool {
    bitmap[(index / 8) as usize] & mask(index, order) != 0
}

pub(crate) fn set(bitmap: &mut [u8], index: u64, order: BitOrder) {
    bitmap[(index / 8) as usize] |= mask(index, order);
}
