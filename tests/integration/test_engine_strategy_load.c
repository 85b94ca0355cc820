/*
 * test_engine_strategy_load.c — every strategy under pgbench load (issue 13, "Done when",
 * second point). pgbench (TPC-B-like, 8 clients, -j 2, scale 2) runs THROUGH THE PROXY,
 * back to back in short runs (RUN_SECONDS each), from before the first statement until
 * after the last; meanwhile one statement of each strategy runs on pgbench_accounts
 * through the control console (pgcutover with instant_ddl = on, cutover = auto,
 * lock_timeout_ms = 100):
 *
 *   instant     ALTER TABLE pgbench_accounts ADD COLUMN note text
 *   validate    ADD CONSTRAINT … CHECK (abalance > -100000000); a lone
 *               ALTER COLUMN filler SET NOT NULL (after filling NULLs, if any); ADD
 *               CONSTRAINT … UNIQUE (aid, bid) (built CONCURRENTLY, attached USING INDEX)
 *   concurrent  CREATE INDEX ON pgbench_accounts (bid)
 *   direct      CREATE VIEW pgbench_acc_view AS SELECT aid, abalance FROM pgbench_accounts
 *   copy        ALTER COLUMN filler TYPE text (bpchar → text: PostgreSQL rewrites; the
 *               statements pgbench prepares read nothing whose type changes), cutover
 *               auto, waited for with SHOW MIGRATION n (bounded)
 *
 * Each answer's strategy is asserted (the row's `strategy` column; for copy, which answers
 * `pending`, PLAN's and SHOW MIGRATION's). Then a session directly on PostgreSQL holds
 * ACCESS SHARE on pgbench_accounts in an open transaction while an instant and then a
 * validate statement are issued: each is seen retrying (a new "<strategy>
 * public.pgbench_accounts: lock_timeout" line in pgcutover's log), is not done while the
 * session holds its lock (the console has not answered, the column/constraint does not
 * exist), and finishes once the session commits (cutover_attempts > 1 recorded).
 *
 * Every pgbench run must exit 0 with "number of failed transactions: 0" and no aborted
 * client or ERROR; at the end the books balance (sum(abalance) = sum(tbalance) =
 * sum(bbalance) = sum(delta)) and the catalog holds every change. Two tests, one per
 * pgbench query mode (-M simple, -M prepared), each with its own database and pgcutover;
 * the teardown stops pgbench and pgcutover if a failed test left them running.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"

#define SCALE 2
#define ROWS (SCALE * 100000LL)
#define RUN_SECONDS 5        /* pgbench -T of each run (8 clients, -j 2) */
#define RUN_BOUND_MS 60000   /* bound on a run ending */
#define STEP_MS 120000       /* bound on one console statement (retries included) */
#define COPY_MS 180000       /* bound on the copy migration reaching done */
#define RETRY_MS 60000       /* bound on seeing a lock_timeout retry in the log */
#define POLL_US 100000

static struct {
    h_eng e;        /* database, pgcutover, connections kept until the teardown */
    const char *mode;
    h_pgbench load; /* the back-to-back runs */
} ctx;

/* h_eng_fail's hook: the tails of the pgcutover log and of pgbench's output. */
static void dump_logs(void)
{
    h_dump_log(&ctx.e.px, 60);
    h_pgbench_dump(&ctx.load);
}

