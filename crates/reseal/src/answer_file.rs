//! The answer file (`unattend.xml`): parse, validate, read settings, merge, write.
//!
//! Sysprep hands the next boot an answer file: Windows Setup looks for it, among other places, in
//! `%WINDIR%\Panther\` (sysprep-effects §6.9, MS-AUTOMATION). reseal writes
//! `Windows\Panther\unattend.xml` from the user's `--unattend` file plus the settings its
//! providers need there (the specialize-pass `ComputerName`, a first-boot rearm).
//!
//! The model is a full element tree, not a fixed schema: every element, attribute, comment and
//! whitespace run of the user's file is kept and written back, so merging never drops a setting
//! reseal does not know about. Validation follows the unattend schema's outer structure: the root
//! `unattend` in `urn:schemas-microsoft-com:unattend`, `settings pass=` one of the seven passes,
//! `component` elements with their five identity attributes, and `wcm:` attributes bound to the
//! WMIConfig namespace. Errors carry the line and column.
//!
//! Passwords (the text under any `*Password` element, e.g. `AdministratorPassword/Value`,
//! `AutoLogon/Password/Value`, `LocalAccount/Password/Value`) are part of the written file, since
//! Setup needs them, but never appear in `Debug` output or messages.
//!
//! The XML declaration is not kept: the written file is always UTF-8 with its own declaration,
//! whatever the encoding of the input (UTF-8, or UTF-16 with a byte-order mark).

use std::fmt;
use std::path::Path;

use quick_xml::escape::{escape, partial_escape};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::error::{Error, Result};
use crate::plan::AnswerSetting;

/// The namespace of the unattend schema.
pub const UNATTEND_NAMESPACE: &str = "urn:schemas-microsoft-com:unattend";
/// The namespace of `wcm:action` / `wcm:keyValue`.
pub const WCM_NAMESPACE: &str = "http://schemas.microsoft.com/WMIConfig/2002/State";
const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The configuration passes, in the order Windows runs them.
pub const PASSES: [&str; 7] = [
    "windowsPE",
    "offlineServicing",
    "generalize",
    "specialize",
    "auditSystem",
    "auditUser",
    "oobeSystem",
];

const PROCESSOR_ARCHITECTURES: [&str; 6] = ["x86", "amd64", "arm", "arm64", "ia64", "wow64"];
const VERSION_SCOPES: [&str; 2] = ["nonSxS", "SxS"];
const WCM_ACTIONS: [&str; 3] = ["add", "modify", "remove"];
const WCM_ATTRIBUTES: [&str; 2] = ["action", "keyValue"];
/// The public key token of every Microsoft component.
const MICROSOFT_PUBLIC_KEY_TOKEN: &str = "31bf3856ad364e35";

/// List items of the unattend schema: a merge adds a new item (`wcm:action="add"`) instead of
/// overwriting an existing one; the ones with an `Order` child get the next free order.
const ORDERED_LIST_ITEMS: [&str; 3] = [
    "RunSynchronousCommand",
    "RunAsynchronousCommand",
    "SynchronousCommand",
];

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

/// A parsed answer file. Equality compares the whole tree (formatting included).
#[derive(Clone, PartialEq, Eq)]
pub struct AnswerFile {
    /// Comments and processing instructions before the root element (whitespace outside the root
    /// is not kept: the writer puts each of these on its own line).
    prolog: Vec<Node>,
    root: Element,
    /// The same after the root element.
    epilog: Vec<Node>,
}

#[derive(Clone, PartialEq, Eq)]
struct Element {
    /// The qualified name as written (`unattend`, `u:unattend`).
    name: String,
    /// Attributes in their order, namespace declarations included; values unescaped.
    attributes: Vec<(String, String)>,
    children: Vec<Node>,
}

#[derive(Clone, PartialEq, Eq)]
enum Node {
    Element(Element),
    Text(String),
    CData(String),
    Comment(String),
    ProcessingInstruction(String),
    DocType(String),
}

impl AnswerFile {
    /// An answer file with no settings: `<unattend xmlns="urn:schemas-microsoft-com:unattend">`.
    pub fn empty() -> AnswerFile {
        let mut root = Element::new(
            "unattend".to_string(),
            vec![("xmlns".to_string(), UNATTEND_NAMESPACE.to_string())],
        );
        root.children.push(Node::Text("\n".to_string()));
        AnswerFile {
            prolog: Vec::new(),
            root,
            epilog: Vec::new(),
        }
    }

