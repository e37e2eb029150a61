//! [`DirectoryTarget`]: an image that is a folder on the host (a mounted volume or a copy).

use std::path::{Path, PathBuf};

use super::{DirEntry, Target};
use crate::error::Result;

/// An image stored as a host directory: the folder that holds `Windows\System32\config`.
pub struct DirectoryTarget {
    root: PathBuf,
}

impl DirectoryTarget {
    /// Opens the image at `root`.
    pub fn open(root: &Path) -> Result<DirectoryTarget> {
        let _ = root;
        todo!()
    }

    /// The host folder of the image.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Target for DirectoryTarget {
    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }
    fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        let _ = path;
        todo!()
    }
    fn list_dir(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>> {
        let _ = path;
        todo!()
    }
    fn exists(&mut self, path: &str) -> Result<bool> {
        let _ = path;
        todo!()
    }
    fn replace_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        let _ = (path, contents);
        todo!()
    }
    fn create_file(&mut self, path: &str, contents: &[u8]) -> Result<()> {
        let _ = (path, contents);
        todo!()
    }
    fn delete_file(&mut self, path: &str) -> Result<()> {
        let _ = path;
        todo!()
    }
    fn delete_dir_all(&mut self, path: &str) -> Result<()> {
        let _ = path;
        todo!()
    }
    fn discard_incomplete_write(&mut self, path: &str) -> Result<()> {
        let _ = path;
        todo!()
    }
}
