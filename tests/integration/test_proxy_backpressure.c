/*
 * test_proxy_backpressure.c — a client that asks for ~2 GB and never reads does not
 * make the proxy buffer it: the server backend ends up blocked writing (ClientWrite),
 * the proxy's resident memory grows by less than 64 MB, and another session on the same
 * worker thread keeps answering quickly. Closing the stalled client ends its server
 * backend. A client that stalls and then reads on gets every row.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"

#define BIG_QUERY "SELECT repeat('x', 1000) FROM generate_series(1, 2000000)" /* ~2 GB */

static h_proxy px;

static int setup(void **state)
{
    (void)state;
    /* One worker: the stalled session and the busy one share an event loop. */
    static const char *const sets[] = {"workers=1", NULL};
    h_proxy_start(&px, sets);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(h_proxy_stop(&px), 0);
    return 0;
}

/* The wait_event of backend pid as pg_stat_activity shows it ("" when none). */
static void wait_event(PGconn *watch, int pid, char *out, size_t len)
{
    char q[160];
    snprintf(q, sizeof q, "SELECT coalesce(wait_event, '') FROM pg_stat_activity WHERE pid = %d",
             pid);
    PGresult *r = h_exec(watch, q);
    snprintf(out, len, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "(gone)");
    PQclear(r);
}

static void test_stalled_reader_does_not_grow_memory_or_block_others(void **state)
{
    (void)state;
    PGconn *watch = h_connect(h_conninfo_direct(NULL));
    PGconn *busy = h_connect(h_conninfo_proxy(&px, NULL));
    PGconn *stalled = h_connect(h_conninfo_proxy(&px, NULL));
    int stalled_pid = PQbackendPID(stalled);
    assert_int_equal(h_query_int(busy, "SELECT 1"), 1);
    long rss0 = h_proc_rss_kb(px.pid);
    assert_true(rss0 > 0);

    assert_int_equal(PQsendQuery(stalled, BIG_QUERY), 1);
    assert_int_equal(PQflush(stalled), 0);
    /* ...and never read. The server must end up blocked writing to the proxy. */
    char ev[64] = "";
    double deadline = h_now_ms() + 20000;
    while (h_now_ms() < deadline) {
        wait_event(watch, stalled_pid, ev, sizeof ev);
        if (strcmp(ev, "ClientWrite") == 0)
            break;
        usleep(50000);
    }
    if (strcmp(ev, "ClientWrite") != 0)
        fail_msg("stalled session's backend: wait_event '%s', not ClientWrite", ev);
    long rss1 = h_proc_rss_kb(px.pid);

    /* Meanwhile another session on the same worker runs 200 quick queries. */
    double t0 = h_now_ms(), worst = 0;
    for (int i = 0; i < 200; i++) {
        char q[64];
        snprintf(q, sizeof q, "SELECT %d + 1", i);
        double q0 = h_now_ms();
        assert_int_equal(h_query_int(busy, q), i + 1);
        double took = h_now_ms() - q0;
        if (took > worst)
            worst = took;
    }
    double total = h_now_ms() - t0;
    /* Still blocked: the proxy did not start reading the result into memory. */
    wait_event(watch, stalled_pid, ev, sizeof ev);
    assert_string_equal(ev, "ClientWrite");
    long rss2 = h_proc_rss_kb(px.pid);
    print_message("rss %ld -> %ld -> %ld kB; 200 queries in %.0f ms (worst %.1f ms)\n", rss0, rss1,
                  rss2, total, worst);
    if (total >= 5000 || worst >= 1000)
        fail_msg("200 queries took %.0f ms (worst %.0f ms) beside a stalled reader", total, worst);
    long grow = (rss1 > rss2 ? rss1 : rss2) - rss0;
    if (grow >= 64 * 1024)
        fail_msg("proxy RSS grew by %ld kB beside a stalled reader", grow);

    /* Closing the stalled client ends its server backend. */
    PQfinish(stalled);
    deadline = h_now_ms() + 10000;
    do {
        wait_event(watch, stalled_pid, ev, sizeof ev);
        if (strcmp(ev, "(gone)") == 0)
            break;
        usleep(50000);
    } while (h_now_ms() < deadline);
    assert_string_equal(ev, "(gone)");
    assert_int_equal(h_query_int(busy, "SELECT 9"), 9);
    PQfinish(busy);
    PQfinish(watch);
}

static void test_stall_then_read_gets_everything(void **state)
{
    (void)state;
    PGconn *c = h_connect(h_conninfo_proxy(&px, NULL));
    assert_int_equal(PQsendQuery(c, "SELECT g, repeat(chr(65 + g % 26), 1000) "
                                    "FROM generate_series(1, 100000) g"),
                     1);
    assert_int_equal(PQsetSingleRowMode(c), 1);
    usleep(1500000); /* let every buffer on the way fill up and the proxy pause */
    long long rows = 0, sum = 0, bytes = 0;
    PGresult *r;
    bool ok = false;
    while ((r = PQgetResult(c)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE) {
            long long g = atoll(PQgetvalue(r, 0, 0));
            const char *s = PQgetvalue(r, 0, 1);
            rows++;
            sum += g;
            bytes += PQgetlength(r, 0, 1);
            if (s[0] != 'A' + g % 26 || s[999] != 'A' + g % 26)
                fail_msg("row %lld corrupted", g);
        } else if (st == PGRES_TUPLES_OK) {
            ok = true;
        } else {
            fail_msg("result: %s", PQerrorMessage(c));
        }
        PQclear(r);
    }
    assert_true(ok);
    assert_int_equal(rows, 100000);
    assert_int_equal(sum, 100000LL * 100001 / 2);
    assert_int_equal(bytes, 100000LL * 1000);
    assert_int_equal(h_query_int(c, "SELECT 1"), 1);
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_reader_does_not_grow_memory_or_block_others),
        cmocka_unit_test(test_stall_then_read_gets_everything),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
