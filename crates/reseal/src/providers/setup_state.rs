//! The next-boot setup state: what makes Windows' own next boot run setupcl, specialize and OOBE
//! (or audit mode).
//!
//! What Sysprep does (sysprep-effects §0 step 5, §1.1-§1.5, §8 items 1, 2 and 9): it writes
//! `ImageState` into the registry (`SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State`) and
//! into `%WINDIR%\Setup\State\State.ini` [D: MS-STATES], and the `HKLM\SYSTEM\Setup` values the
//! kernel, PnP and Winlogon read at boot [O]. Its own bookkeeping goes to
//! `Setup\Status\SysprepStatus` [O], and `System32\Sysprep\Sysprep_succeeded.tag` marks success [O].
//!
//! What reseal writes, by run:
//!
//! | | generalize → OOBE | generalize → audit | reseal → OOBE | reseal → audit |
//! |---|---|---|---|---|
//! | `ImageState` | `IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE` | `..._GENERALIZE_RESEAL_TO_AUDIT` | `IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE` | `..._SPECIALIZE_RESEAL_TO_AUDIT` |
//! | `CmdLine` | `oobe\windeploy.exe` | same | same | same |
//! | `SetupType` | 1 | 1 | 2 | 2 |
//! | `SystemSetupInProgress` | 1 | 1 | 1 | 1 |
//! | `OOBEInProgress` | 0 | 0 | 0 | 0 |
//! | `SetupPhase` | 4 | 4 | 4 | 4 |
//!
//! - `ImageState` per mode: [D] (MS-STATES, MS-SYSPREP-CLI table in §1.5).
//! - `CmdLine`: [O] `oobe\windeploy.exe` in a generalized install.wim (§1.2); Winlogon resolves it
//!   against System32. The Vista audit reseal showed the same program with a full path (LU-307).
//! - `SetupType` 1 after generalize: [O] seen in a generalized install.wim (§1.2). 2 for the
//!   reseals without generalize: [O] seen on Vista after an audit reseal (LU-307); per ReactOS and a
//!   Microsoft forum answer, 2 = run `CmdLine`, then continue to logon instead of rebooting, which
//!   is what a pass without specialize needs. A public decompilation of a Windows function that
//!   arms a boot into OOBE (`OrchestrateBootCommand`, binary not named) writes the same
//!   `CmdLine` with `SetupType` 2 and `SetupPhase` 4 [O]; it also writes
//!   `SystemSetupInProgress` 0 and `OOBEInProgress` 1, which reseal does not copy, because it is
//!   not known to be the reseal path (windeploy sets `OOBEInProgress` itself when oobeSystem
//!   starts, §1.2).
//! - `SystemSetupInProgress` 1: [O] (§1.2).
//! - `OOBEInProgress` 0: [O/?] set only once the oobeSystem pass starts (§1.2).
//! - `SetupPhase` 4: [O] the value the reference leaves open (§9 question 1). Two independent
//!   observations carry 4 in an image whose next boot is a setup boot: LU-138 forces a setup-mode
//!   boot with `SetupPhase=4`, `SetupType=2`, `SystemSetupInProgress=1`, and a public installer
//!   checks for exactly `SystemSetupInProgress=1`, `SetupPhase=4` in the SYSTEM hive Windows Setup
//!   leaves after applying install.wim, before its first (specialize) boot; the Windows function
//!   above writes 4 too.
//! - The kernel bug-checks (0x9A) when these values are missing or inconsistent (§1.2,
//!   DECOMP-KERNEL), so they are always written as a full set and never deleted.
//! - `Setup\Status\SysprepStatus` `GeneralizationState=7`, `CleanupState=2`: [O] the "last run
//!   fine" values a later real Sysprep checks (§1.3).
//! - `Sysprep_succeeded.tag`: [O] an empty file, as automation scripts expect (§1.6).
//! - State.ini keeps its encoding (UTF-16LE with BOM, UTF-8 with BOM, or ANSI), its line endings
//!   and its quoting style; only the `ImageState` line changes (§1.1: the encoding is [?], so the
//!   existing file's is copied). A missing file is created the way `WritePrivateProfileString`
//!   creates one (ANSI, CRLF), with the quoted value MS-STATES shows.

use reseal_hive::data::{encode_dword, encode_sz};
use reseal_hive::ValueType;

use crate::error::Result;
use crate::image::{SOFTWARE, SYSTEM};
use crate::options::Mode;
use crate::providers::{PlanContext, Provider};

