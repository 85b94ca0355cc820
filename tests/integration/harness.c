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

/* Start pgcutover with an optional config file (-c path, NULL for none), the harness's
 * own ports and socket dir as --set, then extra_sets; wait until it accepts. */
static void proxy_spawn(h_proxy *p, const char *path, const char *const *extra_sets)
{
    memset(p, 0, sizeof *p);
    p->port = h_free_port();
    p->control_port = h_free_port();
    snprintf(p->sockdir, sizeof p->sockdir, "%s/px.%d.%d", h_tmpdir(), (int)getpid(), p->port);
    mkdir(p->sockdir, 0755);
    snprintf(p->log, sizeof p->log, "%s/pgcutover.log", p->sockdir);

    char sets[5][300];
    snprintf(sets[0], 300, "listen_port=%d", p->port);
    snprintf(sets[1], 300, "control_port=%d", p->control_port);
    snprintf(sets[2], 300, "server_host=%s", h_pg_host());
    snprintf(sets[3], 300, "server_port=%d", h_pg_port());
    snprintf(sets[4], 300, "unix_socket_dir=%s", p->sockdir);

    const char *argv[64];
    int a = 0;
    argv[a++] = PGC_BIN;
    if (path) {
        argv[a++] = "-c";
        argv[a++] = path;
    }
    for (int i = 0; i < 5; i++) {
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
            fail_msg("pgcutover%s%s exited during start (status %d)", path ? " -c " : "",
                     path ? path : "", st);
        }
        /* Both listeners: the console's comes up just after the clients'. */
        if (port_accepts(p->port) && port_accepts(p->control_port))
            return;
        usleep(20000);
    }
    h_proxy_stop(p);
    fail_msg("pgcutover did not accept on ports %d and %d within 10 s", p->port, p->control_port);
}

void h_proxy_start(h_proxy *p, const char *const *extra_sets)
{
    proxy_spawn(p, NULL, extra_sets);
}

void h_proxy_signal(h_proxy *p, int sig)
{
    if (p->pid > 0)
        kill(p->pid, sig);
}

pid_t h_spawn(const char *const *argv, const char *out, const char *err)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || o < 0 || e < 0)
            _exit(127);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

int h_stop_pid(pid_t *pid, int grace_ms)
{
    if (*pid <= 0)
        return -1;
    int st = -1;
    kill(*pid, SIGTERM);
    double deadline = h_now_ms() + grace_ms;
    while (h_now_ms() < deadline) {
        if (waitpid(*pid, &st, WNOHANG) == *pid) {
            *pid = 0;
            return st;
        }
        usleep(10000);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, &st, 0);
    *pid = 0;
    return st;
}

int h_proxy_stop(h_proxy *p)
{
    return h_stop_pid(&p->pid, 10000);
}

const char *h_pgbench_bin(void)
{
    static const char *p = "/usr/lib/postgresql/15/bin/pgbench";
    return access(p, X_OK) == 0 ? p : "pgbench";
}

const char *h_slurp(const char *path)
{
    static char buf[262144];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
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

/* ---------- additions for the proxy integration tests (see harness.h) ---------- */

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

void h_exec_direct(const char *sql)
{
    PGconn *c = h_connect(h_conninfo_direct(NULL));
    PQsetNoticeProcessor(c, quiet_notice, NULL); /* "does not exist, skipping" */
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        char err[512];
        snprintf(err, sizeof err, "%s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        fail_msg("%s: %s", sql, err);
    }
    PQclear(r);
    PQfinish(c);
}

void h_drop_db(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    h_exec_direct(sql);
}

void h_recreate_db(const char *name)
{
    char sql[256];
    h_drop_db(name);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    h_exec_direct(sql);
}

const char *h_conninfo_proxy_db(const h_proxy *p, const char *db, const char *extra)
{
    char *b = rot_buf();
    snprintf(b, 1024, "host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable %s", p->port,
             h_pg_user(), db, extra ? extra : "");
    return b;
}

int h_raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        fail_msg("connect 127.0.0.1:%d: %s", port, strerror(errno));
    return fd;
}

