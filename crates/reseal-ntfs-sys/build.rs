//! Links libntfs-3g statically, so the `reseal` binary runs where ntfs-3g is not installed.
//!
//! The bindings are checked in (`src/bindings.rs`, written by `cargo xtask bindgen`), so the
//! build needs only the static library: Debian's ntfs-3g-dev ships `libntfs-3g.a`, which
//! depends on nothing but the C library. `NTFS3G_LIB_DIR` names another folder holding it.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let archive = reseal_static_lib::find("ntfs-3g", "NTFS3G_LIB_DIR", "ntfs-3g-dev")
        .unwrap_or_else(|message| panic!("{message}"));
    let dir = archive.parent().expect("an archive path has a folder");
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=ntfs-3g");
}
