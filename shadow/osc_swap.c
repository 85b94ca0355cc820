/* osc_swap.c — the cutover step of a migration's driver thread (DESIGN.md §2 step 7):
 * the swap sequence under the proxy's hold, the LOCK TABLE with cutover_force, and the
 * statements run after the swap's commit. See osc_driver.h; the driver's other steps are
 * in osc_migration.c, the swap's DDL in osc_cutover.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "osc_capture.h"
#include "osc_cutover.h"
#include "osc_db.h"
#include "osc_driver.h"
#include "osc_plan.h"
#include "osc_window.h"

/* LOCK TABLE lock_sql; with force, cancel (or, when idle in a transaction, terminate)
 * the sessions blocking it after half of lock_timeout, and log which. */
static bool lock_tables(run_ctx *x, const char *lock_sql, int lt_ms, bool force, char *err,
                        size_t errlen, char code[6])
{
    if (!force)
        return osc_run(x->c, lock_sql, 0, NULL, err, errlen, code);
    int pid = PQbackendPID(x->c);
    if (!PQsendQuery(x->c, lock_sql)) {
        snprintf(err, errlen, "%s", PQerrorMessage(x->c));
        snprintf(code, 6, "08006");
        return false;
    }
    struct timespec ts = {lt_ms / 2000, (long)(lt_ms / 2 % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    char side_err[256], sql[400];
    PGconn *side = osc_connect(x->m->db, "pgcutover cutover_force", side_err, sizeof side_err);
    if (side) {
        snprintf(sql, sizeof sql,
                 "SELECT pid, usename, state, left(query, 100), CASE WHEN state = 'active' THEN "
                 "pg_cancel_backend(pid) ELSE pg_terminate_backend(pid) END FROM pg_stat_activity "
                 "WHERE pid = ANY(pg_blocking_pids(%d))",
                 pid);
        PGresult *r = PQexec(side, sql);
        for (int i = 0; r && PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
            osc_log(CONF_LOG_WARNING,
                    "m%" PRId64 " cutover_force: %s backend %s (%s, %s) blocking the cutover: %s",
                    x->m->id, strcmp(PQgetvalue(r, i, 2), "active") == 0 ? "cancelled" : "terminated",
                    PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
        PQclear(r);
        PQfinish(side);
    }
    bool ok = true;
    PGresult *r;
    while ((r = PQgetResult(x->c)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && ok) {
            ok = false;
            const char *c = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            snprintf(code, 6, "%s", c ? c : "XX000");
            snprintf(err, errlen, "%s", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                                            ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                                            : PQerrorMessage(x->c));
        }
        PQclear(r);
    }
    return ok;
}

/* One swap sequence: up to cutover_attempts tries of hold → lock → swap → commit →
 * release. R_DONE when swapped; R_OK back in ready (with the reason in phase) when the
 * locks never came or the swap failed. */
step_rc osc_drv_cutover(run_ctx *x)
{
    osc_mig *m = x->m;
    conf_t s = {0};
    osc_hooks.settings(&s);
    int attempts = s.cutover_attempts, window_s = s.revert_window;
    conf_free(&s);
    char code[6] = "", old_name[64], sql[512];
    osc_plan_table_name(x->map.table, m->id, "old", old_name, sizeof old_name);
    if (!osc_drv_set_state(x, "cutting_over", "ANALYZE of the shadow", NULL))
        return R_CONN;
    osc_sb q = {0};
    osc_sb_addf(&q, "ANALYZE ");
    osc_sb_qualified(&q, x->map.shadow_schema, x->map.shadow_table);
    char *analyze = osc_sb_take(&q);
    bool ok = analyze && osc_run(x->c, analyze, 0, NULL, x->err, sizeof x->err, code);
    free(analyze);
    if (!ok)
        return osc_drv_failed(x, code) == R_CONN ? R_CONN : osc_drv_fail_with(x, x->err);
    /* The revert window's row, log and function before the hold: only its trigger is
     * made under the lock (osc_window.h). Its failure costs nothing but that time. */
    char pwhy[1200] = "";
    int64_t prepared = osc_window_prepare(x->c, &x->map, old_name, window_s, pwhy, sizeof pwhy);
    if (prepared == 0)
        osc_log(CONF_LOG_WARNING, "m%" PRId64 ": %s (made under the lock instead)", m->id, pwhy);
    osc_sb_addf(&q, "LOCK TABLE ");
    osc_sb_qualified(&q, x->map.schema, x->map.table);
    osc_sb_addf(&q, ", ");
    osc_sb_qualified(&q, x->map.shadow_schema, x->map.shadow_table);
    osc_sb_addf(&q, " IN ACCESS EXCLUSIVE MODE");
    char *lock_sql = osc_sb_take(&q);
    step_rc rc = R_OK;
    int backoff_ms = 100, a;
    bool swapped = false;
    char why[1700] = "";
    for (a = 1; lock_sql && a <= attempts && !swapped; a++) {
        int lt;
        bool force;
        pthread_mutex_lock(&m->lock);
        lt = m->lock_timeout_ms;
        force = m->cutover_force;
        pthread_mutex_unlock(&m->lock);
        if ((rc = osc_drv_wait_command(m, 0)) != R_OK)
            break;
        /* Drain the log outside the hold, so what is left for the lock is a moment's. */
        if ((rc = osc_drv_apply_log(x, NULL)) != R_OK)
            break;
        snprintf(sql, sizeof sql, "BEGIN; SET LOCAL lock_timeout = %d", lt);
        osc_hooks.hold();
        double t_hold = osc_drv_now_s();
        ok = osc_run(x->c, sql, 0, NULL, x->err, sizeof x->err, code) &&
             lock_tables(x, lock_sql, lt, force && a > 1, x->err, sizeof x->err, code);
        double t_lock = osc_drv_now_s();
        int errors = 0;
        if (ok) { /* the table under the lock is the one migrated, not one made since under
                   * its name (a DROP and CREATE during the migration) */
            osc_sb n = {0};
            osc_sb_qualified(&n, x->map.schema, x->map.table);
            char *name = osc_sb_take(&n);
            const char *v[] = {x->ids, name};
            PGresult *t = name ? osc_exec(x->c, "SELECT table_oid = to_regclass($2)::oid, table_oid "
                                                "FROM pgcutover.migrations WHERE id = $1",
                                          2, v, x->err, sizeof x->err, code)
                               : NULL;
            ok = t != NULL;
            if (t && PQgetvalue(t, 0, 0)[0] != 't') {
                errors = 1;
                snprintf(x->apply_err, sizeof x->apply_err, "table %s was dropped or replaced "
                         "during the migration: nothing swapped", name);
            }
            /* Objects bound to the table by OID made since the admission (a SQL-body
             * function, a rule: during a long copy, or in a revert window's day) would go
             * on using the table swapped out: no swap; back to ready, saying which. */
            char found[800] = "";
            unsigned oid = t && !errors ? (unsigned)strtoul(PQgetvalue(t, 0, 1), NULL, 10) : 0;
            ok = ok && (errors || osc_plan_bound(x->c, oid, found, sizeof found, x->err,
                                                 sizeof x->err, code));
            if (ok && found[0]) {
                ok = false;
                snprintf(code, 6, "0A000"); /* not retryable: the objects stay until dropped */
                snprintf(x->err, sizeof x->err, "these objects are bound to %s and would go on "
                         "using the table swapped out: %s; drop them (create them again after "
                         "the swap), then CUTOVER MIGRATION %" PRId64, name, found, m->id);
            }
            PQclear(t);
            free(name);
        }
        if (ok && !errors) { /* the log's last rows, now that nothing writes */
            ok = osc_capture_apply(x->c, &x->map, false, NULL, x->err, sizeof x->err, code);
            errors = !ok && strncmp(code, "08", 2) != 0 && !osc_drv_retryable(code) &&
                     strcmp(code, "57014") != 0;
            if (errors)
                snprintf(x->apply_err, sizeof x->apply_err, "an application write cannot be applied "
                         "to the shadow table (SQLSTATE %s): %.1400s", code, x->err);
        }
        osc_sb after = {0};
        if (ok && errors == 0) {
            ok = osc_cutover_swap(x->c, &x->map, old_name, &after, x->err, sizeof x->err, code);
            /* The revert window (osc_window.h) opens in the same transaction; a revert's own
             * swap marks the migration it reverted. Neither can fail the swap. */
            char wwhy[1200] = "", rids[32] = "0", wms[32];
            if (ok) {
                double tw = osc_drv_now_s(); /* part of the hold: recorded to be seen */
                if (prepared < 0) /* no exact inverse: said before the hold, nothing to open */
                    snprintf(wwhy, sizeof wwhy, "%s", pwhy);
                else
                    snprintf(rids, sizeof rids, "%" PRId64, osc_window_open(x->c, &x->map, old_name,
                                                                            window_s, prepared, wwhy,
                                                                            sizeof wwhy));
                snprintf(wms, sizeof wms, "%.3f", (osc_drv_now_s() - tw) * 1000);
                const char *wv[] = {x->ids, rids, wwhy[0] ? wwhy : NULL, wms};
                char werr[512], wcode[6];
                bool rec = osc_run(x->c, "SAVEPOINT pgc_wrec", 0, NULL, werr, sizeof werr, wcode);
                if (!rec || !osc_run(x->c,
                             "UPDATE pgcutover.migrations SET settings = settings || "
                             "jsonb_build_object('revert_window', nullif($2::bigint, 0), "
                             "'revert_refused', $3::text, 'revert_window_open_ms', $4::float8) "
                             "WHERE id = $1::bigint",
                             4, wv, werr, sizeof werr, wcode) ||
                    !osc_run(x->c,
                             "UPDATE pgcutover.migrations f SET settings = f.settings || "
                             "jsonb_build_object('reverted_by', jsonb_build_array($1::bigint)), "
                             "old_name = NULL, " /* its old table is the live one again */
                             "phase = 'reverted by migration ' || $1::text, updated_at = now() FROM "
                             "pgcutover.migrations r WHERE r.id = $1::bigint AND f.id = r.revert_of",
                             1, wv, werr, sizeof werr, wcode)) {
                    osc_log(CONF_LOG_WARNING, "m%" PRId64 ": recording the revert window: %s", m->id, werr);
                    if (rec) /* the swap goes on without these notes */
                        PQclear(PQexec(x->c, "ROLLBACK TO SAVEPOINT pgc_wrec"));
                } else {
                    PQclear(PQexec(x->c, "RELEASE SAVEPOINT pgc_wrec"));
                }
            }
            /* The figures so far go in with done, so no reader sees done without them;
             * the final ones (after COMMIT and release) follow a moment later. */
            char attempts_s[16], hold_s[32], lock_s[32], wait_s[32];
            double t = osc_drv_now_s();
            snprintf(attempts_s, sizeof attempts_s, "%d", a);
            snprintf(hold_s, sizeof hold_s, "%.3f", (t - t_hold) * 1000);
            snprintf(lock_s, sizeof lock_s, "%.3f", (t - t_lock) * 1000);
            snprintf(wait_s, sizeof wait_s, "%.3f",
                     osc_hooks.hold_wait_ms ? osc_hooks.hold_wait_ms() : 0.0);
            /* The statements for after the commit (VALIDATE of the foreign keys re-added
             * NOT VALID) are recorded with done, so a crash before they ran leaves them to
             * the next start (osc_drv_run_post_commit), never NOT VALID for good. */
            const char *v[] = {x->ids, old_name, attempts_s, hold_s, lock_s, wait_s,
                               after.len ? after.s : NULL};
            ok = ok && !after.oom &&
                 osc_run(x->c,
                         "UPDATE pgcutover.migrations SET state = 'done', phase = 'swapped', "
                         "old_name = $2, cutover_attempts = $3, cutover_hold_ms = $4, "
                         "cutover_lock_ms = $5, cutover_max_wait_ms = $6, post_commit = $7, "
                         "updated_at = now(), phase_at = phase_at || jsonb_build_object('done', "
                         "now()) WHERE id = $1",
                         7, v, x->err, sizeof x->err, code);
            /* Sessions re-prepare their statements before their next message (issue 14).
             * Marked before the COMMIT: a statement waiting for our lock inside a
             * transaction goes on the moment the COMMIT releases it, and the client's next
             * message must find the mark. A re-prepare that starts earlier waits for the
             * lock too and then resolves the name to the new table (PostgreSQL re-looks up
             * a relation whose lock it waited for); should the COMMIT fail, it re-makes
             * the same statements. */
            if (ok && osc_hooks.row_type_changed)
                osc_hooks.row_type_changed(PQdb(x->c), m->id);
            ok = ok && osc_run(x->c, "COMMIT", 0, NULL, x->err, sizeof x->err, code);
        }
        double t_commit = osc_drv_now_s();
        if (!ok || errors)
            PQclear(PQexec(x->c, "ROLLBACK"));
        osc_hooks.release();
        double t_release = osc_drv_now_s(); /* the hold ends here, not at the COMMIT */
        if (ok && errors == 0) {
            swapped = true;
            osc_drv_set_status(m, "done", "");
            double max_wait = osc_hooks.last_hold_max_wait_ms ? osc_hooks.last_hold_max_wait_ms() : 0;
            if (osc_hooks.hold_wait_ms && osc_hooks.hold_wait_ms() > max_wait)
                max_wait = osc_hooks.hold_wait_ms(); /* another hold runs on (PAUSE) */
            char hold_ms[32], lock_ms[32], wait_ms[32];
            snprintf(hold_ms, sizeof hold_ms, "%.3f", (t_release - t_hold) * 1000);
            snprintf(lock_ms, sizeof lock_ms, "%.3f", (t_commit - t_lock) * 1000);
            snprintf(wait_ms, sizeof wait_ms, "%.3f", max_wait);
            const char *v[] = {x->ids, hold_ms, lock_ms, wait_ms};
            osc_run(x->c, "UPDATE pgcutover.migrations SET cutover_hold_ms = $2, cutover_lock_ms = $3, "
                          "cutover_max_wait_ms = $4 WHERE id = $1",
                    4, v, x->err, sizeof x->err, code);
            osc_log(CONF_LOG_INFO,
                    "m%" PRId64 " %s: done — swapped on attempt %d: hold %s ms, lock %s ms, longest "
                    "client wait %s ms; old table pgcutover.%s",
                    m->id, m->table, a, hold_ms, lock_ms, wait_ms, old_name);
            free(after.s);
            osc_drv_run_post_commit(x);
            break;
        }
        free(after.s);
        if (errors)
            break;
        if (PQstatus(x->c) != CONNECTION_OK) {
            rc = R_CONN;
            break;
        }
        if (!osc_drv_retryable(code)) { /* not a lock timeout: retrying will not help */
            snprintf(why, sizeof why, "cutover failed: %.1500s", x->err);
            break;
        }
        snprintf(why, sizeof why, "cutover: lock_timeout (%d ms) on %d attempts: %.1500s", lt, a, x->err);
        osc_log(CONF_LOG_WARNING, "m%" PRId64 " %s: cutover attempt %d/%d: %s; backing off %d ms",
                m->id, m->table, a, attempts, x->err, backoff_ms);
        if (a < attempts && (rc = osc_drv_wait_command(m, backoff_ms + rand() % (backoff_ms / 2 + 1))) != R_OK)
            break;
        if (backoff_ms < 5000)
            backoff_ms *= 2;
    }
    free(lock_sql);
    step_rc out = swapped ? R_DONE : rc;
    if (!swapped && rc != R_CONN) {
        step_rc errs = R_OK;
        if (*x->apply_err) {
            char reason[1800];
            snprintf(reason, sizeof reason, "%s", x->apply_err);
            x->apply_err[0] = 0;
            errs = osc_drv_fail_with(x, reason);
        } else {
            errs = osc_drv_apply_log(x, NULL);
        }
        if (errs != R_OK) {
            out = errs;
        } else {
            char phase[1900];
            snprintf(phase, sizeof phase, "%s; the shadow is kept current: CUTOVER MIGRATION %" PRId64
                                          " tries again, ABORT MIGRATION undoes it",
                     *why ? why : "cutover interrupted", m->id);
            if (!osc_drv_set_state(x, "ready", phase, NULL))
                out = R_CONN;
        }
    }
    /* The outcome is recorded: wake CUTOVER MIGRATION. */
    pthread_mutex_lock(&m->lock);
    m->cutover_req = false;
    m->cutover_blocked = !swapped;
    m->cutover_gen++;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    return out;
}

/* The statements recorded for after the cutover's commit (post_commit), one per line,
 * outside the lock (writes go on meanwhile); cleared when they have run. A statement that
 * fails is logged and skipped (a foreign key the data now violates stays NOT VALID, as
 * the log line says). Returns false when the connection is gone. */
bool osc_drv_run_post_commit(run_ctx *x)
{
    const char *v[] = {x->ids};
    char code[6];
    PGresult *r = osc_exec(x->c, "SELECT post_commit FROM pgcutover.migrations WHERE id = $1 AND "
                                 "post_commit IS NOT NULL", 1, v, x->err, sizeof x->err, code);
    if (r == NULL)
        return PQstatus(x->c) == CONNECTION_OK;
    char *list = PQntuples(r) == 1 ? strdup(PQgetvalue(r, 0, 0)) : NULL, *line = list;
    PQclear(r);
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (*line && !osc_run(x->c, line, 0, NULL, x->err, sizeof x->err, code))
            osc_log(CONF_LOG_WARNING, "m%" PRId64 " %s: %s: %s", x->m->id, x->m->table, line, x->err);
        line = nl ? nl + 1 : NULL;
    }
    free(list);
    return osc_run(x->c, "UPDATE pgcutover.migrations SET post_commit = NULL WHERE id = $1", 1, v,
                   x->err, sizeof x->err, code) ||
           PQstatus(x->c) == CONNECTION_OK;
}
