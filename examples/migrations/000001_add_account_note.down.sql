ALTER TABLE pgbench_accounts DROP COLUMN note;
