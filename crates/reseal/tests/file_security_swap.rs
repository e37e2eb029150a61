//! The machine's account-domain SID replaced in the file system's security descriptors
//! (`Target::scan_file_security`, `Target::swap_file_security`), checked with readers we did
//! not write.

use std::path::Path;

use reseal::progress::NoProgress;
use reseal::targets::{Target, WimTarget};
use reseal::Sid;
use reseal_nt::domain_swap::DomainSwap;
use reseal_testutil::ntfs_image::run;

/// The account domain of the machine the managed-wimlib sample trees were captured on: their
/// owner is its account 1001.
const CAPTURE_DOMAIN: &str = "S-1-5-21-2516598036-4149101818-1193433654";
const NEW_DOMAIN: &str = "S-1-5-21-1111111111-2222222222-3333333333";

fn swap() -> DomainSwap {
    DomainSwap::new(
        &Sid::parse_machine_sid(CAPTURE_DOMAIN).unwrap(),
        &Sid::parse_machine_sid(NEW_DOMAIN).unwrap(),
    )
    .unwrap()
}

/// A domain's three numbers as they stand in a binary SID, in the hex wimlib-imagex prints.
fn domain_hex(domain: &str) -> String {
    Sid::parse_machine_sid(domain).unwrap().to_bytes()[12..]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `wimlib-imagex dir --detailed` of image 1: every path with its attributes, times, streams'
/// hashes and security descriptor.
fn wimlib_listing(wim: &Path) -> String {
    let out = run("wimlib-imagex", &[&"dir", &wim, &"1", &"--detailed"]);
    String::from_utf8(out.stdout).unwrap()
}

/// Image 1 of the WIM, opened as a target (the sample trees hold no Windows, which
/// `open_target` asks for).
fn wim_target(wim: &Path) -> WimTarget {
    WimTarget::open(wim, "1").unwrap()
}

fn real_wim_copy(dir: &Path) -> Option<std::path::PathBuf> {
    let source = reseal_testutil::real_fixture("images/managedwimlib/XPRESS.wim")?;
    let copy = dir.join("install.wim");
    std::fs::copy(source, &copy).unwrap();
    Some(copy)
}

#[test]
fn wim_descriptors_get_the_new_domain_and_nothing_else_changes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(wim) = real_wim_copy(dir.path()) else {
        return;
    };
    let (old_hex, new_hex) = (domain_hex(CAPTURE_DOMAIN), domain_hex(NEW_DOMAIN));
    let before = wimlib_listing(&wim);
    assert!(
        before.contains(&old_hex),
        "the sample names the capture domain"
    );

    let mut target = wim_target(&wim);
    let scanned = target.scan_file_security(&swap()).unwrap();
    assert!(scanned.descriptors >= 1 && scanned.files >= scanned.descriptors);
    let descriptor_lines = before
        .lines()
        .filter(|line| line.starts_with("Security Descriptor") && line.contains(&old_hex))
        .count() as u64;
    assert_eq!(
        scanned.files, descriptor_lines,
        "one per dentry wimlib lists"
    );

    target.begin().unwrap();
    let swapped = target.swap_file_security(&swap()).unwrap();
    assert_eq!(swapped, scanned);
    target.commit(&NoProgress).unwrap();
    assert_eq!(
        target.scan_file_security(&swap()).unwrap().descriptors,
        0,
        "a second swap finds nothing"
    );
    drop(target);

    let after = wimlib_listing(&wim);
    assert!(
        !after.contains(&old_hex),
        "no descriptor names the old domain"
    );
    // Every path, time, attribute and stream hash as it was; each descriptor the old one with
    // the domain replaced.
    assert_eq!(after, before.replace(&old_hex, &new_hex));
    run("wimlib-imagex", &[&"verify", &wim]);
}

#[test]
fn wim_swap_aborted_leaves_the_file_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let Some(wim) = real_wim_copy(dir.path()) else {
        return;
    };
    let original = std::fs::read(&wim).unwrap();
    let mut target = wim_target(&wim);
    target.begin().unwrap();
    assert!(target.swap_file_security(&swap()).unwrap().descriptors >= 1);
    target.abort();
    drop(target);
    assert_eq!(std::fs::read(&wim).unwrap(), original);
}

#[test]
fn wim_swap_outside_a_transaction_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Some(wim) = real_wim_copy(dir.path()) else {
        return;
    };
    let original = std::fs::read(&wim).unwrap();
    let mut target = wim_target(&wim);
    let err = target.swap_file_security(&swap()).unwrap_err();
    assert_eq!(err.kind, reseal::ErrorKind::Usage, "{err}");
    drop(target);
    assert_eq!(std::fs::read(&wim).unwrap(), original);
}
