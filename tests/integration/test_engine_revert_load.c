/*
 * test_engine_revert_load.c — issue 16's "Done when" for the revert window of copy
 * migrations under load, against the real PostgreSQL (test_engine_revert_copy.c has the
 * refused writes and the window's expiry):
 *
 *   type          ALTER COLUMN abalance TYPE bigint (the setup and checks of rename_drop
 *                 below): 10 s of writes, REVERT: integer again, books per account; the
 *                 reverted migration keeps no old table (DROP MIGRATION: 55000); the
 *                 revert of the revert: bigint again.
 *   rename_drop   under pgbench TPC-B-like through the proxy (8 clients, -M prepared),
 *                 instant_ddl = off so that RENAME COLUMN and DROP COLUMN (catalog-only
 *                 for PostgreSQL) go through the copy; two cases, each on a fresh pgbench
 *                 database (PostgreSQL takes no RENAME beside other subcommands):
 *                 (a) rename: RENAME COLUMN filler TO pad completes; the application writes
 *                 on for 10 s; REVERT MIGRATION n completes: the column is filler again, every
 *                 row's value as before, 0 failed transactions, and the books balance —
 *                 in total and per account (abalance = the sum of its history's delta;
 *                 pgbench -i starts every balance at 0), so no write after the swap is lost;
 *                 then the revert of the revert: pad again, same values, books balanced;
 *                 (b) drop: the same for DROP COLUMN filler: after REVERT the column is
 *                 back and every row's filler equals its value before the migration (md5
 *                 of them in key order); then the revert of the revert drops it again.
 *                 Both end with DROP MIGRATION of the last swap: no pgcutover trigger left.
 *   sigkill_swap  SIGKILL of pgcutover during the revert's swap. A type change to bigint
 *                 under a light load through the proxy, then a light load straight to
 *                 PostgreSQL (-M simple: the proxy it would go through is killed) on while:
 *                 round 1: a direct session holds ROW SHARE on the table, REVERT, the window
 *                 migration R's LOCK TABLE waits in its cutover (lock_timeout_ms 1000,
 *                 cutover_attempts 1000) and pgcutover is SIGKILLed then; round 2: the
 *                 revert of the revert, pgcutover SIGKILLed a random 0–400 ms after its
 *                 state reads cutting_over (whichever step that is). After each kill, once
 *                 its backends are gone: nothing half-swapped (either R not swapped — the
 *                 new schema live with R's capture, the kept table still R's shadow, R not
 *                 done — or swapped — the old schema live, R done, its own old table kept
 *                 and its window's capture on the live table), the migration it reverts
 *                 still done. A new pgcutover on the same database then completes the
 *                 revert; the load had 0 failed transactions; the books balance per account
 *                 (no lost write); the only pgcutover triggers in the database are those of
 *                 the one open window and no change log of a finished migration is left.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"

#define POLL_US 50000
#define WAIT_MS 120000

static h_pgbench load;
static h_proxy *cur_px; /* the pgcutover whose log a failure prints */

static void fail_hook(void)
{
    h_pgbench_dump(&load);
    h_pgbench_stop(&load); /* no pgbench left running past the failed case */
    if (cur_px)
        h_dump_log(cur_px, 80);
}

/* Poll migration id (ticking the load) until it is in state want; fails on failed or
 * aborted (unless wanted) and after WAIT_MS. *m (may be NULL) gets the last row. */
static void wait_state(PGconn *ctl, long long id, const char *want, h_mig *out)
{
    h_mig m;
    for (double t0 = h_now_ms(); h_now_ms() - t0 < WAIT_MS;) {
        h_mig_show(ctl, id, &m);
        if (strcmp(m.state, want) == 0) {
            if (out)
                *out = m;
            return;
        }
        if (h_mig_terminal(m.state) && strcmp(want, m.state) != 0)
            h_eng_fail("migration %lld is %s while waiting for %s: %s", id, m.state, want, m.error);
        h_pgbench_tick(&load);
        usleep(POLL_US);
    }
    h_eng_fail("migration %lld not %s within %d s (state %s, phase %s)", id, want, WAIT_MS / 1000,
               m.state, m.phase);
}

