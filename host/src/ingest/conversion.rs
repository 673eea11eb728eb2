//! The conversion budget: a shipper protocol's records (OTLP, Loki) made
//! into lines of the JSON payload, each charged before it is built, and
//! queued in entries of at most `CONVERTED_ENTRY_BYTES`.

use loggerhub_codec::payload;

use crate::model::window::TimeWindow;

/// What a request's records may come to, as the JSON payload, for each
/// byte of its body (inflated). OTLP's resource and scope attributes and
/// Loki's labels are written once per request and copied into every
/// record: without a bound, a few kilobytes of gzip (one 64 KiB attribute,
/// 20,000 empty records) became gigabytes. A real SDK's request, with its
/// handful of resource attributes, converts to 2 to 4 times its size.
pub const CONVERSION_FACTOR: usize = 16;
/// What every request may come to whatever its size: the OpenTelemetry
/// Collector's default batch (8,192 records of 50 bytes, each given 2–3 KB
/// of Kubernetes resource attributes) comes to about 22 MiB, 50 times its
/// body. OTLP answers 413 as final, so a Collector would drop the batch.
pub const CONVERSION_FLOOR: usize = 32 << 20;
/// What no request may come to, whatever its size: the memory one request
/// can take while it is converted.
pub const CONVERSION_CEILING: usize = 40 << 20;
/// The least a record is charged, taken or not: `{"message":"","attributes":{}}`
/// and its newline. An empty record is two bytes of protobuf.
pub const MIN_RECORD_CHARGE: usize = 32;
pub use crate::model::CONVERTED_ENTRY_BYTES;

/// A shipper protocol's records, converted one by one into lines of the
/// JSON payload: those the payload decoder takes, and a count of the
/// others with the first one's reason (OTLP and Loki answer with it).
/// What they come to is bounded (`Converted::budget`): each record is
/// charged an estimate before it is built (at least `MIN_RECORD_CHARGE`)
/// and its line's real length once built (escapes included), whether it is
/// then taken or rejected (rejecting costs the building), and a request
/// past the bound is refused whole (413).
#[derive(Debug)]
pub struct Converted {
    /// NDJSON of the records taken into the entry being filled.
    pub body: Vec<u8>,
    pub count: usize,
    pub rejected: usize,
    pub first_error: Option<String>,
    /// The timestamps the tenant may store.
    window: TimeWindow,
    /// The request's body, inflated.
    body_len: usize,
    /// Bytes the records may come to, taken or not.
    budget: usize,
    /// Bytes charged so far.
    spent: usize,
    /// What `fits` charged for the record being built.
    estimated: usize,
    /// The request went past `budget`: nothing of it is queued.
    over: bool,
    /// The entries filled before `body`, with their records; each was
    /// allocated once at its full size, so that growing a request's
    /// records never copies them (a copy doubled the memory it took).
    full: Vec<(Vec<u8>, usize)>,
    /// The records in `body`.
    entry_count: usize,
}

/// A request whose records come to more than its conversion budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the request's records come to more than {budget} bytes once its shared attributes or labels are copied into each ({CONVERSION_FACTOR}× its body of {body} bytes, at least {CONVERSION_FLOOR} and at most {CONVERSION_CEILING}; each record at least {MIN_RECORD_CHARGE}): send fewer records per request, or fewer and smaller shared attributes"
)]
pub struct OverBudget {
    pub budget: usize,
    pub body: usize,
}

impl Converted {
    /// Nothing yet, for the records of a body of `body_len` bytes that must
    /// fall within `window`.
    pub fn within(window: TimeWindow, body_len: usize) -> Converted {
        Converted {
            body: Vec::new(),
            count: 0,
            rejected: 0,
            first_error: None,
            window,
            body_len,
            budget: Converted::budget(body_len),
            spent: 0,
            estimated: 0,
            over: false,
            full: Vec::new(),
            entry_count: 0,
        }
    }

    /// What the records of a body of `body_len` bytes may come to.
    pub fn budget(body_len: usize) -> usize {
        body_len
            .saturating_mul(CONVERSION_FACTOR)
            .clamp(CONVERSION_FLOOR, CONVERSION_CEILING)
    }

