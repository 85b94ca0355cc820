/*
 * test_conf_mask.c — unit tests of conf/conf_mask.c (passwords out of SHOW CONFIG,
 * logs and errors: key=value and URI forms, quoted values, sslpassword, unparsable
 * strings, libpq's parse errors, masking inside a message) and conf/conf_tls.c (the
 * engine's sslmode/sslrootcert under server_tls_*: the stronger sslmode wins).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_mask.h"
#include "conf_tls.h"

static void assert_masked(const char *conninfo, const char *secret, const char *want)
{
    char out[512];
    conf_mask_conninfo(conninfo, out, sizeof out);
    if (strstr(out, secret) != NULL)
        fail_msg("secret \"%s\" shown: %s -> %s", secret, conninfo, out);
    if (want && strcmp(out, want) != 0)
        fail_msg("%s -> %s, want %s", conninfo, out, want);
}

static void test_mask_keyword_value(void **state)
{
    (void)state;
    assert_masked("host=db port=5433 user=u password=s3cret dbname=app", "s3cret",
                  "user=u password=******** dbname=app host=db port=5433");
    assert_masked("host=db password='two words\\' s3cret'", "s3cret",
                  "password=******** host=db");
    assert_masked("password = s3cret host = db", "s3cret", "password=******** host=db");
    assert_masked("host=db sslpassword=k3yPass", "k3yPass", "host=db sslpassword=********");
    /* values that need quoting keep it */
    assert_masked("host=db application_name='a b'", "never", "host=db application_name='a b'");
    char out[64];
    conf_mask_conninfo("", out, sizeof out);
    assert_string_equal(out, "");
}

static void test_mask_uri(void **state)
{
    (void)state;
    assert_masked("postgresql://alice:s3cret@db.example:5433/app", "s3cret",
                  "user=alice password=******** dbname=app host=db.example port=5433");
    assert_masked("postgres://alice:p%40ss%20w0rd@db/app", "w0rd", NULL);
    assert_masked("postgresql://db/app?user=alice&password=s3cret", "s3cret", NULL);
}

static void test_mask_unparsable(void **state)
{
    (void)state;
    assert_masked("host=db s3cret", "s3cret", CONF_MASK " (not a valid connection string)");
    assert_masked("host=db password='s3cret", "s3cret", NULL);
    assert_masked("postgresql://alice:s3cret@db/app?bogus%zz=1", "s3cret", NULL);
}

static void test_conninfo_check(void **state)
{
    (void)state;
    char reason[300];
    assert_true(conf_conninfo_check("host=db password=x", reason, sizeof reason));
    assert_true(conf_conninfo_check("postgresql://a:b@db/x", reason, sizeof reason));
    /* libpq: missing "=" after "s3cret" in connection info string */
    assert_false(conf_conninfo_check("host=db s3cret", reason, sizeof reason));
    assert_null(strstr(reason, "s3cret"));
    assert_non_null(strstr(reason, "not a valid libpq connection string"));
    assert_non_null(strstr(reason, "missing \"=\" after \"...\""));
    assert_false(conf_conninfo_check("host=db nosuchoption=s3cret", reason, sizeof reason));
    assert_null(strstr(reason, "s3cret"));
    assert_false(conf_conninfo_check("postgresql://a:s3cret@db/x?x=%zz", reason, sizeof reason));
    assert_null(strstr(reason, "s3cret"));
}

static void test_conf_set_rejects_unparsable_without_echo(void **state)
{
    (void)state;
    conf_t c;
    char err[512];
    assert_true(conf_init_defaults(&c));
    assert_false(conf_set(&c, "migration_conninfo", "host=db s3cret", err, sizeof err));
    assert_non_null(strstr(err, "migration_conninfo"));
    assert_null(strstr(err, "s3cret"));
    assert_true(conf_set(&c, "migration_conninfo", "host=db password='s 3cret'", err, sizeof err));
    assert_true(conf_set(&c, "migration_conninfo", "", err, sizeof err));
    conf_free(&c);
}

