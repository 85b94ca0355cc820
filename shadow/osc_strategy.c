/* osc_strategy.c — see osc_strategy.h. */
#include "osc_strategy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "osc_db.h"
#include "osc_revert.h"
#include "osc_rights.h"
#include "osc_strategy_int.h"
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

/* See osc_strategy_int.h. */
void osc_strat_answer(osc_result *r, int64_t id, const char *strategy, const char *schema,
                      const char *table_name, const char *tag)
{
    osc_result_col(r, "id", OSC_T_INT8);
    osc_result_col(r, "table", OSC_T_TEXT);
    osc_result_col(r, "state", OSC_T_TEXT);
    osc_result_col(r, "strategy", OSC_T_TEXT);
    char ids[32], table[300];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    snprintf(table, sizeof table, "%s%s%s", schema, *schema ? "." : "", table_name);
    const char *rowv[] = {ids, table, "done", strategy};
    osc_result_row(r, rowv);
    snprintf(r->tag, sizeof r->tag, "%s", tag);
}

/* The migration row of a statement run under the hold, in state (done or failed). */
static const char record_sql[] =
    "INSERT INTO pgcutover.migrations (table_schema, table_name, table_oid, statement, "
    "started_by, strategy, state, phase, error, cutover_attempts, cutover_hold_ms, "
    "cutover_lock_ms, phase_at, settings) VALUES ($1, $2, $3, $4, $5, $11, $6, $7, $8, $9, $10, "
    "$10, jsonb_build_object($6::text, now()), coalesce($12::jsonb, '{}') || CASE WHEN $13::jsonb IS "
    "NULL THEN '{}' ELSE jsonb_build_object('catalog_before', $13::jsonb, 'catalog_after', "
    OSC_CATALOG_SNAPSHOT_SQL("$3::oid") ") END) RETURNING id";

/* before: the table's catalog before the statement (OSC_CATALOG_SNAPSHOT_SQL), or NULL. */
static PGresult *record(PGconn *c, const held_target *t, const char *sql, const char *user,
                        const char *state, const char *phase, const char *error, int attempts,
                        double hold_ms, const char *before, char *err, size_t errlen, char code[6])
{
    char att[16], hold[32];
    snprintf(att, sizeof att, "%d", attempts);
    snprintf(hold, sizeof hold, "%.3f", hold_ms);
    const char *v[] = {t->schema, t->table, t->oid, sql, user, state, phase, error, att, hold,
                       t->strategy, t->settings, before};
    return osc_exec(c, record_sql, 13, v, err, errlen, code);
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
        PGresult *before = NULL, *catalog = NULL; /* catalog: what REVERT goes back to */
        ok = osc_run(c, lt, 0, NULL, err, sizeof err, code) &&
             (!table || (before = osc_exec(c, OSC_STORAGE_SQL, 1, sv, err, sizeof err, code))) &&
             (!table || (catalog = osc_exec(c, "SELECT (" OSC_CATALOG_SNAPSHOT_SQL("$1::oid") ")::text",
                                            1, sv, err, sizeof err, code))) &&
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
        char *cat = catalog ? strdup(PQgetvalue(catalog, 0, 0)) : NULL;
        PQclear(catalog);
        PGresult *row = NULL;
        if (ok) {
            hold_ms = now_ms() - t0;
            char phase[400];
            snprintf(phase, sizeof phase, "%s: run %s on attempt %d", tg->strategy,
                     tg->unheld ? "outside the hold" : "under the proxy's hold", a);
            row = record(c, tg, sql, user, state, phase, NULL, a, hold_ms, cat, err, sizeof err, code);
            free(cat);
            cat = NULL;
            if (row != NULL && strcmp(state, "done") != 0) { /* a job goes on: its lock, before
                                                              * the row is seen (begin_row) */
                const char *lv[] = {PQgetvalue(row, 0, 0)};
                if (!osc_run(c, "SELECT pg_catalog.pg_advisory_lock(" OSC_LOCK_CLASS_SQL ", $1::int)",
                             1, lv, err, sizeof err, code)) {
                    PQclear(row);
                    row = NULL;
                }
            }
            /* sessions marked for re-preparing before the COMMIT, as the swap does: a
             * transaction waiting for our lock goes on at the COMMIT, and its next prepared
             * statement must find the mark (a mark without a change costs one re-prepare) */
            if (row != NULL && strcmp(tg->strategy, "instant") == 0 && osc_hooks.row_type_changed)
                osc_hooks.row_type_changed(PQdb(c), strtoll(PQgetvalue(row, 0, 0), NULL, 10));
            ok = row != NULL && osc_run(c, "COMMIT", 0, NULL, err, sizeof err, code);
            if (ok)
                id = strtoll(PQgetvalue(row, 0, 0), NULL, 10);
            PQclear(row);
        }
        free(cat); /* when the statement failed */
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
        PQclear(record(c, tg, sql, user, "failed", "not run", why, a, 0, NULL, rerr, sizeof rerr, rcode));
        osc_log(CONF_LOG_ERROR, "%s %s.%s: failed: %s", tg->strategy, tg->schema, tg->table, why);
        osc_result_error(r, code, strcmp(code, "55P03") == 0 ? "a session holds a lock for longer "
                         "than lock_timeout_ms; try again, or raise lock_timeout_ms" : NULL, "%s", why);
        return 0;
    }
    osc_log(CONF_LOG_INFO, "m%" PRId64 " %s%s%s: %s — %s, attempt %d, hold %.3f ms: %s", id,
            tg->schema, *tg->schema ? "." : "", tg->table, state, tg->strategy, a, hold_ms, sql);
    if (tag == NULL)
        return id;
    osc_strat_answer(r, id, tg->strategy, tg->schema, tg->table, tag);
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

