/* osc_alter.c — see osc_alter.h: ALTER TABLE and PLAN at the console, both on the
 * trial (the table checked, the ALTER tried on an empty shadow and rolled back). */
#include "osc_alter.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc_db.h"
#include "osc_window.h"
#include "osc_plan.h"
#include "osc_sql.h"
#include "osc_strategy.h"
#include "osc_warn.h"

/* Check sql's table (and, for a start, that no migration of it is live), then try the
 * ALTER on an empty shadow in a transaction that is rolled back: every refusal comes
 * before anything is recorded. *s gets the settings in force (caller conf_free's it). */
static bool trial(PGconn *c, const char *sql, const char *user, bool starting, osc_plan *p,
                  conf_t *s, osc_result *r)
{
    osc_hooks.settings(s);
    if (!osc_plan_check(c, sql, user, p, r))
        return false;
    if (starting && osc_state_exists(c)) {
        char oid[16], err[512], code[6];
        snprintf(oid, sizeof oid, "%u", p->table_oid);
        const char *v[] = {oid};
        PGresult *t = osc_exec(c, "SELECT id, state FROM pgcutover.migrations WHERE table_oid = $1 "
                                  "AND state NOT IN ('done', 'failed', 'aborted') AND "
                                  "(revert_of IS NULL OR state NOT IN ('standby', 'prepared'))", /* windows */
                               1, v, err, sizeof err, code);
        if (t == NULL)
            osc_result_error(r, code, NULL, "%s", err);
        else if (PQntuples(t) > 0)
            osc_result_error(r, "55000", "wait for it to finish, or ABORT MIGRATION it first",
                             "table %s.%s already has migration %s in progress (state %s)",
                             p->map.schema, p->map.table, PQgetvalue(t, 0, 0), PQgetvalue(t, 0, 1));
        PQclear(t);
        if (!r->ok)
            return false;
    }
    int catalog = osc_plan_catalog_only(p, r);
    if (catalog > 0 && s->instant_ddl != CONF_INSTANT_DDL_ON) {
        osc_result_error(r, "0A000", "run it directly, or set instant_ddl = on",
                         "cannot copy \"%s.%s\" for this change: its subcommands name objects a "
                         "shadow copy does not have; it is instant, and instant_ddl is off",
                         p->map.schema, p->map.table);
        return false;
    }
    if (catalog != 0)
        return catalog > 0;
    char shadow[64];
    osc_plan_table_name(p->map.table, 0, "new", shadow, sizeof shadow);
    p->force_copy = s->instant_ddl != CONF_INSTANT_DDL_ON;
    return osc_plan_shadow(c, p, 0, shadow, s->lock_timeout_ms, false, r);
}

