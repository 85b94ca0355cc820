/*
 * test_engine_strategy.c — the instant strategy (issue 13, first part): with
 * instant_ddl = on, an ALTER TABLE that PostgreSQL runs on its catalog alone (its verdict
 * on a trial on an empty copy: storage unchanged, nothing validated) runs as it is under
 * the proxy's hold, with no shadow table; everything else still goes through the copy.
 *
 *   matrix         39 statements: the expected strategy in PLAN; each instant one run
 *                  through the console on t and directly on an identical t_copy, then the
 *                  catalogs compared (columns with types, NOT NULL and defaults;
 *                  constraints; indexes), t's storage unchanged, no shadow created, the
 *                  migration recorded (strategy instant, state done).
 *                  Validate statements (a CHECK or FOREIGN KEY added NOT VALID under the
 *                  hold, then validated) are run and compared the same way.
 *   validate_violated  a CHECK a row violates: PostgreSQL's 23514, no constraint left; SET
 *                  NOT NULL over a NULL: 23502, the column unchanged, no helper CHECK left.
 *   lock_retry     a session holding ACCESS SHARE on the table in an open transaction:
 *                  the instant change retries under lock_timeout and finishes once it
 *                  commits; a client reading through the proxy meanwhile sees no error.
 *   index          CREATE INDEX, REINDEX, DROP INDEX run CONCURRENTLY as the user (PLAN shows
 *                  it); a unique index over duplicates fails with the duplicated key named
 *                  and leaves no INVALID index; a non-owner gets PostgreSQL's 42501.
 *   index_sigkill  SIGKILL of pgcutover during a concurrent build (waiting for an old
 *                  transaction): the next pgcutover leaves no INVALID index.
 *   direct         CREATE VIEW/FUNCTION/TABLE, COMMENT, GRANT, ALTER TABLE … RENAME TO by a
 *                  console member that is no superuser: run as that user (it owns what it
 *                  made), recorded (strategy direct); a C function (superuser only) is
 *                  refused with 42501 as it would be directly; PLAN SELECT is refused.
 *   off            with instant_ddl = off (another pgcutover), the same ADD COLUMN goes
 *                  through the copy and PLAN says why.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"

static h_proxy px;

#define T_DDL                                                                                      \
    "CREATE TABLE %s (id int PRIMARY KEY, a int, s varchar(20), d int NOT NULL DEFAULT 1);"       \
    "CREATE INDEX ON %s (s); INSERT INTO %s SELECT i, i, 's' || i, i FROM generate_series(1, 500) i"

static const struct {
    const char *change; /* after "ALTER TABLE <t> " */
    const char *strategy;
} matrix[] = {
    {"ADD COLUMN note text", "instant"},
    {"ADD COLUMN n int DEFAULT 0", "instant"},
    {"ADD COLUMN n int NOT NULL DEFAULT 7", "instant"},
    {"DROP COLUMN d", "instant"},
    {"ALTER COLUMN s TYPE varchar(50)", "instant"},
    {"ALTER COLUMN s TYPE text", "instant"},
    {"ALTER COLUMN d SET DEFAULT 5", "instant"},
    {"ALTER COLUMN d DROP DEFAULT", "instant"},
    {"ALTER COLUMN d DROP NOT NULL", "instant"},
    {"RENAME COLUMN d TO d2", "instant"},
    {"ALTER COLUMN a TYPE bigint", "copy"},
    {"ADD COLUMN r float8 DEFAULT random()", "copy"},
    {"ALTER COLUMN a SET NOT NULL", "validate"},
    {"ALTER COLUMN a SET NOT NULL, ADD COLUMN n int", "copy"}, /* validations only, or copy */
    {"ALTER COLUMN a SET NOT NULL, ALTER COLUMN s SET NOT NULL, ADD CONSTRAINT a_nn CHECK (a > 0)",
     "validate"},
    {"ALTER COLUMN a SET NOT NULL, ALTER COLUMN a TYPE bigint", "copy"},
    {"ADD CONSTRAINT a_pos CHECK (a >= 0)", "validate"},
    {"ALTER COLUMN s TYPE varchar(10)", "copy"},
    {"ADD COLUMN n int, ALTER COLUMN a TYPE bigint", "copy"},
    /* PostgreSQL 11+ stores a non-volatile default once (to_char is stable): no rewrite */
    {"ADD COLUMN yr text DEFAULT to_char(date '2026-01-01', 'YYYY')", "instant"},
    {"ADD COLUMN j jsonb DEFAULT '{}'", "instant"},
    {"ADD COLUMN g uuid DEFAULT gen_random_uuid()", "copy"},
    {"ADD COLUMN twice int GENERATED ALWAYS AS (a * 2) STORED", "copy"},
    {"ADD COLUMN u int UNIQUE", "copy"},
    {"ALTER COLUMN a SET STATISTICS 500", "instant"},
    {"ALTER COLUMN s SET STORAGE EXTERNAL", "instant"},
    {"DROP COLUMN a, ADD COLUMN a2 int", "instant"},
    {"ALTER COLUMN s TYPE varchar(20)", "instant"}, /* the type it has: nothing to do */
    {"ALTER COLUMN a TYPE int USING a + 1", "copy"},
    {"ALTER COLUMN d SET DEFAULT 5, ALTER COLUMN d DROP NOT NULL", "instant"},
    {"ADD CONSTRAINT s_fk FOREIGN KEY (a) REFERENCES t (id)", "validate"},
    {"ADD COLUMN m int DEFAULT 1, ADD CONSTRAINT m_pos CHECK (m > 0)", "copy"},
    {"ADD CONSTRAINT a_pos CHECK (a >= 0), ADD CONSTRAINT s_fk2 FOREIGN KEY (a) REFERENCES t (id)",
     "validate"},
    {"ADD CONSTRAINT a_pos CHECK (a >= 0) NOT VALID", "instant"},
    {"ALTER COLUMN s TYPE varchar(20) COLLATE \"C\"", "copy"}, /* the index is rebuilt */
    {"ADD UNIQUE (a)", "validate"}, /* built concurrently, attached (test_engine_strategy_key) */
    {"ADD UNIQUE (s, a) INCLUDE (d)", "validate"},
    {"ADD UNIQUE (a) WITH (fillfactor = 70)", "copy"},
    {"ADD COLUMN u2 int, ADD UNIQUE (a)", "copy"},
};

