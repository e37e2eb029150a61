//! Registry Editor's `.reg` text format ("Windows Registry Editor Version 5.00"): [`export`] a
//! key tree of a [`Hive`] as regedit writes it, [`parse`] a file into [`RegOperation`]s and
//! [`apply`] them to a hive.
//!
//! The syntax, one item per line (lines end with CRLF when exported; LF is accepted):
//!
//! ```text
//! Windows Registry Editor Version 5.00
//!
//! ; a comment
//! [HKEY_LOCAL_MACHINE\SYSTEM\Setup]          create the key (and its parents)
//! [-HKEY_LOCAL_MACHINE\SYSTEM\Old]           delete the key and everything below it
//! @="default value"                          REG_SZ; \\ and \" are the only escapes
//! "CmdLine"="oobe\\windeploy.exe"
//! "SetupType"=dword:00000001                 REG_DWORD, 1 to 8 hex digits
//! "Blob"=hex:01,02,ff                        REG_BINARY
//! "Path"=hex(2):25,00,00,00                  any other type N: hex(N), N in hex
//! "Gone"=-                                   delete the value
//! ```
//!
//! Hex data continues on the next line after a trailing `\`, as regedit wraps it at 80 columns.
//! Value lines belong to the key of the latest `[...]` line.
//!
//! Exported strings use the `"..."` form only when it gives back exactly the same bytes (a
//! NUL-terminated UTF-16LE string without CR, LF or NUL inside), `dword:` only for 4-byte
//! REG_DWORD data; anything else is written as `hex(N):`, so export then import is lossless.

use crate::data::{decode_sz, encode_sz, ValueType};
use crate::{Error, Hive, Key, Result};
use reseal_nt::utf16;

/// The first line of a version 5 `.reg` file.
pub const HEADER: &str = "Windows Registry Editor Version 5.00";

/// regedit starts a continuation line once a hex line reaches this many characters.
const HEX_WRAP_COLUMN: usize = 77;
/// The indent of hex continuation lines.
const HEX_CONTINUATION_INDENT: &str = "  ";

/// One change a `.reg` file asks for. Key paths are as written in the file, root label included
/// (`HKEY_LOCAL_MACHINE\SYSTEM\Setup`); [`apply`] strips the label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegOperation {
    /// `[path]`: create the key and any missing parents.
    CreateKey { path: String },
    /// `[-path]`: delete the key and all below it (nothing happens when it is absent).
    DeleteKey { path: String },
    /// `"name"=data` or `@=data` (`name` is "" for the default value).
    SetValue {
        key: String,
        name: String,
        value_type: ValueType,
        data: Vec<u8>,
    },
    /// `"name"=-`.
    DeleteValue { key: String, name: String },
}

/// Exports the key at `key_path` (`""` = the hive's root) and everything below it, with key
/// paths written under `root_label` (e.g. `HKEY_LOCAL_MACHINE\SYSTEM`). Keys come in subkey-list
/// order, each followed by its values in value-list order.
pub fn export(hive: &Hive, key_path: &str, root_label: &str) -> Result<String> {
    let key = hive
        .key(key_path)?
        .ok_or_else(|| Error::KeyNotFound(key_path.to_string()))?;
    let mut full_path = root_label.trim_end_matches('\\').to_string();
    if !key_path.is_empty() {
        full_path.push('\\');
        full_path.push_str(key_path.trim_matches('\\'));
    }
    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str("\r\n\r\n");
    export_key(key, &full_path, &mut out)?;
    Ok(out)
}

fn export_key(key: Key<'_>, full_path: &str, out: &mut String) -> Result<()> {
    ensure_single_line("key", full_path)?;
    out.push('[');
    out.push_str(full_path);
    out.push_str("]\r\n");
    for value in key.values()? {
        let name = value.name()?;
        ensure_single_line("value name", &name)?;
        export_value(&name, value.value_type()?, &value.data()?, out);
    }
    out.push_str("\r\n");
    for subkey in key.subkeys()? {
        let path = format!("{full_path}\\{}", subkey.name()?);
        export_key(subkey, &path, out)?;
    }
    Ok(())
}

