/*
 * h_random.c — the model, its SQL and the client threads of test_engine_random.c; see
 * h_random.h, and the test's header for the design.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"
#include "h_random.h"

#define NCLIENTS 4
#define SLOTS 1200 /* key indexes per client */
#define FILLER 500 /* untouched rows before, between and after the client ranges */
#define CLIENT_MAX_OPS 200000
#define MAX_TXN_OPS 4
#define NERRS 3
#define TS_BASE 1690000000LL

/* ---------- the seeded generator (splitmix64) ---------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

unsigned h_rnd_u(uint64_t *s, unsigned n)
{
    return (unsigned)(splitmix(s) % n);
}

/* ---------- the model: one row per key index ---------- */

typedef struct {
    bool present;
    bool post;         /* the session-dependent column holds a value of the new type */
    unsigned char var; /* key spelling (ci: case, numeric: scale) */
    int v, u;          /* u < 0: NULL */
    long long ts;      /* seconds since the epoch; < 0: NULL */
    int f, d, note;    /* < 0: NULL */
} mrow;

static h_rnd_scenario sc; /* h_rnd_model_init's copy of the scenario (read-only) */
static mrow *model;       /* [nkeys]; a client writes only its own range */
static int nkeys;         /* FILLER + NCLIENTS * (SLOTS + FILLER) */

static int region_base(int c)
{
    return FILLER + c * (SLOTS + FILLER);
}

/* The key's columns, values and conditions for key index i spelled var. */
static void key_values(int i, int var, char *out, size_t n)
{
    static const char *const ci_fmt[] = {"'user%06d@example.com'", "'User%06d@Example.COM'",
                                         "'USER%06d@EXAMPLE.COM'"};
    static const char *const num_fmt[] = {"%d", "%d.0", "%d.00"};
    switch (sc.key) {
    case H_RND_K_INT: snprintf(out, n, "%d", i); break;
    case H_RND_K_BIGINT: snprintf(out, n, "%lld", 5000000000LL + i); break;
    case H_RND_K_COMP: snprintf(out, n, "%d, 'k%d'", i / 4, i % 4); break;
    case H_RND_K_CI: snprintf(out, n, ci_fmt[var % 3], i); break;
    default: snprintf(out, n, num_fmt[var % 3], i); break;
    }
}
static const char *key_cols(void)
{
    return sc.key == H_RND_K_COMP ? "k1, k2" : "id";
}
/* "id = …" (sep " AND ") or "id = …" (sep ", ") */
static void key_eq(int i, int var, const char *sep, char *out, size_t n)
{
    char kv[96];
    if (sc.key == H_RND_K_COMP) {
        snprintf(out, n, "k1 = %d%sk2 = 'k%d'", i / 4, sep, i % 4);
        return;
    }
    key_values(i, var, kv, sizeof kv);
    snprintf(out, n, "id = %s", kv);
}
/* The key as text parameters for prepared statements ($1[, $2]); returns their count. */
static int key_params(int i, int var, char p[2][64])
{
    char kv[96];
    if (sc.key == H_RND_K_COMP) {
        snprintf(p[0], 64, "%d", i / 4);
        snprintf(p[1], 64, "k%d", i % 4);
        return 2;
    }
    key_values(i, var, kv, 64);
    if (kv[0] == '\'') { /* strip the quotes */
        size_t l = strlen(kv);
        kv[l - 1] = 0;
        memmove(kv, kv + 1, l - 1);
    }
    memcpy(p[0], kv, 64);
    p[0][63] = 0;
    return 1;
}

