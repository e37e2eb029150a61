//! Parses the input as an unattend.xml (any encoding `reseal` accepts), queries it, merges the
//! settings generalize adds, and writes it: typed errors only, and what reseal writes must parse
//! again to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal::answer_file::AnswerFile;
use reseal::AnswerSetting;

fuzz_target!(|data: &[u8]| {
    let Ok(mut answer_file) = AnswerFile::from_bytes(data) else {
        return;
    };
    let _ = answer_file.contains_passwords();
    let _ = answer_file.persist_all_device_installs();
    let _ = answer_file.skip_rearm();
    let _ = answer_file.to_redacted_xml();
    let written = answer_file.to_xml();
    let again = AnswerFile::parse(&written).expect("written XML parses");
    assert_eq!(again.to_xml(), written, "writing is not stable");

    let setting = |pass: &str, path: &[&str], value: &str| AnswerSetting {
        provider: "fuzz",
        pass: pass.to_string(),
        component: "Microsoft-Windows-Shell-Setup".to_string(),
        path: path.iter().map(|p| p.to_string()).collect(),
        value: value.to_string(),
    };
    answer_file.merge(
        &[
            setting("specialize", &["ComputerName"], "*"),
            setting("oobeSystem", &["OOBE", "SkipMachineOOBE"], "false"),
            setting(
                "specialize",
                &["RunSynchronous", "RunSynchronousCommand", "Path"],
                "cmd /c exit",
            ),
        ],
        "amd64",
    );
    let merged = answer_file.to_xml();
    let again = AnswerFile::parse(&merged).expect("merged XML parses");
    assert_eq!(
        again.setting(
            "specialize",
            "Microsoft-Windows-Shell-Setup",
            &["ComputerName"]
        ),
        Some("*".to_string()),
        "the merged setting is not there"
    );
});
