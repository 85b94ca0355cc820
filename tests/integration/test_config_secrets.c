/*
 * test_config_secrets.c — the password of migration_conninfo never leaves the proxy:
 * not in SHOW CONFIG (key=value form with a quoted password, then the URI form after
 * RELOAD), not in the log (the reload line shows the setting masked), not in the error
 * of a RELOAD whose conninfo libpq cannot parse (libpq's own message quotes the
 * offending word). The engine still connects with each valid conninfo (SHOW
 * MIGRATIONS), and a refused RELOAD keeps the previous one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"

#define KV_SECRET "kvS3cret one"
#define URI_SECRET "uriS3cretTwo"
#define LEAK_SECRET "leakS3cretThree"

static void write_conf(const char *path, const char *conninfo)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "[pgcutover]\nmigration_conninfo = %s\n", conninfo);
    assert_int_equal(fclose(f), 0);
}

/* Every cell of SHOW CONFIG: none holds secret; returns migration_conninfo's value. */
static void check_show_config(PGconn *ctl, const char *secret, char *value, size_t len)
{
    PGresult *r = h_ctl_ok(ctl, "SHOW CONFIG");
    int name = h_col(r, "name"), val = h_col(r, "value");
    *value = '\0';
    for (int i = 0; i < PQntuples(r); i++) {
        for (int j = 0; j < PQnfields(r); j++)
            if (strstr(PQgetvalue(r, i, j), secret))
                fail_msg("SHOW CONFIG shows the password: %s = %s", PQgetvalue(r, i, name),
                         PQgetvalue(r, i, j));
        if (strcmp(PQgetvalue(r, i, name), "migration_conninfo") == 0)
            snprintf(value, len, "%s", PQgetvalue(r, i, val));
    }
    PQclear(r);
    if (strstr(value, "password=********") == NULL)
        fail_msg("SHOW CONFIG migration_conninfo = \"%s\", want password=********", value);
}

static void test_password_masked_everywhere(void **state)
{
    (void)state;
    char path[512], conninfo[512], shown[512];
    snprintf(path, sizeof path, "%s/secrets_%d.ini", h_tmpdir(), (int)getpid());
    /* key=value, quoted password with a space (trust authentication ignores it) */
    snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=%s password='%s'",
             h_pg_port(), h_pg_user(), KV_SECRET);
    write_conf(path, conninfo);
    h_proxy px;
    h_proxy_start_with_config(&px, path, NULL);
    PGconn *ctl = h_console_connect(px.control_port, "postgres");

    check_show_config(ctl, "kvS3cret", shown, sizeof shown);
    assert_non_null(strstr(shown, "host=127.0.0.1"));
    PQclear(h_ctl_ok(ctl, "SHOW MIGRATIONS")); /* the engine connects with it */

    /* URI form, by RELOAD */
    snprintf(conninfo, sizeof conninfo, "postgresql://%s:%s@127.0.0.1:%d/postgres", h_pg_user(),
             URI_SECRET, h_pg_port());
    write_conf(path, conninfo);
    PQclear(h_ctl_ok(ctl, "RELOAD"));
    check_show_config(ctl, URI_SECRET, shown, sizeof shown);
    PQclear(h_ctl_ok(ctl, "SHOW MIGRATIONS"));

    /* A string libpq cannot parse: its message would quote the password. */
    snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d %s", h_pg_port(), LEAK_SECRET);
    write_conf(path, conninfo);
    char sqlstate[6], msg[1024];
    h_ctl_err(ctl, "RELOAD", sqlstate, msg, sizeof msg);
    if (strstr(msg, LEAK_SECRET) || strstr(msg, "migration_conninfo") == NULL)
        fail_msg("RELOAD error: %s", msg);
    check_show_config(ctl, URI_SECRET, shown, sizeof shown); /* the previous one stays */
    PQclear(h_ctl_ok(ctl, "SHOW MIGRATIONS"));

    PQfinish(ctl);
    assert_int_equal(h_proxy_stop(&px), 0);
    /* the log has the reload line, masked, and no password anywhere */
    assert_int_equal(h_shell("grep -q 'reload: migration_conninfo = .*password=\\*\\*\\*\\*\\*\\*\\*\\*' %s",
                             px.log),
                     0);
    const char *secrets[] = {"kvS3cret", URI_SECRET, LEAK_SECRET};
    for (int i = 0; i < 3; i++)
        if (h_shell("grep -q '%s' %s", secrets[i], px.log) == 0) {
            h_shell("cat %s >&2", px.log);
            fail_msg("the log holds the password %s", secrets[i]);
        }
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_masked_everywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
