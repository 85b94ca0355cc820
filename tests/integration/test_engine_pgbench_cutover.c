/*
 * test_engine_pgbench_cutover.c — an online change of pgbench_accounts (scale 10,
 * 1,000,000 rows) through the control console, end to end, while pgbench (TPC-B-like,
 * 8 clients, -j 2) runs THROUGH THE PROXY for the whole change, backfill and cutover
 * included (issue 6, "Done when", first point). Two tests, one pgbench query mode each:
 *
 *   - -M prepared: ALTER TABLE pgbench_accounts ADD COLUMN note text DEFAULT '' (keeps
 *     every column pgbench's prepared statements read, so their re-plan after the swap
 *     resolves to the new table with the same result type); the swap is made by the
 *     engine itself (SET MIGRATION n cutover = auto once ready);
 *   - -M simple: ALTER COLUMN abalance TYPE bigint, ADD COLUMN note text DEFAULT '';
 *     the swap on CUTOVER MIGRATION n.
 * pgcutover runs with instant_ddl = off, so the ADD COLUMN is copied too (by default it
 * would be instant: PostgreSQL runs it on its catalog alone).
 *
 * pgbench runs back to back (10 s each) from 2 s before the ALTER until the run in
 * which the swap happened has ended, and the swap is requested 2-5 s into a run, so it
 * falls under load however long the backfill takes on the machine.
 *
 * Asserted: the migration reaches done in the run it was requested in or the next one
 * (started back to back: a busy machine can make the ANALYZE before the swap take
 * seconds), with history rows whose mtime is before and after the swap, every pgbench
 * run exits 0 and reports 0
 * failed transactions and no aborted client, and the data equals the original mapped
 * through the change. pgbench keeps writing after the swap, so the new table is not compared
 * with the old one as a whole; instead:
 *   - 1,000,000 rows, every note = '', abalance of the new type;
 *   - the columns pgbench never writes (aid, bid, filler) equal the old table's, row for
 *     row, both ways;
 *   - every account's abalance is the sum of its history deltas (pgbench -i starts all
 *     balances at 0 and each transaction adds delta to one account, one teller and one
 *     branch and inserts one history row, atomically) — likewise every teller and
 *     branch; so sum(abalance) = sum(delta) = sum(tbalance) = sum(bbalance);
 *   - the old table, frozen at the swap, differs from the new one only by the history
 *     rows of transactions that started after the swap (mtime > the cutover
 *     transaction's now(), phase_at['done']), except for at most one account per client:
 *     a transaction in flight during the hold whose UPDATE waited for the cutover's lock
 *     and then, re-resolving the name, wrote the new table (difference: its delta, its
 *     mtime at or before the swap), or one whose BEGIN reached PostgreSQL just after the
 *     cutover transaction began (mtime after it) but which wrote the old table before the
 *     lock was granted (difference: minus its delta). Either way no write is lost: every
 *     balance equals its history, checked above.
 *
 * Each test has its own database (eng_pgb_cut_*) and its own pgcutover (Debug build,
 * sanitizers), because test files run in parallel; the teardown stops pgbench and the
 * proxy if a failed test left them running.
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

#define SCALE 10
#define ROWS (SCALE * 100000LL)
#define CLIENTS 8
#define RUN_SECONDS 10       /* pgbench -T of each run */
#define SUBMIT_AFTER_MS 2000 /* load before the ALTER is submitted */
#define CUT_FROM_MS 2000     /* the swap is requested this far into a run … */
#define CUT_TO_MS 5000       /* … and no later (a run lasts RUN_SECONDS) */
#define MAX_TOTAL_MS 200000  /* bound on the whole change */
#define POLL_US 100000

static struct {
    h_eng e;        /* database, pgcutover, connections kept until the teardown */
    h_pgbench load; /* the back-to-back runs */
} ctx;