/* What a table looks like in the catalog, names of its own objects left out. */
static const char catalog_sql[] =
    "SELECT (SELECT string_agg(format('%%s %%s %%s %%s', attname, format_type(atttypid, atttypmod), "
    "attnotnull, pg_get_expr(d.adbin, d.adrelid)), '; ' ORDER BY attnum) FROM pg_attribute a "
    "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = "
    "'%s'::regclass AND attnum > 0 AND NOT attisdropped) || ' | ' || coalesce((SELECT "
    "string_agg(x, '; ' ORDER BY x) FROM (SELECT contype::text || ' ' || pg_get_constraintdef(oid) "
    "|| ' ' || convalidated FROM pg_constraint WHERE conrelid = '%s'::regclass) k(x)), '') || ' | ' "
    "|| coalesce((SELECT string_agg(x, '; ' ORDER BY x) FROM (SELECT regexp_replace("
    "pg_get_indexdef(indexrelid), '^.* USING ', '') || ' ' || indisvalid FROM pg_index WHERE "
    "indrelid = '%s'::regclass) i(x)), '')";

static void test_matrix(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    for (size_t i = 0; i < sizeof matrix / sizeof matrix[0]; i++) {
        h_execf(d, "DROP TABLE IF EXISTS t, t_copy; " T_DDL "; " T_DDL, "t", "t", "t", "t_copy",
                "t_copy", "t_copy");
        char sql[256], got[32];
        snprintf(sql, sizeof sql, "ALTER TABLE t %s", matrix[i].change);
        h_plan_strategy(ctl, sql, got, sizeof got);
        if (strcmp(got, matrix[i].strategy) != 0)
            h_eng_fail("PLAN %s: strategy %s, want %s", sql, got, matrix[i].strategy);
        if (strcmp(matrix[i].strategy, "copy") == 0)
            continue;
        long long storage = h_qint(d, "SELECT relfilenode FROM pg_class WHERE oid = 't'::regclass");
        long long shadows = h_qint(d, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid "
                                      "= c.relnamespace WHERE n.nspname = 'pgcutover' AND "
                                      "c.relkind = 'r' AND c.relname NOT IN ('migrations', 'migration_columns', 'schema_migrations')");
        PGresult *r = h_ctl_ok(ctl, "%s", sql);
        assert_string_equal(PQgetvalue(r, 0, h_col(r, "state")), "done");
        assert_string_equal(PQgetvalue(r, 0, h_col(r, "strategy")), matrix[i].strategy);
        long long id = atoll(PQgetvalue(r, 0, h_col(r, "id")));
        PQclear(r);
        h_execf(d, "ALTER TABLE t_copy %s", matrix[i].change);
        char a[4096], b[4096];
        h_qtext(d, a, sizeof a, catalog_sql, "t", "t", "t");
        h_qtext(d, b, sizeof b, catalog_sql, "t_copy", "t_copy", "t_copy");
        if (strcmp(a, b) != 0)
            h_eng_fail("%s: through pgcutover\n  %s\ndirectly\n  %s", sql, a, b);
        assert_int_equal(h_qint(d, "SELECT relfilenode FROM pg_class WHERE oid = 't'::regclass"),
                         storage);
        assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid "
                                   "= c.relnamespace WHERE n.nspname = 'pgcutover' AND "
                                   "c.relkind = 'r' AND c.relname NOT IN ('migrations', 'migration_columns', 'schema_migrations')"),
                         shadows);
        h_mig m;
        h_mig_show(ctl, id, &m);
        assert_string_equal(m.state, "done");
        long long diff = h_qint(d, "SELECT count(*) FROM (SELECT * FROM t EXCEPT ALL SELECT * FROM "
                                   "t_copy) x");
        if (diff != 0)
            h_eng_fail("%s: %lld rows differ from the direct ALTER's", sql, diff);
    }
}

