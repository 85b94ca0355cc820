/* test_osc_split.c — a migration file's text split into steps by the real parser
 * (osc_split.h): statements and their exact text, lines and node kinds; dollar quotes,
 * strings and comments holding ';', BEGIN and markers; BEGIN … COMMIT blocks and every
 * refusal with its line; the batched marker and where it counts; syntax errors' lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <pg_query/pg_query.pb-c.h>

#include "osc_split.h"

/* text splits; the caller osc_script_free's the result. */
static osc_script split_ok(const char *text)
{
    osc_script s;
    char code[6], err[512];
    if (!osc_split(text, &s, code, err, sizeof err))
        fail_msg("%s\n=> refused: %s %s", text, code, err);
    return s;
}

/* text is refused with code and an error that starts "line <line>: " and holds want. */
static void split_err(const char *text, const char *code_want, int line, const char *want)
{
    osc_script s;
    char code[6], err[512], prefix[32];
    if (osc_split(text, &s, code, err, sizeof err))
        fail_msg("%s\n=> accepted, %d steps", text, s.n);
    snprintf(prefix, sizeof prefix, "line %d: ", line);
    if (strcmp(code, code_want) != 0 || strncmp(err, prefix, strlen(prefix)) != 0 ||
        strstr(err, want) == NULL)
        fail_msg("%s\n=> %s \"%s\", wanted %s \"%s…%s…\"", text, code, err, code_want, prefix,
                 want);
    assert_null(s.steps); /* nothing left allocated */
    assert_int_equal(s.n, 0);
    assert_int_equal(s.nstatements, 0);
}

/* Step i of s has kind, n statements, and its statement j the text, line and tag given. */
static void assert_stmt(const osc_script *s, int i, int j, const char *text, int line, int tag)
{
    assert_true(i < s->n);
    assert_true(j < s->steps[i].nstmts);
    assert_string_equal(s->steps[i].stmts[j], text);
    assert_int_equal(s->steps[i].lines[j], line);
    assert_int_equal(s->steps[i].tags[j], tag);
}

#define NODE(x) PG_QUERY__NODE__NODE_##x

static void test_empty_and_comment_only(void **state)
{
    (void)state;
    const char *texts[] = {"",
                           " \n\t\r\n",
                           "-- only a comment; with a semicolon\n/* and ; /* "
                           "nested */ another */",
                           ";;;",
                           "\n;\n-- x\n ; ;",
                           "BEGIN; COMMIT;",
                           "-- pgcutover: a note, not the marker\n"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        osc_script s = split_ok(texts[i]);
        assert_int_equal(s.n, 0);
        assert_int_equal(s.nstatements, 0);
        assert_null(s.steps);
        osc_script_free(&s);
    }
    osc_script s;
    char code[6], err[64];
    assert_false(osc_split(NULL, &s, code, err, sizeof err));
    assert_string_equal(code, "42601");
    assert_string_equal(err, "line 1: no text");
}

static void test_text_lines_and_comments(void **state)
{
    (void)state;
    osc_script s =
        split_ok("-- header comment; with a semicolon\n"
                 "\n"
                 "/* block\n   comment */ CREATE TABLE t (a int, b text /* inner; */ "
                 "DEFAULT 'x;y'); -- trailing; comment\n"
                 "ALTER TABLE t\n"
                 "  ADD COLUMN c int -- why; it is needed\n"
                 "  ;\n"
                 "  INSERT INTO t VALUES (1, E'it\\'s; ok', $q$;$q$, \"odd;name\") /* end; */ \n"
                 "-- last comment");
    assert_int_equal(s.n, 3);
    assert_int_equal(s.nstatements, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s.steps[i].kind, OSC_STEP_ONE);
        assert_int_equal(s.steps[i].nstmts, 1);
    }
    /* leading comments dropped, interior ones kept, the trailing one (before ';') dropped */
    assert_stmt(&s, 0, 0, "CREATE TABLE t (a int, b text /* inner; */ DEFAULT 'x;y')", 4,
                NODE(CREATE_STMT));
    assert_stmt(&s, 1, 0, "ALTER TABLE t\n  ADD COLUMN c int", 5, NODE(ALTER_TABLE_STMT));
    assert_stmt(&s, 2, 0, "INSERT INTO t VALUES (1, E'it\\'s; ok', $q$;$q$, \"odd;name\")", 8,
                NODE(INSERT_STMT));
    osc_script_free(&s);
    osc_script_free(&s); /* twice: a no-op */
}

