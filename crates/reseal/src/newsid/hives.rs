//! The generic scan of a hive for the old domain SID: key security records (sk), key names,
//! value names and value data (binary SIDs anywhere in the data, and the SID's text in UTF-16
//! data), each replacement planned through the [`Plan`] helpers.

use reseal_hive::{Hive, Key, KeyFilter, ValueType};
use reseal_nt::domain_swap::DomainSwap;
use reseal_nt::utf16;

use crate::error::{Error, Result};
use crate::image::Image;
use crate::plan::{Origin, Plan};

/// How deep a key may lie below the root (Windows allows 512 levels).
const MAX_KEY_DEPTH: usize = 512;

/// Where the scan found the old domain SID in one hive.
#[derive(Debug, Default)]
struct Findings {
    /// Values whose data names it: key path, value name, type, the new data.
    data: Vec<(String, String, ValueType, Vec<u8>)>,
    /// Values whose name holds it: key path, old name, new name.
    names: Vec<(String, String, String)>,
    /// Keys whose name holds it, deepest first: key path, new name.
    keys: Vec<(String, String)>,
    /// Values whose data keeps it written as text among other bytes, where the new SID's text
    /// would not fit: key path, value name.
    kept: Vec<(String, String)>,
    /// The root key's name, when it holds it and the new name would not have its length.
    kept_root_name: Option<String>,
}

/// Plans, in `hive`, the replacement of the old domain SID of `swap` in every key security
/// record (one change for the hive, with their number), every value's data,
/// every value name and every key name (the root key's only when the new name has the same
/// length: its cell is not moved; Windows names a loaded hive's root after where it loads it,
/// so the stored name is not used). Values first, then keys renamed deepest first, so
/// every change names its key by the path it has when the change is made.
pub fn plan_hive(
    image: &mut Image,
    plan: &mut Plan,
    origins: &Origins,
    hive: &str,
    swap: &DomainSwap,
) -> Result<()> {
    let findings = match image.hive(hive)? {
        Some(loaded) => scan(loaded, swap).map_err(|e| Error::from_hive(hive, e))?,
        None => return Ok(()),
    };
    plan.swap_key_security(image, origins.security, hive, swap)?;
    for (key, name, value_type, data) in &findings.data {
        plan.set_value(image, origins.data, hive, key, name, *value_type, data)?;
    }
    for (key, old_name, new_name) in &findings.names {
        let Some((value_type, data)) = image.value(hive, key, old_name)? else {
            continue;
        };
        plan.delete_value(image, origins.names, hive, key, old_name)?;
        plan.set_value(image, origins.names, hive, key, new_name, value_type, &data)?;
    }
    for (key, new_name) in &findings.keys {
        plan.rename_key(image, origins.keys, hive, key, new_name)?;
    }
    if let Some(root_name) = &findings.kept_root_name {
        plan.note(
            super::PROVIDER,
            format!(
                "{hive}: the root key keeps its name {root_name:?} (Windows does not use it), \
                 since the new SID's text has another length"
            ),
        );
    }
    if !findings.kept.is_empty() {
        let values: Vec<String> = findings
            .kept
            .iter()
            .map(|(key, name)| format!("{key} {name:?}"))
            .collect();
        plan.note(
            super::PROVIDER,
            format!(
                "{hive}: {} keep the old SID written among binary data, since the new SID's text \
                 has another length (give a SID whose numbers have as many digits to replace it \
                 there too): {}",
                values.len(),
                values.join(", ")
            ),
        );
    }
    Ok(())
}

/// The origins of the three kinds of change, one source each.
#[derive(Debug, Clone, Copy)]
pub struct Origins {
    /// Key security records.
    pub security: Origin,
    /// Value data.
    pub data: Origin,
    /// Value names.
    pub names: Origin,
    /// Key names.
    pub keys: Origin,
}

/// Finds every place of `hive` that holds the old domain SID: first the keys whose cells may
/// hold it, found by reading the cells in file order ([`Hive::keys_possibly_holding`]),
/// walked to from the root; when some key found there is not reached that way (its parent
/// fields lead elsewhere than the tree does), every key of the tree.
fn scan(hive: &Hive, swap: &DomainSwap) -> reseal_hive::Result<Findings> {
    let filter = hive.keys_possibly_holding(swap.first_number_forms())?;
    let (findings, reached) = walk(hive, swap, Some(&filter))?;
    if reached == filter.len() {
        return Ok(findings);
    }
    Ok(walk(hive, swap, None)?.0)
}

