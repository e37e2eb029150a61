//! wimlib's chunk compressors and decompressors (XPRESS, LZX, LZMS): the only unsafe code for
//! wimlib. The WIM structures themselves are parsed and written in Rust by `reseal-wim`.
//!
//! # What is linked, and why this way
//!
//! Only wimlib's codec objects, copied out of Debian's `libwim.a` (libwim-dev) by `build.rs`,
//! and linked statically, so the `reseal` binary runs where wimlib is not installed. The
//! functions are declared by hand below, each with its C prototype quoted from `wimlib.h`; the
//! test `tests/prototypes.rs` checks the quotes against the installed header. No bindgen, so
//! building needs no libclang, and no configure or make.
//!
//! The alternatives: the `wimlib-sys` crate builds wimlib 1.14 from its source tarball with
//! configure and make and generates its bindings with bindgen at build time (libclang). Debian
//! 12's wimlib is 1.13.6; its codecs are the same as 1.14's (1.14 changed the library's XML,
//! FUSE and SHA-1 code, not the compressors).
//!
//! # The C entry points and their contracts (`src/compress.c`, `src/decompress.c`)
//!
//! - `wimlib_create_compressor(ctype, max_block_size, level, &out)` / `wimlib_create_decompressor`:
//!   return 0 and store a heap object in `out`, or an error code and leave `out` untouched.
//!   The top bit of `level` is a flag (`WIMLIB_COMPRESSOR_FLAG_DESTRUCTIVE`) letting the
//!   compressor overwrite its input; the level passed here is 16 bits wide, so never set.
//! - `wimlib_compress(in, in_len, out, out_avail, c)`: reads exactly `in_len` bytes, writes at
//!   most `out_avail` bytes and returns how many, or 0 when the result would not be smaller than
//!   `out_avail` or `in_len` is 0 or above `max_block_size`.
//! - `wimlib_decompress(in, in_len, out, out_len, d)`: reads at most `in_len` bytes, writes
//!   exactly `out_len` bytes, returns 0 on success and non-zero on corrupt input or when
//!   `out_len > max_block_size`. Corrupt input is detected, never read or written out of bounds.
//! - `wimlib_get_compressor_needed_memory(ctype, max_block_size, level)`: arithmetic on its
//!   arguments and the default levels (never changed here; a level of 0 means the default),
//!   0 when they are invalid.
//! - `x86_setup_cpu_features()` (`src/x86_cpu_features.c`, not in the public header): fills a
//!   global bit mask that LZMS's x86 filter otherwise fills lazily, unsynchronized, on first use.
//! - The codecs allocate through `wimlib_malloc`, `wimlib_free_memory`, `wimlib_aligned_malloc`
//!   and `wimlib_aligned_free` (`src/util.c`), which this crate defines over the C library's
//!   allocator instead of linking `util.o`.
//!
//! Threads: `wimlib.h` ("Thread Safety") does not name the compression functions among those
//! to call only while a single thread is in the library. A compressor or decompressor is a heap
//! object reached only through its handle, with no thread-local or global mutable state (the
//! processor-feature mask aside, see invariant 4), and wimlib's own parallel writer
//! (`src/compress_parallel.c`) creates one compressor per worker on the calling thread, then
//! uses each on its worker thread only.
//!
//! # Invariants kept here
//!
//! 1. The pointers passed always come from live slices of the stated lengths.
//! 2. A compressor or decompressor holds private scratch state, so it is used by one caller at
//!    a time: every call takes `&mut self`. Nothing in it refers to thread-local data, so it may
//!    move to and be used on another thread (`Send`), but it is not `Sync`.
//! 3. Each object is freed exactly once, by `Drop`, and the wrapper never hands out the raw pointer.
//! 4. The processor-feature probe first runs inside a `std::sync::Once`, before any create
//!    call, so the codecs only ever read the mask after it was written.
//! 5. Memory from `wimlib_malloc`/`wimlib_aligned_malloc` is given back only through the
//!    matching free function; both pairs sit on `malloc`/`posix_memalign` and `free`.

use std::ffi::{c_int, c_uint, c_void};
use std::ptr::NonNull;
use std::sync::Once;

/// `enum wimlib_compression_type` (wimlib.h).
const WIMLIB_COMPRESSION_TYPE_XPRESS: c_int = 1;
const WIMLIB_COMPRESSION_TYPE_LZX: c_int = 2;
const WIMLIB_COMPRESSION_TYPE_LZMS: c_int = 3;

/// `struct wimlib_compressor`, opaque.
#[repr(C)]
struct WimlibCompressor {
    _opaque: [u8; 0],
}

/// `struct wimlib_decompressor`, opaque.
#[repr(C)]
struct WimlibDecompressor {
    _opaque: [u8; 0],
}

