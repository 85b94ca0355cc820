/* osc_window.c — see osc_window.h. */
#include "osc_window.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc_access.h"
#include "osc_db.h"
#include "osc_migration.h"
#include "osc_plan.h"
#include "osc_rights.h"

/* Why F's change has no exact inverse (no row: it has one). $1 F's id. */
static const char no_inverse_sql[] =
    "SELECT CASE WHEN fc.expr IS NOT NULL AND fc.expr !~ '^\"([^\"]|\"\")+\"$' THEN 'column ' || "
    "  fc.name || ' is computed (' || left(fc.expr, 200) || '), not copied from one old column' "
    "  ELSE 'key column ' || fc.name || ' changed its type (' || fc.key_type || ' to ' || "
    "  fc.type || ')' END "
    "FROM pgcutover.migration_columns fc WHERE fc.migration_id = $1 AND ("
    "  (fc.expr IS NOT NULL AND fc.expr !~ '^\"([^\"]|\"\")+\"$') OR "
    "  (fc.key_ord IS NOT NULL AND fc.type <> fc.key_type)) ORDER BY fc.ord LIMIT 1";

/* R's row: $1 F's id, $2 the old table's name in schema pgcutover, $3 its lifetime (s),
 * $4 the oid of the table live after the swap (F's shadow), $5 its state: prepared (before
 * the swap, osc_window_prepare) or standby (in the swap). */
static const char insert_sql[] =
    "INSERT INTO pgcutover.migrations (table_schema, table_name, table_oid, statement, started_by, "
    "  strategy, state, phase, shadow_schema, shadow_name, key_columns, key_ops, shadow_key_ops, "
    "  key_coll_changed, settings, phase_at, revert_of, source) "
    "SELECT f.table_schema, f.table_name, $4::oid, 'REVERT MIGRATION ' "
    "  || f.id, f.started_by, 'copy', $5, 'revert window: the change log keeps the old "
    "table current; REVERT MIGRATION ' || f.id || ' swaps it back', 'pgcutover', $2, "
    "  f.key_columns, f.shadow_key_ops, f.key_ops, f.key_coll_changed, f.settings || "
    "  pg_catalog.jsonb_build_object('cutover', 'manual', 'revert_window_s', $3::int), "
    "  CASE WHEN $5 = 'standby' THEN pg_catalog.jsonb_build_object('standby', now()) ELSE "
    "  '{}'::jsonb END, f.id, NULL "
    "FROM pgcutover.migrations f WHERE f.id = $1 RETURNING id";

/* R's columns, the inverse of F's: $1 R's id, $2 F's id (whose table_oid is the old
 * table, before and after the swap). F's
 * expressions name an old column always double-quoted (osc_plan.c), hence the match. */
static const char columns_sql[] =
    "INSERT INTO pgcutover.migration_columns (migration_id, ord, name, type, expr, "
    "  identity_always, key_ord, key_name, key_type) "
    "SELECT $1, a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
    "  CASE WHEN a.attgenerated = '' THEN (SELECT '\"' || pg_catalog.replace(fc.name, '\"', "
    "  '\"\"') || '\"' FROM "
    "  pgcutover.migration_columns fc WHERE fc.migration_id = $2 AND fc.expr = "
    "  '\"' || pg_catalog.replace(a.attname, '\"', '\"\"') || '\"' ORDER BY fc.ord LIMIT 1) END, a.attidentity = 'a', "
    "  fk.key_ord, fk.name, fk.type "
    "FROM pg_catalog.pg_attribute a LEFT JOIN pgcutover.migration_columns fk ON fk.migration_id = "
    "  $2 AND fk.key_ord IS NOT NULL AND fk.expr = '\"' || "
    "  pg_catalog.replace(a.attname, '\"', '\"\"') || '\"' "
    "WHERE a.attrelid = (SELECT table_oid FROM pgcutover.migrations WHERE id = $2) AND a.attnum > 0 "
    "AND NOT a.attisdropped";

