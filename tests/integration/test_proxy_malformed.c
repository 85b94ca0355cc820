/*
 * test_proxy_malformed.c — malformed messages after a good login, on a raw socket: a
 * length under 4 or with the sign bit set (08P01 from the proxy), a message longer than
 * max_packet_size=1MB (54000 from the proxy, before the body arrives) and an unknown
 * message type (08P01 FATAL from PostgreSQL, relayed) end that session with an
 * ErrorResponse; a Query without its terminating NUL gets PostgreSQL's ERROR 08P01 and
 * the session goes on. An established session and new ones keep being served
 * throughout. A query just under max_packet_size still passes.
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

static h_proxy px;
static PGconn *bystander; /* logged in before any of the malformed traffic */

static int setup(void **state)
{
    (void)state;
    static const char *const sets[] = {"max_packet_size=1MB", NULL};
    h_proxy_start(&px, sets);
    bystander = h_connect(h_conninfo_proxy(&px, NULL));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(bystander);
    assert_int_equal(h_proxy_stop(&px), 0);
    return 0;
}

static void others_still_served(void)
{
    assert_int_equal(h_query_int(bystander, "SELECT 11"), 11);
    PGconn *c = h_connect(h_conninfo_proxy(&px, NULL));
    assert_int_equal(h_query_int(c, "SELECT 12"), 12);
    PQfinish(c);
}

/* Whether the peer closes fd within 5 s (reading and discarding what comes first). */
static bool closed_by_peer(int fd)
{
    char b[4096];
    ssize_t n;
    double deadline = h_now_ms() + 5000;
    while ((n = read(fd, b, sizeof b)) > 0 && h_now_ms() < deadline)
        ;
    return n == 0;
}

/* Log in on a raw socket, send bytes, expect an ErrorResponse with sqlstate; with
 * fatal, the session must then be closed, otherwise it must still answer a query. */
static void send_after_login(const void *bytes, size_t n, const char *sqlstate,
                             const char *msg_part, bool fatal)
{
    int fd = h_raw_connect(px.port);
    assert_true(h_raw_login(fd, h_pg_user(), "postgres"));
    assert_int_equal(write(fd, bytes, n), (ssize_t)n);
    char msg[300];
    if (!h_read_error(fd, sqlstate, 5000, msg, sizeof msg))
        fail_msg("expected ErrorResponse %s, got message '%s'", sqlstate, msg);
    if (msg_part && strstr(msg, msg_part) == NULL)
        fail_msg("ErrorResponse %s: '%s' lacks '%s'", sqlstate, msg, msg_part);
    if (fatal) {
        assert_true(closed_by_peer(fd));
    } else {
        /* ERROR, not FATAL: ReadyForQuery follows and the session answers a query. */
        static const unsigned char q[] = {'Q', 0,   0,   0,   13,  'S', 'E',
                                          'L', 'E', 'C', 'T', ' ', '7', 0};
        assert_int_equal(write(fd, q, sizeof q), (ssize_t)sizeof q);
        unsigned char b[512];
        size_t got = 0;
        ssize_t r;
        while (got < sizeof b && (r = read(fd, b + got, sizeof b - got)) > 0) {
            got += (size_t)r;
            if (memmem(b, got, "SELECT 1", 9)) /* CommandComplete tag */
                break;
        }
        assert_non_null(memmem(b, got, "SELECT 1", 9));
    }
    close(fd);
    others_still_served();
}

static void test_length_under_4(void **state)
{
    (void)state;
    static const unsigned char m[] = {'Q', 0, 0, 0, 3, 'x'};
    send_after_login(m, sizeof m, "08P01", NULL, true);
}

static void test_negative_length(void **state)
{
    (void)state;
    static const unsigned char m[] = {'Q', 0x80, 0, 0, 0x10, 'S', 'E', 'L'};
    send_after_login(m, sizeof m, "08P01", NULL, true);
}

static void test_over_max_packet_size(void **state)
{
    (void)state;
    /* Declares 2 MB; only the start of the body is sent: the header alone decides. */
    unsigned char m[5 + 64] = {'Q', 0, 0x20, 0, 0};
    memset(m + 5, 'x', 64);
    send_after_login(m, sizeof m, "54000", "max_packet_size", true);
    /* Also as the first message of an extended-protocol exchange (Parse). */
    unsigned char p[5] = {'P', 0, 0x10, 0, 5};
    send_after_login(p, sizeof p, "54000", NULL, true);
}

static void test_unknown_message_type(void **state)
{
    (void)state;
    static const unsigned char m[] = {'!', 0, 0, 0, 4};
    send_after_login(m, sizeof m, "08P01", "invalid frontend message type", true);
}

static void test_query_without_terminator(void **state)
{
    (void)state;
    static const unsigned char m[] = {'Q', 0, 0, 0, 12, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1'};
    send_after_login(m, sizeof m, "08P01", "invalid string", false);
}

/* The proxy's own errors name the offending message type ('Q', 'P'), as its messages
 * claim to: "message of type 'Q' longer than max_packet_size". */
static void test_error_names_the_message_type(void **state)
{
    (void)state;
    send_after_login((const unsigned char[]){'Q', 0, 0x20, 0, 0}, 5, "54000",
                     "type 'Q' longer than max_packet_size", true);
    send_after_login((const unsigned char[]){'P', 0, 0x10, 0, 5}, 5, "54000",
                     "type 'P' longer than max_packet_size", true);
    send_after_login((const unsigned char[]){'Q', 0, 0, 0, 3}, 5, "08P01", "(type 'Q')", true);
}

static void test_query_just_under_max_packet_size(void **state)
{
    (void)state;
    /* 'Q' + length + "SELECT length('…')" + NUL, about 1000 kB < 1 MB */
    size_t n = 1000 * 1000;
    char *q = malloc(n + 64);
    assert_non_null(q);
    int off = sprintf(q, "SELECT length('");
    memset(q + off, 'z', n);
    strcpy(q + off + n, "')");
    PGresult *r = h_exec(bystander, q);
    assert_int_equal(atoll(PQgetvalue(r, 0, 0)), (long long)n);
    PQclear(r);
    free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_length_under_4),
        cmocka_unit_test(test_negative_length),
        cmocka_unit_test(test_over_max_packet_size),
        cmocka_unit_test(test_unknown_message_type),
        cmocka_unit_test(test_query_without_terminator),
        cmocka_unit_test(test_error_names_the_message_type),
        cmocka_unit_test(test_query_just_under_max_packet_size),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
