//! The small XML document model under the answer file: an element tree that keeps every
//! element, attribute, comment and whitespace run, the parser that builds it with positions
//! (its validation against the unattend schema is in `schema`), and the writer (UTF-8, with
//! password values optionally redacted).

use std::fmt;

use quick_xml::escape::{escape, partial_escape};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use reseal_nt::utf16;

use super::schema::{is_password_element, Context};
use super::AnswerFile;

const REDACTED: &str = "(redacted)";

/// A syntax or schema error in an answer file, with its position (1-based; the column counts
/// characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

#[derive(Clone, PartialEq, Eq)]
pub(super) struct Element {
    /// The qualified name as written (`unattend`, `u:unattend`).
    pub(super) name: String,
    /// Attributes in their order, namespace declarations included; values unescaped.
    pub(super) attributes: Vec<(String, String)>,
    pub(super) children: Vec<Node>,
}

#[derive(Clone, PartialEq, Eq)]
pub(super) enum Node {
    Element(Element),
    Text(String),
    CData(String),
    Comment(String),
    ProcessingInstruction(String),
    DocType(String),
}

impl Element {
    pub(super) fn new(name: String, attributes: Vec<(String, String)>) -> Element {
        Element {
            name,
            attributes,
            children: Vec::new(),
        }
    }

    pub(super) fn with_text(name: String, text: String) -> Element {
        Element {
            name,
            attributes: Vec::new(),
            children: vec![Node::Text(text)],
        }
    }

    pub(super) fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub(super) fn child_elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            _ => None,
        })
    }

    /// The element at `path` (local names) below this one; this one for an empty path.
    pub(super) fn descendant(&self, path: &[&str]) -> Option<&Element> {
        let mut current = self;
        for segment in path {
            current = current
                .child_elements()
                .find(|child| local_name(&child.name) == *segment)?;
        }
        Some(current)
    }

    /// The concatenated text and CDATA content of this element (not of its children).
    pub(super) fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|node| match node {
                Node::Text(text) | Node::CData(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Whether the element's children are laid out on indented lines.
    pub(super) fn is_indented(&self) -> bool {
        self.children
            .iter()
            .any(|node| matches!(node, Node::Text(text) if text.contains('\n') && text.trim().is_empty()))
    }

    /// Inserts `child` before the node at `before` (or at the end) and returns its index. When
    /// the document is indented, whitespace keeps the new element on its own line at `depth + 1`.
    pub(super) fn insert_child(
        &mut self,
        before: Option<usize>,
        child: Element,
        depth: usize,
        pretty: bool,
    ) -> usize {
        let child_indent = format!("\n{}", "    ".repeat(depth + 1));
        match before {
            Some(index) if index <= self.children.len() => {
                self.children.insert(index, Node::Element(child));
                if pretty {
                    self.children.insert(index + 1, Node::Text(child_indent));
                }
                index
            }
            _ => {
                if !pretty {
                    self.children.push(Node::Element(child));
                    return self.children.len() - 1;
                }
                let trailing_whitespace = matches!(self.children.last(),
                    Some(Node::Text(text)) if text.trim().is_empty());
                if !trailing_whitespace {
                    self.children
                        .push(Node::Text(format!("\n{}", "    ".repeat(depth))));
                }
                let closing = self.children.len() - 1;
                self.children.insert(closing, Node::Text(child_indent));
                self.children.insert(closing + 1, Node::Element(child));
                closing + 1
            }
        }
    }
}

impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Without its ancestors an element cannot tell whether it is a password value: redact all.
        let mut out = String::new();
        write_element(&mut out, self, true, true);
        f.write_str(&out)
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_node(&mut out, self, true, true);
        f.write_str(&out)
    }
}

pub(super) fn write_node(out: &mut String, node: &Node, redact: bool, in_password: bool) {
    match node {
        Node::Element(element) => write_element(out, element, redact, in_password),
        Node::Text(text) if redact && in_password && !text.trim().is_empty() => {
            out.push_str(REDACTED)
        }
        Node::CData(_) if redact && in_password => out.push_str(REDACTED),
        Node::Text(text) => out.push_str(&partial_escape(text.as_str())),
        Node::CData(text) => {
            out.push_str("<![CDATA[");
            out.push_str(text);
            out.push_str("]]>");
        }
        Node::Comment(text) => {
            out.push_str("<!--");
            out.push_str(text);
            out.push_str("-->");
        }
        Node::ProcessingInstruction(text) => {
            out.push_str("<?");
            out.push_str(text);
            out.push_str("?>");
        }
        Node::DocType(text) => {
            out.push_str("<!DOCTYPE ");
            out.push_str(text);
            out.push('>');
        }
    }
}

pub(super) fn write_element(out: &mut String, element: &Element, redact: bool, in_password: bool) {
    let in_password = in_password || is_password_element(&element.name);
    out.push('<');
    out.push_str(&element.name);
    for (name, value) in &element.attributes {
        out.push(' ');
        out.push_str(name);
        out.push_str("=\"");
        out.push_str(&escape(value.as_str()));
        out.push('"');
    }
    if element.children.is_empty() {
        out.push_str(" />");
        return;
    }
    out.push('>');
    for child in &element.children {
        write_node(out, child, redact, in_password);
    }
    out.push_str("</");
    out.push_str(&element.name);
    out.push('>');
}

pub(super) fn local_name(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, local)| local)
}