/* Whether F's change has an exact inverse: "" in why, else the reason. False when the
 * query fails (why says so). */
static bool has_inverse(PGconn *c, const char *ids, char *why, size_t len)
{
    char err[512], code[6];
    const char *fv[] = {ids};
    PGresult *t = osc_exec(c, no_inverse_sql, 1, fv, err, sizeof err, code);
    why[0] = 0;
    if (t == NULL)
        snprintf(why, len, "%s", err);
    else if (PQntuples(t) > 0)
        snprintf(why, len, "no exact inverse: %s", PQgetvalue(t, 0, 0));
    PQclear(t);
    return why[0] == 0;
}

/* R's row (state: "prepared" before the swap, "standby" in it), its columns, change log,
 * faults table and capture function, in the caller's transaction; with triggers (in the
 * swap only), R's capture on the live table too. live_oid: the table live after the swap
 * (F's shadow). Before the swap the names are not yet swapped: the log is made from F's
 * shadow (R's original to be) and F's original (R's shadow to be). R's id, or 0 with
 * err. */
static int64_t record(PGconn *c, const osc_map *m, const char *old_name, int window_s,
                      const char *state, const char *live_oid, bool triggers, char *err, size_t len)
{
    char ids[32], code[6], rid[32] = "", life[16];
    snprintf(ids, sizeof ids, "%" PRId64, m->id);
    snprintf(life, sizeof life, "%d", window_s);
    const char *iv[] = {ids, old_name, life, live_oid, state};
    PGresult *t = osc_exec(c, insert_sql, 5, iv, err, len, code);
    bool ok = t && PQntuples(t) == 1;
    if (ok)
        snprintf(rid, sizeof rid, "%s", PQgetvalue(t, 0, 0));
    PQclear(t);
    const char *cv[] = {rid, ids};
    ok = ok && osc_run(c, columns_sql, 2, cv, err, len, code);
    osc_map r = {0};
    ok = ok && osc_map_load(c, strtoll(rid, NULL, 10), &r, err, len);
    osc_map names = r; /* the log's source tables by their names now */
    if (ok && !triggers) {
        names.schema = m->shadow_schema;
        names.table = m->shadow_table;
        names.shadow_schema = m->schema;
        names.shadow_table = m->table;
    }
    char *log = ok ? osc_sql_create_log(&names) : NULL, *fn = ok ? osc_sql_trigger_function(&r, false) : NULL;
    char *trg = ok && triggers ? osc_sql_create_triggers(&r) : NULL;
    ok = ok && log && fn && (trg || !triggers) && osc_run(c, log, 0, NULL, err, len, code) &&
         osc_rights_executor(c, OSC_AS_OWNER, r.owner, err, len, code) &&
         osc_run(c, fn, 0, NULL, err, len, code) &&
         (!triggers || osc_run(c, trg, 0, NULL, err, len, code));
    free(log);
    free(fn);
    free(trg);
    if (rid[0])
        osc_map_free(&r);
    return ok ? strtoll(rid, NULL, 10) : 0;
}

/* The oid of table schema.table as text into oid ("" when it has none). */
static bool oid_of(PGconn *c, const char *schema, const char *table, char oid[16], char *err,
                   size_t len)
{
    osc_sb q = {0};
    osc_sb_qualified(&q, schema, table);
    char *name = osc_sb_take(&q);
    const char *v[] = {name};
    PGresult *t = name ? osc_exec(c, "SELECT pg_catalog.to_regclass($1)::oid", 1, v, err, len, NULL)
                       : NULL;
    free(name);
    oid[0] = 0;
    if (t && !PQgetisnull(t, 0, 0))
        snprintf(oid, 16, "%s", PQgetvalue(t, 0, 0));
    PQclear(t);
    return oid[0] != 0;
}

/* Drop what a prepared window of F made and mark it aborted with phase (no trigger exists
 * yet: nothing on a live table). */
