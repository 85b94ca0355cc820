/*
 * test_engine_console.c — the console's migration commands and the process around them
 * (security issue 11, items 9 and 11), on the real PostgreSQL:
 *
 *   - SIGINT while a console CUTOVER MIGRATION n waits for its swap (a direct session
 *     holds a lock on the table, so the attempts retry): the waiting command answers
 *     57P01 at once and pgcutover exits with status 0 (under ASan, which aborts on a
 *     use after free of the migration the command waits on); the table is untouched
 *     and the migration still ready;
 *   - the same for ABORT MIGRATION n waiting for the driver's cleanup behind a lock;
 *   - ownership: two roles, both members of control_role, each owning a table. A's
 *     migration cannot be ABORTed, CUTOVERed, SET, PAUSEd, RESUMEd, DROPped or SHOWn by
 *     B (42501), SHOW MIGRATIONS for B does not list it, PAUSE MIGRATION ALL by B
 *     leaves it copying; A and a member of A's role can act on it, a superuser can, and
 *     after the cutover (and after DROP MIGRATION) the rule still holds.
 *
 * Each test uses its own database (eng_con_*) and its own pgcutover; roles eng_con_*.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"

#define POLL_US 100000
#define WAIT_MS 60000
#define FAILP(...) h_eng_fail(__VA_ARGS__)

static h_eng e;

static int teardown(void **state)
{
    (void)state;
    h_eng_teardown(&e);
    return 0;
}

/* The table: id int PK, a int, rows rows. */
static void create_table(PGconn *dc, const char *name, int rows)
{
    h_execf(dc, "CREATE TABLE %s (id int PRIMARY KEY, a int)", name);
    h_execf(dc, "INSERT INTO %s SELECT g, g FROM generate_series(1, %d) g", name, rows);
    h_execf(dc, "ANALYZE %s", name);
}

/* Poll SHOW MIGRATION id (on ctl) until state is want; fails after WAIT_MS. */
static void wait_state(PGconn *ctl, long long id, const char *want, h_mig *m)
{
    for (int i = 0; i < WAIT_MS / 100; i++) {
        h_mig_show(ctl, id, m);
        if (strcmp(m->state, want) == 0)
            return;
        if (h_mig_terminal(m->state))
            FAILP("migration %lld is %s while waiting for %s: %s", id, m->state, want, m->error);
        usleep(POLL_US);
    }
    FAILP("migration %lld not %s within %d s (state %s, phase %s)", id, want, WAIT_MS / 1000,
          m->state, m->phase);
}

/* The answer to a query sent with PQsendQuery: its SQLSTATE ("" when it succeeded, "conn"
 * when the connection ended without an answer). Reads until the query is done (the
 * connection's socket closing ends it too). */
static void async_answer(PGconn *c, char sqlstate[8])
{
    snprintf(sqlstate, 8, "conn");
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
        if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
            const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            snprintf(sqlstate, 8, "%s", st ? st : "conn");
        } else if (PQresultStatus(r) == PGRES_COMMAND_OK) {
            sqlstate[0] = 0;
        }
        PQclear(r);
    }
}