    /// Sets every answer setting (see [`AnswerFile::set`]).
    pub fn merge(&mut self, settings: &[AnswerSetting], architecture: &str) {
        for setting in settings {
            self.set(
                &setting.pass,
                &setting.component,
                &setting.path,
                &setting.value,
                architecture,
            );
        }
    }

    /// Reads and parses `path`; a bad file is a usage error naming the file and the position.
    pub fn load(path: &Path) -> Result<AnswerFile> {
        let bytes = std::fs::read(path).map_err(|err| {
            Error::usage(format!("cannot read answer file {}: {err}", path.display()))
        })?;
        AnswerFile::from_bytes(&bytes)
            .map_err(|err| Error::usage(format!("answer file {}: {err}", path.display())))
    }

    /// Parses an answer file in UTF-8 (with or without a byte-order mark) or UTF-16 (with one).
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<AnswerFile, ParseError> {
        let text = decode_text(bytes)?;
        AnswerFile::parse(&text)
    }

    /// Parses and validates an answer file.
    pub fn parse(text: &str) -> std::result::Result<AnswerFile, ParseError> {
        Parser::new(text).run()
    }

    /// Writes the answer file as UTF-8 XML, passwords included (Setup needs them).
    pub fn to_xml(&self) -> String {
        self.render(false)
    }

    /// The XML with every password value replaced, for display.
    pub fn to_redacted_xml(&self) -> String {
        self.render(true)
    }

    fn render(&self, redact: bool) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
        for node in &self.prolog {
            write_node(&mut out, node, redact, false);
            out.push('\n');
        }
        write_element(&mut out, &self.root, redact, false);
        out.push('\n');
        for node in &self.epilog {
            write_node(&mut out, node, redact, false);
            out.push('\n');
        }
        out
    }

    /// True when the file holds any password element, so it must be written as sensitive.
    pub fn contains_passwords(&self) -> bool {
        fn any_password(element: &Element) -> bool {
            is_password_element(&element.name) || element.child_elements().any(any_password)
        }
        any_password(&self.root)
    }

    /// The text of `path` (local element names below the component) in the first component named
    /// `component` (any architecture) of the `pass` settings that has it.
    pub fn setting(&self, pass: &str, component: &str, path: &[&str]) -> Option<String> {
        self.settings_elements(pass)
            .flat_map(|settings| settings.child_elements())
            .filter(|element| is_component_named(element, component))
            .find_map(|element| element.descendant(path))
            .map(|element| element.text().trim().to_string())
    }

    /// `Microsoft-Windows-PnpSysprep/PersistAllDeviceInstalls` of the generalize pass.
    pub fn persist_all_device_installs(&self) -> Option<bool> {
        let text = self.setting(
            "generalize",
            "Microsoft-Windows-PnpSysprep",
            &["PersistAllDeviceInstalls"],
        )?;
        parse_boolean(&text)
    }

    /// `Microsoft-Windows-Security-SPP/SkipRearm` of the generalize pass (0 or 1).
    pub fn skip_rearm(&self) -> Option<u32> {
        let text = self.setting(
            "generalize",
            "Microsoft-Windows-Security-SPP",
            &["SkipRearm"],
        )?;
        text.parse().ok()
    }

    /// Sets one setting, creating the settings, component and elements it needs. A path through
    /// a command list item (`RunSynchronousCommand`, ...) adds a new item with the next `Order`
    /// unless an item with the same value exists already; any other path overwrites the value.
    /// New components get `architecture` and Microsoft's identity attributes.
    pub fn set(
        &mut self,
        pass: &str,
        component: &str,
        path: &[String],
        value: &str,
        architecture: &str,
    ) {
        let pretty = self.root.is_indented();
        let prefix = prefix_of(&self.root.name).map(str::to_string);
        let qualify = |local: &str| match &prefix {
            Some(prefix) => format!("{prefix}:{local}"),
            None => local.to_string(),
        };
        let wcm_bound_at_root = self.root.binds_wcm();

        let settings_index = match self
            .root
            .children
            .iter()
            .position(|node| matches!(node, Node::Element(e) if is_settings_for(e, pass)))
        {
            Some(index) => index,
            None => {
                let settings =
                    Element::new(qualify("settings"), vec![("pass".into(), pass.into())]);
                let before = self.root.children.iter().position(|node| {
                    matches!(node, Node::Element(e) if pass_rank(e.attribute("pass")) > pass_rank(Some(pass)))
                });
                self.root.insert_child(before, settings, 0, pretty)
            }
        };
        let Some(Node::Element(settings)) = self.root.children.get_mut(settings_index) else {
            return;
        };

        let component_index =
            match settings.children.iter().position(
                |node| matches!(node, Node::Element(e) if is_component_named(e, component)),
            ) {
                Some(index) => index,
                None => {
                    let mut attributes = vec![
                        ("name".to_string(), component.to_string()),
                        ("processorArchitecture".into(), architecture.into()),
                        ("publicKeyToken".into(), MICROSOFT_PUBLIC_KEY_TOKEN.into()),
                        ("language".into(), "neutral".into()),
                        ("versionScope".into(), "nonSxS".into()),
                    ];
                    if !wcm_bound_at_root && !settings.binds_wcm() {
                        attributes.push(("xmlns:wcm".into(), WCM_NAMESPACE.into()));
                        attributes.push(("xmlns:xsi".into(), XSI_NAMESPACE.into()));
                    }
                    let element = Element::new(qualify("component"), attributes);
                    settings.insert_child(None, element, 1, pretty)
                }
            };
        let settings_binds_wcm = settings.binds_wcm();
        let Some(Node::Element(component_element)) = settings.children.get_mut(component_index)
        else {
            return;
        };
        let wcm_bound = wcm_bound_at_root || settings_binds_wcm || component_element.binds_wcm();
        set_in(
            component_element,
            path,
            value,
            2,
            pretty,
            wcm_bound,
            &qualify,
        );
    }

    fn settings_elements<'a>(&'a self, pass: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.root
            .child_elements()
            .filter(move |element| is_settings_for(element, pass))
    }
}

