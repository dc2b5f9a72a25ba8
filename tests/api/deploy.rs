//! The deploy files, checked by the field's own validators from the test
//! virtualenv (`scripts/test.sh` installs them from `tests/requirements*.txt`):
//! `cfn-lint` for `deploy/aws/scalebot.yaml`, `kubernetes-validate` for
//! `deploy/kubernetes/`, `checkov` for security findings, `yamllint` for
//! every YAML file in `deploy/`. Beside them, checks no validator makes: the
//! template's policy and `deploy/iam-policy.json` are what `scalebot
//! iam-policy` prints for the example config (`tests/api/iam.rs` checks
//! that this grants every AWS call the code makes and nothing else), the
//! Kubernetes objects select each other and the ConfigMap holds a config the
//! bot accepts, and the Grafana dashboard queries only metrics (and labels)
//! the running bot exports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::app::{Options, SIGNING_SECRET, now, sign, slash_body, spawn_app};
use crate::support::moto;

/// Kubernetes version the manifests are validated against.
const KUBERNETES_VERSION: &str = "1.33.0";

/// API groups of custom resources, which `kubernetes-validate` has no
/// schema for (it only warns); `service_monitor_scrapes_the_bots_metrics_port`
/// checks those objects instead.
const CRD_GROUPS: &[&str] = &["monitoring.coreos.com/"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A tool installed in the test virtualenv (`bin` of `$SCALEBOT_VENV`, or
/// of its `checkov` virtualenv), or a failure that says how to get it.
fn tool(name: &str) -> PathBuf {
    let venv = PathBuf::from(moto::venv());
    let path = if name == "checkov" {
        venv.join("checkov/bin/checkov")
    } else {
        venv.join("bin").join(name)
    };
    assert!(
        path.exists(),
        "{} not found: run the suite with scripts/test.sh (scripts/test-venv.sh installs \
         tests/requirements.txt and tests/requirements-checkov.txt into {})",
        path.display(),
        venv.display()
    );
    path
}

fn run(name: &str, args: &[&str]) -> Output {
    let bin = tool(name);
    Command::new(&bin)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

fn show(out: &Output) -> String {
    format!(
        "exit status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a validator and fails the test with its whole output unless it
/// exits with 0.
fn validate(name: &str, args: &[&str]) -> Output {
    let out = run(name, args);
    assert!(
        out.status.success(),
        "`{name} {}` failed:\n{}",
        args.join(" "),
        show(&out)
    );
    out
}

/// Every document of a YAML file as JSON, read by PyYAML from the test
/// virtualenv. CloudFormation's short tags (`!Ref X`) become `{"!Ref": X}`.
fn yaml_docs(path: &Path) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys, yaml
class Loader(yaml.SafeLoader):
    pass
def tagged(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"!" + suffix: value}
Loader.add_multi_constructor("!", tagged)
with open(sys.argv[1]) as f:
    docs = [d for d in yaml.load_all(f, Loader=Loader) if d is not None]
json.dump(docs, sys.stdout, default=str)
"#;
    let python = tool("python");
    let out = Command::new(&python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "reading {}:\n{}",
        path.display(),
        show(&out)
    );
    serde_json::from_slice(&out.stdout).expect("PyYAML's JSON")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("read deploy dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The Kubernetes objects of `deploy/kubernetes`, with the file each is in.
fn kubernetes_objects() -> Vec<(PathBuf, Value)> {
    yaml_files(&root().join("deploy/kubernetes"))
        .into_iter()
        .flat_map(|f| yaml_docs(&f).into_iter().map(move |d| (f.clone(), d)))
        .collect()
}

fn object<'a>(objects: &'a [(PathBuf, Value)], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects
        .iter()
        .filter(|(_, o)| o["kind"] == kind)
        .map(|(_, o)| o)
        .collect();
    assert_eq!(found.len(), 1, "exactly one {kind} in deploy/kubernetes");
    found[0]
}

fn is_crd(doc: &Value) -> bool {
    let api = doc["apiVersion"].as_str().unwrap_or_default();
    CRD_GROUPS.iter().any(|g| api.starts_with(g))
}

#[test]
fn cloudformation_template_passes_cfn_lint() {
    validate("cfn-lint", &["deploy/aws/scalebot.yaml"]);
}

#[test]
fn kubernetes_manifests_pass_kubernetes_validate_strict() {
    let mut files = Vec::new();
    for file in yaml_files(&root().join("deploy/kubernetes")) {
        let docs = yaml_docs(&file);
        assert!(!docs.is_empty(), "{} holds no object", relative(&file));
        let crds = docs.iter().filter(|d| is_crd(d)).count();
        // kubernetes-validate has no schema for a custom resource and only
        // warns about it; such files hold nothing else, and are checked by
        // service_monitor_scrapes_the_bots_metrics_port.
        assert!(
            crds == 0 || crds == docs.len(),
            "{} mixes custom resources with built-in ones",
            relative(&file)
        );
        if crds == 0 {
            files.push(relative(&file));
        }
    }
    assert!(files.len() >= 6, "the manifests are there: {files:?}");
    let mut args = vec!["--strict", "-k", KUBERNETES_VERSION];
    args.extend(files.iter().map(String::as_str));
    let out = validate("kubernetes-validate", &args);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    // A warning (an unknown kind or version) means a file was not checked.
    assert!(
        !text.contains("WARN") && !text.contains("ERROR"),
        "kubernetes-validate did not check everything:\n{}",
        show(&out)
    );
    for file in &files {
        assert!(
            text.contains(&format!("{file} passed")),
            "{file} was validated:\n{}",
            show(&out)
        );
    }
}

#[test]
fn checkov_finds_nothing_that_is_not_skipped_with_a_reason() {
    // --skip-download: no network; the checks ship with the package.
    validate(
        "checkov",
        &[
            "-d",
            "deploy",
            "--framework",
            "kubernetes",
            "cloudformation",
            "--compact",
            "--quiet",
            "--skip-download",
        ],
    );
}

#[test]
fn deploy_yaml_passes_yamllint() {
    validate(
        "yamllint",
        &["--strict", "-c", "deploy/yamllint.yaml", "deploy"],
    );
}

/// What `scalebot iam-policy` prints for the example config.
fn generated_policy(account: Option<&str>) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scalebot"));
    cmd.args(["iam-policy", "--config", "config/scalebot.example.toml"]);
    if let Some(account) = account {
        cmd.args(["--account", account]);
    }
    let out = cmd.current_dir(root()).output().expect("runs");
    assert!(out.status.success(), "{}", show(&out));
    serde_json::from_slice(&out.stdout).expect("the policy is JSON")
}

#[test]
fn iam_policy_json_is_what_iam_policy_prints_for_the_example_config() {
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/iam-policy.json")).expect("iam-policy.json"),
    )
    .expect("iam-policy.json is JSON");
    assert_eq!(
        file,
        generated_policy(None),
        "deploy/iam-policy.json is out of date: scalebot iam-policy --config \
         config/scalebot.example.toml > deploy/iam-policy.json"
    );
}

/// A template value with its `!Sub`s replaced by the strings CloudFormation
/// would make of them, given the pseudo parameters in `vars`.
fn resolve_subs(value: &Value, vars: &BTreeMap<&str, String>) -> Value {
    let substitute = |template: &str, own: &serde_json::Map<String, Value>| {
        let mut text = template.to_owned();
        for (name, v) in vars {
            text = text.replace(&format!("${{{name}}}"), v);
        }
        for (name, v) in own {
            let v = v.as_str().expect("a !Sub variable is a string");
            text = text.replace(&format!("${{{name}}}"), v);
        }
        assert!(!text.contains("${"), "unresolved in {template}");
        Value::String(text)
    };
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("!Sub") => match &map["!Sub"] {
            Value::String(t) => substitute(t, &serde_json::Map::new()),
            Value::Array(parts) if parts.len() == 2 => substitute(
                parts[0].as_str().expect("a !Sub template"),
                parts[1].as_object().expect("!Sub variables"),
            ),
            other => panic!("!Sub {other}"),
        },
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), resolve_subs(v, vars)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve_subs(v, vars)).collect()),
        other => other.clone(),
    }
}

