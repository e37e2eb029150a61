//! Self-relative security descriptors (`SECURITY_DESCRIPTOR_RELATIVE`, MS-DTYP 2.4.6), as NTFS,
//! WIM security data and registry `sk` cells store them: the typed form, its exact bytes, and
//! the descriptor Windows gives a new file or directory from its parent's.
//!
//! # Layout
//!
//! All numbers are little-endian.
//!
//! | Offset | Size | Field |
//! |---|---|---|
//! | 0 | 1 | revision, 1 |
//! | 1 | 1 | resource-manager control bits (`Sbz1`) |
//! | 2 | 2 | control (`SE_*`; `SE_SELF_RELATIVE` is always set) |
//! | 4 | 4 | offset of the owner SID, 0 if none |
//! | 8 | 4 | offset of the group SID, 0 if none |
//! | 12 | 4 | offset of the SACL, 0 if none (read only when `SE_SACL_PRESENT`) |
//! | 16 | 4 | offset of the DACL, 0 if none (read only when `SE_DACL_PRESENT`; present with offset 0 is a NULL DACL: everyone has full access) |
//!
//! **ACL**: revision (1: 2, or 4 with object ACEs), `Sbz1` (1), size in bytes including this
//! header (2), ACE count (2), `Sbz2` (2), then the ACEs back to back. The size may leave room
//! after the last ACE ([`Acl::slack`]; some registry descriptors have it).
//!
//! **ACE**: type (1), flags (1), size including this header (2), then by type:
//! - access mask (4), SID, then application data to the end of the ACE: allowed, denied,
//!   audit and alarm ACEs, their callback forms (the data is the condition) and the mandatory
//!   label, resource attribute, scoped policy, trust label and access filter ACEs
//!   ([`AceBody::Sid`]);
//! - access mask (4), object flags (4), object type GUID (16, if flag 1), inherited object type
//!   GUID (16, if flag 2), SID, application data: the object ACEs and their callback forms
//!   ([`AceBody::Object`]);
//! - anything else is kept as bytes ([`AceBody::Other`]).
//!
//! Windows writes the parts back to back after the header; a parsed descriptor remembers their
//! order, so [`SecurityDescriptor::to_bytes`] gives back the bytes it was parsed from. New
//! descriptors are laid out as Windows lays out the ones it assigns to new objects: SACL, DACL,
//! owner, group (what every `sk` cell of the real hives in the shared fixtures shows).
//!
//! # The descriptor of a new file or directory
//!
//! [`inherit`] computes what Windows stores for a file or directory created without an explicit
//! descriptor, as `CreatePrivateObjectSecurityEx(parent, NULL, …, IsContainer, auto-inherit
//! flags, token, FileGenericMapping)` computes it:
//!
//! - **ACEs** (DACL and SACL alike). A file takes every parent ACE with `OBJECT_INHERIT_ACE` as an
//!   effective ACE: inheritance flags cleared, `CREATOR OWNER` / `CREATOR GROUP` replaced by the
//!   new owner / group, generic rights mapped and the mask then limited to the object's rights
//!   (`FILE_ALL_ACCESS`; Windows 10 keys under inherit-only `0x111fffff` entries hold exactly
//!   `KEY_ALL_ACCESS`, and `SeInheritance.c` below expects the same cut). A directory takes an ACE with `CONTAINER_INHERIT_ACE` as an effective
//!   ACE; unless `NO_PROPAGATE_INHERIT_ACE` is set it keeps `OI`/`CI` to pass it on, and when the
//!   effective form differs from the parent's (generic rights, a creator SID) it becomes two
//!   ACEs: the effective one, then the parent's unchanged with `INHERIT_ONLY_ACE`. An ACE with
//!   only `OBJECT_INHERIT_ACE` (and no `NO_PROPAGATE`) goes to a directory as inherit-only,
//!   unchanged. The parent's own `INHERIT_ONLY_ACE` does not matter. Mandatory-label and the other
//!   non-access ACEs keep their mask and SID. Object ACEs whose inherited object type is set name
//!   a class of object that files and directories are not: a directory passes them on
//!   inherit-only, a file does not take them.
//! - **Nothing twice.** An entry is left out when earlier entries of the new ACL already do what
//!   it does: its effective part when an earlier effective entry of the same type, trustee and
//!   flags grants at least its rights, its passed-on part when an earlier entry passes at least
//!   its rights on to the same kinds of children (an entry left with only the latter becomes
//!   inherit-only). So a file created by Administrators under a `CREATOR OWNER` entry does not
//!   get Administrators' full control twice. Without this rule some 500 of the real keys
//!   counted below come out wrong; with it, they come out as Windows stored them.
//! - **`INHERITED_ACE` and the auto-inherited control bits** follow the parent: the auto-inherit
//!   flags are in effect for the DACL only when the parent's DACL is auto-inherited
//!   (`SE_DACL_AUTO_INHERITED`), for the SACL likewise. Then the new ACEs are flagged inherited
//!   and the new descriptor gets the auto-inherited bit, even when nothing was inherited into
//!   that ACL; otherwise neither. Evidence: the real WIMs in `managedwimlib/` hold files created
//!   on Windows under a directory whose descriptor (control `0x8004`, the one Windows' format
//!   gives a volume root, and mkntfs too) is not auto-inherited: every child has exactly the ACEs
//!   these rules give, with flags `0`/`0x0b`, and control `0x8004`; in the Windows 10 SYSTEM
//!   hive, keys under a parent with an empty auto-inherited SACL have no SACL and control
//!   `0x8c04`. Samba's `se_create_child_secdesc`, whose rules come from its inheritance tests
//!   against Windows servers, sets both only under an auto-inherited parent too.
//! - **Owner and group** come from the creator's token, never from the parent (the ReactOS
//!   kernel-mode test `SeInheritance.c`, written against Windows, checks them against the token
//!   whatever the parent holds). reseal models the token Windows' own setup code runs with, the
//!   kernel's SYSTEM token ([`Creator::system`]): owner `BUILTIN\Administrators` (S-1-5-32-544),
//!   group `SYSTEM` (S-1-5-18). Evidence: that test reads these two from the SYSTEM token; in the
//!   real hives about 1 900 keys created by inheritance (the kernel's, such as the device class
//!   instances `Control\Class\{…}\0000`) are owned by Administrators with group SYSTEM. An
//!   elevated administrator (Sysprep itself) also gets owner Administrators, but its group would
//!   be the primary group of an account of the machine being generalized (`S-1-5-21-…-513` in the
//!   hives), which must not end up in a generalized image. This was reseal-ntfs's owner; its
//!   group was the parent's, which Windows does not use (`SEF_DEFAULT_GROUP_FROM_PARENT` is not
//!   among the flags file creation uses). reseal-wim copied the parent's owner and group: wrong
//!   for the same reason.
//! - **Nothing inheritable** (no inheritable ACE, an empty or NULL DACL): the token's default
//!   DACL, mapped, flags 0. The SYSTEM token's is `SYSTEM: GENERIC_ALL`, `Administrators:
//!   GENERIC_READ | GENERIC_EXECUTE | READ_CONTROL` (`SeInheritance.c` checks exactly these two
//!   ACEs, in this order, and what they map to), so a file gets SYSTEM `FILE_ALL_ACCESS` and
//!   Administrators `0x1200a9` (read and execute). reseal-ntfs gave Administrators full control,
//!   calling it the SYSTEM token's default DACL, which it is not; reseal-wim gave an empty DACL
//!   (nobody but the owner could open the file). Nobody else gets access either way, which is
//!   what matters for files such as `System32\config` hives. No SACL is given when nothing in
//!   the parent's SACL is inheritable (a token has no default SACL).
//!
//! The rules were checked against real Windows data (reseal-hive's
//! `tests/security_descriptor_real.rs`, reseal-wim's `tests/real_descriptors.rs`): in
//! 18 real hives, 30 676 keys have only entries inherited from an auto-inherited parent, and the
//! rules, applied to the parent with the key generic mapping and the key's own owner and group,
//! give 30 643 of them exactly their DACL and 25 842 their whole descriptor byte for byte (the
//! others differ in an empty SACL Windows gave them, or hold entries their parent no longer
//! has); the files of the WIMs above come out as Windows gave them.

