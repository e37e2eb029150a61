//! `reseal hive FILE ...`: look at and edit one registry hive file, for people debugging images.
//!
//! The hive is opened with its transaction logs replayed (as Windows would), and edits are written
//! back atomically with the logs emptied, keeping the files' owner, permissions and extended
//! attributes (the NTFS security descriptor on an ntfs-3g mount), exactly as the generalize
//! commands do: through the directory target's `replace_host_hive`.

use std::path::Path;

use clap::Subcommand;
use reseal_hive::data::{
    decode_multi_sz, decode_sz, encode_dword, encode_multi_sz, encode_qword, encode_sz,
};
use reseal_hive::{CheckReport, Hive, Key, ValueType};
use reseal_nt::hex::{self, HexError};
use serde_json::{json, Value as Json};

use crate::CliError;

#[derive(Subcommand, Debug)]
pub enum HiveCommand {
    /// List the subkeys and values of a key ("" or "\" is the root).
    Ls {
        #[arg(default_value = "")]
        path: String,
    },
    /// Show one value, or every value of the key when VALUE is left out ("@" = default value).
    Get { path: String, value: Option<String> },
    /// Set a value, creating the key if needed. DATA: text for sz/expand_sz, one argument per
    /// string for multi_sz, a number (decimal or 0x) for dword/qword, hex bytes otherwise.
    Set {
        path: String,
        value: String,
        /// REG_SZ, sz, dword, qword, multi_sz, expand_sz, binary, none, or a number.
        #[arg(long = "type", short = 't', value_parser = parse_value_type)]
        value_type: ValueType,
        data: Vec<String>,
    },
    /// Delete a value, or the key with everything below it when VALUE is left out.
    Del { path: String, value: Option<String> },
    /// Print the key and everything below it in regedit's .reg format (Windows Registry Editor 5.00).
    Export {
        #[arg(default_value = "")]
        path: String,
        /// The root to print in key names, e.g. HKEY_LOCAL_MACHINE\SYSTEM.
        #[arg(long, default_value = "HKEY_LOCAL_MACHINE\\HIVE")]
        root: String,
    },
    /// Structure report: dirty state, log replay outcome, and what a full walk of the hive finds.
    Check,
}

fn parse_value_type(text: &str) -> Result<ValueType, String> {
    ValueType::parse(text).ok_or_else(|| format!("unknown value type {text:?}"))
}

