//! The only unsafe code of the crate: wimlib's chunk compressor and decompressor.
//!
//! wimlib (built statically by `wimlib-sys`) is used for nothing else; the WIM structures are
//! parsed and written in Rust. The C entry points used and their contracts (wimlib 1.14.4,
//! `src/compress.c`, `src/decompress.c`):
//!
//! - `wimlib_create_compressor(ctype, max_block_size, level, &out)` / `wimlib_create_decompressor`:
//!   return 0 and store a heap object in `out`, or an error code and leave `out` untouched.
//!   Both call `wimlib_global_init(0)` themselves.
//! - `wimlib_compress(in, in_len, out, out_avail, c)`: reads exactly `in_len` bytes, writes at
//!   most `out_avail` bytes and returns how many, or 0 when the result would not be smaller than
//!   `out_avail` or `in_len` is 0 or above `max_block_size`.
//! - `wimlib_decompress(in, in_len, out, out_len, d)`: reads at most `in_len` bytes, writes
//!   exactly `out_len` bytes, returns 0 on success and non-zero on corrupt input or when
//!   `out_len > max_block_size`. Corrupt input is detected, never read or written out of bounds.
//!
//! - `wimlib_get_compressor_needed_memory(ctype, max_block_size, level)`: arithmetic on its
//!   arguments and the default levels (never changed here), 0 when they are invalid.
//! - `wimlib_global_init(flags)`: sets up wimlib's tables once; later calls return at once.
//!
//! Threads: `wimlib.h` ("Thread Safety") names `wimlib_global_init` among the functions to call
//! only while a single thread is in the library, and it tests its "initialized" flag without a
//! lock before taking its mutex. The compression functions are not named; a compressor or
//! decompressor is a heap object reached only through its handle, with no thread-local or
//! global mutable state, and wimlib's own parallel writer (`src/compress_parallel.c`) creates
//! one compressor per worker on the calling thread, then uses each on its worker thread only.
//!
//! Invariants kept here:
//! 1. The pointers passed always come from live slices of the stated lengths.
//! 2. A compressor or decompressor holds private scratch state, so it is used by one caller at
//!    a time: every call takes `&mut self`. Nothing in it refers to thread-local data, so it may
//!    move to and be used on another thread (`Send`), but it is not `Sync`.
//! 3. Each object is freed exactly once, by `Drop`, and the wrapper never hands out the raw pointer.
//! 4. `wimlib_global_init` first runs inside a `std::sync::Once`, before any create call: its
//!    unlocked flag read then always happens after the write, whichever threads create objects.
#![allow(unsafe_code)]

use std::ptr::NonNull;
use std::sync::Once;

use wimlib_sys as sys;

/// The compression formats of WIM resources, numbered as wimlib numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Xpress,
    Lzx,
    Lzms,
}

impl Codec {
    fn wimlib_type(self) -> sys::wimlib_compression_type {
        match self {
            Codec::Xpress => sys::wimlib_compression_type_WIMLIB_COMPRESSION_TYPE_XPRESS,
            Codec::Lzx => sys::wimlib_compression_type_WIMLIB_COMPRESSION_TYPE_LZX,
            Codec::Lzms => sys::wimlib_compression_type_WIMLIB_COMPRESSION_TYPE_LZMS,
        }
    }
}

/// Invariant 4: initializes wimlib once, synchronized by Rust, before any create call.
fn init_wimlib_once() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // SAFETY: no pointers; `Once` keeps any other thread out of this call meanwhile. A
        // failure is left for the create call, which calls it again and reports the code.
        unsafe {
            sys::wimlib_global_init(0);
        }
    });
}

/// A wimlib error code with the call that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WimlibError {
    pub call: &'static str,
    pub code: i32,
}

/// A wimlib compressor for chunks of at most `max_block_size` bytes.
pub struct Compressor {
    raw: NonNull<sys::wimlib_compressor>,
    max_block_size: usize,
}

// SAFETY: invariant 2 above; the object owns only heap memory, no thread-local state, and is
// used through `&mut self`, so moving it to another thread and using it there is sound.
unsafe impl Send for Compressor {}

impl Compressor {
    /// Bytes one compressor for `codec` and chunks of `max_block_size` allocates, or `None` when
    /// wimlib refuses those parameters.
    pub fn needed_memory(codec: Codec, max_block_size: usize) -> Option<u64> {
        // SAFETY: plain values in, a number out; it reads only the default levels, never written.
        let bytes = unsafe {
            sys::wimlib_get_compressor_needed_memory(codec.wimlib_type(), max_block_size, 0)
        };
        (bytes != 0).then_some(bytes)
    }