/* Wait (bounded) for the proxy to exit after a signal; fail unless status 0. */
static void assert_exits_zero(h_proxy *p, int timeout_ms)
{
    int st = -1;
    pid_t w = 0;
    double deadline = h_now_ms() + timeout_ms;
    while (h_now_ms() < deadline && (w = waitpid(p->pid, &st, WNOHANG)) == 0)
        usleep(20000);
    if (w != p->pid)
        FAILP("pgcutover still running %d s after SIGINT", timeout_ms / 1000);
    p->pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        h_dump_log(p, 60);
        FAILP("pgcutover after SIGINT: wait status %d (exited %d, status %d, signal %d)", st,
              WIFEXITED(st), WIFEXITED(st) ? WEXITSTATUS(st) : -1,
              WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
}

/* ---------- SIGINT while a console command waits on a migration ---------- */

/*
 * cutover = manual, lock_timeout_ms = 50, cutover_attempts = 1000: a migration of t
 * reaches ready; a direct session takes LOCK TABLE t IN ACCESS SHARE MODE and keeps its
 * transaction open; CUTOVER MIGRATION n is sent without waiting; once SHOW (on a second
 * console) reads cutting_over, pgcutover gets SIGINT. Asserts: the CUTOVER answers 57P01
 * (woken, not left behind on a freed migration), pgcutover exits with status 0 within
 * 30 s, t still has a int (no swap) and the migration's row is ready or cutting_over
 * (the next start takes it on).
 */
static void test_sigint_during_cutover_wait(void **state)
{
    (void)state;
    static const char *const sets[] = {"cutover=manual", "lock_timeout_ms=50",
                                       "cutover_attempts=1000", NULL};
    PGconn *dc = h_eng_direct(&e);
    create_table(dc, "t", 2000);
    h_proxy_start(&e.px, sets);
    PGconn *ctl = h_eng_console(&e, &e.px), *watch = h_eng_console(&e, &e.px);
    long long id = h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN a TYPE bigint");
    h_mig m;
    wait_state(watch, id, "ready", &m);

    PGconn *blocker = h_eng_direct(&e);
    h_exec_ok(blocker, "BEGIN");
    h_exec_ok(blocker, "LOCK TABLE t IN ACCESS SHARE MODE");
    char cmd[64];
    snprintf(cmd, sizeof cmd, "CUTOVER MIGRATION %lld", id);
    if (!PQsendQuery(ctl, cmd))
        FAILP("send %s: %s", cmd, PQerrorMessage(ctl));
    wait_state(watch, id, "cutting_over", &m);
    usleep(200000); /* a retry or two: the command waits on the driver */

    h_proxy_signal(&e.px, SIGINT);
    char st[8];
    async_answer(ctl, st);
    fprintf(stderr, "CUTOVER MIGRATION waiting at SIGINT answered [%s]\n", st);
    assert_exits_zero(&e.px, 30000);
    if (strcmp(st, "57P01") != 0)
        FAILP("CUTOVER MIGRATION waiting at SIGINT: expected 57P01, got [%s]", st);
    h_exec_ok(blocker, "ROLLBACK");

    char typ[64], row[64];
    h_qtext(dc, typ, sizeof typ, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                                 "WHERE attrelid = 'public.t'::regclass AND attname = 'a'");
    assert_string_equal(typ, "integer");
    h_qtext(dc, row, sizeof row, "SELECT state FROM pgcutover.migrations WHERE id = %lld", id);
    if (strcmp(row, "ready") != 0 && strcmp(row, "cutting_over") != 0)
        FAILP("after SIGINT the migration is %s", row);
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM t"), 2000);
}

static int setup_cutover(void **state)
{
    (void)state;
    return h_eng_setup_db(&e, "eng_con_sigint_cut");
}

/*
 * The same for ABORT MIGRATION: the migration in ready (cutover = manual); a direct
 * session holds LOCK TABLE t IN ROW EXCLUSIVE MODE, which the driver's DROP TRIGGER
 * (SHARE ROW EXCLUSIVE) waits behind, retried with lock_timeout_ms = 200; ABORT
 * MIGRATION n is sent without waiting; once SHOW reads aborting, SIGINT. Asserts: the
 * ABORT answers 57P01, the blocker then commits and pgcutover exits with status 0.
 */
static void test_sigint_during_abort_wait(void **state)
{
    (void)state;
    static const char *const sets[] = {"cutover=manual", "lock_timeout_ms=200", NULL};
    PGconn *dc = h_eng_direct(&e);
    create_table(dc, "t", 2000);
    h_proxy_start(&e.px, sets);
    PGconn *ctl = h_eng_console(&e, &e.px), *watch = h_eng_console(&e, &e.px);
    long long id = h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN a TYPE bigint");
    h_mig m;
    wait_state(watch, id, "ready", &m);

    PGconn *blocker = h_eng_direct(&e);
    h_exec_ok(blocker, "BEGIN");
    h_exec_ok(blocker, "LOCK TABLE t IN ROW EXCLUSIVE MODE");
    char cmd[64];
    snprintf(cmd, sizeof cmd, "ABORT MIGRATION %lld", id);
    if (!PQsendQuery(ctl, cmd))
        FAILP("send %s: %s", cmd, PQerrorMessage(ctl));
    wait_state(watch, id, "aborting", &m);
    usleep(300000); /* a DROP TRIGGER attempt or two behind the lock */

    h_proxy_signal(&e.px, SIGINT);
    char st[8];
    async_answer(ctl, st);
    fprintf(stderr, "ABORT MIGRATION waiting at SIGINT answered [%s]\n", st);
    h_exec_ok(blocker, "COMMIT"); /* the driver's cleanup may finish now */
    assert_exits_zero(&e.px, 60000);
    if (strcmp(st, "57P01") != 0)
        FAILP("ABORT MIGRATION waiting at SIGINT: expected 57P01, got [%s]", st);
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM t"), 2000);
}

static int setup_abort(void **state)
{
    (void)state;
    return h_eng_setup_db(&e, "eng_con_sigint_abort");
}

/* ---------- ownership ---------- */

#define OWN_DB "eng_con_owner"

static void drop_owner_roles(void)
{
    PGconn *c = h_direct_connect("postgres");
    static const char *const roles[] = {"eng_con_a", "eng_con_b", "eng_con_a2"};
    for (int i = 0; i < 3; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", roles[i]);
        PQclear(PQexec(c, sql));
    }
    PQfinish(c);
}

/* A console connection as role user to the test's database, kept in e. */
static PGconn *console_as(const char *user)
{
    char ci[512];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable",
             e.px.control_port, user, e.db);
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK)
        FAILP("console as %s: %s", user, PQerrorMessage(c));
    PQsetNoticeProcessor(c, h_quiet_notice, NULL);
    return h_eng_keep(&e, c);
}

