/*
 * test_proxy_prepared.c — prepared statements survive the swap (issue 14): the proxy
 * records each session's named statements and re-prepares them after a table's row type
 * changed, before the session's next message.
 *
 *   text          a libpq client that PQprepare'd SELECT * FROM t WHERE id = $1 (text
 *                 results) keeps executing it across an instant ADD COLUMN, an instant
 *                 DROP COLUMN and a copy ALTER COLUMN v TYPE bigint (cutover auto): no
 *                 error, the new columns and types seen; SHOW STATS and SHOW CLIENTS count
 *                 the re-prepared statements.
 *   in_xact       the same inside an open transaction that spans the change; a statement
 *                 whose column was dropped fails on its next use as it would without the
 *                 proxy (42703), and the client's transaction was not aborted by the
 *                 re-prepare (a statement executed before that failure succeeds).
 *   sql           SQL-level PREPARE / EXECUTE across an ADD COLUMN; DEALLOCATE forgets it.
 *   binary        a statement executed with binary results gets PostgreSQL's own 0A000
 *                 after its column's type changed (no misdecoded rows), counted as left.
 *   untracked     with max_prepared_statements_bytes = 0 (another pgcutover) the same text
 *                 client gets 0A000 "cached plan must not change result type": what the
 *                 proxy prevents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "h_engine.h"

static h_proxy px;

#define T_DDL "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i * 10 FROM generate_series(1, 20) i"

/* The instant change sql on the console; fails unless it is done. */
static void instant(PGconn *ctl, const char *sql)
{
    PGresult *r = h_ctl_ok(ctl, "%s", sql);
    PQclear(r);
}

/* A copy migration on the console, waited for until done (cutover auto). */
static void copy_done(PGconn *ctl, const char *sql)
{
    long long id = h_start_migration(ctl, sql);
    h_mig m;
    h_mig_wait(ctl, id, "done", -1, 120000, &m);
}

/* Execute prepared name with id (text results unless binary); fails on an error, checks the
 * column count. Returns the result (caller PQclear's). */
static PGresult *exec_ok(PGconn *c, const char *name, const char *id, int ncols, int binary)
{
    const char *v[] = {id};
    PGresult *r = PQexecPrepared(c, name, 1, v, NULL, NULL, binary);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        h_eng_fail("EXECUTE %s: %s (%s)", name, PQresultErrorMessage(r),
                   PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "");
    if (PQntuples(r) != 1 || PQnfields(r) != ncols)
        h_eng_fail("EXECUTE %s: %d rows of %d columns, expected 1 of %d", name, PQntuples(r),
                   PQnfields(r), ncols);
    return r;
}

static void prepare_ok(PGconn *c, const char *name, const char *sql)
{
    PGresult *r = PQprepare(c, name, sql, 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        h_eng_fail("PREPARE %s: %s", name, PQresultErrorMessage(r));
    PQclear(r);
}

static long long stat_col(PGconn *ctl, const char *cmd, const char *col)
{
    PGresult *r = h_ctl_ok(ctl, "%s", cmd);
    long long v = 0;
    for (int i = 0; i < PQntuples(r); i++)
        v += atoll(PQgetvalue(r, i, h_col(r, col)));
    PQclear(r);
    return v;
}

static void test_text(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, T_DDL);
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    PGconn *c = h_eng_keep(&h_eng_case, h_connect(h_conninfo_proxy_db(&px, h_eng_case.db, NULL)));
    prepare_ok(c, "s", "SELECT * FROM t WHERE id = $1");
    PQclear(exec_ok(c, "s", "3", 2, 0));
    long long before = stat_col(ctl, "SHOW STATS", "prepared_reprepared");

    instant(ctl, "ALTER TABLE t ADD COLUMN note text DEFAULT 'n'");
    PGresult *r = exec_ok(c, "s", "3", 3, 0);
    assert_string_equal(PQfname(r, 2), "note");
    assert_string_equal(PQgetvalue(r, 0, 2), "n");
    PQclear(r);

    instant(ctl, "ALTER TABLE t DROP COLUMN note");
    PQclear(exec_ok(c, "s", "4", 2, 0));

    copy_done(ctl, "ALTER TABLE t ALTER COLUMN v TYPE bigint");
    r = exec_ok(c, "s", "5", 2, 0);
    assert_int_equal(PQftype(r, 1), 20); /* int8 */
    assert_string_equal(PQgetvalue(r, 0, 1), "50");
    PQclear(r);
    assert_true(stat_col(ctl, "SHOW STATS", "prepared_reprepared") >= before + 3);
    assert_true(stat_col(ctl, "SHOW CLIENTS", "reprepared") >= 3);
}

