//! The next-boot setup state: what makes Windows' own next boot run setupcl, specialize and OOBE
//! (or audit mode), as a real Sysprep run leaves it.
//!
//! What Sysprep does (sysprep-effects §0 step 5, §1.1-§1.7): it writes `ImageState` into the
//! registry (`SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State` and, as Windows' own OOBE
//! code does, `...\Setup\ImageServicingData`) and into `%WINDIR%\Setup\State\State.ini`
//! [D: MS-STATES], the `HKLM\SYSTEM\Setup` values the kernel, PnP and Winlogon read at boot, and
//! its own bookkeeping under `Setup\Status` [O]; `System32\Sysprep\Sysprep_succeeded.tag` marks
//! success [O].
//!
//! [`armed_values`] is the one table of what reseal writes, each value with its source; the
//! values a real `sysprep /generalize /oobe` was seen to leave (§1.7, COFOUNDRY) are taken as
//! they are, and the values no sysprep run recorded come from the closest observed state
//! (docs/providers.md, "Decisions", says why for each):
//!
//! | | generalize → OOBE | generalize → audit | reseal → OOBE | reseal → audit |
//! |---|---|---|---|---|
//! | `ImageState` (both keys, State.ini) | `IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE` | `..._GENERALIZE_RESEAL_TO_AUDIT` | `IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE` | `..._SPECIALIZE_RESEAL_TO_AUDIT` |
//! | `CmdLine` | `oobe\windeploy.exe` | same | same | same |
//! | `SetupType` | 2 | 2 | 2 | 2 |
//! | `SystemSetupInProgress` | 1 | 1 | 1 | 1 |
//! | `OOBEInProgress` | 1 | 0 | 1 | 0 |
//! | `SetupPhase` | 4 | 4 | 4 | 4 |
//! | `RespecializeCmdLine` (build 9200+) | `sysprep /respecialize /quiet` | same | same | same |
//! | `GeneralizationState` | 4 | 4 | 7 | 7 |
//! | `CleanupState` | 2 | 2 | 2 | 2 |
//! | `ChildCompletion\setup.exe` | 0 | 0 | 3 | 3 |
//! | `ChildCompletion\oobeldr.exe`, `SetupFinalTasks` | 0 | 0 | 0 | 0 |
//! | `ChildCompletion\audit.exe` | as found | 0 | as found | 0 |
//! | `UnattendPasses\specialize` | 0 | 0 | as found | as found |
//! | `UnattendPasses\oobeSystem` | 0 | 0 | 0 | as found |
//! | `UnattendPasses\auditSystem`, `auditUser` | 0 | 0 | as found | 0 |
//!
//! The `HKLM\SYSTEM\Setup` values are always written as a full set and never deleted: the kernel
//! bug-checks (0x9A) when they are missing or inconsistent (§1.2, DECOMP-KERNEL).
//!
//! State.ini keeps its encoding (UTF-16LE with BOM, UTF-8 with BOM, or ANSI) and line endings;
//! the `ImageState` line is written as `WritePrivateProfileStringW` writes it, `key=value`
//! without quotes (§1.1, OOBE-DECOMP, MS-WPPS). A missing file is created as that function
//! creates one (ANSI, CRLF).

use reseal_hive::data::{encode_dword, encode_sz};
use reseal_hive::ValueType;
use reseal_nt::utf16;

use crate::error::Result;
use crate::image::{SOFTWARE, SYSTEM};
use crate::options::Mode;
use crate::providers::{PlanContext, Provider};
use crate::validate;

const NAME: &str = "setup-state";

const SOURCE_REAL_RUN: &str =
    "sysprep-effects §1.7 real sysprep /generalize /oobe, Server 2019 [O] (COFOUNDRY)";
const SOURCE_SETUP_TYPE: &str =
    "sysprep-effects §1.2/§1.7 SetupType 2 [O] (COFOUNDRY real run; LU-307 audit reseal)";
