/*
 * test_engine_live.c — the online schema change engine (shadow/, DESIGN.md §2) driven
 * through the control console while the table is live, on the real PostgreSQL:
 *
 *   - concurrency: four client threads write through the proxy (INSERT, UPDATE of
 *     non-key columns, of the key and to NULL, DELETE, multi-row transactions that
 *     commit or roll back) while a throttled migration of a 200,000-row table runs;
 *     at `ready` the shadow equals the original mapped through the change, row for row
 *     (three seeds);
 *   - PAUSE/RESUME: no batch runs while paused, and the migration finishes correctly;
 *   - SIGKILL of pgcutover mid-backfill and a new pgcutover: the migration resumes from
 *     its checkpoint (never starts over) and reaches ready with equal data;
 *   - the engine's backend terminated mid-backfill: the migration continues;
 *   - ABORT in copying, paused, ready and failed: no trigger or shadow left, the
 *     original's data and definition unchanged;
 *   - refusals with their SQLSTATEs, creating nothing; PLAN output;
 *   - a CHECK added by the ALTER that a live INSERT violates: the INSERT succeeds and
 *     the migration fails naming the constraint.
 *
 * Every change is one PostgreSQL rewrites (a type change), so it is a copy with the
 * default instant_ddl = on; the refusals and the CHECK case run with instant_ddl = off,
 * since their statements are catalog-only (or validate) changes the copy answers.
 *
 * Each test uses its own database (eng_live_*) and its own pgcutover, because test
 * files run in parallel; the teardown stops what a failed test left running.
 */
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

#define POLL_US 100000      /* 100 ms between polls */
#define WAIT_READY_MS 90000 /* bounded wait for a migration to reach a state */
#define NCLIENTS 4
#define CLIENT_MAX_OPS 40000 /* per client thread and run */
#define CONC_ROWS 200000
/* the engine's own tables in schema pgcutover (anything else there is a migration's) */
#define BOOKKEEPING "('migrations', 'trigger_errors', 'migration_columns', 'schema_migrations')"

/* ---------- per-test context, cleaned up by the teardown ---------- */

typedef struct client client_t;

static struct {
    h_eng e; /* database, pgcutover processes, connections kept until the teardown */
    client_t *clients;
    int nclients;
} ctx;

static atomic_bool clients_stop;

/* Fail the test after printing the tail of the pgcutover log(s) (h_engine.h). */
#define FAILP(...) h_eng_fail(__VA_ARGS__)

static void stop_clients(void);

static int teardown(void **state)
{
    (void)state;
    stop_clients();
    h_eng_teardown(&ctx.e);
    memset(&ctx, 0, sizeof ctx);
    return 0;
}

/* Poll until the migration is copying with rows_copied >= min (bounded). */
static void wait_copying(PGconn *ctl, long long id, long long min, h_mig *m)
{
    for (int i = 0; i < WAIT_READY_MS / 100; i++) {
        h_mig_show(ctl, id, m);
        if (strcmp(m->state, "copying") == 0 && m->rows_copied >= min)
            return;
        if (h_mig_terminal(m->state) || strcmp(m->state, "ready") == 0 ||
            strcmp(m->state, "verifying") == 0)
            FAILP("migration %lld is %s (rows_copied %lld) while waiting for copying with "
                  ">= %lld rows copied: %s",
                  id, m->state, m->rows_copied, min, m->error);
        usleep(POLL_US);
    }
    FAILP("migration %lld not copying with >= %lld rows within %d s (state %s, rows %lld)", id, min,
          WAIT_READY_MS / 1000, m->state, m->rows_copied);
}

/* The table the tests migrate: id int PK, a int, b text, c int (every 7th NULL). */
static void create_table(PGconn *dc, const char *name, int rows)
{
    h_execf(dc, "CREATE TABLE %s (id int PRIMARY KEY, a int, b text, c int)", name);
    h_execf(dc,
            "INSERT INTO %s SELECT g, g %% 1000 + 1, 'row ' || g, "
            "CASE WHEN g %% 7 = 0 THEN NULL ELSE g END FROM generate_series(1, %d) g",
            name, rows);
    h_execf(dc, "ANALYZE %s", name);
}

/* The shadow equals the original mapped through the change, row for row: both EXCEPT
 * ALL directions are empty and the counts are equal. orig_cols / shadow_cols are the
 * select lists (the original's mapped to the new types). */
static void assert_same_rows(PGconn *dc, const char *orig, const char *orig_cols,
                             const char *shadow, const char *shadow_cols)
{
    long long n_orig = h_qint(dc, "SELECT count(*) FROM %s", orig);
    long long n_shadow = h_qint(dc, "SELECT count(*) FROM %s", shadow);
    long long missing = h_qint(dc,
                               "SELECT count(*) FROM (SELECT %s FROM %s EXCEPT ALL "
                               "SELECT %s FROM %s) x",
                               orig_cols, orig, shadow_cols, shadow);
    long long extra = h_qint(dc,
                             "SELECT count(*) FROM (SELECT %s FROM %s EXCEPT ALL "
                             "SELECT %s FROM %s) x",
                             shadow_cols, shadow, orig_cols, orig);
    if (missing || extra || n_orig != n_shadow) {
        char sample[1024];
        h_qtext(dc, sample, sizeof sample,
                "SELECT string_agg(x::text, ' ') FROM (SELECT * FROM (SELECT %s FROM %s "
                "EXCEPT ALL SELECT %s FROM %s) y LIMIT 5) x",
                orig_cols, orig, shadow_cols, shadow);
        char sample2[1024];
        h_qtext(dc, sample2, sizeof sample2,
                "SELECT string_agg(x::text, ' ') FROM (SELECT * FROM (SELECT %s FROM %s "
                "EXCEPT ALL SELECT %s FROM %s) y LIMIT 5) x",
                shadow_cols, shadow, orig_cols, orig);
        FAILP("%s (%lld rows) vs %s (%lld rows): %lld rows missing from the shadow (e.g. %s), "
              "%lld extra (e.g. %s)",
              orig, n_orig, shadow, n_shadow, missing, sample, extra, sample2);
    }
}

/* ---------- client threads (no cmocka calls in them) ---------- */

struct client {
    int idx;
    unsigned seed;
    pthread_t th;
    bool started;
    PGconn *c;
    atomic_long ops, errors; /* read by the main thread while the client runs */
    long commits, rollbacks, unique_violations, deadlocks;
    char err[1024];
    int ring[128]; /* keys this client deleted (for re-inserts and key moves) */
    int nring;
    char conninfo[512];
};

enum { CL_OK = 0, CL_UNIQUE = 1, CL_DEADLOCK = 2, CL_ERROR = -1 };

/* Run one statement; classify the outcome. Other errors are recorded in cl->err. */
static int cl_exec(client_t *cl, const char *sql)
{
    PGresult *r = PQexec(cl->c, sql);
    ExecStatusType s = PQresultStatus(r);
    int rc = CL_OK;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (st && strcmp(st, "23505") == 0) {
            rc = CL_UNIQUE;
            cl->unique_violations++;
        } else if (st && strcmp(st, "40P01") == 0) {
            rc = CL_DEADLOCK;
            cl->deadlocks++;
        } else {
            rc = CL_ERROR;
            cl->errors++;
            if (!cl->err[0])
                snprintf(cl->err, sizeof cl->err, "client %d: %s: [%s] %s", cl->idx, sql,
                         st ? st : "?", PQerrorMessage(cl->c));
        }
    }
    PQclear(r);
    cl->ops++;
    return rc;
}

