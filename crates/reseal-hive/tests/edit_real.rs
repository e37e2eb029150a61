//! Edits on real Windows hives (lh, lf, li and ri lists as Windows left them), checked with hivex,
//! nt-hive and the structure check.

mod common;

use common::*;
use reseal_hive::{data, Hive, ValueType};
use reseal_testutil::{HivexKey, HivexValue};

const HIVES: &[&str] = &[
    "hives/regipy/SAM",
    "hives/EricZimmerman/SAM",
    "hives/dfwinreg/NTUSER.DAT",
    "hives/notatin/win7_ntuser.dat",
    "hives/aiowinreg/nt/system.reg",
    "hives/regipy/BCD",
    "hives/hivex/special",
    "hives/yarp/ManySubkeysHive",
];

/// Paths (as name lists) of the keys one and two levels below the root.
fn shallow_paths(tree: &HivexKey) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for child in &tree.children {
        paths.push(vec![child.name.clone()]);
        for grandchild in &child.children {
            paths.push(vec![child.name.clone(), grandchild.name.clone()]);
        }
    }
    paths
}

fn refs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

#[test]
fn edits_on_real_hives_read_back_as_intended() {
    for relative in HIVES {
        let Some(bytes) = fixture_bytes(relative) else {
            continue;
        };
        let mut hive = Hive::from_bytes(bytes).unwrap();
        let mut expected = normalized(our_tree(&hive));
        let paths = shallow_paths(&expected);

        let new_value = HivexValue {
            name: "Grüße".to_string(),
            value_type: ValueType::BINARY.0,
            data: (0..40000u32).map(|i| i as u8).collect(),
        };
        hive.create_key("reseal\\Grüße\\ΣΊΣΥΦΟΣ").unwrap();
        hive.set_value("RESEAL\\grüße", "Grüße", ValueType::BINARY, &new_value.data)
            .unwrap();
        hive.set_value("", "root value", ValueType::SZ, &data::encode_sz("x"))
            .unwrap();
        let mut created = HivexKey {
            name: "reseal".to_string(),
            values: Vec::new(),
            children: vec![HivexKey {
                name: "Grüße".to_string(),
                values: vec![new_value],
                children: vec![HivexKey {
                    name: "ΣΊΣΥΦΟΣ".to_string(),
                    values: Vec::new(),
                    children: Vec::new(),
                }],
            }],
        };
        created = normalized(created);
        expected.values.push(HivexValue {
            name: "root value".to_string(),
            value_type: ValueType::SZ.0,
            data: data::encode_sz("x"),
        });

        let renamed = paths.iter().find(|p| p.len() == 2).cloned();
        if let Some(path) = &renamed {
            let new_name = "S-1-5-21-1004336348-1177238915-682003330-1001";
            hive.rename_key(&path.join("\\"), new_name).unwrap();
            tree_key(&mut expected, &refs(path)).name = new_name.to_string();
        }
        let deleted = paths
            .iter()
            .rev()
            .find(|p| renamed.as_ref().is_none_or(|r| !r.starts_with(p)))
            .cloned();
        if let Some(path) = &deleted {
            assert!(hive.delete_key(&path.join("\\")).unwrap());
            let (last, above) = path.split_last().unwrap();
            tree_key(&mut expected, &refs(above))
                .children
                .retain(|c| &c.name != last);
        }
        expected.children.push(created);
        let committed = hive.commit();
        assert_readers_see(&committed, &expected);
        eprintln!("{relative}: renamed {renamed:?}, deleted {deleted:?}");
    }
}
