//! [`Sid`]: Windows security identifiers, as text (`S-1-5-21-...`) and in their binary form.

use std::fmt;

use crate::entropy::Entropy;

/// Why a SID could not be read, with the text or bytes' fault named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SidError {
    /// Text that is not a SID: `text` as given, `why` the first fault found.
    #[error("invalid SID {text:?}: {why}")]
    BadText { text: String, why: &'static str },
    /// A SID that is valid but not a machine SID `S-1-5-21-A-B-C`.
    #[error("{text:?} is not a machine SID: it must be S-1-5-21-A-B-C (three numbers after 21)")]
    NotMachineSid { text: String },
    /// A binary SID that is cut short or has too many sub-authorities.
    #[error("invalid binary SID: {why}")]
    BadBytes { why: &'static str },
    /// The operating system gave no random bytes for a new SID.
    #[error("no random numbers for a new SID: {0}")]
    NoRandom(String),
}

type Result<T> = std::result::Result<T, SidError>;

/// A security identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sid {
    /// Always 1 on Windows.
    pub revision: u8,
    /// The identifier authority (48 bits; 5 = NT authority).
    pub authority: u64,
    /// The sub-authorities (at most 15).
    pub sub_authorities: Vec<u32>,
}

/// The most sub-authorities a SID can have.
const MAX_SUB_AUTHORITIES: usize = 15;
/// The largest identifier authority (48 bits).
const MAX_AUTHORITY: u64 = (1 << 48) - 1;

