//! Raising reserved concurrency from the figures, not the runbook's fixed
//! 100: `max(floor, peak concurrency × headroom)`, rounded up, capped by
//! what the account can still reserve and by the function's guardrail, and
//! shown with its arithmetic so the person confirming can check it.
//!
//! The floor is `runbook.throttles_raise_to`, the headroom
//! `runbook.reserved_headroom` and the peak the highest 1-minute
//! `ConcurrentExecutions` maximum of the last
//! `runbook.reserved_peak_window_minutes`. While a function throttles its
//! concurrency sits at its reservation, so the peak understates demand;
//! the headroom is what lifts the proposal above it.

use chrono::{DateTime, Duration, Utc};

use crate::chart::plan::{QuerySet, by_id};
use crate::cloud::Series;
use crate::domain::FunctionName;
use crate::engine::plans::change::Change;
use crate::engine::request::{ActionError, Outcome, Proposal};
use crate::format::number;

use super::ActionContext;

/// AWS keeps this much of the account's concurrency unreserved.
pub(super) const UNRESERVED_FLOOR: i32 = 100;

/// The command a button runs to raise `function`'s reserved concurrency:
/// the value is worked out when the plan is made, from that moment's figures.
pub fn raise_reserved_command(function: &str) -> String {
    format!("concurrency {function} auto")
}

/// An upper bound on the proposal, and why it exists.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Cap {
    pub most: i32,
    pub why: String,
}

/// A proposed value and the arithmetic behind it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Raise {
    pub value: i32,
    /// `peak 140 × 1.2 = 168 > floor 100 → 168`
    pub arithmetic: String,
    /// The sentence saying that (and why) a cap lowered the value.
    pub capped: Option<String>,
}

/// `max(floor, ⌈peak × headroom⌉)`, then the lowest cap below it.
pub(super) fn propose(floor: i32, peak: Option<f64>, headroom: f64, caps: &[Cap]) -> Raise {
    let (mut value, mut arithmetic) = match peak {
        Some(p) => {
            let product = p * headroom;
            // 140 × 1.2 is 168.00000000000003 in floating point; rounding
            // away the noise first keeps it from becoming 169.
            let needed = ((product * 1e6).round() / 1e6).ceil();
            let needed = if needed >= f64::from(i32::MAX) {
                i32::MAX
            } else {
                needed as i32
            };
            let shown = if (product - product.round()).abs() < 1e-6 {
                number(product)
            } else {
                format!("{} → {needed} (rounded up)", number(product))
            };
            let (cmp, value) = if needed > floor {
                (">", needed)
            } else {
                ("≤", floor)
            };
            (
                value,
                format!(
                    "peak {} × {headroom} = {shown} {cmp} floor {floor} → {value}",
                    number(p)
                ),
            )
        }
        None => (floor, format!("no peak to go by → floor {floor}")),
    };
    let mut capped = None;
    if let Some(cap) = caps
        .iter()
        .filter(|c| c.most < value)
        .min_by_key(|c| c.most)
    {
        value = cap.most;
        arithmetic.push_str(&format!(" → capped at {value}"));
        capped = Some(format!("Capped at {value}: {}.", cap.why));
    }
    Raise {
        value,
        arithmetic,
        capped,
    }
}

/// The highest value of `series` from `since` on.
pub(super) fn peak_since(series: &Series, since: DateTime<Utc>) -> Option<f64> {
    series
        .points
        .iter()
        .filter(|(t, v)| *t >= since && v.is_finite())
        .map(|p| p.1)
        .reduce(f64::max)
}

/// The function's guardrail as a cap.
pub(super) fn guardrail_cap(cx: &ActionContext<'_>, function: &str) -> Cap {
    Cap {
        most: cx.settings.function(function).max_reserved,
        why: format!("the guardrail functions.{function}.max_reserved"),
    }
}

/// The highest 1-minute concurrency of the configured window.
async fn peak(cx: &ActionContext<'_>, function: &FunctionName) -> Result<Option<f64>, ActionError> {
    let minutes = cx.settings.runbook.reserved_peak_window_minutes.min(1440) as i64;
    let now = cx.now();
    let since = now - Duration::minutes(minutes);
    let mut queries = QuerySet::default();
    let dims = vec![("FunctionName".to_owned(), function.to_string())];
    let id = queries.add("AWS/Lambda", "ConcurrentExecutions", dims, "Maximum", 60);
    let series = by_id(
        cx.cloud
            .metric_data(&queries.into_request(since, now))
            .await?,
    )
    .remove(&id)
    .unwrap_or_default();
    Ok(peak_since(&series, since))
}

