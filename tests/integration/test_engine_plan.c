/*
 * test_engine_plan.c — PLAN <statement> (issue 13): every step's lock and how long
 * clients can wait for it, the estimate from the table's size, and warnings with a
 * stable rule id. One pgcutover for the file (instant_ddl = on, lock_timeout_ms = 150,
 * cutover_attempts = 7), one database per case.
 *
 *   warnings   each rule's trigger shows its id (the row starts with it), and only the
 *              expected ids; PLAN changes nothing in the catalog (a dry run); ADD COLUMN
 *              note text, a constant default, a widening type change and a FOREIGN KEY
 *              with an index starting with its column show none; a default calling a
 *              function declared VOLATILE warns and the same function declared STABLE does
 *              not (PostgreSQL's pg_proc.provolatile decides, not a list of names).
 *   locks      one statement of each strategy (copy, instant, validate, concurrent, direct):
 *              the lock and client_wait columns of its steps.
 *   estimate   the same statements on a 1,000-row and a 100,000-row table: the larger
 *              table's estimate is larger (copy: rows; concurrent: bytes); instant says
 *              milliseconds. No timing assertion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "h_engine.h"

static h_proxy px;

/* Every table of schemas public and pgcutover with its storage, columns, defaults and
 * constraints, the indexes, and whether schema pgcutover exists: what a dry run must not
 * change. */
static const char catalog_sql[] =
    "SELECT coalesce(string_agg(c.relname || ' ' || c.relkind::text || ' ' || c.relfilenode || ' ' || "
    "coalesce((SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || "
    "coalesce(pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY attnum) FROM pg_attribute a LEFT "
    "JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = c.oid "
    "AND attnum > 0 AND NOT attisdropped), '') || ' ' || coalesce((SELECT string_agg(conname || "
    "convalidated, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = c.oid), ''), '; ' ORDER "
    "BY c.relname), '') || ' | ' || (SELECT count(*) FROM pg_namespace WHERE nspname = 'pgcutover') "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', "
    "'pgcutover')";

/* The ids of PLAN sql's warning rows, space-separated, in order, into out; fails unless
 * every warning row starts with "PGC<3 digits> ". */
static void plan_warnings(PGconn *ctl, const char *sql, char *out, size_t len)
{
    PGresult *r = h_ctl_ok(ctl, "PLAN %s", sql);
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        if (strcmp(PQgetvalue(r, i, h_col(r, "phase")), "warning") != 0)
            continue;
        const char *w = PQgetvalue(r, i, h_col(r, "description"));
        if (strncmp(w, "PGC", 3) != 0 || strspn(w + 3, "0123456789") != 3 || w[6] != ' ')
            h_eng_fail("PLAN %s: a warning without a rule id: %s", sql, w);
        n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s%.6s", n ? " " : "", w);
    }
    PQclear(r);
}

static void test_warnings(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    h_execf(d, "CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p SELECT generate_series(1, 10);"
               "CREATE TABLE t (id int PRIMARY KEY, a int, s varchar(20), d int, r int);"
               "CREATE INDEX t_a_s ON t (a, s);"
               "INSERT INTO t SELECT i, i %% 10 + 1, 's' || i, i, i %% 10 + 1 FROM generate_series(1, 200) i;"
               "CREATE FUNCTION f_vol() RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 1';"
               "CREATE FUNCTION f_stable() RETURNS int STABLE LANGUAGE sql AS 'SELECT 1'");
    static const struct {
        const char *sql, *want; /* the ids PLAN shows, in order */
    } cases[] = {
        {"ALTER TABLE t DROP COLUMN d", "PGC001 PGC002"},
        {"DROP TABLE t", "PGC001"},
        {"ALTER TABLE t RENAME COLUMN d TO d2", "PGC002"},
        {"ALTER TABLE t RENAME TO t2", "PGC002"},
        {"ALTER TABLE t ALTER COLUMN s TYPE varchar(5)", "PGC002 PGC004"},
        {"ALTER TABLE t ALTER COLUMN d TYPE int USING d + 1", "PGC004"},
        {"ALTER TABLE t ADD COLUMN ts timestamptz DEFAULT clock_timestamp()", "PGC003"},
        {"ALTER TABLE t ADD COLUMN g float8 DEFAULT random() * 2", "PGC003"},
        {"ALTER TABLE t ADD COLUMN v int DEFAULT f_vol()", "PGC003"},
        {"ALTER TABLE t ADD CONSTRAINT t_r_fk FOREIGN KEY (r) REFERENCES p (id)", "PGC005"},
        /* no hazard */
        {"ALTER TABLE t ADD COLUMN note text", ""},
        {"ALTER TABLE t ADD COLUMN n int DEFAULT 0", ""},
        {"ALTER TABLE t ADD COLUMN v int DEFAULT f_stable()", ""},
        {"ALTER TABLE t ALTER COLUMN s TYPE text", ""},
        {"ALTER TABLE t ADD CONSTRAINT t_a_fk FOREIGN KEY (a) REFERENCES p (id)", ""},
        {"CREATE INDEX ON t (r)", ""},
        {"CREATE VIEW t_v AS SELECT id FROM t", ""},
    };
    char before[8192], after[8192], got[128];
    h_qtext(d, before, sizeof before, catalog_sql);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        plan_warnings(ctl, cases[i].sql, got, sizeof got);
        if (strcmp(got, cases[i].want) != 0)
            h_eng_fail("PLAN %s: warnings [%s], want [%s]", cases[i].sql, got, cases[i].want);
        h_qtext(d, after, sizeof after, catalog_sql);
        if (strcmp(before, after) != 0)
            h_eng_fail("PLAN %s changed the catalog:\n  before %s\n  after  %s", cases[i].sql,
                       before, after);
    }
    /* The text: id, name, the detail naming the object, the advice. */
    PGresult *r = h_ctl_ok(ctl, "PLAN ALTER TABLE t ADD COLUMN ts timestamptz DEFAULT clock_timestamp()");
    bool named = false;
    for (int i = 0; i < PQntuples(r); i++)
        named |= strncmp(PQgetvalue(r, i, h_col(r, "description")), "PGC003 volatile default: ", 25) == 0 &&
                 strstr(PQgetvalue(r, i, h_col(r, "description")), "clock_timestamp()") != NULL;
    PQclear(r);
    assert_true(named);
    r = h_ctl_ok(ctl, "PLAN ALTER TABLE t RENAME COLUMN d TO d2");
    bool advice = false;
    for (int i = 0; i < PQntuples(r); i++)
        advice |= strstr(PQgetvalue(r, i, h_col(r, "description")), "expand/contract") != NULL;
    PQclear(r);
    assert_true(advice);
}

