//! Replays one or two transaction logs into a hive (the input is split by
//! [`reseal_fuzz::hive::split_logs`]) and opens the result: typed errors only, and the recovered
//! image never larger than the hive plus its logs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_hive::Hive;

fuzz_target!(|data: &[u8]| {
    let (hive, logs) = reseal_fuzz::hive::split_logs(data);
    let named: Vec<(&str, &[u8])> = ["fuzz.LOG1", "fuzz.LOG2"].into_iter().zip(logs).collect();
    let Ok((recovered, _report)) = reseal_hive::log::replay(hive, &named) else {
        return;
    };
    let limit = hive.len() + named.iter().map(|(_, log)| log.len()).sum::<usize>();
    assert!(
        recovered.len() <= limit,
        "replay grew the hive to {} bytes, more than the {limit} bytes of its inputs",
        recovered.len()
    );
    if let Ok(hive) = Hive::from_bytes(recovered) {
        reseal_fuzz::hive::walk(&hive);
        let _ = hive.check();
    }
});
