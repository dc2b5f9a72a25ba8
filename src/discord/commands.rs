//! The `/scale` application command, built from the catalog in
//! `commands/`: one subcommand per command file (a two-word command such as
//! `rds connections` becomes subcommand `connections` of group `rds`), one
//! option per argument, with choices where the file lists them and
//! autocomplete for function names. An invocation's options are turned back
//! into the text the catalog parses, so Slack and Discord share one parser.
//! The command is usable in servers only (`contexts` and
//! `integration_types`: guild), never in DMs.

use serde_json::{Value, json};
use serenity::model::application::{InstallationContext, InteractionContext};

use crate::catalog::{ArgKind, ArgSpec, Catalog, CommandSpec};

pub const COMMAND: &str = "scale";

/// Application command option types (Discord docs).
const SUB_COMMAND: u64 = 1;
const SUB_COMMAND_GROUP: u64 = 2;
const STRING: u64 = 3;
const INTEGER: u64 = 4;
const NUMBER: u64 = 10;

fn describe(s: &str) -> String {
    let s = s.trim();
    let s = if s.is_empty() { "—" } else { s };
    // 1–100 characters.
    crate::domain::truncate(s, 99)
}

fn option(arg: &ArgSpec) -> Value {
    // A number that also takes words (`clear`) must be a string option.
    let numeric = arg.choices.is_empty() && !arg.many;
    let kind = match arg.kind {
        ArgKind::Integer if numeric => INTEGER,
        ArgKind::Number if numeric => NUMBER,
        _ => STRING,
    };
    let mut o = json!({
        "type": kind,
        "name": arg.name.to_lowercase(),
        "description": describe(&arg.help),
        "required": arg.required,
    });
    if kind != STRING {
        if let Some(min) = arg.min {
            o["min_value"] = json!(min);
        }
        if let Some(max) = arg.max {
            o["max_value"] = json!(max);
        }
    }
    if arg.kind == ArgKind::Function && !arg.many {
        o["autocomplete"] = json!(true);
    } else if arg.kind == ArgKind::Word && !arg.choices.is_empty() && arg.choices.len() <= 25 {
        o["choices"] = Value::Array(
            arg.choices
                .iter()
                .map(|c| json!({"name": c, "value": c}))
                .collect(),
        );
    }
    o
}

fn subcommand(name: &str, spec: &CommandSpec) -> Value {
    let mut options: Vec<Value> = spec.args.iter().map(option).collect();
    // Discord wants the required options first; the catalog already puts
    // optional arguments last, this only keeps a bad file from being refused.
    options.sort_by_key(|o| !o["required"].as_bool().unwrap_or(false));
    json!({
        "type": SUB_COMMAND,
        "name": name,
        "description": describe(&spec.summary),
        "options": options,
    })
}

/// The body of `PUT /applications/{id}[/guilds/{guild}]/commands`.
pub fn definitions(catalog: &Catalog) -> Value {
    let mut top: Vec<Value> = Vec::new();
    let mut groups: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    let mut names: Vec<String> = Vec::new();
    for spec in catalog.iter() {
        names.push(spec.name.clone());
        match spec.name.split_once(' ') {
            Some((group, sub)) => groups
                .entry(group.to_owned())
                .or_default()
                .push(subcommand(sub, spec)),
            None => top.push(subcommand(&spec.name, spec)),
        }
    }
    for (group, subs) in groups {
        top.push(json!({
            "type": SUB_COMMAND_GROUP,
            "name": group,
            "description": describe(&format!("{group} commands")),
            "options": subs,
        }));
    }
    let mut help = json!({
        "type": SUB_COMMAND,
        "name": "help",
        "description": "List the commands, or explain one",
        "options": [{"type": STRING, "name": "command", "description": "a command", "required": false}],
    });
    if names.len() <= 25 {
        help["options"][0]["choices"] = Value::Array(
            names
                .iter()
                .map(|n| json!({"name": n, "value": n}))
                .collect(),
        );
    }
    top.push(help);
    json!([{
        "name": COMMAND,
        "type": 1,
        "description": "The auto-scaling runbook: charts, plans, incidents",
        "options": top,
        // In servers only (no DMs, no group DMs) and only when installed
        // to a server, not to a user: the ingress refuses the rest anyway.
        "contexts": [InteractionContext::Guild],
        "integration_types": [InstallationContext::Guild],
    }])
}

