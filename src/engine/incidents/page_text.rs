//! What a page says: the same facts for every channel (incident, level,
//! alarm, where its thread is, how to acknowledge), as an e-mail body, one
//! SMS line, an e-mail subject within SNS's limits, and PagerDuty's
//! summary and details.

use crate::domain::severity::Severity;
use serde_json::json;

use super::{IncidentService, level_name};
use crate::pager::{PdTrigger, SnsPage};
use crate::store::IncidentRow;

/// SNS refuses subjects of 100 characters or more, and any that is not
/// ASCII or holds a line break.
const SUBJECT_MAX: usize = 99;
/// One SMS segment holds 160 GSM characters; the page stays within it.
const SMS_MAX: usize = 160;

/// The facts a page is written from.
pub(crate) struct PageFacts {
    pub incident: String,
    pub title: String,
    pub level: String,
    pub alarms: Vec<String>,
    /// A link to the thread, or where to find it.
    pub thread: String,
    pub link: Option<String>,
    pub opened: String,
    pub minutes_open: i64,
}

impl PageFacts {
    fn alarms(&self) -> String {
        if self.alarms.is_empty() {
            self.title.clone()
        } else {
            self.alarms.join(", ")
        }
    }

    fn how_to_ack(&self) -> String {
        format!(
            "press Acknowledge on the incident in chat, or send `/scale incident {} ack`",
            self.incident
        )
    }

    pub fn subject(&self) -> String {
        let text = format!(
            "{} {}: {}",
            self.incident,
            short_level(&self.level),
            self.title
        );
        let ascii: String = text
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        ascii.chars().take(SUBJECT_MAX).collect()
    }

    pub fn sms(&self) -> String {
        let tail = format!(" Ack: /scale incident {} ack", self.incident);
        let head = format!(
            "{} {}: {}.",
            self.incident,
            short_level(&self.level),
            self.alarms()
        );
        let room = SMS_MAX.saturating_sub(tail.chars().count());
        let head: String = head.chars().take(room).collect();
        format!("{head}{tail}")
    }

    pub fn long(&self) -> String {
        format!(
            "Incident {id} has reached {level} (open {min} min, not resolved).\n\n\
             Alarm: {alarms}\nIncident: {title}\nOpened: {opened}\nThread: {thread}\n\n\
             To acknowledge: {ack}.\n",
            id = self.incident,
            level = self.level,
            min = self.minutes_open,
            alarms = self.alarms(),
            title = self.title,
            opened = self.opened,
            thread = self.thread,
            ack = self.how_to_ack(),
        )
    }

    pub fn sns(&self, topic: &str) -> SnsPage {
        SnsPage {
            topic: topic.to_owned(),
            subject: self.subject(),
            long: self.long(),
            sms: self.sms(),
        }
    }

    /// PagerDuty's severity drives the service's urgency (whether a phone
    /// rings): the more urgent of the incident's severity and its level,
    /// so a critical alarm at L1 and any incident at L4 are both critical.
    pub fn pagerduty(&self, level: i64, severity: Option<Severity>) -> PdTrigger {
        const NAMES: [&str; 4] = ["info", "warning", "error", "critical"];
        let by_level = usize::try_from(level.clamp(1, 4) - 1).unwrap_or(0);
        let by_severity = match severity {
            Some(Severity::Critical) => 3,
            Some(Severity::High) => 2,
            Some(Severity::Medium) => 1,
            Some(Severity::Low) | None => 0,
        };
        PdTrigger {
            summary: format!("{} {}: {}", self.incident, self.level, self.title),
            severity: NAMES[by_level.max(by_severity)],
            details: json!({
                "incident": self.incident,
                "level": self.level,
                "alarms": self.alarms,
                "opened": self.opened,
                "thread": self.thread,
                "acknowledge": format!("{}, or acknowledge here in PagerDuty", self.how_to_ack()),
            }),
            link: self.link.clone(),
        }
    }
}