static void discard(PGconn *c, int64_t w, const char *phase)
{
    char ids[32], err[512];
    snprintf(ids, sizeof ids, "%" PRId64, w);
    osc_map r = {.id = w};
    char *drop = osc_sql_drop_functions(&r);
    if (drop == NULL || !osc_run(c, drop, 0, NULL, err, sizeof err, NULL))
        osc_log(CONF_LOG_WARNING, "m%" PRId64 ": dropping a prepared revert window: %s", w,
                drop ? err : "out of memory");
    free(drop);
    const char *v[] = {ids, phase};
    osc_run(c, "UPDATE pgcutover.migrations SET state = 'aborted', phase = $2, updated_at = now() "
               "WHERE id = $1::bigint AND state = 'prepared'", 2, v, err, sizeof err, NULL);
}

int64_t osc_window_prepare(PGconn *c, const osc_map *m, const char *old_name, int window_s,
                           char *why, size_t len)
{
    char ids[32], err[1024], oid[16];
    snprintf(ids, sizeof ids, "%" PRId64, m->id);
    if (!has_inverse(c, ids, why, len))
        return why[0] && strncmp(why, "no exact inverse", 16) == 0 ? -1 : 0;
    const char *v[] = {ids};
    PGresult *t = osc_exec(c, "SELECT max(id) FROM pgcutover.migrations WHERE revert_of = $1::bigint "
                              "AND state = 'prepared'", 1, v, err, sizeof err, NULL);
    int64_t w = t && !PQgetisnull(t, 0, 0) ? strtoll(PQgetvalue(t, 0, 0), NULL, 10) : 0;
    PQclear(t);
    if (w) /* an earlier attempt's (a cutover that gave up, a restart) */
        return w;
    bool ok = oid_of(c, m->shadow_schema, m->shadow_table, oid, err, sizeof err) &&
              osc_run(c, "BEGIN", 0, NULL, err, sizeof err, NULL);
    w = ok ? record(c, m, old_name, window_s, "prepared", oid, false, err, sizeof err) : 0;
    if (w == 0 || !osc_run(c, "COMMIT", 0, NULL, err, sizeof err, NULL)) {
        PQclear(PQexec(c, "ROLLBACK"));
        snprintf(why, len, "preparing the revert window: %s", err);
        return 0;
    }
    return w;
}

void osc_window_discard(PGconn *c, int64_t f, const char *why)
{
    char ids[32], err[512];
    snprintf(ids, sizeof ids, "%" PRId64, f);
    const char *v[] = {ids};
    PGresult *t = osc_exec(c, "SELECT id FROM pgcutover.migrations WHERE revert_of = $1::bigint AND "
                              "state = 'prepared'", 1, v, err, sizeof err, NULL);
    for (int i = 0; t && i < PQntuples(t); i++)
        discard(c, strtoll(PQgetvalue(t, i, 0), NULL, 10), why);
    PQclear(t);
}

