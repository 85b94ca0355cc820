/*
 * h_engine.c — helpers shared by the engine integration tests; see h_engine.h.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"

#define H_POLL_US 100000 /* 100 ms between SHOW MIGRATION polls */

void (*h_eng_fail_hook)(void);
static const h_eng *cur_eng; /* the context of the last h_eng_setup_db */

void h_quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

void h_dump_log(const h_proxy *p, int lines)
{
    if (p->log[0]) {
        fprintf(stderr, "---- last lines of %s ----\n", p->log);
        fflush(stderr);
        h_shell("tail -n %d %s >&2", lines, p->log);
    }
}

void h_eng_fail(const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (h_eng_fail_hook) {
        h_eng_fail_hook();
    } else if (cur_eng) {
        h_dump_log(&cur_eng->px, 60);
        h_dump_log(&cur_eng->px2, 60);
    }
    fail_msg("%s", msg);
    abort(); /* not reached: fail_msg does not return */
}

/* ---------- the context ---------- */

int h_eng_setup_db(h_eng *e, const char *db)
{
    memset(e, 0, sizeof *e);
    snprintf(e->db, sizeof e->db, "%s", db);
    e->started_ms = h_now_ms();
    cur_eng = e;
    h_recreate_db(db);
    return 0;
}

static void close_conns(h_eng *e)
{
    for (int i = 0; i < e->nconns; i++)
        PQfinish(e->conns[i]);
    e->nconns = 0;
}

void h_eng_teardown(h_eng *e)
{
    close_conns(e);
    if (e->px.pid > 0)
        h_proxy_stop(&e->px);
    if (e->px2.pid > 0)
        h_proxy_stop(&e->px2);
    if (e->db[0]) {
        h_drop_db(e->db);
        fprintf(stderr, "(%s: %.1f s)\n", e->db, (h_now_ms() - e->started_ms) / 1000);
    }
    memset(e, 0, sizeof *e);
}

PGconn *h_eng_keep(h_eng *e, PGconn *c)
{
    if (e->nconns < H_ENG_MAX_CONNS)
        e->conns[e->nconns++] = c;
    return c;
}

void h_eng_drop_conn(h_eng *e, PGconn *c)
{
    for (int i = 0; i < e->nconns; i++)
        if (e->conns[i] == c) {
            e->conns[i] = e->conns[--e->nconns];
            break;
        }
    PQfinish(c);
}

void h_eng_stop_proxy(h_eng *e, h_proxy *p)
{
    close_conns(e);
    int st = h_proxy_stop(p);
    if (st != 0)
        h_eng_fail("pgcutover exited with status 0x%x on SIGTERM", st);
}

/* ---------- connections ---------- */

PGconn *h_direct_connect(const char *db)
{
    char ci[512];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable", h_pg_port(),
             h_pg_user(), db);
    PGconn *c = h_connect(ci);
    PQsetNoticeProcessor(c, h_quiet_notice, NULL);
    return c;
}

PGconn *h_console_connect(int control_port, const char *db)
{
    char ci[512];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable",
             control_port, h_pg_user(), db);
    PGconn *c = NULL;
    char err[512] = "";
    for (int i = 0; i < 100; i++) {
        c = PQconnectdb(ci);
        if (PQstatus(c) == CONNECTION_OK)
            break;
        snprintf(err, sizeof err, "%s", PQerrorMessage(c));
        PQfinish(c);
        c = NULL;
        usleep(50000);
    }
    if (!c)
        h_eng_fail("console %s: %s", ci, err);
    PQsetNoticeProcessor(c, h_quiet_notice, NULL);
    return c;
}

h_eng h_eng_case;

int h_eng_case_setup(void **state)
{
    return h_eng_setup_db(&h_eng_case, (const char *)*state);
}

int h_eng_case_teardown(void **state)
{
    (void)state;
    h_eng_teardown(&h_eng_case);
    return 0;
}

void h_eng_stop_group_proxy(h_proxy *p)
{
    int st = h_proxy_stop(p);
    if (st != 0) {
        h_shell("tail -n 50 %s >&2", p->log);
        fail_msg("pgcutover exit status %d on SIGTERM", st);
    }
}

PGconn *h_eng_direct(h_eng *e)
{
    return h_eng_keep(e, h_direct_connect(e->db));
}

