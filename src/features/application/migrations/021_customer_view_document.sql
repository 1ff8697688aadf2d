-- The customer view keeps a document of its own (CustomerViewDocument in
-- customer-view-document.ts), folded from the events by the read model, instead of the
-- aggregate's state: the write side may now rename or reshape its state without touching a
-- stored row. The rows the state made are rewritten here into the document the projection
-- would have folded from the same events, so the answers stay as they were; a row already
-- in the new form (it has no `file`) is left alone.
ALTER TABLE rm_applications RENAME COLUMN state TO document;

UPDATE rm_applications
   SET document = (
         jsonb_build_object(
           'applicationId', state -> 'file' -> 'applicationId',
           'status', state -> 'status',
           'applicant', state -> 'file' -> 'applicant',
           'loan', jsonb_build_object(
             'amountCents', state #> '{file,loan,amountCents}',
             'termYears', state #> '{file,loan,termYears}',
             'rateType', state #> '{file,loan,rateType}',
             'publicGuarantee', state #> '{file,loan,publicGuarantee}'),
           'incomeApproved', state -> 'file' ? 'verifiedMonthlyNetCents',
           'updatedAt', state -> 'file' -> 'updatedAt')
         || CASE WHEN state -> 'file' ? 'annualRate' THEN jsonb_build_object('annualRate', state #> '{file,annualRate}') ELSE '{}' END
         || CASE WHEN state -> 'file' ? 'rateLock'
                 THEN jsonb_build_object('rateLock', jsonb_build_object(
                        'lockedAt', state #> '{file,rateLock,lockedAt}', 'expiresAt', state #> '{file,rateLock,expiresAt}'))
                 ELSE '{}' END
         || CASE WHEN state ? 'contractNumber' THEN jsonb_build_object('contractNumber', state -> 'contractNumber') ELSE '{}' END
         || CASE WHEN state ? 'reason' THEN jsonb_build_object('reason', state -> 'reason') ELSE '{}' END
       )::json
  FROM (SELECT application_id AS id, document::jsonb AS state FROM rm_applications) AS old
 WHERE rm_applications.application_id = old.id AND old.state ? 'file';

-- A rebuild's shadow left by a process of the code before holds the aggregate's state.
DROP TABLE IF EXISTS rm_applications__shadow;
