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
 *
 *   node_pg       drivers that prepare on their own ("Done when", fourth point):
 *   psycopg       node-postgres named queries (tests/drivers/pg_named.js; `npm install
 *                 pg@8` into a cache under the build tree, once) and psycopg 3 with
 *                 prepare_threshold = 0 (tests/drivers/psycopg_prepared.py, Debian
 *                 python3-psycopg, run with /usr/bin/python3), below.
 *
 * The driver cases run one script of tests/drivers/ against table t (id, v int = id * 10,
 * 20 rows): it executes `SELECT * FROM t WHERE id = $1` and `SELECT v FROM t WHERE id =
 * $1` as server-side prepared statements in a loop, 5 ms apart, and reports the result
 * shapes it saw. Once it has executed both (its ready file) and SHOW CLIENTS shows its
 * session holding >= 2 tracked statements, `ALTER TABLE t ALTER COLUMN v TYPE bigint, ADD
 * COLUMN note text DEFAULT 'x'` runs as a copy through a pgcutover of its own (cutover
 * manual) while the script goes on; once ready, the engine swaps (SET MIGRATION n
 * cutover = auto) while the script goes on executing, and the script is told to stop
 * (it runs one more round). It must exit 0
 * with no error, having seen both statements with the old shape (v int4) and the new one
 * (v int8, plus note for SELECT *); SHOW STATS counts >= 2 re-prepared statements. Then
 * the same through a pgcutover with max_prepared_statements_bytes = 0 (tracking off)
 * across `ALTER COLUMN v TYPE numeric` must fail with PostgreSQL's 0A000 "cached plan must
 * not change result type": the driver does prepare, and the first half would fail
 * without the proxy's re-prepare.
 *
 * A driver case is skipped (cmocka skip(), with the reason) only when its driver cannot be
 * installed: no node/npm or `npm install` failing, no importable psycopg. Scripts are
 * stopped by pid (SIGKILL after a bounded wait) if a case fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
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

/* A copy migration on the console, waited for until done (cutover auto); its id. */
static long long copy_done(PGconn *ctl, const char *sql)
{
    long long id = h_start_migration(ctl, sql);
    h_mig m;
    h_mig_wait(ctl, id, "done", -1, 120000, &m);
    return id;
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

/* SHOW MIGRATION id (the newest when id is 0) must count the re-preparing its change
 * caused: `statements` statements re-prepared by one session, in a time > 0. */
static void expect_reprepare_counted(PGconn *ctl, long long id, long long statements)
{
    if (id == 0) {
        PGresult *r = h_ctl_ok(ctl, "SHOW MIGRATIONS");
        id = atoll(PQgetvalue(r, 0, h_col(r, "id")));
        PQclear(r);
    }
    PGresult *r = h_ctl_ok(ctl, "SHOW MIGRATION %lld", id);
    long long marked = atoll(PQgetvalue(r, 0, h_col(r, "reprepare_sessions_marked")));
    long long sessions = atoll(PQgetvalue(r, 0, h_col(r, "reprepared_sessions")));
    long long stmts = atoll(PQgetvalue(r, 0, h_col(r, "reprepared_statements")));
    double max_ms = atof(PQgetvalue(r, 0, h_col(r, "reprepare_max_ms")));
    if (marked < 1 || sessions != 1 || stmts != statements || !(max_ms > 0))
        h_eng_fail("SHOW MIGRATION %lld: marked %lld, re-prepared sessions %lld, statements %lld "
                   "(want 1, %lld), max %.3f ms", id, marked, sessions, stmts, statements, max_ms);
    PQclear(r);
}

/* Table t (T_DDL) and, through proxy p, a client (returned) that prepared "s" = SELECT *
 * FROM t WHERE id = $1 and ran it once; *ctl gets a console session. */
static PGconn *prepared_client(const h_proxy *p, PGconn **ctl)
{
    h_execf(h_eng_direct(&h_eng_case), T_DDL);
    *ctl = h_eng_console(&h_eng_case, p);
    PGconn *c = h_eng_keep(&h_eng_case, h_connect(h_conninfo_proxy_db(p, h_eng_case.db, NULL)));
    prepare_ok(c, "s", "SELECT * FROM t WHERE id = $1");
    PQclear(exec_ok(c, "s", "3", 2, 0));
    return c;
}

/* A request already forwarded when the engine's hold begins, outside a transaction: the
 * hold waits (bounded) for its answer before the engine locks, so it cannot queue behind
 * the change and run after it with a plan prepared before it. The client pipelines, in one
 * implicit transaction, SELECT pg_sleep(0.15) and then its prepared SELECT * on t; the
 * instant ADD COLUMN is sent on the console meanwhile. Without the wait the change commits
 * during the sleep and the prepared SELECT gets 0A000 (its message was forwarded before the
 * change, so nothing could re-prepare it). */
static void test_inflight(void **state)
{
    (void)state;
    PGconn *ctl, *c = prepared_client(&px, &ctl);
    const char *v[] = {"5"};
    assert_int_equal(PQenterPipelineMode(c), 1);
    assert_int_equal(PQsendQueryParams(c, "SELECT pg_sleep(0.15)", 0, NULL, NULL, NULL, NULL, 0), 1);
    assert_int_equal(PQsendQueryPrepared(c, "s", 1, v, NULL, NULL, 0), 1);
    assert_int_equal(PQpipelineSync(c), 1);
    assert_int_equal(PQflush(c), 0);
    usleep(20000); /* the batch is at PostgreSQL, sleeping, before the change is asked for */
    PQclear(h_ctl_ok(ctl, "ALTER TABLE t ADD COLUMN note text DEFAULT 'n'"));
    int got = 0;
    for (int i = 0; i < 6 && got < 3; i++) { /* two results and the pipeline's sync, each */
        PGresult *r;                          /* followed by NULL but the sync */
        while ((r = PQgetResult(c)) != NULL) {
            ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_FATAL_ERROR)
                h_eng_fail("a request in flight at the hold: %s (%s)", PQresultErrorMessage(r),
                           PQresultErrorField(r, PG_DIAG_SQLSTATE));
            if (st == PGRES_TUPLES_OK || st == PGRES_PIPELINE_SYNC)
                got++;
            if (st == PGRES_TUPLES_OK && PQnfields(r) == 2)
                assert_string_equal(PQgetvalue(r, 0, 1), "50"); /* before the change */
            bool sync = st == PGRES_PIPELINE_SYNC;
            PQclear(r);
            if (sync)
                break;
        }
    }
    assert_int_equal(got, 3);
    assert_int_equal(PQexitPipelineMode(c), 1);
    PGresult *r = exec_ok(c, "s", "3", 3, 0); /* after it: re-prepared, the new column */
    assert_string_equal(PQfname(r, 2), "note");
    PQclear(r);
}