/// Walks the keys of `hive` (without recursion, so a deep hive cannot exhaust the stack):
/// every key, or with a `filter` only the keys that lead to the ones it found, looking at the
/// names and values of those. Returns the findings and how many keys the filter found were
/// reached.
fn walk(
    hive: &Hive,
    swap: &DomainSwap,
    filter: Option<&KeyFilter>,
) -> reseal_hive::Result<(Findings, usize)> {
    let mut findings = Findings::default();
    // Distinct keys: a damaged hive may list one key twice.
    let mut reached = std::collections::HashSet::new();
    let mut renames: Vec<(usize, String, String)> = Vec::new();
    let root = hive.root()?;
    let root_name = root.name()?;
    if let Some(new_name) = swap.swap_in_text(&root_name) {
        // The root's cell is not moved, so only a name of the same length fits.
        if new_name.len() == root_name.len() {
            renames.push((0, String::new(), new_name));
        } else {
            findings.kept_root_name = Some(root_name);
        }
    }
    let mut pending: Vec<(usize, String, Key<'_>)> = vec![(0, String::new(), root)];
    while let Some((depth, path, key)) = pending.pop() {
        let look = match filter {
            Some(filter) => filter.may_hold(&key),
            None => true,
        };
        if look && filter.is_some() {
            reached.insert(key.cell_offset());
        }
        if look {
            scan_values(&key, &path, swap, &mut findings)?;
        }
        if depth >= MAX_KEY_DEPTH {
            return Err(reseal_hive::Error::corrupt(
                u64::from(key.cell_offset()),
                format!("key {path} lies more than {MAX_KEY_DEPTH} levels deep"),
            ));
        }
        for subkey in key.subkeys()? {
            if filter.is_some_and(|filter| !filter.leads_to(&subkey)) {
                continue;
            }
            let name = subkey.name()?;
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}\\{name}")
            };
            if let Some(new_name) = swap.swap_in_text(&name) {
                renames.push((depth + 1, child.clone(), new_name));
            }
            pending.push((depth + 1, child, subkey));
        }
    }
    // Deepest first: a key is renamed before the keys above it, so its path is still valid.
    renames.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    findings.keys = renames
        .into_iter()
        .map(|(_, path, name)| (path, name))
        .collect();
    Ok((findings, reached.len()))
}

/// The values of `key` (at `path`) whose data or name holds the old domain SID.
fn scan_values(
    key: &Key<'_>,
    path: &str,
    swap: &DomainSwap,
    findings: &mut Findings,
) -> reseal_hive::Result<()> {
    for value in key.values()? {
        let name = value.name()?;
        let value_type = value.value_type()?;
        let data = value.data()?;
        let swapped = swapped_data(value_type, &data, swap);
        // With the new SID's text as long as the old, swapped_data replaced every match.
        let kept = swapped.as_deref().unwrap_or(&data);
        if !swap.text_keeps_length() && swap.count_text_in_bytes(kept) > 0 {
            findings.kept.push((path.to_string(), name.clone()));
        }
        if let Some(data) = swapped {
            findings
                .data
                .push((path.to_string(), name.clone(), value_type, data));
        }
        if let Some(new_name) = swap.swap_in_text(&name) {
            findings.names.push((path.to_string(), name, new_name));
        }
    }
    Ok(())
}

