/* osc_db.c — see osc_db.h. */
#include "osc_db.h"

#include "conf_mask.h"
#include "conf_tls.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

osc_engine_hooks osc_hooks;

void osc_log(int level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (osc_hooks.log)
        osc_hooks.log(level, line);
    else
        fprintf(stderr, "%s\n", line);
}

/* NOTICEs ("schema … already exists, skipping") are expected; only debug logs them. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    osc_log(CONF_LOG_DEBUG, "engine notice: %.*s", (int)strcspn(message, "\n"), message);
}

PGconn *osc_connect(const char *db, const char *app, char *err, size_t errlen)
{
    conf_t c = {0};
    if (osc_hooks.settings == NULL || !osc_hooks.settings(&c)) {
        snprintf(err, errlen, "settings unavailable");
        return NULL;
    }
    /* libpq's parse errors quote pieces of the string, which may be the password. */
    char reason[300];
    if (*c.migration_conninfo && !conf_conninfo_check(c.migration_conninfo, reason, sizeof reason)) {
        snprintf(err, errlen, "migration_conninfo: %s", reason);
        conf_free(&c);
        return NULL;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", c.server_port);
    bool own = *c.migration_conninfo == 0;
    /* The proxy's TLS policy (server_tls_mode, server_tls_ca_file) for this connection
     * too, and the pinned search_path (the engine's own SQL resolves names in pg_catalog
     * only, README "Security model"); listed after the conninfo so that they override it
     * (conf_tls.h). */
    conf_libpq_tls tls;
    conf_libpq_tls_for(&c, c.migration_conninfo, &tls);
    const char *keys[] = {"dbname",          "host",    "port",        "dbname",  "application_name",
                          "connect_timeout", "sslmode", "sslrootcert", "options", NULL};
    const char *vals[] = {c.migration_conninfo, own ? c.server_host : "", own ? port : "", db,
                          app, "10", tls.sslmode, tls.sslrootcert, "-c search_path=pg_catalog,pg_temp",
                          NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to database \"%s\": %s", db,
                 conn ? PQerrorMessage(conn) : "out of memory");
        size_t n = strlen(err);
        while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = 0;
        conf_mask_in_text(err, errlen, c.migration_conninfo); /* never echo a password */
        PQfinish(conn);
        conf_free(&c);
        return NULL;
    }
    conf_free(&c);
    PQsetNoticeProcessor(conn, quiet_notice, NULL);
    return conn;
}