static unsigned rnd(client_t *cl, unsigned n)
{
    return (unsigned)rand_r(&cl->seed) % n;
}

/* A key that probably exists: mostly original keys, some inserted or moved ones. */
static int any_key(client_t *cl)
{
    unsigned r = rnd(cl, 100);
    if (r < 80)
        return 1 + (int)rnd(cl, CONC_ROWS);
    if (r < 92)
        return CONC_ROWS + 1 + (int)rnd(cl, 60000);
    return 1000000 + 1 + (int)rnd(cl, CONC_ROWS);
}

/* A key that is probably free: new keys above the original range, or one this client
 * deleted earlier (inside the backfill's key range). */
static int new_key(client_t *cl, bool allow_ring)
{
    if (allow_ring && cl->nring > 0 && rnd(cl, 100) < 30) {
        int i = (int)rnd(cl, (unsigned)cl->nring);
        int k = cl->ring[i];
        cl->ring[i] = cl->ring[--cl->nring];
        return k;
    }
    return CONC_ROWS + 1 + (int)rnd(cl, 60000);
}

static void remember_deleted(client_t *cl, int k)
{
    if (cl->nring < 128)
        cl->ring[cl->nring++] = k;
    else
        cl->ring[rnd(cl, 128)] = k;
}

static void val_c(client_t *cl, char *out, size_t n)
{
    if (rnd(cl, 5) == 0)
        snprintf(out, n, "NULL");
    else
        snprintf(out, n, "%d", (int)rnd(cl, 1000000));
}

/* One single-row or multi-row write inside a transaction on key k (ops sorted by key
 * keep client transactions from deadlocking with each other). */
static int txn_op(client_t *cl, int kind, int k)
{
    char sql[512], cv[16];
    val_c(cl, cv, sizeof cv);
    switch (kind) {
    case 0:
        snprintf(sql, sizeof sql, "UPDATE t SET a = %d, b = 'tx%u', c = %s WHERE id = %d",
                 (int)rnd(cl, 100000), rnd(cl, 1000000), cv, k);
        break;
    case 1:
        snprintf(sql, sizeof sql, "UPDATE t SET b = NULL, c = NULL WHERE id = %d", k);
        break;
    case 2:
        snprintf(sql, sizeof sql, "DELETE FROM t WHERE id = %d", k);
        break;
    case 3:
        snprintf(sql, sizeof sql, "UPDATE t SET id = id + 1000000 WHERE id = %d", k);
        break;
    default:
        snprintf(sql, sizeof sql,
                 "INSERT INTO t (id, a, b, c) VALUES (%d, %d, 'ti%u', %s), (%d, %d, NULL, 7)", k,
                 (int)rnd(cl, 100000), rnd(cl, 1000000), cv, k + 1, (int)rnd(cl, 100000));
        break;
    }
    return cl_exec(cl, sql);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void client_txn(client_t *cl)
{
    int n = 2 + (int)rnd(cl, 4);
    int keys[6], kinds[6];
    for (int i = 0; i < n; i++) {
        kinds[i] = (int)rnd(cl, 5);
        keys[i] = kinds[i] == 4 ? new_key(cl, false) : any_key(cl);
    }
    qsort(keys, (size_t)n, sizeof keys[0], cmp_int);
    if (cl_exec(cl, "BEGIN") != CL_OK)
        return;
    bool aborted = false;
    for (int i = 0; i < n && !aborted; i++) {
        int rc = txn_op(cl, kinds[i], keys[i]);
        if (rc != CL_OK)
            aborted = true;
    }
    bool commit = !aborted && rnd(cl, 2) == 0;
    if (cl_exec(cl, commit ? "COMMIT" : "ROLLBACK") == CL_OK) {
        if (commit)
            cl->commits++;
        else
            cl->rollbacks++;
    }
}

static void client_op(client_t *cl)
{
    char sql[512], cv[16];
    unsigned r = rnd(cl, 100);
    val_c(cl, cv, sizeof cv);
    if (r < 20) { /* INSERT a new key; on a unique violation try another key */
        for (int attempt = 0; attempt < 4; attempt++) {
            int k = new_key(cl, true);
            snprintf(sql, sizeof sql, "INSERT INTO t (id, a, b, c) VALUES (%d, %d, 'i%u', %s)", k,
                     (int)rnd(cl, 100000), rnd(cl, 1000000), cv);
            if (cl_exec(cl, sql) != CL_UNIQUE)
                break;
        }
    } else if (r < 40) { /* UPDATE non-key columns */
        snprintf(sql, sizeof sql, "UPDATE t SET a = %d, b = 'u%u' WHERE id = %d",
                 (int)rnd(cl, 100000), rnd(cl, 1000000), any_key(cl));
        cl_exec(cl, sql);
    } else if (r < 48) { /* multi-row UPDATE */
        int k = any_key(cl);
        snprintf(sql, sizeof sql, "UPDATE t SET c = coalesce(c, 0) + 1 WHERE id BETWEEN %d AND %d",
                 k, k + 20);
        cl_exec(cl, sql);
    } else if (r < 58) { /* UPDATE of the key: up by 10^6, or down into a freed key */
        int k = any_key(cl);
        if (cl->nring > 0 && rnd(cl, 2) == 0)
            snprintf(sql, sizeof sql, "UPDATE t SET id = %d WHERE id = %d", new_key(cl, true), k);
        else
            snprintf(sql, sizeof sql, "UPDATE t SET id = id + 1000000 WHERE id = %d", k);
        cl_exec(cl, sql);
    } else if (r < 70) { /* UPDATE to NULL, one column or another */
        static const char *const cols[] = {"a", "b", "c"};
        snprintf(sql, sizeof sql, "UPDATE t SET %s = NULL WHERE id = %d", cols[rnd(cl, 3)],
                 any_key(cl));
        cl_exec(cl, sql);
    } else if (r < 82) { /* DELETE */
        int k = any_key(cl);
        snprintf(sql, sizeof sql, "DELETE FROM t WHERE id = %d", k);
        if (cl_exec(cl, sql) == CL_OK && k <= CONC_ROWS)
            remember_deleted(cl, k);
    } else { /* multi-statement transaction, COMMIT or ROLLBACK */
        client_txn(cl);
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
           PQstatus(cl->c) == CONNECTION_OK)
        client_op(cl);
    return NULL;
}

static void start_clients(client_t *cls, int n, unsigned seed)
{
    atomic_store(&clients_stop, false);
    ctx.clients = cls;
    ctx.nclients = n;
    for (int i = 0; i < n; i++) {
        memset(&cls[i], 0, sizeof cls[i]);
        cls[i].idx = i;
        cls[i].seed = seed * 7919u + (unsigned)i * 104729u + 1u;
        snprintf(cls[i].conninfo, sizeof cls[i].conninfo, "%s",
                 h_conninfo_proxy_db(&ctx.e.px, ctx.e.db, "application_name=eng_live_client"));
        assert_int_equal(pthread_create(&cls[i].th, NULL, client_main, &cls[i]), 0);
        cls[i].started = true;
    }
}

static void stop_clients(void)
{
    atomic_store(&clients_stop, true);
    for (int i = 0; i < ctx.nclients; i++)
        if (ctx.clients[i].started) {
            pthread_join(ctx.clients[i].th, NULL);
            ctx.clients[i].started = false;
            if (ctx.clients[i].c)
                PQfinish(ctx.clients[i].c);
            ctx.clients[i].c = NULL;
        }
    ctx.nclients = 0;
}

static long clients_ops(const client_t *cls, int n)
{
    long s = 0;
    for (int i = 0; i < n; i++)
        s += cls[i].ops;
    return s;
}

/* ---------- 1. concurrency ---------- */

/*
 * While `ALTER TABLE t ALTER COLUMN a TYPE bigint, ADD COLUMN d text DEFAULT 'x'` copies a
 * 200,000-row table in throttled batches, four clients write through the proxy with a
 * seeded PRNG. Asserts: no client error other than unique violations (counted, retried)
 * and deadlocks (counted; any fails the test after the data checks); the clients ran
 * while the migration was still before ready; at ready (clients stopped) SELECT id,
 * a::bigint, b, c FROM t and SELECT id, a, b, c FROM the shadow are equal as multisets
 * both ways with equal counts, and every shadow row has d = 'x'.
 */
static void run_concurrency(unsigned seed)
{
    static const char *const sets[] = {"batch_size=1000", "max_rows_per_second=20000", "cutover=manual", NULL};
    PGconn *dc = h_eng_direct(&ctx.e);
    create_table(dc, "t", CONC_ROWS);
    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);

    long long id =
        h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN a TYPE bigint, ADD COLUMN d text "
                               "DEFAULT 'x'");
    client_t cls[NCLIENTS];
    start_clients(cls, NCLIENTS, seed);

    /* The clients must have run while the migration was not yet ready. */
    h_mig m;
    bool seen_live = false;
    for (int i = 0; i < 300 && !seen_live; i++) {
        long ops = clients_ops(cls, NCLIENTS);
        h_mig_show(ctl, id, &m);
        if (ops >= 200 && strcmp(m.state, "ready") != 0 && !h_mig_terminal(m.state))
            seen_live = true;
        if (strcmp(m.state, "ready") == 0 || h_mig_terminal(m.state))
            break;
        usleep(POLL_US);
    }

    /* Until ready (bounded), then stop the clients. */
    bool ready = false;
    for (int i = 0; i < WAIT_READY_MS / 100; i++) {
        h_mig_show(ctl, id, &m);
        if (strcmp(m.state, "ready") == 0) {
            ready = true;
            break;
        }
        if (h_mig_terminal(m.state))
            break;
        bool client_failed = false;
        for (int j = 0; j < NCLIENTS; j++)
            client_failed |= cls[j].errors > 0;
        if (client_failed)
            break;
        usleep(POLL_US);
    }
    stop_clients();

    long ops = 0, commits = 0, rollbacks = 0, uv = 0, dl = 0;
    for (int j = 0; j < NCLIENTS; j++) {
        ops += cls[j].ops;
        commits += cls[j].commits;
        rollbacks += cls[j].rollbacks;
        uv += cls[j].unique_violations;
        dl += cls[j].deadlocks;
    }
    fprintf(stderr,
            "seed %u: migration %lld %s; clients: %ld statements, %ld transactions committed, "
            "%ld rolled back, %ld unique violations, %ld deadlocks\n",
            seed, id, m.state, ops, commits, rollbacks, uv, dl);
    for (int j = 0; j < NCLIENTS; j++)
        if (cls[j].errors > 0)
            FAILP("%s", cls[j].err);
    if (!ready)
        FAILP("migration %lld did not reach ready (state %s, rows_copied %lld): %s", id, m.state,
              m.rows_copied, m.error);
    assert_true(seen_live);
    assert_true(commits > 0 && rollbacks > 0);

    h_mig_show(ctl, id, &m);
    assert_string_equal(m.state, "ready");
    assert_true(m.shadow[0] != 0);
    /* In ready the engine applies the change log every 200 ms: the shadow equals the
     * table once the clients' last writes are applied (bounded wait). */
    long long pending = -1;
    for (int i = 0; i < 100 && pending != 0; i++) {
        pending = h_qint(dc, "SELECT count(*) FROM pgcutover.m%lld_log", id);
        if (pending != 0)
            usleep(POLL_US);
    }
    assert_int_equal(pending, 0);
    assert_same_rows(dc, "t", "id, a::bigint, b, c", m.shadow, "id, a, b, c");
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM %s WHERE d IS DISTINCT FROM 'x'", m.shadow),
                     0);
    /* the shadow really has the new type */
    char typ[64];
    h_qtext(dc, typ, sizeof typ,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
            "'%s'::regclass AND attname = 'a'",
            m.shadow);
    assert_string_equal(typ, "bigint");
    /* Client transactions touch rows in key order so that they do not deadlock with
     * each other: a 40P01 comes from the engine's backfill (the server log names both
     * sides). */
    if (dl > 0)
        FAILP("clients saw %ld deadlock errors (40P01): the application got an error from a "
              "lock conflict with the migration",
              dl);
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

