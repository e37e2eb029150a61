//! The `.reg` format: parsing every syntax, export layout (escaping, wrapping), and
//! export → parse → apply into a new hive giving the same tree as hivex sees it.

use reseal_hive::data::{encode_dword, encode_multi_sz, encode_qword, encode_sz};
use reseal_hive::reg_file::{self, RegOperation};
use reseal_hive::{Hive, ValueType};
use reseal_testutil::{hivex_tree_of_bytes, HivexKey};

const LABEL: &str = r"HKEY_LOCAL_MACHINE\SYSTEM";

fn set(key: &str, name: &str, value_type: ValueType, data: Vec<u8>) -> RegOperation {
    RegOperation::SetValue {
        key: key.to_string(),
        name: name.to_string(),
        value_type,
        data,
    }
}

#[test]
fn parses_every_syntax() {
    let text = "\u{feff}Windows Registry Editor Version 5.00\r\n\
        \r\n\
        ; a comment line\r\n\
        [HKEY_LOCAL_MACHINE\\SYSTEM\\Setup]\r\n\
        @=\"default\"\r\n\
        \"CmdLine\"=\"oobe\\\\windeploy.exe\"\r\n\
        \"Quote \\\"q\\\"\"=\"say \\\"hi\\\"\"\r\n\
        \"SetupType\"=dword:00000001\r\n\
        \"Short\"=dword:1f\r\n\
        \"Blob\"=hex:01,02,ff\r\n\
        \"Empty\"=hex:\r\n\
        \"None\"=hex(0):\r\n\
        \"Expand\"=hex(2):25,00,00,00\r\n\
        \"Multi\"=hex(7):61,00,00,00,\\\r\n\
          00,00\r\n\
        \"Q\"=hex(b):01,00,00,00,00,00,00,00\r\n\
        \"Odd\"=hex(100):aa\r\n\
        \"Gone\"=-\r\n\
          ; indented comment\r\n\
        [-HKEY_LOCAL_MACHINE\\SYSTEM\\Old]\r\n\
        [HKEY_LOCAL_MACHINE\\SYSTEM]\n\
        \"lf only\"=\"x\"\n";
    let ops = reg_file::parse(text).unwrap();
    let setup = r"HKEY_LOCAL_MACHINE\SYSTEM\Setup";
    assert_eq!(
        ops,
        vec![
            RegOperation::CreateKey {
                path: setup.to_string()
            },
            set(setup, "", ValueType::SZ, encode_sz("default")),
            set(
                setup,
                "CmdLine",
                ValueType::SZ,
                encode_sz(r"oobe\windeploy.exe")
            ),
            set(setup, "Quote \"q\"", ValueType::SZ, encode_sz("say \"hi\"")),
            set(setup, "SetupType", ValueType::DWORD, encode_dword(1)),
            set(setup, "Short", ValueType::DWORD, encode_dword(0x1f)),
            set(setup, "Blob", ValueType::BINARY, vec![1, 2, 0xff]),
            set(setup, "Empty", ValueType::BINARY, vec![]),
            set(setup, "None", ValueType::NONE, vec![]),
            set(setup, "Expand", ValueType::EXPAND_SZ, vec![0x25, 0, 0, 0]),
            set(setup, "Multi", ValueType::MULTI_SZ, encode_multi_sz(&["a"])),
            set(setup, "Q", ValueType::QWORD, encode_qword(1)),
            set(setup, "Odd", ValueType(0x100), vec![0xaa]),
            RegOperation::DeleteValue {
                key: setup.to_string(),
                name: "Gone".to_string()
            },
            RegOperation::DeleteKey {
                path: r"HKEY_LOCAL_MACHINE\SYSTEM\Old".to_string()
            },
            RegOperation::CreateKey {
                path: LABEL.to_string()
            },
            set(LABEL, "lf only", ValueType::SZ, encode_sz("x")),
        ]
    );
}

/// The error message of parsing `body` after the header line.
fn parse_error(body: &str) -> String {
    let text = format!("Windows Registry Editor Version 5.00\r\n\r\n{body}");
    reg_file::parse(&text).unwrap_err().to_string()
}

