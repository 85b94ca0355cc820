/*
 * osc_db.h — the engine's libpq plumbing and its durable state (DESIGN.md §2):
 * connections to the target database, small query helpers with errors into a caller's
 * buffer, and the bookkeeping schema "pgcutover" (created on first use):
 *   pgcutover.migrations         one row per migration: statement, state, phase, names,
 *                                key, checkpoint, counts, settings, per-phase times, error
 *   pgcutover.migration_columns  the column map (osc_sql.h), written with the shadow
 *   pgcutover.m<id>_log          a migration's change log (osc_sql.h), beside its shadow
 * A partial unique index on migrations(table_oid) allows one live migration per table.
 */
#ifndef OSC_DB_H
#define OSC_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "osc_engine.h"
#include "osc_sql.h"

/* The hooks given to osc_engine_start (never NULL after it). */
extern osc_engine_hooks osc_hooks;

/* osc_log — one log line through the hooks (printf-style). */
void osc_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * osc_connect — a new connection to database db with migration_conninfo (or
 * server_host/server_port) and application_name app, under the proxy's TLS policy
 * (server_tls_mode / server_tls_ca_file; the stronger sslmode wins over the conninfo's,
 * see conf_tls.h). NULL with err filled on failure; err never holds the conninfo's
 * password. The caller PQfinish'es it.
 */
PGconn *osc_connect(const char *db, const char *app, char *err, size_t errlen);

/*
 * osc_exec — run sql with text parameters (nparams, values may be NULL = SQL NULL).
 * Returns the result when its status is COMMAND_OK or TUPLES_OK (caller PQclear's it),
 * else NULL with "message" in err and the SQLSTATE in sqlstate (when not NULL; "08006"
 * when the connection is gone).
 */
PGresult *osc_exec(PGconn *c, const char *sql, int nparams, const char *const *values, char *err,
                   size_t errlen, char sqlstate[6]);
/* osc_run — osc_exec and PQclear; true on success. */
bool osc_run(PGconn *c, const char *sql, int nparams, const char *const *values, char *err,
             size_t errlen, char sqlstate[6]);

/* osc_state_ensure — create the bookkeeping schema and tables if missing (serialized by
 * a transaction-level advisory lock, so concurrent first uses do not collide), add the
 * columns of later releases, and refuse (osc_state_trusted) a schema someone else owns. */
bool osc_state_ensure(PGconn *c, char *err, size_t errlen);
/*
 * osc_back_off — sleep *ms (milliseconds) plus up to half of it again (jitter, so that the
 * retries of several sessions do not meet in step), then double *ms up to 3 s.
 */
void osc_back_off(int *ms);

/*
 * osc_run_locked — BEGIN; SET LOCAL lock_timeout = lock_timeout_ms; sql (nparams text
 * values); COMMIT — under the proxy's hold when hold (a lock that writers would queue
 * behind), up to `attempts` times with osc_back_off after a lock timeout (55P03, logged);
 * rolled back on failure. The path every lock on a live table takes (DESIGN.md §2). false
 * with err/code on any other error, or after the last attempt (" (gave up after n
 * attempts)" appended to err).
 */
bool osc_run_locked(PGconn *c, const char *sql, int nparams, const char *const *values, bool hold,
                    int lock_timeout_ms, int attempts, char *err, size_t errlen, char code[6]);

/* osc_state_trusted — false with 42501 in code and err saying what to do when schema
 * pgcutover or one of its state tables exists and is owned by neither the connection's
 * role nor a superuser (a role with CREATE on the database could have made them, with
 * triggers of its own, before the first migration). */
bool osc_state_trusted(PGconn *c, char *err, size_t errlen, char code[6]);
/* osc_state_exists — whether pgcutover's state exists in c's database and is trusted
 * (osc_state_trusted): a squatted schema counts as none, so nothing reads it. */
bool osc_state_exists(PGconn *c);

/*
 * osc_state_set — record a state change before it takes effect: state, phase (may be
 * NULL = unchanged), error (may be NULL = unchanged), and now() under phase_at[state].
 */
bool osc_state_set(PGconn *c, int64_t id, const char *state, const char *phase, const char *error,
                   char *err, size_t errlen);

/* osc_map_load — the column map of migration id from migration_columns and the
 * migrations row. On success the caller osc_map_free's *m. */
bool osc_map_load(PGconn *c, int64_t id, osc_map *m, char *err, size_t errlen);
/* osc_map_save — write m's columns into migration_columns (inside the caller's
 * transaction). */
bool osc_map_save(PGconn *c, const osc_map *m, char *err, size_t errlen);

/* The advisory lock key pair a migration's driver holds on its session. */
#define OSC_LOCK_CLASS 0x70676375 /* "pgcu" */
#define OSC_LOCK_CLASS_SQL "1885823861" /* OSC_LOCK_CLASS in SQL text */

#endif
