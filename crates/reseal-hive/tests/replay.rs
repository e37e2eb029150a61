//! Transaction-log replay on real hives and logs written by Windows (see
//! `shared/fixtures/MANIFEST.md` for each file's documented sequence numbers and outcome), and on
//! damaged copies of those logs.

use std::collections::BTreeSet;

use reseal_hive::base_block::{self, BaseBlock, BASE_BLOCK_SIZE};
use reseal_hive::log::{max_sequence, replay, LogFormat, ReplayReport};
use reseal_hive::Error;
use reseal_testutil::{hivex_tree_of_bytes, real_fixture, HivexKey};

/// The bytes of `shared/fixtures/real/hives/<relative>`, or `None` when the fixture is missing
/// (the test then skips; under CI it panics in `real_fixture`).
fn hive_file(relative: &str) -> Option<Vec<u8>> {
    let path = real_fixture(&format!("hives/{relative}"))?;
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Logs as (name, bytes), owned so that tests can damage them.
type Logs = Vec<(String, Vec<u8>)>;

/// Loads a hive and its logs (paths relative to `hives/`).
fn hive_and_logs(hive: &str, logs: &[&str]) -> Option<(Vec<u8>, Logs)> {
    let hive = hive_file(hive)?;
    let mut loaded = Vec::new();
    for &log in logs {
        loaded.push((log.to_string(), hive_file(log)?));
    }
    Some((hive, loaded))
}

fn named(logs: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    logs.iter()
        .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
        .collect()
}

fn replay_named(hive: &[u8], logs: &[(String, Vec<u8>)]) -> (Vec<u8>, ReplayReport) {
    replay(hive, &named(logs)).unwrap_or_else(|e| panic!("replay failed: {e}"))
}

/// `(log name, entries, first sequence, last sequence)` of each applied log.
fn applied(report: &ReplayReport) -> Vec<(&str, u32, u32, u32)> {
    report
        .applied
        .iter()
        .map(|a| {
            (
                a.name.as_str(),
                a.entries,
                a.first_sequence,
                a.last_sequence,
            )
        })
        .collect()
}

fn assert_clean_base_block(hive: &[u8]) {
    let base = BaseBlock::parse(hive).unwrap();
    assert!(base.checksum_ok(), "checksum of the recovered base block");
    assert_eq!(
        base.primary_sequence(),
        base.secondary_sequence(),
        "sequence numbers of the recovered base block"
    );
    assert_eq!(base.file_type(), base_block::FILE_TYPE_PRIMARY);
    assert!(hive.len() >= BASE_BLOCK_SIZE + base.hive_bins_data_size() as usize);
}

/// Offsets (relative to the hive bins data) of the bytes that differ between two hives' bins.
fn differing_bin_bytes(a: &[u8], b: &[u8]) -> Vec<usize> {
    assert_eq!(a.len(), b.len(), "file sizes");
    (BASE_BLOCK_SIZE..a.len())
        .filter(|&i| a[i] != b[i])
        .map(|i| i - BASE_BLOCK_SIZE)
        .collect()
}

/// Every key path and every `key path : value name` of a hivex tree.
fn hivex_paths(tree: &HivexKey) -> (BTreeSet<String>, BTreeSet<String>) {
    fn walk(
        key: &HivexKey,
        path: String,
        keys: &mut BTreeSet<String>,
        values: &mut BTreeSet<String>,
    ) {
        for value in &key.values {
            values.insert(format!("{path} : {}", value.name));
        }
        for child in &key.children {
            walk(child, format!("{path}\\{}", child.name), keys, values);
        }
        keys.insert(path);
    }
    let (mut keys, mut values) = (BTreeSet::new(), BTreeSet::new());
    walk(tree, String::new(), &mut keys, &mut values);
    (keys, values)
}

/// Replays, checks that hivex reads the result, and that the recovered hive only gained keys and
/// values. Returns the numbers of keys and values before and after.
fn assert_replay_only_adds(before: &[u8], after: &[u8]) -> ((usize, usize), (usize, usize)) {
    let (keys_before, values_before) = hivex_paths(&hivex_tree_of_bytes(before));
    let (keys_after, values_after) = hivex_paths(&hivex_tree_of_bytes(after));
    assert!(keys_before.is_subset(&keys_after), "replay lost keys");
    assert!(values_before.is_subset(&values_after), "replay lost values");
    assert!(keys_after.len() > keys_before.len(), "replay added no key");
    assert!(
        values_after.len() > values_before.len(),
        "replay added no value"
    );
    (
        (keys_before.len(), values_before.len()),
        (keys_after.len(), values_after.len()),
    )
}

/// `(offset, size)` of each entry of a new-format log, following the entry sizes from offset 512.
fn entry_spans(log: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut offset = 512;
    while log.get(offset..offset + 4) == Some(b"HvLE".as_slice()) {
        let size = u32::from_le_bytes(log[offset + 4..offset + 8].try_into().unwrap()) as usize;
        spans.push((offset, size));
        offset += size;
    }
    spans
}

const NEW_DIRTY: &str = "yarp/NewDirtyHive1/NewDirtyHive";
const NEW_DIRTY_LOGS: [&str; 2] = [
    "yarp/NewDirtyHive1/NewDirtyHive.LOG1",
    "yarp/NewDirtyHive1/NewDirtyHive.LOG2",
];
const OLD_DIRTY: &str = "yarp/OldDirtyHive/OldDirtyHive";
const OLD_DIRTY_LOGS: [&str; 2] = [
    "yarp/OldDirtyHive/OldDirtyHive.LOG1",
    "yarp/OldDirtyHive/OldDirtyHive.LOG2",
];

#[test]
fn new_dirty_hive_recovers_exactly_like_windows_10() {
    let Some((hive, logs)) = hive_and_logs(NEW_DIRTY, &NEW_DIRTY_LOGS) else {
        return;
    };
    let Some(windows) = hive_file("yarp/NewDirtyHive1/RecoveredHive_Windows10") else {
        return;
    };
    let (recovered, report) = replay_named(&hive, &logs);

    assert!(report.was_dirty && report.recovered, "{report:#?}");
    // MANIFEST: LOG1 holds entry 2, LOG2 entries 3..5; both apply.
    assert_eq!(
        applied(&report),
        [(NEW_DIRTY_LOGS[0], 1, 2, 2), (NEW_DIRTY_LOGS[1], 3, 3, 5)]
    );
    assert!(report.applied.iter().all(|a| a.format == LogFormat::New));
    assert_eq!(report.max_log_sequence, Some(5));
    assert_ne!(differing_bin_bytes(&hive, &windows), Vec::<usize>::new());
    assert_eq!(
        differing_bin_bytes(&recovered, &windows),
        Vec::<usize>::new(),
        "hive bins data differs from the hive Windows 10 recovered"
    );
    // Windows 10 wrote sequence 6/6 (last entry + 1): the base block matches too.
    assert_clean_base_block(&recovered);
    assert!(
        recovered[..BASE_BLOCK_SIZE] == windows[..BASE_BLOCK_SIZE],
        "base block differs from Windows 10's"
    );

    // The order in which the caller gives the logs does not matter.
    let reversed: Vec<_> = logs.iter().rev().cloned().collect();
    let (recovered_again, _) = replay_named(&hive, &reversed);
    assert!(recovered_again == recovered);
}

#[test]
fn old_dirty_hive_recovers_like_windows_7() {
    let Some((hive, logs)) = hive_and_logs(OLD_DIRTY, &OLD_DIRTY_LOGS) else {
        return;
    };
    let Some(windows) = hive_file("yarp/OldDirtyHive/RecoveredHive_Windows7") else {
        return;
    };
    let (recovered, report) = replay_named(&hive, &logs);

    assert!(report.was_dirty && report.recovered, "{report:#?}");
    assert_eq!(applied(&report), [(OLD_DIRTY_LOGS[0], 1, 5, 5)]);
    assert_eq!(report.applied[0].format, LogFormat::Old);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with(OLD_DIRTY_LOGS[1]) && n.contains("empty")),
        "{:#?}",
        report.notes
    );
    assert_clean_base_block(&recovered);
    assert_eq!(BaseBlock::parse(&recovered).unwrap().primary_sequence(), 6);

    // Windows 7 wrote the hive again after its recovery (sequence 7/7), which touched two fields
    // the log does not hold: the first hive bin's timestamp (bins offset 20..28), rewritten on
    // every write, and one key node's largest value name length. Everything else must match.
    let before = differing_bin_bytes(&hive, &windows);
    let after = differing_bin_bytes(&recovered, &windows);
    assert!(before.len() > 1000, "the log should change many bytes");
    let (timestamp, rest): (Vec<usize>, Vec<usize>) = after
        .iter()
        .partition(|&&offset| (20..28).contains(&offset));
    assert!(!timestamp.is_empty());
    assert!(
        rest.len() <= 4,
        "bytes outside the hbin timestamp differ: {rest:x?}"
    );
    for offset in rest {
        let (cell, field) = enclosing_cell(&windows, offset).expect("the difference is in a cell");
        assert_eq!(
            &windows[cell + 4..cell + 6],
            b"nk",
            "cell at bins offset {cell:#x}"
        );
        // Key node field at 60 (after the 4-byte cell size): largest value name length.
        assert_eq!(field / 4 * 4, 4 + 60, "field at cell offset {field}");
    }
}

