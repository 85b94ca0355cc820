/*
 * test_console.c — the control console (proxy/px_control.c, px_control_show.c) end to
 * end: typed SHOW results, several commands per query string, psql --csv, errors with
 * SQLSTATEs, who is admitted (superuser, control_role member, SCRAM login) and who is
 * not, RELOAD/SIGHUP with good and bad files, PAUSE/RESUME under pgbench, SHUTDOWN,
 * and that nothing is answered before PostgreSQL has authenticated the user and the
 * role check has passed.
 *
 * Cluster-wide names start with con_ (roles con_plain, con_nonadmin, con_scram;
 * database con_bench); pgcutover_admin is shared with other tests and only created.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"

#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT4 23
#define OID_TEXT 25
#define OID_FLOAT8 701
#define OID_TIMESTAMPTZ 1184

#define BENCH_DB "con_bench"
#define SCRAM_PW "con_pw_7Hq"

static h_proxy px; /* shared by most tests */
/* started by single tests; teardown stops them should a test fail half way */
static h_proxy px_reload, px_shut;
static pid_t bench_pid;


/* ---------- helpers ---------- */

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Run sql on a direct superuser connection; errors that concurrent tests can cause
 * on shared roles (duplicate object, unique violation, tuple concurrently updated)
 * are retried a few times and then tolerated. Other errors fail the test. */
static void exec_direct_tolerant(const char *sql)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        PGconn *c = h_connect(h_conninfo_direct(NULL));
        PQsetNoticeProcessor(c, quiet_notice, NULL);
        PGresult *r = PQexec(c, sql);
        ExecStatusType s = PQresultStatus(r);
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        char state[6] = "";
        char err[512];
        snprintf(state, sizeof state, "%s", st ? st : "");
        snprintf(err, sizeof err, "%s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
            return;
        if (strcmp(state, "42710") == 0)
            return; /* already exists */
        if (strcmp(state, "23505") == 0 || strcmp(state, "XX000") == 0 ||
            strcmp(state, "40001") == 0) {
            usleep(100000);
            continue;
        }
        fail_msg("%s: %s", sql, err);
    }
}

static const char *console_conninfo(const h_proxy *p, const char *user, const char *extra)
{
    static char bufs[4][512];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, 512, "host=127.0.0.1 port=%d dbname=postgres user=%.200s sslmode=disable %.200s",
             p->control_port, user, extra ? extra : "");
    return b;
}

static PGconn *console(const h_proxy *p)
{
    PGconn *c = h_connect(console_conninfo(p, h_pg_user(), NULL));
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    return c;
}

static int col(const PGresult *r, const char *name)
{
    int i = PQfnumber(r, name);
    if (i < 0)
        fail_msg("result has no column \"%s\"", name);
    return i;
}

/* The value of column name in the SHOW CONFIG row of setting; static buffer. */
static const char *config_value(PGconn *c, const char *setting, const char *column)
{
    static char v[512];
    PGresult *r = h_exec(c, "SHOW CONFIG");
    int cn = col(r, "name"), cv = col(r, column);
    v[0] = 0;
    bool found = false;
    for (int i = 0; i < PQntuples(r); i++)
        if (strcmp(PQgetvalue(r, i, cn), setting) == 0) {
            snprintf(v, sizeof v, "%s", PQgetvalue(r, i, cv));
            found = true;
        }
    PQclear(r);
    if (!found)
        fail_msg("SHOW CONFIG has no row %s", setting);
    return v;
}

/* SHOW STATS, one column's value as text (static buffer). */
static const char *stat_value(PGconn *c, const char *column)
{
    static char v[128];
    PGresult *r = h_exec(c, "SHOW STATS");
    assert_int_equal(PQntuples(r), 1);
    snprintf(v, sizeof v, "%s", PQgetvalue(r, 0, col(r, column)));
    PQclear(r);
    return v;
}

/* Run sql expecting an ErrorResponse; returns the result (caller PQclear's). */
static PGresult *exec_error(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_FATAL_ERROR)
        fail_msg("%s: expected an error, got %s", sql, PQresStatus(PQresultStatus(r)));
    return r;
}

static const char *sqlstate_of(const PGresult *r)
{
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return s ? s : "";
}

static const char *field_of(const PGresult *r, int field)
{
    const char *s = PQresultErrorField(r, field);
    return s ? s : "";
}

static char *read_file_text(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
}

static void write_file_text(const char *path, const char *text)
{
    /* write a temporary file and rename it, so a reload never sees half a file */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static const char *pg_bin(const char *name)
{
    static char p[256];
    snprintf(p, sizeof p, "/usr/lib/postgresql/15/bin/%s", name);
    if (access(p, X_OK) == 0)
        return p;
    snprintf(p, sizeof p, "%s", name);
    return p;
}

/* ---------- raw protocol helpers ---------- */

static size_t build_startup(unsigned char *pkt, size_t cap, const char *user, const char *db)
{
    size_t n = 8;
    h_put_u32(pkt + 4, 196608);
    n += (size_t)snprintf((char *)pkt + n, cap - n, "user") + 1;
    n += (size_t)snprintf((char *)pkt + n, cap - n, "%s", user) + 1;
    n += (size_t)snprintf((char *)pkt + n, cap - n, "database") + 1;
    n += (size_t)snprintf((char *)pkt + n, cap - n, "%s", db) + 1;
    pkt[n++] = 0;
    h_put_u32(pkt, (unsigned)n);
    return n;
}

/* A StartupMessage with an options parameter too (as libpq sends PGOPTIONS). */
static size_t build_startup_opts(unsigned char *pkt, size_t cap, const char *user, const char *db,
                                 const char *options)
{
    size_t n = build_startup(pkt, cap, user, db) - 1; /* drop the terminator */
    n += (size_t)snprintf((char *)pkt + n, cap - n, "options") + 1;
    n += (size_t)snprintf((char *)pkt + n, cap - n, "%s", options) + 1;
    pkt[n++] = 0;
    h_put_u32(pkt, (unsigned)n);
    return n;
}

static size_t build_query(unsigned char *pkt, size_t cap, const char *sql)
{
    size_t l = strlen(sql) + 1;
    assert_true(l + 5 <= cap);
    pkt[0] = 'Q';
    h_put_u32(pkt + 1, (unsigned)(4 + l));
    memcpy(pkt + 5, sql, l);
    return 5 + l;
}

/* Read from fd until EOF or until timeout_ms have passed; *closed says EOF/reset came. */
static size_t read_for(int fd, unsigned char *buf, size_t cap, int timeout_ms, bool *closed)
{
    size_t got = 0;
    double deadline = h_now_ms() + timeout_ms;
    *closed = false;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    while (got < cap) {
        double left = deadline - h_now_ms();
        if (left <= 0)
            break;
        struct timeval tv = {(long)left / 1000, ((long)left % 1000) * 1000 + 1};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ssize_t n = read(fd, buf + got, cap - got);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            *closed = true;
            break;
        }
    }
    return got;
}

