//! Built-in enricher: gives every record a service and a message.
//!
//! - `service` defaults to the config value `default_service`, else
//!   `unknown`;
//! - an empty `message` becomes the first line of `full_log`, cut to 500
//!   characters, so list views always have something to show;
//! - `language` is lower-cased, and surrounding whitespace is trimmed from
//!   `message` and `service`.

use loggerhub_plugin_sdk::{Cow, Enricher, Host, PluginError, Record};

pub struct DefaultEnricher;

/// The metadata store keeps the first 500 characters of a message
/// (DESIGN.md §3); a message made from `full_log` is cut to the same size.
const MESSAGE_CHARS: usize = 500;

impl Enricher for DefaultEnricher {
    fn enrich<'a>(mut batch: Vec<Record<'a>>, host: &dyn Host) -> Result<Vec<Record<'a>>, PluginError> {
        let default_service = host.config("default_service").unwrap_or_else(|| "unknown".to_string());
        for r in &mut batch {
            trim_in_place(&mut r.service);
            if r.service.is_empty() {
                r.service = Cow::Owned(default_service.clone());
            }
            trim_in_place(&mut r.message);
            if r.message.is_empty() {
                let first = r.full_log.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
                r.message = Cow::Owned(first.trim().chars().take(MESSAGE_CHARS).collect());
            }
            if let Some(lang) = r
                .language
                .as_mut()
                .filter(|l| l.bytes().any(|b| b.is_ascii_uppercase()))
            {
                lang.to_mut().make_ascii_lowercase();
            }
        }
        Ok(batch)
    }
}

/// Trims without copying: a borrowed string becomes a shorter borrow.
fn trim_in_place(s: &mut Cow<'_, str>) {
    match s {
        Cow::Borrowed(b) => *b = b.trim(),
        Cow::Owned(o) => {
            let t = o.trim();
            if t.len() != o.len() {
                *o = t.to_string();
            }
        }
    }
}

loggerhub_plugin_sdk::export_enricher!(DefaultEnricher, wit = "../../wit");

#[cfg(test)]
mod tests {
    use super::*;
    use loggerhub_plugin_sdk::testing::TestHost;

    #[test]
    fn fills_defaults() {
        let batch = vec![
            Record {
                full_log: "\n  Traceback: boom  \nline 2".into(),
                language: Some("Python".into()),
                ..Record::default()
            },
            Record {
                service: " billing ".into(),
                message: "ok\n".into(),
                ..Record::default()
            },
        ];
        let out = DefaultEnricher::enrich(batch, &TestHost::new()).expect("enriches");
        assert_eq!(out[0].service, "unknown");
        assert_eq!(out[0].message, "Traceback: boom");
        assert_eq!(out[0].language.as_deref(), Some("python"));
        assert_eq!(out[1].service, "billing");
        assert_eq!(out[1].message, "ok");
    }

    #[test]
    fn default_service_is_configurable_and_message_is_capped() {
        let host = TestHost::new().with_config("default_service", "edge");
        let batch = vec![Record {
            full_log: "é".repeat(2000).into(),
            ..Record::default()
        }];
        let out = DefaultEnricher::enrich(batch, &host).expect("enriches");
        assert_eq!(out[0].service, "edge");
        assert_eq!(out[0].message.chars().count(), MESSAGE_CHARS);
    }
}
