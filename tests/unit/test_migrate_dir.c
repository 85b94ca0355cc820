/*
 * test_migrate_dir.c — unit tests of cli/cli_migrate_dir.c: golang-migrate, Flyway and
 * Prisma directories read from real files in a temporary directory (mkdtemp under
 * $TMPDIR or /tmp, removed after each test): each tool's order (golang 1 < 2 < 10
 * numerically; Flyway 1.1 < 1.10 < 2, 1_2 == 1.2, repeatables after versioned ones by
 * Java's string order; Prisma byte-wise on the directory name), every error naming its
 * file (fits no layout, mixed layouts, duplicate versions, down/undo without up, version
 * over 2^64-1, Prisma directory without migration.sql, Flyway callbacks and baselines,
 * missing directory, symbolic link loop), odd names (spaces, UTF-8, dots, empty
 * titles), what is ignored (hidden entries, README.md, migration_lock.toml), and
 * cli_md_compare / cli_md_find / cli_md_read_file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_migrate_dir.h"

/* ---- a temporary directory per test ---- */

static char root[512];

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/pgc_mdir_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        snprintf(root, sizeof root, "/tmp/pgc_mdir_XXXXXX");
        if (!mkdtemp(root))
            return -1;
    }
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int teardown(void **state)
{
    (void)state;
    return nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* root/rel, in a static buffer (one at a time). */
static const char *at(const char *rel)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    return buf;
}

/* Creates root/rel with content, and its parent directories. */
static void put(const char *rel, const char *content)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", path, strerror(errno));
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("create %s: %s", path, strerror(errno));
    fputs(content, f);
    fclose(f);
}

static void dir(const char *rel)
{
    if (mkdir(at(rel), 0700) != 0)
        fail_msg("mkdir %s: %s", rel, strerror(errno));
}

static void read_ok(cli_md_dir *d)
{
    char err[1024] = "";
    if (!cli_md_read(root, d, err, sizeof err))
        fail_msg("cli_md_read failed: %s", err);
}

/* cli_md_read must fail, leave *out empty, and say every string of want (NULL-ended). */
static void read_fails(const char *want, ...)
{
    cli_md_dir d;
    char err[2048] = "";
    if (cli_md_read(root, &d, err, sizeof err)) {
        cli_md_free(&d);
        fail_msg("cli_md_read succeeded, want an error with \"%s\"", want);
    }
    assert_int_equal(d.n, 0);
    assert_null(d.v);
    va_list ap;
    va_start(ap, want);
    for (const char *w = want; w; w = va_arg(ap, const char *))
        if (!strstr(err, w))
            fail_msg("error \"%s\" lacks \"%s\"", err, w);
    va_end(ap);
    cli_md_free(&d); /* harmless on the empty result */
}

static void assert_entry(const cli_md_dir *d, int i, const char *version, const char *name,
                         const char *up_rel, const char *down_rel, bool repeatable)
{
    if (i >= d->n)
        fail_msg("entry %d missing (n = %d)", i, d->n);
    const cli_md_version *v = &d->v[i];
    if (strcmp(v->version, version) != 0 || strcmp(v->name, name) != 0)
        fail_msg("entry %d is \"%s\" \"%s\", want \"%s\" \"%s\"", i, v->version, v->name, version,
                 name);
    assert_string_equal(v->up_path, at(up_rel));
    if (down_rel)
        assert_string_equal(v->down_path, at(down_rel));
    else
        assert_null(v->down_path);
    assert_int_equal(v->repeatable, repeatable);
}

/* ---- golang-migrate ---- */