impl fmt::Debug for AnswerFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnswerFile")
            .field("xml", &self.to_redacted_xml())
            .finish()
    }
}

/// Walks `path` below `parent` (at `depth`), creating what is missing, and sets the leaf's text.
fn set_in(
    parent: &mut Element,
    path: &[String],
    value: &str,
    depth: usize,
    pretty: bool,
    wcm_bound: bool,
    qualify: &dyn Fn(&str) -> String,
) {
    let Some((first, rest)) = path.split_first() else {
        parent.children = vec![Node::Text(value.to_string())];
        return;
    };
    let child_index = if ORDERED_LIST_ITEMS.contains(&first.as_str()) {
        let rest_refs: Vec<&str> = rest.iter().map(String::as_str).collect();
        let existing = parent.children.iter().position(|node| {
            matches!(node, Node::Element(item) if local_name(&item.name) == first
                && item.descendant(&rest_refs).is_some_and(|leaf| leaf.text().trim() == value))
        });
        if existing.is_some() {
            return;
        }
        let next_order = parent
            .child_elements()
            .filter(|item| local_name(&item.name) == first)
            .filter_map(|item| item.descendant(&["Order"]))
            .filter_map(|order| order.text().trim().parse::<u32>().ok())
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let mut attributes = vec![("wcm:action".to_string(), "add".to_string())];
        if !wcm_bound {
            attributes.push(("xmlns:wcm".into(), WCM_NAMESPACE.into()));
        }
        let mut item = Element::new(qualify(first), attributes);
        let order = Element::with_text(qualify("Order"), next_order.to_string());
        item.insert_child(None, order, depth + 1, pretty);
        parent.insert_child(None, item, depth, pretty)
    } else {
        match parent
            .children
            .iter()
            .position(|node| matches!(node, Node::Element(e) if local_name(&e.name) == first))
        {
            Some(index) => index,
            None => parent.insert_child(None, Element::new(qualify(first), vec![]), depth, pretty),
        }
    };
    if let Some(Node::Element(child)) = parent.children.get_mut(child_index) {
        set_in(child, rest, value, depth + 1, pretty, wcm_bound, qualify);
    }
}

impl Element {
    fn new(name: String, attributes: Vec<(String, String)>) -> Element {
        Element {
            name,
            attributes,
            children: Vec::new(),
        }
    }

