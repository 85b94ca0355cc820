/*
 * test_pgwire.c — unit tests for protocol/pgwire.c (framing, startup packets, builders,
 * readers). Inputs to readers are copied into exactly-sized heap buffers so that
 * AddressSanitizer catches any read past the given length.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pgwire.h"

/* ---------- helpers ---------- */

/* dup_exact — heap copy of exactly n bytes (at least 1 allocated, never readable). */
static uint8_t *dup_exact(const void *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);

    assert_non_null(d);
    if (n)
        memcpy(d, p, n);
    return d;
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* Deterministic xorshift PRNG for the robustness tests. */
static uint32_t rng_state = 0x12345678u;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* read_header on an exact copy. */
static pgw_status hdr_of(const void *p, size_t n, uint32_t max, pgw_header *h)
{
    uint8_t *d = dup_exact(p, n);
    pgw_status st = pgw_read_header(d, n, max, h);

    free(d);
    return st;
}

/* parse_startup on an exact copy (kept alive in *keep so params stay valid). */
static pgw_status startup_of(const void *p, size_t n, pgw_startup *s, uint8_t **keep)
{
    uint8_t *d = dup_exact(p, n);
    pgw_status st = pgw_parse_startup(d, n, s);

    if (keep)
        *keep = d;
    else
        free(d);
    return st;
}

/* error_of — pgw_read_error on an exact copy, kept until the next call (fields point
 * into it); error_of(NULL, 0, NULL) frees it. */
static pgw_status error_of(const void *p, size_t n, pgw_error_fields *f)
{
    static uint8_t *copy;

    free(copy);
    copy = NULL;
    if (f == NULL)
        return PGW_OK;
    copy = dup_exact(p, n);
    return pgw_read_error(copy, n, f);
}

static pgw_status sasl_of(const void *p, size_t n, const char **names, int max, int *count)
{
    uint8_t *d = dup_exact(p, n);
    pgw_status st = pgw_read_sasl_mechanisms(d, n, names, max, count);

    free(d);
    return st;
}

/* ---------- pgw_read_header ---------- */

static void test_header_ok_and_incomplete(void **state)
{
    const uint8_t m[] = {'Q', 0, 0, 0, 9, 's', 'e', 'l', '\0'};
    pgw_header h;
    size_t k;

    (void)state;
    for (k = 0; k < PGW_HEADER_LEN; k++)
        assert_int_equal(hdr_of(m, k, 100, &h), PGW_INCOMPLETE);
    assert_int_equal(hdr_of(m, 5, 100, &h), PGW_OK);
    assert_int_equal(h.type, 'Q');
    assert_int_equal(h.len, 9);
    assert_int_equal(hdr_of(m, sizeof(m), 9, &h), PGW_OK);
    assert_int_equal(hdr_of(m, sizeof(m), 8, &h), PGW_TOO_LONG);
}

static void test_header_bad_lengths(void **state)
{
    uint8_t m[5] = {'D', 0, 0, 0, 0};
    const uint32_t bad[] = {0, 1, 3, 0x80000000u, 0x80000004u, 0xffffffffu, 0xfffffffcu};
    pgw_header h;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        be32(m + 1, bad[i]);
        assert_int_equal(hdr_of(m, 5, PGW_DEFAULT_MAX_PACKET, &h), PGW_BAD);
        /* negative stays BAD even with no limit */
        assert_int_equal(hdr_of(m, 5, UINT32_MAX, &h), PGW_BAD);
    }
    be32(m + 1, 4);
    assert_int_equal(hdr_of(m, 5, 4, &h), PGW_OK);
    assert_int_equal(h.len, 4);
    be32(m + 1, PGW_DEFAULT_MAX_PACKET + 1);
    assert_int_equal(hdr_of(m, 5, PGW_DEFAULT_MAX_PACKET, &h), PGW_TOO_LONG);
    be32(m + 1, 0x7fffffffu);
    assert_int_equal(hdr_of(m, 5, UINT32_MAX, &h), PGW_OK);
}

/* ---------- pgw_framer ---------- */

/* One framer event as recorded by the tests. */
typedef struct {
    pgw_frame_event ev;
    char type;
    uint32_t len;
} rec;

#define MAX_RECS 64

/*
 * feed_chunks — feed stream in chunks ending at the offsets cuts[0..ncuts) (then the
 * rest), record HEADER/END/ERROR events; returns the number recorded.
 */
static int feed_chunks(const uint8_t *stream, size_t n, const size_t *cuts, int ncuts, uint32_t max,
                       rec *out, pgw_status *err)
{
    pgw_framer f;
    size_t from = 0;
    int nrec = 0, c;

    pgw_framer_init(&f, max);
    for (c = 0; c <= ncuts; c++) {
        size_t to = c < ncuts ? cuts[c] : n;
        uint8_t *chunk = dup_exact(stream + from, to - from);
        size_t off = 0;
        int spins = 0;

        /* Loop until the chunk is used; also drain a pending END with n == 0. */
        for (;;) {
            pgw_frame_event ev = PGW_FRAME_NONE;
            long r = pgw_framer_feed(&f, chunk + off, to - from - off, &ev, err);

            assert_true(++spins < 10000);
            if (r < 0) {
                assert_int_equal(ev, PGW_FRAME_ERROR);
                out[nrec++] = (rec){ev, 0, 0};
                free(chunk);
                return nrec;
            }
            assert_true((size_t)r <= to - from - off);
            off += (size_t)r;
            if (ev == PGW_FRAME_HEADER || ev == PGW_FRAME_END)
                out[nrec++] = (rec){ev, f.cur.type, f.cur.len};
            assert_true(nrec < MAX_RECS);
            if (off == to - from && ev == PGW_FRAME_NONE)
                break;
            if (r == 0 && ev != PGW_FRAME_END)
                break;
        }
        free(chunk);
        from = to;
    }
    return nrec;
}

/* clang-format off */
/* A stream of five messages, including two with an empty body. */
static const uint8_t STREAM[] = {
    'R', 0, 0, 0, 8, 0, 0, 0, 0,                      /* AuthenticationOk */
    'S', 0, 0, 0, 10, 'a', '\0', 'b', 'c', 'd', '\0', /* ParameterStatus */
    'I', 0, 0, 0, 4,                                  /* EmptyQueryResponse */
    'C', 0, 0, 0, 13, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '3', '\0',
    'n', 0, 0, 0, 4,        /* NoData, empty body */
    'Z', 0, 0, 0, 5, 'I',   /* ReadyForQuery */
};

static const rec EXPECTED[] = {
    {PGW_FRAME_HEADER, 'R', 8},  {PGW_FRAME_END, 'R', 8},  {PGW_FRAME_HEADER, 'S', 10},
    {PGW_FRAME_END, 'S', 10},    {PGW_FRAME_HEADER, 'I', 4}, {PGW_FRAME_END, 'I', 4},
    {PGW_FRAME_HEADER, 'C', 13}, {PGW_FRAME_END, 'C', 13}, {PGW_FRAME_HEADER, 'n', 4},
    {PGW_FRAME_END, 'n', 4},     {PGW_FRAME_HEADER, 'Z', 5}, {PGW_FRAME_END, 'Z', 5},
};
#define NEXPECTED ((int)(sizeof(EXPECTED) / sizeof(EXPECTED[0])))
/* clang-format on */

