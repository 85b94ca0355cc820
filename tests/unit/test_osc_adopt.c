/*
 * test_osc_adopt.c — unit tests of the pure part of shadow/osc_adopt.c: Flyway's version
 * order and checksum, and what golang-migrate, Flyway and Prisma histories (folded row by
 * row as osc_adopt_read folds the tables) say of each file: applied, failed (dirty),
 * changed, or not — undo, delete, baseline, repeatables by checksum, Prisma attempts
 * rolled back and applied again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "osc_adopt.h"

static osc_mfile up(const char *version, const char *text)
{
    return (osc_mfile){OSC_MFILE_UP, (char *)version, (char *)"x", (char *)text};
}

static osc_mfile rep(const char *name, const char *text)
{
    return (osc_mfile){OSC_MFILE_REPEATABLE, (char *)"", (char *)name, (char *)text};
}

static osc_foreign_state_t st(const osc_foreign *f, osc_mfile file)
{
    return osc_foreign_state(f, &file);
}

static void test_flyway_compare(void **state)
{
    (void)state;
    assert_int_equal(osc_flyway_compare("1", "1.0"), 0);
    assert_int_equal(osc_flyway_compare("1.0.0", "1"), 0);
    assert_int_equal(osc_flyway_compare("1_2", "1.2"), 0);
    assert_int_equal(osc_flyway_compare("01.002", "1.2"), 0);
    assert_true(osc_flyway_compare("1.9", "1.10") < 0);
    assert_true(osc_flyway_compare("1.10", "1.9") > 0);
    assert_true(osc_flyway_compare("1.1", "1.1.1") < 0);
    assert_true(osc_flyway_compare("2", "1.10") > 0);
    assert_true(osc_flyway_compare("10", "9.9.9") > 0);
    /* numbers longer than any integer type still compare */
    assert_true(
        osc_flyway_compare("123456789012345678901234567890", "123456789012345678901234567891") < 0);
    assert_int_equal(osc_flyway_compare("20240101120000", "20240101120000.0"), 0);
    /* not versions: still a deterministic order, never equal to a number */
    assert_true(osc_flyway_compare("1a", "1") != 0);
    assert_int_equal(osc_flyway_compare("1a", "1a"), 0);
    assert_int_equal(osc_flyway_compare("", ""), 0);
}

static void test_flyway_checksum(void **state)
{
    (void)state;
    /* the CRC-32 check value: crc32("123456789") = 0xCBF43926, stored as a signed int */
    assert_int_equal(osc_flyway_checksum("123456789"), (int32_t)0xCBF43926u);
    assert_int_equal(osc_flyway_checksum(""), 0);
    /* line breaks do not count (Flyway reads lines), whatever their style */
    int32_t lf = osc_flyway_checksum("CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n");
    assert_int_equal(
        osc_flyway_checksum("CREATE TABLE t (id int);\r\nINSERT INTO t VALUES (1);\r\n"), lf);
    assert_int_equal(osc_flyway_checksum("CREATE TABLE t (id int);INSERT INTO t VALUES (1);"), lf);
    assert_int_equal(osc_flyway_checksum("CREATE TABLE t (id int);\rINSERT INTO t VALUES (1);"),
                     lf);
    /* a byte order mark at the start does not count; elsewhere it does */
    assert_int_equal(osc_flyway_checksum("\xEF\xBB\xBF"
                                         "123456789"),
                     (int32_t)0xCBF43926u);
    assert_int_not_equal(osc_flyway_checksum("1\xEF\xBB\xBF"
                                             "23456789"),
                         (int32_t)0xCBF43926u);
    /* other whitespace does */
    assert_int_not_equal(osc_flyway_checksum("CREATE TABLE t (id int); INSERT INTO t VALUES (1);"),
                         lf);
}

static void test_golang(void **state)
{
    (void)state;
    osc_foreign f = {.found = true, .tool = OSC_TOOL_GOLANG, .has_version = true, .version = "2"};
    assert_int_equal(st(&f, up("1", "")), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, up("2", "")), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, up("0002", "")), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, up("3", "")), OSC_FOREIGN_NOT);
    assert_int_equal(st(&f, up("10", "")), OSC_FOREIGN_NOT); /* numeric, not "10" < "2" */
    osc_mfile down = {OSC_MFILE_DOWN, (char *)"1", (char *)"x", (char *)""};
    assert_int_equal(osc_foreign_state(&f, &down), OSC_FOREIGN_NOT);
    f.dirty = true;
    assert_int_equal(st(&f, up("2", "")), OSC_FOREIGN_FAILED);
    assert_int_equal(st(&f, up("1", "")), OSC_FOREIGN_APPLIED);
    /* big versions (timestamps, over 2^63) */
    snprintf(f.version, sizeof f.version, "%s", "18446744073709551615");
    f.dirty = false;
    assert_int_equal(st(&f, up("18446744073709551614", "")), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, up("9", "")), OSC_FOREIGN_APPLIED);
    /* an empty table (everything reverted), a nil dirty version, or no table */
    f.has_version = false;
    assert_int_equal(st(&f, up("1", "")), OSC_FOREIGN_NOT);
    f.has_version = true;
    f.dirty = true;
    snprintf(f.version, sizeof f.version, "-1");
    assert_int_equal(st(&f, up("1", "")), OSC_FOREIGN_NOT);
    osc_foreign none = {0};
    assert_int_equal(st(&none, up("1", "")), OSC_FOREIGN_NOT);
    assert_string_equal(osc_foreign_name(&none), "");
}