/* Whether buf (a stream of backend messages) holds an ErrorResponse with sqlstate;
 * its message goes to msg. */
static bool stream_has_error(const unsigned char *buf, size_t n, const char *sqlstate, char *msg,
                             size_t msglen)
{
    size_t i = 0;
    if (msg)
        msg[0] = 0;
    while (i + 5 <= n) {
        unsigned len = h_get_u32(buf + i + 1);
        if (len < 4 || i + 1 + len > n)
            break;
        if (buf[i] == 'E') {
            bool match = false;
            for (size_t j = i + 5; j < i + 1 + len && buf[j] != 0;) {
                char type = (char)buf[j++];
                const char *val = (const char *)buf + j;
                size_t vl = strnlen(val, i + 1 + len - j);
                if (type == 'C' && vl == 5 && memcmp(val, sqlstate, 5) == 0)
                    match = true;
                if (type == 'M' && msg)
                    snprintf(msg, msglen, "%.*s", (int)vl, val);
                j += vl + 1;
            }
            if (match)
                return true;
        }
        i += 1 + len;
    }
    return false;
}

static bool mem_has(const unsigned char *buf, size_t n, const char *needle)
{
    size_t l = strlen(needle);
    for (size_t i = 0; i + l <= n; i++)
        if (memcmp(buf + i, needle, l) == 0)
            return true;
    return false;
}

/* ---------- setup ---------- */

static int setup(void **state)
{
    (void)state;
    exec_direct_tolerant("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                         "'pgcutover_admin') THEN CREATE ROLE pgcutover_admin; END IF; END$$");
    h_exec_direct("DROP ROLE IF EXISTS con_plain");
    h_exec_direct("DROP ROLE IF EXISTS con_nonadmin");
    h_exec_direct("DROP ROLE IF EXISTS con_scram");
    h_exec_direct("DROP SCHEMA IF EXISTS con_spoof CASCADE");
    h_exec_direct("DROP ROLE IF EXISTS con_spoof");
    h_exec_direct("CREATE ROLE con_plain LOGIN");
    h_exec_direct("CREATE ROLE con_nonadmin LOGIN");
    h_exec_direct("SET password_encryption = 'scram-sha-256'; "
                  "CREATE ROLE con_scram LOGIN PASSWORD '" SCRAM_PW "'");
    exec_direct_tolerant("GRANT pgc_scram TO con_scram");
    exec_direct_tolerant("GRANT pgcutover_admin TO con_scram");
    /* con_spoof: SCRAM login, not a superuser, not in pgcutover_admin, and its own
     * pg_roles (everyone a superuser) and pg_has_role (always true) in its schema. */
    h_exec_direct("SET password_encryption = 'scram-sha-256'; "
                  "CREATE ROLE con_spoof LOGIN PASSWORD '" SCRAM_PW "'");
    exec_direct_tolerant("GRANT pgc_scram TO con_spoof");
    h_exec_direct("CREATE SCHEMA con_spoof AUTHORIZATION con_spoof; SET ROLE con_spoof; "
                  "CREATE VIEW con_spoof.pg_roles AS SELECT r.rolname, true AS rolsuper, r.oid "
                  "FROM pg_catalog.pg_roles r; "
                  "CREATE FUNCTION con_spoof.pg_has_role(name, oid, text) RETURNS boolean "
                  "LANGUAGE sql AS 'SELECT true'; "
                  "CREATE FUNCTION con_spoof.pg_has_role(name, name, text) RETURNS boolean "
                  "LANGUAGE sql AS 'SELECT true'; RESET ROLE");
    h_proxy_start(&px, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (bench_pid > 0) {
        kill(bench_pid, SIGKILL);
        waitpid(bench_pid, NULL, 0);
        bench_pid = 0;
    }
    h_proxy_stop(&px_reload);
    h_proxy_stop(&px_shut);
    int st = h_proxy_stop(&px);
    h_drop_db(BENCH_DB);
    h_exec_direct("DROP ROLE IF EXISTS con_plain");
    h_exec_direct("DROP ROLE IF EXISTS con_nonadmin");
    h_exec_direct("DROP ROLE IF EXISTS con_scram");
    h_exec_direct("DROP SCHEMA IF EXISTS con_spoof CASCADE");
    h_exec_direct("DROP ROLE IF EXISTS con_spoof");
    if (st != 0) {
        h_shell("tail -n 50 %s >&2", px.log);
        fail_msg("pgcutover exit status %d on SIGTERM", st);
    }
    return 0;
}

/* ---------- typed results ---------- */

static void test_show_stats_types(void **state)
{
    (void)state;
    PGconn *c = console(&px);
    PGresult *r = h_exec(c, "SHOW STATS");
    static const struct {
        const char *name;
        unsigned oid;
    } want[] = {
        {"clients", OID_INT8},          {"xacts", OID_INT8},
        {"queries", OID_INT8},          {"bytes_in", OID_INT8},
        {"bytes_out", OID_INT8},        {"latency_p50_ms", OID_FLOAT8},
        {"latency_p99_ms", OID_FLOAT8}, {"latency_max_ms", OID_FLOAT8},
        {"hold_active", OID_BOOL},      {"held_waits", OID_INT8},
        {"held_total_ms", OID_FLOAT8},  {"held_max_ms", OID_FLOAT8},
        {"prepared_reprepared", OID_INT8}, {"prepared_sessions", OID_INT8},
        {"prepared_left", OID_INT8},    {"prepared_untracked", OID_INT8},
        {"prepared_ms", OID_FLOAT8},
    };
    assert_int_equal(PQnfields(r), (int)(sizeof want / sizeof want[0]));
    assert_int_equal(PQntuples(r), 1);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_string_equal(PQfname(r, (int)i), want[i].name);
        if (PQftype(r, (int)i) != want[i].oid)
            fail_msg("SHOW STATS %s: type %u, want %u", want[i].name, PQftype(r, (int)i),
                     want[i].oid);
        assert_false(PQgetisnull(r, 0, (int)i));
    }
    assert_string_equal(PQgetvalue(r, 0, col(r, "hold_active")), "f");
    /* the console session itself is not counted as a client */
    assert_true(atoll(PQgetvalue(r, 0, col(r, "clients"))) >= 0);
    assert_string_equal(PQcmdStatus(r), "SHOW");
    PQclear(r);
    PQfinish(c);
}

