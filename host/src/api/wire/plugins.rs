//! A tenant's plugins (`/v1/plugins/…`: upload, list, rollback) and what
//! they failed on (`/v1/dead-letters/…`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::plugins::PluginInfo;
use crate::plugins::stats::Figures;
use crate::stores::dead_letters::LetterPage;

/// 201 of PUT /v1/plugins/{stage}/{name}.
#[derive(Serialize, ToSchema)]
pub struct PluginUploaded {
    pub stage: &'static str,
    pub name: String,
    pub version: u32,
    pub active: u32,
}

#[derive(Serialize, ToSchema)]
pub struct PluginJson {
    pub stage: &'static str,
    pub name: String,
    pub builtin: bool,
    pub versions: Vec<u32>,
    pub active: Option<u32>,
    /// Why the plugin was disabled, if it was.
    pub disabled: Option<String>,
    /// Its calls since this server process started.
    pub figures: PluginFigures,
}

/// A plugin's calls since the process started (in a cluster, this
/// processor's).
#[derive(Serialize, ToSchema)]
pub struct PluginFigures {
    pub calls: u64,
    /// Calls that trapped, timed out, or returned an error or a bad batch.
    pub errors: u64,
    /// Records given to it (for a parser: request bodies).
    pub records_in: u64,
    pub records_out: u64,
    /// Mean time per call.
    pub mean_ms: f64,
    /// The slowest call.
    pub max_ms: f64,
}

impl From<Figures> for PluginFigures {
    fn from(f: Figures) -> Self {
        PluginFigures {
            calls: f.calls,
            errors: f.errors,
            records_in: f.records_in,
            records_out: f.records_out,
            mean_ms: if f.calls == 0 {
                0.0
            } else {
                f.busy_us as f64 / f.calls as f64 / 1000.0
            },
            max_ms: f.max_us as f64 / 1000.0,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PluginList {
    pub plugins: Vec<PluginJson>,
}

impl From<Vec<PluginInfo>> for PluginList {
    fn from(plugins: Vec<PluginInfo>) -> Self {
        PluginList {
            plugins: plugins
                .into_iter()
                .map(|p| PluginJson {
                    stage: p.stage,
                    name: p.name,
                    builtin: p.builtin,
                    versions: p.versions,
                    active: p.active,
                    disabled: p.disabled,
                    figures: p.figures.into(),
                })
                .collect(),
        }
    }
}

/// POST …/rollback.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    pub version: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct RolledBack {
    pub name: String,
    pub active: u32,
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetterJson {
    pub batch_id: String,
    pub received_at: String,
    pub content_type: String,
    pub plugin: String,
    pub kind: String,
    pub reason: String,
    /// The failed request or records; omitted for a key without the
    /// `search` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// How many records the body holds, when it holds records (a whole
    /// entry's body is as the client sent it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetterList {
    /// Newest first.
    pub dead_letters: Vec<DeadLetterJson>,
    pub next_cursor: Option<String>,
    /// Letters the tenant holds (at most the operator's cap).
    pub total: usize,
    /// Letters dropped, oldest first, because the tenant was over its cap.
    pub dropped: u64,
}

impl From<LetterPage> for DeadLetterList {
    fn from(page: LetterPage) -> Self {
        DeadLetterList {
            next_cursor: page.next_cursor,
            total: page.total,
            dropped: page.dropped,
            dead_letters: page
                .letters
                .into_iter()
                .map(|d| DeadLetterJson {
                    batch_id: d.batch_id,
                    received_at: d.received_at,
                    content_type: d.content_type,
                    plugin: d.plugin,
                    kind: d.kind,
                    reason: d.reason,
                    body: Some(d.body),
                    records: d.records,
                })
                .collect(),
        }
    }
}

/// 202 of POST /v1/dead-letters/{id}/replay.
#[derive(Serialize, ToSchema)]
pub struct Replayed {
    pub replayed: String,
}
