-- The schema registry: the JSON Schema of every event type and version ever
-- registered. A row is never changed: a new shape is a new version.
CREATE TABLE mutuo_event_schemas (
  event_type      text NOT NULL,
  schema_version  integer NOT NULL CHECK (schema_version > 0),
  schema          jsonb NOT NULL,
  registered_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_type, schema_version)
);