static void check_stream_events(const rec *got, int n)
{
    int i;

    assert_int_equal(n, NEXPECTED);
    for (i = 0; i < n; i++) {
        assert_int_equal(got[i].ev, EXPECTED[i].ev);
        assert_int_equal(got[i].type, EXPECTED[i].type);
        assert_int_equal(got[i].len, EXPECTED[i].len);
    }
}

static void test_framer_whole_stream(void **state)
{
    rec got[MAX_RECS];
    pgw_status err = PGW_OK;

    (void)state;
    check_stream_events(got, feed_chunks(STREAM, sizeof(STREAM), NULL, 0, 1000, got, &err));
}

static void test_framer_every_split(void **state)
{
    rec got[MAX_RECS];
    pgw_status err = PGW_OK;
    size_t a, b;

    (void)state;
    /* one split at every byte boundary */
    for (a = 0; a <= sizeof(STREAM); a++)
        check_stream_events(got, feed_chunks(STREAM, sizeof(STREAM), &a, 1, 1000, got, &err));
    /* two splits at every pair of boundaries */
    for (a = 0; a <= sizeof(STREAM); a++) {
        for (b = a; b <= sizeof(STREAM); b++) {
            size_t cuts[2] = {a, b};

            check_stream_events(got, feed_chunks(STREAM, sizeof(STREAM), cuts, 2, 1000, got, &err));
        }
    }
}

static void test_framer_one_byte_at_a_time(void **state)
{
    rec got[MAX_RECS];
    size_t cuts[sizeof(STREAM)];
    pgw_status err = PGW_OK;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(STREAM); i++)
        cuts[i] = i + 1;
    check_stream_events(
        got, feed_chunks(STREAM, sizeof(STREAM), cuts, (int)sizeof(STREAM), 1000, got, &err));
}

static void test_framer_empty_body_end_consumes_zero(void **state)
{
    const uint8_t m[] = {'I', 0, 0, 0, 4};
    pgw_framer f;
    pgw_frame_event ev;
    pgw_status err = PGW_OK;

    (void)state;
    pgw_framer_init(&f, 100);
    assert_int_equal(pgw_framer_feed(&f, m, 5, &ev, &err), 5);
    assert_int_equal(ev, PGW_FRAME_HEADER);
    assert_int_equal(f.cur.type, 'I');
    assert_int_equal(pgw_framer_feed(&f, NULL, 0, &ev, &err), 0);
    assert_int_equal(ev, PGW_FRAME_END);
    /* nothing pending now: n == 0 gives NONE */
    assert_int_equal(pgw_framer_feed(&f, NULL, 0, &ev, &err), 0);
    assert_int_equal(ev, PGW_FRAME_NONE);
    assert_int_equal(err, PGW_OK); /* untouched without error */
}

static void test_framer_body_progress(void **state)
{
    const uint8_t m[] = {'D', 0, 0, 0, 7, 1, 2, 3, 'Z'};
    pgw_framer f;
    pgw_frame_event ev;
    pgw_status err;

    (void)state;
    pgw_framer_init(&f, 100);
    assert_int_equal(pgw_framer_feed(&f, m, sizeof(m), &ev, &err), 5);
    assert_int_equal(ev, PGW_FRAME_HEADER);
    assert_int_equal(f.body_left, 3);
    assert_int_equal(pgw_framer_feed(&f, m + 5, 2, &ev, &err), 2);
    assert_int_equal(ev, PGW_FRAME_NONE);
    /* END consumes only the message's last byte, not what follows */
    assert_int_equal(pgw_framer_feed(&f, m + 7, 2, &ev, &err), 1);
    assert_int_equal(ev, PGW_FRAME_END);
    assert_int_equal(pgw_framer_feed(&f, m + 8, 1, &ev, &err), 1);
    assert_int_equal(ev, PGW_FRAME_NONE);
    assert_int_equal(f.hdr_have, 1);
}

static void test_framer_errors_sticky(void **state)
{
    uint8_t m[] = {'Q', 0, 0, 0, 5, 'x', 'D', 0x80, 0, 0, 0};
    rec got[MAX_RECS];
    pgw_status err = PGW_OK;
    pgw_framer f;
    pgw_frame_event ev;
    size_t a;
    int n;

    (void)state;
    /* negative length after a good message, at every split */
    for (a = 0; a <= sizeof(m); a++) {
        n = feed_chunks(m, sizeof(m), &a, 1, 1000, got, &err);
        assert_int_equal(n, 3);
        assert_int_equal(got[0].ev, PGW_FRAME_HEADER);
        assert_int_equal(got[1].ev, PGW_FRAME_END);
        assert_int_equal(got[2].ev, PGW_FRAME_ERROR);
        assert_int_equal(err, PGW_BAD);
    }
    /* too long */
    be32(m + 7, 2000);
    n = feed_chunks(m, sizeof(m), NULL, 0, 1000, got, &err);
    assert_int_equal(got[n - 1].ev, PGW_FRAME_ERROR);
    assert_int_equal(err, PGW_TOO_LONG);
    /* len < 4, then sticky until init */
    be32(m + 7, 3);
    pgw_framer_init(&f, 1000);
    assert_int_equal(pgw_framer_feed(&f, m + 6, 5, &ev, &err), -1);
    assert_int_equal(ev, PGW_FRAME_ERROR);
    assert_int_equal(err, PGW_BAD);
    err = PGW_OK;
    assert_int_equal(pgw_framer_feed(&f, m, 5, &ev, &err), -1);
    assert_int_equal(ev, PGW_FRAME_ERROR);
    assert_int_equal(err, PGW_BAD);
    pgw_framer_init(&f, 1000);
    assert_int_equal(pgw_framer_feed(&f, m, 5, &ev, &err), 5);
    assert_int_equal(ev, PGW_FRAME_HEADER);
}

static void test_framer_large_body(void **state)
{
    uint8_t hdr[5] = {'d', 0, 0, 0, 0};
    uint8_t body[4096];
    pgw_framer f;
    pgw_frame_event ev;
    pgw_status err;
    uint32_t total = 1000000, left;
    long r;

    (void)state;
    memset(body, 0xAB, sizeof(body));
    be32(hdr + 1, total + 4);
    pgw_framer_init(&f, PGW_DEFAULT_MAX_PACKET);
    assert_int_equal(pgw_framer_feed(&f, hdr, 5, &ev, &err), 5);
    assert_int_equal(ev, PGW_FRAME_HEADER);
    for (left = total; left > 0; left -= (uint32_t)r) {
        r = pgw_framer_feed(&f, body, sizeof(body), &ev, &err);
        assert_true(r > 0);
        assert_int_equal(ev, (uint32_t)r == left ? PGW_FRAME_END : PGW_FRAME_NONE);
    }
}

/* ---------- startup packets ---------- */