use std::fmt;

use crate::le;
use crate::sid::{Sid, SidError};

/// `SECURITY_DESCRIPTOR_CONTROL` bits.
pub const SE_OWNER_DEFAULTED: u16 = 0x0001;
pub const SE_GROUP_DEFAULTED: u16 = 0x0002;
pub const SE_DACL_PRESENT: u16 = 0x0004;
pub const SE_DACL_DEFAULTED: u16 = 0x0008;
pub const SE_SACL_PRESENT: u16 = 0x0010;
pub const SE_SACL_DEFAULTED: u16 = 0x0020;
pub const SE_DACL_AUTO_INHERITED: u16 = 0x0400;
pub const SE_SACL_AUTO_INHERITED: u16 = 0x0800;
pub const SE_DACL_PROTECTED: u16 = 0x1000;
pub const SE_SACL_PROTECTED: u16 = 0x2000;
pub const SE_SELF_RELATIVE: u16 = 0x8000;

/// ACE flags.
pub const OBJECT_INHERIT_ACE: u8 = 0x01;
pub const CONTAINER_INHERIT_ACE: u8 = 0x02;
pub const NO_PROPAGATE_INHERIT_ACE: u8 = 0x04;
pub const INHERIT_ONLY_ACE: u8 = 0x08;
pub const INHERITED_ACE: u8 = 0x10;
pub const SUCCESSFUL_ACCESS_ACE_FLAG: u8 = 0x40;
pub const FAILED_ACCESS_ACE_FLAG: u8 = 0x80;
/// The flags inheritance rewrites; the others (audit flags) are carried over.
const VALID_INHERIT_FLAGS: u8 = 0x1f;

/// ACE types.
pub const ACCESS_ALLOWED_ACE_TYPE: u8 = 0x00;
pub const ACCESS_DENIED_ACE_TYPE: u8 = 0x01;
pub const SYSTEM_AUDIT_ACE_TYPE: u8 = 0x02;
pub const SYSTEM_ALARM_ACE_TYPE: u8 = 0x03;
pub const ACCESS_ALLOWED_COMPOUND_ACE_TYPE: u8 = 0x04;
pub const ACCESS_ALLOWED_OBJECT_ACE_TYPE: u8 = 0x05;
pub const ACCESS_DENIED_OBJECT_ACE_TYPE: u8 = 0x06;
pub const SYSTEM_AUDIT_OBJECT_ACE_TYPE: u8 = 0x07;
pub const SYSTEM_ALARM_OBJECT_ACE_TYPE: u8 = 0x08;
pub const ACCESS_ALLOWED_CALLBACK_ACE_TYPE: u8 = 0x09;
pub const ACCESS_DENIED_CALLBACK_ACE_TYPE: u8 = 0x0a;
pub const ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE: u8 = 0x0b;
pub const ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE: u8 = 0x0c;
pub const SYSTEM_AUDIT_CALLBACK_ACE_TYPE: u8 = 0x0d;
pub const SYSTEM_ALARM_CALLBACK_ACE_TYPE: u8 = 0x0e;
pub const SYSTEM_AUDIT_CALLBACK_OBJECT_ACE_TYPE: u8 = 0x0f;
pub const SYSTEM_ALARM_CALLBACK_OBJECT_ACE_TYPE: u8 = 0x10;
pub const SYSTEM_MANDATORY_LABEL_ACE_TYPE: u8 = 0x11;
pub const SYSTEM_RESOURCE_ATTRIBUTE_ACE_TYPE: u8 = 0x12;
pub const SYSTEM_SCOPED_POLICY_ID_ACE_TYPE: u8 = 0x13;
pub const SYSTEM_PROCESS_TRUST_LABEL_ACE_TYPE: u8 = 0x14;
pub const SYSTEM_ACCESS_FILTER_ACE_TYPE: u8 = 0x15;

