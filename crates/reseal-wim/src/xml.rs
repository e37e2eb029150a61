//! The XML data: UTF-16LE text (with a byte-order mark), stored uncompressed, describing the
//! images:
//!
//! ```text
//! <WIM>
//!   <TOTALBYTES>offset of this XML data</TOTALBYTES>
//!   <IMAGE INDEX="1"><NAME>…</NAME><DIRCOUNT>…</DIRCOUNT><FILECOUNT>…</FILECOUNT>
//!     <TOTALBYTES>sum of file sizes</TOTALBYTES><HARDLINKBYTES>…</HARDLINKBYTES>…
//!     <LASTMODIFICATIONTIME><HIGHPART>0x…</HIGHPART><LOWPART>0x…</LOWPART></LASTMODIFICATIONTIME>
//!   </IMAGE>…
//! </WIM>
//! ```
//!
//! The text is kept as is and edited in place, so elements this crate does not know about
//! (WINDOWS, FLAGS, descriptions…) are preserved.

use crate::error::Malformed;
use reseal_nt::utf16;

/// What the XML says about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// 1-based.
    pub index: u32,
    pub name: Option<String>,
    pub description: Option<String>,
    pub total_bytes: Option<u64>,
    pub dir_count: Option<u64>,
    pub file_count: Option<u64>,
}

/// The counts an `<IMAGE>` element holds, as wimlib's `xml_update_image_info()` computes them
/// from the tree: every inode (a file with all its hard links) counts once per link, the root
/// included, as a directory when it is one and not a reparse point, else as a file; its size is
/// the sum of all its streams (data, reparse data, alternate data streams).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageCounts {
    pub dir_count: u64,
    pub file_count: u64,
    /// Size × links, summed over inodes.
    pub total_bytes: u64,
    /// Size × (links - 1), summed over inodes.
    pub hard_link_bytes: u64,
}

/// The deepest nesting of elements accepted. What Windows and wimlib write is five levels deep
/// (WIM, IMAGE, WINDOWS, VERSION, BUILD); a document nested far deeper is damaged or hostile, and
/// XML parsers refuse it (wimlib 1.13's libxml2 stops at 256 levels: `wimlib-imagex info` fails
/// with "Excessive depth in document"), so a WIM keeping it could not be read back.
pub const MAX_DEPTH: usize = 32;

/// How deep elements nest in `text` (declarations, comments and empty elements add no level).
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
        if tag.starts_with('/') {
            depth = depth.saturating_sub(1);
        } else if !(tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/')) {
            depth += 1;
            deepest = deepest.max(depth);
        }
        rest = &rest[tag.len()..];
    }
    deepest
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlData {
    pub text: String,
}

impl XmlData {
    pub fn parse(bytes: &[u8]) -> Result<Self, Malformed> {
        if bytes.len() % 2 != 0 {
            return Err(Malformed::new(
                "XML data",
                format!("odd length {} for UTF-16 text", bytes.len()),
            ));
        }
        let bytes = bytes.strip_prefix(&utf16::BOM).unwrap_or(bytes);
        let text =
            utf16::decode_le(bytes).map_err(|_| Malformed::new("XML data", "invalid UTF-16"))?;
        let depth = nesting_depth(&text);
        if depth > MAX_DEPTH {
            return Err(Malformed::new(
                "XML data",
                format!("elements nested {depth} levels deep, more than the {MAX_DEPTH} allowed"),
            ));
        }
        Ok(Self { text })
    }

    /// UTF-16LE with a byte-order mark, as Windows and wimlib write it.
    pub fn to_bytes(&self) -> Vec<u8> {
        utf16::encode_le_with_bom(&self.text)
    }

    pub fn images(&self) -> Vec<ImageInfo> {
        let mut images = Vec::new();
        let mut rest = self.text.as_str();
        while let Some((attributes, body, after)) = next_element(rest, "IMAGE") {
            rest = after;
            let Some(index) = attribute(attributes, "INDEX").and_then(|v| v.parse().ok()) else {
                continue;
            };
            let number =
                |tag: &str| child_text(body, tag).and_then(|v| v.trim().parse::<u64>().ok());
            images.push(ImageInfo {
                index,
                name: child_text(body, "NAME").map(unescape),
                description: child_text(body, "DESCRIPTION").map(unescape),
                total_bytes: number("TOTALBYTES"),
                dir_count: number("DIRCOUNT"),
                file_count: number("FILECOUNT"),
            });
        }
        images
    }

    /// Sets `<IMAGE INDEX=index>`'s DIRCOUNT, FILECOUNT, TOTALBYTES, HARDLINKBYTES and
    /// LASTMODIFICATIONTIME (a FILETIME).
    pub fn update_image(&mut self, index: u32, counts: &ImageCounts, modified: u64) {
        let Some(range) = image_body_range(&self.text, index) else {
            return;
        };
        let mut body = self.text[range.clone()].to_string();
        for (tag, value) in [
            ("DIRCOUNT", counts.dir_count),
            ("FILECOUNT", counts.file_count),
            ("TOTALBYTES", counts.total_bytes),
            ("HARDLINKBYTES", counts.hard_link_bytes),
        ] {
            set_child_text(&mut body, tag, &value.to_string());
        }
        let time = format!(
            "<HIGHPART>0x{:08X}</HIGHPART><LOWPART>0x{:08X}</LOWPART>",
            modified >> 32,
            modified & 0xffff_ffff
        );
        set_child_text(&mut body, "LASTMODIFICATIONTIME", &time);
        self.text.replace_range(range, &body);
    }

