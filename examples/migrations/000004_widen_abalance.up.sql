-- copy: int -> bigint rewrites every row; a shadow table, dual writes, backfill, swap.
ALTER TABLE pgbench_accounts ALTER COLUMN abalance TYPE bigint;