static void test_lock_retry(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, T_DDL, "t", "t", "t");
    PGconn *blocker = h_eng_keep(&h_eng_case, h_direct_connect(h_eng_case.db));
    h_execf(blocker, "BEGIN; LOCK TABLE t IN ACCESS SHARE MODE");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    assert_int_equal(PQsendQuery(ctl, "ALTER TABLE t ADD COLUMN note text"), 1);
    /* A client through the proxy reads meanwhile: held for moments, never refused. */
    PGconn *app = h_eng_keep(&h_eng_case, h_connect(h_conninfo_proxy_db(&px, h_eng_case.db, NULL)));
    /* until pgcutover has met the lock at least once (its log says so; bounded) */
    bool retried = false;
    for (int i = 0; i < 150 && !retried; i++) {
        assert_int_equal(h_qint(app, "SELECT count(*) FROM t"), 500);
        retried = h_shell("grep -q 'instant public.t: lock_timeout' %s", px.log) == 0;
        if (!retried)
            usleep(100000);
    }
    assert_true(retried);
    h_execf(blocker, "COMMIT");
    PGresult *r = NULL, *last = NULL;
    while ((r = PQgetResult(ctl)) != NULL) {
        PQclear(last);
        last = r;
    }
    if (last == NULL || PQresultStatus(last) != PGRES_TUPLES_OK)
        h_eng_fail("instant ALTER under a lock: %s", last ? PQresultErrorMessage(last) : "no result");
    long long id = atoll(PQgetvalue(last, 0, 0));
    PQclear(last);
    h_mig m;
    h_mig_show(ctl, id, &m);
    assert_string_equal(m.state, "done");
    if (m.attempts < 2)
        h_eng_fail("the instant change went through on attempt %lld although a lock was held",
                   m.attempts);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass "
                               "AND attname = 'note'"), 1);
}

