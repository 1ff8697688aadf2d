-- The Bank Gateway's saga, one row per application: what it knows and where it is.
-- Its consumer and its mainframe jobs update a row under the row's lock, so the
-- answer of a booking and a withdrawal arriving meanwhile are decided one after the other.
CREATE TABLE mutuo_gateway_sagas (
  application_id uuid PRIMARY KEY,
  status         text NOT NULL,
  state          jsonb NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mutuo_gateway_sagas_status ON mutuo_gateway_sagas (status);