int64_t osc_alter_start(PGconn *c, const char *user, const char *sql, osc_result *r)
{
    int64_t started = 0;
    osc_plan p;
    conf_t s = {0};
    char err[1024], code[6];
    bool ok = trial(c, sql, user, true, &p, &s, r);
    if (ok) /* a change after the swap ends the revert window of the table (osc_window.h) */
        osc_window_close(c, p.table_oid, s.lock_timeout_ms);
    if (ok && p.strategy == OSC_STRATEGY_VALIDATE && s.instant_ddl == CONF_INSTANT_DDL_ON) {
        if (p.stmt.ncmds == 1 && p.stmt.cmds[0].key_index)
            osc_strategy_key(c, user, sql, &p, &s, r);
        else if (p.stmt.cmds[0].kind == OSC_CMD_VALIDATE_CONSTRAINT)
            osc_strategy_instant(c, user, sql, &p, &s, r); /* outside the hold (held_target) */
        else
            osc_strategy_validate(c, user, sql, &p, &s, r);
        conf_free(&s);
        osc_plan_free(&p);
        return 0;
    }
    if (ok && p.strategy == OSC_STRATEGY_INSTANT && s.instant_ddl == CONF_INSTANT_DDL_ON) {
        osc_strategy_instant(c, user, sql, &p, &s, r);
        conf_free(&s);
        osc_plan_free(&p);
        return 0;
    }
    if (ok && !osc_state_ensure(c, err, sizeof err)) {
        osc_result_error(r, "XX000", NULL, "%s", err);
        ok = false;
    }
    if (ok) {
        char oid[16], bs[16], tb[16], mr[16], lt[16];
        snprintf(oid, sizeof oid, "%u", p.table_oid);
        snprintf(bs, sizeof bs, "%d", s.batch_size);
        snprintf(tb, sizeof tb, "%d", s.target_batch_ms);
        snprintf(mr, sizeof mr, "%d", s.max_rows_per_second);
        snprintf(lt, sizeof lt, "%d", s.lock_timeout_ms);
        const char *v[] = {p.map.schema, p.map.table, oid, sql, user, bs, tb, mr, lt,
                           s.cutover == CONF_CUTOVER_MANUAL ? "manual" : "auto"};
        PGresult *t = osc_exec(
            c,
            "INSERT INTO pgcutover.migrations (table_schema, table_name, table_oid, statement, "
            "started_by, rows_estimated, settings, phase_at) VALUES ($1, $2, $3, $4, $5, NULL, "
            "jsonb_build_object('batch_size', $6::text, 'target_batch_ms', $7::text, "
            "'max_rows_per_second', $8::text, 'lock_timeout_ms', $9::text, 'cutover', $10::text, "
            "'cutover_force', 'off'), jsonb_build_object('pending', now())) RETURNING id",
            10, v, err, sizeof err, code);
        if (t == NULL) {
            if (strcmp(code, "23505") == 0)
                osc_result_error(r, "55000", "wait for it to finish, or ABORT MIGRATION it first",
                                 "table %s.%s already has a migration in progress", p.map.schema,
                                 p.map.table);
            else
                osc_result_error(r, code, NULL, "recording the migration: %s", err);
        } else {
            int64_t id = strtoll(PQgetvalue(t, 0, 0), NULL, 10);
            PQclear(t);
            char table[300];
            snprintf(table, sizeof table, "%s.%s", p.map.schema, p.map.table);
            osc_log(CONF_LOG_INFO, "m%" PRId64 " %s: pending — started by %s: %s", id, table, user, sql);
            started = id;
            osc_result_col(r, "id", OSC_T_INT8);
            osc_result_col(r, "table", OSC_T_TEXT);
            osc_result_col(r, "state", OSC_T_TEXT);
            char ids[32];
            snprintf(ids, sizeof ids, "%" PRId64, id);
            const char *row[] = {ids, table, "pending"};
            osc_result_row(r, row);
            snprintf(r->tag, sizeof r->tag, "ALTER TABLE");
        }
    }
    conf_free(&s);
    osc_plan_free(&p);
    return started;
}

