//! `scalebot iam-policy` grants every AWS action the code can call and
//! nothing else: this reads `src/aws/*.rs`, finds each SDK call on the
//! clients of `Clients` (`self.lambda.get_function_concurrency()`), turns it
//! into its IAM action, and compares that set both ways with what the real
//! binary prints. The policy's only other actions are the ones AWS itself
//! checks when the bot makes one of those calls (listed below, with why).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The IAM prefix of each AWS SDK crate a client of `Clients` comes from.
const PREFIXES: &[(&str, &str)] = &[
    ("aws_sdk_cloudwatch", "cloudwatch"),
    ("aws_sdk_lambda", "lambda"),
    ("aws_sdk_applicationautoscaling", "application-autoscaling"),
    ("aws_sdk_costexplorer", "ce"),
    ("aws_sdk_rds", "rds"),
    ("aws_sdk_elasticache", "elasticache"),
    ("aws_sdk_sns", "sns"),
];

/// Actions the policy grants beyond the calls, by the call that needs them.
/// Application Auto Scaling checks, with the caller's credentials, that the
/// caller may do what scaling the target does (Lambda provisioned
/// concurrency, ElastiCache replicas, the target-tracking alarms), and
/// creates its service-linked role on the first registration; creating an
/// RDS proxy hands it a role.
const CHECKED_BY_AWS: &[(&str, &[&str])] = &[
    (
        "application-autoscaling:RegisterScalableTarget",
        &[
            "lambda:PutProvisionedConcurrencyConfig",
            "lambda:GetProvisionedConcurrencyConfig",
            "lambda:DeleteProvisionedConcurrencyConfig",
            "elasticache:DescribeReplicationGroups",
            "elasticache:IncreaseReplicaCount",
            "elasticache:DecreaseReplicaCount",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:PutMetricAlarm",
            "cloudwatch:DeleteAlarms",
            "iam:CreateServiceLinkedRole",
        ],
    ),
    ("rds:CreateDBProxy", &["iam:PassRole"]),
];

/// The actions that have no resource-level permissions: the only ones the
/// policy may grant on `"*"`.
const ONLY_ON_STAR: &[&str] = &[
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingActivities",
    "application-autoscaling:DescribeScalingPolicies",
    "ce:GetCostAndUsage",
    "cloudwatch:GetMetricData",
    "lambda:GetAccountSettings",
];

/// The code of a source file without its inline test module.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("a source file");
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The files of `src/aws/` that talk to AWS (the SDK mocks are tests').
fn aws_sources() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("src/aws"))
        .expect("src/aws")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter(|p| !p.ends_with("mocks.rs"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    files
}

/// The fields of `Clients` in `src/aws/mod.rs` and their IAM prefixes.
fn clients() -> BTreeMap<String, &'static str> {
    let code = code_of(&root().join("src/aws/mod.rs"));
    let body = code
        .split("struct Clients {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("src/aws/mod.rs has `struct Clients`");
    let mut out = BTreeMap::new();
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (field, ty) = line
            .trim_start_matches("pub(crate)")
            .trim()
            .split_once(':')
            .unwrap_or_else(|| panic!("a field of Clients: {line}"));
        let krate = ty.trim().split("::").next().unwrap_or_default();
        let prefix = PREFIXES
            .iter()
            .find(|(k, _)| *k == krate)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("a client of {krate}: add its IAM prefix to PREFIXES"));
        out.insert(field.trim().to_owned(), prefix);
    }
    assert_eq!(out.len(), PREFIXES.len(), "{out:?}");
    out
}

/// `get_function_concurrency` → `GetFunctionConcurrency`.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Every SDK call on a client field, as `prefix:Operation`, with where.
fn calls() -> BTreeMap<String, String> {
    let clients = clients();
    let mut out = BTreeMap::new();
    for file in aws_sources() {
        // Calls are split across lines (`self\n.lambda\n.op()`).
        let code: String = code_of(&file)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        for (field, prefix) in &clients {
            let needle = format!(".{field}.");
            for (at, _) in code.match_indices(&needle) {
                let rest = &code[at + needle.len()..];
                let op: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                // `.sns.clone()` is the SNS intake's state, not a client.
                if !op.is_empty() && op != "clone" && rest[op.len()..].starts_with('(') {
                    let name = file.file_name().expect("a name").to_string_lossy();
                    out.insert(format!("{prefix}:{}", pascal(&op)), name.into_owned());
                }
            }
        }
    }
    out
}

/// The `"service:Action"` names the code gives its calls (in errors and
/// metrics).
fn named_actions() -> BTreeSet<String> {
    let prefixes: BTreeSet<&str> = PREFIXES.iter().map(|(_, p)| *p).collect();
    let mut out = BTreeSet::new();
    for file in aws_sources() {
        for literal in code_of(&file).split('"').skip(1).step_by(2) {
            if let Some((prefix, action)) = literal.split_once(':')
                && prefixes.contains(prefix)
                && action
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase())
                && action.chars().all(|c| c.is_ascii_alphanumeric())
            {
                out.insert(literal.to_owned());
            }
        }
    }
    out
}

fn iam_policy(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scalebot"))
        .args(["iam-policy", "--config"])
        .arg(config)
        .args(["--account", "123456789012"])
        .current_dir(root())
        .output()
        .expect("runs")
}

fn policy_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the policy is JSON")
}

