//! `loggerhub aggregate`: a search's matches counted by a field, as a
//! table of the most common values, or a number attribute's statistics
//! over them (or the API's JSON).

use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct AggregateArgs {
    /// The field to count by: service, level, attributes.<key> or @<key>
    /// (with --stats: the statistics per value of it).
    #[arg(long, required_unless_present = "stats")]
    pub by: Option<String>,
    /// A number attribute (@duration_ms): count, min, max, avg and
    /// p50/p90/p95/p99 over the matches.
    #[arg(long)]
    pub stats: Option<String>,
    /// The search (docs/QUERY.md); every log when empty.
    #[arg(default_value = "")]
    pub query: String,
    #[arg(long)]
    pub service: Option<String>,
    #[arg(long)]
    pub level: Option<String>,
    /// RFC 3339 times, or from the query: timestamp:>now-1h.
    #[arg(long)]
    pub from: Option<String>,
    #[arg(long)]
    pub to: Option<String>,
    /// How many of the most common values (1 to 1000).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub size: u64,
    /// A time series too, per bucket of this (30s, 5m, 1h, 1d): one row
    /// a bucket, one column a value (needs --from).
    #[arg(long)]
    pub interval: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl AggregateArgs {
    pub fn body(&self) -> Value {
        let mut body = json!({"q": self.query, "size": self.size});
        for (name, v) in [
            ("by", &self.by),
            ("stats", &self.stats),
            ("service", &self.service),
            ("level", &self.level),
            ("from", &self.from),
            ("to", &self.to),
            ("interval", &self.interval),
        ] {
            if let Some(v) = v {
                body[name] = json!(v);
            }
        }
        body
    }
}

/// A value as a cell: control characters escaped, so that a tenant's
/// value cannot break the table or drive the terminal.
fn cell(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// A series as a table: a row per bucket, a column per value, then the
/// other values and the missing.
pub fn series_table(v: &Value) -> String {
    let values: Vec<&str> = v["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["value"].as_str())
        .collect();
    let mut columns: Vec<String> = values.iter().map(|s| cell(s)).collect();
    columns.extend(["(other)".to_string(), "(missing)".to_string()]);
    let width = |c: &String| c.chars().count().max(8);
    let mut out = format!("{:<30}", "start");
    for c in &columns {
        out.push_str(&format!("  {c:>w$}", w = width(c)));
    }
    out.push('\n');
    for b in v["series"].as_array().into_iter().flatten() {
        out.push_str(&format!("{:<30}", b["start"].as_str().unwrap_or_default()));
        for (i, c) in columns.iter().enumerate() {
            let n = match i.checked_sub(values.len()) {
                None => b["by_value"][values[i]].as_u64().unwrap_or(0),
                Some(0) => b["other"].as_u64().unwrap_or(0),
                Some(_) => b["missing"].as_u64().unwrap_or(0),
            };
            out.push_str(&format!("  {n:>w$}", w = width(c)));
        }
        out.push('\n');
    }
    out
}

/// Statistics as a table: a row for all the matches, then one per value
/// of `by` or per time bucket.
pub fn stats_table(v: &Value) -> String {
    const FIGURES: [&str; 9] = ["count", "min", "max", "avg", "sum", "p50", "p90", "p95", "p99"];
    let mut rows: Vec<(String, &Value)> = vec![("(all)".to_string(), &v["stats"])];
    for b in v["buckets"].as_array().into_iter().flatten() {
        rows.push((cell(b["value"].as_str().unwrap_or_default()), &b["stats"]));
    }
    for b in v["series"].as_array().into_iter().flatten() {
        rows.push((cell(b["start"].as_str().unwrap_or_default()), &b["stats"]));
    }
    let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0).max(5);
    let mut out = format!("{:<width$}", v["number"].as_str().unwrap_or("stats"));
    for f in FIGURES {
        out.push_str(&format!("  {f:>10}"));
    }
    out.push('\n');
    for (label, s) in rows {
        out.push_str(&format!("{label:<width$}"));
        for f in FIGURES {
            let figure = match &s[f] {
                Value::Number(n) if f == "count" => n.to_string(),
                // Four decimals at most, none written when they are zeros.
                Value::Number(n) => n.as_f64().map_or_else(
                    || n.to_string(),
                    |x| {
                        format!("{x:.4}")
                            .trim_end_matches('0')
                            .trim_end_matches('.')
                            .to_string()
                    },
                ),
                _ => "-".to_string(),
            };
            out.push_str(&format!("  {figure:>10}"));
        }
        out.push('\n');
    }
    out
}

/// The answer as a table: value, count, share of the matches.
pub fn table(v: &Value) -> String {
    let total = v["total"].as_u64().unwrap_or(0);
    let mut rows: Vec<(String, u64)> = v["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            (
                cell(b["value"].as_str().unwrap_or_default()),
                b["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    for (label, field) in [("(other values)", "other"), ("(missing)", "missing")] {
        if let Some(n) = v[field].as_u64().filter(|n| *n > 0) {
            rows.push((label.to_string(), n));
        }
    }
    let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0).max(5);
    let by = v["by"].as_str().unwrap_or("value");
    let mut out = format!("{by:<width$}  {:>10}  {:>6}\n", "count", "share");
    for (k, n) in rows {
        let share = if total == 0 {
            0.0
        } else {
            n as f64 * 100.0 / total as f64
        };
        out.push_str(&format!("{k:<width$}  {n:>10}  {share:>5.1}%\n"));
    }
    out.push_str(&format!("{:<width$}  {total:>10}\n", "total"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_of_a_series() {
        let v = json!({"buckets": [{"value": "api", "count": 3}], "series": [
            {"start": "2025-10-10T12:00:00Z", "count": 4, "by_value": {"api": 3}, "other": 1, "missing": 0},
            {"start": "2025-10-10T12:01:00Z", "count": 0, "by_value": {}, "other": 0, "missing": 2}]});
        let t = series_table(&v);
        let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines[0], ["start", "api", "(other)", "(missing)"]);
        assert_eq!(lines[1], ["2025-10-10T12:00:00Z", "3", "1", "0"]);
        assert_eq!(lines[2], ["2025-10-10T12:01:00Z", "0", "0", "2"]);
    }

    #[test]
    fn a_table_of_statistics() {
        let v = json!({"total": 3, "number": "attributes.ms", "stats": {"count": 2, "min": 1.5, "max": 10.0, "avg": 5.75,
            "sum": 11.5, "p50": 5.75, "p90": 9.15, "p95": 9.575, "p99": 9.915},
            "buckets": [{"value": "api", "count": 3, "stats": {"count": 0, "min": null, "max": null, "avg": null, "sum": 0.0,
            "p50": null, "p90": null, "p95": null, "p99": null}}]});
        let t = stats_table(&v);
        let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(
            lines[0],
            [
                "attributes.ms",
                "count",
                "min",
                "max",
                "avg",
                "sum",
                "p50",
                "p90",
                "p95",
                "p99"
            ]
        );
        assert_eq!(
            lines[1],
            [
                "(all)", "2", "1.5", "10", "5.75", "11.5", "5.75", "9.15", "9.575", "9.915"
            ]
        );
        assert_eq!(lines[2], ["api", "0", "-", "-", "-", "0", "-", "-", "-", "-"]);
        let v = json!({"stats": {"count": 100, "sum": 1000.0}});
        assert_eq!(
            stats_table(&v)
                .lines()
                .nth(1)
                .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>()),
            Some(vec!["(all)", "100"])
        );
    }

    #[test]
    fn a_table_of_the_counts() {
        let v = json!({"total": 8, "by": "service", "buckets": [{"value": "billing", "count": 5}, {"value": "web", "count": 2}], "other": 1, "missing": 0});
        let t = table(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "{t}");
        assert!(lines[1].starts_with("billing") && lines[1].ends_with("62.5%"), "{t}");
        assert!(
            lines[3].starts_with("(other values)") && lines[3].contains(" 1 "),
            "{t}"
        );
        assert!(lines[4].starts_with("total") && lines[4].ends_with(" 8"), "{t}");
        let v = json!({"total": 1, "by": "k", "buckets": [{"value": "a\u{1b}[31m\nb", "count": 1}], "other": 0, "missing": 0});
        assert!(
            !table(&v).contains('\u{1b}') && table(&v).contains("a\\u{1b}[31m\\nb"),
            "{}",
            table(&v)
        );
    }
}
