/*
 * test_proxy_prepared_pgbench.c — pgbench -M prepared (TPC-B-like, 8 clients, -j 2,
 * scale 1) through the proxy across a swap and an instant change (issue 14, "Done when",
 * first point). pgbench prepares every statement of its script on each connection and
 * executes them with Bind/Describe/Execute; its `SELECT abalance FROM pgbench_accounts
 * WHERE aid = $1` changes result type when abalance becomes bigint, which PostgreSQL
 * answers with 0A000 "cached plan must not change result type" unless the proxy
 * re-prepares it.
 *
 *   tracked    one pgcutover (instant_ddl = on): ALTER TABLE pgbench_accounts ALTER
 *              COLUMN abalance TYPE bigint (a copy; the engine swaps by itself, cutover =
 *              auto, set once ready so that the swap falls inside a pgbench run), then an
 *              instant ADD COLUMN note text inside a later run. Every run exits 0 with
 *              "number of failed transactions: 0" and no aborted client; each change is
 *              followed by at least CLIENTS re-prepared sessions and nothing is left to
 *              PostgreSQL (SHOW STATS prepared_sessions, prepared_left); the books
 *              balance and the history holds exactly the transactions pgbench reported.
 *   untracked  the same type change through a pgcutover with
 *              max_prepared_statements_bytes = 0 (tracking off): the run across the swap
 *              fails and every one of its CLIENTS clients aborts with 0A000 "cached plan
 *              must not change result type" — the failure the first case shows gone,
 *              so that case is known to be able to fail.
 *
 * pgbench runs back to back (RUN_SECONDS each); a change is made only between CUT_FROM_MS
 * and CUT_TO_MS into a run, and must be done while that run still goes (bounded waits
 * that look at state only). Each case has its own database and pgcutover; the teardown
 * stops pgbench and pgcutover if a failed case left them running.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"

#define SCALE 1
#define ROWS (SCALE * 100000LL)
#define CLIENTS 8
#define RUN_SECONDS 5       /* pgbench -T of each run */
#define CUT_FROM_MS 1000    /* a change is made this far into a run … */
#define CUT_TO_MS 2500      /* … and no later */
#define READY_MS 120000     /* bound on the copy reaching ready, and then done */
#define RUN_BOUND_MS 60000  /* bound on a run ending (it lasts RUN_SECONDS) */
#define POLL_US 50000
#define CACHED_PLAN "cached plan must not change result type"

static struct {
    h_eng e;
    pid_t pgb_pid; /* the pgbench run going on, 0 when reaped */
    int run;       /* number of the current run */
    double t_run;  /* h_now_ms() at its start */
    long long processed;
    char pgb_out[512];
} ctx;

/* h_eng_fail's hook: the tails of the pgcutover log and of pgbench's output. */
static void dump_logs(void)
{
    h_dump_log(&ctx.e.px, 40);
    if (ctx.pgb_out[0]) {
        fprintf(stderr, "---- pgbench output (%s) ----\n", ctx.pgb_out);
        fflush(stderr);
        h_shell("tail -n 40 %s >&2", ctx.pgb_out);
    }
}

/* Stop pgbench if it still runs (SIGTERM, then SIGKILL after 5 s) and reap it. */
static void kill_pgbench(void)
{
    h_stop_pid(&ctx.pgb_pid, 5000);
}

/* Start pgbench run ++ctx.run through the proxy in the background (output to a file). */
static void start_pgbench(void)
{
    ctx.run++;
    snprintf(ctx.pgb_out, sizeof ctx.pgb_out, "%s/pgbench-%d.out", ctx.e.px.sockdir, ctx.run);
    char port[16], clients[16], secs[16];
    snprintf(port, sizeof port, "%d", ctx.e.px.port);
    snprintf(clients, sizeof clients, "%d", CLIENTS);
    snprintf(secs, sizeof secs, "%d", RUN_SECONDS);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(ctx.pgb_out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        setenv("PGSSLMODE", "disable", 1);
        /* -n: no vacuum (it would truncate pgbench_history, which the checks read). */
        execlp(h_pgbench_bin(), "pgbench", "-h", "127.0.0.1", "-p", port, "-U", h_pg_user(), "-n",
               "-c", clients, "-j", "2", "-T", secs, "-M", "prepared", ctx.e.db, (char *)NULL);
        _exit(127);
    }
    ctx.pgb_pid = pid;
    ctx.t_run = h_now_ms();
}

