//! Finding the parent of a differencing disk from the paths recorded in the child.
//!
//! Children made on Windows record Windows paths (`.\parent.vhd`, `C:\dir\parent.vhd`); they
//! are tried relative to the child's directory, then as absolute local paths, then the bare
//! file name beside the child (images are usually moved together).

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::image_file::{ImageFile, LocalFile};

/// Where a child says its parent is.
#[derive(Default)]
pub(crate) struct ParentHints {
    pub relative: Vec<String>,
    pub absolute: Vec<String>,
    /// Any recorded path (or name) whose file name is tried beside the child.
    pub names: Vec<String>,
}

fn local_form(recorded: &str) -> String {
    recorded.replace('\\', "/")
}

fn file_name_of(recorded: &str) -> Option<&str> {
    recorded
        .rsplit(['\\', '/'])
        .next()
        .filter(|name| !name.is_empty() && *name != "." && *name != "..")
}

impl ParentHints {
    /// The hints of a child that records one path, `recorded`: absolute or relative to the
    /// child. With `windows_path` (a VMDK's parentFileNameHint, often written on Windows) `\`
    /// separates as `/` does and a drive letter makes the path absolute; without (a qcow2
    /// backing file name, which qemu on Linux takes as it is), the local rules alone decide.
    pub fn of_one_path(recorded: &str, windows_path: bool) -> ParentHints {
        let mut hints = ParentHints::default();
        let absolute = if windows_path {
            Path::new(&local_form(recorded)).is_absolute() || recorded.get(1..3) == Some(":\\")
        } else {
            Path::new(recorded).is_absolute()
        };
        if absolute {
            hints.absolute.push(recorded.to_string());
        } else {
            hints.relative.push(recorded.to_string());
        }
        hints
    }

    /// Opens the first candidate that is a file (read-only) with `open`, and gives back what
    /// it made and the path. Errors name the child: no candidate is a file
    /// ([`Error::MissingParent`], with `parent_name` and every path tried), or the one found
    /// cannot be opened as a parent (with the recorded path it came from).
    pub fn open_first<T>(
        &self,
        child: &Path,
        parent_name: &str,
        open: impl FnOnce(Box<dyn ImageFile>) -> Result<T>,
    ) -> Result<(T, PathBuf)> {
        let candidates = self.candidates(child);
        let Some(found) = candidates.iter().find(|candidate| candidate.is_file()) else {
            return Err(Error::MissingParent {
                path: child.to_path_buf(),
                parent_name: parent_name.to_string(),
                tried: describe_candidates(&candidates),
            });
        };
        let opened = LocalFile::open(found, false)
            .and_then(|file| open(Box::new(file)))
            .map_err(|source| {
                Error::unusable_parent(child, found, self.origin_of(child, found), source)
            })?;
        Ok((opened, found.clone()))
    }

    /// The distinct candidate paths, in the order they are tried.
    pub fn candidates(&self, child: &Path) -> Vec<PathBuf> {
        self.candidates_with_origin(child)
            .into_iter()
            .map(|(path, _)| path)
            .collect()
    }

    /// The recorded path (or name) that `candidate` comes from.
    pub fn origin_of(&self, child: &Path, candidate: &Path) -> String {
        self.candidates_with_origin(child)
            .into_iter()
            .find(|(path, _)| path == candidate)
            .map(|(_, recorded)| recorded)
            .unwrap_or_default()
    }

    fn candidates_with_origin(&self, child: &Path) -> Vec<(PathBuf, String)> {
        let directory = child.parent().unwrap_or(Path::new("."));
        let mut candidates: Vec<(PathBuf, String)> = Vec::new();
        let mut push = |path: PathBuf, recorded: &str| {
            if !candidates.iter().any(|(known, _)| *known == path) {
                candidates.push((path, recorded.to_string()));
            }
        };
        for relative in &self.relative {
            let local = local_form(relative);
            let local = Path::new(&local);
            if !local.is_absolute() {
                push(normalize(&directory.join(local)), relative);
            }
        }
        for absolute in &self.absolute {
            let local = PathBuf::from(local_form(absolute));
            if local.is_absolute() {
                push(local, absolute);
            }
        }
        for recorded in self
            .relative
            .iter()
            .chain(&self.absolute)
            .chain(&self.names)
        {
            if let Some(name) = file_name_of(recorded) {
                push(directory.join(name), recorded);
            }
        }
        candidates
    }
}

