//! What users see while a backend is down, on real servers the test runs
//! privately (so that stopping one disturbs no other test): writes wait in
//! the queue and are retried, the reads that do not need the missing
//! backend keep working, `/ready` names it, and once it is back everything
//! accepted arrives, nothing lost.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use serde_json::json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A tenant `acme` with one processed log ("before"): its key and the
/// log's id.
async fn tenant_with_a_log(s: &Server) -> (String, String) {
    let key = s.tenant("acme").await;
    let (status, body) = s
        .post_logs(&key, "application/json", json!({"message": "before"}).to_string())
        .await;
    assert_eq!(status, 202, "{body}");
    s.drained(1).await;
    let (_, page) = s.get(&key, "/v1/logs").await;
    let id = page["hits"][0]["id"].as_str().expect("id").to_string();
    (key, id)
}

/// Logs processed stay at `n` for a while: the writes are held back.
async fn stays_processed(s: &Server, n: f64) {
    for _ in 0..10 {
        assert_eq!(
            s.metric("loggerhub_logs_processed_total").await,
            n,
            "processed while down"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A private Redis on a free port, killed when dropped.
struct PrivateRedis {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PrivateRedis {
    fn start(port: u16, dir: tempfile::TempDir) -> PrivateRedis {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (installed by infra/local/services.sh)");
        wait_for_port(port, "redis");
        PrivateRedis { child, port, _dir: dir }
    }

    fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self._dir, tempfile::tempdir().expect("tempdir"))
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// While Redis is down, ingest answers 503 with Retry-After and `/ready`
/// says which backend is down, reads keep working; once Redis is back,
/// ingest resumes on the same process and nothing accepted is lost.
#[tokio::test]
async fn redis_down_then_back() {
    let port = free_port();
    let redis = PrivateRedis::start(port, tempfile::tempdir().expect("tempdir"));
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &["--redis-url", &url]).await;
    let key = s.tenant("acme").await;
    let one = |m: &str| json!({"message": m}).to_string();
    assert_eq!(s.post_logs(&key, "application/json", one("before")).await.0, 202);
    s.drained(1).await;

    let data = redis.stop();
    let r = s
        .http
        .post(s.url("/v1/logs"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(one("while down"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let (status, ready) = s.get(&key, "/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_ne!(ready["backends"]["queue"]["status"], "ok", "{ready}");
    assert_eq!(ready["backends"]["metadata"], "ok", "{ready}");
    let (status, page) = s.get(&key, "/v1/logs").await;
    assert_eq!(
        (status, &page["total"]),
        (200, &json!(1)),
        "reads stopped with the queue"
    );

    // Same port, same data: the process reconnects by itself.
    let _redis = PrivateRedis::start(port, data);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, _) = s.post_logs(&key, "application/json", one("after")).await;
        if status == 202 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ingest never came back ({status})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    s.drained(2).await;
    let (_, page) = s.get(&key, "/v1/logs").await;
    assert_eq!(page["total"], 2, "{page}");
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A private PostgreSQL 15 cluster on a free port, run as the `postgres`
/// user when the tests run as root (initdb refuses root).
struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
}

fn as_postgres(program: &str) -> Command {
    let path = format!("{PG_BIN}/{program}");
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PrivatePostgres {
    fn init() -> PrivatePostgres {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        for (path, mode) in [(dir.path(), "755"), (data.as_path(), "700")] {
            assert!(
                Command::new("chmod")
                    .arg(mode)
                    .arg(path)
                    .status()
                    .expect("chmod")
                    .success()
            );
        }
        if is_root() {
            assert!(
                Command::new("chown")
                    .arg("-R")
                    .arg("postgres")
                    .arg(dir.path())
                    .status()
                    .expect("chown")
                    .success()
            );
        }
        let ok = as_postgres("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .stdout(Stdio::null())
            .status()
            .expect("initdb (installed by infra/local/services.sh)");
        assert!(ok.success(), "initdb failed");
        let pg = PrivatePostgres { dir, port: free_port() };
        pg.start();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let ok = as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("pg.log"))
            .args(["-w", "-o", &opts, "start"])
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl");
        assert!(ok.success(), "postgres did not start");
    }

    /// Immediate: like a crash or a network cut, no goodbye to clients.
    fn stop(&self) {
        let _ = as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .status();
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// While PostgreSQL is down, ingest keeps answering 202 (keys are cached
/// a few seconds; the body goes to the queue), processing waits, the list
/// view answers 503 with a stable code, detail is served from the index,
/// and `/ready` names the metadata store. Once it is back the held
/// batches are written, nothing lost.
#[tokio::test]
async fn postgres_down_then_back() {
    let pg = PrivatePostgres::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &["--database-url", &pg.url()]).await;
    let (key, id) = tenant_with_a_log(&s).await;
    let one = |m: &str| json!({"message": m}).to_string();

    pg.stop();
    let (status, body) = s.post_logs(&key, "application/json", one("while down")).await;
    assert_eq!(status, 202, "ingest needs no metadata write: {body}");
    let (status, ready) = s.get(&key, "/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_ne!(ready["backends"]["metadata"], "ok", "{ready}");
    let (status, err) = s.get(&key, "/v1/logs").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (503, Some("backend_unavailable")),
        "{err}"
    );
    let (status, detail) = s.get(&key, &format!("/v1/logs/{id}")).await;
    assert_eq!((status, detail["source"].as_str()), (200, Some("index")), "{detail}");
    stays_processed(&s, 1.0).await;

    pg.start();
    s.drained(2).await;
    let (status, page) = s.get(&key, "/v1/logs").await;
    assert_eq!((status, &page["total"]), (200, &json!(2)), "{page}");
}

/// A private Garage (S3) node: the same single-node set-up as
/// infra/local/services.sh, with the key the tests' environment names.
struct PrivateGarage {
    dir: tempfile::TempDir,
    s3_port: u16,
    child: Option<Child>,
}

/// Where infra/local/tools.sh installs Garage and osmem-server.
fn tools_dir() -> PathBuf {
    std::env::var("LOGGERHUB_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/loggerhub-tools"))
}

fn garage_bin() -> PathBuf {
    tools_dir().join("garage/bin/garage")
}

impl PrivateGarage {
    fn init() -> PrivateGarage {
        let key_id = std::env::var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID: run with `make test`");
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY");
        let dir = tempfile::tempdir().expect("tempdir");
        let (s3_port, rpc, admin) = (free_port(), free_port(), free_port());
        let d = dir.path().display();
        let secret_hex: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
        std::fs::write(
            dir.path().join("garage.toml"),
            format!(
                "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\nreplication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret_hex}\"\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3_port}\"\nroot_domain = \".s3.garage.localhost\"\n\
                 [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n"
            ),
        )
        .expect("garage.toml");
        let mut g = PrivateGarage {
            dir,
            s3_port,
            child: None,
        };
        g.start();
        let node = {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let out = g.cli(&["node", "id", "-q"]);
                if let Some(id) = out.split('@').next().filter(|id| !id.trim().is_empty()) {
                    break id.trim().to_string();
                }
                assert!(Instant::now() < deadline, "garage did not start");
                std::thread::sleep(Duration::from_millis(200));
            }
        };
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g.cli(&["key", "import", "--yes", "-n", "test", &key_id, &secret]);
        g.cli(&["bucket", "create", "outage"]);
        g.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", "outage", "--key", "test",
        ]);
        g
    }

    /// Runs the garage CLI; returns stdout ("" on failure).
    fn cli(&self, args: &[&str]) -> String {
        Command::new(garage_bin())
            .arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .args(args)
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("garage.log")).expect("log");
        let child = Command::new(garage_bin())
            .arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .arg("server")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("garage (installed by infra/local/tools.sh)");
        self.child = Some(child);
        wait_for_port(self.s3_port, "garage");
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("s3://outage?endpoint=http://127.0.0.1:{}&region=garage", self.s3_port)
    }
}

impl Drop for PrivateGarage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// While S3 is down, ingest answers 202, processing waits (nothing is
/// acked before its raw object exists), the list view, search and detail
/// from the index keep working, and `/ready` names the raw store. Once it
/// is back the held batches are written, nothing lost.
#[tokio::test]
async fn s3_down_then_back() {
    let mut garage = PrivateGarage::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &["--object-store-url", &garage.url()]).await;
    let (key, id) = tenant_with_a_log(&s).await;
    let one = |m: &str| json!({"message": m}).to_string();

    garage.stop();
    assert_eq!(s.post_logs(&key, "application/json", one("while down")).await.0, 202);
    let (status, ready) = s.get(&key, "/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_ne!(ready["backends"]["raw"], "ok", "{ready}");
    assert_eq!(ready["backends"]["metadata"], "ok", "{ready}");
    let (status, page) = s.get(&key, "/v1/logs").await;
    assert_eq!((status, &page["total"]), (200, &json!(1)), "{page}");
    let (status, page) = s.get(&key, "/v1/search?q=before").await;
    assert_eq!((status, &page["total"]), (200, &json!(1)), "{page}");
    let (status, detail) = s.get(&key, &format!("/v1/logs/{id}")).await;
    assert_eq!((status, detail["source"].as_str()), (200, Some("index")), "{detail}");
    stays_processed(&s, 1.0).await;

    garage.start();
    s.drained(2).await;
    let (_, page) = s.get(&key, "/v1/search?q=down").await;
    assert_eq!(page["total"], 1, "{page}");
}

/// osmem-server (the OpenSearch API stand-in tools.sh installs) on `port`,
/// killed when dropped.
struct PrivateOpenSearch(Child);

impl PrivateOpenSearch {
    fn start(port: u16) -> PrivateOpenSearch {
        let out = Command::new(tools_dir().join("python/bin/python"))
            .args(["-c", "import osmem_server; print(osmem_server.resolve_binary())"])
            .output()
            .expect("osmem-server (installed by infra/local/tools.sh)");
        let bin = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let child = Command::new(bin)
            .args(["-no-stdin-watch", "-no-ja", "-addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("osmem-server");
        wait_for_port(port, "osmem-server");
        PrivateOpenSearch(child)
    }
}

impl Drop for PrivateOpenSearch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// With OpenSearch down, even at start: the server starts, tenants are
/// created, ingest answers 202, processing waits, the list view works,
/// search answers 503, detail comes from the raw store, `/ready` names the
/// index. Once OpenSearch answers, the index and template are created and
/// the held batches are written.
#[tokio::test]
async fn opensearch_down_then_back() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &["--opensearch-url", &url]).await;
    let key = s.tenant("acme").await;
    let body = [
        json!({"message": "written while down"}),
        json!({"message": "also down"}),
    ]
    .map(|v| v.to_string())
    .join("\n");
    assert_eq!(s.post_logs(&key, "application/x-ndjson", body).await.0, 202);
    let (status, ready) = s.get(&key, "/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_ne!(ready["backends"]["index"], "ok", "{ready}");
    let (status, err) = s.get(&key, "/v1/search?q=down").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (503, Some("backend_unavailable")),
        "{err}"
    );
    stays_processed(&s, 0.0).await;
    // The metadata and raw writes of the held batch went through; the list
    // view and detail (rebuilt from the raw store) serve them.
    let (status, page) = s.get(&key, "/v1/logs").await;
    assert_eq!((status, &page["total"]), (200, &json!(2)), "{page}");
    let id = page["hits"][0]["id"].as_str().expect("id").to_string();
    let (status, detail) = s.get(&key, &format!("/v1/logs/{id}")).await;
    assert_eq!((status, detail["source"].as_str()), (200, Some("raw")), "{detail}");

    let _os = PrivateOpenSearch::start(port);
    s.drained(2).await;
    let (status, page) = s.get(&key, "/v1/search?q=down").await;
    assert_eq!((status, &page["total"]), (200, &json!(2)), "{page}");
    let (_, detail) = s.get(&key, &format!("/v1/logs/{id}")).await;
    assert_eq!(detail["source"], "index", "{detail}");
}