const NAME: &str = "setup-state";
const SOURCE_IMAGE_STATE: &str = "sysprep-effects §1.1/§1.5 ImageState [D] (MS-STATES)";
const SOURCE_SETUP_VALUES: &str =
    "sysprep-effects §1.2 HKLM\\SYSTEM\\Setup [O] (install.wim notes, LU-307, KB939857)";
const SOURCE_SETUP_PHASE: &str =
    "sysprep-effects §1.2 SetupPhase [O] (LU-138; install.wim applied by Setup)";
const SOURCE_STATUS: &str = "sysprep-effects §1.3 Setup\\Status\\SysprepStatus [O]";
const SOURCE_TAG: &str = "sysprep-effects §1.6 Sysprep_succeeded.tag [O] (VCL)";

/// The image path of State.ini.
pub const STATE_INI: &str = r"Windows\Setup\State\State.ini";
/// The image path of the success marker.
pub const SUCCEEDED_TAG: &str = r"Windows\System32\Sysprep\Sysprep_succeeded.tag";
const STATE_KEY: &str = r"Microsoft\Windows\CurrentVersion\Setup\State";

/// Writes `HKLM\SYSTEM\Setup`, `ImageState` (registry and State.ini) and Sysprep's bookkeeping.
pub struct SetupState;

/// The `ImageState` a run leaves (MS-STATES).
pub fn image_state(generalize: bool, mode: Mode) -> &'static str {
    match (generalize, mode) {
        (true, Mode::Oobe) => "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE",
        (true, Mode::Audit) => "IMAGE_STATE_GENERALIZE_RESEAL_TO_AUDIT",
        (false, Mode::Oobe) => "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE",
        (false, Mode::Audit) => "IMAGE_STATE_SPECIALIZE_RESEAL_TO_AUDIT",
    }
}

/// `SetupType`: 1 (run `CmdLine`, then reboot into the next pass) after generalize, 2 (run
/// `CmdLine`, then continue) for the reseals that skip specialize.
pub fn setup_type(generalize: bool) -> u32 {
    if generalize {
        1
    } else {
        2
    }
}

/// The program Winlogon starts in setup mode.
pub const CMD_LINE: &str = r"oobe\windeploy.exe";
/// `SetupPhase` for every reseal (see the module documentation for the evidence).
pub const SETUP_PHASE: u32 = 4;

impl Provider for SetupState {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        let generalize = ctx.options.generalize;
        let state = image_state(generalize, ctx.options.mode);

        let mut setup = ctx.source(SOURCE_SETUP_VALUES);
        setup.set_value(
            SYSTEM,
            "Setup",
            "CmdLine",
            ValueType::SZ,
            &encode_sz(CMD_LINE),
        )?;
        let dwords = [
            ("SetupType", setup_type(generalize)),
            ("SystemSetupInProgress", 1),
            ("OOBEInProgress", 0),
        ];
        for (name, value) in dwords {
            setup.set_value(
                SYSTEM,
                "Setup",
                name,
                ValueType::DWORD,
                &encode_dword(value),
            )?;
        }
        ctx.source(SOURCE_SETUP_PHASE).set_value(
            SYSTEM,
            "Setup",
            "SetupPhase",
            ValueType::DWORD,
            &encode_dword(SETUP_PHASE),
        )?;

        let mut status = ctx.source(SOURCE_STATUS);
        for (name, value) in [("GeneralizationState", 7), ("CleanupState", 2)] {
            status.set_value(
                SYSTEM,
                r"Setup\Status\SysprepStatus",
                name,
                ValueType::DWORD,
                &encode_dword(value),
            )?;
        }

        let mut state_changes = ctx.source(SOURCE_IMAGE_STATE);
        state_changes.set_value(
            SOFTWARE,
            STATE_KEY,
            "ImageState",
            ValueType::SZ,
            &encode_sz(state),
        )?;
        let existing = state_changes.image().read_file(STATE_INI)?;
        let contents = state_ini_with_image_state(existing.as_deref(), state);
        state_changes.write_file(STATE_INI, &contents, false)?;

        ctx.source(SOURCE_TAG).write_file(SUCCEEDED_TAG, b"", false)
    }
}

/// How a State.ini file is encoded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum IniEncoding {
    Utf16Le,
    Utf8Bom,
    /// Single-byte ANSI; bytes are kept one-to-one (as Latin-1) so nothing else changes.
    Ansi,
}

fn decode_ini(bytes: &[u8]) -> (IniEncoding, String) {
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        return (IniEncoding::Utf16Le, String::from_utf16_lossy(&units));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return (
            IniEncoding::Utf8Bom,
            String::from_utf8_lossy(rest).into_owned(),
        );
    }
    (
        IniEncoding::Ansi,
        bytes.iter().map(|&b| char::from(b)).collect(),
    )
}