static const char *const v1 = "CREATE TABLE t (id int);\n";
static const char *const v11 = "ALTER TABLE t ADD COLUMN a int;\n";

static void flyway_row(osc_foreign *f, const char *version, const char *desc, const char *type,
                       const char *text, bool success)
{
    char sum[16];
    snprintf(sum, sizeof sum, "%d", text ? osc_flyway_checksum(text) : 0);
    assert_true(osc_foreign_flyway_row(f, version, desc, type, text ? sum : NULL, success,
                                       "2024-01-01 00:00:00+00", "2024-01-01 00:00:01+00", 1000));
}

static void test_flyway_history(void **state)
{
    (void)state;
    osc_foreign f = {.found = true, .tool = OSC_TOOL_FLYWAY};
    flyway_row(&f, "0", "<< Flyway Schema Creation >>", "SCHEMA", NULL, true);
    flyway_row(&f, "1", "create t", "SQL", v1, true);
    flyway_row(&f, "1.1", "add a", "SQL", v11, true);
    flyway_row(&f, "2", "bad", "SQL", "x", false);
    flyway_row(&f, "3", "undone", "SQL", "y", true);
    flyway_row(&f, "3", "undone", "UNDO_SQL", "u", true);
    flyway_row(&f, "4", "deleted", "SQL", "z", true);
    flyway_row(&f, "4", "deleted", "DELETE", NULL, true);
    flyway_row(&f, "5", "java", "JDBC", NULL, true);
    assert_int_equal(st(&f, up("0", "")), OSC_FOREIGN_NOT); /* the SCHEMA row is no migration */
    assert_int_equal(st(&f, up("1", v1)), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, up("1.0", v1)), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, up("1_1", v11)), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, up("1.1", "ALTER TABLE t ADD COLUMN a bigint;\n")),
                     OSC_FOREIGN_CHANGED);
    assert_int_equal(st(&f, up("1.1", "ALTER TABLE t ADD COLUMN a int;\r\n")), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, up("2", "x")), OSC_FOREIGN_FAILED);
    assert_int_equal(st(&f, up("3", "y")), OSC_FOREIGN_NOT);
    assert_int_equal(st(&f, up("4", "z")), OSC_FOREIGN_NOT);
    assert_int_equal(st(&f, up("5", "anything")),
                     OSC_FOREIGN_APPLIED); /* no checksum: none to compare */
    assert_int_equal(st(&f, up("1.2", "")), OSC_FOREIGN_NOT);
    /* the failed version fixed (repair removed the row, migrate applied it): the latest row decides
     */
    flyway_row(&f, "2", "bad", "SQL", "x", true);
    flyway_row(&f, "3", "undone", "SQL", "y", true);
    assert_int_equal(st(&f, up("2", "x")), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, up("3", "y")), OSC_FOREIGN_APPLIED);
    /* a failed undo is a failure */
    flyway_row(&f, "3", "undone", "UNDO_SQL", "u", false);
    assert_int_equal(st(&f, up("3", "y")), OSC_FOREIGN_FAILED);
    osc_foreign_free(&f);
    assert_int_equal(f.n, 0);
}

