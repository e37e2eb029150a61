//! WIM images read and edited in place.
#![deny(unsafe_code)]

// Used by the resource reader and writer that follow.
#[allow(dead_code)]
mod ffi;
