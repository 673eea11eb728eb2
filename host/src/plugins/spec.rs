//! A tenant's pipeline as the tenant sets it (`PUT /v1/pipeline`, or
//! `pipeline.json` on disk): which parser for JSON and for text, which
//! enrichers in order, which router, each plugin's configuration, and the
//! sandbox limits, each bounded by the host.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::RegistryError;
use super::names::PluginName;
use crate::runtime::{EPOCH_TICK, Limits, Stage};

/// A pipeline has at most this many enrichers: each is a guest call per
/// batch and an instance per worker.
pub const MAX_ENRICHERS: usize = 16;
/// Bounds of the pipeline's `config`: plugins configured, keys per plugin,
/// and the size of a key and of a value.
pub const MAX_CONFIGURED_PLUGINS: usize = 32;
pub const MAX_CONFIG_KEYS: usize = 64;
pub const MAX_CONFIG_KEY_BYTES: usize = 128;
pub const MAX_CONFIG_VALUE_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Parser for JSON and NDJSON bodies.
    #[serde(default = "default_json_parser")]
    pub json_parser: String,
    /// Parser for `text/plain` bodies.
    #[serde(default = "default_text_parser")]
    pub text_parser: String,
    /// Enrichers, run in order.
    #[serde(default = "default_enrichers")]
    pub enrichers: Vec<String>,
    #[serde(default = "default_router")]
    pub router: String,
    /// Per-plugin configuration, read by plugins through `host.config`.
    #[serde(default)]
    pub config: BTreeMap<String, BTreeMap<String, String>>,
    /// The tenant's sandbox limits; unset ones take the host defaults.
    #[serde(default, skip_serializing_if = "LimitsSpec::is_empty")]
    pub limits: LimitsSpec,
}

/// Per-tenant sandbox limits, each optional and bounded by the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Memory per instance, MiB (1..=1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    /// CPU per call, ms, rounded up to 10 ms (10..=10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u32>,
    /// Wall clock per call, ms (100..=60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
}

impl LimitsSpec {
    fn is_empty(&self) -> bool {
        *self == LimitsSpec::default()
    }

    /// The runtime limits the tenant asks for, within `ceiling` (the
    /// operator's): a tenant may lower a limit, never raise it past the
    /// ceiling. Unset ones take the ceiling.
    pub fn resolve(&self, ceiling: &Limits) -> Result<Limits, RegistryError> {
        let mut l = *ceiling;
        let tick = EPOCH_TICK.as_millis() as u32;
        let over = |what: &str, min: u64, max: u64, unit: &str| {
            RegistryError::BadPipeline(format!(
                "limits.{what} must be {min} to {max}{unit} (the most this server allows)"
            ))
        };
        if let Some(m) = self.memory_mib {
            let bytes = m as usize * 1024 * 1024;
            if m == 0 || bytes > ceiling.memory_bytes {
                return Err(over("memory_mib", 1, (ceiling.memory_bytes >> 20) as u64, " MiB"));
            }
            l.memory_bytes = bytes;
        }
        if let Some(ms) = self.cpu_ms {
            let ticks = ms.div_ceil(tick);
            if ticks == 0 || ticks > ceiling.cpu_ticks {
                return Err(over("cpu_ms", 1, u64::from(ceiling.cpu_ticks * tick), " ms"));
            }
            l.cpu_ticks = ticks;
        }
        if let Some(ms) = self.timeout_ms {
            let t = Duration::from_millis(u64::from(ms));
            if ms < 100 || t > ceiling.timeout {
                return Err(over("timeout_ms", 100, ceiling.timeout.as_millis() as u64, " ms"));
            }
            l.timeout = t;
        }
        Ok(l)
    }

    /// As [`Self::resolve`], for a pipeline stored before the operator
    /// lowered the ceiling: what is above it now runs at the ceiling.
    pub fn clamped(&self, ceiling: &Limits) -> Limits {
        self.resolve(&Limits::MAX).map_or(*ceiling, |l| l.min(ceiling))
    }
}

