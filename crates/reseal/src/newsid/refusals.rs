//! What newsid refuses, before anything is planned: an image whose SAM and SECURITY disagree
//! about the machine SID, a domain member or domain controller, users with EFS keys, and hives
//! holding changes their logs cannot restore. All reasons are reported at once; nothing is
//! written.

use reseal_nt::Sid;

use crate::error::{Error, Result};
use crate::image::{Image, SAM, SECURITY};
use crate::validate::primary_domain_sid;

/// A machine SID's binary length (S-1-5-21-A-B-C).
const MACHINE_SID_LENGTH: usize = 24;
/// The key of a user hive under which EFS records the user's current file encryption key.
pub const EFS_CURRENT_KEYS: &str = r"Software\Microsoft\Windows NT\CurrentVersion\EFS\CurrentKeys";
/// SECURITY's account-domain SID.
pub const POLICY_ACCOUNT_DOMAIN: &str = r"Policy\PolAcDmS";
/// SAM's account domain, whose `V` value ends with the domain SID.
pub const SAM_ACCOUNT_DOMAIN: &str = r"SAM\Domains\Account";

/// The image's account-domain SID, after checking that nothing forbids giving it a new one;
/// `user_hives` are the users' NTUSER.DAT hives to look for EFS keys in.
pub fn account_domain_sid(image: &mut Image, user_hives: &[String]) -> Result<Sid> {
    let mut reasons = Vec::new();
    // Writing a hive back empties its logs: changes they could not restore would be lost.
    if let Some(reason) = crate::validate::dirty_hive(image)? {
        reasons.push(format!("dirty-hive: {reason}"));
    }
    let security = read_policy_sid(image)?;
    let sam = read_sam_sid(image)?;
    if sam != security {
        reasons.push(format!(
            "{SECURITY} ({POLICY_ACCOUNT_DOMAIN}) names the machine {security}, but {SAM} \
             ({SAM_ACCOUNT_DOMAIN}\\V) names it {sam}: the two hives do not belong together"
        ));
    }
    if let Some(domain) = primary_domain_sid(image)? {
        let shown = Sid::from_bytes(&domain)
            .map(|sid| sid.to_string())
            .unwrap_or_else(|_| "a domain".to_string());
        reasons.push(format!(
            "the machine is a member or a controller of the domain {shown} ({SECURITY} \
             Policy\\PolPrDmS): the domain holds its account, so leave the domain, give it a new \
             SID, and join it again"
        ));
    }
    for hive in user_hives {
        if image.key_exists(hive, EFS_CURRENT_KEYS)? {
            reasons.push(format!(
                "{hive} has an EFS key ({EFS_CURRENT_KEYS}): files this user encrypted could no \
                 longer be opened, their key being protected with the user's SID; decrypt them \
                 first and remove the key"
            ));
        }
    }
    if !reasons.is_empty() {
        return Err(Error::refused(format!(
            "cannot give this image a new machine SID: {}",
            reasons.join("; ")
        )));
    }
    Ok(security)
}

/// The SID in SECURITY `Policy\PolAcDmS`.
fn read_policy_sid(image: &mut Image) -> Result<Sid> {
    let Some((_, bytes)) = image.value(SECURITY, POLICY_ACCOUNT_DOMAIN, "")? else {
        return Err(Error::corrupt(
            SECURITY,
            format!("{POLICY_ACCOUNT_DOMAIN} (the machine SID) is missing"),
        ));
    };
    machine_sid(SECURITY, POLICY_ACCOUNT_DOMAIN, &bytes)
}

/// The SID at the end of SAM `SAM\Domains\Account\V`.
fn read_sam_sid(image: &mut Image) -> Result<Sid> {
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
    machine_sid(SAM, &what, &bytes[start..])
}

/// `bytes`, read from `what` in `hive`, as a machine SID.
fn machine_sid(hive: &str, what: &str, bytes: &[u8]) -> Result<Sid> {
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
