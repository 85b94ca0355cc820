/* osc_migration.c — see osc_migration.h. One thread per migration, blocking libpq on
 * its own connection, holding pg_advisory_lock(OSC_LOCK_CLASS, id) on that session. */
#include "osc_migration.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "osc_backfill.h"
#include "osc_capture.h"
#include "osc_cutover.h"
#include "osc_db.h"
#include "osc_rights.h"
#include "osc_plan.h"

typedef enum { R_OK, R_FAIL, R_CONN, R_STOP, R_ABORT, R_DONE } step_rc;

typedef struct {
    osc_mig *m;
    PGconn *c;
    osc_map map;
    bool have_map;
    bool capture_current; /* the dual-write function is this build's (refresh_capture) */
    char apply_err[1600]; /* the cutover's application of the log failed with this */
    char err[1536];
    char ids[32];
} run_ctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void set_status(osc_mig *m, const char *state, const char *throttle)
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
static step_rc wait_command(osc_mig *m, int ms)
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
static step_rc failed(run_ctx *x, const char *code)
{
    return (PQstatus(x->c) != CONNECTION_OK || strncmp(code, "08", 2) == 0 ||
            strcmp(code, "57P01") == 0)
               ? R_CONN
               : R_FAIL;
}

static bool set_state(run_ctx *x, const char *state, const char *phase, const char *error)
{
    if (!osc_state_set(x->c, x->m->id, state, phase, error, x->err, sizeof x->err))
        return false;
    set_status(x->m, state, NULL);
    osc_log(CONF_LOG_INFO, "m%" PRId64 " %s: %s%s%s", x->m->id, x->m->table, state,
            phase ? " — " : "", phase ? phase : "");
    return true;
}

/* Run ddl on the live table under the proxy's hold with a short lock_timeout, retried
 * with growing, jittered backoff (DESIGN.md §2: no client error, no lock queue). */
static bool locked_ddl(PGconn *c, const char *ddl, int lock_timeout_ms, int attempts, char *err,
                       size_t errlen, char code[6])
{
    char sql[64];
    snprintf(sql, sizeof sql, "SET LOCAL lock_timeout = %d", lock_timeout_ms);
    int backoff_ms = 100;
    for (int a = 1; a <= attempts; a++) {
        osc_hooks.hold();
        bool ok = osc_run(c, "BEGIN", 0, NULL, err, errlen, code) &&
                  osc_run(c, sql, 0, NULL, err, errlen, code) &&
                  osc_run(c, ddl, 0, NULL, err, errlen, code) &&
                  osc_run(c, "COMMIT", 0, NULL, err, errlen, code);
        osc_hooks.release();
        if (ok)
            return true;
        PQclear(PQexec(c, "ROLLBACK"));
        if (strcmp(code, "55P03") != 0 || PQstatus(c) != CONNECTION_OK)
            return false;
        osc_log(CONF_LOG_WARNING, "lock_timeout (%d ms) on attempt %d/%d: %s; backing off %d ms",
                lock_timeout_ms, a, attempts, err, backoff_ms);
        struct timespec ts = {0, 0};
        int ms = backoff_ms + rand() % (backoff_ms / 2 + 1);
        ts.tv_sec = ms / 1000;
        ts.tv_nsec = (long)(ms % 1000) * 1000000L;
        nanosleep(&ts, NULL);
        if (backoff_ms < 3000)
            backoff_ms *= 2;
    }
    snprintf(err + strlen(err), errlen - strlen(err), " (gave up after %d attempts)", attempts);
    return false;
}

