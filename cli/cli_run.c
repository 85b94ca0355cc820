/*
 * cli_run.c — see cli_run.h. One blocking libpq connection to the control console; the
 * statement and the SET MIGRATION commands once, then SHOW MIGRATION n every 200 ms.
 * Signals only set a flag; the 200 ms sleep is a poll() that a signal interrupts.
 */
#include "cli_run.h"

#include <ctype.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <pg_query.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"

#define POLL_MS 200
#define PLAIN_EVERY_S 5.0     /* plain progress line while copying, at most this often */
#define FAILED_CLEANUP_S 10.0 /* wait this long for a failed migration's cleanup phase */

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

typedef struct {
    const char *host, *port, *db, *user, *stmt, *rate;
    bool plan, manual;
} run_opts;

/* One SHOW MIGRATION n row; numbers are -1 when NULL. */
typedef struct {
    char state[32], strategy[16], table[300], phase[2048], error[2048], throttle[128], old_table[300];
    char phase_at[2048];
    long long copied, estimated;
    double percent, rate, eta, hold_ms, lock_ms, max_wait_ms;
} mig_row;

typedef struct {
    PGconn *c;
    long long id;
    bool tty, manual, said_ready, drawn, aborting;
    char last_at[64];      /* phase_at timestamp of the last state entry shown */
    char last_state[32];   /* and its state */
    char last_phase[2048]; /* phase of the last full plain line */
    double t0, last_plain;
} run_ctx;

typedef struct {
    char state[32], at[64];
} state_entry;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
    fputs("Usage: pgcutover run [OPTION]... \"STATEMENT\"\n"
          "Submit one schema change (ALTER TABLE, CREATE INDEX, or any other DDL statement)\n"
          "to a running pgcutover's control console, which runs it the cheapest safe way\n"
          "(its strategy: instant, validate, concurrent, direct or copy), and follow it to\n"
          "the end.\n\n"
          "  -h, --host=HOST              console host (default: PGHOST or 127.0.0.1)\n"
          "  -p, --port=PORT              console port, control_port (default: 6433)\n"
          "  -d, --dbname=DB              database of the table (default: PGDATABASE or user)\n"
          "  -U, --username=USER          superuser or member of control_role (default: PGUSER\n"
          "                               or the OS user); password: PGPASSWORD or ~/.pgpass\n"
          "      --plan                   print the plan and start nothing\n"
          "      --manual-cutover         wait in ready for CUTOVER MIGRATION n (another console)\n"
          "      --max-rows-per-second=N  throttle the backfill (0 = unlimited)\n"
          "      --help                   show this help and exit\n\n"
          "On a terminal it draws a progress bar; otherwise it prints a line for every state\n"
          "the migration enters and one every 5 s while copying.\n"
          "Ctrl-C on a terminal asks whether to abort (yes: ABORT MIGRATION n; no: detach).\n"
          "Without a terminal, Ctrl-C and SIGTERM detach: the migration continues.\n\n"
          "Exit status: 0 done, 1 failed / refused / console connection lost, 2 bad usage,\n"
          "3 aborted, 4 detached.\n",
          f);
}

static int bad_usage(const char *what, const char *arg)
{
    fprintf(stderr, "pgcutover run: %s%s%s\nTry \"pgcutover run --help\".\n", what, arg ? ": " : "",
            arg ? arg : "");
    return 2;
}

/* Whether *p starts with keyword w (case-insensitive, then a blank or the end);
 * advances *p past it and the blanks before it. */
static bool keyword(const char **p, const char *w)
{
    while (isspace((unsigned char)**p))
        (*p)++;
    size_t n = strlen(w);
    if (strncasecmp(*p, w, n) != 0 || ((*p)[n] && !isspace((unsigned char)(*p)[n])))
        return false;
    *p += n;
    return true;
}

/* How many statements sql holds, by PostgreSQL's parser (libpg_query); -1 on a syntax
 * error, its message into err. */
