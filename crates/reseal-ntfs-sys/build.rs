//! Links libntfs-3g and generates bindings for the few functions and types the safe layer uses.

use std::env;
use std::path::PathBuf;

/// Functions called from `src/lib.rs`; everything else in libntfs-3g stays out of the bindings.
const FUNCTIONS: &[&str] = &[
    "ntfs_device_alloc",
    "ntfs_device_free",
    "ntfs_device_mount",
    "ntfs_umount",
    "ntfs_create_lru_caches",
    "ntfs_inode_open",
    "ntfs_inode_close",
    "ntfs_inode_close_in_dir",
    "ntfs_inode_update_times",
    "ntfs_inode_get_times",
    "ntfs_attr_open",
    "ntfs_attr_close",
    "ntfs_attr_pread",
    "ntfs_attr_pwrite",
    "ntfs_attr_truncate",
    "ntfs_create",
    "ntfs_delete",
    "ntfs_readdir",
    "ntfs_open_secure",
    "ntfs_get_ntfs_acl",
    "ntfs_set_ntfs_acl",
    "ntfs_get_ntfs_attrib",
    "ntfs_get_ntfs_reparse_data",
    // Only for the `fixtures` feature (see `src/fixtures.rs`).
    "ntfs_set_ntfs_attrib",
    "ntfs_set_ntfs_reparse_data",
    "ntfs_attr_add",
];

const TYPES: &[&str] = &[
    "ntfs_device_operations",
    "ntfs_device",
    "ntfs_volume",
    "ntfs_inode",
    "ntfs_attr",
    "SECURITY_CONTEXT",
    "ntfs_filldir_t",
];

const VARS: &[&str] = &["AT_UNNAMED"];

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=build.rs");

    if pkg_config::Config::new()
        .atleast_version("2017.3.23")
        .probe("libntfs-3g")
        .is_err()
    {
        // Debian's libntfs-3g ships a .pc file; fall back to the plain library name elsewhere.
        println!("cargo:rustc-link-lib=ntfs-3g");
    }

    let mut builder = bindgen::Builder::default()
        .header("wrapper.h")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        // Plain C enums as integer constants: libntfs-3g passes flags as ORed enum values.
        .default_enum_style(bindgen::EnumVariation::Consts)
        .layout_tests(false)
        .derive_default(true);
    for function in FUNCTIONS {
        builder = builder.allowlist_function(function);
    }
    for ty in TYPES {
        builder = builder.allowlist_type(ty);
    }
    for var in VARS {
        builder = builder.allowlist_var(var);
    }
    // Constants and enums the safe layer needs by name.
    builder = builder
        .allowlist_var("NTFS_DT_.*")
        .allowlist_type("ntfs_mount_flags")
        .allowlist_type("ntfs_time_update_flags")
        .allowlist_type("ATTR_TYPES")
        .allowlist_type("ATTR_FLAGS")
        .allowlist_type("ntfs_device_state_bits")
        .allowlist_type("ntfs_volume_state_bits");

    let bindings = builder
        .generate()
        .expect("bindgen could not read the libntfs-3g headers (is ntfs-3g-dev installed? run `cargo xtask setup`)");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("writing bindings.rs to OUT_DIR");
}