    /// A compressor at wimlib's default level for `codec`.
    pub fn new(codec: Codec, max_block_size: usize) -> Result<Self, WimlibError> {
        init_wimlib_once();
        let mut raw: *mut sys::wimlib_compressor = std::ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; wimlib writes it only on success.
        let code = unsafe {
            sys::wimlib_create_compressor(codec.wimlib_type(), max_block_size, 0, &mut raw)
        };
        match (code, NonNull::new(raw)) {
            (0, Some(raw)) => Ok(Self {
                raw,
                max_block_size,
            }),
            (code, _) => Err(WimlibError {
                call: "wimlib_create_compressor",
                code,
            }),
        }
    }

    /// `chunk` compressed into `out` (cleared first), or `false` when compression would not make
    /// it smaller (the WIM then stores the chunk uncompressed).
    pub fn compress(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        if chunk.is_empty() || chunk.len() > self.max_block_size {
            return false;
        }
        // Only output strictly smaller than the input is useful.
        out.resize(chunk.len() - 1, 0);
        if out.is_empty() {
            return false;
        }
        // SAFETY: invariant 1 (both slices live for the call, lengths as stated) and 2 (`&mut self`).
        let written = unsafe {
            sys::wimlib_compress(
                chunk.as_ptr().cast(),
                chunk.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                self.raw.as_ptr(),
            )
        };
        if written == 0 || written > out.len() {
            out.clear();
            return false;
        }
        out.truncate(written);
        true
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        // SAFETY: invariant 3, `raw` came from `wimlib_create_compressor` and is freed once.
        unsafe { sys::wimlib_free_compressor(self.raw.as_ptr()) }
    }
}

/// A wimlib decompressor for chunks of at most `max_block_size` bytes.
pub struct Decompressor {
    raw: NonNull<sys::wimlib_decompressor>,
    max_block_size: usize,
}

// SAFETY: invariant 2 above; the object owns only heap memory, no thread-local state, and is
// used through `&mut self`, so moving it to another thread and using it there is sound.
unsafe impl Send for Decompressor {}

impl Decompressor {
    pub fn new(codec: Codec, max_block_size: usize) -> Result<Self, WimlibError> {
        init_wimlib_once();
        let mut raw: *mut sys::wimlib_decompressor = std::ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; wimlib writes it only on success.
        let code = unsafe {
            sys::wimlib_create_decompressor(codec.wimlib_type(), max_block_size, &mut raw)
        };
        match (code, NonNull::new(raw)) {
            (0, Some(raw)) => Ok(Self {
                raw,
                max_block_size,
            }),
            (code, _) => Err(WimlibError {
                call: "wimlib_create_decompressor",
                code,
            }),
        }
    }

    /// Decompresses `compressed` into all of `out`; `false` when the data is corrupt or does not
    /// expand to exactly `out.len()` bytes.
    pub fn decompress(&mut self, compressed: &[u8], out: &mut [u8]) -> bool {
        if out.len() > self.max_block_size {
            return false;
        }
        // SAFETY: invariant 1 (both slices live for the call, lengths as stated) and 2 (`&mut self`).
        let code = unsafe {
            sys::wimlib_decompress(
                compressed.as_ptr().cast(),
                compressed.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                self.raw.as_ptr(),
            )
        };
        code == 0
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: invariant 3, `raw` came from `wimlib_create_decompressor` and is freed once.
        unsafe { sys::wimlib_free_decompressor(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_a_chunk() {
        let data: Vec<u8> = (0..32768u32)
            .map(|i| (i % 251) as u8 ^ (i / 977) as u8)
            .collect();
        for codec in [Codec::Xpress, Codec::Lzx, Codec::Lzms] {
            let mut compressor = Compressor::new(codec, 32768).unwrap();
            let mut packed = Vec::new();
            assert!(compressor.compress(&data, &mut packed), "{codec:?}");
            assert!(packed.len() < data.len());
            let mut decompressor = Decompressor::new(codec, 32768).unwrap();
            let mut out = vec![0; data.len()];
            assert!(decompressor.decompress(&packed, &mut out), "{codec:?}");
            assert_eq!(out, data, "{codec:?}");
            // A damaged stream is reported, not trusted.
            let mut wrong = vec![0; data.len()];
            let truncated = &packed[..packed.len() / 3];
            assert!(!decompressor.decompress(truncated, &mut wrong) || wrong != data);
        }
    }

    #[test]
    fn incompressible_chunks_are_reported() {
        let mut state = 0x1234_5678u32;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect();
        let mut compressor = Compressor::new(Codec::Xpress, 32768).unwrap();
        let mut packed = Vec::new();
        assert!(!compressor.compress(&noise, &mut packed));
        assert!(packed.is_empty());
    }
}