/* Occurrences of needle in pgcutover's log. */
static int log_count(const char *needle)
{
    int n = 0;
    for (const char *p = h_slurp(ctx.e.px.log); (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Send a console command without waiting for its answer. */
static void ctl_send(PGconn *ctl, const char *sql)
{
    if (!PQsendQuery(ctl, sql))
        h_eng_fail("console '%s': %s", sql, PQerrorMessage(ctl));
}

/* The answer to the command sent with ctl_send: waits (ticking the load, bounded by
 * STEP_MS); fails unless it is a result with rows. The caller PQclear's it. */
static PGresult *ctl_wait(PGconn *ctl, const char *sql)
{
    double t0 = h_now_ms();
    while (PQisBusy(ctl)) {
        h_pgbench_tick(&ctx.load);
        if (h_now_ms() - t0 > STEP_MS)
            h_eng_fail("console '%s': no answer within %d s", sql, STEP_MS / 1000);
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(PQsocket(ctl), &fds);
        struct timeval tv = {0, POLL_US};
        select(PQsocket(ctl) + 1, &fds, NULL, NULL, &tv);
        if (!PQconsumeInput(ctl))
            h_eng_fail("console '%s': %s", sql, PQerrorMessage(ctl));
    }
    PGresult *r, *last = NULL;
    while ((r = PQgetResult(ctl)) != NULL) {
        PQclear(last);
        last = r;
    }
    if (last == NULL || PQresultStatus(last) != PGRES_TUPLES_OK)
        h_eng_fail("console '%s': %s", sql, last ? PQresultErrorMessage(last) : "no result");
    return last;
}

/* The strategy PLAN reports (the part of its strategy row before ':'). */
static void plan_strategy(PGconn *ctl, const char *sql, char *out, size_t len)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "PLAN %s", sql);
    ctl_send(ctl, cmd);
    PGresult *r = ctl_wait(ctl, cmd);
    out[0] = 0;
    for (int i = 0; i < PQntuples(r); i++)
        if (strcmp(PQgetvalue(r, i, h_col(r, "phase")), "strategy") == 0)
            snprintf(out, len, "%.*s", (int)strcspn(PQgetvalue(r, i, h_col(r, "description")), ":"),
                     PQgetvalue(r, i, h_col(r, "description")));
    PQclear(r);
}

/* The answer to sql (sent with ctl_send) of a statement the console runs to the end: its
 * strategy must be `want` and its state done. Returns the migration id. */
static long long answer_done(PGconn *ctl, const char *sql, const char *want)
{
    PGresult *r = ctl_wait(ctl, sql);
    if (strcmp(PQgetvalue(r, 0, h_col(r, "strategy")), want) != 0 ||
        strcmp(PQgetvalue(r, 0, h_col(r, "state")), "done") != 0)
        h_eng_fail("%s: strategy %s, state %s; want %s, done", sql,
                   PQgetvalue(r, 0, h_col(r, "strategy")), PQgetvalue(r, 0, h_col(r, "state")),
                   want);
    long long id = atoll(PQgetvalue(r, 0, h_col(r, "id")));
    PQclear(r);
    return id;
}

/* Run a statement the console answers when done: PLAN and the answer's `strategy` must
 * be `want`, its state done. Returns the migration id. */
static long long step(PGconn *ctl, const char *sql, const char *want)
{
    char got[64];
    plan_strategy(ctl, sql, got, sizeof got);
    if (strcmp(got, want) != 0)
        h_eng_fail("PLAN %s: strategy '%s', want %s", sql, got, want);
    double t0 = h_now_ms();
    ctl_send(ctl, sql);
    long long id = answer_done(ctl, sql, want);
    fprintf(stderr, "  -M %s: m%lld %s: %s, %.0f ms\n", ctx.mode, id, want, sql, h_now_ms() - t0);
    return id;
}

/* SHOW MIGRATION id's strategy and state. */
static void show_state(PGconn *ctl, long long id, char *strategy, char *state, size_t len)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "SHOW MIGRATION %lld", id);
    ctl_send(ctl, cmd);
    PGresult *r = ctl_wait(ctl, cmd);
    if (PQntuples(r) != 1)
        h_eng_fail("%s: %d rows", cmd, PQntuples(r));
    snprintf(strategy, len, "%s", PQgetvalue(r, 0, h_col(r, "strategy")));
    snprintf(state, len, "%s", PQgetvalue(r, 0, h_col(r, "state")));
    if (h_mig_terminal(state))
        h_eng_fail("migration %lld is %s: %s", id, state, PQgetvalue(r, 0, h_col(r, "error")));
    PQclear(r);
}

/* The copy statement: PLAN says copy, the answer is pending, then SHOW MIGRATION polled
 * (ticking the load, bounded) until done. */
static void copy_step(PGconn *ctl, const char *sql)
{
    char got[64], state[64];
    plan_strategy(ctl, sql, got, sizeof got);
    if (strcmp(got, "copy") != 0)
        h_eng_fail("PLAN %s: strategy '%s', want copy", sql, got);
    double t0 = h_now_ms();
    ctl_send(ctl, sql);
    PGresult *r = ctl_wait(ctl, sql);
    long long id = atoll(PQgetvalue(r, 0, h_col(r, "id")));
    PQclear(r);
    assert_true(id > 0);
    do {
        if (h_now_ms() - t0 > COPY_MS)
            h_eng_fail("copy m%lld (%s) not done within %d s (state %s)", id, sql, COPY_MS / 1000,
                       state);
        h_pgbench_tick(&ctx.load);
        usleep(POLL_US);
        show_state(ctl, id, got, state, sizeof state);
        if (strcmp(got, "copy") != 0)
            h_eng_fail("SHOW MIGRATION %lld: strategy %s, want copy", id, got);
    } while (strcmp(state, "done") != 0);
    fprintf(stderr, "  -M %s: m%lld copy: %s, done %.0f ms after submit\n", ctx.mode, id, sql,
            h_now_ms() - t0);
}

