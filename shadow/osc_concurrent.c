/* osc_concurrent.c — see osc_strategy.h: the strategies that run outside one transaction —
 * concurrent index statements, ADD PRIMARY KEY / UNIQUE by a concurrent build — and what
 * ABORT and a restart do to them. */
#include "osc_strategy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "osc_db.h"
#include "osc_rights.h"
#include "osc_strategy_int.h"
#include "osc_warn.h"

/* ---------- concurrent: CREATE INDEX, DROP INDEX, REINDEX ---------- */

/* The table an index statement is about (by the index for DROP and REINDEX INDEX), its
 * name resolved with the user's search_path: oid, schema, name into the out buffers.
 * false (0 rows) when there is none. */
static bool index_table(PGconn *c, const osc_idx_stmt *ix, const char *path, char oid[16],
                        char *schema, char *table, size_t len, char *err, size_t errlen,
                        char code[6])
{
    osc_sb q = {0};
    osc_sb_qualified(&q, ix->schema, ix->name);
    char *qname = osc_sb_take(&q), named[16];
    bool ok = qname && osc_rights_regclass(c, qname, path, named, err, errlen, code);
    free(qname);
    const char *v[] = {named, ix->kind == OSC_IDX_DROP || ix->kind == OSC_IDX_REINDEX_INDEX ? "i" : "t"};
    PGresult *t = ok ? osc_exec(c,
                                "SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace "
                                "n ON n.oid = c.relnamespace WHERE c.oid = CASE WHEN $2 = 'i' THEN "
                                "(SELECT indrelid FROM pg_index WHERE indexrelid = $1::oid) ELSE "
                                "$1::oid END",
                                2, v, err, errlen, code)
                     : NULL;
    ok = t && PQntuples(t) == 1;
    if (ok) {
        snprintf(oid, 16, "%s", PQgetvalue(t, 0, 0));
        snprintf(schema, len, "%s", PQgetvalue(t, 0, 1));
        snprintf(table, len, "%s", PQgetvalue(t, 0, 2));
    }
    PQclear(t);
    return ok;
}

/* Drop the INVALID indexes of migration id's table that were not there when it started
 * (settings.indexes_before): what a failed or interrupted concurrent build leaves. Returns
 * how many. */
static int drop_invalid(PGconn *c, const char *id)
{
    const char *v[] = {id};
    char err[512], code[6];
    PGresult *t = osc_exec(c,
                           "SELECT i.indexrelid::regclass::text FROM pgcutover.migrations m JOIN "
                           "pg_index i ON i.indrelid = m.table_oid WHERE m.id = $1 AND NOT "
                           "i.indisvalid AND i.indexrelid::text NOT IN (SELECT "
                           "jsonb_array_elements_text(m.settings->'indexes_before'))",
                           1, v, err, sizeof err, code);
    int dropped = 0;
    for (int i = 0; t && i < PQntuples(t); i++) {
        char sql[600];
        snprintf(sql, sizeof sql, "DROP INDEX CONCURRENTLY IF EXISTS %s", PQgetvalue(t, i, 0));
        if (osc_run(c, sql, 0, NULL, err, sizeof err, code))
            dropped++;
        else
            osc_log(CONF_LOG_WARNING, "dropping the INVALID index %s: %s", PQgetvalue(t, i, 0), err);
    }
    PQclear(t);
    return dropped;
}

/* sql (… CONCURRENTLY) on c as `user` with the user's search_path (path), outside a
 * transaction (the caller has begun the job, osc_strat_begin_job): SET ROLE, because CONCURRENTLY cannot run inside the
 * executor's function, and an index build runs its expressions as the table's owner in a
 * restricted context, so nothing can climb back. No lock_timeout: the statement's one lock,
 * SHARE UPDATE EXCLUSIVE, queues no application statement, and the build waits for older
 * transactions by design. False with PostgreSQL's message, detail and SQLSTATE. */