static void test_dollar_quoted_bodies(void **state)
{
    (void)state;
    const char *fn = "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
                     "BEGIN\n"
                     "  -- pgcutover:batched\n"
                     "  UPDATE x SET a = 1;\n"
                     "  COMMIT;\n"
                     "  RETURN NEW;\n"
                     "END;\n"
                     "$fn$";
    const char *atomic = "CREATE FUNCTION g() RETURNS int LANGUAGE sql\n"
                         "BEGIN ATOMIC\n"
                         "  SELECT 1;\n"
                         "  SELECT 2;\n"
                         "END";
    char text[1024];
    snprintf(text, sizeof text,
             "%s;\n"                                    /* lines 1-8 */
             "DO $$ BEGIN PERFORM 1; COMMIT; END $$;\n" /* 9 */
             "%s;\n"                                    /* 10-14 */
             "SELECT 'BEGIN;', $x$ COMMIT; $x$ ;\n"     /* 15 */
             "DO 'BEGIN ROLLBACK; END';\n",             /* 16 */
             fn, atomic);
    osc_script s = split_ok(text);
    assert_int_equal(s.n, 5);
    for (int i = 0; i < s.n; i++)
        assert_int_equal(s.steps[i].kind, OSC_STEP_ONE); /* no BEGIN inside opened a block */
    assert_stmt(&s, 0, 0, fn, 1, NODE(CREATE_FUNCTION_STMT));
    assert_stmt(&s, 1, 0, "DO $$ BEGIN PERFORM 1; COMMIT; END $$", 9, NODE(DO_STMT));
    assert_stmt(&s, 2, 0, atomic, 10, NODE(CREATE_FUNCTION_STMT));
    assert_stmt(&s, 3, 0, "SELECT 'BEGIN;', $x$ COMMIT; $x$", 15, NODE(SELECT_STMT));
    assert_stmt(&s, 4, 0, "DO 'BEGIN ROLLBACK; END'", 16, NODE(DO_STMT));
    osc_script_free(&s);
}

static void test_crlf(void **state)
{
    (void)state;
    osc_script s = split_ok("BEGIN;\r\n"
                            "ALTER TABLE t\r\n  ADD c int;\r\n"
                            "COMMIT;\r\n"
                            "-- PGCUTOVER:Batched \r\n"
                            "UPDATE t SET c = 0;\r\n"
                            "\r\n"
                            "DELETE FROM t\r\n");
    assert_int_equal(s.n, 3);
    assert_int_equal(s.nstatements, 3);
    assert_int_equal(s.steps[0].kind, OSC_STEP_BLOCK);
    assert_int_equal(s.steps[0].nstmts, 1);
    assert_stmt(&s, 0, 0, "ALTER TABLE t\r\n  ADD c int", 2, NODE(ALTER_TABLE_STMT));
    assert_int_equal(s.steps[1].kind, OSC_STEP_BATCHED);
    assert_stmt(&s, 1, 0, "UPDATE t SET c = 0", 6, NODE(UPDATE_STMT));
    assert_int_equal(s.steps[2].kind, OSC_STEP_ONE);
    assert_stmt(&s, 2, 0, "DELETE FROM t", 8, NODE(DELETE_STMT));
    osc_script_free(&s);
}

