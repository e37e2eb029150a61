//! Self-relative security descriptors, as stored in the security data block, and the
//! descriptor Windows gives a new file or directory from its parent's inheritable ACEs.
//!
//! Layout: revision (1), sbz1 (1), control (2), then 4-byte offsets of the owner SID, group
//! SID, SACL and DACL (0 = absent). An ACL: revision (1), sbz1 (1), size (2), ACE count (2),
//! sbz2 (2), then ACEs: type (1), flags (1), size (2), type-specific body; the basic allow /
//! deny / audit types hold an access mask (4) and a SID.

use crate::error::Malformed;
use crate::header::{le16, le32};

const SE_DACL_PRESENT: u16 = 0x0004;
const SE_DACL_AUTO_INHERITED: u16 = 0x0400;
const SE_SELF_RELATIVE: u16 = 0x8000;

const OBJECT_INHERIT_ACE: u8 = 0x01;
const CONTAINER_INHERIT_ACE: u8 = 0x02;
const NO_PROPAGATE_INHERIT_ACE: u8 = 0x04;
const INHERIT_ONLY_ACE: u8 = 0x08;
const INHERITED_ACE: u8 = 0x10;

/// ACE types whose body is an access mask then a SID.
const BASIC_ACE_TYPES: [u8; 4] = [0, 1, 2, 3];

const CREATOR_OWNER: [u8; 12] = [1, 1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0];
const CREATOR_GROUP: [u8; 12] = [1, 1, 0, 0, 0, 0, 0, 3, 1, 0, 0, 0];

/// The parts of a descriptor that inheritance needs.
struct Parsed<'a> {
    owner: Option<&'a [u8]>,
    group: Option<&'a [u8]>,
    dacl_aces: Vec<&'a [u8]>,
}

fn sid_at(descriptor: &[u8], offset: usize) -> Result<Option<&[u8]>, Malformed> {
    if offset == 0 {
        return Ok(None);
    }
    let bad = || {
        Malformed::new(
            "security descriptor",
            format!(
                "SID at offset {offset} runs past its {} bytes",
                descriptor.len()
            ),
        )
    };
    let count = *descriptor.get(offset + 1).ok_or_else(bad)? as usize;
    let end = offset + 8 + 4 * count;
    descriptor.get(offset..end).map(Some).ok_or_else(bad)
}

fn parse(descriptor: &[u8]) -> Result<Parsed<'_>, Malformed> {
    let bad = |reason: String| Malformed::new("security descriptor", reason);
    if descriptor.len() < 20 || descriptor[0] != 1 {
        return Err(bad(format!(
            "{} bytes, revision {:?}: not a self-relative descriptor",
            descriptor.len(),
            descriptor.first()
        )));
    }
    let control = le16(descriptor, 2);
    let owner = sid_at(descriptor, le32(descriptor, 4) as usize)?;
    let group = sid_at(descriptor, le32(descriptor, 8) as usize)?;
    let dacl_offset = le32(descriptor, 16) as usize;
    let mut dacl_aces = Vec::new();
    if control & SE_DACL_PRESENT != 0 && dacl_offset != 0 {
        if dacl_offset + 8 > descriptor.len() {
            return Err(bad(format!(
                "DACL at {dacl_offset} runs past the descriptor"
            )));
        }
        let acl_end =
            (dacl_offset + le16(descriptor, dacl_offset + 2) as usize).min(descriptor.len());
        let mut position = dacl_offset + 8;
        for index in 0..le16(descriptor, dacl_offset + 4) {
            if position + 4 > acl_end {
                return Err(bad(format!("ACE {index} runs past the DACL")));
            }
            let size = le16(descriptor, position + 2) as usize;
            if size < 8 || position + size > acl_end {
                return Err(bad(format!("ACE {index} has size {size}")));
            }
            dacl_aces.push(&descriptor[position..position + size]);
            position += size;
        }
    }
    Ok(Parsed {
        owner,
        group,
        dacl_aces,
    })
}