static void test_text(void **state)
{
    (void)state;
    PGconn *ctl, *c = prepared_client(&px, &ctl);
    long long before = stat_col(ctl, "SHOW STATS", "prepared_reprepared");

    instant(ctl, "ALTER TABLE t ADD COLUMN note text DEFAULT 'n'");
    PGresult *r = exec_ok(c, "s", "3", 3, 0);
    assert_string_equal(PQfname(r, 2), "note");
    assert_string_equal(PQgetvalue(r, 0, 2), "n");
    PQclear(r);
    expect_reprepare_counted(ctl, 0, 1);

    instant(ctl, "ALTER TABLE t DROP COLUMN note");
    PQclear(exec_ok(c, "s", "4", 2, 0));

    long long id = copy_done(ctl, "ALTER TABLE t ALTER COLUMN v TYPE bigint");
    r = exec_ok(c, "s", "5", 2, 0);
    assert_int_equal(PQftype(r, 1), 20); /* int8 */
    assert_string_equal(PQgetvalue(r, 0, 1), "50");
    PQclear(r);
    expect_reprepare_counted(ctl, id, 1);
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

/* ---------- drivers that prepare on their own ---------- */

#define PYTHON "/usr/bin/python3"
#define NODE "/usr/bin/node"
#define NPM "/usr/bin/npm"
#define READY_MS 60000 /* bound on the script's first round */
#define EXIT_MS 60000  /* bound on the script's exit once told to stop */
#define CACHED_PLAN "cached plan must not change result type"

static struct {
    pid_t pid;      /* the driver script, 0 when reaped */
    char dir[512];  /* its control dir (ready, stop, out) */
    char out[600];  /* its stdout + stderr */
} drv;

static void dump_logs(void)
{
    h_dump_log(&px, 30);
    if (h_eng_case.px.pid > 0)
        h_dump_log(&h_eng_case.px, 30);
    if (h_eng_case.px2.pid > 0)
        h_dump_log(&h_eng_case.px2, 30);
    if (drv.out[0])
        fprintf(stderr, "---- driver output (%s) ----\n%s\n", drv.out, h_slurp(drv.out));
}

static void kill_driver(void)
{
    if (drv.pid <= 0)
        return;
    kill(drv.pid, SIGKILL);
    int st;
    waitpid(drv.pid, &st, 0);
    drv.pid = 0;
}

/* Start argv (NULL-terminated) with the proxy p's connection in PG* variables, extra
 * environment "NAME=VALUE" (may be NULL), stdout and stderr to drv.out; `run` names the
 * control dir. */
static void start_driver(const h_proxy *p, const char *run, const char *extra_env,
                         char *const argv[])
{
    snprintf(drv.dir, sizeof drv.dir, "%s/drv-%s-%s", h_tmpdir(), h_eng_case.db, run);
    h_shell("rm -rf %s && mkdir -p %s", drv.dir, drv.dir);
    snprintf(drv.out, sizeof drv.out, "%s/out", drv.dir);
    char port[16];
    snprintf(port, sizeof port, "%d", p->port);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(drv.out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        setenv("PGHOST", "127.0.0.1", 1);
        setenv("PGPORT", port, 1);
        setenv("PGUSER", h_pg_user(), 1);
        setenv("PGDATABASE", h_eng_case.db, 1);
        setenv("PGSSLMODE", "disable", 1);
        if (extra_env)
            putenv((char *)extra_env);
        execv(argv[0], argv);
        _exit(127);
    }
    drv.pid = pid;
}

/* Wait (bounded) for the script to exit; returns its wait status. */
static int wait_driver(int bound_ms)
{
    int st = 0;
    double t0 = h_now_ms();
    while (waitpid(drv.pid, &st, WNOHANG) != drv.pid) {
        if (h_now_ms() - t0 > bound_ms)
            h_eng_fail("driver %s still running %d s after being told to stop", drv.dir,
                       bound_ms / 1000);
        usleep(50000);
    }
    drv.pid = 0;
    return st;
}

/* Wait (bounded) until the script has made file `name` in its control dir (ready: its
 * first round done); fails if it exited. */
static void wait_file(const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", drv.dir, name);
    double t0 = h_now_ms();
    while (access(path, F_OK) != 0) {
        int st;
        if (waitpid(drv.pid, &st, WNOHANG) == drv.pid) {
            drv.pid = 0;
            h_eng_fail("driver exited (status 0x%x) before making %s", st, name);
        }
        if (h_now_ms() - t0 > READY_MS)
            h_eng_fail("driver did not make %s within %d s", name, READY_MS / 1000);
        usleep(20000);
    }
}

/* Run the driver (argv) through p (cutover = manual) across the copy `change`: the
 * driver runs while the change is prepared, copied and verified; once it is ready the
 * engine swaps (cutover = auto) while the driver goes on executing, and 100 ms after the
 * swap the driver is told to stop. Returns its wait status; its output is in drv.out.
 * When tracked, checks that the proxy tracks >= 2 statements of its session before, and
 * that SHOW MIGRATION counts its 2 statements re-prepared by one session after. */
static int across_change(const h_proxy *p, const char *run, const char *extra_env,
                         char *const argv[], const char *change, bool tracked)
{
    PGconn *ctl = h_eng_console(&h_eng_case, p);
    start_driver(p, run, extra_env, argv);
    wait_file("ready");
    if (tracked) {
        long long n = stat_col(ctl, "SHOW CLIENTS", "prepared");
        if (n < 2)
            h_eng_fail("%s: SHOW CLIENTS shows %lld tracked statements, want >= 2", run, n);
    }
    long long id = h_start_migration(ctl, change);
    h_mig m;
    h_mig_wait(ctl, id, "ready", -1, 120000, &m);
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld cutover = auto", id));
    h_mig_wait(ctl, id, "done", -1, 120000, &m);
    usleep(100000);
    h_shell("touch %s/stop", drv.dir);
    int st = wait_driver(EXIT_MS);
    if (tracked && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        expect_reprepare_counted(ctl, id, 2);
    h_eng_drop_conn(&h_eng_case, ctl);
    return st;
}

static void expect(const char *out, const char *what)
{
    if (strstr(out, what) == NULL)
        h_eng_fail("driver output lacks \"%s\":\n%s", what, out);
}

/* The whole case for one driver (argv, extra environment). */
static void driver_case(const char *name, const char *extra_env, char *const argv[])
{
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i * 10 "
               "FROM generate_series(1, 20) i");
    const char *sets[] = {"instant_ddl=on", "cutover=manual", NULL};
    h_proxy_start(&h_eng_case.px, sets);
    PGconn *ctl = h_eng_console(&h_eng_case, &h_eng_case.px);
    long long re0 = stat_col(ctl, "SHOW STATS", "prepared_reprepared");
    int st = across_change(&h_eng_case.px, "tracked", extra_env, argv,
                           "ALTER TABLE t ALTER COLUMN v TYPE bigint, ADD COLUMN note text "
                           "DEFAULT 'x'",
                           true);
    char out[65536];
    snprintf(out, sizeof out, "%s", h_slurp(drv.out));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || strstr(out, "error ") != NULL)
        h_eng_fail("%s across the swap: exit status 0x%x:\n%s", name, st, out);
    expect(out, "shape by_id id/23,v/23 ");
    expect(out, "shape by_id id/23,v/20,note/25 ");
    expect(out, "shape v_by_id v/23 ");
    expect(out, "shape v_by_id v/20 ");
    long long re1 = stat_col(ctl, "SHOW STATS", "prepared_reprepared");
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
    if (re1 - re0 < 2)
        h_eng_fail("%s: %lld statements re-prepared across the swap, want >= 2", name, re1 - re0);
    fprintf(stderr, "  %s: no error across the swap, %lld statements re-prepared; %s", name,
            re1 - re0, strstr(out, "executions"));

    /* tracking off: the same driver gets PostgreSQL's 0A000 */
    const char *off[] = {"instant_ddl=on", "cutover=manual", "max_prepared_statements_bytes=0",
                         NULL};
    h_proxy_start(&h_eng_case.px2, off);
    st = across_change(&h_eng_case.px2, "untracked", extra_env, argv,
                       "ALTER TABLE t ALTER COLUMN v TYPE numeric", false);
    snprintf(out, sizeof out, "%s", h_slurp(drv.out));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 1 || strstr(out, "error 0A000 ") == NULL ||
        strstr(out, CACHED_PLAN) == NULL)
        h_eng_fail("%s with tracking off: exit status 0x%x, want 1 with 0A000 \"%s\":\n%s", name,
                   st, CACHED_PLAN, out);
    fprintf(stderr, "  %s with tracking off: %s", name, strstr(out, "error"));
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px2);
}

