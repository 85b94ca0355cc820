/*
 * test_migrate_adopt.c — `pgcutover migrate status|adopt` (issue 15) over a database that
 * another tool migrated: its history table made directly with SQL, as that tool leaves
 * it, together with the schema its files made. Every adopted file would fail if it ran
 * (it creates what exists), so exit 0 proves it was recorded, not run.
 *
 *   golang      public.schema_migrations at 2 (clean) and a Rails-like
 *               rails.schema_migrations (varchar, ignored): status notes 1 and 2
 *               "golang-migrate says applied", not 3; adopt records 1, 2 (strategy
 *               adopted, no engine migration row); adopt again adopts nothing; up runs 3
 *               only; status has no note left.
 *   golang_bad  no history: adopt exits 3 "no golang-migrate history table ({schema_migrations})";
 *               dirty at 2: status "failed (dirty)", adopt exits 3 naming it; current
 *               version 5 without a file: exit 3 "lacks version 5"; a second candidate
 *               table: exit 3 naming both; nothing recorded by any of them.
 *   flyway      app.flyway_schema_history (a non-public schema): V1, V1.1 and a
 *               repeatable with Flyway's checksums, a failed V2: adopt exits 3 naming 2;
 *               the row deleted (`flyway repair`), a V1.1 file changed since is refused
 *               (checksum); restored, adopt records 1, 1.1 and R__items view with
 *               Flyway's times; up runs 2 only.
 *   golang_renamed  golang-migrate's table renamed (x-migrations-table=gm_versions): not
 *               found by default (exit 3), found with --history-table gm_versions.
 *   baseline    a Flyway baseline at 2 and V3 applied, in Flyway 4's schema_version: adopt
 *               records 1, 2, 3; up runs 4.
 *   prisma      _prisma_migrations: init applied; add_name failed, rolled back and
 *               applied again; third failed and unresolved: adopt exits 3 naming it;
 *               resolved (rolled back): adopt records init and add_name; up runs third.
 *
 * The checksums in the Flyway rows were computed apart from pgcutover (Python's
 * zlib.crc32 of the file without its line breaks, as a signed int), so they check
 * osc_flyway_checksum against Flyway's rule, not against itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"

#define RUN_MS 120000

static char out_text[65536], err_text[65536];
static char root[400]; /* this case's directory */

/* A fresh directory for this case (h_tmpdir()/adopt.<pid>.<db>). */
static void case_dir(void)
{
    snprintf(root, sizeof root, "%s/adopt.%d.%s", h_tmpdir(), (int)getpid(), h_eng_case.db);
    h_shell("rm -rf '%s' && mkdir -p '%s'", root, root);
}

/* Write root/rel (making its directory) with text. */
static void wfile(const char *rel, const char *text)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    char *slash = strrchr(path, '/');
    *slash = 0;
    h_shell("mkdir -p '%s'", path);
    *slash = '/';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Run `pgcutover migrate <verb> … root` through px to its end; fail unless it exits want. */
