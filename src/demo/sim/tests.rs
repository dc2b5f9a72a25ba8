//! The traffic model: deterministic for a seed, and answering each action.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::alarms::{Evaluator, runbook_alarms};
use super::*;
use crate::alarm::{Alarm, AlarmState as State};
use crate::cloud::{Cloud, MetricQuery, MetricRequest, NewDbProxy};
use crate::domain::FunctionName;
use crate::drills::Drills;

const PRICE: f64 = 0.000_004_166_7;

/// 02:00 UTC: a quiet hour, well under every limit.
fn night() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0)
        .single()
        .expect("valid time")
}

fn sim(seed: u64, at: DateTime<Utc>) -> (SimCloud, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(at));
    (
        SimCloud::new(seed, clock.clone(), "eu-central-1", PRICE),
        clock,
    )
}

fn q(namespace: &str, metric: &str, dim: (&str, &str), stat: &str) -> MetricQuery {
    MetricQuery {
        id: "m".into(),
        namespace: namespace.into(),
        metric: metric.into(),
        dimensions: vec![(dim.0.into(), dim.1.into())],
        stat: stat.into(),
        period_seconds: 60,
    }
}

fn throttles(f: &str) -> MetricQuery {
    q("AWS/Lambda", "Throttles", ("FunctionName", f), "Sum")
}

async fn fetch(cloud: &SimCloud, query: MetricQuery, minutes: i64) -> Vec<(DateTime<Utc>, f64)> {
    let end = cloud.now();
    let request = MetricRequest {
        start: end - Duration::minutes(minutes),
        end,
        queries: vec![query],
    };
    let mut s = cloud.metric_data(&request).await.expect("sim never fails");
    s.pop().map(|s| s.points).unwrap_or_default()
}

fn total(points: &[(DateTime<Utc>, f64)]) -> f64 {
    points.iter().map(|p| p.1).sum()
}

fn persona() -> FunctionName {
    FunctionName::parse("persona-api").expect("valid name")
}

#[tokio::test]
async fn the_same_seed_gives_the_same_series_and_another_seed_does_not() {
    let day = night() + Duration::hours(12);
    let (a, _) = sim(7, day);
    let (b, _) = sim(7, day);
    let (c, _) = sim(8, day);
    let query = q(
        "AWS/Lambda",
        "Invocations",
        ("FunctionName", "persona-api"),
        "Sum",
    );
    let (sa, sb, sc) = (
        fetch(&a, query.clone(), 180).await,
        fetch(&b, query.clone(), 180).await,
        fetch(&c, query, 180).await,
    );
    assert_eq!(sa.len(), 180, "one point per complete minute");
    assert_eq!(sa, sb);
    assert_ne!(sa, sc);
}

#[tokio::test]
async fn demand_follows_the_day() {
    let (cloud, _) = sim(1, night());
    let t = cloud.traffic();
    let low = t.demand("auth-handler", night() + Duration::hours(1));
    let high = t.demand("auth-handler", night() + Duration::hours(13));
    assert!(high > 2.0 * low, "15:00 {high} vs 03:00 {low}");
}

#[tokio::test]
async fn a_throttling_drill_throttles_and_raising_reserved_concurrency_stops_it() {
    let (cloud, clock) = sim(42, night());
    assert_eq!(
        total(&fetch(&cloud, throttles("persona-api"), 10).await),
        0.0,
        "a quiet night has no throttles"
    );
    cloud.start(Drill::Throttling).await.expect("drill");
    clock.advance(Duration::minutes(10));
    let during = fetch(&cloud, throttles("persona-api"), 5).await;
    assert!(total(&during) > 100.0, "drill throttles: {during:?}");

    cloud
        .put_reserved_concurrency(&persona(), 100)
        .await
        .expect("raise");
    let changed = cloud.now();
    clock.advance(Duration::minutes(5));
    let after = fetch(&cloud, throttles("persona-api"), 20).await;
    let before: f64 = after
        .iter()
        .filter(|(t, _)| *t < changed)
        .map(|p| p.1)
        .sum();
    let since: f64 = after
        .iter()
        .filter(|(t, _)| *t >= changed)
        .map(|p| p.1)
        .sum();
    assert!(before > 100.0, "the past is unchanged: {before}");
    assert_eq!(since, 0.0, "no throttles once reserved is 100");
    assert_eq!(
        cloud.reserved_concurrency(&persona()).await.expect("read"),
        Some(100)
    );
}

