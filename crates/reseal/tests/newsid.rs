//! `newsid` on real SAM/SECURITY pairs and the sample image: python3-hivex finds the old
//! domain SID nowhere in the result (key names, value names, value data), everything else is
//! as it was, the local accounts keep their RIDs under the new SID, a second run with the same
//! SID plans nothing, and the refusals write nothing.

mod common;

use std::collections::BTreeMap;

use common::{edit_hive, Tree};
use reseal::newsid::{newsid, plan_newsid, NewSidOptions};
use reseal::{DirectoryTarget, ErrorKind, Sid, ValueType};
use reseal_testutil::{hivex_tree, HivexKey};

const SAM: &str = "Windows/System32/config/SAM";
const SECURITY: &str = "Windows/System32/config/SECURITY";
const NEW_SID: &str = "S-1-5-21-1111111111-2222222222-3333333333";

/// Server 2008 to 2022 pairs, and one more machine's, each with its account-domain SID.
const REAL_PAIRS: [(&str, &str, &str); 6] = [
    (
        "hives/aiowinreg/win2008_32/sam.reg",
        "hives/aiowinreg/win2008_32/security.reg",
        "S-1-5-21-589621100-4099512711-419229089",
    ),
    (
        "hives/aiowinreg/win2008r2_64/sam.reg",
        "hives/aiowinreg/win2008r2_64/security.reg",
        "S-1-5-21-1245377938-162839305-2294755303",
    ),
    (
        "hives/aiowinreg/win2012_64/sam.reg",
        "hives/aiowinreg/win2012_64/security.reg",
        "S-1-5-21-2633610193-2350519190-1461333034",
    ),
    (
        "hives/aiowinreg/win2016_64/sam.reg",
        "hives/aiowinreg/win2016_64/security.reg",
        "S-1-5-21-161349065-230161307-1850086198",
    ),
    (
        "hives/aiowinreg/win2022_64/sam.reg",
        "hives/aiowinreg/win2022_64/security.reg",
        "S-1-5-21-4042553000-2217363381-1479057140",
    ),
    (
        "hives/EricZimmerman/SAM",
        "hives/EricZimmerman/SECURITY",
        "S-1-5-21-3064465268-1549819264-574340205",
    ),
];

fn options(sid: &str) -> NewSidOptions {
    NewSidOptions {
        sid: Some(Sid::parse_machine_sid(sid).unwrap()),
        ..Default::default()
    }
}

/// A tree with a real SAM/SECURITY pair, or `None` when the fixtures are missing (outside CI).
fn real_pair_tree(sam: &str, security: &str) -> Option<Tree> {
    let tree = Tree::empty();
    tree.copy_fixture(sam, SAM)?;
    tree.copy_fixture(security, SECURITY)?;
    Some(tree)
}

/// The pair's machine made a workgroup machine: these servers were all joined to a domain
/// (their `PolPrDmS` names it), which newsid refuses; an empty `PolPrDmS` is what leaving the
/// domain leaves.
fn leave_domain(tree: &Tree) {
    edit_hive(tree, SECURITY, |hive| {
        hive.set_value(r"Policy\PolPrDmS", "", ValueType::NONE, &[])
            .unwrap();
    });
}

/// The binary sub-authorities of a domain SID (`A-B-C`), the part newsid replaces.
fn domain_bytes(sid: &str) -> Vec<u8> {
    Sid::parse_machine_sid(sid).unwrap().to_bytes()[12..].to_vec()
}

