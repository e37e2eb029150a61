//! One account-domain SID replaced by another in the security descriptors of every file and
//! directory of the volume.
//!
//! Each file's descriptor is read and, when it names the old domain, set again with the SIDs
//! replaced through libntfs-3g's `ntfs_set_ntfs_acl` (what ntfs-3g's `system.ntfs_acl`
//! attribute does): the new descriptor gets its `$Secure` entry (`$SDS` and its mirror, `$SII`
//! and `$SDH`, added together and shared by every file with the same descriptor) and the file's
//! `$STANDARD_INFORMATION` points to it. The old entries stay in `$Secure`, unused, as after
//! Windows re-secures or deletes files: NTFS never removes entries, and chkdsk only reports
//! them as cleaned up. A file still holding a legacy `$SECURITY_DESCRIPTOR` attribute
//! (NTFS 1.x) is read and set the same way.

use std::collections::{HashMap, HashSet};

use reseal_nt::domain_swap::DomainSwap;

use crate::error::{ntfs_error, Error, Result};
use crate::mft::{FIRST_USER_RECORD, MFT_ROOT};
use crate::volume::Volume;

/// What replacing the domain changes, or changed, on the volume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecuritySwap {
    /// Distinct descriptors naming the old domain.
    pub descriptors: u64,
    /// Files and directories (each inode once, whatever its hard links) whose descriptor is
    /// one of them.
    pub files: u64,
}

/// One file whose descriptor names the old domain.
struct Planned {
    mft_no: u64,
    shown: String,
    swapped: Vec<u8>,
}

impl Volume {
    /// How many descriptors of the volume's files name a SID of `swap`'s old domain, and the
    /// files using them. Reads only.
    pub fn scan_domain_swap(&self, swap: &DomainSwap) -> Result<SecuritySwap> {
        Ok(self.plan_domain_swap(swap)?.0)
    }

    /// Replaces `swap`'s old domain by the new one in every file's and directory's security
    /// descriptor (each keeps its length). Every descriptor is read and checked first: a
    /// damaged one is refused before anything is written.
    pub fn swap_domain(&mut self, swap: &DomainSwap) -> Result<SecuritySwap> {
        self.require_writable()?;
        let (summary, planned) = self.plan_domain_swap(swap)?;
        for file in planned {
            let mut inode = self.open(file.mft_no, &file.shown)?;
            inode
                .set_security_descriptor(&file.swapped)
                .map_err(|f| ntfs_error(&self.image, "set security of", &file.shown, f))?;
            inode
                .close()
                .map_err(|f| ntfs_error(&self.image, "write back", &file.shown, f))?;
        }
        Ok(summary)
    }

    /// Every file and directory below the root, each inode once (the volume's own metadata
    /// files, whose descriptors format writes, are left out), with its descriptor swapped when
    /// it names the old domain. A file whose `$Secure` id was already found not to name it is
    /// passed over unopened (ids read from `$MFT` in one pass: opening each of 55,000 files
    /// to read its descriptor took most of the run).
    fn plan_domain_swap(&self, swap: &DomainSwap) -> Result<(SecuritySwap, Vec<Planned>)> {
        // Without $Secure open, libntfs-3g reads each file's own descriptor whatever its id.
        let security_ids = if self.mount.uses_secure() {
            self.security_ids()?
        } else {
            Vec::new()
        };
        let mut names_old_domain: HashMap<u32, bool> = HashMap::new();
        let mut planned = Vec::new();
        let mut distinct: HashSet<Vec<u8>> = HashSet::new();
        let mut seen: HashSet<u64> = HashSet::from([MFT_ROOT]);
        let mut pending = vec![(MFT_ROOT, String::new(), true)];
        while let Some((mft_no, shown, is_dir)) = pending.pop() {
            let security_id = usize::try_from(mft_no)
                .ok()
                .and_then(|record| security_ids.get(record))
                .copied()
                .unwrap_or(0);
            if !is_dir && security_id != 0 && names_old_domain.get(&security_id) == Some(&false) {
                continue;
            }
            let mut inode = self.open(mft_no, &shown)?;
            let descriptor = inode
                .security_descriptor()
                .map_err(|f| ntfs_error(&self.image, "read security of", &shown, f))?;
            let swapped = swap
                .swap_in_descriptor(&descriptor)
                .map_err(|e| Error::Damaged {
                    image: self.image.clone(),
                    structure: "security descriptor",
                    offset: None,
                    reason: format!("of {shown:?}: {e}"),
                })?;
            if security_id != 0 {
                names_old_domain.insert(security_id, swapped.is_some());
            }
            if let Some(swapped) = swapped {
                distinct.insert(descriptor);
                planned.push(Planned {
                    mft_no,
                    shown: shown.clone(),
                    swapped,
                });
            }
            if !is_dir {
                continue;
            }
            for child in self.children(&mut inode, &shown)? {
                if (mft_no == MFT_ROOT && child.mft_no < FIRST_USER_RECORD)
                    || !seen.insert(child.mft_no)
                {
                    continue;
                }
                let name = String::from_utf16_lossy(&child.name);
                let child_shown = if shown.is_empty() {
                    name
                } else {
                    format!("{shown}\\{name}")
                };
                pending.push((child.mft_no, child_shown, child.is_dir));
            }
        }
        let summary = SecuritySwap {
            descriptors: distinct.len() as u64,
            files: planned.len() as u64,
        };
        Ok((summary, planned))
    }
}
