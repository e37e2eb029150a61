//! Fuzz targets for every parser of reseal: hives and their logs, regedit's .reg text, WIM files
//! and their parts, disk containers (raw, VHD, VHDX with its log), MBR/GPT, event logs, answer
//! files and State.ini. Each target in `fuzz_targets/` feeds its input to one parser and reads
//! everything the result exposes; any panic, hang or huge allocation is a finding.
//!
//! # Running
//!
//! `cargo xtask fuzz [TARGET] [--seconds N]` builds this workspace with the stable toolchain and
//! libFuzzer's coverage flags, seeds each target's corpus from `fixtures/` and
//! `../shared/fixtures/real` (the corpora and crash artifacts stay under the target directory,
//! out of git), and runs each target for a bounded time; `cargo xtask fuzz --ci` runs every
//! target briefly and fails on the first crash, printing its input. A crash is reproduced by
//! running the target's binary on the artifact file.
//!
//! What a run finds is fixed in the parser and kept as a regression test in the crate's own
//! tests (`crates/*/tests/fuzz_regressions.rs`), never as a file here.

pub mod hive;
pub mod sparse_file;

/// Splits `data` at its first byte: the byte chooses among `choices`, the rest is the input.
pub fn choose(data: &[u8], choices: usize) -> Option<(usize, &[u8])> {
    let (&first, rest) = data.split_first()?;
    Some((first as usize % choices, rest))
}
