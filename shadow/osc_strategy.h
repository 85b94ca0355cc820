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
 * osc_strategy_direct — one DDL statement that is neither an ALTER TABLE nor an index
 * statement, of the kind osc_stmt_direct named (CREATE VIEW, CREATE FUNCTION, COMMENT,
 * GRANT …), run as it is, as console user `user`, the same way as osc_strategy_instant
 * (hold, lock_timeout, retries), recorded as a migration with strategy 'direct' (no
 * table: table_oid 0). With plan, only PLAN's rows.
 */
void osc_strategy_direct(PGconn *c, const char *user, const char *sql, const char *kind,
                         bool plan, const conf_t *s, osc_result *r);

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
 * osc_strategy_recover — at start, for database db: concurrent builds a previous run left
 * in state building (a crash or SIGKILL) — their backend terminated, the INVALID index they
 * left dropped, the migration failed with the reason. c has the state (osc_state_exists).
 */
void osc_strategy_recover(PGconn *c, const char *db);

#endif