/* Whether the current run has ended; then *st gets its wait status and it is reaped. */
static bool run_ended(int *st)
{
    if (ctx.pgb_pid > 0 && waitpid(ctx.pgb_pid, st, WNOHANG) == ctx.pgb_pid) {
        ctx.pgb_pid = 0;
        return true;
    }
    return ctx.pgb_pid <= 0;
}

/* The verdict of an ended run (wait status st): exit 0, "number of failed transactions:
 * 0", no client aborted or saw an ERROR; its transactions are added up. */
static void check_clean(int st)
{
    const char *out = h_slurp(ctx.pgb_out);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        h_eng_fail("pgbench run %d exited with status 0x%x:\n%s", ctx.run, st, out);
    if (strstr(out, "number of failed transactions: 0 ") == NULL)
        h_eng_fail("pgbench run %d reports failed transactions:\n%s", ctx.run, out);
    if (strstr(out, "aborted") != NULL || strstr(out, "ERROR") != NULL)
        h_eng_fail("pgbench run %d: a client saw an error or aborted:\n%s", ctx.run, out);
    const char *p = strstr(out, "number of transactions actually processed: ");
    long long n = p ? atoll(p + strlen("number of transactions actually processed: ")) : -1;
    if (n < 1)
        h_eng_fail("pgbench run %d processed no transactions:\n%s", ctx.run, out);
    ctx.processed += n;
}

/* Keep the load going: when the current run has ended, check it and start the next. */
static void tick(void)
{
    int st;
    if (run_ended(&st)) {
        check_clean(st);
        start_pgbench();
    }
}

/* Wait (bounded) for the current run to end; returns its wait status. */
static int wait_run(void)
{
    int st = 0;
    double t0 = h_now_ms();
    while (!run_ended(&st)) {
        if (h_now_ms() - t0 > RUN_BOUND_MS)
            h_eng_fail("pgbench run %d (-T %d) still running after %d s", ctx.run, RUN_SECONDS,
                       RUN_BOUND_MS / 1000);
        usleep(POLL_US);
    }
    return st;
}

/* Keep the load going until the current run is between CUT_FROM_MS and CUT_TO_MS old. */
static void wait_window(void)
{
    for (;;) {
        tick();
        double age = h_now_ms() - ctx.t_run;
        if (age >= CUT_FROM_MS && age <= CUT_TO_MS)
            return;
        usleep(POLL_US);
    }
}

/* Sum of SHOW STATS column col over its rows. */
static long long stat(PGconn *ctl, const char *col)
{
    PGresult *r = h_ctl_ok(ctl, "SHOW STATS");
    long long v = 0;
    for (int i = 0; i < PQntuples(r); i++)
        v += atoll(PQgetvalue(r, i, h_col(r, col)));
    PQclear(r);
    return v;
}

/* pgbench_accounts etc. at SCALE, loaded directly (not part of what is tested). */
static void init_pgbench(void)
{
    int rc = h_shell("PGSSLMODE=disable %s -i -s %d -q -h 127.0.0.1 -p %d -U %s %s "
                     ">%s/pgbi.%s.out 2>&1",
                     h_pgbench_bin(), SCALE, h_pg_port(), h_pg_user(), ctx.e.db, h_tmpdir(),
                     ctx.e.db);
    if (rc != 0) {
        h_shell("cat %s/pgbi.%s.out >&2", h_tmpdir(), ctx.e.db);
        fail_msg("pgbench -i -s %d exited %d", SCALE, rc);
    }
    h_shell("rm -f %s/pgbi.%s.out", h_tmpdir(), ctx.e.db);
}