static void test_show_clients_and_servers(void **state)
{
    (void)state;
    char app[64];
    snprintf(app, sizeof app, "con_app_%d", (int)getpid());
    char extra[128];
    snprintf(extra, sizeof extra, "application_name=%s", app);
    PGconn *a = h_connect(h_conninfo_proxy(&px, extra));
    assert_int_equal(h_query_int(a, "SELECT 1"), 1);
    int bpid = PQbackendPID(a);
    assert_true(bpid > 0);

    PGconn *c = console(&px);
    PGresult *r = h_exec(c, "SHOW CLIENTS");
    assert_int_equal(PQftype(r, col(r, "connect_time")), OID_TIMESTAMPTZ);
    assert_int_equal(PQftype(r, col(r, "id")), OID_INT8);
    assert_int_equal(PQftype(r, col(r, "tls")), OID_BOOL);
    assert_int_equal(PQftype(r, col(r, "held_ms")), OID_FLOAT8);
    assert_int_equal(PQftype(r, col(r, "backend_pid")), OID_INT4);
    assert_int_equal(PQftype(r, col(r, "application_name")), OID_TEXT);
    int found = -1, consoles = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        if (strcmp(PQgetvalue(r, i, col(r, "type")), "control") == 0)
            consoles++;
        if (strcmp(PQgetvalue(r, i, col(r, "application_name")), app) == 0) {
            assert_int_equal(found, -1);
            found = i;
        }
    }
    if (found < 0)
        fail_msg("SHOW CLIENTS does not list application_name %s", app);
    assert_true(consoles >= 1); /* our own console session */
    assert_string_equal(PQgetvalue(r, found, col(r, "type")), "client");
    assert_string_equal(PQgetvalue(r, found, col(r, "user")), h_pg_user());
    assert_string_equal(PQgetvalue(r, found, col(r, "database")), "postgres");
    assert_string_equal(PQgetvalue(r, found, col(r, "state")), "idle");
    assert_string_equal(PQgetvalue(r, found, col(r, "tls")), "f");
    assert_int_equal(atoi(PQgetvalue(r, found, col(r, "backend_pid"))), bpid);
    assert_true(atoll(PQgetvalue(r, found, col(r, "queries"))) >= 1);
    assert_non_null(strstr(PQgetvalue(r, found, col(r, "addr")), "127.0.0.1"));
    /* a timestamptz PostgreSQL itself accepts, within a minute of now */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT abs(extract(epoch FROM now() - '%s'::timestamptz)) < 60",
             PQgetvalue(r, found, col(r, "connect_time")));
    long long client_id = atoll(PQgetvalue(r, found, col(r, "id")));
    PQclear(r);
    PGresult *t = h_exec(a, sql);
    assert_string_equal(PQgetvalue(t, 0, 0), "t");
    PQclear(t);

    r = h_exec(c, "SHOW SERVERS");
    assert_int_equal(PQftype(r, col(r, "client_id")), OID_INT8);
    assert_int_equal(PQftype(r, col(r, "backend_pid")), OID_INT4);
    found = -1;
    for (int i = 0; i < PQntuples(r); i++)
        if (!PQgetisnull(r, i, col(r, "backend_pid")) &&
            atoi(PQgetvalue(r, i, col(r, "backend_pid"))) == bpid)
            found = i;
    if (found < 0)
        fail_msg("SHOW SERVERS does not list backend pid %d", bpid);
    assert_int_equal(atoll(PQgetvalue(r, found, col(r, "client_id"))), client_id);
    assert_string_equal(PQgetvalue(r, found, col(r, "state")), "linked");
    char server[64];
    snprintf(server, sizeof server, "%s:%d", h_pg_host(), h_pg_port());
    assert_string_equal(PQgetvalue(r, found, col(r, "server")), server);
    PQclear(r);

    /* gone from both lists once it disconnects */
    PQfinish(a);
    bool gone = false;
    for (int k = 0; k < 100 && !gone; k++) {
        r = h_exec(c, "SHOW CLIENTS");
        gone = true;
        for (int i = 0; i < PQntuples(r); i++)
            if (strcmp(PQgetvalue(r, i, col(r, "application_name")), app) == 0)
                gone = false;
        PQclear(r);
        if (!gone)
            usleep(20000);
    }
    assert_true(gone);
    PQfinish(c);
}

static bool result_has_name(const PGresult *r, int column, const char *name)
{
    for (int i = 0; i < PQntuples(r); i++)
        if (strcmp(PQgetvalue(r, i, column), name) == 0)
            return true;
    return false;
}

static void test_show_config_lists_every_setting(void **state)
{
    (void)state;
    PGconn *c = console(&px);
    PGresult *r = h_exec(c, "SHOW CONFIG");
    assert_int_equal(PQnfields(r), 5);
    assert_int_equal(PQftype(r, col(r, "reloadable")), OID_BOOL);
    int cn = col(r, "name");
    for (int i = 0; i < h_nsettings; i++)
        if (!result_has_name(r, cn, h_setting_names[i]))
            fail_msg("SHOW CONFIG lacks %s", h_setting_names[i]);
    assert_int_equal(PQntuples(r), h_nsettings);

    /* and the same names as `pgcutover --help` (both come from the settings table) */
    char path[512], text[32768];
    snprintf(path, sizeof path, "%s/help.txt", px.sockdir);
    assert_int_equal(h_shell("%s --help >%s 2>&1", PGC_BIN, path), 0);
    read_file_text(path, text, sizeof text);
    int nhelp = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char name[64];
        /* setting lines look like "  name = default  (reload; ...)" */
        if (strncmp(line, "  ", 2) != 0 || line[2] == ' ' || line[2] == '-')
            continue;
        if (sscanf(line + 2, "%63[a-z_] =", name) != 1 || strstr(line, " = ") == NULL)
            continue;
        nhelp++;
        if (!result_has_name(r, cn, name))
            fail_msg("--help lists %s but SHOW CONFIG does not", name);
    }
    assert_int_equal(nhelp, PQntuples(r));
    PQclear(r);

    /* values: the harness's --set options, and defaults elsewhere */
    char port[16];
    snprintf(port, sizeof port, "%d", px.port);
    assert_string_equal(config_value(c, "listen_port", "value"), port);
    snprintf(port, sizeof port, "%d", px.control_port);
    assert_string_equal(config_value(c, "control_port", "value"), port);
    assert_string_equal(config_value(c, "control_role", "value"), "pgcutover_admin");
    assert_string_equal(config_value(c, "log_level", "reloadable"), "t");
    assert_string_equal(config_value(c, "listen_port", "reloadable"), "f");
    assert_string_equal(config_value(c, "max_packet_size", "value"), "1GB");
    PQfinish(c);
}