/* The lock and client_wait of the n-th (0-based) row of phase in PLAN sql. */
static void plan_lock(PGconn *ctl, const char *sql, const char *phase, int nth, char *lock,
                      char *wait, size_t len)
{
    PGresult *r = h_ctl_ok(ctl, "PLAN %s", sql);
    int seen = 0, row = -1;
    for (int i = 0; i < PQntuples(r) && row < 0; i++)
        if (strcmp(PQgetvalue(r, i, h_col(r, "phase")), phase) == 0 && seen++ == nth)
            row = i;
    if (row < 0)
        h_eng_fail("PLAN %s: no row %d of phase %s", sql, nth, phase);
    /* every step (not check, strategy, estimate, warning) says its lock and wait */
    for (int i = 0; i < PQntuples(r); i++) {
        const char *ph = PQgetvalue(r, i, h_col(r, "phase"));
        bool info = strcmp(ph, "check") == 0 || strcmp(ph, "strategy") == 0 ||
                    strcmp(ph, "estimate") == 0 || strcmp(ph, "warning") == 0;
        if (!info && (PQgetisnull(r, i, h_col(r, "lock")) || PQgetisnull(r, i, h_col(r, "client_wait"))))
            h_eng_fail("PLAN %s: step %d (%s) has no lock or client_wait", sql, i + 1, ph);
    }
    snprintf(lock, len, "%s", PQgetvalue(r, row, h_col(r, "lock")));
    snprintf(wait, len, "%s", PQgetvalue(r, row, h_col(r, "client_wait")));
    PQclear(r);
}