/// `L3 engineering team` → `L3`.
fn short_level(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or(name)
}

impl IncidentService {
    /// The configured name of a level, or the runbook's.
    pub(crate) fn level_label(&self, level: i64) -> String {
        usize::try_from(level - 1)
            .ok()
            .and_then(|i| self.settings.escalation.levels.get(i))
            .map(|l| l.name.clone())
            .unwrap_or_else(|| level_name(level).to_owned())
    }

    /// `paging.thread_url` filled in, once the root message is posted.
    fn thread_link(&self, incident: &IncidentRow) -> Option<String> {
        let template = self.settings.paging.thread_url.as_ref()?;
        let root = incident.root_message.as_ref()?;
        Some(
            template
                .replace("{channel}", &incident.channel)
                .replace("{message}", &root.replace('.', "")),
        )
    }

    pub(crate) async fn page_facts(
        &self,
        incident: &IncidentRow,
        level: i64,
    ) -> Result<PageFacts, crate::store::StoreError> {
        let link = self.thread_link(incident);
        let thread = link.clone().unwrap_or_else(|| {
            format!(
                "the incident's thread in chat channel {} (/scale incident {} status)",
                incident.channel, incident.id
            )
        });
        let opened = chrono::DateTime::from_timestamp_millis(incident.opened_ms)
            .map(|t| crate::format::stamp(t, self.tz))
            .unwrap_or_default();
        Ok(PageFacts {
            incident: incident.id.clone(),
            title: incident.title.clone(),
            level: self.level_label(level),
            alarms: self.store.firing_alarms(&incident.id).await?,
            thread,
            link,
            opened,
            minutes_open: (self.now().timestamp_millis() - incident.opened_ms).max(0) / 60_000,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(title: &str) -> PageFacts {
        PageFacts {
            incident: "INC-7F3K2Q".into(),
            title: title.into(),
            level: "L3 engineering team".into(),
            alarms: vec!["persona-api-throttles".into()],
            thread: "https://example.slack.com/archives/C1/p1700000000000001".into(),
            link: None,
            opened: "2026-12-02 03:12 CET".into(),
            minutes_open: 35,
        }
    }

    #[test]
    fn the_subject_fits_sns_and_the_sms_one_segment() {
        let f = facts(&format!("ALARM: “{}”", "x".repeat(300)));
        let subject = f.subject();
        assert!(
            subject.len() <= SUBJECT_MAX && subject.is_ascii(),
            "{subject}"
        );
        assert!(subject.starts_with("INC-7F3K2Q L3: ALARM: ?x"), "{subject}");
        let sms = f.sms();
        assert!(sms.chars().count() <= SMS_MAX, "{sms}");
        assert!(
            sms.ends_with("Ack: /scale incident INC-7F3K2Q ack"),
            "{sms}"
        );
    }

    #[test]
    fn the_long_page_says_what_where_and_how_to_acknowledge() {
        let long = facts("ALARM: persona-api-throttles").long();
        for needle in [
            "INC-7F3K2Q has reached L3 engineering team",
            "Alarm: persona-api-throttles",
            "Thread: https://example.slack.com/archives/C1/p1700000000000001",
            "/scale incident INC-7F3K2Q ack",
        ] {
            assert!(long.contains(needle), "{needle} in {long}");
        }
        assert_eq!(facts("t").pagerduty(4, None).severity, "critical");
        assert_eq!(facts("t").pagerduty(3, None).severity, "error");
        // A critical incident still at L1 rings a phone.
        assert_eq!(
            facts("t").pagerduty(1, Some(Severity::Critical)).severity,
            "critical"
        );
        // An incident nobody answered up to L4 is critical, whatever it began as.
        assert_eq!(
            facts("t").pagerduty(4, Some(Severity::Low)).severity,
            "critical"
        );
        assert_eq!(
            facts("t").pagerduty(1, Some(Severity::High)).severity,
            "error"
        );
    }
}
