//! `cargo xtask dist`: the release bundle `target/dist/reseal-VERSION-ARCH-linux.tar.gz`.
//!
//! It holds the `reseal` binary, its man pages and shell completions (written by the binary
//! itself: `reseal man --out-dir`, `reseal completions SHELL`), README.md and LICENSE. The C
//! libraries are linked statically by their -sys crates and the C library too (`crt-static`),
//! so the binary runs on any Linux of its architecture with nothing installed.
//!
//! The bundle is checked before it is called done: `ldd` must find no shared library, and in a
//! bare Debian 12 root (no ntfs-3g, no wimlib, no compiler) the unpacked binary prints its
//! version, then inspects and generalizes copies of the sample image, as a directory and as a
//! WIM, which `reseal inspect` must then show generalized.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bare_root::BareRoot;

/// Shells whose completion scripts ship, with the file name each one's loader looks for.
const COMPLETIONS: &[(&str, &str)] = &[
    ("bash", "reseal.bash"),
    ("zsh", "_reseal"),
    ("fish", "reseal.fish"),
];

pub fn run() -> Result<(), String> {
    crate::setup::run()?;
    let workspace = crate::workspace_root();
    let target = crate::target_dir(&workspace);
    let binary = build(&target.join("dist-build"))?;
    check_no_shared_libraries(&binary)?;

    let name = format!(
        "reseal-{}-{}-linux",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    );
    let dist = target.join("dist");
    let stage = dist.join(&name);
    crate::remove_if_present(&stage)?;
    create_dir(&stage.join("completions"))?;
    copy(&binary, &stage.join("reseal"))?;
    copy(&workspace.join("README.md"), &stage.join("README.md"))?;
    copy(&workspace.join("LICENSE"), &stage.join("LICENSE"))?;
    crate::run(
        Command::new(&binary)
            .args(["man", "--out-dir"])
            .arg(stage.join("man")),
    )?;
    for (shell, file) in COMPLETIONS {
        let script = crate::output_of(Command::new(&binary).args(["completions", shell]))?;
        write(&stage.join("completions").join(file), &script)?;
    }
    let tarball = dist.join(format!("{name}.tar.gz"));
    crate::run(
        Command::new("tar")
            .arg("--create")
            .arg("--gzip")
            .arg("--owner=0")
            .arg("--group=0")
            .arg("--file")
            .arg(&tarball)
            .arg("--directory")
            .arg(&dist)
            .arg(&name),
    )?;
    check_in_bare_root(&workspace, &tarball, &name)?;
    println!("{}", tarball.display());
    Ok(())
}

/// Builds the release binary in `target_dir` (its own, as the flags differ from other builds).
/// The target is named explicitly so that `crt-static` applies to the binary and not to the
/// proc-macros, which the compiler loads as shared objects.
fn build(target_dir: &Path) -> Result<PathBuf, String> {
    let triple = host_triple()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    crate::run(
        Command::new(cargo)
            .args(["build", "--release", "--locked", "--package", "reseal-cli"])
            .args(["--target", &triple])
            .arg("--target-dir")
            .arg(target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .current_dir(crate::workspace_root()),
    )?;
    Ok(target_dir.join(triple).join("release").join("reseal"))
}

/// The triple rustc builds for by default (`host:` in `rustc -vV`).
fn host_triple() -> Result<String, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let out = crate::output_of(Command::new(rustc).arg("-vV"))?;
    String::from_utf8_lossy(&out)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| "rustc -vV names no host triple".to_string())
}

/// `ldd` must report a static executable: a shared library the bundle would need on the
/// user's machine fails the build here, not there.
fn check_no_shared_libraries(binary: &Path) -> Result<(), String> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| format!("cannot run ldd: {e}"))?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if report.contains("statically linked") || report.contains("not a dynamic executable") {
        eprintln!("dist: {} links no shared library", binary.display());
        Ok(())
    } else {
        Err(format!(
            "{} needs shared libraries, so it would not run on a bare machine:\n{report}",
            binary.display()
        ))
    }
}

/// Unpacks the bundle in a bare Debian 12 root and runs it on copies of the sample image.
fn check_in_bare_root(workspace: &Path, tarball: &Path, name: &str) -> Result<(), String> {
    let target = crate::target_dir(workspace);
    let mut root = BareRoot::create(&target.join("dist-root"))?;
    root.mount_system()?;
    copy(tarball, &root.join("root/bundle.tar.gz"))?;
    crate::copy_tree(
        &workspace.join("fixtures").join("sample"),
        &root.join("root/sample"),
    )?;
    copy(
        &workspace.join("fixtures").join("sample.wim"),
        &root.join("root/sample.wim"),
    )?;
    let script = format!(
        "set -e; cd /root; tar --extract --gzip --file bundle.tar.gz; \
         ! command -v gcc; ! test -e /usr/lib/x86_64-linux-gnu/libntfs-3g.so.89; \
         reseal={name}/reseal; $reseal --version; \
         $reseal inspect sample; $reseal generalize sample; \
         $reseal inspect --json sample > sample.json; \
         $reseal generalize sample.wim; $reseal inspect --json sample.wim > sample.wim.json"
    );
    root.run(&script, &[])?;
    for (image, report) in [("sample", "sample.json"), ("sample.wim", "sample.wim.json")] {
        let path = root.join("root").join(report);
        let json = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        crate::expect_generalized(&format!("{image} in a bare root"), &json)?;
    }
    eprintln!("dist: the bundle runs in a bare Debian 12");
    Ok(())
}

fn create_dir(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}
