/*
 * test_proxy_basic.c — the proxy relays a session to the real PostgreSQL: TCP and unix
 * socket, BackendKeyData is the server's, an unreachable server gives 08006, and a
 * malformed startup packet is answered as PostgreSQL answers it (a bad length: closed
 * without a word; an unknown protocol: 0A000; a cut parameter list: 08P01; compared with
 * the server itself in test_proxy_startup) while the proxy keeps serving others.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"

static h_proxy px;

static int setup(void **state)
{
    (void)state;
    h_proxy_start(&px, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(h_proxy_stop(&px), 0); /* exits 0 on SIGTERM once sessions end */
    return 0;
}

static void test_query_over_tcp(void **state)
{
    (void)state;
    PGconn *c = h_connect(h_conninfo_proxy(&px, NULL));
    assert_int_equal(h_query_int(c, "SELECT 40 + 2"), 42);
    /* The client sees the server's own backend pid (BackendKeyData relayed). */
    assert_int_equal(h_query_int(c, "SELECT pg_backend_pid()"), PQbackendPID(c));
    PQfinish(c);
}

static void test_query_over_unix_socket(void **state)
{
    (void)state;
    char ci[512];
    snprintf(ci, sizeof ci, "host=%s port=%d user=%s dbname=postgres", px.sockdir, px.port,
             h_pg_user());
    PGconn *c = h_connect(ci);
    PGresult *r = h_exec(c, "SELECT current_user");
    assert_string_equal(PQgetvalue(r, 0, 0), h_pg_user());
    PQclear(r);
    PQfinish(c);
}

static void test_unreachable_server_gives_08006(void **state)
{
    (void)state;
    h_proxy dead;
    char set[64];
    snprintf(set, sizeof set, "server_port=%d", h_free_port());
    const char *sets[] = {set, NULL};
    h_proxy_start(&dead, sets);
    PGconn *c = PQconnectdb(h_conninfo_proxy(&dead, NULL));
    assert_int_equal(PQstatus(c), CONNECTION_BAD);
    assert_non_null(strstr(PQerrorMessage(c), "could not connect to server"));
    PQfinish(c);
    h_proxy_stop(&dead);
}

/* Read the proxy's answer and return whether it is an ErrorResponse with sqlstate. */
static bool reads_error(int fd, const char *sqlstate)
{
    char buf[1024];
    ssize_t n, got = 0;
    struct timeval tv = {5, 0};
    /* A libpq socket is non-blocking: without this, read() may return EAGAIN before the
     * proxy's answer arrives and the test fails spuriously. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while ((n = read(fd, buf + got, sizeof buf - 1 - (size_t)got)) > 0)
        got += n;
    if (got < 6 || buf[0] != 'E')
        return false;
    buf[got] = 0;
    for (ssize_t i = 5; i + 6 < got; i++)
        if (buf[i] == 'C' && memcmp(buf + i + 1, sqlstate, 5) == 0)
            return true;
    return false;
}

static void test_malformed_startup_gives_08P01(void **state)
{
    (void)state;
    /* Length under 8, a huge length, an unknown protocol, a parameter list cut short. */
    static const unsigned char bad[][12] = {
        {0, 0, 0, 4, 0, 0, 0, 0},
        {0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0},
        {0, 0, 0, 8, 0, 9, 0, 0},
        {0, 0, 0, 12, 0, 3, 0, 0, 'u', 's', 'e', 'r'},
    };
    static const size_t lens[] = {8, 8, 8, 12};
    static const char *const expect[] = {NULL, NULL, "0A000", "08P01"};
    for (size_t i = 0; i < 4; i++) {
        int fd = h_raw_connect(px.port);
        assert_int_equal(write(fd, bad[i], lens[i]), (ssize_t)lens[i]);
        if (expect[i]) {
            assert_true(reads_error(fd, expect[i]));
        } else {
            char b[16];
            struct timeval tv = {5, 0};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            assert_int_equal(read(fd, b, sizeof b), 0); /* closed, nothing sent */
        }
        close(fd);
    }
    /* Malformed message after login: a length under 4. */
    PGconn *c = h_connect(h_conninfo_proxy(&px, NULL));
    int fd = PQsocket(c);
    static const unsigned char badmsg[] = {'Q', 0, 0, 0, 2};
    assert_int_equal(write(fd, badmsg, sizeof badmsg), 5);
    assert_true(reads_error(fd, "08P01"));
    PQfinish(c);
    /* Everyone else is still served. */
    PGconn *ok = h_connect(h_conninfo_proxy(&px, NULL));
    assert_int_equal(h_query_int(ok, "SELECT 7"), 7);
    PQfinish(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_over_tcp),
        cmocka_unit_test(test_query_over_unix_socket),
        cmocka_unit_test(test_unreachable_server_gives_08006),
        cmocka_unit_test(test_malformed_startup_gives_08P01),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
