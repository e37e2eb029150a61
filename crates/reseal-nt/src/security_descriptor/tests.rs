//! Tests of security descriptors: inheritance as Windows does it (files, directories, the
//! descriptors ntfs-3g and WIMs captured on Windows hold), SACL and callback entries, the byte
//! layout of parsing and writing, malformed input, generic rights.

use super::well_known::*;
use super::*;
use crate::le;

fn users() -> Sid {
    Sid::parse("S-1-5-32-545").unwrap()
}
fn everyone() -> Sid {
    Sid::parse("S-1-1-0").unwrap()
}
fn ace(ace_type: u8, flags: u8, mask: u32, sid: Sid) -> Ace {
    Ace {
        ace_type,
        flags,
        body: AceBody::Sid {
            mask,
            sid,
            data: Vec::new(),
        },
    }
}

/// A parent directory's descriptor: owner and group SYSTEM, the given DACL.
fn parent(control: u16, dacl: Option<Vec<Ace>>) -> Vec<u8> {
    SecurityDescriptor::new(
        control,
        Some(local_system()),
        Some(local_system()),
        None,
        dacl.map(Acl::new),
    )
    .to_bytes()
    .unwrap()
}

fn parsed(bytes: &[u8]) -> SecurityDescriptor {
    SecurityDescriptor::parse(bytes).unwrap()
}

/// (flags, mask, SID) of each DACL entry.
fn dacl_of(bytes: &[u8]) -> Vec<(u8, u32, String)> {
    parsed(bytes)
        .dacl
        .unwrap()
        .aces
        .iter()
        .map(|a| (a.flags, a.mask().unwrap(), a.sid().unwrap().to_string()))
        .collect()
}

/// The descriptor mkntfs gives a volume's root, which is also what Windows' format gives
/// one (the real WIMs in managedwimlib/ were captured under such a root): effective and
/// inherit-only entries, not auto-inherited.
fn volume_root() -> Vec<u8> {
    let io = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE | INHERIT_ONLY_ACE;
    let dacl = vec![
        ace(0, 0, FILE_ALL_ACCESS, builtin_administrators()),
        ace(0, io, GENERIC_ALL, builtin_administrators()),
        ace(0, 0, FILE_ALL_ACCESS, local_system()),
        ace(0, io, GENERIC_ALL, local_system()),
        ace(0, 0, 0x0012_00a9, users()),
        ace(0, io, GENERIC_READ | GENERIC_EXECUTE, users()),
    ];
    parent(0, Some(dacl))
}

// From reseal-ntfs. Its expected flags were INHERITED_ACE; the parent is not auto-inherited,
// and Windows then leaves the flag off (module documentation), so 0 is expected.
#[test]
fn a_file_gets_the_object_inheritable_aces_as_effective_aces() {
    let child = inherit(&volume_root(), ObjectKind::File).unwrap();
    assert_eq!(
        dacl_of(&child),
        [
            (0, FILE_ALL_ACCESS, "S-1-5-32-544".into()),
            (0, FILE_ALL_ACCESS, "S-1-5-18".into()),
            (0, 0x0012_00a9, "S-1-5-32-545".into()),
        ]
    );
    let child = parsed(&child);
    assert_eq!(child.owner, Some(builtin_administrators()));
    assert_eq!(child.group, Some(local_system()));
    assert_eq!(child.control, SE_SELF_RELATIVE | SE_DACL_PRESENT);
}

#[test]
fn an_auto_inherited_parent_gives_inherited_aces() {
    let mut root = parsed(&volume_root());
    root.control |= SE_DACL_AUTO_INHERITED;
    let child = inherit(&root.to_bytes().unwrap(), ObjectKind::File).unwrap();
    assert!(dacl_of(&child)
        .iter()
        .all(|(flags, ..)| *flags == INHERITED_ACE));
    assert_eq!(
        parsed(&child).control,
        SE_SELF_RELATIVE | SE_DACL_PRESENT | SE_DACL_AUTO_INHERITED
    );
}

// From reseal-ntfs.
#[test]
fn container_only_and_non_inheritable_aces_do_not_reach_a_file() {
    let dacl = vec![
        ace(0, 0, FILE_ALL_ACCESS, local_system()),
        ace(0, CONTAINER_INHERIT_ACE, FILE_ALL_ACCESS, users()),
        ace(
            0,
            OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
            FILE_ALL_ACCESS,
            builtin_administrators(),
        ),
    ];
    let child = inherit(&parent(0, Some(dacl)), ObjectKind::File).unwrap();
    let sids: Vec<String> = dacl_of(&child).into_iter().map(|(.., sid)| sid).collect();
    assert_eq!(sids, ["S-1-5-32-544"]);
}

