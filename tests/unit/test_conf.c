/*
 * test_conf.c — unit tests of conf/: table, conf_set, INI files with line numbers,
 * command line, conf_load, validation, copy, help and the example file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

/* OpenSSL's TLS1_x_VERSION, written out (the test does not include OpenSSL). */
#define TLS1_VERSION_FOR_TEST 0x0301
#define TLS1_1_VERSION_FOR_TEST 0x0302
#define TLS1_2_VERSION_FOR_TEST 0x0303
#define TLS1_3_VERSION_FOR_TEST 0x0304

/* Write text to a fresh temp file; path receives its name. */
static void write_tmp(char *path, size_t len, const char *text)
{
    int fd;
    FILE *f;

    snprintf(path, len, "/tmp/pgc_test_conf_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Load text as a file on top of defaults; expect an error "path:line: reason". */
static void expect_file_error(const char *text, int line, const char *reason)
{
    char path[64], err[512], want[512];
    conf_t c;

    write_tmp(path, sizeof(path), text);
    assert_true(conf_init_defaults(&c));
    err[0] = '\0';
    assert_false(conf_load_file(&c, path, err, sizeof(err)));
    snprintf(want, sizeof(want), "%s:%d: %s", path, line, reason);
    assert_string_equal(err, want);
    conf_free(&c);
    unlink(path);
}

static void expect_set_error(const char *name, const char *value, const char *want)
{
    char err[512] = "";
    conf_t c;

    assert_true(conf_init_defaults(&c));
    assert_false(conf_set(&c, name, value, err, sizeof(err)));
    assert_string_equal(err, want);
    conf_free(&c);
}

static void test_defaults(void **state)
{
    conf_t c;

    (void)state;
    assert_true(conf_init_defaults(&c));
    assert_string_equal(c.listen_addr, "127.0.0.1");
    assert_int_equal(c.listen_port, 6432);
    assert_string_equal(c.unix_socket_dir, "/tmp");
    assert_string_equal(c.server_host, "127.0.0.1");
    assert_int_equal(c.server_port, 5432);
    assert_string_equal(c.control_addr, "127.0.0.1");
    assert_int_equal(c.control_port, 6433);
    assert_string_equal(c.control_role, "pgcutover_admin");
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.max_client_conn, 1000);
    assert_int_equal(c.max_packet_size, 1073741824);
    assert_int_equal(c.client_tls_mode, CONF_CTLS_DISABLE);
    assert_string_equal(c.client_tls_cert_file, "");
    assert_string_equal(c.client_tls_key_file, "");
    assert_string_equal(c.client_tls_ca_file, "");
    assert_int_equal(c.server_tls_mode, CONF_STLS_DISABLE);
    assert_string_equal(c.server_tls_ca_file, "");
    assert_int_equal(c.hold_timeout_ms, 10000);
    assert_int_equal(c.shutdown_timeout, 30);
    assert_int_equal(c.log_level, CONF_LOG_INFO);
    assert_string_equal(c.migration_conninfo, "");
    assert_int_equal(c.batch_size, 10000);
    assert_int_equal(c.target_batch_ms, 200);
    assert_int_equal(c.max_rows_per_second, 0);
    assert_int_equal(c.lock_timeout_ms, 200);
    assert_int_equal(c.cutover_attempts, 10);
    assert_int_equal(c.cutover, CONF_CUTOVER_AUTO);
    assert_int_equal(c.revert_window, 86400);
    assert_int_equal(c.revert_window_old_table, CONF_OLD_TABLE_KEEP);
    assert_true(conf_validate(&c, NULL, 0));
    conf_free(&c);
    conf_free(&c); /* idempotent */
}

static void test_table(void **state)
{
    conf_t c;
    char buf[256];

    (void)state;
    assert_int_equal(conf_nsettings, 36);
    assert_true(conf_init_defaults(&c));
    for (int i = 0; i < conf_nsettings; i++) {
        const conf_setting *s = &conf_settings[i];

        assert_ptr_equal(conf_find(s->name), s);
        assert_true(strlen(s->doc) > 10);
        assert_null(strchr(s->doc, '\n'));
        conf_value_text(&c, s, buf, sizeof(buf));
        assert_string_equal(buf, s->default_value);
        if (s->type == CONF_T_ENUM)
            assert_non_null(s->enum_values);
        if (s->type == CONF_T_INT)
            assert_true(s->min <= s->max);
    }
    assert_null(conf_find("LISTEN_PORT"));
    assert_null(conf_find("nope"));
    /* a few reloadable / restart-only markers */
    assert_false(conf_find("listen_port")->reloadable);
    assert_false(conf_find("workers")->reloadable);
    assert_false(conf_find("client_tls_cert_file")->reloadable);
    assert_false(conf_find("control_port")->reloadable);
    assert_true(conf_find("log_level")->reloadable);
    assert_true(conf_find("max_packet_size")->reloadable);
    assert_true(conf_find("cutover")->reloadable);
    assert_true(conf_find("control_role")->reloadable);
    conf_free(&c);
}

static void test_set_every_type(void **state)
{
    conf_t c;
    char err[256], buf[64];

    (void)state;
    assert_true(conf_init_defaults(&c));
    assert_true(conf_set(&c, "listen_addr", "*", err, sizeof(err)));
    assert_string_equal(c.listen_addr, "*");
    assert_true(conf_set(&c, "unix_socket_dir", "", err, sizeof(err)));
    assert_string_equal(c.unix_socket_dir, "");
    assert_true(conf_set(&c, "migration_conninfo", "host=db port=5433 dbname=x", err, 256));
    assert_string_equal(c.migration_conninfo, "host=db port=5433 dbname=x");
    assert_true(conf_set(&c, "listen_port", "7000", err, sizeof(err)));
    assert_int_equal(c.listen_port, 7000);
    assert_true(conf_set(&c, "workers", "+4", err, sizeof(err)));
    assert_int_equal(c.workers, 4);
    assert_true(conf_set(&c, "max_rows_per_second", "1000000000", err, sizeof(err)));
    assert_int_equal(c.max_rows_per_second, 1000000000);
    assert_true(conf_set(&c, "shutdown_timeout", "0", err, sizeof(err)));
    assert_int_equal(c.shutdown_timeout, 0);
    /* sizes: plain bytes and PostgreSQL units */
    assert_true(conf_set(&c, "max_packet_size", "2048", err, sizeof(err)));
    assert_int_equal(c.max_packet_size, 2048);
    conf_value_text(&c, conf_find("max_packet_size"), buf, sizeof(buf));
    assert_string_equal(buf, "2kB");
    assert_true(conf_set(&c, "max_packet_size", "64kB", err, sizeof(err)));
    assert_int_equal(c.max_packet_size, 65536);
    assert_true(conf_set(&c, "max_packet_size", "16 MB", err, sizeof(err)));
    assert_int_equal(c.max_packet_size, 16 * 1024 * 1024);
    conf_value_text(&c, conf_find("max_packet_size"), buf, sizeof(buf));
    assert_string_equal(buf, "16MB");
    assert_true(conf_set(&c, "max_packet_size", "1025", err, sizeof(err)));
    conf_value_text(&c, conf_find("max_packet_size"), buf, sizeof(buf));
    assert_string_equal(buf, "1025");
    assert_true(conf_set(&c, "max_packet_size", "1GB", err, sizeof(err)));
    assert_int_equal(c.max_packet_size, 1073741824);
    /* enums, case-insensitive */
    assert_true(conf_set(&c, "log_level", "DEBUG", err, sizeof(err)));
    assert_int_equal(c.log_level, CONF_LOG_DEBUG);
    assert_true(conf_set(&c, "server_tls_mode", "Verify-Full", err, sizeof(err)));
    assert_int_equal(c.server_tls_mode, CONF_STLS_VERIFY_FULL);
    assert_true(conf_set(&c, "client_tls_mode", "allow", err, sizeof(err)));
    assert_int_equal(c.client_tls_mode, CONF_CTLS_ALLOW);
    assert_true(conf_set(&c, "cutover", "manual", err, sizeof(err)));
    assert_int_equal(c.cutover, CONF_CUTOVER_MANUAL);
    conf_value_text(&c, conf_find("cutover"), buf, sizeof(buf));
    assert_string_equal(buf, "manual");
    conf_value_text(&c, conf_find("listen_port"), buf, sizeof(buf));
    assert_string_equal(buf, "7000");
    conf_free(&c);
}

static void test_set_errors(void **state)
{
    (void)state;
    expect_set_error("lisen_port", "1", "unknown setting \"lisen_port\"");
    expect_set_error("workers", "abc", "workers: \"abc\" is not an integer");
    expect_set_error("workers", "12abc", "workers: \"12abc\" is not an integer");
    expect_set_error("workers", "", "workers: \"\" is not an integer");
    expect_set_error("workers", " 4", "workers: \" 4\" is not an integer");
    expect_set_error("workers", "4 ", "workers: \"4 \" is not an integer");
    expect_set_error("workers", "0x10", "workers: \"0x10\" is not an integer");
    expect_set_error("workers", "4kB", "workers: \"4kB\" is not an integer");
    expect_set_error("listen_port", "70000", "listen_port: 70000 is out of range (1..65535)");
    expect_set_error("listen_port", "0", "listen_port: 0 is out of range (1..65535)");
    expect_set_error("workers", "-1", "workers: -1 is out of range (0..256)");
    expect_set_error("batch_size", "99999999999999999999",
                     "batch_size: 99999999999999999999 is out of range (1..10000000)");
    expect_set_error("max_packet_size", "512",
                     "max_packet_size: 512 is out of range "
                     "(1024..1073741824)");
    expect_set_error("max_packet_size", "2GB",
                     "max_packet_size: 2GB is out of range "
                     "(1024..1073741824)");
    expect_set_error("max_packet_size", "9999999999TB",
                     "max_packet_size: 9999999999TB is out "
                     "of range (1024..1073741824)");
    expect_set_error("max_packet_size", "1gb",
                     "max_packet_size: \"1gb\" is not a size (an integer, optionally with B, "
                     "kB, MB, GB, TB)");
    expect_set_error("log_level", "verbose",
                     "log_level: \"verbose\" is not one of error, warning, info, debug");
    expect_set_error("server_tls_mode", "verify",
                     "server_tls_mode: \"verify\" is not one of disable, prefer, require, "
                     "verify-ca, verify-full");
    expect_set_error("cutover", "", "cutover: \"\" is not one of auto, manual");

    /* a failed conf_set leaves the setting unchanged */
    conf_t c;
    char err[128];
    assert_true(conf_init_defaults(&c));
    assert_false(conf_set(&c, "listen_port", "70000", err, sizeof(err)));
    assert_int_equal(c.listen_port, 6432);
    assert_false(conf_set(&c, "log_level", "x", NULL, 0)); /* no buffer is fine */
    assert_int_equal(c.log_level, CONF_LOG_INFO);
    conf_free(&c);
}

static void test_file_ok(void **state)
{
    char path[64], err[256] = "";
    conf_t c;

    (void)state;
    write_tmp(path, sizeof(path),
              "# comment\n"
              "; another\n"
              "\n"
              "[pgcutover]\n"
              "listen_port = 7432\n"
              "  log_level=Debug   ; end-of-line comment\n"
              "server_host = /var/run/postgresql\n"
              "migration_conninfo = host=db dbname=app\n"
              "max_packet_size = 8MB\n"
              "listen_port = 7433\n"); /* last one wins */
    assert_true(conf_init_defaults(&c));
    assert_true(conf_load_file(&c, path, err, sizeof(err)));
    assert_int_equal(c.listen_port, 7433);
    assert_int_equal(c.log_level, CONF_LOG_DEBUG);
    assert_string_equal(c.server_host, "/var/run/postgresql");
    assert_string_equal(c.migration_conninfo, "host=db dbname=app");
    assert_int_equal(c.max_packet_size, 8 * 1024 * 1024);
    assert_int_equal(c.server_port, 5432);
    conf_free(&c);
    unlink(path);
}

static void test_file_errors(void **state)
{
    (void)state;
    expect_file_error("; test\n"
                      "[pgcutover]\n"
                      "listen_port = 6432\n"
                      "\n"
                      "# x\n"
                      "workers = 2\n"
                      "lisen_port = 6432\n"
                      "server_port = 1\n",
                      7, "unknown setting \"lisen_port\"");
    expect_file_error("[pgcutover]\n"
                      "\n"
                      "listen_port = 70000\n",
                      3, "listen_port: 70000 is out of range (1..65535)");
    expect_file_error("[pgcutover]\n"
                      "workers = 4\n"
                      "workers = 12abc\n",
                      3, "workers: \"12abc\" is not an integer");
    expect_file_error("[pgcutover]\n"
                      "cutover = sometimes\n",
                      2, "cutover: \"sometimes\" is not one of auto, manual");
    /* only the first error is reported */
    expect_file_error("[pgcutover]\nworkers = x\nlisen = 1\n", 2,
                      "workers: \"x\" is not an integer");
    /* keys outside [pgcutover] */
    expect_file_error("listen_port = 6432\n[pgcutover]\n", 1,
                      "setting \"listen_port\" is outside the [pgcutover] section");
    expect_file_error("[pgcutover]\nworkers = 1\n[pgbouncer]\nlisten_port = 6432\n", 4,
                      "setting \"listen_port\" is in section [pgbouncer]; only [pgcutover] "
                      "is read");
    /* syntax errors: inih's line number */
    expect_file_error("[pgcutover]\nworkers = 1\nthis is not a setting\nworkers = 2\n", 3,
                      "syntax error (expected \"name = value\" or \"[section]\")");
    expect_file_error("[pgcutover\n", 1,
                      "syntax error (expected \"name = value\" or \"[section]\")");
    /* a syntax error before a value error wins, and the other way round */
    expect_file_error("[pgcutover]\nbad line\nworkers = x\n", 2,
                      "syntax error (expected \"name = value\" or \"[section]\")");
    expect_file_error("[pgcutover]\nworkers = x\nbad line\n", 2,
                      "workers: \"x\" is not an integer");

    /* a line longer than inih's buffer */
    char text[600];
    snprintf(text, sizeof(text), "[pgcutover]\nworkers = 1\nmigration_conninfo = %0400d\n", 0);
    expect_file_error(text, 3, "line is too long (at most 198 characters)");

    /* a missing file */
    char err[256];
    conf_t c;
    assert_true(conf_init_defaults(&c));
    assert_false(conf_load_file(&c, "/nonexistent/pgcutover.ini", err, sizeof(err)));
    assert_string_equal(err, "/nonexistent/pgcutover.ini: cannot open: No such file or "
                             "directory");
    conf_free(&c);
}

static void test_cmdline(void **state)
{
    conf_cmdline cl;
    char err[256];

    (void)state;
    {
        char *argv[] = {"pgcutover", NULL};
        assert_true(conf_parse_cmdline(1, argv, &cl, err, sizeof(err)));
        assert_null(cl.config_file);
        assert_false(cl.check || cl.help || cl.version);
        assert_int_equal(cl.nsets, 0);
    }
    {
        char *argv[] = {"pgcutover", "-c",        "/etc/p.ini",
                        "--set",     "workers=2", "--set=cutover=manual",
                        "--check",   "--set",     "migration_conninfo=host=x port=1"};
        assert_true(conf_parse_cmdline(9, argv, &cl, err, sizeof(err)));
        assert_string_equal(cl.config_file, "/etc/p.ini");
        assert_true(cl.check);
        assert_false(cl.help);
        assert_false(cl.version);
        assert_int_equal(cl.nsets, 3);
        assert_string_equal(cl.sets[0], "workers=2");
        assert_string_equal(cl.sets[1], "cutover=manual");
        assert_string_equal(cl.sets[2], "migration_conninfo=host=x port=1");
    }
    {
        char *argv[] = {"pgcutover", "--config=/x.ini", "--help", "--version"};
        assert_true(conf_parse_cmdline(4, argv, &cl, err, sizeof(err)));
        assert_string_equal(cl.config_file, "/x.ini");
        assert_true(cl.help);
        assert_true(cl.version);
    }
    {
        char *argv[] = {"pgcutover", "--config", "/y.ini", "-h"};
        assert_true(conf_parse_cmdline(4, argv, &cl, err, sizeof(err)));
        assert_string_equal(cl.config_file, "/y.ini");
        assert_true(cl.help);
    }
    {
        char *argv[] = {"pgcutover", "-c/z.ini", "-V", "--set", "workers="};
        assert_true(conf_parse_cmdline(5, argv, &cl, err, sizeof(err)));
        assert_string_equal(cl.config_file, "/z.ini");
        assert_true(cl.version);
        assert_string_equal(cl.sets[0], "workers=");
    }
}

static void expect_cmdline_error(int argc, char **argv, const char *want)
{
    conf_cmdline cl;
    char err[256] = "";

    assert_false(conf_parse_cmdline(argc, argv, &cl, err, sizeof(err)));
    assert_string_equal(err, want);
}

static void test_cmdline_errors(void **state)
{
    (void)state;
    {
        char *argv[] = {"pgcutover", "--verbose"};
        expect_cmdline_error(2, argv, "unknown option \"--verbose\" (see pgcutover --help)");
    }
    {
        char *argv[] = {"pgcutover", "extra.ini"};
        expect_cmdline_error(2, argv, "unknown argument \"extra.ini\" (see pgcutover --help)");
    }
    {
        char *argv[] = {"pgcutover", "--set", "workers"};
        expect_cmdline_error(3, argv, "--set \"workers\": expected NAME=VALUE");
    }
    {
        char *argv[] = {"pgcutover", "--set=workers"};
        expect_cmdline_error(2, argv, "--set \"workers\": expected NAME=VALUE");
    }
    {
        char *argv[] = {"pgcutover", "--set", "=4"};
        expect_cmdline_error(3, argv, "--set \"=4\": expected NAME=VALUE");
    }
    {
        char *argv[] = {"pgcutover", "--set"};
        expect_cmdline_error(2, argv, "option --set needs NAME=VALUE");
    }
    {
        char *argv[] = {"pgcutover", "-c"};
        expect_cmdline_error(2, argv, "option -c needs a FILE");
    }
    {
        char *argv[] = {"pgcutover", "-c", "a.ini", "--config=b.ini"};
        expect_cmdline_error(4, argv, "only one configuration file may be given");
    }
    {
        char *argv[] = {"pgcutover", "--config="};
        expect_cmdline_error(2, argv, "empty configuration file name");
    }
    {
        char *argv[131];
        argv[0] = "pgcutover";
        for (int i = 1; i < 131; i++)
            argv[i] = "--set=workers=1";
        expect_cmdline_error(131, argv, "too many --set options (at most 128)");
    }
}

static void test_load(void **state)
{
    char path[64], err[256] = "";
    conf_t c = {0};
    conf_cmdline cl = {0};

    (void)state;
    write_tmp(path, sizeof(path), "[pgcutover]\nworkers = 3\nlisten_port = 7000\n");
    cl.config_file = path;
    cl.sets[cl.nsets++] = "workers=5";
    cl.sets[cl.nsets++] = "log_level=error";
    assert_true(conf_load(&c, &cl, err, sizeof(err)));
    assert_int_equal(c.workers, 5); /* --set overrides the file */
    assert_int_equal(c.listen_port, 7000);
    assert_int_equal(c.log_level, CONF_LOG_ERROR);
    /* a second successful load replaces (and frees) the first */
    cl.nsets = 0;
    assert_true(conf_load(&c, &cl, err, sizeof(err)));
    assert_int_equal(c.workers, 3);
    assert_int_equal(c.log_level, CONF_LOG_INFO);
    /* no file, no sets: the defaults */
    conf_cmdline none = {0};
    assert_true(conf_load(&c, &none, err, sizeof(err)));
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.listen_port, 6432);
    conf_free(&c);
    unlink(path);
}

