/*
 * test_engine_rights.c — nobody gains rights through the engine (issue 11, items 2-5;
 * README "Security model"). Each case is an attack that made a role superuser through
 * the engine's (superuser) connection, and the legitimate path that must keep working:
 *
 *   user_text      the console user's ALTER: a DEFAULT calling a function that runs
 *                  ALTER ROLE … SUPERUSER (after trying RESET ROLE and SET SESSION
 *                  AUTHORIZATION to climb back), USING pg_read_file(…), a FOREIGN KEY to a
 *                  table the user has no REFERENCES on; legit: the owner's own DEFAULT
 *                  function is evaluated for every row.
 *   owner_objects  a table owner with no console rights whose CHECK calls a function that
 *                  tries ALTER ROLE … SUPERUSER, migrated by a superuser: backfill and a
 *                  write captured by the dual-write trigger evaluate it as the owner.
 *   operator       a role with only UPDATE on the table and CREATE on public defines its
 *                  own = for varchar: the dual-write trigger must not use it.
 *   squat          schema pgcutover created beforehand by a role with CREATE on the
 *                  database (with a state "table" that is a view calling its function);
 *                  a state table of someone else's in a trusted schema; a table in schema
 *                  pgcutover is never migrated.
 *   resume         a migration whose dual-write function an earlier build made (the
 *                  engine's, search_path FROM CURRENT) gets this build's on resume.
 *   window_faults  the owner turns the revert window's faults table (theirs) into a view
 *                  calling their function: SHOW MIGRATION and REVERT read it as the owner.
 *
 * The migrations that must reach ready are changes PostgreSQL rewrites (a type change, a
 * volatile default), so they go through the copy with the default instant_ddl = on.
 *
 * The oracle is PostgreSQL's catalog (pg_roles.rolsuper) and the rows themselves, not
 * pgcutover's answers. Roles are cluster-wide, so their names carry this file's prefix
 * rt_; the console users log in with SCRAM passwords.
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

#define PW "rt-secret-pw"
#define READY_MS 60000

static h_proxy px;

static void exec_tolerant(const char *sql)
{
    PGconn *c = h_direct_connect("postgres");
    PQclear(PQexec(c, sql));
    PQfinish(c);
}

/* A console connection for role user (SCRAM password PW) to e's database. */
static PGconn *console_as(const char *user)
{
    char ci[512];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d dbname=%s user=%s password=%s sslmode=disable",
             px.control_port, h_eng_case.db, user, PW);
    PGconn *c = NULL;
    for (int i = 0; i < 100; i++) {
        c = PQconnectdb(ci);
        if (PQstatus(c) == CONNECTION_OK)
            break;
        PQfinish(c);
        c = NULL;
        usleep(50000);
    }
    if (c == NULL)
        h_eng_fail("console as %s failed", user);
    PQsetNoticeProcessor(c, h_quiet_notice, NULL);
    return h_eng_keep(&h_eng_case, c);
}

/* A direct connection to e's database as role user (SCRAM password PW). */
static PGconn *login_as(const char *user)
{
    char ci[512];
    snprintf(ci, sizeof ci, "host=%s port=%d dbname=%s user=%s password=%s sslmode=disable",
             h_pg_host(), h_pg_port(), h_eng_case.db, user, PW);
    PGconn *c = h_connect(ci);
    PQsetNoticeProcessor(c, h_quiet_notice, NULL);
    return c;
}

static bool is_super(PGconn *direct, const char *role)
{
    char v[8];
    h_qtext(direct, v, sizeof v, "SELECT rolsuper::text FROM pg_roles WHERE rolname = '%s'", role);
    return strcmp(v, "true") == 0;
}

/* Poll the formatted query (one integer) until it answers want: the shadow follows the
 * application's writes through the change log, a moment later. Fails after 10 s. */
