-- The development identity provider's signing key (set-ups without AUTH_JWKS_URL, never
-- in production): kept in the database so that every process of a development platform
-- signs and trusts the same tokens.
CREATE TABLE mutuo_dev_identity (
  id          integer PRIMARY KEY CHECK (id = 1),
  private_jwk jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
