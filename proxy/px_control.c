/*
 * px_control.c — see px_control.h. After PostgreSQL accepts the login (relayed like
 * any session), the engine decides on a connection of its own whether the user
 * PostgreSQL authenticated is a superuser or a member of control_role
 * (osc_engine_admit: nothing in the user's own session, such as its search_path, can
 * change the answer), then the console answers simple queries itself.
 * Commands are split with libpg_query's scanner (quotes, dollar quotes and comments
 * are respected), matched case-insensitively, and answered with result sets.
 */
#include "px_control.h"

#include <ctype.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc_engine.h"
#include "pgwire.h"
#include "px_control_show.h"
#include "px_log.h"

#define CONTROL_MAX_QUERY (1024 * 1024)

typedef enum { CTL_CHECKING, CTL_READY } ctl_phase;

struct ctl_job;

struct px_control {
    ctl_phase phase;
    struct ctl_job *job; /* a query or the login check on its own thread; client input waits */
    bool ext_error; /* an extended-protocol message was refused: wait for Sync */
};

static bool start_job(px_session *s, char *sql);
static void send_buf(px_session *s, pgw_buf *b);

/* ---------- login check ---------- */

bool px_control_authenticated(px_session *s)
{
    s->ctl = calloc(1, sizeof *s->ctl);
    if (s->ctl == NULL) {
        px_session_fail(s, "53200", "out of memory");
        return false;
    }
    /* The check blocks on libpq: it runs on a job thread (sql NULL) like a migration
     * command, and admitted() carries on. Client input waits until it is done. */
    if (!start_job(s, NULL)) {
        if (atomic_load(&px_d.console_closed))
            px_session_fail(s, "57P01", "pgcutover is shutting down");
        else
            px_session_fail(s, "53200", "could not start the console's login check");
        return false;
    }
    return true;
}

/* The login check's answer (verdict as from osc_engine_admit, err its reason). Returns
 * false when the login is refused: s may be freed then. */
static bool admitted(px_session *s, int verdict, const char *err)
{
    if (verdict != 1) {
        char role[128];
        pthread_mutex_lock(&px_d.conf_lock);
        snprintf(role, sizeof role, "%s", px_d.conf.control_role);
        pthread_mutex_unlock(&px_d.conf_lock);
        /* Why the check could not be made (the engine's connection) is for the log only:
         * the user is not admitted yet. */
        if (verdict < 0)
            px_warn("c%llu console login check for %s failed: %s", (unsigned long long)s->id,
                    s->user, err);
        px_session_fail(s, "42501",
                        "role \"%s\" may not use the pgcutover console: it must be a "
                        "superuser or a member of \"%s\" (GRANT %s TO %s)%s",
                        s->user, role, role, s->user,
                        verdict < 0 ? ": the check could not be made (see pgcutover's log)" : "");
        return false;
    }
    s->ctl->phase = CTL_READY;
    px_info("c%llu console login %s/%s@%s", (unsigned long long)s->id, s->database, s->user,
            s->addr);
    pgw_buf b;
    pgw_buf_init(&b);
    pgw_build_ready(&b, 'I');
    send_buf(s, &b);
    pgw_buf_free(&b);
    return true;
}

/* Take one whole message off buf into *h and a malloc'ed body (caller frees), or return
 * false when none is complete yet. *bad is set on a malformed header. */
static bool take_message(struct evbuffer *buf, uint32_t max_len, pgw_header *h, uint8_t **body,
                         bool *bad)
{
    uint8_t hb[PGW_HEADER_LEN];
    *bad = false;
    if (evbuffer_copyout(buf, hb, PGW_HEADER_LEN) < PGW_HEADER_LEN)
        return false;
    if (pgw_read_header(hb, PGW_HEADER_LEN, max_len, h) != PGW_OK) {
        *bad = true;
        return false;
    }
    if (evbuffer_get_length(buf) < (size_t)h->len + 1)
        return false;
    evbuffer_drain(buf, PGW_HEADER_LEN);
    *body = malloc(h->len - 4 + 1);
    if (*body == NULL) {
        *bad = true;
        return false;
    }
    evbuffer_remove(buf, *body, h->len - 4);
    (*body)[h->len - 4] = 0;
    return true;
}

static void send_buf(px_session *s, pgw_buf *b)
{
    if (!b->oom)
        evbuffer_add(s->client->out, b->data, b->len);
    px_io_flush(s->client);
}

