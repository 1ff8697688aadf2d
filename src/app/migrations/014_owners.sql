-- Whom an application belongs to: the subject who submitted it (its first event's actor).
-- An applicant reads and commands only their own; the read sides that answer applicants
-- keep it beside the row, so the check costs no second lookup.
ALTER TABLE rm_applications ADD COLUMN owner text;
ALTER TABLE mutuo_documents_applications ADD COLUMN owner text;
