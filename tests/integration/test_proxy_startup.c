/*
 * test_proxy_startup.c — the proxy answers startup packets as PostgreSQL 15 does
 * (ProcessStartupPacket in src/backend/postmaster/postmaster.c). The oracle is the
 * server itself: the same raw bytes go to a direct connection and to one through the
 * proxy, and the two answers must be of the same class — silent close, ErrorResponse with
 * the same SQLSTATE and message, the protocol-2 error text, or the same first message
 * type of an accepted login ('R', or 'v' NegotiateProtocolVersion). Covered: Terminate
 * before the StartupMessage (node-postgres when end() races connect()), lengths under 8,
 * negative, one over the limit and exactly at it (10000 bytes after the length word),
 * no user, bad layouts, protocol 2.0 / 4.0 / 0.0 / 1234.5681, 3.5, 200 parameters (no
 * limit of 64), CancelRequests of the wrong size. Then, on the proxy alone (the test
 * server has ssl = on and GSSAPI, so it answers 'S'/'G'): a second SSLRequest after 'N'
 * is an unsupported protocol 1234.5679, and bytes pipelined after an SSLRequest or a
 * GSSENCRequest get 'N' and then 08P01, as the server's code does after 'N'.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
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
    assert_int_equal(h_proxy_stop(&px), 0);
    return 0;
}

/* Read into b until EOF, a timeout (5 s), or a ReadyForQuery / ErrorResponse message of
 * an accepted login. Returns the bytes read; *eof says whether the peer closed. */
static size_t read_answer(int fd, unsigned char *b, size_t cap, bool *eof)
{
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t got = 0;
    *eof = false;
    while (got < cap) {
        ssize_t r = read(fd, b + got, cap - got);
        if (r == 0 || (r < 0 && errno == ECONNRESET)) {
            *eof = true;
            break;
        }
        if (r < 0)
            break; /* timeout */
        got += (size_t)r;
        if (b[0] == 'E')
            continue; /* an error: read until the close */
        /* An accepted login: walk the messages up to ReadyForQuery or an error. */
        size_t off = 0;
        bool done = false;
        while (off + 5 <= got && off + 1 + h_get_u32(b + off + 1) <= got) {
            if (b[off] == 'Z' || b[off] == 'E')
                done = true;
            off += 1 + h_get_u32(b + off + 1);
        }
        if (done)
            break;
    }
    return got;
}

/* "R S S ... Z" or "R E 3D000": the message types of an accepted login, errors' SQLSTATE. */
static void login_messages(const unsigned char *b, size_t got, char *out, size_t outlen)
{
    size_t off = 0, o = 0;
    out[0] = 0;
    while (off + 5 <= got && off + 1 + h_get_u32(b + off + 1) <= got && o + 16 < outlen) {
        unsigned len = h_get_u32(b + off + 1);
        o += (size_t)snprintf(out + o, outlen - o, "%s%c", o ? " " : "", b[off]);
        if (b[off] == 'E')
            for (size_t i = off + 5; i < off + 1 + len && b[i];) {
                const char *v = (const char *)b + i + 1;
                if (b[i] == 'C')
                    o += (size_t)snprintf(out + o, outlen - o, " %s", v);
                i += 2 + strlen(v);
            }
        off += 1 + len;
    }
}

/* The class of the answer to bytes[0..n) sent to port, into out. */
static void answer_of(int port, const void *bytes, size_t n, char *out, size_t outlen)
{
    int fd = h_raw_connect(port);
    assert_int_equal(write(fd, bytes, n), (ssize_t)n);
    unsigned char b[16384];
    bool eof;
    size_t got = read_answer(fd, b, sizeof b - 1, &eof);
    close(fd);
    b[got] = 0;
    if (got == 0) {
        snprintf(out, outlen, eof ? "close" : "no answer");
        return;
    }
    unsigned len = got >= 5 ? h_get_u32(b + 1) : 0;
    if (b[0] == 'E' && len >= 4 && len < sizeof b && got >= 1 + len) {
        const char *code = "?", *msg = "?";
        for (size_t i = 5; i < 1 + len && b[i];) {
            const char *v = (const char *)b + i + 1;
            if (b[i] == 'C')
                code = v;
            else if (b[i] == 'M')
                msg = v;
            i += 2 + strlen(v);
        }
        snprintf(out, outlen, "ErrorResponse %s \"%s\"%s", code, msg,
                 eof ? "" : " (connection left open)");
    } else if (b[0] == 'E') { /* protocol 2: 'E' and a NUL-terminated text */
        snprintf(out, outlen, "v2 error \"%.400s\"%s", (const char *)b + 1,
                 eof ? "" : " (connection left open)");
    } else {
        char types[400];
        login_messages(b, got, types, sizeof types);
        snprintf(out, outlen, "login: %s", types);
    }
}

