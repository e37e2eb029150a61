//! The hive benchmark that `cargo xtask bench` runs (built in release mode).
//!
//! `hive_bench generate FILE KEYS` writes a hive shaped like a Windows 10 SOFTWARE hive: COM class
//! registrations, interfaces, file extensions and per-product settings, with Windows-like names and
//! value sizes; sibling lists of at most 50,000 keys, the rest of a family going under
//! `WOW6432Node`. `hive_bench walk FILE` opens it and reads every key and value (names, types, data).
//! `hive_bench edit FILE OUT` makes 100 edits (50 value sets, 25 key creations, 25 value deletions)
//! and commits to OUT. Each prints one JSON line with its counts, seconds and peak memory.

use std::time::Instant;

use reseal_hive::data::encode_sz;
use reseal_hive::{Hive, Key, ValueType};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["generate", file, keys] => keys
            .parse()
            .map_err(|_| format!("KEYS must be a number, got {keys:?}"))
            .and_then(|keys| generate(file, keys)),
        ["walk", file] => walk(file),
        ["edit", file, out] => edit(file, out),
        ["edited-guids"] => {
            let guids: Vec<String> = edited_clsids().collect();
            println!("{}", guids.join(","));
            Ok(())
        }
        _ => Err("usage: hive_bench generate FILE KEYS | walk FILE | edit FILE OUT".to_string()),
    };
    if let Err(message) = result {
        eprintln!("hive_bench: {message}");
        std::process::exit(1);
    }
}

/// A deterministic GUID-looking string for item `i` of a family.
fn guid(family: u32, i: u32) -> String {
    let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((family as u64) << 40);
    format!(
        "{{{:08X}-{:04X}-{:04X}-{:04X}-{:012X}}}",
        (x >> 32) as u32,
        (x >> 16) as u16,
        x as u16,
        i as u16,
        x.rotate_left(17) & 0xFFFF_FFFF_FFFF
    )
}

/// The longest sibling list the generator makes. The largest lists of real SOFTWARE hives are of
/// this order, and python3-hivex refuses a key with more than 70,000 subkeys.
const MAX_SIBLINGS: u32 = 50_000;

/// The parent key of item `i` of a family rooted at `root`: the first [`MAX_SIBLINGS`] items go
/// under `root`, the next ones under its 32-bit view `WOW6432Node\root`, then `WOW6432Node2\root`...
fn family_parent(root: &str, i: u32) -> String {
    match i / MAX_SIBLINGS {
        0 => root.to_string(),
        1 => format!("WOW6432Node\\{root}"),
        n => format!("WOW6432Node{n}\\{root}"),
    }
}