static void test_off(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, T_DDL, "t", "t", "t");
    const char *sets[] = {"instant_ddl=off", "cutover=manual", NULL};
    h_proxy_start(&h_eng_case.px, sets);
    PGconn *ctl = h_eng_console(&h_eng_case, &h_eng_case.px);
    PGresult *r = h_ctl_ok(ctl, "PLAN ALTER TABLE t ADD COLUMN note text");
    bool said = false;
    for (int i = 0; i < PQntuples(r); i++)
        said |= strstr(PQgetvalue(r, i, h_col(r, "description")), "instant_ddl = off") != NULL;
    PQclear(r);
    assert_true(said);
    long long id = h_start_migration(ctl, "ALTER TABLE t ADD COLUMN note text");
    h_mig m;
    h_mig_wait(ctl, id, "ready", -1, 60000, &m);
    assert_true(m.shadow[0] != 0);
    PQclear(h_ctl_ok(ctl, "ABORT MIGRATION %lld", id));
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* ---------- validate over a violating row ---------- */

static void test_validate_violated(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, T_DDL, "t", "t", "t");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    char code[6], msg[512];
    h_ctl_err(ctl, "ALTER TABLE t ADD CONSTRAINT a_big CHECK (a > 250)", code, msg, sizeof msg);
    assert_string_equal(code, "23514"); /* as the plain ALTER fails */
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_constraint WHERE conname = 'a_big'"), 0);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.migrations WHERE strategy = "
                               "'validate' AND state = 'failed'"), 1);
    /* SET NOT NULL over a NULL: PostgreSQL's 23502, the column as it was, no helper left */
    h_execf(d, "UPDATE t SET a = NULL WHERE id = 3");
    h_ctl_err(ctl, "ALTER TABLE t ALTER COLUMN a SET NOT NULL", code, msg, sizeof msg);
    assert_string_equal(code, "23502");
    assert_non_null(strstr(msg, "contains null values"));
    /* several: the NULL's column named, none of them set, no helper left */
    h_ctl_err(ctl, "ALTER TABLE t ALTER COLUMN s SET NOT NULL, ALTER COLUMN a SET NOT NULL", code,
              msg, sizeof msg);
    assert_string_equal(code, "23502");
    assert_non_null(strstr(msg, "column \"a\""));
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass "
                               "AND attname = 's' AND attnotnull"), 0);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass "
                               "AND attname = 'a' AND attnotnull"), 0);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_constraint WHERE conrelid = 't'::regclass "
                               "AND conname LIKE 'pgcutover%%'"), 0);
}

/* ---------- concurrent ---------- */

static long long invalid_indexes(PGconn *d)
{
    return h_qint(d, "SELECT count(*) FROM pg_index WHERE indrelid = 't'::regclass AND NOT indisvalid");
}

static void test_index(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, T_DDL, "t", "t", "t");
    h_execf(d, "UPDATE t SET a = 5 WHERE id IN (10, 20)"); /* a duplicate for the unique index */
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    PGresult *r = h_ctl_ok(ctl, "PLAN CREATE INDEX t_a_idx ON t (a)");
    bool concurrently = false;
    for (int i = 0; i < PQntuples(r); i++)
        concurrently |= strstr(PQgetvalue(r, i, h_col(r, "sql")), "CONCURRENTLY") != NULL;
    PQclear(r);
    assert_true(concurrently);
    r = h_ctl_ok(ctl, "CREATE INDEX t_a_idx ON t (a)");
    assert_string_equal(PQgetvalue(r, 0, h_col(r, "strategy")), "concurrent");
    assert_string_equal(PQgetvalue(r, 0, h_col(r, "state")), "done");
    PQclear(r);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_index WHERE indexrelid = 't_a_idx'::regclass "
                               "AND indisvalid"), 1);
    /* A unique index over duplicates: PostgreSQL's error with the key, nothing INVALID left. */
    char code[6], msg[1024];
    h_ctl_err(ctl, "CREATE UNIQUE INDEX t_a_uq ON t (a)", code, msg, sizeof msg);
    assert_string_equal(code, "23505");
    if (strstr(msg, "(a)=(5)") == NULL || strstr(msg, "INVALID index it left was dropped") == NULL)
        h_eng_fail("unique index over duplicates: %s", msg);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_class WHERE relname = 't_a_uq'"), 0);
    assert_int_equal(invalid_indexes(d), 0);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.migrations WHERE strategy = "
                               "'concurrent' AND state = 'failed'"), 1);
    r = h_ctl_ok(ctl, "REINDEX INDEX t_a_idx");
    PQclear(r);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_index WHERE indexrelid = 't_a_idx'::regclass "
                               "AND indisvalid"), 1);
    r = h_ctl_ok(ctl, "DROP INDEX t_a_idx");
    PQclear(r);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_class WHERE relname = 't_a_idx'"), 0);
    /* Not the owner: PostgreSQL's own refusal, as the user. */
    h_execf(d, "DROP ROLE IF EXISTS st_other; CREATE ROLE st_other LOGIN; GRANT pgcutover_admin "
               "TO st_other");
    char ci[512];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d dbname=%s user=st_other sslmode=disable",
             px.control_port, h_eng_case.db);
    PGconn *other = h_eng_keep(&h_eng_case, h_connect(ci));
    h_ctl_err(other, "CREATE INDEX t_b_idx ON t (s)", code, msg, sizeof msg);
    assert_string_equal(code, "42501");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_class WHERE relname = 't_b_idx'"), 0);
    h_eng_drop_conn(&h_eng_case, other);
    h_execf(d, "DROP ROLE st_other");
}

