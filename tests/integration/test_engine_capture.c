/*
 * test_engine_capture.c — the change capture loses no write and raises no error
 * PostgreSQL would not (issue 12, items 1, 3, 4, 5, 7, 8; DESIGN.md §2.3). Each case
 * reproduces a way the old capture (a trigger writing the shadow in the application's
 * transaction) lost a write, corrupted one or failed, and checks the table after the
 * cutover against an oracle that does not use pgcutover: explicit expected rows, or a
 * reference table that got the same writes directly and then the plain ALTER TABLE in a
 * session with the server's default settings. Every change here is one PostgreSQL rewrites
 * (a type change, a volatile default), so it goes through the copy with instant_ddl = on.
 *
 *   rr_delete_update   REPEATABLE READ and SERIALIZABLE clients whose snapshot predates the
 *                      backfill of the rows they DELETE, re-key and UPDATE: no row comes
 *                      back, no key is left twice, no 40001.
 *   equal_keys         key updates to equal but not identical values (a case-insensitive
 *                      nondeterministic ICU collation; numeric 7 → 7.00): the new spelling
 *                      survives the cutover.
 *   session_settings   writers with their own TimeZone and DateStyle during timestamptz →
 *                      timestamp and date → text: the table is what one ALTER TABLE makes.
 *   second_unique      non-key UPDATEs racing the backfill on a table with a second unique
 *                      index: the migration does not fail with 23505.
 *   key_type_text      int key → text, with DELETEs and key UPDATEs during ready (there is
 *                      no text = integer operator).
 *   key_collation      a text key whose collation changes ("C" → ICU) on 120,000 rows with
 *                      writers: no 42P22, no 23505, no verify mismatch.
 *   truncate           TRUNCATE and new rows during the backfill.
 *   bound_objects      (item 2) a SQL-body function, a rule of another table, a materialized
 *                      view, a function of the row type and a rule of the table itself are
 *                      refused by PLAN and ALTER, named, before anything is created.
 *   batch_floor        (item 9) target_batch_ms = 1: the batch never shrinks below 100 rows.
 *   verify_mismatch    (item 6) a row only the shadow has fails verify; triggers, log and
 *                      shadow are dropped at once (no lock timeout on pgcutover's own
 *                      sessions).
 *   table_replaced     the table dropped and created again under its name while the migration
 *                      waits in ready (as pgbench -i does): the cutover refuses to swap.
 *   post_commit        (item 10) the VALIDATE statements for after the swap's commit are
 *                      recorded with done; a restart runs what a crash left.
 *   second_change      (item 11) three changes of one table and one of a same-named table
 *                      in another schema, every old table kept: no name collides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"

#define WAIT_MS 90000

static h_proxy px;

/* A client session through the proxy, kept in h_eng_case. */
static PGconn *client(const char *options)
{
    PGconn *c = h_connect(h_conninfo_proxy_db(&px, h_eng_case.db, options));
    PQsetNoticeProcessor(c, h_quiet_notice, NULL);
    return h_eng_keep(&h_eng_case, c);
}

/* Wait for at least min rows copied: in copying (the backfill is slowed so it usually still
 * is), or already verifying or ready — the throttle is set just after the start, and a
 * backfill that finished before it applied has copied those rows all the same. */
static void wait_copied(PGconn *ctl, long long id, long long min, h_mig *m)
{
    for (int i = 0; i < WAIT_MS / 50; i++) {
        h_mig_show(ctl, id, m);
        bool past = strcmp(m->state, "verifying") == 0 || strcmp(m->state, "ready") == 0;
        if (m->rows_copied >= min && (strcmp(m->state, "copying") == 0 || past))
            return;
        if (!past && strcmp(m->state, "copying") != 0 && strcmp(m->state, "preparing") != 0 &&
            strcmp(m->state, "pending") != 0)
            h_eng_fail("migration %lld is %s while waiting for %lld rows copied: %s", id, m->state,
                       min, m->error);
        usleep(50000);
    }
    h_eng_fail("migration %lld: not %lld rows copied in time", id, min);
}