const SOURCE_OOBE_IN_PROGRESS_AUDIT: &str =
    "sysprep-effects §1.2 OOBEInProgress 0 for audit [I] (set only while headed for OOBE)";
const SOURCE_SETUP_IN_PROGRESS: &str = "sysprep-effects §1.2/§1.7 SystemSetupInProgress 1 [O] \
     (USOS applied image before first boot; install.wim notes; LU-138)";
const SOURCE_SETUP_PHASE: &str =
    "sysprep-effects §1.2/§1.7 SetupPhase 4 [O] (USOS applied image; OOBE-DECOMP; LU-138)";
const SOURCE_GENERALIZATION_NOT_PENDING: &str = "sysprep-effects §1.3 GeneralizationState 7 \
     without generalize [O/I] (SYSTEM-B, WIN7-SYSTEM: no generalization pending)";
const SOURCE_CLEANUP_STATE: &str =
    "sysprep-effects §1.3 CleanupState 2 [O/?] (WIN7-SYSTEM; the fix recipes' value)";
const SOURCE_SETUP_CHILD_PENDING: &str = "sysprep-effects §1.3/§1.7 ChildCompletion\\setup.exe 0 \
     [O] (USOS applied image and install image, before specialize)";
const SOURCE_SETUP_CHILD_DONE: &str = "sysprep-effects §1.3/§1.4 ChildCompletion\\setup.exe 3 [O] \
     (USOS between specialize and OOBE; SYSTEM-B)";
const SOURCE_OOBE_CHILDREN: &str = "sysprep-effects §1.3/§1.7 ChildCompletion oobeldr.exe, \
     SetupFinalTasks 0 [O] (OOBE-DECOMP OrchestrateBootCommand)";
const SOURCE_AUDIT_CHILD: &str =
    "sysprep-effects §1.3 ChildCompletion\\audit.exe 0 [O/I] (WIN7-SYSTEM)";
const SOURCE_UNATTEND_PASSES: &str = "sysprep-effects §1.3/§1.7 UnattendPasses 0 for the passes \
     still to run [O/I] (USOS specialize=0; WIN7-SYSTEM; SETUPPLAT-DECOMP failed statuses)";
const SOURCE_IMAGE_STATE: &str =
    "sysprep-effects §1.1/§1.5/§1.7 State\\ImageState [D] (MS-STATES; COFOUNDRY)";
const SOURCE_IMAGE_SERVICING_STATE: &str =
    "sysprep-effects §1.1/§1.7 ImageServicingData\\ImageState \
     [O] (OOBE-DECOMP OrchestrateSetImageState; STAGESXS)";
const SOURCE_STATE_INI: &str = "sysprep-effects §1.1 State.ini [D/O] (MS-STATES; OOBE-DECOMP \
     WritePrivateProfileStringW, unquoted; MS-WPPS encoding)";
const SOURCE_TAG: &str = "sysprep-effects §1.6 Sysprep_succeeded.tag [O] (VCL)";

/// The image path of State.ini.
pub const STATE_INI: &str = r"Windows\Setup\State\State.ini";
/// The image path of the success marker.
pub const SUCCEEDED_TAG: &str = r"Windows\System32\Sysprep\Sysprep_succeeded.tag";
/// SYSTEM: the values the kernel, PnP and Winlogon read at boot.
pub const SETUP_KEY: &str = "Setup";
/// SYSTEM: Sysprep's record of its own runs.
pub const SYSPREP_STATUS_KEY: &str = r"Setup\Status\SysprepStatus";
/// SYSTEM: which setup programs have completed.
pub const CHILD_COMPLETION_KEY: &str = r"Setup\Status\ChildCompletion";
/// SYSTEM: the status of each answer-file pass.
pub const UNATTEND_PASSES_KEY: &str = r"Setup\Status\UnattendPasses";
/// SOFTWARE: the documented copy of `ImageState`.
pub const STATE_KEY: &str = r"Microsoft\Windows\CurrentVersion\Setup\State";
/// SOFTWARE: the copy Windows' OOBE code writes right after [`STATE_KEY`]'s.
pub const IMAGE_SERVICING_KEY: &str = r"Microsoft\Windows\CurrentVersion\Setup\ImageServicingData";