/// The C prototypes of the public functions declared below, as `wimlib.h` writes them
/// (whitespace aside); `tests/prototypes.rs` holds them against the installed header.
pub const PROTOTYPES: &[&str] = &[
    "extern uint64_t wimlib_get_compressor_needed_memory(enum wimlib_compression_type ctype, size_t max_block_size, unsigned int compression_level);",
    "extern int wimlib_create_compressor(enum wimlib_compression_type ctype, size_t max_block_size, unsigned int compression_level, struct wimlib_compressor **compressor_ret);",
    "extern size_t wimlib_compress(const void *uncompressed_data, size_t uncompressed_size, void *compressed_data, size_t compressed_size_avail, struct wimlib_compressor *compressor);",
    "extern void wimlib_free_compressor(struct wimlib_compressor *compressor);",
    "extern int wimlib_create_decompressor(enum wimlib_compression_type ctype, size_t max_block_size, struct wimlib_decompressor **decompressor_ret);",
    "extern int wimlib_decompress(const void *compressed_data, size_t compressed_size, void *uncompressed_data, size_t uncompressed_size, struct wimlib_decompressor *decompressor);",
    "extern void wimlib_free_decompressor(struct wimlib_decompressor *decompressor);",
];

/// The values of `enum wimlib_compression_type` used here, for the same test.
pub const COMPRESSION_TYPES: &[(&str, i32)] = &[
    (
        "WIMLIB_COMPRESSION_TYPE_XPRESS",
        WIMLIB_COMPRESSION_TYPE_XPRESS,
    ),
    ("WIMLIB_COMPRESSION_TYPE_LZX", WIMLIB_COMPRESSION_TYPE_LZX),
    ("WIMLIB_COMPRESSION_TYPE_LZMS", WIMLIB_COMPRESSION_TYPE_LZMS),
];

// The enum parameters are passed as `c_int`: a C enum whose values fit an int has int's ABI.
extern "C" {
    fn wimlib_get_compressor_needed_memory(
        ctype: c_int,
        max_block_size: usize,
        compression_level: c_uint,
    ) -> u64;
    fn wimlib_create_compressor(
        ctype: c_int,
        max_block_size: usize,
        compression_level: c_uint,
        compressor_ret: *mut *mut WimlibCompressor,
    ) -> c_int;
    fn wimlib_compress(
        uncompressed_data: *const c_void,
        uncompressed_size: usize,
        compressed_data: *mut c_void,
        compressed_size_avail: usize,
        compressor: *mut WimlibCompressor,
    ) -> usize;
    fn wimlib_free_compressor(compressor: *mut WimlibCompressor);
    fn wimlib_create_decompressor(
        ctype: c_int,
        max_block_size: usize,
        decompressor_ret: *mut *mut WimlibDecompressor,
    ) -> c_int;
    fn wimlib_decompress(
        compressed_data: *const c_void,
        compressed_size: usize,
        uncompressed_data: *mut c_void,
        uncompressed_size: usize,
        decompressor: *mut WimlibDecompressor,
    ) -> c_int;
    fn wimlib_free_decompressor(decompressor: *mut WimlibDecompressor);
    /// `void x86_setup_cpu_features(void);` (src/x86_cpu_features.h)
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    fn x86_setup_cpu_features();
}

/// `void *wimlib_malloc(size_t size);` (wimlib/util.h), called by the codecs.
#[no_mangle]
extern "C" fn wimlib_malloc(size: usize) -> *mut c_void {
    // SAFETY: malloc accepts any size and returns NULL on failure, which the codecs check.
    unsafe { libc::malloc(size) }
}

/// `void wimlib_free_memory(void *p);` (wimlib/util.h)
#[no_mangle]
unsafe extern "C" fn wimlib_free_memory(p: *mut c_void) {
    // SAFETY: invariant 5, `p` is NULL or came from `wimlib_malloc`.
    libc::free(p)
}

/// `void *wimlib_aligned_malloc(size_t size, size_t alignment);` (wimlib/util.h): `alignment`
/// is a power of two.
#[no_mangle]
extern "C" fn wimlib_aligned_malloc(size: usize, alignment: usize) -> *mut c_void {
    let alignment = alignment.max(std::mem::size_of::<*mut c_void>());
    let mut block = std::ptr::null_mut();
    // SAFETY: `block` is a valid out-pointer; posix_memalign writes it only on success, and
    // `alignment` is a power of two at least the size of a pointer, as it requires.
    match unsafe { libc::posix_memalign(&mut block, alignment, size) } {
        0 => block,
        _ => std::ptr::null_mut(),
    }
}

/// `void wimlib_aligned_free(void *ptr);` (wimlib/util.h)
#[no_mangle]
unsafe extern "C" fn wimlib_aligned_free(ptr: *mut c_void) {
    // SAFETY: invariant 5, `ptr` is NULL or came from `wimlib_aligned_malloc`.
    libc::free(ptr)
}

