/*
 * test_proxy_features.c — protocol features through the proxy: LISTEN/NOTIFY between
 * two sessions, PQcancel of a running query (57014 within 1 s) while a CancelRequest
 * with a wrong key cancels nothing, libpq pipeline mode (including an error that
 * aborts the rest of a pipeline), 500 concurrent sessions each with its own server
 * backend, and max_client_conn refusing the connection over the limit with 53300.
 */
#include <arpa/inet.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"

#define NCONN 500

static h_proxy px; /* max_client_conn=1000 */

static int setup(void **state)
{
    (void)state;
    /* 500 clients + 500 server connections in the proxy, 500 sockets here. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    static const char *const sets[] = {"max_client_conn=1000", NULL};
    h_proxy_start(&px, sets);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(h_proxy_stop(&px), 0);
    return 0;
}

/* Wait until c's socket is readable or timeout_ms passes; returns whether readable. */
static bool wait_readable(PGconn *c, int timeout_ms)
{
    struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
    return poll(&p, 1, timeout_ms) > 0;
}

static void test_listen_notify(void **state)
{
    (void)state;
    PGconn *listener = h_connect(h_conninfo_proxy(&px, NULL));
    PGconn *sender = h_connect(h_conninfo_proxy(&px, NULL));
    h_exec_ok(listener, "LISTEN pgc_it_features_chan");
    h_exec_ok(sender, "NOTIFY pgc_it_features_chan, 'hello through the proxy'");
    h_exec_ok(sender, "SELECT pg_notify('pgc_it_features_chan', 'second')");

    /* Delivered asynchronously, without the listener sending anything. */
    PGnotify *got[2] = {NULL, NULL};
    int n = 0;
    double deadline = h_now_ms() + 5000;
    while (n < 2 && h_now_ms() < deadline) {
        if (!wait_readable(listener, 100))
            continue;
        assert_int_equal(PQconsumeInput(listener), 1);
        PGnotify *nt;
        while (n < 2 && (nt = PQnotifies(listener)) != NULL)
            got[n++] = nt;
    }
    assert_int_equal(n, 2);
    assert_string_equal(got[0]->relname, "pgc_it_features_chan");
    assert_string_equal(got[0]->extra, "hello through the proxy");
    assert_string_equal(got[1]->extra, "second");
    assert_int_equal(got[0]->be_pid, PQbackendPID(sender));
    PQfreemem(got[0]);
    PQfreemem(got[1]);
    /* UNLISTEN stops delivery; the session keeps working. */
    h_exec_ok(listener, "UNLISTEN *");
    h_exec_ok(sender, "NOTIFY pgc_it_features_chan, 'not delivered'");
    assert_int_equal(h_query_int(listener, "SELECT 5"), 5);
    assert_null(PQnotifies(listener));
    PQfinish(listener);
    PQfinish(sender);
}

static void test_cancel_running_query(void **state)
{
    (void)state;
    PGconn *c = h_connect(h_conninfo_proxy(&px, NULL));
    PGconn *watch = h_connect(h_conninfo_direct(NULL));
    assert_int_equal(PQsendQuery(c, "SELECT pg_sleep(30)"), 1);
    /* Wait until the backend is really sleeping. */
    char q[200];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND state = 'active' "
             "AND query LIKE 'SELECT pg_sleep(30)%%'",
             PQbackendPID(c));
    double deadline = h_now_ms() + 5000;
    while (h_query_int(watch, q) != 1 && h_now_ms() < deadline)
        usleep(20000);
    assert_int_equal(h_query_int(watch, q), 1);

    double t0 = h_now_ms();
    PGcancel *cn = PQgetCancel(c);
    assert_non_null(cn);
    char err[256];
    assert_int_equal(PQcancel(cn, err, sizeof err), 1);
    PQfreeCancel(cn);
    PGresult *r = PQgetResult(c);
    double took = h_now_ms() - t0;
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "57014");
    PQclear(r);
    assert_null(PQgetResult(c));
    if (took >= 1000)
        fail_msg("cancel took %.0f ms", took);
    /* The session survives the cancel. */
    assert_int_equal(h_query_int(c, "SELECT 3"), 3);
    PQfinish(watch);
    PQfinish(c);
}

/* Send a raw CancelRequest for (pid, key) to the proxy; returns whether the proxy then
 * closed the connection (it answers nothing, as PostgreSQL). */
static bool send_cancel(uint32_t pid, uint32_t key)
{
    int fd = h_raw_connect(px.port);
    uint32_t pkt[4] = {htonl(16), htonl(80877102), htonl(pid), htonl(key)};
    assert_int_equal(write(fd, pkt, sizeof pkt), 16);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char b;
    bool closed = poll(&p, 1, 3000) == 1 && read(fd, &b, 1) == 0;
    close(fd);
    return closed;
}

