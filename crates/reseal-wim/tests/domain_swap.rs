//! A new account-domain SID in an image's security table (`WimImage::swap_domain`), with
//! other edits in the same batch, checked with wimlib-imagex.

use std::path::{Path, PathBuf};

use reseal_nt::domain_swap::DomainSwap;
use reseal_nt::Sid;
use reseal_testutil::ntfs_image::run;
use reseal_wim::WimImage;

/// The account domain of the machine the managed-wimlib sample trees were captured on.
const CAPTURE_DOMAIN: &str = "S-1-5-21-2516598036-4149101818-1193433654";
const NEW_DOMAIN: &str = "S-1-5-21-1111111111-2222222222-3333333333";

fn swap() -> DomainSwap {
    DomainSwap::new(
        &Sid::parse_machine_sid(CAPTURE_DOMAIN).unwrap(),
        &Sid::parse_machine_sid(NEW_DOMAIN).unwrap(),
    )
    .unwrap()
}

fn domain_hex(domain: &str) -> String {
    Sid::parse_machine_sid(domain).unwrap().to_bytes()[12..]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn real_wim_copy(dir: &Path) -> Option<PathBuf> {
    let source = reseal_testutil::real_fixture("images/managedwimlib/XPRESS.wim")?;
    let copy = dir.join("install.wim");
    std::fs::copy(source, &copy).unwrap();
    Some(copy)
}

fn listing(wim: &Path) -> String {
    let out = run("wimlib-imagex", &[&"dir", &wim, &"1", &"--detailed"]);
    String::from_utf8(out.stdout).unwrap()
}

/// A file created in the same batch gets a descriptor the table did not have, so the table is
/// written anew from its parsed list rather than patched where it stands: the swap staged
/// after the create must reach it there.
#[test]
fn swap_after_a_create_in_one_batch_reaches_the_new_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let Some(wim) = real_wim_copy(dir.path()) else {
        return;
    };
    let mut image = WimImage::open(&wim, "1", true).unwrap();
    let root_entries = image.list_dir("").unwrap().unwrap();
    let parent = root_entries.iter().find(|e| e.is_dir).expect("a directory");
    let created = format!("{}\\reseal-new.txt", parent.name);
    image.set_batch(true);
    let before = image.metadata().security.descriptors.len();
    image.create_file(&created, b"new").unwrap();
    let swapped = image.swap_domain(&swap()).unwrap();
    assert!(!swapped.descriptors.is_empty());
    image.commit().unwrap();
    drop(image);

    let after = listing(&wim);
    assert!(!after.contains(&domain_hex(CAPTURE_DOMAIN)), "{after}");
    assert!(after.contains(&domain_hex(NEW_DOMAIN)));
    assert!(after.contains("reseal-new.txt"));
    let reopened = WimImage::open(&wim, "1", false).unwrap();
    assert_eq!(reopened.metadata().security.descriptors.len(), before + 1);
    assert!(reopened
        .domain_swap(&swap())
        .unwrap()
        .descriptors
        .is_empty());
    run("wimlib-imagex", &[&"verify", &wim]);
}

/// A replacement of another length is refused and nothing changes.
#[test]
fn a_descriptor_of_another_length_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Some(wim) = real_wim_copy(dir.path()) else {
        return;
    };
    let original = std::fs::read(&wim).unwrap();
    let mut wim_file = reseal_wim::Wim::open_for_update(&wim).unwrap();
    let mut metadata = wim_file.load_image(1).unwrap();
    let mut longer = metadata.security.descriptors[0].clone();
    longer.extend_from_slice(&[0; 4]);
    let table_before = metadata.security.clone();
    let err = wim_file
        .replace_descriptors(1, &mut metadata, vec![(0, longer)])
        .unwrap_err();
    assert!(err.to_string().contains("descriptor 0"), "{err}");
    assert_eq!(metadata.security, table_before);
    drop(wim_file);
    assert_eq!(std::fs::read(&wim).unwrap(), original);
}
