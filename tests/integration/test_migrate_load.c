/*
 * test_migrate_load.c — examples/migrations applied and reverted under load (issue 15,
 * "Done when", second point).
 *
 * pgbench -i -s 2 (200,000 accounts: the copy takes seconds), then pgbench TPC-B-like
 * THROUGH THE PROXY (-M prepared, 8 clients, -j 2) as back-to-back 5-second runs while
 *
 *   pgcutover migrate up examples/migrations      every version, one strategy each:
 *       000001 instant, 000002 concurrent, 000003 validate (a foreign key),
 *       000004 copy (abalance int -> bigint), 000005 block, 000006 batched,
 *       000007 instant,validate (SET DEFAULT, SET NOT NULL), 000008 direct,direct
 *   pgcutover migrate down --steps 8 examples/migrations      all the way back
 *
 * run as the real binary against the console. Each must exit 0 with all 8 versions in
 * its answer (one MIGRATE command: the client did not retry after a failed version) and
 * the strategies above (the down's are asserted too) recorded in
 * pgcutover.schema_migrations; every pgbench run exits 0 with "number of failed
 * transactions: 0" and no aborted client (h_pgbench_check). After up: abalance is
 * bigint, every note is filled and NOT NULL, the foreign key is validated, the view reads
 * every account. After down: a catalog snapshot of schema public (relations, columns in
 * order with types, NOT NULL and defaults, indexes, constraints, views, triggers) equals
 * the one taken before up. After each: the books balance (sum(abalance) = sum(tbalance)
 * = sum(bbalance) = sum(delta)); at the end pgbench_history holds exactly the
 * transactions pgbench reported, and pgbench_accounts all its rows.
 *
 * pgcutover runs with the default cutover_attempts (10): ADD/DROP of the foreign key of
 * 000003 lock pgbench_history, then pgbench_accounts, the reverse of a pgbench
 * transaction; before the hold's drain (px_hold_enter waits for the transactions under
 * way to end) one in flight made a lock cycle that only lock_timeout broke, and 10
 * attempts were not always enough. The number of lock_timeout retries is printed.
 *
 * Prints each version's strategies and duration (migrate's answer) and each statement's
 * strategy, time, rows, attempts and hold, pgbench's tps and the proxy's longest hold
 * wait and longest round trip (SHOW STATS).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "h_engine.h"

#define SCALE 2
#define ROWS (SCALE * 100000LL)
#define MIGRATE_MS 180000 /* bound on one `migrate up|down` */
#define RUN_BOUND_MS 60000
#define POLL_US 50000
#define NVERSIONS 8

static const char *const versions[NVERSIONS] = {"000001", "000002", "000003", "000004",
                                                "000005", "000006", "000007", "000008"};
static const char *const up_strategies[NVERSIONS] = {
    "instant", "concurrent", "validate", "copy", "block", "batched", "instant,validate",
    "direct,direct"};
static const char *const down_strategies[NVERSIONS] = {
    "instant", "concurrent", "instant", "copy", "block", "batched", "instant,instant", "direct"};

static struct {
    h_eng e;
    h_pgbench load;
    char dir[400];    /* examples/migrations */
    char out[600], err[600];
    pid_t mig_pid;
} ctx;

/* h_eng_fail's hook: pgcutover's log, the migrate client's output, pgbench's. */
static void dump_logs(void)
{
    h_dump_log(&ctx.e.px, 60);
    if (ctx.out[0]) {
        fprintf(stderr, "---- migrate stdout / stderr ----\n");
        fflush(stderr);
        h_shell("cat '%s' '%s' >&2", ctx.out, ctx.err);
    }
    h_pgbench_dump(&ctx.load);
}

/* `pgcutover migrate <verb> [extra] DIR` through the console, with the load going on
 * (ticked) until it exits; fails unless it exits 0. Its stdout stays in ctx.out. */
