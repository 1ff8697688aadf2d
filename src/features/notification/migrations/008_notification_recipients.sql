-- Whom the Notification service writes to about an application, and the facts its
-- messages quote, kept from the submission.
CREATE TABLE mutuo_notification_recipients (
  application_id uuid PRIMARY KEY,
  first_name     text NOT NULL,
  last_name      text NOT NULL,
  email          text NOT NULL,
  amount_cents   bigint NOT NULL,
  term_years     integer NOT NULL
);
