//! [`Entropy`]: the one source of randomness and time of a run. By default the operating
//! system's random source and clock; for a reproducible run a seed and a fixed time, so the same
//! input and options give the same output bytes.
//!
//! A seed drives SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
//! generators", OOPSLA 2014; the generator `java.util.SplittableRandom` uses): the state advances
//! by the golden-ratio constant and each output is the state through a fixed mixing function. It
//! is not meant to be unpredictable: a seeded run is one whose every value can be made again.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::FileTime;

/// The state step of SplitMix64 (2^64 divided by the golden ratio, odd).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Where a run's random values and times come from.
#[derive(Debug, Default)]
pub struct Entropy {
    /// SplitMix64's state; `None`: the operating system's random source.
    seeded: Option<AtomicU64>,
    /// The time every timestamp gets; `None`: the clock.
    time: Option<FileTime>,
}

impl Entropy {
    /// Random values from `seed` when given, else from the operating system; timestamps `time`
    /// when given, else the clock.
    pub fn new(seed: Option<u64>, time: Option<FileTime>) -> Entropy {
        Entropy {
            seeded: seed.map(AtomicU64::new),
            time,
        }
    }

    /// `true` when random values come from a seed.
    pub fn is_seeded(&self) -> bool {
        self.seeded.is_some()
    }

    /// Fills `bytes` with random bytes; the message of the operating system's error when it has
    /// none to give.
    pub fn fill(&self, bytes: &mut [u8]) -> Result<(), String> {
        let Some(state) = &self.seeded else {
            return getrandom::getrandom(bytes).map_err(|err| err.to_string());
        };
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&splitmix64_next(state).to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }

    /// A source of its own for another part of the run (the container's identifiers, say): the
    /// same fixed time, and random values from a seed drawn from this one (SplitMix64's split),
    /// so the two streams do not repeat each other; the operating system's when this has no seed.
    pub fn split(&self) -> Entropy {
        Entropy {
            seeded: self
                .seeded
                .as_ref()
                .map(|state| AtomicU64::new(splitmix64_next(state))),
            time: self.time,
        }
    }

    /// The time a new or changed thing gets: the fixed time, or the clock's.
    pub fn now(&self) -> FileTime {
        self.time.unwrap_or_else(FileTime::now)
    }

    /// The fixed time, if any.
    pub fn fixed_time(&self) -> Option<FileTime> {
        self.time
    }
}

/// Advances SplitMix64's `state` and gives its next output.
fn splitmix64_next(state: &AtomicU64) -> u64 {
    let next = state
        .fetch_add(GOLDEN_GAMMA, Ordering::Relaxed)
        .wrapping_add(GOLDEN_GAMMA);
    splitmix64_mix(next)
}

/// SplitMix64's output function of a state.
fn splitmix64_mix(state: u64) -> u64 {
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_splitmix64s_published_sequence() {
        // The first outputs for seed 1234567, as the reference C implementation prints them.
        let entropy = Entropy::new(Some(1_234_567), None);
        let mut bytes = [0u8; 16];
        entropy.fill(&mut bytes).unwrap();
        let first = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        let second = u64::from_le_bytes(bytes[8..].try_into().unwrap());
        assert_eq!(first, 6_457_827_717_110_365_317);
        assert_eq!(second, 3_203_168_211_198_807_973);
    }

    #[test]
    fn the_same_seed_repeats_and_another_differs() {
        let draw = |seed| {
            let mut bytes = [0u8; 13];
            Entropy::new(Some(seed), None).fill(&mut bytes).unwrap();
            bytes
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let mut os = [0u8; 32];
        Entropy::default().fill(&mut os).unwrap();
        assert_ne!(os, [0u8; 32]);
    }

    #[test]
    fn a_split_repeats_with_its_parent_and_differs_from_it() {
        let split = |seed| {
            let parent = Entropy::new(Some(seed), Some(FileTime(5)));
            let child = parent.split();
            let (mut from_parent, mut from_child) = ([0u8; 16], [0u8; 16]);
            parent.fill(&mut from_parent).unwrap();
            child.fill(&mut from_child).unwrap();
            assert_eq!(child.fixed_time(), Some(FileTime(5)));
            (from_parent, from_child)
        };
        let (parent, child) = split(9);
        assert_eq!((parent, child), split(9));
        assert_ne!(parent, child);
        assert_ne!(split(10).1, child);
        let unseeded = Entropy::default().split();
        assert!(!unseeded.is_seeded());
    }

    #[test]
    fn a_fixed_time_is_every_now() {
        let time = FileTime::from_unix(1_700_000_000, 0);
        let entropy = Entropy::new(None, Some(time));
        assert_eq!(entropy.now(), time);
        assert_eq!(entropy.fixed_time(), Some(time));
        assert!(Entropy::default().now().to_unix_seconds() > 1_704_067_200);
    }
}
