//! The line parser against its corpus (`corpus/*.tsv`, one file per
//! format, each line with the timestamp and level it carries): the share
//! of lines that get their own timestamp, and their own level, where they
//! have one. Prints the table docs/PARSING.md reports
//! (`cargo test -p lh-plugin-line-parser --test corpus -- --nocapture`).

use lh_plugin_line_parser::detect;
use loggerhub_codec::time::{format_rfc3339, parse_rfc3339};
use loggerhub_plugin_sdk::Level;

/// When the corpus's year-less and date-less times were written as seen.
const NOW: &str = "2025-12-15T23:00:00Z";
/// The bar, over all lines.
const OVERALL: f64 = 0.97;
/// No format may fall far below it.
const PER_FORMAT: f64 = 0.90;

#[derive(Default)]
struct Score {
    lines: usize,
    with_ts: usize,
    ts_right: usize,
    ts_invented: usize,
    with_level: usize,
    level_right: usize,
    level_invented: usize,
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "–".into()
    } else {
        format!("{:.1} %", 100.0 * n as f64 / d as f64)
    }
}

#[test]
fn corpus() {
    let now = parse_rfc3339(NOW).expect("now");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "tsv"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "the corpus holds {} formats", files.len());
    let mut total = Score::default();
    let mut failures = Vec::new();
    println!("| format | lines | own timestamp | own level | timestamps invented | levels invented |");
    println!("|---|---|---|---|---|---|");
    for file in &files {
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(file).expect("read corpus");
        let mut s = Score::default();
        for row in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let mut cols = row.splitn(3, '\t');
            let (ts, level, line) = (
                cols.next().unwrap_or(""),
                cols.next().unwrap_or(""),
                cols.next().unwrap_or(""),
            );
            let (got_ts, got_level) = detect(line, now);
            s.lines += 1;
            if ts == "-" {
                s.ts_invented += usize::from(got_ts.is_some());
            } else {
                s.with_ts += 1;
                let want = parse_rfc3339(ts).expect("corpus timestamp");
                if got_ts == Some(want) {
                    s.ts_right += 1;
                } else {
                    failures.push(format!(
                        "{name}: timestamp {:?}, want {ts}: {line}",
                        got_ts.map(format_rfc3339)
                    ));
                }
            }
            if level == "-" {
                s.level_invented += usize::from(got_level.is_some());
            } else {
                s.with_level += 1;
                let want = Level::parse(level).expect("corpus level");
                if got_level == Some(want) {
                    s.level_right += 1;
                } else {
                    failures.push(format!("{name}: level {got_level:?}, want {level}: {line}"));
                }
            }
        }
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            s.lines,
            pct(s.ts_right, s.with_ts),
            pct(s.level_right, s.with_level),
            s.ts_invented,
            s.level_invented
        );
        for (right, of, what) in [
            (s.ts_right, s.with_ts, "timestamps"),
            (s.level_right, s.with_level, "levels"),
        ] {
            assert!(
                of == 0 || right as f64 >= PER_FORMAT * of as f64,
                "{name}: {right} of {of} {what}\n{}",
                failures.join("\n")
            );
        }
        total.lines += s.lines;
        total.with_ts += s.with_ts;
        total.ts_right += s.ts_right;
        total.ts_invented += s.ts_invented;
        total.with_level += s.with_level;
        total.level_right += s.level_right;
        total.level_invented += s.level_invented;
    }
    println!(
        "| **all {} formats** | {} | {} | {} | {} | {} |",
        files.len(),
        total.lines,
        pct(total.ts_right, total.with_ts),
        pct(total.level_right, total.with_level),
        total.ts_invented,
        total.level_invented
    );
    for f in &failures {
        println!("missed: {f}");
    }
    assert!(
        total.ts_right as f64 >= OVERALL * total.with_ts as f64,
        "timestamps: {}",
        pct(total.ts_right, total.with_ts)
    );
    assert!(
        total.level_right as f64 >= OVERALL * total.with_level as f64,
        "levels: {}",
        pct(total.level_right, total.with_level)
    );
}