static void iso_utc(long long secs, char *out, size_t n)
{
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

/* Literals of the columns ts, f, d. When post, the session-dependent column gets a
 * literal of its new type; the others always their old type's session-independent
 * form. form picks one of two equivalent spellings. */
static void lit_ts(const mrow *r, bool post, int form, char *out, size_t n)
{
    char iso[40];
    if (r->ts < 0) {
        snprintf(out, n, "NULL");
        return;
    }
    iso_utc(r->ts, iso, sizeof iso);
    if (post)
        snprintf(out, n, "'%s'::timestamp", iso);
    else if (form)
        snprintf(out, n, "to_timestamp(%lld)", r->ts);
    else
        snprintf(out, n, "'%s+00'::timestamptz", iso);
}

static enum h_rnd_sens cur_sens(void)
{
    return sc.sens;
}

static void lit_f(const mrow *r, bool post, char *out, size_t n)
{
    if (r->f < 0)
        snprintf(out, n, "NULL");
    else if (post)
        snprintf(out, n, "'f%d'", r->f);
    else
        snprintf(out, n, "(%d::float8 / 7)", r->f);
}

static void lit_d(const mrow *r, bool post, char *out, size_t n)
{
    if (r->d < 0)
        snprintf(out, n, "NULL");
    else if (post)
        snprintf(out, n, "'d%d'", r->d);
    else
        snprintf(out, n, "(date '2000-01-01' + %d)", r->d);
}

/* "v, u, ts, f, d" values of r; the session-dependent column as a literal of its new
 * type when r->post, NULL when null_sens. */
static void row_values(const mrow *r, bool null_sens, int form, char *out, size_t n)
{
    char ts[64], f[64], d[64];
    enum h_rnd_sens s = cur_sens();
    lit_ts(r, s == H_RND_S_TS && r->post, form, ts, sizeof ts);
    lit_f(r, s == H_RND_S_F && r->post, f, sizeof f);
    lit_d(r, s == H_RND_S_D && r->post, d, sizeof d);
    if (null_sens && s == H_RND_S_TS)
        snprintf(ts, sizeof ts, "NULL");
    if (null_sens && s == H_RND_S_F)
        snprintf(f, sizeof f, "NULL");
    if (null_sens && s == H_RND_S_D)
        snprintf(d, sizeof d, "NULL");
    char u[16];
    if (r->u < 0)
        snprintf(u, sizeof u, "NULL");
    else
        snprintf(u, sizeof u, "%d", r->u);
    snprintf(out, n, "%d, %s, %s, %s, %s", r->v, u, ts, f, d);
}

/* ---------- a growing string ---------- */

typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void sb_free(sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---------- DDL and data (the same code for the original and the reference) ---------- */

void h_rnd_create_table(PGconn *dc, const char *schema)
{
    static const char *const keydefs[] = {"id int", "id bigint", "k1 int, k2 text",
                                          "id text COLLATE public.ci", "id numeric"};
    h_execf(dc,
            "CREATE TABLE %s.t (%s, v int NOT NULL, u int%s, ts timestamptz, f float8, d date, "
            "note text, PRIMARY KEY (%s))",
            schema, keydefs[sc.key], sc.uniq2 ? " UNIQUE" : "", key_cols());
}

void h_rnd_insert_model(PGconn *dc, const char *schema)
{
    sbuf b = {0};
    int n = 0;
    for (int i = 0; i < nkeys; i++) {
        const mrow *r = &model[i];
        if (!r->present)
            continue;
        char kv[96], vals[512], note[16];
        key_values(i, r->var, kv, sizeof kv);
        row_values(r, r->post, i % 2, vals, sizeof vals);
        if (r->note < 0)
            snprintf(note, sizeof note, "NULL");
        else
            snprintf(note, sizeof note, "'n%d'", r->note);
        if (n == 0)
            sb_add(&b, "INSERT INTO %s.t (%s, v, u, ts, f, d, note) VALUES ", schema, key_cols());
        sb_add(&b, "%s(%s, %s, %s)", n ? ", " : "", kv, vals, note);
        if (++n == 500) {
            h_exec_ok(dc, b.p);
            b.len = 0;
            n = 0;
        }
    }
    if (n)
        h_exec_ok(dc, b.p);
    sb_free(&b);
}

void h_rnd_set_post_values(PGconn *dc, const char *schema)
{
    static const char *const col[] = {"", "ts", "f", "d"};
    enum h_rnd_sens s = cur_sens();
    if (s == H_RND_S_NONE)
        return;
    sbuf b = {0};
    for (int i = 0; i < nkeys; i++) {
        const mrow *r = &model[i];
        if (!r->present || !r->post)
            continue;
        char val[64], where[160];
        if (s == H_RND_S_TS)
            lit_ts(r, true, 0, val, sizeof val);
        else if (s == H_RND_S_F)
            lit_f(r, true, val, sizeof val);
        else
            lit_d(r, true, val, sizeof val);
        key_eq(i, r->var, " AND ", where, sizeof where);
        sb_add(&b, "UPDATE %s.t SET %s = %s WHERE %s;\n", schema, col[s], val, where);
    }
    if (b.p)
        h_exec_ok(dc, b.p);
    sb_free(&b);
}

static bool owned(int i)
{
    if (i < FILLER)
        return false;
    int off = (i - FILLER) % (SLOTS + FILLER);
    return off < SLOTS && i < FILLER + NCLIENTS * (SLOTS + FILLER);
}

void h_rnd_model_init(const h_rnd_scenario *scenario)
{
    sc = *scenario;
    nkeys = FILLER + NCLIENTS * (SLOTS + FILLER);
    model = calloc((size_t)nkeys, sizeof *model);
    assert_non_null(model);
    uint64_t s = sc.seed * 31ull + 7;
    for (int i = 0; i < nkeys; i++) {
        mrow *r = &model[i];
        r->present = !owned(i) || h_rnd_u(&s, 3) != 0;
        r->var = (unsigned char)h_rnd_u(&s, 3);
        r->v = (int)h_rnd_u(&s, 100000);
        r->u = i % 2 == 0 ? i : -1;
        r->ts = i % 11 == 0 ? -1 : TS_BASE + (long long)i * 3571;
        r->f = i % 13 == 0 ? -1 : i;
        r->d = i % 17 == 0 ? -1 : i % 20000;
        r->note = i;
    }
}

long long h_rnd_model_rows(void)
{
    long long rows = 0;
    for (int i = 0; i < nkeys; i++)
        rows += model[i].present;
    return rows;
}

void h_rnd_model_free(void)
{
    free(model);
    model = NULL;
    nkeys = 0;
}

/* ---------- client threads (no cmocka calls in them) ---------- */

typedef struct {
    int idx;
    uint64_t rng;
    pthread_t th;
    bool started;
    PGconn *c;
    int gen;
    atomic_long ops, errors;
    atomic_bool idle;
    long commits, rollbacks, post_commits, autocommits;
    long u_next;
    const char *iso; /* the current transaction's isolation, for error messages */
    char errs[NERRS][600];
    int nerrs;
    struct {
        int slot;
        mrow old;
    } undo[2 * MAX_TXN_OPS + 2];
    int nundo;
} client_t;

static client_t clients[NCLIENTS];
static bool clients_running;
static atomic_bool clients_stop, quiesce;
static atomic_int conn_gen;
static char conninfo[512]; /* written by the main thread only while every client is idle */
static pthread_mutex_t conninfo_mu = PTHREAD_MUTEX_INITIALIZER;

static unsigned crnd(client_t *cl, unsigned n)
{
    return h_rnd_u(&cl->rng, n);
}

static void cl_error(client_t *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cl_error(client_t *cl, const char *fmt, ...)
{
    cl->errors++;
    if (cl->nerrs < NERRS) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cl->errs[cl->nerrs++], sizeof cl->errs[0], fmt, ap);
        va_end(ap);
    }
}

/* Check a result: OK status and, when expect >= 0, that many affected rows. Clears r. */
static bool cl_check(client_t *cl, PGresult *r, const char *what, long expect)
{
    ExecStatusType st = PQresultStatus(r);
    bool ok = true;
    cl->ops++;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        cl_error(cl, "client %d%s: [%s] %s: %.300s", cl->idx, cl->iso, code ? code : "-",
                 msg ? msg : PQerrorMessage(cl->c), what);
        ok = false;
    } else if (expect >= 0 && atol(PQcmdTuples(r)) != expect) {
        cl_error(cl, "client %d%s: %s rows affected, the model expects %ld: %.300s", cl->idx,
                 cl->iso, PQcmdTuples(r), expect, what);
        ok = false;
    }
    PQclear(r);
    return ok;
}