static void mig_with(const h_proxy *px, const char *verb, const char *history, int want)
{
    static int seq;
    char out[600], err[600], port[16];
    seq++;
    snprintf(out, sizeof out, "%s/out.%d", root, seq);
    snprintf(err, sizeof err, "%s/err.%d", root, seq);
    snprintf(port, sizeof port, "%d", px->control_port);
    const char *argv[] = {PGC_BIN, "migrate",     verb,     "-h", "127.0.0.1", "-p", port,
                          "-d",    h_eng_case.db, "--wait", "0",  root,        NULL, NULL, NULL};
    if (history) { /* before the directory */
        argv[11] = "--history-table";
        argv[12] = history;
        argv[13] = root;
    }
    pid_t pid = h_spawn(argv, out, err);
    int st = 0;
    double deadline = h_now_ms() + RUN_MS;
    while (waitpid(pid, &st, WNOHANG) != pid) {
        if (h_now_ms() > deadline) {
            h_stop_pid(&pid, 100);
            h_eng_fail("pgcutover migrate did not exit within %d s", RUN_MS / 1000);
        }
        usleep(20000);
    }
    snprintf(out_text, sizeof out_text, "%s", h_slurp(out));
    snprintf(err_text, sizeof err_text, "%s", h_slurp(err));
    fprintf(stderr, "---- migrate %s stdout ----\n%s---- stderr ----\n%s", verb, out_text,
            err_text);
    if (!WIFEXITED(st))
        h_eng_fail("pgcutover migrate ended by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    if (WEXITSTATUS(st) != want)
        h_eng_fail("pgcutover migrate %s exited %d, want %d", verb, WEXITSTATUS(st), want);
}

static void mig(const h_proxy *px, const char *verb, int want)
{
    mig_with(px, verb, NULL, want);
}

static void expect_out(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        h_eng_fail("output lacks \"%s\"", needle);
}

/* Whether the printed row of version (its line starting "<version> ") holds needle;
 * fails when there is no such line. */
static bool row_has(const char *version, const char *needle)
{
    size_t n = strlen(version);
    for (const char *l = out_text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, version, n) == 0 && l[n] == ' ') {
            const char *end = strchr(l, '\n');
            size_t len = end ? (size_t)(end - l) : strlen(l);
            char line[2048];
            snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1),
                     l);
            return strstr(line, needle) != NULL;
        }
    }
    h_eng_fail("no row for version %s", version);
}

static void expect_row(const char *version, const char *needle, bool want)
{
    if (row_has(version, needle) != want)
        h_eng_fail("the row of version %s %s \"%s\"", version, want ? "lacks" : "has", needle);
}

/* The state of version v in pgcutover.schema_migrations ("" when no row). */
static void expect_vstate(PGconn *d, const char *v, const char *want)
{
    char got[200];
    PGresult *r = PQexecParams(d,
                               "SELECT state || ' ' || direction || ' ' || statements_done || '/' "
                               "|| statements_total || ' ' || array_to_string(strategies, ',') "
                               "FROM pgcutover.schema_migrations WHERE version = $1",
                               1, NULL, (const char *[]){v}, NULL, NULL, 0);
    snprintf(got, sizeof got, "%s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    if (strcmp(got, want) != 0)
        h_eng_fail("version %s: \"%s\", want \"%s\"", v, got, want);
}

static long long recorded(PGconn *d)
{
    return h_qint(d, "SELECT count(*) FROM pgcutover.schema_migrations");
}

/* ---------- golang-migrate ---------- */

static void golang_files(void)
{
    wfile("1_create_accounts.up.sql",
          "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL DEFAULT 0);\n"
          "INSERT INTO accounts SELECT g, g FROM generate_series(1, 100) g;\n");
    wfile("1_create_accounts.down.sql", "DROP TABLE accounts;\n");
    wfile("0002_add_note.up.sql", "ALTER TABLE accounts ADD COLUMN note text;\n");
    wfile("3_add_flag.up.sql", "ALTER TABLE accounts ADD COLUMN flag bool;\n");
}

/* What golang-migrate's runs of 1 and 2 left: the schema and its table at version. */
static void golang_history(PGconn *d, const char *schema, long version, bool dirty)
{
    h_execf(d,
            "CREATE TABLE IF NOT EXISTS %s.schema_migrations (version bigint NOT NULL PRIMARY KEY, "
            "dirty boolean NOT NULL)",
            schema);
    h_execf(d, "TRUNCATE %s.schema_migrations; INSERT INTO %s.schema_migrations VALUES (%ld, %s)",
            schema, schema, version, dirty ? "true" : "false");
}

static void test_golang(void **state)
{
    (void)state;
    case_dir();
    golang_files();
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(
        d, "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL DEFAULT 0, note text)");
    h_execf(d, "INSERT INTO accounts SELECT g, g FROM generate_series(1, 10) g");
    golang_history(d, "public", 2, false);
    /* Rails keeps a schema_migrations too (version varchar): not golang-migrate's */
    h_execf(
        d,
        "CREATE SCHEMA rails; CREATE TABLE rails.schema_migrations (version varchar PRIMARY KEY); "
        "INSERT INTO rails.schema_migrations VALUES ('20240101000000')");
    h_proxy_start(&h_eng_case.px, NULL);
    const h_proxy *px = &h_eng_case.px;
    mig(px, "status", 0);
    expect_row("1", "golang-migrate says applied: `pgcutover migrate adopt` records it", true);
    expect_row("0002", "golang-migrate says applied", true);
    expect_row("3", "says applied", false);
    expect_row("3", "pending", true);
    mig(px, "adopt", 0);
    expect_out(out_text, "(2 rows)");
    expect_row("1", "adopted", true);
    expect_vstate(d, "1", "applied up 2/2 adopted");
    expect_vstate(d, "0002", "applied up 1/1 adopted");
    expect_vstate(d, "3", "");
    /* recorded, not run: no engine step, the rows as they were */
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.migrations"), 0);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM accounts"), 10);
    char by[200];
    h_qtext(d, by, sizeof by,
            "SELECT applied_by || ' ' || layout || ' ' || (finished_at IS NOT NULL) "
            "|| ' ' || run || ' ' || (checksum ~ '^[0-9a-f]{64}$') FROM "
            "pgcutover.schema_migrations WHERE version = '1'");
    char want[200];
    snprintf(want, sizeof want, "%s golang-migrate true 1 true", h_pg_user());
    assert_string_equal(by, want);
    mig(px, "adopt", 0); /* again: nothing left to adopt */
    expect_out(out_text, "(0 rows)");
    mig(px, "up", 0);
    expect_out(out_text, "(1 row)");
    expect_vstate(d, "3", "applied up 1/1 instant");
    assert_int_equal(
        h_qint(d, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'accounts'::regclass "
                  "AND attname = 'flag'"),
        1);
    mig(px, "status", 0);
    if (strstr(out_text, "says"))
        h_eng_fail("a note from golang-migrate's history after adoption");
    /* golang-migrate's table is left as it was */
    assert_int_equal(h_qint(d, "SELECT version FROM public.schema_migrations"), 2);
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* golang-migrate run with x-migrations-table=gm_versions: not found by its default name
 * (adopt exits 3, nothing recorded), found by --history-table gm_versions; status too. */
