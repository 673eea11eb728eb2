//! Test harness: runs the real `loggerhub` binary on a free loopback port
//! over a temporary data dir, and talks to it over HTTP.

pub mod private;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const ADMIN: &str = "test-admin-token";

/// The URL of a service the test needs; running without it is a setup
/// error, never a silent skip.
pub fn service_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests with `make test`, which starts the services (infra/local/services.sh)")
    })
}

/// `serve` flags for every distributed backend `make test` started, with
/// the queue `name` and the index prefix `<name>-` of their own. The S3
/// credentials reach the server through the environment, as in production.
pub fn distributed_flags(name: &str) -> Vec<String> {
    [
        ("--database-url", service_url("DATABASE_URL")),
        ("--redis-url", service_url("REDIS_URL")),
        ("--queue-name", name.to_string()),
        ("--object-store-url", service_url("OBJECT_STORE_URL")),
        ("--opensearch-url", service_url("OPENSEARCH_URL")),
        ("--index-prefix", format!("{name}-")),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_string(), value])
    .collect()
}

/// A database of its own on the PostgreSQL server `make test` started,
/// made empty: for a test whose upkeep sweeps every tenant it finds.
pub async fn own_database(name: &str) -> String {
    let url = service_url("DATABASE_URL");
    let db = format!("lh_{name}_{}", std::process::id());
    let pool = sqlx::PgPool::connect(&url).await.expect("connect to postgres");
    let drop = format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&pool)
        .await
        .expect("drop database");
    let create = format!("CREATE DATABASE {db}");
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    let (base, _) = url.rsplit_once('/').expect("a database url");
    format!("{base}/{db}")
}

/// `distributed_flags`, on the database `db`.
pub fn distributed_flags_on(name: &str, db: &str) -> Vec<String> {
    let mut flags = distributed_flags(name);
    if let Some(i) = flags.iter().position(|f| f == "--database-url") {
        flags[i + 1] = db.to_string();
    }
    flags
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
}

/// The server under test: this build's, or the binary `LOGGERHUB_TEST_SERVER`
/// names (the timing tests against a release build: `LOGGERHUB_TEST_SERVER=
/// $CARGO_TARGET_DIR/release/loggerhub cargo test --test timing`).
fn server_binary() -> std::path::PathBuf {
    std::env::var_os("LOGGERHUB_TEST_SERVER").map_or_else(|| env!("CARGO_BIN_EXE_loggerhub").into(), Into::into)
}

