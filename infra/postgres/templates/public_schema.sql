-- LoggerHub's shared tables, in schema public: tenants and API keys (keys
-- are stored only as SHA-256 hashes). Each tenant's logs live in a schema
-- of their own, made from tenant_schema_template.sql.
--
-- Idempotent: run by init/01-create-public-tenants.sh when the container is
-- first started, and as migration 1 by every LoggerHub process at start.
CREATE TABLE IF NOT EXISTS public.tenants (
    slug        TEXT PRIMARY KEY CHECK (slug ~ '^[a-z][a-z0-9_]{1,39}$'),
    created_at  BIGINT NOT NULL              -- unix ns
);
-- The plan the tenant is on (LoggerHub's migration 2 for older databases).
ALTER TABLE public.tenants ADD COLUMN IF NOT EXISTS plan TEXT NOT NULL DEFAULT 'free';
-- Where the tenant is in its life: active, suspended or deleting, and since
-- when (LoggerHub's migration 3 for older databases).
ALTER TABLE public.tenants ADD COLUMN IF NOT EXISTS state TEXT NOT NULL DEFAULT 'active';
ALTER TABLE public.tenants ADD COLUMN IF NOT EXISTS state_since BIGINT NOT NULL DEFAULT 0;

-- What each tenant used, per day (days since 1970-01-01 UTC): added to by
-- ingest and the processors, read by GET /v1/usage and the daily limits.
-- The stored bytes are the last measure of the day. Kept after a tenant is
-- deleted only until its deletion finishes.
CREATE TABLE IF NOT EXISTS public.usage (
    tenant          TEXT NOT NULL,
    day             BIGINT NOT NULL,
    logs            BIGINT NOT NULL DEFAULT 0,
    bytes           BIGINT NOT NULL DEFAULT 0,
    plugin_cpu_us   BIGINT NOT NULL DEFAULT 0,
    dead_letters    BIGINT NOT NULL DEFAULT 0,
    metadata_bytes  BIGINT,
    raw_bytes       BIGINT,
    index_bytes     BIGINT,
    PRIMARY KEY (tenant, day)
);
-- What the pipeline stored, apart from what ingest accepted (issue 22).
ALTER TABLE public.usage ADD COLUMN IF NOT EXISTS stored_logs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE public.usage ADD COLUMN IF NOT EXISTS stored_bytes BIGINT NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS public.api_keys (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL REFERENCES public.tenants (slug) ON DELETE CASCADE,
    hash        TEXT NOT NULL UNIQUE,        -- hex SHA-256 of the secret
    scopes      TEXT[] NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE INDEX IF NOT EXISTS api_keys_by_tenant ON public.api_keys (tenant, created_at);

-- Searches a tenant keeps under a name (issue 24; LoggerHub's migration 6
-- for older databases): the query and its filters as JSON.
CREATE TABLE IF NOT EXISTS public.saved_searches (
    tenant      TEXT NOT NULL REFERENCES public.tenants (slug) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    query       TEXT NOT NULL,
    filters     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);