/// The file offset of the cell containing bins offset `offset` and the offset inside it.
fn enclosing_cell(hive: &[u8], offset: usize) -> Option<(usize, usize)> {
    let target = BASE_BLOCK_SIZE + offset;
    let mut bin = BASE_BLOCK_SIZE;
    loop {
        let size = u32::from_le_bytes(hive.get(bin + 8..bin + 12)?.try_into().ok()?) as usize;
        if size == 0 {
            return None;
        }
        if target < bin + size {
            break;
        }
        bin += size;
    }
    let bin_end = bin + u32::from_le_bytes(hive[bin + 8..bin + 12].try_into().ok()?) as usize;
    let mut cell = bin + 32;
    while cell < bin_end {
        let size =
            i32::from_le_bytes(hive.get(cell..cell + 4)?.try_into().ok()?).unsigned_abs() as usize;
        if size == 0 {
            return None;
        }
        if target < cell + size {
            return Some((cell, target - cell));
        }
        cell += size;
    }
    None
}

#[test]
fn nt31_log_applies_when_its_hive_is_dirty() {
    let Some((hive, logs)) = hive_and_logs(
        "regf-samples/3.1/SOFTWARE",
        &["regf-samples/3.1/SOFTWARE.LOG"],
    ) else {
        return;
    };
    // As shipped the hive is clean (25/25): the log (24/24) is ignored.
    let (same, report) = replay_named(&hive, &logs);
    assert!(same == hive);
    assert!(!report.was_dirty && report.recovered && report.applied.is_empty());
    assert_eq!(report.max_log_sequence, Some(24));

    // The NT 3.1 log (file type 2) holds the pages of the hive's last write; with that write
    // marked unfinished (secondary 24), the pages go back in. They equal the hive's own except
    // the first hive bin's timestamp, which NT wrote with the primary file.
    let mut dirty = hive.clone();
    base_block::write::set_secondary_sequence(&mut dirty, 24);
    base_block::write::seal(&mut dirty);
    let (recovered, report) = replay_named(&dirty, &logs);
    assert!(report.was_dirty && report.recovered, "{report:#?}");
    assert_eq!(
        applied(&report),
        [("regf-samples/3.1/SOFTWARE.LOG", 1, 24, 24)]
    );
    assert_eq!(report.applied[0].format, LogFormat::Old);
    assert!(report.applied[0].pages > 0);
    assert_clean_base_block(&recovered);
    let differences = differing_bin_bytes(&hive, &recovered);
    assert!(!differences.is_empty());
    assert!(
        differences.iter().all(|o| (20..28).contains(o)),
        "{differences:x?}"
    );
}