/// `loggerhub serve` on a free port over `data_dir` with the admin token
/// `ADMIN` and the embedded backends, unless `extra` names others: `make
/// test` exports the services' URLs for the tests that use them.
fn serve_command(data_dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(server_binary());
    cmd.arg("serve").arg("--data-dir").arg(data_dir);
    if !extra.contains(&"--listen") {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    cmd.args(extra)
        .env("LOGGERHUB_ADMIN_TOKEN", ADMIN)
        .env("NO_COLOR", "1")
        // Distributed tests share one database: retention sweeps only
        // where a test asks for them (`--upkeep-interval-ms`, on a
        // database of its own: `own_database`).
        .env("LOGGERHUB_UPKEEP_INTERVAL_MS", "3600000")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("OBJECT_STORE_URL")
        .env_remove("OPENSEARCH_URL")
        .env_remove("OPENSEARCH_INDEX_PREFIX")
        .env_remove("LOGGERHUB_QUEUE_NAME");
    cmd
}

/// Starts `loggerhub serve` expecting it to refuse to start; returns what
/// it said on stderr.
pub fn fails_to_start(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = serve_command(data_dir, extra);
    cmd.envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn loggerhub");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(!status.success(), "loggerhub exited cleanly");
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                std::io::Read::read_to_string(&mut e, &mut err).expect("stderr");
            }
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("loggerhub started although it should have refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Server {
    /// Starts the binary with extra `serve` flags and waits for /health.
    pub async fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::spawn(data_dir, extra, &[], None).await
    }

    /// As `start`, from the working directory `cwd`, with `data_dir` (and
    /// any path in `extra`) as given, relative ones included: as a user
    /// starts it from a shell.
    pub async fn start_in(cwd: &Path, data_dir: &Path, extra: &[&str]) -> Server {
        let mut s = Self::spawn_in(Some(cwd), data_dir, extra, &[], None).await;
        s.data_dir = cwd.join(data_dir);
        s
    }

    /// As `start`, with extra environment variables.
    pub async fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Self::spawn(data_dir, extra, env, None).await
    }

    /// As `start`, with the server's log (info level) written to `log`.
    pub async fn start_logging(data_dir: &Path, extra: &[&str], log: &Path) -> Server {
        Self::spawn(data_dir, extra, &[], Some(log)).await
    }

    async fn spawn(data_dir: &Path, extra: &[&str], env: &[(&str, &str)], log: Option<&Path>) -> Server {
        Self::spawn_in(None, data_dir, extra, env, log).await
    }

    async fn spawn_in(
        cwd: Option<&Path>,
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        log: Option<&Path>,
    ) -> Server {
        let (level, stderr) = match log {
            Some(path) => (
                "info,tantivy=warn".to_string(),
                Stdio::from(std::fs::File::create(path).expect("log file")),
            ),
            None => (
                std::env::var("LOGGERHUB_TEST_LOG").unwrap_or_else(|_| "warn".into()),
                Stdio::inherit(),
            ),
        };
        // Port 0: the server picks a free port and prints its URL first
        // thing, so parallel tests never race for a port.
        let mut command = serve_command(data_dir, extra);
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        let mut child = command
            .env("RUST_LOG", level)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn loggerhub");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = std::io::BufReader::new(stdout);
        let mut first = String::new();
        std::io::BufRead::read_line(&mut reader, &mut first).expect("read url");
        // Keep reading so the server never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let url = first
            .trim()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        let server = Server {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = server.http.get(format!("{}/health", server.url)).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "loggerhub did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Creates a tenant on `unlimited` (its century of retention keeps
    /// the tests' records of 2025 in range; tests of plans and rates create
    /// theirs with `tenant_on`); returns its first key.
    pub async fn tenant(&self, slug: &str) -> String {
        self.tenant_on(slug, "unlimited").await
    }

    pub async fn tenant_on(&self, slug: &str, plan: &str) -> String {
        let r = self
            .http
            .post(self.url("/v1/admin/tenants"))
            .bearer_auth(ADMIN)
            .json(&json!({"slug": slug, "plan": plan}))
            .send()
            .await
            .expect("create tenant");
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.expect("json");
        v["api_key"]["key"].as_str().expect("key").to_string()
    }

    /// An admin API call; returns (status, JSON body or null).
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Runs the CLI against this server with the admin token; it must
    /// succeed, and what it prints is JSON.
    pub fn cli(&self, args: &[&str]) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_loggerhub"))
            .args(args)
            .args(["--url", &self.url])
            .env("LOGGERHUB_ADMIN_TOKEN", ADMIN)
            .output()
            .expect("cli");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("cli prints json")
    }

    /// POST /v1/logs; returns (status, body).
    pub async fn post_logs(&self, key: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let r = self
            .http
            .post(self.url("/v1/logs"))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("post logs");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// PUT /v1/plugins/{stage}/{name}; returns (status, body).
    pub async fn put_plugin(&self, key: &str, stage: &str, name: &str, wasm: Vec<u8>) -> (u16, Value) {
        self.try_put_plugin(key, stage, name, wasm).await.expect("put plugin")
    }

    /// The same, with the connection's failure as an error: a refusal the
    /// server answers before reading the body may reach the client as a
    /// reset while it still sends.
    pub async fn try_put_plugin(
        &self,
        key: &str,
        stage: &str,
        name: &str,
        wasm: Vec<u8>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let r = self
            .http
            .put(self.url(&format!("/v1/plugins/{stage}/{name}")))
            .bearer_auth(key)
            .body(wasm)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// PUT /v1/pipeline; returns (status, body).
    pub async fn put_pipeline(&self, key: &str, spec: &Value) -> (u16, Value) {
        let r = self
            .http
            .put(self.url("/v1/pipeline"))
            .bearer_auth(key)
            .json(spec)
            .send()
            .await
            .expect("put pipeline");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("get");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POST of a JSON body, as the tenant `key`.
    pub async fn post_json(&self, key: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("post");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The hits of the list or search at `path`, once it has at least `n`
    /// (the pipeline runs after the 202).
    pub async fn hits(&self, key: &str, path: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, page) = self.get(key, path).await;
            assert_eq!(status, 200, "{path}: {page}");
            let hits = page["hits"].as_array().cloned().unwrap_or_default();
            if hits.len() >= n {
                return hits;
            }
            assert!(Instant::now() < deadline, "{path}: {} of {n} records", hits.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The `message` of every hit of a list or search at `path`.
    pub async fn messages(&self, key: &str, path: &str) -> Vec<String> {
        let (status, page) = self.get(key, path).await;
        assert_eq!(status, 200, "{path}: {page}");
        page["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .filter_map(|h| h["message"].as_str().map(str::to_string))
            .collect()
    }

    /// The Prometheus text of /metrics.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// A series' value: `name` is the family, with its labels if it has
    /// any (`loggerhub_expired_total{store="raw"}`). A series not yet
    /// written is 0; a family the server does not declare (a renamed or
    /// mistyped metric) fails the test, so an assertion that a metric is 0
    /// cannot pass by naming nothing.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics().await;
        let series = name.split('{').next().unwrap_or(name);
        // A histogram's series are its family's name and a suffix.
        let declared = |family: &str| {
            series == family
                || ["_bucket", "_count", "_sum"]
                    .iter()
                    .any(|suffix| series.strip_suffix(suffix) == Some(family))
        };
        assert!(
            text.lines().any(|l| l
                .strip_prefix("# TYPE ")
                .and_then(|t| t.split_whitespace().next())
                .is_some_and(declared)),
            "the server has no metric {series}"
        );
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits until the queue holds nothing: every entry that got its 202
    /// is in every store (an entry is acked only after the stores took it).
    pub async fn idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let depth = self.metric("loggerhub_queue_depth").await;
            if depth == 0.0 {
                return;
            }
            assert!(Instant::now() < deadline, "the queue did not empty: depth {depth}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until every accepted log has been processed: the queue is
    /// empty and the processed counter caught up with `expected`.
    pub async fn drained(&self, expected: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let depth = self.metric("loggerhub_queue_depth").await;
            let processed = self.metric("loggerhub_logs_processed_total").await as u64;
            if depth == 0.0 && processed >= expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pipeline did not drain: depth {depth}, processed {processed}/{expected}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// NDJSON of `n` SDK-shaped records whose messages are `<prefix> <i>`,
/// stamped from 2025-10-10T12:00:00Z a second apart (within the hour).
pub fn ndjson(prefix: &str, n: usize, service: &str) -> String {
    ndjson_at(prefix, n, service, 1_760_097_600_000_000_000)
}

/// `ndjson`, stamped from `base` (unix ns) a second apart within an hour:
/// for tenants on plans whose retention 2025 is past.
pub fn ndjson_at(prefix: &str, n: usize, service: &str, base: i64) -> String {
    (0..n)
        .map(|i| {
            let second = i64::try_from(i % 3600).expect("fits") * 1_000_000_000;
            json!({
                "service": service,
                "level": if i % 3 == 0 { "ERROR" } else { "INFO" },
                "timestamp": loggerhub::model::format_ts(base + second),
                "message": format!("{prefix} {i}"),
                "full_log": format!("trace for {prefix} {i}"),
                "attributes": {"n": i.to_string()},
            })
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A server on the embedded backends, over a temp dir.
pub async fn embedded_with(extra: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(&dir.path().join("data"), extra).await;
    (dir, s)
}

/// A server on the distributed backends `make test` started, with a queue
/// and index prefix of its own; `run` makes the test's slugs unique (the
/// stores outlive one server).
pub async fn distributed_with(name: &str, extra: &[&str]) -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = format!("{}", std::process::id());
    let flags = distributed_flags(&format!("{name}{run}"));
    let mut flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    flags.extend(extra);
    let s = Server::start(&dir.path().join("data"), &flags).await;
    (dir, s, run)
}
