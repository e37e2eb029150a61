//! Self-relative security descriptors: parsing, and the descriptor a new file inherits from
//! its directory.
//!
//! libntfs-3g's `ntfs_create` gives every new inode a descriptor granting Everyone full access
//! (`ntfs_sd_add_everyone`), which would make a file written into `System32\config` readable by
//! any user (the CVE-2021-36934 class of mistake). [`inherit_for_file`] computes what Windows
//! gives a file created in the directory instead, and the volume layer sets it right after
//! creation.
//!
//! The rules followed (those of `CreatePrivateObjectSecurityEx` for a non-container object):
//! * every parent ACE with `OBJECT_INHERIT_ACE` becomes an effective ACE of the file, flagged
//!   `INHERITED_ACE`, with the inheritance flags (`OI`, `CI`, `NP`, `IO`) cleared;
//! * `CREATOR OWNER` / `CREATOR GROUP` become the new owner / group, and generic rights are
//!   mapped to file rights;
//! * ACEs that only `CONTAINER_INHERIT` are not inherited by files;
//! * when nothing is inheritable (or the parent has a NULL DACL), the file gets the default DACL
//!   of a SYSTEM token: SYSTEM and Administrators full control, nobody else;
//! * the owner is BUILTIN\Administrators (what Windows records for files created by an
//!   administrator or by SYSTEM); the group is the parent's group.

/// `SECURITY_DESCRIPTOR_CONTROL` bits.
const SE_DACL_PRESENT: u16 = 0x0004;
const SE_SACL_PRESENT: u16 = 0x0010;
const SE_DACL_AUTO_INHERITED: u16 = 0x0400;
const SE_SACL_AUTO_INHERITED: u16 = 0x0800;
const SE_SELF_RELATIVE: u16 = 0x8000;

/// ACE flags.
pub const OBJECT_INHERIT_ACE: u8 = 0x01;
pub const CONTAINER_INHERIT_ACE: u8 = 0x02;
pub const NO_PROPAGATE_INHERIT_ACE: u8 = 0x04;
pub const INHERIT_ONLY_ACE: u8 = 0x08;
pub const INHERITED_ACE: u8 = 0x10;
const INHERITANCE_FLAGS: u8 =
    OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE | NO_PROPAGATE_INHERIT_ACE | INHERIT_ONLY_ACE;

/// ACE types whose SID follows the access mask directly (offset 8).
pub const ACCESS_ALLOWED_ACE_TYPE: u8 = 0x00;
pub const ACCESS_DENIED_ACE_TYPE: u8 = 0x01;
const SYSTEM_AUDIT_ACE_TYPE: u8 = 0x02;
const ACCESS_ALLOWED_CALLBACK_ACE_TYPE: u8 = 0x09;
const ACCESS_DENIED_CALLBACK_ACE_TYPE: u8 = 0x0A;
const SYSTEM_AUDIT_CALLBACK_ACE_TYPE: u8 = 0x0D;
const SYSTEM_MANDATORY_LABEL_ACE_TYPE: u8 = 0x11;

/// Generic rights and their mapping for files (`FILE_GENERIC_*`, `FILE_ALL_ACCESS`).
const GENERIC_READ: u32 = 0x8000_0000;
const GENERIC_WRITE: u32 = 0x4000_0000;
const GENERIC_EXECUTE: u32 = 0x2000_0000;
const GENERIC_ALL: u32 = 0x1000_0000;
const FILE_GENERIC_READ: u32 = 0x0012_0089;
const FILE_GENERIC_WRITE: u32 = 0x0012_0116;
const FILE_GENERIC_EXECUTE: u32 = 0x0012_00A0;
pub const FILE_ALL_ACCESS: u32 = 0x001F_01FF;

/// Well-known SIDs, binary.
const SID_CREATOR_OWNER: &[u8] = &[1, 1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0];
const SID_CREATOR_GROUP: &[u8] = &[1, 1, 0, 0, 0, 0, 0, 3, 1, 0, 0, 0];
const SID_LOCAL_SYSTEM: &[u8] = &[1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0];
const SID_ADMINISTRATORS: &[u8] = &[1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0];

/// An access control entry, as its SID string, type, flags and mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AceInfo {
    pub ace_type: u8,
    pub flags: u8,
    pub mask: u32,
    /// `S-1-...`, or empty for ACE types whose SID is not at the usual place.
    pub sid: String,
}

