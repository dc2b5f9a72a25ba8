//! `/scale policies [lambda|elasticache]`.
//!
//! Replaces the runbook's troubleshooting diagnosis for *Auto-scaling not
//! triggering*: `describe-scaling-policies`, then `describe-alarms` for the
//! alarm names pulled out of the first command with a nested `$(…)`. The
//! bash leaves the reader to match alarms to policies and to know what an
//! alarm state means; this puts each policy next to its alarms' states and
//! its target's min and max, and says for each one why it can or cannot
//! scale, pointing at the runbook's numbered solutions.
//!
//! `DescribeScalingPolicies` and `DescribeScalableTargets` (concurrently),
//! then one `DescribeAlarms` for every alarm of every policy.

use std::collections::HashMap;

use crate::catalog::Invocation;
use crate::chat::{Message, Tone};
use crate::cloud::{AlarmState, ScalableTarget, ScalingPolicy};
use crate::engine::request::{ActionError, Outcome, Reply};

use super::ActionContext;
use crate::format::{number, stamp};

pub(super) async fn run(cx: &ActionContext<'_>, inv: &Invocation) -> Result<Outcome, ActionError> {
    let namespace = match inv.word("service").unwrap_or("lambda") {
        "elasticache" => "elasticache",
        "lambda" => "lambda",
        other => {
            return Err(ActionError::Spec(format!(
                "a `service` of lambda or elasticache, not `{other}`"
            )));
        }
    };
    let max_listed =
        usize::try_from(inv.spec.param_i64("max_policies", 15).clamp(1, 40)).unwrap_or(15);
    let (policies, targets) = tokio::join!(
        cx.cloud.scaling_policies(namespace),
        cx.cloud.scalable_targets(namespace)
    );
    let (policies, targets) = (policies?, targets?);

    let names: Vec<String> = policies.iter().flat_map(|p| p.alarms.clone()).collect();
    // The policies are the answer; their alarms refine it. Without
    // cloudwatch:DescribeAlarms the reply still lists the policies and says
    // the states are unknown.
    let alarms = if names.is_empty() {
        Ok(Vec::new())
    } else {
        cx.cloud
            .alarm_states(&names)
            .await
            .map_err(|e| e.to_string())
    };

    let now = cx.clock.now();
    let mut message = report(
        namespace,
        &policies,
        &targets,
        alarms.as_deref().map_err(String::as_str),
        max_listed,
    );
    message.footer = Some(format!(
        "Application Auto Scaling and CloudWatch alarms · {} · {} · runbook: troubleshooting, auto-scaling not triggering",
        cx.region,
        stamp(now, cx.tz)
    ).into());
    Ok(Outcome::Reply(Reply {
        message,
        images: Vec::new(),
    }))
}

/// What one policy's alarms and target say about whether it can scale.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Alarms OK: the metric is between the thresholds, nothing to do.
    Quiet,
    /// An alarm is in ALARM: the policy should be scaling now.
    Firing(Vec<String>),
    /// Every alarm lacks data: the metric is not being published.
    NoData,
    /// Some alarms lack data, others do not.
    PartlyNoData(Vec<String>),
    /// Alarms the policy names that CloudWatch does not have.
    AlarmsMissing(Vec<String>),
    /// The policy names no alarms at all.
    NoAlarms,
    /// min = max: there is no room to scale, whatever the alarms say.
    Pinned(i32),
    /// No scalable target for the policy's resource and dimension.
    NoTarget,
    /// `DescribeAlarms` failed.
    Unknown,
}

impl Verdict {
    /// Whether the policy can react to load at all.
    fn is_problem(&self) -> bool {
        !matches!(self, Verdict::Quiet | Verdict::Firing(_) | Verdict::Unknown)
    }