/* Send the same bytes to PostgreSQL and to the proxy: the answers must match, and be
 * `expect` (a prefix), so the test also says what the server does. */
static void same_answer(const char *what, const void *bytes, size_t n, const char *expect)
{
    char direct[600], proxied[600];
    answer_of(h_pg_port(), bytes, n, direct, sizeof direct);
    answer_of(px.port, bytes, n, proxied, sizeof proxied);
    print_message("%-40s server: %s\n", what, direct);
    if (strncmp(direct, expect, strlen(expect)) != 0)
        fail_msg("%s: the server answered %s, the test expects %s", what, direct, expect);
    if (strcmp(direct, proxied) != 0)
        fail_msg("%s: server answered %s, proxy answered %s", what, direct, proxied);
}

/* A startup packet: protocol code + body (length word filled in) into m. */
static size_t pkt(unsigned char *m, unsigned code, const void *body, size_t blen)
{
    h_put_u32(m, (unsigned)(8 + blen));
    h_put_u32(m + 4, code);
    memcpy(m + 8, body, blen);
    return 8 + blen;
}

/* "user\0<user>\0database\0postgres\0" + extra + final NUL, into body; its length. */
static size_t login_body(char *body, const char *extra, size_t extra_len)
{
    size_t k = (size_t)sprintf(body, "user%c%s%cdatabase%cpostgres%c", 0, h_pg_user(), 0, 0, 0);
    memcpy(body + k, extra, extra_len);
    k += extra_len;
    body[k++] = 0;
    return k;
}

static void test_terminate_before_startup(void **state)
{
    (void)state;
    static const unsigned char x[] = {'X', 0, 0, 0, 4};
    same_answer("Terminate first", x, sizeof x, "close");
    /* node-postgres: Terminate, then its StartupMessage in the same segment */
    unsigned char m[256];
    char body[128];
    memcpy(m, x, 5);
    size_t n = pkt(m + 5, 3u << 16, body, login_body(body, "", 0));
    same_answer("Terminate + StartupMessage", m, 5 + n, "close");
    /* and the proxy keeps serving */
    PGconn *c = h_connect(h_conninfo_proxy(&px, NULL));
    assert_int_equal(h_query_int(c, "SELECT 1"), 1);
    PQfinish(c);
}

static void test_bad_lengths(void **state)
{
    (void)state;
    unsigned char m[16] = {0};
    static const unsigned lens[] = {0, 4, 7, 0x80000000u, 0xfffffffcu, 10005, 0x7fffffffu};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char what[64];
        h_put_u32(m, lens[i]);
        h_put_u32(m + 4, 3u << 16);
        snprintf(what, sizeof what, "length %u", lens[i]);
        same_answer(what, m, sizeof m, "close");
    }
}

/* 10000 bytes after the length word is the largest packet the server reads. */
static void test_largest_packet(void **state)
{
    (void)state;
    static unsigned char m[10004 + 64];
    static char body[10004];
    size_t fixed = login_body(body, "", 0) - 1; /* without the final NUL */
    /* "pgc.pad\0" + value + NUL + final NUL fill the rest: 4 + fixed + 8 + v + 2 = 10004 */
    size_t v = 10004 - 8 - fixed - 8 - 1 - 1;
    char *extra = malloc(8 + v + 1);
    memcpy(extra, "pgc.pad", 8);
    memset(extra + 8, 'x', v);
    extra[8 + v] = 0;
    size_t n = pkt(m, 3u << 16, body, login_body(body, extra, 8 + v + 1));
    assert_int_equal(n, 10004);
    same_answer("10004 bytes in all", m, n, "login: R");
    free(extra);
}

static void test_refused_packets(void **state)
{
    (void)state;
    unsigned char m[512];
    char body[256];
    size_t k = login_body(body, "", 0);
    same_answer("no user", m, pkt(m, 3u << 16, "database\0postgres\0", 19),
                "ErrorResponse 28000 \"no PostgreSQL user name specified");
    same_answer("empty user", m, pkt(m, 3u << 16, "user\0\0", 7), "ErrorResponse 28000");
    same_answer("no parameters at all", m, pkt(m, 3u << 16, "", 0),
                "ErrorResponse 08P01 \"invalid startup packet layout: expected terminator");
    same_answer("no final terminator", m, pkt(m, 3u << 16, body, k - 1), "ErrorResponse 08P01");
    same_answer("name without value", m, pkt(m, 3u << 16, "user\0postgres\0opt\0", 18),
                "ErrorResponse 08P01");
    same_answer("bytes after the terminator", m, pkt(m, 3u << 16, "user\0postgres\0\0x", 16),
                "ErrorResponse 08P01");
    same_answer("protocol 2.0", m, pkt(m, 2u << 16, body, k),
                "v2 error \"FATAL:  unsupported frontend protocol 2.0: server supports 3.0 to");
    same_answer("protocol 4.0", m, pkt(m, 4u << 16, body, k),
                "ErrorResponse 0A000 \"unsupported frontend protocol 4.0: server supports 3.0 to");
    same_answer("protocol 0.0", m, pkt(m, 0, body, k), "ErrorResponse 0A000");
    same_answer("code 1234.5681", m, pkt(m, 1234u << 16 | 5681, "", 0), "ErrorResponse 0A000");
    same_answer("cancel of 12 bytes", m, pkt(m, 1234u << 16 | 5678, "\0\0\0\1", 4), "close");
    same_answer("cancel of 20 bytes", m, pkt(m, 1234u << 16 | 5678, "\0\0\0\1\0\0\0\2\0\0\0\3", 12),
                "close");
    same_answer("cancel of an unknown backend", m,
                pkt(m, 1234u << 16 | 5678, "\0\0\0\1\0\0\0\2", 8), "close");
    same_answer("unknown database", m,
                pkt(m, 3u << 16, "user\0postgres\0database\0pgc_no_such_db\0\0", 39),
                "login: R E 3D000");
}

