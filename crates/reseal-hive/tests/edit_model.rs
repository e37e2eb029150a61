//! Random edit sequences against an in-memory model; the committed hive is read back by hivex,
//! nt-hive and this crate, and must equal the model.

mod common;

use common::*;
use proptest::prelude::*;
use reseal_hive::{Hive, ValueType};
use reseal_testutil::{HivexKey, HivexValue};

const NAMES: &[&str] = &[
    "a",
    "A",
    "Grüße",
    "GRÜßE",
    "ΣΊΣΥΦΟΣ",
    "σίσυφος",
    "日本",
    "Key1",
    "key2",
    "S-1-5-21-1-2-3-1001",
];
const SIZES: &[usize] = &[0, 1, 4, 5, 100, 16343, 16344, 16345, 40000];

#[derive(Debug, Clone)]
enum Op {
    CreateKey(Vec<usize>),
    DeleteKey(Vec<usize>),
    SetValue(Vec<usize>, usize, usize, u8),
    DeleteValue(Vec<usize>, usize),
    RenameKey(Vec<usize>, usize),
}

fn path_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..NAMES.len(), 1..4)
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => path_strategy().prop_map(Op::CreateKey),
        1 => path_strategy().prop_map(Op::DeleteKey),
        3 => (path_strategy(), 0..NAMES.len(), 0..SIZES.len(), any::<u8>())
            .prop_map(|(p, n, s, seed)| Op::SetValue(p, n, s, seed)),
        1 => (path_strategy(), 0..NAMES.len()).prop_map(|(p, n)| Op::DeleteValue(p, n)),
        1 => (path_strategy(), 0..NAMES.len()).prop_map(|(p, n)| Op::RenameKey(p, n)),
    ]
}

/// Windows' folding ("σίσυφος" and "ΣΊΣΥΦΟΣ" are two keys: the final sigma stays as it is).
fn fold(name: &str) -> String {
    reseal_nt::upcase::upcase_str(name)
}

fn names(path: &[usize]) -> Vec<&'static str> {
    path.iter().map(|&i| NAMES[i]).collect()
}

fn child_at(key: &HivexKey, name: &str) -> Option<usize> {
    key.children
        .iter()
        .position(|c| fold(&c.name) == fold(name))
}

fn model_key<'m>(root: &'m mut HivexKey, path: &[&str]) -> Option<&'m mut HivexKey> {
    let mut key = root;
    for name in path {
        let at = child_at(key, name)?;
        key = &mut key.children[at];
    }
    Some(key)
}

fn data_of(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Applies `op` to the hive and the model; both must agree on success or failure.
fn apply(hive: &mut Hive, model: &mut HivexKey, op: &Op) {
    match op {
        Op::CreateKey(path) => {
            let path = names(path);
            let mut key = &mut *model;
            let mut created = false;
            for name in &path {
                let at = match child_at(key, name) {
                    Some(at) => at,
                    None => {
                        created = true;
                        key.children.push(HivexKey {
                            name: name.to_string(),
                            values: Vec::new(),
                            children: Vec::new(),
                        });
                        key.children.len() - 1
                    }
                };
                key = &mut key.children[at];
            }
            assert_eq!(hive.create_key(&path.join("\\")).unwrap(), created);
        }
        Op::DeleteKey(path) => {
            let path = names(path);
            let (last, above) = path.split_last().unwrap();
            let existed = match model_key(model, above) {
                Some(parent) => match child_at(parent, last) {
                    Some(at) => {
                        parent.children.remove(at);
                        true
                    }
                    None => false,
                },
                None => false,
            };
            assert_eq!(hive.delete_key(&path.join("\\")).unwrap(), existed);
        }
        Op::SetValue(path, value, size, seed) => {
            let path = names(path);
            let data = data_of(SIZES[*size], *seed);
            let result = hive.set_value(&path.join("\\"), NAMES[*value], ValueType::BINARY, &data);
            match model_key(model, &path) {
                Some(key) => {
                    result.unwrap();
                    let new = HivexValue {
                        name: NAMES[*value].to_string(),
                        value_type: ValueType::BINARY.0,
                        data,
                    };
                    match key
                        .values
                        .iter_mut()
                        .find(|v| fold(&v.name) == fold(NAMES[*value]))
                    {
                        // An existing value keeps its stored name.
                        Some(existing) => existing.data = new.data,
                        None => key.values.push(new),
                    }
                }
                None => assert!(result.is_err()),
            }
        }
        Op::DeleteValue(path, value) => {
            let path = names(path);
            let existed = match model_key(model, &path) {
                Some(key) => {
                    let before = key.values.len();
                    key.values.retain(|v| fold(&v.name) != fold(NAMES[*value]));
                    key.values.len() != before
                }
                None => false,
            };
            assert_eq!(
                hive.delete_value(&path.join("\\"), NAMES[*value]).unwrap(),
                existed
            );
        }
        Op::RenameKey(path, new_name) => {
            let path = names(path);
            let new_name = NAMES[*new_name];
            let result = hive.rename_key(&path.join("\\"), new_name);
            let (last, above) = path.split_last().unwrap();
            let parent = model_key(model, above);
            let renamed = parent.and_then(|parent| {
                let at = child_at(parent, last)?;
                match child_at(parent, new_name) {
                    Some(other) if other != at => None,
                    _ => {
                        parent.children[at].name = new_name.to_string();
                        Some(())
                    }
                }
            });
            assert_eq!(result.is_ok(), renamed.is_some(), "{result:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_match_the_model(
        minor in prop::sample::select(vec![3u32, 5, 6]),
        ops in prop::collection::vec(op_strategy(), 1..40),
    ) {
        let mut hive = Hive::new_empty("ROOT", minor);
        let mut model = HivexKey { name: "ROOT".to_string(), values: Vec::new(), children: Vec::new() };
        for op in &ops {
            apply(&mut hive, &mut model, op);
        }
        let committed = hive.commit();
        let reopened = Hive::from_bytes(committed.clone()).unwrap();
        let expected = normalized(model);
        prop_assert_eq!(first_difference(&normalized(our_tree(&reopened)), &expected, "ours"), None);
        assert_readers_see(&committed, &expected);
    }
}