    fn sentence(&self) -> String {
        let list = |names: &[String]| {
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Verdict::Quiet => {
                "alarms OK: the metric is within the target, so there is nothing to scale".into()
            }
            Verdict::Firing(names) => format!(
                "{} in ALARM, so it is asking to scale (unless capacity already sits at min or max); if \
                 `/scale activities` shows nothing recent, check the auto-scaling service's IAM permissions \
                 (solution 3) and the cooldowns (solution 4)",
                list(names)
            ),
            Verdict::NoData => "every alarm is INSUFFICIENT_DATA: metrics are not being published \
                 (solution 1: verify CloudWatch metrics are being published)"
                .into(),
            Verdict::PartlyNoData(names) => format!(
                "{} INSUFFICIENT_DATA: part of the metric is not being published (solution 1), and \
                 the policy cannot scale in that direction",
                list(names)
            ),
            Verdict::AlarmsMissing(names) => format!(
                "its alarm{} {} no longer exist{}: the policy cannot trigger; putting the policy again \
                 (`/scale policy`) recreates them (solution 2)",
                if names.len() == 1 { "" } else { "s" },
                list(names),
                if names.len() == 1 { "s" } else { "" }
            ),
            Verdict::NoAlarms => {
                "no CloudWatch alarms are attached, so nothing can trigger it; putting \
                 the policy again (`/scale policy`) recreates a target-tracking policy's alarms (solution 2)"
                    .into()
            }
            Verdict::Pinned(n) => format!(
                "its scalable target has min = max = {n}, so it cannot change capacity whatever its alarms say"
            ),
            Verdict::NoTarget => {
                "its resource has no scalable target, so there is nothing to scale".into()
            }
            Verdict::Unknown => "alarm states unknown".into(),
        }
    }
}

fn target_of<'t>(
    policy: &ScalingPolicy,
    targets: &'t [ScalableTarget],
) -> Option<&'t ScalableTarget> {
    targets
        .iter()
        .find(|t| t.resource_id == policy.resource_id && t.dimension == policy.dimension)
}

