//! Functions the providers share, on top of [`Image`]'s readers: multi-string values, control-set
//! paths, the build and architecture, and emptying a directory.

use reseal_hive::data::{decode_multi_sz, decode_sz};
use reseal_hive::ValueType;

use crate::error::Result;
use crate::image::{Image, SYSTEM};
use crate::providers::Planner;

/// Winlogon's key in SOFTWARE.
pub(crate) const WINLOGON: &str = r"Microsoft\Windows NT\CurrentVersion\Winlogon";

/// The strings of a `REG_MULTI_SZ` value; a `REG_SZ` value counts as one string.
pub(crate) fn read_strings(
    image: &mut Image,
    hive: &str,
    key: &str,
    name: &str,
) -> Result<Option<Vec<String>>> {
    Ok(match image.value(hive, key, name)? {
        Some((ValueType::MULTI_SZ, data)) => Some(decode_multi_sz(&data)),
        Some((ValueType::SZ | ValueType::EXPAND_SZ, data)) => Some(vec![decode_sz(&data)]),
        _ => None,
    })
}

/// `rest` below the current control set of the SYSTEM hive (`ControlSet001\rest`), which an
/// offline hive has instead of a `CurrentControlSet` link.
pub(crate) fn control_set_key(image: &mut Image, rest: &str) -> Result<String> {
    Ok(format!("{}\\{rest}", image.control_set()?))
}

/// The Windows build number (`CurrentBuildNumber` in SOFTWARE), when readable.
pub(crate) fn windows_build(image: &mut Image) -> Result<Option<u32>> {
    let build = image.string_value(
        crate::image::SOFTWARE,
        r"Microsoft\Windows NT\CurrentVersion",
        "CurrentBuildNumber",
    )?;
    Ok(build.and_then(|text| text.trim().parse().ok()))
}

/// The architecture name the answer file uses for the image (`amd64`, `x86`, `arm64`), from the
/// current control set's `PROCESSOR_ARCHITECTURE`; `amd64` when unreadable.
pub(crate) fn answer_file_architecture(image: &mut Image) -> Result<String> {
    let key = control_set_key(image, r"Control\Session Manager\Environment")?;
    let architecture = image.string_value(SYSTEM, &key, "PROCESSOR_ARCHITECTURE")?;
    Ok(match architecture
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("X86") => "x86",
        Some("ARM64") => "arm64",
        Some("ARM") => "arm",
        _ => "amd64",
    }
    .to_string())
}

/// Joins an image directory and an entry name.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}\\{name}")
    }
}

/// Plans the deletion of everything inside `dir` (files and subdirectories), keeping `dir`
/// itself, which the owning service expects to find.
pub(crate) fn empty_directory(changes: &mut Planner, dir: &str) -> Result<()> {
    let Some(entries) = changes.image().list_dir(dir)? else {
        return Ok(());
    };
    for entry in entries {
        let path = join(dir, &entry.name);
        if entry.is_dir {
            changes.delete_directory(&path)?;
        } else {
            changes.delete_file(&path)?;
        }
    }
    Ok(())
}