/// The paths tried, for an error message.
fn describe_candidates(candidates: &[PathBuf]) -> String {
    if candidates.is_empty() {
        return "no usable path in the child".into();
    }
    candidates
        .iter()
        .map(|candidate| candidate.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Drops `.` components and resolves `..` lexically, so `dir/./x.vhd` and `dir/x.vhd` compare equal.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            // `..` of the root is the root, as the operating system resolves it.
            Component::ParentDir if out.has_root() => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Where a new differencing child records its parent: the parent's absolute path, and its path
/// relative to the child's directory in Windows form (`None` when they share no root).
pub(crate) fn parent_paths_for_child(
    parent_path: &Path,
    child_path: &Path,
) -> Result<(PathBuf, Option<String>)> {
    let absolute = |path: &Path| {
        std::path::absolute(path).map_err(|e| Error::io(path, "cannot make the path absolute", e))
    };
    let parent_absolute = absolute(parent_path)?;
    let child_absolute = absolute(child_path)?;
    let child_directory = child_absolute.parent().unwrap_or(Path::new("/"));
    let relative = windows_relative_path(child_directory, &parent_absolute);
    Ok((parent_absolute, relative))
}

/// The path of `target` relative to `base_directory`, in Windows form (`.\name`, `..\dir\name`).
pub(crate) fn windows_relative_path(base_directory: &Path, target: &Path) -> Option<String> {
    let base: Vec<Component> = base_directory.components().collect();
    let target_components: Vec<Component> = target.components().collect();
    let common = base
        .iter()
        .zip(&target_components)
        .take_while(|(a, b)| a == b)
        .count();
    if common == 0 {
        return None;
    }
    let mut parts: Vec<String> = Vec::new();
    if common == base.len() {
        parts.push(".".into());
    }
    parts.extend(std::iter::repeat_n("..".to_string(), base.len() - common));
    parts.extend(
        target_components[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    Some(parts.join("\\"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_paths_resolve_beside_the_child() {
        let hints = ParentHints {
            relative: vec![".\\base.vhd".into()],
            absolute: vec!["C:\\images\\base.vhd".into()],
            names: vec![],
        };
        assert_eq!(
            hints.candidates(Path::new("/data/child.vhd")),
            vec![PathBuf::from("/data/base.vhd")]
        );
    }

    #[test]
    fn one_recorded_path_is_absolute_or_relative_by_its_kind() {
        let child = Path::new("/data/child.img");
        let tried = |recorded: &str, windows_path: bool| {
            ParentHints::of_one_path(recorded, windows_path).candidates(child)
        };
        let paths = |list: &[&str]| list.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(
            tried("/images/base", false),
            paths(&["/images/base", "/data/base"])
        );
        assert_eq!(tried("base", false), paths(&["/data/base"]));
        // Not absolute for qemu on Linux: only its last part is tried, beside the child.
        assert_eq!(tried("\\images\\base", false), paths(&["/data/base"]));
        assert_eq!(
            tried("\\images\\base", true),
            paths(&["/images/base", "/data/base"])
        );
        // A drive letter: only the bare name beside the child is a local candidate.
        assert_eq!(tried("C:\\images\\base", true), paths(&["/data/base"]));
        assert_eq!(tried(".\\base", true), paths(&["/data/base"]));
    }

    #[test]
    fn relative_path_between_directories() {
        assert_eq!(
            windows_relative_path(Path::new("/a/b"), Path::new("/a/c/p.vhd")).unwrap(),
            "..\\c\\p.vhd"
        );
        assert_eq!(
            windows_relative_path(Path::new("/a"), Path::new("/a/p.vhd")).unwrap(),
            ".\\p.vhd"
        );
    }
}
