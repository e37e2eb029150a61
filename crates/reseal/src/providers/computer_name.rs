//! The computer name: the reference machine's name goes; specialize sets the new one.
//!
//! What Sysprep does (sysprep-effects §3): generalize "removes" the computer name [O: 4SYSOPS];
//! which values it writes is not confirmed [?, §9 question 10]. Specialize then sets the name from
//! the answer file's `Microsoft-Windows-Shell-Setup/ComputerName` (specialize pass), where `*`
//! means a random name [D: MS-UNATTEND-COMPUTERNAME].
//!
//! What reseal does:
//! - The name comes from `--computer-name`, else the user's answer file (specialize
//!   `Shell-Setup/ComputerName`), else `*`. A concrete name must follow Windows' rules: at most 15
//!   characters, letters, digits, `-` and `_` only, not all digits [D: MS-UNATTEND-COMPUTERNAME];
//!   anything else is a usage error.
//! - The answer file's specialize pass gets `ComputerName` (unless the user's file already says
//!   exactly that, or leaves it empty, which also means a random name), so Windows' specialize
//!   names the machine [D].
//! - The old name leaves the registry now, in the three values that carry it and that the hive
//!   file stores (`ActiveComputerName` is volatile and never on disk) [O: REACTOS apitest]:
//!   `ControlSet00N\Control\ComputerName\ComputerName\ComputerName` (upper case),
//!   `Services\Tcpip\Parameters\Hostname` and `NV Hostname` (case kept), and in SOFTWARE Winlogon's
//!   `DefaultDomainName` and `AltDefaultDomainName` when they hold the old name, as they do on a
//!   workgroup machine (§3 [O]: image scripts update them too). They get the new name, or
//!   for `*` a name in Windows' own default form (`DESKTOP-` and 7 random characters on clients,
//!   `WIN-` and 11 on servers [O: TECHTARGET; I for servers]) that specialize replaces again. Its
//!   characters are derived from the machine SID setupcl is about to replace, so the name is new
//!   but a second run finds it in place and plans nothing. [I]:
//!   no source shows the exact values generalize leaves, so the values are kept valid rather than
//!   emptied, which nothing documents as safe at boot.
//! - `SECURITY\Policy\PolAcDmN` (the account-domain name) is an LSA structure and is left to
//!   Windows, which renames the account domain with the computer at specialize [I].

use reseal_hive::data::encode_sz;
use reseal_hive::ValueType;

use crate::error::{Error, Result};
use crate::image::{SOFTWARE, SYSTEM};
use crate::providers::machine_sid::machine_sid_bytes;
use crate::providers::support::{control_set_key, WINLOGON};
use crate::providers::{PlanContext, Provider};

const NAME: &str = "computer-name";
const SOURCE_REGISTRY: &str = "sysprep-effects §3 ComputerName/Hostname/NV Hostname [O] (REACTOS apitest; values after generalize [I])";

/// The answer-file component and path of the computer name.
pub const COMPONENT: &str = "Microsoft-Windows-Shell-Setup";
/// The element below the component.
pub const ELEMENT: &str = "ComputerName";
/// The name that asks specialize for a random one.
pub const RANDOM: &str = "*";
const MAX_LENGTH: usize = 15;
const NAME_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Moves the computer name to the answer file's specialize pass.
pub struct ComputerName;

/// Checks a computer name against Windows' rules; `*` is accepted (random at specialize).
pub fn validate_computer_name(name: &str) -> Result<()> {
    if name == RANDOM {
        return Ok(());
    }
    validate_concrete_computer_name(name)
}

