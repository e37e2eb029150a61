//! [`DomainSwap`]: one account-domain SID replaced by another wherever a SID of that domain
//! appears: a [`Sid`], a security descriptor's owner, group and ACE trustees, a binary SID
//! inside any bytes, and the SID's text inside a string.
//!
//! A local account's SID is its machine's account-domain SID (`S-1-5-21-A-B-C`) followed by the
//! account's relative ID; the domain SID itself names the machine. Giving a machine a new SID
//! means putting the new `A-B-C` wherever the old one stands, RIDs kept. Both SIDs have the same
//! number of sub-authorities, so a binary SID keeps its length and a descriptor its layout; the
//! text form may grow or shrink with the number of digits.

use crate::security_descriptor::{SecurityDescriptor, SecurityDescriptorError};
use crate::sid::{Sid, SidError};

/// The revision, count and NT authority bytes every account-domain SID starts with, before its
/// count byte (which is 4 for the domain itself and 5 for an account in it).
const SID_REVISION: u8 = 1;
const NT_AUTHORITY: [u8; 6] = [0, 0, 0, 0, 0, 5];
const SECURITY_NT_NON_UNIQUE: [u8; 4] = 21u32.to_le_bytes();

/// Replaces the account-domain SID `old` by `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSwap {
    old: Sid,
    new: Sid,
    old_text: String,
    new_text: String,
    /// The old domain's first number (`A` of `S-1-5-21-A-B-C`) in each form the swap finds it
    /// in: 4 bytes little-endian, ASCII digits, UTF-16 LE digits.
    first_number_forms: [Vec<u8>; 3],
}

impl DomainSwap {
    /// A swap from `old` to `new`, both machine (account-domain) SIDs `S-1-5-21-A-B-C`.
    pub fn new(old: &Sid, new: &Sid) -> Result<DomainSwap, SidError> {
        for sid in [old, new] {
            if !sid.is_machine_domain_sid() {
                return Err(SidError::NotMachineSid {
                    text: sid.to_string(),
                });
            }
        }
        Ok(DomainSwap {
            old: old.clone(),
            new: new.clone(),
            old_text: old.to_string(),
            new_text: new.to_string(),
            first_number_forms: {
                let first = old.sub_authorities.get(1).copied().unwrap_or_default();
                let digits = first.to_string();
                [
                    first.to_le_bytes().to_vec(),
                    digits.as_bytes().to_vec(),
                    crate::utf16::encode_le(&digits),
                ]
            },
        })
    }

    /// The domain SID being replaced.
    pub fn old(&self) -> &Sid {
        &self.old
    }

    /// The domain SID put in its place.
    pub fn new_sid(&self) -> &Sid {
        &self.new
    }

    /// `false` when `bytes` cannot hold the old domain's SID in any form the swap replaces
    /// (binary, ASCII or UTF-16 text): each holds the domain's first number, looked for alone.
    /// Most of a hive's values hold none, and are so passed over in one scan each.
    pub fn may_appear_in(&self, bytes: &[u8]) -> bool {
        !self.is_identity()
            && self
                .first_number_forms
                .iter()
                .any(|form| find_bytes(bytes, form, 0).is_some())
    }

    /// The byte strings one of which every place holding the old domain's SID holds (its
    /// first number as 4 bytes little-endian, ASCII digits and UTF-16 LE digits): what
    /// [`DomainSwap::may_appear_in`] looks for, to search a whole hive with at once.
    pub fn first_number_forms(&self) -> &[Vec<u8>] {
        if self.is_identity() {
            return &[];
        }
        &self.first_number_forms
    }

    /// `true` when the swap changes nothing (the two SIDs are equal).
    pub fn is_identity(&self) -> bool {
        self.old == self.new
    }

    /// `true` for the old domain SID and every SID under it (`S-1-5-21-A-B-C-...`).
    pub fn is_in_old_domain(&self, sid: &Sid) -> bool {
        sid.revision == self.old.revision
            && sid.authority == self.old.authority
            && sid.sub_authorities.len() >= self.old.sub_authorities.len()
            && sid.sub_authorities[..self.old.sub_authorities.len()] == self.old.sub_authorities
    }