static void test_help_returns_rows(void **state)
{
    (void)state;
    PGconn *c = console(&px);
    PGresult *r = h_exec(c, "HELP");
    assert_int_equal(PQnfields(r), 2);
    assert_true(PQntuples(r) >= 9);
    int cc = col(r, "command");
    static const char *const cmds[] = {"SHOW CLIENTS", "SHOW SERVERS", "SHOW STATS",
                                       "SHOW CONFIG",  "PAUSE",        "RESUME",
                                       "RELOAD",       "SHUTDOWN",     "HELP"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!result_has_name(r, cc, cmds[i]))
            fail_msg("HELP does not list %s", cmds[i]);
    PQclear(r);
    PQfinish(c);
}

/* ---------- several commands, case, semicolons ---------- */

static void test_several_commands_in_one_query(void **state)
{
    (void)state;
    PGconn *c = console(&px);
    /* PQexec keeps the last result: HELP's */
    PGresult *r = h_exec(c, "show stats; help;");
    assert_int_equal(PQnfields(r), 2);
    assert_string_equal(PQfname(r, 0), "command");
    PQclear(r);

    /* each result separately */
    assert_int_equal(PQsendQuery(c, "show stats; help;"), 1);
    int n = 0;
    while ((r = PQgetResult(c)) != NULL) {
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        if (n == 0) {
            assert_int_equal(PQnfields(r), 17);
            assert_string_equal(PQfname(r, 0), "clients");
        } else if (n == 1) {
            assert_string_equal(PQfname(r, 0), "command");
        }
        n++;
        PQclear(r);
        assert_true(n < 10);
    }
    assert_int_equal(n, 2);

    /* mixed case, surrounding white space, several semicolons */
    r = h_exec(c, "  Show Config ;; ;\n");
    assert_int_equal(PQntuples(r), h_nsettings);
    PQclear(r);

    /* the first error stops the rest, like PostgreSQL's multi-statement query */
    assert_int_equal(PQsendQuery(c, "help; no such thing; show stats"), 1);
    ExecStatusType st[4];
    n = 0;
    char state3[6] = "";
    while ((r = PQgetResult(c)) != NULL) {
        if (n < 4)
            st[n] = PQresultStatus(r);
        if (PQresultStatus(r) == PGRES_FATAL_ERROR)
            snprintf(state3, sizeof state3, "%s", sqlstate_of(r));
        n++;
        PQclear(r);
        assert_true(n < 10);
    }
    assert_int_equal(n, 2);
    assert_int_equal(st[0], PGRES_TUPLES_OK);
    assert_int_equal(st[1], PGRES_FATAL_ERROR);
    assert_string_equal(state3, "42601");

    /* a semicolon inside a quoted string does not split */
    r = exec_error(c, "show 'a;b'");
    assert_string_equal(sqlstate_of(r), "42601");
    assert_non_null(strstr(field_of(r, PG_DIAG_MESSAGE_PRIMARY), "'a;b'"));
    PQclear(r);

    /* empty query strings get EmptyQueryResponse */
    r = PQexec(c, "");
    assert_int_equal(PQresultStatus(r), PGRES_EMPTY_QUERY);
    PQclear(r);
    r = PQexec(c, " ; ");
    assert_int_equal(PQresultStatus(r), PGRES_EMPTY_QUERY);
    PQclear(r);
    assert_string_equal(stat_value(c, "hold_active"), "f");
    PQfinish(c);
}

static void test_psql_csv(void **state)
{
    (void)state;
    char out[512], text[8192];
    snprintf(out, sizeof out, "%s/stats.csv", px.sockdir);
    int rc = h_shell("PGSSLMODE=disable %s -X --csv -h 127.0.0.1 -p %d -U %s -d postgres "
                     "-c 'SHOW STATS' >%s 2>&1",
                     pg_bin("psql"), px.control_port, h_pg_user(), out);
    read_file_text(out, text, sizeof text);
    if (rc != 0)
        fail_msg("psql --csv exited %d:\n%s", rc, text);
    int lines = 0;
    for (char *p = text; *p; p++)
        if (*p == '\n')
            lines++;
    if (lines != 2)
        fail_msg("psql --csv SHOW STATS: %d lines, want 2:\n%s", lines, text);
    const char *header = "clients,xacts,queries,bytes_in,bytes_out,latency_p50_ms,latency_p99_ms,"
                         "latency_max_ms,hold_active,held_waits,held_total_ms,held_max_ms,"
                         "prepared_reprepared,prepared_sessions,prepared_left,"
                         "prepared_untracked,prepared_ms\n";
    if (strncmp(text, header, strlen(header)) != 0)
        fail_msg("psql --csv header:\n%s", text);
    const char *row = text + strlen(header);
    int commas = 0;
    for (const char *p = row; *p && *p != '\n'; p++)
        commas += *p == ',';
    assert_int_equal(commas, 16);
    assert_true(row[0] >= '0' && row[0] <= '9');

    /* SHOW CONFIG: header + one line per setting */
    snprintf(out, sizeof out, "%s/config.csv", px.sockdir);
    rc = h_shell("PGSSLMODE=disable %s -X --csv -h 127.0.0.1 -p %d -U %s -d postgres "
                 "-c 'show config' >%s 2>&1",
                 pg_bin("psql"), px.control_port, h_pg_user(), out);
    read_file_text(out, text, sizeof text);
    if (rc != 0)
        fail_msg("psql --csv show config exited %d:\n%s", rc, text);
    assert_int_equal(strncmp(text, "name,value,default,reloadable,doc\n", 34), 0);
    lines = 0;
    for (char *p = text; *p; p++)
        if (*p == '\n')
            lines++;
    assert_int_equal(lines, h_nsettings + 1);
}

/* ---------- errors ---------- */

