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
    const char *settings; /* the row's settings (jsonb text: what a restart undoes), or NULL */
    bool unheld;          /* its lock (SHARE UPDATE EXCLUSIVE) queues no client: no hold */
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
    "cutover_lock_ms, phase_at, settings) VALUES ($1, $2, $3, $4, $5, $11, $6, $7, $8, $9, $10, "
    "$10, jsonb_build_object($6::text, now()), coalesce($12::jsonb, '{}')) RETURNING id";

static PGresult *record(PGconn *c, const held_target *t, const char *sql, const char *user,
                        const char *state, const char *phase, const char *error, int attempts,
                        double hold_ms, char *err, size_t errlen, char code[6])
{
    char att[16], hold[32];
    snprintf(att, sizeof att, "%d", attempts);
    snprintf(hold, sizeof hold, "%.3f", hold_ms);
    const char *v[] = {t->schema, t->table, t->oid, sql, user, state, phase, error, att, hold,
                       t->strategy, t->settings};
    return osc_exec(c, record_sql, 12, v, err, errlen, code);
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
    const char *sv[] = {tg->oid};
    bool table = strcmp(tg->oid, "0") != 0;
    for (a = 1; a <= attempts && !ok; a++) {
        if (!tg->unheld)
            osc_hooks.hold();
        double t0 = now_ms();
        PGresult *before = NULL;
        ok = osc_run(c, lt, 0, NULL, err, sizeof err, code) &&
             (!table || (before = osc_exec(c, OSC_STORAGE_SQL, 1, sv, err, sizeof err, code))) &&
             osc_run(c, "SELECT pg_temp." OSC_AS_USER "($1, ARRAY[]::text[], false, $2)", 2, v, err,
                     sizeof err, code);
        if (ok && table) { /* the safety net: nothing of the table may have been rewritten */
            PGresult *after = osc_exec(c, OSC_STORAGE_SQL, 1, sv, err, sizeof err, code);
            ok = after && strcmp(PQgetvalue(before, 0, 0), PQgetvalue(after, 0, 0)) == 0;
            if (after && !ok) {
                snprintf(code, 6, "XX000");
                snprintf(err, sizeof err, "the statement rewrote the table or built an index, "
                                          "which the %s strategy must not: rolled back, nothing "
                                          "changed", tg->strategy);
            }
            PQclear(after);
        }
        PQclear(before);
        PGresult *row = NULL;
        if (ok) {
            hold_ms = now_ms() - t0;
            char phase[400];
            snprintf(phase, sizeof phase, "%s: run %s on attempt %d", tg->strategy,
                     tg->unheld ? "outside the hold" : "under the proxy's hold", a);
            row = record(c, tg, sql, user, state, phase, NULL, a, hold_ms, err, sizeof err, code);
            ok = row != NULL && osc_run(c, "COMMIT", 0, NULL, err, sizeof err, code);
            if (ok)
                id = strtoll(PQgetvalue(row, 0, 0), NULL, 10);
            PQclear(row);
        }
        if (!ok)
            PQclear(PQexec(c, "ROLLBACK"));
        if (!tg->unheld)
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
    bool validate = p->strategy == OSC_STRATEGY_VALIDATE; /* VALIDATE CONSTRAINT alone */
    held_target t = {validate ? "validate" : "instant", p->map.schema, p->map.table, oid, NULL, validate};
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

/* The row of a migration that runs outside one transaction (concurrent builds), in state
 * building — live, so no other change of the table starts meanwhile — with the table's
 * indexes and constraints as they were, so a restart knows what an interrupted one left
 * (osc_strategy_recover). Its id into ids (32 bytes); false with *r answered. */
static bool begin_row(PGconn *c, const char *strategy, const char *phase, const char *schema,
                      const char *table, const char *oid, const char *sql, const char *user,
                      char ids[32], osc_result *r)
{
    char err[1024], code[6];
    const char *v[] = {schema, table, oid, sql, user, strategy, phase};
    PGresult *t = osc_exec(c,
                           "INSERT INTO pgcutover.migrations (table_schema, table_name, table_oid, "
                           "statement, started_by, strategy, state, phase, settings, phase_at) "
                           "SELECT $1, $2, $3, $4, $5, $6, 'building', $7, jsonb_build_object("
                           "'indexes_before', (SELECT coalesce(jsonb_agg(indexrelid::text), '[]') "
                           "FROM pg_index WHERE indrelid = $3::oid), 'constraints_before', (SELECT "
                           "coalesce(jsonb_agg(oid::text), '[]') FROM pg_constraint WHERE conrelid = "
                           "$3::oid)), jsonb_build_object('building', now()) RETURNING id",
                           7, v, err, sizeof err, code);
    if (t == NULL) {
        if (strcmp(code, "23505") == 0)
            osc_result_error(r, "55000", "wait for it to finish, or ABORT MIGRATION it first",
                             "table %s.%s has a migration in progress", schema, table);
        else
            osc_result_error(r, code, NULL, "recording the migration: %s", err);
        return false;
    }
    snprintf(ids, 32, "%s", PQgetvalue(t, 0, 0));
    PQclear(t);
    return true;
}

/* Name c's session after migration ids's job (ids NULL: reset): application_name
 * "pgcutover m<ids> job", what ABORT cancels (osc_strategy_abort) and a restart ends
 * (osc_strategy_recover). */
static void set_job(PGconn *c, const char *ids)
{
    char sql[96], err[256], code[6];
    if (ids)
        snprintf(sql, sizeof sql, "SET application_name = 'pgcutover m%s job'", ids);
    else
        snprintf(sql, sizeof sql, "RESET application_name");
    if (!osc_run(c, sql, 0, NULL, err, sizeof err, code))
        osc_log(CONF_LOG_WARNING, "%s: %s", sql, err);
}

/* Migration ids ends: state done (ok) or failed with error why, in phase — aborted instead
 * of failed when ABORT MIGRATION asked for it (phase 'abort requested'). */
static void finish_row(PGconn *c, const char *ids, bool ok, const char *why, const char *phase)
{
    const char *fv[] = {ids, ok ? "done" : "failed", ok ? NULL : why, phase};
    char err[256], code[6];
    if (!osc_run(c, "UPDATE pgcutover.migrations SET state = CASE WHEN $2 = 'failed' AND phase = "
                    "'abort requested' THEN 'aborted' ELSE $2 END, error = $3, phase = $4, "
                    "updated_at = now(), phase_at = phase_at || jsonb_build_object($2::text, now()) "
                    "WHERE id = $1",
                 4, fv, err, sizeof err, code))
        osc_log(CONF_LOG_WARNING, "m%s: recording %s: %s", ids, fv[1], err);
}

/* The helper that lets PostgreSQL 12+ set NOT NULL on column col of schema.table without
 * a scan: returns `ALTER TABLE … ADD CONSTRAINT pgcutover_nn_<col> CHECK (col IS NOT NULL)
 * NOT VALID`; *finish (when not NULL) gets `ALTER TABLE … ALTER COLUMN col SET NOT NULL;
 * ALTER TABLE … DROP CONSTRAINT pgcutover_nn_<col>` — two statements: in one ALTER the DROP
 * would run first (its pass precedes SET NOT NULL's, tablecmds.c AT_PASS_DROP) and SET NOT
 * NULL would scan; *drop (when not NULL) gets just the DROP … IF EXISTS. All malloc'ed;
 * NULL on out of memory. */
static char *not_null_helper(const char *schema, const char *table, const char *col, char **finish,
                             char **drop)
{
    osc_sb cn = {0}, b = {0}, q = {0};
    osc_sb_addf(&cn, "pgcutover_nn_%.40s", col);
    char *name = osc_sb_take(&cn);
    osc_sb_qualified(&q, schema, table);
    char *qt = osc_sb_take(&q);
    if (name == NULL || qt == NULL) {
        free(name);
        free(qt);
        return NULL;
    }
    osc_sb_addf(&b, "ALTER TABLE %s ADD CONSTRAINT ", qt);
    osc_sb_ident(&b, name);
    osc_sb_addf(&b, " CHECK (");
    osc_sb_ident(&b, col);
    osc_sb_addf(&b, " IS NOT NULL) NOT VALID");
    if (finish) {
        osc_sb f = {0};
        osc_sb_addf(&f, "ALTER TABLE %s ALTER COLUMN ", qt);
        osc_sb_ident(&f, col);
        osc_sb_addf(&f, " SET NOT NULL; ALTER TABLE %s DROP CONSTRAINT ", qt);
        osc_sb_ident(&f, name);
        *finish = osc_sb_take(&f);
    }
    if (drop) {
        osc_sb d = {0};
        osc_sb_addf(&d, "ALTER TABLE %s DROP CONSTRAINT IF EXISTS ", qt);
        osc_sb_ident(&d, name);
        *drop = osc_sb_take(&d);
    }
    free(name);
    free(qt);
    return osc_sb_take(&b);
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
        not_valid = not_null_helper(p->map.schema, p->map.table, nn_col, &finish, NULL);
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
    PGresult *bt = osc_exec(c, "SELECT coalesce(array_agg(oid), '{}')::text, jsonb_build_object("
                               "'constraints_before', coalesce(jsonb_agg(oid::text), '[]'))::text "
                               "FROM pg_constraint WHERE conrelid = $1::oid", 1, ov, err, sizeof err, code);
    held_target tg = {"validate", p->map.schema, p->map.table, oid, bt ? PQgetvalue(bt, 0, 1) : NULL, false};
    int64_t id = bt ? run_held(c, user, not_valid, &tg, s, "validating", NULL, r) : 0;
    free(not_valid);
    if (id == 0) {
        free(finish);
        PQclear(bt);
        if (r->ok)
            osc_result_error(r, code, NULL, "%s", err);
        return;
    }
    char ids[32];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    set_job(c, ids);
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
    set_job(c, NULL);
    finish_row(c, ids, ok, why, ok ? "validated" : "validation failed; the constraints it added were dropped");
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
    held_target t = {"direct", "", "", "0", NULL, false};
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

/* sql (… CONCURRENTLY) on c as `user` with the user's search_path (path), outside a
 * transaction (the caller has set the job's application_name, set_job): SET ROLE, because CONCURRENTLY cannot run inside the
 * executor's function, and an index build runs its expressions as the table's owner in a
 * restricted context, so nothing can climb back. No lock_timeout: the statement's one lock,
 * SHARE UPDATE EXCLUSIVE, queues no application statement, and the build waits for older
 * transactions by design. False with PostgreSQL's message, detail and SQLSTATE. */
static bool run_concurrently(PGconn *c, const char *user, const char *path, const char *sql,
                             char *err, size_t errlen, char *detail, size_t dlen, char code[6])
{
    const char *uv[] = {user, path};
    bool ok = osc_run(c, "SELECT pg_catalog.set_config('role', $1, false), "
                         "pg_catalog.set_config('search_path', $2, false)",
                      2, uv, err, errlen, code) &&
              osc_run(c, "SET lock_timeout = 0", 0, NULL, err, errlen, code);
    if (ok) {
        PGresult *res = PQexec(c, sql);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok) {
            const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            const char *dd = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
            const char *sc = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            snprintf(err, errlen, "%s", m ? m : PQerrorMessage(c));
            snprintf(detail, dlen, "%s", dd ? dd : "");
            snprintf(code, 6, "%s", sc ? sc : "08006");
        }
        PQclear(res);
    }
    char e2[256], c2[6];
    osc_run(c, "RESET role; SET search_path = " OSC_SAFE_PATH "; RESET lock_timeout", 0, NULL, e2,
            sizeof e2, c2);
    return ok;
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
    char ids[32];
    if (!begin_row(c, "concurrent", "concurrently", schema, table, oid, sql, user, ids, r))
        goto out;
    set_job(c, ids);
    char detail[600] = "";
    bool ok = run_concurrently(c, user, path, ix.sql, err, sizeof err, detail, sizeof detail, code);
    int dropped = ok ? 0 : drop_invalid(c, ids);
    char why[1400];
    snprintf(why, sizeof why, "%.700s%s%.600s%s", err, *detail ? " (" : "", detail, *detail ? ")" : "");
    if (dropped)
        snprintf(why + strlen(why), sizeof why - strlen(why), "; the INVALID index it left was dropped");
    set_job(c, NULL);
    finish_row(c, ids, ok, why, ok ? "built concurrently" : "failed; nothing INVALID left");
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

/* End the backend of migration ids's job (SIGKILLed pgcutover: it outlives us, waiting for
 * no client) or, with cancel, just its statement. */
static void end_job(PGconn *c, const char *ids, bool cancel)
{
    char app[64], err[256], code[6];
    snprintf(app, sizeof app, "pgcutover m%s job", ids);
    const char *av[] = {app};
    PQclear(osc_exec(c, cancel ? "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE "
                                 "application_name = $1"
                               : "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                                 "WHERE application_name = $1",
                     1, av, err, sizeof err, code));
}

/* What an interrupted validate or concurrent migration left, and whether it completed:
 * the key variant when its PRIMARY KEY / UNIQUE constraint exists; the others when every
 * constraint it added is valid and no helper is left (a lone SET NOT NULL: the column is
 * NOT NULL). One row: complete, then the undo statements (text[]) — DROP CONSTRAINT of
 * what it added, DROP INDEX of its own index. */
static const char leftover_sql[] =
    "WITH m AS (SELECT id, table_oid, statement, settings FROM pgcutover.migrations WHERE id = "
    "$1), added AS (SELECT k.* FROM m JOIN pg_constraint k ON k.conrelid = m.table_oid WHERE "
    "k.oid::text NOT IN (SELECT jsonb_array_elements_text(coalesce(m.settings->'constraints_before', "
    "'[]')))) SELECT CASE WHEN $2 THEN EXISTS (SELECT 1 FROM added WHERE contype IN ('p', 'u')) "
    "WHEN $3 <> '' THEN NOT EXISTS (SELECT 1 FROM added WHERE conname LIKE 'pgcutover\\_nn\\_%') "
    "AND EXISTS (SELECT 1 FROM m JOIN pg_attribute a ON a.attrelid = m.table_oid WHERE a.attname "
    "= $3 AND a.attnotnull) ELSE EXISTS (SELECT 1 FROM added) AND NOT EXISTS (SELECT 1 FROM added "
    "WHERE NOT convalidated OR conname LIKE 'pgcutover\\_nn\\_%') END, ARRAY(SELECT format('ALTER "
    "TABLE %s DROP CONSTRAINT IF EXISTS %I', conrelid::regclass, conname) FROM added UNION ALL "
    "SELECT format('DROP INDEX CONCURRENTLY IF EXISTS %s', i.indexrelid::regclass) FROM m JOIN "
    "pg_index i ON i.indrelid = m.table_oid JOIN pg_class ci ON ci.oid = i.indexrelid WHERE "
    "ci.relname = 'pgcutover_m' || m.id || '_key')";

/* Undo (or, when complete, just close) migration ids of strategy validate or concurrent,
 * interrupted: its job's backend ended, what it left dropped (DROP CONSTRAINT under the
 * hold with lock_timeout and retries), INVALID indexes it left dropped; state done,
 * or failed with why. */
static void recover_one(PGconn *c, const char *ids, const char *strategy, const char *stmt,
                        const conf_t *s, const char *why)
{
    char err[512], code[6];
    end_job(c, ids, false);
    if (strcmp(strategy, "concurrent") == 0) {
        int dropped = drop_invalid(c, ids);
        char w[600];
        snprintf(w, sizeof w, "%s%s", why, dropped ? "; the INVALID index it left was dropped" : "");
        finish_row(c, ids, false, w, "cleaned up");
        osc_log(CONF_LOG_WARNING, "m%s: %s", ids, w);
        return;
    }
    osc_key_stmt k;
    bool key = osc_stmt_key(stmt, &k);
    osc_key_free(&k);
    osc_stmt st;
    const char *nn = "";
    if (!key && osc_stmt_parse(stmt, &st, code, err, sizeof err)) {
        nn = st.ncmds == 1 && st.cmds[0].sets_not_null && st.cmds[0].column ? st.cmds[0].column : "";
    }
    const char *v[] = {ids, key ? "t" : "f", nn};
    PGresult *t = osc_exec(c, leftover_sql, 3, v, err, sizeof err, code);
    if (t && PQgetvalue(t, 0, 0)[0] == 't') {
        finish_row(c, ids, true, NULL, "completed before the restart");
        osc_log(CONF_LOG_INFO, "m%s: completed before the restart", ids);
    } else if (t) {
        const char *arr = PQgetvalue(t, 0, 1); /* {"stmt","stmt"} */
        PGresult *u = osc_exec(c, "SELECT unnest($1::text[])", 1, &arr, err, sizeof err, code);
        bool clean = u != NULL;
        for (int i = 0; u && i < PQntuples(u); i++) {
            const char *q = PQgetvalue(u, i, 0);
            bool concurrently = strstr(q, "CONCURRENTLY") != NULL;
            if (!(concurrently ? osc_run(c, q, 0, NULL, err, sizeof err, code)
                               : osc_run_locked(c, q, 0, NULL, true, s->lock_timeout_ms,
                                                s->cutover_attempts, err, sizeof err, code))) {
                osc_log(CONF_LOG_WARNING, "m%s: %s: %s", ids, q, err);
                clean = false;
            }
        }
        PQclear(u);
        drop_invalid(c, ids);
        char w[700];
        snprintf(w, sizeof w, "%s%s", why, clean ? "; what it added was dropped" : "; could not drop all it added (see the log)");
        finish_row(c, ids, false, w, "cleaned up");
        osc_log(CONF_LOG_WARNING, "m%s: %s", ids, w);
    } else {
        osc_log(CONF_LOG_WARNING, "m%s: recovering: %s", ids, err);
    }
    PQclear(t);
    if (!key)
        osc_stmt_free(&st);
}

void osc_strategy_recover(PGconn *c, const char *db, const conf_t *s)
{
    char err[512], code[6];
    PGresult *t = osc_exec(c,
                           "SELECT id, strategy, statement FROM pgcutover.migrations WHERE strategy "
                           "IN ('concurrent', 'validate') AND state IN ('building', 'validating')",
                           0, NULL, err, sizeof err, code);
    for (int i = 0; t && i < PQntuples(t); i++) {
        osc_log(CONF_LOG_WARNING, "m%s in database \"%s\": interrupted by a restart", PQgetvalue(t, i, 0), db);
        recover_one(c, PQgetvalue(t, i, 0), PQgetvalue(t, i, 1), PQgetvalue(t, i, 2), s,
                    "interrupted by a restart of pgcutover: run the statement again");
    }
    PQclear(t);
}

bool osc_strategy_abort(PGconn *c, int64_t id, osc_result *r)
{
    char ids[32], err[512], code[6];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *v[] = {ids};
    PGresult *t = osc_exec(c, "SELECT strategy, state FROM pgcutover.migrations WHERE id = $1", 1, v,
                           err, sizeof err, code);
    if (t == NULL || PQntuples(t) == 0 || strcmp(PQgetvalue(t, 0, 0), "copy") == 0) {
        PQclear(t);
        return false; /* a copy: the driver's */
    }
    bool running = strcmp(PQgetvalue(t, 0, 1), "building") == 0 || strcmp(PQgetvalue(t, 0, 1), "validating") == 0;
    if (!running)
        osc_result_error(r, "55000", NULL, "migration %" PRId64 " is %s: nothing to abort", id,
                         PQgetvalue(t, 0, 1));
    PQclear(t);
    if (!running || !osc_run(c, "UPDATE pgcutover.migrations SET phase = 'abort requested', updated_at "
                                "= now() WHERE id = $1 AND state IN ('building', 'validating')", 1, v, err, sizeof err, code)) {
        if (r->ok)
            osc_result_error(r, code, NULL, "%s", err);
        return true;
    }
    /* Cancel the job's statement until its row says it ended (bounded: 60 s). */
    char state[32] = "";
    for (int i = 0; i < 600; i++) {
        t = osc_exec(c, "SELECT state FROM pgcutover.migrations WHERE id = $1", 1, v, err, sizeof err, code);
        snprintf(state, sizeof state, "%s", t ? PQgetvalue(t, 0, 0) : "");
        PQclear(t);
        if (strcmp(state, "building") != 0 && strcmp(state, "validating") != 0)
            break;
        end_job(c, ids, true);
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (strcmp(state, "aborted") == 0)
        snprintf(r->tag, sizeof r->tag, "ABORT MIGRATION");
    else
        osc_result_error(r, "55000", NULL, "migration %" PRId64 " is %s, not aborted", id, state);
    return true;
}

/* ---------- validate: ADD PRIMARY KEY / UNIQUE by a concurrent build ---------- */

/* The constraint name PostgreSQL would choose for sql's PRIMARY KEY / UNIQUE on p's table
 * (ChooseIndexName, indexcmds.c): the statement tried, rolled back, on an empty LIKE copy
 * of the same name in pg_temp — only column names, no expression of the user's runs. Then
 * that name must be free in the table's schema, as PostgreSQL would have made it (it adds a
 * number otherwise; we ask for a name instead). malloc'ed, or NULL with err and code. */
static char *chosen_name(PGconn *c, const char *sql, const osc_plan *p, char *err, size_t errlen,
                         char code[6])
{
    osc_sb b = {0}, q = {0};
    osc_sb_addf(&b, "CREATE TEMP TABLE ");
    osc_sb_ident(&b, p->map.table);
    osc_sb_addf(&b, " (LIKE ");
    osc_sb_qualified(&b, p->map.schema, p->map.table);
    osc_sb_addf(&b, ")");
    osc_sb_qualified(&q, "pg_temp", p->map.table);
    char *create = osc_sb_take(&b), *tmp = osc_sb_take(&q), *name = NULL;
    char *alter = osc_stmt_retarget(sql, "pg_temp", p->map.table, err, errlen);
    const char *v[] = {tmp};
    PGresult *t = NULL;
    if (create && tmp && alter && osc_run(c, "BEGIN", 0, NULL, err, errlen, code) &&
        osc_run(c, create, 0, NULL, err, errlen, code) && osc_run(c, alter, 0, NULL, err, errlen, code))
        t = osc_exec(c, "SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass AND contype "
                        "IN ('p', 'u')", 1, v, err, errlen, code);
    if (t && PQntuples(t) == 1)
        name = strdup(PQgetvalue(t, 0, 0));
    else if (t)
        snprintf(err, errlen, "the constraint's name: no constraint on the trial copy");
    PQclear(t);
    PQclear(PQexec(c, "ROLLBACK"));
    free(create);
    free(tmp);
    free(alter);
    return name;
}

/* Whether a relation or constraint named name exists in schema (what ADD CONSTRAINT … USING
 * INDEX would collide with). */
static bool name_taken(PGconn *c, const char *schema, const char *name)
{
    const char *v[] = {name, schema};
    char err[256], code[6];
    PGresult *t = osc_exec(c, "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = "
                              "c.relnamespace WHERE c.relname = $1 AND n.nspname = $2) OR EXISTS "
                              "(SELECT 1 FROM pg_constraint k JOIN pg_namespace n ON n.oid = "
                              "k.connamespace WHERE k.conname = $1 AND n.nspname = $2)",
                           2, v, err, sizeof err, code);
    bool taken = t == NULL || PQgetvalue(t, 0, 0)[0] == 't';
    PQclear(t);
    return taken;
}

/* PostgreSQL's message for a build of tmp, with the constraint's name instead (the plain
 * ALTER's index bears that name). */
static void rename_in(char *msg, size_t len, const char *tmp, const char *conname)
{
    char *at = strstr(msg, tmp);
    if (at == NULL)
        return;
    char rest[1024];
    snprintf(rest, sizeof rest, "%s", at + strlen(tmp));
    snprintf(at, len - (size_t)(at - msg), "%s%s", conname, rest);
}

void osc_strategy_key(PGconn *c, const char *user, const char *sql, const osc_plan *p,
                      const conf_t *s, osc_result *r)
{
    osc_key_stmt k;
    char err[1024] = "", code[6] = "", detail[600] = "", oid[16], ids[32], idx[64], why[1400] = "";
    char *drops[OSC_MAX_KEY_COLS] = {0}, *conname = NULL, *path = NULL;
    int nhelpers = 0;
    if (!osc_stmt_key(sql, &k)) {
        osc_result_error(r, "42601", NULL, "not one ADD PRIMARY KEY or UNIQUE on columns");
        return;
    }
    snprintf(oid, sizeof oid, "%u", p->table_oid);
    path = osc_rights_user_path(user);
    conname = k.conname ? strdup(k.conname) : chosen_name(c, sql, p, err, sizeof err, code);
    if (path == NULL || conname == NULL) {
        osc_result_error(r, *code ? code : "53200", NULL, "%s", *err ? err : "out of memory");
        goto out;
    }
    if (name_taken(c, p->map.schema, conname)) {
        osc_result_error(r, "42P07", k.conname ? NULL : "name the constraint: ALTER TABLE … ADD "
                                                        "CONSTRAINT <name> …",
                         "relation \"%s\" already exists in schema \"%s\"", conname, p->map.schema);
        goto out;
    }
    if (!osc_state_ensure(c, err, sizeof err) ||
        !osc_rights_executor(c, OSC_AS_USER, user, err, sizeof err, code)) {
        osc_result_error(r, *code ? code : "42501", NULL, "%s", err);
        goto out;
    }
    if (!begin_row(c, "validate", "building the index concurrently", p->map.schema, p->map.table,
                   oid, sql, user, ids, r))
        goto out;
    set_job(c, ids);
    snprintf(idx, sizeof idx, "pgcutover_m%s_key", ids);
    bool ok = true;
    /* A PRIMARY KEY's nullable columns: proven NOT NULL by a validated CHECK first, so the
     * attach sets NOT NULL without a scan (PostgreSQL 12+). */
    for (int i = 0; ok && k.primary && i < k.nkeys; i++) {
        const char *av[] = {oid, k.keys[i]};
        PGresult *nn = osc_exec(c, "SELECT 1 FROM pg_attribute WHERE attrelid = $1::oid AND attname = "
                                   "$2 AND NOT attnotnull", 2, av, err, sizeof err, code);
        bool nullable = nn && PQntuples(nn) == 1;
        ok = nn != NULL;
        PQclear(nn);
        if (!nullable)
            continue;
        char *add = not_null_helper(p->map.schema, p->map.table, k.keys[i], NULL, &drops[nhelpers]);
        osc_sb vb = {0};
        osc_sb_addf(&vb, "ALTER TABLE ");
        osc_sb_qualified(&vb, p->map.schema, p->map.table);
        char hname[64];
        snprintf(hname, sizeof hname, "pgcutover_nn_%.40s", k.keys[i]);
        osc_sb_addf(&vb, " VALIDATE CONSTRAINT ");
        osc_sb_ident(&vb, hname);
        char *val = osc_sb_take(&vb);
        ok = add && val && drops[nhelpers] &&
             run_retried(c, user, add, true, s, err, sizeof err, code);
        if (ok || drops[nhelpers])
            nhelpers++;
        ok = ok && run_retried(c, user, val, false, s, err, sizeof err, code);
        if (!ok && strcmp(code, "23514") == 0) { /* as ADD PRIMARY KEY itself says it */
            snprintf(code, sizeof code, "23502");
            snprintf(err, sizeof err, "column \"%s\" of relation \"%s\" contains null values",
                     k.keys[i], p->map.table);
        }
        free(add);
        free(val);
    }
    osc_sb cb = {0}, ab = {0};
    osc_sb_addf(&cb, "CREATE UNIQUE INDEX CONCURRENTLY ");
    osc_sb_ident(&cb, idx);
    osc_sb_addf(&cb, " ON ");
    osc_sb_qualified(&cb, p->map.schema, p->map.table);
    osc_sb_addf(&cb, " %s", k.columns);
    osc_sb_addf(&ab, "ALTER TABLE ");
    osc_sb_qualified(&ab, p->map.schema, p->map.table);
    osc_sb_addf(&ab, " ADD CONSTRAINT ");
    osc_sb_ident(&ab, conname);
    osc_sb_addf(&ab, " %s USING INDEX ", k.primary ? "PRIMARY KEY" : "UNIQUE");
    osc_sb_ident(&ab, idx);
    osc_sb_addf(&ab, "%s%s", *k.attributes ? " " : "", k.attributes);
    for (int i = 0; i < nhelpers; i++)
        osc_sb_addf(&ab, "; %s", drops[i]);
    char *create = osc_sb_take(&cb), *attach = osc_sb_take(&ab);
    if (ok && (create == NULL || attach == NULL)) {
        snprintf(err, sizeof err, "out of memory");
        snprintf(code, sizeof code, "53200");
        ok = false;
    }
    if (ok && !run_concurrently(c, user, path, create, err, sizeof err, detail, sizeof detail, code)) {
        ok = false;
        rename_in(err, sizeof err, idx, conname);
    }
    if (ok)
        ok = run_retried(c, user, attach, true, s, err, sizeof err, code);
    free(create);
    free(attach);
    if (!ok) {
        snprintf(why, sizeof why, "%.700s%s%.600s%s", err, *detail ? " (" : "", detail, *detail ? ")" : "");
        /* Nothing half-done: the index (INVALID or not) and the helpers go again. */
        char e2[256], c2[6];
        osc_sb db = {0};
        osc_sb_addf(&db, "DROP INDEX CONCURRENTLY IF EXISTS ");
        osc_sb_qualified(&db, p->map.schema, idx);
        char *drop_idx = osc_sb_take(&db);
        if (drop_idx && !osc_run(c, drop_idx, 0, NULL, e2, sizeof e2, c2))
            osc_log(CONF_LOG_WARNING, "m%s: %s: %s", ids, drop_idx, e2);
        free(drop_idx);
        for (int i = 0; i < nhelpers; i++)
            if (!run_retried(c, user, drops[i], true, s, e2, sizeof e2, c2))
                osc_log(CONF_LOG_WARNING, "m%s: %s: %s", ids, drops[i], e2);
    }
    set_job(c, NULL);
    finish_row(c, ids, ok, why, ok ? "index built concurrently and attached"
                                   : "failed; the index and helper constraints it added were dropped");
    if (!ok) {
        osc_log(CONF_LOG_ERROR, "m%s %s.%s: failed: %s", ids, p->map.schema, p->map.table, why);
        osc_result_error(r, code, NULL, "%s", why);
        goto out;
    }
    osc_log(CONF_LOG_INFO, "m%s %s.%s: done — validate: %s", ids, p->map.schema, p->map.table, sql);
    held_target tg = {"validate", p->map.schema, p->map.table, oid, NULL, false};
    answer(r, strtoll(ids, NULL, 10), &tg, "ALTER TABLE");
out:
    for (int i = 0; i < OSC_MAX_KEY_COLS; i++)
        free(drops[i]);
    free(conname);
    free(path);
    osc_key_free(&k);
}
