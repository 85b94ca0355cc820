/* osc_engine.c — see osc_engine.h: the registry of migration threads, resume at start,
 * and the console's migration commands (ALTER TABLE and PLAN in osc_alter.c). */
#include "osc_engine.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc_alter.h"
#include "osc_batched.h"
#include "osc_db.h"
#include "osc_migrate.h"
#include "osc_migration.h"
#include "osc_access.h"
#include "osc_keeper.h"
#include "osc_revert.h"
#include "osc_window.h"
#include "osc_strategy.h"

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static osc_mig *reg_head;
static pthread_t resume_thread;
static bool resume_started;
/* Console commands and admissions in progress (cmd_enter/cmd_leave): osc_engine_stop
 * wakes them and waits for none to be left before it frees a migration. Under reg_lock;
 * no command starts once stopping is set. */
static int cmd_active;
static bool stopping;
static pthread_cond_t cmd_cond = PTHREAD_COND_INITIALIZER;

/* Count a console command in; false (nothing counted) once the engine is stopping. */
static bool cmd_enter(void)
{
    pthread_mutex_lock(&reg_lock);
    bool ok = !stopping;
    if (ok)
        cmd_active++;
    pthread_mutex_unlock(&reg_lock);
    return ok;
}

/* Count it out; after this the command touches no osc_mig. */
static void cmd_leave(void)
{
    pthread_mutex_lock(&reg_lock);
    if (--cmd_active == 0)
        pthread_cond_broadcast(&cmd_cond);
    pthread_mutex_unlock(&reg_lock);
}

/* ---------- registry ---------- */

/* The live driver of migration id in db, or NULL. Caller holds reg_lock. */
static osc_mig *find_locked(const char *db, int64_t id)
{
    for (osc_mig *m = reg_head; m; m = m->next)
        if (m->id == id && strcmp(m->db, db) == 0)
            return m;
    return NULL;
}

/* Load the migration's settings from its row into m. */
static void load_settings(PGconn *c, osc_mig *m)
{
    char ids[32], err[256];
    snprintf(ids, sizeof ids, "%" PRId64, m->id);
    const char *v[] = {ids};
    PGresult *r = osc_exec(c,
                           "SELECT settings->>'batch_size', settings->>'target_batch_ms', "
                           "settings->>'max_rows_per_second', settings->>'lock_timeout_ms', "
                           "settings->>'cutover', settings->>'cutover_force', "
                           "quote_ident(table_schema) || '.' || quote_ident(table_name), state "
                           "FROM pgcutover.migrations WHERE id = $1",
                           1, v, err, sizeof err, NULL);
    if (r && PQntuples(r) == 1) {
        int *ints[] = {&m->batch_size, &m->target_batch_ms, &m->max_rows_per_second, &m->lock_timeout_ms};
        for (int i = 0; i < 4; i++)
            if (!PQgetisnull(r, 0, i))
                *ints[i] = atoi(PQgetvalue(r, 0, i));
        m->cutover_manual = strcmp(PQgetvalue(r, 0, 4), "manual") == 0;
        m->cutover_force = strcmp(PQgetvalue(r, 0, 5), "on") == 0;
        snprintf(m->table, sizeof m->table, "%s", PQgetvalue(r, 0, 6));
        snprintf(m->state, sizeof m->state, "%s", PQgetvalue(r, 0, 7));
    }
    PQclear(r);
}

/* Start a driver thread for migration id of db unless one runs. */
static void launch(PGconn *c, const char *db, int64_t id)
{
    osc_keeper_watch(db); /* a copy migration's swap opens a revert window there */
    pthread_mutex_lock(&reg_lock);
    osc_mig *m = find_locked(db, id);
    if ((m && m->running) || stopping) { /* stopping: the next start resumes it */
        pthread_mutex_unlock(&reg_lock);
        return;
    }
    if (m == NULL) {
        m = calloc(1, sizeof *m);
        if (m == NULL) {
            pthread_mutex_unlock(&reg_lock);
            return;
        }
        m->id = id;
        snprintf(m->db, sizeof m->db, "%s", db);
        pthread_mutex_init(&m->lock, NULL);
        pthread_cond_init(&m->cond, NULL);
        m->next = reg_head;
        reg_head = m;
    } else {
        pthread_join(m->thread, NULL); /* ended earlier: reap before reuse */
    }
    m->batch_size = 10000;
    m->target_batch_ms = 200;
    m->lock_timeout_ms = 200;
    m->pause = m->abort = m->stop = false;
    m->cutover_req = m->cutover_blocked = false;
    load_settings(c, m);
    m->running = true;
    if (pthread_create(&m->thread, NULL, osc_mig_thread, m) != 0)
        m->running = false;
    pthread_mutex_unlock(&reg_lock);
}

/* Start drivers for every unfinished migration of one database. */
static void resume_db(const char *db)
{
    char err[512];
    PGconn *c = osc_connect(db, "pgcutover resume", err, sizeof err);
    if (c == NULL) {
        osc_log(CONF_LOG_WARNING, "resume: %s", err);
        return;
    }
    if (osc_state_exists(c) && osc_state_ensure(c, err, sizeof err)) { /* ensure: upgrades */
        osc_keeper_watch(db); /* revert windows may wait there */
        conf_t settings = {0};
        osc_hooks.settings(&settings);
        osc_strategy_recover(c, db, &settings);
        osc_batched_recover(c, db);
        conf_free(&settings);
        PGresult *r = osc_exec(c,
                               "SELECT id FROM pgcutover.migrations WHERE strategy = 'copy' AND "
                               "(state NOT IN ('done', 'failed', 'aborted', 'standby', 'prepared') OR (state = "
                               "'done' AND post_commit IS NOT NULL)) ORDER BY id",
                               0, NULL, err, sizeof err, NULL);
        for (int i = 0; r && i < PQntuples(r); i++) {
            int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
            osc_log(CONF_LOG_INFO, "m%" PRId64 " found unfinished in database \"%s\": resuming", id, db);
            launch(c, db, id);
        }
        PQclear(r);
    }
    PQfinish(c);
}

