/*
 * test_engine_revert_copy.c — the revert window of a copy migration (issue 16) without
 * load (test_engine_revert_load.c has the reverts under pgbench):
 *
 *   refused     writes after the cutover that the old table cannot hold — 3,000,000,000
 *               into what was integer, 8 characters into what was char(5), 'abc' into
 *               what was integer (now text), NULL into
 *               what was NOT NULL, a value the CHECK constraint the change dropped
 *               forbids, a new row without the NOT NULL column the change dropped — all
 *               succeed for the application; the window records each with
 *               its key (writes that fit are no fault), SHOW MIGRATION's revertible turns
 *               to no naming the first key, REVERT is refused (0A000) and nothing moves;
 *               DROP MIGRATION closes the window.
 *   expire      revert_window = 3 s, revert_window_old_table = drop: under writes the
 *               window ends by itself (phase says so), its trigger and the old table
 *               are gone, revertible says why and REVERT is refused; a window another
 *               pgcutover opened with the default lifetime in the same database stays.
 *   bound       a SQL-body function on the table made after the admission: it stops the
 *               cutover (back to ready, named) and, in the window, REVERT — until dropped;
 *               the window prepared before the refused cutover's hold (row, log, function,
 *               no trigger) is the one the next swap opens; ABORT after a refused cutover
 *               drops the prepared window's objects.
 *   collation   a case-insensitive (nondeterministic) key: spellings changed to equal
 *               ones, values, deletes, inserts and a REPEATABLE READ transaction after the
 *               swap, then REVERT: the table equals the same statements run directly on a
 *               plain copy, byte for byte.
 *   no_inverse  a change with a USING expression: no window opened or prepared,
 *               revertible says why, REVERT refused.
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

/* Start pgcutover px with sets, run the copy migration sql to done (*m its row, *ctl the
 * console); returns its id, *w its revert window's (0: none). */