int64_t osc_window_open(PGconn *c, const osc_map *m, const char *old_name, int window_s,
                        int64_t prepared, char *why, size_t len)
{
    char ids[32], err[1024], code[6], oid[16], pids[32];
    snprintf(ids, sizeof ids, "%" PRId64, m->id);
    snprintf(pids, sizeof pids, "%" PRId64, prepared);
    if (!prepared && !has_inverse(c, ids, why, len))
        return 0;
    why[0] = 0;
    if (!osc_run(c, "SAVEPOINT pgc_window", 0, NULL, err, sizeof err, code)) {
        snprintf(why, len, "%s", err);
        return 0;
    }
    int64_t w = 0;
    if (prepared) { /* made before the hold: only its capture goes on the live table */
        osc_sb q = {0};
        osc_sb_qualified(&q, m->schema, m->table);
        char *live = osc_sb_take(&q);
        const char *v[] = {pids, live};
        PGresult *t = live ? osc_exec(c, "UPDATE pgcutover.migrations SET state = 'standby', "
                                         "updated_at = now(), phase_at = phase_at || "
                                         "pg_catalog.jsonb_build_object('standby', now()) WHERE id = "
                                         "$1::bigint AND state = 'prepared' AND table_oid = "
                                         "pg_catalog.to_regclass($2)::oid RETURNING id",
                                      2, v, err, sizeof err, code)
                           : NULL;
        free(live);
        bool ok = t && PQntuples(t) == 1;
        if (t && !ok)
            snprintf(err, sizeof err, "the prepared window %s is gone or not of this table", pids);
        PQclear(t);
        /* R's original is the live table under m's names: all its triggers need */
        osc_map r = {.id = prepared, .schema = m->schema, .table = m->table};
        char *trg = ok ? osc_sql_create_triggers(&r) : NULL;
        ok = ok && trg && osc_run(c, trg, 0, NULL, err, sizeof err, code);
        free(trg);
        w = ok ? prepared : 0;
    } else if (oid_of(c, m->schema, m->table, oid, err, sizeof err)) { /* the live table now */
        w = record(c, m, old_name, window_s, "standby", oid, true, err, sizeof err);
    }
    if (w == 0) {
        snprintf(why, len, "the revert window could not be opened: %s", err);
        PQclear(PQexec(c, "ROLLBACK TO SAVEPOINT pgc_window"));
        if (prepared)
            discard(c, prepared, why);
        return 0;
    }
    osc_run(c, "RELEASE SAVEPOINT pgc_window", 0, NULL, err, sizeof err, code);
    return w;
}

bool osc_window_end(PGconn *c, int64_t w, const char *phase, int lock_timeout_ms, char *err,
                    size_t len)
{
    char ids[32];
    snprintf(ids, sizeof ids, "%" PRId64, w);
    const char *v[] = {ids, phase};
    PGresult *t = osc_exec(c, "SELECT state FROM pgcutover.migrations WHERE id = $1::bigint", 1, v,
                           err, len, NULL);
    bool standby = t && PQntuples(t) == 1 && strcmp(PQgetvalue(t, 0, 0), "standby") == 0;
    if (t && !standby)
        snprintf(err, len, "migration %" PRId64 " is no revert window waiting", w);
    PQclear(t);
    return standby && osc_mig_cleanup(c, w, lock_timeout_ms, err, len) &&
           osc_run(c, "UPDATE pgcutover.migrations SET state = 'aborted', phase = $2, updated_at = "
                      "now() WHERE id = $1::bigint AND state = 'standby'", 2, v, err, len, NULL);
}

bool osc_window_drop_old(PGconn *c, int64_t f, const char *old_name, char *err, size_t len,
                         char code[6])
{
    char ids[32];
    snprintf(ids, sizeof ids, "%" PRId64, f);
    osc_sb q = {0};
    osc_sb_addf(&q, "SET lock_timeout = '5s'; DROP TABLE pgcutover.");
    osc_sb_ident(&q, old_name);
    osc_sb_addf(&q, "; RESET lock_timeout");
    char *sql = osc_sb_take(&q);
    bool ok = sql && osc_run(c, sql, 0, NULL, err, len, code);
    free(sql);
    if (!ok)
        PQclear(PQexec(c, "RESET lock_timeout"));
    const char *v[] = {ids};
    return ok && osc_run(c, "UPDATE pgcutover.migrations SET old_name = NULL, phase = 'swapped; old "
                            "table dropped', updated_at = now() WHERE id = $1::bigint",
                         1, v, err, len, code);
}

