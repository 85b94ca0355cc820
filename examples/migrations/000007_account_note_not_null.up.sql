-- validate: SET NOT NULL proven by a CHECK added NOT VALID and validated apart, so the
-- ACCESS EXCLUSIVE lock does not scan. (New rows need a note from now on: the default.)
ALTER TABLE pgbench_accounts ALTER COLUMN note SET DEFAULT '';
ALTER TABLE pgbench_accounts ALTER COLUMN note SET NOT NULL;