static int setup_conc1(void **state)
{
    (void)state;
    return h_eng_setup_db(&ctx.e, "eng_live_conc1");
}
static int setup_conc2(void **state)
{
    (void)state;
    return h_eng_setup_db(&ctx.e, "eng_live_conc2");
}
static int setup_conc3(void **state)
{
    (void)state;
    return h_eng_setup_db(&ctx.e, "eng_live_conc3");
}

static void test_concurrency_seed1(void **state)
{
    (void)state;
    run_concurrency(1);
}
static void test_concurrency_seed2(void **state)
{
    (void)state;
    run_concurrency(20240607);
}
static void test_concurrency_seed3(void **state)
{
    (void)state;
    run_concurrency(987654321);
}

/* ---------- 2. pause / resume ---------- */

/*
 * PAUSE MIGRATION n while copying: the state reads paused; over 5 s (ten samples)
 * rows_copied (SHOW and pgcutover.migrations) and the shadow's row count do not
 * change; RESUME MIGRATION n: the migration copies again, reaches ready, and the shadow
 * equals the original.
 */
static void test_pause_resume(void **state)
{
    (void)state;
    static const char *const sets[] = {"batch_size=1000", "max_rows_per_second=10000", "cutover=manual", NULL};
    PGconn *dc = h_eng_direct(&ctx.e);
    create_table(dc, "t", 100000);
    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    long long id =
        h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN a TYPE bigint, ADD COLUMN z int");
    h_mig m;
    wait_copying(ctl, id, 1, &m);

    PQclear(h_ctl_ok(ctl, "PAUSE MIGRATION %lld", id));
    h_mig_show(ctl, id, &m);
    assert_string_equal(m.state, "paused");
    assert_true(m.rows_copied > 0 && m.rows_copied < 100000);
    long long copied = m.rows_copied;
    long long db_copied =
        h_qint(dc, "SELECT rows_copied FROM pgcutover.migrations WHERE id = %lld", id);
    long long shadow_rows = h_qint(dc, "SELECT count(*) FROM %s", m.shadow);
    for (int i = 0; i < 10; i++) {
        usleep(500000);
        h_mig_show(ctl, id, &m);
        if (strcmp(m.state, "paused") != 0 || m.rows_copied != copied)
            FAILP("while paused: state %s rows_copied %lld (was %lld at PAUSE)", m.state,
                  m.rows_copied, copied);
        assert_int_equal(
            h_qint(dc, "SELECT rows_copied FROM pgcutover.migrations WHERE id = %lld", id),
            db_copied);
        assert_int_equal(h_qint(dc, "SELECT count(*) FROM %s", m.shadow), shadow_rows);
        char st[32];
        h_qtext(dc, st, sizeof st, "SELECT state FROM pgcutover.migrations WHERE id = %lld", id);
        assert_string_equal(st, "paused");
    }

    PQclear(h_ctl_ok(ctl, "RESUME MIGRATION %lld", id));
    /* copying again: rows_copied moves past the paused value */
    bool moved = false;
    for (int i = 0; i < 300 && !moved; i++) {
        h_mig_show(ctl, id, &m);
        if (m.rows_copied < copied)
            FAILP("after RESUME rows_copied %lld < %lld", m.rows_copied, copied);
        if (m.rows_copied > copied || strcmp(m.state, "ready") == 0)
            moved = true;
        else if (h_mig_terminal(m.state))
            FAILP("after RESUME: %s %s", m.state, m.error);
        else
            usleep(POLL_US);
    }
    assert_true(moved);
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld max_rows_per_second = 0", id));
    h_mig_wait(ctl, id, "ready", copied, WAIT_READY_MS, &m);
    assert_same_rows(dc, "t", "id, a::bigint, b, c", m.shadow, "id, a, b, c");
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM %s WHERE z IS NOT NULL", m.shadow), 0);
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

static int setup_pause(void **state)
{
    (void)state;
    return h_eng_setup_db(&ctx.e, "eng_live_pause");
}

/* ---------- 3. SIGKILL of pgcutover ---------- */

static int engine_backends(PGconn *dc)
{
    return (int)h_qint(dc,
                       "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND application_name LIKE 'pgcutover m%%'");
}

/*
 * SIGKILL pgcutover while the backfill is between 10% and 90%: once its backends are
 * gone, rows_copied/checkpoint are read from pgcutover.migrations; a new pgcutover on
 * the same cluster resumes the migration: the first SHOW after the restart and every
 * later sample have rows_copied >= the value at kill time, the checkpoint does not go
 * back, it reaches ready with rows_copied = the table's rows (nothing copied twice) and
 * the shadow equal to the original.
 */
static void test_sigkill_resume(void **state)
{
    (void)state;
    static const char *const sets[] = {"batch_size=1000", "max_rows_per_second=20000", "cutover=manual", NULL};
    const int rows = 200000;
    PGconn *dc = h_eng_direct(&ctx.e);
    create_table(dc, "t", rows);
    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    long long id = h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN a TYPE bigint");
    h_mig m;
    wait_copying(ctl, id, rows / 10, &m);
    assert_true(m.rows_copied < rows * 9 / 10);

    h_eng_drop_conn(&ctx.e, ctl);
    h_proxy_signal(&ctx.e.px, SIGKILL);
    int st = h_proxy_stop(&ctx.e.px); /* reaps it */
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    /* its backends notice the closed sockets and go away (bounded) */
    for (int i = 0; i < 100 && engine_backends(dc) > 0; i++)
        usleep(POLL_US);
    assert_int_equal(engine_backends(dc), 0);

    long long killed_rows =
        h_qint(dc, "SELECT rows_copied FROM pgcutover.migrations WHERE id = %lld", id);
    char killed_cp[256], state_db[32];
    h_qtext(dc, killed_cp, sizeof killed_cp,
            "SELECT checkpoint::text FROM pgcutover.migrations WHERE id = %lld", id);
    h_qtext(dc, state_db, sizeof state_db, "SELECT state FROM pgcutover.migrations WHERE id = %lld",
            id);
    fprintf(stderr, "killed at rows_copied %lld checkpoint %s state %s\n", killed_rows, killed_cp,
            state_db);
    assert_string_equal(state_db, "copying");
    assert_true(killed_rows > 0 && killed_rows < rows);
    /* the checkpoint is at or past the key of the last copied row (keys are 1..rows) */
    long long killed_key = atoll(killed_cp + strcspn(killed_cp, "0123456789"));
    assert_true(killed_key >= 1);

    h_proxy_start(&ctx.e.px2, sets);
    ctl = h_eng_console(&ctx.e, &ctx.e.px2);
    h_mig_show(ctl, id, &m);
    fprintf(stderr, "first SHOW after restart: state %s rows_copied %lld checkpoint %s\n", m.state,
            m.rows_copied, m.checkpoint);
    if (m.rows_copied < killed_rows)
        FAILP("after restart rows_copied %lld < %lld at kill: started over", m.rows_copied,
              killed_rows);
    /* it copies again, never from below the checkpoint */
    bool moved = false;
    for (int i = 0; i < WAIT_READY_MS / 100 && !moved; i++) {
        h_mig_show(ctl, id, &m);
        if (m.rows_copied < killed_rows)
            FAILP("after restart rows_copied %lld < %lld at kill", m.rows_copied, killed_rows);
        long long key = atoll(m.checkpoint + strcspn(m.checkpoint, "0123456789"));
        if (m.checkpoint[0] && key < killed_key)
            FAILP("after restart checkpoint %s is before %s at kill", m.checkpoint, killed_cp);
        if (h_mig_terminal(m.state))
            FAILP("after restart: %s %s", m.state, m.error);
        if (m.rows_copied > killed_rows || strcmp(m.state, "ready") == 0)
            moved = true;
        else
            usleep(POLL_US);
    }
    if (!moved)
        FAILP("migration %lld did not continue after the restart (state %s)", id, m.state);
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld max_rows_per_second = 0", id));
    h_mig_wait(ctl, id, "ready", killed_rows, WAIT_READY_MS, &m);
    if (m.rows_copied != rows)
        FAILP("at ready rows_copied %lld, table has %d rows (killed at %lld)", m.rows_copied, rows,
              killed_rows);
    assert_same_rows(dc, "t", "id, a::bigint, b, c", m.shadow, "id, a, b, c");
    h_eng_stop_proxy(&ctx.e, &ctx.e.px2);
}

static int setup_kill(void **state)
{
    (void)state;
    return h_eng_setup_db(&ctx.e, "eng_live_kill");
}

/* ---------- 4. engine connection drop ---------- */

/*
 * pg_terminate_backend() on the engine's backends (application_name 'pgcutover m%')
 * while copying: the migration does not fail, rows_copied never goes below the value
 * committed at the time, it reaches ready and the shadow equals the original.
 */
static void test_engine_connection_drop(void **state)
{
    (void)state;
    static const char *const sets[] = {"batch_size=1000", "max_rows_per_second=20000", "cutover=manual", NULL};
    const int rows = 150000;
    PGconn *dc = h_eng_direct(&ctx.e);
    create_table(dc, "t", rows);
    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    long long id =
        h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN a TYPE bigint, ADD COLUMN d text "
                               "DEFAULT 'x'");
    h_mig m;
    wait_copying(ctl, id, rows / 10, &m);

    char old_pids[256];
    h_qtext(dc, old_pids, sizeof old_pids,
            "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE datname = "
            "current_database() AND application_name LIKE 'pgcutover m%%'");
    assert_true(old_pids[0] != 0);
    long long killed =
        h_qint(dc, "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) AS t FROM "
                   "pg_stat_activity WHERE datname = current_database() AND "
                   "application_name LIKE 'pgcutover m%%') x WHERE t");
    assert_true(killed >= 1);
    for (int i = 0; i < 50; i++) { /* the terminated backends are gone */
        if (h_qint(dc, "SELECT count(*) FROM pg_stat_activity WHERE pid IN (%s)", old_pids) == 0)
            break;
        usleep(POLL_US);
    }
    long long at_drop =
        h_qint(dc, "SELECT rows_copied FROM pgcutover.migrations WHERE id = %lld", id);
    fprintf(stderr, "terminated %lld engine backend(s) (%s) at rows_copied %lld\n", killed,
            old_pids, at_drop);
    assert_true(at_drop < rows);

    /* it copies again */
    bool moved = false;
    for (int i = 0; i < WAIT_READY_MS / 100 && !moved; i++) {
        h_mig_show(ctl, id, &m);
        if (m.rows_copied < at_drop)
            FAILP("after the drop rows_copied %lld < %lld", m.rows_copied, at_drop);
        if (h_mig_terminal(m.state))
            FAILP("after the connection drop: %s %s", m.state, m.error);
        if (h_qint(dc, "SELECT rows_copied FROM pgcutover.migrations WHERE id = %lld", id) >
                at_drop ||
            strcmp(m.state, "ready") == 0)
            moved = true;
        else
            usleep(POLL_US);
    }
    if (!moved)
        FAILP("migration %lld did not continue after its connection dropped (state %s)", id,
              m.state);
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld max_rows_per_second = 0", id));
    h_mig_wait(ctl, id, "ready", at_drop, WAIT_READY_MS, &m);
    assert_same_rows(dc, "t", "id, a::bigint, b, c", m.shadow, "id, a, b, c");
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM %s WHERE d IS DISTINCT FROM 'x'", m.shadow),
                     0);
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

