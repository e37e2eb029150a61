//! The machine's account-domain SID, which an image keeps twice: SECURITY `Policy\PolAcDmS`
//! (LSA's copy) and the end of SAM `SAM\Domains\Account\V` (the account database's). One reader
//! for generalize's machine-SID request and for newsid.
//!
//! A value that is missing or does not hold a machine SID is damage (`CorruptInput`). Two
//! well-formed copies that differ are a refusal (`Refused`): the hives come from different
//! machines, and neither setupcl nor newsid could know which SID to replace.

use crate::error::{Error, Result};
use crate::image::{Image, SAM, SECURITY};
use crate::sid::Sid;

/// SECURITY's account-domain SID (the key's default value).
pub const POLICY_ACCOUNT_DOMAIN: &str = r"Policy\PolAcDmS";
/// SAM's account domain, whose `V` value ends with the domain SID.
pub const SAM_ACCOUNT_DOMAIN: &str = r"SAM\Domains\Account";
/// A machine SID's binary length (S-1-5-21-A-B-C).
const MACHINE_SID_LENGTH: usize = 24;

/// The machine SID both hives name; their disagreement is refused.
pub fn machine_sid(image: &mut Image) -> Result<Sid> {
    let (security, sam) = both_copies(image)?;
    match disagreement(&security, &sam) {
        Some(reason) => Err(Error::refused(reason)),
        None => Ok(security),
    }
}

/// The SID in SECURITY and the one in SAM, each checked to be a machine SID, not compared.
pub fn both_copies(image: &mut Image) -> Result<(Sid, Sid)> {
    Ok((policy_copy(image)?, sam_copy(image)?))
}

/// Why `security` and `sam` (from [`both_copies`]) cannot both be right, when they differ.
pub fn disagreement(security: &Sid, sam: &Sid) -> Option<String> {
    (security != sam).then(|| {
        format!(
            "{SECURITY} ({POLICY_ACCOUNT_DOMAIN}) names the machine {security}, but {SAM} \
             ({SAM_ACCOUNT_DOMAIN}\\V) names it {sam}: the two hives do not belong together"
        )
    })
}

/// The SID in SECURITY `Policy\PolAcDmS`.
fn policy_copy(image: &mut Image) -> Result<Sid> {
    let Some((_, bytes)) = image.value(SECURITY, POLICY_ACCOUNT_DOMAIN, "")? else {
        return Err(Error::corrupt(
            SECURITY,
            format!("{POLICY_ACCOUNT_DOMAIN} (the machine SID) is missing"),
        ));
    };
    parse(SECURITY, POLICY_ACCOUNT_DOMAIN, &bytes)
}

/// The SID at the end of SAM `SAM\Domains\Account\V`.
fn sam_copy(image: &mut Image) -> Result<Sid> {
    let what = format!(r"{SAM_ACCOUNT_DOMAIN}\V");
    let Some((_, bytes)) = image.value(SAM, SAM_ACCOUNT_DOMAIN, "V")? else {
        return Err(Error::corrupt(
            SAM,
            format!("{what} (which ends with the machine SID) is missing"),
        ));
    };
    let start = bytes.len().checked_sub(MACHINE_SID_LENGTH).ok_or_else(|| {
        Error::corrupt(
            SAM,
            format!(
                "{what} is {} bytes, expected at least {MACHINE_SID_LENGTH} (it ends with the \
                 machine SID)",
                bytes.len()
            ),
        )
    })?;
    parse(SAM, &what, &bytes[start..])
}

/// `bytes`, read from `what` in `hive`, as a machine SID.
fn parse(hive: &str, what: &str, bytes: &[u8]) -> Result<Sid> {
    let sid =
        Sid::from_bytes(bytes).map_err(|err| Error::corrupt(hive, format!("{what}: {err}")))?;
    if !sid.is_machine_domain_sid() || bytes.len() != MACHINE_SID_LENGTH {
        return Err(Error::corrupt(
            hive,
            format!("{what} holds {sid}, expected a machine SID (S-1-5-21-A-B-C)"),
        ));
    }
    Ok(sid)
}
