//! Each part of a WIM on its own, the first byte choosing which: the header, the blob table,
//! an uncompressed metadata resource (security data, then the dentry tree) or the XML data.
//! Typed errors only; what parses must serialize to something that parses again alike.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_wim::blob_table::BlobTable;
use reseal_wim::header::Header;
use reseal_wim::xml::XmlData;
use reseal_wim::ImageMetadata;

fuzz_target!(|data: &[u8]| {
    let Some((part, bytes)) = reseal_fuzz::choose(data, 4) else {
        return;
    };
    match part {
        0 => {
            if let Ok(header) = Header::parse(bytes) {
                let _ = header.codec();
                let again = Header::parse(&header.to_bytes()).expect("a written header parses");
                assert_eq!(again.to_bytes(), header.to_bytes());
            }
        }
        1 => {
            for solid_allowed in [false, true] {
                if let Ok(table) = BlobTable::parse(bytes, solid_allowed) {
                    let again = BlobTable::parse(&table.to_bytes(), solid_allowed)
                        .expect("a written blob table parses");
                    assert_eq!(again.to_bytes(), table.to_bytes());
                }
            }
        }
        2 => {
            if let Ok(metadata) = ImageMetadata::parse(bytes.to_vec()) {
                for i in 0..metadata.dentries.len() {
                    let _ = metadata.path_of(i);
                    let _ = metadata.security_descriptor(i);
                }
                let _ = metadata.counts(|_| 0);
                let _ = metadata.lookup(r"Windows\System32");
            }
        }
        _ => {
            if let Ok(xml) = XmlData::parse(bytes) {
                let images = xml.images();
                let again = XmlData::parse(&xml.to_bytes()).expect("written XML parses");
                assert_eq!(again.images().len(), images.len());
            }
        }
    }
});
