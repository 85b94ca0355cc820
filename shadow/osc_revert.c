/* osc_revert.c — see osc_revert.h. The inverse is computed in SQL from the two catalog
 * snapshots (jsonb), so what runs is visible in one query; columns are matched by attnum
 * (a rename keeps it), constraints and indexes by name. */
#include "osc_revert.h"
#include "osc_window.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc_db.h"
#include "osc_engine.h"

#define SNAP_COLS(src)                                                                             \
    "SELECT (e->>'n')::int AS n, e->>'name' AS name, e->>'type' AS type, (e->>'notnull')::bool "  \
    "AS nn, e->>'default' AS def FROM " src ", pg_catalog.jsonb_array_elements(j->'cols') e"
#define SNAP_LIST(src, key)                                                                        \
    "SELECT e->>'name' AS name, e->>'def' AS def FROM " src ", "                                   \
    "pg_catalog.jsonb_array_elements(j->'" key "') e"

/* Rows (ord, sql, loses, refuse) of migration $1's inverse: refusals (ord 0), renames
 * (1), one ALTER TABLE of the other column and constraint changes (2), indexes dropped
 * (3) and built again (4). */
static const char inverse_sql[] =
    "WITH m AS (SELECT id, strategy, state, table_oid, settings->'catalog_before' AS b, "
    "  settings->'catalog_after' AS a, settings ? 'reverted_by' AS reverted FROM "
    "  pgcutover.migrations WHERE id = $1), "
    "q AS (SELECT pg_catalog.quote_ident(n.nspname) AS s, pg_catalog.quote_ident(n.nspname) || "
    "  '.' || pg_catalog.quote_ident(c.relname) AS t FROM m JOIN pg_catalog.pg_class c ON c.oid = "
    "  m.table_oid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace), "
    "b AS (SELECT m.b AS j FROM m), "
    "n AS (SELECT " OSC_CATALOG_SNAPSHOT_SQL("m.table_oid") " AS j FROM m), "
    "bc AS (" SNAP_COLS("b") "), nc AS (" SNAP_COLS("n") "), "
    "bk AS (" SNAP_LIST("b", "cons") "), nk AS (" SNAP_LIST("n", "cons") "), "
    "bi AS (" SNAP_LIST("b", "idx") "), ni AS (" SNAP_LIST("n", "idx") "), "
    "later AS (SELECT l.id FROM pgcutover.migrations l, m WHERE l.table_oid = m.table_oid AND "
    "  l.id > m.id AND l.state = 'done' AND NOT l.settings ? 'reverted_by' AND "
    "  coalesce(l.source, '') NOT LIKE 'revert %' ORDER BY l.id LIMIT 1), "
    "subs AS ("
    "  SELECT 1 AS o, pg_catalog.format('DROP CONSTRAINT %I', nk.name) AS sub, NULL::text AS loses "
    "    FROM nk WHERE NOT EXISTS (SELECT FROM bk WHERE bk.name = nk.name) "
    "  UNION ALL SELECT 2, CASE WHEN bc.def IS NULL THEN pg_catalog.format('ALTER COLUMN %I DROP "
    "    DEFAULT', bc.name) ELSE pg_catalog.format('ALTER COLUMN %I SET DEFAULT %s', bc.name, "
    "    bc.def) END, NULL FROM bc JOIN nc USING (n) WHERE bc.def IS DISTINCT FROM nc.def "
    "  UNION ALL SELECT 3, pg_catalog.format('ALTER COLUMN %I %s NOT NULL', bc.name, CASE WHEN "
    "    bc.nn THEN 'SET' ELSE 'DROP' END), NULL FROM bc JOIN nc USING (n) WHERE bc.nn <> nc.nn "
    "  UNION ALL SELECT 4, pg_catalog.format('DROP COLUMN %I', nc.name), nc.name FROM nc "
    "    WHERE NOT EXISTS (SELECT FROM bc WHERE bc.n = nc.n) "
    "  UNION ALL SELECT 5, pg_catalog.format('ADD CONSTRAINT %I %s', bk.name, bk.def), NULL "
    "    FROM bk WHERE NOT EXISTS (SELECT FROM nk WHERE nk.name = bk.name)) "
    "SELECT 0 AS ord, NULL AS sql, NULL AS loses, 'migration ' || $1 || ' does not exist' "
    "  WHERE NOT EXISTS (SELECT FROM m) "
    "UNION ALL SELECT 0, NULL, NULL, CASE "
    "  WHEN m.reverted THEN 'it was reverted already' "
    "  WHEN m.state <> 'done' THEN 'it is ' || m.state || ', not done' "
    "  WHEN m.strategy = 'copy' THEN 'a copy migration: REVERT MIGRATION ' || m.id || ' swaps "
    "    its kept old table back (its revert window); migrate down --revert of it is not built yet' "
    "  WHEN m.strategy NOT IN ('instant', 'validate', 'concurrent') THEN 'a ' || m.strategy || "
    "    ' statement has no recorded inverse' "
    "  WHEN m.b IS NULL THEN 'it was recorded before pgcutover kept the catalog before a change' "
    "  WHEN NOT EXISTS (SELECT FROM q) THEN 'its table is gone' "
    "  WHEN EXISTS (SELECT FROM later) THEN 'migration ' || (SELECT id FROM later) || "
    "    ' changed the table after it: revert that first' "
    "  WHEN m.a IS DISTINCT FROM (SELECT j FROM n) THEN 'the table changed since the migration "
    "    (outside pgcutover?): its columns, constraints or indexes differ from right after it' "
    "  END FROM m "
    "UNION ALL SELECT 0, NULL, NULL, pg_catalog.format('column %I was dropped: its data is gone', "
    "  bc.name) FROM bc WHERE NOT EXISTS (SELECT FROM nc WHERE nc.n = bc.n) "
    "UNION ALL SELECT 0, NULL, NULL, pg_catalog.format('column %I changed type (%s to %s): no "
    "  exact inverse', nc.name, bc.type, nc.type) FROM bc JOIN nc USING (n) WHERE bc.type <> nc.type "
    "UNION ALL SELECT 1, pg_catalog.format('ALTER TABLE %s RENAME COLUMN %I TO %I', q.t, nc.name, "
    "  bc.name), NULL, NULL FROM bc JOIN nc USING (n), q WHERE bc.name <> nc.name "
    "UNION ALL SELECT 2, 'ALTER TABLE ' || q.t || ' ' || pg_catalog.string_agg(sub, ', ' ORDER BY "
    "  o, sub), pg_catalog.string_agg(pg_catalog.quote_ident(loses), ', '), NULL FROM subs, q "
    "  GROUP BY q.t "
    "UNION ALL SELECT 3, pg_catalog.format('DROP INDEX %s.%I', q.s, ni.name), NULL, NULL FROM ni, q "
    "  WHERE NOT EXISTS (SELECT FROM bi WHERE bi.name = ni.name) "
    "UNION ALL SELECT 4, bi.def, NULL, NULL FROM bi WHERE NOT EXISTS (SELECT FROM ni WHERE "
    "  ni.name = bi.name) "
    "ORDER BY 1, 2";

