//! Cost Explorer: what scaling changes cost, day by day and per service.

use aws_sdk_costexplorer::types::{
    DateInterval, Granularity, GroupDefinition, GroupDefinitionType,
};
use chrono::NaiveDate;

use super::{AwsCloud, MAX_PAGES, classify, next_page, unbuildable};
use crate::cloud::{CloudError, DailyCost};

const METRIC: &str = "BlendedCost";
const DAY: &str = "%Y-%m-%d";

impl AwsCloud {
    pub(super) async fn cost_by_service_per_day(
        &self,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<DailyCost>, CloudError> {
        const ACTION: &str = "ce:GetCostAndUsage";
        // Cost Explorer's end date is exclusive, as the trait's range is.
        let period = DateInterval::builder()
            .start(start.format(DAY).to_string())
            .end(end.format(DAY).to_string())
            .build()
            .map_err(|e| unbuildable(ACTION, e))?;
        let by_service = GroupDefinition::builder()
            .r#type(GroupDefinitionType::Dimension)
            .key("SERVICE")
            .build();
        let mut costs = Vec::new();
        let mut next_token: Option<String> = None;
        for _page in 0..MAX_PAGES {
            let result = self
                .costexplorer
                .get_cost_and_usage()
                .time_period(period.clone())
                .granularity(Granularity::Daily)
                .metrics(METRIC)
                .group_by(by_service.clone())
                .set_next_page_token(next_token.take())
                .send()
                .await
                .map_err(|e| classify(ACTION, &self.region, || "cost data".into(), e));
            self.observe(ACTION, &result);
            let out = result?;
            for by_time in out.results_by_time() {
                let Some(day) = by_time
                    .time_period()
                    .and_then(|p| NaiveDate::parse_from_str(p.start(), DAY).ok())
                else {
                    tracing::warn!(
                        action = ACTION,
                        "a result without a readable day was skipped"
                    );
                    continue;
                };
                for group in by_time.groups() {
                    let Some(metric) = group.metrics().and_then(|m| m.get(METRIC)) else {
                        continue;
                    };
                    let Some(amount) = metric.amount().and_then(|a| a.parse::<f64>().ok()) else {
                        tracing::warn!(
                            action = ACTION,
                            amount = metric.amount(),
                            "an amount that is not a number was skipped"
                        );
                        continue;
                    };
                    costs.push(DailyCost {
                        day,
                        service: group.keys().first().cloned().unwrap_or_default(),
                        amount,
                        unit: metric.unit().unwrap_or_default().to_owned(),
                    });
                }
            }
            match next_page(out.next_page_token()) {
                Some(t) => next_token = Some(t),
                None => break,
            }
        }
        Ok(costs)
    }
}
