/* osc_strategy.c — see osc_strategy.h. */
#include "osc_strategy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "osc_db.h"
#include "osc_rights.h"
#include "osc_warn.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* What a statement run under the hold is about (the table, or nothing for a direct
 * statement: oid "0"). */
typedef struct {
    const char *strategy, *schema, *table, *oid;
} held_target;

/* The row (id, table, state done, strategy) a finished statement answers. */
static void answer(osc_result *r, int64_t id, const held_target *tg, const char *tag)
{
    osc_result_col(r, "id", OSC_T_INT8);
    osc_result_col(r, "table", OSC_T_TEXT);
    osc_result_col(r, "state", OSC_T_TEXT);
    osc_result_col(r, "strategy", OSC_T_TEXT);
    char ids[32], table[300];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    snprintf(table, sizeof table, "%s%s%s", tg->schema, *tg->schema ? "." : "", tg->table);
    const char *rowv[] = {ids, table, "done", tg->strategy};
    osc_result_row(r, rowv);
    snprintf(r->tag, sizeof r->tag, "%s", tag);
}

/* The migration row of a statement run under the hold, in state (done or failed). */
static const char record_sql[] =
    "INSERT INTO pgcutover.migrations (table_schema, table_name, table_oid, statement, "
    "started_by, strategy, state, phase, error, cutover_attempts, cutover_hold_ms, "
    "cutover_lock_ms, phase_at) VALUES ($1, $2, $3, $4, $5, $11, $6, $7, $8, $9, $10, "
    "$10, jsonb_build_object($6::text, now())) RETURNING id";

static PGresult *record(PGconn *c, const held_target *t, const char *sql, const char *user,
                        const char *state, const char *phase, const char *error, int attempts,
                        double hold_ms, char *err, size_t errlen, char code[6])
{
    char att[16], hold[32];
    snprintf(att, sizeof att, "%d", attempts);
    snprintf(hold, sizeof hold, "%.3f", hold_ms);
    const char *v[] = {t->schema, t->table, t->oid, sql, user, state, phase, error, att, hold,
                       t->strategy};
    return osc_exec(c, record_sql, 11, v, err, errlen, code);
}

/* sql as `user` under the hold, with lock_timeout and jittered retries, recorded in the same
 * transaction in state (osc_strategy_instant's contract, for any strategy that runs that
 * way). Returns the migration's id; answers *r with its row when tag is not NULL (else the
 * caller does); 0 with the error in *r on failure. */
