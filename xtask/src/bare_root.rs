//! A bare Debian 12 root (`debootstrap --variant=minbase bookworm`) to run commands in with
//! `chroot`, as a new user's machine would be: `fresh` runs the README's two commands in one,
//! `dist` runs the release binary in one.
//!
//! The first root is made with debootstrap and kept as a tarball under the target dir, so a
//! second root of the same run (or a later run) is unpacked from it in seconds; every root starts
//! from that pristine state. Host folders are bind-mounted read-only, so nothing done inside the
//! root can change them, and every mount is undone before the root is removed: removal refuses
//! to start while anything is still mounted below it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's archive, as Debian's own images use it.
const MIRROR: &str = "http://deb.debian.org/debian";

/// The suites a Debian 12 installation has in its sources.
const SOURCES: &str = "\
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
";

/// A root under construction or in use; unmounts everything and removes itself when dropped.
pub struct BareRoot {
    dir: PathBuf,
    /// Mount points inside the root, in the order they were mounted.
    mounts: Vec<PathBuf>,
    keep: bool,
}

impl BareRoot {
    /// A new bare root at `dir` (anything there before is removed first).
    pub fn create(dir: &Path) -> Result<BareRoot, String> {
        require_root()?;
        crate::setup::ensure_packages(&["debootstrap"])?;
        remove_root(dir)?;
        let tarball = pristine_tarball()?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let root = BareRoot {
            dir: dir.to_path_buf(),
            mounts: Vec::new(),
            keep: false,
        };
        crate::run(
            Command::new("tar")
                .arg("--extract")
                .arg("--numeric-owner")
                .arg("--file")
                .arg(&tarball)
                .arg("--directory")
                .arg(dir),
        )?;
        // Name resolution as the host has it; the archive's suites as an installation has them.
        std::fs::copy("/etc/resolv.conf", dir.join("etc/resolv.conf"))
            .map_err(|e| format!("copying /etc/resolv.conf into {}: {e}", dir.display()))?;
        write(&dir.join("etc/apt/sources.list"), SOURCES)?;
        Ok(root)
    }

    /// `relative` (no leading slash) inside the root.
    pub fn join(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// Leaves the root on disk when dropped (its mounts are still undone), for a look inside.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Mounts `/proc`, `/sys` and `/dev` as a running system has them.
    pub fn mount_system(&mut self) -> Result<(), String> {
        self.mount(&["-t", "proc", "proc"], "proc")?;
        self.mount(&["-t", "sysfs", "sysfs"], "sys")?;
        self.mount(&["--rbind", "/dev"], "dev")?;
        Ok(())
    }

    /// Makes host folder `host` visible read-only at `inside` (absolute, in the root).
    pub fn bind_read_only(&mut self, host: &Path, inside: &str) -> Result<(), String> {
        let source = host.to_string_lossy().into_owned();
        self.mount(&["--bind", &source], inside.trim_start_matches('/'))?;
        let target = self.join(inside.trim_start_matches('/'));
        crate::run(
            Command::new("mount")
                .args(["-o", "remount,bind,ro"])
                .arg(&target),
        )
    }

    fn mount(&mut self, how: &[&str], relative: &str) -> Result<(), String> {
        let target = self.join(relative);
        std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
        crate::run(Command::new("mount").args(how).arg(&target))?;
        if how.contains(&"--rbind") {
            // Keep the host's /dev from seeing the unmount of the copy.
            crate::run(Command::new("mount").arg("--make-rslave").arg(&target))?;
        }
        self.mounts.push(target);
        Ok(())
    }

    /// Runs `script` with `/bin/sh` inside the root, as root, with only `env` set (besides
    /// HOME, LANG and a default PATH, which `env` may replace); its output goes to this process's.
    pub fn run(&self, script: &str, env: &[(&str, String)]) -> Result<(), String> {
        let mut command = Command::new("chroot");
        command
            .arg(&self.dir)
            .args(["/usr/bin/env", "-i"])
            .arg("HOME=/root")
            .arg("LANG=C.UTF-8");
        if !env.iter().any(|(name, _)| *name == "PATH") {
            command.arg("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        }
        for (name, value) in env {
            command.arg(format!("{name}={value}"));
        }
        command.args(["/bin/sh", "-c", script]);
        crate::run(&mut command)
    }
}

impl Drop for BareRoot {
    fn drop(&mut self) {
        for target in self.mounts.iter().rev() {
            let _ = unmount(target);
        }
        if self.keep {
            eprintln!("bare root kept at {}", self.dir.display());
        } else if let Err(message) = remove_root(&self.dir) {
            eprintln!("xtask: {message}");
        }
    }
}

/// Removes a root, after undoing whatever is still mounted below it (a run killed half-way
/// leaves its mounts); refuses when a mount stays, so a host folder is never removed through it.
fn remove_root(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        return Ok(());
    }
    let mut below = mounts_below(dir)?;
    // Innermost first.
    below.sort_by_key(|path| std::cmp::Reverse(path.as_os_str().len()));
    for target in &below {
        let _ = unmount(target);
    }
    let left = mounts_below(dir)?;
    if !left.is_empty() {
        return Err(format!(
            "{} still has mounts below it ({left:?}); unmount them, then remove it",
            dir.display()
        ));
    }
    std::fs::remove_dir_all(dir).map_err(|e| format!("removing {}: {e}", dir.display()))
}

fn unmount(target: &Path) -> Result<(), String> {
    let recursive = Command::new("umount")
        .arg("--recursive")
        .arg(target)
        .status();
    if recursive.is_ok_and(|status| status.success()) {
        return Ok(());
    }
    crate::run(Command::new("umount").arg("--lazy").arg(target))
}

/// Mount points at or below `dir`, from `/proc/self/mountinfo`.
fn mounts_below(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let table = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    Ok(table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mount_path(field)))
        .filter(|path| path.starts_with(&dir))
        .collect())
}

/// mountinfo writes space, tab, newline and backslash in paths as octal escapes.
fn unescape_mount_path(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The pristine root as a tarball, made with debootstrap the first time.
fn pristine_tarball() -> Result<PathBuf, String> {
    let cache = crate::target_dir(&crate::workspace_root()).join("bare-root");
    let tarball = cache.join("debian-12-minbase.tar");
    if tarball.is_file() {
        eprintln!("bare root: unpacking {}", tarball.display());
        return Ok(tarball);
    }
    let staging = cache.join("debootstrap");
    remove_root(&staging)?;
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    eprintln!("bare root: debootstrap --variant=minbase bookworm (a few minutes, once)");
    crate::run(
        Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&staging)
            .arg(MIRROR),
    )?;
    let partial = cache.join("debian-12-minbase.tar.partial");
    crate::run(
        Command::new("tar")
            .arg("--create")
            .arg("--numeric-owner")
            .arg("--file")
            .arg(&partial)
            .arg("--directory")
            .arg(&staging)
            .arg("."),
    )?;
    std::fs::rename(&partial, &tarball).map_err(|e| format!("{}: {e}", tarball.display()))?;
    remove_root(&staging)?;
    Ok(tarball)
}

fn require_root() -> Result<(), String> {
    if crate::setup::is_root() {
        Ok(())
    } else {
        Err("a bare root needs root (debootstrap, chroot and mount); run it as root".to_string())
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
