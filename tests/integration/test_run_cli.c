/*
 * test_run_cli.c — `pgcutover run` (cli/cli_run.c), the console client, run as the real
 * binary against a pgcutover the test starts, with stdout/stderr captured to files (so
 * stdout is not a terminal: the plain progress lines). Covers the exit codes:
 *   0  done: a small table, ADD COLUMN with a volatile default (a copy), cutover auto; the
 *      state lines (copying, verifying, ready, done in that order), the live copying figures
 *      and the summary line;
 *      --max-rows-per-second reaches the migration's settings
 *   1  failed: a type change with ADD CONSTRAINT … CHECK that existing rows violate (a
 *      copy: 23514 in the backfill)
 *   1  refused: unknown table (ERROR 42P01 printed); not a schema change (SELECT: 42601);
 *      no console to connect to
 *   2  bad usage (and --help exits 0)
 *   3  aborted: --manual-cutover waits in ready, the test's console sends ABORT MIGRATION
 *   4  SIGINT without a terminal detaches; the migration stays in ready and cuts over
 *      later on CUTOVER MIGRATION
 * and --plan of a type change, which prints the copy's plan (with the key) and creates
 * nothing; other DDL (CREATE INDEX, CREATE VIEW) run with their strategy (concurrent,
 * direct) and exit 0. The other changes are ones PostgreSQL rewrites: copies with
 * instant_ddl = on.
 *
 * One database (run_cli) and one pgcutover for the file; each test has its own table.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"

#define DB "run_cli"
#define RUN_TIMEOUT_MS 60000

static struct {
    h_proxy px;
    PGconn *ctl, *dc; /* console and direct connections to DB */
    char dir[400];
    double started_ms;
} g;

typedef struct {
    pid_t pid;
    char out[512], err[512];
} run_proc;

static char out_text[65536], err_text[65536];

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
}

/* Start `pgcutover run -h 127.0.0.1 -p <console> -d run_cli args...` (args NULL-
 * terminated) with stdin from /dev/null and stdout/stderr into files. */
static void run_spawn(run_proc *p, const char *const *args)
{
    static int seq;
    seq++;
    snprintf(p->out, sizeof p->out, "%s/out.%d", g.dir, seq);
    snprintf(p->err, sizeof p->err, "%s/err.%d", g.dir, seq);
    char port[16];
    snprintf(port, sizeof port, "%d", g.px.control_port);
    const char *argv[32] = {PGC_BIN, "run", "-h", "127.0.0.1", "-p", port, "-d", DB};
    int a = 8;
    for (int i = 0; args[i] && a < 31; i++)
        argv[a++] = args[i];
    argv[a] = NULL;
    p->pid = h_spawn(argv, p->out, p->err);
}

/* Wait for p (bounded), read its output into out_text/err_text, return its exit code. */
static int run_wait(run_proc *p, int timeout_ms)
{
    double deadline = h_now_ms() + timeout_ms;
    int st = 0;
    while (waitpid(p->pid, &st, WNOHANG) != p->pid) {
        if (h_now_ms() > deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            p->pid = 0;
            slurp(p->out, out_text, sizeof out_text);
            slurp(p->err, err_text, sizeof err_text);
            fail_msg("pgcutover run did not exit within %d s\nstdout:\n%s\nstderr:\n%s",
                     timeout_ms / 1000, out_text, err_text);
        }
        usleep(20000);
    }
    p->pid = 0;
    slurp(p->out, out_text, sizeof out_text);
    slurp(p->err, err_text, sizeof err_text);
    fprintf(stderr, "---- stdout ----\n%s---- stderr ----\n%s", out_text, err_text);
    if (!WIFEXITED(st))
        fail_msg("pgcutover run ended by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    return WEXITSTATUS(st);
}

static int run_sync(const char *const *args)
{
    run_proc p;
    run_spawn(&p, args);
    return run_wait(&p, RUN_TIMEOUT_MS);
}

/* Wait until p's stdout contains needle (bounded); fails if it exits first. */
static void wait_output(run_proc *p, const char *needle)
{
    double deadline = h_now_ms() + RUN_TIMEOUT_MS;
    while (h_now_ms() < deadline) {
        slurp(p->out, out_text, sizeof out_text);
        if (strstr(out_text, needle))
            return;
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = 0;
            slurp(p->err, err_text, sizeof err_text);
            fail_msg("pgcutover run exited (0x%x) before printing \"%s\"\nstdout:\n%s\nstderr:\n%s",
                     st, needle, out_text, err_text);
        }
        usleep(50000);
    }
    fail_msg("pgcutover run did not print \"%s\" within %d s:\n%s", needle, RUN_TIMEOUT_MS / 1000,
             out_text);
}

