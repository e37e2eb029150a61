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
//! [`xml`], [`security`], [`dentry`], [`metadata`], [`integrity`]. wimlib, built from source by
//! `wimlib-sys`, is used only for chunk compression and decompression; all unsafe code is in
//! the private `ffi` module.
#![deny(unsafe_code)]

pub mod blob_table;
pub mod dentry;
pub mod error;
mod ffi;
pub mod header;
pub mod integrity;
pub mod metadata;
pub mod resource;
pub mod security;
pub mod security_descriptor;
mod wim;
pub mod xml;

pub use error::{Error, Result};
pub use ffi::Codec;
pub use metadata::ImageMetadata;
pub use wim::{EntryInfo, Wim, WimImage};
