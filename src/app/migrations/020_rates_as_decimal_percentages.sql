-- Rates are decimal percentages ("3.875" is 3.875 %) instead of basis points. The events
-- keep what was stored and are upcast as they are read; the state that services and read
-- models keep of them (the customer view, the published table, the Bank Gateway's sagas,
-- pending jobs) is rewritten here, 345 basis points becoming "3.45".
CREATE OR REPLACE FUNCTION pg_temp.rate_from_basis_points(document jsonb, path text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN jsonb_typeof(document #> (path || 'annualRateBps'::text)) = 'number' THEN
      jsonb_set(
        document #- (path || 'annualRateBps'::text),
        path || 'annualRate'::text,
        to_jsonb(trim_scale((document #>> (path || 'annualRateBps'::text))::numeric / 100)::text)
      )
    ELSE document
  END
$$;

UPDATE rm_applications
   SET state = pg_temp.rate_from_basis_points(pg_temp.rate_from_basis_points(state::jsonb, '{file}'), '{file,rateLock}')::json
 WHERE state::jsonb #> '{file,annualRateBps}' IS NOT NULL OR state::jsonb #> '{file,rateLock,annualRateBps}' IS NOT NULL;

UPDATE rm_rate_table
   SET rate_table = jsonb_set(rate_table, '{bands}', (
         SELECT jsonb_object_agg(rate_type, (
                  SELECT jsonb_agg(pg_temp.rate_from_basis_points(band, '{}') ORDER BY position)
                    FROM jsonb_array_elements(bands) WITH ORDINALITY AS listed(band, position)))
           FROM jsonb_each(rate_table -> 'bands') AS by_type(rate_type, bands)));

UPDATE mutuo_gateway_sagas
   SET state = pg_temp.rate_from_basis_points(pg_temp.rate_from_basis_points(state, '{facts}'), '{facts,rateLock}')
 WHERE state #> '{facts,annualRateBps}' IS NOT NULL OR state #> '{facts,rateLock,annualRateBps}' IS NOT NULL;

UPDATE mutuo_jobs SET payload = pg_temp.rate_from_basis_points(payload, '{request}') WHERE queue = 'bank-gateway.book';
UPDATE mutuo_jobs SET payload = pg_temp.rate_from_basis_points(payload, '{inputs}') WHERE queue = 'scoring.credit-check';

DROP FUNCTION pg_temp.rate_from_basis_points(jsonb, text[]);
