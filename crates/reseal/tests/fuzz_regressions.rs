//! Inputs the fuzz targets (`fuzz/` at the repository root) found in the library's parsers,
//! rebuilt here as bytes.

use reseal::providers::setup_state::{state_ini_image_state, state_ini_with_image_state};

const STATE: &str = "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE";

/// state_ini: a line starting with `[` but without `]` ended the `[State]` section for the
/// reader but not for the writer, so the state written could not be read back. Neither takes
/// it for a header now (the profile functions read it as a key line).
#[test]
fn a_bracket_line_without_a_closing_bracket_is_no_section_header() {
    let ini = b"[State]\r\n[x\r\nImageState=IMAGE_STATE_COMPLETE\r\n";
    assert_eq!(
        state_ini_image_state(ini).as_deref(),
        Some("IMAGE_STATE_COMPLETE")
    );
    let written = state_ini_with_image_state(Some(ini), STATE);
    assert_eq!(state_ini_image_state(&written).as_deref(), Some(STATE));
    assert_eq!(
        written,
        format!("[State]\r\n[x\r\nImageState={STATE}\r\n").into_bytes(),
        "only the value changes"
    );
}

/// The header's name runs to the last `]`: text after it does not hide the section.
#[test]
fn text_after_a_section_header_keeps_the_section() {
    let ini = b"[State] ; set by setup\r\nImageState=IMAGE_STATE_COMPLETE\r\n";
    assert_eq!(
        state_ini_image_state(ini).as_deref(),
        Some("IMAGE_STATE_COMPLETE")
    );
    let written = state_ini_with_image_state(Some(ini), STATE);
    assert_eq!(
        written,
        format!("[State] ; set by setup\r\nImageState={STATE}\r\n").into_bytes()
    );
}
