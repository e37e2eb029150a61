//! Third-party Sysprep providers registered in the image, which an offline run cannot call.
//!
//! What Sysprep does (sysprep-effects §6, §7): applications register a DLL entry point under
//! `SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\SysPrepExternal\<pass>`, one value per
//! provider whose data is `"<dll>",<entry point>` [D: SUNSHINE, MS-SQL-IMAGE; O: AZ-AGENTBAKER].
//! Sysprep calls the `Cleanup` providers on every run and the `Generalize` ones with
//! `/generalize`; Windows setup calls the `Specialize` ones during specialize on the clone's
//! first boot. A provider that returns an error stops the run.
//!
//! What reseal does: it runs no code from the image, so it lists each `Cleanup` and `Generalize`
//! provider as a note naming the DLL and what it leaves undone; `Specialize` providers run on
//! the clone as after Sysprep, and are noted as such. `inspect` lists them all.

use reseal_hive::ValueType;

use crate::error::Result;
use crate::image::{Image, SOFTWARE};
use crate::providers::{PlanContext, Provider};

const NAME: &str = "external-providers";

/// SOFTWARE: the registrations, one subkey per pass.
pub const SYSPREP_EXTERNAL_KEY: &str = r"Microsoft\Windows\CurrentVersion\Setup\SysPrepExternal";

/// One registered provider.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExternalProvider {
    /// The pass it is registered for (`Cleanup`, `Generalize`, `Specialize`), as the key is named.
    pub pass: String,
    /// The value that registers it (under a subkey of the pass: `subkey\value`).
    pub value: String,
    /// The DLL, as registered (environment variables unexpanded).
    pub dll: String,
    /// The entry point, when the registration names one.
    pub entry_point: Option<String>,
}

/// Every provider registered under `SysPrepExternal`, pass by pass in the key's order; the
/// values of a pass key's subkeys count too (some registrations use a subkey per provider).
pub fn registered(image: &mut Image) -> Result<Vec<ExternalProvider>> {
    let mut providers = Vec::new();
    for pass in image.subkey_names(SOFTWARE, SYSPREP_EXTERNAL_KEY)? {
        let pass_key = format!(r"{SYSPREP_EXTERNAL_KEY}\{pass}");
        let mut keys = vec![(pass_key.clone(), String::new())];
        for sub in image.subkey_names(SOFTWARE, &pass_key)? {
            keys.push((format!(r"{pass_key}\{sub}"), format!(r"{sub}\")));
        }
        for (key, prefix) in keys {
            for (name, value_type, data) in image.values(SOFTWARE, &key)? {
                for command in registration_strings(value_type, &data) {
                    if let Some((dll, entry_point)) = parse_registration(&command) {
                        providers.push(ExternalProvider {
                            pass: pass.clone(),
                            value: format!("{prefix}{name}"),
                            dll,
                            entry_point,
                        });
                    }
                }
            }
        }
    }
    Ok(providers)
}

/// The strings a registration value holds (none for a non-string type).
fn registration_strings(value_type: ValueType, data: &[u8]) -> Vec<String> {
    if value_type == ValueType::SZ || value_type == ValueType::EXPAND_SZ {
        vec![reseal_hive::data::decode_sz(data)]
    } else if value_type == ValueType::MULTI_SZ {
        reseal_hive::data::decode_multi_sz(data)
    } else {
        Vec::new()
    }
}

/// `"C:\x\p.dll",Entry`, `C:\x\p.dll,Entry` or a bare DLL path, as (dll, entry point).
pub fn parse_registration(command: &str) -> Option<(String, Option<String>)> {
    let command = command.trim();
    let (dll, rest) = if let Some(quoted) = command.strip_prefix('"') {
        let end = quoted.find('"')?;
        (&quoted[..end], &quoted[end + 1..])
    } else {
        match command.rfind(',') {
            Some(comma) => (&command[..comma], &command[comma..]),
            None => (command, ""),
        }
    };
    let dll = dll.trim();
    if dll.is_empty() {
        return None;
    }
    let entry = rest.trim().trim_start_matches(',').trim();
    Some((
        dll.to_string(),
        (!entry.is_empty()).then(|| entry.to_string()),
    ))
}

/// Lists each registered provider as a note.
pub struct ExternalProviders;

impl Provider for ExternalProviders {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        let generalize = ctx.options.generalize;
        for provider in registered(ctx.image)? {
            let call = match &provider.entry_point {
                Some(entry) => format!("{}!{entry}", provider.dll),
                None => provider.dll.clone(),
            };
            let registration = format!(
                r"SOFTWARE {SYSPREP_EXTERNAL_KEY}\{}\{}",
                provider.pass, provider.value
            );
            let note = if provider.pass.eq_ignore_ascii_case("Cleanup") {
                Some(format!(
                    "{call} ({registration}) is a third-party Sysprep cleanup provider that \
                     Sysprep calls on every run; reseal runs no code from the image, so what it \
                     would clean up stays in the image"
                ))
            } else if provider.pass.eq_ignore_ascii_case("Generalize") {
                generalize.then(|| {
                    format!(
                        "{call} ({registration}) is a third-party Sysprep generalize provider; \
                         reseal runs no code from the image, so the machine-specific state it \
                         would remove stays in the image: clear it as its vendor documents \
                         before or after generalizing"
                    )
                })
            } else if provider.pass.eq_ignore_ascii_case("Specialize") {
                generalize.then(|| {
                    format!(
                        "{call} ({registration}) is a third-party Sysprep specialize provider; \
                         Windows setup calls it during specialize on each clone's first boot, \
                         as after Sysprep"
                    )
                })
            } else {
                Some(format!(
                    "{call} ({registration}) is registered for Sysprep pass {}, which reseal \
                     does not know; it is not run",
                    provider.pass
                ))
            };
            if let Some(note) = note {
                ctx.note(note);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_registration;

    #[test]
    fn registrations_are_split_into_dll_and_entry_point() {
        assert_eq!(
            parse_registration(r#""C:\Program Files\A, B\p.dll",Sysprep_Generalize"#),
            Some((
                r"C:\Program Files\A, B\p.dll".to_string(),
                Some("Sysprep_Generalize".to_string())
            ))
        );
        assert_eq!(
            parse_registration(r"%SystemRoot%\x.dll, Entry "),
            Some((r"%SystemRoot%\x.dll".to_string(), Some("Entry".to_string())))
        );
        assert_eq!(
            parse_registration(r"C:\x.dll"),
            Some((r"C:\x.dll".to_string(), None))
        );
        assert_eq!(parse_registration(""), None);
        assert_eq!(parse_registration(r#""unterminated"#), None);
    }
}