static void test_load_error_leaves_conf(void **state)
{
    char path[64], err[256] = "", want[320];
    conf_t c;
    conf_cmdline cl = {0};

    (void)state;
    assert_true(conf_init_defaults(&c));
    assert_true(conf_set(&c, "workers", "7", err, sizeof(err)));
    assert_true(conf_set(&c, "server_host", "db1", err, sizeof(err)));
    char *before = c.server_host;

    /* bad file: error names it; *c is untouched */
    write_tmp(path, sizeof(path), "[pgcutover]\nworkers = 2\nserver_host = db2\nworkers = x\n");
    cl.config_file = path;
    assert_false(conf_load(&c, &cl, err, sizeof(err)));
    snprintf(want, sizeof(want), "%s:4: workers: \"x\" is not an integer", path);
    assert_string_equal(err, want);
    assert_int_equal(c.workers, 7);
    assert_ptr_equal(c.server_host, before);
    assert_string_equal(c.server_host, "db1");
    unlink(path);

    /* bad --set value, unknown --set name */
    cl.config_file = NULL;
    cl.sets[cl.nsets++] = "server_host=db3";
    cl.sets[cl.nsets++] = "workers=abc";
    assert_false(conf_load(&c, &cl, err, sizeof(err)));
    assert_string_equal(err, "--set workers: \"abc\" is not an integer");
    cl.sets[1] = "wrokers=1";
    assert_false(conf_load(&c, &cl, err, sizeof(err)));
    assert_string_equal(err, "--set: unknown setting \"wrokers\"");
    cl.sets[1] = "listen_port=0";
    assert_false(conf_load(&c, &cl, err, sizeof(err)));
    assert_string_equal(err, "--set listen_port: 0 is out of range (1..65535)");
    cl.sets[1] = "noequals";
    assert_false(conf_load(&c, &cl, err, sizeof(err)));
    assert_string_equal(err, "--set \"noequals\": expected NAME=VALUE");
    /* failing validation */
    cl.sets[1] = "client_tls_mode=require";
    assert_false(conf_load(&c, &cl, err, sizeof(err)));
    assert_string_equal(err, "client_tls_mode = require needs client_tls_cert_file and "
                             "client_tls_key_file");
    /* missing file */
    cl.nsets = 0;
    cl.config_file = "/nonexistent/x.ini";
    assert_false(conf_load(&c, &cl, err, sizeof(err)));
    assert_int_equal(c.workers, 7);
    assert_string_equal(c.server_host, "db1");
    conf_free(&c);
}