/// Access rights.
pub const GENERIC_READ: u32 = 0x8000_0000;
pub const GENERIC_WRITE: u32 = 0x4000_0000;
pub const GENERIC_EXECUTE: u32 = 0x2000_0000;
pub const GENERIC_ALL: u32 = 0x1000_0000;
pub const READ_CONTROL: u32 = 0x0002_0000;
pub const FILE_GENERIC_READ: u32 = 0x0012_0089;
pub const FILE_GENERIC_WRITE: u32 = 0x0012_0116;
pub const FILE_GENERIC_EXECUTE: u32 = 0x0012_00a0;
pub const FILE_ALL_ACCESS: u32 = 0x001f_01ff;

/// Object ACE flags: which GUIDs follow the mask.
const ACE_OBJECT_TYPE_PRESENT: u32 = 0x1;
const ACE_INHERITED_OBJECT_TYPE_PRESENT: u32 = 0x2;

const HEADER_LEN: usize = 20;
const ACL_HEADER_LEN: usize = 8;
const ACE_HEADER_LEN: usize = 4;
const SID_HEADER_LEN: usize = 8;
const SECURITY_DESCRIPTOR_REVISION: u8 = 1;
const ACL_REVISION: u8 = 2;
const MIN_ACL_REVISION: u8 = 2;
const MAX_ACL_REVISION: u8 = 4;

/// The part of a descriptor an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Header,
    Owner,
    Group,
    Sacl,
    Dacl,
    /// ACE `index` of the SACL or DACL (`Part::Sacl` or `Part::Dacl`).
    Ace {
        acl: AclKind,
        index: u16,
    },
}

/// Which ACL of a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclKind {
    Sacl,
    Dacl,
}

impl fmt::Display for AclKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AclKind::Sacl => "SACL",
            AclKind::Dacl => "DACL",
        })
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Header => f.write_str("security descriptor header"),
            Part::Owner => f.write_str("owner SID"),
            Part::Group => f.write_str("group SID"),
            Part::Sacl => f.write_str("SACL"),
            Part::Dacl => f.write_str("DACL"),
            Part::Ace { acl, index } => write!(f, "ACE {index} of the {acl}"),
        }
    }
}

impl AclKind {
    fn part(self) -> Part {
        match self {
            AclKind::Sacl => Part::Sacl,
            AclKind::Dacl => Part::Dacl,
        }
    }
}

/// Why a security descriptor could not be read or written: the part, its offset in the
/// descriptor, what was expected there and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityDescriptorError {
    /// The bytes end before the part does.
    #[error("{part} at offset {offset}: needs {expected} bytes, the descriptor has {found} left")]
    Truncated {
        part: Part,
        offset: usize,
        expected: usize,
        found: usize,
    },
    /// A revision Windows does not write.
    #[error("{part} at offset {offset}: revision {found}, expected {expected}")]
    Revision {
        part: Part,
        offset: usize,
        expected: &'static str,
        found: u8,
    },
    /// The control word says the descriptor holds pointers, not offsets.
    #[error("control {found:#06x} at offset 2: expected SE_SELF_RELATIVE (0x8000) to be set")]
    NotSelfRelative { found: u16 },
    /// A size field that cannot be right.
    #[error("{part} at offset {offset}: size {found}, expected {expected}")]
    Size {
        part: Part,
        offset: usize,
        expected: String,
        found: usize,
    },
    /// A SID whose sub-authority count does not fit.
    #[error("{part} at offset {offset}: {source}")]
    Sid {
        part: Part,
        offset: usize,
        source: SidError,
    },
    /// A part too large for its size field (when writing).
    #[error("{part}: {found} bytes, more than the {expected} its size field can hold")]
    TooLarge {
        part: Part,
        expected: usize,
        found: usize,
    },
}

type Result<T, E = SecurityDescriptorError> = std::result::Result<T, E>;

/// The body of an ACE, after its 4-byte header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AceBody {
    /// Access mask, SID, and the bytes after the SID (the condition of a callback ACE, the
    /// attribute of a resource-attribute ACE; empty for the basic types).
    Sid { mask: u32, sid: Sid, data: Vec<u8> },
    /// An object ACE: access mask, the GUIDs its object flags announce, SID, trailing data.
    Object {
        mask: u32,
        /// The object flags as stored; bits 1 and 2 follow the two fields below when written.
        object_flags: u32,
        object_type: Option<[u8; 16]>,
        inherited_object_type: Option<[u8; 16]>,
        sid: Sid,
        data: Vec<u8>,
    },
    /// A type with another layout (compound ACEs, types newer than this module), as stored.
    Other(Vec<u8>),
}

/// An access control entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    pub ace_type: u8,
    pub flags: u8,
    pub body: AceBody,
}

/// An access control list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// 2, or 4 (`ACL_REVISION_DS`) for ACLs with object ACEs.
    pub revision: u8,
    pub aces: Vec<Ace>,
    /// Bytes the ACL's size covers after its last ACE.
    pub slack: Vec<u8>,
}

/// A self-relative security descriptor.
///
/// Two descriptors are equal when they say the same thing, whatever the order of their parts
/// in bytes (libntfs-3g, for one, may hand back a descriptor laid out otherwise than stored).
#[derive(Debug, Clone)]
pub struct SecurityDescriptor {
    /// `SE_*` bits.
    pub control: u16,
    /// The resource-manager control byte (`Sbz1`), meaningful with `SE_RM_CONTROL_VALID`.
    pub rm_control: u8,
    pub owner: Option<Sid>,
    pub group: Option<Sid>,
    /// `None` when `SE_SACL_PRESENT` is clear or the SACL is NULL.
    pub sacl: Option<Acl>,
    /// `None` when `SE_DACL_PRESENT` is clear (no DACL) or set with offset 0 (a NULL DACL).
    pub dacl: Option<Acl>,
    /// The order of the parts in bytes.
    layout: Vec<Layout>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Owner,
    Group,
    Sacl,
    Dacl,
}

