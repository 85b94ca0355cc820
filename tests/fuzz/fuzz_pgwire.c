/*
 * fuzz_pgwire.c — libFuzzer target for protocol/pgwire.c.
 *
 * Runs every reader on the input (copied to an exactly-sized heap buffer so that
 * AddressSanitizer sees any read past the end), walks it with the incremental framer
 * in chunk sizes taken from the input itself, checks the framer agrees with
 * pgw_read_header, and re-parses a StartupMessage rebuilt from any parsed one.
 *
 *   cmake -S . -B build/fuzz -DCMAKE_C_COMPILER=clang -DPGC_FUZZ=ON
 *   cmake --build build/fuzz --target fuzz_pgwire && ./build/fuzz/tests/fuzz/fuzz_pgwire
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgwire.h"

#define FUZZ_MAX_LEN 4096u /* small limit so that TOO_LONG paths are reached */

/* check — abort (a crash libFuzzer reports) when an invariant does not hold. */
#define check(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* fuzz_startup — parse, and for a StartupMessage rebuild it and parse it again. */
static void fuzz_startup(const uint8_t *d, size_t n)
{
    static pgw_param params[PGW_MAX_STARTUP_TOTAL / 4], params2[PGW_MAX_STARTUP_TOTAL / 4];
    pgw_startup s, s2;
    pgw_buf b;
    size_t pos = 0;
    int i, k = 0;

    if (pgw_parse_startup(d, n, &s) != PGW_OK)
        return;
    check(s.len >= 8 && s.len <= PGW_MAX_STARTUP_TOTAL && s.len <= n);
    if (s.kind != PGW_STARTUP_MESSAGE)
        return;
    while (pgw_startup_next(&s, &pos, &params[k]))
        k++;
    check(k == s.nparams);
    (void)pgw_startup_param(&s, "user");
    pgw_buf_init(&b);
    if (pgw_build_startup(&b, params, k) && (s.protocol & 0xffff) == 0) {
        check(b.len == s.len);
        check(pgw_parse_startup(b.data, b.len, &s2) == PGW_OK);
        check(s2.nparams == s.nparams);
        pos = 0;
        for (i = 0; pgw_startup_next(&s2, &pos, &params2[i]); i++) {
            check(strcmp(params2[i].name, params[i].name) == 0);
            check(strcmp(params2[i].value, params[i].value) == 0);
        }
        check(i == k);
    }
    pgw_buf_free(&b);
}

/* fuzz_framer — walk the input with the framer; chunk sizes come from the input. */
static void fuzz_framer(const uint8_t *d, size_t n)
{
    pgw_framer f;
    size_t off = 0, msg_start = 0, step = 0;
    int spins = 0;

    pgw_framer_init(&f, FUZZ_MAX_LEN);
    while (off < n || (f.hdr_have == PGW_HEADER_LEN && f.body_left == 0)) {
        pgw_frame_event ev;
        pgw_status err = PGW_OK, hs;
        pgw_header h;
        size_t chunk = 1 + (n ? d[step++ % n] % 97 : 0);
        long r;

        if (chunk > n - off)
            chunk = n - off;
        r = pgw_framer_feed(&f, d + off, chunk, &ev, &err);
        check(++spins < 1000000);
        if (r < 0) {
            check(ev == PGW_FRAME_ERROR && (err == PGW_BAD || err == PGW_TOO_LONG));
            /* the framer and the one-shot reader agree on the failing header */
            check(pgw_read_header(d + msg_start, n - msg_start, FUZZ_MAX_LEN, &h) == err);
            return;
        }
        check((size_t)r <= chunk);
        off += (size_t)r;
        if (ev == PGW_FRAME_HEADER) {
            hs = pgw_read_header(d + msg_start, n - msg_start, FUZZ_MAX_LEN, &h);
            check(hs == PGW_OK && h.type == f.cur.type && h.len == f.cur.len);
            check(off == msg_start + PGW_HEADER_LEN);
        } else if (ev == PGW_FRAME_END) {
            check(off == msg_start + 1 + f.cur.len);
            msg_start = off;
        }
    }
}

/* fuzz_readers — every backend-message reader on the whole input. */
static void fuzz_readers(const uint8_t *d, size_t n)
{
    pgw_error_fields e;
    const char *names[8];
    uint32_t a, b;
    char c;
    int count;

    if (pgw_read_error(d, n, &e) == PGW_OK) {
        check(n > 0 && d[n - 1] == 0);
        if (e.message)
            check((const uint8_t *)e.message >= d && (const uint8_t *)e.message < d + n);
    }
    if (pgw_read_ready(d, n, &c) == PGW_OK)
        check(c == 'I' || c == 'T' || c == 'E');
    (void)pgw_read_backend_key(d, n, &a, &b);
    (void)pgw_read_auth_code(d, n, &a);
    if (pgw_read_sasl_mechanisms(d, n, names, 8, &count) == PGW_OK)
        check(count >= 0 && count <= 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *d = malloc(size ? size : 1);

    if (d == NULL)
        return 0;
    if (size)
        memcpy(d, data, size);
    fuzz_startup(d, size);
    fuzz_framer(d, size);
    fuzz_readers(d, size);
    /* also as a message body after a 5-byte header, the way the proxy calls them */
    if (size > PGW_HEADER_LEN)
        fuzz_readers(d + PGW_HEADER_LEN, size - PGW_HEADER_LEN);
    free(d);
    return 0;
}
