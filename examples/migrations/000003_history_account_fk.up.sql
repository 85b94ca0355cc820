-- validate: added NOT VALID under the hold, then VALIDATE CONSTRAINT while writes go on.
ALTER TABLE pgbench_history
    ADD CONSTRAINT pgbench_history_aid_fkey FOREIGN KEY (aid) REFERENCES pgbench_accounts (aid);