/// How Windows lays out a descriptor it assigns to a new object.
const NEW_OBJECT_LAYOUT: [Layout; 4] = [Layout::Sacl, Layout::Dacl, Layout::Owner, Layout::Group];

impl PartialEq for SecurityDescriptor {
    fn eq(&self, other: &Self) -> bool {
        self.control == other.control
            && self.rm_control == other.rm_control
            && self.owner == other.owner
            && self.group == other.group
            && self.sacl == other.sacl
            && self.dacl == other.dacl
    }
}

impl Eq for SecurityDescriptor {}

/// What is being created: inheritance differs for containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    File,
    Directory,
}

/// The rights each generic right stands for, for one kind of object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenericMapping {
    pub read: u32,
    pub write: u32,
    pub execute: u32,
    pub all: u32,
}

impl GenericMapping {
    /// Files and directories (`FILE_GENERIC_*`, `FILE_ALL_ACCESS`).
    pub const FILE: GenericMapping = GenericMapping {
        read: FILE_GENERIC_READ,
        write: FILE_GENERIC_WRITE,
        execute: FILE_GENERIC_EXECUTE,
        all: FILE_ALL_ACCESS,
    };
    /// Registry keys (`KEY_READ`, `KEY_WRITE`, `KEY_EXECUTE`, `KEY_ALL_ACCESS`).
    pub const KEY: GenericMapping = GenericMapping {
        read: 0x0002_0019,
        write: 0x0002_0006,
        execute: 0x0002_0019,
        all: 0x000f_003f,
    };

    /// `mask` with its generic rights replaced by the rights they stand for.
    pub fn map(&self, mask: u32) -> u32 {
        let mut mapped = mask & !(GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL);
        for (generic, specific) in [
            (GENERIC_READ, self.read),
            (GENERIC_WRITE, self.write),
            (GENERIC_EXECUTE, self.execute),
            (GENERIC_ALL, self.all),
        ] {
            if mask & generic != 0 {
                mapped |= specific;
            }
        }
        mapped
    }
}

/// What inheritance takes from the token of whoever creates the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creator {
    /// The token's default owner: the new owner, and what `CREATOR OWNER` becomes.
    pub owner: Sid,
    /// The token's primary group: the new group, and what `CREATOR GROUP` becomes.
    pub group: Sid,
    /// Used, mapped, when the parent has nothing inheritable.
    pub default_dacl: Acl,
}

impl Creator {
    /// The kernel's SYSTEM token: owner Administrators, group SYSTEM, default DACL SYSTEM
    /// `GENERIC_ALL` and Administrators `GENERIC_READ | GENERIC_EXECUTE | READ_CONTROL` (see the
    /// module documentation for the evidence).
    pub fn system() -> Creator {
        let system = well_known::local_system();
        let administrators = well_known::builtin_administrators();
        Creator {
            owner: administrators.clone(),
            group: system.clone(),
            default_dacl: Acl::new(vec![
                Ace::allowed(0, GENERIC_ALL, system),
                Ace::allowed(
                    0,
                    GENERIC_READ | GENERIC_EXECUTE | READ_CONTROL,
                    administrators,
                ),
            ]),
        }
    }
}

/// Well-known SIDs inheritance deals with.
pub mod well_known {
    use crate::sid::Sid;

    fn sid(authority: u64, sub_authorities: &[u32]) -> Sid {
        Sid {
            revision: 1,
            authority,
            sub_authorities: sub_authorities.to_vec(),
        }
    }

    /// `S-1-3-0`, replaced by the new object's owner when inherited.
    pub fn creator_owner() -> Sid {
        sid(3, &[0])
    }
    /// `S-1-3-1`, replaced by the new object's group when inherited.
    pub fn creator_group() -> Sid {
        sid(3, &[1])
    }
    /// `S-1-5-18`.
    pub fn local_system() -> Sid {
        sid(5, &[18])
    }
    /// `S-1-5-32-544`.
    pub fn builtin_administrators() -> Sid {
        sid(5, &[32, 544])
    }
}

/// `len` bytes at `offset` of `bytes`, or the error naming `part`.
fn need(bytes: &[u8], part: Part, offset: usize, len: usize) -> Result<&[u8]> {
    offset
        .checked_add(len)
        .and_then(|end| bytes.get(offset..end))
        .ok_or(SecurityDescriptorError::Truncated {
            part,
            offset,
            expected: len,
            found: bytes.len().saturating_sub(offset),
        })
}

/// The SID at `offset` of `bytes` and its length.
fn parse_sid(bytes: &[u8], part: Part, offset: usize) -> Result<(Sid, usize)> {
    let header = need(bytes, part, offset, SID_HEADER_LEN)?;
    if header[0] != 1 {
        return Err(SecurityDescriptorError::Revision {
            part,
            offset,
            expected: "1",
            found: header[0],
        });
    }
    let len = SID_HEADER_LEN + 4 * usize::from(header[1]);
    let raw = need(bytes, part, offset, len)?;
    let sid = Sid::from_bytes(raw).map_err(|source| SecurityDescriptorError::Sid {
        part,
        offset,
        source,
    })?;
    Ok((sid, len))
}

impl Ace {
    /// An access-allowed ACE.
    pub fn allowed(flags: u8, mask: u32, sid: Sid) -> Ace {
        Ace {
            ace_type: ACCESS_ALLOWED_ACE_TYPE,
            flags,
            body: AceBody::Sid {
                mask,
                sid,
                data: Vec::new(),
            },
        }
    }

    /// The access mask (for a mandatory label, its policy bits), if the type has one.
    pub fn mask(&self) -> Option<u32> {
        match &self.body {
            AceBody::Sid { mask, .. } | AceBody::Object { mask, .. } => Some(*mask),
            AceBody::Other(_) => None,
        }
    }