/* The directory of this test binary (the build tree), for the npm cache. */
static void exe_dir(char *out, size_t len)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    snprintf(out, len, "%s", n > 0 ? dirname(buf) : h_tmpdir());
}

static void test_node_pg(void **state)
{
    (void)state;
    if (access(NODE, X_OK) != 0 || access(NPM, X_OK) != 0) {
        fprintf(stderr, "  SKIP: %s or %s missing (Debian nodejs and npm, see "
                        "scripts/bootstrap)\n", NODE, NPM);
        skip();
    }
    char dir[PATH_MAX], pkg[PATH_MAX + 64];
    exe_dir(dir, sizeof dir);
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/drivers-npm");
    snprintf(pkg, sizeof pkg, "%s/node_modules/pg/package.json", dir);
    if (access(pkg, F_OK) != 0) {
        int rc = h_shell("mkdir -p %s && cd %s && %s install --no-audit --no-fund "
                         "--no-package-lock --cache %s/.cache --prefix %s pg@8 >%s/npm.log 2>&1",
                         dir, dir, NPM, dir, dir, dir);
        if (rc != 0 || access(pkg, F_OK) != 0) {
            h_shell("tail -n 20 %s/npm.log >&2", dir);
            fprintf(stderr, "  SKIP: npm install pg@8 into %s failed (exit %d)\n", dir, rc);
            skip();
        }
    }
    static char env[PATH_MAX + 32];
    snprintf(env, sizeof env, "NODE_PATH=%s/node_modules", dir);
    char script[PATH_MAX];
    snprintf(script, sizeof script, "%s/tests/drivers/pg_named.js", PGC_SOURCE_DIR);
    char *const argv[] = {NODE, script, drv.dir, NULL};
    /* argv[2] is read when the script starts: drv.dir is set by start_driver first */
    driver_case("node-postgres named queries", env, argv);
}

