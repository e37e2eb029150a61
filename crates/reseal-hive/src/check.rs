//! A structure check of a whole hive: what `chkdsk` is to a file system, for regf.
//!
//! It walks every cell of every bin and every key reachable from the root, and reports what a
//! reader would trip over or what an editor would make worse: references to free or misplaced
//! cells, cells used twice, subkey counts that disagree with their lists, subkey lists out of
//! order or naming a key whose parent is another (a loop back to an ancestor), value data longer
//! than its cell and big data records that disagree with their value, allocated cells nothing
//! refers to (orphans, harmless but wasted), security records whose reference count does not
//! match the keys using them, and a broken `sk` list. Edits check each key they go through with
//! the same rules ([`Hive::check_key`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::base_block::BaseBlock;
use crate::cell::{file_offset, NIL};
use crate::key::MAX_KEY_DEPTH;
use crate::subkey_list::Leaf;
use crate::{Error, Hive, Result};

/// What [`Hive::check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// The base block is dirty now (sequence numbers differ or the checksum is wrong).
    pub dirty: bool,
    /// Keys and values reachable from the root.
    pub keys: u64,
    pub values: u64,
    /// Cells found by walking the bins.
    pub allocated_cells: u64,
    pub free_cells: u64,
    /// Allocated cells (offsets relative to the hive bins data) that nothing reachable refers to.
    pub orphan_cells: Vec<u32>,
    /// Security records whose stored reference count differs from the number of keys using them:
    /// (cell offset, stored count, keys counted).
    pub security_count_mismatches: Vec<(u32, u32, u32)>,
    /// Structural problems, one line each, naming the file offset.
    pub problems: Vec<String>,
}

impl CheckReport {
    /// `true` when nothing at all was found (a dirty base block counts).
    pub fn is_clean(&self) -> bool {
        !self.dirty
            && self.orphan_cells.is_empty()
            && self.security_count_mismatches.is_empty()
            && self.problems.is_empty()
    }
}

/// The state of the walk over keys.
struct Walk<'h> {
    hive: &'h Hive,
    report: CheckReport,
    /// Every cell a reachable structure uses (sk cells excepted: they are shared).
    used: BTreeSet<u32>,
    /// Keys using each sk.
    security_users: BTreeMap<u32, u32>,
}

