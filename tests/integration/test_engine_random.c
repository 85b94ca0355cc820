/*
 * test_engine_random.c — a randomized, seeded concurrency test of the online schema
 * change engine (issue 12, "Done when"), whose oracle shares no code with pgcutover.
 *
 * Seeds: PGC_RANDOM_SEEDS ("1-100", "7,9", "1-5,40"); default three seeds for CI. Each
 * seed picks a scenario (printed): the key (int, bigint, composite (int, text), text
 * with the ICU case-insensitive nondeterministic collation `ci`, numeric), a second
 * unique index on u (sometimes), a SQL-standard function body that updates t (an
 * oid-bound writer, sometimes), one ALTER from a list a shadow copy handles (v → bigint,
 * ADD COLUMN … DEFAULT, DROP COLUMN, timestamptz → timestamp, ADD CHECK, int key →
 * bigint, float8 → text, date → text, ADD UNIQUE), cutover auto or manual, and faults:
 * PAUSE/RESUME, pg_terminate_backend of the engine's backends ('pgcutover m%'), SIGKILL
 * of pgcutover while copying and a new pgcutover.
 *
 * Workload: NCLIENTS libpq threads write through the proxy (loopback). Client c owns a
 * contiguous range of key indexes, separated from the next range by filler rows nobody
 * touches, so no two clients ever touch the same row or (for SERIALIZABLE) the same
 * btree leaf page: without pgcutover no 23505, 40001 or 40P01 can happen. SERIALIZABLE
 * transactions read at most two rows, so their predicate locks are never promoted to
 * page locks (max_pred_locks_per_page = 2). Transactions are READ COMMITTED, REPEATABLE
 * READ or SERIALIZABLE (RR/SERIALIZABLE start with a SELECT, so the snapshot is taken
 * early, and sometimes sleep a little to let backfill batches commit under it), do
 * INSERT / UPDATE / DELETE / key moves within the owner's range / key updates to an
 * equal but not identical value (case under `ci`, 7 → 7.00 for numeric, identical for
 * the others), through the simple protocol, unnamed and named prepared statements, with
 * per-session TimeZone, DateStyle and extra_float_digits changed now and then. Some
 * operations are autocommit statements. Writes run before the migration, during the
 * backfill, verify and ready and across the cutover (the proxy holds them).
 *
 * Oracle: every client keeps a model of its rows (key spelling and every value),
 * changed only when its COMMIT succeeds (affected-row counts are checked against it).
 * The initial table is written from the same model. At the end the clients stop, and a
 * reference table oracle_ref.t is created with the original DDL directly in PostgreSQL
 * (a session with the server's defaults), filled from the models, and the plain ALTER
 * TABLE is run on it. A column whose conversion depends on session settings (ts to
 * timestamp, f or d to text) is written by a transaction that, holding its lock on t,
 * read the column's type in the catalog: before the change the value is written in
 * the old type (session independent literals: instants, float8 expressions, dates) and
 * goes into the reference before its ALTER; after it, a literal of the new type that is
 * set on the reference after its ALTER. The migrated t must equal oracle_ref.t: the
 * same columns and types, and no row in either EXCEPT ALL the other, rows compared as
 * ROW(…)::text COLLATE "C" so that 'User7' vs 'user7' or 7 vs 7.00 count as different.
 * Every application error (any SQLSTATE; an UPDATE/DELETE of a key the model holds that
 * affects no row) counts and must be 0; a failed or aborted migration fails the seed;
 * an oid-bound writer refused up front by the ALTER naming the function passes it.
 *
 * When the migration fails (or an oid-bound writer is refused), t must still equal the
 * reference without the ALTER: the application's own table lost nothing.
 *
 * RR/SERIALIZABLE transactions begin with LOCK TABLE t IN ACCESS SHARE MODE (which takes
 * no snapshot) before their first SELECT: a snapshot taken while waiting for the lock of
 * a plain ALTER that rewrites the table sees it empty afterwards (PostgreSQL's "MVCC
 * Caveats"), which the baseline below hit; the same would hold for a snapshot taken
 * while waiting for the cutover's lock. The LOCK does not conflict with the backfill.
 *
 * Running it: `PGC_RANDOM_SEEDS=1-100 build/test/tests/int_test_engine_random` with the
 * PG* variables of `scripts/pg start DIR` and PGC_TMPDIR=DIR in the environment (or
 * `PGC_RANDOM_SEEDS=1-100 scripts/test -R engine_random`); about 13 s a seed.
 * PGC_RANDOM_LIST=1 only prints the seeds' scenarios. PGC_RANDOM_LOGS=1 prints the tail
 * of pgcutover's log for a failed seed. PGC_RANDOM_BASELINE=1 runs the same workload
 * with a plain ALTER TABLE issued directly (no online migration) where the cutover would
 * be: it checks the test itself (model, oracle, "no error without pgcutover"; 60 of 60
 * seeds pass). Every seed prints one summary line (seed, scenario, operations, commits,
 * errors with the first three messages per client, migration state and faults applied,
 * rows missing/extra); the test fails when any seed failed. Each seed uses database
 * eng_random and its own pgcutover; every wait is bounded and every process started is
 * stopped by pid.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"

#define DEFAULT_SEEDS "4,9,20"
#define MAX_SEEDS 1000
#define NCLIENTS 4
#define SLOTS 1200     /* key indexes per client */
#define FILLER 500     /* untouched rows before, between and after the client ranges */
#define MAX_WAIT_MS 90000
#define POLL_US 50000
#define CLIENT_MAX_OPS 200000
#define MAX_TXN_OPS 4
#define NERRS 3
#define TS_BASE 1690000000LL