int osc_window_expire(PGconn *c, int window_s, bool drop_old, int lock_timeout_ms)
{
    char secs[16], err[1024], code[6], phase[128];
    snprintf(secs, sizeof secs, "%d", window_s);
    const char *v[] = {secs};
    PGresult *t = osc_exec(c, "SELECT w.id, w.revert_of, f.old_name, l.s FROM pgcutover.migrations w "
                              "JOIN pgcutover.migrations f ON f.id = w.revert_of, LATERAL (SELECT "
                              "coalesce((w.settings->>'revert_window_s')::int, $1::int) AS s) l "
                              "WHERE w.state = 'standby' AND l.s > 0 AND (w.phase_at->>'standby')::"
                              "timestamptz + l.s * interval '1 s' < now() ORDER BY w.id",
                           1, v, err, sizeof err, NULL);
    int ended = 0;
    for (int i = 0; t && i < PQntuples(t); i++) {
        int64_t w = strtoll(PQgetvalue(t, i, 0), NULL, 10), f = strtoll(PQgetvalue(t, i, 1), NULL, 10);
        int life = atoi(PQgetvalue(t, i, 3));
        snprintf(phase, sizeof phase, "revert window expired (revert_window = %d s)", life);
        if (!osc_window_end(c, w, phase, lock_timeout_ms, err, sizeof err)) {
            osc_log(CONF_LOG_WARNING, "m%" PRId64 ": ending the expired revert window: %s (tried "
                                      "again later)", w, err);
            continue;
        }
        ended++;
        bool dropped = drop_old && !PQgetisnull(t, i, 2) &&
                       osc_window_drop_old(c, f, PQgetvalue(t, i, 2), err, sizeof err, code);
        if (drop_old && !PQgetisnull(t, i, 2) && !dropped)
            osc_log(CONF_LOG_WARNING, "m%" PRId64 ": dropping the old table after its revert window: "
                                      "%s (DROP MIGRATION %" PRId64 " drops it)", f, err, f);
        osc_log(CONF_LOG_INFO, "m%" PRId64 ": revert window of migration %" PRId64 " expired after "
                               "%d s; old table %s", w, f, life, dropped ? "dropped" : "kept");
    }
    PQclear(t);
    return ended;
}

void osc_window_close(PGconn *c, unsigned table_oid, int lock_timeout_ms)
{
    char oid[16], err[1024];
    snprintf(oid, sizeof oid, "%u", table_oid);
    const char *v[] = {oid};
    PGresult *t = osc_exec(c, "SELECT id, revert_of FROM pgcutover.migrations WHERE table_oid = $1 "
                              "AND revert_of IS NOT NULL AND state = 'standby'", 1, v, err, sizeof err, NULL);
    for (int i = 0; t && i < PQntuples(t); i++) {
        int64_t id = strtoll(PQgetvalue(t, i, 0), NULL, 10);
        if (!osc_window_end(c, id, "revert window closed: the table changed again", lock_timeout_ms,
                            err, sizeof err))
            osc_log(CONF_LOG_WARNING, "m%" PRId64 ": closing the revert window: %s", id, err);
        else
            osc_log(CONF_LOG_INFO, "m%" PRId64 ": revert window of migration %s closed (the table "
                                   "changes again)", id, PQgetvalue(t, i, 1));
    }
    PQclear(t);
}