/* h_eng_fail's hook: the tails of the pgcutover log and of pgbench's output. */
static void dump_logs(void)
{
    h_dump_log(&ctx.e.px, 40);
    h_pgbench_dump(&ctx.load);
}

/* Fail the test after printing the tails of the pgcutover log and pgbench's output. */
#define FAILP(...) h_eng_fail(__VA_ARGS__)

static int setup_db(const char *db)
{
    memset(&ctx, 0, sizeof ctx);
    h_eng_fail_hook = dump_logs;
    return h_eng_setup_db(&ctx.e, db);
}

static int setup_prepared(void **state)
{
    (void)state;
    return setup_db("eng_pgb_cut_prep");
}

static int setup_simple(void **state)
{
    (void)state;
    return setup_db("eng_pgb_cut_simple");
}

static int teardown(void **state)
{
    (void)state;
    h_pgbench_stop(&ctx.load);
    h_eng_teardown(&ctx.e);
    memset(&ctx, 0, sizeof ctx);
    return 0;
}

/* ---------- the test ---------- */

/*
 * pgbench runs back to back (RUN_SECONDS each, a few ms apart) from before the ALTER is
 * submitted until the run in which the cutover happened has ended; every run must be
 * clean. The proxy starts with cutover = manual so that the swap falls inside a run
 * (not at its edge, whatever the machine's speed): once the migration is ready and the
 * current run is between CUT_FROM_MS and CUT_TO_MS old, the test sends either
 * "CUTOVER MIGRATION n" (manual: the manual path) or "SET MIGRATION n cutover = auto"
 * (the engine then swaps by itself, as with the default cutover = auto).
 */