/// The verdict for one policy. The target comes first: with no room to
/// scale, the alarms do not matter.
fn verdict(
    policy: &ScalingPolicy,
    target: Option<&ScalableTarget>,
    alarms: Option<&HashMap<&str, &AlarmState>>,
) -> Verdict {
    match target {
        None => return Verdict::NoTarget,
        Some(t) if t.min == t.max => return Verdict::Pinned(t.min),
        Some(_) => {}
    }
    if policy.alarms.is_empty() {
        return Verdict::NoAlarms;
    }
    let Some(alarms) = alarms else {
        return Verdict::Unknown;
    };
    let missing: Vec<String> = policy
        .alarms
        .iter()
        .filter(|n| !alarms.contains_key(n.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Verdict::AlarmsMissing(missing);
    }
    let in_state = |state: &str| -> Vec<String> {
        policy
            .alarms
            .iter()
            .filter(|n| alarms.get(n.as_str()).is_some_and(|a| a.state == state))
            .cloned()
            .collect()
    };
    let firing = in_state("ALARM");
    if !firing.is_empty() {
        return Verdict::Firing(firing);
    }
    let no_data = in_state("INSUFFICIENT_DATA");
    if no_data.len() == policy.alarms.len() {
        Verdict::NoData
    } else if !no_data.is_empty() {
        Verdict::PartlyNoData(no_data)
    } else {
        Verdict::Quiet
    }
}

fn seconds(v: Option<i32>) -> String {
    v.map(|s| format!("{s} s"))
        .unwrap_or_else(|| "default".into())
}

fn no_policies(namespace: &str, targets: &[ScalableTarget]) -> String {
    if targets.is_empty() {
        format!(
            "No scaling policies and no scalable targets in the `{namespace}` namespace: nothing here \
             scales automatically."
        )
    } else {
        format!(
            "No scaling policies in the `{namespace}` namespace: {} scalable target{} registered, but \
             nothing will change {} capacity automatically.",
            targets.len(),
            if targets.len() == 1 { " is" } else { "s are" },
            if targets.len() == 1 { "its" } else { "their" }
        )
    }
}

/// The first line: all fine, or the first problem (they are sorted first).
fn verdict_line(judged: &[(&ScalingPolicy, Verdict)], problems: usize, total: usize) -> String {
    if problems == 0 {
        return format!(
            "*Verdict:* all {total} polic{} can trigger.",
            if total == 1 { "y" } else { "ies" }
        );
    }
    let (p, v) = &judged[0];
    if problems > 1 {
        format!(
            "*Verdict:* {problems} of {total} policies have a problem. First, `{}`: {}.",
            p.name,
            v.sentence()
        )
    } else {
        format!("*Verdict:* `{}`: {}.", p.name, v.sentence())
    }
}

/// The reply, apart from its footer.
fn report(
    namespace: &str,
    policies: &[ScalingPolicy],
    targets: &[ScalableTarget],
    alarms: Result<&[AlarmState], &str>,
    max_listed: usize,
) -> Message {
    let by_name: Option<HashMap<&str, &AlarmState>> = alarms
        .ok()
        .map(|all| all.iter().map(|a| (a.name.as_str(), a)).collect());
    let title = Some(format!("Scaling policies: {namespace}"));
    let targets_field = targets_text(targets);

    if policies.is_empty() {
        return Message {
            title,
            tone: Tone::Warning,
            text: no_policies(namespace, targets).into(),
            ..Default::default()
        }
        .field("Scalable targets (min – max)", targets_field);
    }

    let mut judged: Vec<(&ScalingPolicy, Verdict)> = policies
        .iter()
        .map(|p| (p, verdict(p, target_of(p, targets), by_name.as_ref())))
        .collect();
    // Problems first: they are what the person asking is looking for.
    judged.sort_by_key(|(p, v)| (!v.is_problem(), p.name.clone()));
    let problems = judged.iter().filter(|(_, v)| v.is_problem()).count();

    let mut text = verdict_line(&judged, problems, policies.len());
    if let Err(why) = alarms {
        text.push_str(&format!("\nAlarm states are unknown: {why}."));
    }
    let mut message = Message {
        title,
        tone: if problems == 0 {
            Tone::Good
        } else {
            Tone::Warning
        },
        text: text.into(),
        ..Default::default()
    };
    for (policy, v) in judged.iter().take(max_listed) {
        message = message.field(
            policy.name.clone(),
            policy_text(policy, target_of(policy, targets), v, by_name.as_ref()),
        );
    }
    if judged.len() > max_listed {
        message = message.field(
            format!("{} more", judged.len() - max_listed),
            "not listed; the ones above are sorted problems first".to_owned(),
        );
    }
    message.field("Scalable targets (min – max)", targets_field)
}

fn policy_text(
    policy: &ScalingPolicy,
    target: Option<&ScalableTarget>,
    verdict: &Verdict,
    alarms: Option<&HashMap<&str, &AlarmState>>,
) -> String {
    let kind = if policy.policy_type == "TargetTrackingScaling" {
        "target tracking"
    } else {
        policy.policy_type.as_str()
    };
    let capacity = target
        .map(|t| format!("capacity {} – {}", t.min, t.max))
        .unwrap_or_else(|| "no scalable target".into());
    let mut lines = vec![format!("`{}` · {kind} · {capacity}", policy.resource_id)];
    let mut goal = Vec::new();
    if let Some(v) = policy.target_value {
        goal.push(format!("target {}", target_value(v)));
    }
    if let Some(m) = &policy.predefined_metric {
        goal.push(m.clone());
    }
    if !goal.is_empty() {
        lines.push(goal.join(" of "));
    }
    let mut cooldowns = format!(
        "cooldown out {} · in {}",
        seconds(policy.scale_out_cooldown),
        seconds(policy.scale_in_cooldown)
    );
    if policy.disable_scale_in == Some(true) {
        cooldowns.push_str(" · scale-in disabled");
    }
    lines.push(cooldowns);
    for name in &policy.alarms {
        let state = match alarms {
            Some(all) => all
                .get(name.as_str())
                .map(|a| a.state.as_str())
                .unwrap_or("missing"),
            None => "unknown",
        };
        lines.push(format!("{} `{name}`", state_mark(state)));
    }
    let mark = if verdict.is_problem() {
        "⚠️"
    } else {
        "✅"
    };
    lines.push(format!("{mark} {}", capitalise(&verdict.sentence())));
    lines.join("\n")
}

/// Utilization targets are ratios (0.7) for some metrics and percentages
/// (70) for others; shown as AWS holds them.
fn target_value(v: f64) -> String {
    if v.fract() == 0.0 || v >= 10.0 {
        number(v)
    } else {
        format!("{v}")
    }
}

fn state_mark(state: &str) -> String {
    match state {
        "OK" => "OK".into(),
        "ALARM" => "*ALARM*".into(),
        other => other.to_owned(),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn targets_text(targets: &[ScalableTarget]) -> String {
    if targets.is_empty() {
        return "none registered".into();
    }
    let mut lines: Vec<String> = targets
        .iter()
        .take(20)
        .map(|t| {
            let pinned = if t.min == t.max { " (pinned)" } else { "" };
            format!("`{}` {} – {}{pinned}", t.resource_id, t.min, t.max)
        })
        .collect();
    if targets.len() > 20 {
        lines.push(format!("…and {} more", targets.len() - 20));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIM: &str = "lambda:function:ProvisionedConcurrency";

    fn policy(name: &str, resource: &str, alarms: &[&str]) -> ScalingPolicy {
        ScalingPolicy {
            name: name.into(),
            namespace: "lambda".into(),
            resource_id: resource.into(),
            dimension: DIM.into(),
            policy_type: "TargetTrackingScaling".into(),
            target_value: Some(0.7),
            predefined_metric: Some("LambdaProvisionedConcurrencyUtilization".into()),
            scale_in_cooldown: Some(120),
            scale_out_cooldown: Some(30),
            disable_scale_in: Some(false),
            alarms: alarms.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn target(resource: &str, min: i32, max: i32) -> ScalableTarget {
        ScalableTarget {
            namespace: "lambda".into(),
            resource_id: resource.into(),
            dimension: DIM.into(),
            min,
            max,
        }
    }

    fn alarm(name: &str, state: &str) -> AlarmState {
        AlarmState {
            name: name.into(),
            state: state.into(),
            reason: String::new(),
        }
    }

    fn judge(p: &ScalingPolicy, targets: &[ScalableTarget], alarms: &[AlarmState]) -> Verdict {
        let by_name: HashMap<&str, &AlarmState> =
            alarms.iter().map(|a| (a.name.as_str(), a)).collect();
        verdict(p, target_of(p, targets), Some(&by_name))
    }

    #[test]
    fn verdicts_follow_the_alarm_states() {
        let r = "function:persona-api:live";
        let t = [target(r, 1, 10)];
        let p = policy("tracking", r, &["high", "low"]);
        let judge_states =
            |high: &str, low: &str| judge(&p, &t, &[alarm("high", high), alarm("low", low)]);
        assert_eq!(judge_states("OK", "OK"), Verdict::Quiet);
        assert_eq!(
            judge_states("ALARM", "OK"),
            Verdict::Firing(vec!["high".into()])
        );
        assert_eq!(
            judge_states("INSUFFICIENT_DATA", "INSUFFICIENT_DATA"),
            Verdict::NoData
        );
        assert_eq!(
            judge_states("OK", "INSUFFICIENT_DATA"),
            Verdict::PartlyNoData(vec!["low".into()])
        );
        assert_eq!(
            judge(&p, &t, &[alarm("high", "OK")]),
            Verdict::AlarmsMissing(vec!["low".into()])
        );
        assert_eq!(judge(&policy("bare", r, &[]), &t, &[]), Verdict::NoAlarms);
        assert_eq!(
            judge(&p, &[target(r, 5, 5)], &[alarm("high", "ALARM")]),
            Verdict::Pinned(5)
        );
        assert_eq!(judge(&p, &[], &[]), Verdict::NoTarget);
        assert_eq!(verdict(&p, t.first(), None), Verdict::Unknown);
    }

    #[test]
    fn no_data_is_the_runbooks_first_solution() {
        let r = "function:persona-api:live";
        let p = policy("persona-tracking", r, &["high", "low"]);
        let alarms = [
            alarm("high", "INSUFFICIENT_DATA"),
            alarm("low", "INSUFFICIENT_DATA"),
        ];
        let m = report("lambda", &[p], &[target(r, 1, 10)], Ok(&alarms), 15);
        assert_eq!(m.tone, Tone::Warning);
        assert!(m.text.plain().starts_with("*Verdict:* `persona-tracking`: every alarm is INSUFFICIENT_DATA: metrics are not being published"), "{}", m.text.plain());
        let field = &m.fields[0];
        assert_eq!(field.label, "persona-tracking");
        assert_eq!(
            field.value,
            "`function:persona-api:live` · target tracking · capacity 1 – 10\n\
             target 0.7 of LambdaProvisionedConcurrencyUtilization\n\
             cooldown out 30 s · in 120 s\n\
             INSUFFICIENT_DATA `high`\n\
             INSUFFICIENT_DATA `low`\n\
             ⚠️ Every alarm is INSUFFICIENT_DATA: metrics are not being published (solution 1: verify CloudWatch metrics are being published)"
        );
        assert_eq!(m.fields[1].label, "Scalable targets (min – max)");
        assert_eq!(m.fields[1].value, "`function:persona-api:live` 1 – 10");
    }

    #[test]
    fn problems_come_first_and_healthy_policies_say_so() {
        let (a, b) = ("function:a:live", "function:b:live");
        let targets = [target(a, 1, 10), target(b, 2, 2)];
        let policies = [
            policy("a-ok", a, &["a-high"]),
            policy("b-pinned", b, &["b-high"]),
        ];
        let alarms = [alarm("a-high", "OK"), alarm("b-high", "ALARM")];
        let m = report("lambda", &policies, &targets, Ok(&alarms), 15);
        assert!(
            m.text
                .plain()
                .contains("`b-pinned`: its scalable target has min = max = 2"),
            "{}",
            m.text.plain()
        );
        assert!(
            !m.text.plain().contains("of 2 policies"),
            "one problem needs no count: {}",
            m.text.plain()
        );
        let labels: Vec<&str> = m.fields.iter().map(|f| f.label.as_str()).collect();
        assert_eq!(
            labels,
            vec!["b-pinned", "a-ok", "Scalable targets (min – max)"]
        );
        assert!(m.fields[1].value.ends_with(
            "✅ Alarms OK: the metric is within the target, so there is nothing to scale"
        ));
        assert!(
            m.fields[2]
                .value
                .contains("`function:b:live` 2 – 2 (pinned)")
        );

        let healthy = report("lambda", &policies[..1], &targets, Ok(&alarms), 15);
        assert_eq!(healthy.tone, Tone::Good);
        assert_eq!(healthy.text.plain(), "*Verdict:* all 1 policy can trigger.");
    }

    #[test]
    fn no_policies_and_unknown_alarms_are_said_in_words() {
        let m = report("elasticache", &[], &[], Ok(&[]), 15);
        assert!(m.text.plain().starts_with(
            "No scaling policies and no scalable targets in the `elasticache` namespace"
        ));
        let r = "replication-group/matbakh-redis";
        let m = report("elasticache", &[], &[target(r, 0, 3)], Ok(&[]), 15);
        assert!(
            m.text.plain().contains("1 scalable target is registered"),
            "{}",
            m.text.plain()
        );

        let p = policy("tracking", "function:a:live", &["high"]);
        let m = report(
            "lambda",
            &[p],
            &[target("function:a:live", 1, 4)],
            Err("the bot's AWS role is not allowed to call cloudwatch:DescribeAlarms"),
            15,
        );
        assert!(
            m.text
                .plain()
                .contains("Alarm states are unknown: the bot's AWS role"),
            "{}",
            m.text.plain()
        );
        assert!(
            m.fields[0].value.contains("unknown `high`"),
            "{}",
            m.fields[0].value
        );
    }

    #[test]
    fn long_lists_are_capped() {
        let r = "function:a:live";
        let policies: Vec<_> = (0..5).map(|i| policy(&format!("p{i}"), r, &[])).collect();
        let m = report("lambda", &policies, &[target(r, 1, 2)], Ok(&[]), 3);
        let labels: Vec<&str> = m.fields.iter().map(|f| f.label.as_str()).collect();
        assert_eq!(
            labels,
            vec!["p0", "p1", "p2", "2 more", "Scalable targets (min – max)"]
        );
        assert!(
            m.text.plain().starts_with(
                "*Verdict:* 5 of 5 policies have a problem. First, `p0`: no CloudWatch alarms"
            ),
            "{}",
            m.text.plain()
        );
    }
}
