//! `cargo xtask bench hive`: the regf engine. A generated hive shaped like a Windows 10 SOFTWARE hive (`BENCH_HIVE_KEYS` keys,
//! default 500,000), (1) open + full walk of every key and value and (2) 100 edits + commit, by
//! reseal-hive (release build) and by python3-hivex doing the same work. Each step runs
//! [`RUNS`] times, alternating the two sides, and the fastest run of each is reported: on a busy
//! machine the fastest run is the one least disturbed by other work.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::json_of;

/// How many times each step runs.
const RUNS: usize = 3;

const HIVEX_WORK: &str = r#"
import hivex, json, resource, sys, time
mode, path = sys.argv[1], sys.argv[2]
start = time.monotonic()
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "walk":
    h = hivex.Hivex(path)
    keys = values = data = 0
    stack = [h.root()]
    while stack:
        n = stack.pop()
        keys += 1
        h.node_name(n)
        for v in h.node_values(n):
            h.value_key(v)
            t, d = h.value_value(v)
            data += len(d)
            values += 1
        stack.extend(h.node_children(n))
    print(json.dumps({"keys": keys, "values": values, "data_bytes": data,
                      "seconds": time.monotonic() - start, "peak_rss_kib": peak()}))
else:
    out = sys.argv[3]
    h = hivex.Hivex(path, write=True)
    def node(p):
        n = h.root()
        for part in p.split("\\"):
            n = h.node_get_child(n, part)
            if n is None:
                raise SystemExit("missing key " + p)
        return n
    guids = sys.argv[4].split(",")
    for g in guids:
        n = node("Classes\\CLSID\\" + g + "\\InprocServer32")
        h.node_set_value(n, {"key": "ThreadingModel", "t": 1, "value": "Apartment\0".encode("utf-16-le")})
    for i in range(25):
        h.node_add_child(node("Microsoft\\Product%03d" % (i * 7)), "Added%02d" % i)
    for i in range(25):
        n = node("Classes\\.ext%06d" % (i * 101))
        keep = [{"key": h.value_key(v), "t": h.value_type(v)[0], "value": h.value_value(v)[1]}
                for v in h.node_values(n) if h.value_key(v) != "Content Type"]
        h.node_set_values(n, keep)
    h.commit(out)
    print(json.dumps({"edits": 100, "seconds": time.monotonic() - start, "peak_rss_kib": peak()}))
"#;

/// The generated hive, shared with the WIM bench, which builds its SOFTWARE hive from it.
pub fn generated_hive(work: &Path, keys: u64) -> Result<PathBuf, String> {
    let bench_tool = build_bench_tool()?;
    let hive = work.join(format!("software-{keys}.hive"));
    if !hive.exists() {
        eprintln!(
            "bench: generating a SOFTWARE-shaped hive with {keys} keys (once; kept in {})",
            work.display()
        );
        let generated = json_of(
            Command::new(&bench_tool)
                .arg("generate")
                .arg(&hive)
                .arg(keys.to_string()),
        )?;
        eprintln!("bench: generated {generated}");
    }
    Ok(hive)
}

/// Builds the release `hive_bench` example and returns its path.
fn build_bench_tool() -> Result<PathBuf, String> {
    crate::cargo(&[
        "build",
        "--release",
        "--quiet",
        "--package",
        "reseal-hive",
        "--example",
        "hive_bench",
    ])?;
    Ok(crate::target_dir(&crate::workspace_root())
        .join("release")
        .join("examples")
        .join("hive_bench"))
}

pub fn run(work: &Path) -> Result<(), String> {
    let bench_tool = build_bench_tool()?;
    let keys = super::env_number("BENCH_HIVE_KEYS", 500_000)?;
    if keys < 25_000 {
        return Err(format!(
            "BENCH_HIVE_KEYS={keys}: the edit step needs at least 25000 keys"
        ));
    }
    let hive = generated_hive(work, keys)?;
    let size_mib = std::fs::metadata(&hive)
        .map(|m| m.len() as f64 / 1048576.0)
        .unwrap_or(0.0);

    let (ours_walk, hivex_walk) = fastest_of_each(
        || {
            let mut command = Command::new(&bench_tool);
            command.arg("walk").arg(&hive);
            command
        },
        || {
            let mut command = Command::new(crate::HIVEX_PYTHON);
            command.args(["-c", HIVEX_WORK, "walk"]).arg(&hive);
            command
        },
    )?;
    if ours_walk["keys"] != hivex_walk["keys"] || ours_walk["values"] != hivex_walk["values"] {
        return Err(format!(
            "the two walks disagree: reseal-hive {ours_walk}, hivex {hivex_walk}"
        ));
    }
    let guids = edited_guids(&bench_tool)?;
    let (ours_edit, hivex_edit) = fastest_of_each(
        || {
            let mut command = Command::new(&bench_tool);
            command
                .arg("edit")
                .arg(&hive)
                .arg(work.join("edited-reseal.hive"));
            command
        },
        || {
            let mut command = Command::new(crate::HIVEX_PYTHON);
            command
                .args(["-c", HIVEX_WORK, "edit"])
                .arg(&hive)
                .arg(work.join("edited-hivex.hive"))
                .arg(&guids);
            command
        },
    )?;

    println!("\n== Hive engine (load average {})", super::load_average());
    println!(
        "\nHive: {} keys, {} values, {size_mib:.1} MiB ({})\n",
        ours_walk["keys"],
        ours_walk["values"],
        hive.display()
    );
    println!("Fastest of {RUNS} runs each.\n");
    println!("| work | reseal-hive | python3-hivex |");
    println!("|---|---|---|");
    for (label, ours, theirs) in [
        ("open + full walk", &ours_walk, &hivex_walk),
        ("100 edits + commit", &ours_edit, &hivex_edit),
    ] {
        println!(
            "| {label} | {:.2} s, peak {:.0} MiB | {:.2} s, peak {:.0} MiB |",
            ours["seconds"].as_f64().unwrap_or(f64::NAN),
            ours["peak_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
            theirs["seconds"].as_f64().unwrap_or(f64::NAN),
            theirs["peak_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
        );
    }
    Ok(())
}

/// The CLSIDs the edit step touches, in the form python needs (the example derives the same ones).
fn edited_guids(bench_tool: &Path) -> Result<String, String> {
    let out = Command::new(bench_tool)
        .arg("edited-guids")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bench_tool.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs our side and hivex's side of a step [`RUNS`] times, alternating, and returns the fastest
/// run of each.
fn fastest_of_each(
    ours: impl Fn() -> Command,
    hivex: impl Fn() -> Command,
) -> Result<(Value, Value), String> {
    let seconds = |run: &Value| run["seconds"].as_f64().unwrap_or(f64::INFINITY);
    let mut fastest: [Option<Value>; 2] = [None, None];
    for _ in 0..RUNS {
        for (side, mut command) in [ours(), hivex()].into_iter().enumerate() {
            let run = json_of(&mut command)?;
            if fastest[side]
                .as_ref()
                .is_none_or(|best| seconds(&run) < seconds(best))
            {
                fastest[side] = Some(run);
            }
        }
    }
    let [Some(ours), Some(hivex)] = fastest else {
        return Err("no benchmark run".to_string());
    };
    Ok((ours, hivex))
}