PGconn *h_eng_console(h_eng *e, const h_proxy *p)
{
    return h_eng_keep(e, h_console_connect(p->control_port, e->db));
}

/* ---------- SQL ---------- */

long long h_qint(PGconn *c, const char *fmt, ...)
{
    char sql[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return h_query_int(c, sql);
}

const char *h_qtext(PGconn *c, char *out, size_t len, const char *fmt, ...)
{
    char sql[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGresult *r = h_exec(c, sql);
    snprintf(out, len, "%s",
             PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0)
                                                                           : "");
    PQclear(r);
    return out;
}

void h_execf(PGconn *c, const char *fmt, ...)
{
    char sql[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    h_exec_ok(c, sql);
}

/* ---------- the console ---------- */

PGresult *h_ctl_ok(PGconn *ctl, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    PGresult *r = PQexec(ctl, cmd);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        char err[1024];
        snprintf(err, sizeof err, "%s", PQerrorMessage(ctl));
        PQclear(r);
        h_eng_fail("console '%s': %s", cmd, err);
    }
    return r;
}

void h_ctl_err(PGconn *ctl, const char *cmd, char sqlstate[6], char *msg, size_t msglen)
{
    PGresult *r = PQexec(ctl, cmd);
    if (PQresultStatus(r) != PGRES_FATAL_ERROR) {
        ExecStatusType s = PQresultStatus(r);
        PQclear(r);
        h_eng_fail("console '%s': expected an error, got %s", cmd, PQresStatus(s));
    }
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(sqlstate, 6, "%s", st ? st : "");
    if (msg)
        snprintf(msg, msglen, "%s", m ? m : "");
    PQclear(r);
}

int h_col(const PGresult *r, const char *name)
{
    int i = PQfnumber(r, name);
    if (i < 0)
        h_eng_fail("result has no column \"%s\"", name);
    return i;
}

long long h_start_migration(PGconn *ctl, const char *sql)
{
    PGresult *r = h_ctl_ok(ctl, "%s", sql);
    int n = PQntuples(r);
    if (n != 1) {
        PQclear(r);
        h_eng_fail("'%s' returned %d rows, want 1", sql, n);
    }
    long long id = atoll(PQgetvalue(r, 0, h_col(r, "id")));
    char state[32];
    snprintf(state, sizeof state, "%s", PQgetvalue(r, 0, h_col(r, "state")));
    bool has_table = PQgetvalue(r, 0, h_col(r, "table"))[0] != 0;
    PQclear(r);
    if (id <= 0)
        h_eng_fail("'%s' returned id %lld", sql, id);
    if (!has_table || !state[0])
        h_eng_fail("'%s' returned an empty table or state", sql);
    if (h_mig_terminal(state))
        h_eng_fail("'%s' returned state %s", sql, state);
    return id;
}

/* ---------- SHOW MIGRATION ---------- */

static void text_col(const PGresult *r, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s", PQgetvalue(r, 0, h_col(r, name)));
}

static double num_col(const PGresult *r, const char *name)
{
    int c = h_col(r, name);
    return PQgetisnull(r, 0, c) ? NAN : atof(PQgetvalue(r, 0, c));
}

void h_plan_strategy(PGconn *ctl, const char *sql, char *out, size_t len)
{
    PGresult *r = h_ctl_ok(ctl, "PLAN %s", sql);
    out[0] = 0;
    for (int i = 0; i < PQntuples(r); i++)
        if (strcmp(PQgetvalue(r, i, h_col(r, "phase")), "strategy") == 0)
            snprintf(out, len, "%.*s", (int)strcspn(PQgetvalue(r, i, h_col(r, "description")), ":"),
                     PQgetvalue(r, i, h_col(r, "description")));
    PQclear(r);
}

void h_mig_show(PGconn *ctl, long long id, h_mig *m)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "SHOW MIGRATION %lld", id);
    PGresult *r = PQexec(ctl, cmd);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        char err[1024];
        snprintf(err, sizeof err, "%s", PQerrorMessage(ctl));
        PQclear(r);
        h_eng_fail("%s: %s", cmd, err);
    }
    text_col(r, "state", m->state, sizeof m->state);
    text_col(r, "phase", m->phase, sizeof m->phase);
    m->rows_copied = atoll(PQgetvalue(r, 0, h_col(r, "rows_copied")));
    m->rows_estimated = atoll(PQgetvalue(r, 0, h_col(r, "rows_estimated")));
    text_col(r, "throttle", m->throttle, sizeof m->throttle);
    text_col(r, "shadow_table", m->shadow, sizeof m->shadow);
    text_col(r, "old_table", m->old_table, sizeof m->old_table);
    text_col(r, "error", m->error, sizeof m->error);
    text_col(r, "checkpoint", m->checkpoint, sizeof m->checkpoint);
    text_col(r, "settings", m->settings, sizeof m->settings);
    text_col(r, "phase_at", m->phase_at, sizeof m->phase_at);
    int ca = h_col(r, "cutover_attempts");
    m->attempts = PQgetisnull(r, 0, ca) ? -1 : atoll(PQgetvalue(r, 0, ca));
    m->hold_ms = num_col(r, "cutover_hold_ms");
    m->lock_ms = num_col(r, "cutover_lock_ms");
    m->max_wait_ms = num_col(r, "cutover_max_wait_ms");
    PQclear(r);
}