/// The compression formats of WIM resources, numbered as wimlib numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Xpress,
    Lzx,
    Lzms,
}

impl Codec {
    /// `enum wimlib_compression_type` in wimlib.h.
    fn wimlib_type(self) -> c_int {
        match self {
            Codec::Xpress => WIMLIB_COMPRESSION_TYPE_XPRESS,
            Codec::Lzx => WIMLIB_COMPRESSION_TYPE_LZX,
            Codec::Lzms => WIMLIB_COMPRESSION_TYPE_LZMS,
        }
    }
}

/// Invariant 4: wimlib's lazy processor-feature probe runs once, synchronized by Rust, before
/// any codec object exists.
fn init_wimlib_once() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
        // SAFETY: no arguments; `Once` keeps every other thread out of wimlib meanwhile.
        unsafe {
            x86_setup_cpu_features();
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
    raw: NonNull<WimlibCompressor>,
    max_block_size: usize,
}

// SAFETY: invariant 2 above; the object owns only heap memory, no thread-local state, and is
// used through `&mut self`, so moving it to another thread and using it there is sound.
unsafe impl Send for Compressor {}

impl Compressor {
    /// Bytes one compressor for `codec`, chunks of `max_block_size` and `level` (0: wimlib's
    /// default) allocates, or `None` when wimlib refuses those parameters.
    pub fn needed_memory(codec: Codec, max_block_size: usize, level: u16) -> Option<u64> {
        // SAFETY: plain values in, a number out; it reads only the default levels, never written.
        let bytes = unsafe {
            wimlib_get_compressor_needed_memory(
                codec.wimlib_type(),
                max_block_size,
                c_uint::from(level),
            )
        };
        (bytes != 0).then_some(bytes)
    }

    /// A compressor for `codec` at compression `level` (1 fastest; 0 means wimlib's default,
    /// 50). Every level writes the same format: a decompressor reads them all alike. The level
    /// is 16 bits wide so that it can never carry the flag wimlib reads from the top bit of the
    /// same argument (`WIMLIB_COMPRESSOR_FLAG_DESTRUCTIVE`: the compressor may then overwrite
    /// its input, which [`Compressor::compress`] borrows read-only).
    pub fn new(codec: Codec, max_block_size: usize, level: u16) -> Result<Self, WimlibError> {
        init_wimlib_once();
        let mut raw: *mut WimlibCompressor = std::ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; wimlib writes it only on success. The level has
        // no flag bits (see above).
        let code = unsafe {
            wimlib_create_compressor(
                codec.wimlib_type(),
                max_block_size,
                c_uint::from(level),
                &mut raw,
            )
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
            wimlib_compress(
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
        unsafe { wimlib_free_compressor(self.raw.as_ptr()) }
    }
}

/// A wimlib decompressor for chunks of at most `max_block_size` bytes.
pub struct Decompressor {
    raw: NonNull<WimlibDecompressor>,
    max_block_size: usize,
}

// SAFETY: invariant 2 above; the object owns only heap memory, no thread-local state, and is
// used through `&mut self`, so moving it to another thread and using it there is sound.
unsafe impl Send for Decompressor {}

impl Decompressor {
    pub fn new(codec: Codec, max_block_size: usize) -> Result<Self, WimlibError> {
        init_wimlib_once();
        let mut raw: *mut WimlibDecompressor = std::ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; wimlib writes it only on success.
        let code =
            unsafe { wimlib_create_decompressor(codec.wimlib_type(), max_block_size, &mut raw) };
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
            wimlib_decompress(
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
        unsafe { wimlib_free_decompressor(self.raw.as_ptr()) }
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
            // The default level and a fast one, whose parsers differ.
            for level in [0, 20] {
                let mut compressor = Compressor::new(codec, 32768, level).unwrap();
                let mut packed = Vec::new();
                assert!(compressor.compress(&data, &mut packed), "{codec:?} {level}");
                assert!(packed.len() < data.len());
                let mut decompressor = Decompressor::new(codec, 32768).unwrap();
                let mut out = vec![0; data.len()];
                assert!(decompressor.decompress(&packed, &mut out), "{codec:?}");
                assert_eq!(out, data, "{codec:?} {level}");
                // A damaged stream is reported, not trusted.
                let mut wrong = vec![0; data.len()];
                let truncated = &packed[..packed.len() / 3];
                assert!(!decompressor.decompress(truncated, &mut wrong) || wrong != data);
            }
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
        let mut compressor = Compressor::new(Codec::Xpress, 32768, 0).unwrap();
        let mut packed = Vec::new();
        assert!(!compressor.compress(&noise, &mut packed));
        assert!(packed.is_empty());
    }
}
