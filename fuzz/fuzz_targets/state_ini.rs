//! Reads the input as a State.ini and sets its image state, as generalize does: no panics, and
//! the state written is the state read back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal::providers::setup_state::{state_ini_image_state, state_ini_with_image_state};

const STATE: &str = "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE";

fuzz_target!(|data: &[u8]| {
    let _ = state_ini_image_state(data);
    let written = state_ini_with_image_state(Some(data), STATE);
    assert_eq!(state_ini_image_state(&written).as_deref(), Some(STATE));
});