/* REVERT MIGRATION id: its window migration's id (the answer's note column). */
static long long revert(PGconn *ctl, long long id)
{
    PGresult *r = h_ctl_ok(ctl, "REVERT MIGRATION %lld", id);
    long long w = atoll(PQgetvalue(r, 0, h_col(r, "note")));
    PQclear(r);
    assert_true(w > id);
    return w;
}

static void run_for(int ms)
{
    for (double t0 = h_now_ms(); h_now_ms() - t0 < ms;)
        usleep(POLL_US), h_pgbench_tick(&load);
}

/* The type of public.pgbench_accounts' column col, "" when it has none. */
static const char *col_type(PGconn *d, const char *col)
{
    static char t[64];
    return h_qtext(d, t, sizeof t, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                                   "attrelid = 'public.pgbench_accounts'::regclass AND attname = '%s' "
                                   "AND NOT attisdropped", col);
}

static void assert_revertible(PGconn *ctl, long long id)
{
    PGresult *r = h_ctl_ok(ctl, "SHOW MIGRATION %lld", id);
    const char *v = PQgetvalue(r, 0, h_col(r, "revertible"));
    if (strncmp(v, "yes", 3) != 0)
        h_eng_fail("migration %lld: revertible: %s", id, v);
    PQclear(r);
}

static void print_swap(const char *what, long long id, PGconn *ctl)
{
    h_mig m;
    h_mig_show(ctl, id, &m);
    fprintf(stderr, "  %s (migration %lld): %s, attempt %lld, hold %.1f ms, lock %.1f ms, longest "
                    "client wait %.1f ms\n",
            what, id, m.state, m.attempts, m.hold_ms, m.lock_ms, m.max_wait_ms);
}

/* Every pgcutover trigger of the database as "table.trigger,…" into out ("" when none). */
static const char *all_triggers(PGconn *d, char *out, size_t len)
{
    return h_qtext(d, out, len, "SELECT string_agg(tgrelid::regclass || '.' || tgname, ',' ORDER BY "
                                "tgrelid::regclass::text, tgname) FROM pg_trigger WHERE tgname LIKE "
                                "'pgcutover%%'");
}

/* The capture triggers of window migration w on the live table, and nothing else. */
static void only_window_triggers(PGconn *d, long long w)
{
    char got[1024], want[256];
    all_triggers(d, got, sizeof got);
    snprintf(want, sizeof want, "pgbench_accounts.pgcutover_m%lld_dw,pgbench_accounts.pgcutover_m%lld_"
                                "truncate", w, w);
    if (strcmp(got, want) != 0)
        h_eng_fail("pgcutover triggers: '%s', want only the open window's: '%s'", got, want);
    /* and no change log but that window's */
    char logs[512], wl[64];
    h_qtext(d, logs, sizeof logs, "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class c "
                                  "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = "
                                  "'pgcutover' AND c.relkind = 'r' AND relname ~ '^m[0-9]+_log$'");
    snprintf(wl, sizeof wl, "m%lld_log", w);
    if (strcmp(logs, wl) != 0)
        h_eng_fail("change logs left: '%s', want only the open window's %s", logs, wl);
}

static long long window_of(PGconn *d, long long id)
{
    return h_qint(d, "SELECT (settings->>'revert_window')::bigint FROM pgcutover.migrations WHERE "
                     "id = %lld", id);
}

/* ---------- rename_drop ---------- */

static const char filler_md5_sql[] =
    "SELECT md5(string_agg(%s, ',' ORDER BY aid)) FROM public.pgbench_accounts";