    fn with_text(name: String, text: String) -> Element {
        Element {
            name,
            attributes: Vec::new(),
            children: vec![Node::Text(text)],
        }
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn child_elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            _ => None,
        })
    }

    /// The element at `path` (local names) below this one; this one for an empty path.
    fn descendant(&self, path: &[&str]) -> Option<&Element> {
        let mut current = self;
        for segment in path {
            current = current
                .child_elements()
                .find(|child| local_name(&child.name) == *segment)?;
        }
        Some(current)
    }

    /// The concatenated text and CDATA content of this element (not of its children).
    fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|node| match node {
                Node::Text(text) | Node::CData(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    fn binds_wcm(&self) -> bool {
        self.attribute("xmlns:wcm") == Some(WCM_NAMESPACE)
    }

    /// Whether the element's children are laid out on indented lines.
    fn is_indented(&self) -> bool {
        self.children
            .iter()
            .any(|node| matches!(node, Node::Text(text) if text.contains('\n') && text.trim().is_empty()))
    }

    /// Inserts `child` before the node at `before` (or at the end) and returns its index. When
    /// the document is indented, whitespace keeps the new element on its own line at `depth + 1`.
    fn insert_child(
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

fn write_node(out: &mut String, node: &Node, redact: bool, in_password: bool) {
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

fn write_element(out: &mut String, element: &Element, redact: bool, in_password: bool) {
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

/// `Password`, `AdministratorPassword`, `DomainAdminPassword`...: every element whose content
/// is a secret.
fn is_password_element(name: &str) -> bool {
    local_name(name).ends_with("Password")
}

fn local_name(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, local)| local)
}

fn prefix_of(name: &str) -> Option<&str> {
    name.split_once(':').map(|(prefix, _)| prefix)
}

fn is_settings_for(element: &Element, pass: &str) -> bool {
    local_name(&element.name) == "settings" && element.attribute("pass") == Some(pass)
}

fn is_component_named(element: &Element, component: &str) -> bool {
    local_name(&element.name) == "component"
        && element
            .attribute("name")
            .is_some_and(|name| name.eq_ignore_ascii_case(component))
}

fn pass_rank(pass: Option<&str>) -> usize {
    pass.and_then(|pass| PASSES.iter().position(|known| *known == pass))
        .unwrap_or(PASSES.len())
}

fn parse_boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// UTF-8 (an optional BOM is dropped) or UTF-16 with a BOM.
fn decode_text(bytes: &[u8]) -> std::result::Result<String, ParseError> {
    let utf16 = |units: Vec<u16>| {
        String::from_utf16(&units).map_err(|_| ParseError {
            line: 1,
            column: 1,
            message: "invalid UTF-16 text".into(),
        })
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(
            rest.chunks_exact(2)
                .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
                .collect(),
        );
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(
            rest.chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect(),
        );
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
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
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

/// Where an element sits, for validation: its parent's local name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Document,
    Root,
    Settings,
    Inside,
}

struct Parser<'a> {
    text: &'a str,
    reader: NsReader<&'a [u8]>,
    /// Open elements with the context their children have.
    stack: Vec<(Element, Context)>,
    prolog: Vec<Node>,
    epilog: Vec<Node>,
    root: Option<Element>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
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

    fn error_at(&self, offset: u64, message: impl Into<String>) -> ParseError {
        let (line, column) =
            line_and_column(self.text, usize::try_from(offset).unwrap_or(usize::MAX));
        ParseError {
            line,
            column,
            message: message.into(),
        }
    }

    fn run(mut self) -> std::result::Result<AnswerFile, ParseError> {
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

    fn utf8(&self, bytes: &[u8], at: u64) -> std::result::Result<String, ParseError> {
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| self.error_at(at, "invalid UTF-8"))
    }

    /// Reads a start tag, validates it in its context and returns the element with the context
    /// its children will have.
    fn open(
        &self,
        tag: &BytesStart<'_>,
        namespace: Option<&str>,
        at: u64,
    ) -> std::result::Result<(Element, Context), ParseError> {
        let name = self.utf8(tag.name().as_ref(), at)?;
        let mut attributes = Vec::new();
        for attribute in tag.attributes() {
            let attribute = attribute
                .map_err(|err| self.error_at(at, format!("bad attribute in <{name}>: {err}")))?;
            let key = self.utf8(attribute.key.as_ref(), at)?;
            let value = attribute
                .unescape_value()
                .map_err(|err| self.error_at(at, format!("bad value of {key} in <{name}>: {err}")))?
                .into_owned();
            self.check_attribute_namespace(&name, &key, &value, attribute.key, at)?;
            attributes.push((key, value));
        }
        let element = Element::new(name, attributes);
        let local = local_name(&element.name);
        let in_unattend = namespace == Some(UNATTEND_NAMESPACE);
        let parent_context = match self.stack.last() {
            Some((_, context)) => *context,
            None if self.root.is_some() => {
                return Err(self.error_at(at, "a second root element"));
            }
            None => Context::Document,
        };
        let context = match parent_context {
            Context::Document => {
                if local != "unattend" || !in_unattend {
                    return Err(self.error_at(
                        at,
                        format!(
                            "the root element must be 'unattend' in namespace {UNATTEND_NAMESPACE}, found <{}>{}",
                            element.name,
                            namespace.map(|ns| format!(" in namespace {ns}")).unwrap_or_default()
                        ),
                    ));
                }
                Context::Root
            }
            Context::Root => match local {
                "settings" if in_unattend => {
                    match element.attribute("pass") {
                        Some(pass) if PASSES.contains(&pass) => {}
                        Some(pass) => {
                            return Err(self.error_at(
                                at,
                                format!(
                                    "unknown pass '{pass}' (expected one of {})",
                                    PASSES.join(", ")
                                ),
                            ))
                        }
                        None => return Err(self.error_at(at, "<settings> has no 'pass' attribute")),
                    }
                    Context::Settings
                }
                "servicing" | "offlineImage" if in_unattend => Context::Inside,
                _ => {
                    return Err(self.error_at(
                        at,
                        format!(
                            "unexpected <{}> under <unattend> (expected <settings>)",
                            element.name
                        ),
                    ))
                }
            },
            Context::Settings => {
                if local != "component" || !in_unattend {
                    return Err(self.error_at(
                        at,
                        format!(
                            "unexpected <{}> under <settings> (expected <component>)",
                            element.name
                        ),
                    ));
                }
                self.check_component(&element, at)?;
                Context::Inside
            }
            Context::Inside => Context::Inside,
        };
        Ok((element, context))
    }

    fn check_component(&self, component: &Element, at: u64) -> std::result::Result<(), ParseError> {
        let required = |name: &str| {
            component
                .attribute(name)
                .filter(|value| !value.trim().is_empty())
                .ok_or_else(|| self.error_at(at, format!("<component> has no '{name}' attribute")))
        };
        required("name")?;
        required("language")?;
        let architecture = required("processorArchitecture")?;
        if !PROCESSOR_ARCHITECTURES.contains(&architecture) {
            return Err(self.error_at(
                at,
                format!(
                    "unknown processorArchitecture '{architecture}' (expected one of {})",
                    PROCESSOR_ARCHITECTURES.join(", ")
                ),
            ));
        }
        let token = required("publicKeyToken")?;
        if token.len() != 16 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.error_at(
                at,
                format!("publicKeyToken '{token}' is not 16 hexadecimal digits"),
            ));
        }
        let scope = required("versionScope")?;
        if !VERSION_SCOPES
            .iter()
            .any(|known| known.eq_ignore_ascii_case(scope))
        {
            return Err(self.error_at(
                at,
                format!("unknown versionScope '{scope}' (expected nonSxS or SxS)"),
            ));
        }
        Ok(())
    }

    /// Prefixed attributes must have a declared prefix; `wcm:` ones must be WMIConfig's
    /// `action`/`keyValue`, with a known action.
    fn check_attribute_namespace(
        &self,
        element: &str,
        key: &str,
        value: &str,
        qname: quick_xml::name::QName<'_>,
        at: u64,
    ) -> std::result::Result<(), ParseError> {
        if key == "xmlns" || key.starts_with("xmlns:") {
            if key == "xmlns:wcm" && value != WCM_NAMESPACE {
                return Err(self.error_at(
                    at,
                    format!("prefix wcm is bound to '{value}', expected {WCM_NAMESPACE}"),
                ));
            }
            return Ok(());
        }
        let (resolved, local) = self.reader.resolve_attribute(qname);
        let local = String::from_utf8_lossy(local.as_ref()).into_owned();
        match resolved {
            ResolveResult::Unknown(prefix) => Err(self.error_at(
                at,
                format!(
                    "namespace prefix '{}' of attribute {key} in <{element}> is not declared",
                    String::from_utf8_lossy(&prefix)
                ),
            )),
            ResolveResult::Bound(ns) if ns.0 == WCM_NAMESPACE.as_bytes() => {
                if !WCM_ATTRIBUTES.contains(&local.as_str()) {
                    return Err(
                        self.error_at(at, format!("unknown wcm attribute {key} in <{element}>"))
                    );
                }
                if local == "action" && !WCM_ACTIONS.contains(&value) {
                    return Err(self.error_at(
                        at,
                        format!("unknown {key} '{value}' in <{element}> (expected add, modify or remove)"),
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
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
