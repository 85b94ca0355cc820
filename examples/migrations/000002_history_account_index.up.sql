-- concurrent: built with CREATE INDEX CONCURRENTLY; writes go on.
CREATE INDEX pgbench_history_aid ON pgbench_history (aid);