static void test_startup_roundtrip(void **state)
{
    const pgw_param p[] = {{"user", "alice"},
                           {"database", "appdb"},
                           {"application_name", ""},
                           {"options", "-c search_path=x"}};
    pgw_buf b;
    pgw_startup s;
    uint8_t *keep;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_startup(&b, p, 4));
    assert_int_equal(rd32(b.data), b.len);
    assert_int_equal(rd32(b.data + 4), PGW_PROTOCOL_3_0);
    assert_int_equal(b.data[b.len - 1], 0);
    assert_int_equal(startup_of(b.data, b.len, &s, &keep), PGW_OK);
    assert_int_equal(s.kind, PGW_STARTUP_MESSAGE);
    assert_int_equal(s.len, b.len);
    assert_int_equal(s.protocol, PGW_PROTOCOL_3_0);
    assert_int_equal(s.nparams, 4);
    assert_int_equal(s.fault, PGW_SF_NONE);
    {
        size_t pos = 0;
        pgw_param q;
        int k;

        for (k = 0; pgw_startup_next(&s, &pos, &q); k++) {
            assert_string_equal(q.name, p[k].name);
            assert_string_equal(q.value, p[k].value);
        }
        assert_int_equal(k, 4);
    }
    assert_string_equal(pgw_startup_param(&s, "user"), "alice");
    assert_string_equal(pgw_startup_param(&s, "application_name"), "");
    assert_string_equal(pgw_startup_param(&s, "options"), "-c search_path=x");
    assert_null(pgw_startup_param(&s, "replication"));
    assert_null(pgw_startup_param(&s, "USER"));
    free(keep);
    pgw_buf_free(&b);
}

static void test_startup_incomplete_and_trailing(void **state)
{
    const pgw_param p[] = {{"user", "bob"}};
    pgw_buf b;
    pgw_startup s;
    uint8_t big[64];
    size_t k;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_startup(&b, p, 1));
    for (k = 0; k < b.len; k++)
        assert_int_equal(startup_of(b.data, k, &s, NULL), PGW_INCOMPLETE);
    /* bytes after the packet (e.g. a pipelined message) are not looked at */
    memset(big, 'x', sizeof(big));
    memcpy(big, b.data, b.len);
    assert_int_equal(startup_of(big, sizeof(big), &s, NULL), PGW_OK);
    assert_int_equal(s.len, b.len);
    assert_int_equal(s.nparams, 1);
    pgw_buf_free(&b);
}

static void test_startup_lengths(void **state)
{
    uint8_t m[16] = {0};
    const uint32_t bad[] = {0, 1, 4, 7, 0x80000000u, 0xffffffffu, 0x80000010u};
    pgw_startup s;
    size_t i;

    (void)state;
    be32(m + 4, PGW_SSL_REQUEST_CODE);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        be32(m, bad[i]);
        /* decided from the length word alone: closed without an answer */
        assert_int_equal(startup_of(m, 4, &s, NULL), PGW_BAD);
        assert_int_equal(s.fault, PGW_SF_LENGTH);
        assert_int_equal(startup_of(m, 8, &s, NULL), PGW_BAD);
        assert_int_equal(s.fault, PGW_SF_LENGTH);
    }
    /* MAX_STARTUP_PACKET_LENGTH counts the bytes after the length word, as the server */
    be32(m, PGW_MAX_STARTUP_TOTAL + 1);
    assert_int_equal(startup_of(m, 4, &s, NULL), PGW_TOO_LONG);
    assert_int_equal(s.fault, PGW_SF_LENGTH);
    be32(m, 0x7fffffffu);
    assert_int_equal(startup_of(m, 16, &s, NULL), PGW_TOO_LONG);
    be32(m, PGW_MAX_STARTUP_TOTAL);
    assert_int_equal(startup_of(m, 16, &s, NULL), PGW_INCOMPLETE);
    be32(m, PGW_MAX_STARTUP_PACKET + 1);
    assert_int_equal(startup_of(m, 16, &s, NULL), PGW_INCOMPLETE);
}

/* node-postgres sends Terminate ('X', length 4) when end() races connect(): read as a
 * startup packet its length word is 0x58000000, over the limit: a silent close. */
static void test_startup_terminate_first(void **state)
{
    const uint8_t x[] = {'X', 0, 0, 0, 4};
    pgw_startup s;
    pgw_buf b;
    char msg[64] = "untouched";

    (void)state;
    assert_int_equal(startup_of(x, 4, &s, NULL), PGW_TOO_LONG);
    assert_int_equal(s.fault, PGW_SF_LENGTH);
    assert_int_equal(startup_of(x, 5, &s, NULL), PGW_TOO_LONG);
    assert_int_equal(s.fault, PGW_SF_LENGTH);
    pgw_buf_init(&b);
    assert_true(pgw_build_startup_refusal(&b, &s, msg, sizeof(msg)));
    assert_int_equal(b.len, 0); /* nothing is sent */
    assert_string_equal(msg, "");
    pgw_buf_free(&b);
}

static void test_startup_max_size(void **state)
{
    uint8_t *m = calloc(1, PGW_MAX_STARTUP_TOTAL + 1);
    size_t vlen = PGW_MAX_STARTUP_TOTAL - 8 - 5 - 1 - 1; /* "user\0" value\0 final\0 */
    pgw_startup s;

    (void)state;
    assert_non_null(m);
    be32(m, PGW_MAX_STARTUP_TOTAL);
    be32(m + 4, PGW_PROTOCOL_3_0);
    memcpy(m + 8, "user", 5);
    memset(m + 13, 'a', vlen);
    assert_int_equal(startup_of(m, PGW_MAX_STARTUP_TOTAL, &s, NULL), PGW_OK);
    assert_int_equal(s.nparams, 1);
    be32(m, PGW_MAX_STARTUP_TOTAL + 1);
    assert_int_equal(startup_of(m, PGW_MAX_STARTUP_TOTAL + 1, &s, NULL), PGW_TOO_LONG);
    free(m);
}

static void test_startup_requests(void **state)
{
    uint8_t m[20] = {0};
    pgw_startup s;
    pgw_buf b;

    (void)state;
    be32(m, 8);
    be32(m + 4, PGW_SSL_REQUEST_CODE);
    assert_int_equal(startup_of(m, 8, &s, NULL), PGW_OK);
    assert_int_equal(s.kind, PGW_STARTUP_SSL);
    assert_int_equal(s.len, 8);
    be32(m + 4, PGW_GSSENC_REQUEST_CODE);
    assert_int_equal(startup_of(m, 8, &s, NULL), PGW_OK);
    assert_int_equal(s.kind, PGW_STARTUP_GSSENC);
    be32(m, 12); /* the server does not check the length of GSSENC/SSL requests */
    assert_int_equal(startup_of(m, 12, &s, NULL), PGW_OK);
    assert_int_equal(s.kind, PGW_STARTUP_GSSENC);
    assert_int_equal(s.len, 12);
    be32(m + 4, PGW_SSL_REQUEST_CODE);
    assert_int_equal(startup_of(m, 12, &s, NULL), PGW_OK);
    assert_int_equal(s.kind, PGW_STARTUP_SSL);

    be32(m, 16);
    be32(m + 4, PGW_CANCEL_REQUEST_CODE);
    be32(m + 8, 4242);
    be32(m + 12, 0xdeadbeefu);
    assert_int_equal(startup_of(m, 16, &s, NULL), PGW_OK);
    assert_int_equal(s.kind, PGW_STARTUP_CANCEL);
    assert_int_equal(s.cancel_pid, 4242);
    assert_int_equal(s.cancel_key, 0xdeadbeefu);
    assert_null(pgw_startup_param(&s, "user"));
    be32(m, 12); /* a CancelRequest of another size: closed without an answer */
    assert_int_equal(startup_of(m, 12, &s, NULL), PGW_BAD);
    assert_int_equal(s.fault, PGW_SF_LENGTH);
    be32(m, 8);
    assert_int_equal(startup_of(m, 8, &s, NULL), PGW_BAD);
    assert_int_equal(s.fault, PGW_SF_LENGTH);
    be32(m, 20);
    assert_int_equal(startup_of(m, 20, &s, NULL), PGW_BAD);
    assert_int_equal(s.fault, PGW_SF_LENGTH);

    /* builders round trip */
    pgw_buf_init(&b);
    assert_true(pgw_build_ssl_request(&b));
    assert_int_equal(startup_of(b.data, b.len, &s, NULL), PGW_OK);
    assert_int_equal(s.kind, PGW_STARTUP_SSL);
    pgw_buf_reset(&b);
    assert_true(pgw_build_cancel_request(&b, 7, 0x01020304u));
    assert_int_equal(b.len, 16);
    assert_int_equal(startup_of(b.data, b.len, &s, NULL), PGW_OK);
    assert_int_equal(s.kind, PGW_STARTUP_CANCEL);
    assert_int_equal(s.cancel_pid, 7);
    assert_int_equal(s.cancel_key, 0x01020304u);
    pgw_buf_free(&b);
}

