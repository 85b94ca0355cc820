/*
 * osc_engine.h — the online schema change engine as the proxy sees it (DESIGN.md §2):
 * start (resume what a previous run left), run console migration commands, stop.
 *
 * Each migration runs on its own thread with blocking libpq on its own connection to
 * the target database (application_name "pgcutover m<id>"), guarded by a session
 * advisory lock so two pgcutover processes never drive the same migration. Its state
 * lives in that database: pgcutover.migrations (one row per migration) and
 * pgcutover.m<id>_log (the change log of its application writes), created on first use.
 *
 * States: pending → preparing → copying ⇄ paused → verifying → ready → cutting_over →
 * done, and aborting → aborted or failed from any state before done. In ready the shadow
 * is kept current; with cutover = auto the swap follows at once, with manual it waits
 * for CUTOVER MIGRATION n. The old table is kept, renamed to pgcutover.<table>_<id>_old
 * (SHOW column old_table), until DROP MIGRATION n.
 *
 * Console commands (osc_engine_command), answered in the console's database:
 *   ALTER TABLE …                  start; one row (id int8, table text, state text)
 *   PLAN ALTER TABLE …             rows (step int8, phase text, description text, sql text)
 *   SHOW MIGRATIONS                one row per migration, newest first
 *   SHOW MIGRATION n               the same columns plus details, one row
 *   PAUSE MIGRATION n|ALL          stop the backfill at a batch boundary (waits up to 5 s
 *                                  for the state to read paused)
 *   RESUME MIGRATION n|ALL         continue
 *   SET MIGRATION n key = value    batch_size, target_batch_ms, max_rows_per_second,
 *                                  lock_timeout_ms, cutover, cutover_force
 *   CUTOVER MIGRATION n            swap now (state ready; waits until done or the attempts
 *                                  are used up, then answers 55000 with the reason)
 *   ABORT MIGRATION n              drop triggers and shadow; state aborted (waits for it)
 *   DROP MIGRATION n               drop the old table of a done migration
 * Who: every command on a migration is for the table's owner, a member of the owning
 * role (pg_has_role … 'USAGE') or a superuser, as ALTER itself; others get 42501 "must be
 * owner of table" (also SHOW MIGRATION n: the id is no secret, the table name is in
 * pg_class anyway). SHOW MIGRATIONS and PAUSE/RESUME MIGRATION ALL only list or touch
 * such migrations.
 * Errors: 42601 syntax, 42P01 no such table or migration, 55000 wrong state,
 * 42501 not the table's owner, 0A000 what a shadow copy cannot do, 57P01 pgcutover is
 * shutting down.
 */
#ifndef OSC_ENGINE_H
#define OSC_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "conf.h"
#include "osc_result.h"

/* The re-preparing of client sessions' statements after one change (issue 14). */
typedef struct {
    int64_t sessions_marked; /* sessions of the database marked stale by the change */
    int64_t sessions;        /* of them, sessions that re-prepared statements since */
    int64_t statements;      /* statements re-prepared */
    int64_t left;            /* statements left to PostgreSQL (binary, no Describe, no longer parse) */
    double max_ms;           /* the longest one session's re-prepare took: what it added to
                              * that client's next round trip */
    double total_ms;         /* the sum over sessions */
} osc_reprepare_stats;

/* What the engine needs from the process around it. Every function must be
 * thread-safe; the engine calls them from its own threads. */
typedef struct {
    /* Park new client transactions at the proxy / let them go (counted: every hold is
     * followed by exactly one release). */
    void (*hold)(void);
    void (*release)(void);
    /* One log line at level (conf_log_level), without newline. */
    void (*log)(int level, const char *line);
    /* A deep copy of the settings in force into *out (caller conf_free's it). */
    bool (*settings)(conf_t *out);
    /* The longest a client waited in the hold that ended last, in milliseconds. */
    double (*last_hold_max_wait_ms)(void);
    /* The longest a client has been waiting in the hold in place now (0 when none). */
    double (*hold_wait_ms)(void);
    /* A table's row type changed in database db by migration id (a swap, an instant
     * change): sessions' prepared plans may be stale. May be NULL. */
    void (*row_type_changed)(const char *db, int64_t migration);
    /* What the sessions' re-preparing after migration id of db cost so far; false when
     * this process knows nothing of it (no row type change, a restart since, or too many
     * changes since). May be NULL. */
    bool (*reprepare_stats)(const char *db, int64_t migration, osc_reprepare_stats *out);
} osc_engine_hooks;

