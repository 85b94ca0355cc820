/*
 * test_engine_cutover.c — the cutover of the online schema change engine (issue 6,
 * DESIGN.md §2 step 7) driven through the control console on the real PostgreSQL:
 *
 *   - catalog comparison: a table with grants (table and column) to two roles, another
 *     owner, RLS policies (ENABLE + FORCE), views over it (and a view over that view), a
 *     table with a foreign key to it, an outgoing foreign key, user triggers (one
 *     disabled), a serial and an identity column, publication membership (one with a
 *     row filter), REPLICA IDENTITY FULL, reloptions and comments; snapshotted with
 *     pg_catalog queries before and after an online ADD COLUMN: everything is equal
 *     except the new column, new keys do not collide, the old table is kept under
 *     old_table and DROP MIGRATION n removes it (and the serial still works);
 *   - lock retry: a direct session holding a lock that conflicts with ACCESS EXCLUSIVE
 *     makes the cutover retry (cutover_attempts > 1) while client threads through the
 *     proxy see no error and a bounded worst latency; when it commits the swap happens;
 *   - manual cutover: with cutover=manual the migration waits in ready while writes
 *     continue (the shadow stays current), DROP MIGRATION is refused, CUTOVER MIGRATION n
 *     swaps; no write is lost across the swap;
 *   - SIGKILL of pgcutover while the state is cutting_over: nothing half-swapped, and a
 *     new pgcutover completes (or cleanly aborts) the migration with the data equal;
 *   - views over a column whose type changes (a view over the view, grants, a comment):
 *     refused up front or carried over unchanged.
 *
 * Each test uses its own database (eng_cut_*) and its own pgcutover, because test files
 * run in parallel; the teardown stops what a failed test left running.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"

#define POLL_US 100000 /* 100 ms between polls */
#define WAIT_MS 60000  /* bounded wait for a migration to reach a state */
#define MAX_CLIENTS 4
#define CLIENT_MAX_OPS 200000
#define LATENCY_BOUND_MS 5000.0 /* correctness bound, not a benchmark */

/* the engine's own tables in schema pgcutover (anything else there is a migration's) */
/* The capture of a revert window (osc_window.h: the migration's reverse, waiting after
 * the swap) is meant to be on the new table; the migration's own triggers are not. */
#define NOT_A_WINDOW                                                                              \
    "NOT EXISTS (SELECT FROM pgcutover.migrations w WHERE w.revert_of IS NOT NULL AND tgname IN " \
    "('pgcutover_m' || w.id || '_dw', 'pgcutover_m' || w.id || '_truncate'))"
#define BOOKKEEPING "('migrations', 'trigger_errors', 'migration_columns', 'schema_migrations')"

typedef struct client client_t;

static struct {
    h_eng e; /* database, pgcutover processes, connections kept until the teardown */
    client_t *clients;
    int nclients;
    bool roles; /* drop the eng_cut_* roles after the database */
} ctx;

static atomic_bool clients_stop;
static client_t *g_clients; /* MAX_CLIENTS, static storage: threads may outlive a failed test */

/* Fail the test after printing the tail of the pgcutover log(s) (h_engine.h). */
#define FAILP(...) h_eng_fail(__VA_ARGS__)

/* Roles are cluster-wide: drop them once the database holding their grants is gone
 * (errors ignored: another database might still refer to them). */
static void drop_roles(void)
{
    PGconn *c = PQconnectdb(h_conninfo_direct(NULL));
    if (PQstatus(c) == CONNECTION_OK) {
        PQsetNoticeProcessor(c, h_quiet_notice, NULL);
        PQclear(PQexec(c, "DROP ROLE IF EXISTS eng_cut_r1"));
        PQclear(PQexec(c, "DROP ROLE IF EXISTS eng_cut_r2"));
        PQclear(PQexec(c, "DROP ROLE IF EXISTS eng_cut_own"));
    }
    PQfinish(c);
}

static void free_clients(void);

static int teardown(void **state)
{
    (void)state;
    free_clients();
    bool roles = ctx.roles && ctx.e.db[0];
    h_eng_teardown(&ctx.e);
    if (roles)
        drop_roles();
    memset(&ctx, 0, sizeof ctx);
    return 0;
}

static void print_cutover(const char *what, long long id, const h_mig *m)
{
    fprintf(stderr,
            "%s: migration %lld %s, old_table %s, cutover_attempts %lld, hold %.1f ms, lock "
            "%.1f ms, longest client wait %.1f ms\n",
            what, id, m->state, m->old_table[0] ? m->old_table : "(none)", m->attempts, m->hold_ms,
            m->lock_ms, m->max_wait_ms);
}

/* The cutover figures of a done migration are there and plausible. */
static void assert_cutover_figures(long long id, const h_mig *m)
{
    if (m->attempts < 1)
        FAILP("migration %lld done with cutover_attempts %lld", id, m->attempts);
    if (isnan(m->hold_ms) || isnan(m->lock_ms) || isnan(m->max_wait_ms))
        FAILP("migration %lld done but a cutover figure is NULL (hold %f, lock %f, max wait %f)",
              id, m->hold_ms, m->lock_ms, m->max_wait_ms);
    if (m->hold_ms < 0 || m->lock_ms < 0 || m->max_wait_ms < 0)
        FAILP("migration %lld: negative cutover figure (hold %f, lock %f, max wait %f)", id,
              m->hold_ms, m->lock_ms, m->max_wait_ms);
}

static bool rel_exists(PGconn *dc, const char *rel)
{
    if (!rel || !rel[0])
        return false;
    char *lit = PQescapeLiteral(dc, rel, strlen(rel));
    assert_non_null(lit);
    long long n =
        h_qint(dc, "SELECT count(*) FROM (SELECT to_regclass(%s) AS r) x WHERE r IS NOT NULL", lit);
    PQfreemem(lit);
    return n == 1;
}

/* Both directions of EXCEPT ALL empty and equal counts. */
static void assert_same_rows(PGconn *dc, const char *a_sql, const char *b_sql, const char *what)
{
    long long na = h_qint(dc, "SELECT count(*) FROM (%s) x", a_sql);
    long long nb = h_qint(dc, "SELECT count(*) FROM (%s) x", b_sql);
    long long missing = h_qint(dc, "SELECT count(*) FROM (%s EXCEPT ALL %s) x", a_sql, b_sql);
    long long extra = h_qint(dc, "SELECT count(*) FROM (%s EXCEPT ALL %s) x", b_sql, a_sql);
    if (missing || extra || na != nb) {
        char s1[1024], s2[1024];
        h_qtext(
            dc, s1, sizeof s1,
            "SELECT string_agg(x::text, ' ') FROM (SELECT * FROM (%s EXCEPT ALL %s) y LIMIT 5) x",
            a_sql, b_sql);
        h_qtext(
            dc, s2, sizeof s2,
            "SELECT string_agg(x::text, ' ') FROM (SELECT * FROM (%s EXCEPT ALL %s) y LIMIT 5) x",
            b_sql, a_sql);
        FAILP("%s: expected %lld rows, got %lld; %lld missing (e.g. %s), %lld extra (e.g. %s)",
              what, na, nb, missing, s1, extra, s2);
    }
}

/* Exactly one relation public.t. */
static long long count_public_t(PGconn *dc)
{
    return h_qint(dc, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                      "c.relnamespace WHERE n.nspname = 'public' AND c.relname = 't'");
}

/* The table tests 2-4 migrate: id int PK, a int, b text, c int NOT NULL DEFAULT 0. */
static void create_table(PGconn *dc, int rows)
{
    h_exec_ok(dc, "CREATE TABLE t (id int PRIMARY KEY, a int, b text, c int NOT NULL DEFAULT 0)");
    h_execf(dc,
            "INSERT INTO t SELECT g, g %% 1000 + 1, 'row ' || g, 0 FROM generate_series(1, %d) g",
            rows);
    h_exec_ok(dc, "ANALYZE t");
}

/* ---------- client threads (no cmocka calls in them) ---------- */

struct client {
    int idx, nclients;
    unsigned seed;
    pthread_t th;
    bool started;
    PGconn *c;
    char conninfo[512];
    int nkeys;    /* original keys 1..nkeys; this client updates k % nclients == idx, k > 1 */
    bool inserts; /* also insert new keys ins_base + 1, 2, … */
    int *upd;     /* successful c = c + 1 per key (index k) */
    int ins_base, nins;
    atomic_long ops, errors;
    double max_lat_ms;
    char err[1024];
};