/* PLAN's steps of the validate strategy (osc_strategy_validate); wait: the held bound. */
static void plan_validate(osc_warn_out *o, const osc_plan *p, const conf_t *s, const char *user,
                          const char *sql, const char *wait)
{
    const char *ae = osc_warn_lock_name(OSC_LOCK_ACCESS_EXCLUSIVE);
    const char *sue = osc_warn_lock_name(OSC_LOCK_SHARE_UPDATE_EXCLUSIVE);
    char d[600], lock[96];
    snprintf(d, sizeof d, "as %s under the proxy's hold (lock_timeout %d ms, up to %d attempts)",
             user, s->lock_timeout_ms, s->cutover_attempts);
    osc_key_stmt k;
    if (p->stmt.ncmds == 1 && p->stmt.cmds[0].key_index && osc_stmt_key(sql, &k)) {
        if (k.primary)
            osc_warn_row(o, "validate", "each nullable key column proven NOT NULL first: a helper "
                                        "CHECK (<column> IS NOT NULL) NOT VALID under the hold, then "
                                        "VALIDATE CONSTRAINT apart (a NULL fails with 23502)",
                         "ALTER TABLE … ADD CONSTRAINT pgcutover_nn_<column> CHECK (<column> IS NOT "
                         "NULL) NOT VALID; ALTER TABLE … VALIDATE CONSTRAINT pgcutover_nn_<column>",
                         ae, wait);
        snprintf(d, sizeof d, "CREATE UNIQUE INDEX CONCURRENTLY pgcutover_m<n>_key ON %s.%s %s, as %s "
                              "outside a transaction; a duplicate fails with 23505 and the index is "
                              "dropped", p->map.schema, p->map.table, k.columns, user);
        osc_warn_row(o, "concurrent", d, NULL, sue, "none");
        snprintf(d, sizeof d, "under the hold: ADD CONSTRAINT %s%s USING INDEX pgcutover_m<n>_key "
                              "(no build, no scan; PostgreSQL renames the index to the constraint's "
                              "name) %s; the helpers dropped", k.conname ? k.conname : "<the name "
                              "PostgreSQL would choose>", k.primary ? " PRIMARY KEY" : " UNIQUE",
                 k.attributes);
        osc_warn_row(o, "validate", d, NULL, ae, wait);
        osc_key_free(&k);
        return;
    }
    if (p->stmt.cmds[0].kind == OSC_CMD_VALIDATE_CONSTRAINT) {
        snprintf(d, sizeof d, "as %s, outside the hold (lock_timeout %d ms, retried): reads and "
                              "writes go on; a violating row fails with PostgreSQL's error", user,
                 s->lock_timeout_ms);
        osc_warn_row(o, "validate", d, sql, sue, "none");
        return;
    }
    bool fk = false, nn = false;
    for (int i = 0; i < p->stmt.ncmds; i++) {
        fk |= p->stmt.cmds[i].lock_level == OSC_LOCK_SHARE_ROW_EXCLUSIVE;
        nn |= p->stmt.cmds[i].sets_not_null;
    }
    char err[256], *nv = osc_stmt_not_valid(sql, err, sizeof err), text[1600];
    snprintf(text, sizeof text, "%s%s%s", nv ? nv : err, nv && *nv && nn ? ", " : "",
             nn ? "ADD CONSTRAINT pgcutover_nn_<column> CHECK (<column> IS NOT NULL) NOT VALID "
                  "for each SET NOT NULL column" : "");
    free(nv);
    snprintf(lock, sizeof lock, "%s%s", osc_warn_lock_name(osc_warn_stmt_lock(&p->stmt)),
             fk ? " (and SHARE ROW EXCLUSIVE on the referenced table)" : "");
    char d1[1024];
    snprintf(d1, sizeof d1, "run the statement with its CHECK / FOREIGN KEY constraints NOT VALID%s, %s",
             nn ? " and each SET NOT NULL as a helper CHECK" : "", d);
    osc_warn_row(o, "validate", d1, text, lock, wait);
    snprintf(lock, sizeof lock, "%s%s", sue, fk ? " (and ROW SHARE on the referenced table)" : "");
    osc_warn_row(o, "validate", "ALTER TABLE … VALIDATE CONSTRAINT for each, in its own "
                                "transaction: reads and writes go on; a violating row drops the "
                                "constraints again and fails with PostgreSQL's error (a NULL: 23502)",
                 NULL, lock, "none");
    if (nn)
        osc_warn_row(o, "validate", "under the hold: no scan, the valid CHECKs prove it",
                     "ALTER TABLE … ALTER COLUMN <column> SET NOT NULL, …; ALTER TABLE … DROP "
                     "CONSTRAINT pgcutover_nn_<column>, …", ae, wait);
}

