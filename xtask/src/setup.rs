//! `cargo xtask setup`: installs the Debian packages the build and the tests use, and
//! libyal's Python readers (libvhdi-python, libqcow-python and libvmdk-python: the VHD/VHDX,
//! qcow2 and VMDK oracles, published on PyPI only) in a virtualenv of its own.
//!
//! Idempotent: packages already installed are skipped, and nothing runs when all are present.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian packages, each with why the project needs it. The build links two static archives
/// and needs nothing else but Rust and the C linker (gcc, which brings binutils); the rest is
/// for the tests and the chores.
pub const PACKAGES: &[(&str, &str)] = &[
    (
        "ntfs-3g-dev",
        "build: libntfs-3g.a, linked by reseal-ntfs-sys; its headers for `cargo xtask bindgen`",
    ),
    (
        "libwim-dev",
        "build: libwim.a, whose codec objects reseal-wimlib-sys links; wimlib.h for its prototype test",
    ),
    (
        "binutils",
        "build: ar, which copies wimlib's codec objects out of libwim.a",
    ),
    (
        "libclang-dev",
        "`cargo xtask bindgen` and the test that the checked-in NTFS bindings are current",
    ),
    (
        "wimtools",
        "tests: wimlib-imagex, the WIM oracle; sample.wim capture",
    ),
    (
        "ntfs-3g",
        "tests: mkntfs, ntfsfix, ntfssecaudit, the NTFS oracles; ntfs-3g mounts a volume for `reseal hive`",
    ),
    (
        "python3-hivex",
        "tests: hivex, the registry oracle the tests compare against",
    ),
    ("libhivex-bin", "tests: hivexsh and hivexml"),
    ("qemu-utils", "tests: qemu-img for disk images"),
    ("gdisk", "tests: sgdisk for partitioned disk images"),
    (
        "jq",
        "tests: docs/pipelines/factory.sh collects the --json results with it",
    ),
    (
        "bzip2",
        "tests: unpacks the real Windows-made VHD/VHDX images kept compressed in ../shared",
    ),
    (
        "python3-venv",
        "tests: the virtualenv that holds libvhdi-python",
    ),
    (
        "debootstrap",
        "`cargo xtask fresh` and the release-bundle test: a bare Debian root",
    ),
];

/// libyal's Python readers the disk tests use as oracles, each pinned to the version the tests
/// were checked against: (PyPI package, module, version). PyPI has manylinux wheels of each for
/// Debian 12's Python 3.11 (x86_64 and aarch64), so nothing is compiled. All go into one
/// virtualenv, [`libvhdi_venv`].
const LIBYAL_READERS: &[(&str, &str, &str)] = &[
    // VHD and VHDX, differencing children included.
    ("libvhdi-python", "pyvhdi", "20260901"),
    // qcow2: the second reader beside qemu-img.
    ("libqcow-python", "pyqcow", "20260703"),
    // VMDK: sparse, flat and streamOptimized extents, parent chains.
    ("libvmdk-python", "pyvmdk", "20260714"),
];

pub fn run() -> Result<(), String> {
    system_packages()?;
    libyal_venv()?;
    for &(package, module, version) in LIBYAL_READERS {
        libyal_reader(package, module, version)?;
    }
    Ok(())
}

fn system_packages() -> Result<(), String> {
    let names: Vec<&str> = PACKAGES.iter().map(|(name, _)| *name).collect();
    ensure_packages(&names)
}

/// Installs those of `packages` that are missing (apt-get, as root).
pub fn ensure_packages(packages: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|name| !installed(name))
        .collect();
    if missing.is_empty() {
        eprintln!(
            "setup: all {} system packages are installed",
            packages.len()
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

/// The virtualenv holding libvhdi-python: `<target dir>/libvhdi-venv`, where the disk tests
/// look for it (crates/reseal-disk/tests/common).
pub fn libvhdi_venv() -> PathBuf {
    crate::target_dir(&crate::workspace_root()).join("libvhdi-venv")
}

/// Creates the virtualenv with Debian's python, unless it is there. The system's python is left
/// as it was.
fn libyal_venv() -> Result<(), String> {
    let venv = libvhdi_venv();
    if venv.join("bin").join("python").exists() {
        return Ok(());
    }
    eprintln!("setup: making the virtualenv {}", venv.display());
    crate::run(
        Command::new(crate::HIVEX_PYTHON)
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )
}

/// Installs `package` at `version` in the virtualenv, unless `module` already imports there at
/// that version.
fn libyal_reader(package: &str, module: &str, version: &str) -> Result<(), String> {
    let python = libvhdi_venv().join("bin").join("python");
    if module_version(&python, module).as_deref() == Some(version) {
        eprintln!("setup: {package} {version} is installed");
        return Ok(());
    }
    eprintln!("setup: installing {package} {version}");
    crate::run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-input",
                "--disable-pip-version-check",
            ])
            .arg(format!("--only-binary={package}"))
            .arg(format!("{package}=={version}")),
    )?;
    match module_version(&python, module) {
        Some(found) if found == version => Ok(()),
        other => Err(format!(
            "pip finished but {} reports {module} version {other:?}, not {version}",
            python.display()
        )),
    }
}

/// The version `module` (one of libyal's Python bindings) reports under `python`, or `None`
/// when it cannot be imported there.
fn module_version(python: &Path, module: &str) -> Option<String> {
    let out = Command::new(python)
        .args([
            "-c",
            &format!("import {module}; print({module}.get_version())"),
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
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

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}