static void expect_invalid(const char *const *sets, const char *want)
{
    conf_t c;
    char err[256] = "";

    assert_true(conf_init_defaults(&c));
    for (int i = 0; sets[i] != NULL; i += 2)
        assert_true(conf_set(&c, sets[i], sets[i + 1], err, sizeof(err)));
    if (want == NULL) {
        assert_true(conf_validate(&c, err, sizeof(err)));
    } else {
        assert_false(conf_validate(&c, err, sizeof(err)));
        assert_string_equal(err, want);
    }
    conf_free(&c);
}

static void test_validate(void **state)
{
    (void)state;
    const char *tls_req[] = {"client_tls_mode", "require", NULL};
    const char *tls_req_cert[] = {"client_tls_mode", "require", "client_tls_cert_file", "/c.pem",
                                  NULL};
    const char *tls_ok[] = {
        "client_tls_mode", "require", "client_tls_cert_file", "/c.pem", "client_tls_key_file",
        "/k.pem",          NULL};
    const char *tls_allow[] = {"client_tls_mode", "allow", NULL};
    const char *key_only[] = {"client_tls_key_file", "/k.pem", NULL};
    const char *no_listener[] = {"listen_addr", "", "unix_socket_dir", "", NULL};
    const char *unix_only[] = {"listen_addr", "", NULL};
    const char *no_server[] = {"server_host", "", NULL};
    const char *no_role[] = {"control_role", "", NULL};
    const char *same_port[] = {"control_port", "6432", NULL};
    const char *same_port_all[] = {"listen_addr", "*", "control_port", "6432", NULL};
    const char *same_port_other[] = {"listen_addr", "10.0.0.1", "control_port", "6432", NULL};

    expect_invalid(tls_req, "client_tls_mode = require needs client_tls_cert_file and "
                            "client_tls_key_file");
    expect_invalid(tls_req_cert, "client_tls_mode = require needs client_tls_cert_file and "
                                 "client_tls_key_file");
    expect_invalid(tls_ok, NULL);
    expect_invalid(tls_allow, "client_tls_mode = allow needs client_tls_cert_file and "
                              "client_tls_key_file");
    expect_invalid(key_only, "client_tls_cert_file and client_tls_key_file must be set together");
    expect_invalid(no_listener, "listen_addr and unix_socket_dir are both empty: no client "
                                "listener");
    expect_invalid(unix_only, NULL);
    expect_invalid(no_server, "server_host is empty");
    expect_invalid(no_role, "control_role is empty");
    expect_invalid(same_port, "listen_port and control_port are both 6432");
    expect_invalid(same_port_all, "listen_port and control_port are both 6432");
    expect_invalid(same_port_other, NULL);
}

