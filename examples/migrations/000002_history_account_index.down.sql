DROP INDEX pgbench_history_aid;
