/*
 * cli_migrate.c — see cli_migrate.h. One console connection carries the MIGRATE command
 * (sent asynchronously); a second one reads MIGRATE STATUS every second for the progress
 * display. The engine owns all state: this client only reads files and prints.
 */
#include "cli_migrate.h"

#include <getopt.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_migrate_dir.h"

#define LOCK_RETRY_S 2
#define PROGRESS_MS 1000

typedef struct {
    const char *host, *port, *db, *user, *verb, *dir, *to, *history;
    long steps, wait_s;
    bool strict, revert, accept_loss;
    const char *accept[64];
    int naccept;
} mig_opts;

/* A growing string; oom sticks. */
typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *g = realloc(b->s, cap);
        if (g == NULL) {
            b->oom = true;
            return;
        }
        b->s = g;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void puts_(sbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* A SQL string literal ('' for a quote). */
static void literal(sbuf *b, const char *s)
{
    puts_(b, " '");
    for (const char *q = s; *q; q++) {
        put(b, q, 1);
        if (*q == '\'')
            put(b, q, 1);
    }
    puts_(b, "'");
}

/* A dollar-quoted string whose tag the text does not contain. */
static void dollar(sbuf *b, const char *text)
{
    char tag[32] = "$pgc$";
    for (int i = 1; strstr(text, tag) != NULL; i++)
        snprintf(tag, sizeof tag, "$pgc%d$", i);
    puts_(b, " ");
    puts_(b, tag);
    puts_(b, text);
    puts_(b, tag);
}

static int usage(FILE *out)
{
    fprintf(out,
            "Usage: pgcutover migrate up|down|status|plan|adopt [OPTION]... DIR\n"
            "Apply a migration directory (golang-migrate, Flyway or Prisma layout) online,\n"
            "through a running pgcutover's control console. adopt records the versions\n"
            "golang-migrate, Flyway or Prisma already applied, without running them.\n\n"
            "  -h, --host HOST          console host (PGHOST, else 127.0.0.1)\n"
            "  -p, --port PORT          console port (default 6433)\n"
            "  -d, --dbname DB          database (PGDATABASE)\n"
            "  -U, --username USER      user (PGUSER)\n"
            "      --to VERSION         up: stop after VERSION; down: revert down to, not including, it\n"
            "      --steps N            at most N versions (down: default 1)\n"
            "      --accept-drift VERSION  record VERSION's changed file as applied (repeatable)\n"
            "      --strict             plan: exit 3 on any warning\n"
            "      --revert             down: REVERT MIGRATION each step instead of the down file\n"
            "      --accept-data-loss   down --revert: a revert may drop columns the version added\n"
            "      --wait SECONDS       wait this long for another migrate to finish (default 600)\n"
            "      --history-table NAME status, adopt: the other tool's history table is NAME\n"
            "                           (golang-migrate's x-migrations-table, Flyway's flyway.table)\n\n"
            "Exit status: 0 done, 1 a version failed / plan refuses a step, 2 bad usage or\n"
            "directory, 3 refused by the database's state (drift, order, no down file; adopt:\n"
            "no such history, a failed or missing version) or\n"
            "plan --strict warnings, 4 another migrate kept the lock, 5 console unreachable.\n");
    return out == stdout ? 0 : 2;
}

static int parse(int argc, char **argv, mig_opts *o)
{
    static const struct option longs[] = {{"host", required_argument, NULL, 'h'},
                                          {"port", required_argument, NULL, 'p'},
                                          {"dbname", required_argument, NULL, 'd'},
                                          {"username", required_argument, NULL, 'U'},
                                          {"to", required_argument, NULL, 't'},
                                          {"steps", required_argument, NULL, 's'},
                                          {"accept-drift", required_argument, NULL, 'a'},
                                          {"strict", no_argument, NULL, 'S'},
                                          {"wait", required_argument, NULL, 'w'},
                                          {"revert", no_argument, NULL, 'R'},
                                          {"accept-data-loss", no_argument, NULL, 'L'},
                                          {"history-table", required_argument, NULL, 'H'},
                                          {"help", no_argument, NULL, '?'},
                                          {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->wait_s = 600;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h:p:d:U:", longs, NULL)) != -1) {
        char *end;
        switch (ch) {
        case 'h': o->host = optarg; break;
        case 'p': o->port = optarg; break;
        case 'd': o->db = optarg; break;
        case 'U': o->user = optarg; break;
        case 't': o->to = optarg; break;
        case 'S': o->strict = true; break;
        case 'R': o->revert = true; break;
        case 'L': o->accept_loss = true; break;
        case 'H': o->history = optarg; break;
        case 's':
        case 'w': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < (ch == 's' ? 1 : 0)) {
                fprintf(stderr, "pgcutover migrate: --%s wants a number, not \"%s\"\n",
                        ch == 's' ? "steps" : "wait", optarg);
                return 2;
            }
            *(ch == 's' ? &o->steps : &o->wait_s) = v;
            break;
        }
        case 'a':
            if (o->naccept == 64) {
                fprintf(stderr, "pgcutover migrate: at most 64 --accept-drift\n");
                return 2;
            }
            o->accept[o->naccept++] = optarg;
            break;
        case '?':
            if (optopt == 0 && strcmp(argv[optind - 1], "--help") == 0)
                return usage(stdout) - 1; /* -1: printed help */
            fprintf(stderr, "pgcutover migrate: unknown option %s\n", argv[optind - 1]);
            return usage(stderr);
        default:
            fprintf(stderr, "pgcutover migrate: missing argument for %s\n", argv[optind - 1]);
            return usage(stderr);
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "pgcutover migrate: want a verb (up, down, status, plan, adopt) and a directory\n");
        return usage(stderr);
    }
    o->verb = argv[optind];
    o->dir = argv[optind + 1];
    static const char *const verbs[] = {"up", "down", "status", "plan", "adopt"};
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcmp(o->verb, verbs[i]) == 0)
            return 0;
    fprintf(stderr, "pgcutover migrate: unknown verb \"%s\" (up, down, status, plan, adopt)\n", o->verb);
    return 2;
}

