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
 * bigint, float8 → text, date → text, ADD UNIQUE; pgcutover runs with instant_ddl = off, so
 * the catalog-only ones are copied too), cutover auto or manual, and faults:
 * PAUSE/RESUME, pg_terminate_backend of the engine's backends ('pgcutover m%'), SIGKILL
 * of pgcutover while copying and a new pgcutover.
 *
 * Workload: NCLIENTS (4) libpq threads write through the proxy (loopback). Client c owns a
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
 *
 * This file is the seed driver (scenario, migration, faults, comparison with the
 * reference); the model, its SQL and the client threads are in h_random.c.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"
#include "h_random.h"

#define DEFAULT_SEEDS "4,9,20"
#define MAX_SEEDS 1000
#define MAX_WAIT_MS 90000
#define POLL_US 50000

/* ---------- scenario ---------- */

static const char *const key_names[] = {"int", "bigint", "composite", "text-ci", "numeric"};

typedef struct {
    const char *sql;   /* after "ALTER TABLE t " */
    enum h_rnd_sens sens;
    bool int_key_only; /* int or composite keys */
    bool adds_unique;  /* not with a second unique index already there */
} alter_def;

static const alter_def alters[] = {
    {"ALTER COLUMN v TYPE bigint", H_RND_S_NONE, false, false},
    {"ADD COLUMN extra text DEFAULT 'x'", H_RND_S_NONE, false, false},
    {"DROP COLUMN note", H_RND_S_NONE, false, false},
    {"ALTER COLUMN ts TYPE timestamp", H_RND_S_TS, false, false},
    {"ADD CONSTRAINT t_v_nonneg CHECK (v >= 0)", H_RND_S_NONE, false, false},
    {"ALTER COLUMN %s TYPE bigint", H_RND_S_NONE, true, false}, /* the int key column */
    {"ALTER COLUMN f TYPE text", H_RND_S_F, false, false},
    {"ALTER COLUMN d TYPE text", H_RND_S_D, false, false},
    {"ADD CONSTRAINT t_u_uniq UNIQUE (u)", H_RND_S_NONE, false, true},
};
#define NALTERS ((int)(sizeof alters / sizeof alters[0]))

typedef h_rnd_scenario scenario;

static scenario sc; /* the current seed's scenario (h_rnd_model_init copies it) */

static void pick_scenario(unsigned seed, scenario *sc)
{
    uint64_t s = seed * 0x100000001B3ull + 12345;
    memset(sc, 0, sizeof *sc);
    sc->seed = seed;
    static const enum h_rnd_key keys[] = {H_RND_K_INT, H_RND_K_BIGINT, H_RND_K_COMP, H_RND_K_CI,
                                          H_RND_K_NUM, H_RND_K_CI, H_RND_K_NUM};
    sc->key = keys[h_rnd_u(&s, 7)]; /* the keys with equal-but-not-identical values twice */
    sc->uniq2 = h_rnd_u(&s, 3) == 0;
    for (;;) {
        sc->alter = (int)h_rnd_u(&s, NALTERS);
        const alter_def *a = &alters[sc->alter];
        if (a->int_key_only && sc->key != H_RND_K_INT && sc->key != H_RND_K_COMP)
            sc->key = h_rnd_u(&s, 2) ? H_RND_K_INT : H_RND_K_COMP;
        if (a->adds_unique && sc->uniq2)
            continue;
        break;
    }
    sc->sens = alters[sc->alter].sens;
    snprintf(sc->alter_sql, sizeof sc->alter_sql, "ALTER TABLE t ");
    size_t l = strlen(sc->alter_sql);
    if (alters[sc->alter].int_key_only)
        snprintf(sc->alter_sql + l, sizeof sc->alter_sql - l, alters[sc->alter].sql,
                 sc->key == H_RND_K_COMP ? "k1" : "id");
    else
        snprintf(sc->alter_sql + l, sizeof sc->alter_sql - l, "%s", alters[sc->alter].sql);
    /* PostgreSQL refuses to change the type of a column a SQL-body function uses */
    sc->oidw = h_rnd_u(&s, 4) == 0 && strstr(sc->alter_sql, " TYPE ") == NULL;
    sc->manual = h_rnd_u(&s, 2) == 0;
    sc->f_pause = h_rnd_u(&s, 10) < 3;
    sc->f_term = h_rnd_u(&s, 10) < 3;
    sc->f_kill = h_rnd_u(&s, 4) == 0;
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
    if (!h_rnd_clients_quiesce()) {
        snprintf(why, n, "clients did not reach a transaction boundary within 30 s");
        h_rnd_clients_release(NULL, NULL);
        return ctl;
    }
    h_eng_drop_conn(&ectx, ctl);
    h_proxy_signal(&ectx.px, SIGKILL);
    h_proxy_stop(&ectx.px);
    for (int i = 0; i < 100 && engine_backends(dc) > 0; i++)
        usleep(100000);
    h_proxy_start(&ectx.px2, sets);
    ctl = h_eng_console(&ectx, &ectx.px2);
    h_rnd_clients_release(&ectx.px2, ectx.db);
    return ctl;
}

/* Drive migration id to done, applying the scenario's faults while it copies and the
 * manual cutover at ready (sent again, up to 4 in all, when one gave up and the migration
 * is back in ready: what an operator does). Fills why on failure; faults gets the faults applied. */
