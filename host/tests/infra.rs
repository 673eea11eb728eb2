//! What in infra/ can be checked without Docker is checked here: the
//! PostgreSQL init scripts and templates run against the real server that
//! `make test` starts (DATABASE_URL).

use std::path::{Path, PathBuf};
use std::process::Command;

use loggerhub::stores::MetadataStore;
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
    assert_eq!(tables, vec!["public.api_keys", "public.tenants"]);

    // The tenant template makes the schema, its table and the list-view
    // indexes, and is idempotent.
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
        vec!["logs_by_level", "logs_by_service", "logs_by_time", "logs_pkey"]
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
    assert!(store.create_tenant("acme").await.expect("create tenant"));
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