#[test]
fn errors_carry_line_numbers() {
    let cases = [
        ("\"x\"=\"y\"\r\n", "line 3:", "before any [key]"),
        ("[A]\r\n\"x\"=dword:123456789\r\n", "line 4:", "dword"),
        ("[A]\r\n\r\n\"x\"=hex:1,02\r\n", "line 5:", "hex byte 1"),
        ("[A]\r\n\"x\"=hex(zz):00\r\n", "line 4:", "hex(zz)"),
        (
            "[A]\r\n\"x\"=\"unterminated\r\n",
            "line 4:",
            "closing quote",
        ),
        ("[A]\r\n\"x\"=\"a\\tb\"\r\n", "line 4:", "escape"),
        ("[A]\r\n\"x\" \"y\"\r\n", "line 4:", "'='"),
        ("[A]\r\nnonsense\r\n", "line 4:", "expected"),
        ("[A\r\n", "line 3:", "[path]"),
        ("[-A]\r\n\"x\"=\"y\"\r\n", "line 4:", "deleted key"),
        ("[A]\r\n\"x\"=hex:01,\\\r\n", "line 4:", "end of the file"),
        ("[A]\r\n\"x\"=qword:1\r\n", "line 4:", "unknown data"),
    ];
    for (body, line, reason) in cases {
        let message = parse_error(body);
        assert!(
            message.contains(line) && message.contains(reason),
            "{body:?}: {message}"
        );
    }
    let wrong_header = reg_file::parse("REGEDIT4\r\n").unwrap_err().to_string();
    assert!(wrong_header.contains("line 1"), "{wrong_header}");
}

#[test]
fn string_data_ending_in_a_backslash_is_not_a_continuation() {
    let ops = reg_file::parse(
        "Windows Registry Editor Version 5.00\r\n[K]\r\n\"Dir\"=\"C:\\\\\"\r\n\"Next\"=dword:00000002\r\n",
    )
    .unwrap();
    assert_eq!(ops[1], set("K", "Dir", ValueType::SZ, encode_sz("C:\\")));
    assert_eq!(ops[2], set("K", "Next", ValueType::DWORD, encode_dword(2)));
}

#[test]
fn file_encodings_round_trip() {
    let text = "Windows Registry Editor Version 5.00\r\n\r\n[K\\Grüße]\r\n";
    let utf16 = reg_file::encode_file(text);
    assert_eq!(&utf16[..4], &[0xff, 0xfe, b'W', 0]);
    assert_eq!(reg_file::decode_file(&utf16).unwrap(), text);
    assert_eq!(reg_file::decode_file(text.as_bytes()).unwrap(), text);
    assert!(reg_file::decode_file(&[0xff, 0xfe, 0x41]).is_err());
    assert!(reg_file::decode_file(&[0xc3, 0x28]).is_err());
}

/// A hive with every kind of value the exporter has a form for, names that need escaping,
/// non-ASCII names and data long enough to wrap.
fn sample_hive() -> Hive {
    let mut hive = Hive::new_empty("ROOT", 5);
    hive.create_key(r"Setup\Status\SysprepStatus").unwrap();
    hive.create_key(r"Grüße\日本語\Ключ").unwrap();
    hive.create_key(r"Empty").unwrap();
    hive.create_key(r"Quotes and [brackets]").unwrap();
    hive.set_value("", "", ValueType::SZ, &encode_sz("root default"))
        .unwrap();
    hive.set_value(
        "Setup",
        "CmdLine",
        ValueType::SZ,
        &encode_sz(r"oobe\windeploy.exe"),
    )
    .unwrap();
    hive.set_value("Setup", "SetupType", ValueType::DWORD, &encode_dword(0x1f))
        .unwrap();
    hive.set_value(
        "Setup",
        "Path \"quoted\" \\ name",
        ValueType::SZ,
        &encode_sz("a \"b\" \\ c"),
    )
    .unwrap();
    hive.set_value(
        "Setup",
        "Multi",
        ValueType::MULTI_SZ,
        &encode_multi_sz(&["autocheck autochk *", "second line of text", "three"]),
    )
    .unwrap();
    hive.set_value(
        "Setup",
        "Expand",
        ValueType::EXPAND_SZ,
        &encode_sz(r"%SystemRoot%\system32"),
    )
    .unwrap();
    hive.set_value("Setup", "Q", ValueType::QWORD, &encode_qword(u64::MAX - 5))
        .unwrap();
    hive.set_value("Setup", "None", ValueType::NONE, &[1, 4, 0, 0, 0, 0, 0, 5])
        .unwrap();
    hive.set_value("Setup", "EmptyNone", ValueType::NONE, &[])
        .unwrap();
    let long: Vec<u8> = (0..=255u8).cycle().take(700).collect();
    hive.set_value(r"Setup\Status", "Long", ValueType::BINARY, &long)
        .unwrap();
    // Data the string and dword forms cannot carry exactly: they must come back as hex.
    hive.set_value(
        r"Setup\Status",
        "SzNoNul",
        ValueType::SZ,
        &[0x41, 0, 0x42, 0],
    )
    .unwrap();
    hive.set_value(
        r"Setup\Status",
        "SzLines",
        ValueType::SZ,
        &encode_sz("one\r\ntwo"),
    )
    .unwrap();
    hive.set_value(r"Setup\Status", "ShortDword", ValueType::DWORD, &[1, 2])
        .unwrap();
    hive.set_value(
        r"Setup\Status\SysprepStatus",
        "GeneralizationState",
        ValueType::DWORD,
        &encode_dword(7),
    )
    .unwrap();
    hive.set_value(
        r"Grüße\日本語\Ключ",
        "Значение",
        ValueType::SZ,
        &encode_sz("данные ✓"),
    )
    .unwrap();
    hive.set_value(r"Grüße", "", ValueType(0x1234), &[9, 9])
        .unwrap();
    hive
}