    fn set_mask(&mut self, new: u32) {
        if let AceBody::Sid { mask, .. } | AceBody::Object { mask, .. } = &mut self.body {
            *mask = new;
        }
    }

    /// The trustee, if the type has one at a known place.
    pub fn sid(&self) -> Option<&Sid> {
        match &self.body {
            AceBody::Sid { sid, .. } | AceBody::Object { sid, .. } => Some(sid),
            AceBody::Other(_) => None,
        }
    }

    /// The ACE at `offset` of `bytes`, which must end by `end`; returns it and its size.
    fn parse(bytes: &[u8], part: Part, offset: usize, end: usize) -> Result<(Ace, usize)> {
        let within = &bytes[..end];
        let header = need(within, part, offset, ACE_HEADER_LEN)?;
        let (ace_type, flags, size) = (
            header[0],
            header[1],
            usize::from(le::u16_at(header, 2).unwrap_or_default()),
        );
        if size < ACE_HEADER_LEN || size % 4 != 0 {
            return Err(SecurityDescriptorError::Size {
                part,
                offset,
                expected: "a multiple of 4, at least 4".into(),
                found: size,
            });
        }
        let ace_bytes = need(within, part, offset, size)?;
        let body = match ace_type {
            t if has_sid_body(t) => {
                let mask = le::u32_at(
                    need(ace_bytes, part, ACE_HEADER_LEN, 4).map_err(|e| shift(e, offset))?,
                    0,
                )
                .unwrap_or_default();
                let (sid, sid_len) =
                    parse_sid(ace_bytes, part, ACE_HEADER_LEN + 4).map_err(|e| shift(e, offset))?;
                AceBody::Sid {
                    mask,
                    sid,
                    data: ace_bytes[ACE_HEADER_LEN + 4 + sid_len..].to_vec(),
                }
            }
            t if is_object_type(t) => {
                let fixed =
                    need(ace_bytes, part, ACE_HEADER_LEN, 8).map_err(|e| shift(e, offset))?;
                let (mask, object_flags) = (
                    le::u32_at(fixed, 0).unwrap_or_default(),
                    le::u32_at(fixed, 4).unwrap_or_default(),
                );
                let mut at = ACE_HEADER_LEN + 8;
                let mut guid = |present: bool| -> Result<Option<[u8; 16]>> {
                    if !present {
                        return Ok(None);
                    }
                    let raw = need(ace_bytes, part, at, 16).map_err(|e| shift(e, offset))?;
                    at += 16;
                    Ok(Some(raw.try_into().expect("16 bytes")))
                };
                let object_type = guid(object_flags & ACE_OBJECT_TYPE_PRESENT != 0)?;
                let inherited_object_type =
                    guid(object_flags & ACE_INHERITED_OBJECT_TYPE_PRESENT != 0)?;
                let (sid, sid_len) =
                    parse_sid(ace_bytes, part, at).map_err(|e| shift(e, offset))?;
                AceBody::Object {
                    mask,
                    object_flags,
                    object_type,
                    inherited_object_type,
                    sid,
                    data: ace_bytes[at + sid_len..].to_vec(),
                }
            }
            _ => AceBody::Other(ace_bytes[ACE_HEADER_LEN..].to_vec()),
        };
        Ok((
            Ace {
                ace_type,
                flags,
                body,
            },
            size,
        ))
    }

    fn write(&self, part: Part, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.extend_from_slice(&[self.ace_type, self.flags, 0, 0]);
        match &self.body {
            AceBody::Sid { mask, sid, data } => {
                out.extend_from_slice(&mask.to_le_bytes());
                out.extend_from_slice(&sid.to_bytes());
                out.extend_from_slice(data);
            }
            AceBody::Object {
                mask,
                object_flags,
                object_type,
                inherited_object_type,
                sid,
                data,
            } => {
                let present = |field: &Option<[u8; 16]>, bit: u32| {
                    if field.is_some() {
                        bit
                    } else {
                        0
                    }
                };
                let flags = object_flags
                    & !(ACE_OBJECT_TYPE_PRESENT | ACE_INHERITED_OBJECT_TYPE_PRESENT)
                    | present(object_type, ACE_OBJECT_TYPE_PRESENT)
                    | present(inherited_object_type, ACE_INHERITED_OBJECT_TYPE_PRESENT);
                out.extend_from_slice(&mask.to_le_bytes());
                out.extend_from_slice(&flags.to_le_bytes());
                for guid in [object_type, inherited_object_type].into_iter().flatten() {
                    out.extend_from_slice(guid);
                }
                out.extend_from_slice(&sid.to_bytes());
                out.extend_from_slice(data);
            }
            AceBody::Other(raw) => out.extend_from_slice(raw),
        }
        let size = out.len() - start;
        let size16 = u16::try_from(size).map_err(|_| SecurityDescriptorError::TooLarge {
            part,
            expected: usize::from(u16::MAX),
            found: size,
        })?;
        out[start + 2..start + 4].copy_from_slice(&size16.to_le_bytes());
        Ok(())
    }
}

/// An error found inside an ACE, with its offset made relative to the descriptor.
fn shift(mut error: SecurityDescriptorError, by: usize) -> SecurityDescriptorError {
    match &mut error {
        SecurityDescriptorError::Truncated { offset, .. }
        | SecurityDescriptorError::Revision { offset, .. }
        | SecurityDescriptorError::Size { offset, .. }
        | SecurityDescriptorError::Sid { offset, .. } => *offset += by,
        SecurityDescriptorError::NotSelfRelative { .. }
        | SecurityDescriptorError::TooLarge { .. } => {}
    }
    error
}