static bool cl_sql(client_t *cl, const char *sql, long expect)
{
    return cl_check(cl, PQexec(cl->c, sql), sql, expect);
}

static void cl_set(client_t *cl, int slot, const mrow *nr)
{
    if (cl->nundo < (int)(sizeof cl->undo / sizeof cl->undo[0])) {
        cl->undo[cl->nundo].slot = slot;
        cl->undo[cl->nundo].old = model[slot];
        cl->nundo++;
    }
    model[slot] = *nr;
}

static void cl_rollback_model(client_t *cl)
{
    while (cl->nundo > 0) {
        cl->nundo--;
        model[cl->undo[cl->nundo].slot] = cl->undo[cl->nundo].old;
    }
}

static int own_slot(client_t *cl)
{
    return region_base(cl->idx) + (int)crnd(cl, SLOTS);
}

static void cl_settings(client_t *cl)
{
    static const char *const tz[] = {"UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham",
                                     "Europe/Berlin"};
    static const char *const ds[] = {"ISO, MDY", "SQL, DMY", "German", "Postgres, YMD",
                                     "ISO, DMY"};
    static const char *const efd[] = {"0", "1", "3", "-3"};
    char sql[256];
    snprintf(sql, sizeof sql, "SET TimeZone = '%s'; SET DateStyle = '%s'; SET extra_float_digits = %s",
             tz[crnd(cl, 5)], ds[crnd(cl, 5)], efd[crnd(cl, 4)]);
    cl_sql(cl, sql, -1);
}