static int64_t run_held(PGconn *c, const char *user, const char *sql, const held_target *tg,
                        const conf_t *s, const char *state, const char *tag, osc_result *r)
{
    char err[1024] = "", code[6] = "", lt[64];
    char *path = osc_rights_user_path(user);
    if (path == NULL || !osc_state_ensure(c, err, sizeof err) ||
        !osc_rights_executor(c, OSC_AS_USER, user, err, sizeof err, code)) {
        osc_result_error(r, *code ? code : "XX000", NULL, "%s", path ? err : "out of memory");
        free(path);
        return 0;
    }
    snprintf(lt, sizeof lt, "BEGIN; SET LOCAL lock_timeout = %d", s->lock_timeout_ms);
    const char *v[] = {sql, path};
    int attempts = s->cutover_attempts > 0 ? s->cutover_attempts : 1, a, backoff_ms = 100;
    int64_t id = 0;
    double hold_ms = 0;
    bool ok = false;
    for (a = 1; a <= attempts && !ok; a++) {
        osc_hooks.hold();
        double t0 = now_ms();
        ok = osc_run(c, lt, 0, NULL, err, sizeof err, code) &&
             osc_run(c, "SELECT pg_temp." OSC_AS_USER "($1, ARRAY[]::text[], false, $2)", 2, v, err,
                     sizeof err, code);
        PGresult *row = NULL;
        if (ok) {
            hold_ms = now_ms() - t0;
            char phase[400];
            snprintf(phase, sizeof phase, "%s: run under the proxy's hold on attempt %d", tg->strategy, a);
            row = record(c, tg, sql, user, state, phase, NULL, a, hold_ms, err, sizeof err, code);
            ok = row != NULL && osc_run(c, "COMMIT", 0, NULL, err, sizeof err, code);
            if (ok)
                id = strtoll(PQgetvalue(row, 0, 0), NULL, 10);
            PQclear(row);
        }
        if (!ok)
            PQclear(PQexec(c, "ROLLBACK"));
        osc_hooks.release();
        if (ok || strcmp(code, "55P03") != 0 || PQstatus(c) != CONNECTION_OK || a == attempts)
            break;
        osc_log(CONF_LOG_WARNING, "%s %s.%s: lock_timeout (%d ms) on attempt %d/%d: %s; "
                                  "backing off",
                tg->strategy, tg->schema, tg->table, s->lock_timeout_ms, a, attempts, err);
        osc_back_off(&backoff_ms);
    }
    free(path);
    if (!ok) {
        char why[1200];
        snprintf(why, sizeof why, "%s%s", err, strcmp(code, "55P03") == 0 ? " (lock_timeout on every attempt)" : "");
        char rerr[256], rcode[6];
        PQclear(record(c, tg, sql, user, "failed", "not run", why, a, 0, rerr, sizeof rerr, rcode));
        osc_log(CONF_LOG_ERROR, "%s %s.%s: failed: %s", tg->strategy, tg->schema, tg->table, why);
        osc_result_error(r, code, strcmp(code, "55P03") == 0 ? "a session holds a lock for longer "
                         "than lock_timeout_ms; try again, or raise lock_timeout_ms" : NULL, "%s", why);
        return 0;
    }
    osc_log(CONF_LOG_INFO, "m%" PRId64 " %s%s%s: %s — %s, attempt %d, hold %.3f ms: %s", id,
            tg->schema, *tg->schema ? "." : "", tg->table, state, tg->strategy, a, hold_ms, sql);
    if (tag == NULL)
        return id;
    answer(r, id, tg, tag);
    return id;
}


void osc_strategy_instant(PGconn *c, const char *user, const char *sql, const osc_plan *p,
                          const conf_t *s, osc_result *r)
{
    char oid[16];
    snprintf(oid, sizeof oid, "%u", p->table_oid);
    held_target t = {"instant", p->map.schema, p->map.table, oid};
    run_held(c, user, sql, &t, s, "done", "ALTER TABLE", r);
}

/* One statement as `user` through the executor, the osc_run_locked way (under the hold
 * when hold); not recorded. */
static bool run_retried(PGconn *c, const char *user, const char *sql, bool hold, const conf_t *s,
                        char *err, size_t errlen, char code[6])
{
    char *path = osc_rights_user_path(user);
    const char *v[] = {sql, path};
    bool ok = path && osc_run_locked(c, "SELECT pg_temp." OSC_AS_USER "($1, ARRAY[]::text[], false, $2)",
                                     2, v, hold, s->lock_timeout_ms, s->cutover_attempts, err,
                                     errlen, code);
    free(path);
    return ok;
}

