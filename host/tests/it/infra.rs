//! What in infra/ can be checked without Docker is checked here: the
//! PostgreSQL init scripts and templates run against the real server that
//! `make test` starts (DATABASE_URL), and the real nginx (Debian's, which
//! infra/local/services.sh installs) routes requests with
//! infra/nginx/nginx.conf to LoggerHub processes running one role each.

use std::path::{Path, PathBuf};
use std::process::Command;

use loggerhub::stores::AccountStore;
use loggerhub::stores::postgres::{PgStore, tenant_schema_sql};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

fn infra() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra")
}

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!("DATABASE_URL is not set: run the tests with `make test`, which starts the services")
    })
}

#[tokio::test]
async fn postgres_init_scripts_and_tenant_template_run_on_a_real_server() {
    let url = database_url();
    let opts: PgConnectOptions = url.parse().expect("DATABASE_URL");
    let db = format!("lh_init_{}", std::process::id());
    // The scripts as the postgres image runs them: psql, the user from
    // POSTGRES_USER, here over TCP to the test server.
    for script in ["00-create-dbs.sh", "01-create-public-tenants.sh"] {
        let out = Command::new("bash")
            .arg(infra().join("postgres/init").join(script))
            .env("PGHOST", opts.get_host())
            .env("PGPORT", opts.get_port().to_string())
            .env("POSTGRES_USER", opts.get_username())
            .env("LOGGERHUB_DB", &db)
            .env("LOGGERHUB_TEMPLATES", infra().join("postgres/templates"))
            .output()
            .expect("run bash");
        assert!(
            out.status.success(),
            "{script}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Running 00 twice is harmless (the container may restart).
    let again = Command::new("bash")
        .arg(infra().join("postgres/init/00-create-dbs.sh"))
        .env("PGHOST", opts.get_host())
        .env("PGPORT", opts.get_port().to_string())
        .env("POSTGRES_USER", opts.get_username())
        .env("LOGGERHUB_DB", &db)
        .status()
        .expect("run bash");
    assert!(again.success());

    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(opts.clone().database(&db))
        .await
        .expect("connect to the new database");
    let tables: Vec<String> = sqlx::query(
        "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY t",
    )
    .fetch_all(&pool)
    .await
    .expect("tables")
    .iter()
    .map(|r| r.get("t"))
    .collect();
    assert_eq!(
        tables,
        vec![
            "public.api_keys",
            "public.saved_searches",
            "public.tenants",
            "public.usage"
        ]
    );

    // The tenant template makes the schema, its tables (the logs and their
    // count rollups) and the list-view indexes, and is idempotent.
    let ddl = tenant_schema_sql("acme").expect("template");
    for _ in 0..2 {
        sqlx::raw_sql(sqlx::AssertSqlSafe(ddl.clone()))
            .execute(&pool)
            .await
            .expect("template");
    }
    let indexes: Vec<String> =
        sqlx::query("SELECT indexname FROM pg_indexes WHERE schemaname = 'tenant_acme' ORDER BY 1")
            .fetch_all(&pool)
            .await
            .expect("indexes")
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(
        indexes,
        vec![
            "log_counts_pkey",
            "logs_by_level",
            "logs_by_service",
            "logs_by_time",
            "logs_pkey"
        ]
    );
    assert!(tenant_schema_sql("Robert'); DROP TABLE x;--").is_err());

    // LoggerHub opens a database made by the scripts as it opens its own.
    let mut url_db = url
        .rsplit_once('/')
        .map(|(base, _)| base.to_string())
        .expect("url has a database");
    url_db.push('/');
    url_db.push_str(&db);
    let store = PgStore::open(&url_db).await.expect("open the scripted database");
    assert!(store.create_tenant("acme", "free").await.expect("create tenant"));
    pool.close().await;
    drop(store);

    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {db} WITH (FORCE)")))
        .execute(&admin)
        .await
        .expect("drop test database");
}

/// The compose file as a user's `docker compose` reads it: it parses, pins
/// every image, puts every service on `loggerhub_net`, declares the named
/// volumes it uses, points env_file at files that exist, and publishes nginx
/// on 8100.
#[test]
fn compose_file_parses_pins_every_image_and_wires_the_services() {
    let text = std::fs::read_to_string(infra().join("docker-compose.yml")).expect("compose file");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("compose file is YAML");
    let services = doc["services"].as_mapping().expect("services");
    let want = [
        "postgres",
        "redis",
        "minio",
        "opensearch",
        "loggerhub-ingest",
        "loggerhub-processor",
        "loggerhub-search",
        "nginx",
    ];
    for name in want {
        assert!(services.contains_key(name), "no {name} service");
    }
    let volumes = doc["volumes"].as_mapping().expect("volumes");
    for (name, svc) in services {
        let name = name.as_str().expect("service name");
        let image = svc["image"].as_str().unwrap_or_else(|| panic!("{name}: no image"));
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
        assert!(
            !tag.is_empty() && tag != "latest",
            "{name}: image {image:?} is not pinned"
        );
        let nets = svc["networks"].as_sequence().expect("networks");
        assert!(
            nets.iter().any(|n| n == "loggerhub_net"),
            "{name} is not on loggerhub_net"
        );
        for v in svc["volumes"].as_sequence().into_iter().flatten() {
            let source = v.as_str().and_then(|v| v.split(':').next()).unwrap_or_default();
            if !source.starts_with('.') {
                assert!(volumes.contains_key(source), "{name}: volume {source} not declared");
            }
        }
        if let Some(env) = svc["env_file"].as_str() {
            assert!(infra().join(env).is_file(), "{name}: {env} missing");
        }
    }
    assert_eq!(doc["networks"]["loggerhub_net"]["name"], "loggerhub_net");
    assert_eq!(services["minio"]["image"], "minio/minio:RELEASE.2025-09-07T16-13-09Z");
    assert_eq!(services["opensearch"]["image"], "opensearchproject/opensearch:2.9.0");
    assert!(
        services["redis"]["command"]
            .as_sequence()
            .is_some_and(|c| c.windows(2).any(|w| w[0] == "--appendonly" && w[1] == "yes")),
        "redis runs without appendonly"
    );
    assert!(
        services["nginx"]["ports"]
            .as_sequence()
            .is_some_and(|p| p.iter().any(|p| p.as_str().is_some_and(|p| p.ends_with(":8100")))),
        "nginx does not publish 8100"
    );
    // Each LoggerHub service runs one role, and nginx sends it that role's
    // requests.
    let nginx = std::fs::read_to_string(infra().join("nginx/nginx.conf")).expect("nginx.conf");
    assert!(nginx.contains("listen 8100;"));
    for role in ["ingest", "processor", "search"] {
        let command: Vec<&str> = services[format!("loggerhub-{role}").as_str()]["command"]
            .as_sequence()
            .expect("command")
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        assert!(command.windows(2).any(|w| w == ["--role", role]), "{role}: {command:?}");
        loggerhub::config::Roles::parse(role).expect("a role LoggerHub knows");
        assert!(
            nginx.contains(&format!("server loggerhub-{role}:8080;")),
            "nginx lacks {role}"
        );
    }
    assert!(nginx.contains("POST    loggerhub_ingest;"));
    // Syslog: the ingest role listens, and its port is published, TCP and
    // UDP (the HTTP routes are checked through a real nginx below).
    let ingest = &services["loggerhub-ingest"];
    let listen = ingest["environment"]["LOGGERHUB_SYSLOG_LISTEN"]
        .as_str()
        .expect("the ingest role takes syslog");
    let port = listen.rsplit(':').next().expect("a port");
    let published: Vec<&str> = ingest["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    for proto in ["tcp", "udp"] {
        assert!(
            published.iter().any(|p| p.ends_with(&format!(":{port}/{proto}"))),
            "syslog {proto} is not published: {published:?}"
        );
    }
    assert!(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../Dockerfile")
            .is_file()
    );
}

/// The settings compose hands LoggerHub are ones LoggerHub accepts.
#[test]
fn loggerhub_env_holds_urls_loggerhub_accepts() {
    let text = std::fs::read_to_string(infra().join("envs/loggerhub.env")).expect("env file");
    let vars: std::collections::HashMap<&str, &str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .filter_map(|l| l.split_once('='))
        .collect();
    let db: PgConnectOptions = vars["DATABASE_URL"].parse().expect("DATABASE_URL");
    assert_eq!((db.get_host(), db.get_port()), ("postgres", 5432));
    assert!(vars["REDIS_URL"].starts_with("redis://redis:"));
    let raw = loggerhub::config::RawBackend::from_url(vars["OBJECT_STORE_URL"]).expect("OBJECT_STORE_URL");
    loggerhub::stores::raw::RawStore::open(&raw).expect("OBJECT_STORE_URL");
    assert_eq!(vars["OPENSEARCH_URL"], "http://opensearch:9200");
    let template: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(infra().join("opensearch/logs-template.json")).expect("template"),
    )
    .expect("the OpenSearch template is JSON");
    assert_eq!(template["index_patterns"][0], "loggerhub-logs-*");
    assert_eq!(
        template["template"]["mappings"]["properties"]["timestamp"]["type"],
        "date_nanos"
    );
}

/// The stack ships no secret: compose refuses to start without an admin
/// token, and `secrets.sh` (run by start.sh) generates the tokens into an
/// infra/.env only the operator can read, keeping them on a second run.
#[test]
fn the_stack_has_no_default_secrets() {
    let text = std::fs::read_to_string(infra().join("docker-compose.yml")).expect("compose file");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("compose file is YAML");
    for role in ["ingest", "processor", "search"] {
        let env = &doc["services"][format!("loggerhub-{role}").as_str()]["environment"];
        let admin = env["LOGGERHUB_ADMIN_TOKEN"].as_str().unwrap_or_default();
        assert!(admin.starts_with("${LOGGERHUB_ADMIN_TOKEN:?"), "{role}: {admin:?}");
    }
    for entry in std::fs::read_dir(infra().join("envs")).expect("envs").flatten() {
        let text = std::fs::read_to_string(entry.path()).expect("env file");
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("LOGGERHUB_ADMIN_TOKEN") || l.starts_with("LOGGERHUB_OPERATOR_TOKEN")),
            "{} holds a token",
            entry.path().display()
        );
    }
    assert!(!text.contains("change_me"));

    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("infra");
    std::fs::create_dir_all(copy.join("scripts")).expect("mkdir");
    std::fs::copy(infra().join("scripts/secrets.sh"), copy.join("scripts/secrets.sh")).expect("copy");
    std::fs::copy(infra().join(".env.example"), copy.join(".env.example")).expect("copy");
    let run = || {
        let out = Command::new("bash")
            .arg(copy.join("scripts/secrets.sh"))
            .output()
            .expect("secrets.sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let env = std::fs::read_to_string(copy.join(".env")).expect(".env");
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(copy.join(".env")).expect("meta").permissions());
        assert_eq!(mode & 0o777, 0o600);
        let token = |var: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{var}=")))
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no {var}"))
        };
        (
            token("LOGGERHUB_ADMIN_TOKEN"),
            token("LOGGERHUB_OPERATOR_TOKEN"),
            env.contains("LOGGERHUB_HTTP_PORT=8100"),
        )
    };
    let first = run();
    assert!(
        first.0.len() >= 40 && first.1.len() >= 40 && first.0 != first.1,
        "{first:?}"
    );
    assert!(first.2, "the example's settings are kept");
    assert_eq!(run(), first, "a second run keeps the tokens");
}

