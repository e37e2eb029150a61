//! Committing edits: the base block brought up to date (sequence numbers above any log's, size,
//! timestamp, checksum) so the bytes are a clean hive.

use crate::base_block::{self, BASE_BLOCK_SIZE};
use crate::Hive;

impl Hive {
    /// Finishes the edits as a consistent, clean hive file and returns its bytes: primary sequence
    /// number bumped above the current one and above any noted log sequence, hive bins written,
    /// secondary set equal, last-written timestamp and checksum updated. An unmodified clean hive
    /// comes back byte-identical.
    pub fn commit(&mut self) -> Vec<u8> {
        self.seal();
        self.store.bytes.clone()
    }

    /// [`Hive::commit`] for a hive that is no longer needed: the committed bytes without a copy.
    pub fn into_committed(mut self) -> Vec<u8> {
        self.seal();
        self.store.bytes
    }

    /// Brings the base block up to date for a commit (see [`Hive::commit`]), in place.
    pub(crate) fn seal(&mut self) {
        let now = self.now().0;
        let base = self.base_block();
        if !self.modified && !base.is_dirty() {
            return;
        }
        let sequence = base
            .primary_sequence()
            .max(base.secondary_sequence())
            .max(self.noted_log_sequence.unwrap_or(0))
            .saturating_add(1);
        let header = &mut self.store.bytes[..BASE_BLOCK_SIZE];
        base_block::write::set_primary_sequence(header, sequence);
        base_block::write::set_secondary_sequence(header, sequence);
        base_block::write::set_last_written(header, now);
        base_block::write::set_hive_bins_data_size(header, self.store.bins_size);
        base_block::write::seal(header);
        self.modified = false;
    }
}
