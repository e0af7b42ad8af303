//! The time limit on one policy evaluation (issue #16, attack 7).
//!
//! A Rego policy can loop for as long as it likes (`numbers.range` over millions, nested
//! comprehensions over the evidence), and every evaluation holds a worker until it ends. Each
//! evaluation therefore gets a wall-clock budget, enforced by regorus's own cooperative timer
//! (`ExecutionTimerConfig`: the VM and the interpreter read the clock every
//! [`CHECK_INTERVAL`] steps and stop with `TimeLimitExceeded`), not by a watchdog thread: the
//! worker itself stops at the limit and is free for the next request.
//!
//! An evaluation cut at the limit is a deny with code [`POLICY_TIMEOUT`] (fail closed), never an
//! allow and never a server error.

use std::num::NonZeroU32;
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use serde_json::{Map, Value as Json, json};

use crate::verdict::Finding;

/// The denial code of an evaluation cut at the time limit.
pub const POLICY_TIMEOUT: &str = "policy-timeout";

/// VM instructions (or interpreter steps) between two clock reads. A clock read costs ~20 ns
/// and an instruction ~50–100 ns, so this keeps the timer's cost far below 1% while checking
/// every few microseconds.
pub const CHECK_INTERVAL: u32 = 64;

/// How long one evaluation may run: by default 1 s, about 10,000 times what the built-in
/// library needs (tens to hundreds of µs) and 1/5 of the 5 s `timeoutSeconds` the admission
/// webhook is registered with, so a cut evaluation still answers the API server in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLimit(Duration);

impl TimeLimit {
    /// The default limit.
    pub const DEFAULT: TimeLimit = TimeLimit(Duration::from_secs(1));
    /// The largest limit accepted: past a minute a policy is broken, not slow.
    pub const MAX: Duration = Duration::from_secs(60);
    /// The smallest limit accepted.
    pub const MIN: Duration = Duration::from_millis(1);

    /// A limit between [`TimeLimit::MIN`] and [`TimeLimit::MAX`].
    pub fn new(limit: Duration) -> Result<TimeLimit, String> {
        if limit < Self::MIN {
            return Err(format!(
                "a policy time limit of {} would cut every evaluation: give at least 1ms (default {})",
                show(limit),
                Self::DEFAULT
            ));
        }
        if limit > Self::MAX {
            return Err(format!(
                "a policy time limit of {} is longer than the maximum of {}: a policy that needs it holds a worker per decision; simplify the policy",
                show(limit),
                show(Self::MAX)
            ));
        }
        Ok(TimeLimit(limit))
    }

    /// Parses `250ms`, `1s`, `2s` (a whole number and a unit, `ms` or `s`).
    pub fn parse(text: &str) -> Result<TimeLimit, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let n: u64 = number.parse().map_err(|_| {
            format!("policy time limit {text:?} is not a duration: write it like 500ms or 2s")
        })?;
        let limit = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            _ => {
                return Err(format!(
                    "policy time limit {text:?}: the unit must be ms or s (like 500ms or 2s)"
                ));
            }
        };
        Self::new(limit)
    }

    /// The limit as a duration.
    pub fn duration(self) -> Duration {
        self.0
    }

    /// regorus's timer configuration for a budget of `budget` (at most this limit).
    pub(crate) fn timer(budget: Duration) -> ExecutionTimerConfig {
        ExecutionTimerConfig {
            limit: budget,
            check_interval: NonZeroU32::new(CHECK_INTERVAL).unwrap_or(NonZeroU32::MIN),
        }
    }
}

impl Default for TimeLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl std::fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&show(self.0))
    }
}

impl std::str::FromStr for TimeLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// `1s`, `250ms`, `1.5s`.
fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.3}s", d.as_secs_f64())
    } else if ms > 0 {
        format!("{ms}ms")
    } else {
        format!("{}µs", d.as_micros())
    }
}

/// An evaluation that regorus stopped at the time limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    /// The rule being evaluated when time ran out (`data.custody.gate.deny`, …).
    pub rule: String,
    pub limit: TimeLimit,
    /// How long the evaluation had run when it was stopped.
    pub elapsed: Duration,
}

impl TimedOut {
    /// The deny that stands for the evaluation: which policy and rule, the limit, the fix.
    pub fn finding(&self, policy_dir: &str, policy_digest: &str) -> Finding {
        let mut details = Map::new();
        details.insert("rule".into(), json!(self.rule));
        details.insert(
            "limit_ms".into(),
            json!(u64::try_from(self.limit.0.as_millis()).unwrap_or(u64::MAX)),
        );
        details.insert(
            "elapsed_ms".into(),
            json!(u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX)),
        );
        details.insert("policy".into(), Json::String(policy_dir.to_owned()));
        Finding {
            code: POLICY_TIMEOUT.into(),
            message: format!(
                "policy {policy_dir} ({policy_digest}) did not finish evaluating {} within the policy time limit of {} (stopped after {}), so it cannot allow anything",
                self.rule,
                self.limit,
                show(self.elapsed)
            ),
            fix: Some(format!(
                "simplify the policy (a loop over a large range, nested comprehensions over the evidence); time it with `custody policy eval {policy_dir} --input FILE`, or raise the limit with --policy-timeout (now {})",
                self.limit
            )),
            signer: None,
            evidence: None,
            location: None,
            details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_are_validated() {
        assert_eq!(TimeLimit::parse("1s"), Ok(TimeLimit::DEFAULT));
        assert_eq!(
            TimeLimit::parse("250ms").map(TimeLimit::duration),
            Ok(Duration::from_millis(250))
        );
        for bad in [
            "", "1", "1.5s", "-1s", "1m", "0ms", "0s", "61s", "ms", "1 s",
        ] {
            assert!(TimeLimit::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(TimeLimit::parse("0s").unwrap_err().contains("at least 1ms"));
        assert!(
            TimeLimit::parse("61s")
                .unwrap_err()
                .contains("maximum of 60s")
        );
        assert_eq!(TimeLimit::DEFAULT.to_string(), "1s");
        assert_eq!(show(Duration::from_millis(1500)), "1.500s");
    }

    #[test]
    fn the_timeout_finding_names_policy_rule_limit_and_fix() {
        let t = TimedOut {
            rule: "data.custody.gate.deny".into(),
            limit: TimeLimit::parse("200ms").unwrap_or_default(),
            elapsed: Duration::from_millis(201),
        };
        let f = t.finding("policy/", "sha256:ab");
        assert_eq!(f.code, POLICY_TIMEOUT);
        assert!(f.message.contains("policy/ (sha256:ab)"), "{}", f.message);
        assert!(
            f.message.contains("data.custody.gate.deny"),
            "{}",
            f.message
        );
        assert!(f.message.contains("200ms"), "{}", f.message);
        assert!(
            f.fix
                .as_deref()
                .is_some_and(|x| x.contains("--policy-timeout")),
            "{:?}",
            f.fix
        );
        assert_eq!(f.details["limit_ms"], json!(200));
    }
}