static void test_startup_exact_request_bytes(void **state)
{
    const uint8_t ssl[] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
    const uint8_t cancel[] = {0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 0xca, 0xfe, 0, 2};
    pgw_buf b;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_ssl_request(&b));
    assert_int_equal(b.len, sizeof(ssl));
    assert_memory_equal(b.data, ssl, sizeof(ssl));
    pgw_buf_reset(&b);
    assert_true(pgw_build_cancel_request(&b, 1, 0xcafe0002u));
    assert_int_equal(b.len, sizeof(cancel));
    assert_memory_equal(b.data, cancel, sizeof(cancel));
    pgw_buf_free(&b);
}

/* mk_startup — packet from code + raw body (length word filled in). */
static size_t mk_startup(uint8_t *m, uint32_t code, const void *body, size_t blen)
{
    be32(m, (uint32_t)(8 + blen));
    be32(m + 4, code);
    memcpy(m + 8, body, blen);
    return 8 + blen;
}

static void test_startup_versions(void **state)
{
    uint8_t m[64];
    pgw_startup s;
    size_t n;

    (void)state;
    n = mk_startup(m, PGW_PROTOCOL_3_0, "\0", 1);
    assert_int_equal(startup_of(m, n, &s, NULL), PGW_OK);
    assert_int_equal(s.nparams, 0);
    n = mk_startup(m, 3u << 16 | 2, "user\0u\0\0", 8); /* 3.2 accepted */
    assert_int_equal(startup_of(m, n, &s, NULL), PGW_OK);
    assert_int_equal(s.protocol, 3u << 16 | 2);
    n = mk_startup(m, 3u << 16 | 0xffff, "user\0u\0\0", 8); /* any 3.x minor */
    assert_int_equal(startup_of(m, n, &s, NULL), PGW_OK);
    {
        static const uint32_t bad[] = {2u << 16, 4u << 16, 1234u << 16 | 5681, 0, 1u << 16 | 7};

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            n = mk_startup(m, bad[i], "user\0u\0\0", 8);
            assert_int_equal(startup_of(m, n, &s, NULL), PGW_BAD);
            assert_int_equal(s.fault, PGW_SF_PROTOCOL);
            assert_int_equal(s.protocol, bad[i]);
        }
    }
}

/* The answers of PostgreSQL 15 to refused packets, byte for byte. */
static void test_startup_refusal_messages(void **state)
{
    uint8_t m[64];
    pgw_startup s;
    pgw_buf b;
    char msg[128];
    pgw_error_fields f;
    size_t n;

    (void)state;
    pgw_buf_init(&b);
    n = mk_startup(m, 4u << 16 | 1, "user\0u\0\0", 8);
    assert_int_equal(startup_of(m, n, &s, NULL), PGW_BAD);
    assert_true(pgw_build_startup_refusal(&b, &s, msg, sizeof(msg)));
    assert_string_equal(msg, "unsupported frontend protocol 4.1: server supports 3.0 to 3.0");
    assert_int_equal(b.data[0], 'E');
    assert_int_equal(rd32(b.data + 1), b.len - 1);
    assert_int_equal(error_of(b.data + 5, b.len - 5, &f), PGW_OK);
    assert_string_equal(f.severity, "FATAL");
    assert_string_equal(f.sqlstate, "0A000");
    assert_string_equal(f.message, msg);

    /* 1234.5681 (no such request) and 0.0 get the same protocol-3 answer */
    pgw_buf_reset(&b);
    n = mk_startup(m, 1234u << 16 | 5681, "", 0);
    assert_int_equal(startup_of(m, n, &s, NULL), PGW_BAD);
    assert_true(pgw_build_startup_refusal(&b, &s, msg, sizeof(msg)));
    assert_string_equal(msg, "unsupported frontend protocol 1234.5681: server supports 3.0 to 3.0");
    assert_int_equal(rd32(b.data + 1), b.len - 1);
    pgw_buf_reset(&b);
    n = mk_startup(m, 0, "", 0);
    assert_int_equal(startup_of(m, n, &s, NULL), PGW_BAD);
    assert_true(pgw_build_startup_refusal(&b, &s, msg, sizeof(msg)));
    assert_int_equal(rd32(b.data + 1), b.len - 1);

    /* protocol 2.0: the old format the client can read */
    pgw_buf_reset(&b);
    n = mk_startup(m, 2u << 16, "user\0u\0\0", 8);
    assert_int_equal(startup_of(m, n, &s, NULL), PGW_BAD);
    assert_true(pgw_build_startup_refusal(&b, &s, msg, sizeof(msg)));
    {
        static const char v2[] =
            "EFATAL:  unsupported frontend protocol 2.0: server supports 3.0 to 3.0\n";

        assert_int_equal(b.len, sizeof(v2)); /* with its NUL */
        assert_memory_equal(b.data, v2, sizeof(v2));
    }

    /* a bad layout */
    pgw_buf_reset(&b);
    n = mk_startup(m, PGW_PROTOCOL_3_0, "user\0u\0", 7);
    assert_int_equal(startup_of(m, n, &s, NULL), PGW_BAD);
    assert_int_equal(s.fault, PGW_SF_LAYOUT);
    assert_true(pgw_build_startup_refusal(&b, &s, msg, sizeof(msg)));
    assert_int_equal(error_of(b.data + 5, b.len - 5, &f), PGW_OK);
    assert_string_equal(f.sqlstate, "08P01");
    assert_string_equal(f.message,
                        "invalid startup packet layout: expected terminator as last byte");
    error_of(NULL, 0, NULL);
    pgw_buf_free(&b);
}