static void test_locks(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    h_execf(d, "CREATE TABLE p (id int PRIMARY KEY); CREATE TABLE t (id int PRIMARY KEY, a int);"
               "INSERT INTO t SELECT generate_series(1, 100), 1");
    static const char held[] = "up to 150 ms per attempt (lock_timeout_ms) × 7 attempts";
    static const struct {
        const char *sql, *phase;
        int nth;
        const char *lock, *wait; /* lock: a prefix; wait: "none" or a part of the text */
    } cases[] = {
        {"ALTER TABLE t ALTER COLUMN a TYPE bigint", "prepare", 0, "ACCESS SHARE", "none"},
        {"ALTER TABLE t ALTER COLUMN a TYPE bigint", "triggers", 2, "SHARE ROW EXCLUSIVE", held},
        {"ALTER TABLE t ALTER COLUMN a TYPE bigint", "backfill", 0, "ROW SHARE", "target_batch_ms"},
        {"ALTER TABLE t ALTER COLUMN a TYPE bigint", "verify", 0, "ACCESS SHARE", "none"},
        {"ALTER TABLE t ALTER COLUMN a TYPE bigint", "cutover", 0, "ACCESS EXCLUSIVE", held},
        {"ALTER TABLE t ADD COLUMN note text", "instant", 0, "ACCESS EXCLUSIVE", held},
        {"ALTER TABLE t ALTER COLUMN a SET STATISTICS 500", "instant", 0, "SHARE UPDATE EXCLUSIVE", held},
        {"ALTER TABLE t ADD CONSTRAINT a_pos CHECK (a > 0)", "validate", 0, "ACCESS EXCLUSIVE", held},
        {"ALTER TABLE t ADD CONSTRAINT a_pos CHECK (a > 0)", "validate", 1, "SHARE UPDATE EXCLUSIVE", "none"},
        {"ALTER TABLE t ADD CONSTRAINT a_fk FOREIGN KEY (a) REFERENCES p (id)", "validate", 0,
         "SHARE ROW EXCLUSIVE", held},
        {"ALTER TABLE t ALTER COLUMN a SET NOT NULL", "validate", 1, "SHARE UPDATE EXCLUSIVE", "none"},
        {"ALTER TABLE t ALTER COLUMN a SET NOT NULL", "validate", 2, "ACCESS EXCLUSIVE", held},
        {"CREATE INDEX ON t (a)", "concurrent", 0, "SHARE UPDATE EXCLUSIVE", "none"},
        {"CREATE VIEW t_v AS SELECT id FROM t", "direct", 0, "ACCESS SHARE", held},
        {"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "direct", 0, "none", "none"},
        {"DROP TABLE t", "direct", 0, "ACCESS EXCLUSIVE", held},
    };
    char lock[512], wait[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        plan_lock(ctl, cases[i].sql, cases[i].phase, cases[i].nth, lock, wait, sizeof lock);
        bool lock_ok = strncmp(lock, cases[i].lock, strlen(cases[i].lock)) == 0 &&
                       (lock[strlen(cases[i].lock)] == 0 || lock[strlen(cases[i].lock)] == ' ');
        bool wait_ok = strcmp(cases[i].wait, "none") == 0 ? strcmp(wait, "none") == 0
                                                          : strstr(wait, cases[i].wait) != NULL;
        if (!lock_ok || !wait_ok)
            h_eng_fail("PLAN %s, %s row %d: lock \"%s\", client_wait \"%s\"; want \"%s\", \"%s\"",
                       cases[i].sql, cases[i].phase, cases[i].nth, lock, wait, cases[i].lock,
                       cases[i].wait);
    }
}

/* The estimate of PLAN sql in ms (its description: "about <n> ms|s|min|h …"); -1 for
 * "milliseconds (catalog only)". */
static double plan_estimate(PGconn *ctl, const char *sql)
{
    PGresult *r = h_ctl_ok(ctl, "PLAN %s", sql);
    double ms = -2;
    for (int i = 0; i < PQntuples(r); i++) {
        if (strcmp(PQgetvalue(r, i, h_col(r, "phase")), "estimate") != 0)
            continue;
        const char *e = PQgetvalue(r, i, h_col(r, "description"));
        double v;
        char unit[8];
        if (strncmp(e, "milliseconds", 12) == 0)
            ms = -1;
        else if (sscanf(e, "about %lf %7s", &v, unit) == 2)
            ms = v * (strcmp(unit, "ms") == 0  ? 1
                      : strcmp(unit, "s") == 0 ? 1e3
                      : strcmp(unit, "min") == 0 ? 60e3
                                                  : 3600e3);
        if (strstr(e, "estimate") == NULL)
            h_eng_fail("PLAN %s: the estimate does not say it is one: %s", sql, e);
    }
    PQclear(r);
    if (ms == -2)
        h_eng_fail("PLAN %s: no estimate row", sql);
    return ms;
}

static void test_estimate(void **state)
{
    (void)state;
    PGconn *d = h_eng_direct(&h_eng_case);
    PGconn *ctl = h_eng_console(&h_eng_case, &px);
    h_execf(d, "CREATE TABLE small (id int PRIMARY KEY, a int, pad text);"
               "CREATE TABLE big (id int PRIMARY KEY, a int, pad text);"
               "INSERT INTO small SELECT i, i, repeat('x', 100) FROM generate_series(1, 1000) i;"
               "INSERT INTO big SELECT i, i, repeat('x', 100) FROM generate_series(1, 100000) i;"
               "ANALYZE small; ANALYZE big");
    static const char *const stmts[] = {"ALTER TABLE %s ALTER COLUMN a TYPE bigint",
                                        "CREATE INDEX ON %s (a)"};
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        char s[128], b[128];
        snprintf(s, sizeof s, stmts[i], "small");
        snprintf(b, sizeof b, stmts[i], "big");
        double es = plan_estimate(ctl, s), eb = plan_estimate(ctl, b);
        if (!(es >= 0 && eb > es))
            h_eng_fail("estimates: %s %.3f ms, %s %.3f ms; want the larger table's larger", s, es,
                       b, eb);
    }
    assert_true(plan_estimate(ctl, "ALTER TABLE big ADD COLUMN note text") == -1);
    assert_true(plan_estimate(ctl, "CREATE VIEW big_v AS SELECT id FROM big") == -1);
}

static int group_setup(void **state)
{
    (void)state;
    const char *sets[] = {"instant_ddl=on", "lock_timeout_ms=150", "cutover_attempts=7", NULL};
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
        H_ENG_CASE(test_warnings, "eng_plan_warn"),
        H_ENG_CASE(test_locks, "eng_plan_locks"),
        H_ENG_CASE(test_estimate, "eng_plan_est"),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