/* The inverse of migration id (inverse_sql's rows, refusals dropped when NULL); NULL with
 * err on a database error. */
static PGresult *inverse(PGconn *c, int64_t id, char *err, size_t errlen, char code[6])
{
    char ids[32];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *v[] = {ids};
    return osc_exec(c, inverse_sql, 1, v, err, errlen, code); /* c's search_path is pinned */
}

/* The refusals of t joined with "; " into out (empty: none) and the columns it drops into
 * loses (empty: none). */
static void verdict_of(PGresult *t, char *out, size_t len, char *loses, size_t llen)
{
    out[0] = loses[0] = 0;
    for (int i = 0; i < PQntuples(t); i++) {
        if (!PQgetisnull(t, i, 3)) {
            size_t n = strlen(out);
            snprintf(out + n, len - n, "%s%s", n ? "; " : "", PQgetvalue(t, i, 3));
        } else if (!PQgetisnull(t, i, 2)) {
            size_t n = strlen(loses);
            snprintf(loses + n, llen - n, "%s%s", n ? ", " : "", PQgetvalue(t, i, 2));
        }
    }
}

bool osc_revert_check(PGconn *c, int64_t id, char *why, size_t len, char *loses, size_t llen)
{
    char err[512], code[6];
    PGresult *t = inverse(c, id, err, sizeof err, code);
    if (t == NULL) {
        snprintf(why, len, "%s", err);
        loses[0] = 0;
        return false;
    }
    verdict_of(t, why, len, loses, llen);
    PQclear(t);
    return true;
}

/* A copy migration's revert window (osc_window.h) as a verdict into out; false when id is
 * no copy migration. */
static bool window_verdict(PGconn *c, int64_t id, char *out, size_t len)
{
    char err[256];
    osc_window_info wi;
    if (!osc_window_inspect(c, id, &wi, err, sizeof err))
        return false;
    if (wi.why[0])
        snprintf(out, len, "no: %s", wi.why);
    else
        snprintf(out, len, "yes: revert window open (migration %" PRId64 " keeps the old table "
                           "current)", wi.window);
    return true;
}

void osc_revert_verdict(PGconn *c, int64_t id, char *out, size_t len)
{
    char why[1024], loses[512];
    if (window_verdict(c, id, out, len))
        return;
    if (!osc_revert_check(c, id, why, sizeof why, loses, sizeof loses)) {
        snprintf(out, len, "unknown: %s", why);
        return;
    }
    if (why[0])
        snprintf(out, len, "no: %s", why);
    else if (loses[0])
        snprintf(out, len, "yes, dropping column %s and its data (REVERT MIGRATION %" PRId64
                           " ACCEPT DATA LOSS)", loses, id);
    else
        snprintf(out, len, "yes");
}