static void test_in_xact(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, T_DDL);
    h_execf(d, "ALTER TABLE t ADD COLUMN note text DEFAULT 'n'; CREATE TABLE other (x int)");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    PGconn *c = h_eng_keep(&h_eng_case, h_connect(h_conninfo_proxy_db(&px, h_eng_case.db, NULL)));
    prepare_ok(c, "s", "SELECT * FROM t WHERE id = $1");
    prepare_ok(c, "gone", "SELECT note FROM t WHERE id = $1");
    PQclear(exec_ok(c, "s", "1", 3, 0));
    PQclear(exec_ok(c, "gone", "1", 1, 0));
    /* a transaction that spans the change (it touches another table, so it does not
     * hold the lock the change needs) */
    h_execf(c, "BEGIN; INSERT INTO other VALUES (1)");
    instant(ctl, "ALTER TABLE t DROP COLUMN note");
    PQclear(exec_ok(c, "s", "2", 2, 0));
    h_execf(c, "INSERT INTO other VALUES (2)"); /* the transaction is alive */
    const char *v[] = {"2"};
    PGresult *r = PQexecPrepared(c, "gone", 1, v, NULL, NULL, 0);
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQresultStatus(r) != PGRES_FATAL_ERROR || code == NULL || strcmp(code, "42703") != 0)
        h_eng_fail("a statement over a dropped column: %s %s", PQresStatus(PQresultStatus(r)),
                   PQresultErrorMessage(r));
    PQclear(r);
    h_execf(c, "ROLLBACK");
    /* and again inside a transaction, this time across a copy (type change) */
    h_execf(c, "BEGIN; INSERT INTO other VALUES (3)");
    copy_done(ctl, "ALTER TABLE t ALTER COLUMN v TYPE bigint");
    r = exec_ok(c, "s", "7", 2, 0);
    assert_int_equal(PQftype(r, 1), 20);
    PQclear(r);
    h_execf(c, "COMMIT");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM other"), 1);
}

static void test_sql(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, T_DDL);
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    PGconn *c = h_eng_keep(&h_eng_case, h_connect(h_conninfo_proxy_db(&px, h_eng_case.db, NULL)));
    h_execf(c, "/* a comment */ PREPARE q(int) AS SELECT * FROM t WHERE id = $1");
    /* the second statement fails: the first one stays (prepared statements are not
     * transactional), the second is not recorded */
    PGresult *e = PQexec(c, "PREPARE q2 AS SELECT v FROM t WHERE id = 1; PREPARE bad AS SELECT nope");
    const char *ecode = PQresultErrorField(e, PG_DIAG_SQLSTATE);
    assert_true(ecode != NULL && strcmp(ecode, "42703") == 0);
    PQclear(e);
    PGresult *r = PQexec(c, "EXECUTE q(1)");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQnfields(r), 2);
    PQclear(r);
    instant(ctl, "ALTER TABLE t ADD COLUMN note text DEFAULT 'n'");
    r = PQexec(c, "EXECUTE q(2)");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        h_eng_fail("EXECUTE q after ADD COLUMN: %s", PQresultErrorMessage(r));
    assert_int_equal(PQnfields(r), 3);
    PQclear(r);
    r = PQexec(c, "EXECUTE q2");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    h_execf(c, "DEALLOCATE q");
    /* q is forgotten: the next change re-prepares q2 alone, and q stays gone */
    instant(ctl, "ALTER TABLE t ADD COLUMN n2 int");
    r = PQexec(c, "EXECUTE q(2)");
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    assert_true(code != NULL && strcmp(code, "26000") == 0);
    PQclear(r);
    r = PQexec(c, "EXECUTE q2");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
}