impl Sid {
    /// Parses `S-1-5-21-1-2-3` (the `S` in either case; the authority in decimal or `0x` hex).
    pub fn parse(text: &str) -> Result<Sid> {
        let bad = |why: &'static str| SidError::BadText {
            text: text.to_string(),
            why,
        };
        let mut parts = text.trim().split('-');
        if !parts.next().is_some_and(|s| s.eq_ignore_ascii_case("S")) {
            return Err(bad("it must start with \"S-\""));
        }
        let revision: u8 = parts
            .next()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| bad("the revision must be a number"))?;
        let authority_text = parts
            .next()
            .ok_or_else(|| bad("the authority is missing"))?;
        let authority = match authority_text
            .strip_prefix("0x")
            .or_else(|| authority_text.strip_prefix("0X"))
        {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => authority_text.parse().ok(),
        }
        .filter(|&a| a <= MAX_AUTHORITY)
        .ok_or_else(|| bad("the authority must be a number below 2^48"))?;
        let sub_authorities = parts
            .map(|p| p.parse::<u32>())
            .collect::<std::result::Result<Vec<u32>, _>>()
            .map_err(|_| bad("each sub-authority must be a number from 0 to 4294967295"))?;
        if sub_authorities.len() > MAX_SUB_AUTHORITIES {
            return Err(bad("a SID has at most 15 sub-authorities"));
        }
        Ok(Sid {
            revision,
            authority,
            sub_authorities,
        })
    }

    /// Parses a `--sid` argument: it must be a machine SID, `S-1-5-21-A-B-C`.
    pub fn parse_machine_sid(text: &str) -> Result<Sid> {
        let sid = Sid::parse(text)?;
        if !sid.is_machine_domain_sid() {
            return Err(SidError::NotMachineSid {
                text: text.to_string(),
            });
        }
        Ok(sid)
    }

    /// Reads the binary form (revision, count, 6-byte big-endian authority, little-endian
    /// sub-authorities). Trailing bytes after the SID are ignored.
    pub fn from_bytes(bytes: &[u8]) -> Result<Sid> {
        let bad = |why: &'static str| SidError::BadBytes { why };
        if bytes.len() < 8 {
            return Err(bad("shorter than 8 bytes"));
        }
        let count = bytes[1] as usize;
        if count > MAX_SUB_AUTHORITIES {
            return Err(bad("more than 15 sub-authorities"));
        }
        if bytes.len() < 8 + 4 * count {
            return Err(bad("shorter than its sub-authority count says"));
        }
        let authority = bytes[2..8]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let sub_authorities = bytes[8..8 + 4 * count]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Sid {
            revision: bytes[0],
            authority,
            sub_authorities,
        })
    }

    /// The binary form, as Windows stores SIDs in the registry.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![self.revision, self.sub_authorities.len() as u8];
        out.extend_from_slice(&self.authority.to_be_bytes()[2..8]);
        for sub in &self.sub_authorities {
            out.extend_from_slice(&sub.to_le_bytes());
        }
        out
    }

    /// A new random machine SID `S-1-5-21-A-B-C`, from the operating system's random source.
    pub fn random_machine_sid() -> Result<Sid> {
        Sid::random_machine_sid_from(&Entropy::default())
    }

    /// A new machine SID `S-1-5-21-A-B-C` drawn from `entropy` (the same SID again for the
    /// same seed).
    pub fn random_machine_sid_from(entropy: &Entropy) -> Result<Sid> {
        let mut bytes = [0u8; 12];
        entropy.fill(&mut bytes).map_err(SidError::NoRandom)?;
        let mut subs = vec![21];
        subs.extend(
            bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        Ok(Sid {
            revision: 1,
            authority: 5,
            sub_authorities: subs,
        })
    }

    /// `true` for a machine (or domain) SID: `S-1-5-21-A-B-C`.
    pub fn is_machine_domain_sid(&self) -> bool {
        self.revision == 1
            && self.authority == 5
            && self.sub_authorities.len() == 4
            && self.sub_authorities[0] == 21
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Windows prints authorities of 2^32 and above in hex.
        if self.authority >= 1 << 32 {
            write!(f, "S-{}-{:#x}", self.revision, self.authority)?;
        } else {
            write!(f, "S-{}-{}", self.revision, self.authority)?;
        }
        for sub in &self.sub_authorities {
            write!(f, "-{sub}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for Sid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::str::FromStr for Sid {
    type Err = SidError;
    fn from_str(text: &str) -> Result<Sid> {
        Sid::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_round_trip() {
        let text = "S-1-5-21-4042553000-2217363381-1479057140";
        let sid = Sid::parse(text).unwrap();
        assert_eq!(sid.to_string(), text);
        assert!(sid.is_machine_domain_sid());
        let bytes = sid.to_bytes();
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[..8], &[1, 4, 0, 0, 0, 0, 0, 5]);
        assert_eq!(Sid::from_bytes(&bytes).unwrap(), sid);
    }

    #[test]
    fn machine_sid_validation() {
        assert!(Sid::parse_machine_sid("S-1-5-21-1-2-3").is_ok());
        for bad in [
            "S-1-5-21-1-2",
            "S-1-5-21-1-2-3-4",
            "S-1-5-32-544",
            "S-1-5-21-1-2-x",
            "1-5-21-1-2-3",
            "S-1-5-21-1-2-99999999999",
            "",
        ] {
            assert!(Sid::parse_machine_sid(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn random_sids_differ_and_are_machine_sids() {
        let a = Sid::random_machine_sid().unwrap();
        let b = Sid::random_machine_sid().unwrap();
        assert!(a.is_machine_domain_sid());
        assert_ne!(a, b);
    }

    #[test]
    fn a_seed_gives_the_same_machine_sid_again() {
        let sid = |seed| Sid::random_machine_sid_from(&Entropy::new(Some(seed), None)).unwrap();
        assert_eq!(sid(7), sid(7));
        assert_ne!(sid(7), sid(8));
        assert!(sid(7).is_machine_domain_sid());
    }

    #[test]
    fn short_binary_is_an_error() {
        assert!(Sid::from_bytes(&[1, 4, 0, 0, 0, 0, 0, 5, 21, 0]).is_err());
        assert!(Sid::from_bytes(&[]).is_err());
    }
}