/* pgbench -i, every row's filler its own value (pgbench -i gives them all the same blank
 * one), a pgcutover with instant_ddl = off and its console, the load (8 clients, -M
 * prepared) started. want gets the md5 of the filler values in key order. */
static PGconn *rename_drop_setup(PGconn **ctl, char want[64])
{
    h_eng_fail_hook = fail_hook;
    cur_px = &h_eng_case.px;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_pgbench_init(h_eng_case.db, 1);
    h_execf(d, "UPDATE pgbench_accounts SET filler = md5(aid::text)");
    h_execf(d, "VACUUM ANALYZE pgbench_accounts");
    h_qtext(d, want, 64, filler_md5_sql, "filler");
    static const char *const sets[] = {"instant_ddl=off", NULL};
    h_proxy_start(&h_eng_case.px, sets);
    *ctl = h_eng_console(&h_eng_case, &h_eng_case.px);
    load = (h_pgbench){.db = h_eng_case.db, .port = h_eng_case.px.port, .mode = "prepared",
                       .clients = 8, .jobs = 2, .seconds = 3, .dir = h_eng_case.px.sockdir};
    h_pgbench_start(&load);
    run_for(1000);
    return d;
}

/* The copy migration sql done (strategy copy), revertible; then 10 s of writes. */
static long long forward(PGconn *d, PGconn *ctl, const char *sql, const char *what)
{
    long long id = h_start_migration(ctl, sql);
    wait_state(ctl, id, "done", NULL);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.migrations WHERE id = %lld AND "
                               "strategy = 'copy'", id), 1);
    print_swap(what, id, ctl);
    assert_revertible(ctl, id);
    run_for(10000); /* the application writes on after the swap */
    return id;
}

/* After the filler column came back: every row's value as before the migration. */
static void filler_as_before(PGconn *d, const char *want, const char *when)
{
    char got[64];
    if (strcmp(h_qtext(d, got, sizeof got, filler_md5_sql, "filler"), want) == 0)
        return;
    h_eng_fail("%s: %lld rows' filler differ from before (%lld of them NULL; %lld of them rows "
               "the application never wrote)", when,
               h_qint(d, "SELECT count(*) FROM pgbench_accounts WHERE filler IS DISTINCT FROM "
                         "md5(aid::text)"),
               h_qint(d, "SELECT count(*) FROM pgbench_accounts WHERE filler IS NULL"),
               h_qint(d, "SELECT count(*) FROM pgbench_accounts a WHERE filler IS DISTINCT FROM "
                         "md5(aid::text) AND NOT EXISTS (SELECT FROM pgbench_history h WHERE "
                         "h.aid = a.aid)"));
}

static void finish_load(PGconn *d, const char *when)
{
    run_for(1000);
    h_pgbench_finish(&load, 30000);
    h_pgbench_books(d, when, 100000, -1, true); /* per account: no write lost */
}

/* The revert of the revert (window migration w): the new schema again — col of type
 * type (col "filler", type "": no filler) — every write kept; then DROP MIGRATION of it
 * closes the window it opened. */
static void revert_of_revert(PGconn *d, PGconn *ctl, long long w, const char *col, const char *type)
{
    h_pgbench_start(&load);
    run_for(2000);
    long long w2 = revert(ctl, w);
    wait_state(ctl, w2, "done", NULL);
    print_swap("revert of the revert", w2, ctl);
    assert_string_equal(col_type(d, col), type);
    finish_load(d, "after the revert of the revert");
    fprintf(stderr, "  pgbench -M prepared, 8 clients: %d runs, %lld transactions, 0 failed, tps "
                    "%.0f..%.0f\n", load.runs, load.processed, load.tps_min, load.tps_max);
    only_window_triggers(d, window_of(d, w2));
    PQclear(h_ctl_ok(ctl, "DROP MIGRATION %lld", w2));
    char trg[1024];
    if (all_triggers(d, trg, sizeof trg)[0])
        h_eng_fail("pgcutover triggers after DROP MIGRATION %lld: %s", w2, trg);
}