static void test_startup_malformed_params(void **state)
{
    static const struct {
        const char *body;
        size_t len;
    } bad[] = {
        {"", 0},                   /* no final terminator at all */
        {"user\0alice\0", 11},     /* missing final terminator */
        {"user\0alice", 10},       /* value without terminator */
        {"user\0", 5},             /* name without its value */
        {"user", 4},               /* name without terminator */
        {"user\0alice\0\0x", 13},  /* bytes after the terminator */
        {"user\0alice\0\0\0", 13}, /* two terminators */
        {"\0\0", 2},               /* terminator not last */
        {"a\0b\0c\0", 6},          /* odd number of strings */
    };
    uint8_t m[64];
    pgw_startup s;
    uint8_t *keep;
    size_t i, n;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = mk_startup(m, PGW_PROTOCOL_3_0, bad[i].body, bad[i].len);
        assert_int_equal(startup_of(m, n, &s, NULL), PGW_BAD);
        assert_int_equal(s.fault, PGW_SF_LAYOUT);
    }
    /* empty value is fine; repeated names: the last wins */
    n = mk_startup(m, PGW_PROTOCOL_3_0, "a\0\0a\0z\0\0", 8);
    assert_int_equal(startup_of(m, n, &s, &keep), PGW_OK);
    assert_int_equal(s.nparams, 2);
    assert_string_equal(pgw_startup_param(&s, "a"), "z");
    free(keep);
}

static void test_startup_truncated_lengths(void **state)
{
    const pgw_param p[] = {{"user", "alice"}, {"database", "appdb"}, {"x", "y"}};
    pgw_buf b;
    pgw_startup s;
    size_t k;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_startup(&b, p, 3));
    /* shrink the declared length: every truncation of the parameter list is BAD */
    for (k = 8; k < b.len; k++) {
        uint8_t *d = dup_exact(b.data, k);

        be32(d, (uint32_t)k);
        assert_int_equal(pgw_parse_startup(d, k, &s), PGW_BAD);
        free(d);
    }
    pgw_buf_free(&b);
}

/* No limit on the number of parameters but the packet's length, as the server. */
static void test_startup_many_params(void **state)
{
    enum { N = 1000 };
    static pgw_param p[N];
    static char names[N][8];
    pgw_buf b;
    pgw_startup s;
    uint8_t *keep;
    int i;

    (void)state;
    for (i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "p%d", i);
        p[i].name = names[i];
        p[i].value = "v";
    }
    pgw_buf_init(&b);
    assert_true(pgw_build_startup(&b, p, N));
    assert_true(b.len <= PGW_MAX_STARTUP_TOTAL);
    assert_int_equal(startup_of(b.data, b.len, &s, &keep), PGW_OK);
    assert_int_equal(s.nparams, N);
    assert_string_equal(pgw_startup_param(&s, "p999"), "v");
    assert_string_equal(pgw_startup_param(&s, "p0"), "v");
    free(keep);
    pgw_buf_free(&b);
}

/* ---------- pgw_buf ---------- */

static void test_buf_growth(void **state)
{
    pgw_buf b;
    size_t cap, i;

    (void)state;
    pgw_buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_false(b.oom);
    for (i = 0; i < 10000; i++)
        assert_true(pgw_build_ready(&b, "ITE"[i % 3]));
    assert_int_equal(b.len, 60000);
    assert_true(b.cap >= b.len);
    assert_int_equal(b.cap & (b.cap - 1), 0); /* doubling from a power of two */
    for (i = 0; i < 10000; i++) {
        assert_int_equal(b.data[i * 6], 'Z');
        assert_int_equal(rd32(b.data + i * 6 + 1), 5);
        assert_int_equal(b.data[i * 6 + 5], "ITE"[i % 3]);
    }
    cap = b.cap;
    pgw_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    assert_non_null(b.data);
    pgw_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    pgw_buf_free(&b); /* twice is harmless */
}

static void test_buf_oom_sticky(void **state)
{
    const uint8_t data[4] = {1, 2, 3, 4};
    const char *v[1] = {"x"};
    pgw_buf b;
    size_t len;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_ready(&b, 'I'));
    len = b.len;
    /* a message that cannot be represented fails, leaves no partial bytes */
    assert_false(pgw_build_auth_sasl_continue(&b, data, (size_t)1 << 31));
    assert_true(b.oom);
    assert_int_equal(b.len, len);
    /* sticky: every builder now fails without touching the buffer */
    assert_false(pgw_build_ready(&b, 'I'));
    assert_false(pgw_build_command_complete(&b, "SELECT 1"));
    assert_false(pgw_build_error(&b, "ERROR", "XX000", "m", NULL, NULL));
    assert_false(pgw_build_data_row(&b, v, 1));
    assert_false(pgw_build_startup(&b, NULL, 0));
    assert_false(pgw_build_ssl_request(&b));
    assert_false(pgw_build_auth_ok(&b));
    assert_int_equal(b.len, len);
    pgw_buf_free(&b);
    assert_false(b.oom);
    assert_true(pgw_build_ready(&b, 'I'));

    /* too many columns for the int16 count */
    pgw_buf_reset(&b);
    {
        pgw_column *cols = calloc(40000, sizeof(*cols));

        assert_non_null(cols);
        assert_false(pgw_build_row_description(&b, cols, 40000));
        assert_true(b.oom);
        assert_int_equal(b.len, 0);
        free(cols);
    }
    pgw_buf_free(&b);
}

/* ---------- builders: exact bytes ---------- */

static void test_exact_ready(void **state)
{
    const uint8_t want[] = {'Z', 0, 0, 0, 5, 'T'};
    pgw_buf b;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_ready(&b, 'T'));
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    pgw_buf_free(&b);
}

static void test_exact_command_complete(void **state)
{
    const uint8_t want[] = {'C', 0, 0, 0, 13, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '3', 0};
    pgw_buf b;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_command_complete(&b, "SELECT 3"));
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    pgw_buf_free(&b);
}

static void test_exact_error(void **state)
{
    /* clang-format off */
    static const uint8_t want[] = {
        'E', 0, 0, 0, 42,
        'S', 'E', 'R', 'R', 'O', 'R', 0,
        'V', 'E', 'R', 'R', 'O', 'R', 0,
        'C', '4', '2', '6', '0', '1', 0,
        'M', 'b', 'a', 'd', 0,
        'D', 'd', 'e', 't', 0,
        'H', 'h', 'i', 'n', 't', 0,
        0,
    };
    static const uint8_t want_min[] = {
        'N', 0, 0, 0, 32,
        'S', 'N', 'O', 'T', 'I', 'C', 'E', 0,
        'V', 'N', 'O', 'T', 'I', 'C', 'E', 0,
        'C', '0', '0', '0', '0', '0', 0,
        'M', 'h', 'i', 0,
        0,
    };
    /* clang-format on */
    pgw_buf b;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_error(&b, "ERROR", "42601", "bad", "det", "hint"));
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    pgw_buf_reset(&b);
    assert_true(pgw_build_notice(&b, "NOTICE", "00000", "hi", NULL, NULL));
    assert_int_equal(b.len, sizeof(want_min));
    assert_memory_equal(b.data, want_min, sizeof(want_min));
    pgw_buf_free(&b);
}

