//! What bounds a guest: its memory, its CPU in epoch ticks, its wall
//! clock (`Limits`, the operator's ceiling and a tenant's own), what one
//! call may return, and the strings the host keeps from it.

use std::time::Duration;

/// Memory one instance may grow to. Python and JavaScript guests
/// (componentize-py/-js, ~18 MB components) need tens of MiB; 256 MiB
/// leaves room for large batches without letting one tenant exhaust the
/// host.
pub const MAX_INSTANCE_MEMORY: usize = 256 * 1024 * 1024;
/// How often the engine's epoch advances; the unit of the CPU budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Epoch ticks one call may run: 2 s of CPU, far above what a batch of
/// 16k records takes in the built-in plugins.
pub const CPU_BUDGET_TICKS: u32 = 200;
/// Wall-clock limit of one call, including time spent yielded.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest refusal message and code kept from a plugin (characters): they
/// become dead letters' reasons, the plugin's disabled reason and log
/// lines, once per failing batch and halving step.
pub const MAX_ERROR_MESSAGE: usize = 1024;
pub const MAX_ERROR_CODE: usize = 64;

/// Whether a call's answer of `records` records in `bytes` bytes is within
/// its bounds for `input_bytes` of input and at most `max_records`; else
/// which bound it broke, with the figures.
pub(super) fn output_within(
    records: usize,
    bytes: usize,
    input_bytes: usize,
    max_records: usize,
) -> Result<(), String> {
    let max_bytes = input_bytes
        .saturating_mul(OUTPUT_BYTES_PER_INPUT_BYTE)
        .saturating_add(OUTPUT_BYTES_SLACK);
    if records > max_records {
        return Err(format!(
            "{records} records from {input_bytes} bytes of input; a call may return at most {max_records} records"
        ));
    }
    if bytes > max_bytes {
        return Err(format!(
            "{bytes} bytes from {input_bytes} bytes of input; a call may return at most {max_bytes} bytes"
        ));
    }
    Ok(())
}

/// `s`, cut to `max` characters (a string a guest hands the host).
pub(super) fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Resource limits of one instance. The operator sets the ceiling (within
/// [`Limits::MAX`]); a tenant's pipeline may lower each limit under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: usize,
    /// CPU per call, in epoch ticks of `EPOCH_TICK`.
    pub cpu_ticks: u32,
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: MAX_INSTANCE_MEMORY,
            cpu_ticks: CPU_BUDGET_TICKS,
            timeout: CALL_TIMEOUT,
        }
    }
}

/// What one call may return, relative to what it was given: a parser at
/// most one record per 8 bytes of body, an enricher at most twice the
/// records it got (each plus a little slack), and either at most 4 times
/// the input's bytes plus 64 KiB. More is a bad output, dead-lettered like
/// a trap, before the host decodes any of it: a plugin cannot make the host
/// hold millions of records it never asked for.
pub const OUTPUT_BYTES_PER_INPUT_BYTE: usize = 4;
pub const OUTPUT_BYTES_SLACK: usize = 64 * 1024;
pub const PARSER_INPUT_BYTES_PER_RECORD: usize = 8;
pub const OUTPUT_RECORDS_PER_INPUT_RECORD: usize = 2;
pub const OUTPUT_RECORDS_SLACK: usize = 16;

/// Upper bounds of per-tenant limits.
pub const LIMIT_MAX_MEMORY: usize = 1024 * 1024 * 1024;
pub const LIMIT_MAX_CPU_TICKS: u32 = 1000;
pub const LIMIT_MAX_TIMEOUT: Duration = Duration::from_secs(60);

impl Limits {
    /// The most an operator may allow.
    pub const MAX: Limits = Limits {
        memory_bytes: LIMIT_MAX_MEMORY,
        cpu_ticks: LIMIT_MAX_CPU_TICKS,
        timeout: LIMIT_MAX_TIMEOUT,
    };

    /// Each limit the lower of the two.
    pub fn min(&self, other: &Limits) -> Limits {
        Limits {
            memory_bytes: self.memory_bytes.min(other.memory_bytes),
            cpu_ticks: self.cpu_ticks.min(other.cpu_ticks),
            timeout: self.timeout.min(other.timeout),
        }
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    /// Each bound fires alone, and says which it is.
    #[test]
    fn each_output_bound_holds_and_names_itself() {
        // A parser: one record per 8 bytes of body, plus the slack.
        let body = 800;
        let parser_max = body / PARSER_INPUT_BYTES_PER_RECORD + OUTPUT_RECORDS_SLACK;
        assert_eq!(parser_max, 116);
        assert!(output_within(parser_max, 1000, body, parser_max).is_ok());
        let e = output_within(parser_max + 1, 1000, body, parser_max).expect_err("records");
        assert!(e.contains("117 records") && e.contains("at most 116 records"), "{e}");
        // An enricher: twice its records, plus the slack.
        let enricher_max = 50 * OUTPUT_RECORDS_PER_INPUT_RECORD + OUTPUT_RECORDS_SLACK;
        assert!(output_within(enricher_max, 1000, body, enricher_max).is_ok());
        assert!(output_within(enricher_max + 1, 1000, body, enricher_max).is_err());
        // Bytes: four times the input, plus 64 KiB, whatever the records.
        let max_bytes = body * OUTPUT_BYTES_PER_INPUT_BYTE + OUTPUT_BYTES_SLACK;
        assert!(output_within(1, max_bytes, body, 10).is_ok());
        let e = output_within(1, max_bytes + 1, body, 10).expect_err("bytes");
        assert!(
            e.contains(&format!("at most {max_bytes} bytes")) && !e.contains("records"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod cut_tests {
    #[test]
    fn guest_strings_are_cut_on_characters() {
        assert_eq!(super::cut("short", 10), "short");
        assert_eq!(super::cut("ééééé", 3), "ééé…");
        assert_eq!(
            super::cut(&"m".repeat(1 << 20), super::MAX_ERROR_MESSAGE)
                .chars()
                .count(),
            super::MAX_ERROR_MESSAGE + 1
        );
    }
}