static unsigned rnd(client_t *cl, unsigned n)
{
    return (unsigned)rand_r(&cl->seed) % n;
}

/* One autocommit statement; returns the result on success (caller PQclear's), NULL on an
 * error (recorded). Latency is measured around PQexec. */
static PGresult *cl_exec(client_t *cl, const char *sql)
{
    double t0 = h_now_ms();
    PGresult *r = PQexec(cl->c, sql);
    double dt = h_now_ms() - t0;
    if (dt > cl->max_lat_ms)
        cl->max_lat_ms = dt;
    cl->ops++;
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (!cl->err[0])
            snprintf(cl->err, sizeof cl->err, "client %d: %s: [%s] %s", cl->idx, sql, st ? st : "?",
                     PQerrorMessage(cl->c));
        cl->errors++;
        PQclear(r);
        return NULL;
    }
    return r;
}

static int own_key(client_t *cl)
{
    for (;;) {
        int k = 2 + (int)rnd(cl, (unsigned)cl->nkeys - 1);
        if (k % cl->nclients == cl->idx)
            return k;
    }
}

static void client_op(client_t *cl)
{
    char sql[256];
    unsigned r = rnd(cl, 10);
    if (r < 4) {
        snprintf(sql, sizeof sql, "SELECT b, c FROM t WHERE id = %d",
                 2 + (int)rnd(cl, (unsigned)cl->nkeys - 1));
        PQclear(cl_exec(cl, sql));
    } else if (r < 8 || !cl->inserts) {
        int k = own_key(cl);
        snprintf(sql, sizeof sql, "UPDATE t SET c = c + 1 WHERE id = %d", k);
        PGresult *res = cl_exec(cl, sql);
        if (res) {
            if (strcmp(PQcmdTuples(res), "1") == 0)
                cl->upd[k]++;
            else if (!cl->err[0]) {
                snprintf(cl->err, sizeof cl->err, "client %d: %s updated %s rows, want 1", cl->idx,
                         sql, PQcmdTuples(res));
                cl->errors++;
            }
            PQclear(res);
        }
    } else {
        int n = cl->nins + 1;
        snprintf(sql, sizeof sql, "INSERT INTO t (id, a, b, c) VALUES (%d, %d, 'ins', 0)",
                 cl->ins_base + n, n);
        PGresult *res = cl_exec(cl, sql);
        if (res) {
            cl->nins = n;
            PQclear(res);
        }
    }
}

static void *client_main(void *arg)
{
    client_t *cl = arg;
    cl->c = PQconnectdb(cl->conninfo);
    if (PQstatus(cl->c) != CONNECTION_OK) {
        snprintf(cl->err, sizeof cl->err, "client %d: connect: %s", cl->idx, PQerrorMessage(cl->c));
        cl->errors++;
        return NULL;
    }
    PQsetNoticeProcessor(cl->c, h_quiet_notice, NULL);
    while (!atomic_load(&clients_stop) && cl->ops < CLIENT_MAX_OPS && cl->errors == 0 &&
           PQstatus(cl->c) == CONNECTION_OK) {
        client_op(cl);
        usleep(1000);
    }
    return NULL;
}

static void start_clients(client_t *cls, int n, int nkeys, bool inserts, unsigned seed)
{
    atomic_store(&clients_stop, false);
    ctx.clients = cls;
    ctx.nclients = n;
    for (int i = 0; i < n; i++) {
        memset(&cls[i], 0, sizeof cls[i]);
        cls[i].idx = i;
        cls[i].nclients = n;
        cls[i].seed = seed * 7919u + (unsigned)i * 104729u + 1u;
        cls[i].nkeys = nkeys;
        cls[i].inserts = inserts;
        cls[i].ins_base = 1000000 * (i + 1);
        cls[i].upd = calloc((size_t)nkeys + 1, sizeof(int));
        assert_non_null(cls[i].upd);
        snprintf(cls[i].conninfo, sizeof cls[i].conninfo, "%s",
                 h_conninfo_proxy_db(&ctx.e.px, ctx.e.db, "application_name=eng_cut_client"));
    }
    for (int i = 0; i < n; i++) {
        assert_int_equal(pthread_create(&cls[i].th, NULL, client_main, &cls[i]), 0);
        cls[i].started = true;
    }
}

static void stop_clients(void)
{
    atomic_store(&clients_stop, true);
    for (int i = 0; i < ctx.nclients; i++) {
        client_t *cl = &ctx.clients[i];
        if (cl->started) {
            pthread_join(cl->th, NULL);
            cl->started = false;
        }
        if (cl->c)
            PQfinish(cl->c);
        cl->c = NULL;
    }
}

static void free_clients(void)
{
    stop_clients();
    for (int i = 0; i < ctx.nclients; i++) {
        free(ctx.clients[i].upd);
        ctx.clients[i].upd = NULL;
    }
    ctx.nclients = 0;
}

/* Sum of the clients' ops; the worst latency; fails on any client error. */
static void report_clients(const client_t *cls, int n, const char *what, double *worst)
{
    long ops = 0, ins = 0;
    *worst = 0;
    for (int i = 0; i < n; i++) {
        ops += cls[i].ops;
        ins += cls[i].nins;
        if (cls[i].max_lat_ms > *worst)
            *worst = cls[i].max_lat_ms;
    }
    fprintf(stderr, "%s: %d clients, %ld statements, %ld inserts, worst latency %.1f ms\n", what, n,
            ops, ins, *worst);
    for (int i = 0; i < n; i++)
        if (cls[i].errors > 0)
            FAILP("%s: a client got an error: %s", what, cls[i].err);
}

/* A growing text buffer for array literals. */
typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap ? b->cap * 2 : 65536;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
}

/*
 * Build the table cut_expected (id, a bigint, b text, c int) from the model of what the
 * clients did to a table of nkeys original rows (id, id % 1000 + 1, 'row ' || id, 0):
 * c = the number of successful increments of the key; the inserted keys with a = their
 * sequence number, b = 'ins', c = 0.
 */