/*
 * osc_engine_start — remember hooks and, on a background thread, look in every
 * database PostgreSQL lets us connect to for migrations a previous run left: resume
 * those in copying/paused (from the checkpoint), verifying (verify again) and ready,
 * finish aborting, and abort those in pending/preparing with the reason recorded.
 * Returns at once.
 */
void osc_engine_start(const osc_engine_hooks *hooks);

/*
 * osc_engine_stop — ask every migration thread to stop at its next batch boundary and
 * wait for them (their state stays as it is, so the next start resumes). Console
 * commands in progress are woken first (a CUTOVER, ABORT or PAUSE waiting for a driver
 * answers 57P01 at once; one in a query finishes it, every query the engine runs for
 * the console has a lock_timeout) and waited for before anything they use is freed;
 * commands and admissions asked for afterwards answer 57P01 at once.
 */
void osc_engine_stop(void);

/*
 * osc_engine_is_command — whether cmd (one console command, trimmed) is a migration
 * command this module answers (ALTER TABLE, PLAN, SHOW MIGRATION[S], PAUSE/RESUME/SET/
 * CUTOVER/ABORT/DROP MIGRATION). Pure; does not touch the database.
 */
bool osc_engine_is_command(const char *cmd);

/*
 * osc_engine_statement — one DDL statement run (or, with plan, planned) as the console
 * runs it for console user `user`: index statements concurrently, other DDL but ALTER
 * TABLE direct, ALTER TABLE through the planner (instant, validate, or a copy migration
 * launched on its own thread). c: a connection to db (the console command's). Returns the
 * id of a launched copy migration (the caller follows its row), 0 when the statement has
 * finished; *r holds its answer or its error (42601 for a statement that is not DDL).
 */
int64_t osc_engine_statement(PGconn *c, const char *db, const char *user, const char *stmt,
                             bool plan, osc_result *r);

/* osc_engine_stopping — the process is shutting down: long console commands leave. */
bool osc_engine_stopping(void);

/*
 * osc_engine_command — run one migration command for console user `user` in database
 * `db`. Blocks (libpq): call it off the proxy's event loops. The result (rows and tag,
 * or an error with SQLSTATE) goes into *r, which the caller releases with
 * osc_result_free.
 */
void osc_engine_command(const char *db, const char *user, const char *cmd, osc_result *r);

/*
 * osc_engine_admit — whether `user` may use the console: a superuser or a member
 * (pg_has_role … 'MEMBER') of control_role. user must be the name PostgreSQL
 * authenticated (the StartupMessage's user), never something read back from the user's
 * own session. Decided on a connection of the engine's own to database db (osc_connect)
 * with search_path = pg_catalog, pg_temp and every catalog object qualified, so nothing
 * the user set (search_path from options, PGOPTIONS or ALTER ROLE … SET; their own
 * pg_roles or pg_has_role) can change the answer.
 * Blocks (libpq): call it off the proxy's event loops.
 * Returns 1 admitted, 0 refused, -1 undecided (err filled: no connection, shutting
 * down); the caller refuses on anything but 1.
 */
int osc_engine_admit(const char *db, const char *user, const char *control_role, char *err,
                     size_t errlen);

/*
 * osc_engine_revert_copy — REVERT MIGRATION id of a copy migration for console user user
 * on connection c of database db (osc_window.h), after the owner rule of every command
 * on a migration: its revert window's migration R goes from standby to verifying with
 * cutover auto and its driver starts (it applies the log to the old table, verifies it
 * and swaps it back; follow R to done). Returns false when id is no copy migration (the
 * catalog-diff revert, osc_revert.h, answers), else true with *r answered: one row (step,
 * sql, strategy, note = R's id), or an error — 42501 not the owner, 55000 not done /
 * reverted already / being reverted, 0A000 no window or not revertible (why in the
 * message).
 */
bool osc_engine_revert_copy(PGconn *c, const char *db, const char *user, int64_t id, osc_result *r);

#endif
