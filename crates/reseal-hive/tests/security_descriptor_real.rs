//! Security descriptors against real Windows data, the registry hives in the shared fixtures:
//! every descriptor of their `sk` cells parses and rebuilds byte for byte, and the keys Windows
//! created get from inheritance what Windows gave them.
//!
//! A registry key inherits as a directory does (it is a container), with the key generic
//! mapping. Keys are created by many processes, so the owner and group of the computation are
//! the child's own; what is checked is everything that follows from the parent.

use std::collections::BTreeSet;

use reseal_hive::{Hive, Key};
use reseal_nt::security_descriptor::{
    Acl, Creator, GenericMapping, ObjectKind, SecurityDescriptor, INHERITED_ACE,
    SE_DACL_AUTO_INHERITED,
};

/// Hives written by Windows, with keys created under auto-inherited parents.
const HIVES: &[&str] = &[
    "regipy/SYSTEM",
    "regipy/SYSTEM_B",
    "regipy/UsrClass.dat",
    "regipy/ntuser_software_partial",
    "regipy/transactions_NTUSER.DAT",
    "regipy/NTUSER.DAT",
    "regipy/SAM",
    "regipy/SECURITY",
    "regipy/BCD",
    "notatin/NTUSER.DAT",
    "notatin/win7_ntuser.dat",
    "dfwinreg/NTUSER.DAT",
    "EricZimmerman/SAM",
    "EricZimmerman/SECURITY",
    "EricZimmerman/NTUSER1.DAT",
    "aiowinreg/win2022_64/sam.reg",
    "aiowinreg/win2022_64/security.reg",
    "yarp/System_Delta",
];

/// The registry's generic mapping. `GENERIC_EXECUTE` gives `KEY_EXECUTE | KEY_CREATE_LINK`
/// (0x20039) in the Windows 7 SYSTEM hive and `KEY_EXECUTE` (0x20019) in the Windows 10 ones,
/// as the keys under inherit-only `GENERIC_READ | GENERIC_EXECUTE` entries show.
fn key_mapping(hive: &str) -> GenericMapping {
    GenericMapping {
        read: 0x0002_0019,
        write: 0x0002_0006,
        execute: if hive == "regipy/SYSTEM" {
            0x0002_0039
        } else {
            0x0002_0019
        },
        all: 0x000f_003f,
    }
}

fn open(name: &str) -> Option<Hive> {
    let path = reseal_testutil::real_fixture(&format!("hives/{name}"))?;
    Some(
        Hive::open_file(&path)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .0,
    )
}

fn descriptor(key: &Key) -> (Vec<u8>, SecurityDescriptor) {
    let bytes = key.security_descriptor().unwrap().into_owned();
    let parsed = SecurityDescriptor::parse(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", key.name().unwrap()));
    (bytes, parsed)
}

/// What inheritance gives a child of `parent` created by the child's owner and group.
fn inherited(
    hive: &str,
    parent: &SecurityDescriptor,
    child: &SecurityDescriptor,
) -> SecurityDescriptor {
    let creator = Creator {
        owner: child.owner.clone().expect("keys have an owner"),
        group: child.group.clone().expect("keys have a group"),
        default_dacl: Acl::new(Vec::new()),
    };
    parent.inherit(ObjectKind::Directory, &creator, &key_mapping(hive))
}

/// Calls `visit(path, parent key, child key)` for every key below the root.
fn walk<'h>(hive: &'h Hive, mut visit: impl FnMut(&str, &Key<'h>, &Key<'h>)) {
    let mut stack = vec![(hive.root().unwrap(), String::new())];
    while let Some((key, path)) = stack.pop() {
        for child in key.subkeys().unwrap() {
            let child_path = format!("{path}\\{}", child.name().unwrap());
            visit(&child_path, &key, &child);
            stack.push((child, child_path));
        }
    }
}

#[test]
fn real_hive_descriptors_parse_and_rebuild_byte_for_byte() {
    let mut checked = 0;
    for name in HIVES {
        let Some(hive) = open(name) else { return };
        let mut seen = BTreeSet::new();
        let root = hive.root().unwrap();
        let mut visit = |key: &Key| {
            let (bytes, parsed) = descriptor(key);
            if seen.insert(bytes.clone()) {
                assert_eq!(parsed.to_bytes().unwrap(), bytes, "{name}: {parsed:?}");
            }
        };
        visit(&root);
        walk(&hive, |_, _, child| visit(child));
        checked += seen.len();
    }
    eprintln!("{checked} distinct descriptors");
    // Every distinct descriptor of 18 hives: more than a thousand.
    assert!(checked > 1000, "{checked} descriptors");
}

