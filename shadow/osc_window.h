/*
 * osc_window.h — the revert window of a copy migration (issue 16): in the swap's own
 * transaction, a second migration R is recorded beside the first (F) — the live table as
 * R's original, F's kept old table (schema pgcutover) as R's shadow, the inverse column
 * mapping (each old column from the new column that was copied from it, assignment casts
 * narrowing a widened type back; a column F dropped is not written, so it keeps its value
 * on UPDATE and takes its default on INSERT; a column F added is left out) — with R's
 * change capture on the live table. R waits in state standby: its log keeps the keys of
 * every application write since the swap. REVERT MIGRATION F starts R's driver at
 * verifying: it applies the log to the old table, verifies it against the live table
 * mapped back, and swaps back with the same hold, lock_timeout, retries and carrying
 * over as the cutover; that swap opens the window of R in turn (a revert of the revert).
 * A write the old schema rejects fails R, never the application; R's failure keeps the
 * old table (osc_mig_cleanup).
 */
#ifndef OSC_WINDOW_H
#define OSC_WINDOW_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "osc_result.h"
#include "osc_sql.h"

/*
 * osc_window_prepare — before the cutover of copy migration m (outside the hold, in its
 * own transaction): record R in state prepared with its columns, change log, faults table
 * and capture function, but no trigger yet, so that the swap has only R's trigger to
 * make under its lock. Returns R's id (an earlier attempt's prepared R when there is
 * one); -1 with why filled when the change has no exact inverse (a USING expression, a
 * key whose type changed): no window, nothing to open; 0 with why when preparing failed
 * (osc_window_open then does it all). No transaction may be open on c.
 */
int64_t osc_window_prepare(PGconn *c, const osc_map *m, const char *old_name, int window_s,
                           char *why, size_t len);

/*
 * osc_window_discard — the prepared windows of migration f (its swap will not come: f
 * failed or was aborted) are dropped (log, faults table, function) and marked aborted
 * with why. Failures are logged.
 */
void osc_window_discard(PGconn *c, int64_t f, const char *why);

/*
 * osc_window_open — inside the swap transaction of migration m (osc_cutover_swap done,
 * the live table now m->schema.m->table, the old one pgcutover.old_name), under a
 * savepoint: R's capture on the live table and R in standby — the prepared R (prepared >
 * 0, osc_window_prepare) or, with prepared 0, R recorded now. Returns R's id, or 0 with why filled when the
 * change has no exact inverse or a step failed (the savepoint rolled back, a prepared R
 * discarded: the swap goes on without a window). Never fails the swap. window_s (the
 * revert_window setting now; 0 = no limit) is recorded with R as its own lifetime
 * (settings revert_window_s): a window ends by its own, whatever another pgcutover on the
 * same cluster is set to.
 */
int64_t osc_window_open(PGconn *c, const osc_map *m, const char *old_name, int window_s,
                        int64_t prepared, char *why, size_t len);

/*
 * osc_window_close — end the revert windows waiting on table table_oid (a new change of
 * the table makes them useless: REVERT is refused after a later change): their capture
 * dropped (osc_mig_cleanup, the old tables kept), state aborted with the reason. Failures
 * are logged; the window then stays, and REVERT refuses anyway.
 */
void osc_window_close(PGconn *c, unsigned table_oid, int lock_timeout_ms);

/*
 * osc_window_end — end revert window w waiting in standby: its capture dropped
 * (osc_mig_cleanup, with lock_timeout_ms; the old table kept), state aborted with phase
 * as the reason. False with err when the capture could not be dropped (a lock timeout:
 * try again) or w is not waiting.
 */
bool osc_window_end(PGconn *c, int64_t w, const char *phase, int lock_timeout_ms, char *err,
                    size_t len);

/*
 * osc_window_drop_old — DROP TABLE pgcutover.old_name, the kept old table of done
 * migration f (lock_timeout 5 s: nothing but a reader of the old table waits for it), and
 * clear f's old_name. False with err and code (e.g. 2BP01 when something depends on it).
 */
bool osc_window_drop_old(PGconn *c, int64_t f, const char *old_name, char *err, size_t len,
                         char code[6]);

/*
 * osc_window_expire — end the windows of c's database that have waited in standby longer
 * than their own lifetime since their swap (revert_window_s recorded at the swap; window_s,
 * the setting now, for a window an earlier build opened; 0 = no limit), logging each;
 * with drop_old, their old tables too (osc_window_drop_old). Returns how many ended.
 */
int osc_window_expire(PGconn *c, int window_s, bool drop_old, int lock_timeout_ms);

/*
 * osc_window_drop_command — DROP MIGRATION id of database db: the old table a done
 * migration kept is dropped, its revert window closed first (its capture dropped with
 * lock_timeout_ms). *r answered: tag DROP MIGRATION, or 42P01 no such migration, 55000
 * not done / no old table (a reverted one: the hint names the revert's migration) / its
 * revert running, 55P03 the window's capture could not be dropped (try again), or
 * PostgreSQL's error dropping the table (something depends on it). The caller has
 * checked that the console user may act on id (osc_access_check).
 */
void osc_window_drop_command(PGconn *c, const char *db, int64_t id, int lock_timeout_ms,
                             osc_result *r);

/* What REVERT MIGRATION f of a copy migration would find (osc_window_inspect). */
typedef struct {
    int64_t window;      /* the window's migration R, 0 = none opened */
    int64_t later;       /* a done change of the table after f, 0 = none */
    bool refused_state;  /* why says f is not done or was reverted already (55000, not 0A000) */
    bool running;        /* the revert is under way: the window's migration is live (55000) */
    char old_name[64];   /* f's kept old table in schema pgcutover, "" = none */
    char why[1200];      /* why f cannot be reverted now; "" = it can */
} osc_window_info;

/*
 * osc_window_inspect — whether copy migration f can be reverted through its window: f is
 * done and not reverted already, its window R waits in standby, no later change of the
 * table is done, nothing made since is bound to the live table by OID (osc_plan_bound: a
 * SQL-body function would go on using it after the revert's swap), and no write since the
 * swap was recorded as not fitting the old table
 * (pgcutover.m<R>_faults, filled by R's trigger: the key and the reason, e.g. "(aid)=(7):
 * column "abalance": 3000000000 is out of range for the old type integer"). Returns false
 * when f is no copy migration (or the query fails: err), true with *wi filled.
 */
bool osc_window_inspect(PGconn *c, int64_t f, osc_window_info *wi, char *err, size_t len);

#endif