#[test]
fn helper_scripts_are_valid_bash() {
    for dir in ["scripts", "local", "postgres/init"] {
        for entry in std::fs::read_dir(infra().join(dir)).expect("dir").flatten() {
            let status = Command::new("bash")
                .arg("-n")
                .arg(entry.path())
                .status()
                .expect("bash -n");
            assert!(status.success(), "{} does not parse", entry.path().display());
        }
    }
}

/// A fresh machine: no package lists, no python3-venv, not root. The
/// set-up fetches the lists first, installs what is missing through sudo,
/// and nothing when everything is there. (`apt-get`, `sudo`, `id` and
/// `python3` are stand-ins that record what they were asked.)
#[test]
fn the_set_up_installs_what_a_fresh_machine_lacks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    let lists = dir.path().join("lists");
    let calls = dir.path().join("calls");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::create_dir_all(&lists).expect("lists");
    let fake = |name: &str, body: &str| {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).expect("write");
        let mut perms = std::fs::metadata(&path).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).expect("chmod");
    };
    let log = calls.display().to_string();
    fake("id", "echo 1000");
    fake("sudo", &format!("echo \"sudo $*\" >> {log}; \"$@\""));
    fake(
        "apt-get",
        &format!(
            "echo \"apt-get $*\" >> {log}; if [ \"$1\" = update ]; then touch {}/deb_Packages; fi",
            lists.display()
        ),
    );
    // A python3 without ensurepip, as Debian's is before python3-venv.
    fake("python3", "case \"$*\" in *ensurepip*) exit 1;; esac; exit 0");
    let run = |script: &str| {
        let status = Command::new("bash")
            .arg("-c")
            .arg(format!(". {}; {script}", infra().join("local/packages.sh").display()))
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("APT_LISTS", &lists)
            .status()
            .expect("bash");
        assert!(status.success(), "{script}");
        let said = std::fs::read_to_string(&calls).unwrap_or_default();
        let _ = std::fs::remove_file(&calls);
        said
    };
    let said = run("need_packages lh-no-such-command=redis-server bash=bash; need_python_venv");
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(
        lines,
        [
            "sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q",
            "apt-get update -q",
            "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server",
            "apt-get install -y -q redis-server",
            "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv",
            "apt-get install -y -q python3-venv",
        ],
        "{said}"
    );
    // The lists are fresh now, and bash is there: nothing to do.
    assert_eq!(run("need_packages bash=bash"), "");
    assert_eq!(
        run("need_packages lh-no-such-command=nginx"),
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx\napt-get install -y -q nginx\n"
    );
}

