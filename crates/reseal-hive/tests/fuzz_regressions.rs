//! Inputs found by the hive fuzz targets (`fuzz/` at the repository root), rebuilt at test time
//! from a real hive (copies of the fixtures never enter the repository): each must stay a typed
//! error or a reported problem.

use reseal_hive::Hive;

/// `bytes` of the real fixture `relative` with the given bytes replaced, or `None` when the
/// fixture is missing.
fn mutated_fixture(relative: &str, changes: &[(usize, u8)]) -> Option<Vec<u8>> {
    let path = reseal_testutil::real_fixture(relative)?;
    let mut bytes = std::fs::read(path).expect("fixture is readable");
    for &(offset, byte) in changes {
        bytes[offset] = byte;
    }
    Some(bytes)
}

/// hive_edit_commit: a cell size grown from 32 to 144 bytes makes the cell cover the cells after
/// it, which keys still reference. `check()` called the hive clean, and deleting `Policy` then
/// freed the cells on top of each other and zeroed the size field of a neighbour. The overlap
/// must be reported.
#[test]
fn overlapping_cells_are_reported_by_check() {
    let Some(bytes) = mutated_fixture(
        "hives/aiowinreg/win2012_64/security.reg",
        &[(0x96e, 43), (0x3a47, 3), (0x6400, 0x70), (0x715a, 29)],
    ) else {
        return;
    };
    let mut hive = Hive::from_bytes(bytes).expect("the damage is below the root key");
    let report = hive.check();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("overlapping cells") && p.contains("file offset 0x")),
        "overlap not reported: {report:?}"
    );

    // What the fuzz target did next: the edit must be refused with the offset, before any byte
    // changes, instead of freeing cells that other keys still use.
    let before = hive.bytes().to_vec();
    let error = hive
        .delete_key("Policy")
        .expect_err("an edit through overlapping cells must be refused");
    assert!(error.is_corrupt_input(), "{error}");
    assert!(error.to_string().contains("overlapping cells"), "{error}");
    assert_eq!(hive.bytes(), &before[..], "the refused edit changed bytes");
}
