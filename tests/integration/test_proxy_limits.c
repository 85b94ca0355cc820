/*
 * test_proxy_limits.c — connections that never log in cannot lock applications or
 * operators out. With max_client_conn=20 and client_login_timeout=1: 30 sockets that send
 * nothing, one that stops after SSLRequest, and one that stops after the server asked for
 * an MD5 password are closed by the proxy (silently before the startup packet, with FATAL
 * 08P01 after it), each with one log line, and an application connection then succeeds.
 * max_control_conn=2: a third console connection is refused with 53300 while the two
 * logged-in ones keep working; silent sockets on the console port are closed by the same
 * timeout; when a console connection ends a new one is accepted.
 * Out of file descriptors (a proxy started with RLIMIT_NOFILE 64 and 150 connections
 * opened to it): the accept loop pauses instead of spinning — over 3 s the log has at
 * most a few "accept" lines and the process used little CPU time (utime + stime from
 * /proc/<pid>/stat, a resource count) — and once the sockets are closed a new connection
 * is served.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "pgwire.h"

#define MD5_USER "pgc_it_limits_md5"

static h_proxy px;
static h_proxy small; /* test_out_of_file_descriptors; stopped by teardown if a test fails */

static int setup(void **state)
{
    (void)state;
    h_exec_direct("DROP ROLE IF EXISTS " MD5_USER);
    h_exec_direct("SET password_encryption = 'md5'; "
                  "CREATE ROLE " MD5_USER " LOGIN PASSWORD 'md5-secret' IN ROLE pgc_md5");
    static const char *const sets[] = {"max_client_conn=20", "max_control_conn=2",
                                       "client_login_timeout=1", NULL};
    h_proxy_start(&px, sets);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(h_proxy_stop(&px), 0);
    h_proxy_stop(&small); /* -1 when already stopped */
    h_exec_direct("DROP ROLE IF EXISTS " MD5_USER);
    return 0;
}

/* Whether the peer closes fd within 10 s without sending anything. */
static bool closed_silently(int fd)
{
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char b[16];
    ssize_t r = read(fd, b, sizeof b);
    return r == 0 || (r < 0 && errno == ECONNRESET);
}

/* Send a protocol 3.0 StartupMessage for user on fd. */
static void send_startup(int fd, const char *user)
{
    pgw_param p[] = {{"user", user}, {"database", "postgres"}};
    pgw_buf b;
    pgw_buf_init(&b);
    assert_true(pgw_build_startup(&b, p, 2));
    assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
    pgw_buf_free(&b);
}

/* Lines of the proxy's log containing text. */
static int log_lines(const char *text)
{
    FILE *f = fopen(px.log, "r");
    assert_non_null(f);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, text))
            n++;
    fclose(f);
    return n;
}

static void test_login_timeout_frees_slots(void **state)
{
    (void)state;
    enum { SILENT = 30 }; /* more than max_client_conn */
    /* first (within max_client_conn): an SSLRequest answered 'N' and nothing after it,
     * and a startup whose MD5 password request is never answered; then 30 silent
     * sockets (with the old code the MD5 login opened after them got 53300) */
    int ssl = h_raw_connect(px.port);
    static const unsigned char sslreq[] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
    assert_int_equal(write(ssl, sslreq, 8), 8);
    char c;
    assert_int_equal(read(ssl, &c, 1), 1);
    assert_int_equal(c, 'N');
    int md5 = h_raw_connect(px.port);
    send_startup(md5, MD5_USER);
    unsigned char r[13];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t k = read(md5, r + got, sizeof r - got);
        assert_true(k > 0);
        got += (size_t)k;
    }
    assert_int_equal(r[0], 'R');
    assert_int_equal(h_get_u32(r + 5), 5); /* AuthenticationMD5Password */

    int fds[SILENT];
    for (int i = 0; i < SILENT; i++)
        fds[i] = h_raw_connect(px.port);
    for (int i = 0; i < SILENT; i++) {
        assert_true(closed_silently(fds[i]));
        close(fds[i]);
    }
    assert_true(closed_silently(ssl));
    close(ssl);
    char msg[256];
    assert_true(h_read_error(md5, "08P01", 10000, msg, sizeof msg));
    assert_non_null(strstr(msg, "client_login_timeout"));
    close(md5);

    /* the slots are free again */
    PGconn *app = h_connect(h_conninfo_proxy(&px, NULL));
    assert_int_equal(h_query_int(app, "SELECT 42"), 42);
    /* a logged-in session is not subject to the timeout */
    usleep(1500 * 1000);
    assert_int_equal(h_query_int(app, "SELECT 43"), 43);
    PQfinish(app);
    /* one log line per connection */
    assert_true(log_lines("client_login_timeout (1 s) before the startup packet") >= SILENT + 1);
    assert_int_equal(log_lines("client_login_timeout (1 s) reached before login completed"), 1);
}