#[test]
fn cloudformation_policy_is_what_iam_policy_prints_for_the_example_config() {
    const ACCOUNT: &str = "123456789012";
    let example =
        scalebot::settings_file::SettingsFile::load(&root().join("config/scalebot.example.toml"))
            .expect("the example config");
    let template = yaml_docs(&root().join("deploy/aws/scalebot.yaml"));
    let role = &template[0]["Resources"]["BotRole"];
    assert_eq!(role["Type"], "AWS::IAM::Role");
    let policies = role["Properties"]["Policies"]
        .as_array()
        .expect("the role's inline policies");
    assert_eq!(policies.len(), 1, "one inline policy");
    // The stack's partition, region and account stand for the config's.
    let vars = BTreeMap::from([
        ("AWS::Partition", "aws".to_owned()),
        ("AWS::Region", example.aws.region.clone()),
        ("AWS::AccountId", ACCOUNT.to_owned()),
    ]);
    let got = resolve_subs(&policies[0]["PolicyDocument"], &vars);
    let want = generated_policy(Some(ACCOUNT));
    assert_eq!(
        got["Version"], want["Version"],
        "the template's policy version"
    );
    let (got, want) = (&got["Statement"], &want["Statement"]);
    assert_eq!(
        got,
        want,
        "deploy/aws/scalebot.yaml's policy differs from `scalebot iam-policy --config \
         config/scalebot.example.toml`:\n--- template\n{}\n--- generated\n{}",
        serde_json::to_string_pretty(got).unwrap_or_default(),
        serde_json::to_string_pretty(want).unwrap_or_default()
    );
}