static void test_exact_small_messages(void **state)
{
    const uint8_t empty[] = {'I', 0, 0, 0, 4};
    const uint8_t ok[] = {'R', 0, 0, 0, 8, 0, 0, 0, 0};
    const uint8_t key[] = {'K', 0, 0, 0, 12, 0, 0, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef};
    const uint8_t ps[] = {'S', 0, 0, 0, 8, 'a', 0, 'b', 0};
    pgw_buf b;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_empty_query(&b));
    assert_true(pgw_build_auth_ok(&b));
    assert_true(pgw_build_backend_key(&b, 12345, 0xdeadbeefu));
    assert_true(pgw_build_parameter_status(&b, "a", "b"));
    assert_int_equal(b.len, sizeof(empty) + sizeof(ok) + sizeof(key) + sizeof(ps));
    assert_memory_equal(b.data, empty, sizeof(empty));
    assert_memory_equal(b.data + 5, ok, sizeof(ok));
    assert_memory_equal(b.data + 14, key, sizeof(key));
    assert_memory_equal(b.data + 27, ps, sizeof(ps));
    pgw_buf_free(&b);
}

/* ---------- builders: round trips through the readers ---------- */

/* body_at — check the header at b->data+off and return a heap copy of its body. */
static uint8_t *body_at(const pgw_buf *b, size_t off, char type, size_t *n)
{
    pgw_header h;

    assert_int_equal(hdr_of(b->data + off, b->len - off, PGW_DEFAULT_MAX_PACKET, &h), PGW_OK);
    assert_int_equal(h.type, type);
    assert_true(off + 1 + h.len <= b->len);
    *n = h.len - 4;
    return dup_exact(b->data + off + 5, *n);
}

static void test_roundtrip_error(void **state)
{
    pgw_buf b;
    pgw_error_fields f;
    uint8_t *body;
    size_t n;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_error(&b, "FATAL", "08P01", "invalid length", "got -1", NULL));
    body = body_at(&b, 0, 'E', &n);
    assert_int_equal(5 + n, b.len);
    assert_int_equal(pgw_read_error(body, n, &f), PGW_OK);
    assert_string_equal(f.severity, "FATAL");
    assert_string_equal(f.sqlstate, "08P01");
    assert_string_equal(f.message, "invalid length");
    assert_string_equal(f.detail, "got -1");
    assert_null(f.hint);
    free(body);
    pgw_buf_reset(&b);
    assert_true(pgw_build_notice(&b, "WARNING", "01000", "careful", NULL, "do X"));
    body = body_at(&b, 0, 'N', &n);
    assert_int_equal(pgw_read_error(body, n, &f), PGW_OK);
    assert_string_equal(f.severity, "WARNING");
    assert_null(f.detail);
    assert_string_equal(f.hint, "do X");
    free(body);
    pgw_buf_free(&b);
}

static void test_roundtrip_ready_key_auth(void **state)
{
    const char *st = "ITE";
    pgw_buf b;
    uint8_t *body;
    size_t n, off = 0;
    uint32_t pid, key, code;
    char s;
    int i;

    (void)state;
    pgw_buf_init(&b);
    for (i = 0; i < 3; i++)
        assert_true(pgw_build_ready(&b, st[i]));
    assert_true(pgw_build_backend_key(&b, 99, 0xffffffffu));
    assert_true(pgw_build_auth_ok(&b));
    for (i = 0; i < 3; i++, off += 6) {
        body = body_at(&b, off, 'Z', &n);
        assert_int_equal(pgw_read_ready(body, n, &s), PGW_OK);
        assert_int_equal(s, st[i]);
        free(body);
    }
    body = body_at(&b, off, 'K', &n);
    assert_int_equal(pgw_read_backend_key(body, n, &pid, &key), PGW_OK);
    assert_int_equal(pid, 99);
    assert_int_equal(key, 0xffffffffu);
    free(body);
    off += 13;
    body = body_at(&b, off, 'R', &n);
    assert_int_equal(pgw_read_auth_code(body, n, &code), PGW_OK);
    assert_int_equal(code, 0);
    free(body);
    assert_int_equal(off + 9, b.len);
    pgw_buf_free(&b);
}

static void test_roundtrip_sasl(void **state)
{
    const char *const mech[] = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"};
    const uint8_t data[] = {'r', '=', 'x', 0, 0xff, ','};
    const char *names[4];
    pgw_buf b;
    uint8_t *body;
    size_t n;
    uint32_t code;
    int count;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_auth_sasl(&b, mech, 2));
    body = body_at(&b, 0, 'R', &n);
    assert_int_equal(pgw_read_auth_code(body, n, &code), PGW_OK);
    assert_int_equal(code, 10);
    assert_int_equal(pgw_read_sasl_mechanisms(body, n, names, 4, &count), PGW_OK);
    assert_int_equal(count, 2);
    assert_string_equal(names[0], "SCRAM-SHA-256-PLUS");
    assert_string_equal(names[1], "SCRAM-SHA-256");
    assert_int_equal(pgw_read_sasl_mechanisms(body, n, names, 1, &count), PGW_BAD);
    free(body);

    pgw_buf_reset(&b);
    assert_true(pgw_build_auth_sasl(&b, NULL, 0));
    body = body_at(&b, 0, 'R', &n);
    assert_int_equal(pgw_read_sasl_mechanisms(body, n, NULL, 0, &count), PGW_OK);
    assert_int_equal(count, 0);
    free(body);

    pgw_buf_reset(&b);
    assert_true(pgw_build_auth_sasl_continue(&b, data, sizeof(data)));
    assert_true(pgw_build_auth_sasl_final(&b, data, 0));
    body = body_at(&b, 0, 'R', &n);
    assert_int_equal(n, 4 + sizeof(data));
    assert_int_equal(pgw_read_auth_code(body, n, &code), PGW_OK);
    assert_int_equal(code, 11);
    assert_memory_equal(body + 4, data, sizeof(data));
    free(body);
    body = body_at(&b, 5 + 4 + sizeof(data), 'R', &n);
    assert_int_equal(n, 4);
    assert_int_equal(pgw_read_auth_code(body, n, &code), PGW_OK);
    assert_int_equal(code, 12);
    free(body);
    pgw_buf_free(&b);
}

static void test_roundtrip_param_status_and_tag(void **state)
{
    pgw_buf b;
    uint8_t *body;
    size_t n;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_parameter_status(&b, "server_version", "16.4"));
    body = body_at(&b, 0, 'S', &n);
    assert_int_equal(n, 15 + 5);
    assert_string_equal((char *)body, "server_version");
    assert_string_equal((char *)body + 15, "16.4");
    free(body);
    pgw_buf_reset(&b);
    assert_true(pgw_build_command_complete(&b, ""));
    body = body_at(&b, 0, 'C', &n);
    assert_int_equal(n, 1);
    assert_int_equal(body[0], 0);
    free(body);
    pgw_buf_free(&b);
}