/* A statement issued while `blocker` (directly on PostgreSQL) holds ACCESS SHARE on
 * pgbench_accounts in an open transaction: it must retry (a new "<want>
 * public.pgbench_accounts: lock_timeout" log line), not be done while the lock is held
 * (no answer; `present` — a count query of what it makes — still 0), and finish as
 * `want` once the blocker commits, after more than one attempt. */
static void blocked_step(PGconn *ctl, PGconn *d, PGconn *blocker, const char *sql,
                         const char *want, const char *present)
{
    char needle[128];
    snprintf(needle, sizeof needle, "%s public.pgbench_accounts: lock_timeout", want);
    int before = log_count(needle);
    h_execf(blocker, "BEGIN; SELECT 1 FROM pgbench_accounts LIMIT 1");
    ctl_send(ctl, sql);
    double t0 = h_now_ms();
    while (log_count(needle) <= before) {
        if (h_now_ms() - t0 > RETRY_MS)
            h_eng_fail("%s: no lock_timeout retry logged within %d s while a session holds "
                       "ACCESS SHARE",
                       sql, RETRY_MS / 1000);
        h_pgbench_tick(&ctx.load);
        usleep(POLL_US);
    }
    /* retried, and still not done: the console has not answered, nothing changed */
    if (!PQconsumeInput(ctl) || !PQisBusy(ctl))
        h_eng_fail("%s: answered while a session holds ACCESS SHARE on the table", sql);
    if (h_qint(d, "%s", present) != 0)
        h_eng_fail("%s: done while a session holds ACCESS SHARE on the table", sql);
    h_execf(blocker, "COMMIT");
    long long id = answer_done(ctl, sql, want);
    long long attempts =
        h_qint(d, "SELECT cutover_attempts FROM pgcutover.migrations WHERE id = %lld", id);
    if (attempts < 2)
        h_eng_fail("%s went through on attempt %lld although a lock was held", sql, attempts);
    if (h_qint(d, "%s", present) != 1)
        h_eng_fail("%s: answered done, but not in the catalog", sql);
    fprintf(stderr, "  -M %s: m%lld %s under a held ACCESS SHARE: %d retry line(s), done on "
                    "attempt %lld, %.0f ms\n",
            ctx.mode, id, want, log_count(needle) - before, attempts, h_now_ms() - t0);
}

/* ---------- the test ---------- */

