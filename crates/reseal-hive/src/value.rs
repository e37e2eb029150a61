//! [`Value`]: a read view of one value (vk cell) of an open [`Hive`].

use std::borrow::Cow;

use crate::cell::file_offset;
use crate::data::ValueType;
use crate::{Error, Hive, Result};

/// A value (vk cell) of an open hive.
#[derive(Clone, Copy)]
pub struct Value<'h> {
    pub(crate) hive: &'h Hive,
    pub(crate) offset: u32,
}

impl<'h> Value<'h> {
    /// The value's name ("" for the default value).
    pub fn name(&self) -> Result<String> {
        Ok(self.hive.vk(self.offset)?.name())
    }
    pub fn value_type(&self) -> Result<ValueType> {
        Ok(ValueType(self.hive.vk(self.offset)?.data_type()))
    }
    /// The raw data, whatever the type (inline data, a data cell, or a big-data record joined).
    pub fn data(&self) -> Result<Cow<'h, [u8]>> {
        self.hive.value_data(self.offset)
    }
    /// The data as a string (REG_SZ, REG_EXPAND_SZ, REG_LINK; UTF-16LE up to the first NUL).
    pub fn string(&self) -> Result<String> {
        Ok(crate::data::decode_sz(&self.data()?))
    }
    /// The data as REG_MULTI_SZ strings.
    pub fn multi_string(&self) -> Result<Vec<String>> {
        Ok(crate::data::decode_multi_sz(&self.data()?))
    }
    fn fixed<const N: usize>(&self) -> Result<[u8; N]> {
        let data = self.data()?;
        data.get(..N)
            .and_then(|d| <[u8; N]>::try_from(d).ok())
            .ok_or_else(|| {
                Error::corrupt(
                    file_offset(self.offset),
                    format!("value data is {} bytes, {N} needed", data.len()),
                )
            })
    }
    /// The data as a REG_DWORD (little-endian; REG_DWORD_BIG_ENDIAN is converted).
    pub fn dword(&self) -> Result<u32> {
        let bytes = self.fixed::<4>()?;
        Ok(if self.value_type()? == ValueType::DWORD_BIG_ENDIAN {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }
    /// The data as a REG_QWORD.
    pub fn qword(&self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.fixed::<8>()?))
    }
}