fn encode_ini(encoding: IniEncoding, text: &str) -> Vec<u8> {
    match encoding {
        IniEncoding::Utf16Le => {
            let mut out = vec![0xFF, 0xFE];
            out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
            out
        }
        IniEncoding::Utf8Bom => {
            let mut out = vec![0xEF, 0xBB, 0xBF];
            out.extend_from_slice(text.as_bytes());
            out
        }
        // Every char came from one byte, and the new value is ASCII.
        IniEncoding::Ansi => text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect(),
    }
}

/// State.ini with `[State] ImageState` set to `state`, everything else as it was.
pub fn state_ini_with_image_state(existing: Option<&[u8]>, state: &str) -> Vec<u8> {
    let (encoding, text) = match existing {
        Some(bytes) => decode_ini(bytes),
        None => (IniEncoding::Ansi, String::new()),
    };
    let newline = if text.contains("\r\n") || !text.contains('\n') {
        "\r\n"
    } else {
        "\n"
    };
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let section_header = |line: &str| {
        let trimmed = line.trim();
        trimmed.starts_with('[') && trimmed.ends_with(']')
    };
    let is_state_header =
        |line: &str| section_header(line) && line.trim().eq_ignore_ascii_case("[State]");
    let key_of = |line: &str| line.split_once('=').map(|(key, _)| key.trim().to_string());

    let mut in_state = false;
    let mut state_header_at = None;
    let mut replaced = false;
    for (index, line) in lines.iter_mut().enumerate() {
        if section_header(line) {
            in_state = is_state_header(line);
            if in_state && state_header_at.is_none() {
                state_header_at = Some(index);
            }
            continue;
        }
        if in_state && key_of(line).is_some_and(|key| key.eq_ignore_ascii_case("ImageState")) {
            *line = replace_ini_value(line, state);
            replaced = true;
        }
    }
    if !replaced {
        let entry = format!("ImageState=\"{state}\"{newline}");
        match state_header_at {
            Some(index) => {
                if !lines[index].ends_with('\n') {
                    lines[index].push_str(newline);
                }
                lines.insert(index + 1, entry);
            }
            None => {
                if lines.last().is_some_and(|line| !line.ends_with('\n')) {
                    lines.push(newline.to_string());
                }
                lines.push(format!("[State]{newline}"));
                lines.push(entry);
            }
        }
    }
    encode_ini(encoding, &lines.concat())
}

/// `line` (`ImageState = "OLD"\r\n`) with its value replaced, keeping the key as written, the
/// quoting and the line ending.
fn replace_ini_value(line: &str, value: &str) -> String {
    let (key, old) = line.split_once('=').unwrap_or((line, ""));
    let body = old.trim_end_matches(['\r', '\n']);
    let ending = &old[body.len()..];
    let leading_space = &body[..body.len() - body.trim_start().len()];
    let quoted = body.trim().starts_with('"');
    if quoted {
        format!("{key}={leading_space}\"{value}\"{ending}")
    } else {
        format!("{key}={leading_space}{value}{ending}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_value_keeping_utf16_crlf_and_quotes() {
        let text = "[State]\r\nImageState=\"IMAGE_STATE_COMPLETE\"\r\n";
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let out = state_ini_with_image_state(Some(&bytes), "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE");
        let (encoding, decoded) = decode_ini(&out);
        assert_eq!(encoding, IniEncoding::Utf16Le);
        assert_eq!(
            decoded,
            "[State]\r\nImageState=\"IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\"\r\n"
        );
    }

    #[test]
    fn keeps_ansi_lf_unquoted_and_other_lines() {
        let text = b"; comment \xe9\n[Other]\nImageState=x\n[State]\nImageState=IMAGE_STATE_COMPLETE\nFoo=1\n";
        let out = state_ini_with_image_state(Some(text), "IMAGE_STATE_SPECIALIZE_RESEAL_TO_AUDIT");
        assert_eq!(
            out,
            b"; comment \xe9\n[Other]\nImageState=x\n[State]\nImageState=IMAGE_STATE_SPECIALIZE_RESEAL_TO_AUDIT\nFoo=1\n"
        );
    }

    #[test]
    fn adds_the_section_when_missing() {
        assert_eq!(
            state_ini_with_image_state(None, "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"),
            b"[State]\r\nImageState=\"IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\"\r\n"
        );
        assert_eq!(
            state_ini_with_image_state(Some(b"[State]"), "S"),
            b"[State]\r\nImageState=\"S\"\r\n"
        );
    }
}