/// Generic rights mapped to file rights, as the effective ACE of an inherited entry has them.
fn map_generic(mask: u32) -> u32 {
    let mut mapped = mask & 0x0fff_ffff;
    if mask & 0x8000_0000 != 0 {
        mapped |= 0x0012_0089;
    }
    if mask & 0x4000_0000 != 0 {
        mapped |= 0x0012_0116;
    }
    if mask & 0x2000_0000 != 0 {
        mapped |= 0x0012_00a0;
    }
    if mask & 0x1000_0000 != 0 {
        mapped |= 0x001f_01ff;
    }
    mapped
}

fn ace(ace_type: u8, flags: u8, mask: u32, sid: &[u8]) -> Vec<u8> {
    let size = 8 + sid.len();
    let mut out = Vec::with_capacity(size);
    out.push(ace_type);
    out.push(flags);
    out.extend_from_slice(&(size as u16).to_le_bytes());
    out.extend_from_slice(&mask.to_le_bytes());
    out.extend_from_slice(sid);
    out
}

/// The descriptor of a new child of a directory whose descriptor is `parent`: the parent's
/// owner and group, and a DACL of the parent's ACEs that are inheritable by a file (object
/// inherit) or directory (container inherit), flagged inherited, with CREATOR OWNER / CREATOR
/// GROUP replaced by the owner and group in the effective entries and generic rights mapped.
pub fn inherit(parent: &[u8], is_dir: bool) -> Result<Vec<u8>, Malformed> {
    let parsed = parse(parent)?;
    let mut aces: Vec<Vec<u8>> = Vec::new();
    for raw in &parsed.dacl_aces {
        let (ace_type, flags) = (raw[0], raw[1]);
        let applies = if is_dir {
            flags & CONTAINER_INHERIT_ACE != 0
        } else {
            flags & OBJECT_INHERIT_ACE != 0
        };
        // A directory also carries object-inherit entries on to its own files.
        let propagates = is_dir
            && flags & NO_PROPAGATE_INHERIT_ACE == 0
            && flags & (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE) != 0;
        if !applies && !propagates {
            continue;
        }
        if !BASIC_ACE_TYPES.contains(&ace_type) || raw.len() < 8 {
            // Object ACEs and others: inherited as they are, only the flags change.
            let mut copy = raw.to_vec();
            copy[1] = INHERITED_ACE
                | if propagates {
                    flags & (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE)
                        | if applies { 0 } else { INHERIT_ONLY_ACE }
                } else {
                    0
                };
            aces.push(copy);
            continue;
        }
        let mask = le32(raw, 4);
        let sid = &raw[8..];
        let creator_sid = if sid == CREATOR_OWNER {
            parsed.owner
        } else if sid == CREATOR_GROUP {
            parsed.group
        } else {
            None
        };
        let audit_flags = flags & 0xc0;
        if applies && (creator_sid.is_some() || !propagates || mask & 0xf000_0000 != 0) {
            // An effective entry of its own, plus (below) an inherit-only one to pass on.
            aces.push(ace(
                ace_type,
                INHERITED_ACE | audit_flags,
                map_generic(mask),
                creator_sid.unwrap_or(sid),
            ));
            if propagates {
                let inherit = flags & (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE);
                aces.push(ace(
                    ace_type,
                    INHERITED_ACE | INHERIT_ONLY_ACE | inherit | audit_flags,
                    mask,
                    sid,
                ));
            }
        } else if propagates {
            let inherit = flags & (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE);
            let only = if applies { 0 } else { INHERIT_ONLY_ACE };
            aces.push(ace(
                ace_type,
                INHERITED_ACE | inherit | only | audit_flags,
                mask,
                sid,
            ));
        } else {
            aces.push(ace(
                ace_type,
                INHERITED_ACE | audit_flags,
                map_generic(mask),
                sid,
            ));
        }
    }

    let owner = parsed.owner.unwrap_or(&[]);
    let group = parsed.group.unwrap_or(&[]);
    let acl_size = 8 + aces.iter().map(Vec::len).sum::<usize>();
    let mut out = Vec::with_capacity(20 + owner.len() + group.len() + acl_size);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(
        &(SE_SELF_RELATIVE | SE_DACL_PRESENT | SE_DACL_AUTO_INHERITED).to_le_bytes(),
    );
    let owner_offset = if owner.is_empty() { 0 } else { 20 };
    let group_offset = if group.is_empty() {
        0
    } else {
        20 + owner.len()
    };
    let dacl_offset = 20 + owner.len() + group.len();
    for offset in [owner_offset, group_offset, 0, dacl_offset] {
        out.extend_from_slice(&(offset as u32).to_le_bytes());
    }
    out.extend_from_slice(owner);
    out.extend_from_slice(group);
    out.extend_from_slice(&[2, 0]);
    out.extend_from_slice(&(acl_size as u16).to_le_bytes());
    out.extend_from_slice(&(aces.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    for entry in aces {
        out.extend_from_slice(&entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEM: [u8; 12] = [1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0];
    const ADMINS: [u8; 16] = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0];

    fn parent() -> Vec<u8> {
        let aces = [
            ace(
                0,
                OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
                0x001f_01ff,
                &SYSTEM,
            ),
            ace(0, CONTAINER_INHERIT_ACE, 0x0012_00a9, &ADMINS),
            ace(
                0,
                OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE | INHERIT_ONLY_ACE,
                0x1000_0000,
                &CREATOR_OWNER,
            ),
            ace(1, 0, 0x0001_0000, &ADMINS),
        ];
        let acl_size = 8 + aces.iter().map(Vec::len).sum::<usize>();
        let mut out = vec![1, 0];
        out.extend_from_slice(&(SE_SELF_RELATIVE | SE_DACL_PRESENT).to_le_bytes());
        for offset in [20u32, 36, 0, 48] {
            out.extend_from_slice(&offset.to_le_bytes());
        }
        out.extend_from_slice(&ADMINS);
        out.extend_from_slice(&SYSTEM);
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(acl_size as u16).to_le_bytes());
        out.extend_from_slice(&(aces.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        aces.iter().for_each(|a| out.extend_from_slice(a));
        out
    }

    #[test]
    fn a_file_gets_the_object_inheritable_entries() {
        let child = inherit(&parent(), false).unwrap();
        let parsed = parse(&child).unwrap();
        assert_eq!(parsed.owner, Some(&ADMINS[..]));
        assert_eq!(parsed.group, Some(&SYSTEM[..]));
        // SYSTEM full control, and CREATOR OWNER's generic all given to the owner (Admins).
        assert_eq!(parsed.dacl_aces.len(), 2);
        assert_eq!(
            parsed.dacl_aces[0],
            &ace(0, INHERITED_ACE, 0x001f_01ff, &SYSTEM)[..]
        );
        assert_eq!(
            parsed.dacl_aces[1],
            &ace(0, INHERITED_ACE, 0x001f_01ff, &ADMINS)[..]
        );
    }

    #[test]
    fn a_directory_gets_container_entries_and_passes_object_ones_on() {
        let child = inherit(&parent(), true).unwrap();
        let parsed = parse(&child).unwrap();
        let flags: Vec<u8> = parsed.dacl_aces.iter().map(|a| a[1]).collect();
        assert_eq!(
            flags,
            [
                INHERITED_ACE | OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
                INHERITED_ACE | CONTAINER_INHERIT_ACE,
                INHERITED_ACE,
                INHERITED_ACE | INHERIT_ONLY_ACE | OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
            ]
        );
        // The explicit deny entry is not inherited.
        assert!(parsed.dacl_aces.iter().all(|a| a[0] == 0));
    }

    #[test]
    fn garbage_is_refused() {
        assert!(inherit(&[1, 0, 4, 0x80], false).is_err());
        let mut broken = parent();
        broken[48 + 4] = 200;
        assert!(inherit(&broken, false).is_err());
    }
}
