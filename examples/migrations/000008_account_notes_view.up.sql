-- direct: other DDL runs as it is, under the hold with lock_timeout and retries.
CREATE VIEW account_notes AS SELECT aid, bid, note FROM pgbench_accounts;
COMMENT ON VIEW account_notes IS 'one note per account';