static void wait_int(PGconn *c, long long want, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void wait_int(PGconn *c, long long want, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    long long got = -1;
    for (int i = 0; i < 100; i++) {
        if ((got = h_query_int(c, sql)) == want)
            return;
        usleep(100000);
    }
    h_eng_fail("%s: %lld, want %lld", sql, got, want);
}

/* Wait for migration id to end failed; returns its error in m. */
static void wait_failed(PGconn *ctl, long long id, h_mig *m)
{
    for (int i = 0; i < READY_MS / 100; i++) {
        h_mig_show(ctl, id, m);
        if (strcmp(m->state, "failed") == 0)
            return;
        if (strcmp(m->state, "ready") == 0 || strcmp(m->state, "done") == 0)
            h_eng_fail("migration %lld reached %s; it must fail", id, m->state);
        usleep(100000);
    }
    h_eng_fail("migration %lld did not fail in time (state %s)", id, m->state);
}

static void make_login(const char *role, bool console)
{
    char sql[512];
    snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", role);
    exec_tolerant(sql);
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN PASSWORD '%s' IN ROLE pgc_scram%s", role, PW,
             console ? ", pgcutover_admin" : "");
    h_exec_direct(sql);
}

/* ---------- item 2: the console user's text runs with the user's rights ---------- */

static void test_user_text(void **state)
{
    (void)state;
    make_login("rt_mallory", true);
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "GRANT CREATE ON SCHEMA public TO rt_mallory");
    h_execf(d, "CREATE TABLE secret_parent (id int PRIMARY KEY)");
    h_execf(d, "SET ROLE rt_mallory; CREATE TABLE m_t (id int PRIMARY KEY, v int);"
               "INSERT INTO m_t SELECT i, i FROM generate_series(1, 300) i;"
               "CREATE FUNCTION public.rt_evil() RETURNS int LANGUAGE plpgsql VOLATILE AS $$\n"
               "BEGIN\n"
               "  BEGIN EXECUTE 'RESET ROLE'; EXCEPTION WHEN OTHERS THEN NULL; END;\n"
               "  BEGIN EXECUTE 'SET SESSION AUTHORIZATION DEFAULT'; EXCEPTION WHEN OTHERS THEN "
               "NULL; END;\n"
               "  EXECUTE 'ALTER ROLE rt_mallory SUPERUSER';\n"
               "  RETURN 1;\n"
               "END $$;"
               /* plpgsql: not inlined to a constant, so the DEFAULT stays volatile and
                * PostgreSQL rewrites the table (a copy that evaluates it for every row) */
               "CREATE FUNCTION public.rt_fine() RETURNS int LANGUAGE plpgsql VOLATILE AS "
               "'BEGIN RETURN 42; END';"
               "RESET ROLE");
    PGconn *ctl = console_as("rt_mallory");

    /* The attack: the DEFAULT is evaluated for every copied row. */
    long long id = h_start_migration(ctl, "ALTER TABLE m_t ADD COLUMN x int DEFAULT rt_evil()");
    h_mig m;
    wait_failed(ctl, id, &m);
    assert_false(is_super(d, "rt_mallory"));
    if (strstr(m.error, "SQLSTATE 42501") == NULL)
        h_eng_fail("migration %lld failed for another reason: %s", id, m.error);

    /* USING pg_read_file: refused as it is when mallory runs the ALTER directly. */
    char code[6], msg[512];
    h_ctl_err(ctl, "ALTER TABLE m_t ALTER COLUMN v TYPE text USING pg_read_file('/etc/hostname')",
              code, msg, sizeof msg);
    assert_string_equal(code, "42501");
    assert_non_null(strstr(msg, "permission denied for function pg_read_file"));

    /* A foreign key to a table mallory has no REFERENCES on: refused at once. */
    h_ctl_err(ctl, "ALTER TABLE m_t ADD CONSTRAINT m_fk FOREIGN KEY (v) REFERENCES secret_parent (id)",
              code, msg, sizeof msg);
    assert_string_equal(code, "42501");
    h_ctl_err(ctl, "PLAN ALTER TABLE m_t ADD CONSTRAINT m_fk FOREIGN KEY (v) REFERENCES "
                   "secret_parent (id)", code, msg, sizeof msg);
    assert_string_equal(code, "42501");

    /* Legit: the owner's own DEFAULT function, resolved with mallory's search_path. */
    id = h_start_migration(ctl, "ALTER TABLE m_t ADD COLUMN y int DEFAULT rt_fine()");
    h_mig_wait(ctl, id, "ready", -1, READY_MS, &m);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM %s WHERE y = 42", m.shadow), 300);
    PQclear(h_ctl_ok(ctl, "ABORT MIGRATION %lld", id));
    assert_false(is_super(d, "rt_mallory"));
}

