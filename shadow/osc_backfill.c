/* osc_backfill.c — see osc_backfill.h. Asynchronous libpq ("Asynchronous Command
 * Processing"): every range's statement is sent first, then the results are collected,
 * so the ranges are copied by PostgreSQL backends at the same time. */
#include "osc_backfill.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc_db.h"
#include "osc_rights.h"

bool osc_backfill_open(osc_backfill *b, const osc_map *m, const char *db, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    b->map = m;
    snprintf(b->ids, sizeof b->ids, "%" PRId64, m->id);
    for (int lo = 0; lo < 2; lo++) {
        for (int oc = 0; oc < 2; oc++)
            b->copy[lo][oc] = osc_sql_backfill(m, lo, oc);
        b->has[lo] = osc_sql_shadow_has(m, lo);
        b->ends[lo] = osc_sql_chunk_end(m, lo, true);
    }
    for (int i = 0; i < OSC_BACKFILL_WORKERS; i++) {
        char app[64];
        snprintf(app, sizeof app, "pgcutover m%" PRId64 " w%d", m->id, i + 1);
        char code[6];
        if ((b->worker[i] = osc_connect(db, app, err, errlen)) == NULL ||
            !osc_rights_executor(b->worker[i], OSC_AS_OWNER, m->owner ? m->owner : "", err,
                                 errlen, code))
            return false;
        /* deadlock_timeout may only be lowered by a superuser: lock_timeout covers the rest. */
        PQclear(PQexec(b->worker[i], "SET deadlock_timeout = '20ms'"));
        PQclear(PQexec(b->worker[i], "SET lock_timeout = '100ms'"));
    }
    return true;
}

void osc_backfill_close(osc_backfill *b)
{
    for (int lo = 0; lo < 2; lo++) {
        free(b->copy[lo][0]);
        free(b->copy[lo][1]);
        free(b->has[lo]);
        free(b->ends[lo]);
    }
    for (int i = 0; i < OSC_BACKFILL_WORKERS; i++)
        PQfinish(b->worker[i]);
    memset(b, 0, sizeof *b);
}

static void free_key(char **k)
{
    for (int i = 0; i < OSC_MAX_KEYS; i++) {
        free(k[i]);
        k[i] = NULL;
    }
}

/* One range of a round. */
typedef struct {
    char *lo[OSC_MAX_KEYS], *hi[OSC_MAX_KEYS];
    bool has_lo, sent;
    int64_t n;
    bool advanced;
} range;

/* Parameters of a range: lo (when has_lo), hi, and n more values from extra. */
static int range_params(const osc_backfill *b, const range *r, const char **v, const char *extra)
{
    int n = 0;
    for (int k = 0; r->has_lo && k < b->map->nkeys; k++)
        v[n++] = r->lo[k];
    for (int k = 0; k < b->map->nkeys; k++)
        v[n++] = r->hi[k];
    if (extra)
        v[n++] = extra;
    return n;
}