// From reseal-ntfs.
#[test]
fn creator_owner_becomes_the_owner_and_deny_aces_keep_their_type() {
    let dacl = vec![
        ace(
            ACCESS_DENIED_ACE_TYPE,
            OBJECT_INHERIT_ACE,
            0x0002_0000,
            everyone(),
        ),
        ace(
            0,
            OBJECT_INHERIT_ACE | INHERIT_ONLY_ACE,
            GENERIC_ALL,
            creator_owner(),
        ),
    ];
    let child = inherit(
        &parent(SE_DACL_AUTO_INHERITED, Some(dacl)),
        ObjectKind::File,
    )
    .unwrap();
    let child = parsed(&child);
    let aces = &child.dacl.as_ref().unwrap().aces;
    assert_eq!(aces[0].ace_type, ACCESS_DENIED_ACE_TYPE);
    assert_eq!(aces[0].sid(), Some(&everyone()));
    assert_eq!(aces[1].sid(), Some(&builtin_administrators()));
    assert_eq!(aces[1].mask(), Some(FILE_ALL_ACCESS));
    assert_ne!(child.control & SE_DACL_AUTO_INHERITED, 0);
}

// From reseal-ntfs (it checked the SIDs only; the masks are those of the SYSTEM token's
// default DACL, see the module documentation).
#[test]
fn nothing_inheritable_an_empty_or_a_null_dacl_gives_the_system_default() {
    let mut null_dacl = parsed(&parent(0, None));
    null_dacl.control |= SE_DACL_PRESENT;
    for parent in [
        parent(0, None),
        null_dacl.to_bytes().unwrap(),
        parent(0, Some(vec![])),
        parent(0, Some(vec![ace(0, 0, FILE_ALL_ACCESS, everyone())])),
        parent(
            SE_DACL_AUTO_INHERITED,
            Some(vec![ace(
                0,
                CONTAINER_INHERIT_ACE,
                FILE_ALL_ACCESS,
                everyone(),
            )]),
        ),
    ] {
        let child = inherit(&parent, ObjectKind::File).unwrap();
        assert_eq!(
            dacl_of(&child),
            [
                (0, FILE_ALL_ACCESS, "S-1-5-18".into()),
                (0, 0x0012_00a9, "S-1-5-32-544".into()),
            ]
        );
        // The auto-inherited bit follows the parent even when nothing was inherited.
        let auto = parsed(&parent).control & SE_DACL_AUTO_INHERITED;
        assert_eq!(
            parsed(&child).control,
            SE_SELF_RELATIVE | SE_DACL_PRESENT | auto
        );
    }
}

// From reseal-ntfs; the parent is auto-inherited here so that the INHERITED_ACE flags the
// test expects are what Windows gives.
#[test]
fn a_directory_inherits_container_aces_and_passes_object_aces_on() {
    let oi = OBJECT_INHERIT_ACE;
    let ci = CONTAINER_INHERIT_ACE;
    let dacl = vec![
        ace(0, oi | ci, FILE_ALL_ACCESS, local_system()),
        ace(0, oi, 0x0012_00a9, users()),
        ace(0, ci | NO_PROPAGATE_INHERIT_ACE, 0x0012_0089, everyone()),
        ace(
            0,
            oi | NO_PROPAGATE_INHERIT_ACE,
            FILE_ALL_ACCESS,
            everyone(),
        ),
        ace(0, 0, FILE_ALL_ACCESS, users()),
    ];
    let child = inherit(
        &parent(SE_DACL_AUTO_INHERITED, Some(dacl)),
        ObjectKind::Directory,
    )
    .unwrap();
    let inherited = INHERITED_ACE;
    assert_eq!(
        dacl_of(&child),
        [
            (oi | ci | inherited, FILE_ALL_ACCESS, "S-1-5-18".into()),
            (
                oi | INHERIT_ONLY_ACE | inherited,
                0x0012_00a9,
                "S-1-5-32-545".into()
            ),
            (inherited, 0x0012_0089, "S-1-1-0".into()),
        ]
    );
}