#[test]
fn system_b_applies_both_logs() {
    let Some((hive, logs)) = hive_and_logs(
        "regipy/SYSTEM_B",
        &["regipy/SYSTEM_B.LOG1", "regipy/SYSTEM_B.LOG2"],
    ) else {
        return;
    };
    let (recovered, report) = replay_named(&hive, &logs);
    assert!(report.was_dirty && report.recovered, "{report:#?}");
    // MANIFEST: LOG1 entries 2107..2110, then LOG2 2111..2130; regipy counts 315 dirty pages.
    assert_eq!(
        applied(&report),
        [
            ("regipy/SYSTEM_B.LOG1", 4, 2107, 2110),
            ("regipy/SYSTEM_B.LOG2", 20, 2111, 2130)
        ]
    );
    assert_eq!(report.applied.iter().map(|a| a.pages).sum::<u32>(), 315);
    assert!(report.notes.is_empty(), "{:#?}", report.notes);
    assert_clean_base_block(&recovered);
    assert_eq!(
        BaseBlock::parse(&recovered).unwrap().primary_sequence(),
        2131
    );
    let (before, after) = assert_replay_only_adds(&hive, &recovered);
    eprintln!("SYSTEM_B keys/values before {before:?}, after {after:?}");
}

#[test]
fn usrclass_applies_both_logs() {
    let Some((hive, logs)) = hive_and_logs(
        "regipy/UsrClass.dat",
        &["regipy/UsrClass.dat.LOG1", "regipy/UsrClass.dat.LOG2"],
    ) else {
        return;
    };
    let (recovered, report) = replay_named(&hive, &logs);
    assert!(report.was_dirty && report.recovered, "{report:#?}");
    // MANIFEST: LOG1 287..290 then LOG2 291..300; regipy counts 158 dirty pages.
    assert_eq!(
        applied(&report),
        [
            ("regipy/UsrClass.dat.LOG1", 4, 287, 290),
            ("regipy/UsrClass.dat.LOG2", 10, 291, 300)
        ]
    );
    assert_eq!(report.applied.iter().map(|a| a.pages).sum::<u32>(), 158);
    assert_clean_base_block(&recovered);
    let (before, after) = assert_replay_only_adds(&hive, &recovered);
    eprintln!("UsrClass.dat keys/values before {before:?}, after {after:?}");
}

