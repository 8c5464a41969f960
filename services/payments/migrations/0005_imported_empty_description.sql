-- import.md §2: a payment imported from the earlier system with a NULL description is stored
-- with the empty description "" (never invented text). The API still requires 1..500
-- characters for every description it accepts; only the column's floor moves to 0.
ALTER TABLE payments DROP CONSTRAINT IF EXISTS payments_description_check;
ALTER TABLE payments ADD CONSTRAINT payments_description_check
    CHECK (char_length(description) <= 500);