bool osc_mig_cleanup(void *conn, int64_t id, int lock_timeout_ms, char *err, size_t errlen)
{
    PGconn *c = conn;
    char ids[32], code[6];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *v[] = {ids};
    PGresult *r = osc_exec(c,
                           "SELECT table_schema, table_name, shadow_schema, coalesce(shadow_name, '') "
                           "FROM pgcutover.migrations WHERE id = $1",
                           1, v, err, errlen, code);
    if (r == NULL || PQntuples(r) != 1) {
        if (r)
            snprintf(err, errlen, "migration %s not found", ids);
        PQclear(r);
        return false;
    }
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
        ok = locked_ddl(c, drop, lock_timeout_ms, 10, err, errlen, code);
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

static step_rc fail_with(run_ctx *x, const char *why)
{
    char reason[1536];
    snprintf(reason, sizeof reason, "%s", why);
    osc_log(CONF_LOG_ERROR, "m%" PRId64 " %s: failed: %s", x->m->id, x->m->table, reason);
    if (!set_state(x, "failed", "cleaning up", reason))
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
    set_state(x, "failed", phase, NULL);
    return R_FAIL;
}

/* Apply the change log in a transaction of its own (osc_capture.h). A row the shadow
 * rejects (a CHECK or cast the ALTER adds, a unique key it adds) fails the migration, with
 * PostgreSQL's reason: the application's write itself succeeded, as it would without
 * pgcutover. */
/* Lock and serialization conflicts with the application (a foreign key's check of the
 * shadow waits for a referenced row it holds): retried, never the migration's failure. */
static bool retryable(const char *code)
{
    return strcmp(code, "55P03") == 0 || strcmp(code, "40P01") == 0 || strcmp(code, "40001") == 0;
}

static step_rc apply_log(run_ctx *x, int64_t *applied)
{
    char code[6] = "";
    if (osc_capture_apply(x->c, &x->map, true, applied, x->err, sizeof x->err, code))
        return R_OK;
    if (PQstatus(x->c) != CONNECTION_OK || strncmp(code, "08", 2) == 0 || strcmp(code, "57P01") == 0)
        return R_CONN;
    if (retryable(code)) { /* the log stays; the next application takes it */
        osc_log(CONF_LOG_DEBUG, "m%" PRId64 " applying the change log: %s (%s); retried",
                x->m->id, x->err, code);
        return wait_command(x->m, 100);
    }
    char why[1700];
    snprintf(why, sizeof why, "an application write cannot be applied to the shadow table "
                              "(SQLSTATE %s): %s", code, x->err);
    return fail_with(x, why);
}

static step_rc prepare(run_ctx *x)
{
    if (!set_state(x, "preparing", "creating the shadow table", NULL))
        return R_CONN;
    const char *v[] = {x->ids};
    char code[6];
    PGresult *r = osc_exec(x->c, "SELECT statement, started_by FROM pgcutover.migrations WHERE id = $1",
                           1, v, x->err, sizeof x->err, code);
    if (r == NULL)
        return failed(x, code);
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
        return PQstatus(x->c) != CONNECTION_OK ? R_CONN : fail_with(x, x->err);
    }
    osc_result_free(&res);
    if (!osc_map_load(x->c, x->m->id, &x->map, x->err, sizeof x->err))
        return failed(x, "XX000") == R_CONN ? R_CONN : fail_with(x, x->err);
    x->have_map = true;
    /* Triggers: the function needs no table lock; CREATE TRIGGER takes SHARE ROW
     * EXCLUSIVE on the original, so it goes through the hold. */
    if (!set_state(x, "preparing", "installing dual-write triggers", NULL))
        return R_CONN;
    char *log = osc_sql_create_log(&x->map);
    char *fn = osc_sql_trigger_function(&x->map, false), *trg = osc_sql_create_triggers(&x->map);
    if (fn == NULL || trg == NULL || log == NULL)
        snprintf(x->err, sizeof x->err, "%s", x->map.owner ? "out of memory" : "the table has no owner (is it gone?)");
    bool done = fn && trg && log && osc_run(x->c, log, 0, NULL, x->err, sizeof x->err, code) &&
                osc_rights_executor(x->c, OSC_AS_OWNER, x->map.owner, x->err, sizeof x->err, code) && osc_run(x->c, fn, 0, NULL, x->err, sizeof x->err, code) &&
                locked_ddl(x->c, trg, lt, 10, x->err, sizeof x->err, code);
    free(fn);
    free(trg);
    free(log);
    x->capture_current = done;
    if (!done) {
        char why[1600];
        snprintf(why, sizeof why, "installing the dual-write triggers: %s", x->err);
        return failed(x, code) == R_CONN ? R_CONN : fail_with(x, why);
    }
    /* Rows with a key above this are the triggers' job (they are in place now). */
    char *q = osc_sql_max_key(&x->map);
    r = q ? osc_exec(x->c, q, 0, NULL, x->err, sizeof x->err, code) : NULL;
    free(q);
    if (r == NULL)
        return failed(x, code);
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
        return failed(x, code);
    return set_state(x, "copying", "backfill", NULL) ? R_OK : R_CONN;
}

/* Once per connection of the driver: the owner's executor on it (osc_capture.h), and a
 * migration resumed from its row (a restart, possibly of an earlier build) writes through
 * this build's dual-write function and change log: CREATE OR REPLACE needs no table lock,
 * and the function is given to the table's owner with the pinned search_path again
 * (README "Security model"). */