#[test]
fn transactions_ntuser_applies_log1_and_skips_the_stale_log2() {
    let Some((hive, logs)) = hive_and_logs(
        "regipy/transactions_NTUSER.DAT",
        &[
            "regipy/transactions_ntuser.dat.log1",
            "regipy/transactions_ntuser.dat.log2",
        ],
    ) else {
        return;
    };
    let (recovered, report) = replay_named(&hive, &logs);
    assert!(report.was_dirty && report.recovered, "{report:#?}");
    // MANIFEST: log1 566..588 (23 entries) applies; log2 (base 562 < hive secondary 566) is stale.
    assert_eq!(
        applied(&report),
        [("regipy/transactions_ntuser.dat.log1", 23, 566, 588)]
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("regipy/transactions_ntuser.dat.log2")
                && n.contains("562")
                && n.contains("stale")),
        "{:#?}",
        report.notes
    );
    assert_eq!(report.max_log_sequence, Some(588));
    assert_clean_base_block(&recovered);
    assert_eq!(
        BaseBlock::parse(&recovered).unwrap().primary_sequence(),
        589
    );
}

#[test]
fn clean_hive_comes_back_unchanged_and_ignores_its_stale_log() {
    let Some((hive, logs)) = hive_and_logs("dfwinreg/NTUSER.DAT", &["dfwinreg/NTUSER.DAT.LOG"])
    else {
        return;
    };
    let (same, report) = replay_named(&hive, &logs);
    assert!(same == hive);
    assert!(!report.was_dirty && report.recovered);
    assert!(report.applied.is_empty() && report.notes.is_empty());
    // MANIFEST: a new-format log with base sequence 131 and one entry 131.
    assert_eq!(report.max_log_sequence, Some(131));
}

