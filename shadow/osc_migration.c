/* osc_migration.c — see osc_migration.h. One thread per migration, blocking libpq on
 * its own connection, holding pg_advisory_lock(OSC_LOCK_CLASS, id) on that session. The
 * cutover step is in osc_swap.c; what the two share is in osc_driver.h. */
#include "osc_migration.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "osc_backfill.h"
#include "osc_capture.h"
#include "osc_db.h"
#include "osc_driver.h"
#include "osc_rights.h"
#include "osc_plan.h"
#include "osc_window.h"


double osc_drv_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void osc_drv_set_status(osc_mig *m, const char *state, const char *throttle)
{
    pthread_mutex_lock(&m->lock);
    if (state)
        snprintf(m->state, sizeof m->state, "%s", state);
    if (throttle)
        snprintf(m->throttle, sizeof m->throttle, "%s", throttle);
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

/* Wait up to ms for a command; returns the one pending (abort > stop > none). */
step_rc osc_drv_wait_command(osc_mig *m, int ms)
{
    struct timespec until = osc_deadline(ms);
    pthread_mutex_lock(&m->lock);
    while (!m->abort && !m->stop && ms > 0)
        if (pthread_cond_timedwait(&m->cond, &m->lock, &until) == ETIMEDOUT)
            break;
    step_rc rc = m->abort ? R_ABORT : m->stop ? R_STOP : R_OK;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* A failed statement: connection lost, or a real error. */
step_rc osc_drv_failed(run_ctx *x, const char *code)
{
    return (PQstatus(x->c) != CONNECTION_OK || strncmp(code, "08", 2) == 0 ||
            strcmp(code, "57P01") == 0)
               ? R_CONN
               : R_FAIL;
}

bool osc_drv_set_state(run_ctx *x, const char *state, const char *phase, const char *error)
{
    if (!osc_state_set(x->c, x->m->id, state, phase, error, x->err, sizeof x->err))
        return false;
    osc_drv_set_status(x->m, state, NULL);
    osc_log(CONF_LOG_INFO, "m%" PRId64 " %s: %s%s%s", x->m->id, x->m->table, state,
            phase ? " — " : "", phase ? phase : "");
    return true;
}

bool osc_mig_cleanup(void *conn, int64_t id, int lock_timeout_ms, char *err, size_t errlen)
{
    PGconn *c = conn;
    char ids[32], code[6];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *v[] = {ids};
    PGresult *r = osc_exec(c,
                           /* a revert window's shadow is the kept old table: never dropped here */
                           "SELECT table_schema, table_name, shadow_schema, CASE WHEN revert_of IS "
                           "NULL THEN coalesce(shadow_name, '') ELSE '' END "
                           "FROM pgcutover.migrations WHERE id = $1",
                           1, v, err, errlen, code);
    if (r == NULL || PQntuples(r) != 1) {
        if (r)
            snprintf(err, errlen, "migration %s not found", ids);
        PQclear(r);
        return false;
    }
    osc_window_discard(c, id, "the migration it reverts ended without its swap");
    osc_map m = {.id = id};
    m.schema = strdup(PQgetvalue(r, 0, 0));
    m.table = strdup(PQgetvalue(r, 0, 1));
    m.shadow_schema = strdup(PQgetvalue(r, 0, 2));
    m.shadow_table = strdup(PQgetvalue(r, 0, 3));
    PQclear(r);
    char fn[64];
    osc_sql_function_name(id, fn, sizeof fn);
    osc_sb b = {0};
    osc_sb_addf(&b, "SELECT to_regprocedure('pgcutover.%s()') IS NOT NULL", fn);
    char *q = osc_sb_take(&b);
    r = q ? osc_exec(c, q, 0, NULL, err, errlen, code) : NULL;
    free(q);
    bool has_fn = r && PQgetvalue(r, 0, 0)[0] == 't', ok = r != NULL;
    PQclear(r);
    char *noop = has_fn ? osc_sql_trigger_function(&m, true) : NULL;
    if (ok && has_fn)
        ok = noop && osc_run(c, noop, 0, NULL, err, errlen, code);
    free(noop);
    char *drop = ok ? osc_sql_drop_triggers(&m) : NULL;
    if (drop)
        ok = osc_run_locked(c, drop, 0, NULL, true, lock_timeout_ms, 10, err, errlen, code);
    free(drop);
    if (ok) {
        char *drop_fns = osc_sql_drop_functions(&m);
        osc_sb_addf(&b, "%s", drop_fns ? drop_fns : "");
        b.oom |= drop_fns == NULL;
        free(drop_fns);
        if (*m.shadow_table) {
            osc_sb_addf(&b, "; DROP TABLE IF EXISTS ");
            osc_sb_qualified(&b, m.shadow_schema, m.shadow_table);
        }
        q = osc_sb_take(&b);
        ok = q && osc_run(c, q, 0, NULL, err, errlen, code);
        free(q);
    }
    osc_map_free(&m);
    return ok;
}

/* ---------- steps ---------- */

step_rc osc_drv_fail_with(run_ctx *x, const char *why)
{
    char reason[1536];
    snprintf(reason, sizeof reason, "%s", why);
    osc_log(CONF_LOG_ERROR, "m%" PRId64 " %s: failed: %s", x->m->id, x->m->table, reason);
    if (!osc_drv_set_state(x, "failed", "cleaning up", reason))
        return R_CONN;
    int lt;
    pthread_mutex_lock(&x->m->lock);
    lt = x->m->lock_timeout_ms;
    pthread_mutex_unlock(&x->m->lock);
    char err[1024];
    bool clean = osc_mig_cleanup(x->c, x->m->id, lt, err, sizeof err);
    char phase[1200];
    snprintf(phase, sizeof phase, clean ? "cleaned up: triggers and shadow dropped"
                                        : "cleanup incomplete (ABORT MIGRATION retries it): %s",
             err);
    osc_drv_set_state(x, "failed", phase, NULL);
    return R_FAIL;
}

/* Lock and serialization conflicts with the application (a foreign key's check of the
 * shadow waits for a referenced row it holds): retried, never the migration's failure. */
bool osc_drv_retryable(const char *code)
{
    return strcmp(code, "55P03") == 0 || strcmp(code, "40P01") == 0 || strcmp(code, "40001") == 0;
}

/* Apply the change log in a transaction of its own (osc_capture.h). A row the shadow
 * rejects (a CHECK or cast the ALTER adds, a unique key it adds) fails the migration, with
 * PostgreSQL's reason: the application's write itself succeeded, as it would without
 * pgcutover. */
step_rc osc_drv_apply_log(run_ctx *x, int64_t *applied)
{
    char code[6] = "";
    if (osc_capture_apply(x->c, &x->map, true, applied, x->err, sizeof x->err, code))
        return R_OK;
    if (PQstatus(x->c) != CONNECTION_OK || strncmp(code, "08", 2) == 0 || strcmp(code, "57P01") == 0)
        return R_CONN;
    if (osc_drv_retryable(code)) { /* the log stays; the next application takes it */
        osc_log(CONF_LOG_DEBUG, "m%" PRId64 " applying the change log: %s (%s); retried",
                x->m->id, x->err, code);
        return osc_drv_wait_command(x->m, 100);
    }
    char why[1700];
    snprintf(why, sizeof why, "an application write cannot be applied to the shadow table "
                              "(SQLSTATE %s): %s", code, x->err);
    return osc_drv_fail_with(x, why);
}

/* The change log (if missing), the owner's executor on this connection and this build's
 * capture function (CREATE OR REPLACE: no table lock). false with x->err and code. */
static bool install_capture(run_ctx *x, char code[6])
{
    char *log = osc_sql_create_log(&x->map), *fn = osc_sql_trigger_function(&x->map, false);
    if (fn == NULL || log == NULL)
        snprintf(x->err, sizeof x->err, "%s", x->map.owner ? "out of memory" : "the table has no owner (is it gone?)");
    bool ok = fn && log && osc_run(x->c, log, 0, NULL, x->err, sizeof x->err, code) &&
              osc_rights_executor(x->c, OSC_AS_OWNER, x->map.owner, x->err, sizeof x->err, code) &&
              osc_run(x->c, fn, 0, NULL, x->err, sizeof x->err, code);
    free(fn);
    free(log);
    return ok;
}

static step_rc prepare(run_ctx *x)
{
    if (!osc_drv_set_state(x, "preparing", "creating the shadow table", NULL))
        return R_CONN;
    const char *v[] = {x->ids};
    char code[6];
    PGresult *r = osc_exec(x->c, "SELECT statement, started_by FROM pgcutover.migrations WHERE id = $1",
                           1, v, x->err, sizeof x->err, code);
    if (r == NULL)
        return osc_drv_failed(x, code);
    osc_plan p;
    osc_result res;
    osc_result_init(&res);
    char shadow[64];
    int lt;
    pthread_mutex_lock(&x->m->lock);
    lt = x->m->lock_timeout_ms;
    pthread_mutex_unlock(&x->m->lock);
    bool ok = osc_plan_check(x->c, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), &p, &res);
    PQclear(r);
    if (ok) {
        osc_plan_table_name(p.map.table, x->m->id, "new", shadow, sizeof shadow);
        ok = osc_plan_shadow(x->c, &p, x->m->id, shadow, lt, true, &res);
    }
    osc_plan_free(&p);
    if (!ok) {
        snprintf(x->err, sizeof x->err, "prepare: %s", res.message);
        osc_result_free(&res);
        return PQstatus(x->c) != CONNECTION_OK ? R_CONN : osc_drv_fail_with(x, x->err);
    }
    osc_result_free(&res);
    if (!osc_map_load(x->c, x->m->id, &x->map, x->err, sizeof x->err))
        return osc_drv_failed(x, "XX000") == R_CONN ? R_CONN : osc_drv_fail_with(x, x->err);
    x->have_map = true;
    /* Triggers: the function needs no table lock; CREATE TRIGGER takes SHARE ROW
     * EXCLUSIVE on the original, so it goes through the hold. */
    if (!osc_drv_set_state(x, "preparing", "installing dual-write triggers", NULL))
        return R_CONN;
    char *trg = osc_sql_create_triggers(&x->map);
    if (trg == NULL)
        snprintf(x->err, sizeof x->err, "out of memory");
    bool done = trg && install_capture(x, code) &&
                osc_run_locked(x->c, trg, 0, NULL, true, lt, 10, x->err, sizeof x->err, code);
    free(trg);
    x->capture_current = done;
    if (!done) {
        char why[1600];
        snprintf(why, sizeof why, "installing the dual-write triggers: %s", x->err);
        return osc_drv_failed(x, code) == R_CONN ? R_CONN : osc_drv_fail_with(x, why);
    }
    /* Rows with a key above this are the triggers' job (they are in place now). */
    char *q = osc_sql_max_key(&x->map);
    r = q ? osc_exec(x->c, q, 0, NULL, x->err, sizeof x->err, code) : NULL;
    free(q);
    if (r == NULL)
        return osc_drv_failed(x, code);
    osc_sb b = {0};
    osc_sb_addf(&b, "UPDATE pgcutover.migrations SET max_key = ");
    if (PQntuples(r) == 0)
        osc_sb_addf(&b, "NULL");
    else
        osc_sb_text_array(&b, 2, x->map.nkeys);
    osc_sb_addf(&b, " WHERE id = $1");
    const char *mv[OSC_MAX_KEYS + 1] = {x->ids};
    int nparams = 1;
    for (int k = 0; PQntuples(r) > 0 && k < x->map.nkeys; k++)
        mv[nparams++] = PQgetvalue(r, 0, k);
    q = osc_sb_take(&b);
    ok = q && osc_run(x->c, q, nparams, mv, x->err, sizeof x->err, code);
    free(q);
    PQclear(r);
    if (!ok)
        return osc_drv_failed(x, code);
    return osc_drv_set_state(x, "copying", "backfill", NULL) ? R_OK : R_CONN;
}

/* Once per connection of the driver: the owner's executor on it (osc_capture.h), and a
 * migration resumed from its row (a restart, possibly of an earlier build) writes through
 * this build's dual-write function and change log: CREATE OR REPLACE needs no table lock,
 * and the function is given to the table's owner with the pinned search_path again
 * (README "Security model"). */
static step_rc refresh_capture(run_ctx *x)
{
    char code[6] = "";
    if (install_capture(x, code)) {
        x->capture_current = true;
        return R_OK;
    }
    char why[1700];
    snprintf(why, sizeof why, "refreshing the dual-write function: %s", x->err);
    return PQstatus(x->c) != CONNECTION_OK ? R_CONN : osc_drv_fail_with(x, why);
}

/* Text parameters of key array column col of the migration row into vals (strdup'ed). */
static bool load_key(run_ctx *x, const char *col, char **vals, bool *present)
{
    char sql[200], code[6];
    snprintf(sql, sizeof sql, "SELECT %s[k] FROM pgcutover.migrations, generate_series(1, %d) k "
                              "WHERE id = $1 AND %s IS NOT NULL ORDER BY k",
             col, x->map.nkeys, col);
    const char *v[] = {x->ids};
    PGresult *r = osc_exec(x->c, sql, 1, v, x->err, sizeof x->err, code);
    if (r == NULL)
        return false;
    *present = PQntuples(r) == x->map.nkeys;
    for (int k = 0; *present && k < x->map.nkeys; k++)
        vals[k] = strdup(PQgetvalue(r, k, 0));
    PQclear(r);
    return true;
}

static void free_keys(char **v, int n)
{
    for (int i = 0; i < n; i++) {
        free(v[i]);
        v[i] = NULL;
    }
}

static step_rc backfill(run_ctx *x)
{
    osc_mig *m = x->m;
    char *last[OSC_MAX_KEYS] = {0}, *max[OSC_MAX_KEYS] = {0};
    bool has_last = false, has_max = false;
    char code[6] = "";
    step_rc rc = R_OK;
    osc_backfill bf;
    memset(&bf, 0, sizeof bf);
    if (!load_key(x, "max_key", max, &has_max) || !load_key(x, "checkpoint", last, &has_last) ||
        !osc_backfill_open(&bf, &x->map, m->db, x->err, sizeof x->err)) {
        rc = R_CONN;
        goto out;
    }
    int batch;
    pthread_mutex_lock(&m->lock);
    batch = m->batch_size;
    pthread_mutex_unlock(&m->lock);
    double window_start = osc_drv_now_s(), last_log = osc_drv_now_s();
    int64_t window_rows = 0;
    int retries = 0, dup_retries = 0;
    while (has_max) {
        pthread_mutex_lock(&m->lock);
        bool pause = m->pause;
        int target = m->target_batch_ms, cap = m->max_rows_per_second;
        if (m->batch_reset) {
            batch = m->batch_size;
            m->batch_reset = false;
        }
        int base_batch = m->batch_size > 0 ? m->batch_size : 1;
        pthread_mutex_unlock(&m->lock);
        rc = osc_drv_wait_command(m, 0);
        if (rc != R_OK)
            break;
        if (pause) {
            if (!osc_drv_set_state(x, "paused", "backfill paused by PAUSE MIGRATION", NULL)) {
                rc = R_CONN;
                break;
            }
            osc_drv_set_status(m, NULL, "paused");
            pthread_mutex_lock(&m->lock);
            while (m->pause && !m->abort && !m->stop)
                pthread_cond_wait(&m->cond, &m->lock);
            pthread_mutex_unlock(&m->lock);
            osc_drv_set_status(m, NULL, "");
            if ((rc = osc_drv_wait_command(m, 0)) != R_OK)
                break;
            if (!osc_drv_set_state(x, "copying", "backfill", NULL)) {
                rc = R_CONN;
                break;
            }
            window_start = osc_drv_now_s();
            window_rows = 0;
        }
        if ((rc = osc_drv_apply_log(x, NULL)) != R_OK)
            break;
        /* Throttled: one range at a time, no bigger than a second's worth. */
        int nranges = cap > 0 ? 1 : OSC_BACKFILL_WORKERS;
        if (cap > 0 && batch > cap)
            batch = cap;
        double t0 = osc_drv_now_s();
        int64_t got = 0;
        bool final = false;
        bool ok = osc_backfill_round(&bf, x->c, last, &has_last, max, batch, nranges, &got, &final,
                                     x->err, sizeof x->err, code);
        double took = osc_drv_now_s() - t0;
        if (!ok) {
            if (PQstatus(x->c) != CONNECTION_OK || strncmp(code, "08", 2) == 0 ||
                strcmp(code, "57P01") == 0) {
                rc = R_CONN;
                break;
            }
            /* A range copied at a later snapshot than a row of the shadow that has since
             * given up a unique value (its change is in the log), or the log's application
             * wrote into a range copied with a plain INSERT: apply the log, and the round
             * again finds the shadow current (and uses ON CONFLICT). Several times in a row
             * is a real duplicate (a UNIQUE the ALTER adds), which fails the migration. */
            if (strcmp(code, "23505") == 0 && ++dup_retries <= 5) {
                if ((rc = osc_drv_apply_log(x, NULL)) != R_OK)
                    break;
                continue;
            }
            /* Deadlock, serialization or lock conflicts with the application: back off and
             * try the round again, for as long as it takes (a transaction holding a row
             * of the range open must not fail the migration). */
            if (strcmp(code, "40P01") == 0 || strcmp(code, "40001") == 0 ||
                strcmp(code, "55P03") == 0) {
                retries++;
                osc_drv_set_status(m, NULL,
                                   "row locks held by the application (retrying the batch)");
                if ((rc = osc_drv_wait_command(m, retries < 20 ? 100 * retries : 2000)) != R_OK)
                    break;
                if (batch > 1000)
                    batch /= 2;
                continue;
            }
            char why[1700];
            snprintf(why, sizeof why, "backfill (SQLSTATE %s): %s", code, x->err);
            rc = osc_drv_fail_with(x, why);
            break;
        }
        retries = dup_retries = 0;
        /* Adapt the batch to target_batch_ms (at most doubling or halving per round). */
        double factor = took > 0 ? (target / 1000.0) / took : 2.0;
        factor = factor > 2.0 ? 2.0 : factor < 0.5 ? 0.5 : factor;
        /* Never below 100 rows (or batch_size when smaller): a round has a fixed cost (the
         * batch ends, the log's application) that a small target_batch_ms would otherwise
         * shrink the batch against until the copy crawls. */
        int floor_rows = base_batch < 100 ? base_batch : 100;
        int next = (int)(batch * factor);
        batch = next < floor_rows ? floor_rows : next > 1000000 ? 1000000 : next;
        window_rows += got;
        double now = osc_drv_now_s(), elapsed = now - window_start;
        const char *throttle = "";
        if (cap > 0 && window_rows > 0 && (double)window_rows / cap > elapsed) {
            throttle = "max_rows_per_second";
            osc_drv_set_status(m, NULL, throttle);
            if ((rc = osc_drv_wait_command(
                     m, (int)(((double)window_rows / cap - elapsed) * 1000))) != R_OK)
                break;
            now = osc_drv_now_s();
            elapsed = now - window_start;
        }
        pthread_mutex_lock(&m->lock);
        m->rows_copied += got;
        m->current_batch = batch;
        m->rows_per_second = elapsed > 0 ? window_rows / elapsed : 0;
        snprintf(m->throttle, sizeof m->throttle, "%s", throttle);
        int64_t copied = m->rows_copied, est = m->rows_estimated;
        double rate = m->rows_per_second;
        pthread_mutex_unlock(&m->lock);
        if (elapsed > 10) { /* a sliding window: rate of the last ~10 s */
            window_start = now;
            window_rows = 0;
        }
        if (now - last_log >= 5) {
            last_log = now;
            double pct = est > 0 ? 100.0 * copied / est : 0;
            osc_log(CONF_LOG_INFO,
                    "m%" PRId64 " %s copy: %" PRId64 "/%" PRId64 " (%.1f%%); %.0f rows/s; ETA %.0fs; "
                    "batch %d x %d; throttle: %s",
                    m->id, m->table, copied, est, pct > 100 ? 100 : pct, rate,
                    rate > 0 && est > copied ? (est - copied) / rate : 0, batch, nranges,
                    *throttle ? throttle : "none");
        }
        if (final)
            break;
    }
    if (rc == R_OK &&
        !osc_drv_set_state(x, "verifying", "comparing counts and hashes per key range", NULL))
        rc = R_CONN;
out:
    osc_backfill_close(&bf);
    free_keys(last, OSC_MAX_KEYS);
    free_keys(max, OSC_MAX_KEYS);
    return rc;
}

/* Count and hash of one range of the original and then of the shadow, in the verify's
 * transaction (which applied the log first, so its writes to the shadow are seen); R_OK
 * when equal. */
static step_rc compare_range(run_ctx *x, char **lo, char **hi, bool *equal, char *detail, size_t len)
{
    bool plain = osc_map_keys_ordered(&x->map);
    bool has_lo = lo != NULL && plain, has_hi = hi != NULL && plain;
    const char *v[2 * OSC_MAX_KEYS];
    int n = 0;
    for (int k = 0; has_lo && k < x->map.nkeys; k++)
        v[n++] = lo[k];
    for (int k = 0; has_hi && k < x->map.nkeys; k++)
        v[n++] = hi[k];
    char got[2][2][64], code[6] = "";
    for (int i = 0; i < 2; i++) {
        char *q = osc_sql_verify(&x->map, i == 1, has_lo, has_hi);
        PGresult *r = q ? osc_exec(x->c, q, n, v, x->err, sizeof x->err, code) : NULL;
        free(q);
        if (r == NULL) {
            if (!*code)
                snprintf(code, sizeof code, "53200");
            return strncmp(code, "08", 2) == 0 || strcmp(code, "57P01") == 0 ? R_CONN : R_FAIL;
        }
        snprintf(got[i][0], 64, "%s", PQgetvalue(r, 0, 0));
        snprintf(got[i][1], 64, "%s", PQgetvalue(r, 0, 1));
        PQclear(r);
    }
    *equal = strcmp(got[0][0], got[1][0]) == 0 && strcmp(got[0][1], got[1][1]) == 0;
    snprintf(detail, len, "original %s rows (hash %s), shadow %s rows (hash %s)", got[0][0],
             got[0][1], got[1][0], got[1][1]);
    return R_OK;
}

static void key_text(const osc_map *mp, char **k, char *buf, size_t len)
{
    if (k == NULL) {
        snprintf(buf, len, "%s", "unbounded");
        return;
    }
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < mp->nkeys && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "(", k[i]);
    if (n < len)
        snprintf(buf + n, len - n, ")");
}

