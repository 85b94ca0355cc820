/* osc_strategy.c — see osc_strategy.h. */
#include "osc_strategy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "osc_db.h"
#include "osc_rights.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* The migration row of a statement run instantly, in state (done or failed). */
static const char record_sql[] =
    "INSERT INTO pgcutover.migrations (table_schema, table_name, table_oid, statement, "
    "started_by, strategy, state, phase, error, cutover_attempts, cutover_hold_ms, "
    "cutover_lock_ms, phase_at) VALUES ($1, $2, $3, $4, $5, 'instant', $6, $7, $8, $9, $10, "
    "$10, jsonb_build_object($6::text, now())) RETURNING id";

static PGresult *record(PGconn *c, const osc_plan *p, const char *sql, const char *user,
                        const char *state, const char *phase, const char *error, int attempts,
                        double hold_ms, char *err, size_t errlen, char code[6])
{
    char oid[16], att[16], hold[32];
    snprintf(oid, sizeof oid, "%u", p->table_oid);
    snprintf(att, sizeof att, "%d", attempts);
    snprintf(hold, sizeof hold, "%.3f", hold_ms);
    const char *v[] = {p->map.schema, p->map.table, oid, sql, user, state, phase, error, att, hold};
    return osc_exec(c, record_sql, 10, v, err, errlen, code);
}

void osc_strategy_instant(PGconn *c, const char *user, const char *sql, const osc_plan *p,
                          const conf_t *s, osc_result *r)
{
    char err[1024] = "", code[6] = "", lt[64];
    char *path = osc_rights_user_path(user);
    if (path == NULL || !osc_state_ensure(c, err, sizeof err) ||
        !osc_rights_executor(c, OSC_AS_USER, user, err, sizeof err, code)) {
        osc_result_error(r, *code ? code : "XX000", NULL, "%s", path ? err : "out of memory");
        free(path);
        return;
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
            snprintf(phase, sizeof phase, "instant: run under the proxy's hold on attempt %d", a);
            row = record(c, p, sql, user, "done", phase, NULL, a, hold_ms, err, sizeof err, code);
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
        osc_log(CONF_LOG_WARNING, "instant %s.%s: lock_timeout (%d ms) on attempt %d/%d: %s; "
                                  "backing off",
                p->map.schema, p->map.table, s->lock_timeout_ms, a, attempts, err);
        int ms = backoff_ms + rand() % (backoff_ms / 2 + 1);
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (backoff_ms < 3000)
            backoff_ms *= 2;
    }
    free(path);
    if (!ok) {
        char why[1200];
        snprintf(why, sizeof why, "%s%s", err, strcmp(code, "55P03") == 0 ? " (lock_timeout on every attempt)" : "");
        char rerr[256], rcode[6];
        PQclear(record(c, p, sql, user, "failed", "instant: not run", why, a, 0, rerr, sizeof rerr,
                       rcode));
        osc_log(CONF_LOG_ERROR, "instant %s.%s: failed: %s", p->map.schema, p->map.table, why);
        osc_result_error(r, code, strcmp(code, "55P03") == 0 ? "a session holds a lock on the "
                         "table for longer than lock_timeout_ms; try again, or raise it with "
                         "SET lock_timeout_ms" : NULL, "%s", why);
        return;
    }
    osc_log(CONF_LOG_INFO, "m%" PRId64 " %s.%s: done — instant, attempt %d, hold %.3f ms: %s", id,
            p->map.schema, p->map.table, a, hold_ms, sql);
    osc_result_col(r, "id", OSC_T_INT8);
    osc_result_col(r, "table", OSC_T_TEXT);
    osc_result_col(r, "state", OSC_T_TEXT);
    osc_result_col(r, "strategy", OSC_T_TEXT);
    char ids[32], table[300];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    snprintf(table, sizeof table, "%s.%s", p->map.schema, p->map.table);
    const char *rowv[] = {ids, table, "done", "instant"};
    osc_result_row(r, rowv);
    snprintf(r->tag, sizeof r->tag, "ALTER TABLE");
}
