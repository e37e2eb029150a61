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
//! - `OperationFlags` (REG_DWORD) = 0x5F04. The value Sysprep passes is not public (§9 question 2),
//!   so it is derived from how the Scl executor (`SclpExecuteRequestInternal`, public
//!   decompilation) tests the flags: 0x4 asks for the account-domain SID to be replaced (the
//!   resolver then reads the old SID from `PolAcDmS` and makes a random new one unless given);
//!   registry processing runs only when a bit of 0x1F00 is set together with 0x2 or 0x4, so all
//!   five registry-scope bits are set; file-system processing (the SIDs in ACLs) runs only with
//!   0x4000 together with 0x4. Disk signatures (0x1), partition growth (0x10), path replacement
//!   (0x2/0x8) and upgrade hives (0x20) are not requested: generalize keeps the Windows path and
//!   disk. The writer keeps the bits of mask 0xFF3F, which 0x5F04 stays inside. [O for the bit
//!   meanings, I for the combination.] A third-party offline program writes 4 alone (OFFLINE-SCL-3P,
//!   unverified); by the executor's tests that would process neither registry nor files.
//! - `SidAccountDomainOld` = the data of SECURITY `Policy\PolAcDmS` (default value), byte for
//!   byte, after checking it against the last 24 bytes of SAM `SAM\Domains\Account\V` (REGIPY,
//!   NewSID; one reader, `crate::account_domain`); a mismatch means the two hives disagree about
//!   the machine SID and refuses the run with an error naming both files. Its value type is 0x5D6C70BA, the private type `SclPendRequest`
//!   writes both SID values with [O: SCL-DECOMP disassembly]. The decompiled reader shows no type
//!   check on them (it copies the data), which fits CloneWindowsIdentity's REG_BINARY
//!   `SidAccountDomainNew` working too.
//! - `SidAccountDomainNew` (same type) = `--sid` when given; otherwise any stale value is deleted,
//!   as the writer deletes it when no new SID is given, and setupcl generates a random SID
//!   [O: SCL-DECOMP].
//! - `WinDirOld`/`WinDirNew`, `OS Footprint` and `PartitionName` are not written: the reader only
//!   reads them when present, and they serve the path and partition operations not requested.
//! - `setupcl.exe` appended once to `ControlSet00N\Control\Session Manager\SetupExecute`
//!   (REG_MULTI_SZ), existing entries kept in order [O: SCL-DECOMP]. Because file-system work is
//!   requested (mask 0x4019 is not clear), the writer itself would choose `SetupExecute` rather
//!   than `SetupExecuteNoPnpSync`.

use reseal_hive::data::{encode_dword, encode_multi_sz};
use reseal_hive::ValueType;

use crate::error::Result;
use crate::image::{Image, SYSTEM};
use crate::providers::support::{control_set_key, read_strings};
use crate::providers::{PlanContext, Provider};
use crate::sid::Sid;

const NAME: &str = "machine-sid";
const SOURCE_REQUEST: &str =
    "sysprep-effects §2.2/§2.5 SetupCl PendingRequest [O] (SCL-DECOMP, CLONEID)";
const SOURCE_FLAGS: &str = "sysprep-effects §2.2 OperationFlags; bits from SCL-DECOMP SclpExecuteRequestInternal [O]; 0x5F04 combination [I]";
const SOURCE_SETUP_EXECUTE: &str = "sysprep-effects §2.3 SetupExecute setupcl.exe [O] (SCL-DECOMP)";

/// The request key setupcl reads.
pub const PENDING_REQUEST: &str = r"Setup\SetupCl\PendingRequest";
/// Replace the account-domain (machine) SID.
pub const REPLACE_ACCOUNT_DOMAIN_SID: u32 = 0x4;
/// The registry-scope bits; registry processing needs one of them.
pub const PROCESS_REGISTRY: u32 = 0x1F00;
/// Process the file system (the SIDs in ACLs, with [`REPLACE_ACCOUNT_DOMAIN_SID`]).
pub const PROCESS_FILE_SYSTEM: u32 = 0x4000;
/// The `OperationFlags` reseal requests (see the module documentation): 0x5F04.
pub const OPERATION_FLAGS: u32 =
    REPLACE_ACCOUNT_DOMAIN_SID | PROCESS_REGISTRY | PROCESS_FILE_SYSTEM;
/// The value type `SclPendRequest` gives `SidAccountDomainOld`/`SidAccountDomainNew`.
pub const SCL_SID_VALUE_TYPE: ValueType = ValueType(0x5D6C_70BA);
/// The program smss runs from `SetupExecute`.
pub const SETUPCL: &str = "setupcl.exe";

/// Pends a SetupCl request for a new machine SID.
pub struct MachineSid;

impl Provider for MachineSid {
    fn name(&self) -> &'static str {
        NAME
    }

    fn plan(&self, ctx: &mut PlanContext<'_, '_>) -> Result<()> {
        let old_sid = machine_sid_bytes(ctx.image)?;
        ctx.source(SOURCE_FLAGS).set_value(
            SYSTEM,
            PENDING_REQUEST,
            "OperationFlags",
            ValueType::DWORD,
            &encode_dword(OPERATION_FLAGS),
        )?;
        // As the writer does: a SID it has is written, a SID it lacks is deleted.
        let new_sid = ctx.options.sid.as_ref().map(Sid::to_bytes);
        let mut request = ctx.source(SOURCE_REQUEST);
        for (name, sid) in [
            ("SidAccountDomainOld", Some(old_sid)),
            ("SidAccountDomainNew", new_sid),
        ] {
            match sid {
                Some(sid) => {
                    request.set_value(SYSTEM, PENDING_REQUEST, name, SCL_SID_VALUE_TYPE, &sid)?
                }
                None => request.delete_value(SYSTEM, PENDING_REQUEST, name)?,
            }
        }

        let mut setup_execute = ctx.source(SOURCE_SETUP_EXECUTE);
        let image = setup_execute.image();
        let session_manager = control_set_key(image, r"Control\Session Manager")?;
        let mut entries =
            read_strings(image, SYSTEM, &session_manager, "SetupExecute")?.unwrap_or_default();
        if !entries
            .iter()
            .any(|entry| entry.trim().eq_ignore_ascii_case(SETUPCL))
        {
            entries.push(SETUPCL.to_string());
        }
        setup_execute.set_value(
            SYSTEM,
            &session_manager,
            "SetupExecute",
            ValueType::MULTI_SZ,
            &encode_multi_sz(&entries),
        )
    }
}

/// The machine SID in binary form, as both SECURITY `Policy\PolAcDmS` and the tail of SAM
/// `SAM\Domains\Account\V` hold it ([`crate::account_domain::machine_sid`]: hives that
/// disagree are refused).
pub fn machine_sid_bytes(image: &mut Image) -> Result<Vec<u8>> {
    crate::account_domain::machine_sid(image).map(|sid| sid.to_bytes())
}