/* SIGKILL of pgcutover while a concurrent build waits for an old transaction: the next
 * pgcutover ends the build's backend, drops the INVALID index and fails the migration. */
static void test_index_sigkill(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, T_DDL, "t", "t", "t");
    PGconn *old = h_eng_keep(&h_eng_case, h_direct_connect(h_eng_case.db));
    h_execf(old, "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM t");
    const char *sets[] = {"instant_ddl=on", NULL};
    h_proxy_start(&h_eng_case.px, sets);
    PGconn *ctl = h_eng_console(&h_eng_case, &h_eng_case.px);
    assert_int_equal(PQsendQuery(ctl, "CREATE INDEX t_kill_idx ON t (a)"), 1);
    long long inv = 0;
    for (int i = 0; i < 100 && inv == 0; i++) { /* the build has made its INVALID index */
        usleep(100000);
        inv = invalid_indexes(d);
    }
    assert_int_equal(inv, 1);
    h_eng_drop_conn(&h_eng_case, ctl);
    h_proxy_signal(&h_eng_case.px, SIGKILL);
    h_proxy_stop(&h_eng_case.px);
    h_proxy_start(&h_eng_case.px2, sets);
    /* The killed pgcutover's build goes on in its backend until the new one ends it. */
    long long builders = 1;
    for (int i = 0; i < 100 && builders > 0; i++) {
        usleep(100000);
        builders = h_qint(d, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
                             "'pgcutover m%% job' AND datname = current_database()");
    }
    assert_int_equal(builders, 0);
    /* Dropping the INVALID index CONCURRENTLY waits for the old transaction, as PostgreSQL's
     * DROP INDEX CONCURRENTLY does. */
    h_execf(old, "COMMIT");
    bool clean = false;
    for (int i = 0; i < 100 && !clean; i++) {
        clean = invalid_indexes(d) == 0 &&
                h_qint(d, "SELECT count(*) FROM pgcutover.migrations WHERE strategy = 'concurrent' "
                          "AND state = 'failed' AND error LIKE '%%restart%%'") == 1;
        if (!clean)
            usleep(100000);
    }
    if (!clean)
        h_eng_fail("after the restart: %lld INVALID index(es) left", invalid_indexes(d));
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_class WHERE relname = 't_kill_idx'"), 0);
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px2);
}

/* ---------- direct ---------- */