static void migrate(const char *verb, const char *extra, const char *extra_val)
{
    static int seq;
    snprintf(ctx.out, sizeof ctx.out, "%s/migrate-%s-%d.out", ctx.e.px.sockdir, verb, ++seq);
    snprintf(ctx.err, sizeof ctx.err, "%s/migrate-%s-%d.err", ctx.e.px.sockdir, verb, seq);
    char port[16];
    snprintf(port, sizeof port, "%d", ctx.e.px.control_port);
    const char *argv[16] = {PGC_BIN, "migrate", verb, "-h", "127.0.0.1", "-p", port, "-d",
                            ctx.e.db};
    int a = 9;
    if (extra) {
        argv[a++] = extra;
        argv[a++] = extra_val;
    }
    argv[a++] = ctx.dir;
    argv[a] = NULL;
    double t0 = h_now_ms();
    ctx.mig_pid = h_spawn(argv, ctx.out, ctx.err);
    int st = 0;
    while (waitpid(ctx.mig_pid, &st, WNOHANG) != ctx.mig_pid) {
        if (h_now_ms() - t0 > MIGRATE_MS)
            h_eng_fail("pgcutover migrate %s did not exit within %d s", verb, MIGRATE_MS / 1000);
        h_pgbench_tick(&ctx.load);
        usleep(POLL_US);
    }
    ctx.mig_pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        h_eng_fail("pgcutover migrate %s exited with status 0x%x", verb, st);
    char text[16384];
    snprintf(text, sizeof text, "%s", h_slurp(ctx.out));
    /* every version in one answer: the client retried nothing (it retries only 55006,
     * "another migrate is running"; before, a lock_timeout's 55P03 too) */
    char nrows[32];
    snprintf(nrows, sizeof nrows, "(%d rows)", NVERSIONS);
    if (strstr(h_slurp(ctx.err), "waiting up to") != NULL || strstr(text, nrows) == NULL)
        h_eng_fail("migrate %s: not all %d versions in one answer (a failed version retried "
                   "by the client?):\n%s%s",
                   verb, NVERSIONS, text, h_slurp(ctx.err));
    fprintf(stderr, "  migrate %s: exit 0 after %.1f s; its answer:\n", verb,
            (h_now_ms() - t0) / 1000);
    for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n"))
        if (strncmp(l, "version", 7) == 0 || strncmp(l, "0000", 4) == 0)
            fprintf(stderr, "    %s\n", l);
}

/* Every version's state, direction and strategies in pgcutover.schema_migrations. */
static void expect_versions(PGconn *d, const char *state, const char *const *strategies)
{
    for (int i = 0; i < NVERSIONS; i++) {
        char got[256], want[256];
        h_qtext(d, got, sizeof got,
                "SELECT state || ' ' || statements_done || '/' || statements_total || ' ' || "
                "array_to_string(strategies, ',') FROM pgcutover.schema_migrations WHERE version = "
                "'%s'",
                versions[i]);
        int n = 1 + (int)(strchr(strategies[i], ',') != NULL);
        snprintf(want, sizeof want, "%s %d/%d %s", state, n, n, strategies[i]);
        if (strcmp(got, want) != 0)
            h_eng_fail("version %s: \"%s\", want \"%s\"", versions[i], got, want);
    }
}

/* Each statement of the last run of every version: strategy, time (since the previous
 * statement of the version ended, retries included), rows, attempts, hold. */
