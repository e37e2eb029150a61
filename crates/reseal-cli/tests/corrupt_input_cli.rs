//! Damaged input through the built binary: exit 4, a message naming the file, the structure and
//! the reason, and the input exactly as it was.

mod common;

use std::path::{Path, PathBuf};

use common::{code, reseal, text};
use reseal_hive::{Hive, ValueType};
use reseal_testutil::workspace_root;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A copy of the repository's sample image folder.
fn sample_image(dir: &Path) -> PathBuf {
    let image = dir.join("image");
    let status = std::process::Command::new("cp")
        .args([
            "-a",
            s(&workspace_root().join("fixtures/sample")),
            s(&image),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    image
}

/// Sets the subkey count of the key node at hive bins offset `cell` in the hive file `bytes`.
fn set_subkey_count(bytes: &mut [u8], cell: u32, count: u32) {
    let at = 4096 + cell as usize + 4 + 20;
    bytes[at..at + 4].copy_from_slice(&count.to_le_bytes());
}

#[test]
fn hive_edits_through_a_damaged_key_exit_4_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut hive = Hive::new_empty("ROOT", 5);
    hive.create_key("ResealDamaged\\Sub").unwrap();
    hive.set_value("ResealDamaged", "v", ValueType::DWORD, &[1, 0, 0, 0])
        .unwrap();
    let mut bytes = hive.commit();
    let name = bytes
        .windows(13)
        .position(|w| w == b"ResealDamaged")
        .unwrap();
    // The name is at byte 76 of the key node's data, after the 4-byte cell size.
    set_subkey_count(&mut bytes, (name - 4096 - 4 - 76) as u32, 1000);
    let file = dir.path().join("DAMAGED");
    std::fs::write(&file, &bytes).unwrap();

    for args in [
        vec!["set", "ResealDamaged\\New", "x", "--type", "dword", "1"],
        vec!["set", "ResealDamaged", "v", "--type", "dword", "2"],
        vec!["del", "ResealDamaged", "v"],
        vec!["del", "ResealDamaged"],
    ] {
        let mut all = vec!["hive", s(&file)];
        all.extend(args.iter().copied());
        let output = reseal(&all);
        assert_eq!(code(&output), 4, "{args:?}: {}", text(&output));
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(
            message.contains(s(&file))
                && message.contains("file offset 0x")
                && message.contains("subkey count is 1000, but its subkey list holds 1"),
            "{args:?}: {message}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "{args:?} wrote");
    }

    let check = reseal(&["hive", s(&file), "check"]);
    assert_eq!(code(&check), 4, "{}", text(&check));
    assert!(
        text(&check).contains("subkey count is 1000"),
        "{}",
        text(&check)
    );
}

#[test]
fn generalize_refuses_an_image_whose_hive_is_damaged_on_an_edited_path() {
    let dir = tempfile::tempdir().unwrap();
    let image = sample_image(dir.path());
    let system = image.join("Windows/System32/config/SYSTEM");
    let mut bytes = std::fs::read(&system).unwrap();
    let root = u32::from_le_bytes(bytes[0x24..0x28].try_into().unwrap());
    set_subkey_count(&mut bytes, root, 1000);
    std::fs::write(&system, &bytes).unwrap();
    let before = reseal_testutil::snapshot_tree(&image);

    let output = reseal(&["generalize", s(&image)]);
    assert_eq!(code(&output), 4, "{}", text(&output));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("SYSTEM")
            && message.contains("file offset 0x")
            && message.contains("subkey count is 1000"),
        "{message}"
    );
    assert_eq!(
        reseal_testutil::snapshot_tree(&image),
        before,
        "the refused run changed the image"
    );
}

#[test]
fn inspect_exits_4_when_a_hive_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let image = sample_image(dir.path());
    let healthy = reseal(&["inspect", s(&image)]);
    assert_eq!(code(&healthy), 0, "{}", text(&healthy));

    let software = image.join("Windows/System32/config/SOFTWARE");
    let bytes = std::fs::read(&software).unwrap();
    std::fs::write(&software, &bytes[..4096 + 100]).unwrap();
    let before = reseal_testutil::snapshot_tree(&image);
    for json in [false, true] {
        let mut args = vec!["inspect", s(&image)];
        if json {
            args.push("--json");
        }
        let output = reseal(&args);
        assert_eq!(code(&output), 4, "{}", text(&output));
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(
            message.contains(s(&image)) && message.contains("SOFTWARE"),
            "{message}"
        );
        // The report is still printed, with the hive's error in it.
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(report.contains("SOFTWARE"), "{report}");
    }
    assert_eq!(reseal_testutil::snapshot_tree(&image), before);
}

#[test]
fn a_wim_whose_header_image_count_is_absurd_exits_4_and_is_untouched() {
    let Some((_dir, wim)) = reseal_testutil::sample_wim_copy() else {
        return;
    };
    let mut bytes = std::fs::read(&wim).unwrap();
    bytes[44..48].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    std::fs::write(&wim, &bytes).unwrap();
    for args in [vec!["generalize", s(&wim)], vec!["inspect", s(&wim)]] {
        let output = reseal(&args);
        assert_eq!(code(&output), 4, "{args:?}: {}", text(&output));
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(
            message.contains(s(&wim))
                && message.contains("header")
                && message.contains("image count at offset 44 is 2147483647"),
            "{args:?}: {message}"
        );
        assert_eq!(std::fs::read(&wim).unwrap(), bytes, "{args:?} wrote");
    }
}