/// Checks a concrete computer name as Windows does: it is the NetBIOS name and the DNS host
/// label at once, so both sets of rules hold [D: MS-NAMING-CONVENTIONS]. The message names the
/// rule broken.
pub fn validate_concrete_computer_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::usage(format!(
            "invalid computer name {name:?}: {why} (a computer name is 1 to 15 letters, digits \
             or '-', not starting or ending with '-', not all digits)"
        ))
    };
    if name.is_empty() {
        return Err(bad(
            "it is empty; NetBIOS and DNS names have at least 1 character",
        ));
    }
    if name.chars().count() > MAX_LENGTH {
        return Err(bad(
            "it is longer than 15 characters, the NetBIOS limit (the 16th is the service type)",
        ));
    }
    if let Some(c) = name.chars().find(|c| NETBIOS_DISALLOWED.contains(c)) {
        return Err(bad(&format!(
            "{c:?} is not allowed in a NetBIOS name (\\ / : * ? \" < > | are not)"
        )));
    }
    if name.contains('.') {
        return Err(bad(
            "a period is not allowed: it separates a NetBIOS scope and DNS labels",
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(bad(&format!(
            "{c:?} is not allowed in a DNS host label (letters, digits and '-' only)"
        )));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(bad("a DNS host label does not start or end with '-'"));
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad("it is all digits, which a DNS host name cannot be"));
    }
    Ok(())
}

/// The characters a NetBIOS computer name cannot hold [D: MS-NAMING-CONVENTIONS].
const NETBIOS_DISALLOWED: &[char] = &['\\', '/', ':', '*', '?', '"', '<', '>', '|'];

/// The most characters of a server description (`net config server /srvcomment`)
/// [D: MS-NET-CONFIG].
const MAX_DESCRIPTION_LENGTH: usize = 48;

/// Checks a computer description: at most 48 characters, no control characters.
pub fn validate_description(description: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::usage(format!(
            "invalid computer description {description:?}: {why} (at most 48 characters, no \
             control characters)"
        ))
    };
    if description.chars().count() > MAX_DESCRIPTION_LENGTH {
        return Err(bad("it is longer than 48 characters"));
    }
    if description.chars().any(char::is_control) {
        return Err(bad("it holds a control character"));
    }
    Ok(())
}

impl Provider for ComputerName {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        let from_answer = ctx
            .answer
            .and_then(|answer| answer.setting("specialize", COMPONENT, &[ELEMENT]));
        let wanted = match (&ctx.options.computer_name, &from_answer) {
            (Some(name), _) => name.trim().to_string(),
            (None, Some(name)) if !name.is_empty() => name.clone(),
            _ => RANDOM.to_string(),
        };
        validate_computer_name(&wanted)?;
        // An empty value already asks for a random name (sysprep-effects §3
        // [D: MS-UNATTEND-COMPUTERNAME]), as MDT's answer files leave it: it stays as written.
        let already_random = wanted == RANDOM && from_answer.as_deref() == Some("");
        if from_answer.as_deref() != Some(wanted.as_str()) && !already_random {
            ctx.answer_setting("specialize", COMPONENT, &[ELEMENT], wanted.clone());
        }

        let interim = if wanted == RANDOM {
            default_style_name(ctx)?
        } else {
            wanted
        };
        plan_name(ctx, SOURCE_REGISTRY, &interim)?;
        if let Some(description) = &ctx.options.description {
            plan_description(ctx, description)?;
        }
        Ok(())
    }
}

/// Renames the machine in place, without generalizing: the name goes into every value of
/// sysprep-effects §3 the hive file stores, as `SetComputerNameEx` and a reboot would leave them,
/// and the description into the server comment. The setup state and the answer file are not
/// touched. This is what a cloned, not generalized, machine needs before its first boot.
pub struct SetComputerName {
    /// The new name (a concrete one: `*` is for specialize, which a rename does not run).
    pub name: String,
    /// The new description (`srvcomment`), if any.
    pub description: Option<String>,
}

/// The provider name of [`SetComputerName`].
pub const SET_NAME: &str = "rename";
const SOURCE_SET: &str = "sysprep-effects §3 ComputerName/Hostname/NV Hostname [O] (REACTOS apitest: the values SetComputerNameEx writes and the next boot reads)";
const SOURCE_DESCRIPTION: &str =
    "LanmanServer\\Parameters\\srvcomment [D] (MS-NET-CONFIG: net config server /srvcomment)";