bool osc_backfill_round(osc_backfill *b, PGconn *c, char **last, bool *has_last, char **max,
                        int batch, int nranges, int64_t *rows, bool *final, char *err,
                        size_t errlen, char code[6])
{
    const osc_map *m = b->map;
    int nk = m->nkeys;
    range rs[OSC_BACKFILL_WORKERS];
    memset(rs, 0, sizeof rs);
    if (nranges > OSC_BACKFILL_WORKERS)
        nranges = OSC_BACKFILL_WORKERS;
    if (nranges < 1)
        nranges = 1;
    char limit[16];
    snprintf(limit, sizeof limit, "%d", batch);
    int used = 0;
    bool ok = true;
    *final = false;
    /* Plan the ranges: each ends at the batch-th key after the previous end, or at max. */
    for (int i = 0; ok && i < nranges && !*final; i++) {
        range *r = &rs[i];
        r->has_lo = i == 0 ? *has_last : true;
        for (int k = 0; k < nk; k++)
            r->lo[k] = r->has_lo ? strdup(i == 0 ? last[k] : rs[i - 1].hi[k]) : NULL;
        const char *v[2 * OSC_MAX_KEYS + 1];
        int n = 0;
        for (int k = 0; r->has_lo && k < nk; k++)
            v[n++] = r->lo[k];
        for (int k = 0; k < nk; k++)
            v[n++] = max[k];
        v[n++] = limit;
        PGresult *e = osc_exec(c, b->ends[r->has_lo], n, v, err, errlen, code);
        if (e == NULL) {
            ok = false;
            break;
        }
        *final = PQntuples(e) == 0;
        for (int k = 0; k < nk; k++)
            r->hi[k] = strdup(*final ? max[k] : PQgetvalue(e, 0, k));
        PQclear(e);
        used++;
    }
    /* Send each range to its worker. */
    for (int i = 0; ok && i < used; i++) {
        range *r = &rs[i];
        const char *v[2 * OSC_MAX_KEYS + 1];
        int n = range_params(b, r, v, NULL);
        bool on_conflict = !osc_map_keys_ordered(m);
        if (!on_conflict) { /* the triggers' rows in this range, if any, need ON CONFLICT */
            PGresult *h = osc_exec(c, b->has[r->has_lo], n, v, err, errlen, code);
            if (h == NULL) {
                ok = false;
                break;
            }
            on_conflict = PQntuples(h) > 0;
            PQclear(h);
        }
        n = range_params(b, r, v, b->ids);
        r->sent = PQsendQueryParams(b->worker[i], b->copy[r->has_lo][on_conflict], n, NULL, v,
                                    NULL, NULL, 0) == 1;
        if (!r->sent) {
            snprintf(err, errlen, "%s", PQerrorMessage(b->worker[i]));
            snprintf(code, 6, "08006");
            ok = false;
        }
    }
    /* Collect every result, also after a failure, so each worker is idle again. */
    for (int i = 0; i < used; i++) {
        PGresult *res;
        while (rs[i].sent && (res = PQgetResult(b->worker[i])) != NULL) {
            if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
                rs[i].n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
                rs[i].advanced = strcmp(PQgetvalue(res, 0, 1), "1") == 0;
            } else if (ok) {
                ok = false;
                const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
                snprintf(code, 6, "%s", s ? s : "08006");
                snprintf(err, errlen, "%s", msg ? msg : PQerrorMessage(b->worker[i]));
            }
            PQclear(res);
        }
        if (rs[i].sent && PQstatus(b->worker[i]) != CONNECTION_OK && ok) {
            ok = false;
            snprintf(code, 6, "08006");
            snprintf(err, errlen, "backfill connection lost: %s", PQerrorMessage(b->worker[i]));
        }
    }
    /* Every range is in: move the checkpoint over the ranges whose own transaction could
     * not (a later range that committed before the one below it). */
    if (ok && used > 0 && !rs[used - 1].advanced) {
        osc_sb q = {0};
        osc_sb_addf(&q, "UPDATE pgcutover.migrations SET checkpoint = ");
        osc_sb_text_array(&q, 2, nk);
        osc_sb_addf(&q, ", updated_at = now() WHERE id = $1");
        char *sql = osc_sb_take(&q);
        const char *v[OSC_MAX_KEYS + 1] = {b->ids};
        for (int k = 0; k < nk; k++)
            v[1 + k] = rs[used - 1].hi[k];
        ok = sql && osc_run(c, sql, nk + 1, v, err, errlen, code);
        free(sql);
    }
    if (ok && used > 0) {
        for (int i = 0; i < used; i++)
            *rows += rs[i].n;
        for (int k = 0; k < nk; k++) {
            free(last[k]);
            last[k] = strdup(rs[used - 1].hi[k]);
        }
        *has_last = true;
    }
    for (int i = 0; i < nranges; i++) { /* also a range whose planning failed (not used) */
        free_key(rs[i].lo);
        free_key(rs[i].hi);
    }
    return ok;
}