/// The plan of `/scale concurrency <function> auto`.
pub(super) async fn run(
    cx: &ActionContext<'_>,
    function: &FunctionName,
) -> Result<Outcome, ActionError> {
    let rb = &cx.settings.runbook;
    let from = cx.cloud.reserved_concurrency(function).await?;
    let peak = peak(cx, function).await?;
    let account = cx.cloud.account_concurrency().await;
    let mut caps = vec![guardrail_cap(cx, function.as_str())];
    if let Ok(a) = &account {
        caps.push(Cap {
            most: a.unreserved + from.unwrap_or(0) - UNRESERVED_FLOOR,
            why: format!(
                "the account has {} of its {} unreserved{}, and AWS keeps {UNRESERVED_FLOOR} unreserved",
                a.unreserved,
                a.limit,
                from.map(|r| format!(" besides this function's {r}"))
                    .unwrap_or_default()
            ),
        });
    }
    let raise = propose(rb.throttles_raise_to, peak, rb.reserved_headroom, &caps);
    if let Some(r) = from.filter(|r| *r >= raise.value) {
        return Err(ActionError::Refused(format!(
            "`{function}` already reserves {r}, at or above the proposal ({}); nothing to raise",
            raise.arithmetic
        )));
    }
    let guard = cx.settings.function(function.as_str());
    if raise.value < guard.min_reserved.max(1) {
        return Err(ActionError::Refused(format!(
            "the proposal ({}) is below what can be reserved for `{function}`{}",
            raise.arithmetic,
            raise
                .capped
                .as_deref()
                .map(|c| format!(". {c}"))
                .unwrap_or_default()
        )));
    }
    let mut notes = vec![format!(
        "Proposed from the figures (peak concurrency of the last {} minutes, headroom {}): {}.",
        rb.reserved_peak_window_minutes, rb.reserved_headroom, raise.arithmetic
    )];
    notes.extend(raise.capped.clone());
    notes.push(match account {
        Ok(a) => format!(
            "Account concurrency {}: unreserved {} now → {} after this change.",
            a.limit,
            a.unreserved,
            a.unreserved + from.unwrap_or(0) - raise.value
        ),
        Err(e) => format!("Account concurrency unknown ({e}); AWS refuses a raise it cannot keep."),
    });
    Ok(Outcome::Proposal(Proposal::new(
        vec![Change::Reserved {
            function: function.to_string(),
            from,
            to: Some(raise.value),
        }],
        notes,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(most: i32, why: &str) -> Cap {
        Cap {
            most,
            why: why.into(),
        }
    }

    #[test]
    fn the_peak_with_headroom_wins_over_the_floor_and_is_shown() {
        let r = propose(100, Some(140.0), 1.2, &[]);
        assert_eq!(r.value, 168, "not 169 from floating-point noise");
        assert_eq!(r.arithmetic, "peak 140 × 1.2 = 168 > floor 100 → 168");
        assert_eq!(r.capped, None);
        let r = propose(100, Some(139.0), 1.2, &[]);
        assert_eq!(r.value, 167);
        assert_eq!(
            r.arithmetic,
            "peak 139 × 1.2 = 166.8 → 167 (rounded up) > floor 100 → 167"
        );
    }

    #[test]
    fn the_floor_wins_over_a_small_peak_or_none() {
        let r = propose(100, Some(50.0), 1.2, &[]);
        assert_eq!(
            (r.value, r.arithmetic.as_str()),
            (100, "peak 50 × 1.2 = 60 ≤ floor 100 → 100")
        );
        let r = propose(100, None, 1.2, &[]);
        assert_eq!(
            (r.value, r.arithmetic.as_str()),
            (100, "no peak to go by → floor 100")
        );
    }

    #[test]
    fn the_lowest_cap_below_the_value_applies_with_its_sentence() {
        let r = propose(
            100,
            Some(400.0),
            1.5,
            &[
                cap(900, "the guardrail"),
                cap(350, "the account"),
                cap(500, "x"),
            ],
        );
        assert_eq!(r.value, 350);
        assert_eq!(
            r.arithmetic,
            "peak 400 × 1.5 = 600 > floor 100 → 600 → capped at 350"
        );
        assert_eq!(r.capped.as_deref(), Some("Capped at 350: the account."));
        let r = propose(100, Some(10.0), 1.2, &[cap(900, "the guardrail")]);
        assert_eq!((r.value, r.capped), (100, None));
    }
}
