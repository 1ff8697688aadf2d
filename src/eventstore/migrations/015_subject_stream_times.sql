-- When a stream was first recorded as holding a subject's data. The stream is recorded
-- before its events are written: an erasure that finds a stream still empty cannot tell
-- a submission on its way from one that crashed, except by how long ago it was recorded.
ALTER TABLE mutuo_subject_streams ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now();