// From reseal-ntfs, with an auto-inherited parent as above. It expected CREATOR OWNER's
// effective entry (Administrators, full control) twice; Windows leaves out an entry an
// earlier one already makes (see `add_inherited`), so it is there once.
#[test]
fn a_directory_splits_generic_and_creator_owner_aces() {
    let flags = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE;
    let dacl = vec![
        ace(0, flags, GENERIC_ALL, builtin_administrators()),
        ace(0, flags | INHERIT_ONLY_ACE, GENERIC_ALL, creator_owner()),
    ];
    let child = inherit(
        &parent(SE_DACL_AUTO_INHERITED, Some(dacl)),
        ObjectKind::Directory,
    )
    .unwrap();
    let io = INHERIT_ONLY_ACE | INHERITED_ACE | flags;
    assert_eq!(
        dacl_of(&child),
        [
            (INHERITED_ACE, FILE_ALL_ACCESS, "S-1-5-32-544".into()),
            (io, GENERIC_ALL, "S-1-5-32-544".into()),
            (io, GENERIC_ALL, "S-1-3-0".into()),
        ]
    );
}

#[test]
fn entries_an_earlier_entry_already_makes_are_left_out() {
    let oici = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE;
    let io = INHERIT_ONLY_ACE;
    let all = FILE_ALL_ACCESS | 0x0100_0000; // and ACCESS_SYSTEM_SECURITY
    let dacl = vec![
        // Split: effective SYSTEM full control, and the generic one passed on.
        ace(
            0,
            oici | io,
            GENERIC_ALL | 0x0100_0000 | FILE_ALL_ACCESS,
            local_system(),
        ),
        // Its effective part is done and a broader entry passes it on: left out.
        ace(0, oici, FILE_ALL_ACCESS, local_system()),
        // Split into read and execute for Users, and the generic entry passed on...
        ace(0, oici | io, GENERIC_READ | GENERIC_EXECUTE, users()),
        // ...so this one's effective part is done but not its passing on: inherit-only.
        ace(0, oici, 0x0012_00a9, users()),
        // The same again: left out altogether.
        ace(0, oici, 0x0012_00a9, users()),
        // CREATOR OWNER for the owner Administrators, then Administrators themselves.
        ace(0, oici | io, GENERIC_ALL, creator_owner()),
        ace(0, oici | io, GENERIC_ALL, builtin_administrators()),
    ];
    let parent = parent(SE_DACL_AUTO_INHERITED, Some(dacl));
    let inh = INHERITED_ACE;
    assert_eq!(
        dacl_of(&inherit(&parent, ObjectKind::Directory).unwrap()),
        [
            (inh, FILE_ALL_ACCESS, "S-1-5-18".into()),
            (inh | oici | io, GENERIC_ALL | all, "S-1-5-18".into()),
            (inh, 0x0012_00a9, "S-1-5-32-545".into()),
            (
                inh | oici | io,
                GENERIC_READ | GENERIC_EXECUTE,
                "S-1-5-32-545".into()
            ),
            (inh | oici | io, 0x0012_00a9, "S-1-5-32-545".into()),
            (inh, FILE_ALL_ACCESS, "S-1-5-32-544".into()),
            (inh | oici | io, GENERIC_ALL, "S-1-3-0".into()),
            (inh | oici | io, GENERIC_ALL, "S-1-5-32-544".into()),
        ]
    );
    // A file gets each right once; the generic mask is mapped within FILE_ALL_ACCESS.
    assert_eq!(
        dacl_of(&inherit(&parent, ObjectKind::File).unwrap()),
        [
            (inh, FILE_ALL_ACCESS, "S-1-5-18".into()),
            (inh, 0x0012_00a9, "S-1-5-32-545".into()),
            (inh, FILE_ALL_ACCESS, "S-1-5-32-544".into()),
        ]
    );
}

/// reseal-wim's parent: owner Administrators, group SYSTEM, auto-inherited (it was not, and
/// its test expected INHERITED_ACE flags, which Windows gives only under an auto-inherited
/// parent).
fn wim_parent() -> Vec<u8> {
    let dacl = vec![
        ace(
            0,
            OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
            FILE_ALL_ACCESS,
            local_system(),
        ),
        ace(
            0,
            CONTAINER_INHERIT_ACE,
            0x0012_00a9,
            builtin_administrators(),
        ),
        ace(
            0,
            OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE | INHERIT_ONLY_ACE,
            GENERIC_ALL,
            creator_owner(),
        ),
        ace(
            ACCESS_DENIED_ACE_TYPE,
            0,
            0x0001_0000,
            builtin_administrators(),
        ),
    ];
    SecurityDescriptor::new(
        SE_DACL_AUTO_INHERITED,
        Some(builtin_administrators()),
        Some(local_system()),
        None,
        Some(Acl::new(dacl)),
    )
    .to_bytes()
    .unwrap()
}

