-- The event store: one immutable table of events and one row per stream holding
-- its current version (the row that optimistic concurrency locks).

CREATE TABLE mutuo_streams (
  stream_id text PRIMARY KEY,
  version   integer NOT NULL CHECK (version > 0)
);

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

-- Appends a batch of events to one stream in a single statement (one round trip).
-- p_expected: NULL = any version, 0 = the stream must not exist, N = it must be at N.
-- p_events: a JSON array of {eventId, type, schemaVersion, data, metadata}.
-- Errors: MU409 (version conflict, DETAIL = current version), MU410 (an event id
-- already stored elsewhere). Re-appending exactly the batch already stored for this
-- stream (same ids, same order) is an idempotent retry and returns the original result.
CREATE FUNCTION mutuo_append(p_stream text, p_expected integer, p_events jsonb)
RETURNS TABLE (next_version integer, first_position bigint, last_position bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_count    integer := jsonb_array_length(p_events);
  v_current  integer;
  v_index    integer;
  v_base     bigint;
  v_existing record;
BEGIN
  IF v_count = 0 THEN
    RAISE EXCEPTION 'an append needs at least one event' USING ERRCODE = '22023';
  END IF;

  SELECT min(e.stream_id) AS stream_id, min(e.stream_version) AS first_version,
         max(e.stream_version) AS last_version, count(*) AS n,
         min(e.position) AS first_position, max(e.position) AS last_position
    INTO v_existing
    FROM mutuo_events e
   WHERE e.event_id IN (SELECT (x->>'eventId')::uuid FROM jsonb_array_elements(p_events) x);
  IF v_existing.n > 0 THEN
    IF v_existing.n = v_count AND v_existing.stream_id = p_stream
       AND v_existing.last_version - v_existing.first_version + 1 = v_count THEN
      RETURN QUERY SELECT v_existing.last_version, v_existing.first_position, v_existing.last_position;
      RETURN;
    END IF;
    RAISE EXCEPTION 'event id already stored' USING ERRCODE = 'MU410';
  END IF;

  -- The stream row is locked until commit, so appends to one stream are serialised
  -- and its versions stay contiguous; appends to other streams run concurrently.
  IF p_expected IS NULL THEN
    INSERT INTO mutuo_streams AS s (stream_id, version) VALUES (p_stream, v_count)
      ON CONFLICT (stream_id) DO UPDATE SET version = s.version + v_count
      RETURNING s.version - v_count INTO v_current;
  ELSIF p_expected = 0 THEN
    INSERT INTO mutuo_streams (stream_id, version) VALUES (p_stream, v_count)
      ON CONFLICT (stream_id) DO NOTHING;
    IF NOT FOUND THEN
      SELECT s.version INTO v_current FROM mutuo_streams s WHERE s.stream_id = p_stream;
      RAISE EXCEPTION 'stream % already exists', p_stream
        USING ERRCODE = 'MU409', DETAIL = coalesce(v_current, 0)::text;
    END IF;
    v_current := 0;
  ELSE
    UPDATE mutuo_streams s SET version = s.version + v_count
     WHERE s.stream_id = p_stream AND s.version = p_expected
     RETURNING s.version - v_count INTO v_current;
    IF NOT FOUND THEN
      SELECT s.version INTO v_current FROM mutuo_streams s WHERE s.stream_id = p_stream;
      RAISE EXCEPTION 'stream % is not at version %', p_stream, p_expected
        USING ERRCODE = 'MU409', DETAIL = coalesce(v_current, 0)::text;
    END IF;
  END IF;

  -- Several appends may share one transaction: the index carries on between them.
  v_index := coalesce(nullif(current_setting('mutuo.append_index', true), ''), '0')::integer;
  IF v_index + v_count > 65536 THEN
    RAISE EXCEPTION 'more than 65536 events in one transaction' USING ERRCODE = '54000';
  END IF;
  PERFORM set_config('mutuo.append_index', (v_index + v_count)::text, true);
  v_base := pg_current_xact_id()::text::bigint * 65536 + v_index;

  INSERT INTO mutuo_events (position, stream_id, stream_version, event_id, event_type,
                            schema_version, data, metadata)
  SELECT v_base + x.ord - 1, p_stream, v_current + x.ord::integer, (x.e->>'eventId')::uuid,
         x.e->>'type', coalesce((x.e->>'schemaVersion')::integer, 1), x.e->'data', x.e->'metadata'
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, ord);

  RETURN QUERY SELECT v_current + v_count, v_base, v_base + v_count - 1;
END;
$$;
