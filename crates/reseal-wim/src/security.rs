//! The security data block at the start of a metadata resource.
//!
//! | offset | size      | field                                                   |
//! |-------:|----------:|---------------------------------------------------------|
//! |      0 |         4 | total length, including this header (0 means 8)         |
//! |      4 |         4 | number of descriptors `n`                               |
//! |      8 |     8 × n | size of each descriptor                                 |
//! |  8+8n  | Σ sizes   | self-relative security descriptors, back to back        |
//!
//! The dentry tree starts at the total length rounded up to 8. A dentry's security id is an
//! index into this list; -1 means no descriptor.

use crate::error::Malformed;

use reseal_nt::le;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityData {
    pub descriptors: Vec<Vec<u8>>,
    /// The total length rounded up to 8: where the dentry tree begins.
    pub total_length: usize,
}

impl SecurityData {
    pub fn parse(metadata: &[u8]) -> Result<Self, Malformed> {
        let bad = |reason: String| Malformed::new("security data", reason);
        if metadata.len() < 8 {
            return Err(bad(format!(
                "metadata resource of {} bytes has no room for it",
                metadata.len()
            )));
        }
        let mut total_length =
            (le::u32_at(metadata, 0).unwrap_or_default() as usize).div_ceil(8) * 8;
        if total_length == 0 {
            total_length = 8;
        }
        let count = le::u32_at(metadata, 4).unwrap_or_default() as usize;
        if total_length > metadata.len() {
            return Err(bad(format!(
                "total length {total_length} exceeds the {}-byte metadata resource",
                metadata.len()
            )));
        }
        let sizes_end = count
            .checked_mul(8)
            .and_then(|n| n.checked_add(8))
            .filter(|end| *end <= total_length);
        let Some(mut position) = sizes_end else {
            return Err(bad(format!(
                "{count} descriptor sizes do not fit in {total_length} bytes"
            )));
        };
        let mut descriptors = Vec::with_capacity(count);
        for index in 0..count {
            let size = le::u64_at(metadata, 8 + index * 8).unwrap_or_default();
            let end = usize::try_from(size)
                .ok()
                .and_then(|size| position.checked_add(size))
                .filter(|end| *end <= total_length);
            let Some(end) = end else {
                return Err(bad(format!(
                    "descriptor {index} of {size} bytes runs past the block's {total_length} bytes"
                )));
            };
            descriptors.push(metadata[position..end].to_vec());
            position = end;
        }
        Ok(Self {
            descriptors,
            total_length,
        })
    }

    /// The block as written: sizes, descriptors, padding to 8.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body: usize = self.descriptors.iter().map(Vec::len).sum();
        let length = 8 + 8 * self.descriptors.len() + body;
        let mut out = Vec::with_capacity(length.div_ceil(8) * 8);
        out.extend_from_slice(&(length as u32).to_le_bytes());
        out.extend_from_slice(&(self.descriptors.len() as u32).to_le_bytes());
        for descriptor in &self.descriptors {
            out.extend_from_slice(&(descriptor.len() as u64).to_le_bytes());
        }
        for descriptor in &self.descriptors {
            out.extend_from_slice(descriptor);
        }
        out.resize(length.div_ceil(8) * 8, 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_round_trips_and_lies_are_refused() {
        let data = SecurityData {
            descriptors: vec![vec![1, 0, 4, 0x80, 9], vec![7; 12]],
            total_length: 0,
        };
        let bytes = data.to_bytes();
        assert_eq!(bytes.len() % 8, 0);
        let parsed = SecurityData::parse(&bytes).unwrap();
        assert_eq!(parsed.descriptors, data.descriptors);
        assert_eq!(parsed.total_length, bytes.len());
        let mut lying = bytes.clone();
        lying[8] = 200;
        assert!(SecurityData::parse(&lying).is_err());
        let mut many = bytes;
        many[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(SecurityData::parse(&many).is_err());
        assert_eq!(SecurityData::parse(&[0u8; 8]).unwrap().total_length, 8);
    }
}