/// A parsed self-relative security descriptor, borrowing the bytes.
struct Descriptor<'a> {
    control: u16,
    owner: Option<&'a [u8]>,
    group: Option<&'a [u8]>,
    dacl: Option<Vec<&'a [u8]>>,
    sacl: Option<Vec<&'a [u8]>>,
}

fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    let b = bytes.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let b = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The SID starting at `offset`: revision 1, at most 15 sub-authorities.
fn sid_at(bytes: &[u8], offset: usize) -> Result<&[u8], String> {
    let count = *bytes
        .get(offset + 1)
        .ok_or_else(|| format!("SID at {offset} lies past the end"))?;
    if bytes[offset] != 1 || count > 15 {
        return Err(format!("SID at {offset} is malformed"));
    }
    let len = 8 + 4 * usize::from(count);
    bytes
        .get(offset..offset + len)
        .ok_or_else(|| format!("SID at {offset} lies past the end"))
}

/// The ACEs of the ACL at `offset`.
fn acl_at(bytes: &[u8], offset: usize) -> Result<Vec<&[u8]>, String> {
    let size = usize::from(u16_at(bytes, offset + 2).ok_or("ACL header lies past the end")?);
    let count = u16_at(bytes, offset + 4).ok_or("ACL header lies past the end")?;
    let acl = bytes
        .get(offset..offset + size)
        .ok_or_else(|| format!("ACL at {offset} ({size} bytes) lies past the end"))?;
    let mut aces = Vec::with_capacity(usize::from(count).min(1024));
    let mut position = 8;
    for index in 0..count {
        let ace_size = usize::from(
            u16_at(acl, position + 2).ok_or_else(|| format!("ACE {index} lies past the ACL"))?,
        );
        if ace_size < 8 || ace_size % 4 != 0 {
            return Err(format!("ACE {index} has a bad size {ace_size}"));
        }
        let ace = acl
            .get(position..position + ace_size)
            .ok_or_else(|| format!("ACE {index} lies past the ACL"))?;
        aces.push(ace);
        position += ace_size;
    }
    Ok(aces)
}

fn parse(bytes: &[u8]) -> Result<Descriptor<'_>, String> {
    if bytes.len() < 20 || bytes[0] != 1 {
        return Err("not a revision 1 descriptor".into());
    }
    let control = u16_at(bytes, 2).unwrap_or(0);
    if control & SE_SELF_RELATIVE == 0 {
        return Err("not self-relative".into());
    }
    let offset = |at: usize| u32_at(bytes, at).map(|o| o as usize).unwrap_or(0);
    let (owner, group, sacl, dacl) = (offset(4), offset(8), offset(12), offset(16));
    Ok(Descriptor {
        control,
        owner: (owner != 0).then(|| sid_at(bytes, owner)).transpose()?,
        group: (group != 0).then(|| sid_at(bytes, group)).transpose()?,
        dacl: (control & SE_DACL_PRESENT != 0 && dacl != 0)
            .then(|| acl_at(bytes, dacl))
            .transpose()?,
        sacl: (control & SE_SACL_PRESENT != 0 && sacl != 0)
            .then(|| acl_at(bytes, sacl))
            .transpose()?,
    })
}

/// `S-1-5-32-544` for a binary SID.
pub fn sid_string(sid: &[u8]) -> String {
    if sid.len() < 8 {
        return String::new();
    }
    let authority = sid[2..8]
        .iter()
        .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
    let mut text = format!("S-{}-{authority}", sid[0]);
    for chunk in sid[8..].chunks_exact(4) {
        let sub = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        text.push_str(&format!("-{sub}"));
    }
    text
}

fn sid_follows_mask(ace_type: u8) -> bool {
    matches!(
        ace_type,
        ACCESS_ALLOWED_ACE_TYPE
            | ACCESS_DENIED_ACE_TYPE
            | SYSTEM_AUDIT_ACE_TYPE
            | ACCESS_ALLOWED_CALLBACK_ACE_TYPE
            | ACCESS_DENIED_CALLBACK_ACE_TYPE
            | SYSTEM_AUDIT_CALLBACK_ACE_TYPE
            | SYSTEM_MANDATORY_LABEL_ACE_TYPE
    )
}

/// The DACL entries of a descriptor; `None` for a NULL DACL (everyone has full access).
pub fn dacl_entries(descriptor: &[u8]) -> Result<Option<Vec<AceInfo>>, String> {
    let parsed = parse(descriptor)?;
    Ok(parsed
        .dacl
        .map(|aces| aces.into_iter().map(ace_info).collect()))
}

