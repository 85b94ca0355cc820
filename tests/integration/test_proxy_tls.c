/*
 * test_proxy_tls.c — TLS on both sides of the proxy. A test CA and a server
 * certificate for "localhost" / 127.0.0.1 are made with the openssl command. With
 * client_tls_mode=require: sslmode=require and verify-full (by name and by IP) work and
 * PQsslInUse is 1, a certificate from another CA fails verify-full, a plaintext client
 * is refused (28000); SCRAM-SHA-256 works over TLS while channel_binding=require fails
 * (the proxy filters SCRAM-SHA-256-PLUS). With server_tls_mode=require the server sees
 * the proxy's connection as TLS (pg_stat_ssl.ssl).
 * Cipher suites and versions (openssl s_client -starttls postgres, an RSA certificate so
 * that static-RSA suites could be chosen at all): by default TLS 1.2 refuses AES128-SHA
 * (static RSA, CBC with SHA-1) and ECDHE-RSA-AES128-CBC-SHA, takes
 * ECDHE-RSA-AES128-GCM-SHA256, and TLS 1.1 is refused; client_tls_ciphers=AES128-SHA
 * makes AES128-SHA work, client_tls_protocols=tlsv1.3 refuses TLS 1.2; a cipher list
 * that selects nothing is a configuration error naming the setting (pgcutover --check).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"

#define SCRAM_USER "pgc_it_tls_scram"

static h_proxy px;  /* client_tls_mode=require, server side plain */
static h_proxy pxs; /* client_tls_mode=allow, server_tls_mode=require */
static char dir[300];
static h_proxy def, weak, only13; /* test_cipher_suites_and_versions; teardown stops them */

static void make_certs(void)
{
    snprintf(dir, sizeof dir, "%s/tls.%d", h_tmpdir(), (int)getpid());
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    int rc =
        h_shell("set -e; rm -rf %s; mkdir -p %s; cd %s; exec >openssl.log 2>&1; "
                "openssl req -x509 %s -days 2 -subj /CN=pgc-it-ca -keyout ca.key -out ca.crt; "
                "openssl req -new %s -subj /CN=localhost -keyout server.key -out server.csr; "
                "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n"
                "extendedKeyUsage=serverAuth\\n' >ext.cnf; "
                "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
                "-extfile ext.cnf -out server.crt; "
                "openssl req -x509 %s -days 2 -subj /CN=pgc-it-other-ca -keyout other.key "
                "-out other.crt; "
                "chmod 600 server.key",
                dir, dir, dir, ec, ec, ec);
    if (rc != 0) {
        h_shell("cat %s/openssl.log >&2", dir);
        fail_msg("openssl failed (%d)", rc);
    }
}

static int setup(void **state)
{
    (void)state;
    make_certs();
    h_exec_direct("DROP ROLE IF EXISTS " SCRAM_USER);
    h_exec_direct("SET password_encryption = 'scram-sha-256'; "
                  "CREATE ROLE " SCRAM_USER " LOGIN PASSWORD 'tls-secret' IN ROLE pgc_scram");
    char cert[400], key[400];
    snprintf(cert, sizeof cert, "client_tls_cert_file=%s/server.crt", dir);
    snprintf(key, sizeof key, "client_tls_key_file=%s/server.key", dir);
    const char *sets[] = {"client_tls_mode=require", cert, key, NULL};
    h_proxy_start(&px, sets);
    const char *sets2[] = {"client_tls_mode=allow", cert, key, "server_tls_mode=require", NULL};
    h_proxy_start(&pxs, sets2);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(h_proxy_stop(&px), 0);
    assert_int_equal(h_proxy_stop(&pxs), 0);
    h_proxy_stop(&def); /* -1 when already stopped (a failed test leaves none running) */
    h_proxy_stop(&weak);
    h_proxy_stop(&only13);
    h_exec_direct("DROP ROLE IF EXISTS " SCRAM_USER);
    h_shell("rm -rf %s", dir);
    return 0;
}

/* A conninfo for proxy p without the harness's sslmode=disable. */
static const char *tls_conninfo(const h_proxy *p, const char *extra)
{
    static char bufs[4][1024];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, 1024, "port=%d dbname=postgres %s", p->port, extra);
    return b;
}