/* ---------- scenario ---------- */

enum key_kind { K_INT, K_BIGINT, K_COMP, K_CI, K_NUM, K_N };
static const char *const key_names[] = {"int", "bigint", "composite", "text-ci", "numeric"};

enum sens { S_NONE, S_TS, S_F, S_D }; /* the column whose conversion is session dependent */

typedef struct {
    const char *sql;   /* after "ALTER TABLE t " */
    enum sens sens;
    bool int_key_only; /* int or composite keys */
    bool adds_unique;  /* not with a second unique index already there */
} alter_def;

static const alter_def alters[] = {
    {"ALTER COLUMN v TYPE bigint", S_NONE, false, false},
    {"ADD COLUMN extra text DEFAULT 'x'", S_NONE, false, false},
    {"DROP COLUMN note", S_NONE, false, false},
    {"ALTER COLUMN ts TYPE timestamp", S_TS, false, false},
    {"ADD CONSTRAINT t_v_nonneg CHECK (v >= 0)", S_NONE, false, false},
    {"ALTER COLUMN %s TYPE bigint", S_NONE, true, false}, /* the int key column */
    {"ALTER COLUMN f TYPE text", S_F, false, false},
    {"ALTER COLUMN d TYPE text", S_D, false, false},
    {"ADD CONSTRAINT t_u_uniq UNIQUE (u)", S_NONE, false, true},
};
#define NALTERS ((int)(sizeof alters / sizeof alters[0]))

typedef struct {
    unsigned seed;
    enum key_kind key;
    int alter;
    char alter_sql[128]; /* the full statement */
    bool uniq2;          /* u UNIQUE in the original DDL */
    bool oidw;           /* SQL-body function rand_set_v updating t */
    bool manual;         /* cutover = manual + CUTOVER MIGRATION n */
    bool f_pause, f_term, f_kill;
    bool baseline;
} scenario;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static unsigned rnd_u(uint64_t *s, unsigned n)
{
    return (unsigned)(splitmix(s) % n);
}