static int setup_drop(void **state)
{
    (void)state;
    return h_eng_setup_db(&ctx.e, "eng_live_drop");
}

/* ---------- 5. ABORT in each state ---------- */

/* What must not change on the original: data and definition. */
typedef struct {
    char data[64];
    char attrs[2048];
    char cons[2048];
    long long nindex;
    char idx[2048];
    long long ntrig;
    char relopts[256];
} table_snapshot;

static void snapshot(PGconn *dc, const char *table, table_snapshot *s)
{
    h_qtext(dc, s->data, sizeof s->data,
            "SELECT md5(string_agg(x::text, '|' ORDER BY x.id)) FROM %s x", table);
    h_qtext(
        dc, s->attrs, sizeof s->attrs,
        "SELECT string_agg(attnum || ':' || attname || ':' || format_type(atttypid, "
        "atttypmod) || ':' || attnotnull || ':' || atthasdef || ':' || attisdropped || ':' "
        "|| attidentity::text || attgenerated::text, ',' ORDER BY attnum) FROM pg_attribute WHERE "
        "attrelid = '%s'::regclass AND attnum > 0",
        table);
    h_qtext(dc, s->cons, sizeof s->cons,
            "SELECT string_agg(conname || ':' || pg_get_constraintdef(oid) || ':' || "
            "convalidated, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = "
            "'%s'::regclass",
            table);
    s->nindex = h_qint(dc, "SELECT count(*) FROM pg_index WHERE indrelid = '%s'::regclass", table);
    h_qtext(dc, s->idx, sizeof s->idx,
            "SELECT string_agg(pg_get_indexdef(indexrelid), ',' ORDER BY "
            "pg_get_indexdef(indexrelid)) FROM pg_index WHERE indrelid = '%s'::regclass",
            table);
    s->ntrig = h_qint(dc,
                      "SELECT count(*) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND NOT "
                      "tgisinternal",
                      table);
    h_qtext(
        dc, s->relopts, sizeof s->relopts,
        "SELECT coalesce(array_to_string(reloptions, ','), '') || ':' || relpersistence::text || "
        "':' || relname FROM pg_class WHERE oid = '%s'::regclass",
        table);
}

