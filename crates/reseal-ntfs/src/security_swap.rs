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
use crate::mft::{DescriptorRef, FileRecord, FileRecords, FIRST_USER_RECORD, MFT_EXTEND, MFT_ROOT};
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
    /// it names the old domain.
    ///
    /// Opening each of 55,000 files to read its descriptor took most of a run, so `$MFT` is
    /// read first for every file's descriptor (its `$Secure` id, or the descriptor its record
    /// holds) and directory ([`Volume::file_records`]); one file of each id tells whether that
    /// descriptor names the old domain, and only the directories leading to the files that
    /// must be read (those whose descriptor does, or whose record tells nothing) are listed.
    /// When some such file's directories do not lead to the root by their records, or the walk
    /// does not reach each of them, every directory is listed and every file whose record
    /// tells nothing is read.
    fn plan_domain_swap(&self, swap: &DomainSwap) -> Result<(SecuritySwap, Vec<Planned>)> {
        // Without $Secure open, libntfs-3g reads each file's own descriptor whatever its id.
        let FileRecords { records, own } = if self.mount.uses_secure() {
            self.file_records()?
        } else {
            FileRecords::default()
        };
        let verdicts = self.verdicts(&records, &own, swap);
        if let Some(route) = Route::new(&records, &verdicts) {
            let walked = self.walk_swapping(swap, &records, &verdicts, Some(&route))?;
            if walked.reached.len() == route.must_read.len() {
                return Ok(walked.into_result());
            }
        }
        Ok(self
            .walk_swapping(swap, &records, &verdicts, None)?
            .into_result())
    }

    /// For each descriptor the root's and the user files' records name, whether it names the
    /// old domain: a `$Secure` id's read through the first file using it, a record's own from
    /// its bytes. One that cannot be read or parsed is left out (its files are then read one
    /// by one, and report what is wrong).
    fn verdicts(
        &self,
        records: &[FileRecord],
        own: &[Vec<u8>],
        swap: &DomainSwap,
    ) -> HashMap<DescriptorRef, bool> {
        let mut verdicts = HashMap::new();
        let user_records = (MFT_ROOT as usize..records.len())
            .filter(|&n| n == MFT_ROOT as usize || n >= FIRST_USER_RECORD as usize);
        for number in user_records {
            let reference = records[number].descriptor();
            if reference == DescriptorRef::Unknown || verdicts.contains_key(&reference) {
                continue;
            }
            let descriptor = match reference {
                DescriptorRef::Own(index) => own.get(index as usize).cloned(),
                _ => self
                    .open(number as u64, "")
                    .ok()
                    .and_then(|inode| inode.security_descriptor().ok()),
            };
            let Some(descriptor) = descriptor else {
                continue;
            };
            if let Ok(swapped) = swap.swap_in_descriptor(&descriptor) {
                verdicts.insert(reference, swapped.is_some());
            }
        }
        verdicts
    }

    /// Walks the directories from the root (with a `route`, only those leading to the files it
    /// names), reading the descriptor of each file and directory whose id does not tell that
    /// it leaves the old domain alone.
    fn walk_swapping(
        &self,
        swap: &DomainSwap,
        records: &[FileRecord],
        verdicts: &HashMap<DescriptorRef, bool>,
        route: Option<&Route>,
    ) -> Result<Walked> {
        let mut walked = Walked::default();
        let mut seen: HashSet<u64> = HashSet::from([MFT_ROOT]);
        let mut pending = vec![(MFT_ROOT, String::new(), true)];
        while let Some((mft_no, shown, is_dir)) = pending.pop() {
            let descriptor = usize::try_from(mft_no)
                .ok()
                .and_then(|record| records.get(record))
                .map_or(DescriptorRef::Unknown, FileRecord::descriptor);
            let read = verdicts.get(&descriptor) != Some(&false);
            let list = is_dir && route.is_none_or(|route| route.leads_to.contains(&mft_no));
            if !read && !list {
                continue;
            }
            let mut inode = self.open(mft_no, &shown)?;
            if read {
                if route.is_some_and(|route| route.must_read.contains(&mft_no)) {
                    walked.reached.insert(mft_no);
                }
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
                if let Some(swapped) = swapped {
                    walked.distinct.insert(descriptor);
                    walked.planned.push(Planned {
                        mft_no,
                        shown: shown.clone(),
                        swapped,
                    });
                }
            }
            if !list {
                continue;
            }
            for child in self.children(&mut inode, &shown)? {
                let wanted = route.is_none_or(|route| {
                    route.must_read.contains(&child.mft_no)
                        || route.leads_to.contains(&child.mft_no)
                });
                if (mft_no == MFT_ROOT && child.mft_no < FIRST_USER_RECORD)
                    || !wanted
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
        Ok(walked)
    }
}

/// What a walk found: the files to change, their distinct old descriptors, and which of the
/// files its route named it read.
#[derive(Default)]
struct Walked {
    planned: Vec<Planned>,
    distinct: HashSet<Vec<u8>>,
    reached: HashSet<u64>,
}

impl Walked {
    fn into_result(self) -> (SecuritySwap, Vec<Planned>) {
        let summary = SecuritySwap {
            descriptors: self.distinct.len() as u64,
            files: self.planned.len() as u64,
        };
        (summary, self.planned)
    }
}

/// The user files whose descriptor must be read (it names the old domain, or its id tells
/// nothing), and the directories from the root down to them, by the directories their records
/// name.
struct Route {
    must_read: HashSet<u64>,
    leads_to: HashSet<u64>,
}

impl Route {
    /// `None` when a damaged record could be any file, or a file that must be read has
    /// directories that do not lead to the root by their records.
    fn new(records: &[FileRecord], verdicts: &HashMap<DescriptorRef, bool>) -> Option<Route> {
        const MAX_DEPTH: usize = 1024;
        // Without the records (no $Secure open, or $MFT unreadable) nothing can be routed.
        if records.len() <= FIRST_USER_RECORD as usize {
            return None;
        }
        let mut route = Route {
            must_read: HashSet::new(),
            leads_to: HashSet::from([MFT_ROOT]),
        };
        for (number, record) in records.iter().enumerate().skip(FIRST_USER_RECORD as usize) {
            let FileRecord::File { descriptor, parent } = *record else {
                if *record == FileRecord::Unreadable {
                    return None;
                }
                continue;
            };
            if verdicts.get(&descriptor) == Some(&false) {
                continue;
            }
            // Up its directories to the root; a file in $Extend is not walked at all.
            let mut above = Vec::new();
            let mut at = parent?;
            while at != MFT_ROOT {
                if at == MFT_EXTEND {
                    break;
                }
                if at < FIRST_USER_RECORD {
                    // No file but $Extend's lies in a system directory.
                    return None;
                }
                if above.len() > MAX_DEPTH {
                    // A cycle of directories, or deeper than any path Windows makes.
                    return None;
                }
                above.push(at);
                at = match records.get(usize::try_from(at).ok()?)? {
                    FileRecord::File { parent, .. } => (*parent)?,
                    _ => return None,
                };
            }
            if at == MFT_ROOT {
                route.must_read.insert(number as u64);
                route.leads_to.extend(above);
            }
        }
        Some(route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(security_id: u32, parent: u64) -> FileRecord {
        let descriptor = match security_id {
            0 => DescriptorRef::Unknown,
            id => DescriptorRef::Secure(id),
        };
        FileRecord::File {
            descriptor,
            parent: Some(parent),
        }
    }

    /// Records 16 to 21: a directory (16) under the root holding a directory (17) that holds
    /// a file naming the old domain (18) and one that does not (19); a file whose id tells
    /// nothing (20) in the root; a file under $Extend (21).
    fn records() -> Vec<FileRecord> {
        let mut records = vec![FileRecord::Absent; 16];
        records[MFT_ROOT as usize] = file(1, MFT_ROOT);
        records.extend([
            file(1, MFT_ROOT),
            file(1, 16),
            file(2, 17),
            file(1, 17),
            file(0, MFT_ROOT),
            file(2, 11),
        ]);
        records
    }

    #[test]
    fn the_route_leads_to_the_files_to_read_and_only_there() {
        let verdicts = HashMap::from([
            (DescriptorRef::Secure(1), false),
            (DescriptorRef::Secure(2), true),
        ]);
        let route = Route::new(&records(), &verdicts).unwrap();
        assert_eq!(route.must_read, HashSet::from([18, 20]));
        assert_eq!(route.leads_to, HashSet::from([MFT_ROOT, 16, 17]));
    }

    #[test]
    fn no_route_where_a_record_is_damaged_or_directories_do_not_lead_to_the_root() {
        let verdicts = HashMap::from([
            (DescriptorRef::Secure(1), false),
            (DescriptorRef::Secure(2), true),
        ]);
        let mut damaged = records();
        damaged.push(FileRecord::Unreadable);
        assert!(Route::new(&damaged, &verdicts).is_none());
        let mut cycle = records();
        cycle[16] = file(1, 17);
        assert!(Route::new(&cycle, &verdicts).is_none());
        let mut nameless = records();
        nameless[18] = FileRecord::File {
            descriptor: DescriptorRef::Secure(2),
            parent: None,
        };
        assert!(Route::new(&nameless, &verdicts).is_none());
        let mut under_volume = records();
        under_volume[20] = file(0, 3);
        assert!(Route::new(&under_volume, &verdicts).is_none());
        // No records at all (no $Secure open): nothing to route by.
        assert!(Route::new(&[], &verdicts).is_none());
    }
}