#[test]
fn dirty_hive_without_logs_comes_back_unchanged_and_not_recovered() {
    for path in ["regipy/SECURITY", "EricZimmerman/SECURITY"] {
        let Some(hive) = hive_file(path) else {
            return;
        };
        let (same, report) = replay(&hive, &[]).unwrap();
        assert!(same == hive, "{path}");
        assert!(report.was_dirty && !report.recovered, "{path}: {report:#?}");
        assert!(report.applied.is_empty());
        assert_eq!(report.notes.len(), 1, "{path}: {:#?}", report.notes);
        assert_eq!(report.max_log_sequence, None);

        // With a wrong checksum and no log to rebuild the base block from, there is nothing to use.
        let mut broken = hive.clone();
        broken[200] ^= 0x55;
        assert!(matches!(
            replay(&broken, &[]),
            Err(Error::BadChecksum { .. })
        ));

        // With the bins gone too, even the read-only fallback is refused.
        let mut no_bins = hive.clone();
        no_bins[BASE_BLOCK_SIZE..BASE_BLOCK_SIZE + 4].copy_from_slice(b"xbin");
        match replay(&no_bins, &[]) {
            Err(Error::BadLog { reason, .. }) => assert!(reason.contains("hbin"), "{reason}"),
            other => panic!("{path}: expected BadLog, got {other:?}"),
        }
    }
}

#[test]
fn max_sequence_matches_the_manifest() {
    let expected = [
        ("yarp/NewDirtyHive1/NewDirtyHive.LOG1", Some(2)),
        ("yarp/NewDirtyHive1/NewDirtyHive.LOG2", Some(5)),
        ("yarp/OldDirtyHive/OldDirtyHive.LOG1", Some(5)),
        ("yarp/OldDirtyHive/OldDirtyHive.LOG2", None),
        ("regipy/SYSTEM_B.LOG1", Some(2110)),
        ("regipy/SYSTEM_B.LOG2", Some(2130)),
        ("regipy/UsrClass.dat.LOG1", Some(290)),
        ("regipy/UsrClass.dat.LOG2", Some(300)),
        ("regipy/transactions_ntuser.dat.log1", Some(588)),
        ("regipy/transactions_ntuser.dat.log2", Some(562)),
        ("dfwinreg/NTUSER.DAT.LOG", Some(131)),
        ("regf-samples/3.1/SOFTWARE.LOG", Some(24)),
    ];
    for (path, sequence) in expected {
        let Some(log) = hive_file(path) else {
            return;
        };
        assert_eq!(max_sequence(&log), sequence, "{path}");
    }
    assert_eq!(max_sequence(&[]), None);
    assert_eq!(max_sequence(&[0u8; 4096]), None);
}

#[test]
fn a_damaged_entry_stops_its_log_before_it() {
    let Some((hive, logs)) = hive_and_logs(NEW_DIRTY, &NEW_DIRTY_LOGS) else {
        return;
    };
    let spans = entry_spans(&logs[1].1);
    assert_eq!(spans.len(), 3, "LOG2 holds entries 3..5");

    // A flipped byte in a page of entry 4 (Hash-1) and in the header of entry 4 (Hash-2).
    let (entry_4, size_4) = spans[1];
    for (position, hash) in [(entry_4 + size_4 - 100, "Hash-1"), (entry_4 + 20, "Hash-2")] {
        let mut damaged = logs.clone();
        damaged[1].1[position] ^= 0x01;
        let (recovered, report) = replay_named(&hive, &damaged);
        assert_eq!(
            applied(&report),
            [(NEW_DIRTY_LOGS[0], 1, 2, 2), (NEW_DIRTY_LOGS[1], 1, 3, 3)],
            "flip at {position:#x}"
        );
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.starts_with(NEW_DIRTY_LOGS[1]) && n.contains(hash)),
            "{:#?}",
            report.notes
        );
        assert!(report.recovered);
        assert_clean_base_block(&recovered);
        assert_eq!(BaseBlock::parse(&recovered).unwrap().primary_sequence(), 4);
    }

    // A damaged starting log: nothing applies, and LOG2 may not skip entry 2.
    let mut damaged = logs.clone();
    let (entry_2, size_2) = entry_spans(&damaged[0].1)[0];
    damaged[0].1[entry_2 + size_2 / 2] ^= 0x80;
    let (same, report) = replay_named(&hive, &damaged);
    assert!(
        report.applied.is_empty() && !report.recovered,
        "{report:#?}"
    );
    assert!(same == hive);
}

