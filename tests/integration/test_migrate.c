/*
 * test_migrate.c — `pgcutover migrate` (issue 15) as the real binary against a pgcutover
 * the test starts, on real migration directories written by the test:
 *
 *   golang      golang-migrate layout (1, 2, 3, 10: numeric order): plan on the empty
 *               database (2, 3, 10 deferred; a first version on a table nothing creates is
 *               an error, exit 1), up --steps 1, plan of the rest (instant, copy,
 *               concurrent), up, status, up again (nothing), down all the way (the schema
 *               as before), up again (a second run).
 *   flyway      V1, V1.1, V2 + U2 and a repeatable R__: up --to 1, plan of the rest
 *               (instant, concurrent, the repeatable), up; a changed repeatable is
 *               applied again and nothing else; down through U2; down of V1.1 refused
 *               (no undo file, exit 3).
 *   prisma      {timestamp}_{name}/migration.sql and migration_lock.toml: plan before the
 *               first is applied (the second deferred: its table does not exist yet),
 *               up --steps 1, plan (instant), up, status;
 *               down refused (no down).
 *   drift       an applied file edited: status says drifted, up exits 3, --accept-drift
 *               records the new checksum; a version that failed after a committed step and
 *               was then edited: refused (3) until accepted, then it goes on after that
 *               step (which runs once).
 *   block       a BEGIN … COMMIT block of instant/direct statements is one step (strategy
 *               block); a block holding a type change is refused by plan (exit 1) and up
 *               (0A000, exit 1) and nothing of it runs.
 *   runners     two `migrate up` at once: the second with --wait 0 exits 4 naming the
 *               other; with --wait it waits and finds nothing left; every step ran once.
 *   kill_engine SIGKILL of pgcutover mid-version, three times: in an instant statement
 *               (retrying behind a lock), during a copy (throttled), during a concurrent
 *               index build (held by an old snapshot); after each restart `migrate up`
 *               continues; a log table the version writes between those steps proves
 *               each step ran exactly once.
 *   lock_timeout a version that fails on lock_timeout (55P03) exits 1 at once, not retried
 *               as "another migrate is running" (55006); applied once the lock is gone.
 *   down_revert down --revert undoes a version of instant, concurrent and validate steps by
 *               REVERT MIGRATION of each (schema as before, the renamed column's data
 *               kept); 22023 until --accept-data-loss; a direct/data version refused.
 *   down_revert_copy  down --revert of a copy step and an index: the index dropped, the
 *               old table swapped back with the writes since; up again.
 *   kill_client SIGKILL of the client during a step: the engine finishes the version;
 *               the next up finds it applied; each step once.
 *   batched     plan: the batched UPDATE described, an unmarked one over 4,990 rows gets
 *               PGC006 (batch_threshold_rows 1,000; --strict exits 3, 0 without it);
 *               a `-- pgcutover:batched` UPDATE of 5,000 rows in ranges of 200, throttled;
 *               PAUSE MIGRATION n stops it between two ranges (rows_copied still for 1 s),
 *               RESUME lets it go on, and PAUSE/RESUME MIGRATION ALL the same; SIGKILL of pgcutover half way; after the restart `migrate up` goes on from
 *               the checkpoint: a trigger that logs every row update shows each row updated
 *               exactly once. On the console: BATCHED DELETE; an UPDATE of the key column
 *               and a keyless table refused (0A000).
 *
 * Each case has its own database and pgcutover(s); directories live under PGC_TMPDIR.
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

#define RUN_MS 120000

typedef struct {
    pid_t pid;
    char out[600], err[600];
} mig_proc;

static char out_text[65536], err_text[65536];
static char root[400]; /* this case's directory */

/* A fresh directory for this case (h_tmpdir()/mig.<pid>.<db>). */
static void case_dir(void)
{
    snprintf(root, sizeof root, "%s/mig.%d.%s", h_tmpdir(), (int)getpid(), h_eng_case.db);
    h_shell("rm -rf '%s' && mkdir -p '%s'", root, root);
}