/* Server-side TLS state of c's backend as pg_stat_ssl reports it: 't' or 'f'. */
static char server_ssl(PGconn *c)
{
    PGresult *r = h_exec(c, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    assert_int_equal(PQntuples(r), 1);
    char v = PQgetvalue(r, 0, 0)[0];
    PQclear(r);
    return v;
}

static void check_tls_session(PGconn *c)
{
    assert_int_equal(PQsslInUse(c), 1);
    assert_non_null(PQsslAttribute(c, "protocol"));
    assert_int_equal(h_query_int(c, "SELECT 6 * 7"), 42);
    char v = server_ssl(c); /* the proxy's own server connection: not asserted here */
    assert_true(v == 't' || v == 'f');
}

static void test_sslmode_require(void **state)
{
    (void)state;
    char e[200];
    snprintf(e, sizeof e, "host=127.0.0.1 user=%s sslmode=require", h_pg_user());
    PGconn *c = h_connect(tls_conninfo(&px, e));
    check_tls_session(c);
    PQfinish(c);
    /* sslmode=prefer (libpq's default) also ends up on TLS. */
    snprintf(e, sizeof e, "host=127.0.0.1 user=%s sslmode=prefer", h_pg_user());
    c = h_connect(tls_conninfo(&px, e));
    assert_int_equal(PQsslInUse(c), 1);
    PQfinish(c);
}

static void test_sslmode_verify_full(void **state)
{
    (void)state;
    char e[600];
    /* By host name (SAN DNS:localhost), connecting to 127.0.0.1. */
    snprintf(e, sizeof e,
             "host=localhost hostaddr=127.0.0.1 user=%s sslmode=verify-full sslrootcert=%s/ca.crt",
             h_pg_user(), dir);
    PGconn *c = h_connect(tls_conninfo(&px, e));
    check_tls_session(c);
    PQfinish(c);
    /* By IP address (SAN IP:127.0.0.1). */
    snprintf(e, sizeof e, "host=127.0.0.1 user=%s sslmode=verify-full sslrootcert=%s/ca.crt",
             h_pg_user(), dir);
    c = h_connect(tls_conninfo(&px, e));
    check_tls_session(c);
    PQfinish(c);
    /* Another CA does not vouch for the proxy's certificate. */
    snprintf(
        e, sizeof e,
        "host=localhost hostaddr=127.0.0.1 user=%s sslmode=verify-full sslrootcert=%s/other.crt",
        h_pg_user(), dir);
    c = PQconnectdb(tls_conninfo(&px, e));
    assert_int_equal(PQstatus(c), CONNECTION_BAD);
    if (strstr(PQerrorMessage(c), "certificate verify failed") == NULL)
        fail_msg("verify-full with another CA: %s", PQerrorMessage(c));
    PQfinish(c);
}

static void test_plaintext_client_refused(void **state)
{
    (void)state;
    char e[200];
    snprintf(e, sizeof e, "host=127.0.0.1 user=%s sslmode=disable", h_pg_user());
    PGconn *c = PQconnectdb(tls_conninfo(&px, e));
    assert_int_equal(PQstatus(c), CONNECTION_BAD);
    if (strstr(PQerrorMessage(c), "TLS") == NULL && strstr(PQerrorMessage(c), "SSL") == NULL)
        fail_msg("plaintext client: %s", PQerrorMessage(c));
    PQfinish(c);
    /* On the wire: a StartupMessage without SSLRequest gets FATAL 28000. */
    int fd = h_raw_connect(px.port);
    unsigned char startup[] = {0, 0,   0,   23,  0,   3,   0,   0,   'u', 's', 'e', 'r',
                               0, 'p', 'o', 's', 't', 'g', 'r', 'e', 's', 0,   0};
    assert_int_equal(write(fd, startup, sizeof startup), (ssize_t)sizeof startup);
    char msg[256];
    assert_true(h_read_error(fd, "28000", 5000, msg, sizeof msg));
    assert_non_null(strstr(msg, "TLS"));
    close(fd);
}

/* A SCRAM login of SCRAM_USER through proxy p with the conninfo options opts; returns the
 * connection (caller checks PQstatus). */
static PGconn *scram_login(const h_proxy *p, const char *password, const char *opts)
{
    char e[300];
    snprintf(e, sizeof e, "host=127.0.0.1 user=" SCRAM_USER " password=%s %s", password, opts);
    return PQconnectdb(tls_conninfo(p, e));
}

static void check_scram_ok(const h_proxy *p, const char *opts, int ssl_in_use)
{
    PGconn *c = scram_login(p, "tls-secret", opts);
    if (PQstatus(c) != CONNECTION_OK) {
        char err[512];
        snprintf(err, sizeof err, "%s", PQerrorMessage(c));
        PQfinish(c); /* libpq keeps a failed connection's socket open until PQfinish */
        fail_msg("SCRAM login with '%s' through the proxy: %s", opts, err);
    }
    assert_int_equal(PQsslInUse(c), ssl_in_use);
    assert_int_equal(PQconnectionUsedPassword(c), 1);
    PGresult *r = h_exec(c, "SELECT current_user");
    assert_string_equal(PQgetvalue(r, 0, 0), SCRAM_USER);
    PQclear(r);
    PQfinish(c);
}

/* Client TLS terminated by the proxy, plain server leg. */
static void test_scram_over_tls(void **state)
{
    (void)state;
    check_scram_ok(&px, "sslmode=require", 1); /* libpq default channel_binding=prefer */
    check_scram_ok(&px, "sslmode=require channel_binding=disable", 1);
    /* Wrong password: PostgreSQL's own refusal. */
    PGconn *c = scram_login(&px, "nope", "sslmode=require");
    assert_int_equal(PQstatus(c), CONNECTION_BAD);
    assert_non_null(strstr(PQerrorMessage(c), "password authentication failed"));
    PQfinish(c);
    /* SCRAM-SHA-256-PLUS is not offered over the proxy's TLS, so channel binding
     * cannot be required (README: "TLS and SCRAM channel binding"). */
    c = scram_login(&px, "tls-secret", "sslmode=require channel_binding=require");
    assert_int_equal(PQstatus(c), CONNECTION_BAD);
    if (strstr(PQerrorMessage(c), "channel binding") == NULL)
        fail_msg("channel_binding=require: %s", PQerrorMessage(c));
    PQfinish(c);
}

/* TLS on both legs (client_tls_mode=allow, server_tls_mode=require). */
/* TLS on both legs: SCRAM works once the client does not announce channel-binding
 * support (README, "TLS and SCRAM channel binding": the gs2 flag is covered by the
 * proof, so no proxy can rewrite it). */
static void test_scram_over_tls_both_legs(void **state)
{
    (void)state;
    check_scram_ok(&pxs, "sslmode=require channel_binding=disable", 1);
}

/* Plaintext client, TLS server leg. */
static void test_scram_plain_client_tls_server(void **state)
{
    (void)state;
    check_scram_ok(&pxs, "sslmode=disable", 0);
}

static void test_server_tls_require(void **state)
{
    (void)state;
    char e[300];
    /* Plaintext client, TLS from the proxy to the server. */
    snprintf(e, sizeof e, "host=127.0.0.1 user=%s sslmode=disable", h_pg_user());
    PGconn *c = h_connect(tls_conninfo(&pxs, e));
    assert_int_equal(PQsslInUse(c), 0);
    assert_int_equal(server_ssl(c), 't');
    PQfinish(c);
    /* TLS on both legs. */
    snprintf(e, sizeof e, "host=127.0.0.1 user=%s sslmode=require", h_pg_user());
    c = h_connect(tls_conninfo(&pxs, e));
    assert_int_equal(PQsslInUse(c), 1);
    assert_int_equal(server_ssl(c), 't');
    /* A larger result over both TLS legs arrives whole. */
    assert_int_equal(h_query_int(c, "SELECT sum(length(s)) FROM (SELECT repeat('y', 1000) AS s "
                                    "FROM generate_series(1, 20000)) t"),
                     20000000);
    PGresult *r = h_exec(c, "SELECT string_agg(md5(g::text), '') FROM generate_series(1, 50000) g");
    assert_int_equal(PQgetlength(r, 0, 0), 50000 * 32);
    PQclear(r);
    PQfinish(c);
}

/* Whether a TLS handshake with the proxy on port succeeds with these s_client options
 * (and, when it does, the negotiated cipher is the one named by want, if not NULL). */
static bool handshake(int port, const char *opts, const char *want)
{
    int rc = h_shell("openssl s_client -connect 127.0.0.1:%d -starttls postgres %s "
                     "</dev/null >%s/s_client.out 2>&1",
                     port, opts, dir);
    if (rc != 0)
        return false;
    if (want && h_shell("grep -q 'Cipher is %s' %s/s_client.out", want, dir) != 0) {
        h_shell("cat %s/s_client.out >&2", dir);
        fail_msg("handshake succeeded without cipher %s", want);
    }
    return true;
}

static void start_rsa_proxy(h_proxy *p, const char *extra1)
{
    char cert[400], key[400];
    snprintf(cert, sizeof cert, "client_tls_cert_file=%s/rsa.crt", dir);
    snprintf(key, sizeof key, "client_tls_key_file=%s/rsa.key", dir);
    const char *sets[] = {"client_tls_mode=allow", cert, key, extra1, NULL};
    h_proxy_start(p, sets);
}

static void test_cipher_suites_and_versions(void **state)
{
    (void)state;
    if (h_shell("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
                "-keyout rsa.key -out rsa.crt >>openssl.log 2>&1 && chmod 600 rsa.key",
                dir) != 0)
        fail_msg("openssl req (RSA) failed");
    start_rsa_proxy(&def, NULL);
    /* @SECLEVEL=0 on the client so that a refusal is the proxy's, not the client's */
    assert_false(handshake(def.port, "-tls1_2 -cipher AES128-SHA@SECLEVEL=0", NULL));
    assert_false(handshake(def.port, "-tls1_2 -cipher ECDHE-RSA-AES128-SHA@SECLEVEL=0", NULL));
    assert_false(handshake(def.port, "-tls1_2 -cipher AES256-SHA256@SECLEVEL=0", NULL));
    assert_true(handshake(def.port, "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256",
                          "ECDHE-RSA-AES128-GCM-SHA256"));
    assert_true(handshake(def.port, "-tls1_2 -cipher DHE-RSA-AES256-GCM-SHA384",
                          "DHE-RSA-AES256-GCM-SHA384"));
    assert_true(handshake(def.port, "-tls1_3", "TLS_AES_"));
    assert_false(handshake(def.port, "-tls1_1 -cipher DEFAULT@SECLEVEL=0", NULL));
    assert_int_equal(h_proxy_stop(&def), 0);

    start_rsa_proxy(&weak, "client_tls_ciphers=AES128-SHA");
    assert_true(handshake(weak.port, "-tls1_2 -cipher AES128-SHA@SECLEVEL=0", "AES128-SHA"));
    assert_int_equal(h_proxy_stop(&weak), 0);

    start_rsa_proxy(&only13, "client_tls_protocols=tlsv1.3");
    assert_false(handshake(only13.port, "-tls1_2", NULL));
    assert_true(handshake(only13.port, "-tls1_3", "TLS_AES_"));
    assert_int_equal(h_proxy_stop(&only13), 0);

    /* a bad value is a configuration error: pgcutover --check says which setting */
    assert_int_equal(h_shell("%s --check --set client_tls_ciphers=NOPE 2>%s/check.out", PGC_BIN,
                             dir),
                     1);
    assert_int_equal(h_shell("grep -q 'client_tls_ciphers: \"NOPE\" selects no cipher' "
                             "%s/check.out",
                             dir),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sslmode_require),
        cmocka_unit_test(test_sslmode_verify_full),
        cmocka_unit_test(test_plaintext_client_refused),
        cmocka_unit_test(test_scram_over_tls),
        cmocka_unit_test(test_scram_over_tls_both_legs),
        cmocka_unit_test(test_scram_plain_client_tls_server),
        cmocka_unit_test(test_server_tls_require),
        cmocka_unit_test(test_cipher_suites_and_versions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