/// Keys Windows created, each for one rule, checked byte for byte against what it stored.
#[test]
fn inheriting_a_real_key_gives_what_windows_gave_its_child() {
    let cases = [
        // Windows 7. The root's CREATOR OWNER entry would give the owner (Administrators) full
        // control, which Administrators' own entry already gives: Windows leaves it out.
        ("regipy/SYSTEM", r"ControlSet001"),
        // The same for an owner SYSTEM.
        ("regipy/SYSTEM", r"MountedDevices"),
        // Windows 10: the parent's SACL is empty but auto-inherited, so the child has no SACL
        // and the SACL auto-inherited bit (control 0x8c04); CREATOR OWNER's effective entry for
        // SYSTEM is left out since SYSTEM's entry already grants it and passes it on.
        ("regipy/SYSTEM_B", r"MountedDevices"),
        // Owner NetworkService: CREATOR OWNER becomes it. Generic-all inherit-only entries with
        // more bits than the key's rights map to exactly KEY_ALL_ACCESS, and the parent's own
        // inherited full-control entries for SYSTEM and Administrators are left out because
        // earlier entries already grant and pass on as much.
        ("regipy/SYSTEM_B", r"Maps\BackgroundTransferService"),
        // Entries whose effective part an earlier entry already gives become inherit-only.
        (
            "regipy/SYSTEM_B",
            r"ControlSet001\Services\MEIx64\Parameters\Wdf",
        ),
    ];
    for (name, path) in cases {
        let Some(hive) = open(name) else { return };
        let child = hive
            .key(path)
            .unwrap()
            .unwrap_or_else(|| panic!("{name} {path}"));
        let parent_path = path.rsplit_once('\\').map_or("", |(parent, _)| parent);
        let parent = hive.key(parent_path).unwrap().unwrap();
        let (_, parent) = descriptor(&parent);
        let (bytes, child) = descriptor(&child);
        assert!(child
            .dacl
            .as_ref()
            .unwrap()
            .aces
            .iter()
            .all(|ace| ace.flags & INHERITED_ACE != 0));
        let computed = inherited(name, &parent, &child);
        assert_eq!(computed, child, "{name} {path}");
        assert_eq!(computed.to_bytes().unwrap(), bytes, "{name} {path}");
    }
}

/// All the keys of the real hives whose entries are all inherited from an auto-inherited
/// parent: their DACL is what inheritance computes. The few that differ hold entries their
/// parent no longer has (it was changed after they were created, without propagation).
#[test]
fn nearly_every_inherited_key_has_the_dacl_inheritance_computes() {
    let (mut keys, mut same_dacl, mut same_bytes) = (0usize, 0usize, 0usize);
    for name in HIVES {
        let Some(hive) = open(name) else { return };
        walk(&hive, |_, parent, child| {
            let (_, parent) = descriptor(parent);
            let (bytes, child) = descriptor(child);
            let all_inherited = child.dacl.as_ref().is_some_and(|acl| {
                !acl.aces.is_empty() && acl.aces.iter().all(|ace| ace.flags & INHERITED_ACE != 0)
            });
            if parent.control & SE_DACL_AUTO_INHERITED == 0 || !all_inherited {
                return;
            }
            keys += 1;
            let computed = inherited(name, &parent, &child);
            same_dacl += usize::from(computed.dacl == child.dacl);
            same_bytes += usize::from(computed.to_bytes().unwrap() == bytes);
        });
    }
    eprintln!("{keys} keys, {same_dacl} with the computed DACL, {same_bytes} byte for byte");
    assert!(keys > 25_000, "{keys}");
    assert!(same_dacl * 1000 >= keys * 997, "{same_dacl} of {keys}");
    // The rest differ in their SACL or control only: created with an explicit (empty) SACL,
    // or copied rather than created (ControlSet002).
    assert!(same_bytes * 10 >= keys * 7, "{same_bytes} of {keys}");
}