static long long copy_done(h_proxy *px, const char *const *sets, const char *sql, PGconn **ctl,
                           h_mig *m, long long *w)
{
    h_proxy_start(px, sets);
    *ctl = h_eng_console(&h_eng_case, px);
    long long id = h_start_migration(*ctl, sql);
    h_mig_wait(*ctl, id, "done", -1, 120000, m);
    *w = h_qint(h_eng_direct(&h_eng_case), "SELECT coalesce(max(id), 0) FROM pgcutover.migrations "
                                           "WHERE revert_of = %lld", id);
    return id;
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
               "k int CHECK (k >= 0), n int); INSERT INTO t SELECT g, g, 'x', g, g, g FROM generate_series(1, "
               "1000) g");
    PGconn *ctl;
    h_mig m;
    long long w, id = copy_done(&h_eng_case.px, NULL, "ALTER TABLE t ALTER COLUMN v TYPE bigint, "
                                "ALTER COLUMN v DROP NOT NULL, ALTER COLUMN c TYPE text, DROP COLUMN w, "
                                "DROP CONSTRAINT t_k_check, ALTER COLUMN n TYPE text", &ctl, &m, &w);
    char old[256];
    snprintf(old, sizeof old, "%s", m.old_table);
    PGresult *r = h_ctl_ok(ctl, "SHOW MIGRATION %lld", id);
    if (strncmp(PQgetvalue(r, 0, h_col(r, "revertible")), "yes", 3) != 0)
        h_eng_fail("revertible before any write: %s", PQgetvalue(r, 0, h_col(r, "revertible")));
    PQclear(r);
    PGconn *app = h_eng_keep(&h_eng_case, h_connect(h_conninfo_proxy_db(&h_eng_case.px, h_eng_case.db, NULL)));
    /* writes the old table could hold are no fault */
    h_execf(app, "UPDATE t SET v = 2147483647, c = 'abcde' WHERE id = 6; DELETE FROM t WHERE id = 5");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.m%lld_faults", w), 0);
    /* the application is refused none of these; each is recorded with its key */
    h_execf(app, "UPDATE t SET v = 3000000000 WHERE id = 7");
    h_execf(app, "UPDATE t SET c = 'abcdefgh' WHERE id = 8");
    h_execf(app, "UPDATE t SET v = NULL WHERE id = 9");
    h_execf(app, "UPDATE t SET k = -1 WHERE id = 11");
    h_execf(app, "UPDATE t SET n = 'abc' WHERE id = 14");
    h_execf(app, "BEGIN ISOLATION LEVEL SERIALIZABLE; INSERT INTO t (id, v) VALUES (2000, 1); COMMIT");
    /* two SERIALIZABLE writers, both recorded, interleaved: the trigger reads no table, so
     * they take no predicate lock there and neither fails (40001) */
    PGconn *app2 = h_eng_keep(&h_eng_case, h_connect(h_conninfo_proxy_db(&h_eng_case.px, h_eng_case.db, NULL)));
    h_execf(app, "BEGIN ISOLATION LEVEL SERIALIZABLE; UPDATE t SET v = 4000000000 WHERE id = 12");
    h_execf(app2, "BEGIN ISOLATION LEVEL SERIALIZABLE; UPDATE t SET v = 4000000000 WHERE id = 13");
    h_execf(app, "COMMIT");
    h_execf(app2, "COMMIT");
    const char *f = faults(d, w);
    fprintf(stderr, "  faults:\n%s\n", f);
    const char *want[] = {"(id)=(7)|column \"v\": 3000000000 is out of range for the old type integer",
                          "(id)=(8)|column \"c\": value too long for type character(5) (SQLSTATE 22001)",
                          "(id)=(9)|column \"v\" is NULL: the old table's column is NOT NULL",
                          "(id)=(11)|violates check constraint \"t_k_check\" of the old table",
                          "(id)=(14)|column \"n\": invalid input syntax for type integer: \"abc\" "
                          "(SQLSTATE 22P02)",
                          "(id)=(2000)|a new row has no value for column \"w\" of the old table"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(f, want[i]) == NULL)
            h_eng_fail("fault \"%s\" not recorded", want[i]);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.m%lld_faults", w), 8);
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
               "generate_series(1, 1000) g; CREATE TABLE u (LIKE t INCLUDING ALL); INSERT INTO u "
               "SELECT * FROM t");
    /* a window opened under the default lifetime (a day) by another pgcutover */
    PGconn *ctl;
    h_mig m;
    long long uw;
    copy_done(&h_eng_case.px2, NULL, "ALTER TABLE u ALTER COLUMN v TYPE bigint", &ctl, &m, &uw);
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px2); /* closes d and ctl too */
    d = h_eng_direct(&h_eng_case);
    const char *sets[] = {"revert_window=3", "revert_window_old_table=drop", NULL};
    long long w, id = copy_done(&h_eng_case.px, sets, "ALTER TABLE t ALTER COLUMN v TYPE bigint", &ctl,
                                &m, &w);
    char old[256];
    snprintf(old, sizeof old, "%s", m.old_table);
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
    /* the other window keeps its own lifetime: this pgcutover's 3 s end it not */
    h_mig_show(ctl, uw, &m);
    assert_string_equal(m.state, "standby");
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* Objects bound to the table by OID made after the admission: a SQL-body function made
 * while a copy waits for its cutover stops the swap (back to ready, the function named)
 * until it is dropped; one made while the revert window is open makes revertible no and
 * REVERT refused until it is dropped. Either way no swap leaves it reading the table
 * swapped out. */
