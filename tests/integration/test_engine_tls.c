/*
 * test_engine_tls.c — the engine's own libpq connections follow the proxy's TLS policy
 * (server_tls_mode, server_tls_ca_file; conf/conf_tls.h). The test cluster of
 * scripts/pg runs with ssl = on and a self-signed certificate for CN=localhost, which
 * serves as the "right" CA; another self-signed certificate made here is the wrong
 * one. One console session (logged in while the proxy's own connections still verify)
 * runs SHOW MIGRATIONS, which needs an engine connection, across RELOADs:
 * verify-ca and verify-full with the right CA work; verify-full with the wrong CA
 * fails with a certificate verification error; a migration_conninfo with
 * sslmode=disable does not weaken verify-full (host name mismatch for 127.0.0.1).
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

static char dir[300], path[400];

static void write_conf(const char *mode, const char *ca, const char *conninfo)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "[pgcutover]\nserver_tls_mode = %s\nserver_tls_ca_file = %s/%s\n"
            "migration_conninfo = %s\n", mode, dir, ca, conninfo);
    assert_int_equal(fclose(f), 0);
}

static void show_ok(PGconn *ctl, const char *step)
{
    PGresult *r = PQexec(ctl, "SHOW MIGRATIONS");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: SHOW MIGRATIONS failed: %s", step, PQerrorMessage(ctl));
    PQclear(r);
}

static void show_fails(PGconn *ctl, const char *step, const char *want)
{
    char sqlstate[6], msg[1024];
    h_ctl_err(ctl, "SHOW MIGRATIONS", sqlstate, msg, sizeof msg);
    if (strstr(msg, want) == NULL)
        fail_msg("%s: SHOW MIGRATIONS error \"%s\", want \"%s\"", step, msg, want);
    assert_string_equal(sqlstate, "08006");
}

static void test_engine_follows_server_tls(void **state)
{
    (void)state;
    const char *pgdata = getenv("PGDATA");
    if (pgdata == NULL)
        fail_msg("PGDATA is not set (scripts/pg exports it)");
    snprintf(dir, sizeof dir, "%s/engine_tls.%d", h_tmpdir(), (int)getpid());
    snprintf(path, sizeof path, "%s/pgcutover.ini", dir);
    int rc = h_shell("set -e; rm -rf %s; mkdir -p %s; cp %s/server.crt %s/right.crt; "
                     "cd %s; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                     "-nodes -days 2 -subj /CN=localhost -keyout wrong.key -out wrong.crt "
                     ">openssl.log 2>&1",
                     dir, dir, pgdata, dir, dir);
    assert_int_equal(rc, 0);
    char local[200], plain[200];
    snprintf(local, sizeof local, "host=localhost port=%d", h_pg_port());
    snprintf(plain, sizeof plain, "host=127.0.0.1 port=%d sslmode=disable", h_pg_port());

    /* px_reload keeps the replaced server SSL_CTX alive on purpose (px_daemon.c: "one
     * small leak per reload that changes TLS"); this test reloads TLS settings four
     * times, so only those allocations are exempt from LeakSanitizer here. */
    char supp[400], lsan[500];
    snprintf(supp, sizeof supp, "%s/lsan.supp", dir);
    FILE *f = fopen(supp, "w");
    assert_non_null(f);
    fputs("leak:px_tls_server_ctx\n", f);
    assert_int_equal(fclose(f), 0);
    snprintf(lsan, sizeof lsan, "suppressions=%s:print_suppressions=0", supp);
    setenv("LSAN_OPTIONS", lsan, 1);
    /* OpenSSL is built without frame pointers: unwind slowly so the stacks reach it. */
    char asan[600];
    const char *was = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "%s%sfast_unwind_on_malloc=0", was ? was : "",
             was && *was ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);

    write_conf("verify-ca", "right.crt", local);
    h_proxy px;
    h_proxy_start_with_config(&px, path, NULL);
    PGconn *ctl = h_console_connect(px.control_port, "postgres");
    show_ok(ctl, "verify-ca, right CA");

    write_conf("verify-full", "right.crt", local);
    PQclear(h_ctl_ok(ctl, "RELOAD"));
    show_ok(ctl, "verify-full, right CA, host localhost");

    /* The old engine connected here anyway (libpq's default sslmode=prefer). */
    write_conf("verify-full", "wrong.crt", local);
    PQclear(h_ctl_ok(ctl, "RELOAD"));
    show_fails(ctl, "verify-full, wrong CA", "certificate verify failed");

    /* sslmode=disable in migration_conninfo is weaker than verify-full: verify-full
     * wins, and 127.0.0.1 is not the certificate's name. */
    write_conf("verify-full", "right.crt", plain);
    PQclear(h_ctl_ok(ctl, "RELOAD"));
    show_fails(ctl, "verify-full over sslmode=disable", "does not match host name");

    write_conf("verify-ca", "right.crt", local);
    PQclear(h_ctl_ok(ctl, "RELOAD"));
    show_ok(ctl, "back to verify-ca, right CA");

    PQfinish(ctl);
    int st = h_proxy_stop(&px);
    if (st != 0) {
        h_dump_log(&px, 40);
        fail_msg("pgcutover exited with status %d", st);
    }
    h_shell("rm -rf %s", dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_follows_server_tls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