/// `haystack` with every occurrence of `from` replaced by `to` (same length).
fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = haystack.to_vec();
    let mut at = 0;
    while at + from.len() <= out.len() {
        if out[at..at + from.len()] == *from {
            out[at..at + from.len()].copy_from_slice(to);
            at += from.len();
        } else {
            at += 1;
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// The tree as hivex reads it, with the old SID swapped for the new one the way the test
/// expects newsid to, in names (text) and data (binary and UTF-16 text); children and values
/// sorted, since a renamed key may move in its parent's list.
fn swapped(key: &HivexKey, old: &str, new: &str) -> HivexKey {
    let (old_bytes, new_bytes) = (domain_bytes(old), domain_bytes(new));
    let mut values: Vec<_> = key
        .values
        .iter()
        .map(|v| {
            let data = replace_all(&v.data, &old_bytes, &new_bytes);
            let data = replace_all(&data, &utf16(old), &utf16(new));
            reseal_testutil::HivexValue {
                name: v.name.replace(old, new),
                value_type: v.value_type,
                data,
            }
        })
        .collect();
    values.sort_by(|a, b| a.name.cmp(&b.name));
    let mut children: Vec<_> = key.children.iter().map(|c| swapped(c, old, new)).collect();
    children.sort_by(|a, b| a.name.cmp(&b.name));
    HivexKey {
        name: if key.name.contains(old) {
            key.name.replace(old, new)
        } else {
            key.name.clone()
        },
        values,
        children,
    }
}

/// Every place the old SID still appears in `key`: key names, value names, binary or UTF-16
/// data.
fn old_sid_places(key: &HivexKey, old: &str, path: &str, found: &mut Vec<String>) {
    let here = format!("{path}\\{}", key.name);
    if key.name.contains(old) {
        found.push(format!("key name {here}"));
    }
    for value in &key.values {
        if value.name.contains(old) {
            found.push(format!("value name {here} {:?}", value.name));
        }
        if contains(&value.data, &domain_bytes(old)) || contains(&value.data, &utf16(old)) {
            found.push(format!("value data {here} {:?}", value.name));
        }
    }
    for child in &key.children {
        old_sid_places(child, old, &here, found);
    }
}

fn find_key<'a>(root: &'a HivexKey, path: &str) -> &'a HivexKey {
    path.split('\\').fold(root, |key, name| {
        key.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .unwrap_or_else(|| panic!("no key {name} in {path}"))
    })
}

#[test]
fn real_sam_and_security_pairs_get_the_new_sid_and_nothing_else_changes() {
    for (sam, security, old) in REAL_PAIRS {
        let Some(tree) = real_pair_tree(sam, security) else {
            return;
        };
        leave_domain(&tree);
        let before_sam = hivex_tree(&tree.path(SAM));
        let before_security = hivex_tree(&tree.path(SECURITY));

        let mut target = DirectoryTarget::open(tree.root()).unwrap();
        let (plan, applied) = newsid(&mut target, &options(NEW_SID)).unwrap();
        assert!(applied.is_some(), "{sam}");
        let (record, swaps) = plan.changes.split_last().unwrap();
        assert!(swaps.iter().all(|c| c.provider == "newsid"), "{sam}");
        assert_eq!(record.provider, reseal::run_record::PROVIDER, "{sam}");

        for (path, before) in [(SAM, &before_sam), (SECURITY, &before_security)] {
            // hivex reads the result; the old SID is nowhere, and the rest is unchanged.
            let after = hivex_tree(&tree.path(path));
            let mut places = Vec::new();
            old_sid_places(&after, old, "", &mut places);
            assert!(places.is_empty(), "{sam} {path}: {places:?}");
            assert_eq!(
                swapped(&after, old, NEW_SID),
                swapped(before, old, NEW_SID),
                "{sam} {path}"
            );
            assert_ne!(after, *before, "{sam} {path}: nothing changed");
        }

        // The domain SID in both hives and the local accounts: the same RIDs under the new SID.
        let new_sid = Sid::parse_machine_sid(NEW_SID).unwrap().to_bytes();
        let security_after = hivex_tree(&tree.path(SECURITY));
        let policy = find_key(&security_after, r"Policy\PolAcDmS");
        assert_eq!(policy.values[0].data, new_sid, "{sam}");
        let sam_after = hivex_tree(&tree.path(SAM));
        let account = find_key(&sam_after, r"SAM\Domains\Account");
        let v = &account.values.iter().find(|v| v.name == "V").unwrap().data;
        assert_eq!(&v[v.len() - 24..], new_sid.as_slice(), "{sam}");
        let rids = |root: &HivexKey| -> Vec<String> {
            let mut rids: Vec<String> = find_key(root, r"SAM\Domains\Account\Users")
                .children
                .iter()
                .map(|c| c.name.clone())
                .collect();
            rids.sort();
            rids
        };
        assert_eq!(rids(&sam_after), rids(&before_sam), "{sam}");
        let members = find_key(&sam_after, r"SAM\Domains\Builtin\Aliases\Members");
        assert!(
            members.children.iter().any(|c| c.name == NEW_SID),
            "{sam}: the alias members of the local domain are under the new SID"
        );

        // A second run with the same SID plans nothing and writes nothing.
        let snapshot = tree.snapshot();
        let mut target = DirectoryTarget::open(tree.root()).unwrap();
        let (again, _) = newsid(&mut target, &options(NEW_SID)).unwrap();
        assert!(again.is_empty(), "{sam}: {again}");
        assert_eq!(tree.snapshot(), snapshot, "{sam}");
    }
}

