//! Releasing a deleted key's subtree: every cell and security reference is collected and checked
//! first (a cycle or a shared cell is corruption, and nothing is freed), then freed.

use std::collections::{HashMap, HashSet};

use crate::cell::{file_offset, NIL};
use crate::{Error, Hive, Result};

impl Hive {
    /// Every cell of the subtree at `key` and the security references it holds, checked before
    /// anything is freed (each key as [`Hive::check_key`] does): a cell reached twice or a key
    /// nested in its own subtree is corruption.
    pub(crate) fn subtree_cells(&self, key: u32) -> Result<Doomed> {
        let mut doomed = Doomed::default();
        let mut seen = HashSet::new();
        let mut pending = vec![key];
        while let Some(key) = pending.pop() {
            if !seen.insert(key) {
                return Err(Error::corrupt(
                    file_offset(key),
                    "key is reached twice below the key being deleted (a cycle in subkey lists)",
                ));
            }
            self.check_key(key)?;
            let node = self.nk(key)?;
            let index = self.subkey_index(key)?;
            pending.extend(index.elements().map(|e| e.offset));
            doomed.cells.extend(index.ri);
            doomed.cells.extend(index.leaves.iter().map(|l| l.offset));
            let values = self.value_offsets(key)?;
            if !values.is_empty() {
                doomed.cells.push(node.values_list());
            }
            for vk in values {
                doomed.cells.extend(self.value_data_cells(vk)?);
                doomed.cells.push(vk);
            }
            if node.class_name() != NIL && node.class_length() > 0 {
                self.store.cell(node.class_name())?;
                doomed.cells.push(node.class_name());
            }
            self.sk(node.security())?;
            *doomed.security.entry(node.security()).or_default() += 1;
            doomed.cells.push(key);
        }
        let mut unique = HashSet::new();
        if let Some(&twice) = doomed.cells.iter().find(|&&c| !unique.insert(c)) {
            return Err(Error::corrupt(
                file_offset(twice),
                "cell is used twice within the key being deleted",
            ));
        }
        Ok(doomed)
    }

    /// Frees `doomed`'s cells and drops its security references.
    pub(crate) fn release(&mut self, doomed: Doomed) -> Result<()> {
        for cell in doomed.cells {
            self.store.free(cell)?;
        }
        for (sk, dropped) in doomed.security {
            self.drop_security_references(sk, dropped)?;
        }
        Ok(())
    }
}

/// Cells to free when deleting a key, and the number of references to drop per `sk`.
#[derive(Default)]
pub(crate) struct Doomed {
    cells: Vec<u32>,
    security: HashMap<u32, u32>,
}
