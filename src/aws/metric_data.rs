//! CloudWatch metric series for charts and throttling reports.

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};

use super::{AwsCloud, MAX_PAGES, classify, from_smithy, next_page, to_smithy};
use crate::cloud::{CloudError, MetricRequest, Series};

impl AwsCloud {
    /// All queries go in one `GetMetricData` exchange, so a chart with
    /// several series costs one call (plus pages), not one per series.
    pub(super) async fn get_metric_data(
        &self,
        request: &MetricRequest,
    ) -> Result<Vec<Series>, CloudError> {
        const ACTION: &str = "cloudwatch:GetMetricData";
        let queries: Vec<MetricDataQuery> = request
            .queries
            .iter()
            .map(|q| {
                let metric = Metric::builder()
                    .namespace(&q.namespace)
                    .metric_name(&q.metric)
                    .set_dimensions(Some(
                        q.dimensions
                            .iter()
                            .map(|(n, v)| Dimension::builder().name(n).value(v).build())
                            .collect(),
                    ))
                    .build();
                MetricDataQuery::builder()
                    .id(&q.id)
                    .metric_stat(
                        MetricStat::builder()
                            .metric(metric)
                            .period(q.period_seconds as i32)
                            .stat(&q.stat)
                            .build(),
                    )
                    .return_data(true)
                    .build()
            })
            .collect();
        let mut series: Vec<Series> = request
            .queries
            .iter()
            .map(|q| Series {
                id: q.id.clone(),
                points: Vec::new(),
            })
            .collect();
        let mut next_token: Option<String> = None;
        for _page in 0..MAX_PAGES {
            let result = self
                .cloudwatch
                .get_metric_data()
                .start_time(to_smithy(request.start))
                .end_time(to_smithy(request.end))
                .scan_by(ScanBy::TimestampAscending)
                .set_metric_data_queries(Some(queries.clone()))
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| classify(ACTION, &self.region, || "the metric".into(), e));
            self.observe(ACTION, &result);
            let out = result?;
            for r in out.metric_data_results() {
                let Some(s) = series.iter_mut().find(|s| Some(s.id.as_str()) == r.id()) else {
                    continue;
                };
                s.points.extend(
                    r.timestamps()
                        .iter()
                        .zip(r.values())
                        .filter_map(|(t, v)| from_smithy(t).map(|t| (t, *v))),
                );
            }
            match next_page(out.next_token()) {
                Some(t) => next_token = Some(t),
                None => break,
            }
        }
        for s in &mut series {
            s.points.sort_by_key(|p| p.0);
        }
        Ok(series)
    }
}