pub(super) fn prefix_of(name: &str) -> Option<&str> {
    name.split_once(':').map(|(prefix, _)| prefix)
}

/// UTF-8 (an optional BOM is dropped) or UTF-16 with a BOM.
pub(super) fn decode_text(bytes: &[u8]) -> std::result::Result<String, ParseError> {
    let invalid = |_| ParseError {
        line: 1,
        column: 1,
        message: "invalid UTF-16 text".into(),
    };
    if let Some(rest) = bytes.strip_prefix(&utf16::BOM) {
        return utf16::decode_le(rest).map_err(invalid);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
            .collect();
        return String::from_utf16(&units).map_err(invalid);
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_string()),
        Err(err) => {
            let valid = String::from_utf8_lossy(&bytes[..err.valid_up_to()]).into_owned();
            let (line, column) = line_and_column(&valid, valid.len());
            Err(ParseError {
                line,
                column,
                message: "the file is not valid UTF-8 (and has no UTF-16 byte-order mark)".into(),
            })
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |index| index + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

pub(super) struct Parser<'a> {
    pub(super) text: &'a str,
    pub(super) reader: NsReader<&'a [u8]>,
    /// Open elements with the context their children have.
    pub(super) stack: Vec<(Element, Context)>,
    pub(super) prolog: Vec<Node>,
    pub(super) epilog: Vec<Node>,
    pub(super) root: Option<Element>,
}

impl<'a> Parser<'a> {
    pub(super) fn new(text: &'a str) -> Parser<'a> {
        let mut reader = NsReader::from_str(text);
        reader.config_mut().check_end_names = true;
        Parser {
            text,
            reader,
            stack: Vec::new(),
            prolog: Vec::new(),
            epilog: Vec::new(),
            root: None,
        }
    }

    pub(super) fn error_at(&self, offset: u64, message: impl Into<String>) -> ParseError {
        let (line, column) =
            line_and_column(self.text, usize::try_from(offset).unwrap_or(usize::MAX));
        ParseError {
            line,
            column,
            message: message.into(),
        }
    }

    pub(super) fn run(mut self) -> std::result::Result<AnswerFile, ParseError> {
        loop {
            let start = self.reader.buffer_position();
            let (resolved, event) = match self.reader.read_resolved_event() {
                Ok(pair) => pair,
                Err(err) => {
                    let at = self.reader.error_position();
                    return Err(self.error_at(at, format!("malformed XML: {err}")));
                }
            };
            let namespace = match resolved {
                ResolveResult::Bound(ns) => Some(String::from_utf8_lossy(ns.0).into_owned()),
                ResolveResult::Unbound => None,
                ResolveResult::Unknown(prefix) => {
                    return Err(self.error_at(
                        start,
                        format!(
                            "namespace prefix '{}' is not declared",
                            String::from_utf8_lossy(&prefix)
                        ),
                    ))
                }
            };
            match event {
                Event::Start(tag) => {
                    let (element, context) = self.open(&tag, namespace.as_deref(), start)?;
                    self.stack.push((element, context));
                }
                Event::Empty(tag) => {
                    let (element, _) = self.open(&tag, namespace.as_deref(), start)?;
                    self.close(element);
                }
                Event::End(_) => {
                    if let Some((element, _)) = self.stack.pop() {
                        self.close(element);
                    }
                }
                Event::Text(text) => {
                    let text = text
                        .unescape()
                        .map_err(|err| self.error_at(start, format!("bad text: {err}")))?
                        .into_owned();
                    if self.stack.is_empty() {
                        if !text.trim().is_empty() {
                            return Err(self.error_at(start, "text outside the root element"));
                        }
                        continue;
                    }
                    self.add(Node::Text(text));
                }
                Event::CData(data) => {
                    let data = self.utf8(&data, start)?;
                    if self.stack.is_empty() {
                        return Err(self.error_at(start, "CDATA outside the root element"));
                    }
                    self.add(Node::CData(data));
                }
                Event::Comment(comment) => {
                    let comment = self.utf8(&comment, start)?;
                    self.add(Node::Comment(comment));
                }
                Event::PI(instruction) => {
                    let instruction = self.utf8(&instruction, start)?;
                    self.add(Node::ProcessingInstruction(instruction));
                }
                Event::DocType(doctype) => {
                    let doctype = self.utf8(&doctype, start)?;
                    self.add(Node::DocType(doctype));
                }
                Event::Decl(_) => {}
                Event::Eof => break,
            }
        }
        if !self.stack.is_empty() {
            let end = self.text.len() as u64;
            return Err(self.error_at(end, "unexpected end of file: an element is not closed"));
        }
        match self.root {
            Some(root) => Ok(AnswerFile {
                prolog: self.prolog,
                root,
                epilog: self.epilog,
            }),
            None => Err(self.error_at(0, "no root element")),
        }
    }

    pub(super) fn utf8(&self, bytes: &[u8], at: u64) -> std::result::Result<String, ParseError> {
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| self.error_at(at, "invalid UTF-8"))
    }

    fn add(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some((parent, _)) => parent.children.push(node),
            None if self.root.is_none() => self.prolog.push(node),
            None => self.epilog.push(node),
        }
    }

    fn close(&mut self, element: Element) {
        match self.stack.last_mut() {
            Some((parent, _)) => parent.children.push(Node::Element(element)),
            None => self.root = Some(element),
        }
    }
}