static void pick_scenario(unsigned seed, scenario *sc)
{
    uint64_t s = seed * 0x100000001B3ull + 12345;
    memset(sc, 0, sizeof *sc);
    sc->seed = seed;
    static const enum key_kind keys[] = {K_INT, K_BIGINT, K_COMP, K_CI, K_NUM, K_CI, K_NUM};
    sc->key = keys[rnd_u(&s, 7)]; /* the keys with equal-but-not-identical values twice */
    sc->uniq2 = rnd_u(&s, 3) == 0;
    for (;;) {
        sc->alter = (int)rnd_u(&s, NALTERS);
        const alter_def *a = &alters[sc->alter];
        if (a->int_key_only && sc->key != K_INT && sc->key != K_COMP)
            sc->key = rnd_u(&s, 2) ? K_INT : K_COMP;
        if (a->adds_unique && sc->uniq2)
            continue;
        break;
    }
    snprintf(sc->alter_sql, sizeof sc->alter_sql, "ALTER TABLE t ");
    size_t l = strlen(sc->alter_sql);
    if (alters[sc->alter].int_key_only)
        snprintf(sc->alter_sql + l, sizeof sc->alter_sql - l, alters[sc->alter].sql,
                 sc->key == K_COMP ? "k1" : "id");
    else
        snprintf(sc->alter_sql + l, sizeof sc->alter_sql - l, "%s", alters[sc->alter].sql);
    /* PostgreSQL refuses to change the type of a column a SQL-body function uses */
    sc->oidw = rnd_u(&s, 4) == 0 && strstr(sc->alter_sql, " TYPE ") == NULL;
    sc->manual = rnd_u(&s, 2) == 0;
    sc->f_pause = rnd_u(&s, 10) < 3;
    sc->f_term = rnd_u(&s, 10) < 3;
    sc->f_kill = rnd_u(&s, 4) == 0;
    sc->baseline = getenv("PGC_RANDOM_BASELINE") && atoi(getenv("PGC_RANDOM_BASELINE")) == 1;
}

static void describe(const scenario *sc, char *out, size_t n)
{
    snprintf(out, n, "key=%s%s%s alter='%s' cutover=%s faults=%s%s%s%s", key_names[sc->key],
             sc->uniq2 ? " unique(u)" : "", sc->oidw ? " oid-writer" : "", sc->alter_sql + 14,
             sc->baseline ? "plain-ALTER" : sc->manual ? "manual" : "auto",
             sc->f_pause ? "+pause" : "", sc->f_term ? "+terminate" : "",
             sc->f_kill ? "+sigkill" : "", sc->f_pause || sc->f_term || sc->f_kill ? "" : "none");
}

/* ---------- the model: one row per key index ---------- */

typedef struct {
    bool present;
    bool post;          /* the session-dependent column holds a value of the new type */
    unsigned char var;  /* key spelling (ci: case, numeric: scale) */
    int v, u;           /* u < 0: NULL */
    long long ts;       /* seconds since the epoch; < 0: NULL */
    int f, d, note;     /* < 0: NULL */
} mrow;

