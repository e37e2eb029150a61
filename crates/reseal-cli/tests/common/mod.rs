//! Running the built `reseal` binary from tests.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `reseal` with `args`.
pub fn reseal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(args)
        .output()
        .expect("the reseal binary runs")
}

/// The exit code (-1 when killed by a signal).
pub fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// stdout and stderr together, for assertion messages and searches.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A plan's JSON with the time of its record in the image (`run-record`'s first line) left out:
/// two runs without SOURCE_DATE_EPOCH plan the same record at different clock times.
pub fn untimed(plan: &serde_json::Value) -> serde_json::Value {
    let mut plan = plan.clone();
    if let Some(changes) = plan["changes"].as_array_mut() {
        for change in changes.iter_mut().filter(|c| c["provider"] == "run-record") {
            let text = change["contents"]["text"].as_str().unwrap_or_default();
            let (first, rest) = text.split_once("\r\n").unwrap_or_default();
            assert!(first.starts_with("== reseal "), "{first}");
            change["contents"]["text"] = rest.into();
            change.as_object_mut().unwrap().remove("size");
        }
    }
    plan
}