/* ---------- item 3: a table owner's objects run with the owner's rights ---------- */

static void test_owner_objects(void **state)
{
    (void)state;
    make_login("rt_alice", false);
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "GRANT CREATE ON SCHEMA public TO rt_alice");
    /* alice's own session (a superuser's SET ROLE would let her function RESET ROLE). */
    PGconn *a = h_eng_keep(&h_eng_case, login_as("rt_alice"));
    h_execf(a, "CREATE FUNCTION public.rt_alice_check(int) RETURNS bool LANGUAGE plpgsql AS $$\n"
               "BEGIN\n"
               "  BEGIN EXECUTE 'RESET ROLE'; EXCEPTION WHEN OTHERS THEN NULL; END;\n"
               "  BEGIN EXECUTE 'ALTER ROLE rt_alice SUPERUSER';\n"
               "  EXCEPTION WHEN insufficient_privilege THEN NULL; END;\n"
               "  RETURN $1 >= 0;\n"
               "END $$;"
               "CREATE TABLE a_t (id int PRIMARY KEY, v int CHECK (public.rt_alice_check(v)));"
               "INSERT INTO a_t SELECT i, i FROM generate_series(1, 200) i");
    assert_false(is_super(d, "rt_alice"));
    /* A superuser migrates alice's table (legit: it works). */
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    /* a volatile default: a copy (v keeps its type, the CHECK's function takes int) */
    long long id = h_start_migration(ctl, "ALTER TABLE a_t ADD COLUMN note timestamptz DEFAULT "
                                          "clock_timestamp()");
    h_mig m;
    h_mig_wait(ctl, id, "ready", -1, READY_MS, &m);
    assert_false(is_super(d, "rt_alice"));
    /* alice's own write: the original's CHECK runs as alice (PostgreSQL), and the shadow's,
     * in the dual-write trigger, as alice too (it ran as the engine's role before). */
    h_execf(a, "UPDATE a_t SET v = v + 1000 WHERE id = 7");
    assert_false(is_super(d, "rt_alice"));
    wait_int(d, 1007, "SELECT v FROM %s WHERE id = 7", m.shadow);
    /* The dual-write function is alice's, with a pinned search_path. */
    char v[256];
    h_qtext(d, v, sizeof v, "SELECT pg_get_userbyid(proowner) || ' ' || array_to_string(proconfig, ',')"
                            " FROM pg_proc WHERE proname = 'm%lld_dw'", id);
    assert_string_equal(v, "rt_alice search_path=pg_catalog, pg_temp");
    PQclear(h_ctl_ok(ctl, "ABORT MIGRATION %lld", id));
}

/* ---------- item 4: no writable schema can substitute the trigger's operators ---------- */

