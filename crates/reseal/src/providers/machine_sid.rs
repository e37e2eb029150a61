//! The machine SID: a pending SetupCl request, carried out by Windows' own `setupcl.exe` at the
//! next boot.
//!
//! What Sysprep does (sysprep-effects §2.2, §2.3, §2.5 option A, §8 item 3): generalize does not
//! rewrite the SID itself. The Scl library's `SclPendRequest` writes
//! `HKLM\SYSTEM\Setup\SetupCl\PendingRequest` (`OperationFlags`, `SidAccountDomainOld`, optionally
//! `SidAccountDomainNew`; without it setupcl picks a random SID) and appends `setupcl.exe` to the
//! current control set's `Session Manager\SetupExecute`; smss runs it at the next boot, and it
//! replaces the SID in every hive, user hive and ACL, then removes itself from the list
//! [O: SCL-DECOMP; CLONEID proves the mechanism end to end].
//!
//! What reseal writes:
//! - `SidAccountDomainOld` (REG_BINARY) = the data of SECURITY `Policy\PolAcDmS` (default value),
//!   byte for byte, after checking it against the last 24 bytes of SAM `SAM\Domains\Account\V`
//!   (REGIPY, NewSID); a mismatch means the two hives disagree about the machine SID and stops the
//!   run with an error naming both files. REG_BINARY because the decompiled writer's type code is
//!   unusual [O] and CloneWindowsIdentity's `SidAccountDomainNew` is REG_BINARY [O].
//! - `SidAccountDomainNew` (REG_BINARY) = `--sid` when given; otherwise any stale value is
//!   deleted so setupcl generates a random SID, as after a plain generalize [O: SCL-DECOMP].
//! - `OperationFlags` = 4 (REG_DWORD). The value real Sysprep writes is not public (§9 question
//!   2). 4 is the one value seen in use to pend setupcl on an offline SYSTEM hive (OFFLINE-SCL-3P,
//!   [O], unverified); in the decompiled flag table bit 0x4 is the registry/file-system SID
//!   processing bit, and it requests no disk, partition or link operation (mask 0x4019).
//! - `setupcl.exe` appended once to `ControlSet00N\Control\Session Manager\SetupExecute`
//!   (REG_MULTI_SZ), existing entries kept in order [O: SCL-DECOMP]. reseal always uses
//!   `SetupExecute`, which smss processes on every build, not the `SetupExecuteNoPnpSync` variant
//!   the writer may pick when `SetupCl\Session Manager\SupportedOneTimeExecute` allows it.

use reseal_hive::data::{encode_dword, encode_multi_sz};
use reseal_hive::ValueType;

use crate::error::{Error, ErrorKind, Result};
use crate::image::{Image, SAM, SECURITY, SYSTEM};
use crate::providers::support::{control_set_key, read_strings};
use crate::providers::{PlanContext, Provider};
use crate::sid::Sid;

const NAME: &str = "machine-sid";
const SOURCE_REQUEST: &str =
    "sysprep-effects §2.2/§2.5 SetupCl PendingRequest [O] (SCL-DECOMP, CLONEID)";
const SOURCE_FLAGS: &str = "sysprep-effects §2.2 OperationFlags=4 [O] (OFFLINE-SCL-3P, unverified)";
const SOURCE_SETUP_EXECUTE: &str = "sysprep-effects §2.3 SetupExecute setupcl.exe [O] (SCL-DECOMP)";

/// The request key setupcl reads.
pub const PENDING_REQUEST: &str = r"Setup\SetupCl\PendingRequest";
/// The `OperationFlags` reseal requests (see the module documentation).
pub const OPERATION_FLAGS: u32 = 4;
/// The program smss runs from `SetupExecute`.
pub const SETUPCL: &str = "setupcl.exe";
/// A machine SID's binary length (S-1-5-21-A-B-C).
const MACHINE_SID_LENGTH: usize = 24;

/// Pends a SetupCl request for a new machine SID.
pub struct MachineSid;

