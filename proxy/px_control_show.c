/* px_control_show.c — see px_control_show.h. Column choices follow pgbouncer's SHOW
 * CLIENTS / SERVERS / STATS / CONFIG, with types instead of text everywhere. */
#include "px_control_show.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "conf_mask.h"
#include "px_daemon.h"
#include "px_session.h"

void px_format_timestamptz(int64_t unix_us, char *buf, size_t len)
{
    time_t t = (time_t)(unix_us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%06d+00", (int)(unix_us % 1000000));
}

#define MAXCOLS 24
typedef struct {
    char v[MAXCOLS][128];
    const char *p[MAXCOLS];
    int n;
} row;

static void row_reset(row *r)
{
    r->n = 0;
}

static void col_str(row *r, const char *s)
{
    if (s == NULL) {
        r->p[r->n++] = NULL;
        return;
    }
    snprintf(r->v[r->n], sizeof r->v[0], "%s", s);
    r->p[r->n] = r->v[r->n];
    r->n++;
}

static void col_fmt(row *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void col_fmt(row *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->v[r->n], sizeof r->v[0], fmt, ap);
    va_end(ap);
    r->p[r->n] = r->v[r->n];
    r->n++;
}

static const char *session_state(const px_session *s)
{
    if (s->state != PS_RELAY)
        return s->state == PS_CLOSING ? "closing" : "login";
    if (s->parked)
        return "held";
    if (s->copy)
        return s->copy == 'i' ? "copy in" : s->copy == 'o' ? "copy out" : "copy both";
    if (s->req_open)
        return "active";
    if (s->xact == 'T')
        return "idle in transaction";
    if (s->xact == 'E')
        return "idle in transaction (aborted)";
    return "idle";
}

/* Appends fn's DataRow for every session of every worker, under that worker's lock.
 * ctx is passed through to fn. */
static void each_session(pgw_buf *b, void (*fn)(pgw_buf *, const px_session *, const void *),
                         const void *ctx)
{
    for (int i = 0; i < px_d.nworkers; i++) {
        px_worker *w = &px_d.workers[i];
        pthread_mutex_lock(&w->lock);
        for (px_session *s = w->sessions; s; s = s->next)
            fn(b, s, ctx);
        pthread_mutex_unlock(&w->lock);
    }
}

static void client_row(pgw_buf *b, const px_session *s, const void *ctx)
{
    (void)ctx;
    row r;
    char ts[64];
    row_reset(&r);
    col_fmt(&r, "%" PRIu64, s->id);
    col_str(&r, s->is_control ? "control" : "client");
    col_str(&r, s->user);
    col_str(&r, s->database);
    col_str(&r, s->appname);
    col_str(&r, s->addr);
    col_str(&r, session_state(s));
    col_str(&r, s->client_tls ? "t" : "f");
    px_format_timestamptz(s->connected_unix_us, ts, sizeof ts);
    col_str(&r, ts);
    col_fmt(&r, "%" PRIu64, px_get(s->st_xacts));
    col_fmt(&r, "%" PRIu64, px_get(s->st_queries));
    col_fmt(&r, "%" PRIu64, px_get(s->st_bytes_in));
    col_fmt(&r, "%" PRIu64, px_get(s->st_bytes_out));
    col_fmt(&r, "%.3f", px_get(s->st_held_us) / 1000.0);
    if (s->be_pid)
        col_fmt(&r, "%u", s->be_pid);
    else
        col_str(&r, NULL);
    if (s->prep_off)
        col_str(&r, NULL); /* not tracked (max_prepared_statements_bytes) */
    else
        col_fmt(&r, "%" PRIu64, px_get(s->st_prep_n));
    col_fmt(&r, "%" PRIu64, px_get(s->st_prep_bytes));
    col_fmt(&r, "%" PRIu64, px_get(s->st_reprepared));
    col_fmt(&r, "%" PRIu64, px_get(s->st_prep_left));
    pgw_build_data_row(b, r.p, r.n);
}

bool px_show_clients(pgw_buf *b)
{
    static const pgw_column cols[] = {
        {"id", PGW_OID_INT8},         {"type", PGW_OID_TEXT},     {"user", PGW_OID_TEXT},
        {"database", PGW_OID_TEXT},   {"application_name", PGW_OID_TEXT},
        {"addr", PGW_OID_TEXT},       {"state", PGW_OID_TEXT},    {"tls", PGW_OID_BOOL},
        {"connect_time", PGW_OID_TIMESTAMPTZ},                    {"xacts", PGW_OID_INT8},
        {"queries", PGW_OID_INT8},    {"bytes_in", PGW_OID_INT8}, {"bytes_out", PGW_OID_INT8},
        {"held_ms", PGW_OID_FLOAT8},  {"backend_pid", PGW_OID_INT4},
        {"prepared", PGW_OID_INT4},   {"prepared_bytes", PGW_OID_INT8},
        {"reprepared", PGW_OID_INT8}, {"prepared_left", PGW_OID_INT8},
    };
    pgw_build_row_description(b, cols, (int)(sizeof cols / sizeof cols[0]));
    each_session(b, client_row, NULL);
    return pgw_build_command_complete(b, "SHOW") && !b->oom;
}

/* ctx: the px_target, read once per SHOW SERVERS rather than once per row. */
static void server_row(pgw_buf *b, const px_session *s, const void *ctx)
{
    const px_target *t = ctx;
    if (s->server == NULL)
        return;
    row r;
    row_reset(&r);
    col_fmt(&r, "%" PRIu64, s->id);
    col_str(&r, s->user);
    col_str(&r, s->database);
    col_fmt(&r, "%s:%d", t->host, t->port);
    if (s->be_pid)
        col_fmt(&r, "%u", s->be_pid);
    else
        col_str(&r, NULL);
    col_str(&r, s->server_tls ? "t" : "f");
    col_str(&r, s->state == PS_RELAY ? (s->authed ? "linked" : "login") : "connecting");
    pgw_build_data_row(b, r.p, r.n);
}

bool px_show_servers(pgw_buf *b)
{
    static const pgw_column cols[] = {
        {"client_id", PGW_OID_INT8}, {"user", PGW_OID_TEXT},        {"database", PGW_OID_TEXT},
        {"server", PGW_OID_TEXT},    {"backend_pid", PGW_OID_INT4}, {"tls", PGW_OID_BOOL},
        {"state", PGW_OID_TEXT},
    };
    pgw_build_row_description(b, cols, (int)(sizeof cols / sizeof cols[0]));
    px_target t;
    px_target_get(&t, NULL);
    each_session(b, server_row, &t);
    return pgw_build_command_complete(b, "SHOW") && !b->oom;
}

bool px_show_stats(pgw_buf *b)
{
    static const pgw_column cols[] = {
        {"clients", PGW_OID_INT8},       {"xacts", PGW_OID_INT8},
        {"queries", PGW_OID_INT8},       {"bytes_in", PGW_OID_INT8},
        {"bytes_out", PGW_OID_INT8},     {"latency_p50_ms", PGW_OID_FLOAT8},
        {"latency_p99_ms", PGW_OID_FLOAT8}, {"latency_max_ms", PGW_OID_FLOAT8},
        {"hold_active", PGW_OID_BOOL},   {"held_waits", PGW_OID_INT8},
        {"held_total_ms", PGW_OID_FLOAT8}, {"held_max_ms", PGW_OID_FLOAT8},
        {"prepared_reprepared", PGW_OID_INT8}, {"prepared_sessions", PGW_OID_INT8},
        {"prepared_left", PGW_OID_INT8}, {"prepared_untracked", PGW_OID_INT8},
        {"prepared_ms", PGW_OID_FLOAT8},
    };
    static px_stats st; /* large (histogram): not on the worker's stack */
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    px_stats_total(&st);
    row r;
    row_reset(&r);
    col_fmt(&r, "%d", atomic_load(&px_d.nclients));
    col_fmt(&r, "%" PRIu64, px_get(st.xacts));
    col_fmt(&r, "%" PRIu64, px_get(st.queries));
    col_fmt(&r, "%" PRIu64, px_get(st.bytes_in));
    col_fmt(&r, "%" PRIu64, px_get(st.bytes_out));
    col_fmt(&r, "%.3f", px_stats_percentile(&st, 0.50) / 1000.0);
    col_fmt(&r, "%.3f", px_stats_percentile(&st, 0.99) / 1000.0);
    col_fmt(&r, "%.3f", px_get(st.lat_max_us) / 1000.0);
    col_str(&r, px_hold_active() ? "t" : "f");
    col_fmt(&r, "%" PRIu64, px_get(st.holds));
    col_fmt(&r, "%.3f", px_get(st.held_us) / 1000.0);
    col_fmt(&r, "%.3f", px_get(st.held_max_us) / 1000.0);
    col_fmt(&r, "%" PRIu64, px_get(st.prep_reprepared));
    col_fmt(&r, "%" PRIu64, px_get(st.prep_sessions));
    col_fmt(&r, "%" PRIu64, px_get(st.prep_left));
    col_fmt(&r, "%" PRIu64, px_get(st.prep_untracked));
    col_fmt(&r, "%.3f", px_get(st.prep_us) / 1000.0);
    pthread_mutex_unlock(&lock);
    pgw_build_row_description(b, cols, (int)(sizeof cols / sizeof cols[0]));
    pgw_build_data_row(b, r.p, r.n);
    return pgw_build_command_complete(b, "SHOW") && !b->oom;
}

bool px_show_config(pgw_buf *b)
{
    static const pgw_column cols[] = {
        {"name", PGW_OID_TEXT},       {"value", PGW_OID_TEXT}, {"default", PGW_OID_TEXT},
        {"reloadable", PGW_OID_BOOL}, {"doc", PGW_OID_TEXT},
    };
    pgw_build_row_description(b, cols, 5);
    pthread_mutex_lock(&px_d.conf_lock);
    for (int i = 0; i < conf_nsettings; i++) {
        const conf_setting *s = &conf_settings[i];
        char val[512];
        conf_value_display(&px_d.conf, s, val, sizeof val); /* passwords masked */
        const char *v[5] = {s->name, val, s->default_value, s->reloadable ? "t" : "f", s->doc};
        pgw_build_data_row(b, v, 5);
    }
    pthread_mutex_unlock(&px_d.conf_lock);
    return pgw_build_command_complete(b, "SHOW") && !b->oom;
}

bool px_show_help(pgw_buf *b)
{
    static const char *const help[][2] = {
        {"SHOW CLIENTS", "application and console sessions"},
        {"SHOW SERVERS", "server connections (one per client session)"},
        {"SHOW STATS", "totals, latency percentiles, hold times"},
        {"SHOW CONFIG", "every setting with its value"},
        {"PAUSE", "hold new transactions at the proxy (returns once the hold is in place)"},
        {"RESUME", "release held transactions"},
        {"RELOAD", "re-read the configuration file"},
        {"SHUTDOWN", "stop accepting, wait for sessions (shutdown_timeout), exit"},
        {"ALTER TABLE ... | any DDL", "run a schema change the cheapest safe way; returns its id"},
        {"PLAN <DDL>", "dry run: strategy, steps, SQL, locks, warnings; changes nothing"},
        {"BATCHED UPDATE ... | BATCHED DELETE ...", "a data change in key ranges, each its own transaction"},
        {"SHOW MIGRATIONS | SHOW MIGRATION n", "migration state and progress"},
        {"PAUSE MIGRATION n|ALL | RESUME MIGRATION n|ALL", "stop/continue a backfill or batched statement"},
        {"SET MIGRATION n key = value", "change a running migration's setting"},
        {"CUTOVER MIGRATION n", "swap now (manual cutover)"},
        {"ABORT MIGRATION n", "undo everything; the original is intact"},
        {"DROP MIGRATION n", "close its revert window and drop the kept old table of a finished migration"},
        {"REVERT MIGRATION n [ACCEPT DATA LOSS]", "undo a done change: a copy swaps its old table back "
                                                  "(revert window), others run their inverse"},
        {"PLAN REVERT MIGRATION n", "what REVERT would run"},
        {"MIGRATE ...", "sent by `pgcutover migrate` (a migration directory)"},
        {"HELP", "this list"},
    };
    static const pgw_column cols[] = {{"command", PGW_OID_TEXT}, {"description", PGW_OID_TEXT}};
    pgw_build_row_description(b, cols, 2);
    for (size_t i = 0; i < sizeof help / sizeof help[0]; i++) {
        const char *v[2] = {help[i][0], help[i][1]};
        pgw_build_data_row(b, v, 2);
    }
    return pgw_build_command_complete(b, "SHOW") && !b->oom;
}
