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

CREATE TABLE IF NOT EXISTS public.api_keys (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL REFERENCES public.tenants (slug) ON DELETE CASCADE,
    hash        TEXT NOT NULL UNIQUE,        -- hex SHA-256 of the secret
    scopes      TEXT[] NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE INDEX IF NOT EXISTS api_keys_by_tenant ON public.api_keys (tenant, created_at);
