-- A PSP event naming a pspTransactionId that another payment already holds is recorded with
-- its own outcome (not applied, left for reconciliation) instead of failing on the unique index.
ALTER TABLE psp_webhook_events DROP CONSTRAINT psp_webhook_events_outcome_check;
ALTER TABLE psp_webhook_events ADD CONSTRAINT psp_webhook_events_outcome_check
    CHECK (outcome IN ('applied', 'payment_not_found', 'already_in_status', 'invalid_transition',
                       'psp_transaction_conflict'));
