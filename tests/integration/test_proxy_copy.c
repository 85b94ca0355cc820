/*
 * test_proxy_copy.c — bulk data through the proxy arrives intact: COPY FROM STDIN of
 * 100 MB sent in chunks with PQputCopyData, COPY TO STDOUT of the same read with
 * PQgetCopyData, both checked by row count and an MD5 of the exact COPY text compared
 * with PostgreSQL's md5() of the stored rows; and a 100 MB bytea value inserted as a
 * binary parameter and read back in binary, byte for byte equal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

#define DB "pgc_it_copy"
#define NROWS 100000 /* ~1030 bytes a line: ~103 MB of COPY text */
#define REPEAT 32    /* payload = repeat(md5(id::text), 32): 1024 characters */
#define BLOB_SIZE (100 * 1024 * 1024)

static h_proxy px;
static char sent_md5[33]; /* MD5 of the COPY text the client sent */
static long long sent_bytes;

static int setup(void **state)
{
    (void)state;
    h_recreate_db(DB);
    h_proxy_start(&px, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(h_proxy_stop(&px), 0);
    h_drop_db(DB);
    return 0;
}

static void md5_of(const char *s, char out[33])
{
    h_md5 m;
    h_md5_init(&m);
    h_md5_update(&m, s, strlen(s));
    h_md5_hex(&m, out);
}

static void test_copy_in_100mb(void **state)
{
    (void)state;
    PGconn *c = h_connect(h_conninfo_proxy_db(&px, DB, NULL));
    h_exec_ok(c, "CREATE TABLE copy_t (id int NOT NULL, payload text NOT NULL)");
    PGresult *r = PQexec(c, "COPY copy_t (id, payload) FROM STDIN");
    assert_int_equal(PQresultStatus(r), PGRES_COPY_IN);
    PQclear(r);

    enum { CHUNK = 256 * 1024 };
    char *chunk = malloc(CHUNK);
    assert_non_null(chunk);
    size_t used = 0;
    h_md5 all;
    h_md5_init(&all);
    sent_bytes = 0;
    for (int id = 1; id <= NROWS; id++) {
        char idtxt[16], hex[33], line[1100];
        snprintf(idtxt, sizeof idtxt, "%d", id);
        md5_of(idtxt, hex);
        int n = snprintf(line, sizeof line, "%d\t", id);
        for (int k = 0; k < REPEAT; k++, n += 32)
            memcpy(line + n, hex, 32);
        line[n++] = '\n';
        if (used + (size_t)n > CHUNK) {
            assert_int_equal(PQputCopyData(c, chunk, (int)used), 1);
            used = 0;
        }
        memcpy(chunk + used, line, (size_t)n);
        used += (size_t)n;
        h_md5_update(&all, line, (size_t)n);
        sent_bytes += n;
    }
    if (used)
        assert_int_equal(PQputCopyData(c, chunk, (int)used), 1);
    free(chunk);
    h_md5_hex(&all, sent_md5);
    assert_true(sent_bytes > 100LL * 1000 * 1000);
    assert_int_equal(PQputCopyEnd(c, NULL), 1);
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("COPY FROM STDIN: %s", PQerrorMessage(c));
    assert_string_equal(PQcmdTuples(r), "100000");
    PQclear(r);
    assert_null(PQgetResult(c));

    /* What the server stored is exactly what was sent. */
    assert_int_equal(h_query_int(c, "SELECT count(*) FROM copy_t"), NROWS);
    assert_int_equal(h_query_int(c, "SELECT count(DISTINCT id) FROM copy_t"), NROWS);
    assert_int_equal(
        h_query_int(c, "SELECT count(*) FROM copy_t WHERE payload <> repeat(md5(id::text), 32)"),
        0);
    r = h_exec(c, "SELECT md5(string_agg(id || E'\\t' || payload || E'\\n', '' ORDER BY id)), "
                  "sum(length(payload) + length(id::text) + 2) FROM copy_t");
    assert_string_equal(PQgetvalue(r, 0, 0), sent_md5);
    assert_int_equal(atoll(PQgetvalue(r, 0, 1)), sent_bytes);
    PQclear(r);
    PQfinish(c);
}

static void test_copy_out_100mb(void **state)
{
    (void)state;
    assert_true(sent_bytes > 0); /* runs after test_copy_in_100mb */
    PGconn *c = h_connect(h_conninfo_proxy_db(&px, DB, NULL));
    PGresult *r = PQexec(c, "COPY (SELECT id, payload FROM copy_t ORDER BY id) TO STDOUT");
    assert_int_equal(PQresultStatus(r), PGRES_COPY_OUT);
    PQclear(r);
    h_md5 all;
    h_md5_init(&all);
    long long bytes = 0, rows = 0;
    char *buf;
    int n;
    while ((n = PQgetCopyData(c, &buf, 0)) > 0) {
        h_md5_update(&all, buf, (size_t)n);
        bytes += n;
        for (int i = 0; i < n; i++)
            rows += buf[i] == '\n';
        PQfreemem(buf);
    }
    assert_int_equal(n, -1); /* COPY done, not -2 (error) */
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("COPY TO STDOUT: %s", PQerrorMessage(c));
    assert_string_equal(PQcmdTuples(r), "100000");
    PQclear(r);
    assert_null(PQgetResult(c));
    char got[33];
    h_md5_hex(&all, got);
    assert_int_equal(rows, NROWS);
    assert_int_equal(bytes, sent_bytes);
    assert_string_equal(got, sent_md5);
    /* The session is still usable afterwards. */
    assert_int_equal(h_query_int(c, "SELECT 1"), 1);
    PQfinish(c);
}

static void test_bytea_100mb_binary_round_trip(void **state)
{
    (void)state;
    unsigned char *blob = malloc(BLOB_SIZE);
    assert_non_null(blob);
    uint64_t x = 0x9E3779B97F4A7C15ull; /* xorshift64: incompressible, no repeats */
    for (size_t i = 0; i < BLOB_SIZE; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(blob + i, &x, 8);
    }
    h_md5 m;
    h_md5_init(&m);
    h_md5_update(&m, blob, BLOB_SIZE);
    char want[33];
    h_md5_hex(&m, want);

    PGconn *c = h_connect(h_conninfo_proxy_db(&px, DB, NULL));
    h_exec_ok(c, "CREATE TABLE blob_t (id int PRIMARY KEY, b bytea NOT NULL)");
    const char *vals[1] = {(const char *)blob};
    int lens[1] = {BLOB_SIZE}, fmts[1] = {1};
    Oid types[1] = {17}; /* bytea */
    PGresult *r =
        PQexecParams(c, "INSERT INTO blob_t VALUES (1, $1)", 1, types, vals, lens, fmts, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("INSERT bytea: %s", PQerrorMessage(c));
    PQclear(r);

    r = h_exec(c, "SELECT length(b), md5(b) FROM blob_t WHERE id = 1");
    assert_int_equal(atoll(PQgetvalue(r, 0, 0)), BLOB_SIZE);
    assert_string_equal(PQgetvalue(r, 0, 1), want);
    PQclear(r);

    r = PQexecParams(c, "SELECT b FROM blob_t WHERE id = 1", 0, NULL, NULL, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("SELECT bytea: %s", PQerrorMessage(c));
    assert_int_equal(PQntuples(r), 1);
    assert_int_equal(PQfformat(r, 0), 1);
    assert_int_equal(PQgetlength(r, 0, 0), BLOB_SIZE);
    assert_true(memcmp(PQgetvalue(r, 0, 0), blob, BLOB_SIZE) == 0);
    PQclear(r);
    assert_int_equal(h_query_int(c, "SELECT 2"), 2);
    PQfinish(c);
    free(blob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_in_100mb),
        cmocka_unit_test(test_copy_out_100mb),
        cmocka_unit_test(test_bytea_100mb_binary_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