#[tokio::test]
async fn an_rds_proxy_makes_connections_fall() {
    let (cloud, clock) = sim(3, night());
    let conns = || {
        q(
            "AWS/RDS",
            "DatabaseConnections",
            ("DBInstanceIdentifier", DATABASE),
            "Maximum",
        )
    };
    cloud.start(Drill::Rds).await.expect("drill");
    clock.advance(Duration::minutes(10));
    let during = fetch(&cloud, conns(), 3).await;
    assert!(during.iter().all(|(_, v)| *v > 80.0), "{during:?}");
    let proxy = NewDbProxy {
        name: "matbakh-db-proxy".into(),
        engine_family: "POSTGRESQL".into(),
        secret_arn: "arn".into(),
        role_arn: "arn".into(),
        subnet_ids: vec![],
        security_group_ids: vec![],
        require_tls: true,
    };
    cloud
        .create_db_proxy(&proxy, DATABASE)
        .await
        .expect("proxy");
    clock.advance(Duration::minutes(3));
    let after = fetch(&cloud, conns(), 2).await;
    assert!(after.iter().all(|(_, v)| *v < 40.0), "{after:?}");
    assert_eq!(cloud.db_proxies().await.expect("list").len(), 1);
    assert!(
        cloud.create_db_proxy(&proxy, DATABASE).await.is_err(),
        "a second proxy of the same name is refused"
    );
}

#[tokio::test]
async fn provisioned_spend_follows_the_configured_capacity() {
    let (cloud, clock) = sim(5, night());
    let lambda_today = |costs: Vec<crate::cloud::DailyCost>| {
        costs
            .into_iter()
            .find(|c| c.service == "AWS Lambda" && c.day == night().date_naive())
            .map(|c| c.amount)
            .unwrap_or_default()
    };
    let day = night().date_naive();
    let next = day + Duration::days(1);
    clock.advance(Duration::hours(1));
    let quiet_hour = lambda_today(cloud.daily_costs(day, next).await.expect("costs"));
    cloud.start(Drill::Cost).await.expect("drill");
    clock.advance(Duration::hours(1));
    let after_drill = lambda_today(cloud.daily_costs(day, next).await.expect("costs"));
    // 800 extra 1-GB-ish environments for an hour cost several dollars.
    assert!(
        after_drill - quiet_hour > 5.0,
        "{quiet_hour} → {after_drill}"
    );
    for f in ["persona-api", "vc-start", "vc-result", "auth-handler"] {
        let name = FunctionName::parse(f).expect("valid");
        cloud
            .delete_provisioned(&name, "live")
            .await
            .expect("delete");
    }
    let at_delete = lambda_today(cloud.daily_costs(day, next).await.expect("costs"));
    clock.advance(Duration::hours(1));
    let later = lambda_today(cloud.daily_costs(day, next).await.expect("costs"));
    assert!(
        later - at_delete < 1.0,
        "without provisioned concurrency the spend stops: {at_delete} → {later}"
    );
}

