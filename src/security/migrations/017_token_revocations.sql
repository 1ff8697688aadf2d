-- Bearer tokens revoked before they expire (a logout). Every process keeps them in memory
-- and reads the new ones every AUTH_REVOCATION_REFRESH_MS; a row is pruned once its token
-- has expired. Revocations are written one at a time under an advisory lock, so that they
-- commit in the order of `seq`: a process that has read up to one has read all before it.
CREATE TABLE mutuo_revoked_tokens (
  seq        bigserial PRIMARY KEY,
  -- jti:<the token's jti>, or, for a token without one, sub:<subject>:iat:<issued at, s>
  token_id   text NOT NULL UNIQUE,
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT now()
);