/* To ready, then CUTOVER MIGRATION; fails unless done. */
static void finish(PGconn *ctl, long long id)
{
    h_mig m;
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld max_rows_per_second = 0", id));
    h_mig_wait(ctl, id, "ready", -1, WAIT_MS, &m);
    PQclear(h_ctl_ok(ctl, "CUTOVER MIGRATION %lld", id));
    h_mig_show(ctl, id, &m);
    if (strcmp(m.state, "done") != 0)
        h_eng_fail("migration %lld: %s after CUTOVER (%s)", id, m.state, m.error);
}

/* The rows of a and b (two queries of the same columns) are the same multiset. */
static void same_rows(PGconn *c, const char *a, const char *b, const char *what)
{
    long long d = h_qint(c, "SELECT (SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) x) + "
                            "(SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) y)",
                         a, b, b, a);
    if (d != 0) {
        char ex[1024];
        h_qtext(c, ex, sizeof ex, "SELECT string_agg(x::text, ' ') FROM (((%s) EXCEPT ALL (%s)) "
                                  "UNION ALL ((%s) EXCEPT ALL (%s)) LIMIT 6) x",
                a, b, b, a);
        h_eng_fail("%s: %lld rows differ, e.g. %s", what, d, ex);
    }
}

/* ---------- 1. REPEATABLE READ / SERIALIZABLE ---------- */

static void rr_case(const char *level)
{
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "DROP TABLE IF EXISTS t; CREATE TABLE t (id int PRIMARY KEY, v int);"
               "INSERT INTO t SELECT i, i FROM generate_series(1, 3000) i; ANALYZE t");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    PGconn *a = client(NULL);
    /* The client's snapshot comes before the migration copies anything. */
    h_execf(a, "BEGIN ISOLATION LEVEL %s", level);
    assert_int_equal(h_qint(a, "SELECT count(*) FROM t"), 3000);
    long long id = h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN v TYPE bigint");
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld max_rows_per_second = 1000", id));
    h_mig m;
    wait_copied(ctl, id, 1000, &m); /* rows 500, 700 and 900 are in the shadow now */
    PGresult *r = PQexec(a, "DELETE FROM t WHERE id = 500; UPDATE t SET id = 5000 WHERE id = 700; "
                            "UPDATE t SET v = -1 WHERE id = 900; COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        h_eng_fail("%s client: %s (PostgreSQL alone raises no error here)", level,
                   PQresultErrorMessage(r));
    PQclear(r);
    finish(ctl, id);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM t WHERE id IN (500, 700)"), 0);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM t WHERE id = 5000 AND v = 700"), 1);
    assert_int_equal(h_qint(d, "SELECT v FROM t WHERE id = 900"), -1);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM t"), 2999);
    h_execf(d, "DROP TABLE IF EXISTS %s", m.old_table[0] ? m.old_table : "pgcutover.none");
}

static void test_rr_delete_update(void **state)
{
    (void)state;
    rr_case("REPEATABLE READ");
    rr_case("SERIALIZABLE");
}

/* ---------- 3. equal but not identical keys ---------- */

static void test_equal_keys(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);"
               "CREATE TABLE u (email text COLLATE ci PRIMARY KEY, v int);"
               "INSERT INTO u SELECT 'user' || i || '@example.com', i FROM generate_series(1, 500) i;"
               "CREATE TABLE n (k numeric PRIMARY KEY, v int);"
               "INSERT INTO n SELECT i, i FROM generate_series(1, 500) i");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    long long iu = h_start_migration(ctl, "ALTER TABLE u ALTER COLUMN v TYPE bigint");
    long long in = h_start_migration(ctl, "ALTER TABLE n ALTER COLUMN v TYPE bigint");
    h_mig m;
    h_mig_wait(ctl, iu, "ready", -1, WAIT_MS, &m);
    h_mig_wait(ctl, in, "ready", -1, WAIT_MS, &m);
    PGconn *a = client(NULL);
    h_execf(a, "UPDATE u SET email = 'User7@Example.COM' WHERE email = 'user7@example.com'");
    h_execf(a, "UPDATE u SET email = 'USER8@EXAMPLE.COM', v = -8 WHERE email = 'user8@example.com'");
    h_execf(a, "UPDATE n SET k = 7.00 WHERE k = 7");
    h_execf(a, "UPDATE n SET k = 8.0, v = -8 WHERE k = 8");
    finish(ctl, iu);
    finish(ctl, in);
    char v[64];
    assert_string_equal(h_qtext(d, v, sizeof v, "SELECT email FROM u WHERE email = 'user7@example.com'"),
                        "User7@Example.COM");
    assert_string_equal(h_qtext(d, v, sizeof v, "SELECT email || ' ' || v FROM u WHERE email = 'user8@example.com'"),
                        "USER8@EXAMPLE.COM -8");
    assert_string_equal(h_qtext(d, v, sizeof v, "SELECT k::text FROM n WHERE k = 7"), "7.00");
    assert_string_equal(h_qtext(d, v, sizeof v, "SELECT k::text || ' ' || v FROM n WHERE k = 8"), "8.0 -8");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM u"), 500);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM n"), 500);
}

