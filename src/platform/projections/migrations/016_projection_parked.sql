-- The events a projection could not apply, and the later events of their stream held
-- behind them so that the stream's order is kept; the projection goes on with every
-- other stream. Written in the transaction that moves the checkpoint past them, so a
-- standby that takes the projection over finds them. Only references to the event log
-- are kept (never the event's data): a redrive reads the events again from the log.
-- error_code and error are those of the event that failed; null on the events held behind it.
CREATE TABLE mutuo_projection_parked (
  projection     text NOT NULL,
  position       bigint NOT NULL,
  stream_id      text NOT NULL,
  stream_version integer NOT NULL,
  event_id       uuid NOT NULL,
  event_type     text NOT NULL,
  error_code     text,
  error          text,
  parked_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (projection, position)
);
CREATE INDEX mutuo_projection_parked_by_stream ON mutuo_projection_parked (projection, stream_id, position);