static void test_golang_order(void **state)
{
    (void)state;
    put("10_ten.up.sql", "select 10;");
    put("2_two.up.sql", "select 2;");
    put("1_one.up.sql", "select 1;");
    put("1_one.down.sql", "select -1;");
    put("0003_three.up.sql", "");
    put("0003_three.down.sql", "");
    put("11_a.b.up.sql", "");    /* a title with dots */
    put("12_.up.sql", "");       /* an empty title */
    put("13_x.up.down.sql", ""); /* golang-migrate's regex: the last direction wins */
    put("13_x.up.sql", "");
    put("README.md", "# migrations");
    put(".hidden.sql", "not a migration");
    put(".git/1_x.up.sql", "");
    put("seeds/data.sql", "golang-migrate skips subdirectories");
    cli_md_dir d;
    read_ok(&d);
    assert_int_equal(d.layout, CLI_MD_GOLANG);
    assert_int_equal(d.n, 7);
    assert_entry(&d, 0, "1", "one", "1_one.up.sql", "1_one.down.sql", false);
    assert_entry(&d, 1, "2", "two", "2_two.up.sql", NULL, false);
    assert_entry(&d, 2, "0003", "three", "0003_three.up.sql", "0003_three.down.sql", false);
    assert_entry(&d, 3, "10", "ten", "10_ten.up.sql", NULL, false);
    assert_entry(&d, 4, "11", "a.b", "11_a.b.up.sql", NULL, false);
    assert_entry(&d, 5, "12", "", "12_.up.sql", NULL, false);
    assert_entry(&d, 6, "13", "x", "13_x.up.sql", "13_x.up.down.sql", false);
    assert_int_equal(cli_md_find(&d, "3"), 2);
    assert_int_equal(cli_md_find(&d, "00010"), 3);
    assert_int_equal(cli_md_find(&d, "4"), -1);
    cli_md_free(&d);
    assert_int_equal(d.n, 0);
    assert_null(d.v);
    cli_md_free(&d);
}

static void test_golang_largest_version(void **state)
{
    (void)state;
    put("18446744073709551615_max.up.sql", "");
    put("9_nine.up.sql", "");
    cli_md_dir d;
    read_ok(&d);
    assert_int_equal(d.n, 2);
    assert_entry(&d, 0, "9", "nine", "9_nine.up.sql", NULL, false);
    assert_entry(&d, 1, "18446744073709551615", "max", "18446744073709551615_max.up.sql", NULL,
                 false);
    cli_md_free(&d);
    /* leading zeros do not count */
    put("00018446744073709551614_z.up.sql", "");
    read_ok(&d);
    assert_int_equal(d.n, 3);
    assert_string_equal(d.v[1].version, "00018446744073709551614");
    cli_md_free(&d);
}

static void test_golang_errors(void **state)
{
    (void)state;
    put("1_a.up.sql", "");
    put("01_b.up.sql", "");
    read_fails("01_b.up.sql", "1_a.up.sql", "both the up migration of version 1", NULL);
    unlink(at("01_b.up.sql"));

    put("1_a.down.sql", "");
    put("001_c.down.sql", "");
    read_fails("1_a.down.sql", "001_c.down.sql", "both the down migration of version 1", NULL);
    unlink(at("001_c.down.sql"));

    put("3_x.down.sql", "");
    read_fails("3_x.down.sql", "no up migration", NULL);
    unlink(at("3_x.down.sql"));

    put("18446744073709551616_big.up.sql", "");
    read_fails("18446744073709551616_big.up.sql", "2^64-1", NULL);
    unlink(at("18446744073709551616_big.up.sql"));

    put("99999999999999999999999_big.up.sql", "");
    read_fails("99999999999999999999999_big.up.sql", "2^64-1", NULL);
    unlink(at("99999999999999999999999_big.up.sql"));

    cli_md_dir d;
    read_ok(&d);
    assert_int_equal(d.n, 1);
    cli_md_free(&d);
}

/* ---- Flyway ---- */

