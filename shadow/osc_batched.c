/* osc_batched.c — see osc_batched.h. */
#include "osc_batched.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "osc_batched_sql.h"
#include "osc_db.h"
#include "osc_engine.h"
#include "osc_rights.h"
#include "osc_sql.h"
#include "osc_strategy_int.h"

/* The table's key for keyset batches: the primary key, else the NOT NULL unique index with
 * fewest columns (never partial, expression or deferrable): names and format_type()s,
 * newline-separated, and the table's schema and name. */
static const char key_sql[] =
    "SELECT string_agg(a.attname, E'\\n' ORDER BY k.ord), "
    "string_agg(pg_catalog.format_type(a.atttypid, a.atttypmod), E'\\n' ORDER BY k.ord), "
    "(SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
    "c.relnamespace WHERE c.oid = $1), (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = $1) "
    "FROM pg_catalog.pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS "
    "k(attnum, ord) JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
    "WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indimmediate AND i.indpred IS "
    "NULL AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts GROUP BY i.indexrelid, i.indisprimary "
    "HAVING bool_and(a.attnotnull) ORDER BY i.indisprimary DESC, count(*), i.indexrelid LIMIT 1";

typedef struct {
    PGconn *c;
    const conf_t *s;
    char *path;               /* the user's search_path */
    char *keys[OSC_BATCHED_MAX_KEYS], *types[OSC_BATCHED_MAX_KEYS];
    int nkeys;
    char *bound_first, *bound_next; /* text[] of the next upper bound (no lower / with one) */
    char *range[4];                 /* [has_lo * 2 + has_hi] */
    char ids[32];
    char err[1500], code[6];
} batch_ctx;

static int split_lines(const char *s, char **out, int max)
{
    int n = 0;
    while (n < max && s) {
        const char *nl = strchr(s, '\n');
        out[n++] = nl ? strndup(s, (size_t)(nl - s)) : strdup(s);
        s = nl ? nl + 1 : NULL;
    }
    return n;
}

/* "SELECT ARRAY[b.c1::text, …] FROM (<bound>) AS b(c1, …)": the executor returns a row as
 * text[] (osc_rights_executor), so the key comes back as one array. Frees bound. */
static char *wrap_bound(char *bound, int nkeys)
{
    if (bound == NULL)
        return NULL;
    osc_sb b = {0};
    osc_sb_addf(&b, "SELECT ARRAY[");
    for (int i = 0; i < nkeys; i++)
        osc_sb_addf(&b, "%sb.c%d::text", i ? ", " : "", i + 1);
    osc_sb_addf(&b, "] FROM (%s) AS b(", bound);
    for (int i = 0; i < nkeys; i++)
        osc_sb_addf(&b, "%sc%d", i ? ", " : "", i + 1);
    osc_sb_addf(&b, ")");
    free(bound);
    return osc_sb_take(&b);
}

/* One batch in one transaction: the next bound after lo (NULL = first), the range up to
 * it (open above when there is none: the last batch, which also sets state done), the
 * checkpoint. *hi gets the bound's text[] literal (malloc'ed) or NULL; *rows the rows the
 * statement changed. False with x->err/code (the transaction rolled back). */
