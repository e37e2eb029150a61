//! The checked-in bindings are what the installed headers give: a header or allowlist change
//! that was not followed by `cargo xtask bindgen` fails here.

#[test]
fn checked_in_bindings_match_the_headers() {
    let path = reseal_ntfs_sys_bindgen::bindings_path();
    let checked_in =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let generated = reseal_ntfs_sys_bindgen::generate().unwrap_or_else(|e| panic!("{e}"));
    if checked_in != generated {
        let first_difference = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map(|line| line + 1);
        panic!(
            "{} is not what the headers give today (first different line: {first_difference:?}); \
             run `cargo xtask bindgen` and review the diff",
            path.display()
        );
    }
}