    /// `sid` moved to the new domain, or `None` when it is not in the old one.
    pub fn swap_sid(&self, sid: &Sid) -> Option<Sid> {
        if !self.is_in_old_domain(sid) || self.is_identity() {
            return None;
        }
        let mut swapped = sid.clone();
        swapped.sub_authorities[..self.new.sub_authorities.len()]
            .copy_from_slice(&self.new.sub_authorities);
        Some(swapped)
    }

    /// The descriptor `bytes` with every SID in the old domain moved to the new one (owner,
    /// group, ACE trustees, and SIDs inside conditional ACE data, which stores them in binary
    /// too), or `None` when there is none. The SIDs are replaced where they stand, so the
    /// result has the same length and layout as `bytes`, whatever gaps the descriptor has.
    pub fn swap_in_descriptor(
        &self,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, SecurityDescriptorError> {
        SecurityDescriptor::parse(bytes)?;
        let mut swapped = bytes.to_vec();
        if self.swap_in_bytes(&mut swapped) == 0 {
            return Ok(None);
        }
        Ok(Some(swapped))
    }

    /// Replaces, in place, every binary SID in the old domain found anywhere in `bytes` (a SID
    /// header `01 nn 00 00 00 00 00 05 15 00 00 00` with `nn` at least 4, then the old domain's
    /// three numbers); returns how many were replaced. Bytes that only look like such a SID
    /// are replaced too: use it on data known to hold SIDs.
    pub fn swap_in_bytes(&self, bytes: &mut [u8]) -> usize {
        if self.is_identity() {
            return 0;
        }
        let old = self.old.to_bytes();
        let new = self.new.to_bytes();
        let mut count = 0;
        let mut at = 0;
        while at + old.len() <= bytes.len() {
            // A SID of the domain holds the domain's first number at +12: go to the next byte
            // that could begin it, instead of testing every position.
            let last = bytes.len() - old.len() + 12;
            match bytes[at + 12..=last].iter().position(|&b| b == old[12]) {
                Some(skip) => at += skip,
                None => break,
            }
            if Self::is_domain_sid_at(bytes, at, &old) {
                bytes[at + 12..at + old.len()].copy_from_slice(&new[12..]);
                count += 1;
                at += old.len();
            } else {
                at += 1;
            }
        }
        count
    }

    /// `true` when a SID of the domain whose 24-byte form is `domain` starts at `at`.
    fn is_domain_sid_at(bytes: &[u8], at: usize, domain: &[u8]) -> bool {
        bytes[at] == SID_REVISION
            && bytes[at + 1] >= 4
            && bytes[at + 1] <= 15
            && bytes[at + 2..at + 8] == NT_AUTHORITY
            && bytes[at + 8..at + 12] == SECURITY_NT_NON_UNIQUE
            && bytes[at + 12..at + domain.len()] == domain[12..]
            && at + 8 + 4 * usize::from(bytes[at + 1]) <= bytes.len()
    }

    /// `true` when the new SID's text is as long as the old one's (`A`, `B` and `C` have as many
    /// digits in all), so a written SID can be replaced where it stands among other bytes.
    pub fn text_keeps_length(&self) -> bool {
        self.old_text.len() == self.new_text.len()
    }

    /// How many old-domain SIDs are written in `bytes` as ASCII or UTF-16 LE text, at any
    /// offset, among other bytes (the rules of [`DomainSwap::swap_in_text`] for where a match
    /// starts and ends).
    pub fn count_text_in_bytes(&self, bytes: &[u8]) -> usize {
        self.text_matches_in_bytes(bytes).len()
    }

    /// Replaces, in place, every old-domain SID written in `bytes` as ASCII or UTF-16 LE text
    /// (see [`DomainSwap::count_text_in_bytes`]) when [`DomainSwap::text_keeps_length`]; returns
    /// how many were replaced (none when the lengths differ: the bytes around would have to
    /// move, which only the structure holding them could say how to do).
    pub fn swap_text_in_bytes(&self, bytes: &mut [u8]) -> usize {
        if !self.text_keeps_length() {
            return 0;
        }
        let matches = self.text_matches_in_bytes(bytes);
        for &(at, unit) in &matches {
            // The first character (`S` or `s`) stays as it was; the rest is the new text.
            for (index, byte) in self.new_text.bytes().enumerate().skip(1) {
                bytes[at + index * unit] = byte;
                if unit == 2 {
                    bytes[at + index * unit + 1] = 0;
                }
            }
        }
        matches.len()
    }

    /// Where the old SID's text starts in `bytes`, with its code unit size (1 for ASCII, 2 for
    /// UTF-16 LE).
    fn text_matches_in_bytes(&self, bytes: &[u8]) -> Vec<(usize, usize)> {
        if self.is_identity() {
            return Vec::new();
        }
        let needle = self.old_text.as_bytes();
        let mut found = Vec::new();
        for unit in [1usize, 2] {
            let char_at = |at: usize| -> Option<u8> {
                let byte = *bytes.get(at)?;
                (unit == 1 || *bytes.get(at + 1)? == 0).then_some(byte)
            };
            let span = needle.len() * unit;
            let mut at = 0;
            while at + span <= bytes.len() {
                // Only an `S` or `s` can start a match: go to the next one.
                match bytes[at..].iter().position(|&b| b == b'S' || b == b's') {
                    Some(skip) if at + skip + span <= bytes.len() => at += skip,
                    _ => break,
                }
                let matches = needle.iter().enumerate().all(|(index, &wanted)| {
                    char_at(at + index * unit)
                        .is_some_and(|c| c == wanted || index == 0 && c == b's')
                });
                let before = at.checked_sub(unit).and_then(char_at);
                if matches && stands_alone(before, char_at(at + span)) {
                    found.push((at, unit));
                    at += span;
                } else {
                    at += 1;
                }
            }
        }
        found
    }

    /// `text` with every old-domain SID written in it (`S-1-5-21-A-B-C`, alone or followed by
    /// `-RID`, the `S` in either case) replaced, or `None` when there is none. A match must not
    /// be part of a longer number or word: `S-1-5-21-A-B-C5` is another SID.
    pub fn swap_in_text(&self, text: &str) -> Option<String> {
        if self.is_identity() {
            return None;
        }
        let bytes = text.as_bytes();
        let needle = self.old_text.as_bytes();
        let mut out = String::new();
        let mut copied = 0;
        let mut from = 0;
        while let Some(start) = find_sid_text(bytes, needle, from) {
            let end = start + needle.len();
            let before = start.checked_sub(1).map(|at| bytes[at]);
            if stands_alone(before, bytes.get(end).copied()) {
                out.push_str(&text[copied..start]);
                out.push_str(&self.new_text);
                copied = end;
            }
            from = end;
        }
        if copied == 0 {
            return None;
        }
        out.push_str(&text[copied..]);
        Some(out)
    }
}

/// Whether SID text found between the characters `before` and `after` (`None`: none there, or
/// a UTF-16 unit that is not one byte) stands on its own: not the end of a longer number, word or SID, nor followed by more
/// digits or letters (`S-1-5-21-A-B-C5` is another SID).
fn stands_alone(before: Option<u8>, after: Option<u8>) -> bool {
    before.is_none_or(|c| !c.is_ascii_alphanumeric() && c != b'-')
        && after.is_none_or(|c| !c.is_ascii_alphanumeric())
}

/// Where `needle` (not empty) next starts in `bytes` at or after `from`.
fn find_bytes(bytes: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(bytes.get(from..)?, needle).map(|at| from + at)
}

/// Where the SID text `needle` (`S-1-5-21-...`: letters only in its `S`) next starts in
/// `bytes` at or after `from`, its `S` in either case: the rest of it found, then the letter.
fn find_sid_text(bytes: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let (_, tail) = needle.split_first()?;
    let mut at = from;
    loop {
        let tail_at = find_bytes(bytes, tail, at + 1)?;
        if matches!(bytes[tail_at - 1], b'S' | b's') {
            return Some(tail_at - 1);
        }
        at = tail_at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swap() -> DomainSwap {
        DomainSwap::new(
            &Sid::parse("S-1-5-21-1111111111-2222222222-333333333").unwrap(),
            &Sid::parse("S-1-5-21-4-55-666").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_value_that_cannot_hold_the_old_sid_is_told_apart() {
        let swap = swap();
        let sid = Sid::parse("S-1-5-21-1111111111-2222222222-333333333-500").unwrap();
        let mut binary = vec![7u8; 9];
        binary.extend(sid.to_bytes());
        assert!(swap.may_appear_in(&binary));
        assert!(swap.may_appear_in(b"x s-1-5-21-1111111111-2222222222-333333333 y"));
        assert!(swap.may_appear_in(&crate::utf16::encode_le(&sid.to_string())));
        assert!(!swap.may_appear_in(b"S-1-5-21-4-55-666 and 111111111 (nine ones)"));
        assert!(!swap.may_appear_in(&crate::utf16::encode_le("C:\\Windows\\System32")));
        assert!(!swap.may_appear_in(&[]));
    }

    #[test]
    fn sids_in_the_domain_move_with_their_rid() {
        let swap = swap();
        let account = Sid::parse("S-1-5-21-1111111111-2222222222-333333333-1001").unwrap();
        assert_eq!(
            swap.swap_sid(&account).unwrap().to_string(),
            "S-1-5-21-4-55-666-1001"
        );
        assert_eq!(
            swap.swap_sid(swap.old()).unwrap().to_string(),
            "S-1-5-21-4-55-666"
        );
        for other in [
            "S-1-5-32-544",
            "S-1-5-21-1111111111-2222222222-333333334-500",
            "S-1-5-18",
        ] {
            assert_eq!(swap.swap_sid(&Sid::parse(other).unwrap()), None, "{other}");
        }
    }

    #[test]
    fn only_machine_sids_can_be_swapped() {
        let domain = Sid::parse("S-1-5-21-1-2-3").unwrap();
        let account = Sid::parse("S-1-5-21-1-2-3-500").unwrap();
        assert!(DomainSwap::new(&domain, &account).is_err());
        assert!(DomainSwap::new(&account, &domain).is_err());
    }

    #[test]
    fn binary_sids_are_swapped_wherever_they_stand() {
        let swap = swap();
        let account = Sid::parse("S-1-5-21-1111111111-2222222222-333333333-500").unwrap();
        let mut bytes = vec![0xAA, 0xBB];
        bytes.extend(account.to_bytes());
        bytes.extend(swap.old().to_bytes());
        // The domain's numbers without a SID header are not a SID.
        bytes.extend(&swap.old().to_bytes()[12..]);
        let before = bytes.clone();
        assert_eq!(swap.swap_in_bytes(&mut bytes), 2);
        assert_eq!(bytes.len(), before.len());
        assert_eq!(
            Sid::from_bytes(&bytes[2..]).unwrap().to_string(),
            "S-1-5-21-4-55-666-500"
        );
        assert_eq!(
            Sid::from_bytes(&bytes[30..]).unwrap().to_string(),
            "S-1-5-21-4-55-666"
        );
        assert_eq!(bytes[54..], before[54..]);
        assert_eq!(swap.swap_in_bytes(&mut bytes), 0);
    }

    #[test]
    fn a_sid_cut_short_at_the_end_is_left_alone() {
        let swap = swap();
        // Says five sub-authorities but the buffer ends after four.
        let mut bytes = swap.old().to_bytes();
        bytes[1] = 5;
        let before = bytes.clone();
        assert_eq!(swap.swap_in_bytes(&mut bytes), 0);
        assert_eq!(bytes, before);
    }

    #[test]
    fn text_sids_are_swapped_only_whole() {
        let swap = swap();
        let text = "HKU\\S-1-5-21-1111111111-2222222222-333333333-1001\\x; \
                    s-1-5-21-1111111111-2222222222-333333333; \
                    S-1-5-21-1111111111-2222222222-3333333331; \
                    S-1-5-21-1111111111-2222222222-333333333";
        assert_eq!(
            swap.swap_in_text(text).unwrap(),
            "HKU\\S-1-5-21-4-55-666-1001\\x; \
             S-1-5-21-4-55-666; \
             S-1-5-21-1111111111-2222222222-3333333331; \
             S-1-5-21-4-55-666"
        );
        assert_eq!(swap.swap_in_text("S-1-5-32-544"), None);
        assert_eq!(
            swap.swap_in_text("1S-1-5-21-1111111111-2222222222-333333333"),
            None
        );
    }

    #[test]
    fn descriptors_keep_their_length_and_other_trustees() {
        use crate::security_descriptor::{Ace, Acl, SecurityDescriptor};
        let swap = swap();
        let account = Sid::parse("S-1-5-21-1111111111-2222222222-333333333-1001").unwrap();
        let admins = Sid::parse("S-1-5-32-544").unwrap();
        let descriptor = SecurityDescriptor::new(
            0x8004,
            Some(account.clone()),
            Some(account.clone()),
            None,
            Some(Acl::new(vec![
                Ace::allowed(0, 0x1f01ff, admins.clone()),
                Ace::allowed(0, 0x1f01ff, account.clone()),
            ])),
        );
        let bytes = descriptor.to_bytes().unwrap();
        let swapped = swap.swap_in_descriptor(&bytes).unwrap().unwrap();
        assert_eq!(swapped.len(), bytes.len());
        let parsed = SecurityDescriptor::parse(&swapped).unwrap();
        let new_account = Sid::parse("S-1-5-21-4-55-666-1001").unwrap();
        assert_eq!(parsed.owner, Some(new_account.clone()));
        assert_eq!(parsed.group, Some(new_account.clone()));
        let trustees: Vec<_> = parsed
            .dacl
            .unwrap()
            .aces
            .iter()
            .map(|a| a.sid().cloned())
            .collect();
        assert_eq!(trustees, vec![Some(admins), Some(new_account)]);
        assert_eq!(swap.swap_in_descriptor(&swapped).unwrap(), None);
    }

    #[test]
    fn text_among_other_bytes_is_replaced_only_when_it_keeps_its_length() {
        let same_length = DomainSwap::new(
            &Sid::parse("S-1-5-21-1111111111-2222222222-333333333").unwrap(),
            &Sid::parse("S-1-5-21-4044444444-3555555555-666666666").unwrap(),
        )
        .unwrap();
        assert!(same_length.text_keeps_length() && !swap().text_keeps_length());
        let old = "S-1-5-21-1111111111-2222222222-333333333-1001";
        let mut bytes = vec![0x10, 0x00, 0xFF];
        bytes.extend(old.encode_utf16().flat_map(u16::to_le_bytes));
        bytes.extend([0, 0, 0x7F]);
        bytes.extend(old.to_ascii_lowercase().as_bytes());
        bytes.extend(b"\\x S-1-5-21-1111111111-2222222222-3333333334");
        let original = bytes.clone();
        assert_eq!(same_length.count_text_in_bytes(&bytes), 2);
        assert_eq!(swap().swap_text_in_bytes(&mut bytes), 0);
        assert_eq!(bytes, original);
        assert_eq!(same_length.swap_text_in_bytes(&mut bytes), 2);
        let new = "S-1-5-21-4044444444-3555555555-666666666-1001";
        let mut expected = vec![0x10, 0x00, 0xFF];
        expected.extend(new.encode_utf16().flat_map(u16::to_le_bytes));
        expected.extend([0, 0, 0x7F]);
        expected.extend(format!("s{}", &new[1..]).as_bytes());
        expected.extend(b"\\x S-1-5-21-1111111111-2222222222-3333333334");
        assert_eq!(bytes, expected);
        assert_eq!(same_length.count_text_in_bytes(&bytes), 0);
    }
}