static bool cl_prepare(client_t *cl)
{
    char sql[256];
    const char *kw = sc.key == H_RND_K_COMP ? "k1 = $%d AND k2 = $%d" : "id = $%d";
    char w1[64], w3[64];
    snprintf(w1, sizeof w1, kw, 1, 2);
    snprintf(w3, sizeof w3, kw, 3, 4);
    snprintf(sql, sizeof sql, "SELECT 1 FROM t WHERE %s", w1);
    if (!cl_check(cl, PQprepare(cl->c, "r_sel", sql, 0, NULL), "PREPARE r_sel", -1))
        return false;
    snprintf(sql, sizeof sql, "DELETE FROM t WHERE %s", w1);
    if (!cl_check(cl, PQprepare(cl->c, "r_del", sql, 0, NULL), "PREPARE r_del", -1))
        return false;
    snprintf(sql, sizeof sql, "UPDATE t SET v = $1, u = $2 WHERE %s", w3);
    return cl_check(cl, PQprepare(cl->c, "r_upd", sql, 0, NULL), "PREPARE r_upd", -1);
}

static bool cl_connect(client_t *cl)
{
    char ci[512];
    pthread_mutex_lock(&conninfo_mu);
    snprintf(ci, sizeof ci, "%s", conninfo);
    cl->gen = atomic_load(&conn_gen);
    pthread_mutex_unlock(&conninfo_mu);
    if (cl->c)
        PQfinish(cl->c);
    cl->iso = "";
    cl->c = PQconnectdb(ci);
    if (PQstatus(cl->c) != CONNECTION_OK) {
        cl_error(cl, "client %d: connect: %s", cl->idx, PQerrorMessage(cl->c));
        return false;
    }
    PQsetNoticeProcessor(cl->c, h_quiet_notice, NULL);
    cl_settings(cl);
    return cl_prepare(cl);
}

/* The key of slot as a WHERE, spelled in a random (equal) way. */
static void where_key(client_t *cl, int slot, char *out, size_t n)
{
    key_eq(slot, (int)crnd(cl, 3), " AND ", out, n);
}

static void new_values(client_t *cl, mrow *r)
{
    r->v = (int)crnd(cl, 100000);
    r->u = crnd(cl, 2) ? (int)(10000000 + cl->idx + NCLIENTS * cl->u_next++) : -1;
}

/* One write on slot. in_txn_post: -1 autocommit (the session-dependent column is not
 * written), else whether the column already has its new type. */
