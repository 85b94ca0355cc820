/* osc_migrate.c — see osc_migrate.h. */
#include "osc_migrate.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "osc_adopt.h"
#include "osc_batched.h"
#include "osc_db.h"
#include "osc_engine.h"
#include "osc_window.h"
#include "osc_revert.h"
#include "osc_rights.h"
#include "osc_split.h"
#include "osc_strategy.h"
#include "osc_warn.h"

#define POLL_US 250000 /* how often a copy's row is read while the runner waits for it */

typedef struct {
    PGconn *c;
    const char *db, *user;
    const osc_mcmd *m;
    osc_result *r;
    conf_t s;
} mctx;

/* One row of pgcutover.schema_migrations (present false: none). */
typedef struct {
    bool present;
    char state[16], direction[8], checksum[72];
    int done, total, run;
} vrow;

void osc_migrate_checksum(const char *text, char out[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(text, strlen(text), d, &n, EVP_sha256(), NULL))
        n = 0;
    for (unsigned int i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    out[n ? 64 : 0] = 0;
}

/* The row key of a file: its version, or 'R__' || name for a repeatable. */
static const char *key_of(const osc_mfile *f, char *buf, size_t len)
{
    if (f->kind != OSC_MFILE_REPEATABLE)
        return f->version;
    snprintf(buf, len, "R__%s", f->name);
    return buf;
}

static bool load_row(mctx *x, const char *key, vrow *v)
{
    memset(v, 0, sizeof *v);
    char err[512];
    const char *p[] = {key};
    PGresult *t = osc_exec(x->c, "SELECT state, direction, checksum, statements_done, statements_total, "
                                 "run FROM pgcutover.schema_migrations WHERE version = $1",
                           1, p, err, sizeof err, NULL);
    if (t == NULL) {
        osc_result_error(x->r, "XX000", NULL, "reading pgcutover.schema_migrations: %s", err);
        return false;
    }
    if (PQntuples(t) == 1) {
        v->present = true;
        snprintf(v->state, sizeof v->state, "%s", PQgetvalue(t, 0, 0));
        snprintf(v->direction, sizeof v->direction, "%s", PQgetvalue(t, 0, 1));
        snprintf(v->checksum, sizeof v->checksum, "%s", PQgetvalue(t, 0, 2));
        v->done = atoi(PQgetvalue(t, 0, 3));
        v->total = atoi(PQgetvalue(t, 0, 4));
        v->run = atoi(PQgetvalue(t, 0, 5));
    }
    PQclear(t);
    return true;
}

static bool accepted(const mctx *x, const char *version)
{
    for (int i = 0; i < x->m->naccept; i++)
        if (strcmp(x->m->accept[i], version) == 0)
            return true;
    return false;
}

static const osc_mfile *down_file(const mctx *x, const char *version)
{
    for (int i = 0; i < x->m->nfiles; i++)
        if (x->m->files[i].kind == OSC_MFILE_DOWN && strcmp(x->m->files[i].version, version) == 0)
            return &x->m->files[i];
    return NULL;
}

/* ---------- one step ---------- */

/* Wait for migration id (a copy on its own thread) to end; its state into state. */
static bool wait_migration(mctx *x, int64_t id, char state[16], char *err, size_t errlen)
{
    char ids[32];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *p[] = {ids};
    for (;;) {
        PGresult *t = osc_exec(x->c, "SELECT state, coalesce(error, '') FROM pgcutover.migrations "
                                     "WHERE id = $1", 1, p, err, errlen, NULL);
        if (t == NULL || PQntuples(t) != 1) {
            PQclear(t);
            return false;
        }
        snprintf(state, 16, "%s", PQgetvalue(t, 0, 0));
        snprintf(err, errlen, "%s", PQgetvalue(t, 0, 1));
        PQclear(t);
        if (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 || strcmp(state, "aborted") == 0)
            return true;
        if (osc_engine_stopping()) {
            snprintf(err, errlen, "pgcutover is shutting down; migration %" PRId64 " goes on at the "
                                  "next start, and migrate up continues this version", id);
            return false;
        }
        usleep(POLL_US);
    }
}

/* The column named name of row 0 of a finished statement's answer, or "". */
static const char *answer(const osc_result *a, const char *name)
{
    for (int i = 0; a->ok && a->nrows > 0 && i < a->ncols; i++)
        if (strcmp(a->colnames[i], name) == 0 && a->cells[i])
            return a->cells[i];
    return "";
}

/* The strategy PLAN chose: the first word of its 'strategy' row's description. */
static void planned_strategy(const osc_result *p, char out[32])
{
    out[0] = 0;
    for (int i = 0; p->ok && i < p->nrows; i++)
        if (p->cells[i * p->ncols + 1] && strcmp(p->cells[i * p->ncols + 1], "strategy") == 0) {
            const char *d = p->cells[i * p->ncols + 2];
            size_t n = strcspn(d ? d : "", ": ");
            snprintf(out, 32, "%.*s", (int)(n < 31 ? n : 31), d ? d : "");
        }
}

/* Whether the block's statement may run inside it: why not into why (""). */
static void block_check(mctx *x, const char *stmt, char *why, size_t len)
{
    why[0] = 0;
    if (!osc_engine_is_command(stmt))
        return; /* data statements run as they are */
    osc_result p;
    osc_result_init(&p);
    osc_engine_statement(x->c, x->db, x->user, stmt, true, &p);
    char strat[32];
    planned_strategy(&p, strat);
    if (!p.ok) {
        if (strcmp(p.sqlstate, "42P01") != 0) /* else: on a table the block itself creates */
            snprintf(why, len, "cannot be planned on its own (%s): %s", p.sqlstate, p.message);
    } else if (strcmp(strat, "instant") != 0 && strcmp(strat, "direct") != 0)
        snprintf(why, len, "needs the %s strategy, which cannot run inside one transaction under "
                           "the hold: move it out of the BEGIN … COMMIT block", strat[0] ? strat : "?");
    osc_result_free(&p);
}

/* Run step st (a batched one continues migration resume when > 0); its migration id and
 * strategy out. False with *code/err. */
static bool run_step(mctx *x, const osc_step *st, int64_t resume, int64_t *id, char strategy[32],
                     char code[6], char *err, size_t errlen)
{
    osc_result a;
    osc_result_init(&a);
    int64_t copy = 0;
    *id = 0;
    if (st->kind == OSC_STEP_BATCHED) {
        osc_batched_run(x->c, x->user, st->stmts[0], resume, &x->s, &a);
    } else if (st->kind == OSC_STEP_BLOCK) {
        size_t n = 1;
        for (int i = 0; i < st->nstmts; i++) {
            char why[1200];
            block_check(x, st->stmts[i], why, sizeof why);
            if (why[0]) {
                snprintf(code, 6, "0A000");
                snprintf(err, errlen, "the statement at line %d %s", st->lines[i], why);
                return false;
            }
            n += strlen(st->stmts[i]) + 2;
        }
        char *sql = malloc(n);
        if (sql == NULL) {
            snprintf(code, 6, "53200");
            snprintf(err, errlen, "out of memory");
            return false;
        }
        sql[0] = 0;
        for (int i = 0; i < st->nstmts; i++)
            strcat(strcat(sql, st->stmts[i]), i + 1 < st->nstmts ? ";\n" : "");
        osc_strategy_block(x->c, x->user, sql, &x->s, &a);
        free(sql);
    } else if (st->tags[0] == PG_QUERY__NODE__NODE_VARIABLE_SET_STMT) {
        snprintf(code, 6, "0A000");
        snprintf(err, errlen, "SET/RESET in a migration file is not supported: each statement runs "
                              "in pgcutover's own session state; qualify names instead");
        return false;
    } else if (osc_engine_is_command(st->stmts[0]))
        copy = osc_engine_statement(x->c, x->db, x->user, st->stmts[0], false, &a);
    else
        osc_strategy_data(x->c, x->user, st->stmts[0], &x->s, &a);
    bool ok = a.ok;
    if (!ok) {
        snprintf(code, 6, "%s", a.sqlstate);
        snprintf(err, errlen, "%s", a.message);
    } else if (copy > 0) {
        char state[16];
        *id = copy;
        snprintf(strategy, 32, "copy");
        ok = wait_migration(x, copy, state, err, errlen) && strcmp(state, "done") == 0;
        if (!ok) {
            snprintf(code, 6, osc_engine_stopping() ? "57P01" : "XX000");
            if (!err[0])
                snprintf(err, errlen, "migration %" PRId64 " ended %s", copy, state);
        }
    } else {
        *id = strtoll(answer(&a, "id"), NULL, 10);
        snprintf(strategy, 32, "%s", answer(&a, "strategy"));
    }
    osc_result_free(&a);
    return ok;
}

/* ---------- one version ---------- */

static void row_failed(mctx *x, const char *key, const char *why, int line)
{
    char err[256], ls[16];
    snprintf(ls, sizeof ls, "%d", line);
    const char *p[] = {key, why, line > 0 ? ls : NULL};
    osc_run(x->c, "UPDATE pgcutover.schema_migrations SET state = 'failed', error = $2, "
                  "error_line = $3::int, finished_at = now() WHERE version = $1",
            3, p, err, sizeof err, NULL);
}

/* The step's source: what its migration rows carry (osc_migrate.h). */
static void source_of(char *out, size_t len, const char *direction, const char *key, int run, int k)
{
    snprintf(out, len, "migrate %s %s run %d step %d", direction, key, run, k);
}

/* The newest migration row of source: its id, state and strategy; false when none. */
static bool source_row(mctx *x, const char *source, int64_t *id, char state[16], char strategy[32])
{
    char err[256];
    const char *p[] = {source};
    PGresult *t = osc_exec(x->c, "SELECT id, state, strategy FROM pgcutover.migrations WHERE source = $1 "
                                 "ORDER BY id DESC LIMIT 1", 1, p, err, sizeof err, NULL);
    bool found = t && PQntuples(t) == 1;
    if (found) {
        *id = strtoll(PQgetvalue(t, 0, 0), NULL, 10);
        snprintf(state, 16, "%s", PQgetvalue(t, 0, 1));
        snprintf(strategy, 32, "%s", PQgetvalue(t, 0, 2));
    }
    PQclear(t);
    return found;
}

/* Version key's row ends in state (finished_at, duration_ms; strategies replaced by the
 * text[] literal strategies when not NULL) and is answered as the command's row; logged
 * as "migrate <how>: version …". False with x->r XX000 when it cannot be recorded. */
static bool finish_version(mctx *x, const char *key, const char *name, const char *state,
                           const char *strategies, const char *how)
{
    char err[512];
    const char *p[] = {key, state, strategies};
    PGresult *t = osc_exec(x->c, "UPDATE pgcutover.schema_migrations SET state = $2, strategies = "
                                 "coalesce($3::text[], strategies), finished_at = now(), duration_ms "
                                 "= 1000 * extract(epoch FROM now() - started_at) WHERE version = $1 "
                                 "RETURNING version, name, state, statements_done, "
                                 "array_to_string(strategies, ','), round(duration_ms::numeric, 3)",
                           3, p, err, sizeof err, NULL);
    bool ok = t && PQntuples(t) == 1;
    if (ok) {
        const char *row[6];
        for (int i = 0; i < 6; i++)
            row[i] = PQgetvalue(t, 0, i);
        osc_result_row(x->r, row);
        osc_log(CONF_LOG_INFO, "migrate %s: version %s (%s) %s: %s steps (%s) in %s ms", how, key,
                name, row[2], row[3], row[4], row[5]);
    } else
        osc_result_error(x->r, "XX000", NULL, "recording version %s: %s", key,
                         t ? "its row is gone" : err);
    PQclear(t);
    return ok;
}

/*
 * Apply text (an up, down or repeatable file) as version key in direction "up" or
 * "down", continuing an unfinished run of the same direction. Adds the version's row to
 * x->r's answer; false with x->r an error when a step fails.
 */
static bool apply(mctx *x, const char *key, const char *name, bool repeatable, const char *text,
                  const char *direction)
{
    char sqlstate[6], err[1500], sum[65];
    osc_script sc;
    if (!osc_split(text, &sc, sqlstate, err, sizeof err)) {
        osc_result_error(x->r, sqlstate, "fix the file; nothing of it ran", "version %s (%s): %s",
                         key, name, err);
        return false;
    }
    osc_migrate_checksum(text, sum);
    bool up = strcmp(direction, "up") == 0;
    vrow v;
    bool ok = load_row(x, key, &v);
    /* an unfinished run of this direction goes on after its last checkpoint — unless its
     * file changed since (steps committed from the old text would run again, or the
     * numbering would no longer match): refused then, unless accepted */
    bool unfinished = ok && v.present && strcmp(v.direction, direction) == 0 &&
                      (strcmp(v.state, "applying") == 0 || strcmp(v.state, "reverting") == 0 ||
                       strcmp(v.state, "failed") == 0);
    bool changed = unfinished && (v.total != sc.n || (up && strcmp(v.checksum, sum) != 0));
    if (unfinished && changed && v.done > 0 && !accepted(x, key)) {
        osc_result_error(x->r, "55000", "restore the file, or (once the database matches the "
                         "steps done) `--accept-drift` this version: it goes on after them with "
                         "the new text",
                         "version %s (%s) stopped after %d of %d steps and its file changed since",
                         key, name, v.done, v.total);
        ok = false;
    }
    bool resume = unfinished && (!changed || v.done > 0);
    int run = resume ? v.run : (v.present ? v.run + 1 : 1), start = resume ? v.done : 0;
    char runs[16], totals[16];
    snprintf(runs, sizeof runs, "%d", run);
    snprintf(totals, sizeof totals, "%d", sc.n);
    const char *layout = x->m->layout ? x->m->layout : "";
    const char *p[] = {key, name, layout, repeatable ? "t" : "f", sum, up ? "applying" : "reverting",
                       direction, totals, x->user, runs, resume ? "t" : "f", up ? "t" : "f"};
    ok = ok && osc_run(x->c,
                       "INSERT INTO pgcutover.schema_migrations AS s (version, name, layout, repeatable, "
                       "checksum, state, direction, statements_total, applied_by, run) VALUES ($1, $2, "
                       "$3, $4, $5, $6, $7, $8::int, $9, $10::int) ON CONFLICT (version) DO UPDATE SET "
                       "name = $2, layout = $3, checksum = CASE WHEN $12::bool THEN $5 ELSE s.checksum END, "
                       "state = $6, direction = $7, statements_total = $8::int, applied_by = $9, run = $10::int, "
                       "error = NULL, error_line = NULL, finished_at = NULL, "
                       "statements_done = CASE WHEN $11::bool THEN s.statements_done ELSE 0 END, "
                       "strategies = CASE WHEN $11::bool THEN s.strategies ELSE '{}' END, "
                       "migration_ids = CASE WHEN $11::bool THEN s.migration_ids ELSE '{}' END, "
                       "started_at = CASE WHEN $11::bool THEN s.started_at ELSE now() END",
                       12, p, err, sizeof err, sqlstate);
    if (!ok && x->r->ok)
        osc_result_error(x->r, "XX000", NULL, "recording version %s: %s", key, err);
    for (int k = start; ok && k < sc.n; k++) {
        const osc_step *st = &sc.steps[k];
        char source[600], state[16] = "", strategy[32] = "", code[6] = "XX000";
        int64_t id = 0;
        source_of(source, sizeof source, direction, key, run, k);
        const char *sp[] = {source};
        bool found = source_row(x, source, &id, state, strategy);
        bool done = found && strcmp(state, "done") == 0;
        if (found && !done && strcmp(state, "failed") != 0 && strcmp(state, "aborted") != 0) {
            done = wait_migration(x, id, state, err, sizeof err) && strcmp(state, "done") == 0;
            if (!done && state[0] && strcmp(state, "failed") != 0 && strcmp(state, "aborted") != 0) {
                osc_result_error(x->r, "57P01", NULL, "version %s (%s), line %d: %s", key, name,
                                 st->lines[0], err);
                ok = false;
                break;
            }
        }
        if (!done) { /* a batched statement goes on after its last committed range */
            int64_t resume = found && strcmp(strategy, "batched") == 0 ? id : 0;
            ok = osc_run(x->c, "SELECT pg_catalog.set_config('pgcutover.source', $1, false)", 1, sp,
                         err, sizeof err, code) &&
                 run_step(x, st, resume, &id, strategy, code, err, sizeof err);
            osc_run(x->c, "RESET pgcutover.source", 0, NULL, NULL, 0, NULL);
            if (!ok) {
                char why[1800];
                snprintf(why, sizeof why, "line %d: %s", st->lines[0], err);
                row_failed(x, key, why, st->lines[0]);
                osc_result_error(x->r, code, NULL, "version %s (%s), %s", key, name, why);
                break;
            }
        }
        char ks[16], ids[32];
        snprintf(ks, sizeof ks, "%d", k + 1);
        snprintf(ids, sizeof ids, "%" PRId64, id);
        const char *cp[] = {key, ks, strategy, ids};
        ok = osc_run(x->c, "UPDATE pgcutover.schema_migrations SET statements_done = $2::int, "
                           "strategies = strategies || $3::text, migration_ids = migration_ids || "
                           "$4::bigint WHERE version = $1", 4, cp, err, sizeof err, code);
        if (!ok)
            osc_result_error(x->r, "XX000", NULL, "checkpoint of version %s: %s", key, err);
    }
    ok = ok && finish_version(x, key, name, up ? "applied" : "reverted", NULL, direction);
    osc_script_free(&sc);
    return ok;
}

/* ---------- the verbs ---------- */

bool osc_migrate_lock(PGconn *c, const char *db, osc_result *r)
{
    char err[256];
    PGresult *t = osc_exec(c, "SELECT pg_catalog.pg_try_advisory_lock(" OSC_LOCK_CLASS_SQL ", -1)",
                           0, NULL, err, sizeof err, NULL);
    bool got = t && PQgetvalue(t, 0, 0)[0] == 't';
    PQclear(t);
    if (!got)
        osc_result_error(r, "55006", "wait for it to finish (`pgcutover migrate status` shows "
                         "its progress)", "another `pgcutover migrate` is running on database \"%s\"",
                         db);
    return got;
}

static bool lock_runner(mctx *x)
{
    return osc_migrate_lock(x->c, x->db, x->r);
}

static void version_cols(osc_result *r)
{
    static const char *const cols[] = {"version", "name", "state", "steps", "strategies", "duration_ms"};
    static const uint32_t types[] = {OSC_T_TEXT, OSC_T_TEXT, OSC_T_TEXT, OSC_T_INT8, OSC_T_TEXT, OSC_T_FLOAT8};
    for (int i = 0; i < 6; i++)
        osc_result_col(r, cols[i], types[i]);
}

/*
 * The versions up would run, in order, into todo (indexes into m->files); false with
 * x->r an error on drift, an unfinished down, or a pending version older than an applied
 * one.
 */
static bool pending(mctx *x, int *todo, int *ntodo)
{
    const osc_mcmd *m = x->m;
    int last_applied = -1;
    *ntodo = 0;
    for (int i = 0; i < m->nfiles; i++) {
        const osc_mfile *f = &m->files[i];
        if (f->kind == OSC_MFILE_DOWN)
            continue;
        char kb[300], sum[65];
        const char *key = key_of(f, kb, sizeof kb);
        vrow v;
        if (!load_row(x, key, &v))
            return false;
        osc_migrate_checksum(f->text, sum);
        bool applied = v.present && strcmp(v.direction, "up") == 0 && strcmp(v.state, "applied") == 0;
        if (f->kind == OSC_MFILE_REPEATABLE) {
            if (!applied || strcmp(v.checksum, sum) != 0)
                todo[(*ntodo)++] = i;
            continue;
        }
        if (v.present && strcmp(v.direction, "down") == 0 && strcmp(v.state, "reverted") != 0) {
            osc_result_error(x->r, "55000", "run `pgcutover migrate down` again to finish it",
                             "version %s (%s): its down stopped after %d of %d steps", key, f->name,
                             v.done, v.total);
            return false;
        }
        if (applied && strcmp(v.checksum, sum) != 0) {
            if (!accepted(x, key)) {
                osc_result_error(x->r, "55000", "migrations are append-only: restore the file and "
                                 "write a new version; or, if the database already matches the new "
                                 "file, `--accept-drift` it",
                                 "version %s (%s) was applied with checksum %.12s… but its file now "
                                 "has %.12s… (drift)", key, f->name, v.checksum, sum);
                return false;
            }
            const char *p[] = {key, sum};
            char err[256];
            osc_run(x->c, "UPDATE pgcutover.schema_migrations SET checksum = $2 WHERE version = $1",
                    2, p, err, sizeof err, NULL);
            osc_log(CONF_LOG_WARNING, "migrate: version %s: drift accepted (checksum now %.12s…)", key, sum);
        }
        if (applied)
            last_applied = i;
        else
            todo[(*ntodo)++] = i;
    }
    for (int j = 0; j < *ntodo; j++) {
        const osc_mfile *f = &m->files[todo[j]];
        if (f->kind == OSC_MFILE_UP && todo[j] < last_applied) {
            osc_result_error(x->r, "55000", "give it a version after the last applied one",
                             "version %s (%s) is pending but older than the applied version %s",
                             f->version, f->name, m->files[last_applied].version);
            return false;
        }
    }
    int keep = 0; /* TO and STEPS */
    for (int j = 0; j < *ntodo; j++) {
        if (m->steps > 0 && keep >= m->steps)
            break;
        todo[keep++] = todo[j];
        if (m->to && strcmp(m->files[todo[j]].version, m->to) == 0)
            break;
    }
    *ntodo = keep;
    return true;
}

static void migrate_up(mctx *x)
{
    int *todo = calloc((size_t)x->m->nfiles + 1, sizeof *todo), n = 0;
    if (todo == NULL || !lock_runner(x) || !pending(x, todo, &n)) {
        if (todo == NULL)
            osc_result_error(x->r, "53200", NULL, "out of memory");
        free(todo);
        return;
    }
    version_cols(x->r);
    snprintf(x->r->tag, sizeof x->r->tag, "MIGRATE UP");
    for (int j = 0; j < n && x->r->ok; j++) {
        const osc_mfile *f = &x->m->files[todo[j]];
        char kb[300];
        apply(x, key_of(f, kb, sizeof kb), f->name, f->kind == OSC_MFILE_REPEATABLE, f->text, "up");
    }
    free(todo);
}

/*
 * DOWN REVERT of version f: REVERT MIGRATION of each of its steps' migrations, the last
 * first (osc_revert.h), instead of its down file. Every step is checked before anything
 * runs; a step reverted already (an interrupted earlier DOWN REVERT) is passed. The row
 * ends reverted (direction down). False with x->r an error: 0A000 naming the step that
 * has no exact inverse, 22023 for dropped data without ACCEPT DATA LOSS.
 */
/* Whether step id can be reverted: why ("" = it can; "reverted already" = passed),
 * loses (a column the revert drops). A copy step goes through its revert window
 * (osc_window.h): *window is its migration, *running when an interrupted earlier
 * DOWN REVERT left it under way (waited for, not started again). False when the state
 * cannot be read (why says so). */
static bool step_check(mctx *x, int64_t id, char *why, size_t len, char *loses, size_t llen,
                       int64_t *window, bool *running)
{
    osc_window_info wi;
    char err[512];
    *window = 0;
    *running = false;
    if (!osc_window_inspect(x->c, id, &wi, err, sizeof err))
        return osc_revert_check(x->c, id, why, len, loses, llen);
    loses[0] = 0;
    *window = wi.window;
    *running = wi.running;
    snprintf(why, len, "%s", wi.running ? "" : wi.why);
    return true;
}

/* The version's row failed and x->r an error: the revert of step k (migration id). */
static void step_failed(mctx *x, const osc_mfile *f, int k, int64_t id, const char *sqlstate,
                        const char *hint, const char *what)
{
    char why[1500];
    snprintf(why, sizeof why, "revert of step %d (migration %" PRId64 "): %s", k + 1, id, what);
    row_failed(x, f->version, why, 0);
    osc_result_error(x->r, sqlstate, hint, "version %s (%s), %s", f->version, f->name, why);
}

/* REVERT of step k, migration id, as REVERT MIGRATION does it: a copy step (window set)
 * through its revert window, started unless running and waited for to done; any other by
 * its inverse (osc_revert_command). False with x->r an error and the row failed. */
static bool revert_step(mctx *x, const osc_mfile *f, int k, int64_t id, int64_t window, bool running)
{
    char err[1024], state[16];
    if (!running) {
        osc_result a;
        osc_result_init(&a);
        if (window)
            osc_engine_revert_copy(x->c, x->db, x->user, id, &a);
        else
            osc_revert_command(x->c, x->db, x->user, id, false, x->m->accept_loss, &a);
        bool ok = a.ok;
        if (ok && window)
            window = strtoll(answer(&a, "note"), NULL, 10);
        else if (!ok)
            step_failed(x, f, k, id, a.sqlstate, NULL, a.message);
        osc_result_free(&a);
        if (!ok || !window)
            return ok;
    }
    if (!wait_migration(x, window, state, err, sizeof err)) {
        osc_result_error(x->r, "57P01", NULL, "version %s (%s): %s", f->version, f->name, err);
        return false;
    }
    if (strcmp(state, "done") == 0)
        return true;
    char what[1200];
    snprintf(what, sizeof what, "its window's migration %" PRId64 " %s: %s", window, state, err);
    step_failed(x, f, k, id, "55000", "the old table is kept; SHOW MIGRATION says why", what);
    return false;
}

static bool revert_version(mctx *x, const osc_mfile *f)
{
    char err[512];
    const char *p[] = {f->version};
    PGresult *t = osc_exec(x->c, "SELECT unnest(migration_ids) FROM pgcutover.schema_migrations "
                                 "WHERE version = $1", 1, p, err, sizeof err, NULL);
    if (t == NULL) {
        osc_result_error(x->r, "XX000", NULL, "reading version %s: %s", f->version, err);
        return false;
    }
    int n = PQntuples(t);
    bool ok = n > 0;
    if (!ok)
        osc_result_error(x->r, "0A000", "run migrate down without --revert (its down file)",
                         "version %s (%s) recorded no migration to revert (adopted?)", f->version, f->name);
    for (int k = n - 1; ok && k >= 0; k--) { /* all checked first */
        char why[1200], loses[400];
        int64_t id = strtoll(PQgetvalue(t, k, 0), NULL, 10), window;
        bool running;
        if (!step_check(x, id, why, sizeof why, loses, sizeof loses, &window, &running)) {
            osc_result_error(x->r, "XX000", NULL, "version %s: %s", f->version, why);
            ok = false;
            break;
        }
        if (strstr(why, "reverted already"))
            continue;
        /* a later step of this version changed the table too: it is reverted first, and the
         * execution below checks this step again then */
        bool own_later = k < n - 1 && (strstr(why, "changed the table after it") ||
                                       strstr(why, "the table changed since"));
        if ((why[0] && !own_later) || id <= 0) {
            osc_result_error(x->r, "0A000", "run migrate down without --revert (its down file)",
                             "version %s (%s), step %d (migration %" PRId64 ") cannot be "
                             "reverted: %s", f->version, f->name, k + 1, id, why);
            ok = false;
        } else if (loses[0] && !x->m->accept_loss) {
            osc_result_error(x->r, "22023", "add --accept-data-loss", "version %s (%s), step %d: "
                             "its revert drops column %s and the data written to it since",
                             f->version, f->name, k + 1, loses);
            ok = false;
        }
    }
    char nsteps[16];
    snprintf(nsteps, sizeof nsteps, "%d", n);
    const char *sp[] = {f->version, nsteps};
    ok = ok && osc_run(x->c, "UPDATE pgcutover.schema_migrations SET direction = 'down', state = "
                             "'reverting', statements_total = $2::int, statements_done = 0, error = "
                             "NULL, error_line = NULL, started_at = now(), finished_at = NULL WHERE "
                             "version = $1", 2, sp, err, sizeof err, NULL);
    for (int k = n - 1; ok && k >= 0; k--) {
        int64_t id = strtoll(PQgetvalue(t, k, 0), NULL, 10), window;
        char why[1200], loses[400];
        bool running;
        step_check(x, id, why, sizeof why, loses, sizeof loses, &window, &running);
        if (!strstr(why, "reverted already"))
            ok = revert_step(x, f, k, id, window, running);
        char done[16];
        snprintf(done, sizeof done, "%d", n - k);
        const char *dp[] = {f->version, done};
        ok = ok && osc_run(x->c, "UPDATE pgcutover.schema_migrations SET statements_done = $2::int "
                                 "WHERE version = $1", 2, dp, err, sizeof err, NULL);
    }
    PQclear(t);
    return ok && finish_version(x, f->version, f->name, "reverted", "{revert}", "down --revert");
}

static void migrate_down(mctx *x)
{
    const osc_mcmd *m = x->m;
    if (!lock_runner(x))
        return;
    version_cols(x->r);
    snprintf(x->r->tag, sizeof x->r->tag, "MIGRATE DOWN");
    long steps = m->steps > 0 ? m->steps : (m->to ? 0 : 1);
    int done = 0;
    for (int i = m->nfiles - 1; i >= 0 && x->r->ok; i--) {
        const osc_mfile *f = &m->files[i];
        if (f->kind != OSC_MFILE_UP)
            continue;
        if (m->to && strcmp(f->version, m->to) == 0)
            break;
        if (steps > 0 && done >= steps)
            break;
        vrow v;
        if (!load_row(x, f->version, &v))
            return;
        bool applied = v.present && strcmp(v.direction, "up") == 0 && strcmp(v.state, "applied") == 0;
        bool reverting = v.present && strcmp(v.direction, "down") == 0 && strcmp(v.state, "reverted") != 0;
        if (!applied && !reverting)
            continue;
        if (m->revert) {
            if (!revert_version(x, f))
                return;
            done++;
            continue;
        }
        const osc_mfile *d = down_file(x, f->version);
        if (d == NULL) {
            osc_result_error(x->r, "55000", "write its down file, or change the schema with a new "
                             "version", "version %s (%s) has no down file", f->version, f->name);
            return;
        }
        apply(x, f->version, f->name, false, d->text, "down");
        done++;
    }
}

/* STATUS: one row per file version, then rows without a file (or only those without FILE). */
static void migrate_status(mctx *x)
{
    static const char *const cols[] = {"version", "name", "state", "steps_done", "steps_total",
                                       "strategies", "finished_at", "duration_ms", "error", "note",
                                       "current"};
    static const uint32_t types[] = {OSC_T_TEXT, OSC_T_TEXT, OSC_T_TEXT, OSC_T_INT8, OSC_T_INT8,
                                     OSC_T_TEXT, OSC_T_TIMESTAMPTZ, OSC_T_FLOAT8, OSC_T_TEXT, OSC_T_TEXT,
                                     OSC_T_TEXT};
    for (int i = 0; i < 11; i++)
        osc_result_col(x->r, cols[i], types[i]);
    snprintf(x->r->tag, sizeof x->r->tag, "MIGRATE STATUS");
    char err[512];
    PGresult *t = osc_exec(x->c, "SELECT version, name, state, direction, statements_done, statements_total, "
                                 "array_to_string(strategies, ','), finished_at, round(duration_ms::numeric, "
                                 "3), error, checksum, CASE WHEN s.state IN ('applying', 'reverting') THEN "
                                 "(SELECT 'migration ' || m.id || ': ' || m.strategy || ', ' || m.state || "
                                 "CASE WHEN m.strategy IN ('copy', 'batched') THEN ', ' || m.rows_copied || "
                                 "coalesce(' of ' || m.rows_estimated, '') || ' rows' ELSE '' END FROM "
                                 "pgcutover.migrations m WHERE m.source = 'migrate ' || s.direction || ' ' "
                                 "|| s.version || ' run ' || s.run || ' step ' || s.statements_done ORDER "
                                 "BY m.id DESC LIMIT 1) END "
                                 "FROM pgcutover.schema_migrations s ORDER BY started_at, version",
                           0, NULL, err, sizeof err, NULL);
    if (t == NULL) {
        osc_result_error(x->r, "XX000", NULL, "reading pgcutover.schema_migrations: %s", err);
        return;
    }
    int nt = PQntuples(t);
    bool *seen = calloc((size_t)nt + 1, 1);
    osc_foreign fr; /* what golang-migrate/Flyway/Prisma say: notes on versions pgcutover lacks */
    char fst[6];
    if (!osc_adopt_read(x->c, x->m->layout, x->m->history, x->user, &fr, fst, err, sizeof err))
        osc_log(CONF_LOG_WARNING, "migrate status: no notes from the other tool's history: %s", err);
    for (int i = 0; seen && i < x->m->nfiles; i++) {
        const osc_mfile *f = &x->m->files[i];
        if (f->kind == OSC_MFILE_DOWN)
            continue;
        char kb[300], sum[65], total[16];
        const char *key = key_of(f, kb, sizeof kb);
        osc_migrate_checksum(f->text, sum);
        int row = -1;
        for (int j = 0; j < nt; j++)
            if (strcmp(PQgetvalue(t, j, 0), key) == 0)
                row = j;
        const char *v[11] = {key, f->name, "pending", "0", NULL, NULL, NULL, NULL, NULL, NULL, NULL};
        osc_script sc;
        char sst[6], serr[300];
        if (osc_split(f->text, &sc, sst, serr, sizeof serr)) {
            snprintf(total, sizeof total, "%d", sc.n);
            v[4] = total;
            osc_script_free(&sc);
        } else
            v[9] = serr;
        if (row >= 0) {
            seen[row] = true;
            const char *state = PQgetvalue(t, row, 2);
            bool down = strcmp(PQgetvalue(t, row, 3), "down") == 0;
            bool drift = strcmp(PQgetvalue(t, row, 10), sum) != 0 && !down;
            v[2] = strcmp(state, "reverted") == 0 ? "pending" : state;
            if (strcmp(state, "applied") == 0 && drift)
                v[2] = f->kind == OSC_MFILE_REPEATABLE ? "pending" : "drifted";
            for (int k = 3; k < 9; k++)
                v[k] = PQgetisnull(t, row, k + 1) ? NULL : PQgetvalue(t, row, k + 1);
            if (strcmp(state, "reverted") == 0)
                v[9] = "reverted by migrate down";
            else if (drift && strcmp(state, "applied") == 0)
                v[9] = f->kind == OSC_MFILE_REPEATABLE ? "changed: up applies it again"
                                                       : "its file changed since it was applied";
            if (strcmp(v[2], "pending") == 0)
                v[3] = "0";
            v[10] = PQgetisnull(t, row, 11) ? NULL : PQgetvalue(t, row, 11);
        }
        char note[300];
        osc_foreign_state_t fs = row < 0 && v[9] == NULL ? osc_foreign_state(&fr, f) : OSC_FOREIGN_NOT;
        if (fs != OSC_FOREIGN_NOT) {
            const char *tool = osc_foreign_tool(&fr);
            if (fs == OSC_FOREIGN_APPLIED)
                snprintf(note, sizeof note, "%s says applied: `pgcutover migrate adopt` records it", tool);
            else if (fs == OSC_FOREIGN_FAILED)
                snprintf(note, sizeof note, "%s says failed%s", tool, fr.tool == OSC_TOOL_GOLANG ? " (dirty)" : "");
            else
                snprintf(note, sizeof note, f->kind == OSC_MFILE_REPEATABLE
                         ? "%s applied an earlier text of it: up applies it again"
                         : "%s applied it, but its file changed since: adopt refuses it", tool);
            v[9] = note;
        }
        osc_result_row(x->r, v);
    }
    for (int j = 0; seen && j < nt; j++) {
        if (seen[j])
            continue;
        const char *v[11];
        v[10] = PQgetisnull(t, j, 11) ? NULL : PQgetvalue(t, j, 11);
        v[0] = PQgetvalue(t, j, 0);
        v[1] = PQgetvalue(t, j, 1);
        v[2] = PQgetvalue(t, j, 2);
        for (int k = 3; k < 9; k++)
            v[k] = PQgetisnull(t, j, k + 1) ? NULL : PQgetvalue(t, j, k + 1);
        v[9] = x->m->nfiles ? "no file for this version in the directory" : NULL;
        osc_result_row(x->r, v);
    }
    free(seen);
    osc_foreign_free(&fr);
    PQclear(t);
}

/* PGC006 for an unbatched UPDATE/DELETE the planner expects to touch more than
 * batch_threshold_rows rows: a 'warning' row of PLAN's answer. */
static void large_dml_warning(mctx *x, int tag, const char *stmt, const char *key, const char *name,
                              const char *line, const char *step)
{
    if (x->s.batch_threshold_rows <= 0 ||
        (tag != PG_QUERY__NODE__NODE_UPDATE_STMT && tag != PG_QUERY__NODE__NODE_DELETE_STMT))
        return;
    char *path = osc_rights_user_path(x->user), err[512], code[6];
    double rows = 0;
    bool ok = path && osc_rights_explain_rows(x->c, x->user, stmt, path, &rows, err, sizeof err, code);
    free(path);
    if (!ok || rows <= x->s.batch_threshold_rows)
        return;
    int n;
    const osc_warn_rule_def *r = &osc_warn_rules(&n)[OSC_WARN_LARGE_DML];
    char d[1200];
    snprintf(d, sizeof d, "%s %s: about %.0f rows in one transaction (batch_threshold_rows %d); %s",
             r->id, r->name, rows, x->s.batch_threshold_rows, r->advice);
    const char *v[9] = {key, name, line, step, "warning", d, NULL, NULL, NULL};
    osc_result_row(x->r, v);
}

/* PLAN: PLAN's rows for every step of every pending version. */
static void migrate_plan(mctx *x)
{
    int *todo = calloc((size_t)x->m->nfiles + 1, sizeof *todo), n = 0;
    if (todo == NULL || !pending(x, todo, &n)) {
        free(todo);
        return;
    }
    static const char *const cols[] = {"version", "name", "line", "step", "phase", "description",
                                       "sql", "lock", "client_wait"};
    for (int i = 0; i < 9; i++)
        osc_result_col(x->r, cols[i], i == 2 || i == 3 ? OSC_T_INT8 : OSC_T_TEXT);
    snprintf(x->r->tag, sizeof x->r->tag, "MIGRATE PLAN");
    for (int j = 0; j < n && x->r->ok; j++) {
        const osc_mfile *f = &x->m->files[todo[j]];
        char kb[300], sst[6], err[1200];
        const char *key = key_of(f, kb, sizeof kb);
        osc_script sc;
        if (!osc_split(f->text, &sc, sst, err, sizeof err)) {
            const char *v[9] = {key, f->name, NULL, NULL, "refused", err, NULL, NULL, NULL};
            osc_result_row(x->r, v);
            continue;
        }
        for (int k = 0; k < sc.n; k++) {
            const osc_step *st = &sc.steps[k];
            char line[16], step[16], why[1200];
            snprintf(step, sizeof step, "%d", k + 1);
            for (int s = 0; s < st->nstmts; s++) {
                snprintf(line, sizeof line, "%d", st->lines[s]);
                const char *stmt = st->stmts[s];
                if (st->kind == OSC_STEP_BATCHED) {
                    char d[400];
                    snprintf(d, sizeof d, "batched: in key ranges of %d rows (batch_size) over the "
                             "table's key, each range its own transaction with its checkpoint, as %s, "
                             "throttled by max_rows_per_second; not atomic: other sessions see the "
                             "table half done", x->s.batch_size, x->user);
                    const char *v[9] = {key, f->name, line, step, "batched", d, stmt, "ROW EXCLUSIVE", "none"};
                    osc_result_row(x->r, v);
                    continue;
                }
                if (st->kind == OSC_STEP_BLOCK) {
                    block_check(x, stmt, why, sizeof why);
                    if (why[0]) {
                        const char *v[9] = {key, f->name, line, step, "refused", why, stmt, NULL, NULL};
                        osc_result_row(x->r, v);
                        continue;
                    }
                }
                if (!osc_engine_is_command(stmt)) {
                    large_dml_warning(x, st->tags[s], stmt, key, f->name, line, step);
                    const char *v[9] = {key, f->name, line, step, "data",
                                        st->kind == OSC_STEP_BLOCK
                                            ? "runs as it is, in the block's transaction under the hold"
                                            : "runs as it is, in its own transaction, outside the hold",
                                        stmt, NULL, NULL};
                    osc_result_row(x->r, v);
                    continue;
                }
                osc_result p;
                osc_result_init(&p);
                osc_engine_statement(x->c, x->db, x->user, stmt, true, &p);
                if (!p.ok) {
                    /* an object an earlier pending step may create: planned once it exists */
                    bool undefined = strncmp(p.sqlstate, "42P01", 5) == 0 ||
                                     strncmp(p.sqlstate, "42703", 5) == 0 ||
                                     strncmp(p.sqlstate, "42704", 5) == 0 ||
                                     strncmp(p.sqlstate, "42883", 5) == 0;
                    bool deferred = undefined && (j > 0 || k > 0);
                    char msg[1400];
                    snprintf(msg, sizeof msg, "%s (%s)%s", p.message, p.sqlstate,
                             deferred ? ": an earlier pending step may create it; planned once the "
                                        "steps before it are applied"
                             : undefined ? "; no earlier pending step could create it" : "");
                    const char *v[9] = {key, f->name, line, step, deferred ? "deferred" : "error",
                                        msg, stmt, NULL, NULL};
                    osc_result_row(x->r, v);
                }
                for (int i = 0; p.ok && i < p.nrows; i++) {
                    const char *v[9] = {key, f->name, line, step};
                    for (int c = 1; c < 6 && c < p.ncols; c++)
                        v[3 + c] = p.cells[i * p.ncols + c];
                    osc_result_row(x->r, v);
                }
                osc_result_free(&p);
            }
        }
        osc_script_free(&sc);
    }
    free(todo);
}

void osc_migrate_command(PGconn *c, const char *db, const char *user, const osc_mcmd *m,
                         osc_result *r)
{
    mctx x = {c, db, user, m, r, {0}};
    char err[512];
    if (!osc_state_ensure(c, err, sizeof err)) {
        osc_result_error(r, "XX000", NULL, "%s", err);
        return;
    }
    osc_hooks.settings(&x.s);
    switch (m->verb) {
    case OSC_MIG_UP:
        migrate_up(&x);
        break;
    case OSC_MIG_DOWN:
        migrate_down(&x);
        break;
    case OSC_MIG_STATUS:
        migrate_status(&x);
        break;
    case OSC_MIG_PLAN:
        migrate_plan(&x);
        break;
    case OSC_MIG_ADOPT:
        osc_adopt_run(c, db, user, m, r);
        break;
    }
    conf_free(&x.s);
}