fn default_json_parser() -> String {
    "json-parser".into()
}
fn default_text_parser() -> String {
    "line-parser".into()
}
fn default_enrichers() -> Vec<String> {
    vec!["default-enricher".into()]
}
fn default_router() -> String {
    "default-router".into()
}

impl Default for PipelineSpec {
    fn default() -> Self {
        PipelineSpec {
            json_parser: default_json_parser(),
            text_parser: default_text_parser(),
            enrichers: default_enrichers(),
            router: default_router(),
            config: BTreeMap::new(),
            limits: LimitsSpec::default(),
        }
    }
}

impl PipelineSpec {
    /// Whether the pipeline runs `name` in `stage`.
    pub fn uses(&self, stage: Stage, name: &str) -> bool {
        match stage {
            Stage::Parser => self.json_parser == name || self.text_parser == name,
            Stage::Enricher => self.enrichers.iter().any(|e| e == name),
            Stage::Router => self.router == name,
        }
    }

    /// Checks what the host must be able to rely on before any plugin is
    /// looked up: names that are names, a bounded number of enrichers, a
    /// bounded configuration. (Limits are checked against the operator's
    /// ceiling: [`LimitsSpec::resolve`].)
    pub fn check(&self) -> Result<(), RegistryError> {
        if self.enrichers.len() > MAX_ENRICHERS {
            return Err(RegistryError::BadPipeline(format!("at most {MAX_ENRICHERS} enrichers")));
        }
        for name in [&self.json_parser, &self.text_parser, &self.router]
            .into_iter()
            .chain(&self.enrichers)
        {
            PluginName::parse(name)?;
        }
        // Every instance of the tenant's plugins holds its configuration:
        // its size is bounded like the rest of the pipeline.
        if self.config.len() > MAX_CONFIGURED_PLUGINS {
            return Err(RegistryError::BadPipeline(format!(
                "configuration for at most {MAX_CONFIGURED_PLUGINS} plugins"
            )));
        }
        for (plugin, settings) in &self.config {
            PluginName::parse(plugin)?;
            if settings.len() > MAX_CONFIG_KEYS
                || settings
                    .iter()
                    .any(|(k, v)| k.len() > MAX_CONFIG_KEY_BYTES || v.len() > MAX_CONFIG_VALUE_BYTES)
            {
                return Err(RegistryError::BadPipeline(format!(
                    "a plugin's configuration has at most {MAX_CONFIG_KEYS} keys of at most \
                     {MAX_CONFIG_KEY_BYTES} bytes, with values of at most {MAX_CONFIG_VALUE_BYTES} bytes"
                )));
            }
        }
        Ok(())
    }