static PGconn *console(void)
{
    char ci[256];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d dbname=postgres user=%s sslmode=disable",
             px.control_port, h_pg_user());
    return PQconnectdb(ci);
}

static void console_works(PGconn *c)
{
    PGresult *res = PQexec(c, "SHOW STATS");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
}

static void test_max_control_conn(void **state)
{
    (void)state;
    PGconn *c1 = console(), *c2 = console();
    assert_int_equal(PQstatus(c1), CONNECTION_OK);
    assert_int_equal(PQstatus(c2), CONNECTION_OK);
    /* a third: 53300 */
    int fd = h_raw_connect(px.control_port);
    send_startup(fd, h_pg_user());
    char msg[256];
    assert_true(h_read_error(fd, "53300", 5000, msg, sizeof msg));
    assert_non_null(strstr(msg, "max_control_conn"));
    close(fd);
    console_works(c1);
    console_works(c2);

    /* silent sockets on the console port go after client_login_timeout too */
    int fds[5];
    for (int i = 0; i < 5; i++)
        fds[i] = h_raw_connect(px.control_port);
    for (int i = 0; i < 5; i++) {
        assert_true(closed_silently(fds[i]));
        close(fds[i]);
    }
    console_works(c1);

    /* once one ends, a new console connection gets its slot (the proxy notices the
     * close asynchronously: bounded retries) */
    PQfinish(c2);
    PGconn *c3 = NULL;
    for (int i = 0; i < 50; i++) {
        c3 = console();
        if (PQstatus(c3) == CONNECTION_OK)
            break;
        PQfinish(c3);
        c3 = NULL;
        usleep(100 * 1000);
    }
    assert_non_null(c3);
    console_works(c3);
    PQfinish(c3);
    PQfinish(c1);
}

/* utime + stime of pid in clock ticks, from /proc/<pid>/stat (fields 14 and 15). */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    assert_non_null(p);
    unsigned long ut = 0, st = 0;
    /* after ')': state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
     * utime stime */
    assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                            &st),
                     2);
    return (long)(ut + st);
}

static int lines_in(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, text))
            n++;
    fclose(f);
    return n;
}

static void test_out_of_file_descriptors(void **state)
{
    (void)state;
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 64; /* inherited by the proxy the harness forks */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    static const char *const sets[] = {"workers=1", NULL};
    h_proxy_start(&small, sets);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);

    enum { N = 150 }; /* far more than 64; the kernel queues what the proxy cannot take */
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = h_raw_connect(small.port);
    /* bounded wait until the proxy has run out (it logs it) */
    for (int i = 0; i < 100 && lines_in(small.log, "Too many open files") == 0; i++)
        usleep(50 * 1000);
    assert_true(lines_in(small.log, "Too many open files") > 0);
    int before = lines_in(small.log, "accept");
    long cpu0 = cpu_ticks(small.pid);
    sleep(3);
    long cpu1 = cpu_ticks(small.pid);
    int after = lines_in(small.log, "accept");
    print_message("out of descriptors for 3 s: %d accept lines, %ld CPU ticks\n", after - before,
                  cpu1 - cpu0);
    assert_true(after - before <= 6); /* one per 1 s pause (the old loop: 75000) */
    assert_true(cpu1 - cpu0 < 10); /* under 0.1 s of CPU in 3 s (the old loop: 20+) */

    for (int i = 0; i < N; i++)
        close(fds[i]);
    PGconn *c = h_connect(h_conninfo_proxy(&small, NULL));
    assert_int_equal(h_query_int(c, "SELECT 5"), 5);
    PQfinish(c);
    assert_int_equal(h_proxy_stop(&small), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_timeout_frees_slots),
        cmocka_unit_test(test_max_control_conn),
        cmocka_unit_test(test_out_of_file_descriptors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
