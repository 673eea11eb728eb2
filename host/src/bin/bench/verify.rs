//! What the bench checks it measured: once the server is stopped, every
//! record the run sent is in each of the three stores exactly once, with
//! its content. The stores are opened as the server opened them (its data
//! dir, or the URLs of `make bench-distributed`).

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use anyhow::{Context, bail};
use loggerhub::model::{Cursor, LogFilter};
use loggerhub::search::query::Query;

/// What the check compares of a record: service, message, level (its
/// name) and timestamp (unix ns).
pub type Content = (String, String, &'static str, i64);

/// The content of a stored record.
fn content_of(r: &loggerhub::model::LogRecord) -> Content {
    (r.service.clone(), r.message.clone(), r.level.as_str(), r.timestamp)
}

/// Every record a tenant was sent, by content: how many times each went
/// out.
pub struct Expected {
    pub tenant: String,
    pub records: HashMap<Content, u64>,
}

impl Expected {
    fn total(&self) -> u64 {
        self.records.values().sum()
    }
}

/// One page's size: the API's largest.
const PAGE: usize = 1000;

fn fingerprint(content: &Content) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    content.hash(&mut h);
    h.finish()
}

/// Checks each tenant's records in the metadata store, the raw store and
/// the index: the same ids in all three, none twice, and the content sent
/// (service, message, level, timestamp) for every record of each. Only records stamped at or
/// after `since` count (a run with `--expired` also holds older ones).
pub async fn every_record_once(data_dir: &std::path::Path, expected: &[Expected], since: i64) -> anyhow::Result<()> {
    use clap::Parser;
    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: loggerhub::config::ServeArgs,
    }
    // The same settings the server read: its flags' defaults and the
    // environment's backend URLs.
    let config = Serve::try_parse_from(["serve", "--data-dir", &data_dir.to_string_lossy()])?
        .args
        .check(loggerhub::config::Secrets::from_env())
        .context("the server's settings")?;
    let b = &config.backends;
    let meta = loggerhub::stores::open_metadata(&b.metadata).await?.logs;
    let raw = loggerhub::stores::raw::RawStore::open(&b.raw)?;
    let index = loggerhub::search::open(&b.index)?;
    let filter = LogFilter {
        from: Some(since),
        ..LogFilter::default()
    };
    for want in expected {
        let tenant = want.tenant.as_str();
        let t0 = std::time::Instant::now();
        let total = want.total();
        // The metadata store: every row, by pages.
        let mut by_id: HashMap<String, u64> = HashMap::with_capacity(total as usize);
        let mut content: HashMap<Content, u64> = HashMap::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = meta.list_logs(tenant, &filter, cursor.as_ref(), PAGE).await?;
            for r in page.hits {
                let content_r = content_of(&r);
                let print = fingerprint(&content_r);
                if by_id.insert(r.id.clone(), print).is_some() {
                    bail!("{tenant}: record {} twice in the metadata store", r.id);
                }
                *content.entry(content_r).or_default() += 1;
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        same_content(tenant, "the metadata store", &content, want)?;
        eprintln!("  verify {tenant}: metadata {:.1} s", t0.elapsed().as_secs_f64());
        // The raw store: every object of the tenant, every line.
        let mut seen = HashSet::with_capacity(total as usize);
        let mut content: HashMap<Content, u64> = HashMap::new();
        for key in raw.batch_keys(tenant).await? {
            for r in raw.read_batch(&key).await? {
                if r.timestamp < since {
                    continue;
                }
                if !seen.insert(r.id.clone()) {
                    bail!("{tenant}: record {} twice in the raw store", r.id);
                }
                if !by_id.contains_key(&r.id) {
                    bail!(
                        "{tenant}: record {} in the raw store but not in the metadata store",
                        r.id
                    );
                }
                *content.entry(content_of(&r)).or_default() += 1;
            }
        }
        same_content(tenant, "the raw store", &content, want)?;
        eprintln!("  verify {tenant}: raw {:.1} s", t0.elapsed().as_secs_f64());
        // The index: as many documents as records sent, and every record
        // of the metadata store read back whole from it (ids are unique
        // there, so none is missing and none twice).
        let query = Query::parse("").map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let counted = index.search(tenant, &query, &filter, None, 1, true).await?.total;
        if counted != total {
            bail!("{tenant}: {counted} of {total} records in the index");
        }
        use futures::{StreamExt, TryStreamExt};
        futures::stream::iter(&by_id)
            .map(|(id, print)| {
                let index = &index;
                async move {
                    let r = index
                        .get(tenant, id)
                        .await?
                        .with_context(|| format!("{tenant}: record {id} is not in the index"))?;
                    if fingerprint(&content_of(&r)) != *print {
                        bail!("{tenant}: record {id} differs between the index and the metadata store");
                    }
                    Ok(())
                }
            })
            .buffer_unordered(4)
            .try_collect::<()>()
            .await?;
        eprintln!("  verify {tenant}: index {:.1} s", t0.elapsed().as_secs_f64());
    }
    Ok(())
}

/// The records a store holds are the ones sent: the same contents, each
/// as many times.
fn same_content(tenant: &str, store: &str, got: &HashMap<Content, u64>, want: &Expected) -> anyhow::Result<()> {
    let n: u64 = got.values().sum();
    if n != want.total() {
        bail!("{tenant}: {n} of {} records in {store}", want.total());
    }
    for (record, count) in &want.records {
        let found = got.get(record).copied().unwrap_or(0);
        if found != *count {
            bail!("{tenant}: {store} holds {found} copies of a record sent {count} times: {record:?}");
        }
    }
    Ok(())
}