static void test_flyway_order(void **state)
{
    (void)state;
    put("V2__c.sql", "");
    put("V1.10__b.sql", "");
    put("V1.1__a.sql", "");
    put("V1__init.sql", "");
    put("V1_2__d_e.sql", ""); /* 1.2: after 1.1, before 1.10 */
    put("V3.sql", "");        /* no description */
    put("U1.1__undo_a.sql", "");
    put("U2.0__undo_c.sql", ""); /* 2.0 == 2 */
    put("R__views.sql", "");
    put("R__a_func.sql", "");
    put("release/V2.5__nested_one.sql", ""); /* Flyway scans subdirectories */
    put("release/deeper/R__b.sql", "");
    put("V3__x.sql.conf", "executeInTransaction=false");
    put("README.md", "");
    put(".DS_Store", "");
    cli_md_dir d;
    read_ok(&d);
    assert_int_equal(d.layout, CLI_MD_FLYWAY);
    assert_int_equal(d.n, 10);
    assert_entry(&d, 0, "1", "init", "V1__init.sql", NULL, false);
    assert_entry(&d, 1, "1.1", "a", "V1.1__a.sql", "U1.1__undo_a.sql", false);
    assert_entry(&d, 2, "1_2", "d e", "V1_2__d_e.sql", NULL, false);
    assert_entry(&d, 3, "1.10", "b", "V1.10__b.sql", NULL, false);
    assert_entry(&d, 4, "2", "c", "V2__c.sql", "U2.0__undo_c.sql", false);
    assert_entry(&d, 5, "2.5", "nested one", "release/V2.5__nested_one.sql", NULL, false);
    assert_entry(&d, 6, "3", "", "V3.sql", NULL, false);
    /* repeatables last, by description */
    assert_entry(&d, 7, "", "a func", "R__a_func.sql", NULL, true);
    assert_entry(&d, 8, "", "b", "release/deeper/R__b.sql", NULL, true);
    assert_entry(&d, 9, "", "views", "R__views.sql", NULL, true);
    assert_int_equal(cli_md_find(&d, "1.2"), 2);
    assert_int_equal(cli_md_find(&d, "2.0.0"), 4);
    assert_int_equal(cli_md_find(&d, ""), -1); /* repeatables are not found */
    cli_md_free(&d);
}

static void test_flyway_only_in_subdirectories(void **state)
{
    (void)state;
    put("2024_q1/V1__a.sql", "");
    put("2024_q2/V2__b.sql", ""); /* {digits}_{name} without migration.sql: a folder */
    put("notes.txt", "");
    cli_md_dir d;
    read_ok(&d);
    assert_int_equal(d.layout, CLI_MD_FLYWAY);
    assert_int_equal(d.n, 2);
    assert_entry(&d, 0, "1", "a", "2024_q1/V1__a.sql", NULL, false);
    assert_entry(&d, 1, "2", "b", "2024_q2/V2__b.sql", NULL, false);
    cli_md_free(&d);
}

static void test_flyway_duplicates(void **state)
{
    (void)state;
    put("V1__a.sql", "");
    put("V1.0__b.sql", "");
    read_fails("V1__a.sql", "V1.0__b.sql", "versioned migration of version", NULL);
    unlink(at("V1.0__b.sql"));

    put("V1_2__x.sql", "");
    put("V1.2__y.sql", "");
    read_fails("V1_2__x.sql", "V1.2__y.sql", NULL);
    unlink(at("V1.2__y.sql"));

    put("sub/V01.2.0__z.sql", ""); /* in a subdirectory, with zeros */
    read_fails("V1_2__x.sql", "sub/V01.2.0__z.sql", NULL);
    unlink(at("sub/V01.2.0__z.sql"));

    put("U1__u1.sql", "");
    put("U1.0.0__u2.sql", "");
    read_fails("U1__u1.sql", "U1.0.0__u2.sql", "undo migration", NULL);
    unlink(at("U1.0.0__u2.sql"));

    /* "a_b" and "a b" are one description once '_' reads as ' ' */
    put("R__a_b.sql", "");
    put("R__a b.sql", "");
    read_fails("R__a_b.sql", "R__a b.sql", "repeatable migration with description \"a b\"", NULL);
    unlink(at("R__a b.sql"));

    cli_md_dir d;
    read_ok(&d);
    assert_int_equal(d.n, 3);
    cli_md_free(&d);
}