static scenario sc;            /* the current seed's scenario (read-only for clients) */
static mrow *model;            /* [nkeys]; a client writes only its own range */
static int nkeys;              /* FILLER + NCLIENTS * (SLOTS + FILLER) */

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
    case K_INT: snprintf(out, n, "%d", i); break;
    case K_BIGINT: snprintf(out, n, "%lld", 5000000000LL + i); break;
    case K_COMP: snprintf(out, n, "%d, 'k%d'", i / 4, i % 4); break;
    case K_CI: snprintf(out, n, ci_fmt[var % 3], i); break;
    default: snprintf(out, n, num_fmt[var % 3], i); break;
    }
}
static const char *key_cols(void)
{
    return sc.key == K_COMP ? "k1, k2" : "id";
}
/* "id = …" (sep " AND ") or "id = …" (sep ", ") */
static void key_eq(int i, int var, const char *sep, char *out, size_t n)
{
    char kv[96];
    if (sc.key == K_COMP) {
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
    if (sc.key == K_COMP) {
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

static enum sens cur_sens(void)
{
    return alters[sc.alter].sens;
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
    enum sens s = cur_sens();
    lit_ts(r, s == S_TS && r->post, form, ts, sizeof ts);
    lit_f(r, s == S_F && r->post, f, sizeof f);
    lit_d(r, s == S_D && r->post, d, sizeof d);
    if (null_sens && s == S_TS)
        snprintf(ts, sizeof ts, "NULL");
    if (null_sens && s == S_F)
        snprintf(f, sizeof f, "NULL");
    if (null_sens && s == S_D)
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

static void create_table(PGconn *dc, const char *schema)
{
    static const char *const keydefs[] = {"id int", "id bigint", "k1 int, k2 text",
                                          "id text COLLATE public.ci", "id numeric"};
    h_execf(dc,
            "CREATE TABLE %s.t (%s, v int NOT NULL, u int%s, ts timestamptz, f float8, d date, "
            "note text, PRIMARY KEY (%s))",
            schema, keydefs[sc.key], sc.uniq2 ? " UNIQUE" : "", key_cols());
}

/* Insert every present model row into schema.t; the session-dependent column NULL for
 * rows whose value is of the new type (set after the ALTER by set_post_values). */
static void insert_model(PGconn *dc, const char *schema)
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

static void set_post_values(PGconn *dc, const char *schema)
{
    static const char *const col[] = {"", "ts", "f", "d"};
    enum sens s = cur_sens();
    if (s == S_NONE)
        return;
    sbuf b = {0};
    for (int i = 0; i < nkeys; i++) {
        const mrow *r = &model[i];
        if (!r->present || !r->post)
            continue;
        char val[64], where[160];
        if (s == S_TS)
            lit_ts(r, true, 0, val, sizeof val);
        else if (s == S_F)
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

static void init_model(void)
{
    nkeys = FILLER + NCLIENTS * (SLOTS + FILLER);
    model = calloc((size_t)nkeys, sizeof *model);
    assert_non_null(model);
    uint64_t s = sc.seed * 31ull + 7;
    for (int i = 0; i < nkeys; i++) {
        mrow *r = &model[i];
        r->present = !owned(i) || rnd_u(&s, 3) != 0;
        r->var = (unsigned char)rnd_u(&s, 3);
        r->v = (int)rnd_u(&s, 100000);
        r->u = i % 2 == 0 ? i : -1;
        r->ts = i % 11 == 0 ? -1 : TS_BASE + (long long)i * 3571;
        r->f = i % 13 == 0 ? -1 : i;
        r->d = i % 17 == 0 ? -1 : i % 20000;
        r->note = i;
    }
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
    return rnd_u(&cl->rng, n);
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
    const char *kw = sc.key == K_COMP ? "k1 = $%d AND k2 = $%d" : "id = $%d";
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
    enum sens s = cur_sens();
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
            if (s == S_TS)
                nr.ts = -1;
            if (s == S_F)
                nr.f = -1;
            if (s == S_D)
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
                     sc.key == K_COMP ? "k1 = $3 AND k2 = $4" : "id = $3");
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
        if (!autoc && s != S_NONE)
            nr.post = post > 0;
        lit_ts(&nr, s == S_TS && nr.post, (int)crnd(cl, 2), ts, sizeof ts);
        lit_f(&nr, s == S_F && nr.post, f, sizeof f);
        lit_d(&nr, s == S_D && nr.post, d, sizeof d);
        if (autoc && s == S_TS)
            nr.ts = model[slot].ts;
        if (autoc && s == S_F)
            nr.f = model[slot].f;
        if (autoc && s == S_D)
            nr.d = model[slot].d;
        char set[256];
        size_t l = 0;
        if (!(autoc && s == S_TS))
            l += (size_t)snprintf(set + l, sizeof set - l, "ts = %s", ts);
        if (!(autoc && s == S_F))
            l += (size_t)snprintf(set + l, sizeof set - l, "%sf = %s", l ? ", " : "", f);
        if (!(autoc && s == S_D))
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
        if (sc.key == K_CI || sc.key == K_NUM)
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
    if (cur_sens() == S_NONE)
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

static void start_clients(const h_proxy *px, const char *db)
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

static void stop_clients(void)
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

/* Let the clients run for at least `more` further operations (bounded by ms). */
static void run_for(long more, int ms)
{
    long until = total_ops() + more;
    for (int i = 0; i < ms / 10 && total_ops() < until; i++)
        usleep(10000);
}

/* Every client idle between transactions (bounded); false if not. */
static bool quiesce_clients(void)
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

static void release_clients(const h_proxy *px, const char *db)
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

/* ---------- one seed ---------- */

static h_eng ectx; /* database, pgcutover processes, kept connections (teardown) */

static int engine_backends(PGconn *dc)
{
    return (int)h_qint(dc, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                           "current_database() AND application_name LIKE 'pgcutover m%%'");
}

/* A console command that may fail (a fault applied in a state that no longer allows
 * it): returns whether it succeeded. */
static bool ctl_try(PGconn *ctl, const char *cmd, char *err, size_t n)
{
    PGresult *r = PQexec(ctl, cmd);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok && err)
        snprintf(err, n, "%s: %s", cmd, PQerrorMessage(ctl));
    PQclear(r);
    return ok;
}

/* SIGKILL pgcutover (clients quiesced between transactions, so no commit is in
 * doubt), wait for its backends to go, start a new one and move the clients to it. */
static PGconn *kill_and_restart(PGconn *dc, PGconn *ctl, const char *const *sets, char *why,
                                size_t n)
{
    if (!quiesce_clients()) {
        snprintf(why, n, "clients did not reach a transaction boundary within 30 s");
        release_clients(NULL, NULL);
        return ctl;
    }
    h_eng_drop_conn(&ectx, ctl);
    h_proxy_signal(&ectx.px, SIGKILL);
    h_proxy_stop(&ectx.px);
    for (int i = 0; i < 100 && engine_backends(dc) > 0; i++)
        usleep(100000);
    h_proxy_start(&ectx.px2, sets);
    ctl = h_eng_console(&ectx, &ectx.px2);
    release_clients(&ectx.px2, ectx.db);
    return ctl;
}

/* Drive migration id to done, applying the scenario's faults while it copies and the
 * manual cutover at ready. Fills why on failure; faults gets the faults applied. */
static void drive(PGconn *dc, PGconn **ctlp, long long id, long long rows,
                  const char *const *sets, h_mig *m, char *why, size_t n, char *faults,
                  size_t fn)
{
    bool paused = false, termd = false, killed = false, cut = false;
    double deadline = h_now_ms() + MAX_WAIT_MS;
    char err[512];
    faults[0] = 0;
    while (h_now_ms() < deadline) {
        h_mig_show(*ctlp, id, m);
        if (h_mig_terminal(m->state)) {
            snprintf(why, n, "migration %s: %s", m->state, m->error);
            return;
        }
        if (strcmp(m->state, "done") == 0)
            return;
        double frac = rows > 0 ? (double)m->rows_copied / (double)rows : 0;
        if (strcmp(m->state, "copying") == 0) {
            if (sc.f_pause && !paused && frac >= 0.15) {
                paused = true;
                char cmd[64];
                snprintf(cmd, sizeof cmd, "PAUSE MIGRATION %lld", id);
                if (!ctl_try(*ctlp, cmd, err, sizeof err))
                    continue; /* no longer copying */
                run_for(300, 800);
                snprintf(cmd, sizeof cmd, "RESUME MIGRATION %lld", id);
                if (!ctl_try(*ctlp, cmd, err, sizeof err)) {
                    snprintf(why, n, "%s", err);
                    return;
                }
                snprintf(faults + strlen(faults), fn - strlen(faults), "pause@%.0f%% ",
                         frac * 100);
                continue;
            }
            if (sc.f_term && !termd && frac >= 0.35) {
                termd = true;
                long long k = h_qint(dc, "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) "
                                         "AS t FROM pg_stat_activity WHERE datname = "
                                         "current_database() AND application_name LIKE "
                                         "'pgcutover m%%') x WHERE t");
                snprintf(faults + strlen(faults), fn - strlen(faults), "terminate(%lld)@%.0f%% ",
                         k, frac * 100);
                continue;
            }
            if (sc.f_kill && !killed && frac >= 0.55) {
                killed = true;
                *ctlp = kill_and_restart(dc, *ctlp, sets, why, n);
                if (why[0])
                    return;
                snprintf(faults + strlen(faults), fn - strlen(faults), "sigkill@%.0f%% ",
                         frac * 100);
                continue;
            }
        }
        if (strcmp(m->state, "ready") == 0 && sc.manual && !cut) {
            cut = true;
            run_for(300, 1500); /* writes while ready */
            char cmd[64];
            snprintf(cmd, sizeof cmd, "CUTOVER MIGRATION %lld", id);
            if (!ctl_try(*ctlp, cmd, err, sizeof err)) {
                snprintf(why, n, "%s", err);
                return;
            }
            continue;
        }
        usleep(POLL_US);
    }
    snprintf(why, n, "migration not done within %d s (state %s, rows_copied %lld)",
             MAX_WAIT_MS / 1000, m->state, m->rows_copied);
}

/* Build the reference table and compare t with it (see the header). Without alter
 * (the migration failed or was refused), the reference keeps the original definition:
 * the application's table must still hold exactly what the clients committed. */
static void compare(PGconn *dc, bool alter, char *why, size_t n, long long *missing,
                    long long *extra)
{
    static const char *const defs =
        "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || "
        "coalesce(' ' || collname, '') || CASE WHEN attnotnull THEN ' not null' ELSE '' END, "
        "', ' ORDER BY attnum) FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = "
        "a.attcollation WHERE attrelid = '%s'::regclass AND attnum > 0 AND NOT attisdropped";
    char want[1024], got[1024], cols[512], s1[1024], s2[1024];
    h_execf(dc, "RESET ALL");
    h_execf(dc, "CREATE SCHEMA oracle_ref");
    create_table(dc, "oracle_ref");
    insert_model(dc, "oracle_ref");
    if (alter) {
        h_execf(dc, "ALTER TABLE oracle_ref.t %s", sc.alter_sql + strlen("ALTER TABLE t "));
        set_post_values(dc, "oracle_ref");
    }
    h_qtext(dc, want, sizeof want, defs, "oracle_ref.t");
    h_qtext(dc, got, sizeof got, defs, "public.t");
    if (strcmp(want, got) != 0) {
        snprintf(why, n, "columns differ: t has (%s), a plain ALTER gives (%s)", got, want);
        return;
    }
    long long u1 = h_qint(dc, "SELECT count(*) FROM pg_index WHERE indrelid = 'oracle_ref.t'::"
                              "regclass AND indisunique");
    long long u2 = h_qint(dc, "SELECT count(*) FROM pg_index WHERE indrelid = 'public.t'::"
                              "regclass AND indisunique");
    h_qtext(dc, cols, sizeof cols,
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid = 'oracle_ref.t'::regclass AND attnum > 0 AND NOT attisdropped");
    const char *q = "SELECT %s FROM (SELECT ROW(%s)::text COLLATE \"C\" AS r FROM %s EXCEPT ALL "
                    "SELECT ROW(%s)::text COLLATE \"C\" FROM %s) x";
    char sql[2048];
    snprintf(sql, sizeof sql, q, "count(*)", cols, "oracle_ref.t", cols, "public.t");
    *missing = h_qint(dc, "%s", sql);
    snprintf(sql, sizeof sql, q, "count(*)", cols, "public.t", cols, "oracle_ref.t");
    *extra = h_qint(dc, "%s", sql);
    if (*missing || *extra) {
        snprintf(sql, sizeof sql, q, "string_agg(r, ' ') FILTER (WHERE r IS NOT NULL)", cols,
                 "oracle_ref.t", cols, "public.t");
        snprintf(sql + strlen(sql) - 3, sizeof sql - strlen(sql) + 3, " LIMIT 3) x");
        h_qtext(dc, s1, sizeof s1, "%s", sql);
        snprintf(sql, sizeof sql, q, "string_agg(r, ' ') FILTER (WHERE r IS NOT NULL)", cols,
                 "public.t", cols, "oracle_ref.t");
        snprintf(sql + strlen(sql) - 3, sizeof sql - strlen(sql) + 3, " LIMIT 3) x");
        h_qtext(dc, s2, sizeof s2, "%s", sql);
        snprintf(why, n, "%lld rows missing from t (e.g. %s), %lld extra (e.g. %s)", *missing, s1,
                 *extra, s2);
        return;
    }
    if (u1 != u2)
        snprintf(why, n, "t has %lld unique indexes, a plain ALTER gives %lld", u2, u1);
}

static void teardown_seed(void)
{
    stop_clients();
    h_eng_teardown(&ectx);
    free(model);
    model = NULL;
}

static bool run_seed(unsigned seed)
{
    char desc[256], why[2048] = "", faults[128] = "", state[32] = "-";
    long long missing = -1, extra = -1;
    pick_scenario(seed, &sc);
    describe(&sc, desc, sizeof desc);
    h_eng_setup_db(&ectx, "eng_random");
    PGconn *dc = h_eng_direct(&ectx);
    if (sc.key == K_CI)
        h_execf(dc, "CREATE COLLATION public.ci (provider = icu, locale = 'und-u-ks-level2', "
                    "deterministic = false)");
    init_model();
    long long rows = 0;
    for (int i = 0; i < nkeys; i++)
        rows += model[i].present;
    create_table(dc, "public");
    insert_model(dc, "public");
    h_execf(dc, "ANALYZE t");
    if (sc.oidw)
        h_execf(dc,
                "CREATE FUNCTION rand_set_v(%s, nv int) RETURNS void LANGUAGE sql BEGIN ATOMIC "
                "UPDATE t SET v = nv WHERE %s; END",
                sc.key == K_COMP ? "p1 int, p2 text" : (const char *[]){"p1 int", "p1 bigint", "",
                                                                        "p1 text", "p1 numeric"}[sc.key],
                sc.key == K_COMP ? "k1 = p1 AND k2 = p2" : "id = p1");
    static char cut[32];
    snprintf(cut, sizeof cut, "cutover=%s", sc.manual ? "manual" : "auto");
    const char *const sets[] = {"batch_size=200", "max_rows_per_second=2500", cut, NULL};
    h_proxy_start(&ectx.px, sets);
    start_clients(&ectx.px, ectx.db);
    run_for(300, 5000); /* writes before the change */
    bool refused = false;
    if (sc.baseline) {
        run_for(1500, 4000);
        h_execf(dc, "%s", sc.alter_sql);
        snprintf(state, sizeof state, "plain");
        run_for(400, 3000);
    } else {
        PGconn *ctl = h_eng_console(&ectx, &ectx.px);
        PGresult *r = PQexec(ctl, sc.alter_sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
            snprintf(why, sizeof why, "console refused the ALTER: %s", PQerrorMessage(ctl));
            refused = sc.oidw && strstr(why, "rand_set_v") != NULL;
            PQclear(r);
        } else {
            long long id = atoll(PQgetvalue(r, 0, h_col(r, "id")));
            PQclear(r);
            h_mig m;
            memset(&m, 0, sizeof m);
            drive(dc, &ctl, id, rows, sets, &m, why, sizeof why, faults, sizeof faults);
            snprintf(state, sizeof state, "%s", m.state);
            if (!why[0])
                run_for(400, 3000); /* writes after the change */
        }
    }
    stop_clients();
    long ops = 0, commits = 0, post = 0, autoc = 0, rb = 0, errors = 0;
    for (int i = 0; i < NCLIENTS; i++) {
        ops += clients[i].ops;
        commits += clients[i].commits;
        post += clients[i].post_commits;
        autoc += clients[i].autocommits;
        rb += clients[i].rollbacks;
        errors += clients[i].errors;
    }
    if (!why[0]) {
        compare(dc, true, why, sizeof why, &missing, &extra);
    } else if (strcmp(state, "failed") == 0 || strcmp(state, "aborted") == 0 || refused) {
        char why2[2048] = "";
        compare(dc, false, why2, sizeof why2, &missing, &extra);
        if (why2[0]) { /* the original lost or gained rows too */
            size_t l = strlen(why);
            snprintf(why + l, sizeof why - l, "; and the original t: %s", why2);
            refused = false;
        }
    }
    bool pass = !why[0] ? errors == 0 : refused && errors == 0;
    fprintf(stderr,
            "seed %u: %s | ops %ld, txn commits %ld (%ld wrote the new type), autocommit %ld, "
            "rollbacks %ld | errors %ld | migration %s%s%s | diff rows: missing %lld, extra %lld "
            "| %s%s%s\n",
            seed, desc, ops, commits, post, autoc, rb, errors, state, faults[0] ? ", applied " : "",
            faults, missing, extra, pass ? "PASS" : "FAIL", why[0] ? ": " : "", why);
    for (int i = 0; i < NCLIENTS; i++)
        for (int j = 0; j < clients[i].nerrs; j++)
            fprintf(stderr, "    %s\n", clients[i].errs[j]);
    if (!pass && getenv("PGC_RANDOM_LOGS")) {
        h_dump_log(&ectx.px, 30);
        h_dump_log(&ectx.px2, 30);
    }
    teardown_seed();
    return pass;
}

/* ---------- seeds ---------- */

static int parse_seeds(const char *spec, unsigned *out, int max)
{
    int n = 0;
    const char *p = spec;
    while (*p && n < max) {
        char *end;
        unsigned long a = strtoul(p, &end, 10), b = a;
        if (end == p)
            break;
        if (*end == '-') {
            p = end + 1;
            b = strtoul(p, &end, 10);
        }
        for (unsigned long s = a; s <= b && n < max; s++)
            out[n++] = (unsigned)s;
        p = *end == ',' ? end + 1 : end;
        if (end == p && *p)
            break;
    }
    return n;
}

static void test_random_seeds(void **state)
{
    (void)state;
    static unsigned seeds[MAX_SEEDS];
    const char *spec = getenv("PGC_RANDOM_SEEDS");
    int n = parse_seeds(spec && *spec ? spec : DEFAULT_SEEDS, seeds, MAX_SEEDS);
    assert_true(n > 0);
    if (getenv("PGC_RANDOM_LIST")) { /* only print the seeds' scenarios */
        for (int i = 0; i < n; i++) {
            char desc[256];
            pick_scenario(seeds[i], &sc);
            describe(&sc, desc, sizeof desc);
            fprintf(stderr, "seed %u: %s\n", seeds[i], desc);
        }
        return;
    }
    int failed = 0;
    char list[1024] = "";
    double t0 = h_now_ms();
    for (int i = 0; i < n; i++)
        if (!run_seed(seeds[i])) {
            failed++;
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s%u", l ? "," : "", seeds[i]);
        }
    fprintf(stderr, "%d of %d seeds failed%s%s (%.0f s)\n", failed, n, failed ? ": " : "", list,
            (h_now_ms() - t0) / 1000);
    if (failed)
        fail_msg("%d of %d seeds failed: %s (rerun one with PGC_RANDOM_SEEDS=<seed>)", failed, n,
                 list);
}

static int teardown(void **state)
{
    (void)state;
    teardown_seed();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_random_seeds, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