static void test_unknown_command(void **state)
{
    (void)state;
    PGconn *c = console(&px);
    PGresult *r = exec_error(c, "SHOW NOTHING");
    assert_string_equal(sqlstate_of(r), "42601");
    assert_non_null(strstr(field_of(r, PG_DIAG_MESSAGE_HINT), "HELP"));
    assert_string_equal(field_of(r, PG_DIAG_SEVERITY_NONLOCALIZED), "ERROR");
    PQclear(r);
    r = exec_error(c, "SELECT 1");
    assert_string_equal(sqlstate_of(r), "42601");
    PQclear(r);
    /* still usable */
    assert_string_equal(stat_value(c, "hold_active"), "f");
    PQfinish(c);
}

static void test_migration_commands_are_recognized(void **state)
{
    (void)state;
    PGconn *c = console(&px);
    /* Commands that must fail also once the engine exists (no such table / migration).
     * Whatever the error, it is not "unknown command". */
    static const char *const must_fail[] = {
        "ALTER TABLE con_no_such_table ADD COLUMN x int",
        "alter table con_no_such_table alter column a type bigint",
        "PLAN ALTER TABLE con_no_such_table ADD COLUMN x int",
        "SHOW MIGRATION 987654",
        "PAUSE MIGRATION 987654",
        "RESUME MIGRATION 987654",
        "SET MIGRATION 987654 batch_size = 100",
        "CUTOVER MIGRATION 987654",
        "ABORT MIGRATION 987654",
        "DROP MIGRATION 987654",
    };
    for (size_t i = 0; i < sizeof must_fail / sizeof must_fail[0]; i++) {
        PGresult *r = PQexec(c, must_fail[i]);
        if (PQresultStatus(r) != PGRES_FATAL_ERROR)
            fail_msg("%s: %s, want an error", must_fail[i], PQresStatus(PQresultStatus(r)));
        const char *st = sqlstate_of(r);
        if (strlen(st) != 5 || strcmp(st, "42601") == 0)
            fail_msg("%s: SQLSTATE '%s' (%s)", must_fail[i], st,
                     field_of(r, PG_DIAG_MESSAGE_PRIMARY));
        PQclear(r);
        assert_string_equal(stat_value(c, "hold_active"), "f");
    }
    /* These may succeed once the engine exists; they must be recognized either way. */
    static const char *const may_succeed[] = {"SHOW MIGRATIONS", "show migrations;",
                                              "PAUSE MIGRATION ALL", "RESUME MIGRATION ALL"};
    for (size_t i = 0; i < sizeof may_succeed / sizeof may_succeed[0]; i++) {
        PGresult *r = PQexec(c, may_succeed[i]);
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_FATAL_ERROR && strcmp(sqlstate_of(r), "42601") == 0)
            fail_msg("%s: not recognized: %s", may_succeed[i],
                     field_of(r, PG_DIAG_MESSAGE_PRIMARY));
        if (s != PGRES_FATAL_ERROR && s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK)
            fail_msg("%s: %s", may_succeed[i], PQresStatus(s));
        PQclear(r);
    }
    /* PAUSE MIGRATION is not PAUSE: the proxy holds nothing */
    assert_string_equal(stat_value(c, "hold_active"), "f");
    PQfinish(c);
}

