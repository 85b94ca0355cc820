/*
 * test_proxy_auth.c — PostgreSQL's own password authentication relayed through the
 * proxy: SCRAM-SHA-256 and md5 logins succeed with the right password, and fail with a
 * wrong or missing one with PostgreSQL's error (28P01 "password authentication failed").
 * The cluster's pg_hba.conf makes members of pgc_scram / pgc_md5 use those methods.
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

#define SCRAM_USER "pgc_it_auth_scram"
#define MD5_USER "pgc_it_auth_md5"

static h_proxy px;

static void drop_roles(void)
{
    h_exec_direct("DROP ROLE IF EXISTS " SCRAM_USER);
    h_exec_direct("DROP ROLE IF EXISTS " MD5_USER);
}

static int setup(void **state)
{
    (void)state;
    drop_roles();
    h_exec_direct("SET password_encryption = 'scram-sha-256'; "
                  "CREATE ROLE " SCRAM_USER " LOGIN PASSWORD 'scram-secret' IN ROLE pgc_scram");
    h_exec_direct("SET password_encryption = 'md5'; "
                  "CREATE ROLE " MD5_USER " LOGIN PASSWORD 'md5-secret' IN ROLE pgc_md5");
    h_proxy_start(&px, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(h_proxy_stop(&px), 0);
    drop_roles();
    return 0;
}

static const char *login(const char *user, const char *password)
{
    static char extra[3][200];
    static int i;
    char *b = extra[i++ % 3];
    if (password)
        snprintf(b, 200, "user=%s password=%s", user, password);
    else
        snprintf(b, 200, "user=%s", user);
    return h_conninfo_proxy(&px, b);
}

static void test_roles_use_the_intended_methods(void **state)
{
    (void)state;
    PGconn *c = h_connect(h_conninfo_direct(NULL));
    PGresult *r = h_exec(c, "SELECT rolname, left(rolpassword, 3), left(rolpassword, 14) "
                            "FROM pg_authid WHERE rolname IN ('" SCRAM_USER "', '" MD5_USER "') "
                            "ORDER BY 1");
    assert_int_equal(PQntuples(r), 2);
    assert_string_equal(PQgetvalue(r, 0, 0), MD5_USER);
    assert_string_equal(PQgetvalue(r, 0, 1), "md5");
    assert_string_equal(PQgetvalue(r, 1, 0), SCRAM_USER);
    assert_string_equal(PQgetvalue(r, 1, 2), "SCRAM-SHA-256$");
    PQclear(r);
    PQfinish(c);
}

static void check_login_ok(const char *user, const char *password)
{
    PGconn *c = h_connect(login(user, password));
    assert_int_equal(PQconnectionNeedsPassword(c), 0);
    assert_int_equal(PQconnectionUsedPassword(c), 1); /* the server asked for it */
    PGresult *r = h_exec(c, "SELECT current_user, session_user");
    assert_string_equal(PQgetvalue(r, 0, 0), user);
    assert_string_equal(PQgetvalue(r, 0, 1), user);
    PQclear(r);
    PQfinish(c);
}

static void check_login_fails(const char *user, const char *password)
{
    PGconn *c = PQconnectdb(login(user, password));
    assert_int_equal(PQstatus(c), CONNECTION_BAD);
    char want[128];
    snprintf(want, sizeof want, "password authentication failed for user \"%s\"", user);
    if (strstr(PQerrorMessage(c), want) == NULL)
        fail_msg("login %s/%s: %s", user, password, PQerrorMessage(c));
    PQfinish(c);
}

static void test_scram_right_password(void **state)
{
    (void)state;
    check_login_ok(SCRAM_USER, "scram-secret");
}

static void test_scram_wrong_password(void **state)
{
    (void)state;
    check_login_fails(SCRAM_USER, "not-the-secret");
    check_login_fails(SCRAM_USER, "md5-secret");
}

static void test_md5_right_password(void **state)
{
    (void)state;
    check_login_ok(MD5_USER, "md5-secret");
}

static void test_md5_wrong_password(void **state)
{
    (void)state;
    check_login_fails(MD5_USER, "not-the-secret");
    check_login_fails(MD5_USER, "scram-secret");
}