void px_control_server_read(px_session *s)
{
    /* The console asks the server nothing after the login: whatever it sends (a
     * ParameterStatus, a NOTICE) is read and dropped. */
    pgw_header h;
    uint8_t *body;
    bool bad;
    while (take_message(s->server->in, 1u << 20, &h, &body, &bad))
        free(body);
    if (bad)
        px_session_fail(s, "08P01", "invalid message from server");
}

/* ---------- commands ---------- */

#define MAXWORDS 8

/* Split the start of cmd into upper-cased words (at most MAXWORDS, 31 chars each). */
static int words_of(const char *cmd, char w[MAXWORDS][32])
{
    int n = 0;
    const char *p = cmd;
    while (*p && n < MAXWORDS) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        int k = 0;
        while (*p && !isspace((unsigned char)*p) && *p != '=') {
            if (k < 31)
                w[n][k++] = (char)toupper((unsigned char)*p);
            p++;
        }
        if (k == 0) { /* '=' on its own */
            w[n][k++] = *p++;
        }
        w[n][k] = 0;
        n++;
    }
    return n;
}

static void error_msg(pgw_buf *b, const char *sqlstate, const char *msg, const char *hint)
{
    pgw_build_error(b, "ERROR", sqlstate, msg, NULL, hint);
}

/* Who runs a command: copied from the session, so a job thread never touches it. */
typedef struct {
    uint64_t id;
    char user[64], database[64];
} ctl_who;

/* Append an engine result as RowDescription/DataRow…/CommandComplete or ErrorResponse. */
static bool append_result(pgw_buf *b, const osc_result *r)
{
    if (!r->ok) {
        error_msg(b, r->sqlstate, r->message, *r->hint ? r->hint : NULL);
        return false;
    }
    if (r->ncols > 0) {
        pgw_column cols[OSC_MAX_COLS];
        for (int i = 0; i < r->ncols; i++)
            cols[i] = (pgw_column){r->colnames[i], r->coltypes[i]};
        pgw_build_row_description(b, cols, r->ncols);
        for (int i = 0; i < r->nrows; i++)
            pgw_build_data_row(b, (const char *const *)r->cells + (size_t)i * (size_t)r->ncols,
                               r->ncols);
    }
    return pgw_build_command_complete(b, *r->tag ? r->tag : "OK") && !b->oom;
}

/* Run one command; append its result or an ErrorResponse. Returns false on error. */
static bool run_command(const ctl_who *s, const char *cmd, pgw_buf *b)
{
    char w[MAXWORDS][32];
    int n = words_of(cmd, w);
    char err[512];
    if (osc_engine_is_command(cmd)) {
        osc_result r;
        osc_engine_command(s->database, s->user, cmd, &r);
        bool ok = append_result(b, &r);
        osc_result_free(&r);
        return ok;
    }
    if (n == 2 && strcmp(w[0], "SHOW") == 0) {
        if (strcmp(w[1], "CLIENTS") == 0)
            return px_show_clients(b);
        if (strcmp(w[1], "SERVERS") == 0)
            return px_show_servers(b);
        if (strcmp(w[1], "STATS") == 0)
            return px_show_stats(b);
        if (strcmp(w[1], "CONFIG") == 0)
            return px_show_config(b);
    }
    if (n == 1 && strcmp(w[0], "HELP") == 0)
        return px_show_help(b);
    if (n == 1 && strcmp(w[0], "PAUSE") == 0) {
        px_hold();
        px_info("c%llu PAUSE by %s", (unsigned long long)s->id, s->user);
        return pgw_build_command_complete(b, "PAUSE");
    }
    if (n == 1 && strcmp(w[0], "RESUME") == 0) {
        px_release();
        px_info("c%llu RESUME by %s", (unsigned long long)s->id, s->user);
        return pgw_build_command_complete(b, "RESUME");
    }
    if (n == 1 && strcmp(w[0], "RELOAD") == 0) {
        if (!px_reload(err, sizeof err)) {
            error_msg(b, "22023", err, "fix the file and RELOAD again; the old settings stay");
            return false;
        }
        return pgw_build_command_complete(b, "RELOAD");
    }
    if (n == 1 && strcmp(w[0], "SHUTDOWN") == 0) {
        px_info("c%llu SHUTDOWN by %s", (unsigned long long)s->id, s->user);
        px_shutdown();
        return pgw_build_command_complete(b, "SHUTDOWN");
    }
    snprintf(err, sizeof err, "unknown command: %.200s", cmd);
    error_msg(b, "42601", err, "type HELP for the list of commands");
    return false;
}