static long long migration_id(const char *out)
{
    long long id = 0;
    if (sscanf(out, "m%lld ", &id) != 1 || id <= 0)
        fail_msg("no \"m<id> \" at the start of the output:\n%s", out);
    return id;
}

/* Where the line starting with prefix begins in text, or NULL. */
static const char *line_at(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, prefix, n) == 0)
            return p;
    return NULL;
}

/* The state-change line "m<id> <table> <state>" exists, after *after; returns it. */
static const char *state_line(long long id, const char *table, const char *state, const char *after)
{
    char prefix[200];
    snprintf(prefix, sizeof prefix, "m%lld %s %s", id, table, state);
    const char *l = line_at(after, prefix);
    if (!l)
        fail_msg("no line \"%s…\" (in order) in:\n%s", prefix, out_text);
    return l;
}

static void make_table(const char *name, int rows)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "CREATE TABLE %s (id int PRIMARY KEY, a int NOT NULL); INSERT INTO %s SELECT g, g "
             "FROM generate_series(1, %d) g",
             name, name, rows);
    h_exec_ok(g.dc, sql);
}

static long long has_column(const char *table, const char *column)
{
    return h_qint(g.dc,
                  "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.%s'::regclass AND "
                  "attname = '%s' AND NOT attisdropped",
                  table, column);
}

/* ---------- tests ---------- */

static void test_done(void **state)
{
    (void)state;
    /* 10,000 rows/s over 30,000 rows keeps it copying ~2 s (at least one live copying line)
     * even when the throttle (a SET MIGRATION sent after the ALTER answered) lands after
     * the first batch of 10,000: with 5,000 rows it once landed after the whole copy */
    make_table("t_done", 30000);
    const char *args[] = {
        "--max-rows-per-second", "10000",
        "ALTER TABLE t_done ADD COLUMN note timestamptz DEFAULT clock_timestamp()", NULL};
    assert_int_equal(run_sync(args), 0);
    long long id = migration_id(out_text);
    const char *t = "public.t_done";
    const char *l = state_line(id, t, "copying", out_text);
    l = state_line(id, t, "verifying", l);
    l = state_line(id, t, "ready", l);
    l = state_line(id, t, "done", l);
    char prefix[200];
    snprintf(prefix, sizeof prefix, "done: m%lld %s in ", id, t);
    const char *sum = line_at(l, prefix);
    if (!sum)
        fail_msg("no summary line \"%s…\" after the done line:\n%s", prefix, out_text);
    assert_non_null(strstr(sum, " 30000 rows copied; cutover hold "));
    assert_non_null(strstr(sum, "longest client wait "));
    assert_non_null(strstr(sum, "old table pgcutover.t_done_"));
    /* the live copying line: percent, rows, rate, ETA, throttle */
    snprintf(prefix, sizeof prefix, "m%lld %s copying ", id, t);
    const char *live = line_at(out_text, prefix);
    assert_non_null(live);
    assert_non_null(strstr(live, "% "));
    assert_non_null(strstr(live, " rows "));
    assert_non_null(strstr(live, " rows/s ETA "));
    assert_non_null(strstr(live, " throttle: "));
    assert_int_equal(has_column("t_done", "note"), 1);
    h_mig m;
    h_mig_show(g.ctl, id, &m);
    assert_string_equal(m.state, "done");
    if (!strstr(m.settings, "\"max_rows_per_second\": \"10000\""))
        fail_msg("--max-rows-per-second 10000 not in the settings: %s", m.settings);
}