static void test_roundtrip_row_description(void **state)
{
    const pgw_column cols[] = {
        {"id", PGW_OID_INT8},    {"n", PGW_OID_INT4},   {"ok", PGW_OID_BOOL},
        {"name", PGW_OID_TEXT},  {"x", PGW_OID_FLOAT8}, {"at", PGW_OID_TIMESTAMPTZ},
        {"j", 3802 /* jsonb */},
    };
    const int16_t want_len[] = {8, 4, 1, -1, 8, 8, -1};
    pgw_buf b;
    uint8_t *body;
    size_t n, pos;
    int i;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_row_description(&b, cols, 7));
    body = body_at(&b, 0, 'T', &n);
    assert_int_equal(rd16(body), 7);
    pos = 2;
    for (i = 0; i < 7; i++) {
        size_t l = strlen(cols[i].name) + 1;

        assert_true(pos + l + 18 <= n);
        assert_string_equal((char *)body + pos, cols[i].name);
        pos += l;
        assert_int_equal(rd32(body + pos), 0);                         /* table */
        assert_int_equal(rd16(body + pos + 4), 0);                     /* attnum */
        assert_int_equal(rd32(body + pos + 6), cols[i].type_oid);      /* type */
        assert_int_equal((int16_t)rd16(body + pos + 10), want_len[i]); /* typlen */
        assert_int_equal((int32_t)rd32(body + pos + 12), -1);          /* typmod */
        assert_int_equal(rd16(body + pos + 16), 0);                    /* format */
        pos += 18;
    }
    assert_int_equal(pos, n);
    free(body);
    pgw_buf_reset(&b);
    assert_true(pgw_build_row_description(&b, NULL, 0));
    assert_int_equal(b.len, 7);
    assert_int_equal(rd16(b.data + 5), 0);
    pgw_buf_free(&b);
}

static void test_roundtrip_data_row(void **state)
{
    const char *const vals[] = {"1", NULL, "", "héllo"};
    pgw_buf b;
    uint8_t *body;
    size_t n, pos;
    int i;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_data_row(&b, vals, 4));
    body = body_at(&b, 0, 'D', &n);
    assert_int_equal(rd16(body), 4);
    pos = 2;
    for (i = 0; i < 4; i++) {
        int32_t l = (int32_t)rd32(body + pos);

        pos += 4;
        if (vals[i] == NULL) {
            assert_int_equal(l, -1);
            continue;
        }
        assert_int_equal(l, strlen(vals[i]));
        assert_memory_equal(body + pos, vals[i], (size_t)l);
        pos += (size_t)l;
    }
    assert_int_equal(pos, n);
    free(body);
    pgw_buf_free(&b);
}

static void test_builder_stream_frames(void **state)
{
    const pgw_column c = {"v", PGW_OID_TEXT};
    const char *const v[] = {"x"};
    rec got[MAX_RECS];
    pgw_status err;
    pgw_buf b;
    int n;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_auth_ok(&b));
    assert_true(pgw_build_parameter_status(&b, "a", "b"));
    assert_true(pgw_build_backend_key(&b, 1, 2));
    assert_true(pgw_build_ready(&b, 'I'));
    assert_true(pgw_build_row_description(&b, &c, 1));
    assert_true(pgw_build_data_row(&b, v, 1));
    assert_true(pgw_build_command_complete(&b, "SELECT 1"));
    assert_true(pgw_build_empty_query(&b));
    n = feed_chunks(b.data, b.len, NULL, 0, PGW_DEFAULT_MAX_PACKET, got, &err);
    assert_int_equal(n, 16);
    assert_int_equal(got[0].type, 'R');
    assert_int_equal(got[8].type, 'T');
    assert_int_equal(got[14].type, 'I');
    assert_int_equal(got[15].ev, PGW_FRAME_END);
    pgw_buf_free(&b);
}

/* ---------- readers: malformed input ---------- */

static void test_read_ready_bad(void **state)
{
    const uint8_t ok[] = {'E'}, x[] = {'X'}, two[] = {'I', 'I'};
    uint8_t *d;
    char s = 0;

    (void)state;
    d = dup_exact(ok, 1);
    assert_int_equal(pgw_read_ready(d, 1, &s), PGW_OK);
    assert_int_equal(s, 'E');
    assert_int_equal(pgw_read_ready(d, 0, &s), PGW_BAD);
    free(d);
    d = dup_exact(x, 1);
    assert_int_equal(pgw_read_ready(d, 1, &s), PGW_BAD);
    free(d);
    d = dup_exact(two, 2);
    assert_int_equal(pgw_read_ready(d, 2, &s), PGW_BAD);
    free(d);
}

static void test_read_backend_key_bad(void **state)
{
    const uint8_t k[9] = {0, 0, 0, 1, 0, 0, 0, 2, 3};
    uint32_t pid, key;
    size_t n;

    (void)state;
    for (n = 0; n <= sizeof(k); n++) {
        uint8_t *d = dup_exact(k, n);

        assert_int_equal(pgw_read_backend_key(d, n, &pid, &key), n == 8 ? PGW_OK : PGW_BAD);
        free(d);
    }
}

static void test_read_error_fields(void **state)
{
    static const uint8_t vs[] = "VERROR\0SERREUR\0C23505\0Mdup\0";
    static const uint8_t sv[] = "SERREUR\0VERROR\0Mdup\0";
    static const uint8_t s_only[] = "SFEHLER\0P12\0W where\0";
    static const uint8_t empty[] = "";
    pgw_error_fields f;

    (void)state;
    /* sizeof includes the literal's own NUL: that is the final terminator */
    assert_int_equal(error_of(vs, sizeof(vs), &f), PGW_OK);
    assert_string_equal(f.severity, "ERROR");
    assert_string_equal(f.sqlstate, "23505");
    assert_string_equal(f.message, "dup");
    assert_int_equal(error_of(sv, sizeof(sv), &f), PGW_OK);
    assert_string_equal(f.severity, "ERROR");
    assert_null(f.sqlstate);
    assert_int_equal(error_of(s_only, sizeof(s_only), &f), PGW_OK);
    assert_string_equal(f.severity, "FEHLER");
    assert_null(f.message);
    assert_int_equal(error_of(empty, 1, &f), PGW_OK);
    assert_null(f.severity);
    error_of(NULL, 0, NULL);
}

static void test_read_error_malformed(void **state)
{
    static const uint8_t good[] = "SERROR\0VERROR\0C42P01\0Mno table\0Dd\0Hh\0";
    static const uint8_t trailing[] = "Mx\0\0junk";
    static const uint8_t two_final[] = "Mx\0\0";
    pgw_error_fields f;
    size_t k;

    (void)state;
    assert_int_equal(error_of(good, sizeof(good), &f), PGW_OK);
    assert_string_equal(f.detail, "d");
    assert_string_equal(f.hint, "h");
    /* every strict prefix: a field without terminator or no final terminator */
    for (k = 0; k < sizeof(good); k++) {
        assert_int_equal(error_of(good, k, &f), PGW_BAD);
        assert_null(f.severity);
        assert_null(f.message);
    }
    assert_int_equal(error_of(trailing, sizeof(trailing), &f), PGW_BAD);
    assert_int_equal(error_of(two_final, sizeof(two_final), &f), PGW_BAD);
    assert_int_equal(error_of("M", 1, &f), PGW_BAD);
    error_of(NULL, 0, NULL);
}