static void test_flyway_errors(void **state)
{
    (void)state;
    put("V1__a.sql", "");
    put("U5__x.sql", "");
    read_fails("U5__x.sql", "no versioned migration", NULL);
    unlink(at("U5__x.sql"));

    put("afterMigrate.sql", "");
    read_fails("afterMigrate.sql", "Flyway callback", NULL);
    unlink(at("afterMigrate.sql"));
    put("beforeEachMigrate__set_role.sql", "");
    read_fails("beforeEachMigrate__set_role.sql", "Flyway callback", NULL);
    unlink(at("beforeEachMigrate__set_role.sql"));

    put("B2__baseline.sql", "");
    read_fails("B2__baseline.sql", "baseline", NULL);
    unlink(at("B2__baseline.sql"));

    const char *bad[] = {"V1.a__x.sql", "V-1__x.sql", "V__x.sql", "V1..2__x.sql",
                         "V1.__x.sql",  "R1__x.sql",  "Rx.sql",   "v2__lower.sql",
                         "Views.sql",   "1_x.sql",    "1.up.sql", "schema.sql"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        put(bad[i], "");
        read_fails(at(bad[i]), "fits no layout",
                   "golang-migrate wants {version}_{title}.up.sql, Flyway "
                   "V{version}__{desc}.sql, Prisma {timestamp}_{name}/migration.sql",
                   NULL);
        unlink(at(bad[i]));
    }

    /* a .sql file in a Flyway subdirectory must fit too */
    put("sub/seed.sql", "");
    read_fails(at("sub/seed.sql"), "fits no layout", NULL);
    unlink(at("sub/seed.sql"));
    put("sub/2_b.up.sql", "");
    read_fails("mixes migration layouts", "golang-migrate (sub/2_b.up.sql)", "Flyway (V1__a.sql)",
               NULL);
    unlink(at("sub/2_b.up.sql"));

    cli_md_dir d;
    read_ok(&d);
    assert_int_equal(d.n, 1);
    cli_md_free(&d);
}

static void test_flyway_symlink_loop(void **state)
{
    (void)state;
    put("V1__a.sql", "");
    dir("sub");
    if (symlink("..", at("sub/loop")) != 0)
        fail_msg("symlink: %s", strerror(errno));
    read_fails("nest deeper than 16", "loop", NULL);
}

/* Flyway sorts repeatables with Java's String.compareTo: UTF-16 code units, so a
 * supplementary character (U+1D11E, a surrogate pair 0xD834 0xDD1E) sorts before
 * U+FF21, although its UTF-8 bytes (F0 ..) sort after (EF ..). */
static void test_flyway_repeatable_java_order(void **state)
{
    (void)state;
    put("R__\xEF\xBC\xA1.sql", "");     /* U+FF21 FULLWIDTH A */
    put("R__\xF0\x9D\x84\x9E.sql", ""); /* U+1D11E MUSICAL SYMBOL G CLEF */
    put("R__z.sql", "");
    put("R__\xC3\xA9t\xC3\xA9.sql", ""); /* "été" after "z" */
    put("R__Z.sql", "");                 /* upper case before lower */
    put("V1__first.sql", "");
    cli_md_dir d;
    read_ok(&d);
    assert_int_equal(d.n, 6);
    assert_string_equal(d.v[0].name, "first");
    assert_false(d.v[0].repeatable);
    assert_string_equal(d.v[1].name, "Z");
    assert_string_equal(d.v[2].name, "z");
    assert_string_equal(d.v[3].name, "\xC3\xA9t\xC3\xA9");
    assert_string_equal(d.v[4].name, "\xF0\x9D\x84\x9E");
    assert_string_equal(d.v[5].name, "\xEF\xBC\xA1");
    for (int i = 1; i < 6; i++)
        assert_true(d.v[i].repeatable);
    cli_md_free(&d);
}

/* ---- Prisma ---- */