bool h_mig_terminal(const char *state)
{
    return strcmp(state, "failed") == 0 || strcmp(state, "aborted") == 0;
}

void h_mig_wait(PGconn *ctl, long long id, const char *want, long long min_rows, int timeout_ms,
                h_mig *m)
{
    for (int i = 0; i < timeout_ms / 100; i++) {
        h_mig_show(ctl, id, m);
        if (min_rows >= 0 && m->rows_copied < min_rows)
            h_eng_fail("migration %lld: rows_copied %lld went below %lld (state %s)", id,
                       m->rows_copied, min_rows, m->state);
        if (strcmp(m->state, want) == 0)
            return;
        if (h_mig_terminal(m->state))
            h_eng_fail("migration %lld is %s while waiting for %s: %s", id, m->state, want,
                       m->error);
        if (strcmp(want, "done") == 0 && strcmp(m->state, "ready") == 0 &&
            strstr(m->phase, "cutover failed") != NULL)
            h_eng_fail("migration %lld is back in ready while waiting for done: %s", id, m->phase);
        usleep(H_POLL_US);
    }
    h_eng_fail("migration %lld did not reach %s within %d s (state %s, phase %s, rows_copied "
               "%lld of %lld, throttle %s: %s)",
               id, want, timeout_ms / 1000, m->state, m->phase, m->rows_copied, m->rows_estimated,
               m->throttle, m->error);
}

/* ---------- a pgbench load ---------- */

void h_pgbench_init(const char *db, int scale)
{
    int rc = h_shell("PGSSLMODE=disable %s -i -s %d -q -h 127.0.0.1 -p %d -U %s %s "
                     ">%s/pgbi.%s.out 2>&1",
                     h_pgbench_bin(), scale, h_pg_port(), h_pg_user(), db, h_tmpdir(), db);
    if (rc != 0) {
        h_shell("cat %s/pgbi.%s.out >&2", h_tmpdir(), db);
        fail_msg("pgbench -i -s %d exited %d", scale, rc);
    }
    h_shell("rm -f %s/pgbi.%s.out", h_tmpdir(), db);
}

void h_pgbench_start(h_pgbench *b)
{
    b->runs++;
    snprintf(b->out, sizeof b->out, "%s/pgbench-%s-%d.out", b->dir, b->db, b->runs);
    snprintf(b->err, sizeof b->err, "%s/pgbench-%s-%d.err", b->dir, b->db, b->runs);
    char port[16], clients[16], jobs[16], secs[16], prog[16], db[200];
    snprintf(port, sizeof port, "%d", b->port);
    snprintf(clients, sizeof clients, "%d", b->clients);
    snprintf(jobs, sizeof jobs, "%d", b->jobs);
    snprintf(secs, sizeof secs, "%d", b->seconds);
    snprintf(prog, sizeof prog, "%d", b->progress);
    snprintf(db, sizeof db, "dbname=%s sslmode=disable", b->db);
    /* h_spawn execs a path: a bare "pgbench" is looked up in PATH by env(1) */
    const char *bin = h_pgbench_bin();
    bool path = strchr(bin, '/') != NULL;
    const char *argv[32] = {path ? bin : "/usr/bin/env"};
    int a = 1;
    if (!path)
        argv[a++] = bin;
    /* -n: no vacuum (it would truncate pgbench_history, which tests read) */
    const char *rest[] = {"-h", "127.0.0.1", "-p", port, "-U", h_pg_user(), "-n", "-c", clients,
                          "-j", jobs, "-T", secs, "-M", b->mode, db, NULL};
    if (b->progress > 0) {
        argv[a++] = "-P";
        argv[a++] = prog;
    }
    for (int i = 0; rest[i]; i++)
        argv[a++] = rest[i];
    argv[a] = NULL;
    fflush(NULL);
    b->started_ms = h_now_ms();
    b->pid = h_spawn(argv, b->out, b->err);
}