bool osc_window_inspect(PGconn *c, int64_t f, osc_window_info *wi, char *err, size_t len)
{
    char ids[32];
    memset(wi, 0, sizeof *wi);
    snprintf(ids, sizeof ids, "%" PRId64, f);
    const char *v[] = {ids};
    PGresult *t = osc_exec(c, "SELECT f.state, f.settings ? 'reverted_by', w.id, w.state, "
                              "coalesce(w.error, CASE WHEN w.state = 'aborted' THEN w.phase END, "
                              "f.settings->>'revert_refused', 'no revert window was opened'), (SELECT l.id FROM pgcutover.migrations l WHERE l.table_oid = "
                              "w.table_oid AND l.id > f.id AND l.id <> w.id AND l.state = 'done' AND "
                              "l.revert_of IS NULL AND NOT l.settings ? 'reverted_by' AND coalesce("
                              "l.source, '') NOT LIKE 'revert %' ORDER BY l.id LIMIT 1), f.old_name, "
                              "pg_catalog.to_regclass('pgcutover.m' || w.id || '_faults') IS NOT NULL, (SELECT "
                              "pg_catalog.pg_get_userbyid(relowner) FROM pg_catalog.pg_class WHERE oid = "
                              "w.table_oid), w.table_oid "
                              "FROM pgcutover.migrations f LEFT JOIN pgcutover.migrations w ON w.id = "
                              "(f.settings->>'revert_window')::bigint WHERE f.id = $1 AND f.strategy = 'copy'",
                           1, v, err, len, NULL);
    bool copy = t && PQntuples(t) == 1;
    if (!copy) {
        PQclear(t);
        return false;
    }
    wi->window = strtoll(PQgetvalue(t, 0, 2), NULL, 10);
    wi->later = strtoll(PQgetvalue(t, 0, 5), NULL, 10);
    snprintf(wi->old_name, sizeof wi->old_name, "%s", PQgetvalue(t, 0, 6));
    wi->refused_state = PQgetvalue(t, 0, 1)[0] == 't' || strcmp(PQgetvalue(t, 0, 0), "done") != 0;
    if (wi->refused_state)
        snprintf(wi->why, sizeof wi->why, "%s", PQgetvalue(t, 0, 1)[0] == 't'
                                                    ? "it was reverted already" : "it is not done");
    else if (wi->window && strcmp(PQgetvalue(t, 0, 3), "standby") != 0 &&
             strcmp(PQgetvalue(t, 0, 3), "aborted") != 0 && strcmp(PQgetvalue(t, 0, 3), "failed") != 0 &&
             strcmp(PQgetvalue(t, 0, 3), "done") != 0) {
        wi->running = true;
        snprintf(wi->why, sizeof wi->why, "it is being reverted (migration %" PRId64 " is %s)",
                 wi->window, PQgetvalue(t, 0, 3));
    } else if (wi->window == 0 || strcmp(PQgetvalue(t, 0, 3), "standby") != 0)
        snprintf(wi->why, sizeof wi->why, "%s", PQgetvalue(t, 0, 4));
    else if (wi->later)
        snprintf(wi->why, sizeof wi->why, "migration %" PRId64 " changed the table after it: revert "
                 "that first", wi->later);
    bool faults = PQgetvalue(t, 0, 7)[0] == 't';
    char owner[256], found[800], code[6];
    snprintf(owner, sizeof owner, "%s", PQgetvalue(t, 0, 8));
    unsigned live = (unsigned)strtoul(PQgetvalue(t, 0, 9), NULL, 10);
    PQclear(t);
    if (wi->why[0])
        return true;
    /* what the revert's swap would leave bound to the table it takes out of service
     * (osc_plan_bound; the swap checks again under its lock) */
    if (!osc_plan_bound(c, live, found, sizeof found, err, len, code))
        snprintf(wi->why, sizeof wi->why, "what depends on the table could not be read: %s", err);
    else if (found[0])
        snprintf(wi->why, sizeof wi->why, "these objects are bound to the live table and would go "
                 "on using it after the revert's swap: %s (drop them first, create them again "
                 "after)", found);
    if (wi->why[0] || !faults || !owner[0])
        return true;
    /* The faults table is the table owner's: read as the owner (a rule or policy of
     * theirs runs with their rights, never the engine's; osc_rights.h). */
    osc_sb q = {0};
    osc_sb_addf(&q, "SELECT ARRAY[(SELECT key || ': ' || reason FROM pgcutover.\"m%" PRId64 "_faults\" "
                    "ORDER BY at LIMIT 1), (SELECT count(*)::text FROM pgcutover.\"m%" PRId64
                    "_faults\")]", wi->window, wi->window);
    char *inner = osc_sb_take(&q);
    const char *iv[] = {inner};
    t = inner && osc_rights_executor(c, OSC_AS_OWNER, owner, err, len, code)
            ? osc_exec(c, "SELECT r[1], r[2] FROM (SELECT pg_temp." OSC_AS_OWNER "($1, ARRAY[]::"
                          "text[], true) AS r) s", 1, iv, err, len, code)
            : NULL;
    free(inner);
    if (t && PQntuples(t) == 1 && !PQgetisnull(t, 0, 0))
        snprintf(wi->why, sizeof wi->why, "a write since the swap does not fit the old table: %s%s",
                 PQgetvalue(t, 0, 0), strcmp(PQgetvalue(t, 0, 1), "1") ? " (and more)" : "");
    else if (t == NULL) /* unknown is not revertible */
        snprintf(wi->why, sizeof wi->why, "its faults could not be read: %s", err);
    PQclear(t);
    return true;
}