/// The value of type `value_type` holding `data`, with every binary SID of the old domain
/// replaced (whatever the type: SAM and LSA store SIDs in values of their own types), and
/// every written one: in a string value (REG_SZ, REG_EXPAND_SZ, REG_MULTI_SZ, REG_LINK)
/// whatever the new text's length; in any other value (ASCII or UTF-16 text among binary
/// data, as AppCompatCache holds paths) only when the new text has the same length, since
/// the bytes after it cannot move. `None` when nothing changes.
pub fn swapped_data(value_type: ValueType, data: &[u8], swap: &DomainSwap) -> Option<Vec<u8>> {
    if !swap.may_appear_in(data) {
        return None;
    }
    let mut swapped = data.to_vec();
    let mut changed = swap.swap_in_bytes(&mut swapped) > 0;
    let is_string = [
        ValueType::SZ,
        ValueType::EXPAND_SZ,
        ValueType::MULTI_SZ,
        ValueType::LINK,
    ]
    .contains(&value_type);
    if is_string && swapped.len() % 2 == 0 {
        if let Ok(text) = utf16::decode_le(&swapped) {
            if let Some(new_text) = swap.swap_in_text(&text) {
                swapped = utf16::encode_le(&new_text);
                changed = true;
            }
        }
    }
    changed |= swap.swap_text_in_bytes(&mut swapped) > 0;
    changed.then_some(swapped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reseal_nt::Sid;

    fn swap() -> DomainSwap {
        DomainSwap::new(
            &Sid::parse_machine_sid("S-1-5-21-1-2-3").unwrap(),
            &Sid::parse_machine_sid("S-1-5-21-1000-2000-3000").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn data_is_swapped_as_binary_and_as_text() {
        let old = Sid::parse("S-1-5-21-1-2-3-1001").unwrap().to_bytes();
        let mut data = vec![0xAA, 0xBB];
        data.extend_from_slice(&old);
        let swapped = swapped_data(ValueType::BINARY, &data, &swap()).unwrap();
        assert_eq!(
            &swapped[2..],
            Sid::parse("S-1-5-21-1000-2000-3000-1001")
                .unwrap()
                .to_bytes()
                .as_slice()
        );
        let text = utf16::encode_le("C:\\x\\S-1-5-21-1-2-3-500\0");
        assert_eq!(
            swapped_data(ValueType::SZ, &text, &swap()).unwrap(),
            utf16::encode_le("C:\\x\\S-1-5-21-1000-2000-3000-500\0")
        );
        assert_eq!(
            swapped_data(ValueType::SZ, &utf16::encode_le("S-1-5-21-1-2-33"), &swap()),
            None
        );
        assert_eq!(swapped_data(ValueType::BINARY, b"abc", &swap()), None);
        // Text of another length among binary data stays: the bytes after it cannot move.
        assert_eq!(swapped_data(ValueType::BINARY, &text, &swap()), None);
    }

    #[test]
    fn a_key_whose_parent_field_leads_elsewhere_is_found_by_the_whole_walk() {
        let swap = DomainSwap::new(
            &Sid::parse_machine_sid("S-1-5-21-111111-222222-333333").unwrap(),
            &Sid::parse_machine_sid("S-1-5-21-444444-555555-666666").unwrap(),
        )
        .unwrap();
        let old = Sid::parse("S-1-5-21-111111-222222-333333-1001")
            .unwrap()
            .to_bytes();
        let mut hive = Hive::new_empty("ROOT", 6);
        hive.create_key("A\\B").unwrap();
        hive.create_key("Other").unwrap();
        hive.set_value("A\\B", "sid", ValueType::BINARY, &old)
            .unwrap();
        let mut bytes = hive.commit();
        let offset_of = |path: &str| {
            let hive = Hive::from_bytes(bytes.clone()).unwrap();
            let offset = hive.key(path).unwrap().unwrap().cell_offset();
            offset
        };
        let (b, other) = (offset_of("A\\B"), offset_of("Other"));
        // B's parent field (16 bytes into the key node, after the cell's 4-byte size) names Other.
        let at = reseal_hive::base_block::BASE_BLOCK_SIZE + b as usize + 4 + 16;
        bytes[at..at + 4].copy_from_slice(&other.to_le_bytes());
        let hive = Hive::from_bytes(bytes).unwrap();
        let filter = hive
            .keys_possibly_holding(swap.first_number_forms())
            .unwrap();
        assert_eq!(filter.len(), 1);
        let (findings, reached) = walk(&hive, &swap, Some(&filter)).unwrap();
        assert_eq!((reached, findings.data.len()), (0, 0));
        let findings = scan(&hive, &swap).unwrap();
        let found: Vec<_> = findings
            .data
            .iter()
            .map(|(key, name, ..)| (key.as_str(), name.as_str()))
            .collect();
        assert_eq!(found, [("A\\B", "sid")]);
    }
}
