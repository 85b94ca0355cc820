/*
 * test_proxy_pgbench.c — pgbench through the proxy: `pgbench -i` (which loads
 * pgbench_accounts with COPY FROM STDIN) and then runs in each query mode (simple,
 * extended, prepared) with several clients; every run exits 0 with no failed
 * transactions, and the rows pgbench loaded are all there.
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

#define DB "pgc_it_pgbench"

static h_proxy px;
static char outfile[512];

static int setup(void **state)
{
    (void)state;
    h_recreate_db(DB);
    h_proxy_start(&px, NULL);
    snprintf(outfile, sizeof outfile, "%s/pgbench.out", px.sockdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(h_proxy_stop(&px), 0);
    h_drop_db(DB);
    return 0;
}

/* The whole output file (h_slurp's static buffer), echoed on failure paths. */
static const char *output(void)
{
    return h_slurp(outfile);
}

/* pgbench against the proxy with args; returns the exit status, output in outfile. */
static int run_pgbench(const char *args)
{
    return h_shell("PGSSLMODE=disable %s -h 127.0.0.1 -p %d -U %s %s " DB " >%s 2>&1",
                   h_pgbench_bin(), px.port, h_pg_user(), args, outfile);
}

static void test_pgbench_init_uses_copy(void **state)
{
    (void)state;
    int rc = run_pgbench("-i -s 2 --quiet");
    if (rc != 0)
        fail_msg("pgbench -i exited %d:\n%s", rc, output());
    /* client-side generation loads pgbench_accounts with COPY ... FROM STDIN */
    PGconn *c = h_connect(h_conninfo_proxy_db(&px, DB, NULL));
    assert_int_equal(h_query_int(c, "SELECT count(*) FROM pgbench_accounts"), 200000);
    assert_int_equal(h_query_int(c, "SELECT count(DISTINCT aid) FROM pgbench_accounts"), 200000);
    assert_int_equal(h_query_int(c, "SELECT sum(bid) FROM pgbench_accounts"),
                     100000LL * 1 + 100000LL * 2);
    assert_int_equal(h_query_int(c, "SELECT count(*) FROM pgbench_branches"), 2);
    assert_int_equal(h_query_int(c, "SELECT count(*) FROM pgbench_tellers"), 20);
    PQfinish(c);
}

static void check_run(const char *mode)
{
    char args[128];
    snprintf(args, sizeof args, "-M %s -c 4 -j 2 -T 3 -n", mode);
    int rc = run_pgbench(args);
    const char *out = output();
    if (rc != 0)
        fail_msg("pgbench %s exited %d:\n%s", args, rc, out);
    if (strstr(out, "number of failed transactions: 0 ") == NULL)
        fail_msg("pgbench %s: failed transactions reported:\n%s", args, out);
    char want[64];
    snprintf(want, sizeof want, "query mode: %s", mode);
    if (strstr(out, want) == NULL)
        fail_msg("pgbench %s: no '%s' in output:\n%s", args, want, out);
    const char *p = strstr(out, "number of transactions actually processed: ");
    assert_non_null(p);
    long done = atol(p + strlen("number of transactions actually processed: "));
    if (done < 20)
        fail_msg("pgbench %s processed only %ld transactions:\n%s", args, done, out);
}

static void test_pgbench_simple(void **state)
{
    (void)state;
    check_run("simple");
}

static void test_pgbench_extended(void **state)
{
    (void)state;
    check_run("extended");
}

static void test_pgbench_prepared(void **state)
{
    (void)state;
    check_run("prepared");
}

/* The three runs' TPC-B transactions kept the books balanced: every history row's delta
 * is in the account, teller and branch totals. */
static void test_balances_consistent(void **state)
{
    (void)state;
    PGconn *c = h_connect(h_conninfo_proxy_db(&px, DB, NULL));
    long long hist = h_query_int(c, "SELECT coalesce(sum(delta), 0) FROM pgbench_history");
    assert_int_equal(h_query_int(c, "SELECT sum(abalance) FROM pgbench_accounts"), hist);
    assert_int_equal(h_query_int(c, "SELECT sum(tbalance) FROM pgbench_tellers"), hist);
    assert_int_equal(h_query_int(c, "SELECT sum(bbalance) FROM pgbench_branches"), hist);
    assert_true(h_query_int(c, "SELECT count(*) FROM pgbench_history") > 0);
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pgbench_init_uses_copy), cmocka_unit_test(test_pgbench_simple),
        cmocka_unit_test(test_pgbench_extended),       cmocka_unit_test(test_pgbench_prepared),
        cmocka_unit_test(test_balances_consistent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
