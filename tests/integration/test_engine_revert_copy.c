/*
 * test_engine_revert_copy.c — the revert window of a copy migration (issue 16): under
 * pgbench -M prepared (4 clients, TPC-B-like) through the proxy,
 *
 *   load        ALTER COLUMN abalance TYPE bigint (copy, cutover auto) completes; SHOW
 *               MIGRATION says revertible (the window open); the application writes on;
 *               REVERT MIGRATION n swaps the kept old table back (its window migration
 *               applies the log, verifies, swaps): abalance is integer again, every
 *               pgbench run had 0 failed transactions, and the books balance (sum of
 *               abalance = sum of history's delta = tellers = branches: no write made
 *               after the cutover was lost); then the revert of the revert restores
 *               bigint, books still balanced; DROP MIGRATION of it closes the window it
 *               opened (no pgcutover trigger left on the table).
 *   refused     writes after the cutover that the old table cannot hold — 3,000,000,000
 *               into what was integer, 8 characters into what was char(5), NULL into
 *               what was NOT NULL, a value the CHECK constraint the change dropped
 *               forbids, a new row without the NOT NULL column the change dropped — all
 *               succeed for the application; the window records each with
 *               its key (writes that fit are no fault), SHOW MIGRATION's revertible turns
 *               to no naming the first key, REVERT is refused (0A000) and nothing moves;
 *               DROP MIGRATION closes the window.
 *   expire      revert_window = 3 s, revert_window_old_table = drop: under writes the
 *               window ends by itself (phase says so), its trigger and the old table
 *               are gone, revertible says why and REVERT is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"

#define POLL_US 50000

static h_pgbench load;

static void fail_hook(void)
{
    h_pgbench_dump(&load);
    h_dump_log(&h_eng_case.px, 60);
}

static void books(PGconn *d, const char *when)
{
    PGresult *r = h_exec(d, "SELECT (SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts), "
                            "(SELECT coalesce(sum(delta), 0) FROM pgbench_history), "
                            "(SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers), "
                            "(SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches)");
    long long a = atoll(PQgetvalue(r, 0, 0)), h = atoll(PQgetvalue(r, 0, 1));
    long long t = atoll(PQgetvalue(r, 0, 2)), b = atoll(PQgetvalue(r, 0, 3));
    PQclear(r);
    if (a != h || t != h || b != h)
        h_eng_fail("books %s: abalance %lld, delta %lld, tbalance %lld, bbalance %lld", when, a, h, t, b);
    fprintf(stderr, "  books balance %s (%lld)\n", when, h);
}

/* Poll migration id (ticking the load) until it is in state want (fails on failed). */
static void wait_state(PGconn *ctl, long long id, const char *want)
{
    for (double t0 = h_now_ms(); h_now_ms() - t0 < 120000;) {
        h_mig m;
        h_mig_show(ctl, id, &m);
        if (strcmp(m.state, want) == 0)
            return;
        if (strcmp(m.state, "failed") == 0 && strcmp(want, "failed") != 0)
            h_eng_fail("migration %lld failed: %s", id, m.error);
        h_pgbench_tick(&load);
        usleep(POLL_US);
    }
    h_eng_fail("migration %lld not %s within 120 s", id, want);
}

