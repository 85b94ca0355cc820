/*
 * test_proxy_hold.c — the hold, driven from the control console: after PAUSE an idle
 * session's next query waits at the proxy until RESUME; a session inside a transaction
 * is not held (its statements and COMMIT run), and is held at its next transaction once
 * idle; with hold_timeout_ms=500 the hold releases by itself.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"

static h_proxy px; /* default hold_timeout_ms (10 s) */

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

static PGconn *console(const h_proxy *p)
{
    char ci[256];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d dbname=postgres user=%s sslmode=disable",
             p->control_port, h_pg_user());
    return h_connect(ci);
}

static void console_cmd(PGconn *ctl, const char *cmd)
{
    PGresult *r = PQexec(ctl, cmd);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("console %s: %s", cmd, PQerrorMessage(ctl));
    PQclear(r);
}

/* A query run on its own thread, so the test can watch it wait. */
typedef struct {
    PGconn *c;
    const char *sql;
    pthread_t th;
    atomic_bool done;
    double started_ms, done_ms;
    bool ok;
    char value[64];
} bg_query;

static void *bg_main(void *arg)
{
    bg_query *q = arg;
    PGresult *r = PQexec(q->c, q->sql);
    q->ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        snprintf(q->value, sizeof q->value, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    q->done_ms = h_now_ms();
    atomic_store(&q->done, true);
    return NULL;
}

static void bg_start(bg_query *q, PGconn *c, const char *sql)
{
    memset(q, 0, sizeof *q);
    q->c = c;
    q->sql = sql;
    q->started_ms = h_now_ms();
    assert_int_equal(pthread_create(&q->th, NULL, bg_main, q), 0);
}

/* Wait up to timeout_ms for the query; returns whether it finished. */
static bool bg_wait(bg_query *q, int timeout_ms)
{
    double deadline = h_now_ms() + timeout_ms;
    while (!atomic_load(&q->done) && h_now_ms() < deadline)
        usleep(5000);
    return atomic_load(&q->done);
}

/* Join (the query must have finished, or finish within 15 s: the hold times out at
 * 10 s) and check the result. */
static void bg_finish(bg_query *q, const char *want)
{
    if (!bg_wait(q, 15000))
        fail_msg("'%s' did not finish", q->sql);
    pthread_join(q->th, NULL);
    if (!q->ok)
        fail_msg("'%s' failed: %s", q->sql, PQerrorMessage(q->c));
    if (want)
        assert_string_equal(q->value, want);
}

static void test_idle_session_waits_until_resume(void **state)
{
    (void)state;
    PGconn *ctl = console(&px);
    PGconn *c = h_connect(h_conninfo_proxy(&px, NULL));
    assert_int_equal(h_query_int(c, "SELECT 1"), 1); /* idle, between transactions */
    console_cmd(ctl, "PAUSE");
    bg_query q;
    bg_start(&q, c, "SELECT 42");
    bool early = bg_wait(&q, 300);
    double resumed = h_now_ms();
    console_cmd(ctl, "RESUME");
    if (early) {
        bg_finish(&q, NULL);
        fail_msg("query finished %.0f ms into a PAUSE", q.done_ms - q.started_ms);
    }
    assert_true(bg_wait(&q, 3000));
    bg_finish(&q, "42");
    assert_true(q.done_ms - q.started_ms >= 300);
    assert_true(q.done_ms - resumed < 1000); /* released promptly by RESUME */
    /* After RESUME nothing waits. */
    double t0 = h_now_ms();
    assert_int_equal(h_query_int(c, "SELECT 43"), 43);
    assert_true(h_now_ms() - t0 < 1000);
    PQfinish(c);
    PQfinish(ctl);
}

static void test_session_in_transaction_is_not_held(void **state)
{
    (void)state;
    PGconn *ctl = console(&px);
    PGconn *c = h_connect(h_conninfo_proxy(&px, NULL));
    h_exec_ok(c, "BEGIN");
    h_exec_ok(c, "CREATE TEMP TABLE hold_t (v int)");
    console_cmd(ctl, "PAUSE");
    /* Inside the transaction: statements and the COMMIT go through while paused. */
    bg_query q;
    bg_start(&q, c, "INSERT INTO hold_t VALUES (1), (2) RETURNING 7");
    bool in_time = bg_wait(&q, 2000);
    if (!in_time)
        console_cmd(ctl, "RESUME"); /* do not leave it hanging */
    bg_finish(&q, "7");
    assert_true(in_time);
    bg_start(&q, c, "COMMIT");
    in_time = bg_wait(&q, 2000);
    if (!in_time)
        console_cmd(ctl, "RESUME");
    bg_finish(&q, NULL);
    assert_true(in_time);
    /* Now idle: the next transaction waits for RESUME. */
    bg_start(&q, c, "SELECT sum(v) FROM hold_t");
    bool early = bg_wait(&q, 300);
    console_cmd(ctl, "RESUME");
    bg_finish(&q, "3");
    assert_false(early);
    PQfinish(c);
    PQfinish(ctl);
}

static void test_hold_timeout_releases_by_itself(void **state)
{
    (void)state;
    h_proxy pxt;
    static const char *const sets[] = {"hold_timeout_ms=500", NULL};
    h_proxy_start(&pxt, sets);
    PGconn *ctl = console(&pxt);
    PGconn *c = h_connect(h_conninfo_proxy(&pxt, NULL));
    assert_int_equal(h_query_int(c, "SELECT 1"), 1);
    double paused = h_now_ms();
    console_cmd(ctl, "PAUSE");
    bg_query q;
    bg_start(&q, c, "SELECT 77");
    bool early = bg_wait(&q, 200);
    /* No RESUME: the hold ends on its own about 500 ms after PAUSE. */
    bool released = bg_wait(&q, 3000);
    if (!released)
        console_cmd(ctl, "RESUME");
    bg_finish(&q, "77");
    assert_false(early);
    assert_true(released);
    double held_for = q.done_ms - paused;
    if (held_for < 400 || held_for > 2500)
        fail_msg("hold lasted %.0f ms with hold_timeout_ms=500", held_for);
    /* The hold is over: the next query is not held. */
    double t0 = h_now_ms();
    assert_int_equal(h_query_int(c, "SELECT 78"), 78);
    assert_true(h_now_ms() - t0 < 300);
    PQfinish(c);
    PQfinish(ctl);
    assert_int_equal(h_proxy_stop(&pxt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_session_waits_until_resume),
        cmocka_unit_test(test_session_in_transaction_is_not_held),
        cmocka_unit_test(test_hold_timeout_releases_by_itself),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