static step_rc refresh_capture(run_ctx *x)
{
    char code[6] = "";
    char *log = osc_sql_create_log(&x->map), *fn = osc_sql_trigger_function(&x->map, false);
    if (fn == NULL || log == NULL)
        snprintf(x->err, sizeof x->err, "%s", x->map.owner ? "out of memory" : "the table has no owner (is it gone?)");
    bool ok = fn && log && osc_run(x->c, log, 0, NULL, x->err, sizeof x->err, code) &&
              osc_rights_executor(x->c, OSC_AS_OWNER, x->map.owner, x->err, sizeof x->err, code) &&
              osc_run(x->c, fn, 0, NULL, x->err, sizeof x->err, code);
    free(fn);
    free(log);
    if (ok) {
        x->capture_current = true;
        return R_OK;
    }
    char why[1700];
    snprintf(why, sizeof why, "refreshing the dual-write function: %s", x->err);
    return PQstatus(x->c) != CONNECTION_OK ? R_CONN : fail_with(x, why);
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
    double window_start = now_s(), last_log = now_s();
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
        rc = wait_command(m, 0);
        if (rc != R_OK)
            break;
        if (pause) {
            if (!set_state(x, "paused", "backfill paused by PAUSE MIGRATION", NULL)) {
                rc = R_CONN;
                break;
            }
            set_status(m, NULL, "paused");
            pthread_mutex_lock(&m->lock);
            while (m->pause && !m->abort && !m->stop)
                pthread_cond_wait(&m->cond, &m->lock);
            pthread_mutex_unlock(&m->lock);
            set_status(m, NULL, "");
            if ((rc = wait_command(m, 0)) != R_OK)
                break;
            if (!set_state(x, "copying", "backfill", NULL)) {
                rc = R_CONN;
                break;
            }
            window_start = now_s();
            window_rows = 0;
        }
        if ((rc = apply_log(x, NULL)) != R_OK)
            break;
        /* Throttled: one range at a time, no bigger than a second's worth. */
        int nranges = cap > 0 ? 1 : OSC_BACKFILL_WORKERS;
        if (cap > 0 && batch > cap)
            batch = cap;
        double t0 = now_s();
        int64_t got = 0;
        bool final = false;
        bool ok = osc_backfill_round(&bf, x->c, last, &has_last, max, batch, nranges, &got, &final,
                                     x->err, sizeof x->err, code);
        double took = now_s() - t0;
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
                if ((rc = apply_log(x, NULL)) != R_OK)
                    break;
                continue;
            }
            /* Deadlock, serialization or lock conflicts with the application: back off and
             * try the round again, for as long as it takes (a transaction holding a row
             * of the range open must not fail the migration). */
            if (strcmp(code, "40P01") == 0 || strcmp(code, "40001") == 0 ||
                strcmp(code, "55P03") == 0) {
                retries++;
                set_status(m, NULL, "row locks held by the application (retrying the batch)");
                if ((rc = wait_command(m, retries < 20 ? 100 * retries : 2000)) != R_OK)
                    break;
                if (batch > 1000)
                    batch /= 2;
                continue;
            }
            char why[1700];
            snprintf(why, sizeof why, "backfill (SQLSTATE %s): %s", code, x->err);
            rc = fail_with(x, why);
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
        double now = now_s(), elapsed = now - window_start;
        const char *throttle = "";
        if (cap > 0 && window_rows > 0 && (double)window_rows / cap > elapsed) {
            throttle = "max_rows_per_second";
            set_status(m, NULL, throttle);
            if ((rc = wait_command(m, (int)(((double)window_rows / cap - elapsed) * 1000))) != R_OK)
                break;
            now = now_s();
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
    if (rc == R_OK && !set_state(x, "verifying", "comparing counts and hashes per key range", NULL))
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
        return failed(x, code);
    if (!osc_capture_apply(x->c, &x->map, false, NULL, x->err, sizeof x->err, code)) {
        PQclear(PQexec(x->c, "ROLLBACK"));
        if (PQstatus(x->c) != CONNECTION_OK)
            return R_CONN;
        if (retryable(code)) /* still verifying: the driver comes back here */
            return wait_command(x->m, 200);
        char why[1700];
        snprintf(why, sizeof why, "an application write cannot be applied to the shadow table "
                                  "(SQLSTATE %s): %s", code, x->err);
        return fail_with(x, why);
    }
    bool plain = osc_map_keys_ordered(&x->map);
    char *lo[OSC_MAX_KEYS] = {0}, *hi[OSC_MAX_KEYS] = {0};
    bool has_lo = false;
    step_rc rc = R_OK;
    char *chunk[2] = {osc_sql_chunk_end(&x->map, false, false), osc_sql_chunk_end(&x->map, true, false)};
    int64_t ranges = 0;
    for (;;) {
        if ((rc = wait_command(x->m, 0)) != R_OK)
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
                rc = failed(x, code);
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
            rc = fail_with(x, why);
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
            return fail_with(x, why);
        }
        return rc;
    }
    if (!osc_run(x->c, "COMMIT", 0, NULL, x->err, sizeof x->err, code))
        return failed(x, code);
    char phase[160];
    snprintf(phase, sizeof phase,
             "verified (%" PRId64 " key ranges); shadow kept current from the change log", ranges);
    return set_state(x, "ready", phase, NULL) ? R_OK : R_CONN;
}