/* The MIGRATE command for o over the directory d (NULL on out of memory or a file that
 * cannot be read, said on stderr). */
static char *build(const mig_opts *o, const cli_md_dir *d)
{
    sbuf b = {0};
    puts_(&b, "MIGRATE ");
    for (const char *v = o->verb; *v; v++)
        put(&b, (char[]){(char)(*v - 32)}, 1);
    puts_(&b, " LAYOUT");
    literal(&b, cli_md_layout_name(d->layout));
    if (o->to) { /* as the directory writes it: "01" finds golang-migrate's 1 */
        int i = cli_md_find(d, o->to);
        if (i < 0) {
            fprintf(stderr, "pgcutover migrate: --to %s: no such version in %s\n", o->to, o->dir);
            free(b.s);
            return NULL;
        }
        puts_(&b, " TO");
        literal(&b, d->v[i].version);
    }
    if (o->steps > 0) {
        char n[32];
        snprintf(n, sizeof n, " STEPS %ld", o->steps);
        puts_(&b, n);
    }
    for (int i = 0; i < o->naccept; i++) {
        puts_(&b, " ACCEPT");
        literal(&b, o->accept[i]);
    }
    if (o->revert)
        puts_(&b, " REVERT");
    if (o->accept_loss)
        puts_(&b, " ACCEPT DATA LOSS");
    if (o->history) {
        puts_(&b, " HISTORY");
        literal(&b, o->history);
    }
    bool down = strcmp(o->verb, "down") == 0;
    for (int i = 0; i < d->n; i++) {
        const cli_md_version *v = &d->v[i];
        for (int k = 0; k < (down && v->down_path ? 2 : 1); k++) {
            char *text, err[600];
            size_t len;
            if (!cli_md_read_file(k ? v->down_path : v->up_path, &text, &len, err, sizeof err)) {
                fprintf(stderr, "pgcutover migrate: %s\n", err);
                free(b.s);
                return NULL;
            }
            if (strlen(text) != len) {
                fprintf(stderr, "pgcutover migrate: %s: a NUL byte in the file\n",
                        k ? v->down_path : v->up_path);
                free(text);
                free(b.s);
                return NULL;
            }
            puts_(&b, k ? "\nFILE DOWN" : v->repeatable ? "\nFILE REPEATABLE" : "\nFILE UP");
            literal(&b, v->version);
            literal(&b, v->name);
            dollar(&b, text);
            free(text);
        }
    }
    if (b.oom) {
        fprintf(stderr, "pgcutover migrate: out of memory\n");
        free(b.s);
        return NULL;
    }
    return b.s;
}

