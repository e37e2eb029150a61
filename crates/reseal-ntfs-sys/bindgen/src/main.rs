//! `cargo xtask bindgen`: rewrites `crates/reseal-ntfs-sys/src/bindings.rs` from the headers.

use std::process::ExitCode;

fn main() -> ExitCode {
    let path = reseal_ntfs_sys_bindgen::bindings_path();
    let result = reseal_ntfs_sys_bindgen::generate().and_then(|text| {
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    });
    match result {
        Ok(()) => {
            eprintln!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("bindgen: {message}");
            ExitCode::FAILURE
        }
    }
}
