/*
 * osc_migrate.h — versioned migration files run online (issue 15): the console's MIGRATE
 * command (osc_migrate_cmd.h) applied on one database. The engine owns the state, in
 * pgcutover.schema_migrations (one row per version; a repeatable's key is 'R__' || name):
 * each file is split into steps with libpg_query (osc_split.h), each step run through
 * the strategies' planner as the console user (osc_engine_statement; statements that are
 * not DDL run as they are, outside the hold), and the row checkpointed after each step.
 *
 * Exactly once: every migration row a step makes carries the step's source ("migrate up
 * <version> run <n> step <k>", pgcutover.migrations.source, set through the session
 * setting pgcutover.source, so it is written in the step's own transaction). A step whose
 * source already has a done row was done, even if the checkpoint after it was lost; one
 * with a live row (a copy resuming after a restart, a build) is waited for; one with only
 * failed rows, or none, runs. `run` counts fresh starts of the version (a new up after a
 * down), so an old run's rows never count for a new one.
 *
 * One runner per database: a session advisory lock (OSC_LOCK_CLASS, -1) held by the
 * command's connection for its whole length; a second MIGRATE UP/DOWN/ADOPT gets 55006 at
 * once (the client waits and retries, saying so).
 */
#ifndef OSC_MIGRATE_H
#define OSC_MIGRATE_H

#include <libpq-fe.h>

#include "osc_migrate_cmd.h"
#include "osc_result.h"

/*
 * osc_migrate_command — run the parsed command m for console user `user` on c (a
 * connection to db owned by the console command). Answers:
 *   UP / DOWN  one row per version run (version, name, state, steps, strategies,
 *              duration_ms); the first failure ends the command with the step's own
 *              SQLSTATE and "version V (name), line N: message" (the row says failed).
 *   STATUS     one row per version: of the files in order, then rows without a file.
 *   PLAN       PLAN's rows for every step of every pending version, prefixed with the
 *              version, its name and the step's line; changes nothing.
 * Errors: 55006 (object_in_use) another runner, 55000 drift / out-of-order / an unfinished down / no down
 * file, 0A000 a step that cannot run (a copy inside a BEGIN … COMMIT block, …), 42601 a file
 * that does not parse.
 */
void osc_migrate_command(PGconn *c, const char *db, const char *user, const osc_mcmd *m,
                         osc_result *r);

/*
 * osc_migrate_lock — take the database's runner lock (a session advisory lock,
 * OSC_LOCK_CLASS, -1) on c, held until c closes: what MIGRATE UP, DOWN and ADOPT run
 * under. false with r an error (55006, naming db) when another runner holds it.
 */
bool osc_migrate_lock(PGconn *c, const char *db, osc_result *r);

/* osc_migrate_checksum — the checksum recorded for a file's text: SHA-256 (OpenSSL EVP),
 * 64 lowercase hex digits and a NUL into out ("" if OpenSSL fails). */
void osc_migrate_checksum(const char *text, char out[65]);

#endif
