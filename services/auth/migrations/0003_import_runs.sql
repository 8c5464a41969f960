-- `payplane import` (import.md §2): which source an import came from, so a second run into the
-- same databases resumes or imports nothing, and a run from another source into databases that
-- already hold data is refused unless --merge. `source` is the source databases' addresses
-- without credentials.
CREATE TABLE import_runs (
    source      text PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    finished_at timestamptz,
    report      jsonb
);