static bool one_batch(batch_ctx *x, const char *lo, char **hi, long long *rows)
{
    *hi = NULL;
    *rows = 0;
    char lt[64];
    snprintf(lt, sizeof lt, "BEGIN; SET LOCAL lock_timeout = %d", x->s->lock_timeout_ms);
    const char *bv[] = {lo ? x->bound_next : x->bound_first, lo ? lo : "{}", x->path};
    PGresult *b = NULL, *u = NULL;
    bool ok = osc_run(x->c, lt, 0, NULL, x->err, sizeof x->err, x->code) &&
              (b = osc_exec(x->c, "SELECT pg_temp." OSC_AS_USER "($1, $2::text[], true, $3)", 3, bv,
                            x->err, sizeof x->err, x->code)) != NULL;
    bool last = ok && PQgetisnull(b, 0, 0);
    if (ok && !last)
        *hi = strdup(PQgetvalue(b, 0, 0));
    /* the range's parameters: lo's then hi's, as one text[] */
    char *args = NULL;
    if (ok) {
        osc_sb a = {0};
        osc_sb_addf(&a, "SELECT (coalesce($1::text[], '{}') || coalesce($2::text[], '{}'))::text");
        char *q = osc_sb_take(&a);
        const char *av[] = {lo, *hi};
        PGresult *t = q ? osc_exec(x->c, q, 2, av, x->err, sizeof x->err, x->code) : NULL;
        free(q);
        args = t ? strdup(PQgetvalue(t, 0, 0)) : NULL;
        ok = args != NULL;
        PQclear(t);
    }
    const char *range = x->range[(lo ? 2 : 0) + (last ? 0 : 1)];
    const char *rv[] = {range, args, x->path};
    ok = ok && (u = osc_exec(x->c, "SELECT (pg_temp." OSC_AS_USER "($1, $2::text[], false, $3))[1]", 3,
                             rv, x->err, sizeof x->err, x->code)) != NULL;
    if (ok)
        *rows = strtoll(PQgetvalue(u, 0, 0), NULL, 10);
    char n[32];
    snprintf(n, sizeof n, "%lld", *rows);
    const char *cv[] = {x->ids, last ? lo : *hi, n, last ? "done" : "copying"};
    ok = ok && osc_run(x->c,
                       "UPDATE pgcutover.migrations SET checkpoint = $2::text[], rows_copied = "
                       "rows_copied + $3::bigint, state = CASE WHEN $4 = 'done' THEN 'done' ELSE "
                       "state END, phase = CASE WHEN $4 = 'done' THEN "
                       "'all key ranges done' ELSE 'batched through key ' || $2::text[]::text END, updated_at = "
                       "now(), phase_at = CASE WHEN $4 = 'done' THEN phase_at || "
                       "jsonb_build_object('done', now()) ELSE phase_at END WHERE id = $1",
                       4, cv, x->err, sizeof x->err, x->code) &&
         osc_run(x->c, "COMMIT", 0, NULL, x->err, sizeof x->err, x->code);
    if (!ok) {
        PQclear(PQexec(x->c, "ROLLBACK"));
        free(*hi);
        *hi = NULL;
    }
    free(args);
    PQclear(b);
    PQclear(u);
    return ok;
}

/* Between two ranges: while PAUSE MIGRATION n has set the row paused, wait (polling every
 * 200 ms) for RESUME. False when the engine stops meanwhile or the row cannot be read. */
static bool wait_while_paused(batch_ctx *x)
{
    const char *v[] = {x->ids};
    for (bool said = false;;) {
        PGresult *t = osc_exec(x->c, "SELECT state FROM pgcutover.migrations WHERE id = $1", 1, v,
                               x->err, sizeof x->err, x->code);
        bool paused = t && PQntuples(t) == 1 && strcmp(PQgetvalue(t, 0, 0), "paused") == 0;
        bool ok = t != NULL;
        PQclear(t);
        if (!ok || !paused)
            return ok;
        if (!said)
            osc_log(CONF_LOG_INFO, "m%s: batched statement paused", x->ids);
        said = true;
        if (osc_engine_stopping())
            return true; /* the loop says why it stops */
        struct timespec w = {0, 200 * 1000 * 1000};
        nanosleep(&w, NULL);
    }
}