/* Write root/rel (making its directory) with the formatted content. */
static void wfile(const char *rel, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wfile(const char *rel, const char *fmt, ...)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    char *slash = strrchr(path, '/');
    *slash = 0;
    h_shell("mkdir -p '%s'", path);
    *slash = '/';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

/* Start `pgcutover migrate <verb> -h 127.0.0.1 -p <console of px> -d <db> args… DIR`. */
static void mig_spawn(mig_proc *p, const h_proxy *px, const char *verb, const char *dir,
                      const char *const *args)
{
    static int seq;
    seq++;
    snprintf(p->out, sizeof p->out, "%s/out.%d", root, seq);
    snprintf(p->err, sizeof p->err, "%s/err.%d", root, seq);
    char port[16];
    snprintf(port, sizeof port, "%d", px->control_port);
    const char *argv[32] = {PGC_BIN, "migrate", verb, "-h", "127.0.0.1", "-p", port, "-d", h_eng_case.db};
    int a = 9;
    for (int i = 0; args && args[i] && a < 30; i++)
        argv[a++] = args[i];
    argv[a++] = dir;
    argv[a] = NULL;
    p->pid = h_spawn(argv, p->out, p->err);
}

/* Wait for p (bounded), read its output into out_text/err_text, return its exit code. */
static int mig_wait(mig_proc *p)
{
    int st = 0;
    double deadline = h_now_ms() + RUN_MS;
    while (waitpid(p->pid, &st, WNOHANG) != p->pid) {
        if (h_now_ms() > deadline) {
            h_stop_pid(&p->pid, 100);
            h_eng_fail("pgcutover migrate did not exit within %d s", RUN_MS / 1000);
        }
        usleep(20000);
    }
    p->pid = 0;
    snprintf(out_text, sizeof out_text, "%s", h_slurp(p->out));
    snprintf(err_text, sizeof err_text, "%s", h_slurp(p->err));
    fprintf(stderr, "---- migrate stdout ----\n%s---- stderr ----\n%s", out_text, err_text);
    if (!WIFEXITED(st))
        h_eng_fail("pgcutover migrate ended by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    return WEXITSTATUS(st);
}

/* Run migrate to its end through px; fail unless it exits with want. */
static void mig(const h_proxy *px, const char *verb, const char *const *args, int want)
{
    mig_proc p;
    mig_spawn(&p, px, verb, root, args);
    int rc = mig_wait(&p);
    if (rc != want)
        h_eng_fail("pgcutover migrate %s exited %d, want %d", verb, rc, want);
}

static void expect_out(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        h_eng_fail("output lacks \"%s\"", needle);
}

/* The state of version v in pgcutover.schema_migrations ("" when no row). */
static const char *vstate(PGconn *d, const char *v)
{
    static char s[64];
    PGresult *r = PQexecParams(d, "SELECT state || ' ' || direction || ' ' || statements_done || '/' "
                                  "|| statements_total || ' ' || array_to_string(strategies, ',') "
                                  "FROM pgcutover.schema_migrations WHERE version = $1",
                               1, NULL, (const char *[]){v}, NULL, NULL, 0);
    snprintf(s, sizeof s, "%s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return s;
}

static void expect_vstate(PGconn *d, const char *v, const char *want)
{
    const char *got = vstate(d, v);
    if (strcmp(got, want) != 0)
        h_eng_fail("version %s: \"%s\", want \"%s\"", v, got, want);
}

/* The columns and indexes of table t, as one text (for before/after comparisons). */
static const char *schema_of(PGconn *d, char *out, size_t len)
{
    return h_qtext(d, out, len,
                   "SELECT coalesce(string_agg(x, '; ' ORDER BY x), '') FROM (SELECT c.relname || "
                   "'.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) x FROM pg_attribute "
                   "a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = "
                   "c.relnamespace WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT "
                   "a.attisdropped UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = "
                   "'public') s");
}

/* ---------- layouts ---------- */

static void golang_files(void)
{
    wfile("1_create_accounts.up.sql",
          "-- accounts\nCREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL DEFAULT 0);\n"
          "INSERT INTO accounts SELECT g, g FROM generate_series(1, 500) g;\n");
    wfile("1_create_accounts.down.sql", "DROP TABLE accounts;\n");
    wfile("2_add_note.up.sql", "ALTER TABLE accounts ADD COLUMN note text;\n");
    wfile("2_add_note.down.sql", "ALTER TABLE accounts DROP COLUMN note;\n");
    wfile("3_widen_balance.up.sql", "ALTER TABLE accounts ALTER COLUMN balance TYPE bigint;\n");
    wfile("3_widen_balance.down.sql", "ALTER TABLE accounts ALTER COLUMN balance TYPE int;\n");
    wfile("10_balance_index.up.sql", "CREATE INDEX accounts_balance ON accounts (balance);\n");
    wfile("10_balance_index.down.sql", "DROP INDEX accounts_balance;\n");
}

static void test_golang(void **state)
{
    (void)state;
    case_dir();
    golang_files();
    PGconn *d = h_eng_direct(&h_eng_case);
    char before[4096], after[4096];
    schema_of(d, before, sizeof before);
    h_proxy_start(&h_eng_case.px, NULL);
    const h_proxy *px = &h_eng_case.px;
    mig(px, "plan", NULL, 0); /* 2, 3 and 10 deferred: they change the table 1 creates */
    expect_out(out_text, "deferred");
    wfile("0_typo.up.sql", "ALTER TABLE no_such_table ADD COLUMN x int;\n");
    mig(px, "plan", NULL, 1); /* nothing before it could create it: an error */
    expect_out(out_text, "no earlier pending step could create it");
    h_shell("rm '%s/0_typo.up.sql'", root);
    mig(px, "up", (const char *[]){"--steps", "1", NULL}, 0);
    expect_vstate(d, "1", "applied up 2/2 direct,data");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM accounts"), 500);
    mig(px, "plan", NULL, 0);
    expect_out(out_text, "instant");
    expect_out(out_text, "copy");
    expect_out(out_text, "concurrent");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.schema_migrations"), 1);
    mig(px, "up", NULL, 0);
    expect_vstate(d, "2", "applied up 1/1 instant");
    expect_vstate(d, "3", "applied up 1/1 copy");
    expect_vstate(d, "10", "applied up 1/1 concurrent");
    char order[200];
    h_qtext(d, order, sizeof order, "SELECT string_agg(version, ',' ORDER BY started_at) FROM "
                                    "pgcutover.schema_migrations");
    assert_string_equal(order, "1,2,3,10");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'accounts'::regclass "
                               "AND attname = 'balance' AND atttypid = 'int8'::regtype"), 1);
    mig(px, "status", NULL, 0);
    expect_out(out_text, "applied");
    mig(px, "up", NULL, 0);
    expect_out(out_text, "(0 rows)");
    mig(px, "down", (const char *[]){"--steps", "4", NULL}, 0);
    expect_vstate(d, "1", "reverted down 1/1 direct");
    schema_of(d, after, sizeof after);
    assert_string_equal(after, before);
    mig(px, "status", NULL, 0);
    expect_out(out_text, "pending");
    mig(px, "up", NULL, 0); /* a second run of every version */
    expect_vstate(d, "10", "applied up 1/1 concurrent");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM accounts"), 500);
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

static void test_flyway(void **state)
{
    (void)state;
    case_dir();
    wfile("V1__create_items.sql", "CREATE TABLE items (id int PRIMARY KEY, name text);\n"
                                  "INSERT INTO items VALUES (1, 'a'), (2, 'b');\n");
    wfile("V1.1__add_price.sql", "ALTER TABLE items ADD COLUMN price numeric DEFAULT 0;\n");
    wfile("V2__name_index.sql", "CREATE INDEX items_name ON items (name);\n");
    wfile("U2__name_index.sql", "DROP INDEX items_name;\n");
    wfile("R__items_view.sql", "CREATE OR REPLACE VIEW items_view AS SELECT id, name FROM items;\n");
    wfile("README.md", "not a migration\n");
    PGconn *d = h_eng_direct(&h_eng_case);
    h_proxy_start(&h_eng_case.px, NULL);
    const h_proxy *px = &h_eng_case.px;
    mig(px, "up", (const char *[]){"--to", "1", NULL}, 0);
    mig(px, "plan", NULL, 0); /* V1.1, V2 and R__ on the table V1 made */
    expect_out(out_text, "instant");
    expect_out(out_text, "concurrent");
    expect_out(out_text, "R__items view");
    mig(px, "up", NULL, 0);
    expect_vstate(d, "1", "applied up 2/2 direct,data");
    expect_vstate(d, "1.1", "applied up 1/1 instant");
    expect_vstate(d, "2", "applied up 1/1 concurrent");
    expect_vstate(d, "R__items view", "applied up 1/1 direct");
    char order[200];
    h_qtext(d, order, sizeof order, "SELECT string_agg(version, ',' ORDER BY started_at) FROM "
                                    "pgcutover.schema_migrations");
    assert_string_equal(order, "1,1.1,2,R__items view");
    /* a changed repeatable: applied again, alone */
    wfile("R__items_view.sql", "CREATE OR REPLACE VIEW items_view AS SELECT id, name, price FROM items;\n");
    mig(px, "status", NULL, 0);
    expect_out(out_text, "changed: up applies it again");
    mig(px, "up", NULL, 0);
    expect_out(out_text, "(1 row)");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM information_schema.columns WHERE table_name = "
                               "'items_view'"), 3);
    mig(px, "down", NULL, 0);
    expect_vstate(d, "2", "reverted down 1/1 concurrent");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_indexes WHERE indexname = 'items_name'"), 0);
    mig(px, "down", NULL, 3);
    expect_out(err_text, "has no down file");
    expect_vstate(d, "1.1", "applied up 1/1 instant");
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

static void test_prisma(void **state)
{
    (void)state;
    case_dir();
    wfile("20240101000000_init/migration.sql",
          "-- CreateTable\nCREATE TABLE \"User\" (\n    \"id\" SERIAL NOT NULL,\n    \"email\" TEXT NOT "
          "NULL,\n    CONSTRAINT \"User_pkey\" PRIMARY KEY (\"id\")\n);\n\n-- CreateIndex\nCREATE "
          "UNIQUE INDEX \"User_email_key\" ON \"User\"(\"email\");\n");
    wfile("20240102000000_add_name/migration.sql", "-- AlterTable\nALTER TABLE \"User\" ADD COLUMN \"name\" TEXT;\n");
    wfile("migration_lock.toml", "provider = \"postgresql\"\n");
    PGconn *d = h_eng_direct(&h_eng_case);
    h_proxy_start(&h_eng_case.px, NULL);
    mig(&h_eng_case.px, "plan", NULL, 0); /* the second needs "User", which the first makes */
    expect_out(out_text, "deferred");
    expect_out(out_text, "an earlier pending step may create it");
    mig(&h_eng_case.px, "up", (const char *[]){"--steps", "1", NULL}, 0);
    mig(&h_eng_case.px, "plan", NULL, 0);
    expect_out(out_text, "20240102000000_add_name");
    expect_out(out_text, "instant");
    mig(&h_eng_case.px, "up", NULL, 0);
    expect_vstate(d, "20240101000000_init", "applied up 2/2 direct,concurrent");
    expect_vstate(d, "20240102000000_add_name", "applied up 1/1 instant");
    mig(&h_eng_case.px, "status", NULL, 0);
    expect_out(out_text, "add_name");
    mig(&h_eng_case.px, "down", NULL, 3);
    expect_out(err_text, "has no down file");
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

static void test_drift(void **state)
{
    (void)state;
    case_dir();
    wfile("1_t.up.sql", "CREATE TABLE t (id int PRIMARY KEY);\n");
    PGconn *d = h_eng_direct(&h_eng_case);
    h_proxy_start(&h_eng_case.px, NULL);
    mig(&h_eng_case.px, "up", NULL, 0);
    wfile("1_t.up.sql", "CREATE TABLE t (id bigint PRIMARY KEY);\n");
    wfile("2_u.up.sql", "CREATE TABLE u (id int);\n");
    mig(&h_eng_case.px, "status", NULL, 0);
    expect_out(out_text, "drifted");
    mig(&h_eng_case.px, "up", NULL, 3);
    expect_out(err_text, "drift");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_class WHERE relname = 'u'"), 0);
    mig(&h_eng_case.px, "up", (const char *[]){"--accept-drift", "1", NULL}, 0);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_class WHERE relname = 'u'"), 1);
    mig(&h_eng_case.px, "status", NULL, 0);
    if (strstr(out_text, "drifted"))
        h_eng_fail("still drifted after --accept-drift");
    /* a version that failed after a committed step, then edited (a step more): refused —
     * the committed step would run again — until accepted, then it goes on after it */
    h_execf(d, "CREATE TABLE log (step int)");
    wfile("3_steps.up.sql", "INSERT INTO log VALUES (1);\nINSERT INTO no_such VALUES (1);\n"
                            "INSERT INTO log VALUES (2);\n");
    mig(&h_eng_case.px, "up", NULL, 1);
    expect_vstate(d, "3", "failed up 1/3 data");
    wfile("3_steps.up.sql", "INSERT INTO log VALUES (1);\nINSERT INTO log VALUES (10);\n"
                            "INSERT INTO log VALUES (2);\nINSERT INTO log VALUES (3);\n");
    mig(&h_eng_case.px, "up", NULL, 3);
    expect_out(err_text, "stopped after 1 of 3 steps and its file changed since");
    mig(&h_eng_case.px, "up", (const char *[]){"--accept-drift", "3", NULL}, 0);
    expect_vstate(d, "3", "applied up 4/4 data,data,data,data");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM log"), 4);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM log WHERE step = 1"), 1);
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

static void test_block(void **state)
{
    (void)state;
    case_dir();
    wfile("1_t.up.sql", "CREATE TABLE t (id int PRIMARY KEY, v int);\nINSERT INTO t VALUES (1, 1);\n");
    wfile("2_block.up.sql", "BEGIN;\nCREATE TABLE t2 (id int);\nCREATE INDEX t2_id ON t2 (id);\n"
                            "ALTER TABLE t ADD COLUMN c int;\nCOMMIT;\n");
    PGconn *d = h_eng_direct(&h_eng_case);
    h_proxy_start(&h_eng_case.px, NULL);
    mig(&h_eng_case.px, "up", NULL, 0);
    expect_vstate(d, "2", "applied up 1/1 block");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_indexes WHERE indexname = 't2_id'"), 1);
    wfile("3_bad_block.up.sql", "BEGIN;\nALTER TABLE t ADD COLUMN d int;\n"
                                "ALTER TABLE t ALTER COLUMN v TYPE bigint;\nCOMMIT;\n");
    mig(&h_eng_case.px, "plan", NULL, 1);
    expect_out(out_text, "refused");
    expect_out(out_text, "move it out of the BEGIN");
    mig(&h_eng_case.px, "up", NULL, 1);
    expect_out(err_text, "0A000");
    expect_out(err_text, "line 3");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' "
                               "AND column_name = 'd'"), 0);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND "
                               "attname = 'v' AND atttypid = 'int4'::regtype"), 1);
    expect_vstate(d, "3", "failed up 0/1 ");
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* ---------- runners and crashes ---------- */

