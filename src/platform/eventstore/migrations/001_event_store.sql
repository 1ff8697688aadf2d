-- The event store: one immutable table of events. A stream's version is the version
-- of its last event; the unique (stream_id, stream_version) index is what makes two
-- writers at the same version collide, so no other table is needed.

-- position = transaction id * 65536 + index of the event inside its transaction.
-- Ordering by position is therefore ordering by transaction id, which is what makes
-- readAll gap-safe: every transaction whose id is below the reader's snapshot xmin
-- has finished, so no event can later appear below a position already read.
CREATE TABLE mutuo_events (
  position        bigint PRIMARY KEY,
  stream_id       text NOT NULL,
  stream_version  integer NOT NULL CHECK (stream_version > 0),
  event_id        uuid NOT NULL UNIQUE,
  event_type      text NOT NULL,
  schema_version  integer NOT NULL DEFAULT 1 CHECK (schema_version > 0),
  data            jsonb NOT NULL,
  metadata        jsonb NOT NULL,
  -- Milliseconds, as clients see them: an asOf equal to a shown recordedAt includes that event.
  recorded_at     timestamptz NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()),
  UNIQUE (stream_id, stream_version)
);

CREATE FUNCTION mutuo_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'stored events are immutable: % refused on %', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'MU403';
END;
$$;

CREATE TRIGGER mutuo_events_immutable
  BEFORE UPDATE OR DELETE ON mutuo_events
  FOR EACH ROW EXECUTE FUNCTION mutuo_refuse_change();

CREATE TRIGGER mutuo_events_no_truncate
  BEFORE TRUNCATE ON mutuo_events
  FOR EACH STATEMENT EXECUTE FUNCTION mutuo_refuse_change();