/// An option's value as the catalog reads it.
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `data` of an APPLICATION_COMMAND interaction as `/scale` text, e.g.
/// `rds connections matbakh-db`. `None` when it is not `/scale`.
pub fn text_of(catalog: &Catalog, data: &Value) -> Option<String> {
    if data["name"].as_str()? != COMMAND {
        return None;
    }
    let first = data["options"].as_array()?.first()?;
    let mut words = vec![first["name"].as_str()?.to_owned()];
    let mut options = first["options"].as_array().cloned().unwrap_or_default();
    if first["type"].as_u64() == Some(SUB_COMMAND_GROUP) {
        let sub = options.first()?.clone();
        words.push(sub["name"].as_str()?.to_owned());
        options = sub["options"].as_array().cloned().unwrap_or_default();
    }
    let name = words.join(" ");
    let get = |opt: &str| {
        options
            .iter()
            .find(|o| o["name"].as_str() == Some(opt))
            .and_then(|o| value_text(&o["value"]))
    };
    let mut text = vec![name.clone()];
    match catalog.get(&name) {
        Some(spec) => {
            for arg in &spec.args {
                if let Some(v) = get(&arg.name.to_lowercase()) {
                    text.push(v);
                }
            }
        }
        // Help, or a name the catalog no longer has (the parser answers).
        None => text.extend(options.iter().filter_map(|o| value_text(&o["value"]))),
    }
    Some(text.join(" ").trim().to_owned())
}

/// The focused option of an AUTOCOMPLETE interaction: its current text.
pub fn focused(data: &Value) -> Option<String> {
    fn walk(options: &Value) -> Option<String> {
        for o in options.as_array()? {
            if o["focused"].as_bool() == Some(true) {
                return Some(value_text(&o["value"]).unwrap_or_default());
            }
            if let Some(found) = walk(&o["options"]) {
                return Some(found);
            }
        }
        None
    }
    walk(&data["options"])
}

/// Up to 25 autocomplete choices among `names` that contain `typed`.
pub fn choices(names: &[String], typed: &str) -> Value {
    let typed = typed.to_lowercase();
    let picked: Vec<Value> = names
        .iter()
        .filter(|n| n.to_lowercase().contains(&typed))
        .take(25)
        .map(|n| json!({"name": n, "value": n}))
        .collect();
    json!({"type": 8, "data": {"choices": picked}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let root = env!("CARGO_MANIFEST_DIR");
        let charts =
            crate::chart::ChartCatalog::load(std::path::Path::new(&format!("{root}/charts")))
                .expect("charts");
        Catalog::load(
            std::path::Path::new(&format!("{root}/commands")),
            &crate::engine::action_names(),
            &charts.names(),
        )
        .expect("catalog")
    }

    #[test]
    fn every_command_becomes_a_valid_subcommand() {
        let defs = definitions(&catalog());
        let top = defs[0]["options"].as_array().cloned().unwrap_or_default();
        assert!(top.len() <= 25, "{} subcommands", top.len());
        let valid = |n: &str| {
            !n.is_empty()
                && n.chars().count() <= 32
                && n.chars()
                    .all(|c| c.is_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        };
        for o in &top {
            let name = o["name"].as_str().unwrap_or_default();
            assert!(valid(name), "{name}");
            let d = o["description"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .count();
            assert!((1..=100).contains(&d));
        }
        let rds = top.iter().find(|o| o["name"] == "rds").expect("rds group");
        assert_eq!(rds["type"], SUB_COMMAND_GROUP);
        let throttles = top
            .iter()
            .find(|o| o["name"] == "throttles")
            .expect("throttles");
        assert_eq!(throttles["options"][0]["autocomplete"], true);
        let concurrency = top
            .iter()
            .find(|o| o["name"] == "concurrency")
            .expect("concurrency");
        // `<n|clear>` must be a string option.
        assert_eq!(concurrency["options"][1]["type"], STRING);
        // Servers only: no DMs, no user installs.
        assert_eq!(defs[0]["contexts"], json!([0]));
        assert_eq!(defs[0]["integration_types"], json!([0]));
    }

    #[test]
    fn options_become_catalog_text() {
        let c = catalog();
        let data = json!({"name": "scale", "options": [{"name": "concurrency", "type": 1, "options": [
            {"name": "value", "type": 3, "value": "200"},
            {"name": "function", "type": 3, "value": "persona-api"}]}]});
        assert_eq!(
            text_of(&c, &data).as_deref(),
            Some("concurrency persona-api 200")
        );
        let data = json!({"name": "scale", "options": [{"name": "rds", "type": 2, "options": [
            {"name": "connections", "type": 1, "options": []}]}]});
        assert_eq!(text_of(&c, &data).as_deref(), Some("rds connections"));
        assert_eq!(text_of(&c, &json!({"name": "other"})), None);
        let auto = json!({"options": [{"name": "throttles", "options": [{"name": "function", "value": "pers", "focused": true}]}]});
        assert_eq!(focused(&auto).as_deref(), Some("pers"));
    }
}