static void test_runners(void **state)
{
    (void)state;
    case_dir();
    wfile("1_log.up.sql", "CREATE TABLE log (step int);\n");
    wfile("2_slow.up.sql", "INSERT INTO log VALUES (1);\nSELECT pg_sleep(3);\nINSERT INTO log VALUES (2);\n");
    PGconn *d = h_eng_direct(&h_eng_case);
    h_proxy_start(&h_eng_case.px, NULL);
    mig_proc a, c;
    mig_spawn(&a, &h_eng_case.px, "up", root, NULL);
    for (int i = 0; i < 100 && h_qint(d, "SELECT count(*) FROM pg_class WHERE relname = 'log'") == 0; i++)
        usleep(50000);
    for (int i = 0; i < 100 && h_qint(d, "SELECT count(*) FROM log") == 0; i++)
        usleep(50000);
    mig(&h_eng_case.px, "up", (const char *[]){"--wait", "0", NULL}, 4);
    expect_out(err_text, "another `pgcutover migrate` is running");
    mig_spawn(&c, &h_eng_case.px, "up", root, (const char *[]){"--wait", "60", NULL});
    if (mig_wait(&a) != 0)
        h_eng_fail("the first migrate up failed");
    if (mig_wait(&c) != 0)
        h_eng_fail("the waiting migrate up failed");
    expect_out(err_text, "waiting up to 60 s");
    expect_out(out_text, "(0 rows)");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM log"), 2);
    expect_vstate(d, "2", "applied up 3/3 data,data,data");
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* A version that fails on lock_timeout (55P03, every attempt behind a lock held
 * directly): exit 1 at once, not retried as "another migrate is running" (55006). */
static void test_lock_timeout(void **state)
{
    (void)state;
    case_dir();
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE t (id int PRIMARY KEY)");
    wfile("1_add.up.sql", "ALTER TABLE t ADD COLUMN c int;\n");
    static const char *const sets[] = {"lock_timeout_ms=50", "cutover_attempts=2", NULL};
    h_proxy_start(&h_eng_case.px, sets);
    PGconn *locker = h_eng_keep(&h_eng_case, h_direct_connect(h_eng_case.db));
    h_execf(locker, "BEGIN; LOCK TABLE t IN ACCESS SHARE MODE");
    mig(&h_eng_case.px, "up", (const char *[]){"--wait", "60", NULL}, 1);
    expect_out(err_text, "ERROR 55P03");
    if (strstr(err_text, "waiting up to"))
        h_eng_fail("a lock_timeout was retried as another migrate");
    expect_vstate(d, "1", "failed up 0/1 ");
    h_execf(locker, "COMMIT");
    mig(&h_eng_case.px, "up", NULL, 0);
    expect_vstate(d, "1", "applied up 1/1 instant");
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* down --revert: a version of instant, concurrent and validate steps undone by REVERT
 * MIGRATION of each, last first (its down file is never read: it has none); refused
 * (22023, nothing changed) until --accept-data-loss, as it drops the column the version
 * added; a version of direct and data steps refused (0A000). */
/* Start this case's pgcutover, apply version 1, keep the schema then in before (4096
 * bytes), apply the rest; the direct connection. */
static PGconn *up_after_first(char *before)
{
    PGconn *d = h_eng_direct(&h_eng_case);
    h_proxy_start(&h_eng_case.px, NULL);
    mig(&h_eng_case.px, "up", (const char *[]){"--steps", "1", NULL}, 0);
    schema_of(d, before, 4096);
    mig(&h_eng_case.px, "up", NULL, 0);
    return d;
}

static void test_down_revert(void **state)
{
    (void)state;
    case_dir();
    wfile("1_t.up.sql", "CREATE TABLE t (id int PRIMARY KEY, a int);\n"
                        "INSERT INTO t SELECT g, g FROM generate_series(1, 100) g;\n");
    wfile("2_cols.up.sql", "ALTER TABLE t RENAME COLUMN a TO b;\nALTER TABLE t ADD COLUMN c int DEFAULT 0;\n"
                           "CREATE INDEX t_b ON t (b);\nALTER TABLE t ALTER COLUMN c SET NOT NULL;\n");
    char before[4096], now[4096];
    PGconn *d = up_after_first(before);
    const h_proxy *px = &h_eng_case.px;
    expect_vstate(d, "2", "applied up 4/4 instant,instant,concurrent,validate");
    mig(px, "down", (const char *[]){"--revert", NULL}, 1);
    expect_out(err_text, "ERROR 22023");
    expect_vstate(d, "2", "applied up 4/4 instant,instant,concurrent,validate");
    mig(px, "down", (const char *[]){"--revert", "--accept-data-loss", NULL}, 0);
    expect_vstate(d, "2", "reverted down 4/4 revert");
    schema_of(d, now, sizeof now);
    assert_string_equal(now, before);
    assert_int_equal(h_qint(d, "SELECT sum(a) FROM t"), 5050);
    mig(px, "down", (const char *[]){"--revert", NULL}, 1);
    expect_out(err_text, "ERROR 0A000");
    expect_out(err_text, "cannot be reverted");
    mig(px, "up", NULL, 0); /* applied again, a second run */
    expect_vstate(d, "2", "applied up 4/4 instant,instant,concurrent,validate");
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* down --revert of a version with a copy step: its revert window swaps the old table
 * back (every row, the writes since included), after the version's later step (an index)
 * is reverted first; then up applies it again. */
static void test_down_revert_copy(void **state)
{
    (void)state;
    case_dir();
    wfile("1_t.up.sql", "CREATE TABLE t (id int PRIMARY KEY, a int);\n"
                        "INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g;\n");
    wfile("2_wide.up.sql", "ALTER TABLE t ALTER COLUMN a TYPE bigint;\nCREATE INDEX t_a ON t (a);\n");
    char before[4096], now[4096];
    PGconn *d = up_after_first(before);
    const h_proxy *px = &h_eng_case.px;
    expect_vstate(d, "2", "applied up 2/2 copy,concurrent");
    PGconn *app = h_eng_keep(&h_eng_case, h_connect(h_conninfo_proxy_db(px, h_eng_case.db, NULL)));
    h_execf(app, "UPDATE t SET a = a + 1 WHERE id <= 500; DELETE FROM t WHERE id = 1000; "
                 "INSERT INTO t VALUES (1001, 7)"); /* writes after the swap */
    mig(px, "down", (const char *[]){"--revert", NULL}, 0);
    expect_vstate(d, "2", "reverted down 2/2 revert");
    schema_of(d, now, sizeof now);
    assert_string_equal(now, before);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM t"), 1000);
    assert_int_equal(h_qint(d, "SELECT sum(a) FROM t"), 500500 + 500 - 1000 + 7);
    char trg[512]; /* the window of the revert alone */
    h_qtext(d, trg, sizeof trg, "SELECT string_agg(tgname, ',') FROM pg_trigger WHERE tgrelid = "
                                "'t'::regclass AND tgname LIKE 'pgcutover%%_dw'");
    long long w2 = h_qint(d, "SELECT max(id) FROM pgcutover.migrations WHERE state = 'standby'");
    char want[64];
    snprintf(want, sizeof want, "pgcutover_m%lld_dw", w2);
    if (strcmp(trg, want) != 0)
        h_eng_fail("triggers on t: %s, want %s", trg, want);
    mig(px, "up", NULL, 0); /* applied again: a new copy, the revert's window closed by it */
    expect_vstate(d, "2", "applied up 2/2 copy,concurrent");
    assert_int_equal(h_qint(d, "SELECT sum(a) FROM t"), 500500 + 500 - 1000 + 7);
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* Poll (10 s) until the direct query q counts > 0. */
static void wait_for(PGconn *d, const char *what, const char *q)
{
    for (int i = 0; i < 200; i++) {
        if (h_qint(d, "%s", q) > 0)
            return;
        usleep(50000);
    }
    h_eng_fail("waited 10 s for %s", what);
}

/* SIGKILL of px (and its client p, which then loses the console), then a new pgcutover
 * into *next. */
static void kill_and_restart(h_proxy *px, mig_proc *p, h_proxy *next, const char *const *sets)
{
    h_proxy_signal(px, SIGKILL);
    h_proxy_stop(px);
    int rc = mig_wait(p);
    if (rc != 5)
        h_eng_fail("the client of a killed pgcutover exited %d, want 5", rc);
    h_proxy_start(next, sets);
}

static void test_kill_engine(void **state)
{
    (void)state;
    case_dir();
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE log (step int); CREATE TABLE big (id int PRIMARY KEY, v int); "
               "INSERT INTO big SELECT g, g FROM generate_series(1, 20000) g");
    wfile("1_steps.up.sql",
          "INSERT INTO log VALUES (1);\n"
          "ALTER TABLE big ADD COLUMN note text;\n"            /* instant, behind a lock */
          "INSERT INTO log VALUES (2);\n"
          "ALTER TABLE big ALTER COLUMN v TYPE bigint;\n"      /* copy, throttled */
          "INSERT INTO log VALUES (3);\n"
          "CREATE INDEX big_v ON big (v);\n"                   /* concurrent, held */
          "INSERT INTO log VALUES (4);\n");
    static const char *const sets[] = {"max_rows_per_second=2000", "lock_timeout_ms=200",
                                       "cutover_attempts=50", NULL};
    h_proxy *px = &h_eng_case.px, *px2 = &h_eng_case.px2;
    h_proxy_start(px, sets);
    /* 1. the instant ADD COLUMN retries behind a lock: kill it there */
    PGconn *locker = h_eng_keep(&h_eng_case, h_direct_connect(h_eng_case.db));
    h_execf(locker, "BEGIN; LOCK TABLE big IN ACCESS SHARE MODE");
    mig_proc p;
    mig_spawn(&p, px, "up", root, NULL);
    wait_for(d, "step 1", "SELECT count(*) FROM log WHERE step = 1");
    usleep(600000); /* a few lock_timeout attempts */
    kill_and_restart(px, &p, px2, sets);
    h_execf(locker, "COMMIT");
    /* 2. the copy: kill it while copying */
    mig_spawn(&p, px2, "up", root, NULL);
    wait_for(d, "the copy", "SELECT count(*) FROM pgcutover.migrations WHERE strategy = 'copy' AND "
                            "state = 'copying' AND rows_copied > 0");
    usleep(1200000); /* a progress look of the client (every second) */
    kill_and_restart(px2, &p, px, sets);
    expect_out(out_text, "applying 1 (steps): step 4 of 7: migration "); /* its progress line */
    expect_out(out_text, ": copy, copying, ");
    /* 3. the index build: an old snapshot holds it; kill it there */
    h_execf(locker, "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pg_class");
    mig_spawn(&p, px, "up", root, NULL);
    wait_for(d, "the build", "SELECT count(*) FROM pgcutover.migrations WHERE strategy = 'concurrent' "
                             "AND state = 'building'");
    kill_and_restart(px, &p, px2, sets);
    h_execf(locker, "COMMIT");
    mig(px2, "up", NULL, 0);
    expect_vstate(d, "1", "applied up 7/7 data,instant,data,copy,data,concurrent,data");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM log"), 4);
    assert_int_equal(h_qint(d, "SELECT count(DISTINCT step) FROM log"), 4);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.migrations WHERE strategy = 'copy' AND "
                               "state = 'done'"), 1);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_index WHERE indexrelid = 'big_v'::regclass "
                               "AND indisvalid"), 1);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'big'::regclass "
                               "AND attname = 'note'"), 1);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM big"), 20000);
    h_eng_stop_proxy(&h_eng_case, px2);
}