/// The owner SID of a descriptor as a string.
pub fn owner(descriptor: &[u8]) -> Result<Option<String>, String> {
    Ok(parse(descriptor)?.owner.map(sid_string))
}

/// What a descriptor says, independent of how its parts are laid out in the bytes
/// (libntfs-3g may hand back a descriptor with its parts in another order than stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub control: u16,
    pub owner: Option<String>,
    pub group: Option<String>,
    /// `None` for a NULL DACL.
    pub dacl: Option<Vec<AceInfo>>,
    pub sacl: Option<Vec<AceInfo>>,
}

pub fn summarize(descriptor: &[u8]) -> Result<Summary, String> {
    let parsed = parse(descriptor)?;
    let aces = |acl: Option<Vec<&[u8]>>| acl.map(|aces| aces.into_iter().map(ace_info).collect());
    Ok(Summary {
        control: parsed.control,
        owner: parsed.owner.map(sid_string),
        group: parsed.group.map(sid_string),
        dacl: aces(parsed.dacl),
        sacl: aces(parsed.sacl),
    })
}

fn ace_info(ace: &[u8]) -> AceInfo {
    let sid = if sid_follows_mask(ace[0]) {
        sid_at(ace, 8).map(sid_string).unwrap_or_default()
    } else {
        String::new()
    };
    AceInfo {
        ace_type: ace[0],
        flags: ace[1],
        mask: u32_at(ace, 4).unwrap_or(0),
        sid,
    }
}

fn map_generic(mask: u32) -> u32 {
    let mut mapped = mask & !(GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL);
    if mask & GENERIC_READ != 0 {
        mapped |= FILE_GENERIC_READ;
    }
    if mask & GENERIC_WRITE != 0 {
        mapped |= FILE_GENERIC_WRITE;
    }
    if mask & GENERIC_EXECUTE != 0 {
        mapped |= FILE_GENERIC_EXECUTE;
    }
    if mask & GENERIC_ALL != 0 {
        mapped |= FILE_ALL_ACCESS;
    }
    mapped
}

/// The effective ACE a file gets from an inheritable parent ACE.
fn inherited_ace(ace: &[u8], owner: &[u8], group: &[u8]) -> Result<Vec<u8>, String> {
    let ace_type = ace[0];
    let flags = (ace[1] & !INHERITANCE_FLAGS) | INHERITED_ACE;
    if !sid_follows_mask(ace_type) {
        // Object ACEs and unknown types: carried over as they are, only the flags change.
        let mut copy = ace.to_vec();
        copy[1] = flags;
        return Ok(copy);
    }
    let sid = sid_at(ace, 8)?;
    let trailer = &ace[8 + sid.len()..];
    let sid = match sid {
        s if s == SID_CREATOR_OWNER => owner,
        s if s == SID_CREATOR_GROUP => group,
        s => s,
    };
    let mask = u32_at(ace, 4).unwrap_or(0);
    let mask = if ace_type == SYSTEM_MANDATORY_LABEL_ACE_TYPE {
        mask // integrity policy bits, not access rights
    } else {
        map_generic(mask)
    };
    let size = 8 + sid.len() + trailer.len();
    let size16 = u16::try_from(size).map_err(|_| "ACE grows too large".to_string())?;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&[ace_type, flags]);
    out.extend_from_slice(&size16.to_le_bytes());
    out.extend_from_slice(&mask.to_le_bytes());
    out.extend_from_slice(sid);
    out.extend_from_slice(trailer);
    Ok(out)
}

fn allowed_ace(mask: u32, sid: &[u8]) -> Vec<u8> {
    let size = (8 + sid.len()) as u16;
    let mut ace = vec![ACCESS_ALLOWED_ACE_TYPE, 0];
    ace.extend_from_slice(&size.to_le_bytes());
    ace.extend_from_slice(&mask.to_le_bytes());
    ace.extend_from_slice(sid);
    ace
}