static void test_copy(void **state)
{
    conf_t a, b;
    char err[128];

    (void)state;
    assert_true(conf_init_defaults(&a));
    assert_true(conf_set(&a, "server_host", "db.example", err, sizeof(err)));
    assert_true(conf_set(&a, "batch_size", "77", err, sizeof(err)));
    assert_true(conf_set(&a, "cutover", "manual", err, sizeof(err)));
    assert_true(conf_copy(&b, &a));
    for (int i = 0; i < conf_nsettings; i++) {
        const conf_setting *s = &conf_settings[i];
        char va[256], vb[256];

        conf_value_text(&a, s, va, sizeof(va));
        conf_value_text(&b, s, vb, sizeof(vb));
        assert_string_equal(va, vb);
        if (s->type == CONF_T_STRING)
            assert_ptr_not_equal(*(char **)((char *)&a + s->offset),
                                 *(char **)((char *)&b + s->offset));
    }
    /* changing or freeing the source does not touch the copy */
    assert_true(conf_set(&a, "server_host", "other", err, sizeof(err)));
    conf_free(&a);
    assert_string_equal(b.server_host, "db.example");
    assert_int_equal(b.batch_size, 77);
    assert_int_equal(b.cutover, CONF_CUTOVER_MANUAL);
    conf_free(&b);
}

