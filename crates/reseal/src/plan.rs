//! [`Plan`]: the list of changes a run will make, built by providers through helpers that only add
//! a change when the image differs from the wanted state (which makes runs idempotent).

use reseal_hive::ValueType;

use crate::error::Result;
use crate::image::Image;

/// Everything one run will change, in order, with notes for the user.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The changes, in the order they apply.
    pub changes: Vec<Change>,
    /// Things the user should know (what was left alone and why).
    pub notes: Vec<Note>,
    /// Settings providers need in the answer file.
    pub answer_settings: Vec<AnswerSetting>,
}

/// One change and who asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The provider that planned it.
    pub provider: &'static str,
    /// Why: the Sysprep behaviour it reproduces (`"Generalize.xml: spopk.dll"`...).
    pub source: &'static str,
    /// What changes.
    pub action: Action,
}

/// One change to the image. Hive paths are image paths; key paths are below the hive root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Sets a value (the key exists or is created by an earlier `CreateKey`).
    SetValue {
        hive: String,
        key: String,
        name: String,
        value_type: ValueType,
        data: Vec<u8>,
        /// The value before, `None` when it did not exist.
        before: Option<(ValueType, Vec<u8>)>,
    },
    /// Deletes a value.
    DeleteValue {
        hive: String,
        key: String,
        name: String,
        before: (ValueType, Vec<u8>),
    },
    /// Creates a key (and missing keys above it).
    CreateKey { hive: String, key: String },
    /// Deletes a key with its subkeys and values.
    DeleteKey { hive: String, key: String },
    /// Renames a key (last path component) to `new_name`.
    RenameKey {
        hive: String,
        key: String,
        new_name: String,
    },
    /// Writes a file; `sensitive` contents (passwords) are never printed.
    WriteFile {
        path: String,
        contents: Vec<u8>,
        existed: bool,
        sensitive: bool,
    },
    /// Deletes a file.
    DeleteFile { path: String },
    /// Deletes a directory with everything in it.
    DeleteDirectory { path: String },
}

/// Something the user should know about the run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    /// The provider that wrote it.
    pub provider: &'static str,
    /// The note.
    pub message: String,
}

/// A setting another provider needs in the answer file (pass, component, XML path, value).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AnswerSetting {
    /// The provider that needs it.
    pub provider: &'static str,
    /// The configuration pass (`specialize`, `oobeSystem`...).
    pub pass: String,
    /// The component (`Microsoft-Windows-Shell-Setup`...).
    pub component: String,
    /// The element path below the component.
    pub path: Vec<String>,
    /// The value.
    pub value: String,
}

impl Plan {
    /// An empty plan.
    pub fn new() -> Plan {
        Plan::default()
    }

    /// `true` when the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Sets value `name` of `key` in `hive` unless it already has that type and data; creates the
    /// key first when missing.
    #[allow(clippy::too_many_arguments)]
    pub fn set_value(
        &mut self,
        image: &mut Image,
        provider: &'static str,
        source: &'static str,
        hive: &str,
        key: &str,
        name: &str,
        value_type: ValueType,
        data: &[u8],
    ) -> Result<()> {
        let _ = (image, provider, source, hive, key, name, value_type, data);
        todo!()
    }

    /// Deletes value `name` of `key` in `hive` when it exists.
    pub fn delete_value(
        &mut self,
        image: &mut Image,
        provider: &'static str,
        source: &'static str,
        hive: &str,
        key: &str,
        name: &str,
    ) -> Result<()> {
        let _ = (image, provider, source, hive, key, name);
        todo!()
    }

    /// Creates `key` in `hive` when it is missing.
    pub fn create_key(
        &mut self,
        image: &mut Image,
        provider: &'static str,
        source: &'static str,
        hive: &str,
        key: &str,
    ) -> Result<()> {
        let _ = (image, provider, source, hive, key);
        todo!()
    }

    /// Deletes `key` in `hive` when it exists.
    pub fn delete_key(
        &mut self,
        image: &mut Image,
        provider: &'static str,
        source: &'static str,
        hive: &str,
        key: &str,
    ) -> Result<()> {
        let _ = (image, provider, source, hive, key);
        todo!()
    }

    /// Renames `key` in `hive` to `new_name` when it exists and is not already named so.
    #[allow(clippy::too_many_arguments)]
    pub fn rename_key(
        &mut self,
        image: &mut Image,
        provider: &'static str,
        source: &'static str,
        hive: &str,
        key: &str,
        new_name: &str,
    ) -> Result<()> {
        let _ = (image, provider, source, hive, key, new_name);
        todo!()
    }

    /// Writes `contents` to the file at `path` unless it already holds exactly that.
    #[allow(clippy::too_many_arguments)]
    pub fn write_file(
        &mut self,
        image: &mut Image,
        provider: &'static str,
        source: &'static str,
        path: &str,
        contents: &[u8],
        sensitive: bool,
    ) -> Result<()> {
        let _ = (image, provider, source, path, contents, sensitive);
        todo!()
    }

    /// Deletes the file at `path` when it exists.
    pub fn delete_file(
        &mut self,
        image: &mut Image,
        provider: &'static str,
        source: &'static str,
        path: &str,
    ) -> Result<()> {
        let _ = (image, provider, source, path);
        todo!()
    }

    /// Deletes the files in `dir` whose names match `pattern` (`*` and `?` wildcards,
    /// case-insensitive, like `*.pf`). Subdirectories are left alone.
    pub fn delete_files_matching(
        &mut self,
        image: &mut Image,
        provider: &'static str,
        source: &'static str,
        dir: &str,
        pattern: &str,
    ) -> Result<()> {
        let _ = (image, provider, source, dir, pattern);
        todo!()
    }

    /// Deletes the directory at `path` with its contents when it exists.
    pub fn delete_directory(
        &mut self,
        image: &mut Image,
        provider: &'static str,
        source: &'static str,
        path: &str,
    ) -> Result<()> {
        let _ = (image, provider, source, path);
        todo!()
    }

    /// Adds a note for the user.
    pub fn note(&mut self, provider: &'static str, message: impl Into<String>) {
        self.notes.push(Note {
            provider,
            message: message.into(),
        });
    }

    /// Asks for a setting in the answer file.
    pub fn answer_setting(&mut self, setting: AnswerSetting) {
        self.answer_settings.push(setting);
    }
}