void h_put_u32(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

unsigned h_get_u32(const unsigned char *p)
{
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

static void set_blocking_timeout(int fd, int timeout_ms)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/* Read exactly n bytes (blocking with the socket's timeout). */
static bool read_full(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

bool h_raw_login(int fd, const char *user, const char *database)
{
    unsigned char pkt[512];
    size_t n = 8;
    h_put_u32(pkt + 4, 196608); /* protocol 3.0 */
    n += (size_t)snprintf((char *)pkt + n, sizeof pkt - n, "user") + 1;
    n += (size_t)snprintf((char *)pkt + n, sizeof pkt - n, "%s", user) + 1;
    n += (size_t)snprintf((char *)pkt + n, sizeof pkt - n, "database") + 1;
    n += (size_t)snprintf((char *)pkt + n, sizeof pkt - n, "%s", database) + 1;
    pkt[n++] = 0;
    h_put_u32(pkt, (unsigned)n);
    if (write(fd, pkt, n) != (ssize_t)n)
        return false;
    set_blocking_timeout(fd, 5000);
    for (int i = 0; i < 1000; i++) {
        unsigned char hdr[5];
        if (!read_full(fd, hdr, 5))
            return false;
        unsigned len = h_get_u32(hdr + 1);
        if (len < 4 || len > 65536)
            return false;
        unsigned char body[65536];
        if (!read_full(fd, body, len - 4))
            return false;
        if (hdr[0] == 'E')
            return false;
        if (hdr[0] == 'R' && len >= 8 && h_get_u32(body) != 0)
            return false; /* a password is asked for: not supported here */
        if (hdr[0] == 'Z')
            return true;
    }
    return false;
}

bool h_read_error(int fd, const char *sqlstate, int timeout_ms, char *msg, size_t msglen)
{
    unsigned char buf[8192];
    size_t got = 0;
    ssize_t n;
    set_blocking_timeout(fd, timeout_ms);
    /* Until the first message is complete (or EOF, error, timeout, buffer full). */
    while (got < sizeof buf - 1 && !(got >= 5 && got >= 1 + (size_t)h_get_u32(buf + 1)) &&
           (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    if (msg && msglen)
        msg[0] = 0;
    if (got < 6 || buf[0] != 'E')
        return false;
    size_t end = 1 + h_get_u32(buf + 1);
    if (end > got)
        end = got;
    bool found = false;
    /* Fields: a type byte then a NUL-terminated string, until a 0 type byte. */
    for (size_t i = 5; i < end && buf[i] != 0;) {
        char type = (char)buf[i++];
        const char *val = (const char *)buf + i;
        size_t vl = strnlen(val, end - i);
        if (type == 'C' && vl == 5 && memcmp(val, sqlstate, 5) == 0)
            found = true;
        if (type == 'M' && msg && msglen)
            snprintf(msg, msglen, "%.*s", (int)vl, val);
        i += vl + 1;
    }
    return found;
}

long h_proc_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = atol(line + 6);
            break;
        }
    fclose(f);
    return kb;
}

/* MD5 after RFC 1321. */
#define MD5_ROTL(x, c) (((x) << (c)) | ((x) >> (32 - (c))))

static const unsigned md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
    0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
    0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
    0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
    0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
    0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
    0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
    0xeb86d391};
static const unsigned char md5_r[64] = {7,  12, 17, 22, 7,  12, 17, 22, 7,  12, 17, 22, 7,
                                        12, 17, 22, 5,  9,  14, 20, 5,  9,  14, 20, 5,  9,
                                        14, 20, 5,  9,  14, 20, 4,  11, 16, 23, 4,  11, 16,
                                        23, 4,  11, 16, 23, 4,  11, 16, 23, 6,  10, 15, 21,
                                        6,  10, 15, 21, 6,  10, 15, 21, 6,  10, 15, 21};

static void md5_block(h_md5 *m, const unsigned char *p)
{
    unsigned w[16];
    for (int i = 0; i < 16; i++)
        w[i] = (unsigned)p[i * 4] | (unsigned)p[i * 4 + 1] << 8 | (unsigned)p[i * 4 + 2] << 16 |
               (unsigned)p[i * 4 + 3] << 24;
    unsigned a = m->a, b = m->b, c = m->c, d = m->d;
    for (unsigned i = 0; i < 64; i++) {
        unsigned f, g;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) % 16;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) % 16;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) % 16;
        }
        unsigned t = d;
        d = c;
        c = b;
        b = b + MD5_ROTL(a + f + md5_k[i] + w[g], md5_r[i]);
        a = t;
    }
    m->a += a;
    m->b += b;
    m->c += c;
    m->d += d;
}

void h_md5_init(h_md5 *m)
{
    m->a = 0x67452301;
    m->b = 0xefcdab89;
    m->c = 0x98badcfe;
    m->d = 0x10325476;
    m->len = 0;
}

void h_md5_update(h_md5 *m, const void *data, size_t n)
{
    const unsigned char *p = data;
    size_t have = (size_t)(m->len % 64);
    m->len += n;
    if (have) {
        size_t take = 64 - have < n ? 64 - have : n;
        memcpy(m->buf + have, p, take);
        p += take;
        n -= take;
        if (have + take < 64)
            return;
        md5_block(m, m->buf);
    }
    for (; n >= 64; p += 64, n -= 64)
        md5_block(m, p);
    memcpy(m->buf, p, n);
}

void h_md5_hex(h_md5 *m, char out[33])
{
    unsigned long long bits = m->len * 8;
    unsigned char pad[72] = {0x80};
    size_t have = (size_t)(m->len % 64);
    size_t padlen = have < 56 ? 56 - have : 120 - have;
    h_md5_update(m, pad, padlen);
    unsigned char lb[8];
    for (int i = 0; i < 8; i++)
        lb[i] = (unsigned char)(bits >> (8 * i));
    h_md5_update(m, lb, 8);
    unsigned v[4] = {m->a, m->b, m->c, m->d};
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", (v[i / 4] >> (8 * (i % 4))) & 0xff);
}

/* ---------- addition for the console tests (see harness.h) ---------- */

void h_proxy_start_with_config(h_proxy *p, const char *path, const char *const *extra_sets)
{
    proxy_spawn(p, path, extra_sets);
}

const char *const h_setting_names[] = {
    "listen_addr",          "listen_port",         "unix_socket_dir",
    "server_host",          "server_port",         "control_addr",
    "control_port",         "control_role",        "workers",
    "max_client_conn",      "max_control_conn",    "client_login_timeout",
    "max_packet_size",      "max_prepared_statements_bytes", "client_tls_mode",     "client_tls_cert_file",
    "client_tls_key_file",  "client_tls_ca_file",  "client_tls_protocols",
    "client_tls_ciphers",
    "server_tls_mode",      "server_tls_ca_file",  "hold_timeout_ms",
    "shutdown_timeout",     "log_level",           "migration_conninfo",
    "batch_size",           "target_batch_ms",     "max_rows_per_second", "batch_threshold_rows",
    "lock_timeout_ms",      "cutover_attempts",    "cutover",
    "instant_ddl",          "revert_window",       "revert_window_old_table",
};
const int h_nsettings = (int)(sizeof h_setting_names / sizeof h_setting_names[0]);