static bool run_concurrently(PGconn *c, const char *user, const char *path, const char *sql,
                             char *err, size_t errlen, char *detail, size_t dlen, char code[6])
{
    const char *uv[] = {user, path};
    bool ok = osc_run(c, "SELECT pg_catalog.set_config('role', $1, false), "
                         "pg_catalog.set_config('search_path', $2, false)",
                      2, uv, err, errlen, code) &&
              osc_run(c, "SET lock_timeout = 0", 0, NULL, err, errlen, code);
    if (ok) {
        PGresult *res = PQexec(c, sql);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok) {
            const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            const char *dd = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
            const char *sc = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            snprintf(err, errlen, "%s", m ? m : PQerrorMessage(c));
            snprintf(detail, dlen, "%s", dd ? dd : "");
            snprintf(code, 6, "%s", sc ? sc : "08006");
        }
        PQclear(res);
    }
    return ok; /* the caller's osc_strat_end_work resets role, search_path, lock_timeout */
}

static const char *idx_verb(osc_idx_kind k)
{
    return k == OSC_IDX_CREATE ? "CREATE INDEX" : k == OSC_IDX_DROP ? "DROP INDEX" : "REINDEX";
}

void osc_strategy_index(PGconn *c, const char *user, const char *sql, bool plan, osc_result *r)
{
    osc_idx_stmt ix;
    bool is_index;
    char code[6] = "", err[1024] = "", oid[16], schema[128], table[128];
    if (!osc_stmt_index(sql, &is_index, &ix, code, err, sizeof err)) {
        osc_result_error(r, is_index ? code : "42601", NULL, "%s", is_index ? err : "not an index statement");
        return;
    }
    char *path = osc_rights_user_path(user);
    bool found = path && index_table(c, &ix, path, oid, schema, table, sizeof table, err, sizeof err, code);
    if (!found) {
        osc_result_error(r, "42P01", "check the name and the console's database (psql -d)",
                         "relation \"%s%s%s\" does not exist", ix.schema ? ix.schema : "",
                         ix.schema ? "." : "", ix.name);
        goto out;
    }
    if (plan) {
        osc_warn_out o;
        osc_warn_begin(&o, r);
        char d[600];
        snprintf(d, sizeof d, "concurrent: %s runs CONCURRENTLY on %s.%s — SHARE UPDATE EXCLUSIVE, "
                              "which no application read or write waits for; it waits for older "
                              "transactions as PostgreSQL's own does",
                 idx_verb(ix.kind), schema, table);
        osc_warn_row(&o, "strategy", d, NULL, NULL, NULL);
        osc_warn_estimate(&o, c, oid, ix.kind == OSC_IDX_DROP ? OSC_EST_CATALOG : OSC_EST_BUILD, 0,
                          NULL);
        snprintf(d, sizeof d, "as %s, outside a transaction; a failed or interrupted build drops "
                              "the INVALID index it left and says why",
                 user);
        osc_warn_row(&o, "concurrent", d, ix.sql, osc_warn_lock_name(OSC_LOCK_SHARE_UPDATE_EXCLUSIVE),
                     "none");
        snprintf(r->tag, sizeof r->tag, "PLAN");
        goto out;
    }
    if (!osc_state_ensure(c, err, sizeof err)) {
        osc_result_error(r, "42501", NULL, "%s", err);
        goto out;
    }
    char ids[32];
    if (!osc_strat_begin_row(c, "concurrent", "concurrently", schema, table, oid, sql, user, ids, r))
        goto out;
    osc_strat_begin_job(c, ids);
    char detail[600] = "";
    bool ok = run_concurrently(c, user, path, ix.sql, err, sizeof err, detail, sizeof detail, code);
    osc_strat_end_work(c, ids);
    int dropped = ok ? 0 : drop_invalid(c, ids);
    char why[1400];
    snprintf(why, sizeof why, "%.700s%s%.600s%s", err, *detail ? " (" : "", detail, *detail ? ")" : "");
    if (dropped)
        snprintf(why + strlen(why), sizeof why - strlen(why), "; the INVALID index it left was dropped");
    osc_strat_finish_row(c, ids, ok, why, ok ? "built concurrently" : "failed; nothing INVALID left");
    if (!ok) {
        osc_log(CONF_LOG_ERROR, "m%s %s.%s: %s failed: %s", ids, schema, table, idx_verb(ix.kind), why);
        osc_result_error(r, code, NULL, "%s", why);
        goto out;
    }
    osc_log(CONF_LOG_INFO, "m%s %s.%s: done — %s", ids, schema, table, ix.sql);
    osc_strat_answer(r, strtoll(ids, NULL, 10), "concurrent", schema, table, idx_verb(ix.kind));
out:
    free(path);
    osc_idx_free(&ix);
}