/// Types whose body is an access mask then a SID.
fn has_sid_body(ace_type: u8) -> bool {
    matches!(
        ace_type,
        ACCESS_ALLOWED_ACE_TYPE
            | ACCESS_DENIED_ACE_TYPE
            | SYSTEM_AUDIT_ACE_TYPE
            | SYSTEM_ALARM_ACE_TYPE
            | ACCESS_ALLOWED_CALLBACK_ACE_TYPE
            | ACCESS_DENIED_CALLBACK_ACE_TYPE
            | SYSTEM_AUDIT_CALLBACK_ACE_TYPE
            | SYSTEM_ALARM_CALLBACK_ACE_TYPE
            | SYSTEM_MANDATORY_LABEL_ACE_TYPE
            | SYSTEM_RESOURCE_ATTRIBUTE_ACE_TYPE
            | SYSTEM_SCOPED_POLICY_ID_ACE_TYPE
            | SYSTEM_PROCESS_TRUST_LABEL_ACE_TYPE
            | SYSTEM_ACCESS_FILTER_ACE_TYPE
    )
}

fn is_object_type(ace_type: u8) -> bool {
    matches!(
        ace_type,
        ACCESS_ALLOWED_OBJECT_ACE_TYPE
            | ACCESS_DENIED_OBJECT_ACE_TYPE
            | SYSTEM_AUDIT_OBJECT_ACE_TYPE
            | SYSTEM_ALARM_OBJECT_ACE_TYPE
            | ACCESS_ALLOWED_CALLBACK_OBJECT_ACE_TYPE
            | ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE
            | SYSTEM_AUDIT_CALLBACK_OBJECT_ACE_TYPE
            | SYSTEM_ALARM_CALLBACK_OBJECT_ACE_TYPE
    )
}

/// Types whose mask holds access rights (generic rights get mapped, creator SIDs replaced);
/// the others (mandatory label, resource attribute, policy, trust label, filter) carry
/// something else in their mask and SID.
fn grants_or_audits_access(ace_type: u8) -> bool {
    is_object_type(ace_type)
        || (has_sid_body(ace_type)
            && !matches!(
                ace_type,
                SYSTEM_MANDATORY_LABEL_ACE_TYPE
                    | SYSTEM_RESOURCE_ATTRIBUTE_ACE_TYPE
                    | SYSTEM_SCOPED_POLICY_ID_ACE_TYPE
                    | SYSTEM_PROCESS_TRUST_LABEL_ACE_TYPE
                    | SYSTEM_ACCESS_FILTER_ACE_TYPE
            ))
}

impl Acl {
    /// An ACL of revision 2 holding `aces`.
    pub fn new(aces: Vec<Ace>) -> Acl {
        Acl {
            revision: ACL_REVISION,
            aces,
            slack: Vec::new(),
        }
    }

    fn parse(bytes: &[u8], kind: AclKind, offset: usize) -> Result<Acl> {
        let part = kind.part();
        let header = need(bytes, part, offset, ACL_HEADER_LEN)?;
        let revision = header[0];
        if !(MIN_ACL_REVISION..=MAX_ACL_REVISION).contains(&revision) {
            return Err(SecurityDescriptorError::Revision {
                part,
                offset,
                expected: "2, 3 or 4",
                found: revision,
            });
        }
        let size = usize::from(le::u16_at(header, 2).unwrap_or_default());
        let count = le::u16_at(header, 4).unwrap_or_default();
        if size < ACL_HEADER_LEN {
            return Err(SecurityDescriptorError::Size {
                part,
                offset,
                expected: format!("at least {ACL_HEADER_LEN}"),
                found: size,
            });
        }
        need(bytes, part, offset, size)?;
        let end = offset + size;
        let mut aces = Vec::with_capacity(usize::from(count).min(size / ACE_HEADER_LEN));
        let mut position = offset + ACL_HEADER_LEN;
        for index in 0..count {
            let (ace, ace_size) = Ace::parse(bytes, Part::Ace { acl: kind, index }, position, end)?;
            aces.push(ace);
            position += ace_size;
        }
        Ok(Acl {
            revision,
            aces,
            slack: bytes[position..end].to_vec(),
        })
    }

    fn write(&self, kind: AclKind, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.extend_from_slice(&[self.revision, 0, 0, 0]);
        let count =
            u16::try_from(self.aces.len()).map_err(|_| SecurityDescriptorError::TooLarge {
                part: kind.part(),
                expected: usize::from(u16::MAX),
                found: self.aces.len(),
            })?;
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        for (index, ace) in self.aces.iter().enumerate() {
            let index = index as u16; // fits: the count did
            ace.write(Part::Ace { acl: kind, index }, out)?;
        }
        out.extend_from_slice(&self.slack);
        let size = out.len() - start;
        let size16 = u16::try_from(size).map_err(|_| SecurityDescriptorError::TooLarge {
            part: kind.part(),
            expected: usize::from(u16::MAX),
            found: size,
        })?;
        out[start + 2..start + 4].copy_from_slice(&size16.to_le_bytes());
        Ok(())
    }
}

impl SecurityDescriptor {
    /// A descriptor laid out as Windows lays out one it assigns to a new object. `control`
    /// gets `SE_SELF_RELATIVE`, and the present bits of the ACLs given.
    pub fn new(
        control: u16,
        owner: Option<Sid>,
        group: Option<Sid>,
        sacl: Option<Acl>,
        dacl: Option<Acl>,
    ) -> SecurityDescriptor {
        let mut control = control | SE_SELF_RELATIVE;
        if sacl.is_some() {
            control |= SE_SACL_PRESENT;
        }
        if dacl.is_some() {
            control |= SE_DACL_PRESENT;
        }
        SecurityDescriptor {
            control,
            rm_control: 0,
            owner,
            group,
            sacl,
            dacl,
            layout: NEW_OBJECT_LAYOUT.to_vec(),
        }
    }