/// Runs one `reseal hive` command on `file`.
pub fn run(file: &Path, command: HiveCommand, as_json: bool) -> Result<(), CliError> {
    let (mut hive, report) = Hive::open_file(file).map_err(|e| CliError::hive(file, e))?;
    match command {
        HiveCommand::Ls { path } => {
            let key = existing_key(&hive, file, &path)?;
            let subkeys = key.subkeys().map_err(|e| CliError::hive(file, e))?;
            let values = key.values().map_err(|e| CliError::hive(file, e))?;
            if as_json {
                let subkeys: Result<Vec<String>, _> = subkeys.iter().map(Key::name).collect();
                let values: Result<Vec<Json>, _> = values.iter().map(value_json).collect();
                print_json(&json!({
                    "subkeys": subkeys.map_err(|e| CliError::hive(file, e))?,
                    "values": values.map_err(|e| CliError::hive(file, e))?,
                }));
            } else {
                for subkey in &subkeys {
                    outln!("{}\\", subkey.name().map_err(|e| CliError::hive(file, e))?);
                }
                for value in &values {
                    outln!(
                        "{}",
                        value_line(value).map_err(|e| CliError::hive(file, e))?
                    );
                }
            }
        }
        HiveCommand::Get { path, value } => {
            let key = existing_key(&hive, file, &path)?;
            let values = match value {
                Some(name) => {
                    let name = default_value_name(&name);
                    match key.value(name).map_err(|e| CliError::hive(file, e))? {
                        Some(v) => vec![v],
                        None => {
                            return Err(CliError::not_found(format!(
                                "{}: value {name:?} not found in key {path:?}",
                                file.display()
                            )))
                        }
                    }
                }
                None => key.values().map_err(|e| CliError::hive(file, e))?,
            };
            if as_json {
                let values: Result<Vec<Json>, _> = values.iter().map(value_json).collect();
                print_json(&Json::Array(values.map_err(|e| CliError::hive(file, e))?));
            } else {
                for value in &values {
                    outln!(
                        "{}",
                        value_line(value).map_err(|e| CliError::hive(file, e))?
                    );
                }
            }
        }
        HiveCommand::Set {
            path,
            value,
            value_type,
            data,
        } => {
            let bytes = encode_data(value_type, &data).map_err(CliError::usage)?;
            hive.create_key(&path)
                .map_err(|e| CliError::hive(file, e))?;
            hive.set_value(&path, default_value_name(&value), value_type, &bytes)
                .map_err(|e| CliError::hive(file, e))?;
            write_back(hive, file)?;
        }
        HiveCommand::Del { path, value } => {
            let existed = match value {
                Some(name) => hive.delete_value(&path, default_value_name(&name)),
                None => hive.delete_key(&path),
            }
            .map_err(|e| CliError::hive(file, e))?;
            if !existed {
                return Err(CliError::not_found(format!(
                    "{}: nothing to delete at {path:?}",
                    file.display()
                )));
            }
            write_back(hive, file)?;
        }
        HiveCommand::Export { path, root } => {
            let text = reseal_hive::reg_file::export(&hive, &path, &root)
                .map_err(|e| CliError::hive(file, e))?;
            out!("{text}");
        }
        HiveCommand::Check => {
            let structure = hive.check();
            if as_json {
                print_json(&json!({
                    "file": file.display().to_string(),
                    "was_dirty": report.was_dirty,
                    "recovered": report.recovered,
                    "logs_applied": report.applied.iter().map(|l| json!({
                        "log": l.name, "entries": l.entries,
                        "first_sequence": l.first_sequence, "last_sequence": l.last_sequence,
                        "pages": l.pages,
                    })).collect::<Vec<_>>(),
                    "log_notes": report.notes,
                    "structure": check_json(&structure),
                }));
            } else {
                outln!("file: {}", file.display());
                outln!("dirty when opened: {}", yes_no(report.was_dirty));
                for log in &report.applied {
                    outln!(
                        "log applied: {} ({} entries, sequence {}..{}, {} pages)",
                        log.name,
                        log.entries,
                        log.first_sequence,
                        log.last_sequence,
                        log.pages
                    );
                }
                for note in &report.notes {
                    outln!("log note: {note}");
                }
                out!("{}", check_text(&structure));
            }
            if !structure.is_clean() {
                return Err(CliError::corrupt(format!(
                    "{}: the structure check found problems",
                    file.display()
                )));
            }
        }
    }
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `@` is regedit's name for the default (unnamed) value.
fn default_value_name(name: &str) -> &str {
    if name == "@" {
        ""
    } else {
        name
    }
}

fn existing_key<'h>(hive: &'h Hive, file: &Path, path: &str) -> Result<Key<'h>, CliError> {
    let path = path.trim_matches('\\');
    hive.key(path)
        .map_err(|e| CliError::hive(file, e))?
        .ok_or_else(|| CliError::not_found(format!("{}: key {path:?} not found", file.display())))
}

fn write_back(hive: Hive, file: &Path) -> Result<(), CliError> {
    Ok(reseal::targets::directory::replace_host_hive(file, hive)?)
}

fn print_json(value: &Json) {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Parses command-line DATA for a value of `value_type` into the bytes stored in the hive.
fn encode_data(value_type: ValueType, data: &[String]) -> Result<Vec<u8>, String> {
    let single = || match data {
        [one] => Ok(one.as_str()),
        _ => Err(format!(
            "{value_type} takes exactly one DATA argument, got {}",
            data.len()
        )),
    };
    match value_type {
        ValueType::SZ | ValueType::EXPAND_SZ | ValueType::LINK => Ok(encode_sz(single()?)),
        ValueType::MULTI_SZ => Ok(encode_multi_sz(data)),
        ValueType::DWORD => parse_number(single()?)
            .and_then(|n| u32::try_from(n).map_err(|_| format!("{n} does not fit in a DWORD")))
            .map(encode_dword),
        ValueType::DWORD_BIG_ENDIAN => parse_number(single()?)
            .and_then(|n| u32::try_from(n).map_err(|_| format!("{n} does not fit in a DWORD")))
            .map(|n| n.to_be_bytes().to_vec()),
        ValueType::QWORD => parse_number(single()?).map(encode_qword),
        _ => parse_hex(&data.join("")),
    }
}

fn parse_number(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("{text:?} is not a number (decimal or 0x hex)"))
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | ',' | ':'))
        .collect();
    hex::decode(&digits).map_err(|err| match err {
        HexError::OddLength => format!("hex data {text:?} has an odd number of digits"),
        HexError::InvalidDigit { .. } => format!("{text:?} is not hex data"),
    })
}

