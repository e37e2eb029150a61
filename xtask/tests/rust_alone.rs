//! `cargo xtask setup` installs what the native crates need, so xtask itself must build before
//! any of it is there: nothing xtask builds may link a C library or run a C toolchain, bindgen,
//! pkg-config or cmake. This reads xtask's dependency graph from `cargo metadata` and fails on
//! the first package that would.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// Build dependencies that mean a package compiles or finds native code.
const NATIVE_BUILD_TOOLS: &[&str] = &["bindgen", "pkg-config", "cc", "cmake"];

#[test]
fn xtask_builds_with_rust_alone() {
    let metadata = cargo_metadata();
    let offenders = native_packages_built_for(&metadata, "xtask");
    assert!(
        offenders.is_empty(),
        "xtask must build with nothing but Rust, but building it builds: {offenders:#?}"
    );
}

/// The check itself catches a package that links a C library: the workspace's NTFS bindings do.
#[test]
fn the_check_finds_a_native_package() {
    let metadata = cargo_metadata();
    let offenders = native_packages_built_for(&metadata, "reseal-ntfs-sys");
    assert!(
        offenders.iter().any(|o| o.starts_with("reseal-ntfs-sys")),
        "reseal-ntfs-sys links libntfs-3g, yet the check found {offenders:?}"
    );
}

fn cargo_metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Every package that building the workspace member `root` builds (its normal and build
/// dependencies, transitively; dev-dependencies are only built for its tests) and that has a
/// `links` key or a build dependency on a native build tool, each with the reason.
fn native_packages_built_for(metadata: &Value, root: &str) -> Vec<String> {
    let packages: HashMap<&str, &Value> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().expect("package id"), p))
        .collect();
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .map(|n| (n["id"].as_str().expect("node id"), n))
        .collect();
    let root_id = packages
        .iter()
        .find(|(_, p)| p["name"] == root && p["source"].is_null())
        .map(|(id, _)| *id)
        .unwrap_or_else(|| panic!("{root} is a workspace member"));

    let mut seen = BTreeSet::new();
    let mut stack = vec![root_id];
    let mut offenders = Vec::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let package = packages[id];
        let name = package["name"].as_str().unwrap_or("?");
        if let Some(links) = package["links"].as_str() {
            offenders.push(format!("{name}: links native library {links:?}"));
        }
        for dep in nodes[id]["deps"].as_array().into_iter().flatten() {
            let dep_id = dep["pkg"].as_str().expect("dep id");
            let dep_name = packages[dep_id]["name"].as_str().unwrap_or("?");
            let kinds: Vec<&Value> = dep["dep_kinds"].as_array().into_iter().flatten().collect();
            if kinds.iter().any(|kind| kind["kind"] == "build")
                && NATIVE_BUILD_TOOLS.contains(&dep_name)
            {
                offenders.push(format!("{name}: build dependency on {dep_name}"));
            }
            // Dev-dependencies are built only for the package's own tests.
            if kinds.iter().any(|kind| kind["kind"] != "dev") {
                stack.push(dep_id);
            }
        }
    }
    offenders
}