static void test_value_display(void **state)
{
    (void)state;
    conf_t c;
    char err[256], raw[512], shown[512];
    assert_true(conf_init_defaults(&c));
    assert_true(conf_set(&c, "migration_conninfo", "postgresql://u:s3cret@db/app", err, sizeof err));
    const conf_setting *s = conf_find("migration_conninfo");
    conf_value_text(&c, s, raw, sizeof raw);
    assert_string_equal(raw, "postgresql://u:s3cret@db/app"); /* comparisons see it all */
    conf_value_display(&c, s, shown, sizeof shown);
    assert_null(strstr(shown, "s3cret"));
    assert_non_null(strstr(shown, "password=" CONF_MASK));
    /* every other setting shows as conf_value_text */
    for (int i = 0; i < conf_nsettings; i++) {
        if (&conf_settings[i] == s)
            continue;
        conf_value_text(&c, &conf_settings[i], raw, sizeof raw);
        conf_value_display(&c, &conf_settings[i], shown, sizeof shown);
        assert_string_equal(raw, shown);
    }
    conf_free(&c);
    conf_setting fake = {.name = "server_tls_key_passphrase", .type = CONF_T_STRING};
    assert_true(conf_is_secret(&fake));
    fake.name = "server_host";
    assert_false(conf_is_secret(&fake));
}

static void test_mask_in_text(void **state)
{
    (void)state;
    char text[200] = "FATAL: bad s3cret here and s3cret there";
    conf_mask_in_text(text, sizeof text, "host=db password=s3cret");
    assert_string_equal(text, "FATAL: bad " CONF_MASK " here and " CONF_MASK " there");
    char t2[200] = "user u: s3cret";
    conf_mask_in_text(t2, sizeof t2, "postgresql://u:s3cret@db/x");
    assert_string_equal(t2, "user u: " CONF_MASK);
    char t3[200] = "nothing to hide";
    conf_mask_in_text(t3, sizeof t3, "host=db");
    assert_string_equal(t3, "nothing to hide");
}

static void tls_for(const char *mode, const char *ca, const char *conninfo, const char *want_mode,
                    const char *want_root)
{
    conf_t c;
    char err[256];
    conf_libpq_tls t;
    assert_true(conf_init_defaults(&c));
    assert_true(conf_set(&c, "server_tls_mode", mode, err, sizeof err));
    assert_true(conf_set(&c, "server_tls_ca_file", ca, err, sizeof err));
    conf_libpq_tls_for(&c, conninfo, &t);
    if (strcmp(t.sslmode, want_mode) != 0)
        fail_msg("%s + \"%s\": sslmode %s, want %s", mode, conninfo, t.sslmode, want_mode);
    if (want_root && strcmp(t.sslrootcert, want_root) != 0)
        fail_msg("%s + \"%s\": sslrootcert %s, want %s", mode, conninfo, t.sslrootcert,
                 want_root);
    conf_free(&c);
}

static void test_engine_tls_policy(void **state)
{
    (void)state;
    tls_for("disable", "", "", "disable", "");
    tls_for("require", "", "", "require", "");
    tls_for("require", "/ca.pem", "", "require", ""); /* a CA would make require verify */
    tls_for("verify-ca", "/ca.pem", "", "verify-ca", "/ca.pem");
    tls_for("verify-full", "/ca.pem", "host=db", "verify-full", "/ca.pem");
    /* the conninfo cannot weaken the settings … */
    tls_for("verify-full", "/ca.pem", "host=db sslmode=disable", "verify-full", "/ca.pem");
    tls_for("require", "", "postgresql://db/x?sslmode=prefer", "require", "");
    /* … but may strengthen them */
    tls_for("disable", "", "host=db sslmode=require", "require", "");
    tls_for("verify-ca", "/ca.pem", "host=db sslmode=verify-full", "verify-full", "/ca.pem");
    /* server_tls_ca_file wins over the conninfo's CA; without it the conninfo's stays */
    tls_for("verify-full", "/ca.pem", "host=db sslrootcert=/other.pem", "verify-full", "/ca.pem");
    tls_for("verify-full", "", "host=db sslrootcert=/other.pem", "verify-full", "");
    /* no CA anywhere: OpenSSL's default store, as the proxy's own connections */
    conf_t c;
    conf_libpq_tls t;
    char err[256];
    assert_true(conf_init_defaults(&c));
    assert_true(conf_set(&c, "server_tls_mode", "verify-full", err, sizeof err));
    conf_libpq_tls_for(&c, "host=db", &t);
    assert_string_equal(t.sslmode, "verify-full");
    assert_true(strlen(t.sslrootcert) > 0);
    conf_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_keyword_value),
        cmocka_unit_test(test_mask_uri),
        cmocka_unit_test(test_mask_unparsable),
        cmocka_unit_test(test_conninfo_check),
        cmocka_unit_test(test_conf_set_rejects_unparsable_without_echo),
        cmocka_unit_test(test_value_display),
        cmocka_unit_test(test_mask_in_text),
        cmocka_unit_test(test_engine_tls_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
