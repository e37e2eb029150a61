//! What newsid refuses, before anything is planned: an image whose SAM and SECURITY disagree
//! about the machine SID, a domain member or domain controller, users with EFS keys, and hives
//! holding changes their logs cannot restore. All reasons are reported at once; nothing is
//! written.

use reseal_nt::Sid;

use crate::account_domain;
use crate::error::{Error, Result};
use crate::image::{Image, SECURITY};
use crate::validate::primary_domain_sid;

pub use crate::account_domain::{POLICY_ACCOUNT_DOMAIN, SAM_ACCOUNT_DOMAIN};
/// The key of a user hive under which EFS records the user's current file encryption key.
pub const EFS_CURRENT_KEYS: &str = r"Software\Microsoft\Windows NT\CurrentVersion\EFS\CurrentKeys";

/// The image's account-domain SID, after checking that nothing forbids giving it a new one;
/// `user_hives` are the users' NTUSER.DAT hives to look for EFS keys in.
pub fn account_domain_sid(image: &mut Image, user_hives: &[String]) -> Result<Sid> {
    let mut reasons = Vec::new();
    // Writing a hive back empties its logs: changes they could not restore would be lost.
    if let Some(reason) = crate::validate::dirty_hive(image)? {
        reasons.push(format!("dirty-hive: {reason}"));
    }
    let (security, sam) = account_domain::both_copies(image)?;
    reasons.extend(account_domain::disagreement(&security, &sam));
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
