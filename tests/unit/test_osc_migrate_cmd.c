/*
 * test_osc_migrate_cmd.c — unit tests of shadow/osc_migrate_cmd.c: the console's MIGRATE
 * command read back exactly as `pgcutover migrate` writes it (options, SQL literals with
 * doubled quotes, dollar quotes whose text holds other dollar quotes, semicolons and the
 * word FILE), and every malformed form refused with the byte where it went wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "osc_migrate_cmd.h"

static void test_full_command(void **state)
{
    (void)state;
    const char *cmd =
        "migrate Up LAYOUT 'golang-migrate' TO '20' STEPS 3 ACCEPT 'it''s' ACCEPT '7' history 'gm''v'\n"
        "FILE UP '1' 'create users' $pgc$CREATE TABLE users (id int);\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;$pgc$\n"
        "FILE DOWN '1' 'create users' $pgc1$DROP TABLE users; -- FILE UP 'x' $pgc$ $pgc1$\n"
        "file repeatable '' 'views' 'CREATE VIEW v AS SELECT ''a;b'''";
    osc_mcmd m;
    char err[256];
    assert_true(osc_mcmd_parse(cmd, &m, err, sizeof err));
    assert_int_equal(m.verb, OSC_MIG_UP);
    assert_string_equal(m.layout, "golang-migrate");
    assert_string_equal(m.history, "gm'v");
    assert_string_equal(m.to, "20");
    assert_int_equal(m.steps, 3);
    assert_int_equal(m.naccept, 2);
    assert_string_equal(m.accept[0], "it's");
    assert_string_equal(m.accept[1], "7");
    assert_int_equal(m.nfiles, 3);
    assert_int_equal(m.files[0].kind, OSC_MFILE_UP);
    assert_string_equal(m.files[0].version, "1");
    assert_string_equal(m.files[0].name, "create users");
    assert_string_equal(m.files[0].text, "CREATE TABLE users (id int);\n"
                                         "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;");
    assert_int_equal(m.files[1].kind, OSC_MFILE_DOWN);
    assert_string_equal(m.files[1].text, "DROP TABLE users; -- FILE UP 'x' $pgc$ ");
    assert_int_equal(m.files[2].kind, OSC_MFILE_REPEATABLE);
    assert_string_equal(m.files[2].version, "");
    assert_string_equal(m.files[2].text, "CREATE VIEW v AS SELECT 'a;b'");
    osc_mcmd_free(&m);
    assert_null(m.files);
}

static void test_verbs_and_empty(void **state)
{
    (void)state;
    static const struct {
        const char *cmd;
        osc_mig_verb verb;
    } cases[] = {{"MIGRATE STATUS", OSC_MIG_STATUS},
                 {"  migrate   down  STEPS 2", OSC_MIG_DOWN},
                 {"MIGRATE PLAN", OSC_MIG_PLAN},
                 {"MIGRATE ADOPT", OSC_MIG_ADOPT}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        osc_mcmd m;
        char err[256];
        assert_true(osc_mcmd_parse(cases[i].cmd, &m, err, sizeof err));
        assert_int_equal(m.verb, cases[i].verb);
        assert_int_equal(m.nfiles, 0);
        assert_null(m.history); /* not given: the tool's own table name */
        osc_mcmd_free(&m);
    }
    osc_mcmd r;
    char err[256];
    assert_true(osc_mcmd_parse("MIGRATE DOWN REVERT ACCEPT DATA LOSS ACCEPT '3'", &r, err, sizeof err));
    assert_true(r.revert);
    assert_true(r.accept_loss);
    assert_int_equal(r.naccept, 1);
    assert_string_equal(r.accept[0], "3");
    osc_mcmd_free(&r);
    assert_false(osc_mcmd_parse("MIGRATE DOWN ACCEPT DATA", &r, err, sizeof err));
    assert_non_null(strstr(err, "ACCEPT DATA LOSS expected"));
    assert_true(osc_mcmd_is("migrate status"));
    assert_true(osc_mcmd_is("  MIGRATE"));
    assert_false(osc_mcmd_is("MIGRATED"));
    assert_false(osc_mcmd_is("SHOW MIGRATIONS"));
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *cmd, *want;
    } cases[] = {
        {"MIGRATE", "MIGRATE UP|DOWN|STATUS|PLAN|ADOPT expected"},
        {"MIGRATE SIDEWAYS", "MIGRATE UP|DOWN|STATUS|PLAN|ADOPT expected"},
        {"MIGRATE UP STEPS 0", "positive integer"},
        {"MIGRATE UP STEPS x", "positive integer"},
        {"MIGRATE UP TO 20", "a string expected"},
        {"MIGRATE UP FILE UP '1' 'a' 'unterminated", "unterminated string"},
        {"MIGRATE UP FILE UP '1' 'a' $x$ never closed", "unterminated dollar quote $x$"},
        {"MIGRATE UP FILE UP '1' 'a' $1$ x $1$", "tag"},
        {"MIGRATE UP FILE SIDEWAYS '1' 'a' 'x'", "FILE UP|DOWN|REPEATABLE expected"},
        {"MIGRATE UP FILE UP '1'", "FILE name: a string expected"},
        {"MIGRATE UP BOGUS", "unexpected \"BOGUS\""},
        {"SHOW MIGRATIONS", "not a MIGRATE command"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        osc_mcmd m;
        char err[256] = "";
        if (osc_mcmd_parse(cases[i].cmd, &m, err, sizeof err))
            fail_msg("accepted: %s", cases[i].cmd);
        if (strstr(err, cases[i].want) == NULL || strstr(err, "at byte") == NULL)
            fail_msg("%s: error \"%s\" lacks \"%s\" or the byte", cases[i].cmd, err, cases[i].want);
        assert_null(m.files);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_command),
        cmocka_unit_test(test_verbs_and_empty),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