    /// The configuration of plugin `name` (without its `@vN`).
    pub fn config_of(&self, name: &str) -> BTreeMap<String, String> {
        self.config
            .get(super::names::base_name(name))
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_fields() {
        let spec: PipelineSpec = serde_json::from_str(r#"{"enrichers":["default-enricher","pii"]}"#).expect("parses");
        assert_eq!(spec.json_parser, "json-parser");
        assert_eq!(spec.router, "default-router");
        assert!(spec.uses(Stage::Enricher, "pii"));
        assert!(!spec.uses(Stage::Router, "pii"));
        assert!(serde_json::from_str::<PipelineSpec>(r#"{"enricher":["x"]}"#).is_err());
        let back: PipelineSpec = serde_json::from_str(&serde_json::to_string(&spec).expect("json")).expect("parses");
        assert_eq!(back, spec);
    }

    #[test]
    fn limits_are_bounded() {
        let ok = LimitsSpec {
            memory_mib: Some(64),
            cpu_ms: Some(15),
            timeout_ms: Some(100),
        };
        let l = ok.resolve(&Limits::MAX).expect("in bounds");
        assert_eq!(l.memory_bytes, 64 << 20);
        assert_eq!(l.cpu_ticks, 2, "15 ms rounds up to two 10 ms ticks");
        assert_eq!(l.timeout, Duration::from_millis(100));
        for bad in [
            LimitsSpec {
                memory_mib: Some(0),
                ..Default::default()
            },
            LimitsSpec {
                memory_mib: Some(4096),
                ..Default::default()
            },
            LimitsSpec {
                cpu_ms: Some(0),
                ..Default::default()
            },
            LimitsSpec {
                cpu_ms: Some(60_000),
                ..Default::default()
            },
            LimitsSpec {
                timeout_ms: Some(50),
                ..Default::default()
            },
            LimitsSpec {
                timeout_ms: Some(600_000),
                ..Default::default()
            },
        ] {
            assert!(
                matches!(bad.resolve(&Limits::MAX), Err(RegistryError::BadPipeline(_))),
                "{bad:?}"
            );
        }
        // The operator's ceiling: unset limits take it, a tenant may lower
        // each, never raise it; a stored pipeline above a lowered ceiling
        // runs at the ceiling.
        let ceiling = Limits::default();
        assert_eq!(LimitsSpec::default().resolve(&ceiling).ok(), Some(ceiling));
        assert_eq!(ok.resolve(&ceiling).ok(), Some(l));
        let raise = LimitsSpec {
            cpu_ms: Some(ceiling.cpu_ticks * 10 + 10),
            ..Default::default()
        };
        let err = raise.resolve(&ceiling).expect_err("over the ceiling").to_string();
        assert!(err.contains("cpu_ms must be 1 to 2000 ms"), "{err}");
        assert!(raise.resolve(&Limits::MAX).is_ok());
        assert_eq!(raise.clamped(&ceiling), ceiling);
        let more_memory = LimitsSpec {
            memory_mib: Some(512),
            ..Default::default()
        };
        assert!(more_memory.resolve(&ceiling).is_err());
        assert_eq!(more_memory.clamped(&ceiling).memory_bytes, ceiling.memory_bytes);
    }

    #[test]
    fn check_refuses_bad_names_and_too_many_enrichers() {
        let traversal = PipelineSpec {
            enrichers: vec!["../../other/enricher/pii".into()],
            ..PipelineSpec::default()
        };
        assert!(matches!(traversal.check(), Err(RegistryError::BadName(_))));
        let config = |plugin: &str, key: String, value: String| PipelineSpec {
            config: BTreeMap::from([(plugin.to_string(), BTreeMap::from([(key, value)]))]),
            ..PipelineSpec::default()
        };
        assert!(config("pii", "redact".into(), "email".into()).check().is_ok());
        assert!(matches!(
            config("../beta/pii", "k".into(), "v".into()).check(),
            Err(RegistryError::BadName(_))
        ));
        assert!(matches!(
            config("pii", "k".into(), "v".repeat(MAX_CONFIG_VALUE_BYTES + 1)).check(),
            Err(RegistryError::BadPipeline(_))
        ));
        assert!(matches!(
            config("pii", "k".repeat(MAX_CONFIG_KEY_BYTES + 1), "v".into()).check(),
            Err(RegistryError::BadPipeline(_))
        ));
        let many = PipelineSpec {
            enrichers: vec!["e".into(); MAX_ENRICHERS + 1],
            ..PipelineSpec::default()
        };
        assert!(matches!(many.check(), Err(RegistryError::BadPipeline(_))));
        assert!(PipelineSpec::default().check().is_ok());
    }

    #[test]
    fn config_by_base_name() {
        let mut spec = PipelineSpec::default();
        spec.config
            .insert("pii".into(), [("redact".to_string(), "email".to_string())].into());
        assert_eq!(
            spec.config_of("pii@v2").get("redact").map(String::as_str),
            Some("email")
        );
        assert!(spec.config_of("other").is_empty());
    }
}