/// Type-aware text for a value's data.
fn data_text(value_type: ValueType, data: &[u8]) -> String {
    match value_type {
        ValueType::SZ | ValueType::EXPAND_SZ | ValueType::LINK => format!("{:?}", decode_sz(data)),
        ValueType::MULTI_SZ => format!("{:?}", decode_multi_sz(data)),
        ValueType::DWORD if data.len() == 4 => {
            let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            format!("{n:#010x} ({n})")
        }
        ValueType::QWORD if data.len() == 8 => {
            let n = u64::from_le_bytes(data.try_into().unwrap_or_default());
            format!("{n:#018x} ({n})")
        }
        _ => hex::encode_separated(data, " "),
    }
}

fn value_line(value: &reseal_hive::Value<'_>) -> reseal_hive::Result<String> {
    let name = value.name()?;
    let value_type = value.value_type()?;
    let data = value.data()?;
    let shown = if name.is_empty() {
        "@".to_string()
    } else {
        name
    };
    Ok(format!(
        "{shown} = {value_type} {}",
        data_text(value_type, &data)
    ))
}

fn value_json(value: &reseal_hive::Value<'_>) -> reseal_hive::Result<Json> {
    let value_type = value.value_type()?;
    let data = value.data()?;
    let typed = match value_type {
        ValueType::SZ | ValueType::EXPAND_SZ | ValueType::LINK => json!(decode_sz(&data)),
        ValueType::MULTI_SZ => json!(decode_multi_sz(&data)),
        ValueType::DWORD if data.len() == 4 => {
            json!(u32::from_le_bytes([data[0], data[1], data[2], data[3]]))
        }
        ValueType::QWORD if data.len() == 8 => {
            json!(u64::from_le_bytes(data[..8].try_into().unwrap_or_default()))
        }
        _ => Json::Null,
    };
    Ok(json!({
        "name": value.name()?,
        "type": value_type.to_string(),
        "data_hex": hex::encode(&data),
        "data": typed,
    }))
}

fn check_json(report: &CheckReport) -> Json {
    json!({
        "clean": report.is_clean(),
        "dirty": report.dirty,
        "keys": report.keys,
        "values": report.values,
        "allocated_cells": report.allocated_cells,
        "free_cells": report.free_cells,
        "orphan_cells": report.orphan_cells,
        "security_count_mismatches": report.security_count_mismatches.iter()
            .map(|(cell, stored, counted)| json!({"cell": cell, "stored": stored, "counted": counted}))
            .collect::<Vec<_>>(),
        "problems": report.problems,
    })
}

fn check_text(report: &CheckReport) -> String {
    let mut text = format!(
        "dirty now: {}\nkeys: {}, values: {}\ncells: {} allocated, {} free\n",
        yes_no(report.dirty),
        report.keys,
        report.values,
        report.allocated_cells,
        report.free_cells
    );
    if !report.orphan_cells.is_empty() {
        text.push_str(&format!(
            "orphan cells (allocated, unreferenced): {}\n",
            report
                .orphan_cells
                .iter()
                .map(|o| format!("{o:#x}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    for (cell, stored, counted) in &report.security_count_mismatches {
        text.push_str(&format!(
            "security cell {cell:#x}: reference count {stored}, used by {counted} keys\n"
        ));
    }
    for problem in &report.problems {
        text.push_str(&format!("problem: {problem}\n"));
    }
    text.push_str(if report.is_clean() {
        "result: clean\n"
    } else {
        "result: problems found\n"
    });
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_data_encodes_per_type() {
        assert_eq!(
            encode_data(ValueType::DWORD, &["0x10".into()]).unwrap(),
            vec![16, 0, 0, 0]
        );
        assert_eq!(
            encode_data(ValueType::SZ, &["ab".into()]).unwrap(),
            vec![b'a', 0, b'b', 0, 0, 0]
        );
        assert_eq!(
            encode_data(ValueType::BINARY, &["01 ff".into()]).unwrap(),
            vec![1, 255]
        );
        assert!(encode_data(ValueType::DWORD, &["4294967296".into()]).is_err());
        assert!(encode_data(ValueType::BINARY, &["abc".into()]).is_err());
        assert!(encode_data(ValueType::SZ, &[]).is_err());
    }
}