static void test_prisma_order(void **state)
{
    (void)state;
    put("20240102000000_b/migration.sql", "");
    put("20240101000000_a/migration.sql", "");
    put("20240101000000_B/migration.sql", ""); /* same timestamp: byte order, 'B' < 'a' */
    put("9_x/migration.sql", "");              /* lexicographic: "9" after "2" */
    put("20240101000000_a/README.md", "");
    put("migration_lock.toml", "provider = \"postgresql\"\n");
    put(".cache/x", "");
    cli_md_dir d;
    read_ok(&d);
    assert_int_equal(d.layout, CLI_MD_PRISMA);
    assert_int_equal(d.n, 4);
    assert_entry(&d, 0, "20240101000000_B", "B", "20240101000000_B/migration.sql", NULL, false);
    assert_entry(&d, 1, "20240101000000_a", "a", "20240101000000_a/migration.sql", NULL, false);
    assert_entry(&d, 2, "20240102000000_b", "b", "20240102000000_b/migration.sql", NULL, false);
    assert_entry(&d, 3, "9_x", "x", "9_x/migration.sql", NULL, false);
    assert_int_equal(cli_md_find(&d, "20240102000000_b"), 2);
    assert_int_equal(cli_md_find(&d, "20240102000000"), -1);
    cli_md_free(&d);
}

static void test_prisma_errors(void **state)
{
    (void)state;
    put("20240101000000_a/migration.sql", "");
    dir("20240102000000_b");
    read_fails("20240102000000_b", "has no migration.sql", NULL);
    put("20240102000000_b/Migration.SQL", "");
    read_fails("20240102000000_b", "has no migration.sql", NULL);
    dir("20240102000000_b/migration.sql");
    read_fails("20240102000000_b", "not a regular file", NULL);
    rmdir(at("20240102000000_b/migration.sql"));
    unlink(at("20240102000000_b/Migration.SQL"));
    rmdir(at("20240102000000_b"));

    dir("init");
    read_fails("directory", "init", "fits no layout", NULL);
    rmdir(at("init"));

    put("schema.sql", "");
    read_fails(at("schema.sql"), "fits no layout", NULL);
    unlink(at("schema.sql"));

    /* the only {timestamp}_{name} directory, without migration.sql */
    put("20240101000000_a/migration.sql.bak", "");
    unlink(at("20240101000000_a/migration.sql"));
    read_fails("20240101000000_a", "has no migration.sql", NULL);
}

/* ---- detection ---- */

static void test_mixed_layouts(void **state)
{
    (void)state;
    put("1_a.up.sql", "");
    put("V2__b.sql", "");
    read_fails("mixes migration layouts", "golang-migrate (1_a.up.sql)", "Flyway (V2__b.sql)",
               NULL);
    put("20240101000000_c/migration.sql", "");
    read_fails("golang-migrate (1_a.up.sql)", "Flyway (V2__b.sql)",
               "Prisma (20240101000000_c/migration.sql)", NULL);
    unlink(at("V2__b.sql"));
    read_fails("golang-migrate (1_a.up.sql)", "Prisma (20240101000000_c/migration.sql)", NULL);
    unlink(at("1_a.up.sql"));
    put("R__r.sql", "");
    read_fails("Flyway (R__r.sql)", "Prisma (20240101000000_c/migration.sql)", NULL);
}

static void test_empty_and_missing(void **state)
{
    (void)state;
    cli_md_dir d;
    read_ok(&d);
    assert_int_equal(d.layout, CLI_MD_GOLANG);
    assert_int_equal(d.n, 0);
    assert_null(d.v);
    cli_md_free(&d);

    put("README.md", "");
    put(".hidden/V1__x.sql", "");
    put("docs/notes.txt", "");
    put("1_a.up.txt", ""); /* not .sql: not a migration */
    read_ok(&d);
    assert_int_equal(d.layout, CLI_MD_GOLANG);
    assert_int_equal(d.n, 0);
    cli_md_free(&d);

    char err[1024];
    assert_false(cli_md_read(at("nope"), &d, err, sizeof err));
    assert_non_null(strstr(err, at("nope")));
    assert_non_null(strstr(err, strerror(ENOENT)));
    assert_int_equal(d.n, 0);

    assert_false(cli_md_read(at("README.md"), &d, err, sizeof err));
    assert_non_null(strstr(err, "README.md"));
    assert_non_null(strstr(err, strerror(ENOTDIR)));

    /* a tiny error buffer is truncated, never overrun */
    char small[8] = "xxxxxxx";
    assert_false(cli_md_read(at("nope"), &d, small, sizeof small));
    assert_int_equal(strlen(small), 7);
    assert_false(cli_md_read(at("nope"), &d, NULL, 0));
}

