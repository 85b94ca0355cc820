/* test_osc_stmt.c — the operator's ALTER TABLE read with the real parser: accepted
 * forms, each refusal with its SQLSTATE, and retargeting at the shadow table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "osc_stmt.h"

static void test_accepts_several_subcommands(void **state)
{
    (void)state;
    osc_stmt s;
    char code[6], err[256];
    assert_true(osc_stmt_parse("ALTER TABLE public.accounts ALTER COLUMN abalance TYPE bigint, "
                               "ADD COLUMN note text DEFAULT ';', DROP COLUMN filler",
                               &s, code, err, sizeof err));
    assert_string_equal(s.schema, "public");
    assert_string_equal(s.table, "accounts");
    assert_int_equal(s.ncmds, 3);
    assert_int_equal(s.cmds[0].kind, OSC_CMD_ALTER_TYPE);
    assert_string_equal(s.cmds[0].column, "abalance");
    assert_false(s.cmds[0].has_using);
    assert_int_equal(s.cmds[1].kind, OSC_CMD_ADD_COLUMN);
    assert_string_equal(s.cmds[1].column, "note");
    assert_int_equal(s.cmds[2].kind, OSC_CMD_DROP_COLUMN);
    osc_stmt_free(&s);
}

static void test_using_and_rename_and_unqualified(void **state)
{
    (void)state;
    osc_stmt s;
    char code[6], err[256];
    assert_true(osc_stmt_parse("alter table t alter column c type int using c::int", &s, code,
                               err, sizeof err));
    assert_null(s.schema);
    assert_true(s.cmds[0].has_using);
    assert_string_equal(s.cmds[0].using_expr, "c::int");
    assert_string_equal(s.cmds[0].type_name, "int");
    osc_stmt_free(&s);
    assert_true(osc_stmt_parse("ALTER TABLE t RENAME COLUMN a TO b", &s, code, err, sizeof err));
    assert_int_equal(s.cmds[0].kind, OSC_CMD_RENAME_COLUMN);
    assert_string_equal(s.cmds[0].column, "a");
    assert_string_equal(s.cmds[0].new_name, "b");
    osc_stmt_free(&s);
}

static void refused(const char *sql, const char *want_code, const char *want_text)
{
    osc_stmt s;
    char code[6], err[256];
    assert_false(osc_stmt_parse(sql, &s, code, err, sizeof err));
    assert_string_equal(code, want_code);
    if (strstr(err, want_text) == NULL)
        fail_msg("%s: error \"%s\" lacks \"%s\"", sql, err, want_text);
    assert_null(s.table); /* nothing left allocated */
}

/* The USING expression and the new type come back as SQL text the engine can splice
 * into its copy statements: quoting, operators and typmods survive the deparse. */
static void test_using_expression_text(void **state)
{
    (void)state;
    osc_stmt s;
    char code[6], err[256];
    assert_true(osc_stmt_parse("ALTER TABLE t ALTER COLUMN \"Amount\" TYPE numeric(12,2) "
                               "USING (\"Amount\" / 100.0) + coalesce(t.fee, 0), "
                               "ALTER COLUMN s TYPE varchar(10)",
                               &s, code, err, sizeof err));
    assert_int_equal(s.ncmds, 2);
    assert_string_equal(s.cmds[0].using_expr, "(\"Amount\" / 100.0) + COALESCE(t.fee, 0)");
    assert_string_equal(s.cmds[0].type_name, "numeric(12, 2)");
    assert_null(s.cmds[1].using_expr);
    assert_string_equal(s.cmds[1].type_name, "varchar(10)");
    osc_stmt_free(&s);
}

static void test_refusals(void **state)
{
    (void)state;
    refused("ALTER TABLE t ADD COLUMN", "42601", "syntax error");
    refused("SELECT 1", "42601", "not an ALTER TABLE");
    refused("ALTER TABLE a ADD COLUMN x int; ALTER TABLE b ADD COLUMN y int", "42601",
            "several statements");
    refused("", "42601", "empty");
    refused("ALTER TABLE t SET TABLESPACE fast", "0A000", "SET TABLESPACE");
    refused("ALTER TABLE t SET LOGGED", "0A000", "LOGGED");
    refused("ALTER TABLE t SET UNLOGGED", "0A000", "LOGGED");
    refused("ALTER TABLE p ATTACH PARTITION c FOR VALUES IN (1)", "0A000", "partition");
    refused("ALTER TABLE t INHERIT parent", "0A000", "inheritance");
    refused("ALTER TABLE t ALTER COLUMN c OPTIONS (SET x 'y')", "0A000", "foreign tables");
    refused("ALTER TABLE t RENAME TO u", "0A000", "RENAME COLUMN");
    refused("ALTER INDEX i RENAME TO j", "0A000", "RENAME COLUMN");
    refused("ALTER VIEW v ALTER COLUMN c SET DEFAULT 1", "42601", "not an ALTER TABLE");
}