static void test_blocks(void **state)
{
    (void)state;
    osc_script s = split_ok("BEGIN;\n"                                        /* 1 */
                            "ALTER TABLE a ADD x int;\n"                      /* 2 */
                            "CREATE INDEX i ON a (x);\n"                      /* 3 */
                            "COMMIT;\n"                                       /* 4 */
                            "SELECT 1;\n"                                     /* 5 */
                            "START TRANSACTION;\n"                            /* 6 */
                            "ALTER TABLE b ADD y int;\n"                      /* 7 */
                            "END;\n"                                          /* 8 */
                            "BEGIN WORK; COMMIT WORK;\n"                      /* 9: empty */
                            "begin transaction read write, not deferrable;\n" /* 10 */
                            "  DROP TABLE c;\n"                               /* 11 */
                            "commit transaction;\n"                           /* 12 */
                            "START TRANSACTION; UPDATE d SET z = 1; COMMIT"); /* 13 */
    assert_int_equal(s.n, 5);
    assert_int_equal(s.nstatements, 6);
    assert_int_equal(s.steps[0].kind, OSC_STEP_BLOCK);
    assert_int_equal(s.steps[0].nstmts, 2);
    assert_stmt(&s, 0, 0, "ALTER TABLE a ADD x int", 2, NODE(ALTER_TABLE_STMT));
    assert_stmt(&s, 0, 1, "CREATE INDEX i ON a (x)", 3, NODE(INDEX_STMT));
    assert_int_equal(s.steps[1].kind, OSC_STEP_ONE);
    assert_stmt(&s, 1, 0, "SELECT 1", 5, NODE(SELECT_STMT));
    assert_int_equal(s.steps[2].kind, OSC_STEP_BLOCK);
    assert_int_equal(s.steps[2].nstmts, 1);
    assert_stmt(&s, 2, 0, "ALTER TABLE b ADD y int", 7, NODE(ALTER_TABLE_STMT));
    assert_int_equal(s.steps[3].kind, OSC_STEP_BLOCK);
    assert_int_equal(s.steps[3].nstmts, 1);
    assert_stmt(&s, 3, 0, "DROP TABLE c", 11, NODE(DROP_STMT));
    assert_int_equal(s.steps[4].kind, OSC_STEP_BLOCK);
    assert_int_equal(s.steps[4].nstmts, 1);
    assert_stmt(&s, 4, 0, "UPDATE d SET z = 1", 13, NODE(UPDATE_STMT)); /* unmarked: fine */
    osc_script_free(&s);
}

