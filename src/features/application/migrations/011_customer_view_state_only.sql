-- The customer view keeps only the aggregate's state: the JSON the applicant reads is made
-- from it when read (a rebuild spent most of its time having PostgreSQL parse both).
ALTER TABLE rm_applications DROP COLUMN view;
