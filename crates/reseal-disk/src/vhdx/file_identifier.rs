//! The VHDX file type identifier: the first 64 KiB of the file, holding the signature
//! "vhdxfile" (0) and the creator as 256 UTF-16 little-endian characters (8).

use std::path::Path;

use crate::bytes::put;
use crate::error::{Error, Result};
use reseal_nt::utf16;

pub const SIGNATURE: &[u8; 8] = b"vhdxfile";
pub const READ_SIZE: usize = 8 + 512;

pub struct FileIdentifier {
    pub creator: String,
}

impl FileIdentifier {
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        if &bytes[..8] != SIGNATURE {
            return Err(Error::corrupt(
                path,
                "VHDX file identifier",
                "the signature \"vhdxfile\" is missing",
            ));
        }
        Ok(FileIdentifier {
            creator: utf16::decode_le_lossy_until_nul(&bytes[8..READ_SIZE]),
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; READ_SIZE];
        put(&mut bytes, 0, SIGNATURE);
        let mut creator = utf16::encode_le(&self.creator);
        creator.truncate(510);
        put(&mut bytes, 8, &creator);
        bytes
    }
}
