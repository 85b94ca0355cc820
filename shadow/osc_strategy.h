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

#endif