    fn charge(&mut self, bytes: usize) -> bool {
        self.spent = self.spent.saturating_add(bytes);
        if self.spent > self.budget {
            self.over = true;
        }
        !self.over
    }

    /// Charges a record of about `estimate` bytes to the budget; whether it
    /// still fits. A converter asks before it decodes or builds each
    /// record, and stops at the first no.
    pub fn fits(&mut self, estimate: usize) -> bool {
        self.estimated = estimate.max(MIN_RECORD_CHARGE);
        self.charge(self.estimated)
    }

    /// Counts a record refused before it was built (`why` names the
    /// problem); it is charged like the smallest record.
    pub fn reject(&mut self, why: &str) {
        if self.over || !self.fits(0) {
            return;
        }
        self.rejected += 1;
        self.first_error
            .get_or_insert_with(|| format!("record {}: {why}", self.count + self.rejected));
    }

    /// Bytes charged so far: what building the records cost.
    pub fn spent(&self) -> usize {
        self.spent
    }

    /// Bytes of the records taken, as queued.
    pub fn count_bytes(&self) -> usize {
        self.full.iter().map(|(b, _)| b.len()).sum::<usize>() + self.body.len()
    }

    /// The request as a whole: refused when it went past its budget.
    pub fn check_budget(&self) -> Result<(), OverBudget> {
        if self.over {
            Err(OverBudget {
                budget: self.budget,
                body: self.body_len,
            })
        } else {
            Ok(())
        }
    }

    /// When the records arrive: the window's time.
    pub fn received_at(&self) -> i64 {
        self.window.arrival
    }