void osc_revert_command(PGconn *c, const char *db, const char *user, int64_t id, bool plan,
                        bool accept_loss, osc_result *r)
{
    char err[1024], code[6], why[1024], loses[512];
    PGresult *t = inverse(c, id, err, sizeof err, code);
    if (t == NULL) {
        osc_result_error(r, code, NULL, "%s", err);
        return;
    }
    verdict_of(t, why, sizeof why, loses, sizeof loses);
    bool done_already = strstr(why, "reverted already") || strstr(why, ", not done");
    if (why[0]) {
        osc_result_error(r, done_already ? "55000" : "0A000", NULL,
                         "migration %" PRId64 " cannot be reverted exactly: %s", id, why);
        PQclear(t);
        return;
    }
    if (loses[0] && !accept_loss && !plan) {
        osc_result_error(r, "22023", "say REVERT MIGRATION n ACCEPT DATA LOSS to drop them",
                         "reverting migration %" PRId64 " drops column %s and the data written "
                         "to it since", id, loses);
        PQclear(t);
        return;
    }
    static const char *const cols[] = {"step", "sql", "strategy", "note"};
    for (int i = 0; i < 4; i++)
        osc_result_col(r, cols[i], i == 0 ? OSC_T_INT8 : OSC_T_TEXT);
    char ids[32], src[64];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    snprintf(src, sizeof src, "revert %" PRId64, id);
    const char *sv[] = {src};
    int64_t first = 0, last = 0;
    for (int i = 0, step = 0; i < PQntuples(t) && r->ok; i++) {
        if (PQgetisnull(t, i, 1))
            continue; /* a refusal's row (none applies: they were checked above) */
        const char *sql = PQgetvalue(t, i, 1);
        char n[16], strategy[64] = "", note[600] = "";
        snprintf(n, sizeof n, "%d", ++step);
        osc_result a;
        osc_result_init(&a);
        if (!plan)
            osc_run(c, "SELECT pg_catalog.set_config('pgcutover.source', $1, false)", 1, sv, err,
                    sizeof err, code);
        osc_engine_statement(c, db, user, sql, plan, &a);
        osc_run(c, "RESET pgcutover.source", 0, NULL, NULL, 0, NULL);
        for (int k = 0; a.ok && k < a.nrows; k++) { /* PLAN's strategy row, or the answer's */
            const char *phase = plan && a.ncols > 1 ? a.cells[k * a.ncols + 1] : NULL;
            if (plan && phase && strcmp(phase, "strategy") == 0)
                snprintf(strategy, sizeof strategy, "%.*s",
                         (int)strcspn(a.cells[k * a.ncols + 2], ":"), a.cells[k * a.ncols + 2]);
            for (int col = 0; !plan && col < a.ncols; col++) {
                if (strcmp(a.colnames[col], "strategy") == 0 && a.cells[k * a.ncols + col])
                    snprintf(strategy, sizeof strategy, "%s", a.cells[k * a.ncols + col]);
                if (strcmp(a.colnames[col], "id") == 0 && a.cells[k * a.ncols + col]) {
                    last = strtoll(a.cells[k * a.ncols + col], NULL, 10);
                    first = first ? first : last;
                }
            }
        }
        if (!PQgetisnull(t, i, 2))
            snprintf(note, sizeof note, "drops column %s and its data", PQgetvalue(t, i, 2));
        if (!a.ok) {
            osc_result_error(r, a.sqlstate, step > 1 ? "the steps before it were applied: "
                             "PLAN REVERT MIGRATION n shows what is left" : NULL,
                             "reverting migration %" PRId64 ", step %d (%s): %s", id, step, sql,
                             a.message);
            osc_result_free(&a);
            break;
        }
        osc_result_free(&a);
        const char *row[] = {n, sql, strategy, note[0] ? note : NULL};
        osc_result_row(r, row);
    }
    PQclear(t);
    if (!r->ok || plan) {
        snprintf(r->tag, sizeof r->tag, "PLAN");
        return;
    }
    char f[32], l[32];
    snprintf(f, sizeof f, "%" PRId64, first);
    snprintf(l, sizeof l, "%" PRId64, last);
    const char *uv[] = {ids, f, l, src};
    if (!osc_run(c, "UPDATE pgcutover.migrations SET settings = settings || "
                    "pg_catalog.jsonb_build_object('reverted_by', (SELECT coalesce("
                    "pg_catalog.jsonb_agg(m.id ORDER BY m.id), '[]') FROM pgcutover.migrations m WHERE "
                    "m.source = $4::text)), phase = 'reverted' || CASE WHEN $2::bigint > 0 THEN ' by "
                    "migration ' || $2::text || CASE WHEN $3::text <> $2::text THEN '-' || $3::text "
                    "ELSE '' END ELSE '' END, updated_at = now() WHERE id = $1::bigint",
                 4, uv, err, sizeof err, code))
        osc_log(CONF_LOG_WARNING, "m%" PRId64 ": reverted, but recording it failed: %s", id, err);
    osc_log(CONF_LOG_INFO, "m%" PRId64 ": reverted (%d statements)", id, r->nrows);
    snprintf(r->tag, sizeof r->tag, "REVERT MIGRATION");
}