#[tokio::test]
async fn the_account_keeps_its_unreserved_minimum() {
    let (cloud, _) = sim(1, night());
    let err = cloud
        .put_reserved_concurrency(&persona(), 900)
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains("UnreservedConcurrentExecution"),
        "{err}"
    );
    assert!(
        cloud
            .reserved_concurrency(&FunctionName::parse("no-such").expect("valid"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn alarms_fire_as_cloudwatch_json_and_clear_after_the_fix() {
    let (cloud, clock) = sim(42, night());
    let mut alarms = Evaluator::new(runbook_alarms(&cloud.traffic()), "eu-central-1");
    assert!(
        alarms.evaluate(&cloud.traffic(), cloud.now()).is_empty(),
        "a quiet account reports nothing at start"
    );
    cloud.start(Drill::Throttling).await.expect("drill");
    clock.advance(Duration::minutes(6));
    let fired = alarms.evaluate(&cloud.traffic(), cloud.now());
    let names: Vec<&str> = fired.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["persona-api-throttles"]);
    let alarm = Alarm::from_message(&fired[0].message).expect("CloudWatch alarm JSON");
    assert_eq!(alarm.state(), Some(State::Alarm));
    assert_eq!(alarm.old_state(), Some(State::Ok));
    assert_eq!(alarm.function_name(), Some("persona-api"));
    assert_eq!(alarm.trigger.as_ref().and_then(|t| t.threshold), Some(5.0));
    assert!(
        alarms.evaluate(&cloud.traffic(), cloud.now()).is_empty(),
        "no repeat"
    );

    cloud
        .put_reserved_concurrency(&persona(), 100)
        .await
        .expect("raise");
    clock.advance(Duration::minutes(3));
    let cleared = alarms.evaluate(&cloud.traffic(), cloud.now());
    let names: Vec<(&str, State)> = cleared.iter().map(|t| (t.name.as_str(), t.new)).collect();
    assert_eq!(names, [("persona-api-throttles", State::Ok)]);
}

#[tokio::test]
async fn a_storm_raises_many_alarms_at_once() {
    let (cloud, clock) = sim(9, night());
    let mut alarms = Evaluator::new(runbook_alarms(&cloud.traffic()), "eu-central-1");
    alarms.evaluate(&cloud.traffic(), cloud.now());
    cloud.start(Drill::Storm).await.expect("drill");
    clock.advance(Duration::minutes(6));
    let fired = alarms.evaluate(&cloud.traffic(), cloud.now());
    assert!(
        fired.len() >= 5,
        "{:?}",
        fired.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_cost_drill_trips_the_idle_provisioned_alarm() {
    let (cloud, clock) = sim(9, night());
    let mut alarms = Evaluator::new(runbook_alarms(&cloud.traffic()), "eu-central-1");
    alarms.evaluate(&cloud.traffic(), cloud.now());
    cloud.start(Drill::Cost).await.expect("drill");
    clock.advance(Duration::minutes(5));
    let fired = alarms.evaluate(&cloud.traffic(), cloud.now());
    assert!(
        fired
            .iter()
            .any(|t| t.name == "persona-api-provisioned-idle" && t.new == State::Alarm),
        "{:?}",
        fired.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
}

#[test]
fn drill_names_round_trip() {
    for d in Drill::ALL {
        assert_eq!(Drill::parse(d.as_str()), Some(d));
    }
    assert_eq!(Drill::parse("fire"), None);
}

#[tokio::test]
async fn the_cost_drill_shows_in_yesterdays_bill() {
    let (cloud, _) = sim(5, night() + Duration::hours(10));
    let day = night().date_naive();
    let lambda = |costs: &[crate::cloud::DailyCost], d: chrono::NaiveDate| {
        costs
            .iter()
            .find(|c| c.service == "AWS Lambda" && c.day == d)
            .map(|c| c.amount)
            .unwrap_or_default()
    };
    let range = (day - Duration::days(2), day);
    let before = cloud.daily_costs(range.0, range.1).await.expect("costs");
    cloud.start(Drill::Cost).await.expect("drill");
    let after = cloud.daily_costs(range.0, range.1).await.expect("costs");
    let yesterday = day - Duration::days(1);
    assert!(
        lambda(&after, yesterday) > lambda(&before, yesterday) + 100.0,
        "yesterday {} → {}",
        lambda(&before, yesterday),
        lambda(&after, yesterday)
    );
    let names = ["AWS Lambda", "Amazon Relational Database Service"];
    assert!(names.iter().all(|n| after.iter().any(|c| c.service == *n)));
}

#[tokio::test]
async fn policy_alarms_are_known_and_quiet() {
    let (cloud, _) = sim(1, night());
    let policies = cloud.scaling_policies("lambda").await.expect("policies");
    let names: Vec<String> = policies.iter().flat_map(|p| p.alarms.clone()).collect();
    let states = cloud.alarm_states(&names).await.expect("states");
    assert_eq!(states.len(), names.len());
    assert!(states.iter().all(|s| s.state == "OK"));
}
