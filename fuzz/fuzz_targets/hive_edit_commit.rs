//! Opens a hive, applies an edit script derived from the input (see
//! [`reseal_fuzz::hive::edits`]), commits and re-opens the result. Nothing may panic; a hive that
//! was clean before the edits must be clean after them, and no edit on it may report corruption.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_hive::Hive;

fuzz_target!(|data: &[u8]| {
    let (script, hive_bytes) = reseal_fuzz::hive::split_script(data);
    let Ok(mut hive) = Hive::from_bytes(hive_bytes.to_vec()) else {
        return;
    };
    let was_clean = hive.check().is_clean();
    for edit in reseal_fuzz::hive::edits(&hive, script) {
        if let Err(error) = reseal_fuzz::hive::apply(&mut hive, &edit) {
            assert!(
                !(was_clean && error.is_corrupt_input()),
                "{edit:?} on a clean hive reported corruption: {error}"
            );
        }
    }
    let committed = hive.commit();
    match Hive::from_bytes(committed) {
        Ok(reopened) => {
            reseal_fuzz::hive::walk(&reopened);
            let report = reopened.check();
            assert!(
                !was_clean || report.is_clean(),
                "edits made a clean hive unclean: {report:?}"
            );
        }
        Err(error) => assert!(!was_clean, "a committed clean hive does not open: {error}"),
    }
});
