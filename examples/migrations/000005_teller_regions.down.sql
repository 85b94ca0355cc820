BEGIN;
ALTER TABLE pgbench_tellers DROP COLUMN region;
DROP TABLE regions;
COMMIT;
