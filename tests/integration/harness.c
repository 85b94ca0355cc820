/* harness.c — see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

static const char *env_or_fail(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        fail_msg("%s is not set: run the tests through scripts/test (it starts PostgreSQL)",
                 name);
    return v;
}

const char *h_pg_host(void)
{
    return env_or_fail("PGHOST");
}

int h_pg_port(void)
{
    return atoi(env_or_fail("PGPORT"));
}

const char *h_pg_user(void)
{
    return env_or_fail("PGUSER");
}

const char *h_tmpdir(void)
{
    const char *t = getenv("PGC_TMPDIR");
    return t && *t ? t : "/tmp";
}

double h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static bool port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

void h_proxy_start(h_proxy *p, const char *const *extra_sets)
{
    memset(p, 0, sizeof *p);
    p->port = h_free_port();
    p->control_port = h_free_port();
    snprintf(p->sockdir, sizeof p->sockdir, "%s/px.%d.%d", h_tmpdir(), (int)getpid(), p->port);
    mkdir(p->sockdir, 0755);
    snprintf(p->log, sizeof p->log, "%s/pgcutover.log", p->sockdir);

    char sets[16][300];
    int n = 0;
    snprintf(sets[n++], 300, "listen_port=%d", p->port);
    snprintf(sets[n++], 300, "control_port=%d", p->control_port);
    snprintf(sets[n++], 300, "server_host=%s", h_pg_host());
    snprintf(sets[n++], 300, "server_port=%d", h_pg_port());
    snprintf(sets[n++], 300, "unix_socket_dir=%s", p->sockdir);

    const char *argv[64];
    int a = 0;
    argv[a++] = PGC_BIN;
    for (int i = 0; i < n; i++) {
        argv[a++] = "--set";
        argv[a++] = sets[i];
    }
    for (int i = 0; extra_sets && extra_sets[i] && a < 60; i++) {
        argv[a++] = "--set";
        argv[a++] = extra_sets[i];
    }
    argv[a] = NULL;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execv(PGC_BIN, (char *const *)argv);
        _exit(127);
    }
    p->pid = pid;
    double deadline = h_now_ms() + 10000;
    while (h_now_ms() < deadline) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            p->pid = 0;
            h_shell("cat %s >&2", p->log);
            fail_msg("pgcutover exited during start (status %d)", st);
        }
        if (port_accepts(p->port))
            return;
        usleep(20000);
    }
    h_proxy_stop(p);
    fail_msg("pgcutover did not accept on port %d within 10 s", p->port);
}

void h_proxy_signal(h_proxy *p, int sig)
{
    if (p->pid > 0)
        kill(p->pid, sig);
}

int h_proxy_stop(h_proxy *p)
{
    if (p->pid <= 0)
        return -1;
    int st = -1;
    kill(p->pid, SIGTERM);
    double deadline = h_now_ms() + 10000;
    while (h_now_ms() < deadline) {
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = 0;
            return st;
        }
        usleep(10000);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &st, 0);
    p->pid = 0;
    return st;
}

PGconn *h_connect(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect '%s': %s", conninfo, PQerrorMessage(c));
    return c;
}

static char *rot_buf(void)
{
    static __thread char bufs[8][1024];
    static __thread int i;
    return bufs[i++ % 8];
}

const char *h_conninfo_proxy(const h_proxy *p, const char *extra)
{
    char *b = rot_buf();
    snprintf(b, 1024, "host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable %s",
             p->port, h_pg_user(), extra ? extra : "");
    return b;
}

const char *h_conninfo_direct(const char *extra)
{
    char *b = rot_buf();
    snprintf(b, 1024, "host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable %s",
             h_pg_port(), h_pg_user(), extra ? extra : "");
    return b;
}

PGresult *h_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    return r;
}

void h_exec_ok(PGconn *c, const char *sql)
{
    PQclear(h_exec(c, sql));
}

long long h_query_int(PGconn *c, const char *sql)
{
    PGresult *r = h_exec(c, sql);
    if (PQntuples(r) < 1 || PQgetisnull(r, 0, 0))
        fail_msg("%s: no value", sql);
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

int h_shell(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st == -1)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
