-- pgcutover:batched
UPDATE pgbench_accounts SET note = NULL WHERE note IS NOT NULL;