/* End the backend of migration ids's job (SIGKILLed pgcutover: it outlives us, waiting for
 * no client) or, with cancel, just its statement. */
static void end_job(PGconn *c, const char *ids, bool cancel)
{
    char app[64], err[256], code[6];
    snprintf(app, sizeof app, "pgcutover m%s", ids);
    const char *av[] = {app};
    /* this database's (ids are per database; pg_stat_activity is the cluster's) */
    /* cancel: its work only (named "… job", running a statement), never its clean-up
     * (osc_strat_end_work renames it); terminate: either */
    PQclear(osc_exec(c, cancel ? "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE "
                                 "application_name = $1 || ' job' AND state = 'active' AND "
                                 "datname = current_database()"
                               : "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                                 "WHERE application_name LIKE $1 || ' %' AND datname = "
                                 "current_database()",
                     1, av, err, sizeof err, code));
}

/* What an interrupted validate or concurrent migration left, and whether it completed:
 * the key variant ($2) when its PRIMARY KEY / UNIQUE constraint exists; the others (only
 * validations, osc_plan decide) when every constraint it added is valid, no helper is left
 * and every column of its SET NOT NULLs ($3, text[]) is NOT NULL — or, with none, it added
 * something. One row: complete, then the undo statements (text[]) — DROP CONSTRAINT of
 * what it added, DROP INDEX of its own index. */
static const char leftover_sql[] =
    "WITH m AS (SELECT id, table_oid, settings FROM pgcutover.migrations WHERE id = $1), added AS "
    "(SELECT k.* FROM m JOIN pg_constraint k ON k.conrelid = m.table_oid WHERE k.oid::text NOT IN "
    "(SELECT jsonb_array_elements_text(coalesce(m.settings->'constraints_before', '[]')))) SELECT "
    "CASE WHEN $2 THEN EXISTS (SELECT 1 FROM added WHERE contype IN ('p', 'u')) ELSE NOT EXISTS "
    "(SELECT 1 FROM added WHERE NOT convalidated OR conname LIKE 'pgcutover\\_nn\\_%') AND CASE "
    "WHEN cardinality($3::text[]) = 0 THEN EXISTS (SELECT 1 FROM added) ELSE NOT EXISTS (SELECT 1 "
    "FROM m, unnest($3::text[]) col WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid "
    "= m.table_oid AND a.attname = col AND a.attnotnull)) END END, ARRAY(SELECT format('ALTER TABLE "
    "%s DROP CONSTRAINT IF EXISTS %I', conrelid::regclass, conname) FROM added UNION ALL SELECT "
    "format('DROP INDEX CONCURRENTLY IF EXISTS %s', i.indexrelid::regclass) FROM m JOIN pg_index i "
    "ON i.indrelid = m.table_oid JOIN pg_class ci ON ci.oid = i.indexrelid WHERE ci.relname = "
    "'pgcutover_m' || m.id || '_key')";

/* Whether the CREATE INDEX of migration ids finished before its job's backend ended: a
 * valid index of the table that was not there when it began (settings indexes_before) —
 * the build commits its last step itself, so a pgcutover killed just then never heard. */