/* ---------- 4. session settings of the writers ---------- */

static void test_session_settings(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    const char *ddl = "(id int PRIMARY KEY, t timestamptz, dt date);";
    h_execf(d, "CREATE TABLE s %s CREATE TABLE s_ref %s", ddl, ddl);
    h_execf(d, "INSERT INTO s SELECT i, timestamptz '2026-01-01 12:00:00+00' + i * interval '1 hour', "
               "date '2026-01-01' + i FROM generate_series(1, 400) i; INSERT INTO s_ref SELECT * FROM s");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    long long id = h_start_migration(ctl, "ALTER TABLE s ALTER COLUMN t TYPE timestamp, "
                                          "ALTER COLUMN dt TYPE text");
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld max_rows_per_second = 400", id));
    h_mig m;
    wait_copied(ctl, id, 100, &m);
    /* Writers in other time zones and date styles, during the backfill and in ready: the
     * same statements go to s (through pgcutover) and s_ref (directly, same session). */
    const char *opts[] = {"options='-c TimeZone=America/New_York -c DateStyle=SQL,DMY'",
                          "options='-c TimeZone=Asia/Kolkata -c DateStyle=German'"};
    for (int round = 0; round < 2; round++) { /* during the backfill, then in ready */
        for (int w = 0; w < 2; w++) {
            PGconn *a = client(opts[w]);
            for (int i = 1; i <= 400; i += 37 + w) {
                /* literals read with the session's TimeZone and DateStyle */
                for (int t = 0; t < 2; t++)
                    h_execf(a, "UPDATE %s SET t = t + interval '1 minute', dt = dt + 1 WHERE id = %d;"
                               "INSERT INTO %s VALUES (%d, '2026-06-01 08:00:00', '03/04/2026') "
                               "ON CONFLICT (id) DO UPDATE SET t = EXCLUDED.t - interval '3 hours'",
                            t ? "s_ref" : "s", i, t ? "s_ref" : "s", 1000 + i + 10 * round);
            }
            h_eng_drop_conn(&h_eng_case, a);
        }
        if (round == 0) {
            PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld max_rows_per_second = 0", id));
            h_mig_wait(ctl, id, "ready", -1, WAIT_MS, &m);
        }
    }
    PQclear(h_ctl_ok(ctl, "CUTOVER MIGRATION %lld", id));
    h_mig_show(ctl, id, &m);
    assert_string_equal(m.state, "done");
    /* The oracle: the plain ALTER TABLE on s_ref in a session with the server's defaults. */
    h_execf(d, "ALTER TABLE s_ref ALTER COLUMN t TYPE timestamp, ALTER COLUMN dt TYPE text");
    same_rows(d, "SELECT id, t, dt FROM s", "SELECT id, t, dt FROM s_ref",
              "s after the cutover vs the plain ALTER on the same writes");
}

/* ---------- 5. a second unique index ---------- */

