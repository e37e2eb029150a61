//! Windows paths: `\` or `/` separated, relative to the volume root, case-insensitive.

/// Characters Windows forbids in a file name (besides the separators and controls).
const FORBIDDEN: &[char] = &['<', '>', ':', '"', '|', '?', '*'];

/// The longest name NTFS stores, in UTF-16 units.
const MAX_NAME_UNITS: usize = 255;

/// Splits `path` into its components. `C:` prefixes and leading separators are accepted and
/// ignored; `.` and `..` are refused rather than resolved, so a path never escapes its parent.
pub fn components(path: &str) -> Result<Vec<&str>, String> {
    let path = strip_drive(path);
    let mut parts = Vec::new();
    for part in path.split(['\\', '/']) {
        if part.is_empty() {
            continue;
        }
        if part == "." || part == ".." {
            return Err(format!("{part:?} components are not allowed"));
        }
        check_name(part)?;
        parts.push(part);
    }
    Ok(parts)
}

/// Whether `name` can be a Windows file name.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.encode_utf16().count() > MAX_NAME_UNITS {
        return Err(format!("name longer than {MAX_NAME_UNITS} UTF-16 units"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| FORBIDDEN.contains(c) || (*c as u32) < 0x20)
    {
        return Err(format!("name {name:?} contains {c:?}"));
    }
    if name.ends_with(' ') || name.ends_with('.') {
        return Err(format!("name {name:?} ends with a space or a dot"));
    }
    Ok(())
}

fn strip_drive(path: &str) -> &str {
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        &path[2..]
    } else {
        path
    }
}

/// The path as `\`-joined components, for messages and libntfs-3g's lookup cache.
pub fn display(parts: &[&str]) -> String {
    format!("\\{}", parts.join("\\"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_both_separators_and_drops_the_drive() {
        assert_eq!(
            components(r"C:\Windows/System32\\config\").unwrap(),
            ["Windows", "System32", "config"]
        );
        assert!(components("").unwrap().is_empty());
        assert!(components(r"\").unwrap().is_empty());
    }

    #[test]
    fn refuses_dot_components_and_forbidden_characters() {
        assert!(components(r"Windows\..\x").is_err());
        assert!(components(r"a\.\b").is_err());
        assert!(components("a*b").is_err());
        assert!(components("a\u{1}b").is_err());
        assert!(components("trailing.").is_err());
        assert!(components(&"n".repeat(256)).is_err());
        assert!(components(&"n".repeat(255)).is_ok());
    }
}