/* Submit the copy ALTER COLUMN abalance TYPE bigint (cutover = manual) and keep the load
 * going until it is ready; then, inside a run, let the engine swap (cutover = auto) and
 * wait until it is done. When survives, returns with that run still going (fails
 * otherwise); else (tracking off: every client aborts at once after the swap, which ends
 * the run) only waits for done. */
static void type_change_in_run(PGconn *ctl, bool survives)
{
    long long id =
        h_start_migration(ctl, "ALTER TABLE pgbench_accounts ALTER COLUMN abalance TYPE bigint");
    h_mig m;
    double t0 = h_now_ms();
    for (;;) {
        h_mig_show(ctl, id, &m);
        if (h_mig_terminal(m.state))
            h_eng_fail("migration %lld is %s: %s", id, m.state, m.error);
        if (strcmp(m.state, "ready") == 0)
            break;
        if (h_now_ms() - t0 > READY_MS)
            h_eng_fail("migration %lld not ready within %d s (state %s)", id, READY_MS / 1000,
                       m.state);
        tick();
        usleep(POLL_US);
    }
    wait_window();
    int run = ctx.run, st;
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld cutover = auto", id));
    t0 = h_now_ms();
    for (;;) {
        h_mig_show(ctl, id, &m);
        if (h_mig_terminal(m.state))
            h_eng_fail("migration %lld is %s: %s", id, m.state, m.error);
        if (strcmp(m.state, "done") == 0)
            break;
        if (survives && run_ended(&st))
            h_eng_fail("the swap (requested %d-%d ms into pgbench run %d) was not done when "
                       "that run ended (state %s, phase %s)",
                       CUT_FROM_MS, CUT_TO_MS, run, m.state, m.phase);
        if (h_now_ms() - t0 > READY_MS)
            h_eng_fail("migration %lld not done within %d s (state %s)", id, READY_MS / 1000,
                       m.state);
        usleep(POLL_US);
    }
    if (survives && (run_ended(&st) || ctx.run != run))
        h_eng_fail("the swap was seen done only after pgbench run %d ended", run);
    fprintf(stderr, "  type change: m%lld swapped in pgbench run %d (hold %.1f ms, longest "
                    "client wait %.1f ms)\n",
            id, run, m.hold_ms, m.max_wait_ms);
}

/* The books balance, and the history holds exactly the transactions pgbench reported. */
static void check_books(PGconn *d)
{
    long long sum_a = h_qint(d, "SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts");
    long long sum_h = h_qint(d, "SELECT coalesce(sum(delta), 0) FROM pgbench_history");
    long long sum_t = h_qint(d, "SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers");
    long long sum_b = h_qint(d, "SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches");
    long long hist = h_qint(d, "SELECT count(*) FROM pgbench_history");
    if (sum_a != sum_h || sum_t != sum_h || sum_b != sum_h)
        h_eng_fail("sum(abalance) %lld, sum(delta) %lld, sum(tbalance) %lld, sum(bbalance) %lld",
                   sum_a, sum_h, sum_t, sum_b);
    if (hist != ctx.processed)
        h_eng_fail("%lld history rows, pgbench reported %lld transactions", hist, ctx.processed);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgbench_accounts"), ROWS);
}

/* ---------- the tests ---------- */

