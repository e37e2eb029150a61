//! The answer-file model: parse, validate (with positions), read, merge, write, redact.

use reseal::answer_file::{AnswerFile, ParseError};
use reseal::AnswerSetting;

/// A password as the XML spells it (the value is `Tr0ub4dor&3`).
const PASSWORD: &str = "Tr0ub4dor&amp;3";

/// A realistic answer file: passwords, a command list, unknown elements and attributes, comments.
fn user_file() -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<!-- reference image answer file -->
<unattend xmlns="urn:schemas-microsoft-com:unattend">
    <settings pass="generalize">
        <component name="Microsoft-Windows-PnpSysprep" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State">
            <PersistAllDeviceInstalls>true</PersistAllDeviceInstalls>
        </component>
        <component name="Microsoft-Windows-Security-SPP" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
            <SkipRearm>1</SkipRearm>
        </component>
    </settings>
    <settings pass="specialize">
        <component name="Microsoft-Windows-Deployment" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State">
            <RunSynchronous>
                <RunSynchronousCommand wcm:action="add">
                    <Order>3</Order>
                    <Path>cmd /c echo first &amp; exit</Path>
                </RunSynchronousCommand>
            </RunSynchronous>
        </component>
    </settings>
    <settings pass="oobeSystem">
        <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
            <UserAccounts>
                <AdministratorPassword>
                    <Value>{PASSWORD}</Value>
                    <PlainText>true</PlainText>
                </AdministratorPassword>
                <LocalAccounts>
                    <LocalAccount wcm:action="add">
                        <Password>
                            <Value>{PASSWORD}</Value>
                            <PlainText>true</PlainText>
                        </Password>
                        <Name>operator</Name>
                    </LocalAccount>
                </LocalAccounts>
            </UserAccounts>
            <AutoLogon>
                <Password><Value>{PASSWORD}</Value></Password>
                <Enabled>false</Enabled>
            </AutoLogon>
            <VendorExtension vendor:flavour="x" xmlns:vendor="urn:example:vendor">kept &lt;as is&gt;</VendorExtension>
            <![CDATA[raw <data>]]>
        </component>
    </settings>
</unattend>
"#
    )
}

/// The specialize-pass computer name of an answer file.
fn computer_name(answer: &AnswerFile) -> Option<String> {
    answer.setting(
        "specialize",
        "Microsoft-Windows-Shell-Setup",
        &["ComputerName"],
    )
}

fn settings(entries: &[(&str, &str, &[&str], &str)]) -> Vec<AnswerSetting> {
    entries
        .iter()
        .map(|(pass, component, path, value)| AnswerSetting {
            provider: "test",
            pass: pass.to_string(),
            component: component.to_string(),
            path: path.iter().map(|s| s.to_string()).collect(),
            value: value.to_string(),
        })
        .collect()
}

fn rearm_and_name() -> Vec<AnswerSetting> {
    settings(&[
        (
            "specialize",
            "Microsoft-Windows-Shell-Setup",
            &["ComputerName"],
            "*",
        ),
        (
            "specialize",
            "Microsoft-Windows-Deployment",
            &["RunSynchronous", "RunSynchronousCommand", "Path"],
            r"cscript //B %WINDIR%\System32\slmgr.vbs /rearm",
        ),
    ])
}

#[test]
fn parse_write_parse_is_equal() {
    let parsed = AnswerFile::parse(&user_file()).unwrap();
    let written = parsed.to_xml();
    let reparsed = AnswerFile::parse(&written).unwrap();
    assert_eq!(reparsed, parsed);
    assert_eq!(reparsed.to_xml(), written, "writing is stable");
    // Everything the user wrote is in the output, unknown parts included.
    for kept in [
        "<!-- reference image answer file -->",
        r#"vendor:flavour="x""#,
        "kept &lt;as is&gt;",
        "<![CDATA[raw <data>]]>",
        "cmd /c echo first &amp; exit",
        PASSWORD,
    ] {
        assert!(written.contains(kept), "{kept} missing from:\n{written}");
    }
}