static void test_spaces_and_unicode(void **state)
{
    (void)state;
    put("5_add \xC3\xA9moji \xF0\x9F\x8E\x89 col.up.sql", "");
    put("5_add \xC3\xA9moji \xF0\x9F\x8E\x89 col.down.sql", "");
    put("6_with  two spaces.up.sql", "");
    cli_md_dir d;
    read_ok(&d);
    assert_int_equal(d.n, 2);
    assert_entry(&d, 0, "5", "add \xC3\xA9moji \xF0\x9F\x8E\x89 col",
                 "5_add \xC3\xA9moji \xF0\x9F\x8E\x89 col.up.sql",
                 "5_add \xC3\xA9moji \xF0\x9F\x8E\x89 col.down.sql", false);
    assert_entry(&d, 1, "6", "with  two spaces", "6_with  two spaces.up.sql", NULL, false);
    cli_md_free(&d);
    teardown(state);
    setup(state);

    put("V7__a\xC3\xB1"
        "adir_columna_\xC3\xBC.sql",
        "");
    put("V8__two words_and_more.sql", "");
    read_ok(&d);
    assert_int_equal(d.n, 2);
    assert_entry(&d, 0, "7",
                 "a\xC3\xB1"
                 "adir columna \xC3\xBC",
                 "V7__a\xC3\xB1"
                 "adir_columna_\xC3\xBC.sql",
                 NULL, false);
    assert_entry(&d, 1, "8", "two words and more", "V8__two words_and_more.sql", NULL, false);
    cli_md_free(&d);
    teardown(state);
    setup(state);

    put("20240101000000_\xE5\x90\x8D\xE5\x89\x8D with space/migration.sql", "");
    read_ok(&d);
    assert_int_equal(d.n, 1);
    assert_entry(&d, 0, "20240101000000_\xE5\x90\x8D\xE5\x89\x8D with space",
                 "\xE5\x90\x8D\xE5\x89\x8D with space",
                 "20240101000000_\xE5\x90\x8D\xE5\x89\x8D with space/migration.sql", NULL, false);
    cli_md_free(&d);
}

/* ---- cli_md_compare and the small functions ---- */

static void test_compare(void **state)
{
    (void)state;
    assert_true(cli_md_compare(CLI_MD_GOLANG, "1", "2") < 0);
    assert_true(cli_md_compare(CLI_MD_GOLANG, "2", "10") < 0);
    assert_true(cli_md_compare(CLI_MD_GOLANG, "10", "9") > 0);
    assert_int_equal(cli_md_compare(CLI_MD_GOLANG, "01", "1"), 0);
    assert_int_equal(cli_md_compare(CLI_MD_GOLANG, "0", "000"), 0);
    assert_true(cli_md_compare(CLI_MD_GOLANG, "18446744073709551615", "18446744073709551616") < 0);
    assert_true(cli_md_compare(CLI_MD_GOLANG, "20240101120000", "20231231235959") > 0);

    assert_true(cli_md_compare(CLI_MD_FLYWAY, "1.1", "1.10") < 0);
    assert_true(cli_md_compare(CLI_MD_FLYWAY, "1.10", "2") < 0);
    assert_true(cli_md_compare(CLI_MD_FLYWAY, "1.9", "1.10") < 0);
    assert_true(cli_md_compare(CLI_MD_FLYWAY, "1.2.1", "1.2") > 0);
    assert_int_equal(cli_md_compare(CLI_MD_FLYWAY, "1_2", "1.2"), 0);
    assert_int_equal(cli_md_compare(CLI_MD_FLYWAY, "1.0", "1"), 0);
    assert_int_equal(cli_md_compare(CLI_MD_FLYWAY, "1.0.0", "01"), 0);
    assert_true(cli_md_compare(CLI_MD_FLYWAY, "", "99999") > 0);
    assert_true(cli_md_compare(CLI_MD_FLYWAY, "99999", "") < 0);
    assert_int_equal(cli_md_compare(CLI_MD_FLYWAY, "", ""), 0);
    assert_true(cli_md_compare(CLI_MD_FLYWAY, "123456789012345678901234567890",
                               "123456789012345678901234567891") < 0);

    assert_true(cli_md_compare(CLI_MD_PRISMA, "10_a", "9_b") < 0);
    assert_true(cli_md_compare(CLI_MD_PRISMA, "20240101000000_B", "20240101000000_a") < 0);
    assert_int_equal(cli_md_compare(CLI_MD_PRISMA, "x", "x"), 0);

    /* not versions: still a total order */
    assert_true(cli_md_compare(CLI_MD_GOLANG, "1a", "1b") < 0);
    assert_true(cli_md_compare(CLI_MD_FLYWAY, "1.x", "1.y") < 0);

    assert_string_equal(cli_md_layout_name(CLI_MD_GOLANG), "golang-migrate");
    assert_string_equal(cli_md_layout_name(CLI_MD_FLYWAY), "flyway");
    assert_string_equal(cli_md_layout_name(CLI_MD_PRISMA), "prisma");
    assert_string_equal(cli_md_layout_name((cli_md_layout)42), "?");
    assert_int_equal(cli_md_find(NULL, "1"), -1);
    cli_md_free(NULL);
}

