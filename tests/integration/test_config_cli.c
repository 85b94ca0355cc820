/*
 * test_config_cli.c — the pgcutover binary's command line (conf/conf.c through
 * proxy/main.c): --check on good and bad files, errors as "FILE:LINE: reason" with the
 * right line and exit status 1, --set overriding the file, --help listing every
 * setting, --version. No server is needed: nothing here starts the daemon.
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

#include "harness.h"

static char dir[512];
static char out_path[600], err_path[600];
static char out_text[65536], err_text[65536];


static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s/con_cli.%d", h_tmpdir(), (int)getpid());
    mkdir(dir, 0755);
    snprintf(out_path, sizeof out_path, "%s/stdout", dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    h_shell("rm -rf '%s'", dir);
    return 0;
}

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
}

/* Write text to dir/name; the path into a static rotating buffer. */
static const char *ini(const char *name, const char *text)
{
    static char paths[4][600];
    static int i;
    char *p = paths[i++ % 4];
    snprintf(p, 600, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    return p;
}

/* Run pgcutover with args (shell words); stdout/stderr into out_text/err_text. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = h_shell("%s %s >%s 2>%s </dev/null", PGC_BIN, args, out_path, err_path);
    slurp(out_path, out_text, sizeof out_text);
    slurp(err_path, err_text, sizeof err_text);
    return rc;
}

/* --check on path must exit 1 with "path:line:" and reason in stderr. */
static void check_fails_at(const char *path, int line, const char *reason)
{
    int rc = run("--check -c %s", path);
    char want[700];
    snprintf(want, sizeof want, "%s:%d: ", path, line);
    if (rc != 1 || strstr(err_text, want) == NULL || strstr(err_text, reason) == NULL)
        fail_msg("--check -c %s: exit %d, stderr:\n%s\nwant exit 1 and '%s' ... '%s'", path, rc,
                 err_text, want, reason);
    /* the first error only, on one line */
    assert_null(strstr(strstr(err_text, want) + strlen(want), ".ini:"));
    assert_null(strstr(out_text, "configuration is valid"));
}

static void test_valid_file(void **state)
{
    (void)state;
    const char *p = ini("good.ini", "; a comment\n"
                                    "# another\n"
                                    "[pgcutover]\n"
                                    "listen_port = 7432\n"
                                    "control_port = 7433 ; end-of-line comment\n"
                                    "  log_level = DEBUG\n"
                                    "max_packet_size = 64MB\n"
                                    "cutover = manual\n"
                                    "migration_conninfo = host=127.0.0.1 port=1 dbname=x\n"
                                    "\n");
    int rc = run("--check -c %s", p);
    if (rc != 0)
        fail_msg("--check on a valid file: exit %d\n%s", rc, err_text);
    assert_non_null(strstr(out_text, "configuration is valid"));
    /* the other spellings of the option */
    assert_int_equal(run("--check --config %s", p), 0);
    assert_int_equal(run("--check --config=%s", p), 0);
    assert_int_equal(run("--check -c%s", p), 0);
    /* no file at all: the defaults are valid */
    assert_int_equal(run("--check"), 0);
    /* an empty file too */
    assert_int_equal(run("--check -c %s", ini("empty.ini", "")), 0);
}

static void test_unknown_key(void **state)
{
    (void)state;
    check_fails_at(ini("unknown.ini", "[pgcutover]\n; the next line is misspelt\n"
                                      "lisen_port = 1\nworkers = 2\n"),
                   3, "unknown setting \"lisen_port\"");
    check_fails_at(ini("unknown2.ini", "[pgcutover]\nlisen_port = 1\n"), 2, "lisen_port");
}

static void test_bad_value(void **state)
{
    (void)state;
    check_fails_at(ini("badint.ini", "[pgcutover]\nlisten_port = 7000\n\n"
                                     "workers = abc\n"),
                   4, "workers: \"abc\" is not an integer");
    check_fails_at(ini("badenum.ini", "[pgcutover]\nlog_level = loud\n"), 2,
                   "log_level: \"loud\" is not one of error, warning, info, debug");
    check_fails_at(ini("badsize.ini", "[pgcutover]\nmax_packet_size = 10 parsecs\n"), 2,
                   "is not a size");
    check_fails_at(ini("trailing.ini", "[pgcutover]\nworkers = 4x\n"), 2, "not an integer");
}

static void test_bad_range(void **state)
{
    (void)state;
    check_fails_at(ini("range.ini", "[pgcutover]\nlisten_port = 70000\n"), 2,
                   "listen_port: 70000 is out of range (1..65535)");
    check_fails_at(ini("range0.ini", "[pgcutover]\nworkers = 1\nlisten_port = 0\n"), 3,
                   "out of range");
    check_fails_at(ini("rangesize.ini", "[pgcutover]\n\n\nmax_packet_size = 2GB\n"), 4,
                   "out of range");
}

static void test_structure_errors(void **state)
{
    (void)state;
    check_fails_at(ini("nosection.ini", "listen_port = 7000\n[pgcutover]\n"), 1,
                   "outside the [pgcutover] section");
    check_fails_at(ini("othersection.ini", "[pgcutover]\nworkers = 1\n[other]\nworkers = 2\n"), 4,
                   "only [pgcutover] is read");
    check_fails_at(ini("syntax.ini", "[pgcutover]\nworkers = 1\njust some words\n"), 3,
                   "syntax error");
    /* an indented line is its own line, not a continuation of the previous value */
    check_fails_at(ini("indent.ini", "[pgcutover]\nlog_level = info\n    workers = abc\n"), 3,
                   "workers");
    /* a line over 198 characters */
    char text[600];
    snprintf(text, sizeof text, "[pgcutover]\nworkers = 1\nmigration_conninfo = %0250d\n", 0);
    check_fails_at(ini("long.ini", text), 3, "line is too long");
    /* a file that is not there */
    char missing[700];
    snprintf(missing, sizeof missing, "%s/missing.ini", dir);
    assert_int_equal(run("--check -c %s", missing), 1);
    assert_non_null(strstr(err_text, missing));
    assert_non_null(strstr(err_text, "cannot open"));
}

static void test_set_overrides_file(void **state)
{
    (void)state;
    /* the file alone is invalid as a whole (same port twice) ... */
    const char *p = ini("clash.ini", "[pgcutover]\nlisten_port = 7500\ncontrol_port = 7500\n");
    assert_int_equal(run("--check -c %s", p), 1);
    assert_non_null(strstr(err_text, "listen_port and control_port are both 7500"));
    /* ... and valid once --set changes one of them, in either spelling */
    int rc = run("--check -c %s --set control_port=7501", p);
    if (rc != 0)
        fail_msg("--set control_port=7501 over the file: exit %d\n%s", rc, err_text);
    assert_int_equal(run("--check -c %s --set=control_port=7501", p), 0);
    /* --set comes after the file whatever the order on the command line */
    assert_int_equal(run("--check --set control_port=7501 -c %s", p), 0);
    /* the last --set wins */
    assert_int_equal(run("--check -c %s --set control_port=7501 --set control_port=7500", p), 1);
    assert_non_null(strstr(err_text, "both 7500"));
    /* a valid file made invalid by --set */
    const char *good = ini("good2.ini", "[pgcutover]\nworkers = 2\n");
    assert_int_equal(run("--check -c %s --set workers=abc", good), 1);
    assert_non_null(strstr(err_text, "--set workers"));
    assert_non_null(strstr(err_text, "not an integer"));
    assert_int_equal(run("--check -c %s --set no_such_setting=1", good), 1);
    assert_non_null(strstr(err_text, "no_such_setting"));
    assert_int_equal(run("--check --set workers"), 1);
    assert_non_null(strstr(err_text, "NAME=VALUE"));
    /* a bad file is reported even if --set would fix the line */
    const char *bad = ini("bad2.ini", "[pgcutover]\nworkers = abc\n");
    assert_int_equal(run("--check -c %s --set workers=2", bad), 1);
    char want[700];
    snprintf(want, sizeof want, "%s:2:", bad);
    assert_non_null(strstr(err_text, want));
}

static void test_help_lists_every_setting(void **state)
{
    (void)state;
    assert_int_equal(run("--help"), 0);
    for (int i = 0; i < h_nsettings; i++) {
        char want[128];
        snprintf(want, sizeof want, "\n  %s = ", h_setting_names[i]);
        if (strstr(out_text, want) == NULL)
            fail_msg("--help does not list %s:\n%s", h_setting_names[i], out_text);
    }
    /* no other settings than those */
    int n = 0;
    for (const char *p = out_text; (p = strstr(p, "\n  ")) != NULL; p++) {
        char name[64];
        if (sscanf(p + 3, "%63[a-z_] = ", name) == 1 && strstr(p + 3, " = ") &&
            strchr(p + 3, '\n') > strstr(p + 3, " = "))
            n++;
    }
    assert_int_equal(n, h_nsettings);
    assert_non_null(strstr(out_text, "usage: pgcutover"));
    assert_non_null(strstr(out_text, "--check"));
    assert_int_equal(run("-h"), 0);
    assert_non_null(strstr(out_text, "\n  listen_port = 6432"));
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(run("--version"), 0);
    const char *prefix = "pgcutover ";
    if (strncmp(out_text, prefix, strlen(prefix)) != 0)
        fail_msg("--version printed: %s", out_text);
    const char *v = out_text + strlen(prefix);
    /* a version number like 0.1.0 */
    assert_true(v[0] >= '0' && v[0] <= '9');
    assert_non_null(strchr(v, '.'));
    assert_null(strstr(v, "unknown"));
    static char first[sizeof out_text];
    memcpy(first, out_text, sizeof first);
    assert_int_equal(run("-V"), 0);
    assert_string_equal(out_text, first);
}

static void test_bad_command_line(void **state)
{
    (void)state;
    assert_int_equal(run("--no-such-option"), 1);
    assert_non_null(strstr(err_text, "unknown option"));
    assert_non_null(strstr(err_text, "--help"));
    assert_int_equal(run("stray"), 1);
    assert_non_null(strstr(err_text, "unknown argument"));
    assert_int_equal(run("--check -c"), 1);
    assert_int_equal(run("--check -c a.ini -c b.ini"), 1);
    assert_non_null(strstr(err_text, "only one configuration file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_file),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_bad_value),
        cmocka_unit_test(test_bad_range),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_set_overrides_file),
        cmocka_unit_test(test_help_lists_every_setting),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_bad_command_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
