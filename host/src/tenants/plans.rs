//! Plans: what a tenant may use. The operator defines them (built-in
//! `free`, `pro`, `enterprise` and `unlimited`, overridden or added to by a
//! JSON file, `--plans`); every tenant is on one, named in the metadata
//! store, and the admin API changes it.
//!
//! A tenant created without a plan is on `unlimited` unless the operator
//! names another default (`--default-plan free` for a service that sells
//! plans): someone who runs LoggerHub for themselves should never meet a
//! limit they did not set.
//!
//! A plan's name is parsed into a `PlanName` (lower-case letters, digits,
//! `_` and `-`, at most 40), so it can name a file, a label or a row and
//! never anything else.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The plan a tenant is on when nobody named one, unless the operator
/// chose another (`--default-plan`).
pub const DEFAULT_PLAN: &str = "unlimited";
/// Longest plan name.
const MAX_NAME: usize = 40;
/// Plans one catalogue may hold: each is shown in full by the admin API.
const MAX_PLANS: usize = 100;
/// The most any plan may retain logs: a century, so that `unlimited`
/// keeps whatever a log platform is sent (a record older than its plan's
/// retention is refused at ingest, `model::window`).
const MAX_RETENTION_DAYS: u32 = 36_500;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("{0:?} is not a plan name (lower-case letters, digits, '_' and '-', 1 to 40, starting with a letter)")]
    BadName(String),
    #[error("no plan {0:?}")]
    Unknown(String),
    #[error("plan {plan:?}: {message}")]
    Invalid { plan: String, message: String },
    #[error("plans file {path}: {message}")]
    File { path: String, message: String },
}

/// A plan's name, checked.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PlanName(String);

