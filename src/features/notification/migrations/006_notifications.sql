-- Who sends the notification about an event on a channel, and whether it went out.
-- A 'sending' claim older than the sender's claim TTL belongs to a sender that crashed
-- or hung: the next sender may take it over. A 'sent' row is never claimed again.
CREATE TABLE mutuo_notification_ledger (
  event_id    uuid NOT NULL,
  channel     text NOT NULL,
  status      text NOT NULL CHECK (status IN ('sending', 'sent')),
  claimed_at  timestamptz NOT NULL,
  PRIMARY KEY (event_id, channel)
);

-- What was sent to an applicant, for the service's list per application.
CREATE TABLE mutuo_notifications (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  application_id  uuid NOT NULL,
  event_id        uuid NOT NULL,
  event_type      text NOT NULL,
  channel         text NOT NULL,
  template        text NOT NULL,
  recipient       text NOT NULL,
  -- Email only; other channels have neither.
  subject         text,
  message_id      text,
  sent_at         timestamptz NOT NULL DEFAULT now(),
  UNIQUE (event_id, channel)
);
CREATE INDEX mutuo_notifications_by_application ON mutuo_notifications (application_id, id);
