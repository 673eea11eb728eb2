//! How `search` and `tail` print records: a table for people, coloured by
//! level on a terminal, or NDJSON for programs (one record per line, as
//! the API returns it).

use std::io::{IsTerminal, Write};

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Time, level, service and message, one log per line.
    Table,
    /// One JSON record per line.
    Ndjson,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Colour {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    Always,
    Never,
}

/// How records are printed: the flags of `search` and `tail`.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short, value_enum, default_value = "table")]
    output: Output,
    #[arg(long, value_enum, default_value = "auto")]
    color: Colour,
}

impl Args {
    pub fn printer(&self) -> Printer {
        Printer::new(self.output, self.color)
    }
}

/// Width of the service column; longer names are cut.
const SERVICE_WIDTH: usize = 14;

pub struct Printer {
    output: Output,
    colour: bool,
    /// The terminal's width, when printing to one: messages are cut to it.
    width: Option<usize>,
}

impl Printer {
    pub fn new(output: Output, colour: Colour) -> Printer {
        let tty = std::io::stdout().is_terminal();
        let colour = match colour {
            Colour::Always => true,
            Colour::Never => false,
            Colour::Auto => tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        };
        let width = tty.then(|| {
            std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(120)
        });
        Printer { output, colour, width }
    }

    /// Prints one record as the API returns it.
    pub fn record(&self, out: &mut impl Write, r: &Value) -> std::io::Result<()> {
        match self.output {
            Output::Ndjson => writeln!(out, "{r}"),
            Output::Table => writeln!(out, "{}", self.row(r)),
        }
    }

    fn row(&self, r: &Value) -> String {
        let text = |k: &str| r[k].as_str().unwrap_or_default();
        let level = text("level");
        let mut service: String = text("service").chars().take(SERVICE_WIDTH).collect();
        if text("service").chars().count() > SERVICE_WIDTH {
            service.pop();
            service.push('…');
        }
        // A table row is one line: the message's first, cut to the screen.
        let message = text("message").lines().next().unwrap_or_default();
        let head = format!(
            "{}  {:<5}  {service:<SERVICE_WIDTH$}  ",
            text("timestamp"),
            level.to_uppercase()
        );
        let room = self
            .width
            .map_or(usize::MAX, |w| w.saturating_sub(head.chars().count()).max(20));
        let message: String = if message.chars().count() > room {
            message.chars().take(room - 1).chain(['…']).collect()
        } else {
            message.to_string()
        };
        let head = if self.colour {
            format!("\x1b[{}m{head}\x1b[0m", level_colour(level))
        } else {
            head
        };
        format!("{head}{message}")
    }
}

/// The ANSI colour of a level: the usual reading, red is trouble.
fn level_colour(level: &str) -> &'static str {
    match level.to_ascii_lowercase().as_str() {
        "fatal" => "1;31",
        "error" => "31",
        "warn" => "33",
        "info" => "32",
        "debug" => "34",
        _ => "2",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(level: &str, service: &str, message: &str) -> Value {
        serde_json::json!({"timestamp": "2025-10-10T12:26:36.000Z", "level": level,
            "service": service, "message": message})
    }

    #[test]
    fn table_rows_are_one_line_coloured_by_level() {
        let p = Printer {
            output: Output::Table,
            colour: true,
            width: Some(80),
        };
        let row = p.row(&record("ERROR", "billing", "Payment failed\n  at line 2"));
        assert_eq!(
            row,
            "\x1b[31m2025-10-10T12:26:36.000Z  ERROR  billing         \x1b[0mPayment failed"
        );
        let long = p.row(&record("warn", "a-very-long-service-name", &"x".repeat(200)));
        assert!(long.contains("a-very-long-s…  "), "{long}");
        assert!(long.starts_with("\x1b[33m"));
        // 49 columns of time, level and service; the rest is the message, cut with `…`.
        assert_eq!(long.chars().filter(|c| *c == 'x').count(), 80 - 49 - 1);
    }

    #[test]
    fn ndjson_is_the_record_as_the_api_sent_it() {
        let p = Printer {
            output: Output::Ndjson,
            colour: true,
            width: None,
        };
        let mut out = Vec::new();
        let r = record("info", "api", "hello");
        p.record(&mut out, &r).expect("write");
        let back: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(back, r);
    }
}
