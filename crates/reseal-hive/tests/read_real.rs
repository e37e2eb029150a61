//! Reading real Windows hives: our tree must equal python3-hivex's, key for key and byte for byte.

mod common;

use common::*;
use reseal_hive::Hive;

#[test]
fn every_real_hive_reads_like_hivex() {
    let mut failures = Vec::new();
    for relative in HIVES_HIVEX_OPENS {
        let Some(bytes) = fixture_bytes(relative) else {
            continue;
        };
        let hive = match Hive::from_bytes(bytes) {
            Ok(hive) => hive,
            Err(e) => {
                failures.push(format!("{relative}: {e}"));
                continue;
            }
        };
        let ours = normalized(our_tree(&hive));
        let path = reseal_testutil::real_fixture(relative).unwrap();
        let theirs = normalized(reseal_testutil::hivex_tree(&path));
        if let Some(difference) = first_difference(&ours, &theirs, relative) {
            failures.push(difference);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