static void run_case(const char *mode, const char *change, const char *abalance_type, bool manual)
{
    char cmd[1024], buf[1024];
    h_pgbench_init(ctx.e.db, SCALE);
    PGconn *dc = h_eng_direct(&ctx.e);
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM pgbench_accounts"), ROWS);

    /* instant_ddl=off: -M prepared's ADD COLUMN (chosen so pgbench's prepared statements
     * re-plan to the same result types) is catalog-only for PostgreSQL; the copy and its
     * swap under load are what is tested (-M simple's type change is a copy either way) */
    static const char *const sets[] = {"log_level=info", "cutover=manual", "instant_ddl=off", NULL};
    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);

    int cut_run = 0;
    long long id = 0;
    bool requested = false, done = false;
    h_mig m = {0};
    double t0 = h_now_ms(), t_submit = 0, t_done = 0;
    /* -P 5: progress lines in the output, for a failure's diagnostics */
    ctx.load = (h_pgbench){.db = ctx.e.db, .port = ctx.e.px.port, .mode = mode, .clients = CLIENTS,
                           .jobs = 2, .seconds = RUN_SECONDS, .dir = ctx.e.px.sockdir,
                           .min_processed = 100, .progress = 5};
    h_pgbench *load = &ctx.load;
    h_pgbench_start(load);
    for (;;) {
        double now = h_now_ms(), t_run = load->started_ms;
        if (id == 0 && now - t0 >= SUBMIT_AFTER_MS) {
            snprintf(cmd, sizeof cmd, "ALTER TABLE pgbench_accounts %s", change);
            id = h_start_migration(ctl, cmd);
            t_submit = h_now_ms();
        }
        if (id > 0 && !done) {
            h_mig_show(ctl, id, &m);
            if (h_mig_terminal(m.state))
                FAILP("migration %lld is %s: %s", id, m.state, m.error);
            if (!requested && strcmp(m.state, "ready") == 0 && now - t_run >= CUT_FROM_MS &&
                now - t_run <= CUT_TO_MS && h_pgbench_running(load)) {
                requested = true;
                cut_run = load->runs;
                /* CUTOVER blocks until done or refused; SET returns at once */
                if (manual)
                    snprintf(cmd, sizeof cmd, "CUTOVER MIGRATION %lld", id);
                else
                    snprintf(cmd, sizeof cmd, "SET MIGRATION %lld cutover = auto", id);
                PQclear(h_ctl_ok(ctl, "%s", cmd));
                h_mig_show(ctl, id, &m);
            }
            if (strcmp(m.state, "done") == 0) {
                done = true;
                t_done = h_now_ms();
                /* under load: in the run it was requested in, or (a 2-core machine
                 * running other tests can make the ANALYZE before the swap slow) the next
                 * one, started back to back */
                if (load->runs > cut_run + 1)
                    FAILP("the swap (requested in pgbench run %d) was seen done only in run %d "
                          "(%.1f s after the request)",
                          cut_run, load->runs, (t_done - t_run) / 1000);
            }
        }
        /* an ended run is checked (h_pgbench_check: clean, >= 100 transactions) */
        if (!h_pgbench_running(load)) {
            if (done)
                break;
            if (requested && load->runs > cut_run)
                FAILP("cutover requested %d-%d ms into pgbench run %d, not done when the next "
                      "one ended (state %s: %s)",
                      CUT_FROM_MS, CUT_TO_MS, cut_run, m.state, m.error);
            if (h_now_ms() - t0 > MAX_TOTAL_MS)
                FAILP("migration %lld not done within %d s (state %s)", id, MAX_TOTAL_MS / 1000,
                      m.state);
            h_pgbench_start(load);
        }
        usleep(POLL_US);
    }
    /* The cutover's figures (recorded just after the commit that made it done). */
    h_mig_show(ctl, id, &m);
    if (strcmp(m.state, "done") != 0 || m.attempts < 1 || m.old_table[0] == 0)
        FAILP("migration %lld: state %s, cutover_attempts %lld, old_table '%s'", id, m.state,
              m.attempts, m.old_table);
    if (!(m.hold_ms > 0 && m.lock_ms > 0 && m.lock_ms <= m.hold_ms && m.max_wait_ms >= 0))
        FAILP(
            "migration %lld: cutover_hold_ms %.3f, cutover_lock_ms %.3f, cutover_max_wait_ms %.3f",
            id, m.hold_ms, m.lock_ms, m.max_wait_ms);

    /* ---- the data ---- */
    char done_at[64], type[64], old[256];
    snprintf(old, sizeof old, "%s", m.old_table);
    h_qtext(dc, done_at, sizeof done_at,
            "SELECT (phase_at->>'done')::timestamptz::timestamp::text FROM pgcutover.migrations "
            "WHERE id = %lld",
            id);
    if (!done_at[0])
        FAILP("no phase_at['done'] for migration %lld (phase_at %s)", id, m.phase_at);

    /* The load ran on both sides of the swap. */
    long long before =
        h_qint(dc, "SELECT count(*) FROM pgbench_history WHERE mtime < '%s'", done_at);
    long long after =
        h_qint(dc, "SELECT count(*) FROM pgbench_history WHERE mtime > '%s'", done_at);
    if (before < 100 || after < 100)
        FAILP("history rows before the swap %lld, after %lld: the swap was not under load", before,
              after);

    /* Shape of the new table. */
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM pgbench_accounts"), ROWS);
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM pgbench_accounts WHERE note = ''"), ROWS);
    h_qtext(dc, type, sizeof type,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
            "'public.pgbench_accounts'::regclass AND attname = 'abalance'");
    if (strcmp(type, abalance_type) != 0)
        FAILP("abalance is %s after the change, want %s", type, abalance_type);
    h_qtext(dc, buf, sizeof buf,
            "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef d JOIN pg_attribute a ON "
            "a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = "
            "'public.pgbench_accounts'::regclass AND a.attname = 'note'");
    if (strcmp(buf, "''::text") != 0)
        FAILP("default of note is '%s', want ''::text", buf);
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM pg_index WHERE indrelid = "
                                "'public.pgbench_accounts'::regclass AND indisprimary"),
                     1);

    /* Columns pgbench never writes: equal to the old table's, row for row, both ways. */
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM %s", old), ROWS);
    long long miss = h_qint(dc,
                            "SELECT count(*) FROM (SELECT aid, bid, filler FROM %s EXCEPT ALL "
                            "SELECT aid, bid, filler FROM pgbench_accounts) x",
                            old);
    long long extra = h_qint(dc,
                             "SELECT count(*) FROM (SELECT aid, bid, filler FROM pgbench_accounts "
                             "EXCEPT ALL SELECT aid, bid, filler FROM %s) x",
                             old);
    if (miss || extra)
        FAILP("(aid, bid, filler): %lld rows of %s missing from the new table, %lld extra", miss,
              old, extra);

    /* Every balance is its history (all start at 0), the sums equal. */
    h_pgbench_books(dc, "after the swap", -1, -1, true);

    /* The old table froze at the swap: new = old + deltas of transactions that started
     * after it, except for accounts written by a transaction in flight during the hold
     * (at most one per client), whose difference is one earlier history row's delta. */
    char with[1024];
    snprintf(with, sizeof with,
             "WITH post AS (SELECT aid, sum(delta) s FROM pgbench_history WHERE mtime > '%s' "
             "GROUP BY aid), d AS (SELECT n.aid, n.abalance - o.abalance - coalesce(p.s, 0) AS d "
             "FROM pgbench_accounts n JOIN %s o USING (aid) LEFT JOIN post p USING (aid)) ",
             done_at, old);
    long long odd = h_qint(dc, "%sSELECT count(*) FROM d WHERE d <> 0", with);
    long long unexplained =
        h_qint(dc,
               "%sSELECT count(*) FROM d WHERE d <> 0 AND NOT EXISTS (SELECT FROM pgbench_history "
               "h WHERE h.aid = d.aid AND ((h.delta = d.d AND h.mtime <= '%s') OR "
               "(h.delta = -d.d AND h.mtime > '%s')))",
               with, done_at, done_at);
    if (odd > CLIENTS || unexplained) {
        h_qtext(dc, buf, sizeof buf,
                "%sSELECT string_agg(format('aid %%s: %%s', aid, d), '; ') FROM (SELECT * FROM d "
                "WHERE d <> 0 LIMIT 8) x",
                with);
        FAILP("new vs old table (frozen at the swap, %s): %lld accounts differ by more than the "
              "later history (at most %d expected), %lld not explained by one earlier history "
              "row: %s",
              done_at, odd, CLIENTS, unexplained, buf);
    }

    fprintf(stderr,
            "  -M %s: %s: done %.1f s after submit; cutover attempts %lld, hold %.1f ms, lock "
            "%.1f ms, longest client wait %.1f ms (%s in run %d); pgbench %d runs, %lld "
            "transactions, 0 failed; history %lld before / %lld after the swap; %lld in-flight "
            "account(s) across the swap\n",
            mode, change, (t_done - t_submit) / 1000, m.attempts, m.hold_ms, m.lock_ms,
            m.max_wait_ms, manual ? "CUTOVER MIGRATION" : "SET cutover = auto", cut_run,
            load->runs, load->processed, before, after, odd);

    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

/* -M prepared, a change that keeps the result columns of pgbench's prepared SELECT. */
static void test_pgbench_prepared_add_column(void **state)
{
    (void)state;
    run_case("prepared", "ADD COLUMN note text DEFAULT ''", "integer", false);
}

/* -M simple, a type change plus a new column (nothing is prepared, so the type change
 * of the column pgbench selects is invisible to it). */
static void test_pgbench_simple_type_and_column(void **state)
{
    (void)state;
    run_case("simple", "ALTER COLUMN abalance TYPE bigint, ADD COLUMN note text DEFAULT ''",
             "bigint", true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pgbench_prepared_add_column, setup_prepared, teardown),
        cmocka_unit_test_setup_teardown(test_pgbench_simple_type_and_column, setup_simple,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