static int statements(const char *sql, char *err, size_t errlen)
{
    PgQuerySplitResult sp = pg_query_split_with_parser(sql);
    int n = sp.error ? -1 : sp.n_stmts;
    if (sp.error)
        snprintf(err, errlen, "%s", sp.error->message);
    pg_query_free_split_result(sp);
    return n;
}

/* Parse argv into *o: -1 to go on, otherwise the exit code. */
static int parse_args(int argc, char **argv, run_opts *o)
{
    static const struct option longs[] = {{"host", required_argument, NULL, 'h'},
                                          {"port", required_argument, NULL, 'p'},
                                          {"dbname", required_argument, NULL, 'd'},
                                          {"username", required_argument, NULL, 'U'},
                                          {"plan", no_argument, NULL, 'P'},
                                          {"manual-cutover", no_argument, NULL, 'M'},
                                          {"max-rows-per-second", required_argument, NULL, 'R'},
                                          {"help", no_argument, NULL, 'H'},
                                          {NULL, 0, NULL, 0}};
    opterr = 0;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h:p:d:U:", longs, NULL)) != -1) {
        static const char with_arg[] = "hpdUR";
        const char **slot[] = {&o->host, &o->port, &o->db, &o->user, &o->rate};
        const char *at = ch > 0 ? strchr(with_arg, ch) : NULL;
        if (at) {
            *slot[at - with_arg] = optarg;
        } else if (ch == 'P' || ch == 'M') {
            *(ch == 'P' ? &o->plan : &o->manual) = true;
        } else if (ch == 'H') {
            usage(stdout);
            return 0;
        } else {
            return bad_usage(ch == ':' ? "missing argument for" : "unknown option",
                             argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return bad_usage(optind == argc ? "no statement given (one DDL statement, quoted)"
                                        : "one statement only (quote it)",
                         optind == argc ? NULL : argv[optind + 1]);
    o->stmt = argv[optind];
    char *end;
    if (o->port) {
        long v = strtol(o->port, &end, 10);
        if (*end || end == o->port || v < 1 || v > 65535)
            return bad_usage("bad port", o->port);
    }
    if (o->rate) {
        const conf_setting *s = conf_find("max_rows_per_second");
        long long v = strtoll(o->rate, &end, 10);
        if (*end || end == o->rate || (s && (v < s->min || v > s->max)))
            return bad_usage("--max-rows-per-second takes a whole number of rows (0 = unlimited)",
                             o->rate);
    }
    if (o->plan && (o->manual || o->rate))
        return bad_usage("--plan starts nothing: --manual-cutover and --max-rows-per-second do "
                         "not apply",
                         NULL);
    const char *p = o->stmt;
    if (keyword(&p, "PLAN"))
        return bad_usage("give the statement itself; --plan asks for the plan", NULL);
    char err[256];
    int n = statements(o->stmt, err, sizeof err);
    if (n < 0)
        return bad_usage("syntax error", err);
    if (n != 1)
        return bad_usage(n ? "one statement at a time" : "no statement given", NULL);
    return -1;
}

/* libpq takes NULL values as not given (environment, then its defaults). */
static PGconn *connect_console(const run_opts *o)
{
    const char *env = getenv("PGHOST");
    const char *host = o->host ? o->host : env && *env ? env : "127.0.0.1";
    const char *kw[] = {"host", "port", "dbname", "user", "application_name", NULL};
    const char *val[] = {host, o->port ? o->port : "6433", o->db, o->user, "pgcutover run", NULL};
    return PQconnectdbParams(kw, val, 0);
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Finish the progress line on a terminal before anything else is printed. */
static void end_line(run_ctx *x)
{
    if (x->tty && x->drawn) {
        fputs("\n", stdout);
        fflush(stdout);
        x->drawn = false;
    }
}

static void print_error(PGconn *c, const PGresult *r)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *hint = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_HINT) : NULL;
    if (msg) {
        fprintf(stderr, "pgcutover run: ERROR %s: %s\n", st ? st : "XX000", msg);
    } else {
        const char *e = PQerrorMessage(c);
        fprintf(stderr, "pgcutover run: %.*s\n", (int)strcspn(e, "\n"), e);
    }
    if (hint)
        fprintf(stderr, "HINT: %s\n", hint);
}

/* One console command; the result, or NULL with the error printed. */
static PGresult *command(run_ctx *x, const char *sql)
{
    PGresult *r = PQexec(x->c, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)
        return r;
    end_line(x);
    print_error(x->c, r);
    PQclear(r);
    return NULL;
}

static void watch_hint(run_ctx *x)
{
    fprintf(stderr, "Watch it with: psql -h %s -p %s -d %s -U %s -c 'SHOW MIGRATION %lld'\n",
            PQhost(x->c), PQport(x->c), PQdb(x->c), PQuser(x->c), x->id);
}

static int print_plan(run_ctx *x, const char *stmt)
{
    size_t len = strlen(stmt) + 8;
    char *sql = malloc(len);
    if (!sql)
        return 1;
    snprintf(sql, len, "PLAN %s", stmt);
    PGresult *r = command(x, sql);
    free(sql);
    if (!r)
        return 1;
    int fs = PQfnumber(r, "step"), fp = PQfnumber(r, "phase"), fd = PQfnumber(r, "description"),
        fq = PQfnumber(r, "sql");
    if (fs < 0 || fp < 0 || fd < 0 || fq < 0) {
        fprintf(stderr,
                "pgcutover run: the console's PLAN answer lacks step/phase/description/sql\n");
        PQclear(r);
        return 1;
    }
    printf("Plan for: %s\n\n", stmt);
    for (int i = 0; i < PQntuples(r); i++) {
        printf("%3s. %-9s %s\n", PQgetvalue(r, i, fs), PQgetvalue(r, i, fp), PQgetvalue(r, i, fd));
        for (const char *q = PQgetvalue(r, i, fq); !PQgetisnull(r, i, fq) && *q;) {
            size_t n = strcspn(q, "\n");
            printf("          %.*s\n", (int)n, q);
            q += n + (q[n] == '\n');
        }
    }
    printf("\n(plan only: nothing was started)\n");
    PQclear(r);
    return 0;
}

static const char *field(const PGresult *r, const char *name)
{
    int i = PQfnumber(r, name);
    return i < 0 || PQgetisnull(r, 0, i) ? NULL : PQgetvalue(r, 0, i);
}

static void text_field(const PGresult *r, const char *name, char *out, size_t len)
{
    const char *v = field(r, name);
    snprintf(out, len, "%s", v ? v : "");
}

static double num_field(const PGresult *r, const char *name)
{
    const char *v = field(r, name);
    return v ? atof(v) : -1;
}

static void read_row(const PGresult *r, mig_row *m)
{
    text_field(r, "state", m->state, sizeof m->state);
    text_field(r, "strategy", m->strategy, sizeof m->strategy);
    text_field(r, "table", m->table, sizeof m->table);
    text_field(r, "phase", m->phase, sizeof m->phase);
    text_field(r, "error", m->error, sizeof m->error);
    text_field(r, "throttle", m->throttle, sizeof m->throttle);
    text_field(r, "old_table", m->old_table, sizeof m->old_table);
    text_field(r, "phase_at", m->phase_at, sizeof m->phase_at);
    m->copied = (long long)num_field(r, "rows_copied");
    m->estimated = (long long)num_field(r, "rows_estimated");
    m->percent = num_field(r, "percent");
    m->rate = num_field(r, "rows_per_second");
    m->eta = num_field(r, "eta_seconds");
    m->hold_ms = num_field(r, "cutover_hold_ms");
    m->lock_ms = num_field(r, "cutover_lock_ms");
    m->max_wait_ms = num_field(r, "cutover_max_wait_ms");
}

static int by_time(const void *a, const void *b)
{
    return strcmp(((const state_entry *)a)->at, ((const state_entry *)b)->at);
}

/* The states of phase_at ({"state": "timestamp", ...}, the last entry into each) in the
 * order they were entered. Timestamps from one server compare as text. */
static int entered_states(const char *json, state_entry *e, int max)
{
    int n = 0;
    const char *p = json;
    while (n < max && (p = strchr(p, '"')) != NULL) {
        const char *k = p + 1, *ke = strchr(k, '"');
        const char *v = ke ? strchr(ke + 1, '"') : NULL;
        const char *ve = v ? strchr(v + 1, '"') : NULL;
        if (!ve)
            break;
        snprintf(e[n].state, sizeof e[n].state, "%.*s", (int)(ke - k), k);
        snprintf(e[n].at, sizeof e[n].at, "%.*s", (int)(ve - v - 1), v + 1);
        n++;
        p = ve + 1;
    }
    qsort(e, (size_t)n, sizeof *e, by_time);
    return n;
}

/* v with thousands separators (pretty) or plain; "?" when negative (NULL). */
static const char *count(char *out, size_t len, double v, bool pretty)
{
    char d[32];
    if (v < 0) {
        snprintf(out, len, "?");
        return out;
    }
    int n = snprintf(d, sizeof d, "%.0f", v);
    size_t o = 0;
    for (int i = 0; i < n && o + 2 < len; i++) {
        if (pretty && i > 0 && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = d[i];
    }
    out[o] = 0;
    return out;
}

static void fmt_eta(char *out, size_t len, double s)
{
    if (s < 0)
        snprintf(out, len, "?");
    else if (s < 60)
        snprintf(out, len, "%.0fs", s);
    else if (s < 3600)
        snprintf(out, len, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(out, len, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

/* The figures after "m<id> <table> <state>": percent (plain lines only), rows, rate, ETA,
 * throttle while copying or paused, the phase otherwise. pretty: separators and double
 * spaces (terminal). */
static void figures(const mig_row *m, const char *state, char *out, size_t len, bool pretty)
{
    if (strcmp(state, "copying") != 0 && strcmp(state, "paused") != 0) {
        snprintf(out, len, "%s%s", m->phase[0] ? (pretty ? "  " : ": ") : "", m->phase);
        return;
    }
    char pct[32] = "", a[32], b[32], c[32], eta[32];
    const char *sp = pretty ? "  " : " ";
    if (!pretty)
        snprintf(pct, sizeof pct, " %.1f%%", m->percent < 0 ? 0 : m->percent);
    fmt_eta(eta, sizeof eta, m->eta);
    snprintf(out, len, "%s%s%s/%s rows%s%s rows/s%sETA %s%sthrottle: %s", pct, sp,
             count(a, sizeof a, (double)m->copied, pretty),
             count(b, sizeof b, (double)m->estimated, pretty), sp,
             count(c, sizeof c, m->rate < 0 ? 0 : m->rate, pretty), sp, eta, sp,
             m->throttle[0] ? m->throttle : "none");
}

/* Redraw the terminal line, within the terminal's width. */
static void draw(run_ctx *x, const mig_row *m)
{
    struct winsize ws;
    int width = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
    char head[400], tail[2200], bar[64] = "", line[3000];
    double pct = m->percent < 0 ? 0 : m->percent > 100 ? 100 : m->percent;
    snprintf(head, sizeof head, "m%lld%s%s %s", x->id, *m->table ? " " : "", m->table, m->state);
    figures(m, m->state, tail, sizeof tail, true);
    int room = width - 1 - (int)strlen(head) - (int)strlen(tail) - 10; /* " [" "] " pct */
    int w = room >= 20 ? 20 : room >= 10 ? 10 : 0; /* steady while the figures change */
    if (w >= 5) {
        int fill = (int)(pct / 100 * w + 0.5);
        for (int i = 0; i < w; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[w] = 0;
    }
    snprintf(line, sizeof line, "%s%s%s%s %5.1f%%%s", head, w >= 5 ? " [" : "", bar,
             w >= 5 ? "]" : "", pct, tail);
    if ((int)strlen(line) > width - 1)
        line[width > 1 ? width - 1 : 0] = 0;
    printf("\r%s\033[K", line);
    fflush(stdout);
    x->drawn = true;
}

static void plain_line(run_ctx *x, const mig_row *m, const char *state, bool full)
{
    char tail[2200] = "";
    if (full) {
        figures(m, state, tail, sizeof tail, false);
        x->last_plain = now_s();
        snprintf(x->last_phase, sizeof x->last_phase, "%s", m->phase);
    }
    printf("m%lld%s%s %s%s\n", x->id, *m->table ? " " : "", m->table, state, tail);
    fflush(stdout);
}

/* Show one SHOW MIGRATION row: redraw, or the plain lines it calls for. */
static void show(run_ctx *x, const mig_row *m)
{
    if (x->tty) {
        draw(x, m);
        return;
    }
    state_entry e[32];
    int n = entered_states(m->phase_at, e, 32);
    bool current = false;
    for (int i = 0; i < n; i++) {
        if (strcmp(e[i].at, x->last_at) <= 0)
            continue;
        bool now = i == n - 1 && strcmp(e[i].state, m->state) == 0;
        if (now || strcmp(e[i].state, x->last_state) != 0) /* not a re-entry missed */
            plain_line(x, m, e[i].state, now);
        current = current || now;
        snprintf(x->last_state, sizeof x->last_state, "%s", e[i].state);
        snprintf(x->last_at, sizeof x->last_at, "%s", e[i].at);
    }
    if (!current && (strcmp(m->phase, x->last_phase) != 0 ||
                     (!strcmp(m->state, "copying") && now_s() - x->last_plain >= PLAIN_EVERY_S)))
        plain_line(x, m, m->state, true);
}

/* A signal arrived: ask (SIGINT on a terminal) and abort, or detach. -1 to go on
 * watching (ABORT MIGRATION was sent), otherwise the exit code. */
static int interrupted(run_ctx *x)
{
    int sig = got_signal;
    got_signal = 0;
    end_line(x);
    if (sig == SIGINT && !x->aborting && isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
        fprintf(stderr, "\nAbort migration %lld? [y/N] ", x->id);
        char buf[64];
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        const char *p = buf + strspn(buf, " \t");
        if (n <= 0)
            fputc('\n', stderr);
        if (*p == 'y' || *p == 'Y') {
            char sql[64];
            snprintf(sql, sizeof sql, "ABORT MIGRATION %lld", x->id);
            fprintf(stderr, "pgcutover run: aborting migration %lld ...\n", x->id);
            PQclear(command(x, sql));
            x->aborting = true;
            got_signal = 0;
            return -1;
        }
    }
    fprintf(stderr, "pgcutover run: detached (%s); migration %lld continues in pgcutover.\n",
            sig == SIGTERM ? "SIGTERM" : "Ctrl-C", x->id);
    watch_hint(x);
    return 4;
}

static void summary(run_ctx *x, const mig_row *m)
{
    if (*m->strategy && strcmp(m->strategy, "copy") != 0) { /* no backfill, no swap */
        printf("done: m%lld%s%s in %.1f s (strategy %s)\n", x->id, *m->table ? " " : "", m->table,
               now_s() - x->t0, m->strategy);
        fflush(stdout);
        return;
    }
    char rows[32];
    printf("done: m%lld %s in %.1f s: %s rows copied; cutover hold %.1f ms, lock %.1f ms, "
           "longest client wait %.1f ms; old table %s%s\n",
           x->id, m->table, now_s() - x->t0, count(rows, sizeof rows, (double)m->copied, x->tty),
           m->hold_ms, m->lock_ms, m->max_wait_ms, m->old_table[0] ? m->old_table : "(none)",
           m->old_table[0] ? " (DROP MIGRATION drops it)" : "");
    fflush(stdout);
}

/* Poll SHOW MIGRATION until the migration ends or a signal detaches; the exit code. */
static int follow(run_ctx *x)
{
    char sql[64];
    snprintf(sql, sizeof sql, "SHOW MIGRATION %lld", x->id);
    double failed_since = -1;
    for (;;) {
        if (got_signal) {
            int rc = interrupted(x);
            if (rc >= 0)
                return rc;
        }
        PGresult *r = PQexec(x->c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
            end_line(x);
            if (PQstatus(x->c) != CONNECTION_OK)
                fprintf(stderr, "pgcutover run: lost the console connection: %s",
                        PQerrorMessage(x->c));
            else
                print_error(x->c, r);
            PQclear(r);
            watch_hint(x);
            return 1;
        }
        mig_row m;
        read_row(r, &m);
        PQclear(r);
        show(x, &m);
        if (!strcmp(m.state, "done")) {
            end_line(x);
            summary(x, &m);
            return 0;
        }
        if (!strcmp(m.state, "aborted")) {
            end_line(x);
            fprintf(stderr, "pgcutover run: m%lld %s aborted: %s\n", x->id, m.table,
                    m.error[0] ? m.error : m.phase);
            return 3;
        }
        if (!strcmp(m.state, "failed")) {
            failed_since = failed_since < 0 ? now_s() : failed_since;
            if (strcmp(m.phase, "cleaning up") != 0 || now_s() - failed_since > FAILED_CLEANUP_S) {
                end_line(x);
                fprintf(stderr, "pgcutover run: m%lld %s failed: %s (%s)\n", x->id, m.table,
                        m.error[0] ? m.error : "?", m.phase);
                return 1;
            }
        }
        if (!strcmp(m.state, "ready") && x->manual && !x->said_ready) {
            end_line(x);
            printf("m%lld %s is ready: waiting for CUTOVER MIGRATION %lld from another console "
                   "(psql -h %s -p %s -d %s -c 'CUTOVER MIGRATION %lld'); Ctrl-C to abort or "
                   "detach\n",
                   x->id, m.table, x->id, PQhost(x->c), PQport(x->c), PQdb(x->c), x->id);
            fflush(stdout);
            x->said_ready = true;
        }
        if (!got_signal)
            poll(NULL, 0, POLL_MS); /* a signal cuts it short (no SA_RESTART) */
    }
}

/* Send the statement and the settings; -1 to go on, otherwise the exit code. */
static int start(run_ctx *x, const run_opts *o)
{
    PGresult *r = command(x, o->stmt);
    if (!r)
        return 1;
    const char *id = PQntuples(r) == 1 ? field(r, "id") : NULL;
    x->id = id ? atoll(id) : 0;
    PQclear(r);
    if (x->id <= 0) {
        fprintf(stderr, "pgcutover run: the console answered no migration id\n");
        return 1;
    }
    char sql[128];
    if (o->manual) {
        snprintf(sql, sizeof sql, "SET MIGRATION %lld cutover = manual", x->id);
        PQclear(command(x, sql));
    }
    if (o->rate) {
        snprintf(sql, sizeof sql, "SET MIGRATION %lld max_rows_per_second = %s", x->id, o->rate);
        PQclear(command(x, sql));
    }
    return -1;
}

int cli_run_main(int argc, char **argv)
{
    run_opts o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    run_ctx x = {0};
    x.tty = isatty(STDOUT_FILENO);
    x.manual = o.manual;
    x.t0 = now_s();
    x.last_plain = x.t0;
    x.c = connect_console(&o);
    if (PQstatus(x.c) != CONNECTION_OK) {
        fprintf(stderr, "pgcutover run: cannot connect to the console: %s", PQerrorMessage(x.c));
        PQfinish(x.c);
        return 1;
    }
    PQsetNoticeProcessor(x.c, quiet_notice, NULL);
    if (o.plan) {
        rc = print_plan(&x, o.stmt);
    } else {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        rc = start(&x, &o);
        if (rc < 0)
            rc = follow(&x);
    }
    PQfinish(x.c);
    return rc;
}