static void test_cancel_wrong_key_ignored(void **state)
{
    (void)state;
    PGconn *c = h_connect(h_conninfo_proxy(&px, NULL));
    assert_int_equal(PQsendQuery(c, "SELECT pg_sleep(1.5), 'finished'"), 1);
    usleep(200000);
    uint32_t pid = (uint32_t)PQbackendPID(c);
    /* The right pid with made-up keys, and a pid no session has. The real key is
     * random 32 bits: a collision with these is negligible. */
    assert_true(send_cancel(pid, 0));
    assert_true(send_cancel(pid, 0x5eed1234));
    assert_true(send_cancel(pid ^ 0x40000000u, 1));
    PGresult *r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("query was cancelled by a wrong key: %s", PQerrorMessage(c));
    assert_string_equal(PQgetvalue(r, 0, 1), "finished");
    PQclear(r);
    assert_null(PQgetResult(c));
    PQfinish(c);
    /* The proxy itself dropped them (it forwards only keys of its own sessions). */
    assert_int_equal(
        h_shell("test $(grep -c 'cancel request for unknown backend' %s) -ge 1", px.log), 0);
}

static void test_pipeline_mode(void **state)
{
    (void)state;
    PGconn *c = h_connect(h_conninfo_proxy(&px, NULL));
    h_exec_ok(c, "CREATE TEMP TABLE pipe_t (k int PRIMARY KEY, v text)");
    assert_int_equal(PQenterPipelineMode(c), 1);
    assert_int_equal(PQpipelineStatus(c), PQ_PIPELINE_ON);

    /* Batch 1: five inserts and a read, one sync. */
    for (int i = 1; i <= 5; i++) {
        char k[16], v[16];
        snprintf(k, sizeof k, "%d", i);
        snprintf(v, sizeof v, "v%d", i * 10);
        const char *p[2] = {k, v};
        assert_int_equal(
            PQsendQueryParams(c, "INSERT INTO pipe_t VALUES ($1, $2)", 2, NULL, p, NULL, NULL, 0),
            1);
    }
    assert_int_equal(PQsendQueryParams(c,
                                       "SELECT count(*), string_agg(v, ',' ORDER BY k) FROM pipe_t",
                                       0, NULL, NULL, NULL, NULL, 0),
                     1);
    assert_int_equal(PQpipelineSync(c), 1);
    /* Batch 2 sent before reading batch 1: an error aborts the rest of its pipeline. */
    const char *one[1] = {"1"};
    assert_int_equal(PQsendQueryParams(c, "SELECT 1 / ($1::int - 1)", 1, NULL, one, NULL, NULL, 0),
                     1);
    assert_int_equal(PQsendQueryParams(c, "SELECT 42", 0, NULL, NULL, NULL, NULL, 0), 1);
    assert_int_equal(PQpipelineSync(c), 1);
    /* Batch 3: works again after the sync. */
    assert_int_equal(PQsendQueryParams(c, "SELECT $1::int * 2", 1, NULL, one, NULL, NULL, 0), 1);
    assert_int_equal(PQpipelineSync(c), 1);

    PGresult *r;
    for (int i = 1; i <= 5; i++) {
        r = PQgetResult(c);
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        assert_string_equal(PQcmdTuples(r), "1");
        PQclear(r);
        assert_null(PQgetResult(c));
    }
    r = PQgetResult(c);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "5");
    assert_string_equal(PQgetvalue(r, 0, 1), "v10,v20,v30,v40,v50");
    PQclear(r);
    assert_null(PQgetResult(c));
    r = PQgetResult(c);
    assert_int_equal(PQresultStatus(r), PGRES_PIPELINE_SYNC);
    PQclear(r);

    r = PQgetResult(c);
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "22012");
    PQclear(r);
    assert_null(PQgetResult(c));
    r = PQgetResult(c);
    assert_int_equal(PQresultStatus(r), PGRES_PIPELINE_ABORTED);
    PQclear(r);
    assert_null(PQgetResult(c));
    r = PQgetResult(c);
    assert_int_equal(PQresultStatus(r), PGRES_PIPELINE_SYNC);
    PQclear(r);

    r = PQgetResult(c);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "2");
    PQclear(r);
    assert_null(PQgetResult(c));
    r = PQgetResult(c);
    assert_int_equal(PQresultStatus(r), PGRES_PIPELINE_SYNC);
    PQclear(r);

    assert_int_equal(PQexitPipelineMode(c), 1);
    assert_int_equal(h_query_int(c, "SELECT count(*) FROM pipe_t"), 5);
    PQfinish(c);
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

