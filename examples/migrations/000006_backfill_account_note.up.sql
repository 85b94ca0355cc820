-- batched: a data migration in key ranges, each its own short transaction.
-- pgcutover:batched
UPDATE pgbench_accounts SET note = 'account ' || aid WHERE note IS NULL;