/* See osc_strategy_int.h. */
bool osc_strat_run_retried(PGconn *c, const char *user, const char *sql, bool hold, const conf_t *s,
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

/* See osc_strategy_int.h. */
bool osc_strat_begin_row(PGconn *c, const char *strategy, const char *phase, const char *schema,
                      const char *table, const char *oid, const char *sql, const char *user,
                      char ids[32], osc_result *r)
{
    char err[1024], code[6];
    const char *v[] = {schema, table, oid, sql, user, strategy, phase};
    PGresult *t = osc_exec(c,
                           /* the job's lock taken with the row, in its statement: no
                            * restarting pgcutover can see the row without it */
                           "WITH m AS (INSERT INTO pgcutover.migrations (table_schema, table_name, "
                           "table_oid, statement, started_by, strategy, state, phase, settings, "
                           "phase_at) SELECT $1, $2, $3, $4, $5, $6, 'building', $7, "
                           "jsonb_build_object('indexes_before', (SELECT coalesce(jsonb_agg("
                           "indexrelid::text), '[]') FROM pg_index WHERE indrelid = $3::oid), "
                           "'constraints_before', (SELECT coalesce(jsonb_agg(oid::text), '[]') FROM "
                           "pg_constraint WHERE conrelid = $3::oid), 'catalog_before', "
                           OSC_CATALOG_SNAPSHOT_SQL("$3::oid") "), jsonb_build_object('building', "
                           "now()) RETURNING id) SELECT id, pg_catalog.pg_advisory_lock("
                           OSC_LOCK_CLASS_SQL ", id::int) FROM m",
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

/* See osc_strategy_int.h. */
void osc_strat_begin_job(PGconn *c, const char *ids)
{
    char sql[256], err[256], code[6];
    snprintf(sql, sizeof sql, "SET application_name = 'pgcutover m%s job'; SET "
                              "client_connection_check_interval = 1000", ids);
    if (!osc_run(c, sql, 0, NULL, err, sizeof err, code))
        osc_log(CONF_LOG_WARNING, "m%s: %s", ids, err);
}

/* See osc_strategy_int.h. */
void osc_strat_end_work(PGconn *c, const char *ids)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SET application_name = 'pgcutover m%s cleanup'; RESET role; SET "
                              "search_path = " OSC_SAFE_PATH "; RESET lock_timeout", ids);
    /* an ABORT's cancel may still land on the first try (it aims at "… job" sessions) */
    for (int i = 0; i < 10; i++) {
        PGresult *r = PQexec(c, sql);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (ok || PQstatus(c) != CONNECTION_OK)
            return;
    }
    osc_log(CONF_LOG_WARNING, "m%s: could not end the job's work: %s", ids, PQerrorMessage(c));
}

/* See osc_strategy_int.h. */
void osc_strat_finish_row(PGconn *c, const char *ids, bool ok, const char *why, const char *phase)
{
    const char *fv[] = {ids, ok ? "done" : "failed", ok ? NULL : why, phase};
    char err[256], code[6];
    osc_strat_end_work(c, ids); /* no cancel can reach the row's update */
    if (!osc_run(c, "UPDATE pgcutover.migrations SET state = CASE WHEN $2 = 'failed' AND phase = "
                    "'abort requested' THEN 'aborted' ELSE $2 END, error = $3, phase = $4, "
                    "updated_at = now(), phase_at = phase_at || jsonb_build_object($2::text, now()), "
                    /* what REVERT checks the table against (osc_revert.h) */
                    "settings = CASE WHEN $2 = 'done' THEN settings || jsonb_build_object("
                    "'catalog_after', " OSC_CATALOG_SNAPSHOT_SQL("table_oid") ") ELSE settings END "
                    "WHERE id = $1",
                 4, fv, err, sizeof err, code))
        osc_log(CONF_LOG_WARNING, "m%s: recording %s: %s", ids, fv[1], err);
    char sql[160];
    snprintf(sql, sizeof sql, "RESET application_name; RESET client_connection_check_interval; "
                              "SELECT pg_advisory_unlock(%d, %s)", OSC_LOCK_CLASS, ids);
    PQclear(PQexec(c, sql)); /* the job ends (no lock held: nothing to do) */
}

/* See osc_strategy_int.h. */
void osc_strat_nn_name(const char *col, char name[64])
{
    snprintf(name, 64, "pgcutover_nn_%.40s", col);
}

/* See osc_strategy_int.h. */
char *osc_strat_not_null_helper(const char *schema, const char *table, const char *col, char **finish,
                             char **drop)
{
    osc_sb cn = {0}, b = {0}, q = {0};
    char hn[64];
    osc_strat_nn_name(col, hn);
    osc_sb_addf(&cn, "%s", hn);
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
    /* Each SET NOT NULL: a helper CHECK (col IS NOT NULL) instead, NOT VALID; once it is
     * valid, SET NOT NULL needs no scan and the helper goes (PostgreSQL 12+). */
    char *finish = NULL, *base = osc_stmt_not_valid(sql, err, sizeof err), *not_valid = NULL;
    osc_sb nvb = {0}, set = {0}, drop = {0}, qt = {0};
    osc_sb_qualified(&qt, p->map.schema, p->map.table);
    char *q = osc_sb_take(&qt);
    int nn = 0;
    if (base && q) {
        osc_sb_addf(&nvb, "%s", *base ? base : "ALTER TABLE ");
        osc_sb_addf(&nvb, "%s", *base ? "" : q);
        for (int i = 0; i < p->stmt.ncmds; i++) {
            const char *col = p->stmt.cmds[i].column;
            if (!p->stmt.cmds[i].sets_not_null || col == NULL)
                continue;
            char h[64];
            osc_strat_nn_name(col, h);
            osc_sb_addf(&nvb, "%s ADD CONSTRAINT ", *base || nn ? "," : "");
            osc_sb_ident(&nvb, h);
            osc_sb_addf(&nvb, " CHECK (");
            osc_sb_ident(&nvb, col);
            osc_sb_addf(&nvb, " IS NOT NULL) NOT VALID");
            osc_sb_addf(&set, "%s ALTER COLUMN ", nn ? "," : "");
            osc_sb_ident(&set, col);
            osc_sb_addf(&set, " SET NOT NULL");
            osc_sb_addf(&drop, "%s DROP CONSTRAINT ", nn ? "," : "");
            osc_sb_ident(&drop, h);
            nn++;
        }
        not_valid = osc_sb_take(&nvb);
        char *st = osc_sb_take(&set), *dr = osc_sb_take(&drop);
        if (nn && st && dr) {
            osc_sb f = {0};
            osc_sb_addf(&f, "ALTER TABLE %s%s; ALTER TABLE %s%s", q, st, q, dr);
            finish = osc_sb_take(&f);
        }
        free(st);
        free(dr);
        if (not_valid == NULL || (nn && finish == NULL))
            snprintf(err, sizeof err, "out of memory");
    } else {
        free(osc_sb_take(&nvb));
        free(osc_sb_take(&set));
        free(osc_sb_take(&drop));
    }
    free(base);
    free(q);
    if (not_valid == NULL || (nn && finish == NULL)) {
        free(not_valid);
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
    osc_strat_begin_job(c, ids);
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
        if (!osc_strat_run_retried(c, user, PQgetvalue(t, i, 0), false, s, err, sizeof err, code))
            ok = false;
    if (ok && finish && !osc_strat_run_retried(c, user, finish, true, s, err, sizeof err, code))
        ok = false;
    for (int i = 0; !ok && strcmp(code, "23514") == 0 && i < p->stmt.ncmds; i++) {
        char h[64];
        if (!p->stmt.cmds[i].sets_not_null || p->stmt.cmds[i].column == NULL)
            continue;
        osc_strat_nn_name(p->stmt.cmds[i].column, h);
        if (strstr(err, h) == NULL)
            continue;
        snprintf(code, sizeof code, "23502"); /* as SET NOT NULL itself says it */
        snprintf(err, sizeof err, "column \"%s\" of relation \"%s\" contains null values",
                 p->stmt.cmds[i].column, p->map.table);
    }
    free(finish);
    osc_strat_end_work(c, ids);
    if (!ok) {
        snprintf(why, sizeof why, "%s", err);
        char sc[6];
        snprintf(sc, sizeof sc, "%s", code);
        /* Nothing half-done: the constraints it added go again, under the hold. */
        for (int i = 0; t && i < PQntuples(t); i++) {
            char e2[512], c2[6];
            if (!osc_strat_run_retried(c, user, PQgetvalue(t, i, 1), true, s, e2, sizeof e2, c2))
                osc_log(CONF_LOG_WARNING, "validate %s.%s: %s: %s", p->map.schema, p->map.table,
                        PQgetvalue(t, i, 1), e2);
        }
        snprintf(code, sizeof code, "%s", sc);
    }
    PQclear(t);
    osc_strat_finish_row(c, ids, ok, why, ok ? "validated" : "validation failed; the constraints it added were dropped");
    if (!ok) {
        osc_result_error(r, code, NULL, "%s", why);
        return;
    }
    osc_strat_answer(r, id, tg.strategy, tg.schema, tg.table, "ALTER TABLE");
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

void osc_strategy_data(PGconn *c, const char *user, const char *sql, const conf_t *s, osc_result *r)
{
    held_target t = {"data", "", "", "0", NULL, true};
    run_held(c, user, sql, &t, s, "done", "DATA", r);
}

void osc_strategy_block(PGconn *c, const char *user, const char *sql, const conf_t *s, osc_result *r)
{
    held_target t = {"block", "", "", "0", NULL, false};
    run_held(c, user, sql, &t, s, "done", "BLOCK", r);
}

