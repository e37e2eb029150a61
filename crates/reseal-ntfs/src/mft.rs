//! Master File Table numbering: the record numbers of the system files used here and the record
//! part of an MFT reference.

/// `$Volume`: the volume name, NTFS version and flags (the dirty flag).
pub(crate) const MFT_VOLUME: u64 = 3;
/// The root directory.
pub(crate) const MFT_ROOT: u64 = 5;
/// `$UpCase`: the volume's upper-case table.
pub(crate) const MFT_UPCASE: u64 = 10;
/// Records below this are the volume's own metadata files ($MFT, $Bitmap...).
pub(crate) const FIRST_USER_RECORD: u64 = 16;

/// The record number part of an MFT reference (the top 16 bits are the sequence number).
pub(crate) const MFT_RECORD_MASK: u64 = 0x0000_FFFF_FFFF_FFFF;
