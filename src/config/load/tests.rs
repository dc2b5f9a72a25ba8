use std::collections::BTreeMap;

use super::*;

/// Every value in a table by its dotted key; a list of tables by index.
fn leaves(prefix: &str, table: &Table, out: &mut BTreeMap<String, Value>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Table(t) => leaves(&path, t, out),
            Value::Array(items) if items.iter().all(Value::is_table) && !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Table(t) = item {
                        leaves(&format!("{path}[{i}]"), t, out);
                    }
                }
            }
            other => {
                out.insert(path, other.clone());
            }
        }
    }
}

fn file_leaves(text: &str) -> BTreeMap<String, Value> {
    let table: Table = toml::from_str(text).expect("valid TOML");
    let mut out = BTreeMap::new();
    leaves("", &table, &mut out);
    out
}

#[test]
fn every_default_is_the_one_the_example_documents() {
    let example = file_leaves(include_str!("../../../config/scalebot.example.toml"));
    let defaults = file_leaves(DEFAULTS);
    // The example shows the template on one function of its own.
    let documented = |key: &str| key.replace("functions.*.", "functions.persona-api.");
    for (key, value) in &defaults {
        assert_eq!(
            example.get(&documented(key)),
            Some(value),
            "{key} is {value} in {DEFAULTS_FILE}; config/scalebot.example.toml must show the same"
        );
    }
    // And the other way round: what the example sets beyond the defaults
    // is an example (people to mention, a reminder), not a default.
    let examples_only = |key: &str| {
        key.starts_with("roles.")
            || (key.starts_with("escalation.levels[")
                && [".mention", ".sns_topics", ".pagerduty"]
                    .iter()
                    .any(|k| key.ends_with(k)))
            || key == "escalation.levels[1].remind_every_seconds"
    };
    let defaulted: Vec<String> = defaults.keys().map(|k| documented(k)).collect();
    for key in example.keys() {
        assert!(
            defaulted.contains(key) || examples_only(key),
            "config/scalebot.example.toml sets {key}, which has no default in {DEFAULTS_FILE}"
        );
    }
}

#[test]
fn the_embedded_defaults_parse() {
    defaults_table().expect("config/defaults.toml is TOML");
    assert!(
        FUNCTION_DEFAULTS.is_ok(),
        "{:?}",
        FUNCTION_DEFAULTS.as_ref().err()
    );
}

#[test]
fn tables_merge_and_lists_replace() {
    let mut base: Table = toml::from_str("[a]\nx = 1\ny = [1, 2]\n[b]\nz = 3\n").expect("toml");
    let user: Table = toml::from_str("[a]\ny = [9]\n").expect("toml");
    lay_over(&mut base, user);
    assert_eq!(base["a"]["x"].as_integer(), Some(1));
    assert_eq!(base["a"]["y"].as_array().map(Vec::len), Some(1));
    assert_eq!(base["b"]["z"].as_integer(), Some(3));
}

#[test]
fn a_key_is_found_on_its_line() {
    let text = "# top\n[reports]\nfunctions = [\"a\",\n  \"b\"]\n[[escalation.levels]]\nname = \"x\"\n[functions.\"a b\"]\n";
    let map = |k: &str| Segment::Map { key: k.into() };
    let at = |segments: &[Segment]| line_of(text, segments);
    assert_eq!(at(&[map("reports"), map("functions")]), Some(3));
    assert_eq!(
        at(&[map("reports"), map("functions"), Segment::Seq { index: 1 }]),
        Some(4)
    );
    assert_eq!(
        at(&[
            map("escalation"),
            map("levels"),
            Segment::Seq { index: 0 },
            map("name")
        ]),
        Some(6)
    );
    assert_eq!(at(&[map("functions"), map("a b")]), Some(7));
    assert_eq!(
        key_of(&[map("runbook"), map("functions"), Segment::Seq { index: 2 }]),
        "runbook.functions[2]"
    );
}