void osc_window_drop_command(PGconn *c, const char *db, int64_t id, int lock_timeout_ms,
                             osc_result *r)
{
    char ids[32], err[1024], code[6];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *v[] = {ids};
    PGresult *t = osc_state_exists(c)
                      ? osc_exec(c, "SELECT state, old_name, settings->'reverted_by'->>0 FROM "
                                    "pgcutover.migrations WHERE id = $1", 1, v, err, sizeof err, code)
                      : NULL;
    if (t == NULL || PQntuples(t) == 0) {
        osc_access_no_such(r, id, db);
        PQclear(t);
        return;
    }
    if (strcmp(PQgetvalue(t, 0, 0), "done") != 0 || PQgetisnull(t, 0, 1)) {
        char hint[160] = "DROP MIGRATION drops the old table of a done migration";
        if (!PQgetisnull(t, 0, 2)) /* its revert's swap made its old table live again */
            snprintf(hint, sizeof hint, "it was reverted: DROP MIGRATION %s drops the table the "
                     "revert took out of service", PQgetvalue(t, 0, 2));
        osc_result_error(r, "55000", hint, "migration %s is %s%s", ids, PQgetvalue(t, 0, 0),
                         PQgetisnull(t, 0, 1) ? " and keeps no old table" : "");
        PQclear(t);
        return;
    }
    /* its revert window (osc_window.h) closes first: R's capture off the live table */
    PGresult *w = osc_exec(c, "SELECT w.id, w.state FROM pgcutover.migrations f JOIN "
                              "pgcutover.migrations w ON w.id = (f.settings->>'revert_window')::bigint "
                              "WHERE f.id = $1 AND w.state NOT IN ('done', 'failed', 'aborted')",
                           1, v, err, sizeof err, code);
    if (w && PQntuples(w) == 1 && strcmp(PQgetvalue(w, 0, 1), "standby") != 0) {
        osc_result_error(r, "55000", "wait for the revert to end", "migration %s is being reverted "
                         "(migration %s is %s)", ids, PQgetvalue(w, 0, 0), PQgetvalue(w, 0, 1));
        PQclear(w);
        PQclear(t);
        return;
    }
    if (w && PQntuples(w) == 1) {
        int64_t wid = strtoll(PQgetvalue(w, 0, 0), NULL, 10);
        bool closed = osc_window_end(c, wid, "revert window closed by DROP MIGRATION", lock_timeout_ms,
                                     err, sizeof err);
        if (!closed) {
            osc_result_error(r, "55P03", "try again", "closing the revert window (migration %" PRId64
                             "): %s", wid, err);
            PQclear(w);
            PQclear(t);
            return;
        }
    }
    PQclear(w);
    bool ok = osc_window_drop_old(c, id, PQgetvalue(t, 0, 1), err, sizeof err, code);
    PQclear(t);
    if (!ok) {
        osc_result_error(r, code, "drop what depends on it first", "dropping the old table: %s", err);
        return;
    }
    osc_log(CONF_LOG_INFO, "m%" PRId64 " old table dropped by DROP MIGRATION", id);
    snprintf(r->tag, sizeof r->tag, "DROP MIGRATION");
}