fn build_acl(aces: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let size = 8 + aces.iter().map(Vec::len).sum::<usize>();
    let size16 = u16::try_from(size).map_err(|_| "ACL grows past 64 KiB".to_string())?;
    let count = u16::try_from(aces.len()).map_err(|_| "too many ACEs".to_string())?;
    let mut acl = vec![2, 0]; // ACL_REVISION
    acl.extend_from_slice(&size16.to_le_bytes());
    acl.extend_from_slice(&count.to_le_bytes());
    acl.extend_from_slice(&[0, 0]);
    for ace in aces {
        acl.extend_from_slice(ace);
    }
    Ok(acl)
}

/// The security descriptor Windows gives a file created in a directory with descriptor
/// `parent` (see the module documentation for the rules).
pub fn inherit_for_file(parent: &[u8]) -> Result<Vec<u8>, String> {
    inherit(parent, false)
}

/// The security descriptor Windows gives a directory created in a directory with descriptor
/// `parent`: `CONTAINER_INHERIT` ACEs apply to it and keep propagating (split into an
/// effective ACE and an inherit-only one when they hold generic rights or `CREATOR OWNER`),
/// `OBJECT_INHERIT`-only ACEs pass through as inherit-only for the files below, and
/// `NO_PROPAGATE_INHERIT` stops propagation after this level.
pub fn inherit_for_directory(parent: &[u8]) -> Result<Vec<u8>, String> {
    inherit(parent, true)
}

/// Whether the effective ACE would differ from the inheritable one.
fn needs_split(ace: &[u8]) -> bool {
    if !sid_follows_mask(ace[0]) || ace[0] == SYSTEM_MANDATORY_LABEL_ACE_TYPE {
        return false;
    }
    let generic = u32_at(ace, 4).unwrap_or(0)
        & (GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL);
    let creator = sid_at(ace, 8)
        .map(|sid| sid == SID_CREATOR_OWNER || sid == SID_CREATOR_GROUP)
        .unwrap_or(false);
    generic != 0 || creator
}

fn with_flags(ace: &[u8], flags: u8) -> Vec<u8> {
    let mut copy = ace.to_vec();
    copy[1] = flags;
    copy
}

/// The inherited ACEs of a new file or directory, from its parent's ACL.
fn inherit_aces(
    aces: &[&[u8]],
    directory: bool,
    owner: &[u8],
    group: &[u8],
) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for ace in aces {
        let flags = ace[1];
        let object = flags & OBJECT_INHERIT_ACE != 0;
        let container = flags & CONTAINER_INHERIT_ACE != 0;
        let no_propagate = flags & NO_PROPAGATE_INHERIT_ACE != 0;
        if !directory {
            if object {
                out.push(inherited_ace(ace, owner, group)?);
            }
        } else if container {
            if no_propagate {
                out.push(inherited_ace(ace, owner, group)?);
            } else if needs_split(ace) {
                out.push(inherited_ace(ace, owner, group)?);
                out.push(with_flags(ace, flags | INHERIT_ONLY_ACE | INHERITED_ACE));
            } else {
                out.push(with_flags(ace, (flags & !INHERIT_ONLY_ACE) | INHERITED_ACE));
            }
        } else if object && !no_propagate {
            out.push(with_flags(ace, flags | INHERIT_ONLY_ACE | INHERITED_ACE));
        }
    }
    Ok(out)
}