static void test_extended_protocol_refused(void **state)
{
    (void)state;
    PGconn *c = console(&px);
    PGresult *r = PQexecParams(c, "SHOW STATS", 0, NULL, NULL, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(sqlstate_of(r), "0A000");
    assert_non_null(strstr(field_of(r, PG_DIAG_MESSAGE_PRIMARY), "simple query protocol"));
    PQclear(r);
    assert_string_equal(stat_value(c, "hold_active"), "f");
    r = PQprepare(c, "s1", "SHOW CONFIG", 0, NULL);
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(sqlstate_of(r), "0A000");
    PQclear(r);
    r = h_exec(c, "SHOW CONFIG");
    assert_int_equal(PQntuples(r), h_nsettings);
    PQclear(r);
    PQfinish(c);
}

static void test_non_admin_refused_then_granted(void **state)
{
    (void)state;
    PGconn *c = PQconnectdb(console_conninfo(&px, "con_plain", NULL));
    assert_int_equal(PQstatus(c), CONNECTION_BAD);
    if (strstr(PQerrorMessage(c), "may not use the pgcutover console") == NULL)
        fail_msg("unexpected error: %s", PQerrorMessage(c));
    assert_non_null(strstr(PQerrorMessage(c), "pgcutover_admin"));
    PQfinish(c);

    /* the SQLSTATE, read off the wire */
    unsigned char pkt[512], buf[16384];
    int fd = h_raw_connect(px.control_port);
    size_t n = build_startup(pkt, sizeof pkt, "con_plain", "postgres");
    assert_int_equal(write(fd, pkt, n), (ssize_t)n);
    bool closed;
    size_t got = read_for(fd, buf, sizeof buf, 5000, &closed);
    char msg[512];
    assert_true(stream_has_error(buf, got, "42501", msg, sizeof msg));
    assert_non_null(strstr(msg, "may not use the pgcutover console"));
    assert_true(closed);
    close(fd);

    /* the application port is not affected */
    PGconn *app = h_connect(h_conninfo_proxy(&px, NULL));
    PQfinish(app);
    char ci[256];
    snprintf(ci, sizeof ci,
             "host=127.0.0.1 port=%d user=con_plain dbname=postgres "
             "sslmode=disable",
             px.port);
    app = h_connect(ci);
    assert_int_equal(h_query_int(app, "SELECT 5"), 5);
    PQfinish(app);

    exec_direct_tolerant("GRANT pgcutover_admin TO con_plain");
    c = h_connect(console_conninfo(&px, "con_plain", NULL));
    PGresult *r = h_exec(c, "SHOW STATS");
    assert_int_equal(PQntuples(r), 1);
    PQclear(r);
    PQfinish(c);
    exec_direct_tolerant("REVOKE pgcutover_admin FROM con_plain");
    c = PQconnectdb(console_conninfo(&px, "con_plain", NULL));
    assert_int_equal(PQstatus(c), CONNECTION_BAD);
    PQfinish(c);
}

static void test_scram_login(void **state)
{
    (void)state;
    PGconn *c = h_connect(console_conninfo(&px, "con_scram", "password=" SCRAM_PW));
    assert_string_equal(stat_value(c, "hold_active"), "f");
    PQfinish(c);

    c = PQconnectdb(console_conninfo(&px, "con_scram", "password=wrong_pw"));
    assert_int_equal(PQstatus(c), CONNECTION_BAD);
    if (strstr(PQerrorMessage(c), "password authentication failed") == NULL)
        fail_msg("unexpected error: %s", PQerrorMessage(c));
    PQfinish(c);

    /* no password at all: libpq gives up, nothing is admitted */
    c = PQconnectdb(console_conninfo(&px, "con_scram", "password=''"));
    assert_int_equal(PQstatus(c), CONNECTION_BAD);
    PQfinish(c);
}

/* Connect to the console as con_spoof with extra conninfo; assert it is refused with
 * 42501 and the console's message (read off the wire by libpq). */
static void assert_spoof_refused(const char *extra)
{
    char ci[600];
    snprintf(ci, sizeof ci, "password=" SCRAM_PW " %s", extra);
    PGconn *c = PQconnectdb(console_conninfo(&px, "con_spoof", ci));
    if (PQstatus(c) == CONNECTION_OK) {
        PQfinish(c);
        fail_msg("con_spoof (%s) was admitted to the console", extra);
    }
    if (strstr(PQerrorMessage(c), "may not use the pgcutover console") == NULL)
        fail_msg("unexpected error for con_spoof (%s): %s", extra, PQerrorMessage(c));
    PQfinish(c);
}

/*
 * Admission cannot be influenced from the user's own session: con_spoof's schema has a
 * pg_roles view saying everyone is a superuser and pg_has_role functions answering true.
 * With search_path con_spoof,pg_catalog from options=-c… and then from ALTER ROLE … SET,
 * the console still refuses it (42501, on the wire). Granted pgcutover_admin it is
 * admitted with the same search_path; the superuser is admitted.
 */
static void test_search_path_cannot_spoof_admission(void **state)
{
    (void)state;
    /* the spoof works in the user's own session: its pg_roles says superuser */
    char ci[600];
    snprintf(ci, sizeof ci,
             "host=127.0.0.1 port=%d user=con_spoof password=" SCRAM_PW " dbname=postgres "
             "sslmode=disable options='-c search_path=con_spoof,pg_catalog'",
             px.port);
    PGconn *app = h_connect(ci);
    PGresult *r = h_exec(app, "SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
                              "AND pg_has_role(current_user, 1::oid, 'MEMBER')");
    assert_string_equal(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    PQfinish(app);

    assert_spoof_refused("options='-c search_path=con_spoof,pg_catalog'");
    assert_spoof_refused("options='-c search_path=con_spoof'");

    /* the SQLSTATE, off the wire, for a trust login (con_plain) with the same spoof */
    h_exec_direct("GRANT USAGE ON SCHEMA con_spoof TO con_plain");
    unsigned char pkt[512], buf[16384];
    int fd = h_raw_connect(px.control_port);
    size_t n = build_startup_opts(pkt, sizeof pkt, "con_plain", "postgres",
                                  "-c search_path=con_spoof,pg_catalog");
    assert_int_equal(write(fd, pkt, n), (ssize_t)n);
    bool closed;
    size_t got = read_for(fd, buf, sizeof buf, 5000, &closed);
    char msg[512];
    if (!stream_has_error(buf, got, "42501", msg, sizeof msg))
        fail_msg("con_plain with search_path con_spoof: no 42501 (%zu bytes, closed %d)", got,
                 closed);
    assert_non_null(strstr(msg, "may not use the pgcutover console"));
    assert_true(closed);
    close(fd);
    h_exec_direct("REVOKE USAGE ON SCHEMA con_spoof FROM con_plain");
    PGconn *c;

    h_exec_direct("ALTER ROLE con_spoof SET search_path = con_spoof, pg_catalog");
    assert_spoof_refused("");
    h_exec_direct("ALTER ROLE con_spoof IN DATABASE postgres SET search_path = con_spoof");
    assert_spoof_refused("");

    /* a member of control_role is admitted, search_path or not */
    exec_direct_tolerant("GRANT pgcutover_admin TO con_spoof");
    c = h_connect(console_conninfo(&px, "con_spoof",
                                   "password=" SCRAM_PW
                                   " options='-c search_path=con_spoof,pg_catalog'"));
    assert_string_equal(stat_value(c, "hold_active"), "f");
    PQfinish(c);
    exec_direct_tolerant("REVOKE pgcutover_admin FROM con_spoof");
    assert_spoof_refused("");
    h_exec_direct("ALTER ROLE con_spoof IN DATABASE postgres RESET search_path");
    h_exec_direct("ALTER ROLE con_spoof RESET search_path");
    assert_spoof_refused("");

    /* the superuser is admitted */
    c = console(&px);
    assert_string_equal(stat_value(c, "hold_active"), "f");
    PQfinish(c);
}

/* ---------- nothing before authentication ---------- */

static void test_query_before_startup_not_answered(void **state)
{
    (void)state;
    unsigned char pkt[256], buf[16384];
    bool closed;
    /* A Query message where the StartupMessage should be. */
    int fd = h_raw_connect(px.control_port);
    size_t n = build_query(pkt, sizeof pkt, "SHOW STATS");
    assert_int_equal(write(fd, pkt, n), (ssize_t)n);
    size_t got = read_for(fd, buf, sizeof buf, 5000, &closed);
    assert_true(closed);
    assert_true(got == 0 || buf[0] == 'E');
    assert_false(mem_has(buf, got, "hold_active"));
    assert_false(mem_has(buf, got, "latency_p50_ms"));
    close(fd);

    /* A StartupMessage for a SCRAM user followed at once by a Query: the Query is not
     * a password, and no console answer comes out. */
    fd = h_raw_connect(px.control_port);
    n = build_startup(pkt, sizeof pkt, "con_scram", "postgres");
    n += build_query(pkt + n, sizeof pkt - n, "SHOW STATS");
    assert_int_equal(write(fd, pkt, n), (ssize_t)n);
    got = read_for(fd, buf, sizeof buf, 5000, &closed);
    assert_true(closed);
    assert_false(mem_has(buf, got, "hold_active"));
    close(fd);

    /* the default console address is loopback only */
    PGconn *c = console(&px);
    assert_string_equal(config_value(c, "control_addr", "value"), "127.0.0.1");
    assert_string_equal(config_value(c, "control_addr", "default"), "127.0.0.1");
    PQfinish(c);
}

/*
 * A role that is not a member of control_role sends its StartupMessage and, in the same
 * write, a Query "SELECT true". The console must refuse it with 42501 and answer no
 * console command.
 */
static void test_pipelined_query_cannot_pass_role_check(void **state)
{
    (void)state;
    unsigned char pkt[512], buf[32768];
    bool closed;
    int fd = h_raw_connect(px.control_port);
    size_t n = build_startup(pkt, sizeof pkt, "con_nonadmin", "postgres");
    n += build_query(pkt + n, sizeof pkt - n, "SELECT true");
    assert_int_equal(write(fd, pkt, n), (ssize_t)n);
    size_t got = read_for(fd, buf, sizeof buf, 3000, &closed);
    if (!closed) {
        /* still open: try a console command on it */
        n = build_query(pkt, sizeof pkt, "SHOW STATS");
        if (write(fd, pkt, n) == (ssize_t)n)
            got += read_for(fd, buf + got, sizeof buf - got, 3000, &closed);
    }
    close(fd);
    char msg[512];
    bool refused = stream_has_error(buf, got, "42501", msg, sizeof msg);
    bool answered = mem_has(buf, got, "hold_active");
    if (!refused || answered)
        fail_msg("non-member con_nonadmin with a pipelined 'SELECT true': refused=%d, "
                 "console answered SHOW STATS=%d (%zu bytes received)",
                 refused, answered, got);
}

/*
 * A superuser may send its first console command right after the StartupMessage,
 * without waiting for ReadyForQuery (PostgreSQL itself answers such a query): the
 * console must answer it, not pass it to PostgreSQL or count it against the role check.
 */
static void test_pipelined_console_command_after_startup(void **state)
{
    (void)state;
    unsigned char pkt[512], buf[32768];
    bool closed;
    int fd = h_raw_connect(px.control_port);
    size_t n = build_startup(pkt, sizeof pkt, h_pg_user(), "postgres");
    n += build_query(pkt + n, sizeof pkt - n, "SHOW STATS");
    assert_int_equal(write(fd, pkt, n), (ssize_t)n);
    size_t got = read_for(fd, buf, sizeof buf, 3000, &closed);
    close(fd);
    char msg[512];
    bool refused = stream_has_error(buf, got, "42501", msg, sizeof msg);
    bool answered = mem_has(buf, got, "hold_active");
    if (refused || !answered)
        fail_msg("superuser with a pipelined SHOW STATS: refused=%d (%s), answered=%d", refused,
                 msg, answered);
}

/* ---------- PAUSE / RESUME under pgbench ---------- */

static pid_t spawn_pgbench(const char *outfile)
{
    char port[16];
    snprintf(port, sizeof port, "%d", px.port);
    const char *bin = pg_bin("pgbench");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(outfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        setenv("PGSSLMODE", "disable", 1);
        execlp(bin, bin, "-n", "-c", "4", "-j", "2", "-T", "4", "-h", "127.0.0.1", "-p", port, "-U",
               h_pg_user(), BENCH_DB, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void test_pause_resume_under_pgbench(void **state)
{
    (void)state;
    char out[512], text[65536];
    snprintf(out, sizeof out, "%s/pgbench.out", px.sockdir);
    h_recreate_db(BENCH_DB);
    int rc =
        h_shell("PGSSLMODE=disable %s -i -s 1 -q -h 127.0.0.1 -p %d -U %s " BENCH_DB " >%s 2>&1",
                pg_bin("pgbench"), h_pg_port(), h_pg_user(), out);
    if (rc != 0)
        fail_msg("pgbench -i exited %d:\n%s", rc, read_file_text(out, text, sizeof text));

    PGconn *c = console(&px);
    pid_t pid = bench_pid = spawn_pgbench(out);
    usleep(1000000);
    PGresult *r = h_exec(c, "PAUSE");
    assert_string_equal(PQcmdStatus(r), "PAUSE");
    PQclear(r);
    double paused_at = h_now_ms();
    assert_string_equal(stat_value(c, "hold_active"), "t");
    usleep(700000);
    r = h_exec(c, "SHOW CLIENTS");
    int held = 0, bench = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        if (strcmp(PQgetvalue(r, i, col(r, "database")), BENCH_DB) != 0)
            continue;
        bench++;
        if (strcmp(PQgetvalue(r, i, col(r, "state")), "held") == 0)
            held++;
    }
    PQclear(r);
    /* the console is never held */
    assert_string_equal(stat_value(c, "hold_active"), "t");
    r = h_exec(c, "RESUME");
    assert_string_equal(PQcmdStatus(r), "RESUME");
    PQclear(r);
    double hold_ms = h_now_ms() - paused_at;
    assert_string_equal(stat_value(c, "hold_active"), "f");

    int st = -1;
    pid_t w = 0;
    double deadline = h_now_ms() + 30000;
    while (h_now_ms() < deadline && (w = waitpid(pid, &st, WNOHANG)) == 0)
        usleep(50000);
    if (w != pid) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        bench_pid = 0;
        fail_msg("pgbench did not end within 30 s:\n%s", read_file_text(out, text, sizeof text));
    }
    bench_pid = 0;
    read_file_text(out, text, sizeof text);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("pgbench status %d:\n%s", st, text);
    if (strstr(text, "number of failed transactions: 0") == NULL)
        fail_msg("pgbench reported failed transactions:\n%s", text);
    if (bench < 4 || held < 1)
        fail_msg("during PAUSE: %d pgbench sessions, %d held (want 4 and >= 1)", bench, held);

    double waits = atof(stat_value(c, "held_waits"));
    double total = atof(stat_value(c, "held_total_ms"));
    double max = atof(stat_value(c, "held_max_ms"));
    if (waits < 1 || total <= 0 || max < 500 || max > hold_ms + 500)
        fail_msg("after a %.0f ms PAUSE: held_waits %.0f, held_total_ms %.3f, held_max_ms %.3f",
                 hold_ms, waits, total, max);
    PQfinish(c);
    h_drop_db(BENCH_DB);
}

/* ---------- RELOAD and SIGHUP ---------- */

static void test_reload_bad_and_good_files(void **state)
{
    (void)state;
    char path[512], logtext[65536];
    snprintf(path, sizeof path, "%s/con_reload_%d.ini", h_tmpdir(), (int)getpid());
    write_file_text(path, "[pgcutover]\nlog_level = info\n");
    h_proxy *pp = &px_reload;
    h_proxy_start_with_config(pp, path, NULL);
    PGconn *c = console(pp);
    assert_string_equal(config_value(c, "log_level", "value"), "info");

    /* an unknown key on line 2 */
    write_file_text(path, "[pgcutover]\nlisen_port = 1\n");
    PGresult *r = exec_error(c, "RELOAD");
    assert_string_equal(sqlstate_of(r), "22023");
    const char *m = field_of(r, PG_DIAG_MESSAGE_PRIMARY);
    char want[600];
    snprintf(want, sizeof want, "%s:2:", path);
    if (strstr(m, want) == NULL || strstr(m, "lisen_port") == NULL)
        fail_msg("RELOAD error message: %s (want %s ... lisen_port)", m, want);
    assert_true(strlen(field_of(r, PG_DIAG_MESSAGE_HINT)) > 0);
    PQclear(r);
    assert_string_equal(config_value(c, "log_level", "value"), "info");

    /* a good line before the bad one is not applied either */
    write_file_text(path, "[pgcutover]\nlog_level = debug\nworkers = abc\n");
    r = exec_error(c, "reload;");
    assert_string_equal(sqlstate_of(r), "22023");
    snprintf(want, sizeof want, "%s:3:", path);
    assert_non_null(strstr(field_of(r, PG_DIAG_MESSAGE_PRIMARY), want));
    PQclear(r);
    assert_string_equal(config_value(c, "log_level", "value"), "info");

    /* a good file: reloadable settings change, restart-only ones stay */
    write_file_text(path, "[pgcutover]\nlog_level = debug\nworkers = 3\nbatch_size = 1234\n");
    r = h_exec(c, "RELOAD");
    assert_string_equal(PQcmdStatus(r), "RELOAD");
    PQclear(r);
    assert_string_equal(config_value(c, "log_level", "value"), "debug");
    assert_string_equal(config_value(c, "batch_size", "value"), "1234");
    assert_string_equal(config_value(c, "workers", "value"), "0");
    /* the --set options still win over the file */
    char port[16];
    snprintf(port, sizeof port, "%d", pp->port);
    assert_string_equal(config_value(c, "listen_port", "value"), port);

    /* SIGHUP with a bad file: still running, settings intact */
    write_file_text(path, "[pgcutover]\nlog_level = loud\n");
    h_proxy_signal(pp, SIGHUP);
    bool logged = false;
    for (int i = 0; i < 100 && !logged; i++) {
        usleep(50000);
        read_file_text(pp->log, logtext, sizeof logtext);
        logged = strstr(logtext, "reload failed") != NULL && strstr(logtext, "loud") != NULL;
    }
    if (!logged)
        fail_msg("no 'reload failed' in the log after SIGHUP:\n%s", logtext);
    int st;
    assert_int_equal(waitpid(pp->pid, &st, WNOHANG), 0);
    assert_string_equal(config_value(c, "log_level", "value"), "debug");
    assert_string_equal(config_value(c, "batch_size", "value"), "1234");
    PGconn *app = h_connect(h_conninfo_proxy(pp, NULL));
    assert_int_equal(h_query_int(app, "SELECT 11"), 11);
    PQfinish(app);

    /* SIGHUP with a good file applies it */
    write_file_text(path, "[pgcutover]\nlog_level = warning\n");
    h_proxy_signal(pp, SIGHUP);
    bool applied = false;
    for (int i = 0; i < 100 && !applied; i++) {
        usleep(50000);
        applied = strcmp(config_value(c, "log_level", "value"), "warning") == 0;
    }
    assert_true(applied);
    assert_string_equal(config_value(c, "batch_size", "value"), "10000");

    /* the file gone: an error that says so, settings intact */
    unlink(path);
    r = exec_error(c, "RELOAD");
    assert_string_equal(sqlstate_of(r), "22023");
    assert_non_null(strstr(field_of(r, PG_DIAG_MESSAGE_PRIMARY), path));
    PQclear(r);
    assert_string_equal(config_value(c, "log_level", "value"), "warning");
    PQfinish(c);
    st = h_proxy_stop(pp);
    if (st != 0) {
        h_shell("tail -n 30 %s >&2", pp->log);
        fail_msg("pgcutover exit status %d", st);
    }
}

/* ---------- SHUTDOWN ---------- */

static void test_shutdown_exits_zero(void **state)
{
    (void)state;
    const char *sets[] = {"shutdown_timeout=10", NULL};
    h_proxy *pp = &px_shut;
    h_proxy_start(pp, sets);
    PGconn *c = console(pp);
    PGresult *r = PQexec(c, "SHUTDOWN");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdStatus(r), "SHUTDOWN");
    PQclear(r);
    /* no new clients once shutting down */
    bool refused = false;
    for (int i = 0; i < 100 && !refused; i++) {
        PGconn *a = PQconnectdb(h_conninfo_proxy(pp, "connect_timeout=2"));
        refused = PQstatus(a) == CONNECTION_BAD;
        PQfinish(a);
        if (!refused)
            usleep(20000);
    }
    assert_true(refused);
    PQfinish(c);
    int st = -1;
    pid_t w = 0;
    double deadline = h_now_ms() + 15000;
    while (h_now_ms() < deadline && (w = waitpid(pp->pid, &st, WNOHANG)) == 0)
        usleep(20000);
    if (w != pp->pid) {
        h_shell("tail -n 30 %s >&2", pp->log);
        h_proxy_stop(pp);
        fail_msg("pgcutover still running 15 s after SHUTDOWN");
    }
    pp->pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        h_shell("tail -n 30 %s >&2", pp->log);
        fail_msg("pgcutover after SHUTDOWN: wait status %d", st);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_show_stats_types),
        cmocka_unit_test(test_show_clients_and_servers),
        cmocka_unit_test(test_show_config_lists_every_setting),
        cmocka_unit_test(test_help_returns_rows),
        cmocka_unit_test(test_several_commands_in_one_query),
        cmocka_unit_test(test_psql_csv),
        cmocka_unit_test(test_unknown_command),
        cmocka_unit_test(test_migration_commands_are_recognized),
        cmocka_unit_test(test_extended_protocol_refused),
        cmocka_unit_test(test_non_admin_refused_then_granted),
        cmocka_unit_test(test_scram_login),
        cmocka_unit_test(test_search_path_cannot_spoof_admission),
        cmocka_unit_test(test_query_before_startup_not_answered),
        cmocka_unit_test(test_pipelined_query_cannot_pass_role_check),
        cmocka_unit_test(test_pipelined_console_command_after_startup),
        cmocka_unit_test(test_pause_resume_under_pgbench),
        cmocka_unit_test(test_reload_bad_and_good_files),
        cmocka_unit_test(test_shutdown_exits_zero),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