static void test_block_errors(void **state)
{
    (void)state;
    split_err("SELECT 1;\nBEGIN;\nSELECT 2;\n", "0A000", 2, "never closed");
    split_err("BEGIN;\nSELECT 2;\nBEGIN;\nSELECT 3;\n", "0A000", 3, "opened at line 1");
    split_err("SELECT 1;\n\n  COMMIT;", "0A000", 3, "COMMIT without BEGIN");
    split_err("BEGIN;\nSELECT 1;\nCOMMIT;\nEND;", "0A000", 4, "COMMIT without BEGIN");
    split_err("BEGIN;\nSELECT 1;\n  BEGIN;\nCOMMIT;\nCOMMIT;", "0A000", 3, "opened at line 1");
    split_err("BEGIN;\nSELECT 1;\nROLLBACK;", "0A000", 3,
              "ROLLBACK: a migration file's block "
              "must commit");
    split_err("BEGIN;\nSELECT 1;\nROLLBACK;", "0A000", 3, "use its down file");
    split_err("SELECT 1;\nABORT;", "0A000", 2, "ROLLBACK");
    split_err("SELECT 1;\n\nROLLBACK AND CHAIN;", "0A000", 3, "down file");
    split_err("BEGIN;\nSAVEPOINT s;\nSELECT 1;\nCOMMIT;", "0A000", 2, "SAVEPOINT: ");
    split_err("BEGIN;\nSAVEPOINT s;\nSELECT 1;\nCOMMIT;", "0A000", 2, "down file");
    split_err("BEGIN;\nSELECT 1;\nRELEASE SAVEPOINT s;\nCOMMIT;", "0A000", 3, "RELEASE");
    split_err("BEGIN;\nSELECT 1;\n\nROLLBACK TO SAVEPOINT s;\nCOMMIT;", "0A000", 4,
              "ROLLBACK TO SAVEPOINT");
    split_err("BEGIN;\nSELECT 1;\nPREPARE TRANSACTION 'x';", "0A000", 3,
              "PREPARE TRANSACTION: two-phase commit");
    split_err("COMMIT PREPARED 'x';", "0A000", 1, "COMMIT PREPARED");
    split_err("\nROLLBACK PREPARED 'x';", "0A000", 2, "ROLLBACK PREPARED");
    split_err("BEGIN ISOLATION LEVEL SERIALIZABLE;\nSELECT 1;\nCOMMIT;", "0A000", 1,
              "an isolation level");
    split_err("BEGIN ISOLATION LEVEL READ COMMITTED;\nSELECT 1;\nCOMMIT;", "0A000", 1,
              "an isolation level");
    split_err("\n\nSTART TRANSACTION READ ONLY;\nSELECT 1;\nCOMMIT;", "0A000", 3, "READ ONLY");
    split_err("BEGIN READ WRITE, DEFERRABLE;\nSELECT 1;\nCOMMIT;", "0A000", 1, "DEFERRABLE");
    split_err("BEGIN;\nSELECT 1;\nCOMMIT AND CHAIN;\nSELECT 2;\nCOMMIT;", "0A000", 3,
              "COMMIT AND CHAIN");
    split_err("BEGIN;\nSELECT 1;\nEND AND CHAIN;\nSELECT 2;\nCOMMIT;", "0A000", 3,
              "COMMIT AND CHAIN");
}

static void test_marker_marks_update_and_delete(void **state)
{
    (void)state;
    osc_script s = split_ok("-- pgcutover:batched\n"                           /* 1 */
                            "UPDATE accounts SET filler = '' WHERE aid > 0;\n" /* 2 */
                            "--pgcutover:batched\t \n"                         /* 3 */
                            "DELETE FROM history WHERE mtime < now() - interval '1 year';\n"
                            "UPDATE accounts SET abalance = 0;\n"               /* 5 */
                            "--   PgCutover:BATCHED\n"                          /* 6 */
                            "-- backfill the new column, it is a big table\n"   /* 7 */
                            "/* another; comment */\n"                          /* 8 */
                            "\n"                                                /* 9 */
                            "WITH k AS (SELECT 1) UPDATE t SET a = 1 FROM k;\n" /* 10 */
                            "-- first an explanation\n"                         /* 11 */
                            "-- pgcutover:batched\n"                            /* 12 */
                            "\n"                                                /* 13 */
                            "DELETE FROM t /* interior */ WHERE a IS NULL");    /* 14 */
    assert_int_equal(s.n, 5);
    assert_int_equal(s.steps[0].kind, OSC_STEP_BATCHED);
    assert_stmt(&s, 0, 0, "UPDATE accounts SET filler = '' WHERE aid > 0", 2, NODE(UPDATE_STMT));
    assert_int_equal(s.steps[1].kind, OSC_STEP_BATCHED);
    assert_stmt(&s, 1, 0, "DELETE FROM history WHERE mtime < now() - interval '1 year'", 4,
                NODE(DELETE_STMT));
    assert_int_equal(s.steps[2].kind, OSC_STEP_ONE); /* the marker does not carry over */
    assert_stmt(&s, 2, 0, "UPDATE accounts SET abalance = 0", 5, NODE(UPDATE_STMT));
    assert_int_equal(s.steps[3].kind, OSC_STEP_BATCHED); /* other comments after the marker */
    assert_stmt(&s, 3, 0, "WITH k AS (SELECT 1) UPDATE t SET a = 1 FROM k", 10, NODE(UPDATE_STMT));
    assert_int_equal(s.steps[4].kind, OSC_STEP_BATCHED); /* and before it */
    assert_stmt(&s, 4, 0, "DELETE FROM t /* interior */ WHERE a IS NULL", 14, NODE(DELETE_STMT));
    for (int i = 0; i < s.n; i++)
        assert_int_equal(s.steps[i].nstmts, 1);
    osc_script_free(&s);
}