static void test_operator(void **state)
{
    (void)state;
    make_login("rt_writer", false);
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE w_t (k varchar(20) PRIMARY KEY, v int);"
               "INSERT INTO w_t SELECT 'k' || i, i FROM generate_series(1, 100) i;"
               "GRANT SELECT, INSERT, UPDATE ON w_t TO rt_writer;"
               "GRANT CREATE ON SCHEMA public TO rt_writer");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    long long id = h_start_migration(ctl, "ALTER TABLE w_t ALTER COLUMN v TYPE bigint");
    h_mig m;
    h_mig_wait(ctl, id, "ready", -1, READY_MS, &m);
    /* The writer's own = for varchar, first in any path that has public. */
    char ci[512];
    snprintf(ci, sizeof ci, "%s", h_conninfo_proxy_db(&px, h_eng_case.db, "user=rt_writer password=" PW));
    PGconn *w = h_eng_keep(&h_eng_case, h_connect(ci));
    h_execf(w, "CREATE FUNCTION public.rt_eq(varchar, varchar) RETURNS bool LANGUAGE plpgsql AS $$\n"
               "BEGIN\n"
               "  BEGIN EXECUTE 'ALTER ROLE rt_writer SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;\n"
               "  RETURN $1::text OPERATOR(pg_catalog.=) $2::text;\n"
               "END $$;"
               "CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.rt_eq)");
    h_execf(w, "UPDATE w_t SET v = v + 1 WHERE k::text OPERATOR(pg_catalog.=) 'k5'");
    h_execf(w, "UPDATE w_t SET k = 'k5b' WHERE k::text OPERATOR(pg_catalog.=) 'k6'");
    h_execf(w, "INSERT INTO w_t VALUES ('new1', 1)");
    assert_false(is_super(d, "rt_writer"));
    /* …and the writes reached the shadow. */
    wait_int(d, 6, "SELECT v FROM %s WHERE k::text = 'k5'", m.shadow);
    wait_int(d, 0, "SELECT count(*) FROM %s WHERE k::text IN ('k6')", m.shadow);
    wait_int(d, 2, "SELECT count(*) FROM %s WHERE k::text IN ('k5b', 'new1')", m.shadow);
    PQclear(h_ctl_ok(ctl, "ABORT MIGRATION %lld", id));
    h_execf(d, "DROP OPERATOR public.= (varchar, varchar); DROP FUNCTION public.rt_eq(varchar, varchar)");
}

/* ---------- item 5: schema pgcutover cannot be squatted ---------- */

static void test_squat(void **state)
{
    (void)state;
    make_login("rt_squatter", false);
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "GRANT CREATE ON DATABASE %s TO rt_squatter", h_eng_case.db);
    h_execf(d, "CREATE TABLE s_t (id int PRIMARY KEY, v int); INSERT INTO s_t VALUES (1, 1)");
    h_execf(d, "SET ROLE rt_squatter;"
               "CREATE SCHEMA pgcutover;"
               "CREATE FUNCTION pgcutover.rt_grab() RETURNS SETOF record LANGUAGE plpgsql AS $$\n"
               "BEGIN\n"
               "  BEGIN EXECUTE 'ALTER ROLE rt_squatter SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;\n"
               "  RETURN;\n"
               "END $$;"
               "CREATE VIEW pgcutover.migrations AS SELECT * FROM pgcutover.rt_grab() AS "
               "(id bigint, state text, table_oid oid, statement text);"
               "CREATE TABLE pgcutover.trigger_errors (migration_id bigint, sqlstate text, message text);"
               "RESET ROLE");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    char code[6], msg[512];
    h_ctl_err(ctl, "ALTER TABLE s_t ADD COLUMN z int", code, msg, sizeof msg);
    assert_string_equal(code, "42501");
    assert_non_null(strstr(msg, "schema pgcutover is owned by role \"rt_squatter\""));
    h_ctl_err(ctl, "PLAN ALTER TABLE s_t ADD COLUMN z int", code, msg, sizeof msg);
    assert_string_equal(code, "42501");
    PQclear(h_ctl_ok(ctl, "SHOW MIGRATIONS"));
    assert_false(is_super(d, "rt_squatter"));

    /* A trusted schema with someone else's state table in it. */
    h_execf(d, "DROP SCHEMA pgcutover CASCADE; CREATE SCHEMA pgcutover;"
               "GRANT CREATE, USAGE ON SCHEMA pgcutover TO rt_squatter;"
               "SET ROLE rt_squatter; CREATE TABLE pgcutover.migration_columns (x int); RESET ROLE");
    h_ctl_err(ctl, "ALTER TABLE s_t ADD COLUMN z int", code, msg, sizeof msg);
    assert_string_equal(code, "42501");
    assert_non_null(strstr(msg, "table pgcutover.migration_columns is owned by role \"rt_squatter\""));

    /* Cleaned up, pgcutover makes its own; a table in schema pgcutover is refused. */
    h_execf(d, "DROP SCHEMA pgcutover CASCADE");
    long long id = h_start_migration(ctl, "ALTER TABLE s_t ALTER COLUMN v TYPE bigint");
    h_mig m;
    h_mig_wait(ctl, id, "ready", -1, READY_MS, &m);
    char owner[64];
    h_qtext(d, owner, sizeof owner, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE "
                                    "nspname = 'pgcutover'");
    assert_string_equal(owner, h_pg_user());
    h_ctl_err(ctl, "ALTER TABLE pgcutover.migrations ADD COLUMN q int", code, msg, sizeof msg);
    assert_string_equal(code, "0A000");
    PQclear(h_ctl_ok(ctl, "ABORT MIGRATION %lld", id));
    assert_false(is_super(d, "rt_squatter"));
}

