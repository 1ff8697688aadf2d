-- What a consumer is behind on, found in the database alone (mutuo status, the lag
-- metrics): the event types it handles, as its process registered them at start, and
-- the position through which every event of those types is accounted for (in its inbox,
-- dead-lettered or parked). That position only moves up, so each look reads the log from
-- there; it goes back to 0 when the consumer's types change, since events of a new type
-- below it were never looked at.
CREATE TABLE mutuo_consumers (
  name              text PRIMARY KEY,
  event_types       text[] NOT NULL,
  accounted_through bigint NOT NULL DEFAULT 0,
  registered_at     timestamptz NOT NULL DEFAULT now()
);