static void test_bound(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM "
               "generate_series(1, 1000) g");
    const char *sets[] = {"cutover=manual", NULL};
    h_proxy_start(&h_eng_case.px, sets);
    PGconn *ctl = h_eng_console(&h_eng_case, &h_eng_case.px);
    long long id = h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN v TYPE bigint");
    h_mig m;
    h_mig_wait(ctl, id, "ready", -1, 120000, &m);
    h_execf(d, "CREATE FUNCTION t_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) "
               "FROM t; END");
    char cmd[64];
    snprintf(cmd, sizeof cmd, "CUTOVER MIGRATION %lld", id);
    PQclear(PQexec(ctl, cmd)); /* its answer: the state below */
    h_mig_show(ctl, id, &m);
    if (strcmp(m.state, "ready") != 0 || strstr(m.phase, "function public.t_count()") == NULL)
        h_eng_fail("CUTOVER with a bound function: %s: %s", m.state, m.phase);
    assert_string_equal(h_qtext(d, (char[64]){0}, 64, "SELECT format_type(atttypid, atttypmod) FROM "
                                "pg_attribute WHERE attrelid = 't'::regclass AND attname = 'v'"),
                        "integer");
    /* the window was prepared before the hold (row, log, function; no trigger yet) */
    long long pw = h_qint(d, "SELECT id FROM pgcutover.migrations WHERE revert_of = %lld AND state "
                             "= 'prepared'", id);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_class WHERE oid = to_regclass("
                               "'pgcutover.m%lld_log')", pw), 1);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgcutover_m%lld_%%'",
                            pw), 0);
    h_execf(d, "DROP FUNCTION t_count()");
    PQclear(h_ctl_ok(ctl, "CUTOVER MIGRATION %lld", id));
    h_mig_show(ctl, id, &m);
    assert_string_equal(m.state, "done");
    /* the swap used it: standby now, its capture on the live table */
    assert_int_equal(h_qint(d, "SELECT id FROM pgcutover.migrations WHERE revert_of = %lld", id), pw);
    h_mig_show(ctl, pw, &m);
    assert_string_equal(m.state, "standby");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 't'::regclass AND "
                               "tgname = 'pgcutover_m%lld_dw'", pw), 1);
    /* the window: a function made now would go on reading the table the revert takes out */
    h_execf(d, "CREATE FUNCTION t_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) "
               "FROM t; END");
    expect_refused(ctl, id, "no: these objects are bound to the live table",
                   "function public.t_count()", "function public.t_count()");
    h_execf(d, "DROP FUNCTION t_count()");
    long long w = h_qint(d, "SELECT id FROM pgcutover.migrations WHERE revert_of = %lld", id);
    PQclear(h_ctl_ok(ctl, "REVERT MIGRATION %lld", id));
    h_mig_wait(ctl, w, "done", -1, 120000, &m);
    /* a migration aborted after its cutover gave up: its prepared window goes with it */
    h_execf(d, "CREATE TABLE u (id int PRIMARY KEY, v int); INSERT INTO u SELECT g, g FROM "
               "generate_series(1, 100) g");
    long long uid = h_start_migration(ctl, "ALTER TABLE u ALTER COLUMN v TYPE bigint");
    h_mig_wait(ctl, uid, "ready", -1, 120000, &m);
    h_execf(d, "CREATE FUNCTION u_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) "
               "FROM u; END");
    snprintf(cmd, sizeof cmd, "CUTOVER MIGRATION %lld", uid);
    PQclear(PQexec(ctl, cmd));
    long long uw = h_qint(d, "SELECT id FROM pgcutover.migrations WHERE revert_of = %lld AND state "
                             "= 'prepared'", uid);
    PQclear(h_ctl_ok(ctl, "ABORT MIGRATION %lld", uid));
    h_mig_wait(ctl, uid, "aborted", -1, 120000, &m);
    h_mig_show(ctl, uw, &m);
    assert_string_equal(m.state, "aborted");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_class WHERE oid IN (to_regclass("
                               "'pgcutover.m%lld_log'), to_regclass('pgcutover.m%lld_faults'))", uw, uw), 0);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_proc WHERE proname = 'm%lld_dw'", uw), 0);
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* A key under a nondeterministic collation (case-insensitive ICU): writes through the
 * proxy after the swap — a key's spelling changed to an equal one, values, deletes,
 * inserts, a REPEATABLE READ transaction — then REVERT. The oracle: the same statements
 * run straight on a plain copy of the table, compared byte for byte (COLLATE "C"). */