static void build_expected(PGconn *dc, const client_t *cls, int n, int nkeys)
{
    sbuf ids = {0}, cs = {0}, iids = {0}, ias = {0};
    sb_add(&ids, "{");
    sb_add(&cs, "{");
    sb_add(&iids, "{");
    sb_add(&ias, "{");
    for (int k = 1; k <= nkeys; k++) {
        int total = 0;
        for (int i = 0; i < n; i++)
            total += cls[i].upd[k];
        if (total > 0) {
            sb_add(&ids, "%s%d", ids.len > 1 ? "," : "", k);
            sb_add(&cs, "%s%d", cs.len > 1 ? "," : "", total);
        }
    }
    for (int i = 0; i < n; i++)
        for (int j = 1; j <= cls[i].nins; j++) {
            sb_add(&iids, "%s%d", iids.len > 1 ? "," : "", cls[i].ins_base + j);
            sb_add(&ias, "%s%d", ias.len > 1 ? "," : "", j);
        }
    sb_add(&ids, "}");
    sb_add(&cs, "}");
    sb_add(&iids, "}");
    sb_add(&ias, "}");
    h_exec_ok(dc, "DROP TABLE IF EXISTS cut_expected");
    h_exec_ok(dc, "CREATE TABLE cut_expected (id int, a bigint, b text, c int)");
    char nk[32];
    snprintf(nk, sizeof nk, "%d", nkeys);
    const char *p3[] = {ids.p, cs.p, nk};
    PGresult *r = PQexecParams(dc,
                               "INSERT INTO cut_expected SELECT g, g % 1000 + 1, 'row ' || g, "
                               "coalesce(u.c, 0) FROM generate_series(1, $3::int) g LEFT JOIN "
                               "unnest($1::int[], $2::int[]) u(id, c) ON u.id = g",
                               3, NULL, p3, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        FAILP("building the expected rows: %s", PQerrorMessage(dc));
    PQclear(r);
    const char *p2[] = {iids.p, ias.p};
    r = PQexecParams(dc,
                     "INSERT INTO cut_expected SELECT i, a, 'ins', 0 FROM "
                     "unnest($1::int[], $2::int[]) u(i, a)",
                     2, NULL, p2, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        FAILP("building the expected inserts: %s", PQerrorMessage(dc));
    PQclear(r);
    free(ids.p);
    free(cs.p);
    free(iids.p);
    free(ias.p);
}

/* ---------- 1. catalog comparison ---------- */

/* One named catalog fact of a snapshot: the text of one pg_catalog query. */
typedef struct {
    const char *name;
    const char *sql;
} cat_item;

/*
 * The facts compared before and after the swap. Every query names the objects by
 * name ('public.t', 'public.child', 'public.v_t', …), so after the swap it reads the
 * new table. The intended change (column note) is excluded from "columns" and checked
 * on its own.
 */
static const cat_item cat_items[] = {
    {"columns",
     "SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull=' "
     "|| a.attnotnull || ' identity=' || a.attidentity::text || ' generated=' || "
     "a.attgenerated::text || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '') || "
     "' collation=' || a.attcollation || ' storage=' || a.attstorage::text, ', ' ORDER BY "
     "a.attnum) FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND "
     "d.adnum = a.attnum WHERE a.attrelid = 'public.t'::regclass AND a.attnum > 0 AND NOT "
     "a.attisdropped AND a.attname <> 'note'"},
    {"table acl (aclexplode)",
     "SELECT string_agg(s, ', ' ORDER BY s) FROM (SELECT a.grantor::regrole::text || '>' || "
     "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END || ':' || "
     "a.privilege_type || ':' || a.is_grantable AS s FROM pg_class c, aclexplode(c.relacl) a "
     "WHERE c.oid = 'public.t'::regclass) x"},
    {"column acls",
     "SELECT string_agg(s, ', ' ORDER BY s) FROM (SELECT att.attname || ':' || "
     "a.grantee::regrole::text || ':' || a.privilege_type AS s FROM pg_attribute att, "
     "aclexplode(att.attacl) a WHERE att.attrelid = 'public.t'::regclass AND att.attacl IS NOT "
     "NULL) x"},
    {"owner, RLS, replica identity, reloptions",
     "SELECT 'owner=' || relowner::regrole::text || ' rowsecurity=' || relrowsecurity || "
     "' forcerowsecurity=' || relforcerowsecurity || ' replident=' || relreplident::text || "
     "' persistence=' || relpersistence::text || ' kind=' || relkind::text || ' schema=' || "
     "relnamespace::regnamespace::text || ' reloptions=' || coalesce(array_to_string(reloptions, "
     "','), '') FROM pg_class WHERE oid = 'public.t'::regclass"},
    {"policies (pg_policies)",
     "SELECT string_agg(policyname || ' ' || permissive || ' ' || roles::text || ' ' || cmd || "
     "' using=' || coalesce(qual, '') || ' check=' || coalesce(with_check, ''), '; ' ORDER BY "
     "policyname) FROM pg_policies WHERE schemaname = 'public' AND tablename = 't'"},
    {"constraints of t",
     "SELECT string_agg(conname || ' ' || contype::text || ' ' || pg_get_constraintdef(oid) || "
     "' deferrable=' || condeferrable || ' comment=' || coalesce(obj_description(oid, "
     "'pg_constraint'), ''), '; ' ORDER BY conname) FROM pg_constraint WHERE conrelid = "
     "'public.t'::regclass"},
    {"indexes of t",
     "SELECT string_agg(pg_get_indexdef(i.indexrelid) || ' primary=' || i.indisprimary || "
     "' replident=' || i.indisreplident || ' comment=' || coalesce(obj_description(i.indexrelid, "
     "'pg_class'), ''), '; ' ORDER BY ic.relname) FROM pg_index i JOIN pg_class ic ON ic.oid = "
     "i.indexrelid WHERE i.indrelid = 'public.t'::regclass"},
    {"user triggers",
     "SELECT string_agg(tgname || ' enabled=' || tgenabled::text || ' ' || "
     "replace(pg_get_triggerdef(oid), 'public.t'::regclass::oid::text, '<t>'), '; ' ORDER BY "
     "tgname) FROM pg_trigger WHERE tgrelid = 'public.t'::regclass AND NOT tgisinternal AND "
     "tgname NOT LIKE 'pgcutover%'"},
    {"publication membership",
     "SELECT string_agg(pubname || ' rowfilter=' || coalesce(rowfilter, ''), '; ' ORDER BY "
     "pubname) FROM pg_publication_tables WHERE schemaname = 'public' AND tablename = 't'"},
    {"comments on t and its columns",
     "SELECT coalesce(obj_description('public.t'::regclass, 'pg_class'), '') || ' | ' || "
     "coalesce((SELECT string_agg(attname || '=' || col_description(attrelid, attnum), ', ' "
     "ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'public.t'::regclass AND attnum > 0 "
     "AND col_description(attrelid, attnum) IS NOT NULL), '')"},
    {"serial sequence",
     "SELECT coalesce(pg_get_serial_sequence('public.t', 'sid'), '(none)') || ' ' || "
     "coalesce((SELECT string_agg(a.grantee::regrole::text || ':' || a.privilege_type, ',' "
     "ORDER BY a.grantee::regrole::text, a.privilege_type) FROM pg_class c, "
     "aclexplode(c.relacl) a WHERE c.oid = pg_get_serial_sequence('public.t', "
     "'sid')::regclass), '')"},
    {"identity sequence options",
     "SELECT s.seqtypid::regtype::text || ' increment=' || s.seqincrement || ' min=' || s.seqmin "
     "|| ' max=' || s.seqmax || ' cache=' || s.seqcache || ' cycle=' || s.seqcycle FROM "
     "pg_sequence s WHERE s.seqrelid = pg_get_serial_sequence('public.t', 'id')::regclass"},
    {"foreign key of child to t",
     "SELECT string_agg(conname || ' refers to public.t: ' || (confrelid = "
     "'public.t'::regclass) || ' (' || n.nspname || '.' || c.relname || ', ' || "
     "confrelid::regclass::text || ') ' || pg_get_constraintdef(k.oid), '; ' ORDER BY conname) "
     "FROM pg_constraint k JOIN pg_class c ON c.oid = k.confrelid JOIN pg_namespace n ON n.oid = "
     "c.relnamespace WHERE k.conrelid = 'public.child'::regclass AND k.contype = 'f'"},
    {"view v_t: definition, options, acl, comment",
     "SELECT pg_get_viewdef('public.v_t'::regclass) || ' | ' || coalesce(array_to_string("
     "reloptions, ','), '') || ' | ' || coalesce(relacl::text, '') || ' | ' || "
     "relowner::regrole::text || ' | ' || coalesce(obj_description(oid, 'pg_class'), '') FROM "
     "pg_class WHERE oid = 'public.v_t'::regclass"},
    {"view v_t reads public.t (pg_depend of its rewrite rule)",
     "SELECT string_agg(DISTINCT n.nspname || '.' || c.relname || ' is public.t: ' || (c.oid = "
     "'public.t'::regclass), ', ') FROM pg_rewrite rw JOIN pg_depend d ON d.classid = "
     "'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass JOIN "
     "pg_class c ON c.oid = d.refobjid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
     "rw.ev_class = 'public.v_t'::regclass AND d.refobjid <> rw.ev_class"},
    {"view v_t2 over v_t",
     "SELECT pg_get_viewdef('public.v_t2'::regclass) || ' | ' || coalesce(relacl::text, '') || "
     "' | ' || (SELECT string_agg(DISTINCT n.nspname || '.' || c.relname, ', ') FROM pg_rewrite "
     "rw JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND "
     "d.refclassid = 'pg_class'::regclass JOIN pg_class c ON c.oid = d.refobjid JOIN "
     "pg_namespace n ON n.oid = c.relnamespace WHERE rw.ev_class = 'public.v_t2'::regclass AND "
     "d.refobjid <> rw.ev_class) FROM pg_class WHERE oid = 'public.v_t2'::regclass"},
};
#define NCAT (sizeof cat_items / sizeof cat_items[0])

typedef struct {
    char v[NCAT][2048];
} cat_snap;

static void cat_snapshot(PGconn *dc, cat_snap *s)
{
    for (size_t i = 0; i < NCAT; i++)
        h_qtext(dc, s->v[i], sizeof s->v[i], "%s", cat_items[i].sql);
}

/* Create the roles used for grants, policies and the owner; tolerate existing ones
 * (roles are cluster-wide). */
static void create_roles(void)
{
    ctx.roles = true;
    static const char *const roles[] = {"eng_cut_r1", "eng_cut_r2", "eng_cut_own"};
    for (int i = 0; i < 3; i++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "DO $$ BEGIN CREATE ROLE %s NOLOGIN; EXCEPTION WHEN duplicate_object OR "
                 "unique_violation THEN NULL; END $$",
                 roles[i]);
        h_exec_direct(sql);
    }
}

static const char cat_schema[] =
    "CREATE TABLE cat (id int PRIMARY KEY, name text);"
    "INSERT INTO cat SELECT g, 'cat ' || g FROM generate_series(1, 10) g;"
    "CREATE TABLE t ("
    " id int GENERATED ALWAYS AS IDENTITY (START WITH 1 INCREMENT BY 1 CACHE 1) PRIMARY KEY,"
    " sid serial,"
    " a int NOT NULL,"
    " b text,"
    " cat_id int REFERENCES cat (id),"
    " touched int NOT NULL DEFAULT 0,"
    " CONSTRAINT t_a_pos CHECK (a >= 0),"
    " CONSTRAINT t_sid_key UNIQUE (sid));"
    "CREATE INDEX t_b_idx ON t (b);"
    "CREATE INDEX t_lower_b_idx ON t (lower(b)) WHERE a > 10;"
    "ALTER TABLE t SET (fillfactor = 80, autovacuum_enabled = false);"
    "INSERT INTO t (a, b, cat_id) SELECT g % 500, 'row ' || g, g % 10 + 1"
    " FROM generate_series(1, 5000) g;"
    /* grants to two roles (table and column), on the serial's sequence */
    "GRANT SELECT, INSERT ON t TO eng_cut_r1;"
    "GRANT SELECT, UPDATE, DELETE ON t TO eng_cut_r2 WITH GRANT OPTION;"
    "GRANT UPDATE (b) ON t TO eng_cut_r1;"
    "GRANT USAGE ON SEQUENCE t_sid_seq TO eng_cut_r1;"
    /* RLS */
    "CREATE POLICY p_read ON t FOR SELECT TO eng_cut_r1, eng_cut_r2 USING (a >= 0);"
    "CREATE POLICY p_upd ON t AS RESTRICTIVE FOR UPDATE TO eng_cut_r2 USING (b IS NOT NULL)"
    " WITH CHECK (a < 1000000);"
    "ALTER TABLE t ENABLE ROW LEVEL SECURITY;"
    "ALTER TABLE t FORCE ROW LEVEL SECURITY;"
    /* views: one over t, one over that view */
    "CREATE VIEW v_t WITH (security_barrier = true) AS SELECT id, a, b FROM t WHERE a > 5;"
    "CREATE VIEW v_t2 AS SELECT id, b FROM v_t WHERE b IS NOT NULL;"
    "GRANT SELECT ON v_t TO eng_cut_r2;"
    "GRANT SELECT ON v_t2 TO eng_cut_r1;"
    "COMMENT ON VIEW v_t IS 'view over t';"
    /* a table with a foreign key to t */
    "CREATE TABLE child (id int PRIMARY KEY, t_id int NOT NULL,"
    " CONSTRAINT child_t_fk FOREIGN KEY (t_id) REFERENCES t (id) ON DELETE CASCADE);"
    "INSERT INTO child SELECT g, g * 3 FROM generate_series(1, 1000) g;"
    /* user triggers: one enabled BEFORE UPDATE, one disabled AFTER INSERT */
    "CREATE TABLE audit (t_id int, at timestamptz DEFAULT now());"
    "CREATE FUNCTION t_touch() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN NEW.touched := OLD.touched + 1; RETURN NEW; END $$;"
    "CREATE FUNCTION t_audit() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN INSERT INTO audit (t_id) VALUES (NEW.id); RETURN NULL; END $$;"
    "CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION t_touch();"
    "CREATE TRIGGER t_audit AFTER INSERT ON t FOR EACH ROW WHEN (NEW.a > 100)"
    " EXECUTE FUNCTION t_audit();"
    "ALTER TABLE t DISABLE TRIGGER t_audit;"
    /* publication membership, replica identity */
    "CREATE PUBLICATION eng_cut_pub FOR TABLE t, child;"
    "CREATE PUBLICATION eng_cut_pub_ins FOR TABLE t WHERE (a > 0) WITH (publish = 'insert');"
    "ALTER TABLE t REPLICA IDENTITY FULL;"
    /* comments */
    "COMMENT ON TABLE t IS 'the table under change';"
    "COMMENT ON COLUMN t.b IS 'the b column';"
    "COMMENT ON COLUMN t.sid IS 'serial id';"
    "COMMENT ON INDEX t_b_idx IS 'index on b';"
    "COMMENT ON CONSTRAINT t_a_pos ON t IS 'a is not negative';"
    /* another owner */
    /*OWNER*/
    "ANALYZE t;";

/*
 * Catalog comparison. Table t has: grants to eng_cut_r1/eng_cut_r2 (table, one with
 * GRANT OPTION; a column grant; USAGE on the serial's sequence), owner eng_cut_own, two RLS
 * policies with ENABLE and FORCE ROW LEVEL SECURITY, a security_barrier view v_t over it
 * (with a grant and a comment) and a view v_t2 over v_t, a table child with an ON DELETE
 * CASCADE foreign key to it, an outgoing foreign key to cat, a BEFORE UPDATE trigger and a
 * disabled AFTER INSERT trigger, an identity key and a serial column, membership in two
 * publications (one with a row filter), REPLICA IDENTITY FULL, reloptions, comments on the
 * table, columns, an index and a constraint. ALTER TABLE t ADD COLUMN note text DEFAULT ''
 * runs through the console (auto cutover, instant_ddl = off: the copy) to done while rows are
 * inserted and updated through the proxy. Asserts: each catalog fact of cat_items (pg_catalog
 * queries) is equal before and after; note is text DEFAULT ''; the foreign keys end validated;
 * exactly one public.t; no pgcutover trigger on t; the rows equal the old table's (mapped); the
 * cutover figures are set; the old table is SHOW's old_table, in schema pgcutover; inserts after
 * the swap get id and sid above every earlier value; the BEFORE UPDATE trigger fires, the
 * disabled one does not; the child's foreign key cascades and rejects a missing key; the
 * views read the new table; CUTOVER of a done migration answers 55000; DROP MIGRATION n
 * drops the old table and the serial default still works afterwards.
 */
static void test_catalog_comparison(void **state)
{
    (void)state;
    /* instant_ddl=off: this ADD COLUMN (asserted below) is catalog-only for PostgreSQL; the
     * copy and its swap carrying every catalog fact over are what is tested */
    static const char *const sets[] = {"max_rows_per_second=5000", "batch_size=500",
                                       "instant_ddl=off", NULL};
    create_roles();
    PGconn *dc = h_eng_direct(&ctx.e);
    h_exec_ok(dc, cat_schema);
    static cat_snap snaps[2];
    cat_snap *before = &snaps[0], *after = &snaps[1];
    cat_snapshot(dc, before);
    for (size_t i = 0; i < NCAT; i++)
        if (!before->v[i][0] && strcmp(cat_items[i].name, "column acls") != 0)
            FAILP("catalog fact '%s' is empty before the change: the query is wrong",
                  cat_items[i].name);

    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    PGconn *app = h_eng_keep(&ctx.e, h_connect(h_conninfo_proxy_db(&ctx.e.px, ctx.e.db, NULL)));
    long long id = h_start_migration(ctl, "ALTER TABLE t ADD COLUMN note text DEFAULT ''");
    /* live writes while the migration runs: identity/serial values move on, the BEFORE
     * UPDATE trigger fires on the original */
    h_exec_ok(app, "INSERT INTO t (a, b, cat_id) SELECT g, 'live ' || g, 1 FROM "
                   "generate_series(1, 5) g");
    h_exec_ok(app, "UPDATE t SET b = b || '!' WHERE id IN (10, 20, 30)");
    h_mig m;
    h_mig_wait(ctl, id, "done", -1, WAIT_MS, &m);
    print_cutover("catalog", id, &m);
    assert_cutover_figures(id, &m);

    if (count_public_t(dc) != 1)
        FAILP("after the swap there are %lld relations named public.t", count_public_t(dc));
    /* the NOT VALID foreign keys are validated after the swap (bounded wait) */
    long long invalid = -1;
    for (int i = 0; i < 100; i++) {
        invalid = h_qint(dc, "SELECT count(*) FROM pg_constraint WHERE (conrelid = "
                             "'public.t'::regclass OR confrelid = 'public.t'::regclass) AND NOT "
                             "convalidated");
        if (invalid == 0)
            break;
        usleep(POLL_US);
    }
    if (invalid != 0) {
        char which[512];
        h_qtext(dc, which, sizeof which,
                "SELECT string_agg(conname, ', ') FROM pg_constraint WHERE (conrelid = "
                "'public.t'::regclass OR confrelid = 'public.t'::regclass) AND NOT convalidated");
        FAILP("constraints still NOT VALID 10 s after done: %s", which);
    }

    cat_snapshot(dc, after);
    int diffs = 0;
    for (size_t i = 0; i < NCAT; i++)
        if (strcmp(before->v[i], after->v[i]) != 0) {
            fprintf(stderr, "catalog fact '%s' differs:\n  before: %s\n  after:  %s\n",
                    cat_items[i].name, before->v[i], after->v[i]);
            diffs++;
        }
    if (diffs)
        FAILP("%d catalog facts differ after the swap (see above)", diffs);

    char note[256];
    h_qtext(dc, note, sizeof note,
            "SELECT format_type(a.atttypid, a.atttypmod) || ' ' || coalesce(pg_get_expr(d.adbin, "
            "d.adrelid), '') FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid "
            "AND d.adnum = a.attnum WHERE a.attrelid = 'public.t'::regclass AND a.attname = "
            "'note'");
    if (strcmp(note, "text ''::text") != 0)
        FAILP("column note after the swap: '%s', want \"text ''::text\"", note);

    char trg[256];
    h_qtext(dc, trg, sizeof trg,
            "SELECT string_agg(tgname, ',') FROM pg_trigger WHERE tgrelid = 'public.t'::regclass "
            "AND tgname LIKE 'pgcutover%%' AND " NOT_A_WINDOW);
    if (trg[0])
        FAILP("pgcutover triggers left on the new t: %s", trg);

    /* the old table */
    if (!m.old_table[0])
        FAILP("SHOW MIGRATION %lld: old_table is empty after done", id);
    if (!rel_exists(dc, m.old_table))
        FAILP("old_table %s does not exist", m.old_table);
    char want_old[64];
    snprintf(want_old, sizeof want_old, "pgcutover.t_%lld_old", id);
    if (strcmp(m.old_table, want_old) != 0)
        FAILP("old_table is %s, want %s", m.old_table, want_old);
    if (rel_exists(dc, m.shadow) && strcmp(m.shadow, "public.t") != 0)
        FAILP("the shadow %s still exists after done", m.shadow);
    char oldsel[512];
    snprintf(oldsel, sizeof oldsel, "SELECT id, sid, a, b, cat_id, touched, ''::text FROM %s",
             m.old_table);
    assert_same_rows(dc, oldsel, "SELECT id, sid, a, b, cat_id, touched, note FROM t",
                     "new t vs the old table mapped");
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM t WHERE id IN (10, 20, 30) AND touched = 1 "
                                "AND b LIKE '%%!'"),
                     3);

    /* new keys: no collision, above every earlier value (old table included) */
    long long max_id = h_qint(dc, "SELECT max(id) FROM %s", m.old_table);
    long long max_sid = h_qint(dc, "SELECT max(sid) FROM %s", m.old_table);
    PGresult *r = h_exec(app, "INSERT INTO t (a, b, cat_id) SELECT 200 + g, 'post ' || g, 2 FROM "
                              "generate_series(1, 5) g RETURNING id, sid, note");
    assert_int_equal(PQntuples(r), 5);
    for (int i = 0; i < 5; i++) {
        long long nid = atoll(PQgetvalue(r, i, 0)), nsid = atoll(PQgetvalue(r, i, 1));
        if (nid <= max_id || nsid <= max_sid) {
            PQclear(r);
            FAILP("insert after the swap got id %lld (max before %lld), sid %lld (max before "
                  "%lld): the sequences were not carried over",
                  nid, max_id, nsid, max_sid);
        }
        assert_string_equal(PQgetvalue(r, i, 2), "");
    }
    PQclear(r);
    assert_int_equal(h_qint(dc, "SELECT count(*) - count(DISTINCT id) FROM t"), 0);
    assert_int_equal(h_qint(dc, "SELECT count(*) - count(DISTINCT sid) FROM t"), 0);

    /* the triggers work on the new table: t_touch fires, t_audit stays disabled */
    h_exec_ok(app, "UPDATE t SET b = 'touched' WHERE id = 40");
    assert_int_equal(h_qint(dc, "SELECT touched FROM t WHERE id = 40"), 1);
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM audit"), 0);

    /* the child's foreign key points at the new t: cascade and rejection */
    long long children = h_qint(dc, "SELECT count(*) FROM child WHERE t_id = 30");
    assert_int_equal(children, 1);
    h_exec_ok(app, "DELETE FROM t WHERE id = 30");
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM child WHERE t_id = 30"), 0);
    r = PQexec(app, "INSERT INTO child VALUES (100000, 99999999)");
    const char *fkst = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    char fk_state[8];
    snprintf(fk_state, sizeof fk_state, "%s", fkst ? fkst : "ok");
    PQclear(r);
    if (strcmp(fk_state, "23503") != 0)
        FAILP("child row with a missing t id after the swap: %s, want 23503", fk_state);
    /* the views read the new table */
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM v_t"),
                     h_qint(dc, "SELECT count(*) FROM t WHERE a > 5"));
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM v_t2"),
                     h_qint(dc, "SELECT count(*) FROM t WHERE a > 5 AND b IS NOT NULL"));

    /* CUTOVER of a done migration: 55000 */
    char st[6], msg[512], cmd[64];
    snprintf(cmd, sizeof cmd, "CUTOVER MIGRATION %lld", id);
    h_ctl_err(ctl, cmd, st, msg, sizeof msg);
    fprintf(stderr, "CUTOVER of a done migration: [%s] %s\n", st, msg);
    assert_string_equal(st, "55000");

    /* DROP MIGRATION drops the old table; the serial keeps working */
    PQclear(h_ctl_ok(ctl, "DROP MIGRATION %lld", id));
    if (rel_exists(dc, want_old))
        FAILP("DROP MIGRATION %lld: %s still exists", id, want_old);
    h_mig_show(ctl, id, &m);
    fprintf(stderr, "after DROP MIGRATION: state %s, old_table '%s'\n", m.state, m.old_table);
    r = PQexec(app, "INSERT INTO t (a, b) VALUES (7, 'after drop') RETURNING sid");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char err[512];
        snprintf(err, sizeof err, "%s", PQerrorMessage(app));
        PQclear(r);
        FAILP("INSERT after DROP MIGRATION: %s", err);
    }
    long long sid_after = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (sid_after <= max_sid)
        FAILP("INSERT after DROP MIGRATION got sid %lld (max before the swap %lld)", sid_after,
              max_sid);
    char serial_after[2048];
    h_qtext(dc, serial_after, sizeof serial_after, "%s", cat_items[10].sql);
    assert_string_equal(cat_items[10].name, "serial sequence");
    if (strcmp(serial_after, before->v[10]) != 0)
        FAILP("serial sequence after DROP MIGRATION: '%s', before: '%s'", serial_after,
              before->v[10]);
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