static void test_marker_text_that_is_no_marker(void **state)
{
    (void)state;
    osc_script s = split_ok("UPDATE t SET note = '\n-- pgcutover:batched\n';\n" /* 1-3 */
                            "/* -- pgcutover:batched */\n"                      /* 4 */
                            "/* pgcutover:batched */ UPDATE t SET a = 1;\n"     /* 5 */
                            "SELECT $$\n-- pgcutover:batched\n$$;\n"            /* 6-8 */
                            "-- pgcutover: a note about the next statement\n"   /* 9 */
                            "-- not pgcutover:batched\n"                        /* 10 */
                            "DELETE FROM t WHERE b = E'\\n-- pgcutover:batched';" /* 11 */);
    assert_int_equal(s.n, 4);
    for (int i = 0; i < s.n; i++)
        assert_int_equal(s.steps[i].kind, OSC_STEP_ONE);
    assert_stmt(&s, 0, 0, "UPDATE t SET note = '\n-- pgcutover:batched\n'", 1, NODE(UPDATE_STMT));
    assert_stmt(&s, 1, 0, "UPDATE t SET a = 1", 5, NODE(UPDATE_STMT));
    assert_stmt(&s, 2, 0, "SELECT $$\n-- pgcutover:batched\n$$", 6, NODE(SELECT_STMT));
    assert_stmt(&s, 3, 0, "DELETE FROM t WHERE b = E'\\n-- pgcutover:batched'", 11,
                NODE(DELETE_STMT));
    osc_script_free(&s);
}

static void test_marker_refused(void **state)
{
    (void)state;
    split_err("SELECT 1;\n-- pgcutover:batched\nINSERT INTO t VALUES (1);", "0A000", 2,
              "marks the INSERT at line 3: only an UPDATE or DELETE");
    split_err("-- pgcutover:batched\nCREATE INDEX i ON t (a);", "0A000", 1, "CREATE at line 2");
    split_err("-- pgcutover:batched\nBEGIN;\nUPDATE t SET a = 1;\nCOMMIT;", "0A000", 1,
              "BEGIN at line 2");
    split_err("BEGIN;\nSELECT 1;\n-- pgcutover:batched\nCOMMIT;", "0A000", 3, "COMMIT at line 4");
    split_err("BEGIN;\nALTER TABLE t ADD b int;\n-- pgcutover:batched\nUPDATE t SET b = 1;\n"
              "COMMIT;",
              "0A000", 3, "UPDATE at line 4 inside the block opened at line 1");
    split_err("BEGIN;\n-- pgcutover:batched\nDELETE FROM t;\nCOMMIT;", "0A000", 2,
              "cannot be part of an atomic block");
    /* on the previous statement's line: reads as marking it, would mark the next one */
    split_err("UPDATE a SET x = 1; -- pgcutover:batched\nUPDATE b SET y = 2;", "0A000", 1,
              "on its own line");
    split_err("UPDATE a SET x = 1\n; -- pgcutover:batched\nUPDATE b SET y = 2;", "0A000", 2,
              "on its own line");
    split_err("UPDATE a SET x = 1;\n\n/* c */ -- pgcutover:batched\n", "0A000", 3,
              "after the last statement");
    /* inside a statement: between its first token and its ';' */
    split_err("UPDATE t\n-- pgcutover:batched\nSET a = 1;", "0A000", 2, "inside a statement");
    split_err("SELECT 1;\nUPDATE t SET a = 1 -- pgcutover:batched\n;\nUPDATE u SET b = 1;", "0A000",
              2, "inside a statement");
    split_err("UPDATE t SET a = 1;\n-- pgcutover:batched\n", "0A000", 2, "after the last");
    /* typos and extra words: refused, never ignored */
    split_err("SELECT 1;\n-- pgcutover:batch\nUPDATE t SET a = 1;", "42601", 2,
              "unknown directive \"-- pgcutover:batch\"");
    split_err("-- pgcutover:batched please\nUPDATE t SET a = 1;", "42601", 1, "unknown directive");
    split_err("-- pgcutover:batched; then more\nUPDATE t SET a = 1;", "42601", 1,
              "unknown directive");
    split_err("SELECT 1 -- pgcutover:Batches\n;", "42601", 1, "unknown directive");
    split_err("SELECT 1;\n\n-- PGCUTOVER:nothing\n", "42601", 3, "unknown directive");
}

