//! `loggerhub import FILE…`: sends log files to `POST /v1/logs` in chunks
//! of whole lines, NDJSON or text (through the tenant's text parser),
//! gzip or not, with a progress bar, the throughput and a summary.
//!
//! Resumable without duplicates, two ways: each chunk carries an
//! `Idempotency-Key` made of the file, the chunk's place and its bytes, so
//! a chunk sent twice is stored once; and the chunks the server accepted
//! are written down (a small state file per import), so a run after an
//! interruption skips them instead of sending them again.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// By the name (`.ndjson`, `.jsonl`, `.json`; `.log`, `.txt`), else by
    /// the first byte (`{` is NDJSON).
    Auto,
    Ndjson,
    /// One log per line, through the tenant's text parser.
    Text,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// Files to send, plain or gzip (`-` is not taken: an import must be
    /// readable twice to resume).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "auto")]
    format: Format,
    /// The service of records that name none.
    #[arg(long)]
    service: Option<String>,
    /// Bytes of lines per request (at most the server's body limit).
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1024..=64 << 20))]
    chunk_bytes: u64,
    /// Forget the progress of an earlier, interrupted run of this import
    /// (what it sent is still not stored twice).
    #[arg(long)]
    restart: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// A line longer than this is refused: it is not a log line, and a file
/// without newlines must not be read into memory whole.
const MAX_LINE_BYTES: usize = 16 << 20;
/// Retries of one chunk the server could not take yet (429, 503, no
/// connection), each after `Retry-After` or a growing pause.
const MAX_RETRIES: u32 = 30;
/// How often progress is printed when stderr is not a terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// What a run has done of one file, kept between runs.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
struct Progress {
    chunks: u64,
    lines: u64,
    accepted: u64,
}

#[derive(Serialize, Default, Debug)]
struct Summary {
    files: usize,
    lines: u64,
    accepted: u64,
    bytes: u64,
    chunks_sent: u64,
    chunks_skipped: u64,
    seconds: f64,
    logs_per_second: f64,
    megabytes_per_second: f64,
}

pub async fn run(args: ImportArgs, url: &str, key: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let endpoint = format!("{}/v1/logs", url.trim_end_matches('/'));
    let started = Instant::now();
    let total_bytes: u64 = args
        .files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()))
        .sum::<Result<u64, _>>()
        .context("reading the files' sizes")?;
    let bar = Bar::new(total_bytes);
    let mut sum = Summary {
        files: args.files.len(),
        ..Summary::default()
    };
    for file in &args.files {
        let state = StateFile::for_import(url, key, file)?;
        if args.restart {
            state.forget();
        }
        let done = state.load();
        let send = Sender {
            http: &http,
            endpoint: &endpoint,
            key,
            service: args.service.as_deref(),
        };
        import_file(file, &args, done, &state, &send, &bar, &mut sum).await?;
        state.forget();
    }
    bar.finish();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    sum.seconds = (secs * 1000.0).round() / 1000.0;
    sum.logs_per_second = (sum.accepted as f64 / secs).round();
    sum.megabytes_per_second = (sum.bytes as f64 / secs / 1e6 * 100.0).round() / 100.0;
    if args.json {
        println!("{}", serde_json::to_string(&sum)?);
    } else {
        println!(
            "imported {} file(s): {} logs accepted of {} lines, {:.1} MB in {:.1} s ({} logs/s, {:.1} MB/s); {} chunks sent, {} skipped as already imported",
            sum.files,
            sum.accepted,
            sum.lines,
            sum.bytes as f64 / 1e6,
            sum.seconds,
            sum.logs_per_second,
            sum.megabytes_per_second,
            sum.chunks_sent,
            sum.chunks_skipped
        );
    }
    Ok(())
}