/* ---------- a migration resumed from an earlier build's state ---------- */

/* The dual-write function an earlier build made (the engine's, SECURITY DEFINER with the
 * search_path of the engine's session) is replaced when pgcutover resumes the migration. */
static void test_resume_refreshes_capture(void **state)
{
    (void)state;
    make_login("rt_bob", false);
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE b_t (id int PRIMARY KEY, v int); ALTER TABLE b_t OWNER TO rt_bob;"
               "INSERT INTO b_t SELECT i, i FROM generate_series(1, 50) i");
    const char *sets[] = {"batch_size=100", "cutover=manual", NULL};
    h_proxy_start(&h_eng_case.px, sets);
    PGconn *ctl = h_eng_console(&h_eng_case, &h_eng_case.px);
    long long id = h_start_migration(ctl, "ALTER TABLE b_t ALTER COLUMN v TYPE bigint");
    h_mig m;
    h_mig_wait(ctl, id, "ready", -1, READY_MS, &m);
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
    d = h_eng_direct(&h_eng_case);
    h_execf(d, "ALTER FUNCTION pgcutover.m%lld_dw() OWNER TO %s;"
               "SET search_path = \"$user\", public;"
               "ALTER FUNCTION pgcutover.m%lld_dw() SET search_path FROM CURRENT", id, h_pg_user(), id);
    char v[256];
    h_qtext(d, v, sizeof v, "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'm%lld_dw'", id);
    assert_string_equal(v, h_pg_user());
    h_proxy_start(&h_eng_case.px2, sets);
    bool refreshed = false;
    for (int i = 0; i < 100 && !refreshed; i++) {
        h_qtext(d, v, sizeof v, "SELECT pg_get_userbyid(proowner) || ' ' || array_to_string(proconfig, ',')"
                                " FROM pg_proc WHERE proname = 'm%lld_dw'", id);
        refreshed = strcmp(v, "rt_bob search_path=pg_catalog, pg_temp") == 0;
        if (!refreshed)
            usleep(100000);
    }
    if (!refreshed)
        h_eng_fail("after the restart the dual-write function is still \"%s\"", v);
    ctl = h_eng_console(&h_eng_case, &h_eng_case.px2);
    h_execf(d, "UPDATE b_t SET v = -1 WHERE id = 3");
    wait_int(d, -1, "SELECT v FROM %s WHERE id = 3", m.shadow);
    PQclear(h_ctl_ok(ctl, "ABORT MIGRATION %lld", id));
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px2);
}

/* ---------- issue 16: a revert window's faults table is read as its owner ---------- */

/* A table owner turns the faults table of the revert window (theirs: the window's
 * trigger writes it as them) into a view calling their function (PostgreSQL 15 still
 * converts an empty table by CREATE RULE "_RETURN"); SHOW MIGRATION and REVERT read it,
 * as the owner: the function's ALTER ROLE … SUPERUSER fails, and what it returns is shown. */
