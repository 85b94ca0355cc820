/*
 * test_engine_revert.c — REVERT MIGRATION n of the strategies with an exact inverse
 * (issue 16, "Reverts of the other strategies"): every case changes a table through the
 * console, reverts it, and compares the table's catalog (an independent query: columns
 * with types, NOT NULL and defaults; constraints with definitions and validity; indexes)
 * with the one taken before the change.
 *
 *   add_column  instant ADD COLUMN … DEFAULT: SHOW MIGRATION says revertible only with
 *               data loss; REVERT without ACCEPT DATA LOSS is refused (22023) and changes
 *               nothing; PLAN REVERT shows the DROP COLUMN; with it the column goes; a
 *               second REVERT is refused (55000, reverted already).
 *   columns     RENAME COLUMN, SET DEFAULT and SET NOT NULL (validate), each reverted in
 *               the reverse order: a later change of the same table is reverted first
 *               (reverting the earlier one before is refused, 0A000, naming it).
 *   objects     CREATE INDEX (concurrent), ADD CONSTRAINT … CHECK (validate) and DROP
 *               CONSTRAINT of an existing one (instant): reverted, the dropped constraint
 *               added again with its definition (and validated).
 *   refused     DROP COLUMN (its data is gone): 0A000 with the reason, SHOW MIGRATION's
 *               revertible says "no: …"; nothing changes. (A copy type change after it
 *               says its revert window is open: test_engine_revert_copy.) An ADD
 *               COLUMN followed by a change made directly (not through pgcutover): refused
 *               until the table is as the migration left it, then reverted.
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

static h_proxy px;

static const char catalog_sql[] =
    "SELECT coalesce((SELECT string_agg(format('%%s %%s %%s %%s', attname, format_type(atttypid, "
    "atttypmod), attnotnull, pg_get_expr(d.adbin, d.adrelid)), '; ' ORDER BY attnum) FROM "
    "pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE "
    "a.attrelid = '%s'::regclass AND attnum > 0 AND NOT attisdropped), '') || ' | ' || coalesce(("
    "SELECT string_agg(x, '; ' ORDER BY x) FROM (SELECT conname || ' ' || pg_get_constraintdef(oid) "
    "|| ' ' || convalidated FROM pg_constraint WHERE conrelid = '%s'::regclass) k(x)), '') || ' | ' "
    "|| coalesce((SELECT string_agg(x, '; ' ORDER BY x) FROM (SELECT pg_get_indexdef(indexrelid) "
    "|| ' ' || indisvalid FROM pg_index WHERE indrelid = '%s'::regclass) i(x)), '')";

static void catalog(PGconn *d, const char *t, char *out, size_t len)
{
    h_qtext(d, out, len, catalog_sql, t, t, t);
}

/* The newest migration's id. */
static long long newest(PGconn *ctl)
{
    PGresult *r = h_ctl_ok(ctl, "SHOW MIGRATIONS");
    long long id = atoll(PQgetvalue(r, 0, h_col(r, "id")));
    PQclear(r);
    return id;
}

/* Run the change on the console (it must finish at once: instant, validate, concurrent);
 * its migration id. */
static long long change(PGconn *ctl, const char *sql)
{
    PQclear(h_ctl_ok(ctl, "%s", sql));
    return newest(ctl);
}

static void expect_revertible(PGconn *ctl, long long id, const char *prefix)
{
    PGresult *r = h_ctl_ok(ctl, "SHOW MIGRATION %lld", id);
    const char *v = PQgetvalue(r, 0, h_col(r, "revertible"));
    if (strncmp(v, prefix, strlen(prefix)) != 0)
        h_eng_fail("migration %lld revertible \"%s\", want \"%s…\"", id, v, prefix);
    PQclear(r);
}

static void expect_error(PGconn *ctl, const char *cmd, const char *state, const char *needle)
{
    char code[6], msg[1024];
    h_ctl_err(ctl, cmd, code, msg, sizeof msg);
    if (strcmp(code, state) != 0 || strstr(msg, needle) == NULL)
        h_eng_fail("%s: %s %s, want %s with \"%s\"", cmd, code, msg, state, needle);
}

static void test_add_column(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case), *ctl = h_eng_console(&h_eng_case, &px);
    h_execf(d, "CREATE TABLE t (id int PRIMARY KEY, a int); INSERT INTO t SELECT g, g FROM "
               "generate_series(1, 100) g");
    char before[4096], after[4096], changed[4096];
    catalog(d, "t", before, sizeof before);
    long long id = change(ctl, "ALTER TABLE t ADD COLUMN note text DEFAULT 'x'");
    expect_revertible(ctl, id, "yes, dropping column note");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "REVERT MIGRATION %lld", id);
    expect_error(ctl, cmd, "22023", "drops column note");
    catalog(d, "t", changed, sizeof changed);
    assert_string_not_equal(changed, before);
    PGresult *r = h_ctl_ok(ctl, "PLAN REVERT MIGRATION %lld", id);
    assert_int_equal(PQntuples(r), 1);
    assert_non_null(strstr(PQgetvalue(r, 0, h_col(r, "sql")), "DROP COLUMN note"));
    assert_string_equal(PQgetvalue(r, 0, h_col(r, "strategy")), "instant");
    PQclear(r);
    PQclear(h_ctl_ok(ctl, "REVERT MIGRATION %lld ACCEPT DATA LOSS", id));
    catalog(d, "t", after, sizeof after);
    assert_string_equal(after, before);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM t"), 100);
    expect_revertible(ctl, id, "no: it was reverted already");
    expect_error(ctl, cmd, "55000", "reverted already");
}