static void test_psycopg(void **state)
{
    (void)state;
    if (h_shell("%s -c 'import psycopg' 2>/dev/null", PYTHON) != 0) {
        fprintf(stderr, "  SKIP: psycopg 3 not importable by %s (Debian python3-psycopg, see "
                        "scripts/bootstrap)\n", PYTHON);
        skip();
    }
    char script[PATH_MAX];
    snprintf(script, sizeof script, "%s/tests/drivers/psycopg_prepared.py", PGC_SOURCE_DIR);
    char *const argv[] = {PYTHON, script, drv.dir, NULL};
    driver_case("psycopg 3 prepare_threshold=0", NULL, argv);
}

static int drv_teardown(void **state)
{
    kill_driver();
    h_shell("rm -rf %s/drv-%s-*", h_tmpdir(), h_eng_case.db);
    memset(&drv, 0, sizeof drv);
    return h_eng_case_teardown(state);
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
    h_eng_fail_hook = dump_logs;
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
        H_ENG_CASE(test_inflight, "prep_inflight"),
        H_ENG_CASE(test_in_xact, "prep_xact"),
        H_ENG_CASE(test_sql, "prep_sql"),
        H_ENG_CASE(test_binary, "prep_binary"),
        H_ENG_CASE(test_untracked, "prep_untracked"),
        cmocka_unit_test_prestate_setup_teardown(test_node_pg, h_eng_case_setup, drv_teardown,
                                                 (void *)"prep_drv_node"),
        cmocka_unit_test_prestate_setup_teardown(test_psycopg, h_eng_case_setup, drv_teardown,
                                                 (void *)"prep_drv_psycopg"),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