static void assert_snapshot_equal(const table_snapshot *a, const table_snapshot *b,
                                  const char *when)
{
    if (strcmp(a->data, b->data) != 0)
        FAILP("%s: the original's data changed", when);
    if (strcmp(a->attrs, b->attrs) != 0)
        FAILP("%s: columns changed: %s -> %s", when, a->attrs, b->attrs);
    if (strcmp(a->cons, b->cons) != 0)
        FAILP("%s: constraints changed: %s -> %s", when, a->cons, b->cons);
    if (a->nindex != b->nindex || strcmp(a->idx, b->idx) != 0)
        FAILP("%s: indexes changed: %s -> %s", when, a->idx, b->idx);
    if (a->ntrig != b->ntrig)
        FAILP("%s: %lld triggers, %lld before", when, b->ntrig, a->ntrig);
    if (strcmp(a->relopts, b->relopts) != 0)
        FAILP("%s: relation options changed: %s -> %s", when, a->relopts, b->relopts);
}

/* No pgcutover trigger on table, no table left in schema pgcutover except its
 * bookkeeping, shadow gone. */
static void assert_no_debris(PGconn *dc, const char *table, const char *shadow, const char *when)
{
    char trg[512], tabs[512];
    h_qtext(dc, trg, sizeof trg,
            "SELECT string_agg(tgname, ',') FROM pg_trigger WHERE tgrelid = '%s'::regclass AND "
            "NOT tgisinternal AND tgname LIKE 'pgcutover%%'",
            table);
    if (trg[0])
        FAILP("%s: triggers left on %s: %s", when, table, trg);
    if (shadow && shadow[0] &&
        h_qint(dc, "SELECT count(*) FROM (SELECT to_regclass('%s') AS r) x WHERE r IS NOT NULL",
               shadow) != 0)
        FAILP("%s: shadow table %s still exists", when, shadow);
    h_qtext(dc, tabs, sizeof tabs,
            "SELECT string_agg(c.relname, ',') FROM pg_class c JOIN pg_namespace n ON n.oid = "
            "c.relnamespace WHERE n.nspname = 'pgcutover' AND c.relkind IN ('r', 'p') AND "
            "c.relname NOT IN " BOOKKEEPING);
    if (tabs[0])
        FAILP("%s: tables left in schema pgcutover: %s", when, tabs);
}

/* ABORT MIGRATION id returns; the state reads aborted (SHOW and the table). */
static void abort_and_check(PGconn *ctl, PGconn *dc, long long id, const char *shadow,
                            const table_snapshot *before, const char *when)
{
    PQclear(h_ctl_ok(ctl, "ABORT MIGRATION %lld", id));
    h_mig m;
    h_mig_show(ctl, id, &m);
    if (strcmp(m.state, "aborted") != 0)
        FAILP("%s: after ABORT the state is %s", when, m.state);
    char st[32];
    h_qtext(dc, st, sizeof st, "SELECT state FROM pgcutover.migrations WHERE id = %lld", id);
    assert_string_equal(st, "aborted");
    assert_no_debris(dc, "t", shadow, when);
    table_snapshot after;
    snapshot(dc, "t", &after);
    assert_snapshot_equal(before, &after, when);
}

