/* osc_capture.c — see osc_capture.h. */
#include "osc_capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc_db.h"
#include "osc_rights.h"

/* Run inner through the owner's executor; want_row: its first row's first text value
 * into *n, else the row count. */
static bool as_owner(PGconn *c, const char *inner, bool want_row, int64_t *n, char *err,
                     size_t errlen, char code[6])
{
    const char *v[] = {inner, want_row ? "t" : "f"};
    PGresult *r = osc_exec(c, "SELECT (pg_temp." OSC_AS_OWNER "($1, ARRAY[]::text[], $2::bool))[1]",
                           2, v, err, errlen, code);
    if (r == NULL)
        return false;
    if (n)
        *n = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return true;
}

bool osc_capture_apply(PGconn *c, const osc_map *m, bool own_txn, int64_t *applied, char *err,
                       size_t errlen, char code[6])
{
    if (applied)
        *applied = 0;
    if (own_txn && !osc_run(c, "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL, err, errlen, code))
        return false;
    /* Nothing logged (the usual case between rounds): one statement, then done. */
    int64_t pending = own_txn ? osc_capture_backlog(c, m, err, errlen, code) : 1, n = 0;
    bool ok = pending >= 0;
    for (int step = 0; ok && pending > 0 && step < OSC_APPLY_STEPS; step++) {
        bool oom;
        char *q = osc_sql_apply(m, step, &oom);
        if (q == NULL && oom) {
            snprintf(err, errlen, "out of memory");
            snprintf(code, 6, "53200");
            ok = false;
        } else if (q != NULL) {
            ok = as_owner(c, q, false, &n, err, errlen, code);
        }
        free(q);
    }
    if (ok && applied)
        *applied = n;
    if (own_txn) {
        if (ok)
            ok = osc_run(c, "COMMIT", 0, NULL, err, errlen, code);
        else
            PQclear(PQexec(c, "ROLLBACK"));
    }
    return ok;
}

int64_t osc_capture_backlog(PGconn *c, const osc_map *m, char *err, size_t errlen, char code[6])
{
    char *q = osc_sql_log_count(m);
    int64_t n = -1;
    if (q == NULL) {
        snprintf(err, errlen, "out of memory");
        snprintf(code, 6, "53200");
        return -1;
    }
    if (!as_owner(c, q, true, &n, err, errlen, code))
        n = -1;
    free(q);
    return n;
}
