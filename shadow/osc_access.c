/* osc_access.c — see osc_access.h. */
#include "osc_access.h"

#include <inttypes.h>
#include <stdio.h>

#include "osc_db.h"

bool osc_access_pin_begin(PGconn *c, char *err, size_t errlen)
{
    return osc_run(c, "BEGIN READ ONLY; SET LOCAL search_path = pg_catalog, pg_temp", 0, NULL,
                   err, errlen, NULL);
}

void osc_access_pin_end(PGconn *c)
{
    PQclear(PQexec(c, "ROLLBACK"));
}

osc_may osc_access_may_act(PGconn *c, const char *user, int64_t id, char *table, size_t tlen,
                           char *err, size_t errlen)
{
    *table = 0;
    if (!osc_state_exists(c))
        return OSC_MAY_MISSING;
    if (!osc_access_pin_begin(c, err, errlen))
        return OSC_MAY_ERROR;
    char ids[32];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *v[] = {user, ids};
    PGresult *t = osc_exec(c,
                           "SELECT pg_catalog.format('%I.%I', m.table_schema, m.table_name), "
                           OSC_MAY_ACT_SQL " FROM pgcutover.migrations m WHERE m.id = $2::int8",
                           2, v, err, errlen, NULL);
    osc_may rc = t == NULL ? OSC_MAY_ERROR : PQntuples(t) != 1 ? OSC_MAY_MISSING
                 : PQgetvalue(t, 0, 1)[0] == 't' ? OSC_MAY_YES : OSC_MAY_NO;
    if (t && PQntuples(t) == 1)
        snprintf(table, tlen, "%s", PQgetvalue(t, 0, 0));
    PQclear(t);
    osc_access_pin_end(c);
    return rc;
}

void osc_access_no_such(osc_result *r, int64_t id, const char *db)
{
    osc_result_error(r, "42P01", "SHOW MIGRATIONS lists them",
                     "no migration %" PRId64 " in database \"%s\"", id, db);
}

bool osc_access_check(PGconn *c, const char *db, const char *user, int64_t id, osc_result *r)
{
    char table[300], err[512];
    switch (osc_access_may_act(c, user, id, table, sizeof table, err, sizeof err)) {
    case OSC_MAY_YES:
        return true;
    case OSC_MAY_MISSING:
        osc_access_no_such(r, id, db);
        return false;
    case OSC_MAY_NO:
        osc_result_error(r, "42501", "the table's owner, a member of the owning role or a "
                                     "superuser may act on its migration",
                         "must be owner of table %s (migration %" PRId64 ")", table, id);
        return false;
    case OSC_MAY_ERROR:
        break;
    }
    osc_result_error(r, "XX000", NULL, "checking the owner of migration %" PRId64 ": %s", id, err);
    return false;
}
