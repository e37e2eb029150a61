//! The security descriptors of real WIMs: files and directories created on Windows, captured
//! (by wimlib, through the Windows API) with their descriptors. They parse and rebuild byte for
//! byte, and inheriting each parent directory's descriptor gives what Windows gave its children.

use reseal_nt::security_descriptor::{
    Acl, Creator, GenericMapping, ObjectKind, SecurityDescriptor, SE_DACL_AUTO_INHERITED,
};
use reseal_wim::dentry::FILE_ATTRIBUTE_DIRECTORY;
use reseal_wim::{Wim, WimImage};

/// The managed-wimlib samples: trees made on Windows, under a directory whose descriptor is the
/// one Windows' format gives a volume root (not auto-inherited).
const WIMS: &[&str] = &[
    "images/managedwimlib/XPRESS.wim",
    "images/managedwimlib/LZX.wim",
    "images/managedwimlib/LZMS.wim",
    "images/managedwimlib/BootXPRESS.wim",
    "images/managedwimlib/MultiImage.wim",
];

/// Every image of every sample WIM.
fn images() -> Vec<(String, WimImage)> {
    let mut images = Vec::new();
    for relative in WIMS {
        let Some(path) = reseal_testutil::real_fixture(relative) else {
            return Vec::new();
        };
        let count = Wim::open(&path).unwrap().image_count();
        for index in 1..=count {
            let image = WimImage::open(&path, &index.to_string(), false).unwrap();
            images.push((format!("{relative} image {index}"), image));
        }
    }
    images
}

fn parse(bytes: &[u8]) -> SecurityDescriptor {
    SecurityDescriptor::parse(bytes).unwrap()
}

#[test]
fn real_wim_descriptors_parse_and_rebuild_byte_for_byte() {
    let mut checked = 0;
    for (name, image) in images() {
        for bytes in &image.metadata().security.descriptors {
            assert_eq!(parse(bytes).to_bytes().unwrap(), *bytes, "{name}");
            checked += 1;
        }
    }
    assert!(checked >= 10 || checked == 0, "{checked}");
}

#[test]
fn inheriting_a_real_directory_gives_what_windows_gave_its_children() {
    let (mut files, mut directories) = (0, 0);
    for (name, image) in images() {
        let metadata = image.metadata();
        for (index, dentry) in metadata.dentries.iter().enumerate() {
            let Some(parent) = dentry.parent.filter(|&parent| parent != index) else {
                continue;
            };
            let (Some(parent_bytes), Some(child_bytes)) = (
                metadata.security_descriptor(parent),
                metadata.security_descriptor(index),
            ) else {
                continue;
            };
            let (parent_sd, child) = (parse(parent_bytes), parse(child_bytes));
            assert_eq!(parent_sd.control & SE_DACL_AUTO_INHERITED, 0);
            let kind = if dentry.attributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
                directories += 1;
                ObjectKind::Directory
            } else {
                files += 1;
                ObjectKind::File
            };
            // Created by a user: the owner and group are the user's, which are the child's.
            let creator = Creator {
                owner: child.owner.clone().unwrap(),
                group: child.group.clone().unwrap(),
                default_dacl: Acl::new(Vec::new()),
            };
            let computed = parent_sd.inherit(kind, &creator, &GenericMapping::FILE);
            // Equal as descriptors; the bytes are laid out as the Windows API that captured
            // them returns descriptors (owner, group, DACL), not as they were assigned.
            assert_eq!(computed, child, "{name}: {}", metadata.path_of(index));
            if kind == ObjectKind::File {
                // A file holds only effective entries, not flagged inherited.
                let aces = &child.dacl.as_ref().unwrap().aces;
                assert!(aces.iter().all(|ace| ace.flags == 0), "{aces:?}");
            }
        }
    }
    if !images().is_empty() {
        assert!(
            files >= 10 && directories >= 5,
            "{files} files, {directories} directories"
        );
    }
}