PGresult *osc_exec(PGconn *c, const char *sql, int nparams, const char *const *values, char *err,
                   size_t errlen, char sqlstate[6])
{
    /* Without parameters, PQexec: it also runs several ;-separated statements. */
    PGresult *r = nparams == 0 ? PQexec(c, sql) : PQexecParams(c, sql, nparams, NULL, values, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (msg == NULL)
        msg = PQerrorMessage(c);
    snprintf(err, errlen, "%s", msg);
    size_t n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = 0;
    if (sqlstate)
        snprintf(sqlstate, 6, "%s", code ? code : PQstatus(c) == CONNECTION_OK ? "XX000" : "08006");
    PQclear(r);
    return NULL;
}

void osc_back_off(int *ms)
{
    int wait = *ms + rand() % (*ms / 2 + 1);
    struct timespec ts = {wait / 1000, (long)(wait % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    if (*ms < 3000)
        *ms *= 2;
}

bool osc_run_locked(PGconn *c, const char *sql, int nparams, const char *const *values, bool hold,
                    int lock_timeout_ms, int attempts, char *err, size_t errlen, char code[6])
{
    char lt[64];
    snprintf(lt, sizeof lt, "SET LOCAL lock_timeout = %d", lock_timeout_ms);
    int backoff_ms = 100;
    for (int a = 1; a <= attempts; a++) {
        if (hold)
            osc_hooks.hold();
        bool ok = osc_run(c, "BEGIN", 0, NULL, err, errlen, code) &&
                  osc_run(c, lt, 0, NULL, err, errlen, code) &&
                  osc_run(c, sql, nparams, values, err, errlen, code) &&
                  osc_run(c, "COMMIT", 0, NULL, err, errlen, code);
        if (hold)
            osc_hooks.release();
        if (ok)
            return true;
        PQclear(PQexec(c, "ROLLBACK"));
        if (strcmp(code, "55P03") != 0 || PQstatus(c) != CONNECTION_OK)
            return false;
        osc_log(CONF_LOG_WARNING, "lock_timeout (%d ms) on attempt %d/%d: %s; backing off %d ms",
                lock_timeout_ms, a, attempts, err, backoff_ms);
        osc_back_off(&backoff_ms);
    }
    snprintf(err + strlen(err), errlen - strlen(err), " (gave up after %d attempts)", attempts);
    return false;
}

bool osc_run(PGconn *c, const char *sql, int nparams, const char *const *values, char *err,
             size_t errlen, char sqlstate[6])
{
    PGresult *r = osc_exec(c, sql, nparams, values, err, errlen, sqlstate);
    PQclear(r);
    return r != NULL;
}

/* The statement a migration row was made for, when `pgcutover migrate` ran it: the
 * runner sets pgcutover.source on its connection before each statement, so every
 * strategy's INSERT (in the statement's own transaction) records it without knowing
 * (osc_migrate.c). */
#define OSC_SOURCE_DEFAULT "nullif(current_setting('pgcutover.source', true), '')"

/* Versions applied by `pgcutover migrate` (osc_migrate.c): one row per version (a
 * repeatable's key is 'R__' || name), checkpointed after each statement. */
#define SCHEMA_MIGRATIONS_DDL                                                                      \
    "CREATE TABLE IF NOT EXISTS pgcutover.schema_migrations (\n"                                  \
    "  version text PRIMARY KEY,\n"                                                               \
    "  name text NOT NULL,\n"                                                                     \
    "  layout text NOT NULL,\n"                                                                   \
    "  repeatable bool NOT NULL DEFAULT false,\n"                                                 \
    "  checksum text NOT NULL,\n"                                                                 \
    "  state text NOT NULL,\n"                                                                    \
    "  direction text NOT NULL DEFAULT 'up',\n"                                                   \
    "  statements_done int NOT NULL DEFAULT 0,\n"                                                 \
    "  statements_total int NOT NULL,\n"                                                          \
    "  strategies text[] NOT NULL DEFAULT '{}',\n"                                                \
    "  migration_ids bigint[] NOT NULL DEFAULT '{}',\n"                                           \
    "  started_at timestamptz NOT NULL DEFAULT now(),\n"                                          \
    "  finished_at timestamptz,\n"                                                                \
    "  duration_ms float8,\n"                                                                     \
    "  applied_by name NOT NULL,\n"                                                               \
    "  error text,\n"                                                                             \
    "  error_line int,\n"                                                                         \
    "  run int NOT NULL DEFAULT 1\n"                                                              \
    ");\n"

/* One live migration per table; a revert window (revert_of, osc_window.h) waits beside
 * the table without holding it. */
#define ONE_LIVE_DDL                                                                               \
    "CREATE UNIQUE INDEX IF NOT EXISTS migrations_one_live ON pgcutover.migrations (table_oid)\n"  \
    "  WHERE state NOT IN ('done', 'failed', 'aborted') AND revert_of IS NULL;\n"

static const char state_ddl[] =
    "BEGIN;\n"
    "SELECT pg_advisory_xact_lock(1885823861, 0);\n"
    "CREATE SCHEMA IF NOT EXISTS pgcutover;\n"

    "COMMENT ON SCHEMA pgcutover IS 'pgcutover: online schema change state and shadow tables';\n"
    "CREATE TABLE IF NOT EXISTS pgcutover.migrations (\n"
    "  id bigserial PRIMARY KEY,\n"
    "  table_schema name NOT NULL,\n"
    "  table_name name NOT NULL,\n"
    "  table_oid oid NOT NULL,\n"
    "  statement text NOT NULL,\n"
    "  state text NOT NULL DEFAULT 'pending',\n"
    "  phase text NOT NULL DEFAULT '',\n"
    "  shadow_schema name NOT NULL DEFAULT 'pgcutover',\n"
    "  shadow_name name,\n"
    "  old_name name,\n"
    "  key_columns text,\n"
    "  checkpoint text[],\n"
    "  max_key text[],\n"
    "  key_ops name,\n"
    "  shadow_key_ops name,\n"
    "  key_coll_changed bool NOT NULL DEFAULT false,\n"
    "  post_commit text,\n"
    "  strategy text NOT NULL DEFAULT 'copy',\n"
    "  rows_copied bigint NOT NULL DEFAULT 0,\n"
    "  rows_estimated bigint,\n"
    "  settings jsonb NOT NULL DEFAULT '{}',\n"
    "  phase_at jsonb NOT NULL DEFAULT '{}',\n"
    "  created_at timestamptz NOT NULL DEFAULT now(),\n"
    "  updated_at timestamptz NOT NULL DEFAULT now(),\n"
    "  error text,\n"
    "  cutover_attempts int,\n"
    "  cutover_hold_ms float8,\n"
    "  cutover_lock_ms float8,\n"
    "  cutover_max_wait_ms float8,\n"
    "  started_by name NOT NULL DEFAULT current_user,\n"
    "  source text DEFAULT " OSC_SOURCE_DEFAULT ",\n"
    "  revert_of bigint\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS migrations_source ON pgcutover.migrations (source) WHERE source IS NOT NULL;\n"
    SCHEMA_MIGRATIONS_DDL
    ONE_LIVE_DDL
    "CREATE TABLE IF NOT EXISTS pgcutover.migration_columns (\n"
    "  migration_id bigint NOT NULL REFERENCES pgcutover.migrations ON DELETE CASCADE,\n"
    "  ord int NOT NULL,\n"
    "  name text NOT NULL,\n"
    "  type text NOT NULL,\n"
    "  expr text,\n"
    "  identity_always bool NOT NULL DEFAULT false,\n"
    "  key_ord int,\n"
    "  key_name text,\n"
    "  key_type text,\n"
    "  PRIMARY KEY (migration_id, ord)\n"
    ");\n"
    "COMMIT;";

bool osc_state_exists(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT to_regclass('pgcutover.migration_columns') IS NOT NULL");
    bool yes = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
               strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    char err[512], code[6];
    return yes && osc_state_trusted(c, err, sizeof err, code);
}

/* Objects that decide what the engine does, owned by neither the engine's role nor a
 * superuser: schema pgcutover itself and its state tables. */
static const char untrusted_sql[] =
    "WITH me AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user), "
    "trusted AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolsuper UNION SELECT oid FROM me) "
    "SELECT 'schema pgcutover', pg_catalog.pg_get_userbyid(n.nspowner) FROM pg_catalog.pg_namespace n "
    "WHERE n.nspname = 'pgcutover' AND n.nspowner NOT IN (SELECT oid FROM trusted) "
    "UNION ALL SELECT 'table pgcutover.' || c.relname, pg_catalog.pg_get_userbyid(c.relowner) "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'pgcutover' AND c.relname IN ('migrations', 'migration_columns', "
    "'trigger_errors', 'migrations_id_seq', 'schema_migrations') AND c.relowner NOT IN "
    "(SELECT oid FROM trusted)";

bool osc_state_trusted(PGconn *c, char *err, size_t errlen, char code[6])
{
    PGresult *r = osc_exec(c, untrusted_sql, 0, NULL, err, errlen, code);
    if (r == NULL)
        return false;
    bool ok = PQntuples(r) == 0;
    if (!ok) {
        snprintf(err, errlen, "%s is owned by role \"%s\", not by pgcutover's role or a "
                              "superuser, so pgcutover will not use it: drop it or give it to "
                              "pgcutover's role (ALTER … OWNER TO), then try again",
                 PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
        snprintf(code, 6, "42501");
    }
    PQclear(r);
    return ok;
}

/* Columns added to an existing state after its first release. */
static const char state_upgrade[] =
    "BEGIN; SELECT pg_advisory_xact_lock(1885823861, 0);\n"
    "ALTER TABLE pgcutover.migrations ADD COLUMN IF NOT EXISTS key_ops name, "
    "ADD COLUMN IF NOT EXISTS shadow_key_ops name, "
    "ADD COLUMN IF NOT EXISTS key_coll_changed bool NOT NULL DEFAULT false, "
    "ADD COLUMN IF NOT EXISTS post_commit text, "
    "ADD COLUMN IF NOT EXISTS strategy text NOT NULL DEFAULT 'copy', "
    "ADD COLUMN IF NOT EXISTS source text DEFAULT " OSC_SOURCE_DEFAULT ", "
    "ADD COLUMN IF NOT EXISTS revert_of bigint;\n"
    "DROP INDEX IF EXISTS pgcutover.migrations_one_live;\n" ONE_LIVE_DDL
    "CREATE INDEX IF NOT EXISTS migrations_source ON pgcutover.migrations (source) WHERE source IS NOT NULL;\n"
    SCHEMA_MIGRATIONS_DDL "COMMIT;";

bool osc_state_ensure(PGconn *c, char *err, size_t errlen)
{
    char code[6];
    if (!osc_state_trusted(c, err, errlen, code))
        return false;
    if (osc_state_exists(c)) {
        PGresult *u = PQexec(c, "SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = "
                                "'pgcutover.migrations'::pg_catalog.regclass AND attname = 'revert_of'");
        bool current = u && PQresultStatus(u) == PGRES_TUPLES_OK && PQntuples(u) == 1;
        PQclear(u);
        if (current || osc_run(c, state_upgrade, 0, NULL, err, errlen, code))
            return true;
        PQclear(PQexec(c, "ROLLBACK"));
        return false;
    }
    PGresult *r = PQexec(c, state_ddl);
    bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        snprintf(err, errlen, "cannot create schema pgcutover: %s", PQerrorMessage(c));
        PQclear(PQexec(c, "ROLLBACK"));
    }
    PQclear(r);
    return ok && osc_state_trusted(c, err, errlen, code);
}

bool osc_state_set(PGconn *c, int64_t id, const char *state, const char *phase, const char *error,
                   char *err, size_t errlen)
{
    char ids[32];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *v[] = {ids, state, phase, error};
    return osc_run(c,
                   "UPDATE pgcutover.migrations SET state = $2, phase = coalesce($3, phase), "
                   "error = coalesce($4, error), updated_at = now(), "
                   "phase_at = phase_at || jsonb_build_object($2::text, now()) WHERE id = $1",
                   4, v, err, errlen, NULL);
}

static char *dup_value(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

/* What a revert window's writes must fit (osc_col.from_type, not_null, needs_value), from
 * the catalog of its original (the live table) and its shadow (the old table: the table
 * the migration it reverts recorded, found by oid before and after the swap), for m's
 * columns in order. False with err (m freed) when the query fails. */
static const char window_fit_sql[] =
    "SELECT CASE WHEN s.atttypid <> d.atttypid OR s.atttypmod <> d.atttypmod THEN "
    "  pg_catalog.format_type(s.atttypid, s.atttypmod) END, "
    "  coalesce(d.attnotnull AND NOT s.attnotnull, false), "
    "  coalesce(d.attnotnull AND NOT d.atthasdef AND d.attidentity = '' AND c.expr IS NULL, false) "
    "FROM pgcutover.migrations m JOIN pgcutover.migration_columns c ON c.migration_id = m.id "
    "LEFT JOIN pg_catalog.pg_attribute d ON d.attrelid = (SELECT f.table_oid FROM "
    "  pgcutover.migrations f WHERE f.id = m.revert_of) AND d.attname = c.name AND NOT "
    "  d.attisdropped "
    "LEFT JOIN pg_catalog.pg_attribute s ON s.attrelid = m.table_oid AND s.attnum > 0 AND NOT "
    "  s.attisdropped AND c.expr = '\"' || pg_catalog.replace(s.attname, '\"', '\"\"') || '\"' "
    "WHERE m.id = $1 ORDER BY c.ord";

/* The CHECK constraints of a window's shadow (the old table, NOT VALID ones too: they
 * hold for new writes) whose expression the original has in none of its own: name and
 * pg_get_expr (schema-qualified under the engine's search_path). */
static const char window_checks_sql[] =
    "SELECT o.conname, pg_catalog.pg_get_expr(o.conbin, o.conrelid) FROM pgcutover.migrations m "
    "JOIN pg_catalog.pg_constraint o ON o.conrelid = (SELECT f.table_oid FROM "
    "  pgcutover.migrations f WHERE f.id = m.revert_of) AND o.contype = 'c' "
    "WHERE m.id = $1 AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint n WHERE n.conrelid = "
    "  m.table_oid AND n.contype = 'c' AND pg_catalog.pg_get_expr(n.conbin, n.conrelid) = "
    "  pg_catalog.pg_get_expr(o.conbin, o.conrelid)) ORDER BY o.conname";

static bool window_fit(PGconn *c, const char *ids, osc_map *m, char *err, size_t errlen)
{
    const char *v[] = {ids};
    PGresult *r = osc_exec(c, window_fit_sql, 1, v, err, errlen, NULL);
    if (r == NULL || PQntuples(r) != m->ncols) {
        if (r)
            snprintf(err, errlen, "migration %s: its column map does not match its tables", ids);
        PQclear(r);
        osc_map_free(m);
        return false;
    }
    for (int i = 0; i < m->ncols; i++) {
        m->cols[i].from_type = dup_value(r, i, 0);
        m->cols[i].not_null = PQgetvalue(r, i, 1)[0] == 't';
        m->cols[i].needs_value = PQgetvalue(r, i, 2)[0] == 't';
    }
    PQclear(r);
    r = osc_exec(c, window_checks_sql, 1, v, err, errlen, NULL);
    if (r == NULL) {
        osc_map_free(m);
        return false;
    }
    m->nchecks = PQntuples(r);
    m->checks = calloc(2 * (size_t)m->nchecks + 1, sizeof *m->checks);
    for (int k = 0; m->checks && k < m->nchecks; k++) {
        m->checks[2 * k] = dup_value(r, k, 0);
        m->checks[2 * k + 1] = dup_value(r, k, 1);
    }
    PQclear(r);
    if (m->checks == NULL) {
        snprintf(err, errlen, "out of memory");
        osc_map_free(m);
        return false;
    }
    return true;
}

bool osc_map_load(PGconn *c, int64_t id, osc_map *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    char ids[32];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *v[] = {ids};
    PGresult *r = osc_exec(c,
                           "SELECT table_schema, table_name, shadow_schema, shadow_name, key_ops, "
                           "shadow_key_ops, (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE "
                           "oid = table_oid), key_coll_changed, revert_of IS NOT NULL FROM "
                           "pgcutover.migrations WHERE id = $1",
                           1, v, err, errlen, NULL);
    if (r == NULL)
        return false;
    if (PQntuples(r) != 1 || PQgetisnull(r, 0, 3)) {
        snprintf(err, errlen, "migration %s has no shadow table recorded", ids);
        PQclear(r);
        return false;
    }
    m->id = id;
    m->schema = dup_value(r, 0, 0);
    m->table = dup_value(r, 0, 1);
    m->shadow_schema = dup_value(r, 0, 2);
    m->shadow_table = dup_value(r, 0, 3);
    m->key_ops = dup_value(r, 0, 4);
    m->shadow_key_ops = dup_value(r, 0, 5);
    m->owner = dup_value(r, 0, 6);
    m->key_coll_changed = PQgetvalue(r, 0, 7)[0] == 't';
    m->window = PQgetvalue(r, 0, 8)[0] == 't';
    PQclear(r);
    r = osc_exec(c,
                 "SELECT name, type, expr, identity_always, key_ord, key_name, key_type FROM "
                 "pgcutover.migration_columns WHERE migration_id = $1 ORDER BY ord",
                 1, v, err, errlen, NULL);
    if (r == NULL) {
        osc_map_free(m);
        return false;
    }
    m->ncols = PQntuples(r);
    m->cols = calloc((size_t)m->ncols + 1, sizeof *m->cols);
    for (int i = 0; m->cols && i < m->ncols; i++) {
        m->cols[i].name = dup_value(r, i, 0);
        m->cols[i].type = dup_value(r, i, 1);
        m->cols[i].expr = dup_value(r, i, 2);
        m->cols[i].identity_always = strcmp(PQgetvalue(r, i, 3), "t") == 0;
        if (!PQgetisnull(r, i, 4)) {
            int k = atoi(PQgetvalue(r, i, 4));
            if (k >= 0 && k < OSC_MAX_KEYS) {
                m->key_name[k] = dup_value(r, i, 5);
                m->key_type[k] = dup_value(r, i, 6);
                m->key_col[k] = i;
                if (k + 1 > m->nkeys)
                    m->nkeys = k + 1;
            }
        }
    }
    PQclear(r);
    if (m->cols == NULL || m->nkeys == 0) {
        snprintf(err, errlen, "migration %s has no column map", ids);
        osc_map_free(m);
        return false;
    }
    return !m->window || window_fit(c, ids, m, err, errlen);
}

bool osc_map_save(PGconn *c, const osc_map *m, char *err, size_t errlen)
{
    char ids[32], ord[16], kord[16];
    snprintf(ids, sizeof ids, "%" PRId64, m->id);
    for (int i = 0; i < m->ncols; i++) {
        int key = -1;
        for (int k = 0; k < m->nkeys; k++)
            if (m->key_col[k] == i)
                key = k;
        snprintf(ord, sizeof ord, "%d", i);
        snprintf(kord, sizeof kord, "%d", key);
        const osc_col *col = &m->cols[i];
        const char *v[] = {ids, ord, col->name, col->type, col->expr,
                           col->identity_always ? "t" : "f", key >= 0 ? kord : NULL,
                           key >= 0 ? m->key_name[key] : NULL, key >= 0 ? m->key_type[key] : NULL};
        if (!osc_run(c,
                     "INSERT INTO pgcutover.migration_columns (migration_id, ord, name, type, "
                     "expr, identity_always, key_ord, key_name, key_type) VALUES ($1, $2, $3, $4, "
                     "$5, $6, $7, $8, $9)",
                     9, v, err, errlen, NULL))
            return false;
    }
    return true;
}