static void test_syntax_error_lines(void **state)
{
    (void)state;
    split_err("SELECT 1;\n\n\\connect other\nSELECT 2;", "42601", 3, "psql meta-command");
    split_err("SELECT 1;\n\n\\connect other\nSELECT 2;", "42601", 3, "syntax error");
    /* the parser's cursor counts characters: 20 two-byte ones before the \i */
    split_err("-- éééééééééééééééééééé\n;\n\\i other.sql\n", "42601", 3, "psql meta-command");
    split_err("SELECT 'ü';\nSELECT 2;\nALTER TABLE t ADD COLUMN;\n", "42601", 3, "syntax error");
    split_err("SELECT 1;\nSELECT $$ abc;\n\n", "42601", 2, "unterminated dollar-quoted string");
    split_err("SELECT 1;\n/* never closed;\nSELECT 2;", "42601", 2, "unterminated /* comment");
    /* an error the parser raises without a position: the failing statement's line */
    split_err("SELECT 1;\n\nCREATE FUNCTION f(OUT a int) RETURNS TABLE(b int) AS '' "
              "LANGUAGE sql;\nSELECT 2;",
              "42601", 3, "OUT and INOUT");
    split_err("CREATE FUNCTION g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n"
              "  SELECT 2;\nEND;\n-- c\nCREATE FUNCTION f(OUT a int) RETURNS TABLE(b int) AS '' "
              "LANGUAGE sql;",
              "42601", 7, "OUT and INOUT");
    /* … and one whose BEGIN ATOMIC body the scanner's split cuts at its ';' */
    split_err("SELECT 1;\n\nCREATE FUNCTION f(OUT a int) RETURNS TABLE(b int) LANGUAGE sql\n"
              "BEGIN ATOMIC\n  SELECT 1;\nEND;\nSELECT 2;",
              "42601", 3, "OUT and INOUT");
    /* a short error buffer is truncated, never overrun */
    osc_script s;
    char code[6], err[8];
    assert_false(osc_split("SELEC 1;", &s, code, err, sizeof err));
    assert_string_equal(code, "42601");
    assert_string_equal(err, "line 1:");
}

static void test_tags_and_unicode(void **state)
{
    (void)state;
    osc_script s = split_ok("-- ünïcödé ; comment\n"
                            "COMMENT ON TABLE t IS 'Zürich; 東京';\n"
                            "CREATE INDEX CONCURRENTLY i ON t (a);\n"
                            "CREATE VIEW v AS SELECT 1;\n"
                            "GRANT SELECT ON t TO r;\n"
                            "ALTER TABLE \"tä;b\" RENAME TO x;\n"
                            "VACUUM t;\n"
                            "CREATE TYPE e AS ENUM ('a;', 'b');\n"
                            "DROP INDEX CONCURRENTLY i;");
    static const int want[] = {NODE(COMMENT_STMT),     NODE(INDEX_STMT),  NODE(VIEW_STMT),
                               NODE(GRANT_STMT),       NODE(RENAME_STMT), NODE(VACUUM_STMT),
                               NODE(CREATE_ENUM_STMT), NODE(DROP_STMT)};
    assert_int_equal(s.n, 8);
    for (int i = 0; i < s.n; i++) {
        assert_int_equal(s.steps[i].tags[0], want[i]);
        assert_int_equal(s.steps[i].lines[0], i + 2);
    }
    assert_string_equal(s.steps[0].stmts[0], "COMMENT ON TABLE t IS 'Zürich; 東京'");
    assert_string_equal(s.steps[4].stmts[0], "ALTER TABLE \"tä;b\" RENAME TO x");
    osc_script_free(&s);
}