impl Provider for SetComputerName {
    fn name(&self) -> &'static str {
        SET_NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        let name = self.name.trim();
        validate_concrete_computer_name(name)?;
        plan_name(ctx, SOURCE_SET, name)?;
        if let Some(description) = &self.description {
            plan_description(ctx, description)?;
        }
        Ok(())
    }
}

/// Plans `name` into every registry value that holds the computer name: `ComputerName` (upper
/// case), `Hostname` and `NV Hostname` (case kept), and Winlogon's domain defaults where they
/// hold the old name.
fn plan_name(ctx: &mut PlanContext<'_, '_>, source: &'static str, name: &str) -> Result<()> {
    let image = &mut *ctx.image;
    let computer_name_key = control_set_key(image, r"Control\ComputerName\ComputerName")?;
    let tcpip_key = control_set_key(image, r"Services\Tcpip\Parameters")?;
    let old_name = image.string_value(SYSTEM, &computer_name_key, "ComputerName")?;
    let active_key = control_set_key(image, r"Control\ComputerName\ActiveComputerName")?;
    // Volatile, so normally absent from the file; a stored copy would be read at boot.
    let stored_active = image
        .string_value(SYSTEM, &active_key, "ComputerName")?
        .is_some();
    let mut values = vec![
        (
            SYSTEM,
            computer_name_key.clone(),
            "ComputerName",
            name.to_ascii_uppercase(),
        ),
        (SYSTEM, tcpip_key.clone(), "Hostname", name.to_string()),
        (SYSTEM, tcpip_key, "NV Hostname", name.to_string()),
    ];
    if stored_active {
        values.push((
            SYSTEM,
            active_key,
            "ComputerName",
            name.to_ascii_uppercase(),
        ));
    }
    // Winlogon's domain defaults hold the computer name on a workgroup machine.
    for value in ["DefaultDomainName", "AltDefaultDomainName"] {
        let current = image.string_value(SOFTWARE, WINLOGON, value)?;
        let holds_old_name = matches!((&current, &old_name),
            (Some(current), Some(old)) if current.eq_ignore_ascii_case(old));
        if holds_old_name {
            values.push((
                SOFTWARE,
                WINLOGON.to_string(),
                value,
                name.to_ascii_uppercase(),
            ));
        }
    }
    let mut registry = ctx.source(source);
    for (hive, key, value, data) in values {
        registry.set_value(hive, &key, value, ValueType::SZ, &encode_sz(&data))?;
    }
    Ok(())
}

/// Plans the computer description: the Server service's comment, which `net view` and the
/// System control panel show.
fn plan_description(ctx: &mut PlanContext<'_, '_>, description: &str) -> Result<()> {
    validate_description(description)?;
    let key = control_set_key(ctx.image, r"Services\LanmanServer\Parameters")?;
    ctx.source(SOURCE_DESCRIPTION).set_value(
        SYSTEM,
        &key,
        "srvcomment",
        ValueType::SZ,
        &encode_sz(description),
    )
}

/// A name in Windows' default form, used until specialize picks the final random one; its
/// characters come from the outgoing machine SID (the same on every run over the same image).
fn default_style_name(ctx: &mut PlanContext<'_, '_>) -> Result<String> {
    let seed = machine_sid_bytes(ctx.image)?;
    let installation = ctx.image.string_value(
        SOFTWARE,
        r"Microsoft\Windows NT\CurrentVersion",
        "InstallationType",
    )?;
    let is_server = installation.is_some_and(|kind| kind.starts_with("Server"));
    let (prefix, length) = if is_server {
        ("WIN-", 11)
    } else {
        ("DESKTOP-", 7)
    };
    let suffix: String = (0..length)
        .map(|index: u8| {
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&seed);
            hasher.update(&[index]);
            let pick = hasher.finalize() as usize % NAME_ALPHABET.len();
            char::from(NAME_ALPHABET[pick])
        })
        .collect();
    Ok(format!("{prefix}{suffix}"))
}