/// A name with a line break cannot be written in a line-based file (regedit would write a file
/// it cannot read back).
fn ensure_single_line(what: &str, name: &str) -> Result<()> {
    if name.contains(['\r', '\n']) {
        return Err(Error::InvalidArgument(format!(
            "{what} {name:?} contains a line break and cannot be written in a .reg file"
        )));
    }
    Ok(())
}

/// Appends one value line (possibly wrapped over several lines).
fn export_value(name: &str, value_type: ValueType, data: &[u8], out: &mut String) {
    let line_start = out.len();
    if name.is_empty() {
        out.push('@');
    } else {
        out.push('"');
        out.push_str(&escape(name));
        out.push('"');
    }
    out.push('=');
    if let Some(text) = exportable_string(value_type, data) {
        out.push('"');
        out.push_str(&escape(&text));
        out.push('"');
    } else if value_type == ValueType::DWORD && data.len() == 4 {
        let v = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        out.push_str(&format!("dword:{v:08x}"));
    } else {
        if value_type == ValueType::BINARY {
            out.push_str("hex:");
        } else {
            out.push_str(&format!("hex({:x}):", value_type.0));
        }
        export_hex(data, out.len() - line_start, out);
    }
    out.push_str("\r\n");
}

/// The text of a REG_SZ whose `"..."` form reads back as exactly `data`.
fn exportable_string(value_type: ValueType, data: &[u8]) -> Option<String> {
    if value_type != ValueType::SZ {
        return None;
    }
    let text = decode_sz(data);
    let representable = !text.contains(['\r', '\n', '\0']) && encode_sz(&text) == data;
    representable.then_some(text)
}

/// Appends `data` as comma-separated hex pairs, wrapping as regedit does: after the comma that
/// brings the line to [`HEX_WRAP_COLUMN`] characters comes `\`, CRLF and a two-space indent.
fn export_hex(data: &[u8], mut line_len: usize, out: &mut String) {
    for (i, byte) in data.iter().enumerate() {
        out.push_str(&format!("{byte:02x}"));
        if i + 1 == data.len() {
            break;
        }
        out.push(',');
        line_len += 3;
        if line_len >= HEX_WRAP_COLUMN {
            out.push_str("\\\r\n");
            out.push_str(HEX_CONTINUATION_INDENT);
            line_len = HEX_CONTINUATION_INDENT.len();
        }
    }
}

/// `\` → `\\`, `"` → `\"`.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Parses `.reg` text (a leading byte-order mark is ignored). Errors name the line.
pub fn parse(text: &str) -> Result<Vec<RegOperation>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line));

    let header = lines.find(|(_, line)| !line.trim().is_empty());
    match header {
        Some((_, line)) if line.trim() == HEADER => {}
        Some((number, line)) => {
            return Err(line_error(
                number,
                format!("expected {HEADER:?}, found {:?}", line.trim()),
            ))
        }
        None => return Err(line_error(1, format!("empty file, expected {HEADER:?}"))),
    }

    let mut ops = Vec::new();
    // The key that value lines apply to: (path, deleted by a `[-...]` line).
    let mut current_key: Option<(String, bool)> = None;
    while let Some((number, raw)) = lines.next() {
        let line = raw.trim_start();
        if line.trim_end().is_empty() || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            let (path, delete) = parse_key_line(line.trim_end(), number)?;
            current_key = Some((path.clone(), delete));
            ops.push(if delete {
                RegOperation::DeleteKey { path }
            } else {
                RegOperation::CreateKey { path }
            });
            continue;
        }
        let (key, deleted) = match &current_key {
            Some((key, false)) => (key.clone(), false),
            Some((key, true)) => (key.clone(), true),
            None => return Err(line_error(number, "value line before any [key] line")),
        };
        if deleted {
            return Err(line_error(
                number,
                format!("value line under the deleted key [-{key}]"),
            ));
        }
        let (name, rest) = parse_value_name(line, number)?;
        let rest = rest.trim_start();
        let data_text = rest
            .strip_prefix('=')
            .ok_or_else(|| line_error(number, "expected '=' after the value name"))?
            .trim();
        if data_text.starts_with("hex") {
            // Join the continuation lines of wrapped hex data.
            let mut joined = data_text.to_string();
            while joined.ends_with('\\') {
                joined.pop();
                match lines.next() {
                    Some((_, next)) => joined.push_str(next.trim()),
                    None => {
                        return Err(line_error(
                            number,
                            "hex data continues ('\\') past the end of the file",
                        ))
                    }
                }
            }
            let (value_type, data) = parse_hex_data(&joined, number)?;
            ops.push(RegOperation::SetValue {
                key,
                name,
                value_type,
                data,
            });
        } else if data_text == "-" {
            ops.push(RegOperation::DeleteValue { key, name });
        } else {
            let (value_type, data) = parse_scalar_data(data_text, number)?;
            ops.push(RegOperation::SetValue {
                key,
                name,
                value_type,
                data,
            });
        }
    }
    Ok(ops)
}

