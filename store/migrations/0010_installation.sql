-- Which deployment this database belongs to. Workers write it into the Temporal namespace they serve
-- (the reconciliation schedule), so that a process pointed at another database refuses that
-- namespace instead of failing its mandates as "not found".
CREATE TABLE installation (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO installation DEFAULT VALUES;