#[test]
fn generalize_settings_are_read() {
    let parsed = AnswerFile::parse(&user_file()).unwrap();
    assert_eq!(parsed.persist_all_device_installs(), Some(true));
    assert_eq!(parsed.skip_rearm(), Some(1));
    assert_eq!(
        parsed.setting(
            "oobeSystem",
            "Microsoft-Windows-Shell-Setup",
            &["UserAccounts", "LocalAccounts", "LocalAccount", "Name"]
        ),
        Some("operator".to_string())
    );
    let empty = AnswerFile::empty();
    assert_eq!(empty.persist_all_device_installs(), None);
    assert_eq!(empty.skip_rearm(), None);
}

#[test]
fn merge_keeps_every_user_setting_and_adds_ours() {
    let original = AnswerFile::parse(&user_file()).unwrap();
    let mut merged = original.clone();
    merged.merge(&rearm_and_name(), "amd64");
    let written = merged.to_xml();
    let reparsed = AnswerFile::parse(&written).unwrap();

    let user_settings: [(&str, &str, &[&str]); 6] = [
        (
            "generalize",
            "Microsoft-Windows-PnpSysprep",
            &["PersistAllDeviceInstalls"],
        ),
        (
            "generalize",
            "Microsoft-Windows-Security-SPP",
            &["SkipRearm"],
        ),
        (
            "oobeSystem",
            "Microsoft-Windows-Shell-Setup",
            &["UserAccounts", "AdministratorPassword", "Value"],
        ),
        (
            "oobeSystem",
            "Microsoft-Windows-Shell-Setup",
            &["AutoLogon", "Password", "Value"],
        ),
        (
            "oobeSystem",
            "Microsoft-Windows-Shell-Setup",
            &["AutoLogon", "Enabled"],
        ),
        (
            "oobeSystem",
            "Microsoft-Windows-Shell-Setup",
            &["VendorExtension"],
        ),
    ];
    for (pass, component, path) in user_settings {
        assert_eq!(
            reparsed.setting(pass, component, path),
            original.setting(pass, component, path),
            "{pass}/{component}/{path:?} changed"
        );
    }
    assert_eq!(computer_name(&reparsed), Some("*".to_string()));
    // The user's command stays first; ours is a new item with the next order.
    assert!(written.contains("cmd /c echo first &amp; exit"));
    let ours = written.find("slmgr.vbs /rearm").unwrap();
    let order_4 = written.find("<Order>4</Order>").unwrap();
    assert!(written.find("<Order>3</Order>").unwrap() < order_4 && order_4 < ours);
    // The new component carries the identity attributes, so the output validates.
    assert!(written.contains(
        r#"<component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS""#
    ));
    // The new specialize component sits in the existing specialize settings, before oobeSystem.
    assert_eq!(
        written.matches(r#"<settings pass="specialize">"#).count(),
        1
    );
    assert!(written.find("ComputerName").unwrap() < written.find(r#"pass="oobeSystem""#).unwrap());
}

#[test]
fn merging_twice_changes_nothing() {
    let mut once = AnswerFile::parse(&user_file()).unwrap();
    once.merge(&rearm_and_name(), "amd64");
    let mut twice = once.clone();
    twice.merge(&rearm_and_name(), "amd64");
    assert_eq!(twice.to_xml(), once.to_xml());
}

#[test]
fn merge_into_an_empty_file_gives_a_valid_file() {
    let mut answer = AnswerFile::empty();
    answer.merge(&rearm_and_name(), "x86");
    let written = answer.to_xml();
    let reparsed = AnswerFile::parse(&written).unwrap();
    assert_eq!(
        reparsed.setting(
            "specialize",
            "Microsoft-Windows-Deployment",
            &["RunSynchronous", "RunSynchronousCommand", "Order"]
        ),
        Some("1".to_string())
    );
    assert!(written.contains(r#"processorArchitecture="x86""#));
    assert!(written.contains(r#"wcm:action="add""#));
    assert!(!reparsed.contains_passwords());
}

#[test]
fn an_explicit_value_replaces_the_users() {
    let mut answer = AnswerFile::parse(
        r#"<unattend xmlns="urn:schemas-microsoft-com:unattend"><settings pass="specialize"><component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS"><ComputerName>OLD</ComputerName><TimeZone>UTC</TimeZone></component></settings></unattend>"#,
    )
    .unwrap();
    answer.merge(
        &settings(&[(
            "specialize",
            "Microsoft-Windows-Shell-Setup",
            &["ComputerName"],
            "NEW-PC",
        )]),
        "amd64",
    );
    let reparsed = AnswerFile::parse(&answer.to_xml()).unwrap();
    let read =
        |path: &[&str]| reparsed.setting("specialize", "Microsoft-Windows-Shell-Setup", path);
    assert_eq!(read(&["ComputerName"]), Some("NEW-PC".to_string()));
    assert_eq!(read(&["TimeZone"]), Some("UTC".to_string()));
}

fn parse_error(text: &str) -> ParseError {
    AnswerFile::parse(text).expect_err("must be refused")
}

#[test]
fn malformed_xml_reports_line_and_column() {
    let error = parse_error(
        "<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n  <settings pass=\"specialize\">\n    </setting>\n</unattend>\n",
    );
    assert_eq!((error.line, error.column), (3, 5), "{error}");
    assert!(
        error.to_string().starts_with("line 3, column 5: "),
        "{error}"
    );

    let error = parse_error("<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n  <settings");
    assert_eq!(error.line, 2, "{error}");
}

#[test]
fn schema_errors_report_line_and_column() {
    let head = "<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n";
    let component = |attributes: &str| {
        format!("{head}<settings pass=\"specialize\">\n  <component {attributes}/>\n</settings></unattend>")
    };
    let cases = [
        (
            "<unattend>\n</unattend>".to_string(),
            (1, 1),
            "namespace",
        ),
        (
            "<unattend xmlns=\"urn:other\"/>".to_string(),
            (1, 1),
            "urn:schemas-microsoft-com:unattend",
        ),
        (format!("{head}  <settings pass=\"bogus\"/>\n</unattend>"), (2, 3), "unknown pass 'bogus'"),
        (format!("{head}  <settings/>\n</unattend>"), (2, 3), "no 'pass'"),
        (format!("{head}  <other/>\n</unattend>"), (2, 3), "unexpected <other>"),
        (
            format!("{head}  <x:settings xmlns:x=\"urn:other\" pass=\"specialize\"/>\n</unattend>"),
            (2, 3),
            "unexpected <x:settings> in namespace urn:other",
        ),
        (
            format!("{head}<settings pass=\"specialize\">\n    <notacomponent/>\n</settings></unattend>"),
            (3, 5),
            "expected <component>",
        ),
        (
            component(r#"name="A" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral""#),
            (3, 3),
            "'versionScope'",
        ),
        (
            component(r#"name="A" processorArchitecture="sparc" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS""#),
            (3, 3),
            "processorArchitecture 'sparc'",
        ),
        (
            component(r#"name="A" processorArchitecture="amd64" publicKeyToken="xyz" language="neutral" versionScope="nonSxS""#),
            (3, 3),
            "publicKeyToken",
        ),
        (
            component(r#"name="A" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS" wcm:action="add""#),
            (3, 3),
            "prefix 'wcm'",
        ),
        (
            component(r#"name="A" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS" xmlns:wcm="urn:wrong""#),
            (3, 3),
            "prefix wcm is bound",
        ),
        (
            component(r#"name="A" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State" wcm:action="merge""#),
            (3, 3),
            "'merge'",
        ),
    ];
    for (text, position, expected) in cases {
        let error = parse_error(&text);
        assert_eq!((error.line, error.column), position, "{error} for\n{text}");
        assert!(
            error.message.contains(expected),
            "{error} lacks {expected:?}"
        );
    }
}

#[test]
fn utf16_and_bom_inputs_parse() {
    let text = user_file();
    let utf16 = reseal_nt::utf16::encode_le_with_bom(&text);
    let mut utf8_bom = vec![0xEF, 0xBB, 0xBF];
    utf8_bom.extend_from_slice(text.as_bytes());
    let plain = AnswerFile::parse(&text).unwrap();
    assert_eq!(AnswerFile::from_bytes(&utf16).unwrap(), plain);
    assert_eq!(AnswerFile::from_bytes(&utf8_bom).unwrap(), plain);
    let error = AnswerFile::from_bytes(b"<unattend>\n\xff</unattend>").unwrap_err();
    assert_eq!((error.line, error.column), (2, 1), "{error}");
}

#[test]
fn passwords_never_appear_in_debug_or_redacted_output() {
    let answer = AnswerFile::parse(&user_file()).unwrap();
    assert!(answer.contains_passwords());
    let debug = format!("{answer:?}");
    let pretty = format!("{answer:#?}");
    let redacted = answer.to_redacted_xml();
    for shown in [&debug, &pretty, &redacted] {
        assert!(!shown.contains("Tr0ub4dor"), "password leaked: {shown}");
        assert!(
            shown.contains("operator"),
            "non-secret settings stay visible"
        );
    }
    // The real file keeps them: Setup needs them.
    assert_eq!(answer.to_xml().matches("Tr0ub4dor").count(), 3);
}

#[test]
fn load_names_the_file_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.xml");
    std::fs::write(
        &path,
        "<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n<x/>",
    )
    .unwrap();
    let error = AnswerFile::load(&path).unwrap_err();
    assert_eq!(error.kind, reseal::ErrorKind::Usage);
    assert!(error.message.contains("bad.xml"), "{error}");
    assert!(error.message.contains("line 2, column 1"), "{error}");
    let missing = AnswerFile::load(&dir.path().join("missing.xml")).unwrap_err();
    assert!(missing.message.contains("missing.xml"), "{missing}");
}

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, limit: usize) -> usize {
        (self.next() % limit.max(1) as u64) as usize
    }
}

#[test]
fn damaged_files_are_errors_never_panics() {
    let original = user_file().into_bytes();
    let interesting = b"<>/=\"'&;:![]?-x \n\xff\x00";
    let mut random = XorShift(0x5eed_1234_abcd_9876);
    let mut refused = 0;
    for _ in 0..3000 {
        let mut bytes = original.clone();
        for _ in 0..1 + random.below(4) {
            if bytes.is_empty() {
                break;
            }
            let at = random.below(bytes.len());
            match random.below(3) {
                0 => bytes[at] = interesting[random.below(interesting.len())],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.truncate(at),
            }
        }
        match AnswerFile::from_bytes(&bytes) {
            Ok(answer) => {
                // Whatever parses must write back to something that parses to the same model.
                let mut merged = answer.clone();
                merged.merge(&rearm_and_name(), "amd64");
                assert_eq!(AnswerFile::parse(&answer.to_xml()).unwrap(), answer);
                AnswerFile::parse(&merged.to_xml()).unwrap();
            }
            Err(error) => {
                refused += 1;
                assert!(error.line >= 1 && error.column >= 1);
            }
        }
    }
    assert!(refused > 1000, "most damaged files are refused ({refused})");
}

#[test]
fn merging_follows_the_files_own_prefixes() {
    let text = r#"<u:unattend xmlns:u="urn:schemas-microsoft-com:unattend" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State">
  <u:settings pass="oobeSystem">
    <u:component name="Microsoft-Windows-International-Core" processorArchitecture="arm64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
      <u:UILanguage>de-DE</u:UILanguage>
    </u:component>
  </u:settings>
</u:unattend>"#;
    let mut answer = AnswerFile::parse(text).unwrap();
    answer.merge(&rearm_and_name(), "arm64");
    let written = answer.to_xml();
    let reparsed = AnswerFile::parse(&written).unwrap();
    assert!(
        written.contains(r#"<u:settings pass="specialize">"#),
        "{written}"
    );
    assert!(
        written.contains(r#"<u:RunSynchronousCommand wcm:action="add">"#),
        "{written}"
    );
    // wcm is declared on the root already, so it is not declared again.
    assert_eq!(written.matches("xmlns:wcm").count(), 1, "{written}");
    assert_eq!(
        reparsed.setting(
            "oobeSystem",
            "Microsoft-Windows-International-Core",
            &["UILanguage"]
        ),
        Some("de-DE".to_string())
    );
    assert_eq!(computer_name(&reparsed), Some("*".to_string()));
}
