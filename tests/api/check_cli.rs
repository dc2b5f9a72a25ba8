//! `scalebot check` reports every problem with its file and key.

use std::process::Command;

fn scalebot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scalebot"))
}

#[test]
fn the_shipped_config_and_catalog_are_valid() {
    let out = scalebot()
        .args(["check", "--config", "config/scalebot.example.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok:"), "{stdout}");
}

#[test]
fn broken_files_are_reported_with_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("commands")).expect("mkdir");
    std::fs::create_dir_all(root.join("charts")).expect("mkdir");
    std::fs::write(
        root.join("config.toml"),
        "[display]\ntimezone = \"Europe/Berlin\"\n[catalog]\ncommands_dir = \"commands\"\ncharts_dir = \"charts\"\n",
    )
    .expect("write");
    std::fs::write(
        root.join("commands/bad.toml"),
        "name = \"bad\"\nsummary = \"x\"\naction = \"launch\"\nchart = \"nope\"\n",
    )
    .expect("write");
    std::fs::write(
        root.join("commands/typo.toml"),
        "name = \"typo\"\nsumary = \"x\"\naction = \"throttles\"\n",
    )
    .expect("write");
    std::fs::write(
        root.join("charts/broken.toml"),
        "title = \"t\"\nwindow_minutes = 60\nperiod_seconds = 7\n[[series]]\nlabel = \"a\"\nnamespace = \"AWS/Lambda\"\nmetric = \"Throttles\"\nstat = \"sum\"\ncolor = \"red\"\n",
    )
    .expect("write");
    let out = scalebot()
        .args(["check", "--config", "config.toml"])
        .current_dir(root)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for expected in [
        "commands/bad.toml: key `action`: unknown action `launch`",
        "commands/bad.toml: key `chart`: no chart `nope`",
        "commands/typo.toml: key `sumary`",
        "charts/broken.toml: key `period_seconds`",
        "charts/broken.toml: key `series[0].stat`",
        "charts/broken.toml: key `series[0].color`",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }

    let out = scalebot()
        .args(["check", "--config", "missing.toml"])
        .current_dir(root)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("missing.toml"));
}