/*
 * ABORT MIGRATION n in copying, paused, ready and failed (a USING cast that fails in
 * the backfill; ABORT of the failed migration succeeds and keeps its reason in error):
 * each time the state becomes aborted, no pgcutover trigger is on the
 * table, the shadow and any other table in schema pgcutover besides its bookkeeping are
 * gone, and the original's rows (md5), columns, constraints, indexes, triggers and
 * options are what they were before the first migration. A new migration of the same
 * table is accepted after each abort.
 */
static void test_abort_each_state(void **state)
{
    (void)state;
    static const char *const sets[] = {"batch_size=500", "max_rows_per_second=5000", "cutover=manual", NULL};
    PGconn *dc = h_eng_direct(&ctx.e);
    h_exec_ok(dc, "CREATE TABLE t (id int PRIMARY KEY, a int NOT NULL CHECK (a >= 0), b text, "
                  "c int UNIQUE, e numeric(10,2) DEFAULT 1.5)");
    h_exec_ok(dc, "CREATE INDEX t_b ON t (b)");
    h_exec_ok(dc, "ALTER TABLE t SET (fillfactor = 90)");
    h_exec_ok(dc, "INSERT INTO t SELECT g, g % 100, 'row ' || g, g, g / 3.0 FROM "
                  "generate_series(1, 50000) g");
    h_exec_ok(dc, "ANALYZE t");
    table_snapshot before;
    snapshot(dc, "t", &before);
    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    h_mig m;

    /* copying */
    long long id = h_start_migration(ctl, "ALTER TABLE t ADD COLUMN z int DEFAULT 5, "
                                          "ALTER COLUMN c TYPE bigint");
    wait_copying(ctl, id, 1, &m);
    abort_and_check(ctl, dc, id, m.shadow, &before, "ABORT while copying");

    /* paused */
    id = h_start_migration(ctl, "ALTER TABLE t DROP COLUMN e, ALTER COLUMN a TYPE bigint");
    wait_copying(ctl, id, 1, &m);
    PQclear(h_ctl_ok(ctl, "PAUSE MIGRATION %lld", id));
    h_mig_show(ctl, id, &m);
    assert_string_equal(m.state, "paused");
    abort_and_check(ctl, dc, id, m.shadow, &before, "ABORT while paused");

    /* ready */
    id = h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN a TYPE bigint");
    PQclear(h_ctl_ok(ctl, "SET MIGRATION %lld max_rows_per_second = 0", id));
    h_mig_wait(ctl, id, "ready", -1, WAIT_READY_MS, &m);
    assert_same_rows(dc, "t", "id, a::bigint, b, c, e", m.shadow, "id, a, b, c, e");
    abort_and_check(ctl, dc, id, m.shadow, &before, "ABORT in ready");

    /* failed: the cast fails on the first row it copies */
    id = h_start_migration(ctl, "ALTER TABLE t ALTER COLUMN b TYPE int USING b::int");
    char set_cmd[96]; /* it may have failed already (the first row): then 55000, fine */
    snprintf(set_cmd, sizeof set_cmd, "SET MIGRATION %lld max_rows_per_second = 0", id);
    PQclear(PQexec(ctl, set_cmd));
    for (int i = 0; i < WAIT_READY_MS / 100; i++) {
        h_mig_show(ctl, id, &m);
        if (h_mig_terminal(m.state) || strcmp(m.state, "ready") == 0)
            break;
        usleep(POLL_US);
    }
    if (strcmp(m.state, "failed") != 0)
        FAILP("a cast that fails on every row: state %s, want failed", m.state);
    fprintf(stderr, "failed migration's error: %s\n", m.error);
    assert_true(m.error[0] != 0);
    char shadow[256];
    snprintf(shadow, sizeof shadow, "%s", m.shadow);
    PGresult *r = PQexec(ctl, "SELECT 1"); /* keep the console usable for the ABORT below */
    PQclear(r);
    char cmd[64], sqlstate[6] = "", msg[512] = "";
    snprintf(cmd, sizeof cmd, "ABORT MIGRATION %lld", id);
    r = PQexec(ctl, cmd);
    if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
        const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(sqlstate, sizeof sqlstate, "%s", s ? s : "");
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(ctl));
    }
    PQclear(r);
    h_mig_show(ctl, id, &m);
    fprintf(stderr, "ABORT of a failed migration: %s %s -> state %s\n",
            sqlstate[0] ? sqlstate : "ok", msg, m.state);
    if (sqlstate[0])
        FAILP("ABORT of a failed migration: [%s] %s", sqlstate, msg);
    if (strcmp(m.state, "aborted") != 0)
        FAILP("ABORT of a failed migration left state %s", m.state);
    assert_no_debris(dc, "t", shadow, "ABORT of a failed migration");
    table_snapshot after;
    snapshot(dc, "t", &after);
    assert_snapshot_equal(&before, &after, "ABORT of a failed migration");
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

static int setup_abort(void **state)
{
    (void)state;
    return h_eng_setup_db(&ctx.e, "eng_live_abort");
}

/* ---------- 6. refusals and PLAN ---------- */

static bool have_state_table(PGconn *dc)
{
    return h_qint(dc, "SELECT count(*) FROM (SELECT to_regclass('pgcutover.migrations') AS r) x "
                      "WHERE r IS NOT NULL") == 1;
}

/* Nothing was created for table (given as a regclass text, e.g. 'public.pt', or an oid). */
static void assert_nothing_created(PGconn *dc, const char *relname, const char *regclass,
                                   long long want_migrations, long long want_tables,
                                   const char *what)
{
    if (have_state_table(dc)) {
        long long n = h_qint(
            dc, "SELECT count(*) FROM pgcutover.migrations WHERE table_name = '%s'", relname);
        if (n != want_migrations)
            FAILP("%s: %lld rows in pgcutover.migrations for %s, want %lld", what, n, relname,
                  want_migrations);
    }
    long long tabs =
        h_qint(dc, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                   "c.relnamespace WHERE n.nspname = 'pgcutover' AND c.relkind IN ('r', "
                   "'p') AND c.relname NOT IN " BOOKKEEPING);
    if (tabs != want_tables)
        FAILP("%s: %lld tables in schema pgcutover, want %lld", what, tabs, want_tables);
    if (regclass) {
        long long trg = h_qint(dc,
                               "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s AND NOT "
                               "tgisinternal",
                               regclass);
        if (trg != 0)
            FAILP("%s: %lld triggers on %s", what, trg, relname);
    }
}

/* The console refuses cmd with one of the SQLSTATEs (want2 may be NULL) and creates
 * nothing for relname. */