/// The program Winlogon starts in setup mode.
pub const CMD_LINE: &str = r"oobe\windeploy.exe";
/// `RespecializeCmdLine` as the real Sysprep run left it.
pub const RESPECIALIZE_CMD_LINE: &str = "sysprep /respecialize /quiet";
/// The first build given `RespecializeCmdLine`: the Windows 7 sample has none, Windows 10 and
/// Server 2019 have it; Windows 8 (9200) is the first build with `/mode:vm`, whose respecialize
/// this value serves [I].
pub const RESPECIALIZE_FIRST_BUILD: u32 = 9200;
/// `GeneralizationState` right after generalize; setup moves it to 7 once it has run.
pub const GENERALIZATION_PENDING: u32 = 4;
/// `GeneralizationState` of an installation whose setup has run.
pub const GENERALIZATION_DONE: u32 = 7;
/// `UnattendPasses` statuses the setup platform treats as failed ("system is in an invalid
/// state"; SETUPPLAT-DECOMP); values above [`PASS_STATUS_MAX`] are rejected too.
pub const FAILED_PASS_STATUSES: [u32; 5] = [1, 3, 5, 6, 8];
/// The highest `UnattendPasses` status the setup platform accepts.
pub const PASS_STATUS_MAX: u32 = 9;

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

/// The answer-file passes whose status a run resets to 0 (not run): after generalize every pass
/// of the new setup (specialize, oobeSystem, auditSystem, auditUser), since none of the old
/// setup's statuses applies to the generalized image; without generalize the passes the next
/// boot runs (MS-PASSES).
pub fn passes_reset(generalize: bool, mode: Mode) -> Vec<&'static str> {
    match (generalize, mode) {
        (true, _) => vec!["specialize", "oobeSystem", "auditSystem", "auditUser"],
        (false, Mode::Oobe) => vec!["oobeSystem"],
        (false, Mode::Audit) => vec!["auditSystem", "auditUser"],
    }
}

/// The data of one armed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmedData {
    /// A REG_DWORD.
    Dword(u32),
    /// A REG_SZ.
    Sz(&'static str),
}

impl ArmedData {
    /// The registry type it is written with.
    pub fn value_type(self) -> ValueType {
        match self {
            ArmedData::Dword(_) => ValueType::DWORD,
            ArmedData::Sz(_) => ValueType::SZ,
        }
    }

    /// The bytes it is written as.
    pub fn encode(self) -> Vec<u8> {
        match self {
            ArmedData::Dword(number) => encode_dword(number),
            ArmedData::Sz(text) => encode_sz(text),
        }
    }
}

/// One registry value of the armed setup state and where its value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmedValue {
    /// The hive's image path.
    pub hive: &'static str,
    /// The key in it.
    pub key: &'static str,
    /// The value's name.
    pub name: &'static str,
    /// What it is set to.
    pub data: ArmedData,
    /// The source the change carries.
    pub source: &'static str,
}