static const char *abalance_type(PGconn *d)
{
    static char t[64];
    return h_qtext(d, t, sizeof t, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                                   "attrelid = 'pgbench_accounts'::regclass AND attname = 'abalance'");
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

static void test_load(void **state)
{
    (void)state;
    h_eng_fail_hook = fail_hook;
    PGconn *d = h_eng_direct(&h_eng_case);
    assert_int_equal(h_shell("PGSSLMODE=disable %s -i -s 1 -q -h 127.0.0.1 -p %d -U %s %s "
                             ">/dev/null 2>&1", h_pgbench_bin(), h_pg_port(), h_pg_user(),
                             h_eng_case.db), 0);
    h_proxy_start(&h_eng_case.px, NULL);
    PGconn *ctl = h_eng_console(&h_eng_case, &h_eng_case.px);
    load = (h_pgbench){.db = h_eng_case.db, .port = h_eng_case.px.port, .mode = "prepared",
                       .clients = 4, .jobs = 2, .seconds = 3, .dir = h_eng_case.px.sockdir};
    h_pgbench_start(&load);
    run_for(1000);
    long long id = h_start_migration(ctl, "ALTER TABLE pgbench_accounts ALTER COLUMN abalance TYPE bigint");
    wait_state(ctl, id, "done");
    assert_string_equal(abalance_type(d), "bigint");
    PGresult *r = h_ctl_ok(ctl, "SHOW MIGRATION %lld", id);
    if (strncmp(PQgetvalue(r, 0, h_col(r, "revertible")), "yes", 3) != 0)
        h_eng_fail("revertible: %s", PQgetvalue(r, 0, h_col(r, "revertible")));
    PQclear(r);
    run_for(4000); /* the application writes on after the cutover */
    long long w = revert(ctl, id);
    wait_state(ctl, w, "done");
    assert_string_equal(abalance_type(d), "integer");
    /* the reverted migration's old table is the live one again: nothing of it to drop */
    h_mig fm;
    h_mig_show(ctl, id, &fm);
    if (fm.old_table[0] || strstr(fm.phase, "reverted by migration") == NULL)
        h_eng_fail("after the revert: old_table \"%s\", phase \"%s\"", fm.old_table, fm.phase);
    char cmd[64], code[6], msg[512];
    snprintf(cmd, sizeof cmd, "DROP MIGRATION %lld", id);
    h_ctl_err(ctl, cmd, code, msg, sizeof msg);
    if (strcmp(code, "55000") != 0 || strstr(msg, "keeps no old table") == NULL)
        h_eng_fail("%s: %s %s", cmd, code, msg);
    assert_string_equal(abalance_type(d), "integer");
    run_for(2000);
    h_pgbench_finish(&load, 30000);
    books(d, "after the revert");
    /* the revert of the revert */
    h_pgbench_start(&load);
    run_for(1000);
    long long w2 = revert(ctl, w);
    wait_state(ctl, w2, "done");
    assert_string_equal(abalance_type(d), "bigint");
    run_for(1000);
    h_pgbench_finish(&load, 30000);
    books(d, "after the revert of the revert");
    fprintf(stderr, "  pgbench: %d runs, %lld transactions, 0 failed\n", load.runs, load.processed);
    /* DROP MIGRATION closes the window the last swap opened: no capture left on the table */
    assert_true(h_qint(d, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'pgbench_accounts'::regclass "
                          "AND tgname LIKE 'pgcutover%%'") > 0);
    PQclear(h_ctl_ok(ctl, "DROP MIGRATION %lld", w2));
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_trigger WHERE tgrelid = "
                               "'pgbench_accounts'::regclass AND tgname LIKE 'pgcutover%%'"), 0);
    h_eng_fail_hook = NULL;
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* SHOW MIGRATION id's revertible starts with prefix and holds also; REVERT MIGRATION id is
 * refused with 0A000 and a message holding needle. */
static void expect_refused(PGconn *ctl, long long id, const char *prefix, const char *also,
                           const char *needle)
{
    PGresult *r = h_ctl_ok(ctl, "SHOW MIGRATION %lld", id);
    const char *rv = PQgetvalue(r, 0, h_col(r, "revertible"));
    if (strncmp(rv, prefix, strlen(prefix)) != 0 || strstr(rv, also) == NULL)
        h_eng_fail("revertible: %s", rv);
    PQclear(r);
    char cmd[64], code[6], msg[1024];
    snprintf(cmd, sizeof cmd, "REVERT MIGRATION %lld", id);
    h_ctl_err(ctl, cmd, code, msg, sizeof msg);
    if (strcmp(code, "0A000") != 0 || strstr(msg, needle) == NULL)
        h_eng_fail("REVERT: %s %s", code, msg);
}

/* The window's faults table rows "key|reason" in order, joined by newlines. */
static const char *faults(PGconn *d, long long w)
{
    static char out[4096];
    return h_qtext(d, out, sizeof out, "SELECT string_agg(key || '|' || reason, E'\\n' ORDER BY at, "
                                       "key) FROM pgcutover.m%lld_faults", w);
}