void h_pgbench_check(h_pgbench *b, int st)
{
    char out[65536];
    snprintf(out, sizeof out, "%s", h_slurp(b->out));
    const char *err = h_slurp(b->err);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        h_eng_fail("pgbench -M %s run %d exited with status 0x%x:\n%s%s", b->mode, b->runs, st,
                   out, err);
    if (strstr(out, "number of failed transactions: 0 ") == NULL)
        h_eng_fail("pgbench -M %s run %d reports failed transactions:\n%s%s", b->mode, b->runs,
                   out, err);
    if (strstr(out, "aborted") || strstr(err, "aborted") || strstr(out, "ERROR") ||
        strstr(err, "ERROR"))
        h_eng_fail("pgbench -M %s run %d: a client saw an error or aborted:\n%s%s", b->mode,
                   b->runs, out, err);
    static const char processed[] = "number of transactions actually processed: ";
    const char *p = strstr(out, processed);
    long long n = p ? atoll(p + strlen(processed)) : -1;
    long long want = b->min_processed > 1 ? b->min_processed : 1;
    if (n < want)
        h_eng_fail("pgbench -M %s run %d processed %lld transactions (want >= %lld):\n%s%s",
                   b->mode, b->runs, n, want, out, err);
    const char *t = strstr(out, "tps = ");
    double tps = t ? atof(t + strlen("tps = ")) : 0;
    if (b->checked == 0 || tps < b->tps_min)
        b->tps_min = tps;
    if (b->checked == 0 || tps > b->tps_max)
        b->tps_max = tps;
    b->tps_sum += tps;
    b->processed += n;
    b->checked++;
}

bool h_pgbench_running(h_pgbench *b)
{
    int st;
    if (b->pid > 0 && waitpid(b->pid, &st, WNOHANG) == b->pid) {
        b->pid = 0;
        h_pgbench_check(b, st);
    }
    return b->pid > 0;
}

void h_pgbench_tick(h_pgbench *b)
{
    if (b->pid > 0 && !h_pgbench_running(b))
        h_pgbench_start(b);
}

/* Wait (up to bound_ms) for the current run to end and reap it, unchecked. Returns
 * whether there was one; *st gets its wait status. */
static bool pgbench_wait(h_pgbench *b, int bound_ms, int *st)
{
    double t0 = h_now_ms();
    while (b->pid > 0 && waitpid(b->pid, st, WNOHANG) != b->pid) {
        if (h_now_ms() - t0 > bound_ms)
            h_eng_fail("pgbench run %d (-T %d) still running after %d s", b->runs, b->seconds,
                       bound_ms / 1000);
        usleep(20000);
    }
    bool had = b->pid > 0;
    b->pid = 0;
    return had;
}

void h_pgbench_finish(h_pgbench *b, int bound_ms)
{
    int st = 0;
    if (pgbench_wait(b, bound_ms, &st))
        h_pgbench_check(b, st);
}

/* Lines of s that contain both a and b. */
static int lines_with(const char *s, const char *a, const char *b)
{
    int n = 0;
    for (const char *l = s; *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), l);
        n += strstr(line, a) && strstr(line, b);
        l += len + (e != NULL);
    }
    return n;
}