/// `[path]` or `[-path]`.
fn parse_key_line(line: &str, number: usize) -> Result<(String, bool)> {
    let inner = line
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .ok_or_else(|| line_error(number, "a key line must be [path] or [-path]"))?;
    let (path, delete) = match inner.strip_prefix('-') {
        Some(path) => (path, true),
        None => (inner, false),
    };
    if path.is_empty() {
        return Err(line_error(number, "empty key path"));
    }
    Ok((path.to_string(), delete))
}

/// `@` or a quoted name with `\\`/`\"` escapes; returns the name and the text after it.
fn parse_value_name(line: &str, number: usize) -> Result<(String, &str)> {
    if let Some(rest) = line.strip_prefix('@') {
        return Ok((String::new(), rest));
    }
    let Some(body) = line.strip_prefix('"') else {
        return Err(line_error(
            number,
            "expected a [key], @=..., \"name\"=... or a ; comment",
        ));
    };
    let (name, consumed) = unescape_quoted(body, number, "value name")?;
    Ok((name, &body[consumed..]))
}

/// Reads an escaped string up to its closing quote; returns it and the bytes consumed
/// (closing quote included).
fn unescape_quoted(body: &str, number: usize, what: &str) -> Result<(String, usize)> {
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => match chars.next() {
                Some((_, escaped @ ('\\' | '"'))) => out.push(escaped),
                Some((_, other)) => {
                    return Err(line_error(
                        number,
                        format!("unknown escape \\{other} in {what} (only \\\\ and \\\" exist)"),
                    ))
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(line_error(number, format!("{what} has no closing quote")))
}

/// `"text"` (REG_SZ) or `dword:xxxxxxxx`.
fn parse_scalar_data(text: &str, number: usize) -> Result<(ValueType, Vec<u8>)> {
    if let Some(body) = text.strip_prefix('"') {
        let (string, consumed) = unescape_quoted(body, number, "string data")?;
        if !body[consumed..].trim().is_empty() {
            return Err(line_error(number, "text after the closing quote"));
        }
        return Ok((ValueType::SZ, encode_sz(&string)));
    }
    if let Some(digits) = text.strip_prefix("dword:") {
        let valid =
            (1..=8).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_hexdigit());
        let value = u32::from_str_radix(digits, 16)
            .ok()
            .filter(|_| valid)
            .ok_or_else(|| {
                line_error(number, format!("dword:{digits} is not 1 to 8 hex digits"))
            })?;
        return Ok((ValueType::DWORD, value.to_le_bytes().to_vec()));
    }
    Err(line_error(
        number,
        format!("unknown data {text:?} (expected \"...\", dword:, hex:, hex(N): or -)"),
    ))
}

/// `hex:xx,xx` or `hex(N):xx,xx` with the continuation lines already joined.
fn parse_hex_data(text: &str, number: usize) -> Result<(ValueType, Vec<u8>)> {
    let (value_type, bytes) = if let Some(bytes) = text.strip_prefix("hex:") {
        (ValueType::BINARY, bytes)
    } else if let Some(rest) = text.strip_prefix("hex(") {
        let (type_digits, bytes) = rest
            .split_once("):")
            .ok_or_else(|| line_error(number, "hex(N): needs a closing \"):\""))?;
        let value_type = u32::from_str_radix(type_digits, 16).map_err(|_| {
            line_error(
                number,
                format!("hex({type_digits}): type is not a hex number"),
            )
        })?;
        (ValueType(value_type), bytes)
    } else {
        return Err(line_error(number, "expected hex: or hex(N):"));
    };
    let mut data = Vec::new();
    let bytes = bytes.trim();
    if bytes.is_empty() {
        return Ok((value_type, data));
    }
    for (index, pair) in bytes.trim_end_matches(',').split(',').enumerate() {
        let pair = pair.trim();
        let byte = (pair.len() == 2 && pair.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| u8::from_str_radix(pair, 16).ok())
            .flatten()
            .ok_or_else(|| {
                line_error(
                    number,
                    format!("hex byte {} is {pair:?}, not two hex digits", index + 1),
                )
            })?;
        data.push(byte);
    }
    Ok((value_type, data))
}

/// Applies parsed operations to `hive`, whose root is the key written as `root_label` in the
/// file (compared case-insensitively; `[root_label]` itself is the root key). A path outside
/// `root_label` is an error; deleting an absent key or value is not (regedit ignores it).
pub fn apply(hive: &mut Hive, ops: &[RegOperation], root_label: &str) -> Result<()> {
    for op in ops {
        match op {
            RegOperation::CreateKey { path } => {
                hive.create_key(strip_root(path, root_label)?)?;
            }
            RegOperation::DeleteKey { path } => {
                let path = strip_root(path, root_label)?;
                if path.is_empty() {
                    return Err(Error::InvalidArgument(format!(
                        "[-{root_label}] would delete the hive's root key"
                    )));
                }
                hive.delete_key(path)?;
            }
            RegOperation::SetValue {
                key,
                name,
                value_type,
                data,
            } => {
                let path = strip_root(key, root_label)?;
                hive.set_value(path, name, *value_type, data)?;
            }
            RegOperation::DeleteValue { key, name } => {
                hive.delete_value(strip_root(key, root_label)?, name)?;
            }
        }
    }
    Ok(())
}

/// The path below `root_label`, or an error when `path` is not under it.
fn strip_root<'p>(path: &'p str, root_label: &str) -> Result<&'p str> {
    let label = root_label.trim_end_matches('\\');
    let prefix_matches = path
        .get(..label.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(label));
    if prefix_matches {
        let rest = &path[label.len()..];
        if rest.is_empty() {
            return Ok("");
        }
        if let Some(below) = rest.strip_prefix('\\') {
            return Ok(below);
        }
    }
    Err(Error::InvalidArgument(format!(
        "key {path} is not under {root_label}"
    )))
}

/// Decodes a `.reg` file's bytes: UTF-16LE with a byte-order mark (what regedit writes) or UTF-8
/// (with or without a mark).
pub fn decode_file(bytes: &[u8]) -> Result<String> {
    if let Some(rest) = bytes.strip_prefix(&utf16::BOM) {
        if rest.len() % 2 != 0 {
            return Err(Error::InvalidArgument(
                "UTF-16 .reg file has an odd number of bytes".to_string(),
            ));
        }
        return utf16::decode_le(rest).map_err(|e| {
            Error::InvalidArgument(format!("UTF-16 .reg file is not valid UTF-16: {e}"))
        });
    }
    let bytes = bytes.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(bytes);
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        Error::InvalidArgument(format!(
            ".reg file is neither UTF-16LE with a byte-order mark nor UTF-8: {e}"
        ))
    })
}

/// Encodes `.reg` text as regedit saves it: UTF-16LE after a byte-order mark.
pub fn encode_file(text: &str) -> Vec<u8> {
    utf16::encode_le_with_bom(text)
}

fn line_error(number: usize, reason: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("line {number}: {reason}"))
}