#[test]
fn a_domain_member_is_refused_and_nothing_is_written() {
    let (sam, security, _) = REAL_PAIRS[4];
    let Some(tree) = real_pair_tree(sam, security) else {
        return;
    };
    let before = tree.snapshot();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let error = newsid(&mut target, &options(NEW_SID)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Refused, "{error}");
    assert!(error.message.contains("PolPrDmS"), "{error}");
    assert_eq!(tree.snapshot(), before);
}

#[test]
fn sam_and_security_of_different_machines_are_refused() {
    // regipy's SAM and SECURITY samples come from two different machines.
    let Some(tree) = real_pair_tree("hives/regipy/SAM", "hives/regipy/SECURITY") else {
        return;
    };
    let before = tree.snapshot();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let error = plan_newsid(&mut target, &options(NEW_SID)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Refused, "{error}");
    assert!(error.message.contains("do not belong together"), "{error}");
    // regipy's SECURITY is dirty and comes without its logs: that is said at the same time.
    assert!(
        error
            .message
            .contains(r"dirty-hive: Windows\System32\config\SECURITY"),
        "{error}"
    );
    assert_eq!(tree.snapshot(), before);
}

#[test]
fn the_sample_image_gets_the_new_sid_in_profile_list_and_logon_ui() {
    let Some(tree) = common::sample_tree() else {
        return;
    };
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let old = plan_newsid(&mut target, &options(NEW_SID))
        .unwrap()
        .notes
        .iter()
        .find_map(|n| {
            n.message
                .strip_prefix("the machine SID changes from ")
                .map(|rest| rest.split(' ').next().unwrap().to_string())
        })
        .unwrap();
    newsid(&mut target, &options(NEW_SID)).unwrap();
    for hive in ["SOFTWARE", "SYSTEM", "SAM", "SECURITY", "DEFAULT"] {
        let after = hivex_tree(&tree.path(&format!("Windows/System32/config/{hive}")));
        let mut places = Vec::new();
        old_sid_places(&after, &old, "", &mut places);
        assert!(places.is_empty(), "{hive}: {places:?}");
    }
    let software = hivex_tree(&tree.path("Windows/System32/config/SOFTWARE"));
    let profiles = find_key(
        &software,
        r"Microsoft\Windows NT\CurrentVersion\ProfileList",
    );
    assert!(
        profiles
            .children
            .iter()
            .any(|c| c.name == format!("{NEW_SID}-500")),
        "{:?}",
        profiles
            .children
            .iter()
            .map(|c| &c.name)
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_user_with_an_efs_key_is_refused() {
    let Some(tree) = common::sample_tree() else {
        return;
    };
    edit_hive(&tree, "Users/Administrator/NTUSER.DAT", |hive| {
        hive.create_key(reseal::newsid::EFS_CURRENT_KEYS).unwrap();
        let hash = [0xAB; 20];
        hive.set_value(
            reseal::newsid::EFS_CURRENT_KEYS,
            "CertificateHash",
            ValueType::BINARY,
            &hash,
        )
        .unwrap();
    });
    let before = tree.snapshot();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let error = newsid(&mut target, &options(NEW_SID)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Refused, "{error}");
    assert!(error.message.contains("EFS"), "{error}");
    assert_eq!(tree.snapshot(), before);
}

/// The security descriptor of every allocated `sk` cell of a hive file, by cell offset, read
/// straight from the bins (hivex, our oracle for the rest, does not read `sk` cells): bins of
/// `hbin` + size at 8, cells of a 4-byte size (negative when allocated), `sk` data with the
/// descriptor's size at 16 and the descriptor at 20.
fn raw_security_descriptors(file: &[u8]) -> BTreeMap<usize, Vec<u8>> {
    let u32_at = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().unwrap());
    let mut found = BTreeMap::new();
    let mut bin = 4096;
    while bin + 32 <= file.len() && &file[bin..bin + 4] == b"hbin" {
        let bin_end = bin + u32_at(bin + 8) as usize;
        let mut cell = bin + 32;
        while cell + 4 <= bin_end {
            let size = u32_at(cell) as i32;
            if size == 0 {
                break;
            }
            if size < 0 && &file[cell + 4..cell + 6] == b"sk" {
                let length = u32_at(cell + 4 + 16) as usize;
                found.insert(cell, file[cell + 24..cell + 24 + length].to_vec());
            }
            cell += size.unsigned_abs() as usize;
        }
        bin = bin_end;
    }
    found
}

#[test]
fn key_security_records_naming_local_accounts_get_the_new_sid() {
    // EricZimmerman's SAM and SECURITY, with a real SYSTEM (Windows NT's, from aiowinreg) whose
    // key descriptors grant accounts of its domain; that domain is made this machine's in those
    // descriptors first, so they name local accounts as a workgroup machine's would.
    let (sam, security, old) = REAL_PAIRS[5];
    let Some(tree) = real_pair_tree(sam, security) else {
        return;
    };
    const SYSTEM: &str = "Windows/System32/config/SYSTEM";
    tree.copy_fixture("hives/aiowinreg/nt/system.reg", SYSTEM)
        .unwrap();
    leave_domain(&tree);
    let nt_domain = Sid::parse_machine_sid("S-1-5-21-2127521184-1604012920-1887927527").unwrap();
    let to_local =
        reseal_nt::domain_swap::DomainSwap::new(&nt_domain, &Sid::parse_machine_sid(old).unwrap())
            .unwrap();
    edit_hive(&tree, SYSTEM, |hive| {
        let records: Vec<(u32, Vec<u8>)> = hive
            .security_records()
            .unwrap()
            .iter()
            .filter_map(|r| {
                Some((
                    r.offset,
                    to_local.swap_in_descriptor(r.descriptor).unwrap()?,
                ))
            })
            .collect();
        for (offset, descriptor) in records {
            hive.replace_security_descriptor(offset, &descriptor)
                .unwrap();
        }
    });
    let before_file = std::fs::read(tree.path(SYSTEM)).unwrap();
    let before = raw_security_descriptors(&before_file);
    let naming_old: Vec<&Vec<u8>> = before
        .values()
        .filter(|d| contains(d, &domain_bytes(old)))
        .collect();
    assert!(naming_old.len() > 10, "{} records", naming_old.len());
    let before_tree = hivex_tree(&tree.path(SYSTEM));

    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let (plan, _) = newsid(&mut target, &options(NEW_SID)).unwrap();
    let swapped_records = plan
        .changes
        .iter()
        .find_map(|c| match &c.action {
            reseal::Action::SwapKeySecurity {
                hive, descriptors, ..
            } if hive.ends_with("SYSTEM") => Some(*descriptors),
            _ => None,
        })
        .expect("a key security change for SYSTEM");
    assert_eq!(swapped_records, naming_old.len());
    assert!(
        plan.to_string().contains("replace SID in key security"),
        "{plan}"
    );

    // Every record is the one before with the SID replaced, where it was; none names the old
    // domain; hivex reads the whole hive as before.
    let after = raw_security_descriptors(&std::fs::read(tree.path(SYSTEM)).unwrap());
    let expected: BTreeMap<usize, Vec<u8>> = before
        .iter()
        .map(|(at, d)| {
            (
                *at,
                replace_all(d, &domain_bytes(old), &domain_bytes(NEW_SID)),
            )
        })
        .collect();
    assert_eq!(after, expected);
    assert!(after.values().all(|d| !contains(d, &domain_bytes(old))));
    assert_eq!(hivex_tree(&tree.path(SYSTEM)), before_tree);
    let sam_records = raw_security_descriptors(&std::fs::read(tree.path(SAM)).unwrap());
    assert!(sam_records
        .values()
        .all(|d| !contains(d, &domain_bytes(old))));

    // A second run plans nothing.
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    assert!(plan_newsid(&mut target, &options(NEW_SID))
        .unwrap()
        .is_empty());
}

/// Every place the old domain SID still appears in the hive at `path`, as python3-hivex reads
/// it: key names and value names (text), value data as a binary SID, UTF-16 text or ASCII text
/// at any offset.
fn old_sid_anywhere(path: &std::path::Path, old: &str, label: &str) -> Vec<String> {
    fn walk(key: &HivexKey, old: &str, here: &str, found: &mut Vec<String>) {
        let here = format!("{here}\\{}", key.name);
        if key.name.to_ascii_uppercase().contains(old) {
            found.push(format!("key name {here}"));
        }
        for value in &key.values {
            if value.name.to_ascii_uppercase().contains(old) {
                found.push(format!("value name {here} {:?}", value.name));
            }
            let upper = value.data.to_ascii_uppercase();
            if contains(&value.data, &domain_bytes(old))
                || contains(&upper, &utf16(old))
                || contains(&upper, old.as_bytes())
            {
                found.push(format!("value data {here} {:?}", value.name));
            }
        }
        for child in &key.children {
            walk(child, old, &here, found);
        }
    }
    let mut found = Vec::new();
    walk(&hivex_tree(path), old, label, &mut found);
    found
}

/// The sample image with what real images hold beside it: an AppCompatCache-like binary value
/// in SYSTEM with the Administrator's SID written in UTF-16 and in ASCII among other bytes, and
/// the Administrator's UsrClass.dat, its root key named after the account.
fn sample_with_text_in_binary(old: &str) -> Option<Tree> {
    let tree = common::sample_tree()?;
    let account = format!("{old}-500");
    let mut cache = vec![0x34, 0x00, 0x00, 0x00, 0x10, 0x00];
    cache.extend(utf16(&format!(
        r"C:\Users\Administrator\AppData\Local\Temp\{account}\setup.exe"
    )));
    cache.extend([0x00, 0x00, 0xFE, 0xED]);
    cache.extend(format!("{account}\0").as_bytes());
    edit_hive(&tree, "Windows/System32/config/SYSTEM", |hive| {
        hive.create_key(APP_COMPAT_CACHE).unwrap();
        hive.set_value(
            APP_COMPAT_CACHE,
            "AppCompatCache",
            ValueType::BINARY,
            &cache,
        )
        .unwrap();
    });
    let mut classes = reseal_hive::Hive::new_empty(&format!("{account}_Classes"), 6);
    classes.create_key(r"Local Settings\Software").unwrap();
    tree.write(USR_CLASS, &classes.commit());
    Some(tree)
}

const APP_COMPAT_CACHE: &str = r"ControlSet001\Control\Session Manager\AppCompatCache";
const USR_CLASS: &str = "Users/Administrator/AppData/Local/Microsoft/Windows/UsrClass.dat";

/// Every hive newsid edits in the sample with its label.
const SAMPLE_HIVES: [&str; 8] = [
    "Windows/System32/config/SYSTEM",
    "Windows/System32/config/SOFTWARE",
    "Windows/System32/config/SAM",
    "Windows/System32/config/SECURITY",
    "Windows/System32/config/DEFAULT",
    "Users/Administrator/NTUSER.DAT",
    "Users/Default/NTUSER.DAT",
    USR_CLASS,
];

fn old_sid_in_sample(tree: &Tree, old: &str) -> Vec<String> {
    SAMPLE_HIVES
        .iter()
        .flat_map(|hive| old_sid_anywhere(&tree.path(hive), old, hive))
        .collect()
}

#[test]
fn no_hive_names_the_old_sid_but_the_documented_exceptions() {
    let Some(probe) = common::sample_tree() else {
        return;
    };
    let old = plan_newsid(
        &mut DirectoryTarget::open(probe.root()).unwrap(),
        &options(NEW_SID),
    )
    .unwrap()
    .notes
    .iter()
    .find_map(|n| {
        n.message
            .strip_prefix("the machine SID changes from ")
            .map(|rest| rest.split(' ').next().unwrap().to_string())
    })
    .unwrap();
    let root_name = format!(r"key name {USR_CLASS}\{old}-500_Classes");

    // A new SID whose text is as long as the old one's: nothing names the old SID any more,
    // UsrClass.dat's root key included.
    let tree = sample_with_text_in_binary(&old).unwrap();
    assert!(old_sid_in_sample(&tree, &old).len() > 3);
    let system_before = hivex_tree(&tree.path(SAMPLE_HIVES[0]));
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let (plan, _) = newsid(&mut target, &options(NEW_SID)).unwrap();
    assert_eq!(old_sid_in_sample(&tree, &old), Vec::<String>::new());
    assert_eq!(
        hivex_tree(&tree.path(USR_CLASS)).name,
        format!("{NEW_SID}-500_Classes")
    );
    assert!(
        plan.notes
            .iter()
            .all(|n| !n.message.contains("among binary data")),
        "{plan}"
    );
    // The cache changed only where the SID's text stood.
    let system_after = hivex_tree(&tree.path(SAMPLE_HIVES[0]));
    fn ascii_swapped(key: &HivexKey, old: &str, new: &str) -> HivexKey {
        HivexKey {
            name: key.name.clone(),
            values: key
                .values
                .iter()
                .map(|v| reseal_testutil::HivexValue {
                    data: replace_all(&v.data, old.as_bytes(), new.as_bytes()),
                    ..v.clone()
                })
                .collect(),
            children: key
                .children
                .iter()
                .map(|c| ascii_swapped(c, old, new))
                .collect(),
        }
    }
    let text_swapped = |key: &HivexKey| ascii_swapped(&swapped(key, &old, NEW_SID), &old, NEW_SID);
    assert_eq!(text_swapped(&system_after), text_swapped(&system_before));

    // A new SID of another length: the cache keeps the old SID, and the plan says so.
    let tree = sample_with_text_in_binary(&old).unwrap();
    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let (plan, _) = newsid(&mut target, &options("S-1-5-21-1-2-3")).unwrap();
    let cache_place = format!(
        r"value data Windows/System32/config/SYSTEM\{}\{APP_COMPAT_CACHE} {:?}",
        hivex_tree(&tree.path(SAMPLE_HIVES[0])).name,
        "AppCompatCache"
    );
    let mut left = old_sid_in_sample(&tree, &old);
    left.sort();
    let mut expected = vec![cache_place, root_name];
    expected.sort();
    assert_eq!(left, expected);
    assert!(
        plan.notes.iter().any(
            |n| n.message.contains("among binary data") && n.message.contains("AppCompatCache")
        ),
        "{plan}"
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.message.contains("the root key keeps its name")),
        "{plan}"
    );
}