static bool built_before_restart(PGconn *c, const char *ids)
{
    char err[256];
    const char *v[] = {ids};
    PGresult *t = osc_exec(c, "SELECT count(*) FROM pgcutover.migrations m JOIN pg_catalog.pg_index i "
                              "ON i.indrelid = m.table_oid WHERE m.id = $1 AND i.indisvalid AND NOT "
                              "i.indexrelid::text IN (SELECT pg_catalog.jsonb_array_elements_text("
                              "m.settings->'indexes_before'))",
                           1, v, err, sizeof err, NULL);
    bool built = t && strtoll(PQgetvalue(t, 0, 0), NULL, 10) > 0;
    PQclear(t);
    return built;
}

/* Undo (or, when complete, just close) migration ids of strategy validate or concurrent,
 * interrupted: its job's backend ended, what it left dropped (DROP CONSTRAINT under the
 * hold with lock_timeout and retries), INVALID indexes it left dropped; state done,
 * or failed with why. */
static void recover_one(PGconn *c, const char *db, const char *ids, const char *strategy,
                        const char *stmt, const conf_t *s, const char *why)
{
    char err[512], code[6], sql[96];
    /* A live job holds its advisory lock (osc_strat_begin_job): another pgcutover on the same
     * cluster runs it; leave it alone. The backend of a killed one ends its statement within
     * client_connection_check_interval (1 s) and frees the lock: wait up to 3 s for that. */
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%d, %s)", OSC_LOCK_CLASS, ids);
    bool mine = false;
    for (int i = 0; i < 30 && !mine; i++) {
        PGresult *l = osc_exec(c, sql, 0, NULL, err, sizeof err, code);
        mine = l && PQgetvalue(l, 0, 0)[0] == 't';
        PQclear(l);
        if (!mine) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (!mine) {
        osc_log(CONF_LOG_INFO, "m%s in database \"%s\": its job runs in another session "
                               "(another pgcutover?): left alone", ids, db);
        return;
    }
    /* the job may have ended while we waited for its lock: then nothing is to be done */
    const char *iv[] = {ids};
    PGresult *now = osc_exec(c, "SELECT state IN ('building', 'validating') FROM "
                                "pgcutover.migrations WHERE id = $1", 1, iv, err, sizeof err, code);
    bool live = now && PQntuples(now) == 1 && PQgetvalue(now, 0, 0)[0] == 't';
    PQclear(now);
    if (!live) {
        snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%d, %s)", OSC_LOCK_CLASS, ids);
        PQclear(PQexec(c, sql));
        return;
    }
    osc_log(CONF_LOG_WARNING, "m%s in database \"%s\": interrupted by a restart", ids, db);
    end_job(c, ids, false); /* an older pgcutover's backend without the check, if any */
    if (strcmp(strategy, "concurrent") == 0 && strncasecmp(stmt, "CREATE", 6) == 0 &&
        built_before_restart(c, ids)) {
        osc_strat_finish_row(c, ids, true, NULL, "completed before the restart");
        osc_log(CONF_LOG_INFO, "m%s: its index was built before the restart", ids);
        snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%d, %s)", OSC_LOCK_CLASS, ids);
        PQclear(PQexec(c, sql));
        return;
    }
    if (strcmp(strategy, "concurrent") == 0) {
        int dropped = drop_invalid(c, ids);
        char w[600];
        snprintf(w, sizeof w, "%s%s", why, dropped ? "; the INVALID index it left was dropped" : "");
        osc_strat_finish_row(c, ids, false, w, "cleaned up");
        osc_log(CONF_LOG_WARNING, "m%s: %s", ids, w);
        return;
    }
    osc_key_stmt k;
    bool key = osc_stmt_key(stmt, &k);
    osc_key_free(&k);
    /* the columns of its SET NOT NULLs, as a text[] literal */
    osc_stmt st = {0};
    osc_sb nb = {0};
    osc_sb_addf(&nb, "{");
    if (!key && osc_stmt_parse(stmt, &st, code, err, sizeof err))
        for (int i = 0, n = 0; i < st.ncmds; i++)
            if (st.cmds[i].sets_not_null && st.cmds[i].column) {
                osc_sb_addf(&nb, "%s\"", n++ ? "," : "");
                for (const char *ch = st.cmds[i].column; *ch; ch++)
                    osc_sb_addf(&nb, "%s%c", *ch == '"' || *ch == '\\' ? "\\" : "", *ch);
                osc_sb_addf(&nb, "\"");
            }
    osc_sb_addf(&nb, "}");
    char *nn = osc_sb_take(&nb);
    const char *v[] = {ids, key ? "t" : "f", nn ? nn : "{}"};
    PGresult *t = osc_exec(c, leftover_sql, 3, v, err, sizeof err, code);
    if (t && PQgetvalue(t, 0, 0)[0] == 't') {
        osc_strat_finish_row(c, ids, true, NULL, "completed before the restart");
        osc_log(CONF_LOG_INFO, "m%s: completed before the restart", ids);
    } else if (t) {
        const char *arr = PQgetvalue(t, 0, 1); /* {"stmt","stmt"} */
        PGresult *u = osc_exec(c, "SELECT unnest($1::text[])", 1, &arr, err, sizeof err, code);
        bool clean = u != NULL;
        for (int i = 0; u && i < PQntuples(u); i++) {
            const char *q = PQgetvalue(u, i, 0);
            bool concurrently = strstr(q, "CONCURRENTLY") != NULL;
            if (!(concurrently ? osc_run(c, q, 0, NULL, err, sizeof err, code)
                               : osc_run_locked(c, q, 0, NULL, true, s->lock_timeout_ms,
                                                s->cutover_attempts, err, sizeof err, code))) {
                osc_log(CONF_LOG_WARNING, "m%s: %s: %s", ids, q, err);
                clean = false;
            }
        }
        PQclear(u);
        drop_invalid(c, ids);
        char w[700];
        snprintf(w, sizeof w, "%s%s", why, clean ? "; what it added was dropped" : "; could not drop all it added (see the log)");
        osc_strat_finish_row(c, ids, false, w, "cleaned up");
        osc_log(CONF_LOG_WARNING, "m%s: %s", ids, w);
    } else {
        osc_log(CONF_LOG_WARNING, "m%s: recovering: %s", ids, err);
    }
    PQclear(t);
    free(nn);
    osc_stmt_free(&st);
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%d, %s)", OSC_LOCK_CLASS, ids);
    PQclear(PQexec(c, sql)); /* when finish_row did not */
}

