/*
 * osc_strategy_int.h — internal to the strategies' two files (osc_strategy.c: instant,
 * validate, direct; osc_concurrent.c: concurrent builds, ADD PRIMARY KEY / UNIQUE, ABORT
 * and restart of those): the helpers both use. Every function runs on the caller's
 * engine connection c, as the console job's thread.
 */
#ifndef OSC_STRATEGY_INT_H
#define OSC_STRATEGY_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "osc_result.h"

/* osc_strat_answer — *r gets the one row a finished statement answers (id, table
 * "schema.table" or "" when schema is empty, state done, strategy) and tag. */
void osc_strat_answer(osc_result *r, int64_t id, const char *strategy, const char *schema,
                      const char *table_name, const char *tag);

/* osc_strat_run_retried — sql as `user` through the executor (osc_rights.h; it must exist
 * in c's session), the osc_run_locked way: lock_timeout s->lock_timeout_ms, up to
 * s->cutover_attempts tries with jittered back-off, under the proxy's hold when hold. Not
 * recorded. False with PostgreSQL's message and SQLSTATE. */
bool osc_strat_run_retried(PGconn *c, const char *user, const char *sql, bool hold,
                           const conf_t *s, char *err, size_t errlen, char code[6]);

/* osc_strat_begin_row — the row of a migration that runs outside one transaction (strategy
 * concurrent or validate), in state building (phase) — live, so no other change of the
 * table starts meanwhile — with the table's indexes and constraints as they were
 * (settings indexes_before, constraints_before: what a restart undoes), and the session
 * advisory lock (OSC_LOCK_CLASS, id) taken in the same statement — it tells a restarting
 * pgcutover the job is alive (osc_strategy_recover); osc_strat_finish_row releases it. Its
 * id into ids (32 bytes); false with *r answered (55000 when the table has a live
 * migration). */
bool osc_strat_begin_row(PGconn *c, const char *strategy, const char *phase, const char *schema,
                         const char *table, const char *oid, const char *sql, const char *user,
                         char ids[32], osc_result *r);

/* osc_strat_begin_job — c's session becomes migration ids's job until
 * osc_strat_finish_row: application_name "pgcutover m<ids> job" (what ABORT cancels,
 * osc_strategy_abort) and
 * client_connection_check_interval 1 s, so the backend of a killed pgcutover ends its
 * statement, and frees the lock, within a second. A failure is logged. */
void osc_strat_begin_job(PGconn *c, const char *ids);

/* osc_strat_end_work — the job's work is over (done or failed): its session is renamed
 * "pgcutover m<ids> cleanup", which ABORT's cancel never aims at, so no clean-up step and no
 * update of the row can be cancelled; role, search_path (pinned) and lock_timeout reset.
 * Retried while a cancel lands on it; idempotent. */
void osc_strat_end_work(PGconn *c, const char *ids);

/* osc_strat_finish_row — migration ids ends: state done (ok) or failed with error why, in
 * phase; aborted instead of failed when ABORT MIGRATION asked for it (phase 'abort
 * requested'); then the job ends (osc_strat_begin_job undone). A failure to write is
 * logged. */
void osc_strat_finish_row(PGconn *c, const char *ids, bool ok, const char *why, const char *phase);

/* osc_strat_nn_name — the name of column col's helper CHECK (col IS NOT NULL):
 * "pgcutover_nn_<col>" (col cut to 40 bytes). */
void osc_strat_nn_name(const char *col, char name[64]);

/* osc_strat_not_null_helper — what lets PostgreSQL 12+ set NOT NULL on column col of
 * schema.table without a scan: returns `ALTER TABLE … ADD CONSTRAINT pgcutover_nn_<col>
 * CHECK (col IS NOT NULL) NOT VALID`; *finish (when not NULL) gets `ALTER TABLE … ALTER
 * COLUMN col SET NOT NULL; ALTER TABLE … DROP CONSTRAINT pgcutover_nn_<col>` — two
 * statements: in one ALTER the DROP would run first (its pass precedes SET NOT NULL's,
 * tablecmds.c AT_PASS_DROP) and SET NOT NULL would scan; *drop (when not NULL) gets just
 * the DROP … IF EXISTS. All malloc'ed (caller frees); NULL on out of memory. */
char *osc_strat_not_null_helper(const char *schema, const char *table, const char *col,
                                char **finish, char **drop);

#endif
