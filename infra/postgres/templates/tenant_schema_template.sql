-- One tenant's schema. LoggerHub replaces {{schema}} with tenant_<slug>
-- (slugs match ^[a-z][a-z0-9_]{1,39}$, so the name needs no quoting) and
-- runs this when the tenant is created. Idempotent.
CREATE SCHEMA IF NOT EXISTS {{schema}};

-- One row per log record; message is the first 500 characters (the whole
-- record is in the raw store). Ids are ULIDs or UUIDs; id_key is the id's
-- 128-bit value, big-endian, so (timestamp, id_key) orders like every other
-- store does.
CREATE TABLE IF NOT EXISTS {{schema}}.logs (
    id          TEXT PRIMARY KEY,
    id_key      BYTEA NOT NULL,
    service     TEXT NOT NULL,
    level       SMALLINT NOT NULL,           -- 0 trace … 5 fatal
    timestamp   BIGINT NOT NULL,             -- unix ns
    received_at BIGINT NOT NULL,
    message     TEXT NOT NULL,
    language    TEXT,
    attributes  JSONB NOT NULL DEFAULT '{}',
    raw_path    TEXT,                        -- raw object key '#' line
    indexed     BOOLEAN NOT NULL
);

-- The list view: newest first, optionally by service or level; the cursor
-- continues strictly after (timestamp, id_key).
CREATE INDEX IF NOT EXISTS logs_by_time ON {{schema}}.logs (timestamp DESC, id_key DESC);
CREATE INDEX IF NOT EXISTS logs_by_service ON {{schema}}.logs (service, timestamp DESC, id_key DESC);
CREATE INDEX IF NOT EXISTS logs_by_level ON {{schema}}.logs (level, timestamp DESC, id_key DESC);

-- Counts per minute and per hour (grain, ns) by service and level, kept
-- with every insert and delete of logs: stats and exact totals read these
-- instead of the rows.
CREATE TABLE IF NOT EXISTS {{schema}}.log_counts (
    grain   BIGINT NOT NULL,
    bucket  BIGINT NOT NULL,                 -- unix ns, a multiple of grain
    service TEXT NOT NULL,
    level   SMALLINT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (grain, bucket, service, level)
);