async fn import_file(
    file: &Path,
    args: &ImportArgs,
    mut done: Progress,
    state: &StateFile,
    send: &Sender<'_>,
    bar: &Bar,
    sum: &mut Summary,
) -> anyhow::Result<()> {
    let path = std::fs::canonicalize(file).with_context(|| format!("opening {}", file.display()))?;
    let raw = CountingReader::new(File::open(&path).with_context(|| format!("opening {}", file.display()))?);
    let read_so_far = raw.count.clone();
    let mut head = BufReader::new(raw);
    let gzip = head.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let mut lines: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(head)))
    } else {
        Box::new(head)
    };
    let ndjson = match args.format {
        Format::Ndjson => true,
        Format::Text => false,
        Format::Auto => sniff_ndjson(&path, lines.fill_buf()?),
    };
    let content_type = if ndjson { "application/x-ndjson" } else { "text/plain" };
    let identity = path.to_string_lossy().into_owned();
    let mut chunk = Vec::with_capacity(args.chunk_bytes as usize + 4096);
    let mut line = Vec::new();
    let mut index = 0u64;
    let mut first_line = 1u64;
    let mut at_line = 0u64;
    let mut last_bytes = 0;
    loop {
        let more =
            read_line(&mut lines, &mut line).with_context(|| format!("{}: line {}", file.display(), at_line + 1))?;
        if more {
            at_line += 1;
            chunk.extend_from_slice(&line);
        }
        if chunk.len() as u64 >= args.chunk_bytes || (!more && !chunk.is_empty()) {
            let count = at_line + 1 - first_line;
            if index < done.chunks {
                sum.chunks_skipped += 1;
            } else {
                let key = chunk_key(&identity, index, &chunk);
                let accepted = send
                    .chunk(&chunk, content_type, &key)
                    .await
                    .with_context(|| format!("{}: the chunk of lines {first_line} to {at_line}", file.display()))?;
                done.chunks = index + 1;
                done.lines += count;
                done.accepted += accepted;
                state.save(&done);
                sum.chunks_sent += 1;
            }
            sum.lines += count;
            sum.bytes += chunk.len() as u64;
            let read = read_so_far.load(Ordering::Relaxed);
            bar.advance(read - last_bytes.min(read), done.accepted, file);
            last_bytes = read;
            chunk.clear();
            index += 1;
            first_line = at_line + 1;
        }
        if !more {
            break;
        }
    }
    sum.accepted += done.accepted;
    Ok(())
}

/// Reads one line (with its `\n`) into `line`; false at the end.
fn read_line(r: &mut dyn BufRead, line: &mut Vec<u8>) -> anyhow::Result<bool> {
    line.clear();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(!line.is_empty());
        }
        let (take, end) = match memchr(buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > MAX_LINE_BYTES {
            bail!("a line longer than {MAX_LINE_BYTES} bytes");
        }
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        if end {
            return Ok(true);
        }
    }
}

fn memchr(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

fn sniff_ndjson(path: &Path, head: &[u8]) -> bool {
    let name = path.to_string_lossy().to_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if [".ndjson", ".jsonl", ".json"].iter().any(|e| name.ends_with(e)) {
        return true;
    }
    if [".log", ".txt"].iter().any(|e| name.ends_with(e)) {
        return false;
    }
    head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// The chunk's idempotency key: the same file, place and bytes always
/// make the same key, so the server stores a resent chunk once.
fn chunk_key(identity: &str, index: u64, chunk: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(identity.as_bytes());
    h.update([0]);
    h.update(index.to_be_bytes());
    h.update(chunk);
    format!("import-{}", &hex::encode(h.finalize())[..40])
}

struct Sender<'a> {
    http: &'a reqwest::Client,
    endpoint: &'a str,
    key: &'a str,
    service: Option<&'a str>,
}

impl Sender<'_> {
    /// Sends one chunk until the server takes it; how many logs it took.
    async fn chunk(&self, body: &[u8], content_type: &str, key: &str) -> anyhow::Result<u64> {
        let body = bytes::Bytes::copy_from_slice(body);
        let mut pause = Duration::from_millis(200);
        for attempt in 0.. {
            let mut req = self
                .http
                .post(self.endpoint)
                .bearer_auth(self.key)
                .header("content-type", content_type)
                .header("idempotency-key", key)
                .body(body.clone());
            if let Some(s) = self.service {
                req = req.header("x-loggerhub-service", s);
            }
            let wait = match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    let v: serde_json::Value = resp.json().await.context("the server's answer")?;
                    return Ok(v["accepted"].as_u64().unwrap_or_default());
                }
                Ok(resp) if matches!(resp.status().as_u16(), 429 | 503) => resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .map_or(pause, Duration::from_secs),
                Ok(resp) => {
                    let status = resp.status();
                    let v: serde_json::Value = resp.json().await.unwrap_or_default();
                    let msg = v["error"]["message"].as_str().unwrap_or_default();
                    bail!("{status}: {msg}");
                }
                Err(e) if attempt < MAX_RETRIES => {
                    eprintln!("import: {e}; retrying");
                    pause
                }
                Err(e) => return Err(e).context("cannot reach LoggerHub"),
            };
            if attempt >= MAX_RETRIES {
                break;
            }
            tokio::time::sleep(wait).await;
            pause = (pause * 2).min(Duration::from_secs(10));
        }
        bail!("the server did not take the chunk after {MAX_RETRIES} retries; run the import again to resume")
    }
}

/// Where an import's progress is kept: one small file per (server, key,
/// file), under the user's state directory.
struct StateFile(PathBuf);

