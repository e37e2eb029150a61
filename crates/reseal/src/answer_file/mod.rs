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
//! WMIConfig namespace. Elements of other namespaces under the root, which Setup skips (Windows
//! System Image Manager's `<cpi:offlineImage>`), are kept. Errors carry the line and column.
//!
//! Passwords (the text under any `*Password` element, e.g. `AdministratorPassword/Value`,
//! `AutoLogon/Password/Value`, `LocalAccount/Password/Value`) are part of the written file, since
//! Setup needs them, but never appear in `Debug` output or messages.
//!
//! The XML declaration is not kept: the written file is always UTF-8 with its own declaration,
//! whatever the encoding of the input (UTF-8, or UTF-16 with a byte-order mark).

use crate::limits::read_host_file;
use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::plan::AnswerSetting;

mod schema;
mod xml;

pub use schema::{PASSES, UNATTEND_NAMESPACE, WCM_NAMESPACE};
pub use xml::ParseError;

use schema::{
    is_component_named, is_password_element, is_settings_for, parse_boolean, pass_rank,
    MICROSOFT_PUBLIC_KEY_TOKEN, ORDERED_LIST_ITEMS, XSI_NAMESPACE,
};
use xml::{decode_text, local_name, prefix_of, write_element, write_node, Element, Node, Parser};

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
        let bytes = read_host_file(path, crate::limits::ANSWER_FILE).map_err(|err| {
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
