//! The backing file of a qcow2 image: found from the name the header records (relative to
//! the image's directory, or absolute) and opened read-only in the format the backing-format
//! extension names, or recognized from its content when there is none. A backing file may be
//! raw, qcow2, VHD, VHDX or VMDK, and itself have a backing file or parent.

use std::path::{Path, PathBuf};

use crate::block_device::BlockDevice;
use crate::error::{Error, Result};
use crate::parent::ParentHints;
use crate::vhd::MAX_PARENT_DEPTH;
use crate::{detect_format, raw, vhd, vhdx, vmdk, Format};

/// The backing file as the image records it and as it was found.
#[derive(Clone, Debug)]
pub struct BackingLink {
    /// The name in the header.
    pub recorded: String,
    /// The file opened.
    pub path: PathBuf,
    pub format: Format,
}

fn format_named(child: &Path, name: &str) -> Result<Format> {
    Format::ALL
        .into_iter()
        .find(|format| format.qemu_name() == name)
        .ok_or_else(|| {
            let known: Vec<String> = Format::ALL
                .iter()
                .map(|format| match (format.qemu_name(), format.name()) {
                    (qemu, name) if qemu.eq_ignore_ascii_case(name) => qemu.to_string(),
                    (qemu, name) => format!("{qemu} ({name})"),
                })
                .collect();
            Error::unsupported(
                child,
                "qcow2 backing format",
                format!(
                    "the backing file's format is {name:?}; {} are supported",
                    known.join(", ")
                ),
            )
        })
}

/// Opens the backing file `recorded` of the qcow2 image `child`.
pub(crate) fn open(
    child: &Path,
    recorded: &str,
    format_name: Option<&str>,
    depth: usize,
) -> Result<(Box<dyn BlockDevice>, BackingLink)> {
    if depth >= MAX_PARENT_DEPTH {
        return Err(Error::unsupported(
            child,
            "qcow2 backing chain",
            format!("more than {MAX_PARENT_DEPTH} backing files (a loop?)"),
        ));
    }
    if recorded.starts_with("json:") || recorded.contains("://") {
        return Err(Error::unsupported(
            child,
            "qcow2 backing file",
            format!("the backing file {recorded:?} is not a local file"),
        ));
    }
    let format = format_name
        .map(|name| format_named(child, name))
        .transpose()?;
    let hints = ParentHints::of_one_path(recorded, false);
    let ((device, format), found) = hints.open_first(child, recorded, |mut file| {
        let format = match format {
            Some(format) => format,
            None => detect_format(&mut *file)?,
        };
        let device: Box<dyn BlockDevice> = match format {
            Format::Raw => Box::new(raw::RawDisk::new(file)),
            Format::Qcow2 => Box::new(super::Qcow2::open_at_depth(file, depth + 1)?),
            Format::Vhd => Box::new(vhd::Vhd::open_at_depth(file, depth + 1)?),
            Format::Vhdx => Box::new(vhdx::Vhdx::open_at_depth(file, depth + 1)?),
            Format::Vmdk => Box::new(vmdk::Vmdk::open_at_depth(file, depth + 1)?),
        };
        Ok((device, format))
    })?;
    Ok((
        device,
        BackingLink {
            recorded: recorded.to_string(),
            path: found,
            format,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backing_formats_are_named_as_qemu_names_them() {
        let child = Path::new("overlay.qcow2");
        for (name, format) in [
            ("raw", Format::Raw),
            ("vpc", Format::Vhd),
            ("vhdx", Format::Vhdx),
            ("qcow2", Format::Qcow2),
            ("vmdk", Format::Vmdk),
        ] {
            assert_eq!(format_named(child, name).unwrap(), format);
        }
        let refused = format_named(child, "vdi").unwrap_err().to_string();
        assert!(refused.contains("\"vdi\""), "{refused}");
        assert!(
            refused.contains("vpc (VHD)") && refused.contains("vmdk"),
            "{refused}"
        );
    }
}
