//! The event logs, emptied with their names kept, and the leftovers (logs, prefetch, crash
//! dumps, error reports) removed.

mod common;

use common::reference_image::*;

#[test]
fn generalize_to_oobe_empties_the_event_logs() {
    let tree = reference_image();
    for log in EVENT_LOGS {
        assert_eq!(
            evtx_records(&tree.path(&format!("Windows/System32/winevt/Logs/{log}"))),
            2
        );
    }
    generalize(&tree, &options());

    // Event logs: replaced by empty logs, names kept, other files alone.
    for log in EVENT_LOGS {
        let path = tree.path(&format!("Windows/System32/winevt/Logs/{log}"));
        assert_eq!(evtx_records(&path), 0, "{log}");
        assert_eq!(std::fs::read(&path).unwrap(), reseal::evtx::empty_log());
    }
    assert_eq!(
        std::fs::read(tree.path("Windows/System32/winevt/Logs/readme.txt")).unwrap(),
        b"not a log"
    );
}

#[test]
fn generalize_to_oobe_removes_the_leftovers() {
    let (tree, _) = generalized_reference_image();
    // Leftovers.
    for gone in [
        "Windows/Panther/setupact.log",
        "Windows/Panther/setuperr.log",
        "Windows/Panther/diagerr.xml",
        "Windows/Panther/UnattendGC",
        "Windows/Panther/Unattend",
        "Windows/System32/Sysprep/unattend.xml",
        "Windows/Prefetch/CMD.EXE-0BD30981.pf",
        "Windows/Prefetch/Layout.ini",
        "Windows/Prefetch/AgAppLaunch.db",
        "ProgramData/Microsoft/Windows/WER/ReportQueue/AppCrash_x",
        "ProgramData/Microsoft/Windows/WER/ReportArchive/AppCrash_y",
        "ProgramData/Microsoft/Windows/WER/Temp/x.tmp",
        "Windows/MEMORY.DMP",
        "Windows/Minidump/112426-01.dmp",
        "Windows/LiveKernelReports/WATCHDOG",
    ] {
        assert!(!exists(&tree, gone), "{gone} should be gone");
    }
    for kept in [
        "Windows/Panther/MigLog.xml",
        "Windows/Prefetch/ReadyBoot/Trace1.fx",
        "Windows/System32/Sysprep/sysprep.exe",
        "ProgramData/Microsoft/Windows/WER/ReportQueue",
        "Windows/Minidump",
        "Windows/LiveKernelReports",
    ] {
        assert!(exists(&tree, kept), "{kept} should stay");
    }
}
