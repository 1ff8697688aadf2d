-- Each projection's checkpoint: the position of the last event its read model holds,
-- written in the transaction that wrote the read model. The lease makes one projector
-- process write a projection at a time; the others stand by.
CREATE TABLE mutuo_projections (
  name        text PRIMARY KEY,
  position    bigint NOT NULL DEFAULT 0,
  holder      text,
  lease_until timestamptz,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- pg_trgm gives the operator search its fuzzy match; where it cannot be installed the
-- search falls back to prefixes. It lives in public so that every schema reaches it.
DO $$
BEGIN
  CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
EXCEPTION WHEN others THEN
  RAISE NOTICE 'pg_trgm is not available: the search matches prefixes only';
END $$;
