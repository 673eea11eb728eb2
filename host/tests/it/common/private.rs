//! Servers a test runs for itself, on free loopback ports, so that
//! stopping one disturbs no other test: Redis, PostgreSQL, Garage (S3) and
//! osmem-server (the OpenSearch API), each stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed (and reaped) when dropped.
pub struct Process(Child);

impl Process {
    pub fn spawn(cmd: &mut Command, what: &str) -> Process {
        Process(cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}")))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private Redis with its data in `dir`.
pub struct PrivateRedis {
    process: Process,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    pub fn start(port: u16, dir: tempfile::TempDir) -> PrivateRedis {
        let mut cmd = Command::new("redis-server");
        cmd.args([
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
        .stdout(Stdio::null());
        let process = Process::spawn(&mut cmd, "redis-server (installed by infra/local/services.sh)");
        wait_for_port(port, "redis");
        PrivateRedis { process, port, dir }
    }

    /// Kills it; returns its data, to start it again on.
    pub fn stop(self) -> tempfile::TempDir {
        drop(self.process);
        self.dir
    }
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A private PostgreSQL 15 cluster on a free port, run as the `postgres`
/// user when the tests run as root (initdb refuses root).
pub struct PrivatePostgres {
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
    pub fn init() -> PrivatePostgres {
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

    pub fn start(&self) {
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
    pub fn stop(&self) {
        let _ = as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .status();
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private Garage (S3) node: the same single-node set-up as
/// infra/local/services.sh, with the key the tests' environment names.
pub struct PrivateGarage {
    dir: tempfile::TempDir,
    s3_port: u16,
    process: Option<Process>,
}

/// Where infra/local/tools.sh installs Garage and osmem-server.
pub fn tools_dir() -> PathBuf {
    std::env::var("LOGGERHUB_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/loggerhub-tools"))
}

fn garage_bin() -> PathBuf {
    tools_dir().join("garage/bin/garage")
}

impl PrivateGarage {
    pub fn init() -> PrivateGarage {
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
            process: None,
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

    pub fn start(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("garage.log")).expect("log");
        let mut cmd = Command::new(garage_bin());
        cmd.arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .arg("server")
            .stdout(Stdio::null())
            .stderr(log);
        self.process = Some(Process::spawn(&mut cmd, "garage (installed by infra/local/tools.sh)"));
        wait_for_port(self.s3_port, "garage");
    }

    pub fn stop(&mut self) {
        self.process = None;
    }

    pub fn url(&self) -> String {
        format!("s3://outage?endpoint=http://127.0.0.1:{}&region=garage", self.s3_port)
    }
}

/// osmem-server (the OpenSearch API stand-in tools.sh installs) on `port`,
/// killed when dropped.
/// Stopped when dropped.
pub struct PrivateOpenSearch {
    _process: Process,
}

impl PrivateOpenSearch {
    pub fn start(port: u16) -> PrivateOpenSearch {
        let out = Command::new(tools_dir().join("python/bin/python"))
            .args(["-c", "import osmem_server; print(osmem_server.resolve_binary())"])
            .output()
            .expect("osmem-server (installed by infra/local/tools.sh)");
        let bin = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut cmd = Command::new(bin);
        cmd.args(["-no-stdin-watch", "-no-ja", "-addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let process = Process::spawn(&mut cmd, "osmem-server");
        wait_for_port(port, "osmem-server");
        PrivateOpenSearch { _process: process }
    }
}

/// Debian's rsyslogd as a plain process on `rules` (its config after the
/// work directory and the `imtcp` module), once `port` (its imtcp input)
/// accepts connections.
pub fn rsyslogd(dir: &Path, rules: &str, port: u16) -> Process {
    let conf = dir.join("rsyslog.conf");
    let text = format!(
        "global(workDirectory=\"{}\")\nmodule(load=\"imtcp\")\n{rules}",
        dir.display()
    );
    std::fs::write(&conf, text).expect("rsyslog.conf");
    let p = Process::spawn(
        Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(Stdio::null()),
        "rsyslogd",
    );
    wait_for_port(port, "rsyslog imtcp");
    p
}

/// Runs `script` with the tools' Python, where infra/local/tools.sh
/// installed the shipper clients; fails the test when the script fails.
pub fn python(script: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(tools_dir().join("python/bin/python"))
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python from infra/local/tools.sh");
    assert!(
        out.status.success(),
        "client failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}