    /// Sets the WIM-level TOTALBYTES (outside any IMAGE element), which wimlib sets to the
    /// offset of the XML data.
    pub fn set_wim_total_bytes(&mut self, value: u64) {
        let mut search_from = 0;
        while let Some(found) = self.text[search_from..].find("<TOTALBYTES>") {
            let at = search_from + found;
            if !inside_image(&self.text, at) {
                if let Some(close) = self.text[at..].find("</TOTALBYTES>") {
                    self.text
                        .replace_range(at + "<TOTALBYTES>".len()..at + close, &value.to_string());
                }
                return;
            }
            search_from = at + 1;
        }
    }
}

/// The first `<tag …>body</tag>` in `text`: its attributes, body and the text after it.
fn next_element<'a>(text: &'a str, tag: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut from = 0;
    loop {
        let start = from + text[from..].find(&open)?;
        let after_name = &text[start + open.len()..];
        // Skip longer names such as <IMAGES>.
        if !after_name.starts_with([' ', '>', '\t', '\r', '\n']) {
            from = start + 1;
            continue;
        }
        let head_end = start + open.len() + after_name.find('>')?;
        let attributes = &text[start + open.len()..head_end];
        let body_start = head_end + 1;
        let body_end = body_start + text[body_start..].find(&close)?;
        return Some((
            attributes,
            &text[body_start..body_end],
            &text[body_end + close.len()..],
        ));
    }
}

fn attribute<'a>(attributes: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let start = attributes.find(&key)? + key.len();
    let end = start + attributes[start..].find('"')?;
    Some(&attributes[start..end])
}

fn child_text<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    next_element(body, tag).map(|(_, inner, _)| inner)
}

fn set_child_text(body: &mut String, tag: &str, value: &str) {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    match (body.find(&open), body.find(&close)) {
        (Some(start), Some(end)) if end >= start + open.len() => {
            body.replace_range(start + open.len()..end, value)
        }
        _ => body.push_str(&format!("{open}{value}{close}")),
    }
}

fn image_body_range(text: &str, index: u32) -> Option<std::ops::Range<usize>> {
    let mut rest_start = 0;
    while let Some((attributes, body, after)) = next_element(&text[rest_start..], "IMAGE") {
        let body_start = body.as_ptr() as usize - text.as_ptr() as usize;
        if attribute(attributes, "INDEX").and_then(|v| v.parse::<u32>().ok()) == Some(index) {
            return Some(body_start..body_start + body.len());
        }
        rest_start = after.as_ptr() as usize - text.as_ptr() as usize;
    }
    None
}

fn inside_image(text: &str, at: usize) -> bool {
    let before = &text[..at];
    let opened = before.rfind("<IMAGE ").or_else(|| before.rfind("<IMAGE>"));
    let closed = before.rfind("</IMAGE>");
    match (opened, closed) {
        (Some(open), Some(close)) => open > close,
        (Some(_), None) => true,
        _ => false,
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "<WIM><TOTALBYTES>100</TOTALBYTES><IMAGE INDEX=\"1\"><NAME>A &amp; B</NAME>\
        <TOTALBYTES>3</TOTALBYTES><LASTMODIFICATIONTIME><HIGHPART>0x1</HIGHPART><LOWPART>0x2</LOWPART>\
        </LASTMODIFICATIONTIME></IMAGE><IMAGE INDEX=\"2\"><NAME>Second</NAME><TOTALBYTES>9</TOTALBYTES>\
        </IMAGE></WIM>";

    #[test]
    fn images_are_listed_and_updated_in_place() {
        let mut xml = XmlData {
            text: SAMPLE.into(),
        };
        let parsed = XmlData::parse(&xml.to_bytes()).unwrap();
        assert_eq!(parsed, xml);
        let images = xml.images();
        assert_eq!(images.len(), 2);
        assert_eq!(images[0].name.as_deref(), Some("A & B"));
        assert_eq!(images[1].total_bytes, Some(9));
        let counts = ImageCounts {
            dir_count: 1,
            file_count: 4,
            total_bytes: 12,
            hard_link_bytes: 5,
        };
        xml.update_image(2, &counts, 0x01D3_A74E_97C5_056B);
        xml.set_wim_total_bytes(4242);
        assert!(xml
            .text
            .contains("<IMAGE INDEX=\"2\"><NAME>Second</NAME><TOTALBYTES>12</TOTALBYTES>"));
        // Elements the image lacked are added.
        assert!(xml.text.contains("<DIRCOUNT>1</DIRCOUNT>"));
        assert!(xml.text.contains("<FILECOUNT>4</FILECOUNT>"));
        assert!(xml.text.contains("<HARDLINKBYTES>5</HARDLINKBYTES>"));
        assert!(xml
            .text
            .contains("<HIGHPART>0x01D3A74E</HIGHPART><LOWPART>0x97C5056B</LOWPART>"));
        assert!(xml.text.starts_with("<WIM><TOTALBYTES>4242</TOTALBYTES>"));
        assert_eq!(xml.images()[0].total_bytes, Some(3));
    }

    #[test]
    fn odd_and_invalid_text_is_refused() {
        assert!(XmlData::parse(&[0xff, 0xfe, 0x41]).is_err());
        assert!(XmlData::parse(&[0x00, 0xd8]).is_err());
    }
}
