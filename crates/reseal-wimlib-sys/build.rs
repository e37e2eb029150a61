//! Links wimlib's chunk codecs, and nothing else of wimlib, statically.
//!
//! Debian's libwim-dev ships `libwim.a`. Linking it whole would pull in the WIM writer, its XML
//! code and libxml2, libfuse and libntfs-3g, because `util.o` (wimlib's allocator) refers to
//! the XML code. So the codec objects listed below are copied out of the archive into one of
//! their own, and the four allocator functions they call are defined in `src/lib.rs`.
//! `WIMLIB_LIB_DIR` names another folder holding `libwim.a`.

use std::path::Path;
use std::process::Command;

/// The archive members (object names without libtool's `libwim_la-` prefix) that make up the
/// compressor and decompressor API: `compress.c`/`decompress.c` and the three formats.
const CODEC_OBJECTS: &[&str] = &[
    "compress",
    "compress_common",
    "decompress",
    "decompress_common",
    "xpress_compress",
    "xpress_decompress",
    "lzx_common",
    "lzx_compress",
    "lzx_decompress",
    "lzms_common",
    "lzms_compress",
    "lzms_decompress",
    "lcpit_matchfinder",
    "divsufsort",
];

/// On x86 targets: what LZMS's x86 filter asks which instructions the processor has.
const X86_OBJECT: &str = "x86_cpu_features";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let archive = reseal_static_lib::find("wim", "WIMLIB_LIB_DIR", "libwim-dev")
        .unwrap_or_else(|message| panic!("{message}"));
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out);

    let members = ar(&["t"], &archive, &[], out);
    let mut objects = CODEC_OBJECTS.to_vec();
    let target_arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if target_arch == "x86_64" || target_arch == "x86" {
        objects.push(X86_OBJECT);
    }
    let mut wanted = Vec::new();
    for object in objects {
        let member = members
            .lines()
            .find(|m| m.strip_prefix("libwim_la-").unwrap_or(m) == format!("{object}.o"))
            .unwrap_or_else(|| {
                panic!(
                    "{} has no {object}.o; its members: {members}",
                    archive.display()
                )
            });
        wanted.push(member.to_string());
    }
    ar(&["x"], &archive, &wanted, out);
    let codecs = out.join("libwimlib-codecs.a");
    let _ = std::fs::remove_file(&codecs);
    ar(&["crs"], &codecs, &wanted, out);

    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=wimlib-codecs");
}

/// Runs `ar OPERATION ARCHIVE MEMBERS...` in `dir` and returns what it printed.
fn ar(operation: &[&str], archive: &Path, members: &[String], dir: &Path) -> String {
    let tool = std::env::var("AR").unwrap_or_else(|_| "ar".to_string());
    let output = Command::new(&tool)
        .args(operation)
        .arg(archive)
        .args(members)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool} (binutils, which gcc brings): {e}"));
    assert!(
        output.status.success(),
        "{tool} {operation:?} {} failed: {}",
        archive.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