static void refused(PGconn *ctl, PGconn *dc, const char *cmd, const char *want1, const char *want2,
                    const char *relname, const char *regclass)
{
    char st[6], msg[512];
    h_ctl_err(ctl, cmd, st, msg, sizeof msg);
    fprintf(stderr, "refused [%s] %s: %s\n", st, cmd, msg);
    if (strcmp(st, want1) != 0 && !(want2 && strcmp(st, want2) == 0))
        FAILP("'%s': SQLSTATE %s (%s), want %s%s%s", cmd, st, msg, want1, want2 ? " or " : "",
              want2 ? want2 : "");
    if (strlen(msg) < 10)
        FAILP("'%s': message too short to say what to do: '%s'", cmd, msg);
    assert_nothing_created(dc, relname, regclass, 0, 0, cmd);
}

/*
 * With instant_ddl = off (every ALTER TABLE a copy): refusals, each with its SQLSTATE and nothing
 * created (no pgcutover.migrations row for the table, no table in schema pgcutover, no trigger on
 * the table): partitioned table and a partition (0A000), inheritance child and parent (0A000),
 * another session's temporary table by its pg_temp_N schema and as pg_temp.x (42P01 or 0A000), no
 * primary key and only a nullable unique key (0A000), SET TABLESPACE, SET LOGGED, SET UNLOGGED
 * (0A000), ALTER TABLE t ADD COLUMN without a definition (42601), PLAN SELECT … (not DDL)
 * (42601), unknown table (42P01), a second migration of a table while one is in
 * progress (55000, and still only one migration row and one shadow).
 * PLAN ALTER TABLE … ADD COLUMN returns (step, phase, description, sql) rows naming the
 * key column and the estimated rows and creates nothing; PLAN … DROP COLUMN has a
 * 'warning' row naming the dropped column.
 */
static void test_refusals_and_plan(void **state)
{
    (void)state;
    /* instant_ddl=off: these ADD COLUMNs are catalog-only for PostgreSQL; the copy's
     * refusals and its PLAN are what is tested */
    static const char *const sets[] = {"batch_size=200", "max_rows_per_second=1000",
                                       "cutover=manual", "instant_ddl=off", NULL};
    PGconn *dc = h_eng_direct(&ctx.e);
    h_exec_ok(dc, "CREATE TABLE pt (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)");
    h_exec_ok(dc, "CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (1000)");
    h_exec_ok(dc, "CREATE TABLE par (id int PRIMARY KEY, v text)");
    h_exec_ok(dc, "CREATE TABLE chi (w int) INHERITS (par)");
    h_exec_ok(dc, "ALTER TABLE chi ADD PRIMARY KEY (id)");
    h_exec_ok(dc, "CREATE TABLE nokey (id int, v text)");
    h_exec_ok(dc, "CREATE TABLE nullu (id int UNIQUE, v text)");
    h_exec_ok(dc, "CREATE TABLE t (pk_col int PRIMARY KEY, drop_me text, c int)");
    h_exec_ok(dc, "INSERT INTO t SELECT g, 'x' || g, g FROM generate_series(1, 1234) g");
    h_exec_ok(dc, "ANALYZE t");
    h_exec_ok(dc, "INSERT INTO pt SELECT g, 'v' FROM generate_series(1, 10) g");

    /* another session's temporary table */
    PGconn *tmp = h_eng_direct(&ctx.e);
    h_exec_ok(tmp, "CREATE TEMP TABLE tmp_x (id int PRIMARY KEY, v text)");
    char tmp_schema[128], tmp_oid[32];
    h_qtext(tmp, tmp_schema, sizeof tmp_schema,
            "SELECT nspname FROM pg_namespace WHERE oid = "
            "pg_my_temp_schema()");
    h_qtext(tmp, tmp_oid, sizeof tmp_oid, "SELECT 'pg_temp.tmp_x'::regclass::oid");

    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);

    refused(ctl, dc, "ALTER TABLE pt ADD COLUMN z int", "0A000", NULL, "pt", "'pt'::regclass");
    refused(ctl, dc, "ALTER TABLE pt1 ADD COLUMN z int", "0A000", NULL, "pt1", "'pt1'::regclass");
    refused(ctl, dc, "ALTER TABLE chi ADD COLUMN z int", "0A000", NULL, "chi", "'chi'::regclass");
    refused(ctl, dc, "ALTER TABLE par ADD COLUMN z int", "0A000", NULL, "par", "'par'::regclass");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ALTER TABLE %s.tmp_x ADD COLUMN z int", tmp_schema);
    refused(ctl, dc, cmd, "42P01", "0A000", "tmp_x", tmp_oid);
    refused(ctl, dc, "ALTER TABLE pg_temp.tmp_x ADD COLUMN z int", "42P01", "0A000", "tmp_x",
            tmp_oid);
    refused(ctl, dc, "ALTER TABLE nokey ADD COLUMN z int", "0A000", NULL, "nokey",
            "'nokey'::regclass");
    refused(ctl, dc, "ALTER TABLE nullu ADD COLUMN z int", "0A000", NULL, "nullu",
            "'nullu'::regclass");
    refused(ctl, dc, "ALTER TABLE t SET TABLESPACE pg_default", "0A000", NULL, "t",
            "'t'::regclass");
    refused(ctl, dc, "ALTER TABLE t SET LOGGED", "0A000", NULL, "t", "'t'::regclass");
    refused(ctl, dc, "ALTER TABLE t SET UNLOGGED", "0A000", NULL, "t", "'t'::regclass");
    refused(ctl, dc, "ALTER TABLE t ADD COLUMN z int, SET UNLOGGED", "0A000", NULL, "t",
            "'t'::regclass");
    refused(ctl, dc, "ALTER TABLE t ADD COLUMN", "42601", NULL, "t", "'t'::regclass");
    refused(ctl, dc, "PLAN SELECT * FROM t", "42601", NULL, "t", "'t'::regclass");
    refused(ctl, dc, "ALTER TABLE no_such_table ADD COLUMN z int", "42P01", NULL, "no_such_table",
            NULL);
    refused(ctl, dc, "ALTER TABLE public.no_such_table ADD COLUMN z int", "42P01", NULL,
            "no_such_table", NULL);
    /* the temporary table is untouched in its own session */
    assert_int_equal(h_qint(tmp, "SELECT count(*) FROM pg_attribute WHERE attrelid = "
                                 "'pg_temp.tmp_x'::regclass AND attname = 'z'"),
                     0);

    /* PLAN: steps with their SQL, the key, the estimated rows; nothing created */
    PGresult *r = h_ctl_ok(ctl, "PLAN ALTER TABLE t ADD COLUMN z int");
    assert_true(PQntuples(r) > 0);
    int cs = h_col(r, "step"), cp = h_col(r, "phase"), cd = h_col(r, "description"),
        cq = h_col(r, "sql");
    (void)cs;
    (void)cp;
    size_t cap = 65536, len = 0;
    char *text = calloc(1, cap);
    assert_non_null(text);
    for (int i = 0; i < PQntuples(r); i++)
        len += (size_t)snprintf(text + len, len < cap ? cap - len : 0, "%s\n%s\n",
                                PQgetvalue(r, i, cd), PQgetvalue(r, i, cq));
    PQclear(r);
    bool key = strstr(text, "pk_col") != NULL;
    bool est = strstr(text, "1234") != NULL || strstr(text, "1,234") != NULL;
    if (!key || !est) {
        fprintf(stderr, "PLAN text:\n%s\n", text);
        free(text);
        FAILP("PLAN output lacks the key column (%d) or the estimated rows 1234 (%d)", key, est);
    }
    free(text);
    assert_nothing_created(dc, "t", "'t'::regclass", 0, 0, "PLAN ADD COLUMN");

    r = h_ctl_ok(ctl, "PLAN ALTER TABLE t DROP COLUMN drop_me");
    bool warned = false;
    for (int i = 0; i < PQntuples(r); i++)
        if (strcmp(PQgetvalue(r, i, h_col(r, "phase")), "warning") == 0 &&
            (strstr(PQgetvalue(r, i, h_col(r, "description")), "drop_me") ||
             strstr(PQgetvalue(r, i, h_col(r, "sql")), "drop_me")))
            warned = true;
    PQclear(r);
    if (!warned)
        FAILP("PLAN ... DROP COLUMN drop_me has no warning row naming drop_me");
    assert_nothing_created(dc, "t", "'t'::regclass", 0, 0, "PLAN DROP COLUMN");

    /* a second migration on a table with one in progress */
    long long id = h_start_migration(ctl, "ALTER TABLE t ADD COLUMN y int");
    h_mig m;
    for (int i = 0; i < 50; i++) { /* past preparing, so its shadow exists */
        h_mig_show(ctl, id, &m);
        if (strcmp(m.state, "copying") == 0 || strcmp(m.state, "ready") == 0 ||
            h_mig_terminal(m.state))
            break;
        usleep(POLL_US);
    }
    char st[6], msg[512];
    h_ctl_err(ctl, "ALTER TABLE t ADD COLUMN y2 int", st, msg, sizeof msg);
    fprintf(stderr, "refused [%s] second migration: %s\n", st, msg);
    if (strcmp(st, "55000") != 0)
        FAILP("a second migration of t: SQLSTATE %s (%s), want 55000", st, msg);
    long long live_tables = h_qint(dc, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON "
                                       "n.oid = c.relnamespace WHERE n.nspname = 'pgcutover' AND "
                                       "c.relkind IN ('r', 'p') AND c.relname NOT IN " BOOKKEEPING
                                       " AND c.relname !~ '^m[0-9]+_log$'");
    assert_int_equal(live_tables, 1); /* the shadow (and the change log beside it) */
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM pgcutover.migrations WHERE table_name = 't'"),
                     1);
    PQclear(h_ctl_ok(ctl, "ABORT MIGRATION %lld", id));
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

