//! The upcase table against the `$UpCase` of a volume freshly made by mkntfs (ntfs-3g writes the
//! table of Windows 8 and later), read back with the pure-Rust `ntfs` crate.

use reseal_nt::upcase::{table, upcase_unit};
use reseal_testutil::ntfs_image::{make_volume, read_with_ntfs_crate};

/// Units where the table may differ from mkntfs's `$UpCase`, each with its reason. None today.
const KNOWN_DIFFERENCES: &[(u16, &str)] = &[];

#[test]
fn table_equals_the_upcase_file_mkntfs_writes() {
    let volume = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("upcase-{}.ntfs", std::process::id()));
    make_volume(&volume, 8 << 20);
    let bytes = read_with_ntfs_crate(&volume, "$UpCase");
    std::fs::remove_file(&volume).unwrap();
    let bytes = bytes.expect("the volume has $UpCase");
    assert_eq!(bytes.len(), 65536 * 2, "$UpCase holds one unit per unit");
    let theirs: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();

    let mut differences = Vec::new();
    for (unit, (&ours, &windows)) in (0..=u16::MAX).zip(table().iter().zip(&theirs)) {
        assert_eq!(upcase_unit(unit), ours, "upcase_unit and table() agree");
        if ours != windows && !KNOWN_DIFFERENCES.iter().any(|&(u, _)| u == unit) {
            let show = |u: u16| char::from_u32(u32::from(u)).unwrap_or('\u{FFFD}');
            differences.push(format!(
                "U+{unit:04X} {}: ours U+{ours:04X} {}, $UpCase U+{windows:04X} {}",
                show(unit),
                show(ours),
                show(windows)
            ));
        }
    }
    let mapped = (0..=u16::MAX)
        .zip(&theirs)
        .filter(|&(unit, &upper)| unit != upper)
        .count();
    eprintln!(
        "$UpCase maps {mapped} units to another; {} differ from the table",
        differences.len()
    );
    assert!(
        differences.is_empty(),
        "{} units differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