static void test_window_faults(void **state)
{
    (void)state;
    make_login("rt_carol", false);
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "GRANT CREATE ON SCHEMA public TO rt_carol");
    PGconn *a = h_eng_keep(&h_eng_case, login_as("rt_carol"));
    h_execf(a, "CREATE TABLE c_t (id int PRIMARY KEY, v int); INSERT INTO c_t SELECT i, i FROM "
               "generate_series(1, 200) i;"
               "CREATE FUNCTION public.rt_carol_f() RETURNS text LANGUAGE plpgsql AS $$\n"
               "BEGIN\n"
               "  BEGIN EXECUTE 'ALTER ROLE rt_carol SUPERUSER';\n"
               "  EXCEPTION WHEN insufficient_privilege THEN NULL; END;\n"
               "  RETURN 'ran as ' || current_user;\n"
               "END $$");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    long long id = h_start_migration(ctl, "ALTER TABLE c_t ALTER COLUMN v TYPE bigint");
    h_mig m;
    h_mig_wait(ctl, id, "ready", -1, READY_MS, &m);
    PQclear(h_ctl_ok(ctl, "CUTOVER MIGRATION %lld", id));
    h_mig_wait(ctl, id, "done", -1, READY_MS, &m);
    long long w = h_qint(d, "SELECT id FROM pgcutover.migrations WHERE revert_of = %lld", id);
    assert_true(w > id);
    h_execf(a, "CREATE RULE \"_RETURN\" AS ON SELECT TO pgcutover.m%lld_faults DO INSTEAD SELECT "
               "public.rt_carol_f() AS key, 'planted'::text AS reason, now() AS at", w);
    PGresult *r = h_ctl_ok(ctl, "SHOW MIGRATION %lld", id);
    char rv[1024];
    snprintf(rv, sizeof rv, "%s", PQgetvalue(r, 0, h_col(r, "revertible")));
    PQclear(r);
    assert_false(is_super(d, "rt_carol"));
    if (strstr(rv, "ran as rt_carol: planted") == NULL)
        h_eng_fail("revertible: %s", rv);
    char cmd[64], code[6], msg[1024];
    snprintf(cmd, sizeof cmd, "REVERT MIGRATION %lld", id);
    h_ctl_err(ctl, cmd, code, msg, sizeof msg);
    assert_string_equal(code, "0A000");
    assert_false(is_super(d, "rt_carol"));
    /* closing the window drops a table, not carol's view: refused until she drops it */
    snprintf(cmd, sizeof cmd, "DROP MIGRATION %lld", id);
    h_ctl_err(ctl, cmd, code, msg, sizeof msg);
    if (strstr(msg, "is not a table") == NULL)
        h_eng_fail("%s: %s %s", cmd, code, msg);
    h_execf(a, "DROP VIEW pgcutover.m%lld_faults", w);
    PQclear(h_ctl_ok(ctl, "DROP MIGRATION %lld", id));
    assert_false(is_super(d, "rt_carol"));
}

static int group_setup(void **state)
{
    (void)state;
    exec_tolerant("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                  "'pgcutover_admin') THEN CREATE ROLE pgcutover_admin; END IF; END$$");
    const char *sets[] = {"batch_size=100", "target_batch_ms=2", "cutover=manual", NULL};
    h_proxy_start(&px, sets);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    h_eng_stop_group_proxy(&px);
    const char *roles[] = {"rt_mallory", "rt_alice", "rt_writer", "rt_squatter", "rt_bob", "rt_carol"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", roles[i]);
        exec_tolerant(sql);
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        H_ENG_CASE(test_user_text, "eng_rights_user"),
        H_ENG_CASE(test_owner_objects, "eng_rights_owner"),
        H_ENG_CASE(test_operator, "eng_rights_operator"),
        H_ENG_CASE(test_squat, "eng_rights_squat"),
        H_ENG_CASE(test_resume_refreshes_capture, "eng_rights_resume"),
        H_ENG_CASE(test_window_faults, "eng_rights_window"),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
