/*
 * osc_strategy.h — the strategies other than the shadow copy (issue 13): a statement
 * PostgreSQL runs by changing only its catalog is run as it is, as the console user,
 * under the proxy's hold with a short lock_timeout and jittered retries — the cutover's
 * path, so its lock never queues clients — and recorded in pgcutover.migrations in the
 * same transaction (strategy 'instant', state done), so a crash leaves either nothing
 * or the whole change.
 */
#ifndef OSC_STRATEGY_H
#define OSC_STRATEGY_H

#include <libpq-fe.h>

#include "conf.h"
#include "osc_plan.h"
#include "osc_result.h"
#include "osc_stmt.h"

/*
 * osc_strategy_instant — run sql (p from a trial that chose OSC_STRATEGY_INSTANT) on the
 * engine's connection c as console user `user` (osc_rights.h executor, the user's
 * search_path): up to s->cutover_attempts tries of hold → BEGIN → SET LOCAL lock_timeout
 * (s->lock_timeout_ms) → the statement → the migration row (done, with attempts and the
 * hold's length) → COMMIT → release, backing off with jitter after a lock timeout. *r
 * gets one row (id, table, state, strategy), or the statement's own error (SQLSTATE and
 * message, recorded as a failed migration).
 */
void osc_strategy_instant(PGconn *c, const char *user, const char *sql, const osc_plan *p,
                          const conf_t *s, osc_result *r);

/*
 * osc_strategy_validate — an ALTER TABLE whose only scanning subcommands add a CHECK or a
 * FOREIGN KEY (p from a trial that chose OSC_STRATEGY_VALIDATE): the statement with those
 * NOT VALID, the osc_strategy_instant way (state validating), then each added constraint
 * VALIDATEd as the user in its own transaction (SHARE UPDATE EXCLUSIVE: writes go on;
 * lock_timeout, retries); done. A row that violates one: the constraints it added are
 * dropped again under the hold, the migration fails and *r gets PostgreSQL's error
 * (23514, 23503), as the plain ALTER would have failed.
 */
void osc_strategy_validate(PGconn *c, const char *user, const char *sql, const osc_plan *p,
                           const conf_t *s, osc_result *r);

/*
 * osc_strategy_key — an ALTER TABLE whose one subcommand is ADD [CONSTRAINT n] PRIMARY KEY |
 * UNIQUE (columns) (osc_stmt_key; p from a trial that chose OSC_STRATEGY_VALIDATE): the
 * migration row (strategy validate, state building); a PRIMARY KEY's nullable columns
 * proven NOT NULL by helper CHECKs added NOT VALID under the hold and validated apart;
 * CREATE UNIQUE INDEX CONCURRENTLY pgcutover_m<id>_key as the user; then, under the hold
 * with lock_timeout and retries, ADD CONSTRAINT <name> … USING INDEX (PostgreSQL renames
 * the index to the constraint's name, the one it would have chosen itself, read from a
 * trial on an empty copy) and the helpers dropped. A failure (a duplicate, a NULL, a
 * cancel, the locks never came) drops what it added and answers PostgreSQL's error
 * (23505 with the duplicated key, 23502). PostgreSQL's ALTER TABLE page, "ADD
 * table_constraint_using_index".
 */
void osc_strategy_key(PGconn *c, const char *user, const char *sql, const osc_plan *p,
                      const conf_t *s, osc_result *r);

/*
 * osc_strategy_direct — one DDL statement that is neither an ALTER TABLE nor an index
 * statement, of the kind osc_stmt_direct named (CREATE VIEW, CREATE FUNCTION, COMMENT,
 * GRANT …), run as it is, as console user `user`, the same way as osc_strategy_instant
 * (hold, lock_timeout, retries), recorded as a migration with strategy 'direct' (no
 * table: table_oid 0). With plan, only PLAN's rows.
 */
void osc_strategy_direct(PGconn *c, const char *user, const char *sql, const char *kind,
                         bool plan, const conf_t *s, osc_result *r);

/*
 * osc_strategy_data — a statement of a migration file that is not DDL (INSERT, UPDATE,
 * DELETE, SELECT, DO, CALL …), run as it is, as `user`, in its own transaction with
 * lock_timeout and retries like osc_strategy_direct but outside the proxy's hold (its row
 * locks queue only the rows' writers), recorded as a migration with strategy 'data' in the
 * same transaction. *r gets the row (id, table "", state, strategy) or the error.
 */
void osc_strategy_data(PGconn *c, const char *user, const char *sql, const conf_t *s, osc_result *r);

/*
 * osc_strategy_block — the statements of a migration file's BEGIN … COMMIT block (sql:
 * them joined with ";\n"), each already planned instant or direct by the caller, run as
 * `user` in one transaction under the proxy's hold, the osc_strategy_direct way (lock_timeout,
 * retries), recorded as one migration with strategy 'block' in that transaction.
 */
void osc_strategy_block(PGconn *c, const char *user, const char *sql, const conf_t *s, osc_result *r);

/*
 * osc_strategy_index — CREATE INDEX, DROP INDEX, REINDEX INDEX|TABLE (osc_stmt_index) run
 * CONCURRENTLY as console user `user` (SET ROLE and the user's search_path on c), outside
 * a transaction, recorded as a migration (strategy 'concurrent': building → done or
 * failed). A failed build drops the INVALID index it left and answers PostgreSQL's error
 * (with its detail, e.g. the duplicated key). With plan, only PLAN's rows. *r gets one
 * row (id, table, state, strategy) or the error.
 */
void osc_strategy_index(PGconn *c, const char *user, const char *sql, bool plan, osc_result *r);

/*
 * osc_strategy_recover — at start, for database db: validate and concurrent migrations a
 * previous run left in state building or validating (a crash or SIGKILL): the job's
 * backend terminated; when the change had completed (the key constraint exists; every
 * constraint added is valid and no helper is left), state done; otherwise what it added
 * (constraints, its index, INVALID indexes) dropped — DROP CONSTRAINT under the hold with
 * s's lock_timeout_ms and retries — and the migration failed with the reason. c has the
 * state (osc_state_exists).
 */
void osc_strategy_recover(PGconn *c, const char *db, const conf_t *s);

/*
 * osc_strategy_abort — ABORT MIGRATION id when it is not a copy: false (nothing done) for a
 * copy. Otherwise the row's phase becomes 'abort requested' and, while it is building or
 * validating, its job's statement is cancelled (pg_cancel_backend, application_name
 * "pgcutover m<id> job") every 100 ms, up to 60 s: the job drops what it added and ends in
 * state aborted. *r gets tag ABORT MIGRATION, or 55000 with the state it is in (done: too
 * late; failed). Returns true.
 */
bool osc_strategy_abort(PGconn *c, int64_t id, osc_result *r);

#endif