static bool cl_write(client_t *cl, int slot, int post, bool *did)
{
    mrow nr = model[slot];
    char sql[1024], w[160], kv[96], vals[512];
    bool autoc = post < 0;
    enum h_rnd_sens s = cur_sens();
    *did = true;
    if (!nr.present) {
        if (crnd(cl, 100) < 15) { /* a key the model says is absent: nothing to delete */
            where_key(cl, slot, w, sizeof w);
            snprintf(sql, sizeof sql, "DELETE FROM t WHERE %s", w);
            return cl_sql(cl, sql, 0);
        }
        nr.present = true;
        nr.var = (unsigned char)crnd(cl, 3);
        new_values(cl, &nr);
        nr.ts = crnd(cl, 10) ? TS_BASE + (long long)crnd(cl, 40000000) : -1;
        nr.f = crnd(cl, 10) ? (int)crnd(cl, 1000000) : -1;
        nr.d = crnd(cl, 10) ? (int)crnd(cl, 20000) : -1;
        nr.note = -1;
        nr.post = post > 0;
        if (autoc) { /* the session-dependent column is left NULL */
            if (s == H_RND_S_TS)
                nr.ts = -1;
            if (s == H_RND_S_F)
                nr.f = -1;
            if (s == H_RND_S_D)
                nr.d = -1;
        }
        key_values(slot, nr.var, kv, sizeof kv);
        row_values(&nr, false, (int)crnd(cl, 2), vals, sizeof vals);
        snprintf(sql, sizeof sql, "INSERT INTO t (%s, v, u, ts, f, d) VALUES (%s, %s)", key_cols(),
                 kv, vals);
        if (!cl_sql(cl, sql, 1))
            return false;
        cl_set(cl, slot, &nr);
        return true;
    }
    unsigned r = crnd(cl, 100);
    if (r < 30) { /* v, u: named prepared, unnamed extended or simple */
        new_values(cl, &nr);
        char p[2][64], vv[16], uv[16];
        int np = key_params(slot, (int)crnd(cl, 3), p);
        snprintf(vv, sizeof vv, "%d", nr.v);
        snprintf(uv, sizeof uv, "%d", nr.u);
        const char *pv[4] = {vv, nr.u < 0 ? NULL : uv, p[0], np > 1 ? p[1] : NULL};
        unsigned how = crnd(cl, 3);
        bool ok;
        if (how == 0) {
            ok = cl_check(cl, PQexecPrepared(cl->c, "r_upd", 2 + np, pv, NULL, NULL, 0),
                          "EXECUTE r_upd", 1);
        } else if (how == 1) {
            snprintf(sql, sizeof sql, "UPDATE t SET v = $1, u = $2 WHERE %s",
                     sc.key == H_RND_K_COMP ? "k1 = $3 AND k2 = $4" : "id = $3");
            ok = cl_check(cl, PQexecParams(cl->c, sql, 2 + np, NULL, pv, NULL, NULL, 0), sql, 1);
        } else {
            where_key(cl, slot, w, sizeof w);
            snprintf(sql, sizeof sql, "UPDATE t SET v = %d, u = %s WHERE %s", nr.v,
                     nr.u < 0 ? "NULL" : uv, w);
            ok = cl_sql(cl, sql, 1);
        }
        if (ok)
            cl_set(cl, slot, &nr);
        return ok;
    }
    if (r < 50) { /* ts, f, d (not the session-dependent column in autocommit) */
        char ts[64], f[64], d[64];
        nr.ts = crnd(cl, 10) ? TS_BASE + (long long)crnd(cl, 40000000) : -1;
        nr.f = crnd(cl, 10) ? (int)crnd(cl, 1000000) : -1;
        nr.d = crnd(cl, 10) ? (int)crnd(cl, 20000) : -1;
        if (!autoc && s != H_RND_S_NONE)
            nr.post = post > 0;
        lit_ts(&nr, s == H_RND_S_TS && nr.post, (int)crnd(cl, 2), ts, sizeof ts);
        lit_f(&nr, s == H_RND_S_F && nr.post, f, sizeof f);
        lit_d(&nr, s == H_RND_S_D && nr.post, d, sizeof d);
        if (autoc && s == H_RND_S_TS)
            nr.ts = model[slot].ts;
        if (autoc && s == H_RND_S_F)
            nr.f = model[slot].f;
        if (autoc && s == H_RND_S_D)
            nr.d = model[slot].d;
        char set[256];
        size_t l = 0;
        if (!(autoc && s == H_RND_S_TS))
            l += (size_t)snprintf(set + l, sizeof set - l, "ts = %s", ts);
        if (!(autoc && s == H_RND_S_F))
            l += (size_t)snprintf(set + l, sizeof set - l, "%sf = %s", l ? ", " : "", f);
        if (!(autoc && s == H_RND_S_D))
            snprintf(set + l, sizeof set - l, "%sd = %s", l ? ", " : "", d);
        where_key(cl, slot, w, sizeof w);
        snprintf(sql, sizeof sql, "UPDATE t SET %s WHERE %s", set, w);
        if (!cl_sql(cl, sql, 1))
            return false;
        cl_set(cl, slot, &nr);
        return true;
    }
    if (r < 65) { /* DELETE */
        bool ok;
        if (crnd(cl, 2)) {
            char p[2][64];
            int np = key_params(slot, (int)crnd(cl, 3), p);
            const char *pv[2] = {p[0], np > 1 ? p[1] : NULL};
            ok = cl_check(cl, PQexecPrepared(cl->c, "r_del", np, pv, NULL, NULL, 0),
                          "EXECUTE r_del", 1);
        } else {
            where_key(cl, slot, w, sizeof w);
            snprintf(sql, sizeof sql, "DELETE FROM t WHERE %s", w);
            ok = cl_sql(cl, sql, 1);
        }
        if (ok) {
            nr.present = false;
            cl_set(cl, slot, &nr);
        }
        return ok;
    }
    if (r < 80) { /* move the row to a free key of this client */
        int to = -1;
        for (int a = 0; a < 20 && to < 0; a++) {
            int c = own_slot(cl);
            if (!model[c].present)
                to = c;
        }
        if (to < 0) {
            *did = false;
            return true;
        }
        mrow moved = nr;
        moved.var = (unsigned char)crnd(cl, 3);
        char set[160];
        key_eq(to, moved.var, ", ", set, sizeof set);
        where_key(cl, slot, w, sizeof w);
        snprintf(sql, sizeof sql, "UPDATE t SET %s WHERE %s", set, w);
        if (!cl_sql(cl, sql, 1))
            return false;
        nr.present = false;
        cl_set(cl, slot, &nr);
        cl_set(cl, to, &moved);
        return true;
    }
    if (r < 95 || !sc.oidw) { /* key to an equal value: another spelling, or itself */
        char set[160];
        if (sc.key == H_RND_K_CI || sc.key == H_RND_K_NUM)
            nr.var = (unsigned char)((nr.var + 1 + crnd(cl, 2)) % 3);
        key_eq(slot, nr.var, ", ", set, sizeof set);
        where_key(cl, slot, w, sizeof w);
        snprintf(sql, sizeof sql, "UPDATE t SET %s WHERE %s", set, w);
        if (!cl_sql(cl, sql, 1))
            return false;
        cl_set(cl, slot, &nr);
        return true;
    }
    /* the oid-bound writer: a SQL-standard function body that updates t */
    nr.v = (int)crnd(cl, 100000);
    key_values(slot, (int)crnd(cl, 3), kv, sizeof kv);
    snprintf(sql, sizeof sql, "SELECT rand_set_v(%s, %d)", kv, nr.v);
    if (!cl_sql(cl, sql, -1))
        return false;
    cl_set(cl, slot, &nr);
    return true;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Whether the session-dependent column already has its new type (-1 on an error). The
 * transaction holds a lock on t (its first statement read t), so no ALTER or cutover
 * can change that before it ends. */
static int cl_post(client_t *cl)
{
    static const char *const q[] = {
        "", "SELECT format_type(atttypid, NULL) <> 'timestamp with time zone' FROM pg_attribute "
            "WHERE attrelid = 't'::regclass AND attname = 'ts'",
        "SELECT format_type(atttypid, NULL) <> 'double precision' FROM pg_attribute WHERE "
        "attrelid = 't'::regclass AND attname = 'f'",
        "SELECT format_type(atttypid, NULL) <> 'date' FROM pg_attribute WHERE attrelid = "
        "'t'::regclass AND attname = 'd'"};
    if (cur_sens() == H_RND_S_NONE)
        return 0;
    PGresult *r = PQexec(cl->c, q[cur_sens()]);
    int post = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        post = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    cl_check(cl, r, "the column's type", -1);
    return post;
}

static void cl_txn(client_t *cl)
{
    unsigned iso = crnd(cl, 4); /* 0,1 READ COMMITTED, 2 REPEATABLE READ, 3 SERIALIZABLE */
    static const char *const begin[] = {"BEGIN", "BEGIN ISOLATION LEVEL READ COMMITTED",
                                        "BEGIN ISOLATION LEVEL REPEATABLE READ",
                                        "BEGIN ISOLATION LEVEL SERIALIZABLE"};
    int n = iso == 3 ? 1 : 1 + (int)crnd(cl, MAX_TXN_OPS);
    int slots[MAX_TXN_OPS];
    for (int i = 0; i < n; i++) {
        slots[i] = own_slot(cl);
        for (int j = 0; j < i; j++)
            if (slots[j] == slots[i])
                slots[i] = -1;
        if (slots[i] < 0)
            i--;
    }
    qsort(slots, (size_t)n, sizeof slots[0], cmp_int);
    static const char *const label[] = {" (RC)", " (RC)", " (RR)", " (SERIALIZABLE)"};
    cl->iso = label[iso];
    cl->nundo = 0;
    if (!cl_sql(cl, begin[iso], -1))
        return;
    /* RR/SERIALIZABLE: LOCK first (it takes no snapshot), so that the snapshot the SELECT
     * takes cannot predate an ALTER or cutover that committed while the lock was awaited
     * (a plain ALTER that rewrites shows such a snapshot an empty table: "MVCC Caveats").
     * Then a read of t: the snapshot, and a lock on t in every transaction. */
    if (iso >= 2 && !cl_sql(cl, "LOCK TABLE t IN ACCESS SHARE MODE", -1)) {
        cl_sql(cl, "ROLLBACK", -1);
        return;
    }
    char p[2][64];
    int np = key_params(slots[0], (int)crnd(cl, 3), p);
    const char *pv[2] = {p[0], np > 1 ? p[1] : NULL};
    bool ok = cl_check(cl, PQexecPrepared(cl->c, "r_sel", np, pv, NULL, NULL, 0), "EXECUTE r_sel",
                       model[slots[0]].present ? 1 : 0);
    int post = ok ? cl_post(cl) : -1;
    ok = ok && post >= 0;
    if (ok && iso >= 2 && crnd(cl, 3) == 0)
        usleep(5000 + crnd(cl, 60000));
    bool wrote = false;
    for (int i = 0; i < n && ok; i++) {
        bool did;
        ok = cl_write(cl, slots[i], post, &did);
        wrote |= did;
    }
    if (ok && iso >= 2 && crnd(cl, 4) == 0)
        usleep(5000 + crnd(cl, 30000));
    if (!ok || crnd(cl, 10) == 0) {
        cl_sql(cl, "ROLLBACK", -1);
        cl_rollback_model(cl);
        cl->rollbacks++;
        return;
    }
    PGresult *r = PQexec(cl->c, "COMMIT");
    bool committed = PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0;
    if (PQresultStatus(r) == PGRES_COMMAND_OK && !committed)
        cl_error(cl, "client %d: COMMIT answered %s", cl->idx, PQcmdStatus(r));
    cl_check(cl, r, "COMMIT", -1);
    if (!committed) {
        cl_rollback_model(cl);
        cl->rollbacks++;
        return;
    }
    cl->commits++;
    if (post > 0 && wrote)
        cl->post_commits++;
}

static void cl_autocommit(client_t *cl)
{
    cl->iso = " (autocommit)";
    cl->nundo = 0;
    bool did;
    if (cl_write(cl, own_slot(cl), -1, &did) && did)
        cl->autocommits++;
    cl->nundo = 0;
}

static void *client_main(void *arg)
{
    client_t *cl = arg;
    bool connected = cl_connect(cl);
    while (connected && !atomic_load(&clients_stop) && cl->ops < CLIENT_MAX_OPS) {
        if (atomic_load(&quiesce)) {
            atomic_store(&cl->idle, true);
            for (int i = 0; i < 12000 && atomic_load(&quiesce) && !atomic_load(&clients_stop); i++)
                usleep(10000);
            atomic_store(&cl->idle, false);
            if (cl->gen != atomic_load(&conn_gen) && !(connected = cl_connect(cl)))
                break;
            continue;
        }
        if (PQstatus(cl->c) != CONNECTION_OK) {
            cl_error(cl, "client %d: connection lost: %s", cl->idx, PQerrorMessage(cl->c));
            break;
        }
        unsigned r = crnd(cl, 100);
        if (r < 3)
            cl_settings(cl);
        else if (r < 30)
            cl_autocommit(cl);
        else
            cl_txn(cl);
    }
    atomic_store(&cl->idle, true);
    return NULL;
}

void h_rnd_clients_start(const h_proxy *px, const char *db)
{
    snprintf(conninfo, sizeof conninfo, "%s",
             h_conninfo_proxy_db(px, db, "application_name=eng_random_client"));
    atomic_store(&clients_stop, false);
    atomic_store(&quiesce, false);
    for (int i = 0; i < NCLIENTS; i++) {
        client_t *cl = &clients[i];
        memset(cl, 0, sizeof *cl);
        cl->idx = i;
        cl->rng = sc.seed * 1000003ull + (uint64_t)i * 7919u + 1;
        assert_int_equal(pthread_create(&cl->th, NULL, client_main, cl), 0);
        cl->started = true;
    }
    clients_running = true;
}

void h_rnd_clients_stop(void)
{
    if (!clients_running)
        return;
    atomic_store(&clients_stop, true);
    for (int i = 0; i < NCLIENTS; i++)
        if (clients[i].started) {
            pthread_join(clients[i].th, NULL);
            clients[i].started = false;
            if (clients[i].c)
                PQfinish(clients[i].c);
            clients[i].c = NULL;
        }
    clients_running = false;
}

static long total_ops(void)
{
    long s = 0;
    for (int i = 0; i < NCLIENTS; i++)
        s += atomic_load(&clients[i].ops);
    return s;
}

void h_rnd_run_for(long more, int ms)
{
    long until = total_ops() + more;
    for (int i = 0; i < ms / 10 && total_ops() < until; i++)
        usleep(10000);
}

bool h_rnd_clients_quiesce(void)
{
    atomic_store(&quiesce, true);
    for (int i = 0; i < 3000; i++) {
        bool all = true;
        for (int c = 0; c < NCLIENTS; c++)
            all &= atomic_load(&clients[c].idle);
        if (all)
            return true;
        usleep(10000);
    }
    return false;
}

void h_rnd_clients_release(const h_proxy *px, const char *db)
{
    if (px) {
        pthread_mutex_lock(&conninfo_mu);
        snprintf(conninfo, sizeof conninfo, "%s",
                 h_conninfo_proxy_db(px, db, "application_name=eng_random_client"));
        atomic_fetch_add(&conn_gen, 1);
        pthread_mutex_unlock(&conninfo_mu);
    }
    atomic_store(&quiesce, false);
}

void h_rnd_clients_totals(h_rnd_totals *t)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < NCLIENTS; i++) {
        t->ops += clients[i].ops;
        t->commits += clients[i].commits;
        t->post_commits += clients[i].post_commits;
        t->autocommits += clients[i].autocommits;
        t->rollbacks += clients[i].rollbacks;
        t->errors += clients[i].errors;
    }
}

void h_rnd_clients_print_errors(void)
{
    for (int i = 0; i < NCLIENTS; i++)
        for (int j = 0; j < clients[i].nerrs; j++)
            fprintf(stderr, "    %s\n", clients[i].errs[j]);
}