impl Provider for MachineSid {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        let old_sid = machine_sid_bytes(ctx.image)?;
        let plan = &mut *ctx.plan;
        let image = &mut *ctx.image;
        plan.set_value(
            image,
            NAME,
            SOURCE_FLAGS,
            SYSTEM,
            PENDING_REQUEST,
            "OperationFlags",
            ValueType::DWORD,
            &encode_dword(OPERATION_FLAGS),
        )?;
        plan.set_value(
            image,
            NAME,
            SOURCE_REQUEST,
            SYSTEM,
            PENDING_REQUEST,
            "SidAccountDomainOld",
            ValueType::BINARY,
            &old_sid,
        )?;
        match &ctx.options.sid {
            Some(new_sid) => plan.set_value(
                image,
                NAME,
                SOURCE_REQUEST,
                SYSTEM,
                PENDING_REQUEST,
                "SidAccountDomainNew",
                ValueType::BINARY,
                &new_sid.to_bytes(),
            )?,
            None => plan.delete_value(
                image,
                NAME,
                SOURCE_REQUEST,
                SYSTEM,
                PENDING_REQUEST,
                "SidAccountDomainNew",
            )?,
        }

        let session_manager = control_set_key(image, r"Control\Session Manager")?;
        let mut entries =
            read_strings(image, SYSTEM, &session_manager, "SetupExecute")?.unwrap_or_default();
        if !entries
            .iter()
            .any(|entry| entry.trim().eq_ignore_ascii_case(SETUPCL))
        {
            entries.push(SETUPCL.to_string());
        }
        plan.set_value(
            image,
            NAME,
            SOURCE_SETUP_EXECUTE,
            SYSTEM,
            &session_manager,
            "SetupExecute",
            ValueType::MULTI_SZ,
            &encode_multi_sz(&entries),
        )
    }
}

/// The machine SID in binary form: SECURITY `Policy\PolAcDmS`, checked against the tail of SAM
/// `SAM\Domains\Account\V`.
pub fn machine_sid_bytes(image: &mut Image) -> Result<Vec<u8>> {
    let Some((_, policy)) = image.value(SECURITY, r"Policy\PolAcDmS", "")? else {
        return Err(Error::corrupt(
            SECURITY,
            "Policy\\PolAcDmS (the machine SID) is missing",
        ));
    };
    let sid = Sid::from_bytes(&policy)
        .map_err(|err| Error::corrupt(SECURITY, format!("Policy\\PolAcDmS: {}", err.message)))?;
    if !sid.is_machine_domain_sid() || policy.len() != MACHINE_SID_LENGTH {
        return Err(Error::corrupt(
            SECURITY,
            format!("Policy\\PolAcDmS holds {sid}, which is not a machine SID (S-1-5-21-A-B-C)"),
        ));
    }
    let Some((_, account)) = image.value(SAM, r"SAM\Domains\Account", "V")? else {
        return Err(Error::corrupt(
            SAM,
            "SAM\\Domains\\Account\\V (which ends with the machine SID) is missing",
        ));
    };
    if account.len() < MACHINE_SID_LENGTH {
        return Err(Error::corrupt(
            SAM,
            format!(
                "SAM\\Domains\\Account\\V is {} bytes, too short to end with a machine SID",
                account.len()
            ),
        ));
    }
    let sam_tail = &account[account.len() - MACHINE_SID_LENGTH..];
    if sam_tail != policy.as_slice() {
        let sam_sid = Sid::from_bytes(sam_tail)
            .map(|sid| sid.to_string())
            .unwrap_or_else(|_| "an unreadable SID".to_string());
        return Err(Error {
            kind: ErrorKind::CorruptInput,
            file: Some(SECURITY.to_string()),
            message: format!(
                "the machine SID in {SECURITY} (Policy\\PolAcDmS: {sid}) differs from the one in {SAM} \
                 (SAM\\Domains\\Account\\V: {sam_sid}); the image's hives disagree, so setupcl \
                 could not replace the SID consistently"
            ),
        });
    }
    Ok(policy)
}