// From reseal-wim.
#[test]
fn a_file_gets_the_object_inheritable_entries() {
    let child = parsed(&inherit(&wim_parent(), ObjectKind::File).unwrap());
    assert_eq!(child.owner, Some(builtin_administrators()));
    assert_eq!(child.group, Some(local_system()));
    // SYSTEM full control, and CREATOR OWNER's generic all given to the owner (Admins).
    assert_eq!(
        child.dacl.unwrap().aces,
        [
            ace(0, INHERITED_ACE, FILE_ALL_ACCESS, local_system()),
            ace(0, INHERITED_ACE, FILE_ALL_ACCESS, builtin_administrators()),
        ]
    );
}

// From reseal-wim.
#[test]
fn a_directory_gets_container_entries_and_passes_object_ones_on() {
    let child = parsed(&inherit(&wim_parent(), ObjectKind::Directory).unwrap());
    let aces = child.dacl.unwrap().aces;
    let flags: Vec<u8> = aces.iter().map(|a| a.flags).collect();
    assert_eq!(
        flags,
        [
            INHERITED_ACE | OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
            INHERITED_ACE | CONTAINER_INHERIT_ACE,
            INHERITED_ACE,
            INHERITED_ACE | INHERIT_ONLY_ACE | OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
        ]
    );
    // The explicit deny entry is not inherited.
    assert!(aces.iter().all(|a| a.ace_type == ACCESS_ALLOWED_ACE_TYPE));
}

#[test]
fn no_propagate_stops_after_one_level_and_object_only_aces_skip_directories() {
    let dacl = vec![
        ace(
            0,
            OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE | NO_PROPAGATE_INHERIT_ACE,
            GENERIC_READ,
            users(),
        ),
        ace(
            0,
            OBJECT_INHERIT_ACE | NO_PROPAGATE_INHERIT_ACE,
            GENERIC_ALL,
            everyone(),
        ),
    ];
    let parent = parent(0, Some(dacl));
    // The directory gets the first as an effective ACE only; the second not at all.
    assert_eq!(
        dacl_of(&inherit(&parent, ObjectKind::Directory).unwrap()),
        [(0, FILE_GENERIC_READ, "S-1-5-32-545".into())]
    );
    // A file gets both.
    assert_eq!(
        dacl_of(&inherit(&parent, ObjectKind::File).unwrap()),
        [
            (0, FILE_GENERIC_READ, "S-1-5-32-545".into()),
            (0, FILE_ALL_ACCESS, "S-1-1-0".into()),
        ]
    );
}

#[test]
fn sacl_audit_flags_and_mandatory_labels_are_inherited() {
    let label = Sid::parse("S-1-16-4096").unwrap();
    let sacl = Acl::new(vec![
        ace(
            SYSTEM_AUDIT_ACE_TYPE,
            OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE | FAILED_ACCESS_ACE_FLAG,
            GENERIC_WRITE,
            everyone(),
        ),
        // No-write-up, low integrity, for files and subdirectories.
        ace(
            SYSTEM_MANDATORY_LABEL_ACE_TYPE,
            OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
            0x1,
            label.clone(),
        ),
    ]);
    let parent = SecurityDescriptor::new(
        SE_SACL_AUTO_INHERITED,
        Some(local_system()),
        Some(local_system()),
        Some(sacl),
        Some(Acl::new(vec![ace(
            0,
            OBJECT_INHERIT_ACE,
            FILE_ALL_ACCESS,
            users(),
        )])),
    )
    .to_bytes()
    .unwrap();
    let file = parsed(&inherit(&parent, ObjectKind::File).unwrap());
    assert_eq!(
        file.control,
        SE_SELF_RELATIVE | SE_DACL_PRESENT | SE_SACL_PRESENT | SE_SACL_AUTO_INHERITED
    );
    assert_eq!(
        file.sacl.unwrap().aces,
        [
            ace(
                SYSTEM_AUDIT_ACE_TYPE,
                INHERITED_ACE | FAILED_ACCESS_ACE_FLAG,
                FILE_GENERIC_WRITE,
                everyone()
            ),
            ace(
                SYSTEM_MANDATORY_LABEL_ACE_TYPE,
                INHERITED_ACE,
                0x1,
                label.clone()
            ),
        ]
    );
    // A directory splits the generic audit ACE; the label needs no split.
    let directory = parsed(&inherit(&parent, ObjectKind::Directory).unwrap());
    let flags: Vec<u8> = directory
        .sacl
        .unwrap()
        .aces
        .iter()
        .map(|a| a.flags)
        .collect();
    let oici = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE;
    assert_eq!(
        flags,
        [
            INHERITED_ACE | FAILED_ACCESS_ACE_FLAG,
            INHERITED_ACE | FAILED_ACCESS_ACE_FLAG | oici | INHERIT_ONLY_ACE,
            INHERITED_ACE | oici,
        ]
    );
    // Nothing inheritable in the SACL: no SACL, but the auto-inherited bit still follows
    // the parent's (as in the real Windows 10 SYSTEM hive: keys under a parent with an
    // empty auto-inherited SACL have control 0x8c04).
    let mut bare = parsed(&parent);
    bare.sacl = Some(Acl::new(vec![]));
    let child = parsed(&inherit(&bare.to_bytes().unwrap(), ObjectKind::File).unwrap());
    assert_eq!(child.sacl, None);
    assert_eq!(
        child.control & (SE_SACL_PRESENT | SE_SACL_AUTO_INHERITED),
        SE_SACL_AUTO_INHERITED
    );
}