void osc_strategy_validate(PGconn *c, const char *user, const char *sql, const osc_plan *p,
                           const conf_t *s, osc_result *r)
{
    char err[1024], code[6] = "", oid[16];
    snprintf(oid, sizeof oid, "%u", p->table_oid);
    /* A lone SET NOT NULL: a helper CHECK (col IS NOT NULL) instead, NOT VALID; once it is
     * valid, SET NOT NULL needs no scan and the helper goes (PostgreSQL 12+). */
    const char *nn_col = p->stmt.ncmds == 1 && p->stmt.cmds[0].sets_not_null ? p->stmt.cmds[0].column : NULL;
    char *not_valid = NULL, *finish = NULL;
    if (nn_col) {
        osc_sb b = {0}, f = {0}, cn = {0};
        osc_sb_addf(&cn, "pgcutover_nn_%.40s", nn_col);
        char *name = osc_sb_take(&cn);
        osc_sb_addf(&b, "ALTER TABLE ");
        osc_sb_qualified(&b, p->map.schema, p->map.table);
        osc_sb_addf(&b, " ADD CONSTRAINT ");
        osc_sb_ident(&b, name ? name : "");
        osc_sb_addf(&b, " CHECK (");
        osc_sb_ident(&b, nn_col);
        osc_sb_addf(&b, " IS NOT NULL) NOT VALID");
        osc_sb_addf(&f, "ALTER TABLE ");
        osc_sb_qualified(&f, p->map.schema, p->map.table);
        osc_sb_addf(&f, " ALTER COLUMN ");
        osc_sb_ident(&f, nn_col);
        osc_sb_addf(&f, " SET NOT NULL, DROP CONSTRAINT ");
        osc_sb_ident(&f, name ? name : "");
        free(name);
        not_valid = osc_sb_take(&b);
        finish = osc_sb_take(&f);
        if (not_valid == NULL || finish == NULL)
            snprintf(err, sizeof err, "out of memory");
    } else {
        not_valid = osc_stmt_not_valid(sql, err, sizeof err);
    }
    if (not_valid == NULL) {
        free(finish);
        osc_result_error(r, "42601", NULL, "%s", err);
        return;
    }
    /* The table's constraints before: the ones the statement adds are the others. */
    const char *ov[] = {oid};
    PGresult *bt = osc_exec(c, "SELECT coalesce(array_agg(oid), '{}')::text FROM pg_constraint "
                               "WHERE conrelid = $1::oid", 1, ov, err, sizeof err, code);
    held_target tg = {"validate", p->map.schema, p->map.table, oid};
    int64_t id = bt ? run_held(c, user, not_valid, &tg, s, "validating", NULL, r) : 0;
    free(not_valid);
    if (id == 0) {
        free(finish);
        PQclear(bt);
        if (r->ok)
            osc_result_error(r, code, NULL, "%s", err);
        return;
    }
    const char *nv[] = {oid, PQgetvalue(bt, 0, 0)};
    PGresult *t = osc_exec(c, "SELECT format('ALTER TABLE %s VALIDATE CONSTRAINT %I', conrelid::regclass, "
                    "conname), format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', "
                    "conrelid::regclass, conname) FROM pg_constraint WHERE conrelid = $1::oid AND "
                    "NOT convalidated AND oid <> ALL ($2::oid[]) ORDER BY oid",
                 2, nv, err, sizeof err, code);
    PQclear(bt);
    bool ok = t != NULL;
    char why[1400] = "";
    for (int i = 0; ok && i < PQntuples(t); i++)
        if (!run_retried(c, user, PQgetvalue(t, i, 0), false, s, err, sizeof err, code))
            ok = false;
    if (ok && finish && !run_retried(c, user, finish, true, s, err, sizeof err, code))
        ok = false;
    if (!ok && nn_col && strcmp(code, "23514") == 0) { /* as SET NOT NULL itself says it */
        snprintf(code, sizeof code, "23502");
        snprintf(err, sizeof err, "column \"%s\" of relation \"%s\" contains null values", nn_col,
                 p->map.table);
    }
    free(finish);
    if (!ok) {
        snprintf(why, sizeof why, "%s", err);
        char sc[6];
        snprintf(sc, sizeof sc, "%s", code);
        /* Nothing half-done: the constraints it added go again, under the hold. */
        for (int i = 0; t && i < PQntuples(t); i++) {
            char e2[512], c2[6];
            if (!run_retried(c, user, PQgetvalue(t, i, 1), true, s, e2, sizeof e2, c2))
                osc_log(CONF_LOG_WARNING, "validate %s.%s: %s: %s", p->map.schema, p->map.table,
                        PQgetvalue(t, i, 1), e2);
        }
        snprintf(code, sizeof code, "%s", sc);
    }
    PQclear(t);
    char ids[32];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *fv[] = {ids, ok ? "done" : "failed", ok ? NULL : why};
    char e3[256], c3[6];
    osc_run(c, "UPDATE pgcutover.migrations SET state = $2, error = $3, phase = CASE WHEN $2 = "
               "'done' THEN 'validated' ELSE 'validation failed; the constraints it added were "
               "dropped' END, updated_at = now(), phase_at = phase_at || jsonb_build_object($2::text, "
               "now()) WHERE id = $1",
            3, fv, e3, sizeof e3, c3);
    if (!ok) {
        osc_result_error(r, code, NULL, "%s", why);
        return;
    }
    answer(r, id, &tg, "ALTER TABLE");
}

