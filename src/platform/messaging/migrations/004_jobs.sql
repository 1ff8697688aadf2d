-- Work a service must do outside a transaction (call a bureau, the mainframe, an SMTP
-- server) or later (a deadline). A consumer schedules it in the transaction that
-- handles the event, so it is never lost; a worker claims it for a lease, does it, and
-- commits the outcome together with the job's removal. `version` grows with every
-- (re)schedule, so a worker whose job was replaced or cancelled meanwhile cannot
-- commit a stale outcome.
CREATE TABLE mutuo_jobs (
  queue        text NOT NULL,
  key          text NOT NULL,
  payload      jsonb NOT NULL,
  due_at       timestamptz NOT NULL,
  version      integer NOT NULL DEFAULT 1,
  attempts     integer NOT NULL DEFAULT 0,
  locked_until timestamptz,
  last_error   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (queue, key)
);
CREATE INDEX mutuo_jobs_due ON mutuo_jobs (queue, due_at);