static void print_statements(PGconn *d, const char *direction)
{
    PGresult *r = h_exec(
        d, "SELECT s.version, m.id, m.strategy, round((1000 * extract(epoch FROM m.updated_at - "
           "coalesce(lag(m.updated_at) OVER (PARTITION BY s.version ORDER BY o.k), s.started_at)))"
           "::numeric), m.rows_copied, coalesce(m.cutover_attempts::text, '-'), "
           "coalesce(round(m.cutover_hold_ms::numeric, 1)::text, '-'), "
           "coalesce(round(m.cutover_max_wait_ms::numeric, 1)::text, '-'), "
           "left(regexp_replace(m.statement, '\\s+', ' ', 'g'), 60) FROM "
           "pgcutover.schema_migrations s, unnest(s.migration_ids) WITH ORDINALITY o(id, k) JOIN "
           "pgcutover.migrations m ON m.id = o.id ORDER BY s.started_at, o.k");
    fprintf(stderr, "  migrate %s, statement by statement:\n", direction);
    fprintf(stderr, "    version  m    strategy    ms      rows    attempts  hold_ms  max_wait_ms  "
                    "statement\n");
    for (int i = 0; i < PQntuples(r); i++)
        fprintf(stderr, "    %-8s m%-3s %-11s %-7s %-7s %-9s %-8s %-12s %s\n", PQgetvalue(r, i, 0),
                PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4),
                PQgetvalue(r, i, 5), PQgetvalue(r, i, 6), PQgetvalue(r, i, 7), PQgetvalue(r, i, 8));
    PQclear(r);
}

/* The catalog of schema public as one sorted text: relations (kind, options), columns
 * (position among live columns, type, NOT NULL, default), indexes, constraints, views,
 * user triggers. */
static void snapshot(PGconn *d, char *out, size_t len)
{
    h_qtext(
        d, out, len,
        "SELECT string_agg(x, E'\\n' ORDER BY x) FROM ("
        "SELECT format('relation %%s %%s %%s', relname, relkind, reloptions) x FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
        "UNION ALL SELECT format('column %%s.%%s #%%s %%s%%s%%s', c.relname, a.attname, "
        "row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum), "
        "format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN ' not null' END, "
        "' default ' || pg_get_expr(ad.adbin, ad.adrelid)) FROM pg_attribute a JOIN pg_class c "
        "ON c.oid = a.attrelid LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = "
        "a.attnum WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', "
        "'m', 'f') AND a.attnum > 0 AND NOT a.attisdropped "
        "UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public' "
        "UNION ALL SELECT format('constraint %%s %%s %%s %%s', conrelid::regclass, conname, "
        "pg_get_constraintdef(oid), convalidated) FROM pg_constraint WHERE connamespace = "
        "'public'::regnamespace "
        "UNION ALL SELECT format('view %%s %%s', viewname, definition) FROM pg_views WHERE "
        "schemaname = 'public' "
        "UNION ALL SELECT format('trigger %%s %%s %%s', t.tgrelid::regclass, t.tgname, "
        "t.tgenabled) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE "
        "c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal) s");
}

/* SHOW STATS column col (one row). */
static double stat(PGconn *ctl, const char *col)
{
    PGresult *r = h_ctl_ok(ctl, "SHOW STATS");
    double v = atof(PQgetvalue(r, 0, h_col(r, col)));
    PQclear(r);
    return v;
}

