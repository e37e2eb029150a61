//! Finds the static library a `-sys` crate links, for its build script.
//!
//! The `reseal` binary links its C libraries statically so that it runs where they are not
//! installed. Debian's `-dev` packages ship the `lib*.a` archives in the multiarch library
//! folder; an environment variable names another folder.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// The path of `lib{name}.a`: in the folder `dir_variable` names when it is set, otherwise in
/// the system library folders (multiarch first). The build script reruns when the variable
/// or the archive changes. The error names every folder searched and the package to install.
pub fn find(name: &str, dir_variable: &str, debian_package: &str) -> Result<PathBuf, String> {
    println!("cargo:rerun-if-env-changed={dir_variable}");
    let file = format!("lib{name}.a");
    let dirs = match std::env::var_os(dir_variable) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => system_dirs(),
    };
    match dirs
        .iter()
        .map(|dir| dir.join(&file))
        .find(|path| path.is_file())
    {
        Some(path) => {
            println!("cargo:rerun-if-changed={}", path.display());
            Ok(path)
        }
        None => Err(format!(
            "{file} was not found in {}; install Debian's {debian_package} (`cargo xtask setup` \
             does) or set {dir_variable} to the folder that holds it",
            dirs.iter()
                .map(|dir| dir.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn system_dirs() -> Vec<PathBuf> {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = Path::new("/usr/lib").join(format!("{arch}-linux-gnu"));
    vec![
        multiarch,
        PathBuf::from("/usr/lib64"),
        PathBuf::from("/usr/lib"),
        PathBuf::from("/usr/local/lib"),
    ]
}
