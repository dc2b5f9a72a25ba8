use std::path::Path;

use super::*;
use crate::config::{DiscordSecrets, Secret, SlackSecrets};
use crate::discord::settings::DiscordMode;

fn parse(text: &str) -> Result<SettingsFile, ConfigError> {
    SettingsFile::parse(Path::new("x.toml"), text)
}

/// The problem as `scalebot check` prints it.
fn problem(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("{text:?} loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_match_the_documented_ones() {
    let s = parse("").expect("empty config is valid");
    assert_eq!(s.server.listen.to_string(), "127.0.0.1:3000");
    assert_eq!(s.slack.api_url.as_str(), "https://slack.com/api");
    assert_eq!(s.store.url, "sqlite://scalebot.db");
    assert_eq!(s.display.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(s.reports.weekly_day, chrono::Weekday::Mon);
    assert_eq!(s.runbook.functions.len(), 5);
    assert_eq!(s.escalation.levels.len(), 4);
    assert_eq!(s.escalation.dedicated_channel_at, Some(3));
    assert!(s.functions.is_empty());
    // `responders` is defined, empty, so that incident control defaults
    // to `responders` or `operators` and works with operators alone.
    assert_eq!(
        s.roles.iter().collect::<Vec<_>>(),
        [(&"responders".to_owned(), &Vec::<String>::new())]
    );
    assert_eq!(s.permissions.incidents, ["responders", "operators"]);
    assert_eq!(s.permissions.read, None);
    assert_eq!(s.demo.start, None);
    // The same values the tests' `SettingsFile::default()` starts from.
    let d = SettingsFile::default();
    assert_eq!(d.runbook.plan_ttl_seconds, s.runbook.plan_ttl_seconds);
}

#[test]
fn the_shipped_configs_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = SettingsFile::load(&root.join("config/scalebot.example.toml")).expect("example");
    let persona = FunctionName::parse("persona-api").expect("a name");
    assert_eq!(example.functions[&persona].max_provisioned, 500);
    assert_eq!(example.escalation.levels[1].remind_every_seconds, Some(600));
    let demo = SettingsFile::load(&root.join("config/demo.toml")).expect("demo");
    assert_eq!(demo.demo.speed, 20.0);
    assert_eq!(demo.demo.users, ["alice", "bob", "carol"]);
    assert_eq!(demo.server.listen.port(), 8080);
}

#[test]
fn a_function_section_starts_from_the_defaults() {
    let s = parse("[functions.guard-fn]\nmax_reserved = 50\n").expect("valid");
    let f = s.services().function("guard-fn");
    assert_eq!((f.min_reserved, f.max_reserved, f.memory_mb), (0, 50, 1024));
    let other = s.services().function("unconfigured");
    assert_eq!(other.max_reserved, 1000);
}

#[test]
fn unknown_keys_and_bad_values_name_the_key() {
    for (text, expected) in [
        (
            "[server]\nlisten_on = 1\n",
            "key `server.listen_on`: unknown field `listen_on`",
        ),
        ("[sever]\n", "key `sever`: unknown field `sever`"),
        (
            "\n[display]\ntimezone = \"Mars/Base\"\n",
            "key `display.timezone`: unknown time zone \"Mars/Base\" (line 3)",
        ),
        (
            "[reports]\ndaily_at = \"9 am\"\n",
            "key `reports.daily_at`: \"9 am\" is not a time HH:MM (line 2)",
        ),
        (
            "[reports]\nweekly_day = \"mo\"\n",
            "key `reports.weekly_day`",
        ),
        (
            "[reports]\nfunctions = [\"ok\", \"not ok\"]\n",
            "key `reports.functions[1]`: `not ok` is not a Lambda function name",
        ),
        (
            "[runbook]\nfunctions = [\"a;b\"]\n",
            "key `runbook.functions[0]`",
        ),
        (
            "[runbook]\ncost_runaway_target = 90.0\n",
            "key `runbook.cost_runaway_target`: must be between 0.1 and 0.9",
        ),
        (
            "[runbook]\nplan_ttl_seconds = 0\n",
            "key `runbook.plan_ttl_seconds`: must be at least 1",
        ),
        (
            "[functions.\"bad name\"]\nmax_reserved = 5\n",
            "is not a Lambda function name",
        ),
        (
            "[functions.f]\nmin_reserved = 20\nmax_reserved = 10\n",
            "key `functions.f`: min_reserved must be between 0 and max_reserved",
        ),
        (
            "[[escalation.levels]]\nname = \"only\"\n",
            "key `escalation.levels`: must list the runbook's four levels",
        ),
        (
            "[store]\nurl = \"mysql://x\"\n",
            "key `store.url`: must start with sqlite:// or postgres://",
        ),
        (
            "[aws]\nendpoint_url = \"not a url\"\n",
            "key `aws.endpoint_url`: not a URL",
        ),
        (
            "[aws]\nmax_attempts = 0\n",
            "key `aws.max_attempts`: must be at least 1",
        ),
        (
            "[slack]\napi_url = \"::\"\n",
            "key `slack.api_url`: not a URL",
        ),
        (
            "[server]\nmax_body_bytes = 10\n",
            "key `server.max_body_bytes`: must be at least 1024",
        ),
        (
            "[demo]\nspeed = 0\n",
            "key `demo.speed`: must be a number above 0",
        ),
        (
            "[demo]\nstart = \"tomorrow\"\n",
            "key `demo.start`: \"tomorrow\" is not an RFC 3339 time",
        ),
        (
            "[runbook]\ndry_run = \"yes\"\n",
            "key `runbook.dry_run`: invalid type",
        ),
    ] {
        let err = problem(text);
        assert!(err.starts_with("x.toml: "), "{err}");
        assert!(err.contains(expected), "{text:?}: {err}");
    }
    let err = problem("[server\n");
    assert!(
        err.contains("line 1"),
        "a syntax error keeps toml's own report: {err}"
    );
}

#[test]
fn the_platform_follows_the_bot_token() {
    let mut file = parse(
        "[discord]\napplication_id = \"1100000000000000001\"\nguild_id = \"42\"\nmode = \"http\"\n",
    )
    .expect("valid");
    let mut secrets = Secrets {
        slack: SlackSecrets::default(),
        discord: DiscordSecrets {
            bot_token: Some(Secret::new("t")),
            public_key: None,
        },
        ..Default::default()
    };
    assert!(secrets.is_discord());
    let err = file.require_for_serve(&secrets).unwrap_err();
    assert!(err.to_string().contains("DISCORD_PUBLIC_KEY"), "{err}");
    secrets.discord.public_key = Some(Secret::new("ab"));
    assert!(file.require_for_serve(&secrets).is_ok());
    secrets.discord.public_key = None;
    file.discord.mode = DiscordMode::Gateway;
    assert!(file.require_for_serve(&secrets).is_ok());
    let unnamed = SettingsFile::default();
    assert!(unnamed.require_for_serve(&secrets).is_err());
    secrets.slack.bot_token = Some(Secret::new("xoxb"));
    assert!(!secrets.is_discord());
    let err = file.require_for_serve(&secrets).unwrap_err();
    assert!(
        err.to_string()
            .contains("one process serves one chat platform"),
        "{err}"
    );
    assert!(!format!("{secrets:?}").contains("xoxb"));
}