/* REVERT MIGRATION id under the load: its window migration, done; what names it. */
static long long revert_done(PGconn *ctl, long long id, const char *what)
{
    long long w = revert(ctl, id);
    wait_state(ctl, w, "done", NULL);
    print_swap(what, w, ctl);
    return w;
}

/* The end of a case that started at t_start (h_now_ms). */
static void end_case(double t_start, const char *what)
{
    fprintf(stderr, "  %s: %.1f s\n", what, (h_now_ms() - t_start) / 1000);
    h_eng_fail_hook = NULL;
    cur_px = NULL;
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* rename_drop (a): RENAME COLUMN through the copy, 10 s of writes, REVERT, the revert of
 * the revert. */
static void test_rename(void **state)
{
    (void)state;
    double t_start = h_now_ms();
    PGconn *ctl;
    char want[64], got[64];
    PGconn *d = rename_drop_setup(&ctl, want);
    long long id = forward(d, ctl, "ALTER TABLE pgbench_accounts RENAME COLUMN filler TO pad",
                           "rename");
    assert_string_equal(col_type(d, "pad"), "character(84)");
    assert_string_equal(col_type(d, "filler"), "");
    if (strcmp(h_qtext(d, got, sizeof got, filler_md5_sql, "pad"), want) != 0)
        h_eng_fail("after the rename the pad values differ from the filler values before");
    long long w = revert_done(ctl, id, "revert of the rename");
    assert_string_equal(col_type(d, "filler"), "character(84)");
    assert_string_equal(col_type(d, "pad"), "");
    filler_as_before(d, want, "after the revert of the rename");
    finish_load(d, "after the revert of the rename");
    revert_of_revert(d, ctl, w, "pad", "character(84)");
    assert_string_equal(col_type(d, "filler"), "");
    if (strcmp(h_qtext(d, got, sizeof got, filler_md5_sql, "pad"), want) != 0)
        h_eng_fail("after the revert of the revert the pad values differ from before");
    end_case(t_start, "rename");
}

/* rename_drop (b): DROP COLUMN through the copy, 10 s of writes, REVERT: the column back
 * with every row's value; the revert of the revert. */
static void test_drop(void **state)
{
    (void)state;
    double t_start = h_now_ms();
    PGconn *ctl;
    char want[64];
    PGconn *d = rename_drop_setup(&ctl, want);
    long long id = forward(d, ctl, "ALTER TABLE pgbench_accounts DROP COLUMN filler", "drop");
    assert_string_equal(col_type(d, "filler"), "");
    long long w = revert_done(ctl, id, "revert of the drop");
    assert_string_equal(col_type(d, "filler"), "character(84)");
    filler_as_before(d, want, "after the revert of the drop");
    finish_load(d, "after the revert of the drop");
    revert_of_revert(d, ctl, w, "filler", "");
    end_case(t_start, "drop");
}

/* The type change of the issue: ALTER COLUMN abalance TYPE bigint through the copy, 10 s
 * of writes, REVERT: integer again with every write; the reverted migration keeps no old
 * table (its old table is live again); the revert of the revert: bigint again. */
static void test_type(void **state)
{
    (void)state;
    double t_start = h_now_ms();
    PGconn *ctl;
    char want[64];
    PGconn *d = rename_drop_setup(&ctl, want);
    long long id = forward(d, ctl, "ALTER TABLE pgbench_accounts ALTER COLUMN abalance TYPE bigint",
                           "type change");
    assert_string_equal(col_type(d, "abalance"), "bigint");
    long long w = revert_done(ctl, id, "revert of the type change");
    assert_string_equal(col_type(d, "abalance"), "integer");
    filler_as_before(d, want, "after the revert of the type change");
    h_mig fm;
    h_mig_show(ctl, id, &fm);
    if (fm.old_table[0] || strstr(fm.phase, "reverted by migration") == NULL)
        h_eng_fail("after the revert: old_table \"%s\", phase \"%s\"", fm.old_table, fm.phase);
    char cmd[64], code[6], msg[512];
    snprintf(cmd, sizeof cmd, "DROP MIGRATION %lld", id);
    h_ctl_err(ctl, cmd, code, msg, sizeof msg);
    if (strcmp(code, "55000") != 0 || strstr(msg, "keeps no old table") == NULL)
        h_eng_fail("%s: %s %s", cmd, code, msg);
    finish_load(d, "after the revert of the type change");
    revert_of_revert(d, ctl, w, "abalance", "bigint");
    end_case(t_start, "type change");
}

/* ---------- sigkill_swap ---------- */

static int engine_backends(PGconn *d)
{
    return (int)h_qint(d, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND application_name LIKE 'pgcutover%%'");
}

static bool rel_exists(PGconn *d, const char *qualified)
{
    return h_qint(d, "SELECT count(*) FROM pg_class WHERE oid = to_regclass('%s')", qualified) == 1;
}

/* SIGKILL *p and wait until its backends are gone (a backend waiting for a lock goes at its
 * lock_timeout; one in ANALYZE when that ends). */
static void kill_engine(PGconn *d, h_proxy *p)
{
    h_proxy_signal(p, SIGKILL);
    int st = h_proxy_stop(p); /* reaps it */
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    for (int i = 0; i < 200 && engine_backends(d) > 0; i++)
        usleep(POLL_US), h_pgbench_tick(&load);
    assert_int_equal(engine_backends(d), 0);
}

/*
 * After a SIGKILL during the swap of window migration r (reverting f): nothing half-swapped.
 * Either not swapped — public.pgbench_accounts has abalance of type `now` (the schema before
 * the revert) and r's capture triggers, r's shadow (the kept table) exists, r's old table
 * does not, r is not done — or swapped — abalance of type `back`, r done, its shadow's name
 * gone and its old table kept, r's own window's capture on the live table and r's gone. f
 * stays done either way. Returns whether it swapped.
 */
static bool not_half_swapped(PGconn *d, long long f, long long r, const char *now, const char *back)
{
    char rstate[32], fstate[32], shadow[256], old[256], typ[64], trg[1024], rtrg[128];
    h_qtext(d, rstate, sizeof rstate, "SELECT state FROM pgcutover.migrations WHERE id = %lld", r);
    h_qtext(d, fstate, sizeof fstate, "SELECT state FROM pgcutover.migrations WHERE id = %lld", f);
    h_qtext(d, shadow, sizeof shadow, "SELECT shadow_schema || '.' || shadow_name FROM "
                                      "pgcutover.migrations WHERE id = %lld", r);
    snprintf(old, sizeof old, "pgcutover.pgbench_accounts_%lld_old", r);
    snprintf(typ, sizeof typ, "%s", col_type(d, "abalance"));
    all_triggers(d, trg, sizeof trg);
    snprintf(rtrg, sizeof rtrg, "pgbench_accounts.pgcutover_m%lld_dw,pgbench_accounts.pgcutover_m%lld_"
                                "truncate", r, r);
    long long n = h_qint(d, "SELECT count(*) FROM pg_class c JOIN pg_namespace s ON s.oid = "
                            "c.relnamespace WHERE s.nspname = 'public' AND c.relname = "
                            "'pgbench_accounts'");
    bool sh = rel_exists(d, shadow), ol = rel_exists(d, old);
    fprintf(stderr, "  after SIGKILL: migration %lld %s, %lld %s; public.pgbench_accounts x%lld, "
                    "abalance %s; triggers '%s'; %s %s, %s %s\n",
            r, rstate, f, fstate, n, typ, trg, shadow, sh ? "exists" : "gone", old,
            ol ? "exists" : "gone");
    if (n != 1)
        h_eng_fail("after SIGKILL: %lld tables public.pgbench_accounts", n);
    if (strcmp(fstate, "done") != 0)
        h_eng_fail("after SIGKILL: migration %lld (reverted) is %s, not done", f, fstate);
    bool before = strcmp(typ, now) == 0 && strcmp(trg, rtrg) == 0 && sh && !ol &&
                  strcmp(rstate, "done") != 0;
    bool swapped = false;
    if (!before && strcmp(typ, back) == 0 && !sh && ol && strcmp(rstate, "done") == 0) {
        long long w = window_of(d, r);
        char wtrg[128];
        snprintf(wtrg, sizeof wtrg, "pgbench_accounts.pgcutover_m%lld_dw,pgbench_accounts."
                                    "pgcutover_m%lld_truncate", w, w);
        swapped = w > 0 && strcmp(trg, wtrg) == 0;
    }
    if (!before && !swapped)
        h_eng_fail("after SIGKILL the revert %lld is half-swapped (see above)", r);
    return swapped;
}

/* A random 0..399 ms, from a seed printed once. */
static int rand_ms(void)
{
    static bool seeded;
    if (!seeded) {
        unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
        const char *s = getenv("PGC_SEED");
        if (s)
            seed = (unsigned)strtoul(s, NULL, 10);
        fprintf(stderr, "  seed %u (PGC_SEED)\n", seed);
        srand(seed);
        seeded = true;
    }
    return rand() % 400;
}

static void test_sigkill_swap(void **state)
{
    (void)state;
    double t_start = h_now_ms();
    h_eng_fail_hook = fail_hook;
    h_proxy *px = &h_eng_case.px, *px2 = &h_eng_case.px2;
    cur_px = px;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_pgbench_init(h_eng_case.db, 1);
    static const char *const sets[] = {"cutover_attempts=1000", NULL};
    h_proxy_start(px, sets);
    PGconn *ctl = h_eng_console(&h_eng_case, px);
    /* the forward change under a light load through the proxy */
    /* pgbench's output files stay in the first pgcutover's directory (restarts get others) */
    static char load_dir[256];
    snprintf(load_dir, sizeof load_dir, "%s", px->sockdir);
    load = (h_pgbench){.db = h_eng_case.db, .port = px->port, .mode = "prepared", .clients = 2,
                       .jobs = 1, .seconds = 2, .dir = load_dir};
    h_pgbench_start(&load);
    run_for(1000);
    long long f = h_start_migration(ctl, "ALTER TABLE pgbench_accounts ALTER COLUMN abalance TYPE bigint");
    wait_state(ctl, f, "done", NULL);
    assert_string_equal(col_type(d, "abalance"), "bigint");
    run_for(1000);
    h_pgbench_finish(&load, 30000);
    long long through_proxy = load.processed;

    /* from here the load goes straight to PostgreSQL: the proxy is killed under it */
    load.port = h_pg_port();
    load.mode = "simple";
    PGconn *blocker = h_eng_direct(&h_eng_case);
    h_execf(blocker, "BEGIN");
    h_execf(blocker, "LOCK TABLE pgbench_accounts IN ROW SHARE MODE");
    h_pgbench_start(&load);
    run_for(500);

    /* round 1: killed while the revert's LOCK TABLE waits behind the blocker */
    long long r = revert(ctl, f);
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld lock_timeout_ms = 1000", r));
    h_mig m;
    bool cutting = false;
    for (double t0 = h_now_ms(); !cutting && h_now_ms() - t0 < WAIT_MS;) {
        h_mig_show(ctl, r, &m);
        if (strcmp(m.state, "done") == 0 || h_mig_terminal(m.state))
            h_eng_fail("migration %lld is %s while a session holds a lock on the table: %s", r,
                       m.state, m.error);
        if (!(cutting = strcmp(m.state, "cutting_over") == 0))
            usleep(20000), h_pgbench_tick(&load);
    }
    if (!cutting)
        h_eng_fail("migration %lld never read cutting_over (state %s)", r, m.state);
    bool waiting = false;
    for (double t0 = h_now_ms(); !waiting && h_now_ms() - t0 < 20000;) {
        waiting = h_qint(d, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                            "'pgcutover m%lld' AND wait_event_type = 'Lock'", r) > 0;
        if (!waiting)
            usleep(2000), h_pgbench_tick(&load);
    }
    if (!waiting)
        h_eng_fail("the cutover of migration %lld never waited for its lock", r);
    h_eng_drop_conn(&h_eng_case, ctl);
    kill_engine(d, px);
    if (not_half_swapped(d, f, r, "bigint", "integer"))
        h_eng_fail("migration %lld swapped while its lock waited behind the blocker", r);
    h_execf(blocker, "COMMIT");
    run_for(500);
    h_proxy_start(px2, sets);
    cur_px = px2;
    ctl = h_eng_console(&h_eng_case, px2);
    wait_state(ctl, r, "done", NULL);
    print_swap("revert after the restart", r, ctl);
    assert_string_equal(col_type(d, "abalance"), "integer");
    run_for(1000);
    h_pgbench_finish(&load, 30000);
    h_pgbench_books(d, "after the killed revert", 100000, -1, true);
    only_window_triggers(d, window_of(d, r));

    /* round 2: the revert of the revert, killed a random moment into its cutover */
    h_pgbench_start(&load);
    run_for(500);
    long long r2 = revert(ctl, r);
    cutting = false;
    for (double t0 = h_now_ms(); !cutting && h_now_ms() - t0 < WAIT_MS;) {
        h_mig_show(ctl, r2, &m);
        if (h_mig_terminal(m.state))
            h_eng_fail("migration %lld is %s: %s", r2, m.state, m.error);
        cutting = strcmp(m.state, "cutting_over") == 0 || strcmp(m.state, "done") == 0;
        if (!cutting)
            usleep(5000), h_pgbench_tick(&load);
    }
    if (!cutting)
        h_eng_fail("migration %lld never read cutting_over (state %s)", r2, m.state);
    int delay = rand_ms();
    for (double t0 = h_now_ms(); h_now_ms() - t0 < delay;)
        usleep(1000);
    h_eng_drop_conn(&h_eng_case, ctl);
    kill_engine(d, px2);
    bool swapped = not_half_swapped(d, r, r2, "integer", "bigint");
    fprintf(stderr, "  round 2: killed %d ms after %s read: %s\n", delay, m.state,
            swapped ? "it had swapped" : "not swapped");
    h_proxy_start(px, sets);
    cur_px = px;
    ctl = h_eng_console(&h_eng_case, px);
    wait_state(ctl, r2, "done", NULL);
    print_swap("revert of the revert after the restart", r2, ctl);
    assert_string_equal(col_type(d, "abalance"), "bigint");
    run_for(1000);
    h_pgbench_finish(&load, 30000);
    h_pgbench_books(d, "after the killed revert of the revert", 100000, -1, true);
    only_window_triggers(d, window_of(d, r2));
    fprintf(stderr, "  pgbench: %lld transactions through the proxy, %lld straight (-M simple), "
                    "%d runs, 0 failed\n", through_proxy, load.processed - through_proxy, load.runs);
    fprintf(stderr, "  sigkill_swap: %.1f s\n", (h_now_ms() - t_start) / 1000);
    h_eng_fail_hook = NULL;
    cur_px = NULL;
    h_eng_stop_proxy(&h_eng_case, px);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        H_ENG_CASE(test_type, "eng_revload_type"),
        H_ENG_CASE(test_rename, "eng_revload_rename"),
        H_ENG_CASE(test_drop, "eng_revload_drop"),
        H_ENG_CASE(test_sigkill_swap, "eng_revload_sigkill"),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
