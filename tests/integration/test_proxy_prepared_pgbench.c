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
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    h_pgbench load; /* the back-to-back runs */
} ctx;

/* h_eng_fail's hook: the tails of the pgcutover log and of pgbench's output. */
static void dump_logs(void)
{
    h_dump_log(&ctx.e.px, 40);
    h_pgbench_dump(&ctx.load);
}

/* Start the first pgbench run through the proxy (-M prepared, CLIENTS clients, -j 2). */
static void start_pgbench(void)
{
    ctx.load = (h_pgbench){.db = ctx.e.db, .port = ctx.e.px.port, .mode = "prepared",
                           .clients = CLIENTS, .jobs = 2, .seconds = RUN_SECONDS,
                           .dir = ctx.e.px.sockdir};
    h_pgbench_start(&ctx.load);
}

/* Keep the load going until the current run is between CUT_FROM_MS and CUT_TO_MS old. */
static void wait_window(void)
{
    for (;;) {
        h_pgbench_tick(&ctx.load);
        double age = h_now_ms() - ctx.load.started_ms;
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
        h_pgbench_tick(&ctx.load);
        usleep(POLL_US);
    }
    wait_window();
    int run = ctx.load.runs;
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld cutover = auto", id));
    t0 = h_now_ms();
    for (;;) {
        h_mig_show(ctl, id, &m);
        if (h_mig_terminal(m.state))
            h_eng_fail("migration %lld is %s: %s", id, m.state, m.error);
        if (strcmp(m.state, "done") == 0)
            break;
        if (survives && !h_pgbench_running(&ctx.load))
            h_eng_fail("the swap (requested %d-%d ms into pgbench run %d) was not done when "
                       "that run ended (state %s, phase %s)",
                       CUT_FROM_MS, CUT_TO_MS, run, m.state, m.phase);
        if (h_now_ms() - t0 > READY_MS)
            h_eng_fail("migration %lld not done within %d s (state %s)", id, READY_MS / 1000,
                       m.state);
        usleep(POLL_US);
    }
    if (survives && (!h_pgbench_running(&ctx.load) || ctx.load.runs != run))
        h_eng_fail("the swap was seen done only after pgbench run %d ended", run);
    fprintf(stderr, "  type change: m%lld swapped in pgbench run %d (hold %.1f ms, longest "
                    "client wait %.1f ms)\n",
            id, run, m.hold_ms, m.max_wait_ms);
}

/* ---------- the tests ---------- */

static void test_tracked(void **state)
{
    (void)state;
    h_pgbench_init(ctx.e.db, SCALE);
    PGconn *d = h_eng_direct(&ctx.e);
    static const char *const sets[] = {"log_level=info", "instant_ddl=on", "cutover=manual",
                                       NULL};
    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    start_pgbench();

    /* the copy: swapped inside a run; the run ends clean */
    long long s0 = stat(ctl, "prepared_sessions");
    type_change_in_run(ctl, true);
    h_pgbench_finish(&ctx.load, RUN_BOUND_MS);
    long long s1 = stat(ctl, "prepared_sessions");
    char type[64];
    h_qtext(d, type, sizeof type,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
            "'public.pgbench_accounts'::regclass AND attname = 'abalance'");
    assert_string_equal(type, "bigint");

    /* the instant ADD COLUMN, inside the next run */
    h_pgbench_start(&ctx.load);
    wait_window();
    int run = ctx.load.runs;
    PGresult *r = h_ctl_ok(ctl, "ALTER TABLE pgbench_accounts ADD COLUMN note text");
    if (strcmp(PQgetvalue(r, 0, h_col(r, "strategy")), "instant") != 0 ||
        strcmp(PQgetvalue(r, 0, h_col(r, "state")), "done") != 0)
        h_eng_fail("ADD COLUMN note: strategy %s, state %s", PQgetvalue(r, 0, h_col(r, "strategy")),
                   PQgetvalue(r, 0, h_col(r, "state")));
    PQclear(r);
    if (!h_pgbench_running(&ctx.load) || ctx.load.runs != run)
        h_eng_fail("the instant ADD COLUMN was answered only after pgbench run %d ended", run);
    h_pgbench_finish(&ctx.load, RUN_BOUND_MS);
    long long s2 = stat(ctl, "prepared_sessions");

    /* one more run on the changed table */
    h_pgbench_start(&ctx.load);
    h_pgbench_finish(&ctx.load, RUN_BOUND_MS);

    /* every client of the run across each change re-prepared; nothing left to PostgreSQL */
    if (s1 - s0 < CLIENTS || s2 - s1 < CLIENTS)
        h_eng_fail("re-prepared sessions: %lld across the swap, %lld across the ADD COLUMN; "
                   "want >= %d each",
                   s1 - s0, s2 - s1, CLIENTS);
    long long left = stat(ctl, "prepared_left"), redone = stat(ctl, "prepared_reprepared");
    if (left != 0)
        h_eng_fail("%lld statements left to PostgreSQL (pgbench describes every execution)", left);
    h_pgbench_books(d, "at the end", ROWS, ctx.load.processed, false);
    fprintf(stderr, "  tracked: %d pgbench runs, %lld transactions, 0 failed; %lld + %lld "
                    "sessions re-prepared (%lld statements, %lld ms), books balance\n",
            ctx.load.runs, ctx.load.processed, s1 - s0, s2 - s1, redone, stat(ctl, "prepared_ms"));
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

static void test_untracked(void **state)
{
    (void)state;
    h_pgbench_init(ctx.e.db, SCALE);
    static const char *const sets[] = {"log_level=info", "instant_ddl=on", "cutover=manual",
                                       "max_prepared_statements_bytes=0", NULL};
    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    start_pgbench();
    type_change_in_run(ctl, false);
    /* the run across the swap: every client aborted on 0A000, pgbench failed */
    h_pgbench_finish_aborted(&ctx.load, RUN_BOUND_MS, CACHED_PLAN);
    assert_true(stat(ctl, "prepared_untracked") >= CLIENTS);
    fprintf(stderr, "  untracked: all %d clients aborted with \"%s\"\n", CLIENTS, CACHED_PLAN);
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
    h_pgbench_stop(&ctx.load);
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