#[test]
fn a_stale_or_missing_entry_ends_the_log() {
    let Some((hive, logs)) = hive_and_logs(NEW_DIRTY, &NEW_DIRTY_LOGS) else {
        return;
    };
    // LOG2 alone, with its base sequence set to 2: its first entry (3) then does not follow.
    let mut gap = logs[1].clone();
    base_block::write::set_primary_sequence(&mut gap.1, 2);
    base_block::write::set_secondary_sequence(&mut gap.1, 2);
    base_block::write::seal(&mut gap.1);
    let (_, report) = replay_named(&hive, &[gap]);
    assert!(report.applied.is_empty(), "{report:#?}");
    assert!(
        report.notes.iter().any(|n| n.contains("gap")),
        "{:#?}",
        report.notes
    );

    // LOG1's only entry copied over LOG2's second: entry 2 where 4 is expected is stale.
    let mut stale = logs.clone();
    let (entry_2, size_2) = entry_spans(&logs[0].1)[0];
    let (entry_4, _) = entry_spans(&logs[1].1)[1];
    let copy = logs[0].1[entry_2..entry_2 + size_2].to_vec();
    stale[1].1.truncate(entry_4);
    stale[1].1.extend_from_slice(&copy);
    let (_, report) = replay_named(&hive, &stale);
    assert_eq!(
        applied(&report),
        [(NEW_DIRTY_LOGS[0], 1, 2, 2), (NEW_DIRTY_LOGS[1], 1, 3, 3)]
    );
    assert!(
        report.notes.iter().any(|n| n.contains("stale entry")),
        "{:#?}",
        report.notes
    );
}

#[test]
fn truncated_logs_apply_only_their_complete_entries() {
    let Some((hive, logs)) = hive_and_logs(NEW_DIRTY, &NEW_DIRTY_LOGS) else {
        return;
    };
    let ends: Vec<usize> = entry_spans(&logs[1].1)
        .iter()
        .map(|(offset, size)| offset + size)
        .collect();
    for length in (0..=logs[1].1.len())
        .step_by(256)
        .chain([1, 511, 513, 4095])
    {
        let mut truncated = logs.clone();
        truncated[1].1.truncate(length);
        let (recovered, report) = replay_named(&hive, &truncated);
        let complete = ends.iter().filter(|&&end| end <= length).count() as u32;
        let from_log2 = report
            .applied
            .iter()
            .find(|a| a.name == NEW_DIRTY_LOGS[1])
            .map_or(0, |a| a.entries);
        assert_eq!(from_log2, complete, "LOG2 cut at {length}");
        assert!(report.recovered);
        assert_clean_base_block(&recovered);
    }

    // The old-format log cut anywhere: its pages are incomplete, so it is not applied at all.
    let Some((old_hive, old_logs)) = hive_and_logs(OLD_DIRTY, &OLD_DIRTY_LOGS) else {
        return;
    };
    for length in (0..old_logs[0].1.len()).step_by(300) {
        let mut truncated = old_logs.clone();
        truncated[0].1.truncate(length);
        let (same, report) = replay_named(&old_hive, &truncated);
        assert!(
            report.applied.is_empty() && !report.recovered,
            "cut at {length}"
        );
        assert!(same == old_hive);
    }
}