/* 2,000 statements: every 10th a marked UPDATE, and a block of three every 250 lines'
 * worth. Speed sanity only (no timing assertion): everything is checked. */
static void test_large_file(void **state)
{
    (void)state;
    enum { N = 2000 };
    size_t cap = 256 * 1024, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    int line = 1, nsteps = 0;
    static int want_line[N], want_kind[N], want_step[N];
    for (int i = 0; i < N; i++) {
        bool block = i % 250 == 100; /* statements i, i+1, i+2 in one block */
        bool in_block = i % 250 >= 100 && i % 250 < 103;
        if (block) {
            len += (size_t)snprintf(text + len, cap - len, "BEGIN;\n");
            line++;
        }
        if (!in_block && i % 10 == 5) {
            len += (size_t)snprintf(text + len, cap - len, "-- pgcutover:batched\n");
            line++;
            len += (size_t)snprintf(text + len, cap - len, "UPDATE t%d SET c = 0;\n", i);
            want_kind[i] = OSC_STEP_BATCHED;
        } else {
            len += (size_t)snprintf(text + len, cap - len,
                                    "ALTER TABLE t%d ADD COLUMN c int DEFAULT 0; -- n;%d\n", i, i);
            want_kind[i] = in_block ? OSC_STEP_BLOCK : OSC_STEP_ONE;
        }
        want_line[i] = line++;
        want_step[i] = (in_block && !block) ? nsteps - 1 : nsteps++;
        if (i % 250 == 102) {
            len += (size_t)snprintf(text + len, cap - len, "COMMIT;\n");
            line++;
        }
        assert_true(len < cap - 128);
    }
    osc_script s = split_ok(text);
    assert_int_equal(s.nstatements, N);
    assert_int_equal(s.n, nsteps);
    int k[N + 1] = {0}; /* statements seen per step */
    for (int i = 0; i < N; i++) {
        const osc_step *st = &s.steps[want_step[i]];
        int j = k[want_step[i]]++;
        char want[96];
        if (want_kind[i] == OSC_STEP_BATCHED)
            snprintf(want, sizeof want, "UPDATE t%d SET c = 0", i);
        else
            snprintf(want, sizeof want, "ALTER TABLE t%d ADD COLUMN c int DEFAULT 0", i);
        assert_int_equal(st->kind, want_kind[i]);
        assert_string_equal(st->stmts[j], want);
        assert_int_equal(st->lines[j], want_line[i]);
    }
    for (int i = 0; i < s.n; i++)
        assert_int_equal(s.steps[i].nstmts, s.steps[i].kind == OSC_STEP_BLOCK ? 3 : 1);
    osc_script_free(&s);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_comment_only),
        cmocka_unit_test(test_text_lines_and_comments),
        cmocka_unit_test(test_dollar_quoted_bodies),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_block_errors),
        cmocka_unit_test(test_marker_marks_update_and_delete),
        cmocka_unit_test(test_marker_text_that_is_no_marker),
        cmocka_unit_test(test_marker_refused),
        cmocka_unit_test(test_syntax_error_lines),
        cmocka_unit_test(test_tags_and_unicode),
        cmocka_unit_test(test_large_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
