//! The host clusters the image's own structures take (header, L1 and L2 tables, refcount table
//! and blocks, snapshot table), gathered once before the first write. A cluster written in
//! place must be none of them: a crafted or damaged COPIED L2 entry would otherwise turn a
//! guest write into a write over the image's metadata.

/// Disjoint, sorted runs of metadata clusters, each named by the first structure found in it.
pub(crate) struct MetadataMap {
    cluster_bits: u32,
    /// (first cluster, cluster after the last, structure), sorted and merged once built.
    runs: Vec<(u64, u64, &'static str)>,
    /// The file's length when the map was made: clusters past it did not exist then.
    file_len: u64,
}

impl MetadataMap {
    pub fn new(cluster_bits: u32, file_len: u64) -> MetadataMap {
        MetadataMap {
            cluster_bits,
            runs: Vec::new(),
            file_len,
        }
    }

    /// Adds the clusters of `length` bytes at `offset`. Only the part within the file is kept:
    /// no in-place write reaches past it, and a crafted size cannot make the map large.
    pub fn add(&mut self, offset: u64, length: u64, structure: &'static str) {
        let end = offset.saturating_add(length).min(self.file_len);
        if length == 0 || offset >= end {
            return;
        }
        let first = offset >> self.cluster_bits;
        let after = ((end - 1) >> self.cluster_bits) + 1;
        self.runs.push((first, after, structure));
    }

    /// Sorts the runs and merges those that overlap, so a lookup is one binary search.
    pub fn finish(mut self) -> MetadataMap {
        self.runs.sort_unstable_by_key(|&(first, ..)| first);
        let mut merged: Vec<(u64, u64, &'static str)> = Vec::with_capacity(self.runs.len());
        for run in self.runs.drain(..) {
            match merged.last_mut() {
                Some(last) if run.0 < last.1 => last.1 = last.1.max(run.1),
                _ => merged.push(run),
            }
        }
        self.runs = merged;
        self
    }

    /// The structure in host cluster `cluster`, if any.
    pub fn structure_at(&self, cluster: u64) -> Option<&'static str> {
        let index = self.runs.partition_point(|&(_, after, _)| after <= cluster);
        self.runs
            .get(index)
            .filter(|&&(first, ..)| first <= cluster)
            .map(|&(.., structure)| structure)
    }

    pub fn file_len(&self) -> u64 {
        self.file_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_runs_merge_adjacent_ones_keep_their_names() {
        let mut map = MetadataMap::new(16, 1 << 30);
        map.add(0, 104, "header");
        map.add(5 << 16, 3 << 16, "refcount table");
        map.add(6 << 16, 1, "L2 table");
        map.add(8 << 16, 1 << 16, "refcount block");
        map.add(1 << 40, 1 << 16, "past the file");
        let map = map.finish();
        assert_eq!(map.structure_at(0), Some("header"));
        assert_eq!(map.structure_at(1), None);
        assert_eq!(map.structure_at(4), None);
        assert_eq!(map.structure_at(5), Some("refcount table"));
        assert_eq!(map.structure_at(7), Some("refcount table"));
        assert_eq!(
            map.structure_at(8),
            Some("refcount block"),
            "adjacent, not merged"
        );
        assert_eq!(map.structure_at(9), None);
        assert_eq!(map.structure_at(1 << 24), None);
    }
}
