//! [`Image`]: what providers read through. It loads hives lazily (replaying their transaction
//! logs) and overlays the changes planned so far, so each provider sees the state the earlier ones
//! leave behind.

use std::collections::BTreeMap;

use reseal_hive::Hive;

use crate::error::Result;
use crate::target::{DirEntry, Target};

/// The SYSTEM hive.
pub const SYSTEM: &str = r"Windows\System32\config\SYSTEM";
/// The SOFTWARE hive.
pub const SOFTWARE: &str = r"Windows\System32\config\SOFTWARE";
/// The SAM hive.
pub const SAM: &str = r"Windows\System32\config\SAM";
/// The SECURITY hive.
pub const SECURITY: &str = r"Windows\System32\config\SECURITY";
/// The DEFAULT hive (the profile of system services and the logon screen).
pub const DEFAULT: &str = r"Windows\System32\config\DEFAULT";

/// How a hive was loaded: its dirty state and what log replay did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HiveStatus {
    /// The hive's image path.
    pub path: String,
    /// The hive was dirty on disk (its logs hold changes not yet in the file).
    pub was_dirty: bool,
    /// The hive is consistent: clean, or dirty and fully recovered from its logs.
    pub recovered: bool,
    /// The transaction logs found beside it.
    pub logs: Vec<String>,
    /// What replay did or why it stopped, one line each.
    pub notes: Vec<String>,
}

/// A loaded hive and how it was loaded.
struct LoadedHive {
    hive: Hive,
    status: HiveStatus,
}

/// The planned state of one file.
#[derive(Clone)]
enum PlannedFile {
    Written(Vec<u8>),
    Deleted,
}

/// An image as providers see it: the target plus the changes planned so far.
pub struct Image<'t> {
    target: &'t mut dyn Target,
    /// Loaded hives by canonical path; `None` = the file is absent.
    hives: BTreeMap<String, Option<LoadedHive>>,
    /// Planned file contents by canonical path.
    files: BTreeMap<String, (String, PlannedFile)>,
    /// Planned directory deletions (canonical paths).
    deleted_dirs: Vec<String>,
}

impl<'t> Image<'t> {
    /// An image over `target`; nothing is read until asked for.
    pub fn new(target: &'t mut dyn Target) -> Image<'t> {
        Image {
            target,
            hives: BTreeMap::new(),
            files: BTreeMap::new(),
            deleted_dirs: Vec::new(),
        }
    }

    /// The hive at `path` with its logs replayed, or `None` when the file is absent.
    pub fn hive(&mut self, path: &str) -> Result<Option<&Hive>> {
        let _ = path;
        todo!()
    }

    /// How the hive at `path` was loaded, or `None` when the file is absent.
    pub fn hive_status(&mut self, path: &str) -> Result<Option<HiveStatus>> {
        let _ = path;
        todo!()
    }

    /// The current control set's key name (`ControlSet001`), from `SYSTEM\Select\Current`.
    pub fn control_set(&mut self) -> Result<String> {
        todo!()
    }

    /// The contents of the file at `path` as planned so far, or `None` when absent.
    pub fn read_file(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        let _ = path;
        todo!()
    }

    /// `true` when a file or directory exists at `path` as planned so far.
    pub fn exists(&mut self, path: &str) -> Result<bool> {
        let _ = path;
        todo!()
    }

    /// The entries of the directory at `path` as planned so far, or `None` when absent.
    pub fn list_dir(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>> {
        let _ = path;
        todo!()
    }

    /// The image paths of the user profile hives (`Users\<name>\NTUSER.DAT`) that exist, the
    /// built-in Administrator's first.
    pub fn user_hives(&mut self) -> Result<Vec<String>> {
        todo!()
    }

    /// The target under this image.
    pub fn target(&mut self) -> &mut dyn Target {
        self.target
    }

    /// The hive at `path` for editing (plan helpers keep the image in step with the plan).
    pub(crate) fn hive_mut(&mut self, path: &str) -> Result<Option<&mut Hive>> {
        let _ = path;
        todo!()
    }
}