fn inherit(parent: &[u8], directory: bool) -> Result<Vec<u8>, String> {
    let parsed = parse(parent)?;
    let owner = SID_ADMINISTRATORS;
    let group = parsed.group.unwrap_or(SID_LOCAL_SYSTEM);
    let inherit = |aces: &Option<Vec<&[u8]>>| -> Result<Vec<Vec<u8>>, String> {
        inherit_aces(aces.as_deref().unwrap_or(&[]), directory, owner, group)
    };

    let mut control = SE_SELF_RELATIVE | SE_DACL_PRESENT;
    let mut dacl = inherit(&parsed.dacl)?;
    if dacl.is_empty() {
        dacl = vec![
            allowed_ace(FILE_ALL_ACCESS, SID_LOCAL_SYSTEM),
            allowed_ace(FILE_ALL_ACCESS, SID_ADMINISTRATORS),
        ];
    } else {
        control |= parsed.control & SE_DACL_AUTO_INHERITED;
    }
    let sacl = inherit(&parsed.sacl)?;
    if !sacl.is_empty() {
        control |= SE_SACL_PRESENT | (parsed.control & SE_SACL_AUTO_INHERITED);
    }

    // Layout: header, SACL, DACL, owner, group; every part a multiple of 4 bytes.
    let sacl = (!sacl.is_empty()).then(|| build_acl(&sacl)).transpose()?;
    let dacl = build_acl(&dacl)?;
    let mut out = vec![0u8; 20];
    out[0] = 1;
    out[2..4].copy_from_slice(&control.to_le_bytes());
    let place = |out: &mut Vec<u8>, field: usize, part: &[u8]| -> Result<(), String> {
        let offset = u32::try_from(out.len()).map_err(|_| "descriptor too large".to_string())?;
        out[field..field + 4].copy_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(part);
        Ok(())
    };
    if let Some(sacl) = &sacl {
        place(&mut out, 12, sacl)?;
    }
    place(&mut out, 16, &dacl)?;
    place(&mut out, 4, owner)?;
    place(&mut out, 8, group)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: &[u8] = &[1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x21, 2, 0, 0];
    const EVERYONE: &[u8] = &[1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];

    fn ace(ace_type: u8, flags: u8, mask: u32, sid: &[u8]) -> Vec<u8> {
        let mut ace = allowed_ace(mask, sid);
        ace[0] = ace_type;
        ace[1] = flags;
        ace
    }

    fn descriptor(control: u16, dacl: Option<&[Vec<u8>]>) -> Vec<u8> {
        let mut out = vec![0u8; 20];
        out[0] = 1;
        let mut control = control | SE_SELF_RELATIVE;
        if let Some(aces) = dacl {
            control |= SE_DACL_PRESENT;
            out[16..20].copy_from_slice(&20u32.to_le_bytes());
            out.extend(build_acl(aces).unwrap());
        }
        out[2..4].copy_from_slice(&control.to_le_bytes());
        let owner = out.len() as u32;
        out[4..8].copy_from_slice(&owner.to_le_bytes());
        out.extend_from_slice(SID_LOCAL_SYSTEM);
        let group = out.len() as u32;
        out[8..12].copy_from_slice(&group.to_le_bytes());
        out.extend_from_slice(SID_LOCAL_SYSTEM);
        out
    }

    /// The descriptor mkntfs gives the root directory (as ntfssecaudit dumps it).
    fn mkntfs_root() -> Vec<u8> {
        let dacl = [
            ace(0, 0x00, FILE_ALL_ACCESS, SID_ADMINISTRATORS),
            ace(0, 0x0b, GENERIC_ALL, SID_ADMINISTRATORS),
            ace(0, 0x00, FILE_ALL_ACCESS, SID_LOCAL_SYSTEM),
            ace(0, 0x0b, GENERIC_ALL, SID_LOCAL_SYSTEM),
            ace(0, 0x00, 0x0012_00a9, USERS),
            ace(0, 0x0b, GENERIC_READ | GENERIC_EXECUTE, USERS),
        ];
        descriptor(0, Some(&dacl))
    }

    #[test]
    fn a_file_gets_the_object_inheritable_aces_as_effective_aces() {
        let child = inherit_for_file(&mkntfs_root()).unwrap();
        let entries = dacl_entries(&child).unwrap().unwrap();
        let summary: Vec<(u8, u32, &str)> = entries
            .iter()
            .map(|e| (e.flags, e.mask, e.sid.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (INHERITED_ACE, FILE_ALL_ACCESS, "S-1-5-32-544"),
                (INHERITED_ACE, FILE_ALL_ACCESS, "S-1-5-18"),
                (INHERITED_ACE, 0x0012_00a9, "S-1-5-32-545"),
            ]
        );
        assert_eq!(owner(&child).unwrap().as_deref(), Some("S-1-5-32-544"));
    }

    #[test]
    fn container_only_and_non_inheritable_aces_do_not_reach_a_file() {
        let dacl = [
            ace(0, 0x00, FILE_ALL_ACCESS, SID_LOCAL_SYSTEM),
            ace(0, CONTAINER_INHERIT_ACE, FILE_ALL_ACCESS, USERS),
            ace(
                0,
                OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
                FILE_ALL_ACCESS,
                SID_ADMINISTRATORS,
            ),
        ];
        let child = inherit_for_file(&descriptor(0, Some(&dacl))).unwrap();
        let sids: Vec<String> = dacl_entries(&child)
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|e| e.sid)
            .collect();
        assert_eq!(sids, ["S-1-5-32-544"]);
    }

    #[test]
    fn creator_owner_becomes_the_owner_and_deny_aces_keep_their_type() {
        let dacl = [
            ace(1, OBJECT_INHERIT_ACE, 0x0002_0000, EVERYONE),
            ace(
                0,
                OBJECT_INHERIT_ACE | INHERIT_ONLY_ACE,
                GENERIC_ALL,
                SID_CREATOR_OWNER,
            ),
        ];
        let child = inherit_for_file(&descriptor(SE_DACL_AUTO_INHERITED, Some(&dacl))).unwrap();
        let entries = dacl_entries(&child).unwrap().unwrap();
        assert_eq!(entries[0].ace_type, ACCESS_DENIED_ACE_TYPE);
        assert_eq!(entries[0].sid, "S-1-1-0");
        assert_eq!(entries[1].sid, "S-1-5-32-544");
        assert_eq!(entries[1].mask, FILE_ALL_ACCESS);
        assert_eq!(
            u16_at(&child, 2).unwrap() & SE_DACL_AUTO_INHERITED,
            SE_DACL_AUTO_INHERITED
        );
    }

    #[test]
    fn nothing_inheritable_or_a_null_dacl_gives_system_and_administrators_only() {
        for parent in [
            descriptor(0, None),
            descriptor(0, Some(&[ace(0, 0, FILE_ALL_ACCESS, EVERYONE)])),
        ] {
            let child = inherit_for_file(&parent).unwrap();
            let sids: Vec<String> = dacl_entries(&child)
                .unwrap()
                .unwrap()
                .into_iter()
                .map(|e| e.sid)
                .collect();
            assert_eq!(sids, ["S-1-5-18", "S-1-5-32-544"]);
        }
    }

    fn dacl_of(descriptor: &[u8]) -> Vec<(u8, u32, String)> {
        dacl_entries(descriptor)
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|e| (e.flags, e.mask, e.sid))
            .collect()
    }

    #[test]
    fn a_directory_inherits_container_aces_and_passes_object_aces_on() {
        let oi = OBJECT_INHERIT_ACE;
        let ci = CONTAINER_INHERIT_ACE;
        let dacl = [
            ace(0, oi | ci, FILE_ALL_ACCESS, SID_LOCAL_SYSTEM),
            ace(0, oi, 0x0012_00a9, USERS),
            ace(0, ci | NO_PROPAGATE_INHERIT_ACE, 0x0012_0089, EVERYONE),
            ace(0, oi | NO_PROPAGATE_INHERIT_ACE, FILE_ALL_ACCESS, EVERYONE),
            ace(0, 0, FILE_ALL_ACCESS, USERS),
        ];
        let child = inherit_for_directory(&descriptor(0, Some(&dacl))).unwrap();
        let inherited = INHERITED_ACE;
        assert_eq!(
            dacl_of(&child),
            [
                (oi | ci | inherited, FILE_ALL_ACCESS, "S-1-5-18".into()),
                (
                    oi | INHERIT_ONLY_ACE | inherited,
                    0x0012_00a9,
                    "S-1-5-32-545".into()
                ),
                (inherited, 0x0012_0089, "S-1-1-0".into()),
            ]
        );
    }

    #[test]
    fn a_directory_splits_generic_and_creator_owner_aces() {
        let flags = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE;
        let dacl = [
            ace(0, flags, GENERIC_ALL, SID_ADMINISTRATORS),
            ace(0, flags | INHERIT_ONLY_ACE, GENERIC_ALL, SID_CREATOR_OWNER),
        ];
        let child = inherit_for_directory(&descriptor(0, Some(&dacl))).unwrap();
        let io = INHERIT_ONLY_ACE | INHERITED_ACE | flags;
        assert_eq!(
            dacl_of(&child),
            [
                (INHERITED_ACE, FILE_ALL_ACCESS, "S-1-5-32-544".into()),
                (io, GENERIC_ALL, "S-1-5-32-544".into()),
                (INHERITED_ACE, FILE_ALL_ACCESS, "S-1-5-32-544".into()),
                (io, GENERIC_ALL, "S-1-3-0".into()),
            ]
        );
    }

    #[test]
    fn malformed_descriptors_are_errors_not_panics() {
        let good = mkntfs_root();
        for len in 0..good.len() {
            let _ = inherit_for_file(&good[..len]);
            let _ = dacl_entries(&good[..len]);
        }
        let mut bad_offset = good.clone();
        bad_offset[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(inherit_for_file(&bad_offset).is_err());
        assert!(inherit_for_file(&[0xff; 40]).is_err());
    }
}
