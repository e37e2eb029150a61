//! `cargo xtask setup`: installs the Debian packages the build and the tests use.
//!
//! Idempotent: packages already installed are skipped, and nothing runs when all are present.

use std::process::Command;

/// Debian packages, each with why the project needs it.
const PACKAGES: &[(&str, &str)] = &[
    (
        "libwim-dev",
        "wimlib headers and library for the WIM target",
    ),
    ("libfuse-dev", "Debian's wimlib.pc requires fuse"),
    ("libclang-dev", "bindgen for the -sys crates"),
    ("pkg-config", "locating system libraries"),
    (
        "wimtools",
        "wimlib-imagex: sample.wim capture and WIM oracles",
    ),
    ("ntfs-3g", "NTFS tools used as oracles"),
    ("ntfs-3g-dev", "libntfs-3g for the disk targets"),
    (
        "python3-hivex",
        "hivex, the registry oracle the tests compare against",
    ),
    ("libhivex-bin", "hivexsh and hivexml"),
    ("qemu-utils", "qemu-img for disk-image tests"),
    ("gdisk", "sgdisk for partitioned test images"),
];

pub fn run() -> Result<(), String> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !installed(name))
        .collect();
    if missing.is_empty() {
        eprintln!(
            "setup: all {} system packages are installed",
            PACKAGES.len()
        );
        return Ok(());
    }
    eprintln!("setup: missing packages: {}", missing.join(" "));
    if Command::new("apt-get").arg("--version").output().is_err() {
        return Err(format!(
            "apt-get is not available; install these packages with your system's package manager: {}",
            missing.join(" ")
        ));
    }
    if !is_root() {
        return Err(format!(
            "installing packages needs root; run `sudo cargo xtask setup` or `sudo apt-get install {}`",
            missing.join(" ")
        ));
    }
    crate::run(Command::new("apt-get").args(["update", "-q"]))?;
    crate::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    let still_missing: Vec<&str> = missing.into_iter().filter(|p| !installed(p)).collect();
    if still_missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "apt-get finished but these are still not installed: {}",
            still_missing.join(" ")
        ))
    }
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|out| {
            out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains("install ok installed")
        })
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}