impl Walk<'_> {
    fn problem(&mut self, error: crate::Error) {
        self.report.problems.push(error.to_string());
    }

    fn use_cell(&mut self, offset: u32, what: &str) {
        if !self.used.insert(offset) {
            self.report.problems.push(format!(
                "file offset {:#x}: {what} cell is used by more than one structure",
                file_offset(offset)
            ));
        }
    }

    /// Walks the key at `key` and everything below it (iteratively: depth is bounded by the
    /// number of keys, never by the call stack).
    fn walk(&mut self, root: u32) {
        let mut pending = vec![(root, 0u16)];
        let mut seen = HashSet::new();
        while let Some((key, depth)) = pending.pop() {
            if !seen.insert(key) {
                self.report.problems.push(format!(
                    "file offset {:#x}: key is reached twice (a cycle or a shared subkey list element)",
                    file_offset(key)
                ));
                continue;
            }
            if depth > MAX_KEY_DEPTH {
                self.report.problems.push(format!(
                    "file offset {:#x}: key nested deeper than {MAX_KEY_DEPTH} levels",
                    file_offset(key)
                ));
                continue;
            }
            if let Err(e) = self.key(key, depth, &mut pending) {
                self.problem(e);
            }
        }
    }

    fn key(&mut self, key: u32, depth: u16, pending: &mut Vec<(u32, u16)>) -> Result<()> {
        let node = self.hive.nk(key)?;
        self.report.keys += 1;
        self.use_cell(key, "key node");
        let security = node.security();
        match self.hive.sk(security) {
            Ok(_) => *self.security_users.entry(security).or_default() += 1,
            Err(e) => self.problem(e),
        }
        if node.class_name() != NIL && node.class_length() > 0 {
            match self.hive.store.cell(node.class_name()) {
                Ok(_) => self.use_cell(node.class_name(), "class name"),
                Err(e) => self.problem(e),
            }
        }
        let index = self.hive.subkey_index(key)?;
        for list in index
            .ri
            .iter()
            .chain(index.leaves.iter().map(|l| &l.offset))
        {
            self.use_cell(*list, "subkey list");
        }
        pending.extend(index.elements().map(|e| (e.offset, depth + 1)));
        if let Some(problem) = self.hive.subkey_count_problem(key, &index) {
            self.problem(problem);
        }
        for problem in self.hive.subkey_list_problems(key, &index.leaves) {
            self.problem(problem);
        }
        let values = self.hive.value_offsets(key)?;
        if !values.is_empty() {
            self.use_cell(node.values_list(), "value list");
        }
        for vk in values {
            let cells = self
                .hive
                .vk(vk)
                .and_then(|_| self.hive.value_data_cells(vk));
            match cells {
                Ok(cells) => {
                    self.report.values += 1;
                    self.use_cell(vk, "key value");
                    for cell in cells {
                        self.use_cell(cell, "value data");
                    }
                }
                Err(e) => self.problem(e),
            }
        }
        Ok(())
    }

    /// Follows the sk list from `start` (bounded by the number of sk records in use) and compares
    /// reference counts.
    fn security_list(&mut self, start: u32) {
        let mut in_list = BTreeSet::new();
        let mut at = start;
        loop {
            let sk = match self.hive.sk(at) {
                Ok(sk) => sk,
                Err(e) => return self.problem(e),
            };
            if !in_list.insert(at) {
                if at != start {
                    self.report.problems.push(format!(
                        "file offset {:#x}: security list loops back without returning to its start",
                        file_offset(at)
                    ));
                }
                break;
            }
            let next = sk.flink();
            match self.hive.sk(next) {
                Ok(next_sk) if next_sk.blink() != at => self.report.problems.push(format!(
                    "file offset {:#x}: security record's blink does not point back to {:#x}",
                    file_offset(next),
                    file_offset(at)
                )),
                _ => {}
            }
            at = next;
        }
        for (&sk, &users) in &self.security_users.clone() {
            if !in_list.contains(&sk) {
                self.report.problems.push(format!(
                    "file offset {:#x}: security record in use but not in the security list",
                    file_offset(sk)
                ));
            }
            if let Ok(record) = self.hive.sk(sk) {
                if record.reference_count() != users {
                    self.report.security_count_mismatches.push((
                        sk,
                        record.reference_count(),
                        users,
                    ));
                }
            }
        }
        for &sk in &in_list {
            if !self.security_users.contains_key(&sk) {
                if let Ok(record) = self.hive.sk(sk) {
                    self.report
                        .security_count_mismatches
                        .push((sk, record.reference_count(), 0));
                }
            }
        }
        self.used.extend(in_list);
    }
}