static void test_second_unique(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE w (id int PRIMARY KEY, u int NOT NULL UNIQUE, v int);"
               "INSERT INTO w SELECT i, i * 10, 0 FROM generate_series(1, 6000) i");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    long long id = h_start_migration(ctl, "ALTER TABLE w ALTER COLUMN v TYPE bigint");
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld max_rows_per_second = 3000", id));
    h_mig m;
    wait_copied(ctl, id, 1, &m);
    PGconn *a = client(NULL);
    long long updates = 0;
    srand(12);
    /* Non-key updates ahead of and behind the backfill, and a unique value moved from one
     * row to another (first vacated, then taken). */
    for (int i = 0; i < 600; i++) {
        int k = 1 + rand() % 6000;
        h_execf(a, "UPDATE w SET v = v + 1 WHERE id = %d", k);
        updates++;
        if (i % 50 == 0) {
            h_execf(a, "BEGIN; UPDATE w SET u = -u WHERE id = %d; UPDATE w SET u = %d WHERE id = %d;"
                       "COMMIT", k, k * 10, k % 6000 + 1 == k ? 1 : k % 6000 + 1);
        }
        h_mig_show(ctl, id, &m);
        if (h_mig_terminal(m.state))
            h_eng_fail("migration %lld %s: %s", id, m.state, m.error);
    }
    finish(ctl, id);
    assert_int_equal(h_qint(d, "SELECT sum(v) FROM w"), updates);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM w"), 6000);
}

/* ---------- 7. a key type with no cross-type = ---------- */

static void test_key_type_text(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE k (id int PRIMARY KEY, v int); INSERT INTO k SELECT i, i FROM "
               "generate_series(1, 300) i");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    long long id = h_start_migration(ctl, "ALTER TABLE k ALTER COLUMN id TYPE text");
    h_mig m;
    h_mig_wait(ctl, id, "ready", -1, WAIT_MS, &m);
    PGconn *a = client(NULL);
    h_execf(a, "DELETE FROM k WHERE id = 10; UPDATE k SET id = 1000 WHERE id = 11;"
               "UPDATE k SET v = -12 WHERE id = 12; INSERT INTO k VALUES (2000, 2000)");
    finish(ctl, id);
    same_rows(d, "SELECT id, v FROM k",
              "SELECT i::text, CASE i WHEN 12 THEN -12 WHEN 1000 THEN 11 ELSE i END FROM "
              "generate_series(1, 300) i WHERE i NOT IN (10, 11) UNION ALL SELECT '1000', 11 "
              "UNION ALL SELECT '2000', 2000",
              "k after int → text");
}

/* ---------- 8. a key collation change ---------- */

static void test_key_collation(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    /* Mixed case and punctuation: "C" and ICU order them very differently. */
    h_execf(d, "CREATE TABLE c (k text COLLATE \"C\" PRIMARY KEY, v int);"
               "INSERT INTO c SELECT CASE i %% 4 WHEN 0 THEN 'a' WHEN 1 THEN 'B' WHEN 2 THEN '_c' "
               "ELSE 'D-' END || lpad(i::text, 7, '0'), i FROM generate_series(1, 120000) i");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    long long id = h_start_migration(ctl, "ALTER TABLE c ALTER COLUMN k TYPE text COLLATE \"en-x-icu\"");
    h_mig m;
    wait_copied(ctl, id, 1, &m);
    PGconn *a = client(NULL);
    h_execf(a, "DELETE FROM c WHERE v %% 1000 = 3; UPDATE c SET v = -v WHERE v %% 1000 = 5;"
               "UPDATE c SET k = 'Z' || k WHERE v %% 1000 = 7");
    finish(ctl, id);
    same_rows(d, "SELECT k COLLATE \"C\", v FROM c",
              "SELECT CASE WHEN i % 1000 = 7 THEN 'Z' ELSE '' END || CASE i % 4 WHEN 0 THEN 'a' "
              "WHEN 1 THEN 'B' WHEN 2 THEN '_c' ELSE 'D-' END || lpad(i::text, 7, '0') COLLATE "
              "\"C\", CASE WHEN i % 1000 = 5 THEN -i ELSE i END FROM generate_series(1, 120000) i "
              "WHERE i % 1000 <> 3",
              "c after the collation change");
}

/* ---------- 11. changes of the same table, old tables kept ---------- */