static void test_read_file(void **state)
{
    (void)state;
    put("1_a.up.sql", "CREATE TABLE t (id int);\n-- caf\xC3\xA9\n");
    char *text;
    size_t len;
    char err[1024];
    assert_true(cli_md_read_file(at("1_a.up.sql"), &text, &len, err, sizeof err));
    assert_int_equal(len, strlen("CREATE TABLE t (id int);\n-- caf\xC3\xA9\n"));
    assert_string_equal(text, "CREATE TABLE t (id int);\n-- caf\xC3\xA9\n");
    free(text);

    put("empty.sql", "");
    assert_true(cli_md_read_file(at("empty.sql"), &text, &len, err, sizeof err));
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);

    /* NUL bytes inside, and a file larger than the first buffer */
    FILE *f = fopen(at("bin.sql"), "wb");
    assert_non_null(f);
    for (int i = 0; i < 100000; i++)
        fputc(i % 7 == 0 ? '\0' : 'a' + i % 26, f);
    fclose(f);
    assert_true(cli_md_read_file(at("bin.sql"), &text, &len, err, sizeof err));
    assert_int_equal(len, 100000);
    assert_int_equal(text[0], '\0');
    assert_int_equal(text[1], 'b');
    assert_int_equal(text[99999], 'a' + 99999 % 26);
    assert_int_equal(text[100000], '\0');
    free(text);

    /* a pipe-like file of unknown size: /proc reports 0 bytes */
    if (access("/proc/self/status", R_OK) == 0) {
        assert_true(cli_md_read_file("/proc/self/status", &text, &len, err, sizeof err));
        assert_true(len > 0);
        assert_non_null(strstr(text, "Name:"));
        free(text);
    }

    text = (char *)1;
    assert_false(cli_md_read_file(at("missing.sql"), &text, &len, err, sizeof err));
    assert_null(text);
    assert_int_equal(len, 0);
    assert_non_null(strstr(err, at("missing.sql")));
    assert_non_null(strstr(err, strerror(ENOENT)));

    dir("d.sql");
    assert_false(cli_md_read_file(at("d.sql"), &text, &len, err, sizeof err));
    assert_non_null(strstr(err, "d.sql"));
    assert_non_null(strstr(err, strerror(EISDIR)));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_golang_order),
        T(test_golang_largest_version),
        T(test_golang_errors),
        T(test_flyway_order),
        T(test_flyway_only_in_subdirectories),
        T(test_flyway_duplicates),
        T(test_flyway_errors),
        T(test_flyway_symlink_loop),
        T(test_flyway_repeatable_java_order),
        T(test_prisma_order),
        T(test_prisma_errors),
        T(test_mixed_layouts),
        T(test_empty_and_missing),
        T(test_spaces_and_unicode),
        T(test_compare),
        T(test_read_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
