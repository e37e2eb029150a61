//! Accounts: the built-in Administrator disabled, the last logged-on user forgotten.
//!
//! What Sysprep does (sysprep-effects §6.8, §8 item 9): generalize disables the built-in
//! Administrator from the next start [D: MS-ADMIN] (client editions keep its password; Server
//! 2008 R2/2012 also reset it). Audit mode logs on automatically as the built-in Administrator,
//! which Windows enables for audit [D: MS-PASSES, MS-ADMIN]. Whether Sysprep clears the
//! last-logged-on-user values is not shown by any source [?, §9 question 12].
//!
//! What reseal does:
//! - `SAM\SAM\Domains\Account\Users\000001F4\F`: the account-control word at offset 0x38 gets the
//!   disabled bit 0x0001 (chntpw, RegRipper `samparse` [I]); every other byte of the value stays.
//!   For `--audit` the account is left enabled, since audit mode logs on as it; the result equals
//!   Sysprep's disable followed by audit mode's enable.
//! - The LogonUI values that name the reference machine's last user (`LastLoggedOnUser`,
//!   `LastLoggedOnSAMUser`, `LastLoggedOnUserSID`, `LastLoggedOnDisplayName`, `SelectedUserSID`)
//!   and Winlogon's `DefaultUserName` are deleted, so the new machine's logon screen does not
//!   offer an account that OOBE has not created [I: cosmetic and safe, §6.8]. `DefaultUserName`
//!   stays when `AutoAdminLogon` is 1, because automatic logon needs it.

use crate::error::{Error, Result};
use crate::image::{SAM, SOFTWARE};
use crate::options::Mode;
use crate::providers::support::WINLOGON;
use crate::providers::{PlanContext, Provider};

const NAME: &str = "accounts";
const SOURCE_ADMINISTRATOR: &str = "sysprep-effects §6.8 built-in Administrator disabled [D] (MS-ADMIN); F offset 0x38 bit 0x0001 [I] (chntpw, samparse)";
const SOURCE_LAST_USER: &str =
    "sysprep-effects §6.8 last logged-on user [?]; cleared as cosmetic and safe [I]";

/// The built-in Administrator's SAM key (RID 500).
pub const ADMINISTRATOR_KEY: &str = r"SAM\Domains\Account\Users\000001F4";
/// The offset of the user-account-control word in `F`.
pub const ACCOUNT_CONTROL_OFFSET: usize = 0x38;
/// The account-control bit for "disabled".
pub const ACCOUNT_DISABLED: u16 = 0x0001;
const LOGON_UI: &str = r"Microsoft\Windows\CurrentVersion\Authentication\LogonUI";
/// The LogonUI values naming the last user.
pub const LAST_USER_VALUES: [&str; 5] = [
    "LastLoggedOnUser",
    "LastLoggedOnSAMUser",
    "LastLoggedOnUserSID",
    "LastLoggedOnDisplayName",
    "SelectedUserSID",
];

/// Disables the built-in Administrator and clears the last-user values.
pub struct Accounts;

impl Provider for Accounts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        if ctx.options.mode == Mode::Audit {
            ctx.note("audit mode logs on as the built-in Administrator, so it stays enabled");
        } else {
            let Some((value_type, data)) = ctx.image.value(SAM, ADMINISTRATOR_KEY, "F")? else {
                return Err(Error::corrupt(
                    SAM,
                    format!("{ADMINISTRATOR_KEY}\\F (the built-in Administrator) is missing"),
                ));
            };
            let disabled = with_account_disabled(&data).ok_or_else(|| {
                Error::corrupt(
                    SAM,
                    format!(
                        "{ADMINISTRATOR_KEY}\\F is {} bytes, too short for the account-control word at 0x38",
                        data.len()
                    ),
                )
            })?;
            ctx.source(SOURCE_ADMINISTRATOR).set_value(
                SAM,
                ADMINISTRATOR_KEY,
                "F",
                value_type,
                &disabled,
            )?;
        }

        let mut last_user = ctx.source(SOURCE_LAST_USER);
        for name in LAST_USER_VALUES {
            last_user.delete_value(SOFTWARE, LOGON_UI, name)?;
        }
        let auto_logon = last_user
            .image()
            .string_value(SOFTWARE, WINLOGON, "AutoAdminLogon")?;
        if auto_logon.as_deref().map(str::trim) == Some("1") {
            ctx.note(
                "Winlogon AutoAdminLogon is 1, so DefaultUserName is kept for automatic logon",
            );
        } else {
            last_user.delete_value(SOFTWARE, WINLOGON, "DefaultUserName")?;
        }
        Ok(())
    }
}

/// `F` with the disabled bit set, or `None` when it is too short to hold the control word.
pub fn with_account_disabled(f: &[u8]) -> Option<Vec<u8>> {
    let word = f.get(ACCOUNT_CONTROL_OFFSET..ACCOUNT_CONTROL_OFFSET + 2)?;
    let control = u16::from_le_bytes([word[0], word[1]]) | ACCOUNT_DISABLED;
    let mut out = f.to_vec();
    out[ACCOUNT_CONTROL_OFFSET..ACCOUNT_CONTROL_OFFSET + 2].copy_from_slice(&control.to_le_bytes());
    Some(out)
}

/// Whether `F` says the account is disabled.
pub fn is_account_disabled(f: &[u8]) -> Option<bool> {
    let word = f.get(ACCOUNT_CONTROL_OFFSET..ACCOUNT_CONTROL_OFFSET + 2)?;
    Some(u16::from_le_bytes([word[0], word[1]]) & ACCOUNT_DISABLED != 0)
}
