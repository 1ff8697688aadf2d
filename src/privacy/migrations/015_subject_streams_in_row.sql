-- The streams that hold a subject's sealed data move into the subject's own row, as one
-- JSON object of stream id → when it was first recorded: recording one on a submission is
-- then part of the write that finds or makes the person's key, not a row of its own (with
-- a foreign key to check) in a second table. The stream is recorded in the transaction
-- that writes its events; one still empty some time after was a write that stored nothing.
ALTER TABLE mutuo_subject_keys ADD COLUMN streams jsonb NOT NULL DEFAULT '{}'::jsonb;
UPDATE mutuo_subject_keys k
   SET streams = s.streams
  FROM (SELECT ss.subject_id, jsonb_object_agg(ss.stream_id, sk.created_at) AS streams
          FROM mutuo_subject_streams ss JOIN mutuo_subject_keys sk ON sk.subject_id = ss.subject_id
         GROUP BY ss.subject_id) s
 WHERE s.subject_id = k.subject_id;
DROP TABLE mutuo_subject_streams;