/// Every registry value a run sets, for a run with or without `generalize` into `mode`, on an
/// image of Windows build `build` (`None` when unreadable). Values not listed are left as found.
pub fn armed_values(generalize: bool, mode: Mode, build: Option<u32>) -> Vec<ArmedValue> {
    use ArmedData::{Dword, Sz};
    let value = |hive, key, name, data, source| ArmedValue {
        hive,
        key,
        name,
        data,
        source,
    };
    let oobe = mode == Mode::Oobe;
    let mut values = vec![
        value(SYSTEM, SETUP_KEY, "CmdLine", Sz(CMD_LINE), SOURCE_REAL_RUN),
        value(SYSTEM, SETUP_KEY, "SetupType", Dword(2), SOURCE_SETUP_TYPE),
        value(
            SYSTEM,
            SETUP_KEY,
            "SystemSetupInProgress",
            Dword(1),
            SOURCE_SETUP_IN_PROGRESS,
        ),
        if oobe {
            value(
                SYSTEM,
                SETUP_KEY,
                "OOBEInProgress",
                Dword(1),
                SOURCE_REAL_RUN,
            )
        } else {
            value(
                SYSTEM,
                SETUP_KEY,
                "OOBEInProgress",
                Dword(0),
                SOURCE_OOBE_IN_PROGRESS_AUDIT,
            )
        },
        value(
            SYSTEM,
            SETUP_KEY,
            "SetupPhase",
            Dword(4),
            SOURCE_SETUP_PHASE,
        ),
    ];
    if build.is_none_or(|build| build >= RESPECIALIZE_FIRST_BUILD) {
        values.push(value(
            SYSTEM,
            SETUP_KEY,
            "RespecializeCmdLine",
            Sz(RESPECIALIZE_CMD_LINE),
            SOURCE_REAL_RUN,
        ));
    }
    values.push(if generalize {
        value(
            SYSTEM,
            SYSPREP_STATUS_KEY,
            "GeneralizationState",
            Dword(GENERALIZATION_PENDING),
            SOURCE_REAL_RUN,
        )
    } else {
        value(
            SYSTEM,
            SYSPREP_STATUS_KEY,
            "GeneralizationState",
            Dword(GENERALIZATION_DONE),
            SOURCE_GENERALIZATION_NOT_PENDING,
        )
    });
    values.push(value(
        SYSTEM,
        SYSPREP_STATUS_KEY,
        "CleanupState",
        Dword(2),
        SOURCE_CLEANUP_STATE,
    ));
    values.push(if generalize {
        value(
            SYSTEM,
            CHILD_COMPLETION_KEY,
            "setup.exe",
            Dword(0),
            SOURCE_SETUP_CHILD_PENDING,
        )
    } else {
        value(
            SYSTEM,
            CHILD_COMPLETION_KEY,
            "setup.exe",
            Dword(3),
            SOURCE_SETUP_CHILD_DONE,
        )
    });
    for child in ["oobeldr.exe", "SetupFinalTasks"] {
        values.push(value(
            SYSTEM,
            CHILD_COMPLETION_KEY,
            child,
            Dword(0),
            SOURCE_OOBE_CHILDREN,
        ));
    }
    if !oobe {
        values.push(value(
            SYSTEM,
            CHILD_COMPLETION_KEY,
            "audit.exe",
            Dword(0),
            SOURCE_AUDIT_CHILD,
        ));
    }
    for pass in passes_reset(generalize, mode) {
        values.push(value(
            SYSTEM,
            UNATTEND_PASSES_KEY,
            pass,
            Dword(0),
            SOURCE_UNATTEND_PASSES,
        ));
    }
    let state = image_state(generalize, mode);
    values.push(value(
        SOFTWARE,
        STATE_KEY,
        "ImageState",
        Sz(state),
        SOURCE_IMAGE_STATE,
    ));
    values.push(value(
        SOFTWARE,
        IMAGE_SERVICING_KEY,
        "ImageState",
        Sz(state),
        SOURCE_IMAGE_SERVICING_STATE,
    ));
    values
}

impl Provider for SetupState {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        let generalize = ctx.options.generalize;
        let mode = ctx.options.mode;
        let build = validate::build_number(ctx.image)?;
        for armed in armed_values(generalize, mode, build) {
            ctx.source(armed.source).set_value(
                armed.hive,
                armed.key,
                armed.name,
                armed.data.value_type(),
                &armed.data.encode(),
            )?;
        }

