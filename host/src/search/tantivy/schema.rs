//! The fields of a tenant's index and its documents: what a record is
//! written as, and how an id or a whole record is read back.

use tantivy::collector::TopDocs;
use tantivy::query::TermQuery;
use tantivy::schema::{FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, Value};
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};

use super::{TenantIndex, corrupt};
use crate::error::BackendError;
use crate::model::{LogRecord, id_sort_key, record_from_json, record_to_json};
use crate::search::query::sortable;
use loggerhub_codec::AttrValue;

pub(super) struct Fields {
    pub(super) id: Field,
    pub(super) id_hi: Field,
    pub(super) id_lo: Field,
    pub(super) service: Field,
    pub(super) level: Field,
    pub(super) timestamp: Field,
    pub(super) message: Field,
    pub(super) full_log: Field,
    pub(super) attr: Field,
    pub(super) source: Field,
}

pub(super) fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        id_hi: b.add_u64_field("id_hi", FAST),
        id_lo: b.add_u64_field("id_lo", FAST),
        service: b.add_text_field("service", STRING),
        level: b.add_text_field("level", STRING),
        timestamp: b.add_i64_field("timestamp", INDEXED | FAST),
        message: b.add_text_field("message", TEXT),
        full_log: b.add_text_field("full_log", TEXT),
        // `key=value`, one value per attribute: exact attribute matches;
        // and a number again as `number_term` (no field is added to an
        // index that exists: Tantivy opens it only with its own schema).
        attr: b.add_text_field("attr", STRING),
        source: b.add_bytes_field("source", STORED),
    };
    (b.build(), fields)
}

impl Fields {
    pub(super) fn to_doc(&self, r: &LogRecord) -> TantivyDocument {
        let f = self;
        let key = id_sort_key(&r.id);
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, &r.id);
        doc.add_u64(f.id_hi, (key >> 64) as u64);
        doc.add_u64(f.id_lo, key as u64);
        doc.add_text(f.service, &r.service);
        doc.add_text(f.level, r.level.as_str());
        doc.add_i64(f.timestamp, r.timestamp);
        doc.add_text(f.message, &r.message);
        doc.add_text(f.full_log, &r.full_log);
        for (k, v) in &r.attributes {
            let v = AttrValue::of(v);
            doc.add_text(f.attr, format!("{k}={}", v.text()));
            if let Some(n) = v.as_f64() {
                doc.add_text(f.attr, number_term(k, sortable(n)));
            }
        }
        doc.add_bytes(f.source, &record_to_json(r));
        doc
    }
}

/// Where a number attribute's terms start in `attr`: a key never starts
/// with a control character, so none is read as a `key=value`.
pub(super) const NUMBERS: char = '\u{1}';

/// The term of attribute `key` holding the number whose [`sortable`] key
/// is `n`: 16 hex digits after the key, so that the terms of one key
/// order as its numbers do and a range of numbers is a range of terms.
pub(super) fn number_term(key: &str, n: u64) -> String {
    format!("{NUMBERS}{key}\u{1f}{n:016x}")
}

impl TenantIndex {
    /// The id of the document at `addr` of `searcher`: an address is only
    /// good in the searcher that found it (a commit between two searchers
    /// renumbers segments).
    pub(super) fn doc_id(&self, searcher: &Searcher, addr: DocAddress) -> Result<String, BackendError> {
        let doc: TantivyDocument = searcher.doc(addr)?;
        doc.get_first(self.fields.id)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| corrupt("document without id"))
    }

    pub(super) fn get(&self, id: &str) -> Result<Option<LogRecord>, BackendError> {
        let searcher = self.reader.searcher();
        let q = TermQuery::new(Term::from_field_text(self.fields.id, id), IndexRecordOption::Basic);
        let Some((_, addr)) = searcher
            .search(&q, &TopDocs::with_limit(1).order_by_score())?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let doc: TantivyDocument = searcher.doc(addr)?;
        let src = doc
            .get_first(self.fields.source)
            .and_then(|v| v.as_bytes())
            .ok_or_else(|| corrupt("document without source"))?;
        record_from_json(src).map(Some).map_err(corrupt)
    }
}