#[test]
fn a_real_user_hive_gets_the_new_sid_in_its_key_security_records() {
    // dfwinreg's NTUSER.DAT as the sample Administrator's: its 52 records grant its user, an
    // account of its own machine's domain, made the sample's first (as for SYSTEM above).
    const NTUSER: &str = "Users/Administrator/NTUSER.DAT";
    let Some(tree) = common::sample_tree() else {
        return;
    };
    let old = plan_newsid(
        &mut DirectoryTarget::open(tree.root()).unwrap(),
        &options(NEW_SID),
    )
    .unwrap()
    .notes
    .iter()
    .find_map(|n| {
        n.message
            .strip_prefix("the machine SID changes from ")
            .map(|rest| rest.split(' ').next().unwrap().to_string())
    })
    .unwrap();
    tree.copy_fixture("hives/dfwinreg/NTUSER.DAT", NTUSER)
        .unwrap();
    let user_domain = Sid::parse_machine_sid("S-1-5-21-226059406-2984137831-1201299043").unwrap();
    let to_local = reseal_nt::domain_swap::DomainSwap::new(
        &user_domain,
        &Sid::parse_machine_sid(&old).unwrap(),
    )
    .unwrap();
    edit_hive(&tree, NTUSER, |hive| {
        let records: Vec<(u32, Vec<u8>)> = hive
            .security_records()
            .unwrap()
            .iter()
            .filter_map(|r| {
                Some((
                    r.offset,
                    to_local.swap_in_descriptor(r.descriptor).unwrap()?,
                ))
            })
            .collect();
        for (offset, descriptor) in records {
            hive.replace_security_descriptor(offset, &descriptor)
                .unwrap();
        }
    });
    let before = raw_security_descriptors(&std::fs::read(tree.path(NTUSER)).unwrap());
    let naming_old = before
        .values()
        .filter(|d| contains(d, &domain_bytes(&old)))
        .count();
    assert!(naming_old > 40, "{naming_old} records");
    let before_tree = hivex_tree(&tree.path(NTUSER));

    let mut target = DirectoryTarget::open(tree.root()).unwrap();
    let (plan, _) = newsid(&mut target, &options(NEW_SID)).unwrap();
    assert!(
        plan.changes.iter().any(|c| matches!(
            &c.action,
            reseal::Action::SwapKeySecurity { hive, descriptors, .. }
                if hive.ends_with("NTUSER.DAT") && *descriptors == naming_old
        )),
        "{plan}"
    );
    let after = raw_security_descriptors(&std::fs::read(tree.path(NTUSER)).unwrap());
    let expected: BTreeMap<usize, Vec<u8>> = before
        .iter()
        .map(|(at, d)| {
            (
                *at,
                replace_all(d, &domain_bytes(&old), &domain_bytes(NEW_SID)),
            )
        })
        .collect();
    assert_eq!(after, expected);
    assert_eq!(hivex_tree(&tree.path(NTUSER)), before_tree);
}
