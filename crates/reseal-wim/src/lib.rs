//! WIM images read and edited in place, without extracting them.
//!
//! [`Wim`] opens a WIM file (header, blob table, XML data) and loads one image's metadata
//! resource as an [`ImageMetadata`] (security descriptors and the dentry tree). [`WimImage`]
//! bundles the two with the file operations an offline target needs: look up a path
//! case-insensitively, list a directory, read a file's data, and replace a file's data in place
//! while keeping its security descriptor, attributes, times, short name, alternate data streams
//! and hard links.
//!
//! The on-disk structures each have their module: [`header`], [`blob_table`], [`resource`],
//! [`xml`], [`security`], [`dentry`], [`metadata`], [`integrity`]. wimlib's codecs, linked
//! statically by `reseal-wimlib-sys`, are used only for chunk compression and decompression;
//! this crate has no unsafe code.
//!
//! Edits go to the file the way wimlib's append mode does: new blobs, the new metadata
//! resource, blob table, XML data and integrity table are appended after everything the file
//! holds, and the 208-byte header is rewritten last, so an interrupted edit leaves the
//! original image. Unchanged blobs are never rewritten, and a blob that replaces another (or an
//! image's new metadata resource) copies the old one's stored chunks where its bytes did not
//! change ([`WrittenChunks`] counts them). Edits are written one by one, or
//! staged with [`WimImage::set_batch`] and written by [`WimImage::commit`].
//!
//! # Solid WIMs (ESD files)
//!
//! Blobs already in solid resources are read from them. New blobs are appended as ordinary,
//! non-solid resources compressed with the codec and chunk size the header names (LZMS for an
//! ESD), which wimlib and Microsoft's software read alongside solid ones (WIMGAPI from
//! Windows 8 and DISM from Windows 8.1, the first versions that read ESD files at all).
//! wimlib's own in-place update would put them in a new solid resource instead; this crate
//! does not, for three reasons:
//!
//! - A solid resource cannot just be appended to the blob table. A solid run is a series of
//!   consecutive solid entries whose resource entries come first, and wimlib's
//!   `read_blob_table()` ignores a resource entry that follows blob entries of the same run.
//!   A new run must therefore be separated from the table's last run by a non-solid entry, or
//!   merged into it with its blob offsets shifted by the uncompressed sizes of that run's
//!   resources: the table's run structure has to be rewritten, not appended to.
//! - Staged edits append each blob when it is made. One solid resource for a batch would have
//!   to be written by the commit, with every staged blob held in memory until then.
//! - LZMS at the usual solid chunk size of 64 MiB needs about 640 MiB of memory per
//!   compressor (wimlib-imagex capture's manual); the format allows smaller chunks, but
//!   Microsoft's software has limited support for non-default chunk sizes and cannot be tested
//!   here.
//!
//! The cost is compression: the few new blobs of a run (hives, small files) compress a little
//! worse than in a solid resource. `wimlib-imagex optimize --solid` repacks the file.
//!
//! A reseal `Target` over one image maps onto [`WimImage`] directly: `read_file`,
//! `list_dir` (name, is_dir, size), `exists`, `replace_file`, `create_file` (missing parents
//! are created; descriptors are inherited), `delete` for both `delete_file` and
//! `delete_dir_all` (`false` = nothing was there). Nothing is ever written beside the WIM, so
//! `discard_incomplete_write` has nothing to do.
//!
//! ```no_run
//! let mut image = reseal_wim::WimImage::open("install.wim", "2", true)?;
//! let hive = image.read_file(r"Windows\System32\config\SYSTEM")?.expect("a SYSTEM hive");
//! image.replace_file(r"Windows\System32\config\SYSTEM", &hive)?;
//! image.delete(r"Windows\Panther\setupact.log")?;
//! # Ok::<(), reseal_wim::Error>(())
//! ```
#![forbid(unsafe_code)]

pub mod blob_table;
mod chunk_reuse;
pub mod dentry;
pub mod error;
pub mod header;
mod image;
pub mod integrity;
pub mod metadata;
pub mod resource;
pub mod security;
mod update_image;
mod wim;
mod write;
#[doc(hidden)]
pub mod writer;
pub mod xml;

pub use chunk_reuse::{ChunkCounts, WrittenChunks};
pub use error::{Error, Result};
pub use image::{DescriptorSwap, EntryInfo, WimImage};
pub use metadata::ImageMetadata;
pub use reseal_wimlib_sys::Codec;
pub use wim::Wim;
