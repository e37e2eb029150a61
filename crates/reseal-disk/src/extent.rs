//! Ranges of a container file and the structures that use them, to find two that overlap.

/// A range of the file that one structure or block uses.
#[derive(Clone)]
pub(crate) struct Extent {
    pub what: String,
    pub start: u64,
    pub length: u64,
}

impl Extent {
    pub(crate) fn new(what: impl Into<String>, start: u64, length: u64) -> Self {
        Extent {
            what: what.into(),
            start,
            length,
        }
    }
    pub(crate) fn end(&self) -> u64 {
        self.start.saturating_add(self.length)
    }
}

impl std::fmt::Display for Extent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} bytes at {})", self.what, self.length, self.start)
    }
}

/// The first two of `extents` that share bytes, if any.
pub(crate) fn first_overlap(extents: &[Extent]) -> Option<(Extent, Extent)> {
    let mut sorted: Vec<&Extent> = extents.iter().collect();
    sorted.sort_by_key(|extent| extent.start);
    sorted
        .windows(2)
        .find(|pair| pair[1].start < pair[0].end())
        .map(|pair| (pair[0].clone(), pair[1].clone()))
}
