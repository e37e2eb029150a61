//! Counts the records of the input as an event log file (what `inspect` reports): typed errors
//! only, and never more records than the file has room for.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(count) = reseal_nt::evtx::count_records(data) {
        // The smallest record (header, no BinXML, size copy) takes 28 bytes.
        assert!(
            count <= data.len() as u64 / 28,
            "{count} records in {} bytes",
            data.len()
        );
    }
});