static PGconn *connect_console(const mig_opts *o)
{
    const char *env = getenv("PGHOST");
    const char *host = o->host ? o->host : env && *env ? env : "127.0.0.1";
    const char *kw[] = {"host", "port", "dbname", "user", "application_name", NULL};
    const char *val[] = {host, o->port ? o->port : "6433", o->db, o->user, "pgcutover migrate", NULL};
    return PQconnectdbParams(kw, val, 0);
}

/* Rows of r as an aligned table (columns at most 60 wide; a longer value, which only a
 * last column may hold, is printed whole), then "(n rows)". */
static void print_table(const PGresult *r)
{
    int nf = PQnfields(r), nt = PQntuples(r);
    int w[32] = {0};
    for (int f = 0; f < nf && f < 32; f++) {
        w[f] = (int)strlen(PQfname(r, f));
        for (int t = 0; t < nt; t++) {
            int l = PQgetlength(r, t, f);
            if (l > w[f])
                w[f] = l > 60 ? 60 : l;
        }
    }
    for (int f = 0; f < nf && f < 32; f++)
        printf("%s%-*s", f ? "  " : "", w[f], PQfname(r, f));
    printf("\n");
    for (int t = 0; t < nt; t++) {
        for (int f = 0; f < nf && f < 32; f++) {
            const char *v = PQgetisnull(r, t, f) ? "" : PQgetvalue(r, t, f);
            printf("%s", f ? "  " : "");
            int k = 0;
            for (; v[k]; k++)
                putchar(v[k] == '\n' || v[k] == '\t' ? ' ' : v[k]);
            printf("%*s", k < w[f] ? w[f] - k : 0, "");
        }
        printf("\n");
    }
    printf("(%d row%s)\n", nt, nt == 1 ? "" : "s");
}

static int col(const PGresult *r, const char *name)
{
    return PQfnumber(r, name);
}

/* One progress look: the version being applied/reverted and its step. */
static void progress(PGconn *p, bool tty, char *last, size_t lastlen)
{
    PGresult *r = PQexec(p, "MIGRATE STATUS");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return;
    }
    for (int t = 0; t < PQntuples(r); t++) {
        const char *state = PQgetvalue(r, t, col(r, "state"));
        if (strcmp(state, "applying") != 0 && strcmp(state, "reverting") != 0)
            continue;
        char line[800];
        const char *cur = PQgetvalue(r, t, col(r, "current"));
        snprintf(line, sizeof line, "%s %s (%s): step %d of %s%s%s%s%s", state,
                 PQgetvalue(r, t, col(r, "version")), PQgetvalue(r, t, col(r, "name")),
                 atoi(PQgetvalue(r, t, col(r, "steps_done"))) + 1, PQgetvalue(r, t, col(r, "steps_total")),
                 *cur ? ": " : "", cur, *PQgetvalue(r, t, col(r, "strategies")) ? "; done: " : "",
                 PQgetvalue(r, t, col(r, "strategies")));
        /* plain lines: a new step (version and step number), or every 5 s in a long one */
        char key[400];
        snprintf(key, sizeof key, "%s %s", PQgetvalue(r, t, col(r, "version")),
                 PQgetvalue(r, t, col(r, "steps_done")));
        static time_t printed;
        if (tty) {
            printf("\r\033[K%s", line);
            fflush(stdout);
        } else if (strcmp(key, last) != 0 || time(NULL) - printed >= 5) {
            printf("%s\n", line);
            fflush(stdout);
            printed = time(NULL);
        }
        snprintf(last, lastlen, "%s", key);
    }
    PQclear(r);
}