static int setup_catalog(void **state)
{
    (void)state;
    return h_eng_setup_db(&ctx.e, "eng_cut_cat");
}

/* ---------- 2. lock retry ---------- */

#define RETRY_ROWS 20000

/*
 * A direct session (not through the proxy) holds LOCK TABLE t IN ROW SHARE MODE (conflicts
 * only with EXCLUSIVE and ACCESS EXCLUSIVE, so triggers and backfill are not blocked) in an
 * open transaction from before the migration starts. ALTER TABLE t ALTER COLUMN a TYPE
 * bigint runs with SET MIGRATION n lock_timeout_ms = 100 and cutover_attempts = 1000; four
 * clients run autocommit SELECTs and UPDATEs (c = c + 1 on their own keys) through the
 * proxy the whole time. Once the state is cutting_over the blocker keeps its lock for 2.5 s
 * more (the migration must not be done meanwhile), then commits. Asserts: the migration
 * reaches done with cutover_attempts > 1; no client statement failed; the worst client
 * latency is below 5 s (lock_timeout_ms plus the proxy hold, generously: a correctness
 * bound, not a benchmark); t.a is bigint; the rows equal the model of the clients' writes
 * (every committed increment is in the new table); the old table's rows, mapped, equal
 * the new table's except for increments made after the swap.
 */