static void test_refused(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL, c char(5), w int NOT NULL, "
               "k int CHECK (k >= 0)); INSERT INTO t SELECT g, g, 'x', g, g FROM generate_series(1, 1000) g");
    h_proxy_start(&h_eng_case.px, NULL);
    PGconn *ctl = h_eng_console(&h_eng_case, &h_eng_case.px);
    long long id = h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN v TYPE bigint, ALTER COLUMN v "
                                          "DROP NOT NULL, ALTER COLUMN c TYPE text, DROP COLUMN w, DROP "
                                          "CONSTRAINT t_k_check");
    h_mig m;
    h_mig_wait(ctl, id, "done", -1, 120000, &m);
    char old[256];
    snprintf(old, sizeof old, "%s", m.old_table);
    PGresult *r = h_ctl_ok(ctl, "SHOW MIGRATION %lld", id);
    if (strncmp(PQgetvalue(r, 0, h_col(r, "revertible")), "yes", 3) != 0)
        h_eng_fail("revertible before any write: %s", PQgetvalue(r, 0, h_col(r, "revertible")));
    PQclear(r);
    long long w = h_qint(d, "SELECT id FROM pgcutover.migrations WHERE revert_of = %lld", id);
    PGconn *app = h_eng_keep(&h_eng_case, h_connect(h_conninfo_proxy_db(&h_eng_case.px, h_eng_case.db, NULL)));
    /* writes the old table could hold are no fault */
    h_execf(app, "UPDATE t SET v = 2147483647, c = 'abcde' WHERE id = 6; DELETE FROM t WHERE id = 5");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.m%lld_faults", w), 0);
    /* the application is refused none of these; each is recorded with its key */
    h_execf(app, "UPDATE t SET v = 3000000000 WHERE id = 7");
    h_execf(app, "UPDATE t SET c = 'abcdefgh' WHERE id = 8");
    h_execf(app, "UPDATE t SET v = NULL WHERE id = 9");
    h_execf(app, "UPDATE t SET k = -1 WHERE id = 11");
    h_execf(app, "BEGIN ISOLATION LEVEL SERIALIZABLE; INSERT INTO t (id, v) VALUES (2000, 1); COMMIT");
    const char *f = faults(d, w);
    fprintf(stderr, "  faults:\n%s\n", f);
    const char *want[] = {"(id)=(7)|column \"v\": 3000000000 is out of range for the old type integer",
                          "(id)=(8)|column \"c\": value too long for type character(5) (SQLSTATE 22001)",
                          "(id)=(9)|column \"v\" is NULL: the old table's column is NOT NULL",
                          "(id)=(11)|violates check constraint \"t_k_check\" of the old table",
                          "(id)=(2000)|a new row has no value for column \"w\" of the old table"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(f, want[i]) == NULL)
            h_eng_fail("fault \"%s\" not recorded", want[i]);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.m%lld_faults", w), 5);
    expect_refused(ctl, id, "no: a write since the swap does not fit the old table: (id)=(7): "
                            "column \"v\": 3000000000 is out of range", "(and more)", "(id)=(7)");
    /* nothing moved: the migration is done, the window waits, the old table is kept */
    h_mig_show(ctl, id, &m);
    assert_string_equal(m.state, "done");
    h_mig_show(ctl, w, &m);
    assert_string_equal(m.state, "standby");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_class WHERE oid = to_regclass('%s')", old), 1);
    assert_int_equal(h_qint(d, "SELECT v FROM t WHERE id = 7"), 3000000000LL);
    /* DROP MIGRATION closes the window and its faults with it */
    PQclear(h_ctl_ok(ctl, "DROP MIGRATION %lld", id));
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_class WHERE oid = "
                               "to_regclass('pgcutover.m%lld_faults')", w), 0);
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* revert_window: the window ends by itself after that many seconds — its capture dropped,
 * revertible no with the reason, REVERT refused — and with revert_window_old_table =
 * drop the old table goes too; writes keep working all along. */
static void test_expire(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM "
               "generate_series(1, 1000) g");
    const char *sets[] = {"revert_window=3", "revert_window_old_table=drop", NULL};
    h_proxy_start(&h_eng_case.px, sets);
    PGconn *ctl = h_eng_console(&h_eng_case, &h_eng_case.px);
    long long id = h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN v TYPE bigint");
    h_mig m;
    h_mig_wait(ctl, id, "done", -1, 120000, &m);
    char old[256];
    snprintf(old, sizeof old, "%s", m.old_table);
    long long w = h_qint(d, "SELECT id FROM pgcutover.migrations WHERE revert_of = %lld", id);
    PGconn *app = h_eng_keep(&h_eng_case, h_connect(h_conninfo_proxy_db(&h_eng_case.px, h_eng_case.db, NULL)));
    double t0 = h_now_ms();
    for (int i = 0; h_now_ms() - t0 < 15000; i++) {
        h_execf(app, "UPDATE t SET v = v + 1 WHERE id = %d", 1 + i % 1000);
        h_mig_show(ctl, w, &m);
        if (strcmp(m.state, "standby") != 0)
            break;
        usleep(POLL_US);
    }
    double took = (h_now_ms() - t0) / 1000.0;
    assert_string_equal(m.state, "aborted");
    fprintf(stderr, "  window ended after %.1f s: %s\n", took, m.phase);
    if (strstr(m.phase, "revert window expired (revert_window = 3 s)") == NULL)
        h_eng_fail("window phase: %s", m.phase);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 't'::regclass AND "
                               "tgname LIKE 'pgcutover%%'"), 0);
    for (int i = 0; i < 50 && h_qint(d, "SELECT count(*) FROM pg_class WHERE oid = to_regclass('%s')", old); i++)
        usleep(POLL_US); /* the drop follows the window's end */
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_class WHERE oid = to_regclass('%s')", old), 0);
    expect_refused(ctl, id, "no: revert window expired", "", "expired");
    h_execf(app, "UPDATE t SET v = 5000000000 WHERE id = 1"); /* bigint, no window left to check */
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        H_ENG_CASE(test_load, "eng_revcopy_load"),
        H_ENG_CASE(test_refused, "eng_revcopy_refused"),
        H_ENG_CASE(test_expire, "eng_revcopy_expire"),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
