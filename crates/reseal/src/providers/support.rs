//! Reading helpers the providers share: values, keys and directory entries seen through the
//! image (with the changes of earlier providers overlaid), and the paths every provider needs.

use reseal_hive::data::{decode_multi_sz, decode_sz};
use reseal_hive::ValueType;

use crate::error::{Error, Result};
use crate::image::{Image, SYSTEM};
use crate::plan::Plan;

/// A value's type and data, or `None` when the hive, the key or the value is absent.
pub(crate) fn read_value(
    image: &mut Image,
    hive: &str,
    key: &str,
    name: &str,
) -> Result<Option<(ValueType, Vec<u8>)>> {
    let Some(loaded) = image.hive(hive)? else {
        return Ok(None);
    };
    let wrap = |err| Error::from_hive(hive, err);
    let Some(value) = loaded.value(key, name).map_err(wrap)? else {
        return Ok(None);
    };
    let value_type = value.value_type().map_err(wrap)?;
    let data = value.data().map_err(wrap)?.into_owned();
    Ok(Some((value_type, data)))
}

/// A string value (`REG_SZ`/`REG_EXPAND_SZ`; other types count as absent).
pub(crate) fn read_string(
    image: &mut Image,
    hive: &str,
    key: &str,
    name: &str,
) -> Result<Option<String>> {
    Ok(match read_value(image, hive, key, name)? {
        Some((ValueType::SZ | ValueType::EXPAND_SZ, data)) => Some(decode_sz(&data)),
        _ => None,
    })
}

/// A `REG_DWORD` value (other types or short data count as absent).
pub(crate) fn read_dword(
    image: &mut Image,
    hive: &str,
    key: &str,
    name: &str,
) -> Result<Option<u32>> {
    Ok(match read_value(image, hive, key, name)? {
        Some((ValueType::DWORD, data)) if data.len() >= 4 => {
            Some(u32::from_le_bytes([data[0], data[1], data[2], data[3]]))
        }
        _ => None,
    })
}

/// The strings of a `REG_MULTI_SZ` value; a `REG_SZ` value counts as one string.
pub(crate) fn read_strings(
    image: &mut Image,
    hive: &str,
    key: &str,
    name: &str,
) -> Result<Option<Vec<String>>> {
    Ok(match read_value(image, hive, key, name)? {
        Some((ValueType::MULTI_SZ, data)) => Some(decode_multi_sz(&data)),
        Some((ValueType::SZ | ValueType::EXPAND_SZ, data)) => Some(vec![decode_sz(&data)]),
        _ => None,
    })
}

/// The names of a key's subkeys (empty when the hive or key is absent).
pub(crate) fn subkey_names(image: &mut Image, hive: &str, key: &str) -> Result<Vec<String>> {
    let Some(loaded) = image.hive(hive)? else {
        return Ok(Vec::new());
    };
    let wrap = |err| Error::from_hive(hive, err);
    let Some(found) = loaded.key(key).map_err(wrap)? else {
        return Ok(Vec::new());
    };
    let subkeys = found.subkeys().map_err(wrap)?;
    subkeys
        .iter()
        .map(|subkey| subkey.name().map_err(wrap))
        .collect()
}

/// `rest` below the current control set of the SYSTEM hive (`ControlSet001\rest`), which an
/// offline hive has instead of a `CurrentControlSet` link.
pub(crate) fn control_set_key(image: &mut Image, rest: &str) -> Result<String> {
    Ok(format!("{}\\{rest}", image.control_set()?))
}

/// The Windows build number (`CurrentBuildNumber` in SOFTWARE), when readable.
pub(crate) fn windows_build(image: &mut Image) -> Result<Option<u32>> {
    let build = read_string(
        image,
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
    let architecture = read_string(image, SYSTEM, &key, "PROCESSOR_ARCHITECTURE")?;
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
pub(crate) fn empty_directory(
    plan: &mut Plan,
    image: &mut Image,
    provider: &'static str,
    source: &'static str,
    dir: &str,
) -> Result<()> {
    let Some(entries) = image.list_dir(dir)? else {
        return Ok(());
    };
    for entry in entries {
        let path = join(dir, &entry.name);
        if entry.is_dir {
            plan.delete_directory(image, provider, source, &path)?;
        } else {
            plan.delete_file(image, provider, source, &path)?;
        }
    }
    Ok(())
}
