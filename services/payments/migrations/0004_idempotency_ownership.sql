-- Idempotency under takeover (api.md §5.8): a claim stuck for 60 s may be taken over; the
-- claim token makes the original request's finish fail, and a payment records the key
-- record's generation (renewed only when an expired key is used again), unique with its sender
-- and key, so two payments for one claim of one key cannot both be committed.
ALTER TABLE idempotency_keys ADD COLUMN claim_token uuid;
ALTER TABLE payments ADD COLUMN idempotency_since timestamptz;
CREATE UNIQUE INDEX payments_idempotency_once
    ON payments (sender_id, idempotency_key, idempotency_since)
    WHERE idempotency_key IS NOT NULL AND idempotency_since IS NOT NULL;