static void test_columns(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case), *ctl = h_eng_console(&h_eng_case, &px);
    h_execf(d, "CREATE TABLE t (id int PRIMARY KEY, a int, b int); INSERT INTO t SELECT g, g, g "
               "FROM generate_series(1, 100) g");
    char c0[4096], c1[4096], c2[4096], now[4096];
    catalog(d, "t", c0, sizeof c0);
    long long m1 = change(ctl, "ALTER TABLE t RENAME COLUMN a TO a2");
    catalog(d, "t", c1, sizeof c1);
    long long m2 = change(ctl, "ALTER TABLE t ALTER COLUMN b SET DEFAULT 5");
    catalog(d, "t", c2, sizeof c2);
    long long m3 = change(ctl, "ALTER TABLE t ALTER COLUMN b SET NOT NULL");
    char cmd[64];
    snprintf(cmd, sizeof cmd, "REVERT MIGRATION %lld", m1);
    char want[64];
    snprintf(want, sizeof want, "migration %lld changed the table after it", m2);
    expect_error(ctl, cmd, "0A000", want);
    expect_revertible(ctl, m3, "yes");
    PQclear(h_ctl_ok(ctl, "REVERT MIGRATION %lld", m3));
    catalog(d, "t", now, sizeof now);
    assert_string_equal(now, c2);
    PQclear(h_ctl_ok(ctl, "REVERT MIGRATION %lld", m2));
    catalog(d, "t", now, sizeof now);
    assert_string_equal(now, c1);
    PQclear(h_ctl_ok(ctl, "REVERT MIGRATION %lld", m1));
    catalog(d, "t", now, sizeof now);
    assert_string_equal(now, c0);
    assert_int_equal(h_qint(d, "SELECT sum(a) FROM t"), 5050); /* the data of the renamed column */
}

static void test_objects(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case), *ctl = h_eng_console(&h_eng_case, &px);
    h_execf(d, "CREATE TABLE t (id int PRIMARY KEY, a int CONSTRAINT a_pos CHECK (a > 0)); "
               "INSERT INTO t SELECT g, g FROM generate_series(1, 100) g");
    char c0[4096], now[4096];
    catalog(d, "t", c0, sizeof c0);
    long long m1 = change(ctl, "CREATE INDEX t_a ON t (a)");
    PGresult *r = h_ctl_ok(ctl, "PLAN REVERT MIGRATION %lld", m1);
    assert_string_equal(PQgetvalue(r, 0, h_col(r, "strategy")), "concurrent");
    PQclear(r);
    PQclear(h_ctl_ok(ctl, "REVERT MIGRATION %lld", m1));
    catalog(d, "t", now, sizeof now);
    assert_string_equal(now, c0);
    long long m2 = change(ctl, "ALTER TABLE t ADD CONSTRAINT a_small CHECK (a < 1000)");
    PQclear(h_ctl_ok(ctl, "REVERT MIGRATION %lld", m2));
    catalog(d, "t", now, sizeof now);
    assert_string_equal(now, c0);
    long long m3 = change(ctl, "ALTER TABLE t DROP CONSTRAINT a_pos");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_constraint WHERE conname = 'a_pos'"), 0);
    PQclear(h_ctl_ok(ctl, "REVERT MIGRATION %lld", m3));
    catalog(d, "t", now, sizeof now);
    assert_string_equal(now, c0); /* a_pos again, validated */
}

static void test_refused(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case), *ctl = h_eng_console(&h_eng_case, &px);
    h_execf(d, "CREATE TABLE t (id int PRIMARY KEY, a int, b int); INSERT INTO t SELECT g, g, g "
               "FROM generate_series(1, 100) g");
    long long m1 = change(ctl, "ALTER TABLE t DROP COLUMN b");
    expect_revertible(ctl, m1, "no: column b was dropped");
    char cmd[64], now[4096], after[4096];
    snprintf(cmd, sizeof cmd, "REVERT MIGRATION %lld", m1);
    catalog(d, "t", now, sizeof now);
    expect_error(ctl, cmd, "0A000", "column b was dropped: its data is gone");
    catalog(d, "t", after, sizeof after);
    assert_string_equal(after, now);
    long long m2 = h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN a TYPE bigint");
    h_mig m;
    h_mig_wait(ctl, m2, "done", -1, 120000, &m);
    /* a copy: its revert window (test_engine_revert_copy) — but DROP COLUMN b came first */
    expect_revertible(ctl, m2, "yes: revert window open");
    expect_error(ctl, "REVERT MIGRATION x", "42601", "syntax");
    /* a change made directly after the migration: the inverse would undo it too */
    long long m3 = change(ctl, "ALTER TABLE t ADD COLUMN x int");
    h_execf(d, "ALTER TABLE t ADD COLUMN y int");
    snprintf(cmd, sizeof cmd, "REVERT MIGRATION %lld ACCEPT DATA LOSS", m3);
    expect_error(ctl, cmd, "0A000", "the table changed since the migration");
    h_execf(d, "ALTER TABLE t DROP COLUMN y");
    PQclear(h_ctl_ok(ctl, "%s", cmd));
    assert_int_equal(h_qint(d, "SELECT count(*) FROM information_schema.columns WHERE table_name = "
                               "'t' AND column_name = 'x'"), 0);
}

static int group_setup(void **state)
{
    (void)state;
    h_proxy_start(&px, NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    h_eng_stop_group_proxy(&px);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        H_ENG_CASE(test_add_column, "eng_rev_add"),
        H_ENG_CASE(test_columns, "eng_rev_cols"),
        H_ENG_CASE(test_objects, "eng_rev_obj"),
        H_ENG_CASE(test_refused, "eng_rev_refused"),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
