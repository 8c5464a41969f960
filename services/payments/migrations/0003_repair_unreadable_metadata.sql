-- Metadata stored before numbers were checked (payplane_kit::storable) may hold a number whose
-- plain decimal text serde_json cannot read back (e.g. 1.7976931348623157e308 prints as 309
-- digits), which failed every read of the row. Such a value is kept, as its text, under one
-- key, so the row is readable and nothing is thrown away. Same rule as the input check: a
-- number is unreadable here when its text is longer than 40 characters.
UPDATE payments p
   SET metadata = jsonb_build_object('unreadableMetadata', p.metadata::text)
 WHERE p.metadata IS NOT NULL
   AND EXISTS (SELECT 1 FROM jsonb_path_query(p.metadata, 'strict $.**') v
                WHERE jsonb_typeof(v) = 'number' AND length(v::text) > 40);

UPDATE payment_transactions t
   SET metadata = jsonb_build_object('unreadableMetadata', t.metadata::text)
 WHERE t.metadata IS NOT NULL
   AND EXISTS (SELECT 1 FROM jsonb_path_query(t.metadata, 'strict $.**') v
                WHERE jsonb_typeof(v) = 'number' AND length(v::text) > 40);