/* PLAN's steps of the copy strategy (DESIGN.md §2); wait: the held bound. */
static void plan_copy(osc_warn_out *o, osc_plan *p, const conf_t *s, const char *wait)
{
    char d[1200], w[400];
    osc_warn_row(o, "state", "record the migration in pgcutover.migrations (id n; shadow named "
                             "<table>_<n>_new)", NULL, "none", "none");
    osc_warn_row(o, "prepare", "create the shadow table: same columns, defaults, constraints, "
                               "indexes, storage; reloptions; outgoing foreign keys NOT VALID",
                 p->create_sql, osc_warn_lock_name(OSC_LOCK_ACCESS_SHARE), "none");
    osc_warn_row(o, "prepare", "apply the change to the shadow table, not the table (tried now on "
                               "an empty copy: it works)", p->alter_sql, "none", "none");
    char *lg = osc_sql_create_log(&p->map);
    osc_warn_row(o, "triggers", "the change log: the keys every application write touches", lg,
                 "none", "none");
    free(lg);
    char *fn = osc_sql_trigger_function(&p->map, false), *trg = osc_sql_create_triggers(&p->map);
    osc_warn_row(o, "triggers", "the capture trigger function: logs keys in the writer's "
                                "transaction, never reads or writes the shadow", fn, "none", "none");
    snprintf(d, sizeof d, "install the triggers: proxy hold, lock_timeout %d ms, retried with "
                          "backoff", s->lock_timeout_ms);
    osc_warn_row(o, "triggers", d, trg, osc_warn_lock_name(OSC_LOCK_SHARE_ROW_EXCLUSIVE), wait);
    free(fn);
    free(trg);
    char *bf = osc_sql_backfill(&p->map, true, true);
    snprintf(d, sizeof d, "keyset batches (first %d rows, adapting to target_batch_ms %d, "
                          "max_rows_per_second %d) up to the greatest key at start, checkpointed",
             s->batch_size, s->target_batch_ms, s->max_rows_per_second);
    snprintf(w, sizeof w, "none for reads and inserts; a DELETE or key UPDATE of a row of the "
                          "running batch waits for the batch (about target_batch_ms, %d ms)",
             s->target_batch_ms);
    osc_warn_row(o, "backfill", d, bf, osc_warn_lock_name(OSC_LOCK_ROW_SHARE), w);
    free(bf);
    char *vf = osc_sql_verify(&p->map, false, true, true);
    for (int step = 0; step < OSC_APPLY_STEPS; step++) {
        bool oom;
        char *ap = osc_sql_apply(&p->map, step, &oom);
        if (ap)
            osc_warn_row(o, "apply", "between backfill rounds, in ready and under the cutover's "
                                     "lock: the logged keys' current rows, one REPEATABLE READ "
                                     "transaction, as the table's owner",
                         ap, osc_warn_lock_name(OSC_LOCK_ACCESS_SHARE), "none");
        free(ap);
    }
    osc_warn_row(o, "verify", "apply the log, then compare counts and hashes per key range in "
                              "the same REPEATABLE READ snapshot",
                 vf, osc_warn_lock_name(OSC_LOCK_ACCESS_SHARE), "none");
    free(vf);
    snprintf(d, sizeof d, "%s: ANALYZE; proxy hold; LOCK TABLE … ACCESS EXCLUSIVE "
                          "(lock_timeout %d ms, up to %d attempts); swap names and carry "
                          "over grants, owner, RLS, triggers, views, foreign keys, sequences, "
                          "publications, comments; release; old table kept until DROP MIGRATION",
             s->cutover == CONF_CUTOVER_MANUAL ? "on CUTOVER MIGRATION n" : "at once when ready",
             s->lock_timeout_ms, s->cutover_attempts);
    snprintf(w, sizeof w, "%s; then the swap itself (milliseconds)", wait);
    osc_warn_row(o, "cutover", d, NULL, osc_warn_lock_name(OSC_LOCK_ACCESS_EXCLUSIVE), w);
}

void osc_alter_plan(PGconn *c, const char *user, const char *sql, osc_result *r)
{
    osc_plan p;
    conf_t s = {0};
    if (trial(c, sql, user, false, &p, &s, r)) {
        osc_warn_out o;
        osc_warn_begin(&o, r);
        char d[1200], wait[300], oid[16];
        osc_warn_held_wait(&s, wait, sizeof wait);
        snprintf(oid, sizeof oid, "%u", p.table_oid);
        snprintf(d, sizeof d, "%s.%s: ordinary table, about %" PRId64 " rows; key %s", p.map.schema,
                 p.map.table, p.rows_estimated, p.key_desc);
        osc_warn_row(&o, "check", d, NULL, NULL, NULL);
        osc_warn_row(&o, "strategy", p.why, NULL, NULL, NULL);
        osc_warn_estimate(&o, c, oid,
                          p.strategy == OSC_STRATEGY_COPY       ? OSC_EST_COPY
                          : p.strategy == OSC_STRATEGY_VALIDATE
                              ? (p.stmt.ncmds == 1 && p.stmt.cmds[0].key_index ? OSC_EST_BUILD : OSC_EST_SCAN)
                                                                : OSC_EST_CATALOG,
                          p.rows_estimated, &s);
        if (p.strategy == OSC_STRATEGY_VALIDATE)
            plan_validate(&o, &p, &s, user, sql, wait);
        else if (p.strategy == OSC_STRATEGY_INSTANT) {
            snprintf(d, sizeof d, "run the statement as %s under the proxy's hold: lock_timeout "
                                  "%d ms per attempt, up to %d attempts with jittered back-off; "
                                  "recorded in pgcutover.migrations in the same transaction",
                     user, s.lock_timeout_ms, s.cutover_attempts);
            osc_warn_row(&o, "instant", d, sql, osc_warn_lock_name(osc_warn_stmt_lock(&p.stmt)), wait);
        } else
            plan_copy(&o, &p, &s, wait);
        osc_warn_rows(&o, &p);
        snprintf(r->tag, sizeof r->tag, "PLAN");
    }
    conf_free(&s);
    osc_plan_free(&p);
}