/* Occurrences of needle in pgcutover's log. */
static int log_count(const char *needle)
{
    int n = 0;
    for (const char *p = h_slurp(ctx.e.px.log); (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void test_migrate_load(void **state)
{
    (void)state;
    double t_start = h_now_ms();
    snprintf(ctx.dir, sizeof ctx.dir, "%s/examples/migrations", PGC_SOURCE_DIR);
    h_pgbench_init(ctx.e.db, SCALE);
    PGconn *d = h_eng_direct(&ctx.e);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgbench_accounts"), ROWS);
    static char before[16384], after[16384];
    snapshot(d, before, sizeof before);

    static const char *const sets[] = {"log_level=info", NULL};
    h_proxy_start(&ctx.e.px, sets);
    PGconn *ctl = h_eng_console(&ctx.e, &ctx.e.px);
    ctx.load = (h_pgbench){.db = ctx.e.db, .port = ctx.e.px.port, .mode = "prepared",
                           .clients = 8, .jobs = 2, .seconds = 5, .dir = ctx.e.px.sockdir};
    h_pgbench_start(&ctx.load);
    for (double t0 = h_now_ms(); h_now_ms() - t0 < 1000;) /* some load before the first */
        usleep(POLL_US), h_pgbench_tick(&ctx.load);

    /* ---- up ---- */
    int retries0 = log_count(": lock_timeout (");
    migrate("up", NULL, NULL);
    int retries_up = log_count(": lock_timeout (") - retries0;
    expect_versions(d, "applied", up_strategies);
    print_statements(d, "up");
    char type[64];
    h_qtext(d, type, sizeof type,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
            "'public.pgbench_accounts'::regclass AND attname = 'abalance'");
    assert_string_equal(type, "bigint");
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_attribute WHERE attrelid = "
                               "'public.pgbench_accounts'::regclass AND attname = 'note' AND "
                               "attnotnull"),
                     1);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgbench_accounts WHERE note IS NULL OR "
                               "(note <> 'account ' || aid AND note <> '')"),
                     0);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pg_constraint WHERE conname = "
                               "'pgbench_history_aid_fkey' AND contype = 'f' AND convalidated"),
                     1);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM account_notes"), ROWS);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM regions"), 2);
    h_pgbench_books(d, "after up", ROWS, -1, true);

    /* ---- down, all the way ---- */
    int retries1 = log_count(": lock_timeout (");
    migrate("down", "--steps", "8");
    int retries_down = log_count(": lock_timeout (") - retries1;
    expect_versions(d, "reverted", down_strategies);
    print_statements(d, "down");

    /* the run going on, and one whole run on the schema as it was */
    h_pgbench_finish(&ctx.load, RUN_BOUND_MS);
    h_pgbench_start(&ctx.load);
    h_pgbench_finish(&ctx.load, RUN_BOUND_MS);

    snapshot(d, after, sizeof after);
    if (strcmp(before, after) != 0)
        h_eng_fail("the schema after migrate down differs from the one before up:\n---- before "
                   "----\n%s\n---- after ----\n%s",
                   before, after);
    h_pgbench_books(d, "after down", ROWS, -1, true);
    long long hist = h_qint(d, "SELECT count(*) FROM pgbench_history");
    if (hist != ctx.load.processed)
        h_eng_fail("%lld history rows, pgbench reported %lld transactions", hist,
                   ctx.load.processed);
    assert_int_equal(h_qint(d, "SELECT count(*) FROM pgbench_accounts"), ROWS);
    char notdone[2048];
    h_qtext(d, notdone, sizeof notdone,
            "SELECT coalesce(string_agg(format('m%%s %%s %%s: %%s', id, strategy, state, error), "
            "'; '), '') FROM pgcutover.migrations WHERE state <> 'done' AND revert_of IS NULL");
    if (*notdone)
        h_eng_fail("statements not done: %s", notdone);

    fprintf(stderr,
            "  pgbench -M prepared: %d runs, %lld transactions, 0 failed, 0 aborted; tps %.0f "
            "min, %.0f mean, %.0f max\n"
            "  proxy: longest wait in a hold %.1f ms, longest round trip %.1f ms; lock_timeout "
            "retries: %d in up, %d in down\n"
            "  schema after down = schema before up; %.1f s in all\n",
            ctx.load.checked, ctx.load.processed, ctx.load.tps_min,
            ctx.load.tps_sum / ctx.load.checked, ctx.load.tps_max, stat(ctl, "held_max_ms"),
            stat(ctl, "latency_max_ms"), retries_up, retries_down,
            (h_now_ms() - t_start) / 1000);
    h_eng_stop_proxy(&ctx.e, &ctx.e.px);
}

static int setup(void **state)
{
    memset(&ctx, 0, sizeof ctx);
    h_eng_fail_hook = dump_logs;
    return h_eng_setup_db(&ctx.e, (const char *)*state);
}

static int teardown(void **state)
{
    (void)state;
    h_stop_pid(&ctx.mig_pid, 2000);
    h_pgbench_stop(&ctx.load);
    h_eng_teardown(&ctx.e);
    h_eng_fail_hook = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_migrate_load, setup, teardown,
                                                 (void *)"mig_load"),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