/* Calls fn(ctx, command) for each command of sql: split at top-level semicolons with
 * PostgreSQL's own lexer (quotes, dollar quotes, comments respected), trimmed, empty
 * ones skipped, until fn returns false. Returns false with err set on a lexer error. */
typedef bool (*command_fn)(void *ctx, const char *cmd);

static bool call_span(const char *sql, size_t start, size_t end, command_fn fn, void *ctx)
{
    while (start < end && isspace((unsigned char)sql[start]))
        start++;
    while (end > start && isspace((unsigned char)sql[end - 1]))
        end--;
    if (start == end)
        return true;
    char *cmd = strndup(sql + start, end - start);
    bool go_on = cmd != NULL && fn(ctx, cmd);
    free(cmd);
    return go_on;
}

static bool for_each_command(const char *sql, command_fn fn, void *ctx, char *err, size_t errlen)
{
    PgQueryScanResult sr = pg_query_scan(sql);
    if (sr.error) {
        snprintf(err, errlen, "%s", sr.error->message);
        pg_query_free_scan_result(sr);
        return false;
    }
    PgQuery__ScanResult *toks =
        pg_query__scan_result__unpack(NULL, sr.pbuf.len, (const uint8_t *)sr.pbuf.data);
    size_t start = 0;
    bool go_on = toks != NULL;
    for (size_t i = 0; go_on && i < toks->n_tokens; i++) {
        if (toks->tokens[i]->token != ';')
            continue;
        go_on = call_span(sql, start, (size_t)toks->tokens[i]->start, fn, ctx);
        start = (size_t)toks->tokens[i]->end;
    }
    if (go_on)
        call_span(sql, start, strlen(sql), fn, ctx);
    if (toks)
        pg_query__scan_result__free_unpacked(toks, NULL);
    pg_query_free_scan_result(sr);
    if (toks == NULL)
        snprintf(err, errlen, "out of memory");
    return toks != NULL;
}

typedef struct {
    const ctl_who *who;
    pgw_buf *b;
    int done;
} run_ctx;

static bool run_one(void *arg, const char *cmd)
{
    run_ctx *x = arg;
    x->done++;
    return run_command(x->who, cmd, x->b);
}

/* Run each command of sql in order, stopping at the first error, as the server does for
 * a multi-statement simple query; EmptyQueryResponse when there is none. */
static void run_query(const ctl_who *who, const char *sql, pgw_buf *b)
{
    run_ctx x = {who, b, 0};
    char err[512];
    if (!for_each_command(sql, run_one, &x, err, sizeof err))
        error_msg(b, "42601", err, "type HELP for the list of commands");
    else if (x.done == 0)
        pgw_build_empty_query(b);
}

static bool find_engine_command(void *arg, const char *cmd)
{
    bool *found = arg;
    *found = *found || osc_engine_is_command(cmd);
    return !*found;
}

/* ---------- queries that talk to the database run on their own thread ---------- */

/* A query with a migration command: the engine blocks on libpq, so it runs on a thread
 * of its own and its answer is posted back to the session's worker. The worker owns
 * `s`; the thread only reads the job's own copies. */
typedef struct ctl_job {
    px_session *s;   /* NULL once the session ended (worker thread writes it) */
    struct event_base *base;
    ctl_who who;
    char *sql;       /* NULL: the login check */
    char role[128];  /* the login check: control_role */
    int verdict;     /* the login check: osc_engine_admit's answer */
    char err[256];
    pgw_buf out;
} ctl_job;

static void job_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ctl_job *job = arg;
    px_session *s = job->s;
    if (s != NULL) {
        s->ctl->job = NULL;
        if (job->sql == NULL && !admitted(s, job->verdict, job->err))
            s = NULL; /* refused: the session may be gone */
        else if (job->sql != NULL)
            send_buf(s, &job->out);
    }
    pgw_buf_free(&job->out);
    free(job->sql);
    free(job);
    atomic_fetch_sub(&px_d.console_answers, 1);
    if (s != NULL && s->state == PS_RELAY) {
        px_io_read_enable(s->client, true);
        if (px_io_in_len(s->client) > 0)
            px_control_read(s);
    }
}