static int setup_refusals(void **state)
{
    (void)state;
    return h_eng_setup_db(&ctx.e, "eng_live_ref");
}

/* ---------- 7. a live write the new CHECK rejects ---------- */

/*
 * ALTER TABLE t ADD CONSTRAINT c_pos CHECK (a > 0) on data where every a > 0 through the
 * copy (instant_ddl = off), backfill slowed; a live INSERT through the proxy with a = -1 succeeds
 * (the row is in t), the migration becomes failed with an error naming c_pos, later writes still
 * succeed, and no pgcutover trigger is left on t.
 */
static void test_check_violated_by_live_insert(void **state)
{
    (void)state;
    /* instant_ddl=off: a lone ADD CHECK is the validate strategy by default (NOT VALID
     * first, so PostgreSQL itself rejects the INSERT); the copy's answer is tested here */
    static const char *const sets[] = {"batch_size=500", "max_rows_per_second=5000",
                                       "cutover=manual", "instant_ddl=off", NULL};
    PGconn *dc = h_eng_direct(&ctx.e);
    create_table(dc, "t", 100000);
    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    long long id = h_start_migration(ctl, "ALTER TABLE t ADD CONSTRAINT c_pos CHECK (a > 0)");
    h_mig m;
    wait_copying(ctl, id, 1, &m);

    PGconn *app = h_eng_keep(&ctx.e, h_connect(h_conninfo_proxy_db(&ctx.e.px, ctx.e.db, NULL)));
    PGresult *r = PQexec(app, "INSERT INTO t (id, a, b, c) VALUES (1000001, -1, 'neg', NULL)");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        char err[512];
        snprintf(err, sizeof err, "%s", PQerrorMessage(app));
        PQclear(r);
        FAILP("the application's INSERT failed: %s", err);
    }
    PQclear(r);
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM t WHERE id = 1000001 AND a = -1"), 1);

    for (int i = 0; i < WAIT_READY_MS / 100; i++) {
        h_mig_show(ctl, id, &m);
        if (h_mig_terminal(m.state) || strcmp(m.state, "ready") == 0)
            break;
        usleep(POLL_US);
    }
    fprintf(stderr, "migration %lld: %s: %s\n", id, m.state, m.error);
    if (strcmp(m.state, "failed") != 0)
        FAILP("after a live write that violates c_pos: state %s, want failed", m.state);
    if (strstr(m.error, "c_pos") == NULL)
        FAILP("the error does not name c_pos: %s", m.error);

    /* the application keeps writing, also rows the CHECK would reject */
    h_exec_ok(app, "INSERT INTO t (id, a, b, c) VALUES (1000002, -2, 'neg2', 1)");
    h_exec_ok(app, "UPDATE t SET a = -3 WHERE id = 5");
    h_exec_ok(app, "DELETE FROM t WHERE id = 6");
    assert_int_equal(h_qint(dc, "SELECT count(*) FROM t WHERE a < 0"), 3);

    char trg[512];
    h_qtext(
        dc, trg, sizeof trg,
        "SELECT string_agg(tgname || ' ' || tgenabled::text, ',') FROM pg_trigger WHERE tgrelid = "
        "'t'::regclass AND NOT tgisinternal AND tgname LIKE 'pgcutover%%'");
    if (trg[0]) {
        /* kept: at least they must not write any more */
        long long shadow_rows = -1;
        if (h_qint(dc,
                   "SELECT count(*) FROM (SELECT to_regclass('%s') AS r) x WHERE r IS NOT "
                   "NULL",
                   m.shadow) == 1)
            shadow_rows = h_qint(dc, "SELECT count(*) FROM %s WHERE id = 1000003", m.shadow);
        h_exec_ok(app, "INSERT INTO t (id, a, b, c) VALUES (1000003, 3, 'pos', 1)");
        long long after = shadow_rows < 0
                              ? -1
                              : h_qint(dc, "SELECT count(*) FROM %s WHERE id = 1000003", m.shadow);
        FAILP("after the migration failed its triggers remain on t: %s (shadow %s; they %s)", trg,
              m.shadow,
              shadow_rows < 0 ? "have no shadow to write to"
                              : (after > shadow_rows ? "still write to it" : "no longer write"));
    }
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

static int setup_check(void **state)
{
    (void)state;
    return h_eng_setup_db(&ctx.e, "eng_live_check");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refusals_and_plan, setup_refusals, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_seed1, setup_conc1, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_seed2, setup_conc2, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_seed3, setup_conc3, teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume, setup_pause, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_resume, setup_kill, teardown),
        cmocka_unit_test_setup_teardown(test_engine_connection_drop, setup_drop, teardown),
        cmocka_unit_test_setup_teardown(test_abort_each_state, setup_abort, teardown),
        cmocka_unit_test_setup_teardown(test_check_violated_by_live_insert, setup_check, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
