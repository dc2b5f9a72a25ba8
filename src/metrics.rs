//! Prometheus metrics served on `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AckLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReportLabels {
    report: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

/// The `outcome` label of one inbound request (`scalebot_requests_total`).
///
/// A handler that knows why it answered as it did (a refusal's reason, or
/// an answer that is not simply "ok", such as a duplicate or an ignored
/// event) puts one into its response's extensions; the server's request
/// layer reads it and counts the request. A response without one (a route
/// with nothing to say, an unmatched path, a body over the limit) gets
/// [`Outcome::from_status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Outcome(pub &'static str);

impl Outcome {
    pub const OK: Outcome = Outcome("ok");

    /// The outcome of a response whose handler named none.
    pub fn from_status(status: u16) -> Self {
        match status {
            ..400 => Outcome::OK,
            404 => Outcome("not_found"),
            405 => Outcome("method_not_allowed"),
            413 => Outcome("too_large"),
            400..500 => Outcome("client_error"),
            _ => Outcome("server_error"),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RouteLabels, Counter>,
    ack_seconds: Family<AckLabels, Histogram>,
    aws_calls: Family<CallLabels, Counter>,
    chat_calls: Family<CallLabels, Counter>,
    chat_rate_limited: Family<MethodLabels, Counter>,
    scheduled_reports: Family<ReportLabels, Counter>,
}

fn ack_histogram() -> Histogram {
    // 100 µs to about 3.3 s: Slack's window is 3 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 16,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("scalebot");
        let requests = Family::<RouteLabels, Counter>::default();
        let ack_seconds = Family::<AckLabels, Histogram>::new_with_constructor(
            ack_histogram as fn() -> Histogram,
        );
        let aws_calls = Family::<CallLabels, Counter>::default();
        let chat_calls = Family::<CallLabels, Counter>::default();
        let chat_rate_limited = Family::<MethodLabels, Counter>::default();
        let scheduled_reports = Family::<ReportLabels, Counter>::default();
        registry.register(
            "requests",
            "Inbound requests by route and outcome",
            requests.clone(),
        );
        registry.register(
            "ack_seconds",
            "Time from receiving a request to acknowledging it",
            ack_seconds.clone(),
        );
        registry.register(
            "aws_calls",
            "AWS API calls by operation and outcome",
            aws_calls.clone(),
        );
        registry.register(
            "chat_calls",
            "Chat API calls by method and outcome",
            chat_calls.clone(),
        );
        registry.register(
            "chat_rate_limited",
            "Chat API answers of 429 (rate limited), by method",
            chat_rate_limited.clone(),
        );
        registry.register(
            "scheduled_reports",
            "Scheduled report slots this replica ran, by report and outcome (posted, or unposted: chat refused the message)",
            scheduled_reports.clone(),
        );
        Self {
            registry,
            requests,
            ack_seconds,
            aws_calls,
            chat_calls,
            chat_rate_limited,
            scheduled_reports,
        }
    }
}

impl Metrics {
    pub fn request(&self, route: &str, outcome: &str, seconds: Option<f64>) {
        self.requests
            .get_or_create(&RouteLabels {
                route: route.into(),
                outcome: outcome.into(),
            })
            .inc();
        if let Some(s) = seconds {
            self.ack_seconds
                .get_or_create(&AckLabels {
                    route: route.into(),
                })
                .observe(s);
        }
    }

    pub fn aws_call(&self, operation: &str, outcome: &str) {
        self.aws_calls
            .get_or_create(&CallLabels {
                operation: operation.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn chat_call(&self, method: &str, outcome: &str) {
        self.chat_calls
            .get_or_create(&CallLabels {
                operation: method.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn chat_rate_limited(&self, method: &str) {
        self.chat_rate_limited
            .get_or_create(&MethodLabels {
                method: method.into(),
            })
            .inc();
    }

    pub fn scheduled_report(&self, report: &str, outcome: &str) {
        self.scheduled_reports
            .get_or_create(&ReportLabels {
                report: report.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Outcome;

    #[test]
    fn an_outcome_follows_the_status_when_no_handler_named_one() {
        assert_eq!(Outcome::from_status(200), Outcome::OK);
        assert_eq!(Outcome::from_status(202), Outcome::OK);
        assert_eq!(Outcome::from_status(404).as_str(), "not_found");
        assert_eq!(Outcome::from_status(405).as_str(), "method_not_allowed");
        assert_eq!(Outcome::from_status(413).as_str(), "too_large");
        assert_eq!(Outcome::from_status(422).as_str(), "client_error");
        assert_eq!(Outcome::from_status(503).as_str(), "server_error");
    }
}