void h_pgbench_finish_aborted(h_pgbench *b, int bound_ms, const char *why)
{
    int st = 0;
    if (!pgbench_wait(b, bound_ms, &st))
        h_eng_fail("pgbench run %d: no run going to end aborted", b->runs);
    char out[65536];
    snprintf(out, sizeof out, "%s", h_slurp(b->out));
    const char *err = h_slurp(b->err);
    int aborted = lines_with(out, "aborted", why) + lines_with(err, "aborted", why);
    if (!WIFEXITED(st) || WEXITSTATUS(st) == 0 || aborted != b->clients)
        h_eng_fail("pgbench -M %s run %d exited 0x%x with %d clients aborted on \"%s\" (want a "
                   "failure and %d):\n%s%s",
                   b->mode, b->runs, st, aborted, why, b->clients, out, err);
}

void h_pgbench_stop(h_pgbench *b)
{
    h_stop_pid(&b->pid, 5000);
}

void h_pgbench_dump(const h_pgbench *b)
{
    if (b->out[0]) {
        fprintf(stderr, "---- pgbench run %d (%s, %s) ----\n", b->runs, b->out, b->err);
        fflush(stderr);
        h_shell("tail -n 30 '%s' '%s' >&2", b->out, b->err);
    }
}

/* Rows of pgbench table tab (key column key, balance column bal) whose balance is not the
 * sum of their history's delta, either way (a history row of a key not in the table
 * counts too): the count, and when ex is not NULL up to 5 of them into ex. */
static long long books_bad(PGconn *d, const char *tab, const char *key, const char *bal,
                           char *ex, size_t exlen)
{
    char from[512];
    snprintf(from, sizeof from,
             "FROM %s x FULL JOIN (SELECT %s, sum(delta) s FROM pgbench_history GROUP BY %s) h "
             "USING (%s) WHERE x.%s IS DISTINCT FROM coalesce(h.s, 0)",
             tab, key, key, key, bal);
    long long n = h_qint(d, "SELECT count(*) %s", from);
    if (n && ex)
        h_qtext(d, ex, exlen,
                "SELECT string_agg(format('%s %%s: %s %%s, history %%s', k, b, s), '; ') FROM "
                "(SELECT %s k, x.%s b, coalesce(h.s, 0) s %s LIMIT 5) y",
                key, bal, key, bal, from);
    return n;
}

long long h_pgbench_books(PGconn *d, const char *when, long long accounts, long long history,
                          bool per_row)
{
    PGresult *r = h_exec(d, "SELECT (SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts), "
                            "(SELECT coalesce(sum(delta), 0) FROM pgbench_history), "
                            "(SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers), "
                            "(SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches), "
                            "(SELECT count(*) FROM pgbench_history), "
                            "(SELECT count(*) FROM pgbench_accounts)");
    long long a = atoll(PQgetvalue(r, 0, 0)), h = atoll(PQgetvalue(r, 0, 1));
    long long t = atoll(PQgetvalue(r, 0, 2)), b = atoll(PQgetvalue(r, 0, 3));
    long long nh = atoll(PQgetvalue(r, 0, 4)), na = atoll(PQgetvalue(r, 0, 5));
    PQclear(r);
    if (a != h || t != h || b != h)
        h_eng_fail("books %s: sum(abalance) %lld, sum(delta) %lld, sum(tbalance) %lld, "
                   "sum(bbalance) %lld",
                   when, a, h, t, b);
    if (accounts >= 0 && na != accounts)
        h_eng_fail("books %s: pgbench_accounts has %lld rows, not %lld", when, na, accounts);
    if (history >= 0 && nh != history)
        h_eng_fail("books %s: %lld history rows, pgbench reported %lld transactions", when, nh,
                   history);
    if (per_row) {
        char ex[1024] = "";
        long long ba = books_bad(d, "pgbench_accounts", "aid", "abalance", ex, sizeof ex);
        long long bt = books_bad(d, "pgbench_tellers", "tid", "tbalance", NULL, 0);
        long long bb = books_bad(d, "pgbench_branches", "bid", "bbalance", NULL, 0);
        if (ba || bt || bb)
            h_eng_fail("books %s: balances that are not the sum of their history's delta: %lld "
                       "accounts (e.g. %s), %lld tellers, %lld branches",
                       when, ba, ex, bt, bb);
    }
    fprintf(stderr, "  books balance %s: total %lld, %lld history rows%s\n", when, h, nh,
            per_row ? ", every account, teller and branch" : "");
    return h;
}
