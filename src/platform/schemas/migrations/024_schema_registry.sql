-- The Confluent-compatible schema registry served under /registry: each Avro schema once,
-- under a global id that never changes or returns, and the subjects that list schemas as
-- their versions. Rows are never changed nor removed; a subject's compatibility level
-- (or, under the subject '', the global one) is the only thing that is updated.
CREATE TABLE mutuo_registry_schemas (
  id             integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- sha-256 of the schema's canonical JSON (keys sorted, no spaces): one id for one schema,
  -- however it was spelled. A schema may be longer than a b-tree key may be.
  fingerprint    text NOT NULL UNIQUE,
  schema         text NOT NULL,
  registered_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mutuo_registry_versions (
  subject        text NOT NULL,
  version        integer NOT NULL CHECK (version > 0),
  schema_id      integer NOT NULL REFERENCES mutuo_registry_schemas (id),
  registered_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (subject, version),
  UNIQUE (subject, schema_id)
);

CREATE TABLE mutuo_registry_compatibility (
  subject        text PRIMARY KEY,
  level          text NOT NULL CHECK (level IN ('NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE'))
);