static void test_second_change(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE SCHEMA other; CREATE TABLE a (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
               "u int UNIQUE, v int); CREATE TABLE other.a (id int PRIMARY KEY, u int UNIQUE);"
               "INSERT INTO a (u, v) SELECT i, i FROM generate_series(1, 200) i;"
               "INSERT INTO other.a SELECT i, i FROM generate_series(1, 50) i");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    /* a volatile default: PostgreSQL rewrites the table, so each one is a copy */
#define VOLATILE " timestamptz DEFAULT clock_timestamp()"
    const char *changes[] = {
        "ALTER TABLE a ADD COLUMN a1" VOLATILE, "ALTER TABLE a ADD COLUMN a2" VOLATILE,
        "ALTER TABLE other.a ADD COLUMN b1" VOLATILE, "ALTER TABLE a ADD COLUMN a3" VOLATILE};
#undef VOLATILE
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++)
        finish(ctl, h_start_migration(ctl, changes[i])); /* no DROP MIGRATION in between */
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.migrations WHERE state = 'done'"), 4);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'a'::regclass "
                               "AND attname IN ('a1', 'a2', 'a3')"), 3);
    /* the table keeps its index names; identity goes on */
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND "
                               "tablename = 'a' AND indexname IN ('a_pkey', 'a_u_key')"), 2);
    h_execf(d, "INSERT INTO a (u, v) VALUES (1000, 1000)");
    assert_int_equal(h_qint(d, "SELECT id FROM a WHERE u = 1000"), 201);
}

/* ---------- 2. objects bound to the table by OID ---------- */

static void test_bound_objects(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    /* w's type change is a copy (a rewrite); the view reads id and v only */
    h_execf(d, "CREATE TABLE t (id int PRIMARY KEY, v int, w int); CREATE TABLE audit_in (id int);"
               "CREATE VIEW t_view AS SELECT id, v FROM t");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    struct {
        const char *create, *drop, *named;
    } bound[] = {
        {"CREATE FUNCTION add_row(i int) RETURNS void LANGUAGE sql BEGIN ATOMIC INSERT INTO t "
         "VALUES (i, i); END",
         "DROP FUNCTION add_row(int)", "function public.add_row(integer)"},
        {"CREATE RULE audit_copy AS ON INSERT TO audit_in DO ALSO INSERT INTO t VALUES (NEW.id, 0)",
         "DROP RULE audit_copy ON audit_in", "rule audit_copy on table public.audit_in"},
        {"CREATE MATERIALIZED VIEW t_mv AS SELECT count(*) FROM t", "DROP MATERIALIZED VIEW t_mv",
         "materialized view public.t_mv"},
        {"CREATE FUNCTION t_label(t) RETURNS text LANGUAGE sql AS 'SELECT $1.v::text'",
         "DROP FUNCTION t_label(t)", "function public.t_label(public.t)"},
        {"CREATE RULE t_also AS ON DELETE TO t DO ALSO INSERT INTO audit_in VALUES (OLD.id)",
         "DROP RULE t_also ON t", "rule t_also on table public.t"},
    };
    for (size_t i = 0; i < sizeof bound / sizeof bound[0]; i++) {
        h_execf(d, "%s", bound[i].create);
        char code[6], msg[1024];
        for (int plan = 0; plan < 2; plan++) {
            h_ctl_err(ctl,
                      plan ? "PLAN ALTER TABLE t ALTER COLUMN w TYPE bigint"
                           : "ALTER TABLE t ALTER COLUMN w TYPE bigint",
                      code, msg, sizeof msg);
            if (strcmp(code, "0A000") != 0 || strstr(msg, bound[i].named) == NULL)
                h_eng_fail("with %s: [%s] %s (want 0A000 naming it)", bound[i].named, code, msg);
        }
        assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON "
                                   "n.oid = c.relnamespace WHERE n.nspname = 'pgcutover' AND "
                                   "c.relname LIKE 't\\_%%'"), 0);
        h_execf(d, "%s", bound[i].drop);
    }
    /* A view is carried over: accepted. */
    finish(ctl, h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN w TYPE bigint"));
}

/* ---------- 9. the batch size with a tiny target_batch_ms ---------- */

