-- The customer view: one row per application, the aggregate's state to evolve with the
-- next event, and the JSON the applicant's query answers, ready to send.
CREATE TABLE rm_applications (
  application_id uuid PRIMARY KEY,
  status         text NOT NULL,
  version        integer NOT NULL,
  -- json, not jsonb: only this service reads them, whole; storing the text as it is
  -- costs PostgreSQL a check rather than a conversion, and keeps the view's bytes.
  state          json NOT NULL,
  view           json NOT NULL,
  position       bigint NOT NULL,
  updated_at     timestamptz NOT NULL
);

-- The operator search: what the back office looks applications up by.
CREATE TABLE rm_application_search (
  application_id uuid PRIMARY KEY,
  last_name      text NOT NULL,
  first_name     text NOT NULL,
  last_name_key  text NOT NULL,
  tax_code       text NOT NULL,
  status         text NOT NULL,
  region         text NOT NULL,
  amount_cents   bigint NOT NULL,
  submitted_at   timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL,
  -- The stream version the row holds: an event at or below it is already in.
  version        integer NOT NULL
);
CREATE INDEX rm_application_search_name ON rm_application_search (last_name_key text_pattern_ops, submitted_at DESC);
CREATE INDEX rm_application_search_tax_code ON rm_application_search (tax_code);
CREATE INDEX rm_application_search_filters ON rm_application_search (status, region, submitted_at DESC);
DO $$
BEGIN
  CREATE INDEX rm_application_search_fuzzy ON rm_application_search USING gin (last_name_key public.gin_trgm_ops);
EXCEPTION WHEN others THEN
  RAISE NOTICE 'no pg_trgm: no fuzzy index';
END $$;

-- The executive dashboard, kept aggregated by region and month of submission; each
-- application's row says where it is counted, so a status change moves its count.
CREATE TABLE rm_dashboard_applications (
  application_id  uuid PRIMARY KEY,
  region          text NOT NULL,
  month           date NOT NULL,
  status          text NOT NULL,
  requested_cents bigint NOT NULL,
  submitted_at    timestamptz NOT NULL,
  processing_ms   bigint,
  -- The stream version the row holds: an event at or below it is already counted.
  version         integer NOT NULL
);
CREATE INDEX rm_dashboard_applications_decided ON rm_dashboard_applications (month, region) WHERE processing_ms IS NOT NULL;
CREATE TABLE rm_dashboard (
  region          text NOT NULL,
  month           date NOT NULL,
  submitted       integer NOT NULL DEFAULT 0,
  processing      integer NOT NULL DEFAULT 0,
  approved        integer NOT NULL DEFAULT 0,
  rejected        integer NOT NULL DEFAULT 0,
  withdrawn       integer NOT NULL DEFAULT 0,
  requested_cents bigint NOT NULL DEFAULT 0,
  disbursed_cents bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (month, region)
);

-- The published rate table: one row, the latest (the default table applies until one is published).
CREATE TABLE rm_rate_table (
  id           integer PRIMARY KEY CHECK (id = 1),
  version      integer NOT NULL,
  rate_table   jsonb NOT NULL,
  published_at timestamptz NOT NULL
);
