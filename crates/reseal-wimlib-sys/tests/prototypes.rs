//! The hand-written declarations match the installed `wimlib.h` (libwim-dev, the package whose
//! `libwim.a` is linked): every quoted prototype appears there, and the compression types have
//! the values used.

use std::path::PathBuf;

fn header() -> String {
    let path = std::env::var_os("WIMLIB_HEADER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/include/wimlib.h"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (libwim-dev, installed by `cargo xtask setup`, provides it)",
            path.display()
        )
    })
}

/// C text with every run of white space made one space, and none inside parentheses' edges.
fn normalized(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("( ", "(")
        .replace(" )", ")")
}

#[test]
fn quoted_prototypes_are_the_headers() {
    let header = normalized(&header());
    for prototype in reseal_wimlib_sys::PROTOTYPES {
        assert!(
            header.contains(&normalized(prototype)),
            "wimlib.h does not declare {prototype}"
        );
    }
}

#[test]
fn compression_types_have_the_headers_values() {
    let header = normalized(&header());
    for (name, value) in reseal_wimlib_sys::COMPRESSION_TYPES {
        assert!(
            header.contains(&format!("{name} = {value},")),
            "wimlib.h does not give {name} the value {value}"
        );
    }
}

/// The check can fail: a prototype with one parameter type changed is not in the header.
#[test]
fn a_changed_prototype_is_caught() {
    let header = normalized(&header());
    let changed =
        reseal_wimlib_sys::PROTOTYPES[1].replace("size_t max_block_size", "int max_block_size");
    assert!(!header.contains(&normalized(&changed)));
}