static void run_case(const char *mode)
{
    ctx.mode = mode;
    h_pgbench_init(ctx.e.db, SCALE);
    PGconn *d = h_eng_direct(&ctx.e);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgbench_accounts"), ROWS);

    static const char *const sets[] = {"log_level=info",       "instant_ddl=on",
                                       "cutover=auto",         "lock_timeout_ms=100",
                                       "cutover_attempts=1000", NULL};
    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    PGconn *blocker = h_eng_keep(&ctx.e, h_direct_connect(ctx.e.db));

    ctx.load = (h_pgbench){.db = ctx.e.db, .port = ctx.e.px.port, .mode = mode, .clients = 8,
                           .jobs = 2, .seconds = RUN_SECONDS, .dir = ctx.e.px.sockdir};
    h_pgbench_start(&ctx.load);
    /* some load before the first statement (bounded: the first run ends within -T) */
    for (double t0 = h_now_ms(); h_now_ms() - t0 < 1000;)
        usleep(POLL_US), h_pgbench_tick(&ctx.load);

    step(ctl, "ALTER TABLE pgbench_accounts ADD COLUMN note text", "instant");
    step(ctl, "ALTER TABLE pgbench_accounts ADD CONSTRAINT pgbench_accounts_abalance_sane "
              "CHECK (abalance > -100000000)",
         "validate");
    h_execf(d, "UPDATE pgbench_accounts SET filler = '' WHERE filler IS NULL");
    step(ctl, "ALTER TABLE pgbench_accounts ALTER COLUMN filler SET NOT NULL", "validate");
    step(ctl, "CREATE INDEX pgbench_accounts_bid_idx ON pgbench_accounts (bid)", "concurrent");
    /* the key variant: CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … USING INDEX */
    step(ctl, "ALTER TABLE pgbench_accounts ADD CONSTRAINT pgbench_accounts_aid_bid_key UNIQUE "
              "(aid, bid)", "validate");
    step(ctl, "CREATE VIEW pgbench_acc_view AS SELECT aid, abalance FROM pgbench_accounts",
         "direct");
    copy_step(ctl, "ALTER TABLE pgbench_accounts ALTER COLUMN filler TYPE text");

    blocked_step(ctl, d, blocker, "ALTER TABLE pgbench_accounts ADD COLUMN note2 text", "instant",
                 "SELECT count(*) FROM pg_attribute WHERE attrelid = "
                 "'public.pgbench_accounts'::regclass AND attname = 'note2' AND NOT attisdropped");
    blocked_step(ctl, d, blocker,
                 "ALTER TABLE pgbench_accounts ADD CONSTRAINT pgbench_accounts_bid_pos "
                 "CHECK (bid > 0)",
                 "validate",
                 "SELECT count(*) FROM pg_constraint WHERE conrelid = "
                 "'public.pgbench_accounts'::regclass AND conname = 'pgbench_accounts_bid_pos' "
                 "AND convalidated");
    /* one more full run after the last statement */
    h_pgbench_finish(&ctx.load, RUN_BOUND_MS);
    h_pgbench_start(&ctx.load);
    h_pgbench_finish(&ctx.load, RUN_BOUND_MS);

    /* ---- the catalog holds every change ---- */
    char buf[4096];
    h_qtext(d, buf, sizeof buf,
            "SELECT string_agg(format('%%s %%s %%s', attname, format_type(atttypid, atttypmod), "
            "attnotnull), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = "
            "'public.pgbench_accounts'::regclass AND attnum > 0 AND NOT attisdropped");
    if (strcmp(buf, "aid integer t, bid integer f, abalance integer f, filler text t, note text f, "
                    "note2 text f") != 0)
        h_eng_fail("pgbench_accounts columns after the changes: %s", buf);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_constraint WHERE conrelid = "
                               "'public.pgbench_accounts'::regclass AND contype = 'c' AND "
                               "convalidated AND conname IN ('pgbench_accounts_abalance_sane', "
                               "'pgbench_accounts_bid_pos')"),
                     2);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_constraint WHERE conrelid = "
                               "'public.pgbench_accounts'::regclass AND conname LIKE 'pgcutover%%'"),
                     0);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_index WHERE indrelid = "
                               "'public.pgbench_accounts'::regclass AND indisvalid AND "
                               "pg_get_indexdef(indexrelid) LIKE '%%(bid)'"),
                     1);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_index WHERE indrelid = "
                               "'public.pgbench_accounts'::regclass AND NOT indisvalid"),
                     0);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_constraint WHERE conrelid = "
                               "'public.pgbench_accounts'::regclass AND contype = 'u' AND conname = "
                               "'pgbench_accounts_aid_bid_key'"),
                     1);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgbench_acc_view"), ROWS);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgbench_accounts"), ROWS);
    char notdone[2048];
    h_qtext(d, notdone, sizeof notdone,
            "SELECT coalesce(string_agg(format('m%%s %%s %%s (%%s): %%s', id, strategy, state, phase, "
            "error), '; '), '') FROM pgcutover.migrations WHERE state <> 'done' AND revert_of IS NULL");
    if (*notdone)
        h_eng_fail("migrations not done: %s", notdone);

    /* ---- the books balance ---- */
    long long sum = h_pgbench_books(d, "at the end", -1, ctx.load.processed, false);
    fprintf(stderr, "  -M %s: %d pgbench runs, %lld transactions, 0 failed; books balance "
                    "(sum %lld)\n",
            mode, ctx.load.runs, ctx.load.processed, sum);
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

static void test_load_simple(void **state)
{
    (void)state;
    run_case("simple");
}

static void test_load_prepared(void **state)
{
    (void)state;
    run_case("prepared");
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
        cmocka_unit_test_prestate_setup_teardown(test_load_simple, setup, teardown,
                                                 (void *)"eng_strat_load_simple"),
        cmocka_unit_test_prestate_setup_teardown(test_load_prepared, setup, teardown,
                                                 (void *)"eng_strat_load_prep"),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