static step_rc verify(run_ctx *x)
{
    char code[6];
    /* One REPEATABLE READ snapshot: the log it sees is applied first, in this transaction,
     * so the shadow must then equal the original for every key (DESIGN.md §2.6). */
    if (!osc_run(x->c, "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL, x->err, sizeof x->err, code))
        return osc_drv_failed(x, code);
    if (!osc_capture_apply(x->c, &x->map, false, NULL, x->err, sizeof x->err, code)) {
        PQclear(PQexec(x->c, "ROLLBACK"));
        if (PQstatus(x->c) != CONNECTION_OK)
            return R_CONN;
        if (osc_drv_retryable(code)) /* still verifying: the driver comes back here */
            return osc_drv_wait_command(x->m, 200);
        char why[1700];
        snprintf(why, sizeof why, "an application write cannot be applied to the shadow table "
                                  "(SQLSTATE %s): %s", code, x->err);
        return osc_drv_fail_with(x, why);
    }
    bool plain = osc_map_keys_ordered(&x->map);
    char *lo[OSC_MAX_KEYS] = {0}, *hi[OSC_MAX_KEYS] = {0};
    bool has_lo = false;
    step_rc rc = R_OK;
    char *chunk[2] = {osc_sql_chunk_end(&x->map, false, false), osc_sql_chunk_end(&x->map, true, false)};
    int64_t ranges = 0;
    for (;;) {
        if ((rc = osc_drv_wait_command(x->m, 0)) != R_OK)
            break;
        bool has_hi = false;
        if (plain) {
            const char *v[OSC_MAX_KEYS + 1];
            int n = 0;
            for (int k = 0; has_lo && k < x->map.nkeys; k++)
                v[n++] = lo[k];
            v[n++] = "100000";
            PGresult *r = osc_exec(x->c, chunk[has_lo], n, v, x->err, sizeof x->err, code);
            if (r == NULL) {
                rc = osc_drv_failed(x, code);
                break;
            }
            has_hi = PQntuples(r) == 1;
            for (int k = 0; has_hi && k < x->map.nkeys; k++)
                hi[k] = strdup(PQgetvalue(r, 0, k));
            PQclear(r);
        }
        bool equal;
        char detail[400];
        rc = compare_range(x, has_lo ? lo : NULL, has_hi ? hi : NULL, &equal, detail, sizeof detail);
        ranges++;
        if (rc != R_OK)
            break;
        if (!equal) {
            char a[200], b[200], why[1000];
            key_text(&x->map, has_lo ? lo : NULL, a, sizeof a);
            key_text(&x->map, has_hi ? hi : NULL, b, sizeof b);
            snprintf(why, sizeof why, "verify: key range (%s, %s] differs: %s", a, b, detail);
            PQclear(PQexec(x->c, "ROLLBACK"));
            rc = osc_drv_fail_with(x, why);
            break;
        }
        if (!has_hi)
            break;
        free_keys(lo, OSC_MAX_KEYS);
        memcpy(lo, hi, sizeof lo);
        memset(hi, 0, sizeof hi);
        has_lo = true;
    }
    free_keys(lo, OSC_MAX_KEYS);
    free_keys(hi, OSC_MAX_KEYS);
    free(chunk[0]);
    free(chunk[1]);
    if (rc != R_OK) {
        PQclear(PQexec(x->c, "ROLLBACK"));
        if (rc == R_FAIL && strcmp(x->m->state, "failed") != 0) {
            char why[1700];
            snprintf(why, sizeof why, "%.1600s", x->err);
            return osc_drv_fail_with(x, why);
        }
        return rc;
    }
    if (!osc_run(x->c, "COMMIT", 0, NULL, x->err, sizeof x->err, code))
        return osc_drv_failed(x, code);
    char phase[160];
    snprintf(phase, sizeof phase,
             "verified (%" PRId64 " key ranges); shadow kept current from the change log", ranges);
    return osc_drv_set_state(x, "ready", phase, NULL) ? R_OK : R_CONN;
}

/* ready: keep watching for rejected writes; swap at once (cutover = auto) or when asked
 * (CUTOVER MIGRATION) until abort or stop. */
static step_rc wait_ready(run_ctx *x)
{
    for (;;) {
        step_rc rc = osc_drv_apply_log(x, NULL); /* kept current, so the cutover's drain is short */
        if (rc != R_OK)
            return rc;
        pthread_mutex_lock(&x->m->lock);
        bool go = x->m->cutover_req || (!x->m->cutover_manual && !x->m->cutover_blocked);
        pthread_mutex_unlock(&x->m->lock);
        if (go)
            return osc_drv_cutover(x);
        if ((rc = osc_drv_wait_command(x->m, 200)) != R_OK)
            return rc;
    }
}

static step_rc do_abort(run_ctx *x)
{
    if (!osc_drv_set_state(x, "aborting", "dropping triggers and shadow", NULL))
        return R_CONN;
    int lt;
    pthread_mutex_lock(&x->m->lock);
    lt = x->m->lock_timeout_ms;
    pthread_mutex_unlock(&x->m->lock);
    if (!osc_mig_cleanup(x->c, x->m->id, lt, x->err, sizeof x->err)) {
        if (PQstatus(x->c) != CONNECTION_OK)
            return R_CONN;
        char phase[1200];
        snprintf(phase, sizeof phase, "cleanup incomplete (ABORT MIGRATION retries it): %.1100s", x->err);
        osc_drv_set_state(x, "aborting", phase, NULL);
        return R_FAIL;
    }
    osc_drv_set_state(x, "aborted", "original untouched; triggers and shadow dropped", NULL);
    return R_ABORT;
}

/* Connect and take the migration's advisory lock; false when stopping. */
static bool attach(run_ctx *x)
{
    int delay_ms = 500;
    for (;;) {
        if (osc_drv_wait_command(x->m, 0) == R_STOP)
            return false;
        char app[64];
        snprintf(app, sizeof app, "pgcutover m%" PRId64, x->m->id);
        x->c = osc_connect(x->m->db, app, x->err, sizeof x->err);
        x->capture_current = false; /* a new session: no executor yet */
        if (x->c) {
            char sql[96], code[6];
            snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%d, %s)", OSC_LOCK_CLASS, x->ids);
            PGresult *r = osc_exec(x->c, sql, 0, NULL, x->err, sizeof x->err, code);
            bool mine = r && PQgetvalue(r, 0, 0)[0] == 't';
            PQclear(r);
            /* The engine, not the application, is the victim of any deadlock between a
             * batch and the triggers' writes: it notices first (deadlock_timeout, only a
             * superuser may lower it) or gives up first (lock_timeout), and retries the
             * batch. */
            PQclear(PQexec(x->c, "SET deadlock_timeout = '20ms'"));
            PQclear(PQexec(x->c, "SET lock_timeout = '100ms'"));
            if (mine)
                return true;
            snprintf(x->err, sizeof x->err, "another session holds the migration's advisory lock "
                                            "(another pgcutover, or our old backend not gone yet)");
            PQfinish(x->c);
            x->c = NULL;
        }
        osc_log(CONF_LOG_WARNING, "m%" PRId64 " %s: %s; retrying in %d ms", x->m->id, x->m->table,
                x->err, delay_ms);
        if (osc_drv_wait_command(x->m, delay_ms) == R_STOP)
            return false;
        if (delay_ms < 5000)
            delay_ms *= 2;
    }
}

/* The state recorded in the row (and the settings of a resumed migration). */
static bool read_row(run_ctx *x, char *state, size_t len)
{
    const char *v[] = {x->ids};
    char code[6];
    PGresult *r = osc_exec(x->c,
                           "SELECT state, rows_copied, coalesce(rows_estimated, 0) FROM "
                           "pgcutover.migrations WHERE id = $1",
                           1, v, x->err, sizeof x->err, code);
    if (r == NULL || PQntuples(r) != 1) {
        PQclear(r);
        return false;
    }
    snprintf(state, len, "%s", PQgetvalue(r, 0, 0));
    pthread_mutex_lock(&x->m->lock);
    snprintf(x->m->state, sizeof x->m->state, "%s", state);
    x->m->rows_copied = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    x->m->rows_estimated = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    pthread_mutex_unlock(&x->m->lock);
    PQclear(r);
    return true;
}

struct timespec osc_deadline(int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return until;
}

void *osc_mig_thread(void *arg)
{
    run_ctx x = {.m = arg};
    snprintf(x.ids, sizeof x.ids, "%" PRId64, x.m->id);
    bool resumed = false;
    for (;;) {
        if (x.c == NULL && !attach(&x))
            break;
        step_rc rc = R_OK;
        char state[16];
        if (!read_row(&x, state, sizeof state)) {
            rc = R_CONN;
        } else if (osc_drv_wait_command(x.m, 0) == R_ABORT && strcmp(state, "aborted") != 0 &&
                   strcmp(state, "failed") != 0) {
            rc = do_abort(&x);
        } else if (strcmp(state, "pending") == 0) {
            rc = prepare(&x);
        } else if (strcmp(state, "preparing") == 0) {
            /* Half-built (a crash or a lost connection mid-way): it cannot resume, so it
             * is aborted cleanly, with the reason recorded. */
            char why[300];
            snprintf(why, sizeof why, "pgcutover lost the migration while preparing (%s); "
                                      "aborted: start it again",
                     resumed ? "connection lost" : "restart");
            osc_log(CONF_LOG_WARNING, "m%" PRId64 " %s: %s", x.m->id, x.m->table, why);
            rc = osc_state_set(x.c, x.m->id, "aborting", NULL, why, x.err, sizeof x.err)
                     ? do_abort(&x)
                     : R_CONN;
        } else if (strcmp(state, "done") == 0) {
            rc = osc_drv_run_post_commit(&x) ? R_DONE : R_CONN; /* left by a crash after the swap */
        } else if (!x.have_map && strcmp(state, "aborting") != 0 &&
                   !(x.have_map = osc_map_load(x.c, x.m->id, &x.map, x.err, sizeof x.err))) {
            rc = PQstatus(x.c) != CONNECTION_OK ? R_CONN : osc_drv_fail_with(&x, x.err);
        } else if (!x.capture_current && strcmp(state, "done") != 0 &&
                   strcmp(state, "failed") != 0 && strcmp(state, "aborted") != 0 &&
                   strcmp(state, "aborting") != 0 && (rc = refresh_capture(&x)) != R_OK) {
            /* rc says why */
        } else if (strcmp(state, "copying") == 0 || strcmp(state, "paused") == 0) {
            if (strcmp(state, "paused") == 0) {
                pthread_mutex_lock(&x.m->lock);
                x.m->pause = true; /* stays paused across a restart until RESUME */
                pthread_mutex_unlock(&x.m->lock);
            }
            rc = backfill(&x);
        } else if (strcmp(state, "verifying") == 0) {
            rc = verify(&x);
        } else if (strcmp(state, "ready") == 0) {
            rc = wait_ready(&x);
        } else if (strcmp(state, "cutting_over") == 0) {
            /* The swap is one transaction: PostgreSQL rolled it back when we died. */
            rc = osc_drv_set_state(&x, "ready", "cutover interrupted (pgcutover restarted or the "
                                        "connection dropped); the swap was rolled back", NULL)
                     ? R_OK
                     : R_CONN;
        } else if (strcmp(state, "aborting") == 0) {
            rc = do_abort(&x);
        } else {
            rc = R_FAIL; /* failed, aborted: nothing to drive */
        }
        if (rc == R_OK)
            continue;
        if (rc == R_DONE)
            break;
        if (rc == R_CONN) {
            osc_log(CONF_LOG_WARNING, "m%" PRId64 " %s: connection to PostgreSQL lost (%s); "
                                      "reconnecting to resume from the checkpoint",
                    x.m->id, x.m->table, x.err);
            PQfinish(x.c);
            x.c = NULL;
            resumed = true;
            continue;
        }
        if (rc == R_ABORT && osc_drv_wait_command(x.m, 0) == R_ABORT &&
            strcmp(x.m->state, "aborted") != 0)
            continue; /* abort requested mid-step: do it now */
        break;
    }
    PQfinish(x.c);
    if (x.have_map)
        osc_map_free(&x.map);
    pthread_mutex_lock(&x.m->lock);
    x.m->running = false;
    pthread_cond_broadcast(&x.m->cond);
    pthread_mutex_unlock(&x.m->lock);
    return NULL;
}