static void test_lock_retry(void **state)
{
    (void)state;
    static const char *const sets[] = {"cutover_attempts=1000", "max_rows_per_second=20000",
                                       "batch_size=2000", NULL};
    PGconn *dc = h_eng_direct(&ctx.e);
    create_table(dc, RETRY_ROWS);
    PGconn *blocker = h_eng_direct(&ctx.e);
    h_exec_ok(blocker, "BEGIN");
    h_exec_ok(blocker, "LOCK TABLE t IN ROW SHARE MODE");

    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    client_t *cls = g_clients;
    start_clients(cls, MAX_CLIENTS, RETRY_ROWS, false, 42);
    long long id = h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN a TYPE bigint");
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld lock_timeout_ms = 100", id));
    h_mig m;
    h_mig_show(ctl, id, &m);
    if (strstr(m.settings, "\"lock_timeout_ms\": \"100\"") == NULL &&
        strstr(m.settings, "\"lock_timeout_ms\": 100") == NULL)
        FAILP("settings after SET lock_timeout_ms = 100: %s", m.settings);
    if (strcmp(m.state, "done") == 0 || strcmp(m.state, "cutting_over") == 0)
        FAILP("migration %lld already %s before lock_timeout_ms was set: the test's premise "
              "(a slow backfill) does not hold",
              id, m.state);

    h_mig_wait(ctl, id, "cutting_over", -1, WAIT_MS, &m);
    fprintf(stderr, "lock retry: cutting_over reached; the blocker keeps its lock for 2.5 s\n");
    for (int i = 0; i < 25; i++) {
        usleep(POLL_US);
        h_mig_show(ctl, id, &m);
        if (strcmp(m.state, "cutting_over") != 0 && strcmp(m.state, "ready") != 0)
            FAILP("while the blocker holds its lock the migration is %s (attempts %lld): %s",
                  m.state, m.attempts, m.error);
        for (int j = 0; j < MAX_CLIENTS; j++)
            if (cls[j].errors > 0)
                FAILP("while the cutover retries: %s", cls[j].err);
    }
    /* the blocker was not cancelled or terminated (cutover_force is off) */
    h_exec_ok(blocker, "COMMIT");
    h_mig_wait(ctl, id, "done", -1, WAIT_MS, &m);
    usleep(300000); /* clients keep running on the new table */
    stop_clients();
    print_cutover("lock retry", id, &m);
    double worst;
    report_clients(cls, MAX_CLIENTS, "lock retry", &worst);
    assert_cutover_figures(id, &m);
    if (m.attempts <= 1)
        FAILP("the blocker held its lock for 2.5 s of cutting_over, yet cutover_attempts is %lld",
              m.attempts);
    if (worst >= LATENCY_BOUND_MS)
        FAILP("worst client latency %.1f ms >= %.0f ms", worst, LATENCY_BOUND_MS);

    char typ[64];
    h_qtext(dc, typ, sizeof typ,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
            "'public.t'::regclass AND attname = 'a'");
    assert_string_equal(typ, "bigint");
    assert_int_equal(count_public_t(dc), 1);
    build_expected(dc, cls, MAX_CLIENTS, RETRY_ROWS);
    assert_same_rows(dc, "SELECT id, a, b, c FROM cut_expected", "SELECT id, a, b, c FROM t",
                     "new t vs the model of the clients' writes");
    if (!rel_exists(dc, m.old_table))
        FAILP("old_table '%s' does not exist after done", m.old_table);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT id, a::bigint, b FROM %s", m.old_table);
    assert_same_rows(dc, sql, "SELECT id, a, b FROM t", "old table (mapped) vs new t, id/a/b");
    assert_int_equal(
        h_qint(dc, "SELECT count(*) FROM %s o JOIN t n USING (id) WHERE o.c > n.c", m.old_table),
        0);
    free_clients();
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

static int setup_retry(void **state)
{
    (void)state;
    return h_eng_setup_db(&ctx.e, "eng_cut_retry");
}

/* ---------- 3. manual cutover ---------- */

#define MANUAL_ROWS 20000

/*
 * pgcutover with --set cutover=manual; ALTER TABLE t ALTER COLUMN a TYPE bigint reaches
 * ready; three clients insert and update (and read) through the proxy. Asserts: for 2 s
 * (every 100 ms) the state stays ready; in one REPEATABLE READ snapshot the shadow equals
 * t mapped (the triggers keep it current); DROP MIGRATION n answers 55000; CUTOVER
 * MIGRATION n (clients still writing) returns with the state done and no client error; the
 * new t holds every committed write (model of the clients' increments and inserts); the old
 * table mapped equals the new t in id/a/b on its rows, no old c is above the new one, and
 * the new t's extra rows are only client inserts.
 */
static void test_manual_cutover(void **state)
{
    (void)state;
    static const char *const sets[] = {"cutover=manual", NULL};
    PGconn *dc = h_eng_direct(&ctx.e);
    create_table(dc, MANUAL_ROWS);
    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    long long id = h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN a TYPE bigint");
    h_mig m;
    h_mig_wait(ctl, id, "ready", -1, WAIT_MS, &m);

    client_t *cls = g_clients;
    start_clients(cls, 3, MANUAL_ROWS, true, 7);
    for (int i = 0; i < 20; i++) {
        usleep(POLL_US);
        h_mig_show(ctl, id, &m);
        if (strcmp(m.state, "ready") != 0)
            FAILP("cutover=manual: the state left ready without CUTOVER: %s (%s)", m.state,
                  m.error);
    }
    long ops = 0;
    for (int j = 0; j < 3; j++)
        ops += cls[j].ops;
    if (ops < 50)
        FAILP("the clients ran only %ld statements in 2 s", ops);
    /* the shadow is current up to the change log: in one snapshot, every key the log does
     * not name yet is equal in both tables (the engine applies the log every 200 ms) */
    h_exec_ok(dc, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    char a_sql[512], b_sql[512], pending[128];
    snprintf(pending, sizeof pending, "SELECT k0 FROM pgcutover.m%lld_log WHERE k0 IS NOT NULL", id);
    snprintf(a_sql, sizeof a_sql, "SELECT id, a::bigint, b, c FROM t WHERE id NOT IN (%s)", pending);
    snprintf(b_sql, sizeof b_sql, "SELECT id, a, b, c FROM %s WHERE id NOT IN (%s)", m.shadow, pending);
    assert_same_rows(dc, a_sql, b_sql, "in ready: shadow vs t mapped (one snapshot, keys not in the log)");
    h_exec_ok(dc, "COMMIT");

    char st[6], msg[512], cmd[64];
    snprintf(cmd, sizeof cmd, "DROP MIGRATION %lld", id);
    h_ctl_err(ctl, cmd, st, msg, sizeof msg);
    fprintf(stderr, "DROP MIGRATION in ready: [%s] %s\n", st, msg);
    assert_string_equal(st, "55000");

    double t0 = h_now_ms();
    PQclear(h_ctl_ok(ctl, "CUTOVER MIGRATION %lld", id));
    double took = h_now_ms() - t0;
    h_mig_show(ctl, id, &m);
    if (strcmp(m.state, "done") != 0)
        FAILP("CUTOVER MIGRATION %lld returned with state %s (%s)", id, m.state, m.error);
    usleep(300000);
    stop_clients();
    print_cutover("manual", id, &m);
    fprintf(stderr, "manual: CUTOVER MIGRATION took %.1f ms\n", took);
    double worst;
    report_clients(cls, 3, "manual", &worst);
    assert_cutover_figures(id, &m);

    assert_int_equal(count_public_t(dc), 1);
    build_expected(dc, cls, 3, MANUAL_ROWS);
    assert_same_rows(dc, "SELECT id, a, b, c FROM cut_expected", "SELECT id, a, b, c FROM t",
                     "new t vs the model of the clients' writes");
    if (!rel_exists(dc, m.old_table))
        FAILP("old_table '%s' does not exist after done", m.old_table);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT id, a::bigint, b FROM %s", m.old_table);
    /* every old row is in the new t (id, a mapped, b) */
    assert_int_equal(
        h_qint(dc, "SELECT count(*) FROM (%s EXCEPT ALL SELECT id, a, b FROM t) x", sql), 0);
    assert_int_equal(
        h_qint(dc, "SELECT count(*) FROM %s o JOIN t n USING (id) WHERE o.c > n.c", m.old_table),
        0);
    assert_int_equal(h_qint(dc,
                            "SELECT count(*) FROM t n WHERE NOT EXISTS (SELECT 1 FROM %s o "
                            "WHERE o.id = n.id) AND n.b <> 'ins'",
                            m.old_table),
                     0);
    free_clients();
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

static int setup_manual(void **state)
{
    (void)state;
    return h_eng_setup_db(&ctx.e, "eng_cut_manual");
}

/* ---------- 4. SIGKILL during the cutover ---------- */

#define KILL_ROWS 20000

static int engine_backends(PGconn *dc)
{
    return (int)h_qint(dc,
                       "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND application_name LIKE 'pgcutover m%%'");
}

/*
 * A direct session holds LOCK TABLE t IN ROW SHARE MODE from before the migration; ALTER
 * TABLE t ALTER COLUMN a TYPE bigint with lock_timeout_ms = 50 and cutover_attempts = 1000
 * keeps retrying its cutover. As soon as SHOW reads cutting_over, pgcutover is SIGKILLed.
 * Asserts, once its backends are gone: exactly one relation public.t; either it is the
 * original (a int, the pgcutover triggers on it, the shadow exists, no old table) or the new
 * one (a bigint, no pgcutover trigger, the old table exists, the shadow gone). Then the
 * blocker commits and a new pgcutover starts: the migration reaches done (or aborted, with
 * no trigger and no table left in schema pgcutover and t unchanged); its data equal the
 * original's mapped (md5 over the rows in key order); after done, also the old table's.
 */
static void test_sigkill_cutover(void **state)
{
    (void)state;
    static const char *const sets[] = {"cutover_attempts=1000", "lock_timeout_ms=50", NULL};
    PGconn *dc = h_eng_direct(&ctx.e);
    create_table(dc, KILL_ROWS);
    char want_md5[64];
    h_qtext(
        dc, want_md5, sizeof want_md5,
        "SELECT md5(string_agg(x::text, '|' ORDER BY x.id)) FROM (SELECT id, a::bigint AS a, b, "
        "c FROM t) x");
    PGconn *blocker = h_eng_direct(&ctx.e);
    h_exec_ok(blocker, "BEGIN");
    h_exec_ok(blocker, "LOCK TABLE t IN ROW SHARE MODE");

    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    long long id = h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN a TYPE bigint");
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld lock_timeout_ms = 50", id));
    h_mig m;
    bool seen = false;
    for (int i = 0; i < WAIT_MS / 20 && !seen; i++) {
        h_mig_show(ctl, id, &m);
        if (strcmp(m.state, "cutting_over") == 0)
            seen = true;
        else if (h_mig_terminal(m.state) || strcmp(m.state, "done") == 0)
            FAILP("migration %lld is %s while a blocker holds a lock on t: %s", id, m.state,
                  m.error);
        else
            usleep(20000);
    }
    if (!seen)
        FAILP("migration %lld never read cutting_over (state %s)", id, m.state);
    /* kill while the engine's LOCK TABLE waits behind the blocker (bounded; the attempts
     * are 50 ms apart plus back-off, so one is usually seen waiting) */
    bool waiting = false;
    for (int i = 0; i < 250 && !waiting; i++) {
        waiting = h_qint(dc, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND application_name LIKE 'pgcutover m%%' AND "
                             "wait_event_type = 'Lock'") > 0;
        if (!waiting)
            usleep(2000);
    }
    char shadow[256];
    snprintf(shadow, sizeof shadow, "%s", m.shadow);
    h_eng_drop_conn(&ctx.e, ctl);
    h_proxy_signal(&ctx.e.px, SIGKILL);
    int wst = h_proxy_stop(&ctx.e.px); /* reaps it */
    assert_true(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL);
    for (int i = 0; i < 100 && engine_backends(dc) > 0; i++)
        usleep(POLL_US);
    assert_int_equal(engine_backends(dc), 0);

    char db_state[32], typ[64], trg[512], old_name[256];
    h_qtext(dc, db_state, sizeof db_state, "SELECT state FROM pgcutover.migrations WHERE id = %lld",
            id);
    snprintf(old_name, sizeof old_name, "pgcutover.t_%lld_old", id);
    long long nt = count_public_t(dc);
    h_qtext(dc, typ, sizeof typ,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
            "to_regclass('public.t') AND attname = 'a'");
    h_qtext(
        dc, trg, sizeof trg,
        "SELECT string_agg(tgname, ',') FROM pg_trigger WHERE tgrelid = to_regclass('public.t') "
        "AND tgname LIKE 'pgcutover%%' AND " NOT_A_WINDOW);
    bool shadow_there = rel_exists(dc, shadow), old_there = rel_exists(dc, old_name);
    fprintf(
        stderr,
        "after SIGKILL in cutting_over (%s): state %s; public.t x%lld, a %s, pgcutover triggers "
        "'%s', shadow %s %s, old %s %s\n",
        waiting ? "its LOCK TABLE was waiting" : "no lock wait seen", db_state, nt, typ, trg,
        shadow, shadow_there ? "exists" : "gone", old_name, old_there ? "exists" : "gone");
    if (nt != 1)
        FAILP("after SIGKILL: %lld relations named public.t", nt);
    bool original = strcmp(typ, "integer") == 0 && trg[0] && shadow_there && !old_there;
    bool swapped = strcmp(typ, "bigint") == 0 && !trg[0] && !shadow_there && old_there;
    if (!original && !swapped)
        FAILP("after SIGKILL the tables are half-swapped: public.t has a %s, pgcutover triggers "
              "'%s', shadow %s %s, old table %s %s",
              typ, trg, shadow, shadow_there ? "exists" : "missing", old_name,
              old_there ? "exists" : "missing");

    h_exec_ok(blocker, "COMMIT");
    h_proxy_start(&ctx.e.px2, sets);
    ctl = h_eng_console(&ctx.e, &ctx.e.px2);
    for (int i = 0; i < WAIT_MS / 100; i++) {
        h_mig_show(ctl, id, &m);
        if (strcmp(m.state, "done") == 0 || h_mig_terminal(m.state))
            break;
        if (strcmp(m.state, "ready") == 0 && strstr(m.phase, "cutover failed") != NULL)
            FAILP("after the restart the cutover gave up: %s", m.phase);
        usleep(POLL_US);
    }
    print_cutover("after restart", id, &m);
    char got_md5[64];
    if (strcmp(m.state, "done") == 0) {
        assert_cutover_figures(id, &m);
        h_qtext(dc, typ, sizeof typ,
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                "'public.t'::regclass AND attname = 'a'");
        assert_string_equal(typ, "bigint");
        h_qtext(dc, got_md5, sizeof got_md5,
                "SELECT md5(string_agg(x::text, '|' ORDER BY x.id)) FROM (SELECT id, a, b, c FROM "
                "t) x");
        if (strcmp(got_md5, want_md5) != 0)
            FAILP("after the restart and cutover the rows of t differ from the original mapped");
        if (!rel_exists(dc, m.old_table))
            FAILP("old_table '%s' missing after done", m.old_table);
        h_qtext(
            dc, got_md5, sizeof got_md5,
            "SELECT md5(string_agg(x::text, '|' ORDER BY x.id)) FROM (SELECT id, a::bigint AS a, "
            "b, c FROM %s) x",
            m.old_table);
        if (strcmp(got_md5, want_md5) != 0)
            FAILP("the old table's rows differ from the original's");
        h_qtext(
            dc, trg, sizeof trg,
            "SELECT string_agg(tgname, ',') FROM pg_trigger WHERE tgrelid = 'public.t'::regclass "
            "AND tgname LIKE 'pgcutover%%' AND " NOT_A_WINDOW);
        if (trg[0])
            FAILP("pgcutover triggers on the new t: %s", trg);
    } else if (strcmp(m.state, "aborted") == 0) {
        h_qtext(dc, typ, sizeof typ,
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                "'public.t'::regclass AND attname = 'a'");
        assert_string_equal(typ, "integer");
        h_qtext(
            dc, got_md5, sizeof got_md5,
            "SELECT md5(string_agg(x::text, '|' ORDER BY x.id)) FROM (SELECT id, a::bigint AS a, "
            "b, c FROM t) x");
        if (strcmp(got_md5, want_md5) != 0)
            FAILP("aborted after the restart, but the rows of t changed");
        char left[512];
        h_qtext(dc, left, sizeof left,
                "SELECT string_agg(c.relname, ',') FROM pg_class c JOIN pg_namespace n ON n.oid = "
                "c.relnamespace WHERE n.nspname = 'pgcutover' AND c.relkind IN ('r', 'p') AND "
                "c.relname NOT IN " BOOKKEEPING);
        h_qtext(
            dc, trg, sizeof trg,
            "SELECT string_agg(tgname, ',') FROM pg_trigger WHERE tgrelid = 'public.t'::regclass "
            "AND tgname LIKE 'pgcutover%%' AND " NOT_A_WINDOW);
        if (left[0] || trg[0])
            FAILP("aborted, but left tables '%s' and triggers '%s'", left, trg);
        fprintf(stderr, "after restart the migration was aborted cleanly: %s\n", m.error);
    } else {
        FAILP("after the restart migration %lld is %s (not done or aborted): %s", id, m.state,
              m.error);
    }
    assert_int_equal(count_public_t(dc), 1);
    h_eng_stop_proxy(&ctx.e, &ctx.e.px2);
}

static int setup_kill(void **state)
{
    (void)state;
    return h_eng_setup_db(&ctx.e, "eng_cut_kill");
}

/* ---------- 5. views over a column whose type changes ---------- */

/* Definition, options, acl, owner, comment and what the view reads, of view v. */
static void view_facts(PGconn *dc, const char *v, char *out, size_t len)
{
    h_qtext(
        dc, out, len,
        "SELECT pg_get_viewdef('%s'::regclass) || ' | ' || coalesce(array_to_string(reloptions, "
        "','), '') || ' | ' || coalesce(relacl::text, '') || ' | ' || relowner::regrole::text "
        "|| ' | ' || coalesce(obj_description(oid, 'pg_class'), '') || ' | reads ' || (SELECT "
        "string_agg(DISTINCT n.nspname || '.' || c.relname, ', ') FROM pg_rewrite rw JOIN "
        "pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND "
        "d.refclassid = 'pg_class'::regclass JOIN pg_class c ON c.oid = d.refobjid JOIN "
        "pg_namespace n ON n.oid = c.relnamespace WHERE rw.ev_class = '%s'::regclass AND "
        "d.refobjid <> rw.ev_class) FROM pg_class WHERE oid = '%s'::regclass",
        v, v, v);
}

static int setup_force(void **state)
{
    (void)state;
    return h_eng_setup_db(&ctx.e, "eng_cut_force");
}

/*
 * cutover_force: a session idle in a transaction that holds a lock on the table blocks
 * the cutover; after SET MIGRATION n cutover_force = on, the engine terminates that
 * session (and logs it), the cutover completes, and the blocker's connection is gone.
 */
static void test_cutover_force(void **state)
{
    (void)state;
    static const char *const sets[] = {"cutover_attempts=1000", "cutover=manual", NULL};
    PGconn *dc = h_eng_direct(&ctx.e);
    create_table(dc, 2000);
    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    long long id = h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN a TYPE bigint");
    h_mig m;
    h_mig_wait(ctl, id, "ready", -1, WAIT_MS, &m);
    PGconn *blocker = PQconnectdb(h_conninfo_direct("dbname=eng_cut_force"));
    assert_int_equal(PQstatus(blocker), CONNECTION_OK);
    h_exec_ok(blocker, "BEGIN");
    h_exec_ok(blocker, "LOCK TABLE t IN ROW SHARE MODE");
    int blocker_pid = PQbackendPID(blocker);
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld lock_timeout_ms = 100", id));
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld cutover_force = on", id));
    PQclear(h_ctl_ok(ctl, "CUTOVER MIGRATION %lld", id));
    h_mig_show(ctl, id, &m);
    assert_string_equal(m.state, "done");
    if (m.attempts < 2)
        FAILP("cutover_force terminates blockers from the second attempt on; attempts %lld",
              m.attempts);
    assert_int_equal(
        h_qint(dc, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", blocker_pid), 0);
    PGresult *r = PQexec(blocker, "SELECT 1");
    assert_int_not_equal(PQresultStatus(r), PGRES_TUPLES_OK); /* terminated */
    PQclear(r);
    PQfinish(blocker);
    char grep[600];
    snprintf(grep, sizeof grep, "grep -q 'cutover_force: terminated backend %d' %s", blocker_pid,
             ctx.e.px.log);
    if (h_shell("%s", grep) != 0)
        FAILP("no log line naming the terminated backend %d", blocker_pid);
    assert_int_equal(count_public_t(dc), 1);
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM t WHERE pg_typeof(a) = 'bigint'::regtype"),
                     2000);
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

/*
 * A view v1 over t reads the column a whose type changes (ALTER TABLE t ALTER COLUMN a
 * TYPE bigint), and a view v2 reads v1; both have grants (one WITH GRANT OPTION), v1 has
 * a comment and security_barrier. Plain PostgreSQL refuses this ALTER; the online change
 * must either refuse it up front (an error from ALTER TABLE on the console, nothing
 * created) or complete it. Asserts, in the second case: the migration reaches done (the
 * cutover does not give up); v1 and v2 exist with their definitions, options, acl, owner
 * and comment unchanged, v1 reads public.t and v2 reads public.v1; their column a is
 * bigint; they return the same rows as the same queries on the new t.
 */
static void test_views_over_changed_column(void **state)
{
    (void)state;
    PGconn *dc = h_eng_direct(&ctx.e);
    create_table(dc, 2000);
    h_exec_ok(dc, "CREATE VIEW v1 WITH (security_barrier = true) AS SELECT id, a, b FROM t "
                  "WHERE a > 10;"
                  "CREATE VIEW v2 AS SELECT id, a FROM v1 WHERE id % 2 = 0;"
                  "GRANT SELECT ON v1 TO PUBLIC;"
                  "GRANT SELECT ON v2 TO pg_monitor WITH GRANT OPTION;"
                  "COMMENT ON VIEW v1 IS 'v1 over t'");
    char v1_before[2048], v2_before[2048], v1_after[2048], v2_after[2048];
    view_facts(dc, "public.v1", v1_before, sizeof v1_before);
    view_facts(dc, "public.v2", v2_before, sizeof v2_before);
    h_proxy_start(&ctx.e.px, NULL);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    PGresult *r = PQexec(ctl, "ALTER TABLE t ALTER COLUMN a TYPE bigint");
    if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
        char st[8], msg[512];
        const char *s0 = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *m0 = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(st, sizeof st, "%s", s0 ? s0 : "");
        snprintf(msg, sizeof msg, "%s", m0 ? m0 : "");
        PQclear(r);
        fprintf(stderr, "views: the change was refused up front: [%s] %s\n", st, msg);
        assert_int_equal(h_qint(dc, "SELECT count(*) FROM pg_trigger WHERE tgrelid = "
                                    "'public.t'::regclass AND NOT tgisinternal"),
                         0);
        h_eng_stop_proxy(&ctx.e, &ctx.e.px);
        return;
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        PQclear(r);
        FAILP("ALTER TABLE t ALTER COLUMN a TYPE bigint: %s", PQerrorMessage(ctl));
    }
    long long id = atoll(PQgetvalue(r, 0, h_col(r, "id")));
    PQclear(r);
    h_mig m;
    h_mig_wait(ctl, id, "done", -1, WAIT_MS, &m);
    print_cutover("views", id, &m);
    view_facts(dc, "public.v1", v1_after, sizeof v1_after);
    view_facts(dc, "public.v2", v2_after, sizeof v2_after);
    if (strcmp(v1_before, v1_after) != 0)
        FAILP("view v1 changed:\n  before: %s\n  after:  %s", v1_before, v1_after);
    if (strcmp(v2_before, v2_after) != 0)
        FAILP("view v2 changed:\n  before: %s\n  after:  %s", v2_before, v2_after);
    char typ[128];
    h_qtext(dc, typ, sizeof typ,
            "SELECT string_agg(attrelid::regclass::text || '.a ' || format_type(atttypid, "
            "atttypmod), ', ' ORDER BY attrelid::regclass::text) FROM pg_attribute WHERE attrelid "
            "IN ('public.v1'::regclass, 'public.v2'::regclass) AND attname = 'a'");
    assert_string_equal(typ, "v1.a bigint, v2.a bigint");
    assert_same_rows(dc, "SELECT id, a, b FROM t WHERE a > 10", "SELECT id, a, b FROM v1",
                     "v1 vs its query on the new t");
    assert_same_rows(dc, "SELECT id, a FROM t WHERE a > 10 AND id % 2 = 0", "SELECT id, a FROM v2",
                     "v2 vs its query on the new t");
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

static int setup_views(void **state)
{
    (void)state;
    return h_eng_setup_db(&ctx.e, "eng_cut_views");
}

int main(void)
{
    static client_t clients[MAX_CLIENTS];
    g_clients = clients;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_catalog_comparison, setup_catalog, teardown),
        cmocka_unit_test_setup_teardown(test_lock_retry, setup_retry, teardown),
        cmocka_unit_test_setup_teardown(test_manual_cutover, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_cutover, setup_kill, teardown),
        cmocka_unit_test_setup_teardown(test_cutover_force, setup_force, teardown),
        cmocka_unit_test_setup_teardown(test_views_over_changed_column, setup_views, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
