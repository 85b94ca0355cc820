-- block: statements that are each instant or direct, applied as one transaction under
-- the hold.
BEGIN;
CREATE TABLE regions (id integer PRIMARY KEY, name text NOT NULL);
INSERT INTO regions VALUES (1, 'north'), (2, 'south');
ALTER TABLE pgbench_tellers ADD COLUMN region integer;
COMMIT;
