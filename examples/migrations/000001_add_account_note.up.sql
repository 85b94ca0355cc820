-- instant: a nullable column without a default changes only the catalog.
ALTER TABLE pgbench_accounts ADD COLUMN note text;
