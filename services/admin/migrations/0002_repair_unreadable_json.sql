-- Config values and audit details stored before numbers were checked
-- (payplane_kit::storable) may hold a number serde_json cannot read back from its plain decimal
-- text, which failed every read and list of them. The value is kept as its text: a config value
-- becomes a JSON string, audit details one key holding the text. Same rule as the input check:
-- a number is unreadable here when its text is longer than 40 characters.
UPDATE system_config c
   SET value = to_jsonb(c.value::text)
 WHERE EXISTS (SELECT 1 FROM jsonb_path_query(c.value, 'strict $.**') v
                WHERE jsonb_typeof(v) = 'number' AND length(v::text) > 40);

UPDATE audit_logs a
   SET details = jsonb_build_object('unreadableDetails', a.details::text)
 WHERE a.details IS NOT NULL
   AND EXISTS (SELECT 1 FROM jsonb_path_query(a.details, 'strict $.**') v
                WHERE jsonb_typeof(v) = 'number' AND length(v::text) > 40);