static void drive(PGconn *dc, PGconn **ctlp, long long id, long long rows,
                  const char *const *sets, h_mig *m, char *why, size_t n, char *faults,
                  size_t fn)
{
    bool paused = false, termd = false, killed = false;
    int cuts = 0; /* CUTOVER MIGRATION sent; again, as an operator would, after one gave up */
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
                h_rnd_run_for(300, 800);
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
        bool gave_up = cuts > 0 && strstr(m->phase, "tries again") != NULL;
        if (strcmp(m->state, "ready") == 0 && sc.manual && (cuts == 0 || (gave_up && cuts < 4))) {
            if (cuts++ > 0)
                snprintf(faults + strlen(faults), fn - strlen(faults), "cutover-retried(%.80s) ",
                         m->phase);
            h_rnd_run_for(300, 1500); /* writes while ready */
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
    snprintf(why, n, "migration not done within %d s (state %s, rows_copied %lld, %d CUTOVER "
             "sent, phase: %.300s)", MAX_WAIT_MS / 1000, m->state, m->rows_copied, cuts, m->phase);
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
    h_rnd_create_table(dc, "oracle_ref");
    h_rnd_insert_model(dc, "oracle_ref");
    if (alter) {
        h_execf(dc, "ALTER TABLE oracle_ref.t %s", sc.alter_sql + strlen("ALTER TABLE t "));
        h_rnd_set_post_values(dc, "oracle_ref");
    }
    h_qtext(dc, want, sizeof want, defs, "oracle_ref.t");
    h_qtext(dc, got, sizeof got, defs, "public.t");
    if (strcmp(want, got) != 0) {
        snprintf(why, n, "columns differ: t has (%.400s), a plain ALTER gives (%.400s)", got, want);
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
        snprintf(why, n, "%lld rows missing from t (e.g. %.400s), %lld extra (e.g. %.400s)", *missing,
                 s1, *extra, s2);
        return;
    }
    if (u1 != u2)
        snprintf(why, n, "t has %lld unique indexes, a plain ALTER gives %lld", u2, u1);
}

static void teardown_seed(void)
{
    h_rnd_clients_stop();
    h_eng_teardown(&ectx);
    h_rnd_model_free();
}

static bool run_seed(unsigned seed)
{
    char desc[256], why[2048] = "", faults[128] = "", state[32] = "-";
    long long missing = -1, extra = -1;
    pick_scenario(seed, &sc);
    describe(&sc, desc, sizeof desc);
    h_eng_setup_db(&ectx, "eng_random");
    PGconn *dc = h_eng_direct(&ectx);
    if (sc.key == H_RND_K_CI)
        h_execf(dc, "CREATE COLLATION public.ci (provider = icu, locale = 'und-u-ks-level2', "
                    "deterministic = false)");
    h_rnd_model_init(&sc);
    long long rows = h_rnd_model_rows();
    h_rnd_create_table(dc, "public");
    h_rnd_insert_model(dc, "public");
    h_execf(dc, "ANALYZE t");
    if (sc.oidw)
        h_execf(dc,
                "CREATE FUNCTION rand_set_v(%s, nv int) RETURNS void LANGUAGE sql BEGIN ATOMIC "
                "UPDATE t SET v = nv WHERE %s; END",
                sc.key == H_RND_K_COMP
                    ? "p1 int, p2 text"
                    : (const char *[]){"p1 int", "p1 bigint", "", "p1 text", "p1 numeric"}[sc.key],
                sc.key == H_RND_K_COMP ? "k1 = p1 AND k2 = p2" : "id = p1");
    static char cut[32];
    snprintf(cut, sizeof cut, "cutover=%s", sc.manual ? "manual" : "auto");
    /* instant_ddl=off: the catalog-only ALTERs of the list (ADD COLUMN … DEFAULT, DROP
     * COLUMN) and ADD CHECK (validate) go through the copy too, which is what is tested */
    const char *const sets[] = {"batch_size=200", "max_rows_per_second=2500", cut,
                                "instant_ddl=off", NULL};
    h_proxy_start(&ectx.px, sets);
    h_rnd_clients_start(&ectx.px, ectx.db);
    h_rnd_run_for(300, 5000); /* writes before the change */
    bool refused = false;
    if (sc.baseline) {
        h_rnd_run_for(1500, 4000);
        h_execf(dc, "%s", sc.alter_sql);
        snprintf(state, sizeof state, "plain");
        h_rnd_run_for(400, 3000);
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
                h_rnd_run_for(400, 3000); /* writes after the change */
        }
    }
    h_rnd_clients_stop();
    h_rnd_totals tot;
    h_rnd_clients_totals(&tot);
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
    bool pass = !why[0] ? tot.errors == 0 : refused && tot.errors == 0;
    fprintf(stderr,
            "seed %u: %s | ops %ld, txn commits %ld (%ld wrote the new type), autocommit %ld, "
            "rollbacks %ld | errors %ld | migration %s%s%s | diff rows: missing %lld, extra %lld "
            "| %s%s%s\n",
            seed, desc, tot.ops, tot.commits, tot.post_commits, tot.autocommits, tot.rollbacks,
            tot.errors, state, faults[0] ? ", applied " : "", faults, missing, extra,
            pass ? "PASS" : "FAIL", why[0] ? ": " : "", why);
    h_rnd_clients_print_errors();
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
