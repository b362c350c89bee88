-- An account that is not charged (the operator's own use, the demo): set from the
-- configuration's [[accounts]] `unmetered = true`. Owned by store::contract.
ALTER TABLE accounts ADD COLUMN unmetered INTEGER NOT NULL DEFAULT 0;
