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