fn generate(file: &str, keys: u32) -> Result<(), String> {
    let start = Instant::now();
    let mut hive = Hive::new_empty("ROOT", 5);
    let e = |err: reseal_hive::Error| err.to_string();
    // About 40% CLSIDs (2 keys each), 30% interfaces (2 keys each), 20% extensions, 10% settings.
    let clsids = keys / 5;
    let interfaces = keys * 3 / 20;
    let extensions = keys / 5;
    let settings = keys / 10;
    let mut created = 0u64;
    for i in 0..clsids {
        let key = format!("{}\\{}", family_parent("Classes\\CLSID", i), guid(1, i));
        let server = format!("{key}\\InprocServer32");
        hive.create_key(&server).map_err(e)?;
        hive.set_value(
            &key,
            "",
            ValueType::SZ,
            &encode_sz(&format!("Windows Component {i} Class")),
        )
        .map_err(e)?;
        let dll = format!("%SystemRoot%\\System32\\component{:05}.dll", i % 40_000);
        hive.set_value(&server, "", ValueType::EXPAND_SZ, &encode_sz(&dll))
            .map_err(e)?;
        hive.set_value(&server, "ThreadingModel", ValueType::SZ, &encode_sz("Both"))
            .map_err(e)?;
        created += 2;
    }
    for i in 0..interfaces {
        let key = format!("{}\\{}", family_parent("Classes\\Interface", i), guid(2, i));
        let stub = format!("{key}\\ProxyStubClsid32");
        hive.create_key(&stub).map_err(e)?;
        hive.set_value(
            &key,
            "",
            ValueType::SZ,
            &encode_sz(&format!("IComponentInterface{i}")),
        )
        .map_err(e)?;
        hive.set_value(
            &stub,
            "",
            ValueType::SZ,
            &encode_sz(&guid(1, i % clsids.max(1))),
        )
        .map_err(e)?;
        created += 2;
    }
    for i in 0..extensions {
        let key = format!("{}\\.ext{i:06}", family_parent("Classes", i));
        hive.create_key(&key).map_err(e)?;
        hive.set_value(&key, "", ValueType::SZ, &encode_sz(&format!("ext{i}file")))
            .map_err(e)?;
        hive.set_value(
            &key,
            "Content Type",
            ValueType::SZ,
            &encode_sz("application/octet-stream"),
        )
        .map_err(e)?;
        created += 1;
    }
    for i in 0..settings {
        let key = format!("Microsoft\\Product{:03}\\Settings{i:06}", i % 300);
        hive.create_key(&key).map_err(e)?;
        hive.set_value(&key, "Enabled", ValueType::DWORD, &(i % 2).to_le_bytes())
            .map_err(e)?;
        hive.set_value(&key, "Data", ValueType::BINARY, &[(i % 251) as u8; 48])
            .map_err(e)?;
        created += 1;
    }
    let bytes = hive.into_committed();
    std::fs::write(file, &bytes).map_err(|err| format!("{file}: {err}"))?;
    println!(
        "{{\"generated_keys\":{created},\"bytes\":{},\"seconds\":{:.3}}}",
        bytes.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn walk(file: &str) -> Result<(), String> {
    let start = Instant::now();
    let bytes = std::fs::read(file).map_err(|err| format!("{file}: {err}"))?;
    let hive = Hive::from_bytes(bytes).map_err(|err| format!("{file}: {err}"))?;
    let (mut keys, mut values, mut data_bytes) = (0u64, 0u64, 0u64);
    let mut stack: Vec<Key<'_>> = vec![hive.root().map_err(|err| err.to_string())?];
    while let Some(key) = stack.pop() {
        keys += 1;
        let _name = key.name().map_err(|err| err.to_string())?;
        for value in key.values().map_err(|err| err.to_string())? {
            let _name = value.name().map_err(|err| err.to_string())?;
            let _type = value.value_type().map_err(|err| err.to_string())?;
            data_bytes += value.data().map_err(|err| err.to_string())?.len() as u64;
            values += 1;
        }
        stack.extend(key.subkeys().map_err(|err| err.to_string())?);
    }
    println!(
        "{{\"keys\":{keys},\"values\":{values},\"data_bytes\":{data_bytes},\"seconds\":{:.3},\"peak_rss_kib\":{}}}",
        start.elapsed().as_secs_f64(),
        peak_rss_kib()
    );
    Ok(())
}

/// The 50 CLSIDs whose ThreadingModel the edit step changes.
fn edited_clsids() -> impl Iterator<Item = String> {
    (0..50u32).map(|i| guid(1, i * 97))
}

fn edit(file: &str, out: &str) -> Result<(), String> {
    let start = Instant::now();
    let bytes = std::fs::read(file).map_err(|err| format!("{file}: {err}"))?;
    let mut hive = Hive::from_bytes(bytes).map_err(|err| format!("{file}: {err}"))?;
    let e = |err: reseal_hive::Error| err.to_string();
    for clsid in edited_clsids() {
        let key = format!("Classes\\CLSID\\{clsid}\\InprocServer32");
        hive.set_value(
            &key,
            "ThreadingModel",
            ValueType::SZ,
            &encode_sz("Apartment"),
        )
        .map_err(e)?;
    }
    for i in 0..25u32 {
        hive.create_key(&format!("Microsoft\\Product{:03}\\Added{i:02}", i * 7))
            .map_err(e)?;
    }
    for i in 0..25u32 {
        hive.delete_value(&format!("Classes\\.ext{:06}", i * 101), "Content Type")
            .map_err(e)?;
    }
    // Written as hivex's commit writes it (no fsync), from the hive's own bytes.
    let committed = hive.into_committed();
    std::fs::write(out, &committed).map_err(|err| format!("{out}: {err}"))?;
    println!(
        "{{\"edits\":100,\"seconds\":{:.3},\"peak_rss_kib\":{}}}",
        start.elapsed().as_secs_f64(),
        peak_rss_kib()
    );
    Ok(())
}

/// Peak resident memory of this process (VmHWM), in KiB; 0 where /proc is not available.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