/* Catalog-only subcommands are accepted, and marked so (osc_plan_catalog_only). */
static void test_catalog_only_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *sql;
        osc_cmd_kind kind;
    } cases[] = {
        {"ALTER TABLE t ENABLE ROW LEVEL SECURITY", OSC_CMD_CATALOG},
        {"ALTER TABLE t DISABLE TRIGGER trg", OSC_CMD_CATALOG},
        {"ALTER TABLE t OWNER TO bob", OSC_CMD_CATALOG},
        {"ALTER TABLE t REPLICA IDENTITY FULL", OSC_CMD_CATALOG},
        {"ALTER TABLE t SET (fillfactor = 70)", OSC_CMD_CATALOG},
        {"ALTER TABLE t VALIDATE CONSTRAINT c", OSC_CMD_VALIDATE_CONSTRAINT},
        {"ALTER TABLE t ADD COLUMN c int", OSC_CMD_ADD_COLUMN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        osc_stmt st;
        char code[6], err[256];
        assert_true(osc_stmt_parse(cases[i].sql, &st, code, err, sizeof err));
        assert_int_equal(st.ncmds, 1);
        assert_int_equal(st.cmds[0].kind, cases[i].kind);
        osc_stmt_free(&st);
    }
}

/* NOT VALID for CHECK and FOREIGN KEY, SET NOT NULL left out (the caller's helper CHECKs). */
static void test_not_valid(void **state)
{
    (void)state;
    char err[256];
    char *q = osc_stmt_not_valid("ALTER TABLE t ALTER COLUMN a SET NOT NULL, ADD CONSTRAINT c CHECK "
                                 "(b > 0), ADD FOREIGN KEY (r) REFERENCES u (id), ADD COLUMN n int",
                                 err, sizeof err);
    assert_non_null(q);
    assert_null(strstr(q, "SET NOT NULL"));
    assert_non_null(strstr(q, "CHECK (b > 0) NOT VALID"));
    assert_non_null(strstr(q, "REFERENCES u (id) NOT VALID"));
    assert_non_null(strstr(q, "ADD COLUMN n int"));
    free(q);
    q = osc_stmt_not_valid("ALTER TABLE t ALTER COLUMN a SET NOT NULL", err, sizeof err);
    assert_non_null(q);
    assert_string_equal(q, ""); /* nothing left */
    free(q);
    assert_null(osc_stmt_not_valid("CREATE INDEX ON t (a)", err, sizeof err));
}

static void test_retarget_rewrites_only_the_relation(void **state)
{
    (void)state;
    char err[256];
    char *q = osc_stmt_retarget("ALTER TABLE accounts ADD COLUMN note text DEFAULT 'accounts'",
                                "pgcutover", "accounts_1_new", err, sizeof err);
    assert_non_null(q);
    assert_non_null(strstr(q, "pgcutover.accounts_1_new"));
    assert_non_null(strstr(q, "'accounts'")); /* the literal is untouched */
    free(q);
    q = osc_stmt_retarget("ALTER TABLE s.t RENAME COLUMN a TO b", "pgcutover", "t_2_new", err,
                          sizeof err);
    assert_non_null(q);
    assert_string_equal(q, "ALTER TABLE pgcutover.t_2_new RENAME COLUMN a TO b");
    free(q);
    assert_null(osc_stmt_retarget("ALTER TABLE", "a", "b", err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_several_subcommands),
        cmocka_unit_test(test_using_and_rename_and_unqualified),
        cmocka_unit_test(test_using_expression_text),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_catalog_only_kinds),
        cmocka_unit_test(test_not_valid),
        cmocka_unit_test(test_retarget_rewrites_only_the_relation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