    /// Reads a self-relative descriptor; what follows its last part is ignored.
    pub fn parse(bytes: &[u8]) -> Result<SecurityDescriptor> {
        let header = need(bytes, Part::Header, 0, HEADER_LEN)?;
        if header[0] != SECURITY_DESCRIPTOR_REVISION {
            return Err(SecurityDescriptorError::Revision {
                part: Part::Header,
                offset: 0,
                expected: "1",
                found: header[0],
            });
        }
        let control = le::u16_at(header, 2).unwrap_or_default();
        if control & SE_SELF_RELATIVE == 0 {
            return Err(SecurityDescriptorError::NotSelfRelative { found: control });
        }
        let offset = |at: usize| le::u32_at(header, at).unwrap_or_default() as usize;
        let mut placed = Vec::new();
        let owner = match offset(4) {
            0 => None,
            at => {
                placed.push((at, Layout::Owner));
                Some(parse_sid(bytes, Part::Owner, at)?.0)
            }
        };
        let group = match offset(8) {
            0 => None,
            at => {
                placed.push((at, Layout::Group));
                Some(parse_sid(bytes, Part::Group, at)?.0)
            }
        };
        let mut acl = |present: u16, at: usize, kind: AclKind, layout: Layout| {
            if control & present == 0 || at == 0 {
                return Ok(None);
            }
            placed.push((at, layout));
            Acl::parse(bytes, kind, at).map(Some)
        };
        let sacl = acl(SE_SACL_PRESENT, offset(12), AclKind::Sacl, Layout::Sacl)?;
        let dacl = acl(SE_DACL_PRESENT, offset(16), AclKind::Dacl, Layout::Dacl)?;
        placed.sort_by_key(|(at, _)| *at);
        Ok(SecurityDescriptor {
            control,
            rm_control: header[1],
            owner,
            group,
            sacl,
            dacl,
            layout: placed.into_iter().map(|(_, layout)| layout).collect(),
        })
    }

    /// The descriptor's bytes: its parts back to back after the header, in the order they were
    /// parsed in (SACL, DACL, owner, group for a new descriptor).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = vec![0u8; HEADER_LEN];
        out[0] = SECURITY_DESCRIPTOR_REVISION;
        out[1] = self.rm_control;
        let mut control = self.control | SE_SELF_RELATIVE;
        if self.sacl.is_some() {
            control |= SE_SACL_PRESENT;
        }
        if self.dacl.is_some() {
            control |= SE_DACL_PRESENT;
        }
        out[2..4].copy_from_slice(&control.to_le_bytes());
        let order = self.layout.iter().chain(
            NEW_OBJECT_LAYOUT
                .iter()
                .filter(|l| !self.layout.contains(l)),
        );
        for layout in order {
            let start = out.len();
            let field = match layout {
                Layout::Owner => self.owner.as_ref().map(|sid| {
                    out.extend_from_slice(&sid.to_bytes());
                    4
                }),
                Layout::Group => self.group.as_ref().map(|sid| {
                    out.extend_from_slice(&sid.to_bytes());
                    8
                }),
                Layout::Sacl => match &self.sacl {
                    Some(acl) => Some(acl.write(AclKind::Sacl, &mut out).map(|()| 12)?),
                    None => None,
                },
                Layout::Dacl => match &self.dacl {
                    Some(acl) => Some(acl.write(AclKind::Dacl, &mut out).map(|()| 16)?),
                    None => None,
                },
            };
            if let Some(field) = field {
                let at = u32::try_from(start).map_err(|_| SecurityDescriptorError::TooLarge {
                    part: Part::Header,
                    expected: u32::MAX as usize,
                    found: start,
                })?;
                out[field..field + 4].copy_from_slice(&at.to_le_bytes());
            }
        }
        Ok(out)
    }

    /// The descriptor of a new object of `kind` created in a container with this descriptor by
    /// `creator`, with rights mapped by `mapping` (see the module documentation for the rules).
    pub fn inherit(
        &self,
        kind: ObjectKind,
        creator: &Creator,
        mapping: &GenericMapping,
    ) -> SecurityDescriptor {
        let substitutes = Substitutes {
            owner: &creator.owner,
            group: &creator.group,
            creator_owner: well_known::creator_owner(),
            creator_group: well_known::creator_group(),
        };
        let from_parent = |acl: &Option<Acl>, auto_inherited: u16| {
            acl.as_ref()
                .map(|acl| {
                    inherit_acl(
                        acl,
                        kind,
                        &substitutes,
                        mapping,
                        self.control & auto_inherited != 0,
                    )
                })
                .filter(|acl| !acl.aces.is_empty())
        };
        // The auto-inherit requests follow the parent's auto-inherited bits, and are recorded
        // in the new descriptor whatever the ACLs end up holding.
        let control = self.control & (SE_DACL_AUTO_INHERITED | SE_SACL_AUTO_INHERITED);
        let dacl = match from_parent(&self.dacl, SE_DACL_AUTO_INHERITED) {
            Some(acl) => acl,
            None => {
                let mut default = creator.default_dacl.clone();
                for ace in &mut default.aces {
                    *ace = effective_ace(ace, ace.flags, &substitutes, mapping);
                }
                default
            }
        };
        let sacl = from_parent(&self.sacl, SE_SACL_AUTO_INHERITED);
        SecurityDescriptor::new(
            control,
            Some(creator.owner.clone()),
            Some(creator.group.clone()),
            sacl,
            Some(dacl),
        )
    }
}

/// What `CREATOR OWNER` and `CREATOR GROUP` become.
struct Substitutes<'a> {
    owner: &'a Sid,
    group: &'a Sid,
    creator_owner: Sid,
    creator_group: Sid,
}