impl Hive {
    /// Windows finds subkeys by binary search, skipping elements whose hint or hash does not
    /// match: the list must be sorted by upper-cased name, hints and hashes must be right, and
    /// each subkey must name this key as its parent (one that does not is listed in the wrong
    /// place, or the list loops back to an ancestor). Subkeys that cannot be read are left to
    /// the caller.
    fn subkey_list_problems(&self, key: u32, leaves: &[Leaf]) -> Vec<crate::Error> {
        let mut problems = Vec::new();
        let mut previous: Option<Vec<u16>> = None;
        for (leaf, element) in leaves
            .iter()
            .flat_map(|leaf| leaf.elements.iter().map(move |e| (leaf, e)))
        {
            let subkey = element.offset;
            let Ok(node) = self.nk(subkey) else {
                continue;
            };
            let name = node.name_units();
            let hint = leaf.kind.hint(&name);
            if hint != element.hint {
                problems.push(Error::corrupt(
                    file_offset(leaf.offset),
                    format!(
                        "{:?} element for {:?} has hint {:#x}, expected {hint:#x}",
                        leaf.kind,
                        node.name(),
                        element.hint,
                    ),
                ));
            }
            if node.parent() != key {
                problems.push(Error::corrupt(
                    file_offset(subkey),
                    format!(
                        "key's parent field is {:#x}, expected {key:#x}, the key whose subkey list names it",
                        node.parent(),
                    ),
                ));
            }
            if let Some(previous) = &previous {
                if reseal_nt::upcase::compare_ignore_case(previous, &name).is_ge() {
                    problems.push(Error::corrupt(
                        file_offset(subkey),
                        format!(
                            "subkey list of key {key:#x} is not sorted at {:?}",
                            node.name()
                        ),
                    ));
                }
            }
            previous = Some(name);
        }
        problems
    }

    /// Checks the key at `key` as an edit needs it before it searches or changes it: its node and
    /// security record, its subkey list (leaves, count, order, hints, each subkey's node and
    /// parent field) and its values (list, records and the cells holding their whole data).
    /// The first damage found is the error.
    pub(crate) fn check_key(&self, key: u32) -> Result<()> {
        let checked = || {
            self.store
                .checked_keys
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        if checked().contains(&key) {
            return Ok(());
        }
        self.check_key_structure(key)?;
        checked().insert(key);
        Ok(())
    }

    fn check_key_structure(&self, key: u32) -> Result<()> {
        let node = self.nk(key)?;
        self.sk(node.security())?;
        let index = self.subkey_index(key)?;
        if let Some(problem) = self.subkey_count_problem(key, &index) {
            return Err(problem);
        }
        for element in index.elements() {
            self.nk(element.offset)?;
        }
        if let Some(problem) = self
            .subkey_list_problems(key, &index.leaves)
            .into_iter()
            .next()
        {
            return Err(problem);
        }
        for vk in self.value_offsets(key)? {
            self.value_data_cells(vk)?;
        }
        Ok(())
    }
}

impl Hive {
    /// Checks the whole structure of the hive; see [`CheckReport`]. Never fails: what cannot be
    /// read is reported.
    pub fn check(&self) -> CheckReport {
        let mut walk = Walk {
            hive: self,
            report: CheckReport {
                dirty: BaseBlock::parse(self.bytes()).map_or(true, |b| b.is_dirty()),
                ..CheckReport::default()
            },
            used: BTreeSet::new(),
            security_users: BTreeMap::new(),
        };
        match self.root() {
            Ok(root) => {
                let root = root.cell_offset();
                walk.walk(root);
                if let Ok(node) = self.nk(root) {
                    walk.security_list(node.security());
                }
            }
            Err(e) => walk.problem(e),
        }
        match self.store.scan_cells() {
            Ok(cells) => {
                let allocated: BTreeSet<u32> = cells
                    .iter()
                    .filter(|&&(_, raw)| raw < 0)
                    .map(|&(offset, _)| offset)
                    .collect();
                walk.report.allocated_cells = allocated.len() as u64;
                walk.report.free_cells = (cells.len() - allocated.len()) as u64;
                walk.report.orphan_cells = allocated.difference(&walk.used).copied().collect();
                // A reference between two cell boundaries points into another cell: freeing or
                // rewriting either one would damage the other.
                let boundaries: BTreeSet<u32> = cells.iter().map(|&(offset, _)| offset).collect();
                for &inside in walk.used.difference(&boundaries) {
                    walk.report.problems.push(format!(
                        "file offset {:#x}: referenced cell lies inside another cell (overlapping cells)",
                        file_offset(inside)
                    ));
                }
            }
            Err(e) => walk.problem(e),
        }
        walk.report
    }
}