static void test_accepted_packets(void **state)
{
    (void)state;
    static unsigned char m[8192];
    static char extra[6000], body[8000];
    size_t e = 0;
    /* 200 parameters: no limit of 64 (custom placeholders "pgc.pN") */
    for (int i = 0; i < 200; i++)
        e += (size_t)sprintf(extra + e, "pgc.p%d%cv%d%c", i, 0, i, 0);
    same_answer("200 parameters", m, pkt(m, 3u << 16, body, login_body(body, extra, e)),
                "login: R");
    size_t k = login_body(body, "", 0);
    same_answer("protocol 3.0", m, pkt(m, 3u << 16, body, k), "login: R");
    same_answer("protocol 3.5 (negotiated down)", m, pkt(m, 3u << 16 | 5, body, k),
                "login: v R");
}

/* Proxy only: the test server answers 'S' and 'G', the proxy (TLS off, no GSSAPI) 'N';
 * after 'N' the server's code goes on as below. first[0..n1) is sent, 'N' read, then
 * then[0..n2) sent in a second write (n2 may be 0 when first holds pipelined bytes); the
 * answer must be an ErrorResponse containing text, then the close. */
static void expect_raw(const void *first, size_t n1, const void *then, size_t n2,
                       const char *text)
{
    int fd = h_raw_connect(px.port);
    assert_int_equal(write(fd, first, n1), (ssize_t)n1);
    char c;
    assert_int_equal(read(fd, &c, 1), 1);
    assert_int_equal(c, 'N');
    if (n2 > 0)
        assert_int_equal(write(fd, then, n2), (ssize_t)n2);
    unsigned char b[1024];
    bool eof;
    size_t got = read_answer(fd, b, sizeof b - 1, &eof);
    close(fd);
    assert_true(eof);
    assert_true(got > 5 && b[0] == 'E');
    if (memmem(b, got, text, strlen(text)) == NULL)
        fail_msg("answer lacks \"%s\"", text);
}

static void test_negotiation_requests(void **state)
{
    (void)state;
    unsigned char ssl[8], gss[8], m[256];
    char body[128];
    pkt(ssl, 1234u << 16 | 5679, "", 0);
    pkt(gss, 1234u << 16 | 5680, "", 0);
    /* a second request of the same kind is read as a protocol version */
    expect_raw(ssl, 8, ssl, 8,
               "unsupported frontend protocol 1234.5679: server supports 3.0 to 3.0");
    expect_raw(gss, 8, gss, 8,
               "unsupported frontend protocol 1234.5680: server supports 3.0 to 3.0");
    /* bytes pipelined after the request were not protected by the encryption asked for */
    memcpy(m, ssl, 8);
    size_t n = 8 + pkt(m + 8, 3u << 16, body, login_body(body, "", 0));
    expect_raw(m, n, NULL, 0, "received unencrypted data after SSL request");
    memcpy(m, gss, 8);
    expect_raw(m, n, NULL, 0, "received unencrypted data after GSSAPI encryption request");

    /* GSSENCRequest, then SSLRequest (either order is allowed), then a login */
    int fd = h_raw_connect(px.port);
    char c;
    assert_int_equal(write(fd, gss, 8), 8);
    assert_int_equal(read(fd, &c, 1), 1);
    assert_int_equal(c, 'N');
    assert_int_equal(write(fd, ssl, 8), 8);
    assert_int_equal(read(fd, &c, 1), 1);
    assert_int_equal(c, 'N');
    assert_true(h_raw_login(fd, h_pg_user(), "postgres"));
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terminate_before_startup),
        cmocka_unit_test(test_bad_lengths),
        cmocka_unit_test(test_largest_packet),
        cmocka_unit_test(test_refused_packets),
        cmocka_unit_test(test_accepted_packets),
        cmocka_unit_test(test_negotiation_requests),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
