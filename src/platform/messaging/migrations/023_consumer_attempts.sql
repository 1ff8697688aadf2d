-- Attempts at a message that may have been delivered before and not finished: the process
-- ended during its handler (killed, out of memory). Counted before the handler runs again,
-- in a commit of their own, so that a message that ends the process every time is set
-- aside after a few; removed once the message's outcome is recorded.
CREATE TABLE mutuo_consumer_attempts (
  consumer        text NOT NULL,
  event_id        uuid NOT NULL,
  attempts        integer NOT NULL,
  last_attempt_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);