static void test_read_auth_code_bad(void **state)
{
    uint8_t m[12] = {0};
    uint8_t *d;
    uint32_t code;
    size_t n;

    (void)state;
    for (n = 0; n < 4; n++)
        assert_int_equal(pgw_read_auth_code(m, n, &code), PGW_BAD);
    assert_int_equal(pgw_read_auth_code(m, 4, &code), PGW_OK);
    assert_int_equal(pgw_read_auth_code(m, 8, &code), PGW_BAD); /* Ok has no data */
    be32(m, 3);
    assert_int_equal(pgw_read_auth_code(m, 4, &code), PGW_OK);
    assert_int_equal(code, 3);
    be32(m, 5);
    assert_int_equal(pgw_read_auth_code(m, 4, &code), PGW_BAD); /* MD5 without salt */
    d = dup_exact(m, 8);
    assert_int_equal(pgw_read_auth_code(d, 8, &code), PGW_OK);
    assert_int_equal(code, 5);
    free(d);
    be32(m, 12);
    d = dup_exact(m, 12);
    assert_int_equal(pgw_read_auth_code(d, 12, &code), PGW_OK);
    assert_int_equal(code, 12);
    free(d);
}

static void test_read_sasl_malformed(void **state)
{
    static const uint8_t good[] = "\0\0\0\x0aSCRAM-SHA-256\0";
    static const uint8_t not10[] = "\0\0\0\x0bSCRAM-SHA-256\0";
    static const uint8_t trailing[] = "\0\0\0\x0a\0x";
    const char *names[2];
    int count = -1;
    size_t k;

    (void)state;
    assert_int_equal(sasl_of(good, sizeof(good), names, 2, &count), PGW_OK);
    assert_int_equal(count, 1);
    for (k = 0; k < sizeof(good); k++)
        assert_int_equal(sasl_of(good, k, names, 2, &count), PGW_BAD);
    assert_int_equal(sasl_of(good, sizeof(good), names, 0, &count), PGW_BAD);
    assert_int_equal(sasl_of(not10, sizeof(not10), names, 2, &count), PGW_BAD);
    assert_int_equal(sasl_of(trailing, sizeof(trailing), names, 2, &count), PGW_BAD);
    assert_int_equal(count, 0);
}

/* ---------- robustness on random and mutated input ---------- */

static void run_all_readers(const uint8_t *src, size_t n)
{
    uint8_t *d = dup_exact(src, n);
    pgw_startup s;
    pgw_header h;
    pgw_error_fields f;
    pgw_framer fr;
    const char *names[4];
    uint32_t a, b;
    char c;
    int count;
    size_t off = 0;

    if (pgw_parse_startup(d, n, &s) == PGW_OK) {
        size_t pos = 0;
        pgw_param q;

        assert_true(s.len <= n && s.len >= 8 && s.len <= PGW_MAX_STARTUP_TOTAL);
        for (count = 0; pgw_startup_next(&s, &pos, &q); count++)
            assert_true((const uint8_t *)q.value < d + s.len);
        assert_int_equal(count, s.kind == PGW_STARTUP_MESSAGE ? s.nparams : 0);
        (void)pgw_startup_param(&s, "user");
    }
    if (pgw_read_header(d, n, 64, &h) == PGW_OK)
        assert_true(h.len >= 4 && h.len <= 64);
    if (pgw_read_error(d, n, &f) == PGW_OK && f.message)
        assert_true(strlen(f.message) < n);
    (void)pgw_read_ready(d, n, &c);
    (void)pgw_read_backend_key(d, n, &a, &b);
    (void)pgw_read_auth_code(d, n, &a);
    if (pgw_read_sasl_mechanisms(d, n, names, 4, &count) == PGW_OK)
        assert_true(count >= 0 && count <= 4);
    pgw_framer_init(&fr, 64);
    while (off < n) {
        pgw_frame_event ev;
        pgw_status err;
        size_t chunk = 1 + rnd() % (n - off);
        long r = pgw_framer_feed(&fr, d + off, chunk, &ev, &err);

        if (r < 0) {
            assert_true(err == PGW_BAD || err == PGW_TOO_LONG);
            break;
        }
        off += (size_t)r;
    }
    free(d);
}

static void test_random_robustness(void **state)
{
    const pgw_param p[] = {{"user", "alice"}, {"database", "db"}};
    uint8_t m[96];
    pgw_buf b;
    int iter;

    (void)state;
    pgw_buf_init(&b);
    assert_true(pgw_build_startup(&b, p, 2));
    assert_true(b.len <= sizeof(m));
    for (iter = 0; iter < 50000; iter++) {
        size_t n = rnd() % sizeof(m), i;

        if (iter % 2) {
            for (i = 0; i < n; i++)
                m[i] = (uint8_t)rnd();
        } else {
            /* mutate a valid startup packet: flip a few bytes, sometimes zeroes */
            n = b.len;
            memcpy(m, b.data, n);
            for (i = 0; i < 1 + rnd() % 3; i++)
                m[rnd() % n] = (rnd() & 1) ? 0 : (uint8_t)rnd();
            n = rnd() % (n + 1);
        }
        run_all_readers(m, n);
    }
    pgw_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_ok_and_incomplete),
        cmocka_unit_test(test_header_bad_lengths),
        cmocka_unit_test(test_framer_whole_stream),
        cmocka_unit_test(test_framer_every_split),
        cmocka_unit_test(test_framer_one_byte_at_a_time),
        cmocka_unit_test(test_framer_empty_body_end_consumes_zero),
        cmocka_unit_test(test_framer_body_progress),
        cmocka_unit_test(test_framer_errors_sticky),
        cmocka_unit_test(test_framer_large_body),
        cmocka_unit_test(test_startup_roundtrip),
        cmocka_unit_test(test_startup_incomplete_and_trailing),
        cmocka_unit_test(test_startup_lengths),
        cmocka_unit_test(test_startup_max_size),
        cmocka_unit_test(test_startup_requests),
        cmocka_unit_test(test_startup_exact_request_bytes),
        cmocka_unit_test(test_startup_versions),
        cmocka_unit_test(test_startup_refusal_messages),
        cmocka_unit_test(test_startup_terminate_first),
        cmocka_unit_test(test_startup_malformed_params),
        cmocka_unit_test(test_startup_truncated_lengths),
        cmocka_unit_test(test_startup_many_params),
        cmocka_unit_test(test_buf_growth),
        cmocka_unit_test(test_buf_oom_sticky),
        cmocka_unit_test(test_exact_ready),
        cmocka_unit_test(test_exact_command_complete),
        cmocka_unit_test(test_exact_error),
        cmocka_unit_test(test_exact_small_messages),
        cmocka_unit_test(test_roundtrip_error),
        cmocka_unit_test(test_roundtrip_ready_key_auth),
        cmocka_unit_test(test_roundtrip_sasl),
        cmocka_unit_test(test_roundtrip_param_status_and_tag),
        cmocka_unit_test(test_roundtrip_row_description),
        cmocka_unit_test(test_roundtrip_data_row),
        cmocka_unit_test(test_builder_stream_frames),
        cmocka_unit_test(test_read_ready_bad),
        cmocka_unit_test(test_read_backend_key_bad),
        cmocka_unit_test(test_read_error_fields),
        cmocka_unit_test(test_read_error_malformed),
        cmocka_unit_test(test_read_auth_code_bad),
        cmocka_unit_test(test_read_sasl_malformed),
        cmocka_unit_test(test_random_robustness),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
