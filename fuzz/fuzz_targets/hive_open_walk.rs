//! Opens the input as a hive, reads everything reachable and checks the structure: any input must
//! end in a typed error or a readable hive, never a panic, a hang or a huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_hive::Hive;

fuzz_target!(|data: &[u8]| {
    let Ok(hive) = Hive::from_bytes(data.to_vec()) else {
        return;
    };
    reseal_fuzz::hive::walk(&hive);
    let _ = hive.key("a\\b");
    let _ = hive.check();
});
