//! Inputs the `wim` and `wim_parts` fuzz targets (`fuzz/` at the repository root) found, rebuilt
//! here as bytes: each must stay a typed error.

use reseal_wim::ImageMetadata;

/// An empty security data block (8 bytes), then a root directory dentry of `DENTRY_FIXED_SIZE`
/// bytes with no name, followed by `tail`.
fn metadata_with_root(root_length: u64, extra_streams: u16, tail: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; 8];
    bytes[0] = 8;
    let mut root = vec![0u8; 104];
    root[0..8].copy_from_slice(&root_length.to_le_bytes());
    root[8..12].copy_from_slice(&0x10u32.to_le_bytes());
    root[12..16].copy_from_slice(&(-1i32).to_le_bytes());
    root[96..98].copy_from_slice(&extra_streams.to_le_bytes());
    bytes.extend_from_slice(&root);
    bytes.extend_from_slice(tail);
    bytes
}

/// wim_parts: a dentry length near 2^64 overflowed when rounded up to 8 bytes.
#[test]
fn a_dentry_length_near_2_pow_64_is_malformed() {
    let error = ImageMetadata::parse(metadata_with_root(u64::MAX - 6, 0, &[]))
        .expect_err("the length runs past the resource");
    assert!(
        error.to_string().contains("too small or runs past"),
        "{error}"
    );
}

/// The same rounding of an extra stream entry's length.
#[test]
fn a_stream_entry_length_near_2_pow_64_is_malformed() {
    let mut stream = vec![0u8; 40];
    stream[0..8].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    let error = ImageMetadata::parse(metadata_with_root(104, 1, &stream))
        .expect_err("the stream entry runs past the resource");
    assert!(error.to_string().contains("extra stream entry"), "{error}");
}