static void test_tracked(void **state)
{
    (void)state;
    init_pgbench();
    PGconn *d = h_eng_direct(&ctx.e);
    static const char *const sets[] = {"log_level=info", "instant_ddl=on", "cutover=manual",
                                       NULL};
    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    start_pgbench();

    /* the copy: swapped inside a run; the run ends clean */
    long long s0 = stat(ctl, "prepared_sessions");
    type_change_in_run(ctl, true);
    check_clean(wait_run());
    long long s1 = stat(ctl, "prepared_sessions");
    char type[64];
    h_qtext(d, type, sizeof type,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
            "'public.pgbench_accounts'::regclass AND attname = 'abalance'");
    assert_string_equal(type, "bigint");

    /* the instant ADD COLUMN, inside the next run */
    start_pgbench();
    wait_window();
    int run = ctx.run, st;
    PGresult *r = h_ctl_ok(ctl, "ALTER TABLE pgbench_accounts ADD COLUMN note text");
    if (strcmp(PQgetvalue(r, 0, h_col(r, "strategy")), "instant") != 0 ||
        strcmp(PQgetvalue(r, 0, h_col(r, "state")), "done") != 0)
        h_eng_fail("ADD COLUMN note: strategy %s, state %s", PQgetvalue(r, 0, h_col(r, "strategy")),
                   PQgetvalue(r, 0, h_col(r, "state")));
    PQclear(r);
    if (run_ended(&st) || ctx.run != run)
        h_eng_fail("the instant ADD COLUMN was answered only after pgbench run %d ended", run);
    check_clean(wait_run());
    long long s2 = stat(ctl, "prepared_sessions");

    /* one more run on the changed table */
    start_pgbench();
    check_clean(wait_run());

    /* every client of the run across each change re-prepared; nothing left to PostgreSQL */
    if (s1 - s0 < CLIENTS || s2 - s1 < CLIENTS)
        h_eng_fail("re-prepared sessions: %lld across the swap, %lld across the ADD COLUMN; "
                   "want >= %d each",
                   s1 - s0, s2 - s1, CLIENTS);
    long long left = stat(ctl, "prepared_left"), redone = stat(ctl, "prepared_reprepared");
    if (left != 0)
        h_eng_fail("%lld statements left to PostgreSQL (pgbench describes every execution)", left);
    check_books(d);
    fprintf(stderr, "  tracked: %d pgbench runs, %lld transactions, 0 failed; %lld + %lld "
                    "sessions re-prepared (%lld statements, %lld ms), books balance\n",
            ctx.run, ctx.processed, s1 - s0, s2 - s1, redone, stat(ctl, "prepared_ms"));
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

static void test_untracked(void **state)
{
    (void)state;
    init_pgbench();
    static const char *const sets[] = {"log_level=info", "instant_ddl=on", "cutover=manual",
                                       "max_prepared_statements_bytes=0", NULL};
    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    start_pgbench();
    type_change_in_run(ctl, false);
    int st = wait_run();
    const char *out = h_slurp(ctx.pgb_out);
    int aborted = 0;
    for (const char *l = out; *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) : strlen(l);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), l);
        if (strstr(line, "aborted") && strstr(line, CACHED_PLAN))
            aborted++;
        l += n + (e != NULL);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) == 0 || aborted != CLIENTS)
        h_eng_fail("untracked: pgbench run %d across the swap exited 0x%x with %d clients "
                   "aborted on \"%s\" (want a failure and %d):\n%s",
                   ctx.run, st, aborted, CACHED_PLAN, CLIENTS, out);
    assert_true(stat(ctl, "prepared_untracked") >= CLIENTS);
    fprintf(stderr, "  untracked: all %d clients aborted with \"%s\"\n", aborted, CACHED_PLAN);
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

static int setup(void **state)
{
    memset(&ctx, 0, sizeof ctx);
    h_eng_fail_hook = dump_logs;
    return h_eng_setup_db(&ctx.e, (const char *)*state);
}

static int teardown(void **state)
{
    (void)state;
    kill_pgbench();
    h_eng_teardown(&ctx.e);
    h_eng_fail_hook = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_tracked, setup, teardown,
                                                 (void *)"prep_pgb_tracked"),
        cmocka_unit_test_prestate_setup_teardown(test_untracked, setup, teardown,
                                                 (void *)"prep_pgb_untracked"),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
