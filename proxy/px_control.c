/*
 * px_control.c — see px_control.h. After PostgreSQL accepts the login (relayed like
 * any session), the console asks the same server connection whether the user is a
 * superuser or a member of control_role, then answers simple queries itself.
 * Commands are split with libpg_query's scanner (quotes, dollar quotes and comments
 * are respected), matched case-insensitively, and answered with result sets.
 */
#include "px_control.h"

#include <ctype.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc_stmt.h"
#include "pgwire.h"
#include "px_control_show.h"
#include "px_log.h"

#define CONTROL_MAX_QUERY (1024 * 1024)

typedef enum { CTL_CHECKING, CTL_READY } ctl_phase;

struct px_control {
    ctl_phase phase;
    bool admin;
    bool ext_error; /* an extended-protocol message was refused: wait for Sync */
    char check_error[256];
};

/* ---------- login check ---------- */

static void append_literal(char *dst, size_t len, const char *s)
{
    size_t n = strlen(dst);
    if (n + 2 >= len)
        return;
    dst[n++] = '\'';
    for (; *s && n + 3 < len; s++) {
        if (*s == '\'')
            dst[n++] = '\'';
        dst[n++] = *s;
    }
    dst[n++] = '\'';
    dst[n] = 0;
}

bool px_control_authenticated(px_session *s)
{
    s->ctl = calloc(1, sizeof *s->ctl);
    if (s->ctl == NULL) {
        px_session_fail(s, "53200", "out of memory");
        return false;
    }
    char role[200] = "", sql[600];
    pthread_mutex_lock(&px_d.conf_lock);
    append_literal(role, sizeof role, px_d.conf.control_role);
    pthread_mutex_unlock(&px_d.conf_lock);
    snprintf(sql, sizeof sql,
             "SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR "
             "COALESCE((SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles "
             "WHERE rolname = %s), false)",
             role);
    size_t n = strlen(sql) + 1;
    uint8_t hdr[5] = {'Q', (uint8_t)((n + 4) >> 24), (uint8_t)((n + 4) >> 16),
                      (uint8_t)((n + 4) >> 8), (uint8_t)(n + 4)};
    evbuffer_add(s->server->out, hdr, 5);
    evbuffer_add(s->server->out, sql, n);
    if (!px_io_flush(s->server)) {
        px_session_fail(s, "08006", "server connection lost: %s", s->server->err);
        return false;
    }
    /* Client input waits until the check is done. */
    px_io_read_enable(s->client, false);
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
    struct px_control *c = s->ctl;
    pgw_header h;
    uint8_t *body;
    bool bad;
    while (take_message(s->server->in, 1u << 20, &h, &body, &bad)) {
        if (c->phase == CTL_CHECKING && h.type == 'D' && h.len >= 4 + 2 + 4 + 1)
            c->admin = body[2] == 0 && body[3] == 0 && body[4] == 0 && body[5] == 1 && body[6] == 't';
        if (c->phase == CTL_CHECKING && h.type == 'E') {
            pgw_error_fields f;
            if (pgw_read_error(body, h.len - 4, &f) == PGW_OK && f.message)
                snprintf(c->check_error, sizeof c->check_error, "%s", f.message);
        }
        bool ready = c->phase == CTL_CHECKING && h.type == 'Z';
        free(body);
        if (!ready)
            continue;
        if (!c->admin) {
            char role[128];
            pthread_mutex_lock(&px_d.conf_lock);
            snprintf(role, sizeof role, "%s", px_d.conf.control_role);
            pthread_mutex_unlock(&px_d.conf_lock);
            px_session_fail(s, "42501",
                            "role \"%s\" may not use the pgcutover console: it must be a "
                            "superuser or a member of \"%s\" (GRANT %s TO %s)%s%s",
                            s->user, role, role, s->user, *c->check_error ? ": " : "",
                            c->check_error);
            return;
        }
        c->phase = CTL_READY;
        px_info("c%llu console login %s/%s@%s", (unsigned long long)s->id, s->database, s->user,
                s->addr);
        pgw_buf b;
        pgw_buf_init(&b);
        pgw_build_ready(&b, 'I');
        send_buf(s, &b);
        pgw_buf_free(&b);
        px_io_read_enable(s->client, true);
        if (px_io_in_len(s->client) > 0)
            px_control_read(s);
        return;
    }
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

static bool is_migration_command(char w[MAXWORDS][32], int n)
{
    if (n >= 2 && strcmp(w[0], "ALTER") == 0 && strcmp(w[1], "TABLE") == 0)
        return true;
    if (n >= 3 && strcmp(w[0], "PLAN") == 0 && strcmp(w[1], "ALTER") == 0)
        return true;
    if (n >= 2 && strcmp(w[0], "SHOW") == 0 &&
        (strcmp(w[1], "MIGRATIONS") == 0 || strcmp(w[1], "MIGRATION") == 0))
        return true;
    static const char *const verbs[] = {"PAUSE", "RESUME", "SET", "CUTOVER", "ABORT", "DROP"};
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (n >= 2 && strcmp(w[0], verbs[i]) == 0 && strcmp(w[1], "MIGRATION") == 0)
            return true;
    return false;
}

/* Run one command; append its result or an ErrorResponse. Returns false on error. */
static bool run_command(px_session *s, const char *cmd, pgw_buf *b)
{
    char w[MAXWORDS][32];
    int n = words_of(cmd, w);
    char err[512];
    if (is_migration_command(w, n)) {
        bool plan = strcmp(w[0], "PLAN") == 0;
        if (plan || strcmp(w[0], "ALTER") == 0) {
            /* Refusals the parser can decide are real now; running needs the engine. */
            osc_stmt st;
            char code[6];
            const char *stmt = plan ? strcasestr(cmd, "alter") : cmd;
            if (!osc_stmt_parse(stmt, &st, code, err, sizeof err)) {
                error_msg(b, code, err, NULL);
                return false;
            }
            snprintf(err, sizeof err,
                     "statement understood (%d subcommand%s on \"%s\"), but the online change "
                     "engine is not available in this build yet",
                     st.ncmds, st.ncmds == 1 ? "" : "s", st.table);
            osc_stmt_free(&st);
        } else {
            snprintf(err, sizeof err,
                     "online schema changes are not available in this build yet (%s …)", w[0]);
        }
        error_msg(b, "0A000", err, "see HELP for what this build offers");
        return false;
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

/* Run one command text [start, end) of sql, trimmed; false on error. Empty is ok. */
static bool run_span(px_session *s, const char *sql, size_t start, size_t end, pgw_buf *b,
                     int *done)
{
    while (start < end && isspace((unsigned char)sql[start]))
        start++;
    while (end > start && isspace((unsigned char)sql[end - 1]))
        end--;
    if (start == end)
        return true;
    char *cmd = strndup(sql + start, end - start);
    if (cmd == NULL) {
        b->oom = true;
        return false;
    }
    bool ok = run_command(s, cmd, b);
    (*done)++;
    free(cmd);
    return ok;
}

/* Split a query string at top-level semicolons with PostgreSQL's own lexer (quotes,
 * dollar quotes, comments respected) and run each command in order, stopping at the
 * first error, as the server does for a multi-statement simple query. */
static void run_query(px_session *s, const char *sql, pgw_buf *b)
{
    PgQueryScanResult sr = pg_query_scan(sql);
    if (sr.error) {
        error_msg(b, "42601", sr.error->message, "type HELP for the list of commands");
        pg_query_free_scan_result(sr);
        return;
    }
    PgQuery__ScanResult *toks =
        pg_query__scan_result__unpack(NULL, sr.pbuf.len, (const uint8_t *)sr.pbuf.data);
    int done = 0;
    size_t start = 0;
    bool ok = toks != NULL;
    for (size_t i = 0; ok && i < toks->n_tokens; i++) {
        if (toks->tokens[i]->token != ';')
            continue;
        ok = run_span(s, sql, start, (size_t)toks->tokens[i]->start, b, &done);
        start = (size_t)toks->tokens[i]->end;
    }
    if (ok)
        ok = run_span(s, sql, start, strlen(sql), b, &done);
    if (toks == NULL)
        b->oom = true;
    else
        pg_query__scan_result__free_unpacked(toks, NULL);
    pg_query_free_scan_result(sr);
    if (ok && done == 0)
        pgw_build_empty_query(b);
}

void px_control_read(px_session *s)
{
    struct px_control *c = s->ctl;
    if (c == NULL || c->phase != CTL_READY)
        return;
    pgw_header h;
    uint8_t *body;
    bool bad;
    pgw_buf b;
    pgw_buf_init(&b);
    while (take_message(s->client->in, CONTROL_MAX_QUERY, &h, &body, &bad)) {
        switch (h.type) {
        case 'Q':
            c->ext_error = false;
            run_query(s, (const char *)body, &b);
            pgw_build_ready(&b, 'I');
            break;
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
    free(s->ctl);
    s->ctl = NULL;
}
