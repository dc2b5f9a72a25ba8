//! The states of incidents and plans: enums in the code, text in the store
//! (the column values stay readable in SQL and stable across versions).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} state `{value}`")]
pub struct UnknownState {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal, { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownState { kind: $kind, value: s.to_owned() }),
                }
            }
        }
    };
}

text_enum!(
    /// Where an incident is in its life.
    IncidentState, "incident", {
        /// Nobody has acknowledged it; it escalates and reminds.
        Open => "open",
        /// Someone is on it; it still escalates unless `ack_stops_clock`.
        Acknowledged => "acknowledged",
        /// Every alarm is OK again; it resolves itself after a quiet period.
        Recovered => "recovered",
        Resolved => "resolved",
    }
);

text_enum!(
    /// Where a plan is between its proposal and its outcome.
    PlanState, "plan", {
        /// Waiting for approvals until it expires.
        Pending => "pending",
        /// Claimed by one click; its changes are being applied.
        Executing => "executing",
        /// Every change succeeded.
        Done => "done",
        /// Some changes succeeded, some failed.
        Partial => "partial",
        /// Nothing was changed (drift, or every change failed).
        Failed => "failed",
        Cancelled => "cancelled",
        Expired => "expired",
        /// AWS changed since it was shown; a fresh plan replaced it.
        Superseded => "superseded",
    }
);

text_enum!(
    /// A scheduled report slot, once claimed.
    ReportRunState, "report run", {
        /// Claimed; being built and posted.
        Running => "running",
        Posted => "posted",
        /// Chat refused the message; claimed again later in the window.
        Unposted => "unposted",
    }
);

impl PlanState {
    /// Whether some change of the plan ran, so that it can be undone.
    pub fn executed(self) -> bool {
        matches!(self, PlanState::Done | PlanState::Partial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_text() {
        for s in IncidentState::ALL {
            assert_eq!(s.as_str().parse::<IncidentState>(), Ok(*s));
        }
        for s in PlanState::ALL {
            assert_eq!(s.to_string().parse::<PlanState>(), Ok(*s));
        }
        assert!("closed".parse::<IncidentState>().is_err());
    }
}