void osc_strategy_recover(PGconn *c, const char *db, const conf_t *s)
{
    char err[512], code[6];
    PGresult *t = osc_exec(c,
                           "SELECT id, strategy, statement FROM pgcutover.migrations WHERE strategy "
                           "IN ('concurrent', 'validate') AND state IN ('building', 'validating')",
                           0, NULL, err, sizeof err, code);
    for (int i = 0; t && i < PQntuples(t); i++) {
            recover_one(c, db, PQgetvalue(t, i, 0), PQgetvalue(t, i, 1), PQgetvalue(t, i, 2), s,
                    "interrupted by a restart of pgcutover: run the statement again");
    }
    PQclear(t);
}

bool osc_strategy_abort(PGconn *c, int64_t id, osc_result *r)
{
    char ids[32], err[512], code[6];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *v[] = {ids};
    PGresult *t = osc_exec(c, "SELECT strategy, state FROM pgcutover.migrations WHERE id = $1", 1, v,
                           err, sizeof err, code);
    if (t == NULL || PQntuples(t) == 0 || strcmp(PQgetvalue(t, 0, 0), "copy") == 0) {
        PQclear(t);
        return false; /* a copy: the driver's */
    }
    bool running = strcmp(PQgetvalue(t, 0, 1), "building") == 0 || strcmp(PQgetvalue(t, 0, 1), "validating") == 0;
    if (!running)
        osc_result_error(r, "55000", NULL, "migration %" PRId64 " is %s: nothing to abort", id,
                         PQgetvalue(t, 0, 1));
    PQclear(t);
    if (!running || !osc_run(c, "UPDATE pgcutover.migrations SET phase = 'abort requested', updated_at "
                                "= now() WHERE id = $1 AND state IN ('building', 'validating')", 1, v, err, sizeof err, code)) {
        if (r->ok)
            osc_result_error(r, code, NULL, "%s", err);
        return true;
    }
    /* Cancel the job's statement until its row says it ended (bounded: 60 s). */
    char state[32] = "", why[600] = "";
    for (int i = 0; i < 600; i++) {
        t = osc_exec(c, "SELECT state, coalesce(error, '') || ' (' || phase || ')' FROM "
                        "pgcutover.migrations WHERE id = $1", 1, v, err, sizeof err, code);
        snprintf(state, sizeof state, "%s", t ? PQgetvalue(t, 0, 0) : "");
        snprintf(why, sizeof why, "%s", t ? PQgetvalue(t, 0, 1) : err);
        PQclear(t);
        if (strcmp(state, "building") != 0 && strcmp(state, "validating") != 0)
            break;
        end_job(c, ids, true);
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (strcmp(state, "aborted") == 0)
        snprintf(r->tag, sizeof r->tag, "ABORT MIGRATION");
    else
        osc_result_error(r, "55000", NULL, "migration %" PRId64 " is %s, not aborted: %s", id, state,
                         why); /* it ended otherwise meanwhile: why */
    return true;
}

/* ---------- validate: ADD PRIMARY KEY / UNIQUE by a concurrent build ---------- */

/* The constraint name PostgreSQL would choose for sql's PRIMARY KEY / UNIQUE on p's table
 * (ChooseIndexName, indexcmds.c): the statement tried, rolled back, on an empty LIKE copy
 * of the same name in pg_temp — only column names, no expression of the user's runs. Then
 * that name must be free in the table's schema, as PostgreSQL would have made it (it adds a
 * number otherwise; we ask for a name instead). malloc'ed, or NULL with err and code. */
static char *chosen_name(PGconn *c, const char *sql, const osc_plan *p, char *err, size_t errlen,
                         char code[6])
{
    osc_sb b = {0}, q = {0};
    osc_sb_addf(&b, "CREATE TEMP TABLE ");
    osc_sb_ident(&b, p->map.table);
    osc_sb_addf(&b, " (LIKE ");
    osc_sb_qualified(&b, p->map.schema, p->map.table);
    osc_sb_addf(&b, ")");
    osc_sb_qualified(&q, "pg_temp", p->map.table);
    char *create = osc_sb_take(&b), *tmp = osc_sb_take(&q), *name = NULL;
    char *alter = osc_stmt_retarget(sql, "pg_temp", p->map.table, err, errlen);
    const char *v[] = {tmp};
    PGresult *t = NULL;
    if (create && tmp && alter && osc_run(c, "BEGIN", 0, NULL, err, errlen, code) &&
        osc_run(c, create, 0, NULL, err, errlen, code) && osc_run(c, alter, 0, NULL, err, errlen, code))
        t = osc_exec(c, "SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass AND contype "
                        "IN ('p', 'u')", 1, v, err, errlen, code);
    if (t && PQntuples(t) == 1)
        name = strdup(PQgetvalue(t, 0, 0));
    else if (t)
        snprintf(err, errlen, "the constraint's name: no constraint on the trial copy");
    PQclear(t);
    PQclear(PQexec(c, "ROLLBACK"));
    free(create);
    free(tmp);
    free(alter);
    return name;
}

/* Whether a relation or constraint named name exists in schema (what ADD CONSTRAINT … USING
 * INDEX would collide with). */
static bool name_taken(PGconn *c, const char *schema, const char *name)
{
    const char *v[] = {name, schema};
    char err[256], code[6];
    PGresult *t = osc_exec(c, "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = "
                              "c.relnamespace WHERE c.relname = $1 AND n.nspname = $2) OR EXISTS "
                              "(SELECT 1 FROM pg_constraint k JOIN pg_namespace n ON n.oid = "
                              "k.connamespace WHERE k.conname = $1 AND n.nspname = $2)",
                           2, v, err, sizeof err, code);
    bool taken = t == NULL || PQgetvalue(t, 0, 0)[0] == 't';
    PQclear(t);
    return taken;
}

/* PostgreSQL's message for a build of tmp, with the constraint's name instead (the plain
 * ALTER's index bears that name). */
static void rename_in(char *msg, size_t len, const char *tmp, const char *conname)
{
    char *at = strstr(msg, tmp);
    if (at == NULL)
        return;
    char rest[1024];
    snprintf(rest, sizeof rest, "%s", at + strlen(tmp));
    snprintf(at, len - (size_t)(at - msg), "%s%s", conname, rest);
}

void osc_strategy_key(PGconn *c, const char *user, const char *sql, const osc_plan *p,
                      const conf_t *s, osc_result *r)
{
    osc_key_stmt k;
    char err[1024] = "", code[6] = "", detail[600] = "", oid[16], ids[32], idx[64], why[1400] = "";
    char *drops[OSC_MAX_KEY_COLS] = {0}, *conname = NULL, *path = NULL;
    int nhelpers = 0;
    if (!osc_stmt_key(sql, &k)) {
        osc_result_error(r, "42601", NULL, "not one ADD PRIMARY KEY or UNIQUE on columns");
        return;
    }
    snprintf(oid, sizeof oid, "%u", p->table_oid);
    path = osc_rights_user_path(user);
    conname = k.conname ? strdup(k.conname) : chosen_name(c, sql, p, err, sizeof err, code);
    if (path == NULL || conname == NULL) {
        osc_result_error(r, *code ? code : "53200", NULL, "%s", *err ? err : "out of memory");
        goto out;
    }
    if (name_taken(c, p->map.schema, conname)) {
        osc_result_error(r, "42P07", k.conname ? NULL : "name the constraint: ALTER TABLE … ADD "
                                                        "CONSTRAINT <name> …",
                         "relation \"%s\" already exists in schema \"%s\"", conname, p->map.schema);
        goto out;
    }
    if (!osc_state_ensure(c, err, sizeof err) ||
        !osc_rights_executor(c, OSC_AS_USER, user, err, sizeof err, code)) {
        osc_result_error(r, *code ? code : "42501", NULL, "%s", err);
        goto out;
    }
    if (!osc_strat_begin_row(c, "validate", "building the index concurrently", p->map.schema, p->map.table,
                   oid, sql, user, ids, r))
        goto out;
    osc_strat_begin_job(c, ids);
    snprintf(idx, sizeof idx, "pgcutover_m%s_key", ids);
    bool ok = true;
    /* A PRIMARY KEY's nullable columns: proven NOT NULL by a validated CHECK first, so the
     * attach sets NOT NULL without a scan (PostgreSQL 12+). */
    for (int i = 0; ok && k.primary && i < k.nkeys; i++) {
        const char *av[] = {oid, k.keys[i]};
        PGresult *nn = osc_exec(c, "SELECT 1 FROM pg_attribute WHERE attrelid = $1::oid AND attname = "
                                   "$2 AND NOT attnotnull", 2, av, err, sizeof err, code);
        bool nullable = nn && PQntuples(nn) == 1;
        ok = nn != NULL;
        PQclear(nn);
        if (!nullable)
            continue;
        char *add = osc_strat_not_null_helper(p->map.schema, p->map.table, k.keys[i], NULL, &drops[nhelpers]);
        osc_sb vb = {0};
        osc_sb_addf(&vb, "ALTER TABLE ");
        osc_sb_qualified(&vb, p->map.schema, p->map.table);
        char hname[64];
        osc_strat_nn_name(k.keys[i], hname);
        osc_sb_addf(&vb, " VALIDATE CONSTRAINT ");
        osc_sb_ident(&vb, hname);
        char *val = osc_sb_take(&vb);
        ok = add && val && drops[nhelpers] &&
             osc_strat_run_retried(c, user, add, true, s, err, sizeof err, code);
        if (ok || drops[nhelpers])
            nhelpers++;
        ok = ok && osc_strat_run_retried(c, user, val, false, s, err, sizeof err, code);
        if (!ok && strcmp(code, "23514") == 0) { /* as ADD PRIMARY KEY itself says it */
            snprintf(code, sizeof code, "23502");
            snprintf(err, sizeof err, "column \"%s\" of relation \"%s\" contains null values",
                     k.keys[i], p->map.table);
        }
        free(add);
        free(val);
    }
    osc_sb cb = {0}, ab = {0};
    osc_sb_addf(&cb, "CREATE UNIQUE INDEX CONCURRENTLY ");
    osc_sb_ident(&cb, idx);
    osc_sb_addf(&cb, " ON ");
    osc_sb_qualified(&cb, p->map.schema, p->map.table);
    osc_sb_addf(&cb, " %s", k.columns);
    osc_sb_addf(&ab, "ALTER TABLE ");
    osc_sb_qualified(&ab, p->map.schema, p->map.table);
    osc_sb_addf(&ab, " ADD CONSTRAINT ");
    osc_sb_ident(&ab, conname);
    osc_sb_addf(&ab, " %s USING INDEX ", k.primary ? "PRIMARY KEY" : "UNIQUE");
    osc_sb_ident(&ab, idx);
    osc_sb_addf(&ab, "%s%s", *k.attributes ? " " : "", k.attributes);
    for (int i = 0; i < nhelpers; i++)
        osc_sb_addf(&ab, "; %s", drops[i]);
    char *create = osc_sb_take(&cb), *attach = osc_sb_take(&ab);
    if (ok && (create == NULL || attach == NULL)) {
        snprintf(err, sizeof err, "out of memory");
        snprintf(code, sizeof code, "53200");
        ok = false;
    }
    if (ok && !run_concurrently(c, user, path, create, err, sizeof err, detail, sizeof detail, code)) {
        ok = false;
        rename_in(err, sizeof err, idx, conname);
    }
    if (ok)
        ok = osc_strat_run_retried(c, user, attach, true, s, err, sizeof err, code);
    free(create);
    free(attach);
    osc_strat_end_work(c, ids);
    if (!ok) {
        snprintf(why, sizeof why, "%.700s%s%.600s%s", err, *detail ? " (" : "", detail, *detail ? ")" : "");
        /* Nothing half-done: the index (INVALID or not) and the helpers go again. */
        char e2[256], c2[6];
        osc_sb db = {0};
        osc_sb_addf(&db, "DROP INDEX CONCURRENTLY IF EXISTS ");
        osc_sb_qualified(&db, p->map.schema, idx);
        char *drop_idx = osc_sb_take(&db);
        if (drop_idx && !osc_run(c, drop_idx, 0, NULL, e2, sizeof e2, c2))
            osc_log(CONF_LOG_WARNING, "m%s: %s: %s", ids, drop_idx, e2);
        free(drop_idx);
        for (int i = 0; i < nhelpers; i++)
            if (!osc_strat_run_retried(c, user, drops[i], true, s, e2, sizeof e2, c2))
                osc_log(CONF_LOG_WARNING, "m%s: %s: %s", ids, drops[i], e2);
    }
    osc_strat_finish_row(c, ids, ok, why, ok ? "index built concurrently and attached"
                                   : "failed; the index and helper constraints it added were dropped");
    if (!ok) {
        osc_log(CONF_LOG_ERROR, "m%s %s.%s: failed: %s", ids, p->map.schema, p->map.table, why);
        osc_result_error(r, code, NULL, "%s", why);
        goto out;
    }
    osc_log(CONF_LOG_INFO, "m%s %s.%s: done — validate: %s", ids, p->map.schema, p->map.table, sql);
    osc_strat_answer(r, strtoll(ids, NULL, 10), "validate", p->map.schema, p->map.table, "ALTER TABLE");
out:
    for (int i = 0; i < OSC_MAX_KEY_COLS; i++)
        free(drops[i]);
    free(conname);
    free(path);
    osc_key_free(&k);
}
