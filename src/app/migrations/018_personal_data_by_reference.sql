-- No personal data outside the events' sealed fields. Every copy of a person's data that a
-- read model, a service or a job keeps is the sealed form their events carry, opened when it
-- is needed: shredding their key makes every copy unreadable, with nothing to scrub (an
-- UPDATE leaves the old row versions on disk). The copies kept in the clear until now are
-- replaced here by the submission's sealed applicant.

-- Free text about a person (an operator's note, a reason) is sealed for the subject whose
-- data its stream already holds: found by the stream, through this index.
CREATE INDEX mutuo_subject_keys_streams ON mutuo_subject_keys USING gin (streams);

-- The customer view keeps the applicant as the submission carries them.
UPDATE rm_applications r
   SET state = jsonb_set(r.state::jsonb, '{file,applicant}', e.data->'applicant')::json
  FROM mutuo_events e
 WHERE e.stream_id = 'application-' || r.application_id AND e.stream_version = 1 AND r.state::jsonb ? 'file';

-- The search finds applications by keyed digests of the surname and the tax code, and
-- shows the applicant sealed as the submission carries them. The digests are made in the
-- platform (with its secret): the projector fills the table again from the events.
DROP TABLE rm_application_search;
CREATE TABLE rm_application_search (
  application_id  uuid PRIMARY KEY,
  applicant       jsonb NOT NULL,
  -- HMACs, cut to 64 bits, of each prefix of the surname's search key, and of its trigrams.
  name_prefixes   bigint[] NOT NULL,
  name_trigrams   bigint[] NOT NULL,
  -- HMAC of the tax code; NULL once the applicant is erased.
  tax_code_digest text,
  status          text NOT NULL,
  region          text NOT NULL,
  amount_cents    bigint NOT NULL,
  submitted_at    timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  version         integer NOT NULL
);
CREATE INDEX rm_application_search_prefixes ON rm_application_search USING gin (name_prefixes);
CREATE INDEX rm_application_search_trigrams ON rm_application_search USING gin (name_trigrams);
CREATE INDEX rm_application_search_tax_code ON rm_application_search (tax_code_digest);
CREATE INDEX rm_application_search_filters ON rm_application_search (status, region, submitted_at DESC);
CREATE INDEX rm_application_search_newest ON rm_application_search (submitted_at DESC, application_id);
DELETE FROM mutuo_projections WHERE name = 'application-search';
DROP TABLE IF EXISTS rm_application_search__shadow;

-- The Document service: the applicant by their sealed form, beside the facts.
UPDATE mutuo_documents_applications d
   SET facts = (d.facts - 'taxCode' - 'firstName' - 'lastName') || jsonb_build_object('applicant', e.data->'applicant')
  FROM mutuo_events e
 WHERE e.stream_id = 'application-' || d.application_id AND e.stream_version = 1;

-- The Notification service: whom it writes to, sealed; the list of what was sent shows the
-- recipient opened from it.
ALTER TABLE mutuo_notification_recipients ADD COLUMN applicant jsonb;
UPDATE mutuo_notification_recipients r
   SET applicant = e.data->'applicant'
  FROM mutuo_events e
 WHERE e.stream_id = 'application-' || r.application_id AND e.stream_version = 1;
DELETE FROM mutuo_notification_recipients WHERE applicant IS NULL;
ALTER TABLE mutuo_notification_recipients ALTER COLUMN applicant SET NOT NULL,
  DROP COLUMN first_name, DROP COLUMN last_name, DROP COLUMN email;
ALTER TABLE mutuo_notifications DROP COLUMN recipient;

-- The Bank Gateway's saga keeps the applicant sealed, for the booking to open.
UPDATE mutuo_gateway_sagas g
   SET state = jsonb_set(g.state #- '{facts,taxCode}', '{facts,applicant}', e.data->'applicant')
  FROM mutuo_events e
 WHERE e.stream_id = 'application-' || g.application_id AND e.stream_version = 1 AND g.state ? 'facts';

-- Jobs waiting to run: the same, in their payloads.
UPDATE mutuo_jobs j
   SET payload = jsonb_build_object('applicant', e.data->'applicant', 'inputs', (j.payload->'inputs') - 'taxCode', 'cause', j.payload->'cause')
  FROM mutuo_events e
 WHERE j.queue = 'scoring.credit-check' AND e.stream_id = 'application-' || j.key AND e.stream_version = 1;
UPDATE mutuo_jobs j
   SET payload = jsonb_set(j.payload #- '{request,taxCode}', '{request,applicant}', e.data->'applicant')
  FROM mutuo_events e
 WHERE j.queue = 'bank-gateway.book' AND e.stream_id = 'application-' || j.key AND e.stream_version = 1;
-- A reason copied in the clear is dropped: the message then points to the application's record.
UPDATE mutuo_jobs SET payload = payload #- '{facts,reason}' WHERE queue = 'notification.email' AND payload #> '{facts,reason}' IS NOT NULL;