/// `matchLabels` is a subset of `labels`.
fn selects(match_labels: &Value, labels: &Value) -> bool {
    let m = match_labels.as_object().expect("matchLabels");
    !m.is_empty() && m.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn service_monitor_scrapes_the_bots_metrics_port() {
    // The minimal check of the one custom resource, for which
    // kubernetes-validate has no schema: the Prometheus Operator's
    // ServiceMonitor (monitoring.coreos.com/v1).
    let objects = kubernetes_objects();
    let monitor = object(&objects, "ServiceMonitor");
    let service = object(&objects, "Service");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(
        monitor["metadata"]["namespace"],
        service["metadata"]["namespace"]
    );
    let spec = monitor["spec"].as_object().expect("spec");
    for key in spec.keys() {
        assert!(
            ["selector", "namespaceSelector", "endpoints", "jobLabel"].contains(&key.as_str()),
            "unexpected ServiceMonitor spec.{key}"
        );
    }
    assert!(
        selects(
            &spec["selector"]["matchLabels"],
            &service["metadata"]["labels"]
        ),
        "the ServiceMonitor selects the Service"
    );
    let namespaces = spec["namespaceSelector"]["matchNames"]
        .as_array()
        .expect("namespaceSelector.matchNames");
    assert!(namespaces.contains(&service["metadata"]["namespace"]));
    let endpoints = spec["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 1);
    let endpoint = &endpoints[0];
    for key in endpoint.as_object().expect("endpoint").keys() {
        assert!(
            ["port", "path", "interval", "scrapeTimeout", "scheme"].contains(&key.as_str()),
            "unexpected ServiceMonitor endpoint key {key}"
        );
    }
    assert_eq!(endpoint["path"], "/metrics");
    let port_names: Vec<&Value> = service["spec"]["ports"]
        .as_array()
        .expect("Service ports")
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert!(
        port_names.contains(&&endpoint["port"]),
        "the endpoint names a port of the Service: {port_names:?}"
    );
}

#[test]
fn kubernetes_objects_fit_together_and_the_configmap_holds_a_valid_config() {
    let objects = kubernetes_objects();
    let namespace = object(&objects, "Namespace")["metadata"]["name"].clone();
    for (file, o) in &objects {
        if o["kind"] != "Namespace" {
            assert_eq!(
                o["metadata"]["namespace"],
                namespace,
                "{} {} is in the namespace",
                relative(file),
                o["kind"]
            );
        }
    }
    let deployment = object(&objects, "Deployment");
    let service = object(&objects, "Service");
    let pdb = object(&objects, "PodDisruptionBudget");
    let policy = object(&objects, "NetworkPolicy");
    let account = object(&objects, "ServiceAccount");
    let config_map = object(&objects, "ConfigMap");
    let pod = &deployment["spec"]["template"];
    let pod_labels = &pod["metadata"]["labels"];
    assert!(selects(
        &deployment["spec"]["selector"]["matchLabels"],
        pod_labels
    ));
    assert!(selects(&service["spec"]["selector"], pod_labels));
    assert!(selects(&pdb["spec"]["selector"]["matchLabels"], pod_labels));
    assert!(selects(
        &policy["spec"]["podSelector"]["matchLabels"],
        pod_labels
    ));
    assert_eq!(
        pod["spec"]["serviceAccountName"],
        account["metadata"]["name"]
    );
    assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
    assert_eq!(account["automountServiceAccountToken"], false);

    let containers = pod["spec"]["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(
        c["args"],
        serde_json::json!(["serve", "--config", "/etc/scalebot/scalebot.toml"])
    );
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");

    // Secrets come from the Secret by name, never from literal values.
    let env = c["env"].as_array().expect("env");
    let secret_env: BTreeMap<&str, &Value> = env
        .iter()
        .filter(|e| e.get("valueFrom").is_some())
        .map(|e| {
            (
                e["name"].as_str().expect("env name"),
                &e["valueFrom"]["secretKeyRef"],
            )
        })
        .collect();
    for name in [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "DISCORD_BOT_TOKEN",
        "DISCORD_PUBLIC_KEY",
        "PGPASSWORD",
    ] {
        let r = secret_env
            .get(name)
            .unwrap_or_else(|| panic!("{name} comes from a Secret"));
        assert_eq!(r["name"], "scalebot", "{name} from the Secret scalebot");
        assert_eq!(r["key"], name);
    }
    assert!(
        !objects.iter().any(|(_, o)| o["kind"] == "Secret"),
        "no Secret with values in deploy/kubernetes: kubectl create secret (see 30-deployment.yaml)"
    );

    // The ConfigMap's config is one the bot accepts, and fits the pod.
    let mounted = c["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["mountPath"] == "/etc/scalebot")
        .expect("the config is mounted at /etc/scalebot");
    let volume = pod["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mounted["name"])
        .expect("the config volume");
    assert_eq!(volume["configMap"]["name"], config_map["metadata"]["name"]);
    let text = config_map["data"]["scalebot.toml"]
        .as_str()
        .expect("data scalebot.toml");
    let settings = scalebot::settings_file::SettingsFile::parse(
        Path::new("20-configmap.yaml:scalebot.toml"),
        text,
    )
    .unwrap_or_else(|e| panic!("the ConfigMap's config is refused: {e}"));
    let container_port = |name: &str| {
        c["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("a container port named {name}"))
    };
    assert_eq!(settings.server.listen.port() as u64, container_port("http"));
    // The ServiceMonitor's port reaches server.metrics_listen, so the
    // public port (behind the Ingress) serves no /metrics.
    let metrics = settings
        .server
        .metrics_listen
        .expect("server.metrics_listen: /metrics off the public port");
    assert!(metrics.ip().is_unspecified(), "Prometheus reaches it");
    let monitor = object(&objects, "ServiceMonitor");
    let scraped = &monitor["spec"]["endpoints"][0]["port"];
    let service_port = service["spec"]["ports"]
        .as_array()
        .expect("Service ports")
        .iter()
        .find(|p| &p["name"] == scraped)
        .expect("the scraped port is the Service's");
    let target = service_port["targetPort"]
        .as_str()
        .expect("a named targetPort");
    assert_eq!(container_port(target), metrics.port() as u64);
    let allowed: Vec<u64> = policy["spec"]["ingress"][0]["ports"]
        .as_array()
        .expect("NetworkPolicy ingress ports")
        .iter()
        .filter_map(|p| p["port"].as_u64())
        .collect();
    assert!(allowed.contains(&(metrics.port() as u64)), "{allowed:?}");
    assert!(
        settings.server.listen.ip().is_unspecified(),
        "listens on all interfaces"
    );
    let store = url::Url::parse(&settings.store.url).expect("store.url");
    assert_eq!(
        store.scheme(),
        "postgres",
        "several replicas share PostgreSQL"
    );
    assert!(store.password().is_none(), "no password in the ConfigMap");
    let dockerfile = std::fs::read_to_string(root().join("deploy/Dockerfile")).expect("Dockerfile");
    for dir in [&settings.catalog.commands_dir, &settings.catalog.charts_dir] {
        let dir = dir.display().to_string();
        assert!(
            dockerfile
                .lines()
                .any(|l| l.starts_with("COPY") && l.ends_with(&format!(" {dir}"))),
            "the image holds {dir}"
        );
    }
    let uid = pod["spec"]["securityContext"]["runAsUser"]
        .as_u64()
        .expect("runAsUser");
    assert!(
        dockerfile.contains(&format!("USER {uid}")),
        "the image's USER is the pod's runAsUser {uid}"
    );
}

/// The identifiers of a PromQL expression: metric names with the label
/// names of their selectors, and the labels that `by`/`without`/`on`/
/// `ignoring`/`group_*` name. Functions, keywords, strings, durations,
/// numbers and Grafana variables are left out.
#[derive(Debug, Default)]
struct Promql {
    metrics: BTreeMap<String, BTreeSet<String>>,
    grouping: BTreeSet<String>,
}

fn parse_promql(expr: &str) -> Promql {
    // Keywords, and the aggregation operators (which may be followed by
    // `by (...)` instead of their parenthesis).
    const KEYWORDS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Promql::default();
    let mut last_metric: Option<String> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else if c == '$' {
            i += 1;
            while i < chars.len() && (ident(chars[i]) || chars[i] == '{' || chars[i] == '}') {
                i += 1;
            }
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c == '{' {
            // Label matchers: name op "value", ...
            let mut labels = BTreeSet::new();
            i += 1;
            while i < chars.len() && chars[i] != '}' {
                if chars[i] == '"' {
                    i += 1;
                    while i < chars.len() && chars[i] != '"' {
                        if chars[i] == '\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                    i += 1;
                } else if ident(chars[i]) {
                    let start = i;
                    while i < chars.len() && ident(chars[i]) {
                        i += 1;
                    }
                    labels.insert(chars[start..i].iter().collect::<String>());
                } else {
                    i += 1;
                }
            }
            i += 1;
            let metric = last_metric
                .take()
                .expect("a selector follows a metric name");
            out.metrics.entry(metric).or_default().extend(labels);
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if ident(c) {
            let start = i;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let next = chars.get(j).copied();
            let lower = word.to_ascii_lowercase();
            if [
                "by",
                "without",
                "on",
                "ignoring",
                "group_left",
                "group_right",
            ]
            .contains(&lower.as_str())
                && next == Some('(')
            {
                let close = chars[j..]
                    .iter()
                    .position(|&c| c == ')')
                    .expect("closing )")
                    + j;
                let list: String = chars[j + 1..close].iter().collect();
                out.grouping.extend(
                    list.split(',')
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned),
                );
                i = close + 1;
            } else if next == Some('(') || KEYWORDS.contains(&lower.as_str()) {
                // A function or aggregation, or a keyword.
            } else {
                out.metrics.entry(word.clone()).or_default();
                last_metric = Some(word);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Every PromQL expression of the dashboard: panel targets (rows included)
/// and template variable queries.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    fn panels(list: &Value, out: &mut Vec<String>) {
        for p in list.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push(t["expr"].as_str().expect("a target's expr").to_owned());
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if v["type"] != "query" {
            continue;
        }
        let q = match &v["query"] {
            Value::String(s) => s.clone(),
            q => q["query"].as_str().expect("a variable's query").to_owned(),
        };
        // label_values(metric, label): the metric and the label.
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .unwrap_or_else(|| panic!("a label_values() variable: {q}"));
        let (metric, label) = inner.rsplit_once(',').expect("label_values(metric, label)");
        out.push(format!("count by ({}) ({})", label.trim(), metric.trim()));
    }
    out
}

/// Metric families of an exposition (`# TYPE name kind` lines), as the
/// sample names a query uses: counters `_total`, histograms
/// `_bucket`/`_sum`/`_count`.
fn exported_names(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// The label names of every sample name in an exposition.
fn sample_labels(exposition: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..name_end].to_owned()).or_default();
        if line[name_end..].starts_with('{') {
            let body = &line[name_end + 1..];
            let mut in_quotes = false;
            let mut escaped = false;
            let mut start = 0;
            for (k, ch) in body.char_indices() {
                if in_quotes {
                    match (escaped, ch) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => in_quotes = false,
                        _ => {}
                    }
                } else if ch == '"' {
                    in_quotes = true;
                } else if ch == '=' {
                    labels.insert(body[start..k].trim_start_matches(',').trim().to_owned());
                } else if ch == ',' {
                    start = k;
                } else if ch == '}' {
                    break;
                }
            }
        }
    }
    out
}

/// Labels Prometheus adds to every scraped series (the ServiceMonitor's
/// target labels), which the bot does not export itself.
const TARGET_LABELS: &[&str] = &[
    "job",
    "instance",
    "namespace",
    "pod",
    "service",
    "endpoint",
    "container",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_dashboard_queries_only_metrics_the_bot_exports() {
    // The running bot, with AWS at a closed port. prometheus-client prints
    // a family (its # TYPE line too) only once it has a series, so the bot
    // first gets traffic of each kind it can get here.
    let app = spawn_app(Options {
        aws_endpoint: Some("http://127.0.0.1:9".into()),
        max_attempts: 1,
        ..Options::default()
    })
    .await;
    // Requests and acks: one accepted, one refused (stale).
    let ack = app.command("help", "U1", "C1").await;
    assert!(ack.is_object(), "help is answered: {ack}");
    let body = slash_body("help", "U1", "C1");
    let stale = now() - 600;
    let refused = app
        .http
        .post(format!("{}/slack/commands", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", stale.to_string())
        .header("x-slack-signature", sign(SIGNING_SECRET, stale, &body))
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 401);
    // AWS calls (unreachable), chat calls and a 429: the throttles command
    // fails on AWS and posts the error, whose first try Slack rate-limits.
    app.slack.rate_limit("chat.postMessage", 1, 0);
    app.command("throttles persona-api", "U1", "C0METRICS")
        .await;
    let wanted = [
        "scalebot_requests_total{",
        "scalebot_ack_seconds_bucket{",
        "scalebot_aws_calls_total{",
        "scalebot_chat_calls_total{",
        "scalebot_chat_rate_limited_total{",
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let exposition = loop {
        let text = app.get("/metrics").await.text().await.expect("metrics");
        if wanted.iter().all(|w| text.contains(w)) {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for series of {wanted:?}:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    app.stop().await;

    // Every family, with the label names of its series, from the bot's own
    // exporter given one observation of each kind: scheduled reports run
    // only on their schedule, so this is where their family shows.
    let m = scalebot::metrics::Metrics::default();
    m.request("/slack/commands", "ok", Some(0.001));
    m.aws_call("GetMetricData", "ok");
    m.chat_call("chat.postMessage", "ok");
    m.chat_rate_limited("chat.postMessage");
    m.scheduled_report("daily", "posted");
    let rendered = m.render();
    let families = exported_names(&rendered);
    let labels = sample_labels(&rendered);

    // The running bot exports those families, with those labels.
    let exported = exported_names(&exposition);
    let live = sample_labels(&exposition);
    for name in &families {
        if name.starts_with("scalebot_scheduled_reports") {
            continue;
        }
        assert!(
            exported.contains(name),
            "the running bot exports {name}:\n{exposition}"
        );
        assert_eq!(
            live.get(name),
            labels.get(name),
            "labels of {name} on the running bot"
        );
    }
    assert!(
        exported.is_subset(&families),
        "the running bot exports only the families of scalebot::metrics: {exported:?}"
    );

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/scalebot.json"))
            .expect("deploy/grafana/scalebot.json"),
    )
    .expect("the dashboard is JSON");
    let queries = dashboard_queries(&dashboard);
    assert!(
        queries.len() >= 10,
        "the dashboard has its panels: {queries:?}"
    );
    let mut used = BTreeSet::new();
    for q in &queries {
        let parsed = parse_promql(q);
        assert!(!parsed.metrics.is_empty(), "a query without a metric: {q}");
        let mut known: BTreeSet<String> = TARGET_LABELS.iter().map(|l| l.to_string()).collect();
        for (metric, selector_labels) in &parsed.metrics {
            assert!(
                families.contains(metric),
                "the dashboard queries {metric}, which the bot does not export \
                 (it exports {families:?}): {q}"
            );
            used.insert(metric.clone());
            let has = labels.get(metric).expect("labels of an exported family");
            for l in selector_labels {
                assert!(
                    has.contains(l) || TARGET_LABELS.contains(&l.as_str()),
                    "{metric} has no label {l} (it has {has:?}): {q}"
                );
            }
            known.extend(has.iter().cloned());
        }
        for l in &parsed.grouping {
            assert!(
                known.contains(l),
                "no metric of the query has the label {l}: {q}"
            );
        }
    }
    // Every family the bot exports has a panel.
    for family in [
        "requests",
        "ack_seconds",
        "aws_calls",
        "chat_calls",
        "chat_rate_limited",
        "scheduled_reports",
    ] {
        assert!(
            used.iter()
                .any(|m| m.starts_with(&format!("scalebot_{family}_"))),
            "no panel shows scalebot_{family}"
        );
    }
}

#[test]
fn promql_parser_finds_metrics_labels_and_grouping() {
    let p = parse_promql(
        r#"histogram_quantile(0.99, sum by (le, route) (rate(scalebot_ack_seconds_bucket{job=~"$job", route!="/a,b"}[$__rate_interval]))) or vector(0) / up"#,
    );
    assert_eq!(
        p.metrics.keys().cloned().collect::<BTreeSet<_>>(),
        set(&["scalebot_ack_seconds_bucket", "up"])
    );
    assert_eq!(
        p.metrics["scalebot_ack_seconds_bucket"],
        set(&["job", "route"])
    );
    assert_eq!(p.grouping, set(&["le", "route"]));
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}