static void test_collation(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);"
               "CREATE TABLE t (email text COLLATE ci PRIMARY KEY, v int, n text);"
               "INSERT INTO t SELECT format('user%%s@example.com', g), g, 'n' || g FROM "
               "generate_series(1, 500) g; CREATE TABLE ref (LIKE t INCLUDING ALL); "
               "INSERT INTO ref SELECT * FROM t");
    PGconn *ctl;
    h_mig m;
    long long w, id = copy_done(&h_eng_case.px, NULL, "ALTER TABLE t ALTER COLUMN v TYPE bigint", &ctl,
                                &m, &w);
    PGconn *app = h_eng_keep(&h_eng_case, h_connect(h_conninfo_proxy_db(&h_eng_case.px, h_eng_case.db, NULL)));
    static const char *const writes[] = {
        "UPDATE %s SET email = upper(email) WHERE v %% 7 = 0", /* equal under ci, not identical */
        "UPDATE %s SET v = v + 1000, n = NULL WHERE v %% 5 = 0",
        "DELETE FROM %s WHERE v %% 11 = 0",
        "INSERT INTO %s SELECT format('NEW%%s@example.com', g), -g, 'x' FROM generate_series(1, 20) g",
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM %1$s; UPDATE %1$s SET email = "
        "'USER3@EXAMPLE.COM', v = 3 WHERE email = 'user3@example.com'; COMMIT"};
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        h_execf(app, writes[i], "t");
        h_execf(d, writes[i], "ref");
    }
    PQclear(h_ctl_ok(ctl, "REVERT MIGRATION %lld", id));
    h_mig_wait(ctl, w, "done", -1, 120000, &m);
    assert_string_equal(h_qtext(d, (char[64]){0}, 64, "SELECT format_type(atttypid, atttypmod) FROM "
                                "pg_attribute WHERE attrelid = 't'::regclass AND attname = 'v'"),
                        "integer");
    const char *diff = "SELECT count(*) FROM (SELECT email COLLATE \"C\", v, n FROM %s EXCEPT ALL "
                       "SELECT email COLLATE \"C\", v, n FROM %s) x";
    long long missing = h_qint(d, diff, "ref", "t"), extra = h_qint(d, diff, "t", "ref");
    if (missing || extra)
        h_eng_fail("after REVERT: %lld rows of the oracle missing from t, %lld extra", missing, extra);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM t WHERE email COLLATE \"C\" = 'USER3@EXAMPLE.COM'"), 1);
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* A change with a USING expression has no exact inverse: its swap opens no window (and no
 * window was prepared for it), revertible says why and REVERT is refused. */
static void test_no_inverse(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM "
               "generate_series(1, 100) g");
    PGconn *ctl;
    h_mig m;
    long long w, id = copy_done(&h_eng_case.px, NULL, "ALTER TABLE t ALTER COLUMN v TYPE bigint USING "
                                "v * 2", &ctl, &m, &w);
    assert_int_equal(w, 0);
    assert_int_equal(h_qint(d, "SELECT sum(v) FROM t"), 10100);
    expect_refused(ctl, id, "no: no exact inverse: column v is computed", "", "no exact inverse");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 't'::regclass AND "
                               "tgname LIKE 'pgcutover%%'"), 0);
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        H_ENG_CASE(test_refused, "eng_revcopy_refused"),
        H_ENG_CASE(test_expire, "eng_revcopy_expire"),
        H_ENG_CASE(test_bound, "eng_revcopy_bound"),
        H_ENG_CASE(test_collation, "eng_revcopy_coll"),
        H_ENG_CASE(test_no_inverse, "eng_revcopy_noinv"),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