void osc_strategy_direct(PGconn *c, const char *user, const char *sql, const char *kind,
                         bool plan, const conf_t *s, osc_result *r)
{
    if (plan) {
        osc_warn_out o;
        osc_warn_begin(&o, r);
        char d[600], wait[300];
        snprintf(d, sizeof d, "direct: %s changes no busy table's rows; it runs as it is", kind);
        osc_warn_row(&o, "strategy", d, NULL, NULL, NULL);
        osc_warn_estimate(&o, c, NULL, OSC_EST_CATALOG, 0, s);
        osc_direct_facts f;
        osc_stmt_direct_facts(sql, &f);
        osc_warn_held_wait(s, wait, sizeof wait);
        snprintf(d, sizeof d, "as %s under the proxy's hold: lock_timeout %d ms per attempt, up to "
                              "%d attempts with jittered back-off; recorded in pgcutover.migrations",
                 user, s->lock_timeout_ms, s->cutover_attempts);
        osc_warn_row(&o, "direct", d, sql, osc_warn_lock_name(f.lock_level),
                     f.lock_level ? wait : "none");
        osc_warn_direct_rows(&o, sql);
        snprintf(r->tag, sizeof r->tag, "PLAN");
        return;
    }
    held_target t = {"direct", "", "", "0"};
    run_held(c, user, sql, &t, s, "done", kind, r);
}

/* ---------- concurrent: CREATE INDEX, DROP INDEX, REINDEX ---------- */

/* The table an index statement is about (by the index for DROP and REINDEX INDEX), its
 * name resolved with the user's search_path: oid, schema, name into the out buffers.
 * false (0 rows) when there is none. */
static bool index_table(PGconn *c, const osc_idx_stmt *ix, const char *path, char oid[16],
                        char *schema, char *table, size_t len, char *err, size_t errlen,
                        char code[6])
{
    osc_sb q = {0};
    osc_sb_qualified(&q, ix->schema, ix->name);
    char *qname = osc_sb_take(&q), named[16];
    bool ok = qname && osc_rights_regclass(c, qname, path, named, err, errlen, code);
    free(qname);
    const char *v[] = {named, ix->kind == OSC_IDX_DROP || ix->kind == OSC_IDX_REINDEX_INDEX ? "i" : "t"};
    PGresult *t = ok ? osc_exec(c,
                                "SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace "
                                "n ON n.oid = c.relnamespace WHERE c.oid = CASE WHEN $2 = 'i' THEN "
                                "(SELECT indrelid FROM pg_index WHERE indexrelid = $1::oid) ELSE "
                                "$1::oid END",
                                2, v, err, errlen, code)
                     : NULL;
    ok = t && PQntuples(t) == 1;
    if (ok) {
        snprintf(oid, 16, "%s", PQgetvalue(t, 0, 0));
        snprintf(schema, len, "%s", PQgetvalue(t, 0, 1));
        snprintf(table, len, "%s", PQgetvalue(t, 0, 2));
    }
    PQclear(t);
    return ok;
}

/* Drop the INVALID indexes of migration id's table that were not there when it started
 * (settings.indexes_before): what a failed or interrupted concurrent build leaves. Returns
 * how many. */
static int drop_invalid(PGconn *c, const char *id)
{
    const char *v[] = {id};
    char err[512], code[6];
    PGresult *t = osc_exec(c,
                           "SELECT i.indexrelid::regclass::text FROM pgcutover.migrations m JOIN "
                           "pg_index i ON i.indrelid = m.table_oid WHERE m.id = $1 AND NOT "
                           "i.indisvalid AND i.indexrelid::text NOT IN (SELECT "
                           "jsonb_array_elements_text(m.settings->'indexes_before'))",
                           1, v, err, sizeof err, code);
    int dropped = 0;
    for (int i = 0; t && i < PQntuples(t); i++) {
        char sql[600];
        snprintf(sql, sizeof sql, "DROP INDEX CONCURRENTLY IF EXISTS %s", PQgetvalue(t, i, 0));
        if (osc_run(c, sql, 0, NULL, err, sizeof err, code))
            dropped++;
        else
            osc_log(CONF_LOG_WARNING, "dropping the INVALID index %s: %s", PQgetvalue(t, i, 0), err);
    }
    PQclear(t);
    return dropped;
}