impl PlanName {
    pub fn parse(s: &str) -> Result<PlanName, PlanError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_NAME
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(PlanName(s.to_string()))
        } else {
            Err(PlanError::BadName(s.chars().take(60).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlanName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PlanName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PlanName::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What a tenant on the plan may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Sustained ingest rate, in records and in body bytes per second.
    pub logs_per_second: u64,
    pub bytes_per_second: u64,
    /// How many seconds of the rate may arrive at once.
    pub burst_seconds: u32,
    /// Records and body bytes a day (UTC).
    pub daily_logs: u64,
    pub daily_bytes: u64,
    /// Days logs are kept in every store.
    pub retention_days: u32,
    /// Seconds logs are kept, instead of `retention_days`: for retention
    /// shorter than a day (or a test's few seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_seconds: Option<u64>,
    /// CPU seconds a day the tenant's own plugins may use.
    pub plugin_cpu_seconds_per_day: u64,
    /// Plugins the tenant may have, and versions kept of each.
    pub max_plugins: u32,
    pub max_versions: u32,
    /// Dead letters kept; past it the oldest go.
    pub dead_letter_cap: u32,
}

impl Plan {
    /// How long logs are kept, counted from their timestamp.
    pub fn retention(&self) -> std::time::Duration {
        let secs = self
            .retention_seconds
            .unwrap_or(u64::from(self.retention_days) * 86_400);
        std::time::Duration::from_secs(secs)
    }

    fn check(&self, name: &str) -> Result<(), PlanError> {
        let bad = |message: &str| {
            Err(PlanError::Invalid {
                plan: name.to_string(),
                message: message.to_string(),
            })
        };
        if self.logs_per_second == 0 || self.bytes_per_second == 0 {
            return bad("rates must be at least 1 per second");
        }
        if self.burst_seconds == 0 || self.burst_seconds > 3600 {
            return bad("burst_seconds must be 1 to 3600");
        }
        if self.daily_logs == 0 || self.daily_bytes == 0 {
            return bad("daily volumes must be at least 1");
        }
        if self.retention_days == 0 || self.retention_days > MAX_RETENTION_DAYS {
            return bad("retention_days must be 1 to 36500");
        }
        if self
            .retention_seconds
            .is_some_and(|s| s == 0 || s > u64::from(MAX_RETENTION_DAYS) * 86_400)
        {
            return bad("retention_seconds must be 1 to a hundred years");
        }
        // Versions kept: the active one and the one before it always stay.
        if self.max_plugins == 0 || self.max_versions < 2 || self.dead_letter_cap == 0 {
            return bad("max_plugins and dead_letter_cap must be at least 1, max_versions at least 2");
        }
        Ok(())
    }
}

/// The operator's plans, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plans {
    plans: BTreeMap<PlanName, Plan>,
    default: PlanName,
    /// The built-in `free`: the plan of a tenant whose plan the operator
    /// has since removed (the smallest, never the default, which may be
    /// `unlimited`).
    fallback: Plan,
}

impl Default for Plans {
    fn default() -> Self {
        Plans::builtin()
    }
}

impl Plans {
    /// `free`, `pro`, `enterprise` and `unlimited`.
    pub fn builtin() -> Plans {
        const GIB: u64 = 1 << 30;
        const MIB: u64 = 1 << 20;
        let plan =
            |lps: u64, bps: u64, daily_logs: u64, daily_bytes: u64, days, cpu, plugins, versions, letters| Plan {
                logs_per_second: lps,
                bytes_per_second: bps,
                burst_seconds: 10,
                daily_logs,
                daily_bytes,
                retention_days: days,
                retention_seconds: None,
                plugin_cpu_seconds_per_day: cpu,
                max_plugins: plugins,
                max_versions: versions,
                dead_letter_cap: letters,
            };
        let plans = [
            ("free", plan(1_000, MIB, 10_000_000, 5 * GIB, 7, 3_600, 5, 3, 1_000)),
            (
                "pro",
                plan(20_000, 20 * MIB, 200_000_000, 100 * GIB, 30, 86_400, 20, 10, 10_000),
            ),
            (
                "enterprise",
                plan(
                    100_000,
                    100 * MIB,
                    2_000_000_000,
                    1024 * GIB,
                    90,
                    8 * 86_400,
                    100,
                    20,
                    100_000,
                ),
            ),
            // No limit anyone meets in practice (the rates are a hundred
            // times what one process takes in), while every figure stays a
            // number the limiters and the usage page can count with; the
            // longest retention a plan may have.
            (
                "unlimited",
                plan(
                    10_000_000,
                    10 * 1024 * MIB,
                    1 << 50,
                    1 << 60,
                    MAX_RETENTION_DAYS,
                    1 << 40,
                    1_000,
                    20,
                    100_000,
                ),
            ),
        ];
        let fallback = plans[0].1.clone();
        Plans {
            default: PlanName(DEFAULT_PLAN.to_string()),
            plans: plans
                .into_iter()
                .map(|(name, plan)| (PlanName(name.to_string()), plan))
                .collect(),
            fallback,
        }
    }

    /// The built-ins, overridden or added to by the JSON object in `path`
    /// (`{"name": {plan}, …}`); every plan is checked.
    pub fn from_file(path: &Path) -> Result<Plans, PlanError> {
        let file_err = |message: String| PlanError::File {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        Self::builtin().with_json(&text).map_err(|e| match e {
            PlanError::File { message, .. } => file_err(message),
            other => file_err(other.to_string()),
        })
    }

    fn with_json(mut self, text: &str) -> Result<Plans, PlanError> {
        let extra: BTreeMap<PlanName, Plan> = serde_json::from_str(text).map_err(|e| PlanError::File {
            path: String::new(),
            message: e.to_string(),
        })?;
        for (name, plan) in extra {
            plan.check(name.as_str())?;
            self.plans.insert(name, plan);
        }
        if self.plans.len() > MAX_PLANS {
            return Err(PlanError::File {
                path: String::new(),
                message: format!("at most {MAX_PLANS} plans"),
            });
        }
        Ok(self)
    }

    /// The plan called `name`.
    pub fn get(&self, name: &str) -> Result<(&PlanName, &Plan), PlanError> {
        let name = PlanName::parse(name)?;
        self.plans
            .get_key_value(&name)
            .ok_or_else(|| PlanError::Unknown(name.0.clone()))
    }

    /// Makes `name` the plan of tenants created without one.
    pub fn with_default(mut self, name: &str) -> Result<Plans, PlanError> {
        self.default = self.get(name)?.0.clone();
        Ok(self)
    }

    /// The name of the plan tenants get when nobody named one.
    pub fn default_name(&self) -> &PlanName {
        &self.default
    }

    /// The default plan (always defined: `with_default` checks it, and a
    /// built-in is only ever replaced, never removed).
    pub fn default_plan(&self) -> &Plan {
        self.plans.get(&self.default).unwrap_or(&self.fallback)
    }

    /// The plan called `name`; one the operator has since removed counts as
    /// the built-in `free`, so a tenant is never without limits, whatever
    /// the default.
    pub fn resolve(&self, name: &str) -> &Plan {
        self.get(name).map_or(&self.fallback, |(_, p)| p)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&PlanName, &Plan)> {
        self.plans.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn builtins_are_valid_and_ordered_by_size() {
        let plans = Plans::builtin();
        for (name, plan) in plans.iter() {
            plan.check(name.as_str()).expect("valid");
        }
        let rate = |n: &str| plans.get(n).expect("plan").1.logs_per_second;
        assert!(
            rate("free") < rate("pro") && rate("pro") < rate("enterprise") && rate("enterprise") < rate("unlimited")
        );
        assert_eq!(plans.default_name().as_str(), DEFAULT_PLAN);
        // A tenant whose plan was removed gets the smallest, not the default.
        assert_eq!(plans.resolve("gone"), plans.get("free").expect("free").1);
        assert_eq!(plans.resolve("pro"), plans.get("pro").expect("pro").1);
        assert_eq!(plans.default_plan(), plans.get("unlimited").expect("unlimited").1);
    }

    #[test]
    fn a_file_overrides_and_adds_and_is_checked() {
        let mut custom = Plans::builtin().get("pro").expect("pro").1.clone();
        custom.retention_days = 3;
        let json = serde_json::json!({"pro": custom, "tiny": custom}).to_string();
        let plans = Plans::builtin().with_json(&json).expect("loads");
        assert_eq!(plans.get("pro").expect("pro").1.retention_days, 3);
        assert!(plans.get("tiny").is_ok());
        assert!(plans.get("free").is_ok(), "built-ins stay");

        let mut broken = custom.clone();
        broken.logs_per_second = 0;
        let json = serde_json::json!({ "x": broken }).to_string();
        assert!(matches!(
            Plans::builtin().with_json(&json),
            Err(PlanError::Invalid { .. })
        ));
        let json = r#"{"free": {"logs_per_second": 1}}"#;
        assert!(matches!(Plans::builtin().with_json(json), Err(PlanError::File { .. })));
        let unknown_field = serde_json::json!({ "x": custom })
            .to_string()
            .replace("\"max_plugins\"", "\"max_plugin\"");
        assert!(Plans::builtin().with_json(&unknown_field).is_err());
        let bad_name = serde_json::json!({ "../x": custom }).to_string();
        assert!(Plans::builtin().with_json(&bad_name).is_err());
    }

    #[test]
    fn unknown_and_malformed_names() {
        let plans = Plans::builtin();
        assert_eq!(plans.get("gold"), Err(PlanError::Unknown("gold".into())));
        for bad in ["", "Free", "../free", "free\0", "f r", &"a".repeat(41), "1free"] {
            assert!(matches!(plans.get(bad), Err(PlanError::BadName(_))), "{bad:?}");
        }
    }

    proptest! {
        /// A parsed plan name is one safe path component and label value.
        #[test]
        fn parsed_names_are_safe(s in "\\PC{0,50}") {
            if let Ok(name) = PlanName::parse(&s) {
                let n = name.as_str();
                prop_assert!(!n.is_empty() && n.len() <= MAX_NAME);
                prop_assert!(!n.contains(['/', '\\', '.', '"']) && !n.chars().any(char::is_control));
            }
        }
    }
}