static void *resume_main(void *arg)
{
    (void)arg;
    char err[512];
    PGconn *c = osc_connect("postgres", "pgcutover resume", err, sizeof err);
    if (c == NULL) {
        osc_log(CONF_LOG_WARNING, "resume: cannot list databases: %s", err);
        return NULL;
    }
    PGresult *r = osc_exec(c, "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname",
                           0, NULL, err, sizeof err, NULL);
    PQfinish(c);
    for (int i = 0; r && i < PQntuples(r); i++)
        resume_db(PQgetvalue(r, i, 0));
    PQclear(r);
    return NULL;
}

void osc_engine_start(const osc_engine_hooks *hooks)
{
    osc_hooks = *hooks;
    resume_started = pthread_create(&resume_thread, NULL, resume_main, NULL) == 0;
    if (!osc_keeper_start(osc_hooks.settings))
        osc_log(CONF_LOG_WARNING, "no keeper thread: revert windows last until DROP MIGRATION");
}

void osc_engine_stop(void)
{
    if (resume_started)
        pthread_join(resume_thread, NULL);
    resume_started = false;
    osc_keeper_stop();
    pthread_mutex_lock(&reg_lock);
    stopping = true;
    /* Wake every console command waiting on a driver (they see stop and leave), then
     * wait until no command is left: none may hold a pointer into what we free. */
    for (osc_mig *m = reg_head; m; m = m->next) {
        pthread_mutex_lock(&m->lock);
        m->stop = true;
        pthread_cond_broadcast(&m->cond);
        pthread_mutex_unlock(&m->lock);
    }
    while (cmd_active > 0)
        pthread_cond_wait(&cmd_cond, &reg_lock);
    osc_mig *list = reg_head;
    reg_head = NULL;
    pthread_mutex_unlock(&reg_lock);
    for (osc_mig *m = list; m; m = m->next) {
        pthread_mutex_lock(&m->lock);
        m->stop = true;
        pthread_cond_broadcast(&m->cond);
        pthread_mutex_unlock(&m->lock);
    }
    while (list) {
        osc_mig *next = list->next;
        pthread_join(list->thread, NULL);
        pthread_mutex_destroy(&list->lock);
        pthread_cond_destroy(&list->cond);
        free(list);
        list = next;
    }
}

/* ---------- console commands ---------- */

#define MAXW 8

/* Upper-cased words of cmd ('=' is a word of its own; quotes stripped), at most MAXW. */
static int words(const char *cmd, char w[MAXW][64])
{
    int n = 0;
    const char *p = cmd;
    while (*p && n < MAXW) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        int k = 0;
        if (*p == '=') {
            w[n][k++] = *p++;
        } else {
            while (*p && !isspace((unsigned char)*p) && *p != '=') {
                if (*p != '\'' && *p != '"' && k < 63)
                    w[n][k++] = (char)toupper((unsigned char)*p);
                p++;
            }
        }
        w[n][k] = 0;
        n++;
    }
    return n;
}

/* Whether the words from w[at] on start an index statement (concurrent strategy). */
static bool index_words(char w[][64], int n, int at)
{
    if (n - at >= 2 && strcmp(w[at], "CREATE") == 0)
        return strcmp(w[at + 1], "INDEX") == 0 ||
               (n - at >= 3 && strcmp(w[at + 1], "UNIQUE") == 0 && strcmp(w[at + 2], "INDEX") == 0);
    if (n - at >= 2 && strcmp(w[at], "DROP") == 0)
        return strcmp(w[at + 1], "INDEX") == 0;
    return n - at >= 2 && strcmp(w[at], "REINDEX") == 0;
}

/* "BATCHED UPDATE …" / "BATCHED DELETE …": the statement after the word, else NULL. */
static const char *batched_stmt(const char *cmd)
{
    const char *p = cmd + strspn(cmd, " \t\r\n");
    if (strncasecmp(p, "BATCHED", 7) != 0 || !strchr(" \t\r\n", p[7]) || p[7] == 0)
        return NULL;
    return p + 7;
}

/* REVERT MIGRATION n [ACCEPT DATA LOSS] | PLAN REVERT MIGRATION n: n, else 0 (-1: the
 * words start so but do not parse); *plan and *accept as said. */
static int64_t revert_words(char w[][64], int n, bool *plan, bool *accept)
{
    int at = n > 0 && strcmp(w[0], "PLAN") == 0;
    *plan = at == 1;
    *accept = false;
    if (n < at + 2 || strcmp(w[at], "REVERT") != 0 || strcmp(w[at + 1], "MIGRATION") != 0)
        return 0;
    char *end = NULL;
    int64_t id = n > at + 2 ? strtoll(w[at + 2], &end, 10) : 0;
    if (id <= 0 || *end)
        return -1;
    if (n == at + 3)
        return id;
    *accept = !*plan && n == at + 6 && strcmp(w[at + 3], "ACCEPT") == 0 &&
              strcmp(w[at + 4], "DATA") == 0 && strcmp(w[at + 5], "LOSS") == 0;
    return *accept ? id : -1;
}