static const char *idx_verb(osc_idx_kind k)
{
    return k == OSC_IDX_CREATE ? "CREATE INDEX" : k == OSC_IDX_DROP ? "DROP INDEX" : "REINDEX";
}

void osc_strategy_index(PGconn *c, const char *user, const char *sql, bool plan, osc_result *r)
{
    osc_idx_stmt ix;
    bool is_index;
    char code[6] = "", err[1024] = "", oid[16], schema[128], table[128];
    if (!osc_stmt_index(sql, &is_index, &ix, code, err, sizeof err)) {
        osc_result_error(r, is_index ? code : "42601", NULL, "%s", is_index ? err : "not an index statement");
        return;
    }
    char *path = osc_rights_user_path(user);
    bool found = path && index_table(c, &ix, path, oid, schema, table, sizeof table, err, sizeof err, code);
    if (!found) {
        osc_result_error(r, "42P01", "check the name and the console's database (psql -d)",
                         "relation \"%s%s%s\" does not exist", ix.schema ? ix.schema : "",
                         ix.schema ? "." : "", ix.name);
        goto out;
    }
    if (plan) {
        osc_warn_out o;
        osc_warn_begin(&o, r);
        char d[600];
        snprintf(d, sizeof d, "concurrent: %s runs CONCURRENTLY on %s.%s — SHARE UPDATE EXCLUSIVE, "
                              "which no application read or write waits for; it waits for older "
                              "transactions as PostgreSQL's own does",
                 idx_verb(ix.kind), schema, table);
        osc_warn_row(&o, "strategy", d, NULL, NULL, NULL);
        osc_warn_estimate(&o, c, oid, ix.kind == OSC_IDX_DROP ? OSC_EST_CATALOG : OSC_EST_BUILD, 0,
                          NULL);
        snprintf(d, sizeof d, "as %s, outside a transaction; a failed or interrupted build drops "
                              "the INVALID index it left and says why",
                 user);
        osc_warn_row(&o, "concurrent", d, ix.sql, osc_warn_lock_name(OSC_LOCK_SHARE_UPDATE_EXCLUSIVE),
                     "none");
        snprintf(r->tag, sizeof r->tag, "PLAN");
        goto out;
    }
    if (!osc_state_ensure(c, err, sizeof err)) {
        osc_result_error(r, "42501", NULL, "%s", err);
        goto out;
    }
    /* The migration row (live: no copy of the table may start meanwhile), with the table's
     * indexes as they were, so a restart knows what an interrupted build left. */
    const char *v[] = {schema, table, oid, sql, user};
    PGresult *t = osc_exec(c,
                           "INSERT INTO pgcutover.migrations (table_schema, table_name, table_oid, "
                           "statement, started_by, strategy, state, phase, settings, phase_at) "
                           "SELECT $1, $2, $3, $4, $5, 'concurrent', 'building', 'concurrently', "
                           "jsonb_build_object('indexes_before', (SELECT coalesce(array_agg(indexrelid), "
                           "'{}') FROM pg_index WHERE indrelid = $3::oid)), jsonb_build_object("
                           "'building', now()) RETURNING id",
                           5, v, err, sizeof err, code);
    if (t == NULL) {
        if (strcmp(code, "23505") == 0)
            osc_result_error(r, "55000", "wait for it to finish, or ABORT MIGRATION it first",
                             "table %s.%s has a migration in progress", schema, table);
        else
            osc_result_error(r, code, NULL, "recording the migration: %s", err);
        goto out;
    }
    char ids[32], app[96];
    snprintf(ids, sizeof ids, "%s", PQgetvalue(t, 0, 0));
    PQclear(t);
    /* As the user (SET ROLE: CONCURRENTLY cannot run inside the executor's function; an
     * index build runs its expressions as the table's owner in a restricted context, so
     * nothing can climb back), with the user's names; no lock_timeout: the statement's one
     * lock, SHARE UPDATE EXCLUSIVE, queues no application statement, and the build waits
     * for older transactions by design. */
    snprintf(app, sizeof app, "SET application_name = 'pgcutover m%s concurrent'", ids);
    const char *uv[] = {user, path};
    bool ok = osc_run(c, app, 0, NULL, err, sizeof err, code) &&
              osc_run(c, "SELECT pg_catalog.set_config('role', $1, false), "
                         "pg_catalog.set_config('search_path', $2, false)",
                      2, uv, err, sizeof err, code) &&
              osc_run(c, "SET lock_timeout = 0", 0, NULL, err, sizeof err, code);
    char detail[600] = "";
    if (ok) {
        PGresult *res = PQexec(c, ix.sql);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok) {
            const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            const char *dd = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
            const char *sc = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            snprintf(err, sizeof err, "%s", m ? m : PQerrorMessage(c));
            snprintf(detail, sizeof detail, "%s", dd ? dd : "");
            snprintf(code, sizeof code, "%s", sc ? sc : "08006");
        }
        PQclear(res);
    }
    char e2[256], c2[6];
    osc_run(c, "RESET role; SET search_path = " OSC_SAFE_PATH "; RESET lock_timeout; RESET "
               "application_name", 0, NULL, e2, sizeof e2, c2);
    int dropped = ok ? 0 : drop_invalid(c, ids);
    char why[1400];
    snprintf(why, sizeof why, "%.700s%s%.600s%s", err, *detail ? " (" : "", detail, *detail ? ")" : "");
    if (dropped)
        snprintf(why + strlen(why), sizeof why - strlen(why), "; the INVALID index it left was dropped");
    const char *fv[] = {ids, ok ? "done" : "failed", ok ? NULL : why};
    osc_run(c, "UPDATE pgcutover.migrations SET state = $2, error = $3, phase = CASE WHEN $2 = 'done' "
               "THEN 'built concurrently' ELSE 'failed; nothing INVALID left' END, updated_at = now(), "
               "phase_at = phase_at || jsonb_build_object($2::text, now()) WHERE id = $1",
            3, fv, e2, sizeof e2, c2);
    if (!ok) {
        osc_log(CONF_LOG_ERROR, "m%s %s.%s: %s failed: %s", ids, schema, table, idx_verb(ix.kind), why);
        osc_result_error(r, code, NULL, "%s", why);
        goto out;
    }
    osc_log(CONF_LOG_INFO, "m%s %s.%s: done — %s", ids, schema, table, ix.sql);
    osc_result_col(r, "id", OSC_T_INT8);
    osc_result_col(r, "table", OSC_T_TEXT);
    osc_result_col(r, "state", OSC_T_TEXT);
    osc_result_col(r, "strategy", OSC_T_TEXT);
    char tq[300];
    snprintf(tq, sizeof tq, "%s.%s", schema, table);
    const char *row[] = {ids, tq, "done", "concurrent"};
    osc_result_row(r, row);
    snprintf(r->tag, sizeof r->tag, "%s", idx_verb(ix.kind));
