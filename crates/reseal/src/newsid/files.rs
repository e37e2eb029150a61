//! Files that hold the SID as text: Task Scheduler's task files under `Windows\System32\Tasks`
//! (XML, UTF-16 LE with a byte-order mark; a task run as a local account names it by SID in
//! `<Principal><UserId>`). Each file that names the old domain is replaced through the target,
//! keeping its encoding, security descriptor and attributes; the others are not written.

use reseal_nt::domain_swap::DomainSwap;
use reseal_nt::utf16;

use crate::error::Result;
use crate::image::{join_path, Image};
use crate::limits;
use crate::plan::{Origin, Plan};

/// Where Task Scheduler keeps its tasks, one XML file per task, in folders.
pub const TASKS_DIR: &str = r"Windows\System32\Tasks";
/// How deep task folders may nest before the scan refuses to go further (Task Scheduler's own
/// folders are two or three levels deep).
const MAX_DEPTH: usize = 64;
const UTF8_BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Plans the rewrite of every task file that names the old domain of `swap`.
pub fn plan_task_files(
    image: &mut Image,
    plan: &mut Plan,
    origin: Origin,
    swap: &DomainSwap,
) -> Result<()> {
    let mut pending = vec![(0, TASKS_DIR.to_string())];
    while let Some((depth, dir)) = pending.pop() {
        let Some(mut entries) = image.list_dir(&dir)? else {
            continue;
        };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for entry in entries {
            let path = join_path(&dir, &entry.name);
            if entry.is_dir {
                if depth < MAX_DEPTH {
                    pending.push((depth + 1, path));
                }
                continue;
            }
            let Some(contents) = image.read_file(&path, limits::TASK_FILE)? else {
                continue;
            };
            if let Some(swapped) = swapped_text_file(&contents, swap) {
                plan.write_file(image, origin, &path, &swapped, false)?;
            }
        }
    }
    Ok(())
}

/// The text file `contents` with every written SID of the old domain replaced, in the same
/// encoding (UTF-16 LE with its byte-order mark, or UTF-8 with or without one); `None` when
/// nothing changes or the bytes are not text in one of these encodings.
pub fn swapped_text_file(contents: &[u8], swap: &DomainSwap) -> Option<Vec<u8>> {
    if let Some(body) = contents.strip_prefix(&utf16::BOM) {
        if body.len() % 2 != 0 {
            return None;
        }
        let text = utf16::decode_le(body).ok()?;
        let swapped = swap.swap_in_text(&text)?;
        return Some(utf16::encode_le_with_bom(&swapped));
    }
    let (bom, body) = match contents.strip_prefix(&UTF8_BOM) {
        Some(body) => (UTF8_BOM.as_slice(), body),
        None => (&[][..], contents),
    };
    let text = std::str::from_utf8(body).ok()?;
    let swapped = swap.swap_in_text(text)?;
    Some([bom, swapped.as_bytes()].concat())
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
    fn task_xml_keeps_its_encoding() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\r\n<Task><Principals><Principal \
                   id=\"Author\"><UserId>S-1-5-21-1-2-3-1001</UserId></Principal></Principals></Task>";
        let file = [utf16::BOM.as_slice(), &utf16::encode_le(xml)].concat();
        let swapped = swapped_text_file(&file, &swap()).unwrap();
        assert_eq!(
            swapped,
            [
                utf16::BOM.as_slice(),
                &utf16::encode_le(&xml.replace("S-1-5-21-1-2-3-", "S-1-5-21-1000-2000-3000-"))
            ]
            .concat()
        );
        let utf8 = [UTF8_BOM.as_slice(), xml.as_bytes()].concat();
        let swapped = swapped_text_file(&utf8, &swap()).unwrap();
        assert!(swapped.starts_with(&UTF8_BOM));
        assert!(std::str::from_utf8(&swapped[3..])
            .unwrap()
            .contains("<UserId>S-1-5-21-1000-2000-3000-1001</UserId>"));
        assert_eq!(
            swapped_text_file(xml.replace("-3-", "-4-").as_bytes(), &swap()),
            None
        );
        assert_eq!(swapped_text_file(&[0xFF, 0xFE, 0x00], &swap()), None);
        assert_eq!(swapped_text_file(&[0x80, 0x81], &swap()), None);
    }
}