static void test_direct(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, T_DDL, "t", "t", "t");
    h_execf(d, "DROP ROLE IF EXISTS st_dev; CREATE ROLE st_dev LOGIN; GRANT pgcutover_admin TO "
               "st_dev; GRANT CREATE ON SCHEMA public TO st_dev; ALTER TABLE t OWNER TO st_dev");
    char ci[512];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d dbname=%s user=st_dev sslmode=disable",
             px.control_port, h_eng_case.db);
    PGconn *ctl = h_eng_keep(&h_eng_case, h_connect(ci));
    static const char *const stmts[] = {
        "CREATE VIEW t_big AS SELECT id, a FROM t WHERE a > 100",
        "CREATE FUNCTION t_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS "
        "'SELECT count(*) FROM public.t'",
        "COMMENT ON TABLE t IS 'accounts'",
        "CREATE TABLE t_audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text)",
        "GRANT SELECT ON t_big TO PUBLIC",
        "ALTER TABLE t_audit RENAME TO t_journal",
    };
    char sql[300];
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        snprintf(sql, sizeof sql, "PLAN %s", stmts[i]);
        PGresult *r = h_ctl_ok(ctl, "%s", sql);
        assert_true(strncmp(PQgetvalue(r, 0, h_col(r, "description")), "direct:", 7) == 0);
        PQclear(r);
        r = h_ctl_ok(ctl, "%s", stmts[i]);
        assert_string_equal(PQgetvalue(r, 0, h_col(r, "strategy")), "direct");
        assert_string_equal(PQgetvalue(r, 0, h_col(r, "state")), "done");
        PQclear(r);
    }
    assert_int_equal(h_qint(d, "SELECT count(*) FROM t_big"), 400);
    /* run as the console user, not as the engine: the user owns what it made */
    char owner[64];
    h_qtext(d, owner, sizeof owner, "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 't_count'");
    assert_string_equal(owner, "st_dev");
    h_qtext(d, owner, sizeof owner, "SELECT obj_description('t'::regclass, 'pg_class')");
    assert_string_equal(owner, "accounts");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_class WHERE relname = 't_journal'"), 1);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.migrations WHERE strategy = 'direct' "
                               "AND state = 'done'"), 6);
    /* what the user may not do directly, it may not do through pgcutover */
    char code[6], msg[512];
    h_ctl_err(ctl, "CREATE FUNCTION public.t_bad() RETURNS int LANGUAGE c AS 'libc', 'abs'", code,
              msg, sizeof msg);
    assert_string_equal(code, "42501");
    /* not DDL: refused */
    h_ctl_err(ctl, "PLAN SELECT 1", code, msg, sizeof msg);
    assert_string_equal(code, "42601");
    h_eng_drop_conn(&h_eng_case, ctl);
    h_execf(d, "DROP VIEW t_big; DROP FUNCTION t_count(); DROP TABLE t_journal, t; REVOKE CREATE ON "
               "SCHEMA public FROM st_dev");
    /* The console's engine session kept a temporary executor owned by st_dev; it goes with
     * that backend's exit, a moment after the session closed (bounded wait). */
    bool dropped = false;
    for (int i = 0; i < 50 && !dropped; i++) {
        PGresult *r = PQexec(d, "DROP ROLE st_dev");
        dropped = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!dropped)
            usleep(100000);
    }
    assert_true(dropped);
}

static int group_setup(void **state)
{
    (void)state;
    /* test_index and test_direct grant the console role; other files may create it at the
     * same moment (a duplicate is fine: it exists either way) */
    PGconn *pg = h_direct_connect("postgres");
    PQclear(PQexec(pg, "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
                       "'pgcutover_admin') THEN CREATE ROLE pgcutover_admin; END IF; END$$"));
    assert_int_equal(h_qint(pg, "SELECT count(*) FROM pg_roles WHERE rolname = 'pgcutover_admin'"), 1);
    PQfinish(pg);
    const char *sets[] = {"instant_ddl=on", "cutover=manual", "lock_timeout_ms=150", NULL};
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
        H_ENG_CASE(test_matrix, "eng_strat_matrix"),
        H_ENG_CASE(test_lock_retry, "eng_strat_lock"),
        H_ENG_CASE(test_validate_violated, "eng_strat_violated"),
        H_ENG_CASE(test_off, "eng_strat_off"),
        H_ENG_CASE(test_index, "eng_strat_index"),
        H_ENG_CASE(test_index_sigkill, "eng_strat_kill"),
        H_ENG_CASE(test_direct, "eng_strat_direct"),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
