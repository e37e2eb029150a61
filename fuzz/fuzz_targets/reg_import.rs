//! Decodes the input as a .reg file (UTF-16 with a byte-order mark or UTF-8), parses it and
//! imports it into the sample SOFTWARE hive, then commits and re-opens the hive: typed errors
//! only, and a hive that imported cleanly must re-open and check clean.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_hive::{reg_file, Hive};

const SOFTWARE: &[u8] = include_bytes!("../../fixtures/sample/Windows/System32/config/SOFTWARE");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = reg_file::decode_file(data) else {
        return;
    };
    let Ok(operations) = reg_file::parse(&text) else {
        return;
    };
    let mut hive = Hive::from_bytes(SOFTWARE.to_vec()).expect("the sample hive opens");
    if reg_file::apply(&mut hive, &operations, r"HKEY_LOCAL_MACHINE\SOFTWARE").is_err() {
        return;
    }
    let reopened = Hive::from_bytes(hive.commit()).expect("an imported hive re-opens");
    let report = reopened.check();
    assert!(report.is_clean(), "the import left problems: {report:?}");
    let _ = reg_file::export(&reopened, "", r"HKEY_LOCAL_MACHINE\SOFTWARE");
});