/// nginx with the compose stack's config, its upstreams pointed at three
/// LoggerHub processes on the distributed backends (one role each): every
/// operation of the OpenAPI document — read from the document, so a new
/// route cannot be forgotten — reaches a role that serves it (a misrouted
/// request gets `wrong_role`); logs sent through nginx come back through
/// its live tail as they land (not held in its buffer); the operator
/// endpoints are not published.
#[tokio::test(flavor = "multi_thread")]
async fn nginx_routes_each_path_to_its_role() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let mut conf = std::fs::read_to_string(infra().join("nginx/nginx.conf")).expect("nginx.conf");
    let backends = crate::common::distributed_flags(&format!("nginx{}", std::process::id()));
    let mut servers = Vec::new();
    for (i, role) in ["ingest", "processor", "search"].into_iter().enumerate() {
        let mut flags: Vec<&str> = backends.iter().map(String::as_str).collect();
        flags.extend(["--role", role]);
        let s = crate::common::Server::start(dirs[i].path(), &flags).await;
        let addr = s.url.trim_start_matches("http://").to_string();
        conf = conf.replace(&format!("server loggerhub-{role}:8080;"), &format!("server {addr};"));
        servers.push(s);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    conf = conf.replace("listen 8100;", &format!("listen 127.0.0.1:{port};"));
    let nginx_dir = dirs[3].path();
    std::fs::create_dir_all(nginx_dir.join("logs")).expect("logs dir");
    let conf_path = nginx_dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("write conf");
    let nginx = Nginx(
        Command::new("nginx")
            .arg("-p")
            .arg(nginx_dir)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(nginx_dir.join("logs/error.log"))
            .args(["-g", "daemon off; pid nginx.pid;"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx (Debian's; infra/local/services.sh installs it)"),
    );
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while http.get(format!("{base}/health")).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "nginx did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Every operation of the document, unauthenticated: a role that serves
    // it answers (401 for a key's routes), never `wrong_role`.
    let doc: serde_json::Value = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    let ulid = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if path == "/metrics" || path == "/ready" {
            continue;
        }
        let concrete = path
            .replace("{index}", "web")
            .replace("{stage}", "enricher")
            .replace("{name}", "p")
            .replace("{slug}", "acme")
            .replace("{batch_id}", ulid)
            .replace("{asset}", "app.js")
            .replace("{id}", ulid);
        assert!(!concrete.contains('{'), "{path}: a parameter this test does not fill");
        for method in item.as_object().expect("path item").keys() {
            let Ok(m) = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            operations += 1;
            let r = http
                .request(m.clone(), format!("{base}{concrete}"))
                .send()
                .await
                .expect("through nginx");
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            let code = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .map(|v| v["error"]["code"].clone());
            assert!(
                code != Some(serde_json::json!("wrong_role")) && status != 502,
                "{m} {path} reached the wrong role ({status}): {}",
                body.chars().take(300).collect::<String>()
            );
        }
    }
    assert!(operations > 30, "{operations} operations in the document");
    let admin = http
        .get(format!("{base}/v1/admin/tenants"))
        .bearer_auth(crate::common::ADMIN)
        .send()
        .await
        .expect("admin");
    assert_eq!(admin.status(), 200, "the admin API is on the search role");
    // Operator endpoints are not published.
    for path in ["/metrics", "/ready"] {
        let r = http.get(format!("{base}{path}")).send().await.expect("through nginx");
        assert_eq!(r.status(), 404, "{path} is published");
        let body: serde_json::Value = r.json().await.expect("JSON error");
        assert_eq!(body["error"]["code"], "not_found");
    }

    // The live tail through nginx: a log sent through nginx arrives as one
    // small event, which a buffering proxy would hold.
    let slug = format!("nginxtail{}", std::process::id());
    let created: serde_json::Value = http
        .post(format!("{base}/v1/admin/tenants"))
        .bearer_auth(crate::common::ADMIN)
        .json(&serde_json::json!({"slug": slug}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let key = created["api_key"]["key"].as_str().expect("key").to_string();
    let mut tail = http
        .get(format!("{base}/v1/tail"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("tail");
    assert_eq!(tail.status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = String::new();
    let mut n = 0;
    while !seen.contains("through nginx's tail") {
        n += 1;
        let r = http
            .post(format!("{base}/v1/logs"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"message": format!("through nginx's tail {n}")}))
            .send()
            .await
            .expect("ingest through nginx");
        assert_eq!(r.status(), 202);
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(std::time::Duration::from_secs(2), tail.chunk()).await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the tail's events were held: {seen:?}"
        );
    }

    // A plugin upload of 20 MiB reaches the processor, which judges it
    // (not a component: 400); one past 65 MiB, and a 20 MiB log body, get
    // nginx's 413 in LoggerHub's JSON shape.
    for (path, size, status, code) in [
        ("/v1/plugins/enricher/big", 20 << 20, 400, "invalid_plugin"),
        ("/v1/plugins/enricher/huge", 66 << 20, 413, "payload_too_large"),
        ("/v1/logs", 20 << 20, 413, "payload_too_large"),
    ] {
        let method = if path == "/v1/logs" {
            reqwest::Method::POST
        } else {
            reqwest::Method::PUT
        };
        let r = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&key)
            .header("content-type", "application/octet-stream")
            .body(vec![b'x'; size])
            .send()
            .await
            .expect("through nginx");
        assert_eq!(r.status().as_u16(), status, "{path} of {size} bytes");
        let body: serde_json::Value = r.json().await.expect("a JSON error");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
    }
    drop(nginx);
}

/// Stops nginx, workers too, when the test ends or fails (SIGKILL would
/// orphan the workers).
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}