static void test_binary(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, T_DDL);
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    PGconn *c = h_eng_keep(&h_eng_case, h_connect(h_conninfo_proxy_db(&px, h_eng_case.db, NULL)));
    prepare_ok(c, "b", "SELECT * FROM t WHERE id = $1");
    PGresult *r = exec_ok(c, "b", "2", 2, 1);
    assert_int_equal(PQgetlength(r, 0, 1), 4);
    assert_int_equal((int)ntohl(*(const uint32_t *)PQgetvalue(r, 0, 1)), 20);
    PQclear(r);
    long long left = stat_col(ctl, "SHOW STATS", "prepared_left");
    copy_done(ctl, "ALTER TABLE t ALTER COLUMN v TYPE bigint");
    const char *v[] = {"2"};
    r = PQexecPrepared(c, "b", 1, v, NULL, NULL, 1);
    if (PQresultStatus(r) == PGRES_TUPLES_OK) { /* decode what came: it must be int8 */
        if (PQftype(r, 1) != 20 || PQgetlength(r, 0, 1) != 8)
            h_eng_fail("binary rows of a changed column: type %u, %d bytes", PQftype(r, 1),
                       PQgetlength(r, 0, 1));
        h_eng_fail("binary results after the type change: expected PostgreSQL's 0A000");
    }
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (code == NULL || strcmp(code, "0A000") != 0)
        h_eng_fail("binary results after the type change: %s", PQresultErrorMessage(r));
    PQclear(r);
    assert_true(stat_col(ctl, "SHOW STATS", "prepared_left") >= left + 1);
}

static void test_untracked(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, T_DDL);
    const char *sets[] = {"instant_ddl=on", "max_prepared_statements_bytes=0", NULL};
    h_proxy_start(&h_eng_case.px, sets);
    PGconn *ctl = h_eng_console(&h_eng_case, &h_eng_case.px);
    PGconn *c = h_eng_keep(&h_eng_case,
                           h_connect(h_conninfo_proxy_db(&h_eng_case.px, h_eng_case.db, NULL)));
    prepare_ok(c, "s", "SELECT * FROM t WHERE id = $1");
    PQclear(exec_ok(c, "s", "3", 2, 0));
    instant(ctl, "ALTER TABLE t ADD COLUMN note text");
    const char *v[] = {"3"};
    PGresult *r = PQexecPrepared(c, "s", 1, v, NULL, NULL, 0);
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (code == NULL || strcmp(code, "0A000") != 0)
        h_eng_fail("untracked: expected 0A000, got %s", PQresultErrorMessage(r));
    PQclear(r);
    assert_true(stat_col(ctl, "SHOW STATS", "prepared_untracked") >= 1);
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

static int group_setup(void **state)
{
    (void)state;
    PGconn *pg = h_direct_connect("postgres");
    PQclear(PQexec(pg, "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
                       "'pgcutover_admin') THEN CREATE ROLE pgcutover_admin; END IF; END$$"));
    PQfinish(pg);
    const char *sets[] = {"instant_ddl=on", "cutover=auto", NULL};
    h_proxy_start(&px, sets);
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
        H_ENG_CASE(test_text, "prep_text"),
        H_ENG_CASE(test_in_xact, "prep_xact"),
        H_ENG_CASE(test_sql, "prep_sql"),
        H_ENG_CASE(test_binary, "prep_binary"),
        H_ENG_CASE(test_untracked, "prep_untracked"),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
