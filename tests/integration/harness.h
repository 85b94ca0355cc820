/*
 * harness.h — integration test helpers: the throwaway PostgreSQL of scripts/pg (read
 * from PGHOST/PGPORT/PGUSER; a test that finds none fails, it does not skip) and
 * pgcutover processes a test starts on free loopback ports and stops by pid.
 */
#ifndef PGC_HARNESS_H
#define PGC_HARNESS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    int port;          /* listen_port (clients) */
    int control_port;  /* control console */
    char sockdir[256]; /* unix_socket_dir */
    char log[300];     /* its stderr, for the test's failure output */
} h_proxy;

/* h_pg_host/h_pg_port/h_pg_user — the cluster, from the environment; fail if unset. */
const char *h_pg_host(void);
int h_pg_port(void);
const char *h_pg_user(void);
/* h_tmpdir — PGC_TMPDIR or /tmp. */
const char *h_tmpdir(void);

/* h_free_port — a currently free loopback TCP port (bind to 0, read it, close). */
int h_free_port(void);

/*
 * h_proxy_start — start pgcutover in front of the cluster with its own ports and unix
 * socket dir, plus extra "NAME=VALUE" settings (NULL-terminated array, may be NULL).
 * Waits until the client and control ports accept (10 s). Fails the test on error.
 */
void h_proxy_start(h_proxy *p, const char *const *extra_sets);
/* h_proxy_stop — SIGTERM, wait up to 10 s, then SIGKILL; reaps the pid. Returns the
 * exit status as from waitpid. */
int h_proxy_stop(h_proxy *p);
/* h_stop_pid — stop child *pid (nothing when <= 0): SIGTERM, wait up to grace_ms, then
 * SIGKILL; reaps it and sets *pid to 0. Returns the exit status as from waitpid, or -1. */
int h_stop_pid(pid_t *pid, int grace_ms);
/* h_spawn — fork and exec argv[0] (a path) with argv, stdin from /dev/null, stdout and
 * stderr into the files out and err (truncated). Returns the child's pid; fails the test
 * when fork fails (the child exits 127 when it cannot exec). */
pid_t h_spawn(const char *const *argv, const char *out, const char *err);
/* h_pgbench_bin — Debian's PostgreSQL 15 pgbench when present, else "pgbench" (PATH). */
const char *h_pgbench_bin(void);
/* h_slurp — the text of the file at path (at most 256 KiB) in a static buffer, overwritten
 * by the next call; "" when unreadable. */
const char *h_slurp(const char *path);
/* h_proxy_signal — send sig to the proxy's pid. */
void h_proxy_signal(h_proxy *p, int sig);

/* h_connect — PQconnectdb with conninfo; fails the test unless CONNECTION_OK. */
PGconn *h_connect(const char *conninfo);
/* h_conninfo_proxy / h_conninfo_direct — "host=127.0.0.1 port=N user=U dbname=D" plus
 * extra (may be NULL) into a static per-call buffer owned by the harness (rotating, 8). */
const char *h_conninfo_proxy(const h_proxy *p, const char *extra);
const char *h_conninfo_direct(const char *extra);

/* h_exec — run sql, fail the test unless it returns PGRES_COMMAND_OK/TUPLES_OK. Returns
 * the result (caller PQclear's it). */
PGresult *h_exec(PGconn *c, const char *sql);
/* h_exec_ok — h_exec and PQclear. */
void h_exec_ok(PGconn *c, const char *sql);
/* h_query_int — first column of first row as long long; fails on error or NULL. */
long long h_query_int(PGconn *c, const char *sql);

/* h_shell — run a shell command (sh -c), return its exit status (0..255, or -1). */
int h_shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* h_now_ms — CLOCK_MONOTONIC in milliseconds. */
double h_now_ms(void);

/* h_put_u32 / h_get_u32 — big-endian int32 as on the wire ("Message Formats"). */
void h_put_u32(unsigned char *p, unsigned v);
unsigned h_get_u32(const unsigned char *p);

/* h_setting_names — every setting of conf/conf.c's table, in table order, written out
 * by hand so tests check the binary against an independent list; h_nsettings rows. */
extern const char *const h_setting_names[];
extern const int h_nsettings;


/* ---- additions for the proxy integration tests (raw protocol, databases, roles,
 * process memory, checksums). ---- */

/* h_recreate_db — via a direct superuser connection: DROP DATABASE IF EXISTS name
 * WITH (FORCE), then CREATE DATABASE name. Fails the test on error. */
void h_recreate_db(const char *name);
/* h_drop_db — DROP DATABASE IF EXISTS name WITH (FORCE) (direct connection). */
void h_drop_db(const char *name);
/* h_exec_direct — run one statement on a short-lived direct superuser connection to
 * database "postgres"; fails the test on error. */
void h_exec_direct(const char *sql);
/* h_conninfo_proxy_db — like h_conninfo_proxy but for database db (rotating buffer). */
const char *h_conninfo_proxy_db(const h_proxy *p, const char *db, const char *extra);

/* h_raw_connect — a blocking TCP socket connected to 127.0.0.1:port (fails the test). */
int h_raw_connect(int port);
/* h_raw_login — send a protocol 3.0 StartupMessage for user/database on fd and read the
 * server's answer up to and including ReadyForQuery (trust authentication only).
 * Returns true on ReadyForQuery, false on an ErrorResponse, EOF or timeout (5 s). */
bool h_raw_login(int fd, const char *user, const char *database);
/* h_read_error — read the first message from fd (waits up to timeout_ms; the socket is
 * switched to blocking mode with a receive timeout, so it works on a libpq socket, which
 * is non-blocking) and return whether it is an ErrorResponse whose SQLSTATE is sqlstate.
 * Bytes after the first message may be consumed too.
 * When msg is not NULL, the 'M' field is copied there (msglen bytes, NUL-terminated). */
bool h_read_error(int fd, const char *sqlstate, int timeout_ms, char *msg, size_t msglen);

/* h_proc_rss_kb — VmRSS of pid in kB from /proc/<pid>/status, or -1. */
long h_proc_rss_kb(pid_t pid);

/* h_md5 — MD5 (RFC 1321), incremental, for comparing data with PostgreSQL's md5(). */
typedef struct {
    unsigned int a, b, c, d;
    unsigned long long len;
    unsigned char buf[64];
} h_md5;
void h_md5_init(h_md5 *m);
void h_md5_update(h_md5 *m, const void *data, size_t n);
/* h_md5_hex — finish and write 32 lowercase hex digits + NUL into out (33 bytes). */
void h_md5_hex(h_md5 *m, char out[33]);

/* ---- addition for the console tests: a proxy that reads a configuration file. ---- */

/* h_proxy_start_with_config — like h_proxy_start, but pgcutover also gets "-c path"
 * (the --set options of h_proxy_start still override the file, also on RELOAD/SIGHUP,
 * which re-read the file and re-apply them). */
void h_proxy_start_with_config(h_proxy *p, const char *path, const char *const *extra_sets);

#endif