/// `ace` as an effective ACE of the new object, with `flags`: creator SIDs replaced and generic
/// rights mapped, for the types whose mask holds access rights.
fn effective_ace(ace: &Ace, flags: u8, substitutes: &Substitutes, mapping: &GenericMapping) -> Ace {
    let substitute = |sid: &Sid| {
        if *sid == substitutes.creator_owner {
            substitutes.owner.clone()
        } else if *sid == substitutes.creator_group {
            substitutes.group.clone()
        } else {
            sid.clone()
        }
    };
    let body = match &ace.body {
        _ if !grants_or_audits_access(ace.ace_type) => ace.body.clone(),
        AceBody::Sid { mask, sid, data } => AceBody::Sid {
            mask: mapping.map(*mask) & mapping.all,
            sid: substitute(sid),
            data: data.clone(),
        },
        AceBody::Object {
            mask,
            object_flags,
            object_type,
            inherited_object_type,
            sid,
            data,
        } => AceBody::Object {
            mask: mapping.map(*mask) & mapping.all,
            object_flags: *object_flags,
            object_type: *object_type,
            inherited_object_type: *inherited_object_type,
            sid: substitute(sid),
            data: data.clone(),
        },
        AceBody::Other(raw) => AceBody::Other(raw.clone()),
    };
    Ace {
        ace_type: ace.ace_type,
        flags,
        body,
    }
}

/// The ACEs a new object of `kind` takes from its parent's `acl`.
fn inherit_acl(
    acl: &Acl,
    kind: ObjectKind,
    substitutes: &Substitutes,
    mapping: &GenericMapping,
    auto_inherited: bool,
) -> Acl {
    let inherited = if auto_inherited { INHERITED_ACE } else { 0 };
    let mut aces = Vec::new();
    for ace in &acl.aces {
        let flags = ace.flags;
        let object_inherit = flags & OBJECT_INHERIT_ACE != 0;
        let container_inherit = flags & CONTAINER_INHERIT_ACE != 0;
        let no_propagate = flags & NO_PROPAGATE_INHERIT_ACE != 0;
        // Audit flags and any other bit outside the inheritance flags stay.
        let kept = (flags & !VALID_INHERIT_FLAGS) | inherited;
        // Object ACEs for another class of object pass on to containers but never apply here.
        let applies_here = !matches!(
            ace.body,
            AceBody::Object {
                inherited_object_type: Some(_),
                ..
            }
        );
        let passed_on = |extra: u8| {
            let mut copy = ace.clone();
            copy.flags = (flags & (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE)) | extra | kept;
            copy
        };
        match kind {
            ObjectKind::File => {
                if object_inherit && applies_here {
                    add_inherited(&mut aces, effective_ace(ace, kept, substitutes, mapping));
                }
            }
            ObjectKind::Directory if container_inherit && no_propagate => {
                if applies_here {
                    add_inherited(&mut aces, effective_ace(ace, kept, substitutes, mapping));
                }
            }
            ObjectKind::Directory if container_inherit => {
                let effective = effective_ace(ace, kept, substitutes, mapping);
                if !applies_here {
                    add_inherited(&mut aces, passed_on(INHERIT_ONLY_ACE));
                } else if effective.body != ace.body {
                    add_inherited(&mut aces, effective);
                    add_inherited(&mut aces, passed_on(INHERIT_ONLY_ACE));
                } else {
                    add_inherited(&mut aces, passed_on(0));
                }
            }
            ObjectKind::Directory if object_inherit && !no_propagate => {
                add_inherited(&mut aces, passed_on(INHERIT_ONLY_ACE));
            }
            ObjectKind::Directory => {}
        }
    }
    Acl {
        revision: acl.revision,
        aces,
        slack: Vec::new(),
    }
}

/// Adds `ace` to the ACL being inherited, leaving out what earlier entries already do: its
/// effective part when an earlier effective entry for the same trustee, of the same type and
/// flags, grants (or denies, or audits) at least the same rights; its passed-on part when an
/// earlier entry passes at least the same rights on to the same kinds of children. An entry
/// left with only its passed-on part becomes inherit-only.
fn add_inherited(aces: &mut Vec<Ace>, mut ace: Ace) {
    const PASSED_ON: u8 = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE;
    let other_flags =
        |flags: u8| flags & !(PASSED_ON | NO_PROPAGATE_INHERIT_ACE | INHERIT_ONLY_ACE);
    let passed_on = ace.flags & PASSED_ON;
    let effective = ace.flags & INHERIT_ONLY_ACE == 0;
    let effective_done = aces.iter().any(|earlier| {
        earlier.flags & INHERIT_ONLY_ACE == 0
            && other_flags(earlier.flags) == other_flags(ace.flags)
            && covers(earlier, &ace)
    });
    let passed_on_done = aces.iter().any(|earlier| {
        earlier.flags & passed_on == passed_on
            && earlier.flags & NO_PROPAGATE_INHERIT_ACE == ace.flags & NO_PROPAGATE_INHERIT_ACE
            && other_flags(earlier.flags) == other_flags(ace.flags)
            && covers(earlier, &ace)
    });
    let needs_effective = effective && !effective_done;
    let needs_passed_on = passed_on != 0 && !passed_on_done;
    match (needs_effective, needs_passed_on) {
        (false, false) => return,
        (false, true) => ace.flags |= INHERIT_ONLY_ACE,
        (true, false) => ace.flags &= !PASSED_ON,
        (true, true) => {}
    }
    aces.push(ace);
}

/// Whether `earlier` is `ace` for the same trustee (and the same object types and condition),
/// with at least its rights.
fn covers(earlier: &Ace, ace: &Ace) -> bool {
    if earlier.ace_type != ace.ace_type {
        return false;
    }
    match (earlier.mask(), ace.mask()) {
        (Some(had), Some(wanted)) if had & wanted == wanted => {
            let mut probe = ace.clone();
            probe.set_mask(had);
            probe.body == earlier.body
        }
        (None, None) => earlier.body == ace.body,
        _ => false,
    }
}

/// The descriptor Windows gives a new file or directory created by the system (owner
/// Administrators, group SYSTEM) in a directory whose descriptor is `parent`, as bytes.
pub fn inherit(parent: &[u8], kind: ObjectKind) -> Result<Vec<u8>> {
    SecurityDescriptor::parse(parent)?
        .inherit(kind, &Creator::system(), &GenericMapping::FILE)
        .to_bytes()
}

#[cfg(test)]
mod tests;