static void md5_hex_of(const void *a, size_t an, const void *b, size_t bn, char out[33])
{
    h_md5 m;
    h_md5_init(&m);
    h_md5_update(&m, a, an);
    h_md5_update(&m, b, bn);
    h_md5_hex(&m, out);
}

/* md5 login on a raw socket: AuthenticationMD5Password, then a PasswordMessage with
 * "md5" || md5(md5(password || user) || salt); returns the answer's first byte and
 * checks for an ErrorResponse with sqlstate when wrong. */
static void raw_md5_login(const char *password, bool expect_ok)
{
    int fd = h_raw_connect(px.port);
    unsigned char pkt[128];
    size_t n = 8;
    pkt[4] = 0, pkt[5] = 3, pkt[6] = 0, pkt[7] = 0;
    n += (size_t)sprintf((char *)pkt + n, "user") + 1;
    n += (size_t)sprintf((char *)pkt + n, "%s", MD5_USER) + 1;
    n += (size_t)sprintf((char *)pkt + n, "database") + 1;
    n += (size_t)sprintf((char *)pkt + n, "postgres") + 1;
    pkt[n++] = 0;
    pkt[0] = 0, pkt[1] = 0, pkt[2] = 0, pkt[3] = (unsigned char)n;
    assert_int_equal(write(fd, pkt, n), (ssize_t)n);
    unsigned char auth[13];
    size_t got = 0;
    while (got < sizeof auth) {
        ssize_t r = read(fd, auth + got, sizeof auth - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    /* 'R', length 12, code 5 (MD5Password), 4-byte salt */
    assert_int_equal(auth[0], 'R');
    assert_int_equal(auth[4], 12);
    assert_int_equal(auth[8], 5);
    char inner[33], outer[33];
    md5_hex_of(password, strlen(password), MD5_USER, strlen(MD5_USER), inner);
    md5_hex_of(inner, 32, auth + 9, 4, outer);
    unsigned char msg[64] = {'p', 0, 0, 0, 4 + 36};
    memcpy(msg + 5, "md5", 3);
    memcpy(msg + 8, outer, 33);
    assert_int_equal(write(fd, msg, 41), 41);
    if (expect_ok) {
        unsigned char ok[9];
        got = 0;
        while (got < sizeof ok) {
            ssize_t r = read(fd, ok + got, sizeof ok - got);
            assert_true(r > 0);
            got += (size_t)r;
        }
        assert_int_equal(ok[0], 'R'); /* AuthenticationOk */
        assert_int_equal(ok[8], 0);
    } else {
        char text[256];
        assert_true(h_read_error(fd, "28P01", 5000, text, sizeof text));
        assert_non_null(strstr(text, "password authentication failed"));
    }
    close(fd);
}

static void test_md5_sqlstate_on_the_wire(void **state)
{
    (void)state;
    raw_md5_login("md5-secret", true); /* the computation is right... */
    raw_md5_login("wrong", false);     /* ...so this is the server's verdict: 28P01 */
}

static void test_no_password_is_asked_for(void **state)
{
    (void)state;
    const char *users[] = {SCRAM_USER, MD5_USER};
    for (int i = 0; i < 2; i++) {
        PGconn *c = PQconnectdb(login(users[i], NULL));
        assert_int_equal(PQstatus(c), CONNECTION_BAD);
        assert_int_equal(PQconnectionNeedsPassword(c), 1);
        assert_non_null(strstr(PQerrorMessage(c), "no password supplied"));
        PQfinish(c);
    }
    /* Failed logins leave the proxy serving: the right password still works. */
    check_login_ok(SCRAM_USER, "scram-secret");
    check_login_ok(MD5_USER, "md5-secret");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles_use_the_intended_methods),
        cmocka_unit_test(test_scram_right_password),
        cmocka_unit_test(test_scram_wrong_password),
        cmocka_unit_test(test_md5_right_password),
        cmocka_unit_test(test_md5_wrong_password),
        cmocka_unit_test(test_md5_sqlstate_on_the_wire),
        cmocka_unit_test(test_no_password_is_asked_for),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