impl StateFile {
    fn for_import(url: &str, key: &str, file: &Path) -> anyhow::Result<StateFile> {
        let path = std::fs::canonicalize(file).with_context(|| format!("opening {}", file.display()))?;
        let meta = std::fs::metadata(&path)?;
        let mut h = Sha256::new();
        for part in [
            url.trim_end_matches('/').as_bytes(),
            key.as_bytes(),
            path.as_os_str().as_encoded_bytes(),
        ] {
            h.update(part);
            h.update([0]);
        }
        // A file changed since (another size or time) is another import.
        h.update(meta.len().to_be_bytes());
        if let Ok(t) = meta
            .modified()
            .map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default())
        {
            h.update(t.as_nanos().to_be_bytes());
        }
        let dir = state_dir().join("imports");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(StateFile(
            dir.join(format!("{}.json", &hex::encode(h.finalize())[..32])),
        ))
    }

    fn load(&self) -> Progress {
        std::fs::read(&self.0)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Written whole then renamed: a run cut mid-write leaves the last
    /// complete progress.
    fn save(&self, p: &Progress) {
        let tmp = self.0.with_extension("tmp");
        let written = serde_json::to_vec(p)
            .ok()
            .is_some_and(|b| std::fs::write(&tmp, b).is_ok());
        if written {
            let _ = std::fs::rename(&tmp, &self.0);
        }
    }

    fn forget(&self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LOGGERHUB_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("loggerhub");
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".local/state/loggerhub")
}

/// Counts the bytes read from the file (compressed, for gzip): the
/// progress bar's measure.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> CountingReader<R> {
    fn new(inner: R) -> Self {
        CountingReader {
            inner,
            count: Arc::default(),
        }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The progress bar on a terminal; a line every few seconds elsewhere.
struct Bar {
    total: u64,
    done: std::cell::Cell<u64>,
    started: Instant,
    last_plain: std::cell::Cell<Instant>,
    tty: bool,
}

impl Bar {
    fn new(total: u64) -> Bar {
        Bar {
            total: total.max(1),
            done: 0.into(),
            started: Instant::now(),
            last_plain: Instant::now().into(),
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn advance(&self, bytes: u64, accepted_in_file: u64, file: &Path) {
        self.done.set((self.done.get() + bytes).min(self.total));
        let pct = self.done.get() * 100 / self.total;
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.done.get() as f64 / secs / 1e6;
        let name = file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        let mut err = std::io::stderr().lock();
        if self.tty {
            let filled = (pct as usize) * 30 / 100;
            let _ = write!(
                err,
                "\r\x1b[2K[{}{}] {pct:>3}%  {:.1}/{:.1} MB  {rate:.1} MB/s  {name}: {accepted_in_file} logs",
                "█".repeat(filled),
                "░".repeat(30 - filled),
                self.done.get() as f64 / 1e6,
                self.total as f64 / 1e6,
            );
        } else if self.last_plain.get().elapsed() >= PLAIN_PROGRESS_EVERY || pct == 100 {
            self.last_plain.set(Instant::now());
            let _ = writeln!(err, "import: {pct}% {name}: {accepted_in_file} logs, {rate:.1} MB/s");
        }
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_keys_name_the_file_the_place_and_the_bytes() {
        let k = chunk_key("/a.log", 0, b"x\n");
        assert_eq!(k, chunk_key("/a.log", 0, b"x\n"));
        assert!(k.len() <= 256 && k.starts_with("import-"));
        assert_ne!(k, chunk_key("/a.log", 1, b"x\n"));
        assert_ne!(k, chunk_key("/b.log", 0, b"x\n"));
        assert_ne!(k, chunk_key("/a.log", 0, b"y\n"));
    }

    #[test]
    fn lines_are_read_whole_and_bounded() {
        let mut r: &[u8] = b"one\ntwo\nlast";
        let mut line = Vec::new();
        let mut got = Vec::new();
        while read_line(&mut r, &mut line).expect("read") {
            got.push(String::from_utf8_lossy(&line).into_owned());
        }
        assert_eq!(got, ["one\n", "two\n", "last"]);
        let huge = vec![b'x'; MAX_LINE_BYTES + 1];
        assert!(read_line(&mut huge.as_slice(), &mut line).is_err());
    }

    #[test]
    fn formats_are_told_by_name_then_by_content() {
        assert!(sniff_ndjson(Path::new("/x/app.jsonl.gz"), b"2025 plain"));
        assert!(!sniff_ndjson(Path::new("/x/app.log"), b"{\"a\":1}"));
        assert!(sniff_ndjson(Path::new("/x/app"), b"  {\"a\":1}"));
        assert!(!sniff_ndjson(Path::new("/x/app"), b"2025-10-10 INFO x"));
    }
}