/// Action → the resources it is granted on, over all statements.
fn grants(policy: &Value) -> BTreeMap<String, BTreeSet<String>> {
    assert_eq!(policy["Version"], "2012-10-17");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in policy["Statement"].as_array().expect("statements") {
        assert_eq!(s["Effect"], "Allow", "{s}");
        let resources: Vec<String> = match &s["Resource"] {
            Value::String(r) => vec![r.clone()],
            Value::Array(list) => list
                .iter()
                .map(|r| r.as_str().expect("an ARN").to_owned())
                .collect(),
            other => panic!("Resource {other}"),
        };
        for a in s["Action"].as_array().expect("actions") {
            let a = a.as_str().expect("an action").to_owned();
            out.entry(a).or_default().extend(resources.iter().cloned());
        }
    }
    out
}

/// IAM compares action names without regard to case; the SDK's snake_case
/// loses the capitals of `DBInstances`.
fn lower(set: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    set.into_iter().map(|a| a.to_lowercase()).collect()
}

/// A config that lets the bot make every call: the shipped defaults, the
/// RDS proxy settings and a level that pages an SNS topic.
fn full_config(dir: &Path) -> PathBuf {
    let path = dir.join("full.toml");
    std::fs::write(
        &path,
        "[rds_proxy]\n\
         secret_arn = \"arn:aws:secretsmanager:eu-central-1:123456789012:secret:matbakh-db\"\n\
         role_arn = \"arn:aws:iam::123456789012:role/scalebot-rds-proxy\"\n\
         subnet_ids = [\"subnet-0abc\"]\n\
         [functions.extra-fn]\n\
         [[escalation.levels]]\nname = \"L1\"\n\
         [[escalation.levels]]\nname = \"L2\"\n\
         [[escalation.levels]]\nname = \"L3\"\n\
         sns_topics = [\"arn:aws:sns:eu-central-1:123456789012:oncall\"]\n\
         [[escalation.levels]]\nname = \"L4\"\n",
    )
    .expect("write the config");
    path
}

#[test]
fn the_policy_grants_every_call_the_code_makes_and_nothing_else() {
    let calls = calls();
    assert!(calls.len() >= 20, "the calls are found: {calls:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = policy_of(&iam_policy(&full_config(dir.path())));
    let granted = grants(&policy);

    let mut wanted = lower(calls.keys().cloned());
    for (call, checked) in CHECKED_BY_AWS {
        assert!(
            wanted.contains(&call.to_lowercase()),
            "{call} is no longer called; drop what AWS checks for it"
        );
        wanted.extend(checked.iter().map(|a| a.to_lowercase()));
    }
    let got = lower(granted.keys().cloned());
    let missing: Vec<_> = wanted.difference(&got).collect();
    let extra: Vec<_> = got.difference(&wanted).collect();
    assert!(
        missing.is_empty(),
        "the code calls these but the policy does not grant them: {missing:?} \
         (calls found: {calls:?}); add them to src/aws/iam_actions.rs"
    );
    assert!(
        extra.is_empty(),
        "the policy grants these but no code calls them: {extra:?}"
    );

    // What the code says a denied call needs is what the policy grants.
    for named in named_actions() {
        assert!(
            got.contains(&named.to_lowercase()),
            "src/aws names {named}, which the policy does not grant"
        );
    }

    // "*" only for the actions without resource-level permissions; every
    // other grant is on ARNs of the config's region and the given account.
    for (action, resources) in &granted {
        if ONLY_ON_STAR.contains(&action.as_str()) {
            assert_eq!(resources, &BTreeSet::from(["*".to_owned()]), "{action}");
            continue;
        }
        for r in resources {
            assert!(
                r.starts_with("arn:aws:")
                    && (r.contains(":eu-central-1:123456789012:")
                        || r.starts_with("arn:aws:iam::123456789012:role/")),
                "{action} on {r}"
            );
        }
    }
    let functions = &granted["lambda:UpdateFunctionConfiguration"];
    for f in ["persona-api", "auth-handler", "extra-fn"] {
        let arn = format!("arn:aws:lambda:eu-central-1:123456789012:function:{f}");
        assert!(functions.contains(&arn), "{f}: {functions:?}");
    }
    assert!(
        functions.iter().all(|a| !a.ends_with(":function:*")),
        "never every function: {functions:?}"
    );
    assert_eq!(
        granted["rds:DescribeDBInstances"],
        BTreeSet::from(["arn:aws:rds:eu-central-1:123456789012:db:matbakh-db".to_owned()])
    );
    assert_eq!(
        granted["iam:PassRole"],
        BTreeSet::from(["arn:aws:iam::123456789012:role/scalebot-rds-proxy".to_owned()])
    );
}

#[test]
fn without_proxy_settings_the_proxy_actions_are_left_out_and_said_so() {
    let out = iam_policy(Path::new("config/scalebot.example.toml"));
    let granted = grants(&policy_of(&out));
    for a in [
        "rds:CreateDBProxy",
        "rds:RegisterDBProxyTargets",
        "iam:PassRole",
    ] {
        assert!(!granted.contains_key(a), "{a} granted without [rds_proxy]");
    }
    assert!(granted.contains_key("rds:DescribeDBProxies"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("note: rds:CreateDBProxy, rds:RegisterDBProxyTargets and iam:PassRole"),
        "{stderr}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_scalebot"))
        .args(["iam-policy", "--config", "config/scalebot.example.toml"])
        .args(["--account", "12345"])
        .current_dir(root())
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("12-digit AWS account id"));
}

#[test]
fn the_scanner_finds_calls_split_over_lines() {
    let found = calls();
    assert_eq!(
        found
            .get("lambda:GetFunctionConcurrency")
            .map(String::as_str),
        Some("lambda.rs")
    );
    assert_eq!(
        found.get("rds:DescribeDbInstances").map(String::as_str),
        Some("rds.rs")
    );
    assert_eq!(pascal("describe_db_instances"), "DescribeDbInstances");
}
