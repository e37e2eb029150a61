//! What reseal knows of the unattend schema: its namespaces and passes, the identity
//! attributes of a component, the `wcm:` attributes, the list items a merge adds to, which
//! elements hold passwords, and the validation of each start tag in its context.

use quick_xml::events::BytesStart;
use quick_xml::name::ResolveResult;

use super::xml::{local_name, Element, ParseError, Parser};

/// The namespace of the unattend schema.
pub const UNATTEND_NAMESPACE: &str = "urn:schemas-microsoft-com:unattend";
/// The namespace of `wcm:action` / `wcm:keyValue`.
pub const WCM_NAMESPACE: &str = "http://schemas.microsoft.com/WMIConfig/2002/State";
pub(super) const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

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
pub(super) const MICROSOFT_PUBLIC_KEY_TOKEN: &str = "31bf3856ad364e35";

/// List items of the unattend schema: a merge adds a new item (`wcm:action="add"`) instead of
/// overwriting an existing one; the ones with an `Order` child get the next free order.
pub(super) const ORDERED_LIST_ITEMS: [&str; 3] = [
    "RunSynchronousCommand",
    "RunAsynchronousCommand",
    "SynchronousCommand",
];

impl Element {
    pub(super) fn binds_wcm(&self) -> bool {
        self.attribute("xmlns:wcm") == Some(WCM_NAMESPACE)
    }
}

/// `Password`, `AdministratorPassword`, `DomainAdminPassword`...: every element whose content
/// is a secret.
pub(super) fn is_password_element(name: &str) -> bool {
    local_name(name).ends_with("Password")
}

pub(super) fn is_settings_for(element: &Element, pass: &str) -> bool {
    local_name(&element.name) == "settings" && element.attribute("pass") == Some(pass)
}

pub(super) fn is_component_named(element: &Element, component: &str) -> bool {
    local_name(&element.name) == "component"
        && element
            .attribute("name")
            .is_some_and(|name| name.eq_ignore_ascii_case(component))
}

pub(super) fn pass_rank(pass: Option<&str>) -> usize {
    pass.and_then(|pass| PASSES.iter().position(|known| *known == pass))
        .unwrap_or(PASSES.len())
}

pub(super) fn parse_boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// The elements under `<unattend>` that Setup reads: one of these names in another namespace
/// is a mistake, not an element Setup ignores.
const UNATTEND_ROOT_CHILDREN: [&str; 2] = ["settings", "servicing"];

/// An element in a namespace of its own (not the unattend one, and not unqualified), which
/// Windows Setup skips.
fn is_foreign(namespace: Option<&str>) -> bool {
    namespace.is_some_and(|namespace| namespace != UNATTEND_NAMESPACE)
}

/// Where an element sits, for validation: its parent's local name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Context {
    Document,
    Root,
    Settings,
    Inside,
}

impl Parser<'_> {
    /// Reads a start tag, validates it in its context and returns the element with the context
    /// its children will have.
    pub(super) fn open(
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
                // Windows System Image Manager records the image it authored the file against
                // (`<cpi:offlineImage cpi:source="wim:...">`); Setup ignores elements of other
                // namespaces, so they are kept as they are.
                _ if is_foreign(namespace) && !UNATTEND_ROOT_CHILDREN.contains(&local) => {
                    Context::Inside
                }
                _ => {
                    return Err(self.error_at(
                        at,
                        format!(
                            "unexpected <{}>{} under <unattend> (expected <settings>)",
                            element.name,
                            namespace
                                .filter(|ns| *ns != UNATTEND_NAMESPACE)
                                .map(|ns| format!(" in namespace {ns}"))
                                .unwrap_or_default()
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
}
