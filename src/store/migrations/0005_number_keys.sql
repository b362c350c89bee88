-- One number module: the stored keys of number blacklists, opt-outs and recent sends are
-- rewritten to `number::key` by this migration's hook (`store::contract::rekey_numbers`), in
-- the migration's transaction. The audit log is hash-chained and keeps its historical rows;
-- its export filter compares keys, so it finds both the old and the new forms.
SELECT 1;