bool osc_engine_is_command(const char *cmd)
{
    if (osc_mcmd_is(cmd) || batched_stmt(cmd))
        return true;
    {
        char rw[MAXW][64];
        bool p, a;
        if (revert_words(rw, words(cmd, rw), &p, &a) != 0)
            return true;
    }
    char w[MAXW][64];
    int n = words(cmd, w);
    const char *kind;
    if (index_words(w, n, 0) || osc_stmt_direct(cmd, &kind))
        return true;
    if (n >= 2 && strcmp(w[0], "ALTER") == 0 && strcmp(w[1], "TABLE") == 0)
        return true;
    if (n >= 2 && strcmp(w[0], "PLAN") == 0 && strcmp(w[1], "ALTER") == 0)
        return true;
    if (n >= 2 && strcmp(w[0], "PLAN") == 0)
        return true; /* PLAN of something else: answered with 42601 */
    if (n >= 2 && strcmp(w[0], "SHOW") == 0 &&
        (strcmp(w[1], "MIGRATIONS") == 0 || strcmp(w[1], "MIGRATION") == 0))
        return true;
    static const char *const verbs[] = {"PAUSE", "RESUME", "SET", "CUTOVER", "ABORT", "DROP"};
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (n >= 2 && strcmp(w[0], verbs[i]) == 0 && strcmp(w[1], "MIGRATION") == 0)
            return true;
    return false;
}

static const char show_cols[] =
    "SELECT id, CASE WHEN table_name <> '' THEN quote_ident(table_schema) || '.' || "
    "quote_ident(table_name) END, state, phase, " /* a direct statement (a view) has none */
    "rows_copied, rows_estimated, CASE WHEN state IN ('verifying', 'ready', 'cutting_over', "
    "'done') THEN 100 WHEN coalesce(rows_estimated, 0) > 0 THEN least(100, round(100.0 * "
    "rows_copied / rows_estimated, 1)) ELSE 0 END, quote_ident(shadow_schema) || '.' || "
    "quote_ident(shadow_name), 'pgcutover.' || quote_ident(old_name), error, started_by, created_at, updated_at, strategy, statement, "
    "key_columns, checkpoint::text, max_key::text, settings::text, phase_at::text, "
    "cutover_attempts, cutover_hold_ms, cutover_lock_ms, cutover_max_wait_ms "
    "FROM pgcutover.migrations m";

