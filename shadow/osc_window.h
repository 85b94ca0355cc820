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

#include "osc_sql.h"

/*
 * osc_window_open — inside the swap transaction of migration m (osc_cutover_swap done,
 * the live table now m->schema.m->table, the old one pgcutover.old_name), under a
 * savepoint: record R and install its capture. Returns R's id, or 0 with why filled when
 * the change has no exact inverse (a USING expression, a key whose type changed) or a
 * step failed (the savepoint rolled back: the swap goes on without a window). Never fails
 * the swap.
 */
int64_t osc_window_open(PGconn *c, const osc_map *m, const char *old_name, char *why, size_t len);

/*
 * osc_window_close — end the revert windows waiting on table table_oid (a new change of
 * the table makes them useless: REVERT is refused after a later change): their capture
 * dropped (osc_mig_cleanup, the old tables kept), state aborted with the reason. Failures
 * are logged; the window then stays, and REVERT refuses anyway.
 */
void osc_window_close(PGconn *c, unsigned table_oid, int lock_timeout_ms);

#endif
