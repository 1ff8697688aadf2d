-- Crypto-shredding of personal data: stored events are never rewritten, so a person's
-- data in them is sealed with a key of their own, and erasing them destroys that key.
-- One row per data subject. The tax code itself is never stored: the lookup is by an
-- HMAC of it, which a stolen copy of this table cannot reverse without the secret.
-- Erasure clears both the key and the digest and keeps the row, so the subject id still
-- names someone who was erased (and a returning person gets a new subject and key).
CREATE TABLE mutuo_subject_keys (
  subject_id      uuid PRIMARY KEY,
  tax_code_digest text UNIQUE,
  data_key        bytea,
  created_at      timestamptz NOT NULL DEFAULT now(),
  erased_at       timestamptz,
  CHECK ((erased_at IS NULL) = (data_key IS NOT NULL AND tax_code_digest IS NOT NULL))
);

-- The streams that hold a subject's sealed data: what an erasure request lists, and
-- what shows where a person's data went without decrypting anything.
CREATE TABLE mutuo_subject_streams (
  subject_id uuid NOT NULL REFERENCES mutuo_subject_keys (subject_id),
  stream_id  text NOT NULL,
  PRIMARY KEY (subject_id, stream_id)
);
