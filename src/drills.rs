//! The Drills port: game-day scenarios that only a simulated account can
//! start. The demo wires one in; against real AWS there is none, and
//! `/scale drill` refuses.

use async_trait::async_trait;

/// A runbook scenario a drill starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drill {
    /// `persona-api` is asked for well above its reserved concurrency.
    Throttling,
    /// A connection leak drives `matbakh-db` past its connection alarm.
    Rds,
    /// A deploy 30 hours ago set large provisioned concurrency on four
    /// functions.
    Cost,
    /// Everything surges at once: many alarms in a minute.
    Storm,
}

impl Drill {
    pub const ALL: [Drill; 4] = [Drill::Throttling, Drill::Rds, Drill::Cost, Drill::Storm];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Drill::Throttling => "throttling",
            Drill::Rds => "rds",
            Drill::Cost => "cost",
            Drill::Storm => "storm",
        }
    }

    /// What the drill does, and the runbook section it rehearses.
    pub fn describe(self) -> &'static str {
        match self {
            Drill::Throttling => {
                "`persona-api` now gets about 1.7 times its reserved concurrency for 45 minutes. \
                 Runbook: Lambda throttling emergency (throttles → raise reserved concurrency → monitor)."
            }
            Drill::Rds => {
                "A connection leak drives `matbakh-db` past 80 connections for 45 minutes. \
                 Runbook: RDS connection exhaustion (connections → enable RDS Proxy)."
            }
            Drill::Cost => {
                "A deploy 30 hours ago set provisioned concurrency to 300/150/150/200 on four functions' `live` \
                 alias, far above what they use; yesterday's bill shows it. Runbook: cost runaway emergency \
                 (cost → cost-runaway or provisioned)."
            }
            Drill::Storm => {
                "Every function surges past its limits and the database follows: an alarm storm for 45 minutes. \
                 Runbook: escalation procedures (one incident per alarm, levels L1 → L4)."
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DrillError(pub String);

#[async_trait]
pub trait Drills: Send + Sync + 'static {
    /// Starts a scenario now; its alarms arrive through the usual intake.
    async fn start(&self, drill: Drill) -> Result<(), DrillError>;
}