#[test]
fn callback_aces_keep_their_condition_and_object_aces_their_guids() {
    let condition = b"artx\x00\x00\x00\x00".to_vec();
    let guid = [7u8; 16];
    let dacl = vec![
        Ace {
            ace_type: ACCESS_ALLOWED_CALLBACK_ACE_TYPE,
            flags: OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
            body: AceBody::Sid {
                mask: GENERIC_READ,
                sid: creator_owner(),
                data: condition.clone(),
            },
        },
        Ace {
            ace_type: ACCESS_ALLOWED_OBJECT_ACE_TYPE,
            flags: OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
            body: AceBody::Object {
                mask: GENERIC_ALL,
                object_flags: ACE_OBJECT_TYPE_PRESENT,
                object_type: Some(guid),
                inherited_object_type: None,
                sid: users(),
                data: Vec::new(),
            },
        },
        // For another class of object: carried on by directories, never applied.
        Ace {
            ace_type: ACCESS_DENIED_OBJECT_ACE_TYPE,
            flags: CONTAINER_INHERIT_ACE,
            body: AceBody::Object {
                mask: FILE_ALL_ACCESS,
                object_flags: ACE_INHERITED_OBJECT_TYPE_PRESENT,
                object_type: None,
                inherited_object_type: Some(guid),
                sid: everyone(),
                data: Vec::new(),
            },
        },
    ];
    let parent = parent(0, Some(dacl));
    let file = parsed(&inherit(&parent, ObjectKind::File).unwrap());
    let aces = file.dacl.unwrap().aces;
    assert_eq!(aces.len(), 2);
    assert_eq!(
        aces[0].body,
        AceBody::Sid {
            mask: FILE_GENERIC_READ,
            sid: builtin_administrators(),
            data: condition,
        }
    );
    assert!(matches!(
        &aces[1].body,
        AceBody::Object { mask: FILE_ALL_ACCESS, object_type: Some(g), .. } if *g == guid
    ));
    let directory = parsed(&inherit(&parent, ObjectKind::Directory).unwrap());
    let last = directory.dacl.unwrap().aces.pop().unwrap();
    assert_eq!(last.ace_type, ACCESS_DENIED_OBJECT_ACE_TYPE);
    assert_eq!(last.flags, CONTAINER_INHERIT_ACE | INHERIT_ONLY_ACE);
}

#[test]
fn a_new_descriptor_is_laid_out_sacl_dacl_owner_group() {
    let bytes = inherit(&volume_root(), ObjectKind::File).unwrap();
    let offset = |at: usize| le::u32_at(&bytes, at).unwrap() as usize;
    assert_eq!(offset(12), 0);
    assert_eq!(offset(16), HEADER_LEN);
    let dacl_len = usize::from(le::u16_at(&bytes, HEADER_LEN + 2).unwrap());
    assert_eq!(offset(4), HEADER_LEN + dacl_len);
    assert_eq!(offset(8), offset(4) + 16);
    assert_eq!(bytes.len(), offset(8) + 12);
}

