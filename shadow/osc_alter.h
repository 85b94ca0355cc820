/*
 * osc_alter.h — internal to the engine (osc_engine.c): the console's ALTER TABLE and
 * PLAN. Both start with the trial: osc_plan_check reads the statement and checks the
 * table as the console user, then the ALTER is tried on an empty shadow in a
 * transaction that is rolled back (osc_plan_shadow), so every refusal comes before
 * anything is recorded. Both block (libpq) on c, the console's connection to its
 * database; the answer (rows and tag, or an error with SQLSTATE) goes into *r, which
 * the caller initialised and releases (osc_result_free).
 */
#ifndef OSC_ALTER_H
#define OSC_ALTER_H

#include <libpq-fe.h>
#include <stdint.h>

#include "osc_result.h"

/*
 * osc_alter_start — ALTER TABLE … for user: the trial, refused with 55000 when a
 * migration of the table is live; then either run it as it is (strategy instant with
 * instant_ddl = on, osc_strategy_instant) or record a pending copy migration in
 * pgcutover.migrations (created or upgraded first, osc_state_ensure) with the settings
 * in force, and answer one row (id int8, table text, state text), tag ALTER TABLE.
 * Returns the id of the migration recorded, which the caller must start a driver for;
 * 0 when none was (run instant, or refused/failed: the error in *r).
 */
int64_t osc_alter_start(PGconn *c, const char *user, const char *sql, osc_result *r);

/*
 * osc_alter_plan — PLAN ALTER TABLE … for user: the trial (nothing is recorded or
 * changed), then the rows (step int8, phase text, description text, sql text) of what a
 * start would do — check, strategy, and for a copy the shadow, change log, triggers,
 * backfill, apply, verify and cutover steps with the SQL the engine would run, built
 * with the settings in force — then warnings; tag PLAN. Errors as the trial's.
 */
void osc_alter_plan(PGconn *c, const char *user, const char *sql, osc_result *r);

#endif