out:
    free(path);
    osc_idx_free(&ix);
}

void osc_strategy_recover(PGconn *c, const char *db)
{
    char err[512], code[6];
    PGresult *t = osc_exec(c,
                           "SELECT id FROM pgcutover.migrations WHERE strategy = 'concurrent' AND "
                           "state = 'building'",
                           0, NULL, err, sizeof err, code);
    for (int i = 0; t && i < PQntuples(t); i++) {
        const char *id = PQgetvalue(t, i, 0);
        char app[64];
        snprintf(app, sizeof app, "pgcutover m%s concurrent", id);
        const char *av[] = {app};
        /* The build's backend outlives a killed pgcutover (it waits for no client). */
        PQclear(osc_exec(c, "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE "
                            "application_name = $1", 1, av, err, sizeof err, code));
        int dropped = drop_invalid(c, id);
        const char *uv[] = {id, dropped ? "interrupted by a restart of pgcutover; the INVALID index "
                                          "it left was dropped: run the statement again"
                                        : "interrupted by a restart of pgcutover: run the statement again"};
        osc_run(c, "UPDATE pgcutover.migrations SET state = 'failed', error = $2, phase = "
                   "'cleaned up', updated_at = now() WHERE id = $1",
                2, uv, err, sizeof err, code);
        osc_log(CONF_LOG_WARNING, "m%s in database \"%s\": %s", id, db, uv[1]);
    }
    PQclear(t);
}
