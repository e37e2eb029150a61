//! Fixed-width integer access inside structure buffers whose size the caller has checked.

pub(crate) fn be_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(array(buf, at))
}

pub(crate) fn be_u64(buf: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(array(buf, at))
}

pub(crate) fn le_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(array(buf, at))
}

pub(crate) fn le_u64(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(array(buf, at))
}

pub(crate) fn array<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[at..at + N]);
    out
}

pub(crate) fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// UTF-16 big-endian text up to the first NUL (the VHD dynamic header's parent name, the only
/// big-endian text; UTF-16LE is `reseal_nt::utf16`).
pub(crate) fn utf16be_string(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
        .take_while(|&unit| unit != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

pub(crate) fn utf16be_bytes(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}