static void test_failed(void **state)
{
    (void)state;
    make_table("t_fail", 100);
    h_exec_ok(g.dc, "UPDATE t_fail SET a = 0 WHERE id = 50");
    const char *args[] = {"ALTER TABLE t_fail ALTER COLUMN a TYPE bigint, ADD CONSTRAINT a_pos "
                          "CHECK (a > 0)",
                          NULL};
    assert_int_equal(run_sync(args), 1);
    long long id = migration_id(out_text);
    state_line(id, "public.t_fail", "failed", out_text);
    assert_non_null(strstr(err_text, "failed: "));
    assert_non_null(strstr(err_text, "23514"));
    h_mig m;
    h_mig_show(g.ctl, id, &m);
    assert_string_equal(m.state, "failed");
    assert_int_equal(h_qint(g.dc, "SELECT count(*) FROM pg_constraint WHERE conname = 'a_pos'"), 0);
}

static void test_aborted(void **state)
{
    (void)state;
    /* 100,000 rows: --manual-cutover is a SET MIGRATION sent once the ALTER has answered,
     * and 2,000 rows were copied, verified and swapped before it landed (seen in CI) */
    make_table("t_abort", 100000);
    const char *args[] = {"--manual-cutover",
                          "ALTER TABLE t_abort ADD COLUMN b timestamptz DEFAULT clock_timestamp()",
                          NULL};
    run_proc p;
    run_spawn(&p, args);
    wait_output(&p, "is ready: waiting for CUTOVER MIGRATION");
    long long id = migration_id(out_text);
    h_mig m;
    h_mig_show(g.ctl, id, &m);
    assert_string_equal(m.state, "ready");
    PQclear(h_ctl_ok(g.ctl, "ABORT MIGRATION %lld", id));
    assert_int_equal(run_wait(&p, 15000), 3);
    assert_non_null(strstr(err_text, "aborted"));
    state_line(id, "public.t_abort", "aborted", out_text);
    assert_int_equal(has_column("t_abort", "b"), 0);
}

static void test_sigint_detaches(void **state)
{
    (void)state;
    make_table("t_detach", 100000); /* as t_abort */
    const char *args[] = {"--manual-cutover",
                          "ALTER TABLE t_detach ADD COLUMN b timestamptz DEFAULT clock_timestamp()",
                          NULL};
    run_proc p;
    run_spawn(&p, args);
    wait_output(&p, "is ready: waiting for CUTOVER MIGRATION");
    long long id = migration_id(out_text);
    kill(p.pid, SIGINT);
    assert_int_equal(run_wait(&p, 15000), 4);
    char hint[64];
    snprintf(hint, sizeof hint, "SHOW MIGRATION %lld", id);
    assert_non_null(strstr(err_text, "detached"));
    assert_non_null(strstr(err_text, hint));
    h_mig m;
    h_mig_show(g.ctl, id, &m);
    assert_string_equal(m.state, "ready");
    PQclear(h_ctl_ok(g.ctl, "CUTOVER MIGRATION %lld", id));
    h_mig_show(g.ctl, id, &m);
    assert_string_equal(m.state, "done");
    assert_int_equal(has_column("t_detach", "b"), 1);
}

static void test_bad_usage(void **state)
{
    (void)state;
    const char *none[] = {NULL};
    assert_int_equal(run_sync(none), 2);
    assert_non_null(strstr(err_text, "pgcutover run --help"));
    const char *syntax[] = {"ALTER TABLE t ADD COLUM c int", NULL}; /* PostgreSQL's parser says so */
    assert_int_equal(run_sync(syntax), 2);
    assert_non_null(strstr(err_text, "syntax error"));
    const char *unknown[] = {"--bogus", "ALTER TABLE t ADD COLUMN c int", NULL};
    assert_int_equal(run_sync(unknown), 2);
    const char *two[] = {"ALTER TABLE t ADD COLUMN c int; ALTER TABLE u ADD COLUMN c int", NULL};
    assert_int_equal(run_sync(two), 2);
    const char *rate[] = {"--max-rows-per-second", "fast", "ALTER TABLE t ADD COLUMN c int", NULL};
    assert_int_equal(run_sync(rate), 2);
    const char *port[] = {"-p", "0", "ALTER TABLE t ADD COLUMN c int", NULL};
    assert_int_equal(run_sync(port), 2);
    const char *help[] = {"--help", NULL};
    assert_int_equal(run_sync(help), 0);
    assert_non_null(strstr(out_text, "Usage: pgcutover run"));
}