/// Keys and values sorted by name, so two trees compare regardless of list order.
fn normalized(mut key: HivexKey) -> HivexKey {
    key.values.sort_by(|a, b| a.name.cmp(&b.name));
    key.children = key.children.into_iter().map(normalized).collect();
    key.children.sort_by(|a, b| a.name.cmp(&b.name));
    key
}

#[test]
fn export_parse_apply_gives_the_same_tree() {
    let mut original = sample_hive();
    let text = reg_file::export(&original, "", LABEL).unwrap();
    let ops = reg_file::parse(&text).unwrap();
    let mut copy = Hive::new_empty("ROOT", 5);
    reg_file::apply(&mut copy, &ops, LABEL).unwrap();
    let original_tree = hivex_tree_of_bytes(&original.commit());
    let copy_tree = hivex_tree_of_bytes(&copy.commit());
    assert_eq!(normalized(copy_tree), normalized(original_tree.clone()));
    // Sanity: the oracle saw the tree we built, not two empty hives.
    let setup = original_tree
        .children
        .iter()
        .find(|k| k.name == "Setup")
        .unwrap();
    assert_eq!(setup.values.len(), 8);
}

#[test]
fn export_of_a_subtree_applies_under_the_label() {
    let original = sample_hive();
    let text = reg_file::export(&original, r"Setup\Status", LABEL).unwrap();
    assert!(text.contains("\r\n[HKEY_LOCAL_MACHINE\\SYSTEM\\Setup\\Status]\r\n"));
    assert!(!text.contains("CmdLine"));
    let mut copy = Hive::new_empty("ROOT", 5);
    reg_file::apply(&mut copy, &reg_file::parse(&text).unwrap(), LABEL).unwrap();
    let value = copy
        .value(r"Setup\Status\SysprepStatus", "GeneralizationState")
        .unwrap()
        .unwrap();
    assert_eq!(value.dword().unwrap(), 7);
}