static void *job_main(void *arg)
{
    ctl_job *job = arg;
    if (job->sql == NULL) {
        job->verdict = osc_engine_admit(job->who.database, job->who.user, job->role, job->err,
                                        sizeof job->err);
    } else {
        run_query(&job->who, job->sql, &job->out);
        pgw_build_ready(&job->out, 'I');
    }
    struct timeval now = {0, 0};
    event_base_once(job->base, -1, EV_TIMEOUT, job_done, job, &now);
    /* libpq used OpenSSL on this thread: free its thread state now, not in a key
     * destructor that may still be running when the process exits. */
    OPENSSL_thread_stop();
    atomic_fetch_sub(&px_d.console_jobs, 1);
    return NULL;
}

/* Start sql (NULL: the login check) on a job thread; false when the thread cannot start.
 * Takes sql. */
static bool start_job(px_session *s, char *sql)
{
    if (atomic_load(&px_d.console_closed))
        return false; /* shutting down: the counts below must reach 0 */
    ctl_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return false;
    job->s = s;
    job->base = s->w->base;
    job->who.id = s->id;
    snprintf(job->who.user, sizeof job->who.user, "%s", s->user);
    snprintf(job->who.database, sizeof job->who.database, "%s", s->database);
    job->sql = sql;
    pthread_mutex_lock(&px_d.conf_lock);
    snprintf(job->role, sizeof job->role, "%s", px_d.conf.control_role);
    pthread_mutex_unlock(&px_d.conf_lock);
    pgw_buf_init(&job->out);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&px_d.console_jobs, 1);
    atomic_fetch_add(&px_d.console_answers, 1);
    bool ok = pthread_create(&t, &attr, job_main, job) == 0;
    if (!ok) {
        atomic_fetch_sub(&px_d.console_jobs, 1);
        atomic_fetch_sub(&px_d.console_answers, 1);
    }
    pthread_attr_destroy(&attr);
    if (!ok) {
        free(job);
        return false;
    }
    s->ctl->job = job;
    px_io_read_enable(s->client, false);
    return true;
}

void px_control_read(px_session *s)
{
    struct px_control *c = s->ctl;
    if (c == NULL || c->phase != CTL_READY || c->job != NULL)
        return;
    pgw_header h;
    uint8_t *body;
    bool bad;
    pgw_buf b;
    pgw_buf_init(&b);
    ctl_who who = {.id = s->id};
    snprintf(who.user, sizeof who.user, "%s", s->user);
    snprintf(who.database, sizeof who.database, "%s", s->database);
    while (take_message(s->client->in, CONTROL_MAX_QUERY, &h, &body, &bad)) {
        switch (h.type) {
        case 'Q': {
            c->ext_error = false;
            bool engine = false;
            char err[16];
            for_each_command((const char *)body, find_engine_command, &engine, err, sizeof err);
            if (engine && start_job(s, (char *)body)) {
                pgw_buf_free(&b);
                return; /* job_done answers and reads on */
            }
            run_query(&who, (const char *)body, &b);
            pgw_build_ready(&b, 'I');
            break;
        }
        case 'X':
            free(body);
            pgw_buf_free(&b);
            px_session_free(s);
            return;
        case 'S':
            c->ext_error = false;
            pgw_build_ready(&b, 'I');
            break;
        case 'P': case 'B': case 'D': case 'E': case 'C': case 'H': case 'F':
            if (!c->ext_error)
                error_msg(&b, "0A000", "the pgcutover console speaks the simple query protocol only",
                          "use psql, or PQexec without parameters");
            c->ext_error = true;
            break;
        default:
            free(body);
            send_buf(s, &b);
            pgw_buf_free(&b);
            px_session_fail(s, "08P01", "unexpected message type '%c' on the console", h.type);
            return;
        }
        free(body);
        send_buf(s, &b);
        pgw_buf_reset(&b);
        if (s->state != PS_RELAY)
            break; /* SHUTDOWN and friends may close us */
    }
    pgw_buf_free(&b);
    if (bad)
        px_session_fail(s, "08P01", "invalid message on the console (over 1 MB or malformed)");
}

void px_control_session_end(px_session *s)
{
    if (s->ctl && s->ctl->job)
        s->ctl->job->s = NULL; /* the job frees itself when it is done */
    free(s->ctl);
    s->ctl = NULL;
}