/* Sleep so that rows over the time since t0 stays under max_rows_per_second. */
static void throttle(const conf_t *s, long long rows, double t0)
{
    if (s->max_rows_per_second <= 0 || rows <= 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = ts.tv_sec + ts.tv_nsec / 1e9, due = t0 + (double)rows / s->max_rows_per_second;
    if (due > now) {
        double d = due - now;
        struct timespec w = {(time_t)d, (long)((d - (time_t)d) * 1e9)};
        nanosleep(&w, NULL);
    }
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Resolve the target, its key and the SQL of every batch into x; false with *r answered. */
static bool prepare(batch_ctx *x, const char *user, const char *sql, osc_batched_target *t,
                    char oid[16], char schema[128], char table[128], osc_result *r)
{
    char code[6];
    if (!osc_batched_parse(sql, t, code, x->err, sizeof x->err)) {
        osc_result_error(r, code, NULL, "%s", x->err);
        return false;
    }
    osc_sb q = {0};
    osc_sb_qualified(&q, t->schema, t->table);
    char *qname = osc_sb_take(&q);
    x->path = osc_rights_user_path(user);
    bool ok = qname && x->path &&
              osc_rights_executor(x->c, OSC_AS_USER, user, x->err, sizeof x->err, code) &&
              osc_rights_regclass(x->c, qname, x->path, oid, x->err, sizeof x->err, code);
    free(qname);
    if (!ok) {
        osc_result_error(r, code, NULL, "%s", x->err);
        return false;
    }
    if (strcmp(oid, "0") == 0) {
        osc_result_error(r, "42P01", NULL, "relation \"%s\" does not exist", t->table);
        return false;
    }
    const char *kv[] = {oid};
    PGresult *k = osc_exec(x->c, key_sql, 1, kv, x->err, sizeof x->err, code);
    if (k == NULL || PQntuples(k) == 0) {
        osc_result_error(r, k ? "0A000" : code, k ? "add a primary key, or run it unbatched" : NULL,
                         "%s", k ? "a batched statement needs a primary key or a NOT NULL unique "
                                   "key on its table to walk it in key ranges" : x->err);
        PQclear(k);
        return false;
    }
    x->nkeys = split_lines(PQgetvalue(k, 0, 0), x->keys, OSC_BATCHED_MAX_KEYS);
    split_lines(PQgetvalue(k, 0, 1), x->types, OSC_BATCHED_MAX_KEYS);
    snprintf(schema, 128, "%s", PQgetvalue(k, 0, 2));
    snprintf(table, 128, "%s", PQgetvalue(k, 0, 3));
    PQclear(k);
    for (int i = 0; i < t->nset; i++)
        for (int j = 0; j < x->nkeys; j++)
            if (strcmp(t->set_columns[i], x->keys[j]) == 0) {
                osc_result_error(r, "0A000", "run it unbatched", "a batched UPDATE cannot assign "
                                 "to the key column \"%s\": the key ranges would move under it",
                                 x->keys[j]);
                return false;
            }
    const char *const *keys = (const char *const *)x->keys, *const *types = (const char *const *)x->types;
    long batch = x->s->batch_size > 0 ? x->s->batch_size : 1000;
    x->bound_first = wrap_bound(osc_batched_bound_sql_typed(t, keys, types, x->nkeys, true, batch), x->nkeys);
    x->bound_next = wrap_bound(osc_batched_bound_sql_typed(t, keys, types, x->nkeys, false, batch), x->nkeys);
    for (int i = 0; i < 4; i++)
        x->range[i] = osc_batched_range_sql_typed(sql, keys, types, x->nkeys, i & 2, i & 1, x->err,
                                                  sizeof x->err);
    if (!x->bound_first || !x->bound_next || !x->range[0] || !x->range[1] || !x->range[2] || !x->range[3]) {
        osc_result_error(r, "XX000", NULL, "building the batches: %s", x->err);
        return false;
    }
    return true;
}

void osc_batched_run(PGconn *c, const char *user, const char *sql, int64_t resume, const conf_t *s,
                     osc_result *r)
{
    batch_ctx x = {.c = c, .s = s};
    osc_batched_target t = {0};
    char oid[16] = "0", schema[128] = "", table[128] = "";
    char *lo = NULL;
    if (!prepare(&x, user, sql, &t, oid, schema, table, r))
        goto out;
    PGresult *row;
    if (resume > 0) {
        snprintf(x.ids, sizeof x.ids, "%" PRId64, resume);
        const char *v[] = {x.ids};
        row = osc_exec(c, "UPDATE pgcutover.migrations SET state = 'copying', error = NULL, "
                          "updated_at = now() WHERE id = $1 RETURNING id, checkpoint::text",
                       1, v, x.err, sizeof x.err, x.code);
    } else {
        const char *v[] = {schema, table, oid, sql, user};
        row = osc_exec(c, "INSERT INTO pgcutover.migrations (table_schema, table_name, table_oid, "
                          "statement, started_by, strategy, state, phase, phase_at) VALUES ($1, $2, "
                          "$3, $4, $5, 'batched', 'copying', 'first key range', "
                          "jsonb_build_object('copying', now())) RETURNING id, checkpoint::text",
                       5, v, x.err, sizeof x.err, x.code);
    }
    if (row == NULL || PQntuples(row) != 1) {
        osc_result_error(r, row ? "XX000" : x.code, NULL, "recording the batched statement: %s", x.err);
        PQclear(row);
        goto out;
    }
    snprintf(x.ids, sizeof x.ids, "%s", PQgetvalue(row, 0, 0));
    lo = PQgetisnull(row, 0, 1) ? NULL : strdup(PQgetvalue(row, 0, 1));
    PQclear(row);
    /* alive while this session holds it (osc_batched_recover); released with the session */
    char lock[96];
    snprintf(lock, sizeof lock, "SELECT pg_catalog.pg_try_advisory_lock(%d, %s)", OSC_LOCK_CLASS, x.ids);
    PGresult *l = osc_exec(c, lock, 0, NULL, x.err, sizeof x.err, x.code);
    bool mine = l && PQgetvalue(l, 0, 0)[0] == 't';
    PQclear(l);
    if (!mine) {
        osc_result_error(r, l ? "55P03" : x.code, NULL, "%s", l ? "the batched statement runs in "
                         "another session (another pgcutover?)" : x.err);
        x.ids[0] = 0; /* not ours to unlock */
        goto out;
    }
    osc_log(CONF_LOG_INFO, "m%s %s.%s: batched %s in key ranges of %d rows%s%s", x.ids, schema, table,
            t.is_delete ? "DELETE" : "UPDATE", s->batch_size, lo ? ", resuming after key " : "",
            lo ? lo : "");
    long long total = 0, ranges = 0;
    double t0 = mono_s();
    for (;;) {
        if (osc_engine_stopping()) {
            snprintf(x.code, 6, "57P01");
            snprintf(x.err, sizeof x.err, "pgcutover is shutting down; the statement goes on after "
                                          "key %s when it runs again", lo ? lo : "(none)");
            break;
        }
        if (!wait_while_paused(&x))
            break;
        if (osc_engine_stopping())
            continue; /* said at the top */
        char *hi = NULL;
        long long n = 0;
        bool ok = false;
        int backoff = 100;
        for (int a = 1; !ok && a <= (s->cutover_attempts > 0 ? s->cutover_attempts : 1); a++) {
            ok = one_batch(&x, lo, &hi, &n);
            if (ok || strcmp(x.code, "55P03") != 0 || PQstatus(c) != CONNECTION_OK)
                break;
            osc_back_off(&backoff);
        }
        if (!ok)
            break;
        total += n;
        ranges++;
        free(lo);
        lo = hi;
        if (hi == NULL) { /* the last range: state done in its transaction */
            osc_log(CONF_LOG_INFO, "m%s %s.%s: batched statement done: %lld rows", x.ids, schema,
                    table, total);
            osc_strat_answer(r, strtoll(x.ids, NULL, 10), "batched", schema, table,
                             t.is_delete ? "DELETE" : "UPDATE");
            goto out;
        }
        throttle(s, ranges * (long long)s->batch_size, t0); /* rows walked, not only changed */
    }
    /* failed: the row keeps its checkpoint, so running the statement again goes on there */
    {
        const char *v[] = {x.ids, x.err};
        char e2[256], c2[6];
        osc_run(c, "UPDATE pgcutover.migrations SET state = 'failed', error = $2, updated_at = now(), "
                   "phase_at = phase_at || jsonb_build_object('failed', now()) WHERE id = $1",
                2, v, e2, sizeof e2, c2);
        osc_log(CONF_LOG_ERROR, "m%s %s.%s: batched statement stopped: %s", x.ids, schema, table, x.err);
        osc_result_error(r, x.code, "run it again: it goes on after the last committed key range",
                         "%s", x.err);
    }
out:
    if (x.ids[0]) {
        char unlock[96];
        snprintf(unlock, sizeof unlock, "SELECT pg_catalog.pg_advisory_unlock(%d, %s)", OSC_LOCK_CLASS, x.ids);
        PQclear(PQexec(c, unlock));
    }
    free(lo);
    free(x.path);
    for (int i = 0; i < x.nkeys; i++)
        free(x.keys[i]), free(x.types[i]);
    free(x.bound_first);
    free(x.bound_next);
    for (int i = 0; i < 4; i++)
        free(x.range[i]);
    osc_batched_target_free(&t);
}

void osc_batched_recover(PGconn *c, const char *db)
{
    char err[512];
    PGresult *t = osc_exec(c, "SELECT id FROM pgcutover.migrations WHERE strategy = 'batched' AND "
                              "state IN ('copying', 'paused')", 0, NULL, err, sizeof err, NULL);
    for (int i = 0; t && i < PQntuples(t); i++) {
        const char *v[] = {PQgetvalue(t, i, 0)};
        char q[160];
        snprintf(q, sizeof q, "SELECT pg_catalog.pg_try_advisory_lock(%d, $1::int)", OSC_LOCK_CLASS);
        PGresult *l = osc_exec(c, q, 1, v, err, sizeof err, NULL);
        bool mine = l && PQgetvalue(l, 0, 0)[0] == 't';
        PQclear(l);
        if (!mine)
            continue; /* another pgcutover runs it */
        osc_run(c, "UPDATE pgcutover.migrations SET state = 'failed', error = 'interrupted by a restart "
                   "of pgcutover: run the statement again to go on after key ' || coalesce(checkpoint::text, "
                   "'(none)'), updated_at = now(), phase_at = phase_at || jsonb_build_object('failed', "
                   "now()) WHERE id = $1::bigint",
                1, v, err, sizeof err, NULL);
        snprintf(q, sizeof q, "SELECT pg_catalog.pg_advisory_unlock(%d, $1::int)", OSC_LOCK_CLASS);
        PQclear(osc_exec(c, q, 1, v, err, sizeof err, NULL));
        osc_log(CONF_LOG_WARNING, "m%s in database \"%s\": batched statement interrupted by a restart; "
                                  "running it again goes on from its checkpoint", v[0], db);
    }
    PQclear(t);
}