static void test_batch_floor(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE b (id int PRIMARY KEY, v text); INSERT INTO b SELECT i, repeat('x', 200) "
               "FROM generate_series(1, 60000) i");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    long long id = h_start_migration(
        ctl, "ALTER TABLE b ALTER COLUMN id TYPE bigint, ADD COLUMN n int DEFAULT 7");
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld target_batch_ms = 1", id));
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld batch_size = 2000", id));
    long long smallest = -1, samples = 0;
    for (int i = 0; i < WAIT_MS / 20; i++) {
        PGresult *r = h_ctl_ok(ctl, "SHOW MIGRATION %lld", id);
        const char *st = PQgetvalue(r, 0, h_col(r, "state"));
        bool copying = strcmp(st, "copying") == 0, over = strcmp(st, "ready") == 0 || h_mig_terminal(st);
        if (copying && !PQgetisnull(r, 0, h_col(r, "batch_size"))) {
            long long b = atoll(PQgetvalue(r, 0, h_col(r, "batch_size")));
            if (smallest < 0 || b < smallest)
                smallest = b;
            samples++;
        }
        PQclear(r);
        if (over)
            break;
        usleep(20000);
    }
    fprintf(stderr, "batch_floor: %lld samples while copying, smallest batch %lld\n", samples, smallest);
    if (samples > 0 && smallest < 100)
        h_eng_fail("the batch shrank to %lld rows with target_batch_ms = 1", smallest);
    finish(ctl, id);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM b WHERE n = 7"), 60000);
}

/* ---------- 10. the VALIDATE after the cutover's commit survives a crash ---------- */

static void test_post_commit_durable(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE parent (id int PRIMARY KEY); CREATE TABLE child (id int PRIMARY KEY, "
               "pid int REFERENCES parent); INSERT INTO parent SELECT generate_series(1, 100);"
               "INSERT INTO child SELECT i, i FROM generate_series(1, 100) i");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    long long id = h_start_migration(ctl, "ALTER TABLE parent ADD COLUMN note timestamptz DEFAULT "
                                          "clock_timestamp()");
    finish(ctl, id);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_constraint WHERE conname = 'child_pid_fkey' "
                               "AND convalidated"), 1);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.migrations WHERE id = %lld AND "
                               "post_commit IS NULL", id), 1);
    /* As a crash right after the swap's commit leaves it: the foreign key re-added NOT VALID
     * and its VALIDATE recorded, not run. A new pgcutover runs it. */
    h_execf(d, "ALTER TABLE child DROP CONSTRAINT child_pid_fkey; ALTER TABLE child ADD CONSTRAINT "
               "child_pid_fkey FOREIGN KEY (pid) REFERENCES parent NOT VALID; UPDATE "
               "pgcutover.migrations SET post_commit = 'ALTER TABLE public.child VALIDATE "
               "CONSTRAINT child_pid_fkey' WHERE id = %lld", id);
    const char *sets[] = {"cutover=manual", NULL};
    h_proxy_start(&h_eng_case.px, sets);
    bool validated = false;
    for (int i = 0; i < 100 && !validated; i++) {
        validated = h_qint(d, "SELECT count(*) FROM pg_constraint WHERE conname = 'child_pid_fkey' "
                              "AND convalidated") == 1 &&
                    h_qint(d, "SELECT count(*) FROM pgcutover.migrations WHERE id = %lld AND "
                              "post_commit IS NULL", id) == 1;
        if (!validated)
            usleep(100000);
    }
    if (!validated)
        h_eng_fail("the recorded VALIDATE did not run after the restart");
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* ---------- 6. a verify mismatch cleans up at once ---------- */

static void test_verify_mismatch_cleanup(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE vm (id int PRIMARY KEY, v int); INSERT INTO vm SELECT i, i FROM "
               "generate_series(1, 2000) i");
    /* its own pgcutover, throttled from the start: the verify must still be ahead when the
     * extra row goes in (a SET MIGRATION after the start can come after the backfill) */
    const char *sets[] = {"batch_size=100", "target_batch_ms=5", "cutover=manual",
                          "max_rows_per_second=1000", NULL};
    h_proxy_start(&h_eng_case.px, sets);
    h_proxy *own = &h_eng_case.px;
    PGconn *ctl = h_eng_console(&h_eng_case, own);
    long long id = h_start_migration(ctl, "ALTER TABLE vm ALTER COLUMN v TYPE bigint");
    h_mig m;
    wait_copied(ctl, id, 100, &m);
    /* A row only the shadow has, which no write of the application explains. */
    h_execf(d, "INSERT INTO %s (id, v) VALUES (1000000, 1)", m.shadow);
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld max_rows_per_second = 0", id));
    for (int i = 0; i < WAIT_MS / 100; i++) {
        h_mig_show(ctl, id, &m);
        if (strcmp(m.state, "failed") == 0 && strstr(m.phase, "cleaned up") != NULL)
            break;
        if (strcmp(m.state, "ready") == 0 || strcmp(m.state, "done") == 0)
            h_eng_fail("migration %lld reached %s despite the extra shadow row", id, m.state);
        usleep(100000);
    }
    if (strstr(m.error, "verify") == NULL || strstr(m.phase, "cleaned up") == NULL)
        h_eng_fail("migration %lld: state %s, phase %s, error %s", id, m.state, m.phase, m.error);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'vm'::regclass "
                               "AND tgname LIKE 'pgcutover%%'"), 0);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                               "c.relnamespace WHERE n.nspname = 'pgcutover' AND c.relname IN "
                               "('vm_%lld_new', 'm%lld_log')", id, id), 0);
    /* the cleanup's lock on vm was not held up by pgcutover's own sessions */
    assert_int_equal(h_shell("grep -q 'lock_timeout .* on attempt' %s", own->log) == 0, 0);
    h_eng_stop_proxy(&h_eng_case, own);
}