static void test_flyway_repeatable(void **state)
{
    (void)state;
    const char *view1 = "CREATE OR REPLACE VIEW v AS SELECT 1;\n";
    const char *view2 = "CREATE OR REPLACE VIEW v AS SELECT 2;\n";
    osc_foreign f = {.found = true, .tool = OSC_TOOL_FLYWAY};
    flyway_row(&f, NULL, "my view", "SQL", view1, true);
    assert_int_equal(st(&f, rep("my view", view1)), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, rep("my view", view2)), OSC_FOREIGN_CHANGED); /* outdated */
    assert_int_equal(st(&f, rep("other", view1)), OSC_FOREIGN_NOT);
    assert_int_equal(st(&f, up("1", view1)), OSC_FOREIGN_NOT); /* a repeatable is no version */
    /* re-applied with the new text: the latest row's checksum counts */
    flyway_row(&f, NULL, "my view", "SQL", view2, true);
    assert_int_equal(st(&f, rep("my view", view2)), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, rep("my view", view1)), OSC_FOREIGN_CHANGED);
    /* a repeatable without a checksum is never up to date */
    flyway_row(&f, NULL, "no sum", "SQL", NULL, true);
    assert_int_equal(st(&f, rep("no sum", "")), OSC_FOREIGN_CHANGED);
    flyway_row(&f, NULL, "my view", "SQL", view2, false);
    assert_int_equal(st(&f, rep("my view", view2)), OSC_FOREIGN_FAILED);
    flyway_row(&f, NULL, "gone", "SQL", view1, true);
    flyway_row(&f, NULL, "gone", "DELETE", NULL, true);
    assert_int_equal(st(&f, rep("gone", view1)), OSC_FOREIGN_NOT);
    osc_foreign_free(&f);
}

static void test_flyway_baseline(void **state)
{
    (void)state;
    osc_foreign f = {.found = true, .tool = OSC_TOOL_FLYWAY};
    flyway_row(&f, "1.5", "<< Flyway Baseline >>", "BASELINE", NULL, true);
    flyway_row(&f, "2", "after", "SQL", "b", true);
    assert_true(f.has_baseline);
    assert_int_equal(st(&f, up("1", "a")), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, up("1.5", "a")), OSC_FOREIGN_APPLIED); /* up to and including it */
    assert_int_equal(st(&f, up("1.5.0", "a")), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, up("1.6", "a")), OSC_FOREIGN_NOT);
    assert_int_equal(st(&f, up("2", "b")), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, rep("r", "a")), OSC_FOREIGN_NOT); /* a baseline covers no repeatable */
    /* the highest baseline counts; a baseline migration (B3__x.sql) is one; by description too */
    flyway_row(&f, "3", "x", "SQL_BASELINE", "c", true);
    assert_int_equal(st(&f, up("2.9", "")), OSC_FOREIGN_APPLIED);
    flyway_row(&f, "4", "<< Flyway Baseline >>", "SQL", NULL, true);
    assert_string_equal(f.baseline, "4");
    flyway_row(&f, "2", "<< Flyway Baseline >>", "BASELINE", NULL, true);
    assert_string_equal(f.baseline, "4");
    /* an undone version below the baseline stays undone */
    flyway_row(&f, "1", "a", "SQL", "a", true);
    flyway_row(&f, "1", "a", "UNDO_SQL", "u", true);
    assert_int_equal(st(&f, up("1", "a")), OSC_FOREIGN_NOT);
    osc_foreign_free(&f);
}

static void test_prisma(void **state)
{
    (void)state;
    osc_foreign f = {.found = true, .tool = OSC_TOOL_PRISMA};
    assert_true(osc_foreign_prisma_row(&f, "20240101000000_init", true, false, "s", "f", 12.5));
    /* failed, resolved --rolled-back, then applied again */
    assert_true(osc_foreign_prisma_row(&f, "20240102000000_add", false, true, "s", NULL, -1));
    assert_true(osc_foreign_prisma_row(&f, "20240102000000_add", true, false, "s", "f", 3));
    /* failed and not resolved (P3009) */
    assert_true(osc_foreign_prisma_row(&f, "20240103000000_bad", false, false, "s", NULL, -1));
    /* applied, then marked rolled back: not applied */
    assert_true(osc_foreign_prisma_row(&f, "20240104000000_rb", true, true, "s", "f", 1));
    assert_int_equal(st(&f, up("20240101000000_init", "")), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, up("20240102000000_add", "")), OSC_FOREIGN_APPLIED);
    assert_int_equal(st(&f, up("20240103000000_bad", "")), OSC_FOREIGN_FAILED);
    assert_int_equal(st(&f, up("20240104000000_rb", "")), OSC_FOREIGN_NOT);
    assert_int_equal(st(&f, up("20240105000000_new", "")), OSC_FOREIGN_NOT);
    assert_int_equal(st(&f, up("20240101000000_INIT", "")), OSC_FOREIGN_NOT); /* names are exact */
    /* an unresolved failure wins over an applied attempt of the same name */
    assert_true(osc_foreign_prisma_row(&f, "20240101000000_init", false, false, "s", NULL, -1));
    assert_int_equal(st(&f, up("20240101000000_init", "")), OSC_FOREIGN_FAILED);
    osc_foreign_free(&f);
    osc_foreign_free(&f); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flyway_compare),
        cmocka_unit_test(test_flyway_checksum),
        cmocka_unit_test(test_golang),
        cmocka_unit_test(test_flyway_history),
        cmocka_unit_test(test_flyway_repeatable),
        cmocka_unit_test(test_flyway_baseline),
        cmocka_unit_test(test_prisma),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