    /// Takes `doc` if the payload decoder would (`check_body`'s rules for
    /// one record) and its time is not older than the window, else counts
    /// it as rejected (the first reason names the record, from 1). The
    /// line's length past what `fits` charged is charged now.
    pub fn push(&mut self, doc: &serde_json::Value, tenant: &str) {
        if self.over {
            return;
        }
        let line = serde_json::to_vec(doc).unwrap_or_default();
        let extra = (line.len() + 1).saturating_sub(std::mem::take(&mut self.estimated));
        if !self.charge(extra) {
            return;
        }
        // An entry holds at most `CONVERTED_ENTRY_BYTES`: a record larger
        // than a whole entry (escapes can make it six times its body) is
        // refused alone.
        if line.len() >= CONVERTED_ENTRY_BYTES {
            self.rejected += 1;
            self.first_error.get_or_insert_with(|| {
                format!(
                    "record {}: {} bytes once converted, over the {CONVERTED_ENTRY_BYTES} a record may take",
                    self.count + self.rejected,
                    line.len()
                )
            });
            return;
        }
        let checked = payload::scan_json(&line, tenant)
            .map_err(|e| e.message)
            .and_then(|scan| match scan.oldest {
                Some((_, ts)) => self.window.check(ts).map_err(|e| e.to_string()),
                None => Ok(()),
            })
            .map_err(|e| format!("record {}: {e}", self.count + self.rejected + 1));
        match checked {
            Ok(()) => {
                if self.entry_count > 0 && self.body.len() + line.len() >= CONVERTED_ENTRY_BYTES {
                    let next = Vec::with_capacity(CONVERTED_ENTRY_BYTES.min(self.budget - self.spent + line.len() + 1));
                    let filled = std::mem::replace(&mut self.body, next);
                    self.full.push((filled, std::mem::take(&mut self.entry_count)));
                }
                self.body.extend_from_slice(&line);
                self.body.push(b'\n');
                self.count += 1;
                self.entry_count += 1;
            }
            Err(e) => {
                self.rejected += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    /// The records taken, as queue entries of at most
    /// `CONVERTED_ENTRY_BYTES` (a larger record is refused by `push`),
    /// each with its count; takes them out.
    pub fn entries(&mut self) -> Vec<(bytes::Bytes, usize)> {
        let mut entries = std::mem::take(&mut self.full);
        if self.entry_count > 0 {
            entries.push((std::mem::take(&mut self.body), std::mem::take(&mut self.entry_count)));
        }
        entries.into_iter().map(|(body, n)| (body.into(), n)).collect()
    }
}

/// The lines of an NDJSON body, parsed (for the protocol modules' tests).
#[cfg(test)]
pub(crate) fn ndjson_lines(body: &[u8]) -> Vec<serde_json::Value> {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("a JSON line"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_are_bounded_by_their_body() {
        assert_eq!(Converted::budget(0), CONVERSION_FLOOR);
        assert_eq!(Converted::budget(9 << 18), 36 << 20);
        assert_eq!(Converted::budget(10 << 20), CONVERSION_CEILING);
        let mut c = Converted::within(TimeWindow::ALL, 9 << 18);
        let budget = Converted::budget(9 << 18);
        assert!(c.fits(budget));
        assert!(!c.fits(budget + 1), "one byte past the budget");
        assert!(!c.fits(1), "once over, a request stays over");
        let e = c.check_budget().expect_err("over");
        assert_eq!((e.budget, e.body), (budget, 9 << 18));
        assert!(e.to_string().contains("× its body"), "{e}");
        // Records rejected cost their building too; once over, nothing
        // more is taken.
        let mut c = Converted::within(TimeWindow::ALL, 0);
        let bad = serde_json::json!({"message": "x", "level": "loud"});
        let mut tried = 0;
        while c.fits(1000) {
            c.push(&bad, "t");
            tried += 1;
        }
        assert_eq!((tried, c.rejected), (CONVERSION_FLOOR / 1000, CONVERSION_FLOOR / 1000));
        c.push(&serde_json::json!({"message": "late"}), "t");
        assert_eq!(c.count, 0);
    }

    #[test]
    fn a_record_costs_at_least_its_smallest_line_and_at_most_its_real_one() {
        // An estimate of nothing is charged as the smallest record.
        let mut c = Converted::within(TimeWindow::ALL, 0);
        let mut n = 0;
        while c.fits(0) {
            n += 1;
        }
        assert_eq!(n, CONVERSION_FLOOR / MIN_RECORD_CHARGE);
        // Escapes make a line six times its estimate: the line is charged.
        let mut c = Converted::within(TimeWindow::ALL, 0);
        let control = "\u{1}".repeat(1000);
        let doc = serde_json::json!({"message": control});
        let mut taken = 0;
        while c.fits(1000) {
            c.push(&doc, "t");
            if c.check_budget().is_ok() {
                taken += 1;
            }
        }
        let line = serde_json::to_vec(&doc).expect("json").len() + 1;
        assert!(line > 6000, "{line}");
        assert_eq!(taken, CONVERSION_FLOOR / line);
        assert!(c.body.len() <= CONVERSION_FLOOR);
        // Refused unbuilt, a record still costs the smallest charge.
        let mut c = Converted::within(TimeWindow::ALL, 0);
        c.reject("too many values");
        assert_eq!(c.first_error.as_deref(), Some("record 1: too many values"));
        assert_eq!((c.rejected, c.spent), (1, MIN_RECORD_CHARGE));
    }

    #[test]
    fn converted_records_are_queued_in_entries_the_parser_can_take() {
        let mut c = Converted::within(TimeWindow::ALL, 0);
        let doc = serde_json::json!({"message": "m".repeat(1 << 20)});
        for _ in 0..20 {
            assert!(c.fits(1 << 20));
            c.push(&doc, "t");
        }
        let entries = c.entries();
        assert_eq!(entries.iter().map(|(_, n)| n).sum::<usize>(), 20);
        assert_eq!(entries.len(), 3, "7 + 7 + 6 records of 1 MiB");
        for (body, count) in &entries {
            assert!(body.len() <= CONVERTED_ENTRY_BYTES);
            assert_eq!(ndjson_lines(body).len(), *count);
        }
        assert!(c.entries().is_empty(), "taken out");
        // One record past a whole entry is refused alone.
        let mut c = Converted::within(TimeWindow::ALL, 0);
        let huge = serde_json::json!({"message": "\u{1}".repeat(CONVERTED_ENTRY_BYTES / 5)});
        assert!(c.fits(1000));
        c.push(&huge, "t");
        assert!(c.fits(10));
        c.push(&serde_json::json!({"message": "small"}), "t");
        assert_eq!((c.count, c.rejected), (1, 1));
        assert!(
            c.first_error.as_deref().is_some_and(|e| e.starts_with("record 1: ")),
            "{:?}",
            c.first_error
        );
    }
}