static void test_kill_client(void **state)
{
    (void)state;
    case_dir();
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE log (step int)");
    wfile("1_slow.up.sql", "INSERT INTO log VALUES (1);\nSELECT pg_sleep(2);\nINSERT INTO log VALUES (2);\n");
    h_proxy_start(&h_eng_case.px, NULL);
    mig_proc p;
    mig_spawn(&p, &h_eng_case.px, "up", root, NULL);
    wait_for(d, "step 1", "SELECT count(*) FROM log WHERE step = 1");
    kill(p.pid, SIGKILL);
    int st;
    waitpid(p.pid, &st, 0);
    p.pid = 0;
    mig(&h_eng_case.px, "up", (const char *[]){"--wait", "60", NULL}, 0);
    expect_vstate(d, "1", "applied up 3/3 data,data,data");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM log"), 2);
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

static void test_batched(void **state)
{
    (void)state;
    case_dir();
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE acc (id int PRIMARY KEY, v int NOT NULL); INSERT INTO acc SELECT g, g "
               "FROM generate_series(1, 5000) g; CREATE TABLE upd (id int); CREATE FUNCTION log_upd() "
               "RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO upd VALUES (NEW.id); RETURN "
               "NULL; END$$; CREATE TRIGGER log_upd AFTER UPDATE ON acc FOR EACH ROW EXECUTE "
               "FUNCTION log_upd(); ANALYZE acc");
    wfile("1_bump.up.sql", "-- pgcutover:batched\nUPDATE acc SET v = v + 1 WHERE v > 0;\n");
    wfile("2_unbatched.up.sql", "UPDATE acc SET v = v WHERE id > 10;\n");
    static const char *const sets[] = {"batch_size=200", "max_rows_per_second=2000",
                                       "batch_threshold_rows=1000", NULL};
    h_proxy *px = &h_eng_case.px, *px2 = &h_eng_case.px2;
    h_proxy_start(px, sets);
    mig_proc p;
    mig_spawn(&p, px, "plan", root, NULL);
    if (mig_wait(&p) != 0)
        h_eng_fail("plan of a batched statement failed");
    expect_out(out_text, "key ranges of 200 rows");
    expect_out(out_text, "PGC006 large data change: about 49"); /* 4,990 rows, as estimated */
    mig(px, "plan", (const char *[]){"--strict", NULL}, 3); /* the unmarked UPDATE's PGC006 */
    h_shell("rm '%s/2_unbatched.up.sql'", root);
    mig(px, "plan", (const char *[]){"--strict", NULL}, 0);
    mig_spawn(&p, px, "up", root, NULL);
    wait_for(d, "a few ranges", "SELECT count(*) FROM pgcutover.migrations WHERE strategy = 'batched' "
                                "AND rows_copied >= 400");
    /* PAUSE holds it between two ranges; RESUME lets it go on */
    long long id = h_qint(d, "SELECT id FROM pgcutover.migrations WHERE strategy = 'batched'");
    PGconn *ctl0 = h_eng_console(&h_eng_case, px);
    PQclear(h_ctl_ok(ctl0, "PAUSE MIGRATION %lld", id));
    usleep(500000);
    long long at = h_qint(d, "SELECT rows_copied FROM pgcutover.migrations WHERE id = %lld", id);
    usleep(1000000);
    assert_int_equal(h_qint(d, "SELECT rows_copied FROM pgcutover.migrations WHERE id = %lld", id), at);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.migrations WHERE id = %lld AND state = "
                               "'paused'", id), 1);
    PQclear(h_ctl_ok(ctl0, "RESUME MIGRATION %lld", id));
    wait_for(d, "ranges after RESUME", "SELECT count(*) FROM pgcutover.migrations WHERE strategy = "
                                       "'batched' AND rows_copied >= 800");
    /* PAUSE MIGRATION ALL holds it too; RESUME MIGRATION ALL lets it go on */
    PQclear(h_ctl_ok(ctl0, "PAUSE MIGRATION ALL"));
    usleep(500000);
    at = h_qint(d, "SELECT rows_copied FROM pgcutover.migrations WHERE id = %lld", id);
    usleep(1000000);
    assert_int_equal(h_qint(d, "SELECT rows_copied FROM pgcutover.migrations WHERE id = %lld AND "
                               "state = 'paused'", id), at);
    PQclear(h_ctl_ok(ctl0, "RESUME MIGRATION ALL"));
    wait_for(d, "ranges after RESUME ALL", "SELECT count(*) FROM pgcutover.migrations WHERE strategy "
                                           "= 'batched' AND rows_copied >= 1000");
    kill_and_restart(px, &p, px2, sets);
    long long half = h_qint(d, "SELECT count(*) FROM upd");
    if (half <= 0 || half >= 5000)
        h_eng_fail("%lld rows updated before the kill, want some", half);
    mig(px2, "up", NULL, 0);
    expect_vstate(d, "1", "applied up 1/1 batched");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM upd"), 5000);
    assert_int_equal(h_qint(d, "SELECT count(DISTINCT id) FROM upd"), 5000);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM acc WHERE v <> id + 1"), 0);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.migrations WHERE strategy = 'batched'"), 1);
    /* the console's BATCHED, and what it refuses */
    PGconn *ctl = h_eng_console(&h_eng_case, px2);
    PGresult *r = h_ctl_ok(ctl, "BATCHED DELETE FROM acc WHERE id %% 2 = 0");
    assert_string_equal(PQgetvalue(r, 0, h_col(r, "strategy")), "batched");
    PQclear(r);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM acc"), 2500);
    char code[6], msg[512];
    h_ctl_err(ctl, "BATCHED UPDATE acc SET id = id + 10000", code, msg, sizeof msg);
    assert_string_equal(code, "0A000");
    expect_out(msg, "key column");
    h_execf(d, "CREATE TABLE nokey (a int)");
    h_ctl_err(ctl, "BATCHED UPDATE nokey SET a = 1", code, msg, sizeof msg);
    assert_string_equal(code, "0A000");
    expect_out(msg, "primary key");
    h_eng_stop_proxy(&h_eng_case, px2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        H_ENG_CASE(test_golang, "mig_golang"),       H_ENG_CASE(test_flyway, "mig_flyway"),
        H_ENG_CASE(test_prisma, "mig_prisma"),       H_ENG_CASE(test_drift, "mig_drift"),
        H_ENG_CASE(test_block, "mig_block"),         H_ENG_CASE(test_runners, "mig_runners"),
        H_ENG_CASE(test_kill_engine, "mig_kill_eng"), H_ENG_CASE(test_kill_client, "mig_kill_cli"),
        H_ENG_CASE(test_batched, "mig_batched"),     H_ENG_CASE(test_lock_timeout, "mig_lockto"),
        H_ENG_CASE(test_down_revert, "mig_revert"),
        H_ENG_CASE(test_down_revert_copy, "mig_revert_copy"),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