/* ---------- the table dropped and made again under its name ---------- */

static void test_table_replaced(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE rp (id int PRIMARY KEY, v int); INSERT INTO rp SELECT i, i FROM "
               "generate_series(1, 100) i");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    long long id = h_start_migration(
        ctl, "ALTER TABLE rp ADD COLUMN note timestamptz DEFAULT clock_timestamp()");
    h_mig m;
    h_mig_wait(ctl, id, "ready", -1, WAIT_MS, &m);
    /* as `pgbench -i` does to its tables */
    h_execf(d, "DROP TABLE rp; CREATE TABLE rp (id int, v int); INSERT INTO rp VALUES (7, 7)");
    char code[6], msg[512], cmd[64];
    snprintf(cmd, sizeof cmd, "CUTOVER MIGRATION %lld", id);
    h_ctl_err(ctl, cmd, code, msg, sizeof msg);
    h_mig_show(ctl, id, &m);
    if (strcmp(m.state, "failed") != 0 || strstr(m.error, "dropped or replaced") == NULL)
        h_eng_fail("migration %lld: %s (%s) after its table was replaced", id, m.state, m.error);
    /* the new table is untouched: no key, its one row, no column added */
    assert_int_equal(h_qint(d, "SELECT count(*) FROM rp"), 1);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'rp'::regclass "
                               "AND attname = 'note'"), 0);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'rp'::regclass"), 0);
}

/* ---------- TRUNCATE ---------- */

static void test_truncate(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE r (id int PRIMARY KEY, v int); INSERT INTO r SELECT i, i FROM "
               "generate_series(1, 3000) i");
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    long long id = h_start_migration(ctl, "ALTER TABLE r ALTER COLUMN v TYPE bigint");
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld max_rows_per_second = 1000", id));
    h_mig m;
    wait_copied(ctl, id, 500, &m);
    PGconn *a = client(NULL);
    h_execf(a, "TRUNCATE r; INSERT INTO r VALUES (1, -1), (2500, -2500), (9000, -9000)");
    finish(ctl, id);
    same_rows(d, "SELECT id, v FROM r", "VALUES (1, -1), (2500, -2500), (9000, -9000)",
              "r after TRUNCATE during the backfill");
}

static int group_setup(void **state)
{
    (void)state;
    const char *sets[] = {"batch_size=100", "target_batch_ms=5", "cutover=manual", NULL};
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
        H_ENG_CASE(test_rr_delete_update, "eng_cap_rr"),
        H_ENG_CASE(test_equal_keys, "eng_cap_equal"),
        H_ENG_CASE(test_session_settings, "eng_cap_settings"),
        H_ENG_CASE(test_second_unique, "eng_cap_unique"),
        H_ENG_CASE(test_key_type_text, "eng_cap_keytext"),
        H_ENG_CASE(test_key_collation, "eng_cap_coll"),
        H_ENG_CASE(test_truncate, "eng_cap_truncate"),
        H_ENG_CASE(test_second_change, "eng_cap_second"),
        H_ENG_CASE(test_bound_objects, "eng_cap_bound"),
        H_ENG_CASE(test_batch_floor, "eng_cap_batch"),
        H_ENG_CASE(test_post_commit_durable, "eng_cap_post"),
        H_ENG_CASE(test_verify_mismatch_cleanup, "eng_cap_verify"),
        H_ENG_CASE(test_table_replaced, "eng_cap_replaced"),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