static void show(PGconn *c, const char *db, const char *user, int64_t only, osc_result *r)
{
    static const char *const names[] = {
        "id", "table", "state", "phase", "rows_copied", "rows_estimated", "percent",
        "rows_per_second", "eta_seconds", "throttle", "batch_size", "shadow_table", "old_table",
        "error", "started_by", "created_at", "updated_at", "strategy", "statement", "key_columns",
        "checkpoint", "max_key", "settings", "phase_at", "cutover_attempts", "cutover_hold_ms",
        "cutover_lock_ms", "cutover_max_wait_ms", "reprepare_sessions_marked",
        "reprepared_sessions", "reprepared_statements", "reprepare_left", "reprepare_max_ms",
        "reprepare_total_ms", "revertible"};
    static const uint32_t types[] = {
        OSC_T_INT8, OSC_T_TEXT, OSC_T_TEXT, OSC_T_TEXT, OSC_T_INT8, OSC_T_INT8, OSC_T_FLOAT8,
        OSC_T_FLOAT8, OSC_T_FLOAT8, OSC_T_TEXT, OSC_T_INT8, OSC_T_TEXT, OSC_T_TEXT, OSC_T_TEXT,
        OSC_T_TEXT, OSC_T_TIMESTAMPTZ, OSC_T_TIMESTAMPTZ, OSC_T_TEXT, OSC_T_TEXT, OSC_T_TEXT,
        OSC_T_TEXT, OSC_T_TEXT, OSC_T_TEXT, OSC_T_TEXT, OSC_T_INT8, OSC_T_FLOAT8, OSC_T_FLOAT8,
        OSC_T_FLOAT8, OSC_T_INT8, OSC_T_INT8, OSC_T_INT8, OSC_T_INT8, OSC_T_FLOAT8, OSC_T_FLOAT8,
        OSC_T_TEXT};
    int ncols = only ? 35 : 18;
    for (int i = 0; i < ncols; i++)
        osc_result_col(r, names[i], types[i]);
    snprintf(r->tag, sizeof r->tag, "SHOW");
    if (!osc_state_exists(c)) {
        if (only)
            osc_access_no_such(r, only, db);
        return;
    }
    char sql[2400], err[512], ids[32];
    snprintf(ids, sizeof ids, "%" PRId64, only);
    /* only the migrations user may act on (a single one was checked by check_owner) */
    snprintf(sql, sizeof sql, "%s WHERE ($2::int8 = 0 OR m.id = $2::int8) AND " OSC_MAY_ACT_SQL
             " ORDER BY id DESC", show_cols);
    const char *v[] = {user, ids};
    PGresult *t = osc_access_pin_begin(c, err, sizeof err) ? osc_exec(c, sql, 2, v, err, sizeof err, NULL) : NULL;
    osc_access_pin_end(c);
    if (t == NULL) {
        osc_result_error(r, "XX000", NULL, "%s", err);
        return;
    }
    if (only && PQntuples(t) == 0)
        osc_access_no_such(r, only, db);
    for (int i = 0; r->ok && i < PQntuples(t); i++) {
        const char *val[35];
        char revertible[1400];
        char rate[32] = "", eta[32] = "", batch[32] = "", throttle[128] = "", copied[32] = "";
        char prep[6][32];
        int src[] = {0,  1,  2,  3,  4,  5,  6,  -1, -1, -1, -1, 7,  8, 9,
                     10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
        for (int k = 0; k < ncols && k < 28; k++)
            val[k] = src[k] < 0 || PQgetisnull(t, i, src[k]) ? NULL : PQgetvalue(t, i, src[k]);
        val[9] = "";
        /* the sessions' re-preparing after this change (issue 14), known to this process
         * only: NULL when the row type did not change, or after a restart */
        osc_reprepare_stats rs;
        bool known = only && osc_hooks.reprepare_stats &&
                     osc_hooks.reprepare_stats(db, strtoll(PQgetvalue(t, i, 0), NULL, 10), &rs);
        if (known) {
            snprintf(prep[0], 32, "%" PRId64, rs.sessions_marked);
            snprintf(prep[1], 32, "%" PRId64, rs.sessions);
            snprintf(prep[2], 32, "%" PRId64, rs.statements);
            snprintf(prep[3], 32, "%" PRId64, rs.left);
            snprintf(prep[4], 32, "%.3f", rs.max_ms);
            snprintf(prep[5], 32, "%.3f", rs.total_ms);
        }
        for (int k = 28; k < ncols && k < 34; k++)
            val[k] = known ? prep[k - 28] : NULL;
        if (only) { /* REVERT MIGRATION n's verdict (osc_revert.h) */
            osc_revert_verdict(c, strtoll(PQgetvalue(t, i, 0), NULL, 10), revertible, sizeof revertible);
            val[34] = revertible;
        }
        pthread_mutex_lock(&reg_lock);
        osc_mig *m = find_locked(db, strtoll(PQgetvalue(t, i, 0), NULL, 10));
        if (m) {
            pthread_mutex_lock(&m->lock);
            bool copying = strcmp(m->state, "copying") == 0;
            if (m->running && copying && m->rows_copied > strtoll(val[4], NULL, 10)) {
                snprintf(copied, sizeof copied, "%" PRId64, m->rows_copied);
                val[4] = copied;
            }
            if (m->running && copying) {
                snprintf(rate, sizeof rate, "%.1f", m->rows_per_second);
                val[7] = rate;
                int64_t left = m->rows_estimated - m->rows_copied;
                if (m->rows_per_second > 0) {
                    snprintf(eta, sizeof eta, "%.1f", left > 0 ? left / m->rows_per_second : 0.0);
                    val[8] = eta;
                }
            }
            if (m->running && m->current_batch > 0) {
                snprintf(batch, sizeof batch, "%d", m->current_batch);
                val[10] = batch;
            }
            if (m->running) {
                snprintf(throttle, sizeof throttle, "%s", m->throttle);
                val[9] = throttle;
            }
            pthread_mutex_unlock(&m->lock);
        }
        pthread_mutex_unlock(&reg_lock);
        osc_result_row(r, val);
    }
    PQclear(t);
}

/* The live driver of id, taking its lock; NULL when none runs in this process. */
static osc_mig *driver(const char *db, int64_t id)
{
    pthread_mutex_lock(&reg_lock);
    osc_mig *m = find_locked(db, id);
    if (m && !m->running)
        m = NULL;
    if (m)
        pthread_mutex_lock(&m->lock);
    pthread_mutex_unlock(&reg_lock);
    return m;
}

/* The state of migration id from its row into state (""), false when it does not exist. */
static bool row_state(PGconn *c, int64_t id, char *state, size_t len)
{
    char ids[32], err[256];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *v[] = {ids};
    PGresult *t = osc_state_exists(c) ? osc_exec(c, "SELECT state FROM pgcutover.migrations WHERE id = $1",
                                                 1, v, err, sizeof err, NULL)
                                      : NULL;
    bool found = t && PQntuples(t) == 1;
    snprintf(state, len, "%s", found ? PQgetvalue(t, 0, 0) : "");
    PQclear(t);
    return found;
}

/* Wait up to ms for m's state to become one of want (|-separated); m->lock held. */
static bool wait_state(osc_mig *m, const char *want, int ms)
{
    struct timespec until = osc_deadline(ms);
    for (;;) {
        char pat[32];
        snprintf(pat, sizeof pat, "|%s|", m->state);
        if (strstr(want, pat))
            return true;
        if (!m->running || m->stop || pthread_cond_timedwait(&m->cond, &m->lock, &until) != 0)
            return strstr(want, pat) != NULL;
    }
}

/* PAUSE / RESUME MIGRATION n|ALL. */
static void pause_resume(PGconn *c, const char *db, const char *user, bool pause, const char *arg,
                         osc_result *r)
{
    int64_t only = strcmp(arg, "ALL") == 0 ? 0 : strtoll(arg, NULL, 10);
    char state[32];
    if (only && !row_state(c, only, state, sizeof state)) {
        osc_access_no_such(r, only, db);
        return;
    }
    /* batched statements: their loop reads the row between two ranges; ALL takes the
     * user's own (as for the copies below) */
    char ids[32], err[256];
    snprintf(ids, sizeof ids, "%" PRId64, only);
    const char *v[] = {ids, pause ? "paused" : "copying", pause ? "copying" : "paused"};
    PGresult *t = osc_state_exists(c)
                      ? osc_exec(c, "SELECT id FROM pgcutover.migrations WHERE strategy = 'batched' "
                                    "AND state IN ($2, $3) AND ($1::bigint = 0 OR id = $1::bigint)",
                                 3, v, err, sizeof err, NULL)
                      : NULL;
    int batched = 0;
    for (int i = 0; t && i < PQntuples(t); i++) {
        char table[300];
        int64_t id = strtoll(PQgetvalue(t, i, 0), NULL, 10);
        if (!only && osc_access_may_act(c, user, id, table, sizeof table, err, sizeof err) != OSC_MAY_YES)
            continue;
        const char *u[] = {PQgetvalue(t, i, 0), v[1], v[2]};
        PGresult *x = osc_exec(c, "UPDATE pgcutover.migrations SET state = $2, updated_at = now(), "
                                  "phase_at = phase_at || jsonb_build_object($2, now()) WHERE id = "
                                  "$1::bigint AND state IN ($2, $3) RETURNING id",
                               3, u, err, sizeof err, NULL);
        batched += x && PQntuples(x) == 1;
        PQclear(x);
    }
    PQclear(t);
    if (only && batched) {
        snprintf(r->tag, sizeof r->tag, "%s MIGRATION", pause ? "PAUSE" : "RESUME");
        return;
    }
    int done = 0;
    pthread_mutex_lock(&reg_lock);
    osc_mig *list[64];
    int n = 0;
    for (osc_mig *m = reg_head; m && n < 64; m = m->next)
        if (m->running && strcmp(m->db, db) == 0 && (!only || m->id == only))
            list[n++] = m;
    pthread_mutex_unlock(&reg_lock);
    for (int i = 0; i < n; i++) {
        osc_mig *m = list[i];
        char table[300], err[256];
        if (!only && osc_access_may_act(c, user, m->id, table, sizeof table, err, sizeof err) != OSC_MAY_YES)
            continue; /* ALL: the user's own only (a single one was checked by check_owner) */
        pthread_mutex_lock(&m->lock);
        bool can = strcmp(m->state, "pending") == 0 || strcmp(m->state, "preparing") == 0 ||
                   strcmp(m->state, "copying") == 0 || strcmp(m->state, "paused") == 0;
        if (can) {
            m->pause = pause;
            pthread_cond_broadcast(&m->cond);
            if (pause && strcmp(m->state, "copying") == 0)
                wait_state(m, "|paused|failed|aborting|aborted|", 5000);
            done++;
        } else if (only) {
            snprintf(state, sizeof state, "%s", m->state);
        }
        pthread_mutex_unlock(&m->lock);
    }
    if (only && done == 0) {
        osc_result_error(r, "55000", "PAUSE and RESUME act on a copy's backfill (states pending, "
                                     "preparing, copying, paused); a concurrent build or a "
                                     "validation cannot pause: ABORT MIGRATION n stops it and "
                                     "drops what it added",
                         "migration %" PRId64 " is %s%s", only, state,
                         n == 0 ? " and no backfill of it runs in this pgcutover" : "");
        return;
    }
    snprintf(r->tag, sizeof r->tag, "%s MIGRATION", pause ? "PAUSE" : "RESUME");
}

static void set_setting(PGconn *c, const char *db, int64_t id, const char *key, const char *value,
                        osc_result *r)
{
    char state[32], err[512];
    if (!row_state(c, id, state, sizeof state)) {
        osc_access_no_such(r, id, db);
        return;
    }
    char lower[64], norm[64];
    snprintf(lower, sizeof lower, "%s", key);
    for (char *p = lower; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    snprintf(norm, sizeof norm, "%s", value);
    for (char *p = norm; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    static const char *const keys[] = {"batch_size", "target_batch_ms", "max_rows_per_second",
                                       "lock_timeout_ms", "cutover", "cutover_force"};
    int which = -1;
    for (int i = 0; i < 6; i++)
        if (strcmp(lower, keys[i]) == 0)
            which = i;
    if (which < 0) {
        osc_result_error(r, "42601", "settable: batch_size, target_batch_ms, max_rows_per_second, "
                                     "lock_timeout_ms, cutover, cutover_force",
                         "unknown migration setting \"%s\"", key);
        return;
    }
    if (which == 5) {
        bool on = strcmp(norm, "on") == 0 || strcmp(norm, "true") == 0 || strcmp(norm, "1") == 0;
        bool off = strcmp(norm, "off") == 0 || strcmp(norm, "false") == 0 || strcmp(norm, "0") == 0;
        if (!on && !off) {
            osc_result_error(r, "22023", NULL, "cutover_force must be on or off, not \"%s\"", value);
            return;
        }
        snprintf(norm, sizeof norm, "%s", on ? "on" : "off");
    } else {
        conf_t scratch = {0};
        conf_init_defaults(&scratch);
        bool ok = conf_set(&scratch, lower, norm, err, sizeof err);
        conf_free(&scratch);
        if (!ok) {
            osc_result_error(r, "22023", NULL, "%s", err);
            return;
        }
    }
    if (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 || strcmp(state, "aborted") == 0) {
        osc_result_error(r, "55000", NULL, "migration %" PRId64 " is %s", id, state);
        return;
    }
    char ids[32];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *v[] = {ids, lower, norm};
    if (!osc_run(c, "UPDATE pgcutover.migrations SET settings = settings || jsonb_build_object($2::text, "
                    "$3::text), updated_at = now() WHERE id = $1",
                 3, v, err, sizeof err, NULL)) {
        osc_result_error(r, "XX000", NULL, "%s", err);
        return;
    }
    osc_mig *m = driver(db, id);
    if (m) {
        int iv = atoi(norm);
        switch (which) {
        case 0: m->batch_size = iv; m->batch_reset = true; break;
        case 1: m->target_batch_ms = iv; break;
        case 2: m->max_rows_per_second = iv; break;
        case 3: m->lock_timeout_ms = iv; break;
        case 4: m->cutover_manual = strcmp(norm, "manual") == 0; break;
        default: m->cutover_force = strcmp(norm, "on") == 0; break;
        }
        pthread_cond_broadcast(&m->cond);
        pthread_mutex_unlock(&m->lock);
    }
    osc_log(CONF_LOG_INFO, "m%" PRId64 " SET %s = %s", id, lower, norm);
    snprintf(r->tag, sizeof r->tag, "SET MIGRATION");
}

static void abort_migration(PGconn *c, const char *db, int64_t id, osc_result *r)
{
    char state[32], err[1024];
    if (!row_state(c, id, state, sizeof state)) {
        osc_access_no_such(r, id, db);
        return;
    }
    if (strcmp(state, "done") == 0 || strcmp(state, "aborted") == 0) {
        osc_result_error(r, "55000", strcmp(state, "done") == 0 ? "the change is in place; undo it "
                                                                  "with a new migration" : NULL,
                         "migration %" PRId64 " is already %s", id, state);
        return;
    }
    if (osc_strategy_abort(c, id, r))
        return;
    osc_mig *m = driver(db, id);
    bool stop = false;
    if (m) {
        m->abort = true;
        pthread_cond_broadcast(&m->cond);
        wait_state(m, "|aborted|failed|", 60000);
        snprintf(state, sizeof state, "%s", m->state);
        stop = m->stop;
        /* It failed meanwhile (or had, still cleaning up): once its driver has ended, abort
         * it as a failed migration, below. */
        bool failed = !stop && strcmp(state, "failed") == 0;
        struct timespec until = osc_deadline(60000);
        while (failed && m->running && pthread_cond_timedwait(&m->cond, &m->lock, &until) == 0)
            ;
        failed = failed && !m->running;
        pthread_mutex_unlock(&m->lock);
        if (failed)
            m = NULL;
    }
    if (m) {
        if (stop && strcmp(state, "aborted") != 0) {
            osc_result_error(r, "57P01", "the next start carries the abort on (state aborting) "
                                         "or ABORT MIGRATION again",
                             "pgcutover is shutting down: migration %" PRId64 " is %s", id, state);
            return;
        }
        if (strcmp(state, "aborted") != 0) {
            osc_result_error(r, "55000", "look at SHOW MIGRATION for the reason, then ABORT again",
                             "migration %" PRId64 " did not finish aborting (state %s)", id, state);
            return;
        }
        snprintf(r->tag, sizeof r->tag, "ABORT MIGRATION");
        return;
    }
    /* No driver here (failed, or its thread ended): clean up ourselves, if nobody else
     * drives it. */
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%d, %" PRId64 ")", OSC_LOCK_CLASS, id);
    PGresult *t = osc_exec(c, sql, 0, NULL, err, sizeof err, NULL);
    bool mine = t && PQgetvalue(t, 0, 0)[0] == 't';
    PQclear(t);
    if (!mine) {
        osc_result_error(r, "55000", "abort it on the pgcutover that runs it",
                         "migration %" PRId64 " is driven by another session", id);
        return;
    }
    bool was_failed = strcmp(state, "failed") == 0;
    /* A failed migration is not live (another may have started on the table since): it
     * goes straight to aborted, without the live state aborting in between. */
    bool ok = (was_failed || osc_state_set(c, id, "aborting", "dropping triggers and shadow", NULL,
                                           err, sizeof err)) &&
              osc_mig_cleanup(c, id, 200, err, sizeof err) &&
              osc_state_set(c, id, "aborted", "original untouched; triggers and shadow dropped", NULL,
                            err, sizeof err);
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%d, %" PRId64 ")", OSC_LOCK_CLASS, id);
    PQclear(PQexec(c, sql));
    if (!ok) {
        osc_result_error(r, "55000", "ABORT again once the table's locks allow it",
                         "aborting migration %" PRId64 ": %s", id, err);
        return;
    }
    osc_log(CONF_LOG_INFO, "m%" PRId64 " aborted%s", id, was_failed ? " (it had failed; cleaned up)" : "");
    snprintf(r->tag, sizeof r->tag, "ABORT MIGRATION");
}

/* CUTOVER MIGRATION n: ask the driver for a swap now and wait for the outcome. */
static void cutover_now(PGconn *c, const char *db, int64_t id, osc_result *r)
{
    char state[32];
    if (!row_state(c, id, state, sizeof state)) {
        osc_access_no_such(r, id, db);
        return;
    }
    if (strcmp(state, "ready") != 0) {
        osc_result_error(r, "55000", "CUTOVER MIGRATION acts on a migration in state ready",
                         "migration %" PRId64 " is %s", id, state);
        return;
    }
    osc_mig *m = driver(db, id);
    if (m == NULL) {
        osc_result_error(r, "55000", "restart pgcutover to resume it, or ABORT MIGRATION",
                         "no pgcutover thread drives migration %" PRId64 " here", id);
        return;
    }
    int gen = m->cutover_gen;
    m->cutover_req = true;
    pthread_cond_broadcast(&m->cond);
    struct timespec until = osc_deadline(600 * 1000);
    while (m->running && !m->stop && m->cutover_gen == gen)
        if (pthread_cond_timedwait(&m->cond, &m->lock, &until) != 0)
            break;
    bool done = strcmp(m->state, "done") == 0, stop = m->stop && m->cutover_gen == gen;
    pthread_mutex_unlock(&m->lock);
    if (stop && !done) {
        osc_result_error(r, "57P01", "a swap under way completes or rolls back; CUTOVER "
                                     "MIGRATION again after the restart",
                         "pgcutover is shutting down: migration %" PRId64 " not cut over", id);
        return;
    }
    if (!done) {
        char err[256];
        const char *v[] = {state};
        snprintf(state, sizeof state, "%" PRId64, id);
        PGresult *t = osc_exec(c, "SELECT state, phase FROM pgcutover.migrations WHERE id = $1", 1,
                               v, err, sizeof err, NULL);
        osc_result_error(r, "55000", "SHOW MIGRATION has the details", "migration %" PRId64
                         " did not cut over (%s): %s", id, t ? PQgetvalue(t, 0, 0) : "?",
                         t ? PQgetvalue(t, 0, 1) : err);
        PQclear(t);
        return;
    }
    snprintf(r->tag, sizeof r->tag, "CUTOVER MIGRATION");
}

bool osc_engine_stopping(void)
{
    pthread_mutex_lock(&reg_lock);
    bool s = stopping;
    pthread_mutex_unlock(&reg_lock);
    return s;
}

int64_t osc_engine_statement(PGconn *c, const char *db, const char *user, const char *stmt,
                             bool plan, osc_result *r)
{
    char w[MAXW][64];
    int n = words(stmt, w);
    const char *kind;
    int64_t started = 0;
    if (index_words(w, n, 0))
        osc_strategy_index(c, user, stmt, plan, r);
    else if (osc_stmt_direct(stmt, &kind)) {
        conf_t settings = {0};
        osc_hooks.settings(&settings);
        osc_strategy_direct(c, user, stmt, kind, plan, &settings, r);
        conf_free(&settings);
    } else if (n >= 2 && strcmp(w[0], "ALTER") == 0 && strcmp(w[1], "TABLE") == 0) {
        if (plan)
            osc_alter_plan(c, user, stmt, r);
        else if ((started = osc_alter_start(c, user, stmt, r)) > 0)
            launch(c, db, started);
    } else
        osc_result_error(r, "42601", NULL, "not a DDL statement pgcutover runs: %.200s", stmt);
    return started;
}

/* MIGRATE …: the versioned-migration runner (osc_migrate.h) on a connection of its own. */
static void migrate_command(const char *db, const char *user, const char *cmd, osc_result *r)
{
    osc_mcmd m;
    char err[1024];
    if (!osc_mcmd_parse(cmd, &m, err, sizeof err)) {
        osc_result_error(r, "42601", "`pgcutover migrate` sends this command for you", "%s", err);
        return;
    }
    if (!cmd_enter()) {
        osc_result_error(r, "57P01", NULL, "pgcutover is shutting down");
        osc_mcmd_free(&m);
        return;
    }
    PGconn *c = osc_connect(db, "pgcutover migrate", err, sizeof err);
    if (c == NULL)
        osc_result_error(r, "08006", "check migration_conninfo / server_host", "%s", err);
    else
        osc_migrate_command(c, db, user, &m, r);
    PQfinish(c);
    cmd_leave();
    osc_mcmd_free(&m);
}

/* BATCHED UPDATE|DELETE …: osc_batched_run; the same statement run again after it failed
 * goes on from the failed run's checkpoint. */
static void batched_command(const char *db, const char *user, const char *stmt, osc_result *r)
{
    char err[1024];
    if (!cmd_enter()) {
        osc_result_error(r, "57P01", NULL, "pgcutover is shutting down");
        return;
    }
    PGconn *c = osc_connect(db, "pgcutover console", err, sizeof err);
    if (c == NULL || !osc_state_ensure(c, err, sizeof err)) {
        osc_result_error(r, c ? "XX000" : "08006", NULL, "%s", err);
    } else {
        const char *v[] = {stmt + strspn(stmt, " \t\r\n"), user};
        PGresult *t = osc_exec(c, "SELECT id FROM pgcutover.migrations WHERE strategy = 'batched' AND "
                                  "state = 'failed' AND source IS NULL AND statement = $1 AND "
                                  "started_by = $2 ORDER BY id DESC LIMIT 1", 2, v, err, sizeof err, NULL);
        int64_t resume = t && PQntuples(t) == 1 ? strtoll(PQgetvalue(t, 0, 0), NULL, 10) : 0;
        PQclear(t);
        conf_t settings = {0};
        osc_hooks.settings(&settings);
        osc_batched_run(c, user, v[0], resume, &settings, r);
        conf_free(&settings);
    }
    PQfinish(c);
    cmd_leave();
}

/* REVERT MIGRATION id of a copy migration (osc_engine_revert_copy, the owner checked). */
static bool revert_copy(PGconn *c, const char *db, int64_t id, bool plan, osc_result *r)
{
    char err[512], code[6];
    osc_window_info wi;
    if (!osc_window_inspect(c, id, &wi, err, sizeof err))
        return false;
    if (wi.why[0]) {
        osc_result_error(r, wi.refused_state || wi.running ? "55000" : "0A000",
                         wi.later ? "revert that first" : NULL,
                         "migration %" PRId64 " cannot be reverted: %s", id, wi.why);
        return true;
    }
    char wids[32], what[400];
    snprintf(wids, sizeof wids, "%" PRId64, wi.window);
    snprintf(what, sizeof what, "migration %" PRId64 ": apply the change log kept since the swap to "
             "pgcutover.%s, verify it against the live table mapped back, then swap it back "
             "under the hold", wi.window, wi.old_name);
    const char *wv[] = {wids};
    bool ok = plan || osc_run(c, "UPDATE pgcutover.migrations SET state = 'verifying', phase = "
                                 "'REVERT requested', settings = settings || '{\"cutover\": \"auto\"}', "
                                 "updated_at = now(), phase_at = phase_at || jsonb_build_object("
                                 "'verifying', now()) WHERE id = $1::bigint AND state = 'standby'",
                              1, wv, err, sizeof err, code);
    if (!ok) {
        osc_result_error(r, code, NULL, "%s", err);
        return true;
    }
    if (!plan)
        launch(c, db, wi.window);
    osc_result_col(r, "step", OSC_T_INT8);
    osc_result_col(r, "sql", OSC_T_TEXT);
    osc_result_col(r, "strategy", OSC_T_TEXT);
    osc_result_col(r, "note", OSC_T_TEXT);
    const char *row[] = {"1", what, "copy", wids};
    osc_result_row(r, row);
    snprintf(r->tag, sizeof r->tag, plan ? "PLAN" : "REVERT MIGRATION");
    osc_log(CONF_LOG_INFO, "m%" PRId64 ": %s by migration %" PRId64, id,
            plan ? "revert planned" : "reverting", wi.window);
    return true;
}

bool osc_engine_revert_copy(PGconn *c, const char *db, const char *user, int64_t id, osc_result *r)
{
    return !osc_access_check(c, db, user, id, r) || revert_copy(c, db, id, false, r);
}

/* REVERT MIGRATION n: osc_revert_command after the owner rule. */
static void revert_command(const char *db, const char *user, int64_t id, bool plan, bool accept,
                           osc_result *r)
{
    char err[1024];
    if (!cmd_enter()) {
        osc_result_error(r, "57P01", NULL, "pgcutover is shutting down");
        return;
    }
    PGconn *c = osc_connect(db, "pgcutover console", err, sizeof err);
    if (c == NULL)
        osc_result_error(r, "08006", "check migration_conninfo / server_host", "%s", err);
    else if (osc_access_check(c, db, user, id, r) && !revert_copy(c, db, id, plan, r))
        osc_revert_command(c, db, user, id, plan, accept, r);
    PQfinish(c);
    cmd_leave();
}

void osc_engine_command(const char *db, const char *user, const char *cmd, osc_result *r)
{
    osc_result_init(r);
    if (osc_mcmd_is(cmd)) {
        migrate_command(db, user, cmd, r);
        return;
    }
    if (batched_stmt(cmd)) {
        batched_command(db, user, batched_stmt(cmd), r);
        return;
    }
    {
        char rw[MAXW][64];
        bool rplan, accept;
        int64_t rid = revert_words(rw, words(cmd, rw), &rplan, &accept);
        if (rid < 0) {
            osc_result_error(r, "42601", NULL, "syntax: REVERT MIGRATION n [ACCEPT DATA LOSS] | "
                                               "PLAN REVERT MIGRATION n");
            return;
        }
        if (rid > 0) {
            revert_command(db, user, rid, rplan, accept, r);
            return;
        }
    }
    char w[MAXW][64], err[1024];
    int n = words(cmd, w);
    bool plan = n >= 1 && strcmp(w[0], "PLAN") == 0;
    const char *stmt = plan ? cmd + strspn(cmd, " \t\r\n") + 4 : cmd, *kind; /* after PLAN */
    bool index = index_words(w, n, plan ? 1 : 0);
    bool direct = !index && osc_stmt_direct(stmt, &kind);
    if (plan && !index && !direct && (n < 2 || strcmp(w[1], "ALTER") != 0)) {
        osc_result_error(r, "42601", "PLAN ALTER TABLE … | CREATE INDEX … | any DDL statement",
                         "PLAN takes a DDL statement");
        return;
    }
    if (!plan && n >= 1 && strcmp(w[0], "SET") == 0 && (n != 6 || strcmp(w[4], "=") != 0)) {
        osc_result_error(r, "42601", NULL, "syntax: SET MIGRATION n key = value");
        return;
    }
    bool alter = !plan && !direct && strcmp(w[0], "ALTER") == 0;
    bool show_all = n == 2 && strcmp(w[0], "SHOW") == 0 && strcmp(w[1], "MIGRATIONS") == 0;
    int64_t id = 0;
    if (!plan && !alter && !show_all && !index && !direct) {
        bool all_ok = strcmp(w[0], "PAUSE") == 0 || strcmp(w[0], "RESUME") == 0;
        char *end = NULL;
        id = n >= 3 ? strtoll(w[2], &end, 10) : 0;
        bool numeric = n >= 3 && end && *end == 0 && id > 0;
        bool arity = strcmp(w[0], "SET") == 0 ? n == 6 : n == 3;
        if (!arity || !(numeric || (all_ok && strcmp(w[2], "ALL") == 0))) {
            osc_result_error(r, "42601", "type HELP for the list of commands",
                             "syntax: %s MIGRATION n%s", w[0], all_ok ? "|ALL" : "");
            return;
        }
    }
    if (!cmd_enter()) {
        osc_result_error(r, "57P01", NULL, "pgcutover is shutting down");
        return;
    }
    PGconn *c = osc_connect(db, "pgcutover console", err, sizeof err);
    if (c == NULL) {
        osc_result_error(r, "08006", "check migration_conninfo / server_host", "%s", err);
        cmd_leave();
        return;
    }
    /* Every command on migration n: the owner rule first (PAUSE/RESUME ALL and SHOW
     * MIGRATIONS apply it to each migration). */
    if (id > 0 && !osc_access_check(c, db, user, id, r))
        ; /* answered */
    else if (index || direct || alter)
        osc_engine_statement(c, db, user, stmt, plan, r);
    else if (plan)
        osc_alter_plan(c, user, db ? strcasestr(cmd, "alter") : cmd, r);
    else if (show_all)
        show(c, db, user, 0, r);
    else if (strcmp(w[0], "SHOW") == 0)
        show(c, db, user, id, r);
    else if (strcmp(w[0], "PAUSE") == 0 || strcmp(w[0], "RESUME") == 0)
        pause_resume(c, db, user, strcmp(w[0], "PAUSE") == 0, w[2], r);
    else if (strcmp(w[0], "SET") == 0)
        set_setting(c, db, id, w[3], w[5], r);
    else if (strcmp(w[0], "ABORT") == 0)
        abort_migration(c, db, id, r);
    else if (strcmp(w[0], "CUTOVER") == 0)
        cutover_now(c, db, id, r);
    else if (strcmp(w[0], "DROP") == 0) {
        conf_t st = {0};
        osc_hooks.settings(&st);
        osc_window_drop_command(c, db, id, st.lock_timeout_ms, r);
        conf_free(&st);
    }
    PQfinish(c);
    cmd_leave();
}

int osc_engine_admit(const char *db, const char *user, const char *control_role, char *err,
                     size_t errlen)
{
    if (!cmd_enter()) {
        snprintf(err, errlen, "pgcutover is shutting down");
        return -1;
    }
    int rc = -1;
    PGconn *c = osc_connect(db, "pgcutover console login", err, errlen);
    const char *v[] = {user, control_role};
    if (c && osc_run(c, "SET search_path = pg_catalog, pg_temp", 0, NULL, err, errlen, NULL)) {
        PGresult *t = osc_exec(
            c,
            "SELECT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = $1), "
            "false) OR coalesce((SELECT pg_catalog.pg_has_role(u.oid, g.oid, 'MEMBER') FROM "
            "pg_catalog.pg_roles u, pg_catalog.pg_roles g WHERE u.rolname = $1 AND g.rolname = "
            "$2), false)",
            2, v, err, errlen, NULL);
        if (t)
            rc = PQgetvalue(t, 0, 0)[0] == 't';
        PQclear(t);
    }
    PQfinish(c);
    cmd_leave();
    return rc;
}