static void test_refused(void **state)
{
    (void)state;
    const char *select[] = {"SELECT 1", NULL}; /* not a schema change: the console refuses */
    assert_int_equal(run_sync(select), 1);
    assert_non_null(strstr(err_text, "ERROR 42601: "));
    const char *args[] = {"ALTER TABLE no_such_table ADD COLUMN c int", NULL};
    assert_int_equal(run_sync(args), 1);
    assert_non_null(strstr(err_text, "ERROR 42P01: "));
    char port[16];
    snprintf(port, sizeof port, "%d", h_free_port());
    const char *noconsole[] = {"-p", port, "ALTER TABLE t ADD COLUMN c int", NULL};
    assert_int_equal(run_sync(noconsole), 1);
    assert_non_null(strstr(err_text, "cannot connect to the console"));
}

static void test_plan(void **state)
{
    (void)state;
    make_table("t_plan", 100);
    const char *args[] = {"--plan", "ALTER TABLE t_plan ALTER COLUMN a TYPE bigint", NULL};
    assert_int_equal(run_sync(args), 0);
    assert_non_null(strstr(out_text, "key (id)"));
    assert_non_null(strstr(out_text, "ALTER COLUMN a TYPE bigint"));
    assert_non_null(strstr(out_text, "nothing was started"));
    assert_int_equal(h_qint(g.dc, "SELECT count(*) FROM pg_attribute WHERE attrelid = "
                                  "'public.t_plan'::regclass AND attname = 'a' AND atttypid = "
                                  "'int4'::regtype"),
                     1);
    assert_int_equal(h_qint(g.dc,
                            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                            "c.relnamespace WHERE n.nspname = 'pgcutover' AND relname LIKE 't%%'"),
                     0); /* no shadow: nothing was started (before test_done) */
    PGresult *r = h_ctl_ok(g.ctl, "SHOW MIGRATIONS");
    int c = PQfnumber(r, "table");
    assert_true(c >= 0);
    for (int i = 0; i < PQntuples(r); i++)
        assert_string_not_equal(PQgetvalue(r, i, c), "public.t_plan");
    PQclear(r);
}

/* Statements other than ALTER TABLE go to the console as they are; it picks the strategy. */
static void test_other_ddl(void **state)
{
    (void)state;
    make_table("t_ddl", 200);
    const char *index[] = {"CREATE INDEX t_ddl_a ON t_ddl (a)", NULL};
    assert_int_equal(run_sync(index), 0);
    assert_non_null(strstr(out_text, "strategy concurrent"));
    assert_int_equal(h_qint(g.dc, "SELECT count(*) FROM pg_index WHERE indexrelid = "
                                  "'t_ddl_a'::regclass AND indisvalid"), 1);
    const char *view[] = {"CREATE VIEW t_ddl_v AS SELECT id FROM t_ddl -- a comment; not a statement",
                          NULL};
    assert_int_equal(run_sync(view), 0);
    assert_non_null(strstr(out_text, "strategy direct"));
    assert_int_equal(h_qint(g.dc, "SELECT count(*) FROM t_ddl_v"), 200);
}

/* ---------- fixture ---------- */

static int group_setup(void **state)
{
    (void)state;
    g.started_ms = h_now_ms();
    snprintf(g.dir, sizeof g.dir, "%s/run_cli.%d", h_tmpdir(), (int)getpid());
    mkdir(g.dir, 0755);
    h_recreate_db(DB);
    h_proxy_start(&g.px, NULL);
    g.ctl = h_console_connect(g.px.control_port, DB);
    g.dc = h_direct_connect(DB);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    PQfinish(g.ctl);
    PQfinish(g.dc);
    if (g.px.pid > 0)
        h_proxy_stop(&g.px);
    h_drop_db(DB);
    h_shell("rm -rf '%s'", g.dir);
    fprintf(stderr, "(run_cli: %.1f s)\n", (h_now_ms() - g.started_ms) / 1000);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_usage),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_other_ddl),
        cmocka_unit_test(test_done),
        cmocka_unit_test(test_failed),
        cmocka_unit_test(test_aborted),
        cmocka_unit_test(test_sigint_detaches),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