static void test_golang_renamed(void **state)
{
    (void)state;
    case_dir();
    golang_files();
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL DEFAULT 0, note text);"
               "CREATE TABLE gm_versions (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);"
               "INSERT INTO gm_versions VALUES (2, false)");
    h_proxy_start(&h_eng_case.px, NULL);
    const h_proxy *px = &h_eng_case.px;
    mig(px, "adopt", 3);
    expect_out(err_text, "no golang-migrate history table ({schema_migrations})");
    assert_int_equal(recorded(d), 0);
    mig_with(px, "status", "gm_versions", 0);
    expect_row("0002", "golang-migrate says applied", true);
    mig_with(px, "adopt", "gm_versions", 0);
    expect_out(out_text, "(2 rows)");
    expect_vstate(d, "1", "applied up 2/2 adopted");
    expect_vstate(d, "0002", "applied up 1/1 adopted");
    expect_vstate(d, "3", "");
    mig_with(px, "adopt", "no_such_table", 3);
    expect_out(err_text, "no golang-migrate history table (no_such_table)");
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

static void test_golang_refused(void **state)
{
    (void)state;
    case_dir();
    golang_files();
    PGconn *d = h_eng_direct(&h_eng_case);
    h_proxy_start(&h_eng_case.px, NULL);
    const h_proxy *px = &h_eng_case.px;
    mig(px, "adopt", 3);
    expect_out(err_text, "no golang-migrate history table ({schema_migrations}) found");
    mig(px, "status", 0); /* no history: no notes */
    if (strstr(out_text, "says"))
        h_eng_fail("a note without a history");
    /* dirty at 2: 2 failed half way */
    h_execf(d, "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL DEFAULT 0)");
    golang_history(d, "public", 2, true);
    mig(px, "status", 0);
    expect_row("0002", "golang-migrate says failed (dirty)", true);
    expect_row("1", "golang-migrate says applied", true);
    mig(px, "adopt", 3);
    expect_out(err_text, "dirty at version 2");
    expect_out(err_text, "HINT:");
    assert_int_equal(recorded(d), 0);
    /* at 5, which the directory lacks */
    golang_history(d, "public", 5, false);
    mig(px, "adopt", 3);
    expect_out(err_text, "the directory lacks version 5 that golang-migrate applied");
    assert_int_equal(recorded(d), 0);
    /* two tables of golang-migrate's shape (x-migrations-table in another schema) */
    golang_history(d, "public", 2, false);
    h_execf(d, "CREATE SCHEMA \"Other\"");
    golang_history(d, "\"Other\"", 1, false);
    mig(px, "adopt", 3);
    expect_out(err_text, "public.schema_migrations");
    expect_out(err_text, "\"Other\".schema_migrations");
    assert_int_equal(recorded(d), 0);
    /* the other one dropped: adoption goes through */
    h_execf(d, "DROP SCHEMA \"Other\" CASCADE");
    mig(px, "adopt", 0);
    expect_out(out_text, "(2 rows)");
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* ---------- Flyway ---------- */

/* Flyway's history table schema.name, as Flyway creates it on PostgreSQL
 * (createMetaDataTable.sql; before Flyway 5 its name was schema_version). */
static void flyway_table_named(PGconn *d, const char *schema, const char *name)
{
    h_execf(d,
            "CREATE SCHEMA IF NOT EXISTS %s; CREATE TABLE %s.%s ("
            "installed_rank INT NOT NULL, version VARCHAR(50), description VARCHAR(200) NOT NULL, "
            "type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, checksum INTEGER, "
            "installed_by VARCHAR(100) NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT now(), "
            "execution_time INTEGER NOT NULL, success BOOLEAN NOT NULL, CONSTRAINT "
            "%s_pk PRIMARY KEY (installed_rank))",
            schema, schema, name, name);
}

static void flyway_table(PGconn *d, const char *schema)
{
    flyway_table_named(d, schema, "flyway_schema_history");
}

static void test_flyway(void **state)
{
    (void)state;
    case_dir();
    const char *v11 = "ALTER TABLE items ADD COLUMN price numeric DEFAULT 0;\n";
    wfile("V1__create_items.sql", "CREATE TABLE items (id int PRIMARY KEY, name text);\n");
    wfile("V1_1__add_price.sql", v11);
    wfile("V2__name_index.sql", "CREATE INDEX items_name ON items (name);\n");
    wfile("R__items_view.sql", "CREATE OR REPLACE VIEW items_view AS SELECT id, name FROM items;\n"
                               "CREATE TABLE items_log (id int);\n");
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(
        d, "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric DEFAULT 0); "
           "CREATE VIEW items_view AS SELECT id, name FROM items; CREATE TABLE items_log (id int)");
    flyway_table(d, "app");
    h_execf(d, "INSERT INTO app.flyway_schema_history VALUES "
               "(1, '1', 'create items', 'SQL', 'V1__create_items.sql', 1071677601, 'ci', "
               "'2024-03-01 10:00:00', 1500, true), "
               "(2, '1.1', 'add price', 'SQL', 'V1_1__add_price.sql', 1298720417, 'ci', "
               "'2024-03-01 10:00:02', 20, true), "
               "(3, NULL, 'items view', 'SQL', 'R__items_view.sql', -779502077, 'ci', "
               "'2024-03-01 10:00:03', 5, true), "
               "(4, '2', 'name index', 'SQL', 'V2__name_index.sql', 0, 'ci', "
               "'2024-03-01 10:00:04', 7, false)");
    h_proxy_start(&h_eng_case.px, NULL);
    const h_proxy *px = &h_eng_case.px;
    mig(px, "status", 0);
    expect_row("1", "Flyway says applied", true);
    expect_row("1_1", "Flyway says applied", true);
    expect_row("R__items view", "Flyway says applied", true);
    expect_row("2", "Flyway says failed", true);
    mig(px, "adopt", 3);
    expect_out(err_text, "version 2 failed");
    expect_out(err_text, "flyway repair");
    assert_int_equal(recorded(d), 0);
    h_execf(d,
            "DELETE FROM app.flyway_schema_history WHERE installed_rank = 4"); /* flyway repair */
    /* V1.1's file edited since Flyway applied it: refused, as flyway validate would */
    wfile("V1_1__add_price.sql", "ALTER TABLE items ADD COLUMN price numeric DEFAULT 1;\n");
    mig(px, "status", 0);
    expect_row("1_1", "its file changed since", true);
    mig(px, "adopt", 3);
    expect_out(err_text, "version 1_1 (add price)");
    expect_out(err_text, "checksum 1298720417");
    assert_int_equal(recorded(d), 0);
    /* line breaks do not change Flyway's checksum */
    wfile("V1_1__add_price.sql", "ALTER TABLE items ADD COLUMN price numeric DEFAULT 0;\r\n");
    mig(px, "adopt", 0);
    expect_out(out_text, "(3 rows)");
    expect_vstate(d, "1", "applied up 1/1 adopted");
    expect_vstate(d, "1_1", "applied up 1/1 adopted");
    expect_vstate(d, "R__items view", "applied up 2/2 adopted");
    expect_vstate(d, "2", "");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgcutover.migrations"), 0);
    /* Flyway's times: finished at installed_on, execution_time as the duration */
    char t[200];
    h_qtext(d, t, sizeof t,
            "SELECT duration_ms || ' ' || (finished_at = '2024-03-01 10:00:00'::timestamp) "
            "|| ' ' || (finished_at - started_at) FROM pgcutover.schema_migrations "
            "WHERE version = '1'");
    assert_string_equal(t, "1500 true 00:00:01.5");
    mig(px, "up", 0);
    expect_out(out_text, "(1 row)");
    expect_vstate(d, "2", "applied up 1/1 concurrent");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_indexes WHERE indexname = 'items_name'"),
                     1);
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

static void test_flyway_baseline(void **state)
{
    (void)state;
    case_dir();
    wfile("V1__b1.sql", "CREATE TABLE b1 (id int);\n");
    wfile("V2__b2.sql", "CREATE TABLE b2 (id int);\n");
    wfile("V3__b3.sql", "CREATE TABLE base3 (id int);\n");
    wfile("V4__b4.sql", "CREATE TABLE b4 (id int);\n");
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(d, "CREATE TABLE b1 (id int); CREATE TABLE b2 (id int); CREATE TABLE base3 (id int)");
    flyway_table_named(d, "public", "schema_version"); /* Flyway before 5 */
    h_execf(d, "INSERT INTO public.schema_version VALUES "
               "(1, '2', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, 'ci', "
               "now(), 0, true), "
               "(2, '3', 'b3', 'SQL', 'V3__b3.sql', -157663772, 'ci', now(), 3, true)");
    h_proxy_start(&h_eng_case.px, NULL);
    const h_proxy *px = &h_eng_case.px;
    mig(px, "status", 0);
    expect_row("1", "Flyway says applied", true);
    expect_row("4", "says", false);
    mig(px, "adopt", 0);
    expect_out(out_text, "(3 rows)");
    expect_vstate(d, "1", "applied up 1/1 adopted");
    expect_vstate(d, "2", "applied up 1/1 adopted");
    expect_vstate(d, "3", "applied up 1/1 adopted");
    mig(px, "up", 0);
    expect_out(out_text, "(1 row)");
    expect_vstate(d, "4", "applied up 1/1 direct");
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

/* ---------- Prisma ---------- */

static void test_prisma(void **state)
{
    (void)state;
    case_dir();
    wfile("20240101000000_init/migration.sql",
          "-- CreateTable\nCREATE TABLE \"User\" (\"id\" SERIAL NOT "
          "NULL, CONSTRAINT \"User_pkey\" PRIMARY KEY (\"id\"));\n");
    wfile("20240102000000_add_name/migration.sql",
          "ALTER TABLE \"User\" ADD COLUMN \"name\" TEXT;\n");
    wfile("20240103000000_third/migration.sql", "ALTER TABLE \"User\" ADD COLUMN \"age\" INT;\n");
    wfile("migration_lock.toml", "provider = \"postgresql\"\n");
    PGconn *d = h_eng_direct(&h_eng_case);
    h_execf(
        d, "CREATE TABLE \"User\" (\"id\" SERIAL NOT NULL, \"name\" TEXT, CONSTRAINT \"User_pkey\" "
           "PRIMARY KEY (\"id\"))");
    /* as Prisma's schema engine creates it */
    h_execf(
        d,
        "CREATE TABLE \"_prisma_migrations\" (\"id\" VARCHAR(36) PRIMARY KEY NOT NULL, "
        "\"checksum\" VARCHAR(64) NOT NULL, \"finished_at\" TIMESTAMPTZ, \"migration_name\" "
        "VARCHAR(255) NOT NULL, \"logs\" TEXT, \"rolled_back_at\" TIMESTAMPTZ, \"started_at\" "
        "TIMESTAMPTZ NOT NULL DEFAULT now(), \"applied_steps_count\" INTEGER NOT NULL DEFAULT 0)");
    h_execf(d,
            "INSERT INTO _prisma_migrations VALUES "
            "('a', 'x', '2024-01-01 00:00:02+00', '20240101000000_init', NULL, NULL, "
            "'2024-01-01 00:00:00+00', 1), "
            "('b', 'x', NULL, '20240102000000_add_name', 'boom', '2024-01-02 00:00:05+00', "
            "'2024-01-02 00:00:00+00', 0), "
            "('c', 'x', '2024-01-02 00:00:07+00', '20240102000000_add_name', NULL, NULL, "
            "'2024-01-02 00:00:06+00', 1), "
            "('d', 'x', NULL, '20240103000000_third', 'boom', NULL, '2024-01-03 00:00:00+00', 0)");
    h_proxy_start(&h_eng_case.px, NULL);
    const h_proxy *px = &h_eng_case.px;
    mig(px, "status", 0);
    expect_row("20240101000000_init", "Prisma says applied", true);
    expect_row("20240102000000_add_name", "Prisma says applied", true);
    expect_row("20240103000000_third", "Prisma says failed", true);
    mig(px, "adopt", 3);
    expect_out(err_text, "version 20240103000000_third failed");
    expect_out(err_text, "prisma migrate resolve");
    assert_int_equal(recorded(d), 0);
    /* prisma migrate resolve --rolled-back 20240103000000_third */
    h_execf(d, "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE id = 'd'");
    mig(px, "adopt", 0);
    expect_out(out_text, "(2 rows)");
    expect_vstate(d, "20240101000000_init", "applied up 1/1 adopted");
    expect_vstate(d, "20240102000000_add_name", "applied up 1/1 adopted");
    assert_int_equal(h_qint(d, "SELECT duration_ms::int FROM pgcutover.schema_migrations WHERE "
                               "version = '20240102000000_add_name'"),
                     1000);
    mig(px, "up", 0);
    expect_out(out_text, "(1 row)");
    expect_vstate(d, "20240103000000_third", "applied up 1/1 instant");
    h_eng_stop_proxy(&h_eng_case, &h_eng_case.px);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        H_ENG_CASE(test_golang, "adopt_golang"),
        H_ENG_CASE(test_golang_refused, "adopt_golang_bad"),
        H_ENG_CASE(test_golang_renamed, "adopt_golang_renamed"),
        H_ENG_CASE(test_flyway, "adopt_flyway"),
        H_ENG_CASE(test_flyway_baseline, "adopt_baseline"),
        H_ENG_CASE(test_prisma, "adopt_prisma"),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