/* cmd (printf-style with the id) on ctl must fail with 42501. */
static void refused(PGconn *ctl, const char *who, const char *fmt, long long id)
{
    char cmd[128], st[6], msg[512];
    snprintf(cmd, sizeof cmd, fmt, id);
    h_ctl_err(ctl, cmd, st, msg, sizeof msg);
    if (strcmp(st, "42501") != 0)
        FAILP("%s: '%s' expected 42501, got [%s] %s", who, cmd, st, msg);
    if (strstr(msg, "must be owner of table") == NULL)
        FAILP("%s: '%s': unexpected message: %s", who, cmd, msg);
}

/* Whether SHOW MIGRATIONS on ctl lists migration id. */
static bool lists(PGconn *ctl, long long id)
{
    PGresult *r = h_ctl_ok(ctl, "SHOW MIGRATIONS");
    int ci = h_col(r, "id");
    bool found = false;
    for (int i = 0; i < PQntuples(r); i++)
        found = found || atoll(PQgetvalue(r, i, ci)) == id;
    PQclear(r);
    return found;
}

/*
 * Roles eng_con_a and eng_con_b, both members of pgcutover_admin, own tables ta (20000
 * rows) and tb; eng_con_a2 is a member of eng_con_a (and of pgcutover_admin). With
 * cutover = manual and max_rows_per_second = 2000, A starts a migration of ta (copying
 * for a while) and B one of tb. B: every command on A's migration answers 42501 "must
 * be owner of table"; SHOW MIGRATIONS lists B's own and not A's; PAUSE MIGRATION ALL
 * leaves A's copying. A: does not see B's; SHOW, PAUSE, RESUME and SET its own; A2 (a
 * member of A's role) SHOWs it. The superuser sees both and CUTOVERs A's; after the swap
 * B still gets 42501 on DROP MIGRATION, A drops the old table, and B still cannot SHOW
 * it (the new ta is A's). B aborts its own.
 */