#[test]
fn parsing_then_writing_gives_the_same_bytes_in_any_layout() {
    // Owner, group, DACL with room after its last ACE: the layout of a WIM's descriptor.
    let mut bytes = vec![
        1, 0, 0x04, 0x80, 20, 0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0, 48, 0, 0, 0,
    ];
    bytes.extend(builtin_administrators().to_bytes());
    bytes.extend(local_system().to_bytes());
    let mut acl = Vec::new();
    Acl::new(vec![ace(0, 0x13, FILE_ALL_ACCESS, users())])
        .write(AclKind::Dacl, &mut acl)
        .unwrap();
    acl.extend([0xaa; 8]);
    let size = acl.len() as u16;
    acl[2..4].copy_from_slice(&size.to_le_bytes());
    bytes.extend(&acl);
    let descriptor = parsed(&bytes);
    assert_eq!(descriptor.dacl.as_ref().unwrap().slack, [0xaa; 8]);
    assert_eq!(descriptor.to_bytes().unwrap(), bytes);
    // Equality does not depend on the layout.
    let relaid = SecurityDescriptor::new(
        descriptor.control,
        descriptor.owner.clone(),
        descriptor.group.clone(),
        None,
        descriptor.dacl.clone(),
    );
    assert_ne!(relaid.to_bytes().unwrap(), bytes);
    assert_eq!(relaid, descriptor);
}

// From reseal-wim, and reseal-ntfs's malformed_descriptors_are_errors_not_panics.
#[test]
fn malformed_descriptors_are_errors_that_say_where() {
    assert!(inherit(&[1, 0, 4, 0x80], ObjectKind::File).is_err());
    let first_ace = Part::Ace {
        acl: AclKind::Dacl,
        index: 0,
    };
    let mut broken = wim_parent();
    broken[HEADER_LEN + ACL_HEADER_LEN + 2] = 202; // the first ACE's size
    assert_eq!(
        inherit(&broken, ObjectKind::File),
        Err(SecurityDescriptorError::Size {
            part: first_ace,
            offset: HEADER_LEN + ACL_HEADER_LEN,
            expected: "a multiple of 4, at least 4".into(),
            found: 202,
        })
    );
    broken[HEADER_LEN + ACL_HEADER_LEN + 2] = 200;
    let acl_size = usize::from(le::u16_at(&broken, HEADER_LEN + 2).unwrap());
    assert_eq!(
        inherit(&broken, ObjectKind::File),
        Err(SecurityDescriptorError::Truncated {
            part: first_ace,
            offset: HEADER_LEN + ACL_HEADER_LEN,
            expected: 200,
            found: acl_size - ACL_HEADER_LEN,
        })
    );
    let good = volume_root();
    for len in 0..good.len() {
        assert!(inherit(&good[..len], ObjectKind::File).is_err(), "{len}");
        let _ = SecurityDescriptor::parse(&good[..len]);
    }
    let mut bad_offset = good.clone();
    bad_offset[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        inherit(&bad_offset, ObjectKind::File),
        Err(SecurityDescriptorError::Truncated {
            part: Part::Dacl,
            offset,
            expected: 8,
            found: 0,
        }) if offset == u32::MAX as usize
    ));
    assert_eq!(
        inherit(&[0xff; 40], ObjectKind::File),
        Err(SecurityDescriptorError::Revision {
            part: Part::Header,
            offset: 0,
            expected: "1",
            found: 0xff,
        })
    );
    let mut absolute = good.clone();
    absolute[3] = 0;
    assert_eq!(
        SecurityDescriptor::parse(&absolute),
        Err(SecurityDescriptorError::NotSelfRelative { found: 0x0004 })
    );
    let mut bad_sid = good;
    let owner = le::u32_at(&bad_sid, 4).unwrap() as usize;
    bad_sid[owner + 1] = 16;
    let error = SecurityDescriptor::parse(&bad_sid).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("owner SID at offset {owner}")),
        "{error}"
    );
}

#[test]
fn generic_rights_map_to_file_rights() {
    let file = GenericMapping::FILE;
    assert_eq!(file.map(GENERIC_ALL), FILE_ALL_ACCESS);
    assert_eq!(file.map(GENERIC_READ | GENERIC_EXECUTE), 0x0012_00a9);
    assert_eq!(
        file.map(GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | 0x1_0000),
        0x0013_01bf
    );
    assert_eq!(file.map(0x0012_0089), 0x0012_0089);
}