#[test]
fn export_layout_matches_regedit() {
    let hive = sample_hive();
    let text = reg_file::export(&hive, "", LABEL).unwrap();
    assert!(text.starts_with("Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SYSTEM]\r\n@=\"root default\"\r\n"));
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "CRLF line ends only"
    );
    for line in [
        "\"CmdLine\"=\"oobe\\\\windeploy.exe\"",
        "\"SetupType\"=dword:0000001f",
        "\"Path \\\"quoted\\\" \\\\ name\"=\"a \\\"b\\\" \\\\ c\"",
        "\"Q\"=hex(b):fa,ff,ff,ff,ff,ff,ff,ff",
        "\"None\"=hex(0):01,04,00,00,00,00,00,05",
        "\"EmptyNone\"=hex(0):",
        "\"SzNoNul\"=hex(1):41,00,42,00",
        "\"ShortDword\"=hex(4):01,02",
        "@=hex(1234):09,09",
        "[HKEY_LOCAL_MACHINE\\SYSTEM\\Grüße\\日本語\\Ключ]",
        "\"Значение\"=\"данные ✓\"",
    ] {
        assert!(
            text.split("\r\n").any(|l| l == line),
            "missing line {line}\n{text}"
        );
    }
    // regedit's wrapping: continuation lines indented by two spaces, each wrapped line ending
    // with a comma and a backslash, none longer than 80 columns.
    let long_start = text.find("\"Long\"=hex:").unwrap();
    let long_lines: Vec<&str> = text[long_start..]
        .split("\r\n")
        .take_while(|l| !l.is_empty() && (l.starts_with("\"Long\"") || l.starts_with("  ")))
        .collect();
    assert!(long_lines.len() > 10);
    // `"Long"=hex:` is 11 columns; regedit wraps once a line reaches 77, so 22 bytes fit on
    // the first line and 25 on each continuation line (as in regedit's DigitalProductId exports).
    assert_eq!(long_lines[0].len(), 11 + 22 * 3 + 1, "{}", long_lines[0]);
    for line in &long_lines[1..long_lines.len() - 1] {
        assert_eq!(line.len(), 2 + 25 * 3 + 1, "{line}");
    }
    for line in &long_lines[..long_lines.len() - 1] {
        assert!(line.len() <= 80 && line.ends_with(",\\"), "{line}");
    }
    for line in &long_lines[1..] {
        assert!(line.starts_with("  ") && !line.starts_with("   "), "{line}");
    }
    // Keys in subkey-list order: a subkey block comes after its parent's values and before the
    // next sibling.
    let order: Vec<&str> = text.split("\r\n").filter(|l| l.starts_with('[')).collect();
    let hive_order: Vec<String> = hive
        .root()
        .unwrap()
        .subkeys()
        .unwrap()
        .iter()
        .map(|k| format!("[{LABEL}\\{}]", k.name().unwrap()))
        .collect();
    let top_level: Vec<&str> = order
        .iter()
        .copied()
        .filter(|l| l.matches('\\').count() == 2)
        .collect();
    assert_eq!(top_level, hive_order);
}

#[test]
fn apply_strips_the_root_label_case_insensitively_and_refuses_other_roots() {
    let ops = reg_file::parse(
        "Windows Registry Editor Version 5.00\r\n\r\n\
         [hkey_local_machine\\system\\A\\B]\r\n\"v\"=dword:00000005\r\n\
         [HKEY_LOCAL_MACHINE\\SYSTEM\\A\\B]\r\n\"w\"=\"x\"\r\n\"v\"=-\r\n\
         [-HKEY_LOCAL_MACHINE\\SYSTEM\\NotThere]\r\n",
    )
    .unwrap();
    let mut hive = Hive::new_empty("ROOT", 5);
    reg_file::apply(&mut hive, &ops, LABEL).unwrap();
    assert!(hive.value(r"A\B", "v").unwrap().is_none());
    assert_eq!(
        hive.value(r"A\B", "w").unwrap().unwrap().string().unwrap(),
        "x"
    );

    let elsewhere = reg_file::parse(
        "Windows Registry Editor Version 5.00\r\n[HKEY_LOCAL_MACHINE\\SYSTEMX\\A]\r\n",
    )
    .unwrap();
    let error = reg_file::apply(&mut hive, &elsewhere, LABEL).unwrap_err();
    assert!(error.to_string().contains("not under"), "{error}");
    let root_delete = reg_file::parse(
        "Windows Registry Editor Version 5.00\r\n[-HKEY_LOCAL_MACHINE\\SYSTEM]\r\n",
    )
    .unwrap();
    assert!(reg_file::apply(&mut hive, &root_delete, LABEL).is_err());
}

#[test]
fn names_with_line_breaks_are_refused_on_export() {
    let mut hive = Hive::new_empty("ROOT", 5);
    hive.create_key("K").unwrap();
    hive.set_value("K", "two\nlines", ValueType::DWORD, &encode_dword(1))
        .unwrap();
    let error = reg_file::export(&hive, "", LABEL).unwrap_err();
    assert!(error.to_string().contains("line break"), "{error}");
    let mut hive = Hive::new_empty("ROOT", 5);
    hive.create_key("bad\r\nkey").unwrap();
    assert!(reg_file::export(&hive, "", LABEL).is_err());
}
