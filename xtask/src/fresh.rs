//! `cargo xtask fresh [--demo] [--keep]`: the README's two commands on a bare Debian 12, the
//! honest check that the project's own files install everything it needs.
//!
//! A machine that ran the tests before keeps their packages, so a green run there can hide a
//! missing install step. This builds a bare root (`debootstrap --variant=minbase bookworm`),
//! gives it what a new user starts from (the Rust toolchain, bind-mounted read-only from this
//! machine, and what rustup itself asks for: CA certificates and the C linker), copies the
//! checkout in with `../shared` beside it, and runs `cargo xtask demo`, then
//! `cargo xtask test`, inside it. `--demo` stops after the demo; `--keep` leaves the root
//! under the target dir for a look inside.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bare_root::BareRoot;

/// What a new user has installed besides Debian's minimal base: rustup fetches over HTTPS
/// (ca-certificates), and rustc needs a C linker and the C library's startup files.
const USER_PACKAGES: &str = "ca-certificates gcc libc6-dev";

/// Environment variables that say how this machine reaches the network (proxies, the CA bundle
/// TLS clients are to trust): a new user's machine on the same network has the same settings.
const NETWORK_VARIABLES: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
];

/// Where the checkout and `shared/` go inside the root.
const CHECKOUT: &str = "/work/reseal";
const SHARED: &str = "/work/shared";
/// Where the host's toolchain is mounted inside the root.
const RUSTUP_HOME: &str = "/opt/rustup";
const CARGO_BIN: &str = "/opt/cargo-bin";

pub fn run(args: &[String]) -> Result<(), String> {
    let demo_only = args.iter().any(|a| a == "--demo");
    let keep = args.iter().any(|a| a == "--keep");
    if let Some(other) = args.iter().find(|a| *a != "--demo" && *a != "--keep") {
        return Err(format!(
            "fresh: unknown argument {other:?}; usage: cargo xtask fresh [--demo] [--keep]"
        ));
    }
    let workspace = crate::workspace_root();
    let mut root = BareRoot::create(&crate::target_dir(&workspace).join("fresh-root"))?;
    if keep {
        root.keep();
    }
    root.mount_system()?;
    carry_network_trust(&root)?;
    root.run(
        &format!(
            "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
             --no-install-recommends {USER_PACKAGES}"
        ),
        &[],
    )?;
    let (rustup_home, cargo_home) = toolchain_homes()?;
    root.bind_read_only(&rustup_home, RUSTUP_HOME)?;
    root.bind_read_only(&cargo_home.join("bin"), CARGO_BIN)?;
    copy_checkout(&workspace, &root.join(CHECKOUT.trim_start_matches('/')))?;
    let shared = workspace.join("..").join("shared");
    if shared.is_dir() {
        root.bind_read_only(&shared, SHARED)?;
    }

    let mut env = vec![
        (
            "PATH",
            format!("{CARGO_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        ),
        ("RUSTUP_HOME", RUSTUP_HOME.to_string()),
        // Crates are downloaded anew into the root, as on a new machine.
        ("CARGO_HOME", "/root/.cargo".to_string()),
    ];
    for passed in ["CI", "RUSTUP_TOOLCHAIN", "RUSTUP_AUTO_INSTALL"]
        .iter()
        .chain(NETWORK_VARIABLES)
    {
        if let Ok(value) = std::env::var(passed) {
            env.push((passed, value));
        }
    }
    let mut script = format!("set -e; cd {CHECKOUT}; cargo xtask demo");
    if !demo_only {
        script.push_str("; cargo xtask test");
    }
    eprintln!("fresh: running `{script}` in a bare Debian 12");
    root.run(&script, &env)?;
    eprintln!("fresh: passed in a bare Debian 12");
    Ok(())
}

/// Gives the root this machine's site-local certificate authorities (Debian keeps them in
/// `/usr/local/share/ca-certificates`, and installing ca-certificates adds them to the bundle)
/// and pip's configuration: a network that inspects TLS is trusted through them, on a new
/// user's machine as on this one.
fn carry_network_trust(root: &BareRoot) -> Result<(), String> {
    let local_cas = Path::new("/usr/local/share/ca-certificates");
    if local_cas.is_dir() {
        crate::copy_tree(local_cas, &root.join("usr/local/share/ca-certificates"))?;
    }
    let pip_conf = Path::new("/etc/pip.conf");
    if pip_conf.is_file() {
        std::fs::copy(pip_conf, root.join("etc/pip.conf"))
            .map_err(|e| format!("{}: {e}", pip_conf.display()))?;
    }
    Ok(())
}

/// The host's rustup and cargo homes, as rustup places them.
fn toolchain_homes() -> Result<(PathBuf, PathBuf), String> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let from_env = |name: &str, default: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(default)))
            .filter(|p| p.is_dir())
            .ok_or_else(|| format!("no {name} (nor ~/{default}): fresh needs a rustup toolchain"))
    };
    Ok((
        from_env("RUSTUP_HOME", ".rustup")?,
        from_env("CARGO_HOME", ".cargo")?,
    ))
}

/// Copies the files git tracks or would track (the working tree's state, uncommitted changes
/// included; nothing ignored, so no target dir) from `checkout` to `to`.
fn copy_checkout(checkout: &Path, to: &Path) -> Result<(), String> {
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(checkout)
        .output()
        .map_err(|e| format!("cannot run git ls-files: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git ls-files failed in {}: {}",
            checkout.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    for name in out.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let relative = Path::new(std::str::from_utf8(name).map_err(|e| e.to_string())?);
        let from = checkout.join(relative);
        if !from.is_file() {
            // Deleted in the working tree but still in the index.
            continue;
        }
        let dest = to.join(relative);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::copy(&from, &dest).map_err(|e| format!("{}: {e}", from.display()))?;
    }
    Ok(())
}