/* The statements recorded for after the cutover's commit (post_commit), one per line,
 * outside the lock (writes go on meanwhile); cleared when they have run. A statement that
 * fails is logged and skipped (a foreign key the data now violates stays NOT VALID, as
 * the log line says). Returns false when the connection is gone. */
static bool run_post_commit(run_ctx *x)
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
static step_rc cutover(run_ctx *x)
{
    osc_mig *m = x->m;
    conf_t s = {0};
    osc_hooks.settings(&s);
    int attempts = s.cutover_attempts;
    conf_free(&s);
    char code[6] = "", old_name[64], sql[512];
    osc_plan_table_name(x->map.table, m->id, "old", old_name, sizeof old_name);
    if (!set_state(x, "cutting_over", "ANALYZE of the shadow", NULL))
        return R_CONN;
    osc_sb q = {0};
    osc_sb_addf(&q, "ANALYZE ");
    osc_sb_qualified(&q, x->map.shadow_schema, x->map.shadow_table);
    char *analyze = osc_sb_take(&q);
    bool ok = analyze && osc_run(x->c, analyze, 0, NULL, x->err, sizeof x->err, code);
    free(analyze);
    if (!ok)
        return failed(x, code) == R_CONN ? R_CONN : fail_with(x, x->err);
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
        if ((rc = wait_command(m, 0)) != R_OK)
            break;
        /* Drain the log outside the hold, so what is left for the lock is a moment's. */
        if ((rc = apply_log(x, NULL)) != R_OK)
            break;
        snprintf(sql, sizeof sql, "BEGIN; SET LOCAL lock_timeout = %d", lt);
        osc_hooks.hold();
        double t_hold = now_s();
        ok = osc_run(x->c, sql, 0, NULL, x->err, sizeof x->err, code) &&
             lock_tables(x, lock_sql, lt, force && a > 1, x->err, sizeof x->err, code);
        double t_lock = now_s();
        int errors = 0;
        if (ok) { /* the log's last rows, now that nothing writes */
            ok = osc_capture_apply(x->c, &x->map, false, NULL, x->err, sizeof x->err, code);
            errors = !ok && strncmp(code, "08", 2) != 0 && !retryable(code) &&
                     strcmp(code, "57014") != 0;
            if (errors)
                snprintf(x->apply_err, sizeof x->apply_err, "SQLSTATE %s: %s", code, x->err);
        }
        osc_sb after = {0};
        if (ok && errors == 0) {
            ok = osc_cutover_swap(x->c, &x->map, old_name, &after, x->err, sizeof x->err, code);
            /* The figures so far go in with done, so no reader sees done without them;
             * the final ones (after COMMIT and release) follow a moment later. */
            char attempts_s[16], hold_s[32], lock_s[32], wait_s[32];
            double t = now_s();
            snprintf(attempts_s, sizeof attempts_s, "%d", a);
            snprintf(hold_s, sizeof hold_s, "%.3f", (t - t_hold) * 1000);
            snprintf(lock_s, sizeof lock_s, "%.3f", (t - t_lock) * 1000);
            snprintf(wait_s, sizeof wait_s, "%.3f",
                     osc_hooks.hold_wait_ms ? osc_hooks.hold_wait_ms() : 0.0);
            /* The statements for after the commit (VALIDATE of the foreign keys re-added
             * NOT VALID) are recorded with done, so a crash before they ran leaves them to
             * the next start (run_post_commit), never NOT VALID for good. */
            const char *v[] = {x->ids, old_name, attempts_s, hold_s, lock_s, wait_s,
                               after.len ? after.s : NULL};
            ok = ok && !after.oom &&
                 osc_run(x->c,
                         "UPDATE pgcutover.migrations SET state = 'done', phase = 'swapped', "
                         "old_name = $2, cutover_attempts = $3, cutover_hold_ms = $4, "
                         "cutover_lock_ms = $5, cutover_max_wait_ms = $6, post_commit = $7, "
                         "updated_at = now(), phase_at = phase_at || jsonb_build_object('done', "
                         "now()) WHERE id = $1",
                         7, v, x->err, sizeof x->err, code) &&
                 osc_run(x->c, "COMMIT", 0, NULL, x->err, sizeof x->err, code);
        }
        double t_commit = now_s();
        if (!ok || errors)
            PQclear(PQexec(x->c, "ROLLBACK"));
        osc_hooks.release();
        if (ok && errors == 0) {
            swapped = true;
            set_status(m, "done", "");
            double max_wait = osc_hooks.last_hold_max_wait_ms ? osc_hooks.last_hold_max_wait_ms() : 0;
            if (osc_hooks.hold_wait_ms && osc_hooks.hold_wait_ms() > max_wait)
                max_wait = osc_hooks.hold_wait_ms(); /* another hold runs on (PAUSE) */
            char hold_ms[32], lock_ms[32], wait_ms[32];
            snprintf(hold_ms, sizeof hold_ms, "%.3f", (t_commit - t_hold) * 1000);
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
            run_post_commit(x);
            break;
        }
        free(after.s);
        if (errors)
            break;
        if (PQstatus(x->c) != CONNECTION_OK) {
            rc = R_CONN;
            break;
        }
        if (!retryable(code)) { /* not a lock timeout: retrying will not help */
            snprintf(why, sizeof why, "cutover failed: %.1500s", x->err);
            break;
        }
        snprintf(why, sizeof why, "cutover: lock_timeout (%d ms) on %d attempts: %.1500s", lt, a, x->err);
        osc_log(CONF_LOG_WARNING, "m%" PRId64 " %s: cutover attempt %d/%d: %s; backing off %d ms",
                m->id, m->table, a, attempts, x->err, backoff_ms);
        if (a < attempts && (rc = wait_command(m, backoff_ms + rand() % (backoff_ms / 2 + 1))) != R_OK)
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
            snprintf(reason, sizeof reason, "an application write cannot be applied to the shadow "
                                            "table (%s)", x->apply_err);
            x->apply_err[0] = 0;
            errs = fail_with(x, reason);
        } else {
            errs = apply_log(x, NULL);
        }
        if (errs != R_OK) {
            out = errs;
        } else {
            char phase[1900];
            snprintf(phase, sizeof phase, "%s; the shadow is kept current: CUTOVER MIGRATION %" PRId64
                                          " tries again, ABORT MIGRATION undoes it",
                     *why ? why : "cutover interrupted", m->id);
            if (!set_state(x, "ready", phase, NULL))
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

/* ready: keep watching for rejected writes; swap at once (cutover = auto) or when asked
 * (CUTOVER MIGRATION) until abort or stop. */
static step_rc wait_ready(run_ctx *x)
{
    for (;;) {
        step_rc rc = apply_log(x, NULL); /* kept current, so the cutover's drain is short */
        if (rc != R_OK)
            return rc;
        pthread_mutex_lock(&x->m->lock);
        bool go = x->m->cutover_req || (!x->m->cutover_manual && !x->m->cutover_blocked);
        pthread_mutex_unlock(&x->m->lock);
        if (go)
            return cutover(x);
        if ((rc = wait_command(x->m, 200)) != R_OK)
            return rc;
    }
}

static step_rc do_abort(run_ctx *x)
{
    if (!set_state(x, "aborting", "dropping triggers and shadow", NULL))
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
        set_state(x, "aborting", phase, NULL);
        return R_FAIL;
    }
    set_state(x, "aborted", "original untouched; triggers and shadow dropped", NULL);
    return R_ABORT;
}

/* Connect and take the migration's advisory lock; false when stopping. */
static bool attach(run_ctx *x)
{
    int delay_ms = 500;
    for (;;) {
        if (wait_command(x->m, 0) == R_STOP)
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
        if (wait_command(x->m, delay_ms) == R_STOP)
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
        } else if (wait_command(x.m, 0) == R_ABORT && strcmp(state, "aborted") != 0 &&
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
            rc = run_post_commit(&x) ? R_DONE : R_CONN; /* left by a crash after the swap */
        } else if (!x.have_map && strcmp(state, "aborting") != 0 &&
                   !(x.have_map = osc_map_load(x.c, x.m->id, &x.map, x.err, sizeof x.err))) {
            rc = PQstatus(x.c) != CONNECTION_OK ? R_CONN : fail_with(&x, x.err);
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
            rc = set_state(&x, "ready", "cutover interrupted (pgcutover restarted or the "
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
        if (rc == R_ABORT && wait_command(x.m, 0) == R_ABORT && strcmp(x.m->state, "aborted") != 0)
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
