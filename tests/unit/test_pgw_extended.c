/*
 * test_pgw_extended.c — the readers of pgw_extended.h and the builders the re-prepare
 * sends: round trips through the builders, and malformed Parse/Close/Bind bodies answered
 * with PGW_BAD (never a read past the body: ASan watches); the first keyword of a Query
 * after blanks and comments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pgw_extended.h"

/* The body of the one message in b, checked to be of type t. */
static const uint8_t *body_of(const pgw_buf *b, char t, size_t *n)
{
    assert_true(b->len >= 5);
    assert_int_equal(b->data[0], t);
    *n = b->len - 5;
    return b->data + 5;
}

/* A heap copy of exactly n bytes, so ASan catches any read past it. */
static uint8_t *exact(const void *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    memcpy(c, p, n);
    return c;
}

static void test_parse_round_trip(void **state)
{
    (void)state;
    pgw_buf b;
    pgw_buf_init(&b);
    uint32_t oids[] = {23, 0, 1043};
    assert_true(pgw_build_parse(&b, "s1", "SELECT $1, $2, $3", oids, 3));
    size_t n;
    const uint8_t *built = body_of(&b, 'P', &n);
    uint8_t *body = exact(built, n);
    pgw_parse p;
    assert_int_equal(pgw_read_parse(body, n, &p), PGW_OK);
    assert_string_equal(p.name, "s1");
    assert_string_equal(p.query, "SELECT $1, $2, $3");
    assert_int_equal(p.noids, 3);
    assert_int_equal(pgw_parse_oid(&p, 0), 23);
    assert_int_equal(pgw_parse_oid(&p, 2), 1043);
    /* every truncation is refused */
    for (size_t k = 0; k < n; k++) {
        uint8_t *t = exact(body, k);
        assert_int_equal(pgw_read_parse(t, k, &p), PGW_BAD);
        free(t);
    }
    free(body);
    pgw_buf_free(&b);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    pgw_parse p;
    /* count says 2 OIDs, 1 present; negative count; trailing bytes; no terminator */
    static const uint8_t few[] = {'s', 0, 'q', 0, 0, 2, 0, 0, 0, 23};
    static const uint8_t neg[] = {'s', 0, 'q', 0, 0xff, 0xff};
    static const uint8_t extra[] = {'s', 0, 'q', 0, 0, 0, 1};
    static const uint8_t unterminated[] = {'s', 0, 'q', 'q'};
    const struct { const uint8_t *b; size_t n; } cases[] = {
        {few, sizeof few}, {neg, sizeof neg}, {extra, sizeof extra},
        {unterminated, sizeof unterminated}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *t = exact(cases[i].b, cases[i].n);
        assert_int_equal(pgw_read_parse(t, cases[i].n, &p), PGW_BAD);
        free(t);
    }
}

static void test_close(void **state)
{
    (void)state;
    pgw_buf b;
    pgw_buf_init(&b);
    assert_true(pgw_build_close(&b, 'S', "name"));
    size_t n;
    const uint8_t *body = body_of(&b, 'C', &n);
    char k;
    const char *name;
    assert_int_equal(pgw_read_close(body, n, &k, &name), PGW_OK);
    assert_int_equal(k, 'S');
    assert_string_equal(name, "name");
    static const uint8_t badkind[] = {'X', 'a', 0}, noterm[] = {'S', 'a'}, after[] = {'P', 0, 1};
    assert_int_equal(pgw_read_close(badkind, sizeof badkind, &k, &name), PGW_BAD);
    assert_int_equal(pgw_read_close(noterm, sizeof noterm, &k, &name), PGW_BAD);
    assert_int_equal(pgw_read_close(after, sizeof after, &k, &name), PGW_BAD);
    assert_int_equal(pgw_read_close(body, 0, &k, &name), PGW_BAD);
    pgw_buf_free(&b);
    pgw_buf_init(&b);
    assert_true(pgw_build_sync(&b));
    assert_int_equal(b.len, 5);
    assert_int_equal(b.data[0], 'S');
    pgw_buf_free(&b);
}

static void test_bind(void **state)
{
    (void)state;
    /* portal "", stmt "s", 1 param format (text), 2 params (NULL, "12"), 2 result
     * formats (text, binary) */
    static const uint8_t ok[] = {0, 's', 0, 0, 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff,
                                 0, 0, 0, 2, '1', '2', 0, 2, 0, 0, 0, 1};
    pgw_bind b;
    uint8_t *t = exact(ok, sizeof ok);
    assert_int_equal(pgw_read_bind(t, sizeof ok, &b), PGW_OK);
    assert_string_equal(b.stmt, "s");
    assert_int_equal(b.nresult_formats, 2);
    assert_true(b.binary_results);
    for (size_t k = 0; k < sizeof ok; k++) {
        uint8_t *tr = exact(ok, k);
        assert_int_equal(pgw_read_bind(tr, k, &b), PGW_BAD);
        free(tr);
    }
    const char *portal, *stmt;
    assert_int_equal(pgw_read_bind_stmt(t, 2, false, &portal, &stmt), PGW_INCOMPLETE);
    assert_int_equal(pgw_read_bind_stmt(t, 2, true, &portal, &stmt), PGW_BAD);
    assert_int_equal(pgw_read_bind_stmt(t, 3, false, &portal, &stmt), PGW_OK);
    assert_string_equal(stmt, "s");
    free(t);
    /* a format code 2, a parameter length -2 */
    static const uint8_t code2[] = {0, 0, 0, 1, 0, 2, 0, 0, 0, 0};
    static const uint8_t len2[] = {0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe, 0, 0};
    assert_int_equal(pgw_read_bind(code2, sizeof code2, &b), PGW_BAD);
    assert_int_equal(pgw_read_bind(len2, sizeof len2, &b), PGW_BAD);
}

static void kw_is(const char *sql, bool whole, pgw_status want, const char *kw_want)
{
    char kw[16];
    pgw_status rc = pgw_query_keyword((const uint8_t *)sql, strlen(sql) + (whole ? 1 : 0), whole,
                                      kw, sizeof kw);
    assert_int_equal(rc, want);
    if (want == PGW_OK)
        assert_string_equal(kw, kw_want);
}

static void test_keyword(void **state)
{
    (void)state;
    kw_is("PREPARE q AS SELECT 1", true, PGW_OK, "prepare");
    kw_is("  \n\t-- c\n /* a /* nested */ b */ Deallocate ALL", true, PGW_OK, "deallocate");
    kw_is("discard all;", true, PGW_OK, "discard");
    kw_is("(SELECT 1)", true, PGW_OK, "");
    kw_is("", true, PGW_OK, "");
    kw_is("/* never closed", true, PGW_OK, "");
    kw_is("  /* open", false, PGW_INCOMPLETE, "");
    kw_is("PREP", false, PGW_INCOMPLETE, "");
    kw_is(" -", false, PGW_INCOMPLETE, "");
    kw_is("SELECT 1", false, PGW_OK, "select");
}

static void test_query_builder(void **state)
{
    (void)state;
    pgw_buf b;
    pgw_buf_init(&b);
    assert_true(pgw_build_query(&b, "SELECT 1"));
    size_t n;
    const uint8_t *body = body_of(&b, 'Q', &n);
    assert_int_equal(n, 9);
    assert_memory_equal(body, "SELECT 1", 9);
    pgw_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_round_trip), cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_close),            cmocka_unit_test(test_bind),
        cmocka_unit_test(test_keyword),          cmocka_unit_test(test_query_builder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