#[test]
fn foreign_and_absurd_logs_are_skipped_with_a_note() {
    let Some((hive, logs)) = hive_and_logs(NEW_DIRTY, &NEW_DIRTY_LOGS) else {
        return;
    };
    // LOG1 without its regf signature: LOG2 (base 3 >= hive secondary 2) starts alone.
    let mut foreign = logs.clone();
    foreign[0].1[..4].copy_from_slice(b"regx");
    let (_, report) = replay_named(&hive, &foreign);
    assert_eq!(applied(&report), [(NEW_DIRTY_LOGS[1], 3, 3, 5)]);
    assert!(report
        .notes
        .iter()
        .any(|n| n.starts_with(NEW_DIRTY_LOGS[0]) && n.contains("regf")));

    // LOG1's entry without its HvLE signature: the starting log has no entry, nothing applies.
    let mut unsigned = logs.clone();
    unsigned[0].1[512..516].copy_from_slice(b"HvLX");
    let (_, report) = replay_named(&hive, &unsigned);
    assert!(report.applied.is_empty() && !report.recovered);

    // An entry size far past the end of the log.
    let mut oversized = logs.clone();
    oversized[1].1[516..520].copy_from_slice(&0xFFFF_FE00u32.to_le_bytes());
    let (_, report) = replay_named(&hive, &oversized);
    assert_eq!(applied(&report), [(NEW_DIRTY_LOGS[0], 1, 2, 2)]);
    assert!(
        report.notes.iter().any(|n| n.contains("past the end")),
        "{:#?}",
        report.notes
    );

    // An old-format log whose (resealed) base block claims a huge hive: the dirty vector cannot
    // be that long, or the hive would outgrow what the files hold. Nothing is allocated for it.
    let Some((old_hive, old_logs)) = hive_and_logs(OLD_DIRTY, &OLD_DIRTY_LOGS) else {
        return;
    };
    for bins_size in [0xFFFF_F000u32, 8000 * 4096, 4095, 0] {
        let mut absurd = old_logs.clone();
        base_block::write::set_hive_bins_data_size(&mut absurd[0].1, bins_size);
        base_block::write::seal(&mut absurd[0].1);
        let (same, report) = replay_named(&old_hive, &absurd);
        assert!(report.applied.is_empty(), "{bins_size:#x}: {report:#?}");
        assert!(same == old_hive);
    }
}

#[test]
fn wrong_hive_checksum_is_repaired_from_the_latest_log() {
    let Some((hive, logs)) = hive_and_logs(NEW_DIRTY, &NEW_DIRTY_LOGS) else {
        return;
    };
    let mut broken = hive.clone();
    broken[300] ^= 0x01; // inside the base block's reserved area: only the checksum breaks
    let (recovered, report) = replay_named(&broken, &logs);
    // Without a trustworthy base block Windows applies the latest log only.
    assert_eq!(applied(&report), [(NEW_DIRTY_LOGS[1], 3, 3, 5)]);
    assert!(
        report.notes.iter().any(|n| n.contains("rebuilt from")),
        "{:#?}",
        report.notes
    );
    assert_clean_base_block(&recovered);
    // The base block came from LOG2's copy, so the flipped byte is gone.
    assert_eq!(recovered[300], logs[1].1[300]);
}

/// Damages real logs byte by byte: replay must always return, never panic, never loop, and never
/// make the hive bigger than the hive and its logs.
#[test]
fn mutated_logs_never_panic() {
    let mut cases = Vec::new();
    if let Some(set) = hive_and_logs(NEW_DIRTY, &NEW_DIRTY_LOGS) {
        cases.push(set);
    }
    if let Some(set) = hive_and_logs(OLD_DIRTY, &OLD_DIRTY_LOGS[..1]) {
        cases.push(set);
    }
    let mut runs = 0;
    for (hive, logs) in &cases {
        let limit = hive.len() + logs.iter().map(|(_, l)| l.len()).sum::<usize>();
        for which in 0..logs.len() {
            let length = logs[which].1.len();
            // Every byte of the base block copy and the first 64 bytes after it, then a stride.
            let positions = (0..576).chain((576..length).step_by(173));
            for position in positions.filter(|&p| p < length) {
                for mutation in 0..3 {
                    let mut mutated = logs.clone();
                    let bytes = &mut mutated[which].1;
                    match mutation {
                        0 => bytes[position] ^= 0xff,
                        1 => bytes[position] = 0,
                        _ => {
                            let end = (position + 4).min(length);
                            bytes[position..end].fill(0xff);
                        }
                    }
                    runs += 1;
                    match replay(hive, &named(&mutated)) {
                        Ok((out, report)) => {
                            assert!(out.len() <= limit, "grew to {} at {position}", out.len());
                            if !report.applied.is_empty() {
                                assert_clean_base_block(&out);
                            }
                        }
                        Err(e) => assert!(e.is_corrupt_input(), "{e}"),
                    }
                }
            }
        }
    }
    eprintln!("{runs} mutated replays");
}