static char *capture(void (*print)(FILE *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    print(f);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static void test_help(void **state)
{
    char *help = capture(conf_print_help);

    (void)state;
    assert_non_null(strstr(help, "usage: pgcutover [-c FILE] [--set NAME=VALUE]... [--check] "
                                 "[--help] [--version]\n"));
    for (int i = 0; i < conf_nsettings; i++) {
        char line[256];

        snprintf(line, sizeof(line), "\n  %s = %s  (%s", conf_settings[i].name,
                 conf_settings[i].default_value,
                 conf_settings[i].reloadable ? "reload" : "restart");
        assert_non_null(strstr(help, line));
        assert_non_null(strstr(help, conf_settings[i].doc));
    }
    assert_non_null(strstr(help, "\n  listen_port = 6432  (restart; 1..65535)\n"));
    assert_non_null(strstr(help, "\n  log_level = info  (reload; error, warning, info, debug)\n"));
    free(help);
}

static void test_example_round_trip(void **state)
{
    char path[64], err[256] = "";
    char *text = capture(conf_print_example);
    conf_t c, d;

    (void)state;
    write_tmp(path, sizeof(path), text);
    free(text);
    /* load onto non-default values: the file must set every one of them back */
    assert_true(conf_init_defaults(&d));
    assert_true(conf_init_defaults(&c));
    for (int i = 0; i < conf_nsettings; i++) {
        const conf_setting *s = &conf_settings[i];
        const char *v =
            strcmp(s->name, "client_tls_protocols") == 0 ? "tlsv1.3"
            : strcmp(s->name, "client_tls_ciphers") == 0 ? "ECDHE+AESGCM"
            : s->type == CONF_T_STRING                   ? "changed"
            : s->type == CONF_T_ENUM
                ? s->enum_values[strcmp(s->enum_values[1], s->default_value) == 0 ? 0 : 1]
            : s->min == 1024 ? "2048"
                             : "1";
        if (strcmp(v, s->default_value) == 0)
            v = "2";
        assert_true(conf_set(&c, s->name, v, err, sizeof(err)));
    }
    assert_true(conf_load_file(&c, path, err, sizeof(err)));
    for (int i = 0; i < conf_nsettings; i++) {
        char vc[256], vd[256];

        conf_value_text(&c, &conf_settings[i], vc, sizeof(vc));
        conf_value_text(&d, &conf_settings[i], vd, sizeof(vd));
        assert_string_equal(vc, vd);
    }
    assert_memory_equal(&c.max_packet_size, &d.max_packet_size, sizeof(int64_t));
    conf_free(&c);
    conf_free(&d);
    unlink(path);
}

/* client_tls_protocols (pgbouncer's syntax, mapped to an OpenSSL version range) and
 * client_tls_ciphers (OpenSSL must select a cipher from it): bad values are errors with
 * file:line; the new login settings have their defaults. */
static void test_tls_settings(void **state)
{
    int lo, hi;
    char err[256];
    conf_t c;

    (void)state;
    assert_true(conf_tls_protocols("secure", &lo, &hi, err, sizeof(err)));
    assert_int_equal(lo, TLS1_2_VERSION_FOR_TEST);
    assert_int_equal(hi, TLS1_3_VERSION_FOR_TEST);
    assert_true(conf_tls_protocols("all", &lo, &hi, err, sizeof(err)));
    assert_int_equal(lo, TLS1_VERSION_FOR_TEST);
    assert_true(conf_tls_protocols("TLSv1.2", &lo, &hi, err, sizeof(err)));
    assert_int_equal(lo, TLS1_2_VERSION_FOR_TEST);
    assert_int_equal(hi, TLS1_2_VERSION_FOR_TEST);
    assert_true(conf_tls_protocols("tlsv1.1, tlsv1.2:tlsv1.3", &lo, &hi, err, sizeof(err)));
    assert_int_equal(lo, TLS1_1_VERSION_FOR_TEST);
    assert_int_equal(hi, TLS1_3_VERSION_FOR_TEST);
    assert_false(conf_tls_protocols("tlsv1.1,tlsv1.3", &lo, &hi, err, sizeof(err)));
    assert_false(conf_tls_protocols("", &lo, &hi, err, sizeof(err)));
    assert_false(conf_tls_protocols("sslv3", &lo, &hi, err, sizeof(err)));

    expect_file_error("[pgcutover]\nclient_tls_protocols = tlsv1.4\n", 2,
                      "client_tls_protocols: \"tlsv1.4\" is not a TLS protocol (tlsv1.0, "
                      "tlsv1.1, tlsv1.2, tlsv1.3, all, secure, legacy)");
    expect_file_error("[pgcutover]\n; x\nclient_tls_ciphers = NO-SUCH-CIPHER\n", 3,
                      "client_tls_ciphers: \"NO-SUCH-CIPHER\" selects no cipher (an OpenSSL "
                      "cipher list, see openssl ciphers -v)");
    assert_true(conf_init_defaults(&c));
    assert_string_equal(c.client_tls_protocols, "secure");
    assert_int_equal(c.client_login_timeout, 60);
    assert_int_equal(c.max_control_conn, 10);
    assert_true(conf_set(&c, "client_tls_ciphers", "AES128-SHA", err, sizeof(err)));
    assert_true(conf_set(&c, "client_login_timeout", "0", err, sizeof(err)));
    assert_false(conf_set(&c, "max_control_conn", "0", err, sizeof(err)));
    conf_free(&c);
}

/* conf/pgcutover.ini, found from this file's own path. */
static void test_example_file_committed(void **state)
{
    const char *suffix = "tests/unit/test_conf.c";
    const char *self = __FILE__;
    size_t n = strlen(self), sl = strlen(suffix);
    char path[4096];
    char *want = capture(conf_print_example), *got;
    long len;
    FILE *f;

    (void)state;
    assert_true(n >= sl && strcmp(self + n - sl, suffix) == 0);
    snprintf(path, sizeof(path), "%.*sconf/pgcutover.ini", (int)(n - sl), self);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    rewind(f);
    got = calloc(1, (size_t)len + 1);
    assert_non_null(got);
    assert_int_equal(fread(got, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    if (strcmp(got, want) != 0)
        fail_msg("%s differs from conf_print_example(); regenerate it from the table", path);
    free(got);
    free(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_set_every_type),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_file_ok),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_cmdline),
        cmocka_unit_test(test_cmdline_errors),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_load_error_leaves_conf),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_example_round_trip),
        cmocka_unit_test(test_example_file_committed),
        cmocka_unit_test(test_tls_settings),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