/* Send cmd on c and wait for its result, showing progress for up/down. */
static PGresult *run_command(const mig_opts *o, PGconn *c, const char *cmd, bool follow)
{
    if (!PQsendQuery(c, cmd))
        return NULL;
    PGconn *p = follow ? connect_console(o) : NULL;
    bool tty = isatty(STDOUT_FILENO);
    char last[600] = "";
    PGresult *res = NULL;
    for (;;) {
        struct pollfd pfd = {PQsocket(c), POLLIN, 0};
        poll(&pfd, 1, PROGRESS_MS);
        if (!PQconsumeInput(c))
            break;
        if (!PQisBusy(c)) {
            PGresult *r;
            while ((r = PQgetResult(c)) != NULL) {
                PQclear(res);
                res = r;
            }
            break;
        }
        if (p && PQstatus(p) == CONNECTION_OK)
            progress(p, tty, last, sizeof last);
    }
    if (tty && last[0])
        printf("\r\033[K");
    PQfinish(p);
    return res;
}

static int exit_for(const char *sqlstate)
{
    if (sqlstate == NULL)
        return 5;
    if (strcmp(sqlstate, "55000") == 0)
        return 3;
    if (strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0)
        return 5;
    return 1;
}

/* plan: 1 when a step is refused or cannot be planned, 3 with --strict and a warning. */
static int plan_verdict(const mig_opts *o, const PGresult *r)
{
    int rc = 0, ph = col(r, "phase");
    for (int t = 0; ph >= 0 && t < PQntuples(r); t++) {
        const char *v = PQgetvalue(r, t, ph);
        if (strcmp(v, "refused") == 0 || strcmp(v, "error") == 0)
            rc = 1;
        else if (o->strict && strcmp(v, "warning") == 0 && rc == 0)
            rc = 3;
    }
    return rc;
}

int cli_migrate_main(int argc, char **argv)
{
    mig_opts o;
    int rc = parse(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    cli_md_dir d;
    char err[1024];
    if (!cli_md_read(o.dir, &d, err, sizeof err)) {
        fprintf(stderr, "pgcutover migrate: %s\n", err);
        return 2;
    }
    char *cmd = build(&o, &d);
    if (cmd == NULL) {
        cli_md_free(&d);
        return 2;
    }
    fprintf(stderr, "pgcutover migrate %s: %s, %d version%s (%s layout)\n", o.verb, o.dir, d.n,
            d.n == 1 ? "" : "s", cli_md_layout_name(d.layout));
    cli_md_free(&d);
    PGconn *c = connect_console(&o);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pgcutover migrate: cannot connect to the console: %s", PQerrorMessage(c));
        PQfinish(c);
        free(cmd);
        return 5;
    }
    bool follow = strcmp(o.verb, "up") == 0 || strcmp(o.verb, "down") == 0;
    time_t until = time(NULL) + o.wait_s;
    bool said = false;
    PGresult *r;
    for (;;) {
        r = run_command(&o, c, cmd, follow);
        const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        if (st == NULL || strcmp(st, "55006") != 0 || time(NULL) >= until)
            break;
        if (!said)
            fprintf(stderr, "pgcutover migrate: %s; waiting up to %ld s\n",
                    PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), o.wait_s);
        said = true;
        PQclear(r);
        sleep(LOCK_RETRY_S);
    }
    free(cmd);
    ExecStatusType es = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (es == PGRES_TUPLES_OK) {
        print_table(r);
        rc = strcmp(o.verb, "plan") == 0 ? plan_verdict(&o, r) : 0;
    } else {
        const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        const char *hint = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_HINT) : NULL;
        if (st && msg)
            fprintf(stderr, "pgcutover migrate: ERROR %s: %s\n", st, msg);
        else
            fprintf(stderr, "pgcutover migrate: lost the console connection: %s", PQerrorMessage(c));
        if (hint)
            fprintf(stderr, "HINT: %s\n", hint);
        rc = st && strcmp(st, "55006") == 0 ? 4 : exit_for(st);
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}