        let mut state_ini = ctx.source(SOURCE_STATE_INI);
        let existing = state_ini
            .image()
            .read_file(STATE_INI, crate::limits::STATE_INI)?;
        let contents =
            state_ini_with_image_state(existing.as_deref(), image_state(generalize, mode));
        state_ini.write_file(STATE_INI, &contents, false)?;

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

/// The `ImageState` of a `State.ini` (`[State]` section; UTF-16 with a byte-order mark or ANSI;
/// quotes around the value are dropped).
pub fn state_ini_image_state(bytes: &[u8]) -> Option<String> {
    let (_, text) = decode_ini(bytes);
    let mut in_state = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = ini_section_name(line) {
            in_state = name.eq_ignore_ascii_case("State");
            continue;
        }
        if !in_state {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            if key.trim().eq_ignore_ascii_case("ImageState") {
                return Some(value.trim().trim_matches('"').to_string());
            }
        }
    }
    None
}

/// The section a header line opens: after leading blanks a `[`, the name up to the last `]`.
/// A line with `[` but no `]` is no header (the profile functions read it as a key line, as
/// Wine's `PROFILE_Load` shows), so the reader and the writer must agree on this one rule.
fn ini_section_name(line: &str) -> Option<&str> {
    let (name, _) = line.trim_start().strip_prefix('[')?.rsplit_once(']')?;
    Some(name)
}

/// State.ini's text and the encoding it came in: UTF-16LE or UTF-8 after their byte-order
/// marks, else ANSI (each byte one character, as Latin-1).
fn decode_ini(bytes: &[u8]) -> (IniEncoding, String) {
    if let Some(rest) = bytes.strip_prefix(&utf16::BOM) {
        return (IniEncoding::Utf16Le, utf16::decode_le_lossy(rest));
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
        IniEncoding::Utf16Le => utf16::encode_le_with_bom(text),
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
    let section_header = |line: &str| ini_section_name(line).is_some();
    let is_state_header =
        |line: &str| ini_section_name(line).is_some_and(|name| name.eq_ignore_ascii_case("State"));
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
        let entry = format!("ImageState={state}{newline}");
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

/// `line` (`ImageState = "OLD"\r\n`) rewritten as `WritePrivateProfileStringW` writes it,
/// `ImageState=NEW` without quotes, keeping the key as spelled and the line ending.
fn replace_ini_value(line: &str, value: &str) -> String {
    let (key, old) = line.split_once('=').unwrap_or((line, ""));
    let body = old.trim_end_matches(['\r', '\n']);
    let ending = &old[body.len()..];
    format!("{}={value}{ending}", key.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_value_unquoted_keeping_utf16_and_crlf() {
        let text = "[State]\r\nImageState=\"IMAGE_STATE_COMPLETE\"\r\n";
        let bytes = utf16::encode_le_with_bom(text);
        let out = state_ini_with_image_state(Some(&bytes), "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE");
        let (encoding, decoded) = decode_ini(&out);
        assert_eq!(encoding, IniEncoding::Utf16Le);
        assert_eq!(
            decoded,
            "[State]\r\nImageState=IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\r\n"
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
            b"[State]\r\nImageState=IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\r\n"
        );
        assert_eq!(
            state_ini_with_image_state(Some(b"[State]"), "S"),
            b"[State]\r\nImageState=S\r\n"
        );
    }

    #[test]
    fn state_ini_in_both_encodings() {
        let ansi = b"[State]\r\nImageState=\"IMAGE_STATE_COMPLETE\"\r\n";
        assert_eq!(
            state_ini_image_state(ansi).as_deref(),
            Some("IMAGE_STATE_COMPLETE")
        );
        let utf16 = utf16::encode_le_with_bom(
            "[Other]\r\nImageState=x\r\n[State]\r\nImageState=IMAGE_STATE_UNDEPLOYABLE\r\n",
        );
        assert_eq!(
            state_ini_image_state(&utf16).as_deref(),
            Some("IMAGE_STATE_UNDEPLOYABLE")
        );
        assert_eq!(state_ini_image_state(b"garbage\xff"), None);
    }
}
