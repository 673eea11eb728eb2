//! Example enricher: redacts personal data from messages, full logs and
//! attribute values before anything is stored.
//!
//! Config (per tenant, through the pipeline):
//! - `redact`: comma-separated kinds among `email`, `card`, `ipv4`
//!   (default: all three);
//! - `replacement`: the text put in place, `{kind}` standing for the kind
//!   (default `[REDACTED:{kind}]`).
//!
//! Card numbers are 13–19 digits, optionally grouped by spaces or dashes,
//! that pass the Luhn check; IPv4 addresses need four octets ≤ 255.

use std::sync::OnceLock;

use loggerhub_plugin_sdk::{Enricher, Host, PluginError, Record};
use regex::Regex;

pub struct PiiRedactor;

struct Patterns {
    email: Regex,
    card: Regex,
    ipv4: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        // Fixed patterns: compiling them cannot fail.
        email: Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
            .unwrap_or_else(|_| unreachable!()),
        card: Regex::new(r"\b\d(?:[ -]?\d){12,18}\b").unwrap_or_else(|_| unreachable!()),
        ipv4: Regex::new(r"\b\d{1,3}(?:\.\d{1,3}){3}\b").unwrap_or_else(|_| unreachable!()),
    })
}

fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    let mut n = 0;
    for (i, d) in digits
        .bytes()
        .rev()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
        .enumerate()
    {
        n += 1;
        sum += if i % 2 == 1 {
            if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
        } else {
            d
        };
    }
    (13..=19).contains(&n) && sum % 10 == 0
}

fn valid_ipv4(s: &str) -> bool {
    s.split('.').all(|o| o.parse::<u16>().is_ok_and(|v| v <= 255))
}

#[derive(Clone, Copy)]
struct Kinds {
    email: bool,
    card: bool,
    ipv4: bool,
}

fn redact(text: &str, kinds: Kinds, replacement: &str) -> Option<String> {
    let p = patterns();
    let mut out = std::borrow::Cow::Borrowed(text);
    if kinds.email && p.email.is_match(&out) {
        out = std::borrow::Cow::Owned(
            p.email
                .replace_all(&out, replacement.replace("{kind}", "email"))
                .into_owned(),
        );
    }
    if kinds.card && p.card.is_match(&out) {
        let rep = replacement.replace("{kind}", "card");
        out = std::borrow::Cow::Owned(
            p.card
                .replace_all(
                    &out,
                    |c: &regex::Captures<'_>| if luhn(&c[0]) { rep.clone() } else { c[0].to_string() },
                )
                .into_owned(),
        );
    }
    if kinds.ipv4 && p.ipv4.is_match(&out) {
        let rep = replacement.replace("{kind}", "ipv4");
        out = std::borrow::Cow::Owned(
            p.ipv4
                .replace_all(&out, |c: &regex::Captures<'_>| {
                    if valid_ipv4(&c[0]) {
                        rep.clone()
                    } else {
                        c[0].to_string()
                    }
                })
                .into_owned(),
        );
    }
    match out {
        std::borrow::Cow::Owned(s) if s != text => Some(s),
        _ => None,
    }
}

impl Enricher for PiiRedactor {
    fn enrich<'a>(mut batch: Vec<Record<'a>>, host: &dyn Host) -> Result<Vec<Record<'a>>, PluginError> {
        let kinds = match host.config("redact") {
            None => Kinds {
                email: true,
                card: true,
                ipv4: true,
            },
            Some(list) => {
                let mut k = Kinds {
                    email: false,
                    card: false,
                    ipv4: false,
                };
                for kind in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    match kind {
                        "email" => k.email = true,
                        "card" => k.card = true,
                        "ipv4" => k.ipv4 = true,
                        other => {
                            return Err(PluginError::new(
                                "bad_config",
                                format!("unknown kind {other:?} in `redact`"),
                            ));
                        }
                    }
                }
                k
            }
        };
        let replacement = host
            .config("replacement")
            .unwrap_or_else(|| "[REDACTED:{kind}]".to_string());
        for r in &mut batch {
            for field in [&mut r.message, &mut r.full_log] {
                if let Some(s) = redact(field, kinds, &replacement) {
                    *field = s.into();
                }
            }
            for (_, v) in &mut r.attributes {
                if let Some(s) = redact(v, kinds, &replacement) {
                    *v = s.into();
                }
            }
        }
        Ok(batch)
    }
}

loggerhub_plugin_sdk::export_enricher!(PiiRedactor, wit = "../../../wit");

#[cfg(test)]
mod tests {
    use super::*;
    use loggerhub_plugin_sdk::testing::TestHost;

    fn run(msg: &str, host: &TestHost) -> String {
        let batch = vec![Record {
            message: msg.into(),
            ..Record::default()
        }];
        PiiRedactor::enrich(batch, host)
            .expect("enrich")
            .remove(0)
            .message
            .into_owned()
    }

    #[test]
    fn redacts_each_kind() {
        let h = TestHost::new();
        assert_eq!(
            run("mail bob.smith+x@example.co.uk now", &h),
            "mail [REDACTED:email] now"
        );
        assert_eq!(run("card 4111 1111 1111 1111 ok", &h), "card [REDACTED:card] ok");
        assert_eq!(
            run("card 4111-1111-1111-1112 fails luhn", &h),
            "card 4111-1111-1111-1112 fails luhn"
        );
        assert_eq!(
            run("from 10.0.0.255 to 999.1.1.1", &h),
            "from [REDACTED:ipv4] to 999.1.1.1"
        );
        assert_eq!(run("order 12345 shipped", &h), "order 12345 shipped");
    }

    #[test]
    fn configurable() {
        let h = TestHost::new()
            .with_config("redact", "ipv4")
            .with_config("replacement", "***");
        assert_eq!(run("a@b.io from 1.2.3.4", &h), "a@b.io from ***");
        let bad = TestHost::new().with_config("redact", "phone");
        let err = PiiRedactor::enrich(vec![Record::default()], &bad).expect_err("bad config");
        assert_eq!(err.code, "bad_config");
    }

    #[test]
    fn attributes_and_full_log_too() {
        let batch = vec![Record {
            full_log: "user=a@b.io".into(),
            attributes: vec![("client".into(), "192.168.1.20".into())],
            ..Record::default()
        }];
        let out = PiiRedactor::enrich(batch, &TestHost::new()).expect("enrich");
        assert_eq!(out[0].full_log, "user=[REDACTED:email]");
        assert_eq!(out[0].attributes[0].1, "[REDACTED:ipv4]");
    }
}
