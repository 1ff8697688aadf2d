-- The outbox is the event table itself: an append and its outgoing messages are one
-- write. The relay publishes events in position order and keeps here how far it got;
-- the lease makes one relay publish at a time, and its holder fences the checkpoint.
CREATE TABLE mutuo_relay (
  name        text PRIMARY KEY,
  holder      text NOT NULL,
  lease_until timestamptz NOT NULL,
  position    bigint NOT NULL DEFAULT 0
);

-- Each consumer records the events it has handled, in the transaction of its own
-- writes, so a redelivered event has no second effect.
CREATE TABLE mutuo_inbox (
  consumer   text NOT NULL,
  event_id   uuid NOT NULL,
  handled_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);

-- Messages a consumer gave up on, with why; and the later messages of the same
-- partition key held back behind them so that order is kept.
CREATE TABLE mutuo_dead_letters (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  consumer      text NOT NULL,
  partition_key text,
  event_id      uuid,
  event_type    text,
  reason        text NOT NULL,
  error         text NOT NULL,
  attempts      integer NOT NULL,
  message       jsonb NOT NULL,
  status        text NOT NULL DEFAULT 'dead'
                CHECK (status IN ('dead', 'redrive_requested', 'discard_requested', 'redriven', 'discarded')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  resolved_at   timestamptz
);
CREATE INDEX mutuo_dead_letters_open ON mutuo_dead_letters (consumer, partition_key)
  WHERE status IN ('dead', 'redrive_requested', 'discard_requested');

CREATE TABLE mutuo_parked (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  consumer      text NOT NULL,
  partition_key text NOT NULL,
  message       jsonb NOT NULL,
  parked_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mutuo_parked_by_key ON mutuo_parked (consumer, partition_key, id);