static void test_migration_ownership(void **state)
{
    (void)state;
    static const char *const sets[] = {"cutover=manual", "max_rows_per_second=2000",
                                       "batch_size=500", NULL};
    h_exec_direct("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                  "'pgcutover_admin') THEN CREATE ROLE pgcutover_admin; END IF; END$$");
    h_exec_direct("CREATE ROLE eng_con_a LOGIN IN ROLE pgcutover_admin");
    h_exec_direct("CREATE ROLE eng_con_b LOGIN IN ROLE pgcutover_admin");
    h_exec_direct("CREATE ROLE eng_con_a2 LOGIN IN ROLE pgcutover_admin, eng_con_a");
    PGconn *dc = h_eng_direct(&e);
    create_table(dc, "ta", 20000);
    create_table(dc, "tb", 100);
    h_exec_ok(dc, "ALTER TABLE ta OWNER TO eng_con_a");
    h_exec_ok(dc, "ALTER TABLE tb OWNER TO eng_con_b");
    h_proxy_start(&e.px, sets);
    PGconn *ca = console_as("eng_con_a"), *cb = console_as("eng_con_b");
    PGconn *ca2 = console_as("eng_con_a2"), *su = h_eng_console(&e, &e.px);

    long long ida = h_start_migration(ca, "ALTER TABLE ta ALTER COLUMN a TYPE bigint");
    long long idb = h_start_migration(cb, "ALTER TABLE tb ALTER COLUMN a TYPE bigint");
    h_mig m;
    wait_state(su, ida, "copying", &m);

    /* B may not act on A's migration, nor see it */
    refused(cb, "B", "SHOW MIGRATION %lld", ida);
    refused(cb, "B", "ABORT MIGRATION %lld", ida);
    refused(cb, "B", "CUTOVER MIGRATION %lld", ida);
    refused(cb, "B", "SET MIGRATION %lld cutover_force = on", ida);
    refused(cb, "B", "SET MIGRATION %lld max_rows_per_second = 1", ida);
    refused(cb, "B", "PAUSE MIGRATION %lld", ida);
    refused(cb, "B", "RESUME MIGRATION %lld", ida);
    refused(cb, "B", "DROP MIGRATION %lld", ida);
    assert_false(lists(cb, ida));
    assert_true(lists(cb, idb));
    PQclear(h_ctl_ok(cb, "PAUSE MIGRATION ALL"));
    h_mig_show(su, ida, &m);
    if (strcmp(m.state, "copying") != 0)
        FAILP("B's PAUSE MIGRATION ALL touched A's migration: %s", m.state);
    if (strstr(m.settings, "\"cutover_force\": \"off\"") == NULL)
        FAILP("A's settings changed by B: %s", m.settings);
    PQclear(h_ctl_ok(cb, "RESUME MIGRATION ALL"));

    /* A and a member of A's role may; A does not see B's */
    assert_true(lists(ca, ida));
    assert_false(lists(ca, idb));
    refused(ca, "A", "SHOW MIGRATION %lld", idb);
    refused(ca, "A", "ABORT MIGRATION %lld", idb);
    h_mig_show(ca, ida, &m);
    h_mig_show(ca2, ida, &m);
    assert_true(lists(ca2, ida));
    PQclear(h_ctl_ok(ca, "PAUSE MIGRATION %lld", ida));
    h_mig_show(su, ida, &m);
    assert_string_equal(m.state, "paused");
    PQclear(h_ctl_ok(ca, "SET MIGRATION %lld max_rows_per_second = 0", ida));
    PQclear(h_ctl_ok(ca2, "RESUME MIGRATION %lld", ida));
    wait_state(ca, ida, "ready", &m);

    /* the superuser sees both and may act on A's */
    assert_true(lists(su, ida));
    assert_true(lists(su, idb));
    PQclear(h_ctl_ok(su, "CUTOVER MIGRATION %lld", ida));
    h_mig_show(su, ida, &m);
    assert_string_equal(m.state, "done");

    /* after the swap: the old table (the recorded OID) is still A's */
    refused(cb, "B after the cutover", "DROP MIGRATION %lld", ida);
    refused(cb, "B after the cutover", "SHOW MIGRATION %lld", ida);
    PQclear(h_ctl_ok(ca, "DROP MIGRATION %lld", ida));
    /* the old table is gone: the table now named ta decides, and it is A's */
    refused(cb, "B after DROP MIGRATION", "SHOW MIGRATION %lld", ida);
    assert_false(lists(cb, ida));
    h_mig_show(ca, ida, &m);
    assert_true(lists(ca, ida));

    /* B on its own migration */
    wait_state(cb, idb, "ready", &m);
    PQclear(h_ctl_ok(cb, "ABORT MIGRATION %lld", idb));
    h_mig_show(cb, idb, &m);
    assert_string_equal(m.state, "aborted");
    h_eng_stop_proxy(&e, &e.px);
}

static int setup_owner(void **state)
{
    (void)state;
    drop_owner_roles();
    return h_eng_setup_db(&e, OWN_DB);
}

static int teardown_owner(void **state)
{
    (void)state;
    h_eng_teardown(&e);
    drop_owner_roles();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigint_during_cutover_wait, setup_cutover, teardown),
        cmocka_unit_test_setup_teardown(test_sigint_during_abort_wait, setup_abort, teardown),
        cmocka_unit_test_setup_teardown(test_migration_ownership, setup_owner, teardown_owner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