static void test_500_concurrent_connections(void **state)
{
    (void)state;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < NCONN + 64)
        fail_msg("RLIMIT_NOFILE %llu is too low for %d connections",
                 (unsigned long long)rl.rlim_cur, NCONN);
    PGconn **c = calloc(NCONN, sizeof *c);
    int *pids = calloc(NCONN, sizeof *pids);
    assert_non_null(c);
    assert_non_null(pids);
    double t0 = h_now_ms();
    for (int i = 0; i < NCONN; i++) {
        c[i] = PQconnectdb(h_conninfo_proxy(&px, "application_name=pgc_it_500"));
        if (PQstatus(c[i]) != CONNECTION_OK)
            fail_msg("connection %d of %d: %s", i + 1, NCONN, PQerrorMessage(c[i]));
    }
    double t_open = h_now_ms() - t0;
    /* All open at once: send a query on each, then collect every answer. */
    for (int i = 0; i < NCONN; i++) {
        char q[64];
        snprintf(q, sizeof q, "SELECT pg_backend_pid(), %d", i);
        assert_int_equal(PQsendQuery(c[i], q), 1);
    }
    for (int i = 0; i < NCONN; i++) {
        PGresult *r = PQgetResult(c[i]);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fail_msg("query on connection %d: %s", i, PQerrorMessage(c[i]));
        assert_int_equal(atoi(PQgetvalue(r, 0, 1)), i);
        pids[i] = atoi(PQgetvalue(r, 0, 0));
        assert_int_equal(pids[i], PQbackendPID(c[i]));
        PQclear(r);
        assert_null(PQgetResult(c[i]));
    }
    /* Each session has its own server backend (session mode). */
    qsort(pids, NCONN, sizeof *pids, cmp_int);
    for (int i = 1; i < NCONN; i++)
        assert_true(pids[i] != pids[i - 1]);
    PGconn *watch = h_connect(h_conninfo_direct(NULL));
    assert_int_equal(h_query_int(watch, "SELECT count(*) FROM pg_stat_activity "
                                        "WHERE application_name = 'pgc_it_500'"),
                     NCONN);
    for (int i = 0; i < NCONN; i++)
        PQfinish(c[i]);
    /* The proxy closes every server connection behind them. */
    double deadline = h_now_ms() + 10000;
    long long left;
    while ((left = h_query_int(watch, "SELECT count(*) FROM pg_stat_activity "
                                      "WHERE application_name = 'pgc_it_500'")) > 0 &&
           h_now_ms() < deadline)
        usleep(50000);
    assert_int_equal(left, 0);
    PQfinish(watch);
    free(c);
    free(pids);
    print_message("opened %d connections in %.0f ms\n", NCONN, t_open);
}

static void test_max_client_conn_refuses_53300(void **state)
{
    (void)state;
    h_proxy small;
    static const char *const sets[] = {"max_client_conn=2", NULL};
    h_proxy_start(&small, sets);
    PGconn *a = h_connect(h_conninfo_proxy(&small, NULL));
    PGconn *b = h_connect(h_conninfo_proxy(&small, NULL));
    PGconn *third = PQconnectdb(h_conninfo_proxy(&small, NULL));
    assert_int_equal(PQstatus(third), CONNECTION_BAD);
    if (strstr(PQerrorMessage(third), "too many clients") == NULL)
        fail_msg("third connection: %s", PQerrorMessage(third));
    PQfinish(third);
    /* The same refusal on the wire carries SQLSTATE 53300. */
    int fd = h_raw_connect(small.port);
    char msg[256];
    unsigned char startup[] = {0, 0,   0,   23,  0,   3,   0,   0,   'u', 's', 'e', 'r',
                               0, 'p', 'o', 's', 't', 'g', 'r', 'e', 's', 0,   0};
    assert_int_equal(write(fd, startup, sizeof startup), (ssize_t)sizeof startup);
    assert_true(h_read_error(fd, "53300", 5000, msg, sizeof msg));
    assert_non_null(strstr(msg, "too many clients"));
    close(fd);
    /* The admitted sessions are unaffected. */
    assert_int_equal(h_query_int(a, "SELECT 1"), 1);
    assert_int_equal(h_query_int(b, "SELECT 2"), 2);
    /* Closing one frees a slot (the proxy learns of the close asynchronously). */
    PQfinish(a);
    PGconn *again = NULL;
    double deadline = h_now_ms() + 3000;
    do {
        if (again)
            PQfinish(again);
        usleep(20000);
        again = PQconnectdb(h_conninfo_proxy(&small, NULL));
    } while (PQstatus(again) != CONNECTION_OK && h_now_ms() < deadline);
    assert_int_equal(PQstatus(again), CONNECTION_OK);
    assert_int_equal(h_query_int(again, "SELECT 4"), 4);
    PQfinish(again);
    PQfinish(b);
    assert_int_equal(h_proxy_stop(&small), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_notify),
        cmocka_unit_test(test_cancel_running_query),
        cmocka_unit_test(test_cancel_wrong_key_ignored),
        cmocka_unit_test(test_pipeline_mode),
        cmocka_unit_test(test_500_concurrent_connections),
        cmocka_unit_test(test_max_client_conn_refuses_53300),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
