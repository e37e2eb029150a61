//! `cargo xtask demo`: the main job on the bundled sample image.
//!
//! Copies `fixtures/sample/` to `target/demo/sample/` (the committed sample stays as it is), then
//! runs `reseal inspect` before, `reseal generalize`, and `reseal inspect` after, and prints the
//! two inspections side by side.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

pub fn run() -> Result<(), String> {
    crate::setup::run()?;
    crate::cargo(&["build", "--quiet", "--package", "reseal-cli"])?;
    let root = crate::workspace_root();
    let reseal = crate::target_dir(&root).join("debug").join("reseal");
    let sample = root.join("fixtures").join("sample");
    let work = crate::target_dir(&root).join("demo").join("sample");
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    }
    crate::copy_tree(&sample, &work)?;
    eprintln!(
        "demo: working on a copy of the sample image in {}",
        work.display()
    );

    let before = inspect(&reseal, &work)?;
    println!(
        "\n== reseal generalize {} (plan, then apply)\n",
        work.display()
    );
    crate::run(Command::new(&reseal).arg("generalize").arg(&work))?;
    let after = inspect(&reseal, &work)?;

    println!("\n== before / after\n");
    print_comparison(&before, &after);
    Ok(())
}

fn inspect(reseal: &Path, image: &Path) -> Result<Value, String> {
    let out = Command::new(reseal)
        .arg("inspect")
        .arg(image)
        .arg("--json")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", reseal.display()))?;
    if !out.status.success() {
        return Err(format!(
            "reseal inspect {} failed: {}",
            image.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("reseal inspect printed no JSON: {e}"))
}

/// Prints every leaf field of the two inspections, one row each, with a marker on changed rows.
fn print_comparison(before: &Value, after: &Value) {
    let mut rows = Vec::new();
    flatten("", before, &mut rows);
    let mut after_rows = Vec::new();
    flatten("", after, &mut after_rows);
    for (key, _) in &after_rows {
        if !rows.iter().any(|(k, _)| k == key) {
            rows.push((key.clone(), Value::Null));
        }
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("  {:width$}  {:40}  after", "field", "before");
    for (key, old) in &rows {
        let new = after_rows
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null);
        let marker = if *old != new { '*' } else { ' ' };
        println!("{marker} {key:width$}  {:40}  {}", show(old), show(&new));
    }
    println!("\n(* = changed by reseal generalize)");
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        leaf => out.push((prefix.to_string(), leaf.clone())),
    }
}

fn show(value: &Value) -> String {
    let text = match value {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 40 {
        format!("{}...", text.chars().take(37).collect::<String>())
    } else {
        text
    }
}
